/* Whole-file reads for the files a user points umbra at (rules, GeoIP
 * tables): bounded, with the reason for a failure in err. */
#ifndef UM_UTIL_FILE_H
#define UM_UTIL_FILE_H

#include <stddef.h>

/* Reads path into a new buffer (*out, the caller frees; NULL for an empty
 * file) of *n bytes, at most max. UM_ENOENT (cannot open), UM_EINVAL
 * (larger than max), UM_ENOMEM or UM_EIO, with the path and the reason in
 * err; *out is then NULL. */
int um_file_read(const char *path, size_t max, char **out, size_t *n, char *err, size_t errlen);

#endif
