/* Noise_IK_25519_ChaChaPoly_BLAKE2b (The Noise Protocol Framework, revision 34),
 * sans-I/O: the state objects consume and produce byte strings; nothing here
 * touches a socket. Pattern:
 *
 *   IK:
 *     <- s
 *     ...
 *     -> e, es, s, ss
 *     <- e, ee, se
 *
 * Ownership: um_noise_hs_t is a caller-owned plain struct that holds secrets;
 * every path that ends a handshake (split, failure, um_noise_hs_wipe) zeroes
 * it. Buffers passed in are borrowed for the duration of the call. */
#ifndef UM_CRYPTO_NOISE_H
#define UM_CRYPTO_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define UM_NOISE_DHLEN    32
#define UM_NOISE_HASHLEN  64
#define UM_NOISE_KEYLEN   32
#define UM_NOISE_TAGLEN   16
#define UM_NOISE_PROTOCOL "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define UM_NOISE_MSG_MAX  65535
/* Message 1 without payload: e (32) + encrypted s (32 + 16) + payload tag (16). */
#define UM_NOISE_MSG1_OVERHEAD 96
/* Message 2 without payload: e (32) + payload tag (16). */
#define UM_NOISE_MSG2_OVERHEAD 48

typedef struct {
    uint8_t ck[UM_NOISE_HASHLEN];
    uint8_t h[UM_NOISE_HASHLEN];
    uint8_t k[UM_NOISE_KEYLEN];
    uint64_t n;
    int has_k;
    int initiator;
    int step; /* 0: expect msg1, 1: expect msg2, 2: ready to split, -1: failed */
    int fixed_e;
    uint8_t s_priv[32], s_pub[32];
    uint8_t e_priv[32], e_pub[32];
    uint8_t rs[32], re[32];
} um_noise_hs_t;

/* Transport keys after Split(): send/recv from this side's point of view, and
 * the final handshake hash h (channel binding). Caller wipes when done. */
typedef struct {
    uint8_t k_send[UM_NOISE_KEYLEN];
    uint8_t k_recv[UM_NOISE_KEYLEN];
    uint8_t h[UM_NOISE_HASHLEN];
} um_noise_split_t;

/* Initialize(): s_priv is this side's static private key (copied), rs the
 * responder's static public key (initiator only). UM_EINVAL on bad keys. */
int um_noise_init_initiator(um_noise_hs_t *hs, const uint8_t *prologue, size_t prologue_len,
                            const uint8_t s_priv[32], const uint8_t rs[32]);
int um_noise_init_responder(um_noise_hs_t *hs, const uint8_t *prologue, size_t prologue_len,
                            const uint8_t s_priv[32]);
/* The same with the static public key supplied (it must match s_priv), which
 * saves a scalar multiplication per handshake on a server. */
int um_noise_init_responder_kp(um_noise_hs_t *hs, const uint8_t *prologue, size_t prologue_len,
                               const uint8_t s_priv[32], const uint8_t *s_pub);
/* Use a given ephemeral private key instead of a fresh one (test vectors only). */
int um_noise_set_ephemeral(um_noise_hs_t *hs, const uint8_t e_priv[32]);

/* -> e, es, s, ss, payload. out must hold UM_NOISE_MSG1_OVERHEAD + plen bytes. */
int um_noise_write_msg1(um_noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                        size_t cap, size_t *outlen);
/* Responder consumes message 1; on success hs->rs is the initiator's static
 * key and payload (cap >= n - UM_NOISE_MSG1_OVERHEAD) its decrypted payload.
 * On any failure (UM_EPROTO short/long, UM_EAUTH bad tag or DH) hs is wiped. */
int um_noise_read_msg1(um_noise_hs_t *hs, const uint8_t *msg, size_t n, uint8_t *payload,
                       size_t cap, size_t *plen);
/* <- e, ee, se, payload. */
int um_noise_write_msg2(um_noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                        size_t cap, size_t *outlen);
int um_noise_read_msg2(um_noise_hs_t *hs, const uint8_t *msg, size_t n, uint8_t *payload,
                       size_t cap, size_t *plen);
/* Split(): derives the two transport keys and wipes hs. */
int um_noise_split(um_noise_hs_t *hs, um_noise_split_t *out);
void um_noise_hs_wipe(um_noise_hs_t *hs);

/* A Noise CipherState ENCRYPT/DECRYPT with ChaChaPoly (nonce = 4 zero bytes ||
 * little-endian u64 n). out holds plen + 16 (encrypt) or clen - 16 (decrypt).
 * Decrypt returns UM_EAUTH on a bad tag. Used for plain Noise transport
 * messages (interop) and inside the handshake. */
int um_noise_encrypt(const uint8_t k[32], uint64_t n, const uint8_t *ad, size_t adlen,
                     const uint8_t *p, size_t plen, uint8_t *out);
int um_noise_decrypt(const uint8_t k[32], uint64_t n, const uint8_t *ad, size_t adlen,
                     const uint8_t *c, size_t clen, uint8_t *out);

/* Noise's HMAC-HASH and HKDF with BLAKE2b (HASHLEN 64, BLOCKLEN 128): writes
 * 1 to 3 outputs of 64 bytes (NULL to skip). Exposed for tests and KDFs. */
void um_noise_hmac(uint8_t out[64], const uint8_t *key, size_t keylen, const uint8_t *d1, size_t n1,
                   const uint8_t *d2, size_t n2);
void um_noise_hkdf(const uint8_t ck[64], const uint8_t *ikm, size_t ikmlen, uint8_t o1[64],
                   uint8_t o2[64], uint8_t o3[64]);

#endif
