/* AEADs for records, through OpenSSL EVP: ChaCha20-Poly1305 (RFC 8439) and
 * AES-256-GCM, 32-byte keys, 12-byte nonces, 16-byte tags.
 *
 * An um_aead_t owns one EVP_CIPHER_CTX initialised with its key ONCE
 * (um_aead_init / um_aead_rekey); each seal/open only sets the nonce. The
 * key bytes are not kept here (OpenSSL holds its schedule; um_aead_close
 * frees it with EVP_CIPHER_CTX_free, which cleanses it). */
#ifndef UM_CRYPTO_AEAD_H
#define UM_CRYPTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UM_AEAD_KEYLEN   32
#define UM_AEAD_NONCELEN 12
#define UM_AEAD_TAGLEN   16

typedef enum {
    UM_AEAD_CHACHA20_POLY1305 = 1,
    UM_AEAD_AES256_GCM = 2,
} um_aead_alg_t;

typedef struct {
    void *ctx; /* EVP_CIPHER_CTX */
    int alg;
    int encrypt;
} um_aead_t;

/* encrypt: 1 for a sealing context, 0 for an opening one. */
int um_aead_init(um_aead_t *a, int alg, int encrypt, const uint8_t key[UM_AEAD_KEYLEN]);
/* Replaces the key in place (same context, same algorithm). */
int um_aead_rekey(um_aead_t *a, const uint8_t key[UM_AEAD_KEYLEN]);
void um_aead_close(um_aead_t *a); /* tolerates a zeroed or half-initialised a */

/* out receives n bytes of ciphertext then the 16-byte tag. p and out may be
 * the same buffer (in-place). */
int um_aead_seal(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                 size_t adlen, const uint8_t *p, size_t n, uint8_t *out);
/* The same over the concatenation of nparts pieces of plaintext, sealed
 * where they lie (no gathering copy): out receives their total length of
 * ciphertext then the tag, the same bytes um_aead_seal gives for the
 * concatenation. A piece may be empty. */
typedef struct {
    const uint8_t *p;
    size_t n;
} um_aead_part_t;
int um_aead_sealv(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                  size_t adlen, const um_aead_part_t *parts, size_t nparts, uint8_t *out);
/* c holds clen bytes: ciphertext then tag. out receives clen - 16 bytes.
 * UM_EAUTH on a bad tag (out then holds garbage; the caller discards it). */
int um_aead_open(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                 size_t adlen, const uint8_t *c, size_t clen, uint8_t *out);

/* The same in steps, for a body whose pieces go to different places:
 * open_init (nonce, associated data), open_update for consecutive pieces
 * of the ciphertext (out receives n bytes each; pieces of any length),
 * open_final with the tag: 0, or UM_EAUTH (every byte written since
 * open_init is then garbage the caller must discard, and wipe where it may
 * be read again). */
int um_aead_open_init(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                      size_t adlen);
int um_aead_open_update(um_aead_t *a, const uint8_t *c, size_t n, uint8_t *out);
int um_aead_open_final(um_aead_t *a, const uint8_t tag[UM_AEAD_TAGLEN]);

/* True when this CPU has AES and carry-less multiply instructions. */
bool um_cpu_has_aes(void);
const char *um_aead_name(int alg);

#endif
