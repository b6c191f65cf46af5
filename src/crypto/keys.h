/* X25519 static keys: generation, public-key derivation, text encodings.
 * Private keys live in caller-owned 32-byte arrays; callers wipe them with
 * sodium_memzero() when done. Nothing here prints or logs a key. */
#ifndef UM_CRYPTO_KEYS_H
#define UM_CRYPTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define UM_KEY_LEN        32
#define UM_KEY_B64_LEN    44 /* standard base64 with padding, without NUL */
#define UM_KEY_B64URL_LEN 43 /* URL-safe, no padding, without NUL */

/* Must be called once before any other crypto (calls sodium_init). */
int um_crypto_init(void);

/* A fresh, clamped X25519 private key from the system CSPRNG. */
void um_key_generate(uint8_t priv[UM_KEY_LEN]);
/* pub = X25519(priv, 9). UM_EINVAL when priv gives the all-zero point. */
int um_key_public(uint8_t pub[UM_KEY_LEN], const uint8_t priv[UM_KEY_LEN]);

/* Parses one key in standard base64 (config files, genkey output), ignoring
 * surrounding ASCII whitespace. UM_EINVAL unless it is exactly 32 bytes. */
int um_key_from_b64(uint8_t key[UM_KEY_LEN], const char *s, size_t n);
/* out receives UM_KEY_B64_LEN characters and a NUL. */
void um_key_to_b64(char out[UM_KEY_B64_LEN + 1], const uint8_t key[UM_KEY_LEN]);

/* Loads a private key from a file holding its base64 text (a trailing newline
 * is allowed). Returns UM_ENOENT/UM_EIO/UM_EINVAL; *loose_perms is set to 1
 * when the file can be read by group or others (the caller warns). */
int um_key_load_file(uint8_t key[UM_KEY_LEN], const char *path, int *loose_perms);

#endif
