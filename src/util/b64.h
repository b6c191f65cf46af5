/* Base64 over libsodium's strict codec. Keys in config files use the standard
 * alphabet with padding (44 characters for 32 bytes, as WireGuard); share links
 * use the URL-safe alphabet without padding (43 characters). Decoding is strict:
 * no whitespace, no non-canonical trailing bits. */
#ifndef UM_UTIL_B64_H
#define UM_UTIL_B64_H

#include <stddef.h>
#include <stdint.h>

typedef enum { UM_B64_STD, UM_B64_URL } um_b64_variant_t;

/* Encoded length including the NUL. */
size_t um_b64_encoded_len(size_t n, um_b64_variant_t v);
/* Writes a NUL-terminated string into out (outcap >= um_b64_encoded_len). */
int um_b64_encode(char *out, size_t outcap, const uint8_t *in, size_t n, um_b64_variant_t v);
/* Decodes exactly `n` characters of s; *outlen receives the byte count.
 * UM_EINVAL on any bad character or length, UM_ENOSPC when out is too small. */
int um_b64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *s, size_t n,
                  um_b64_variant_t v);
/* Decodes a 32-byte key; UM_EINVAL unless s is exactly one canonical key. */
int um_b64_decode_key(uint8_t key[32], const char *s, size_t n, um_b64_variant_t v);

#endif
