/* Placeholder translation unit for a layer that has no sources yet. */
typedef int um_empty_t;
