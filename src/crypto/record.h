/* The record layer's cryptography (docs/PROTOCOL.md section 4.1): one
 * direction of records, each
 *
 *     hdr = u16 len XOR ChaCha20(hk, nonce(c))[0..2]    2 bytes: masked length
 *  || AEAD(k, nonce(c), ad = hdr, body[len])            len + 16 bytes
 *
 * with nonce(c) = 4 zero bytes || u64 little-endian c, c advancing by 1 per
 * record, and hk = BLAKE2b-256(key = k, "umbra/1 header"). The masked length
 * is authenticated as the body's associated data. The key is ratcheted one
 * way (um_rec_ratchet); the counter is never reset, so a (key, nonce) pair can
 * never repeat, and a direction refuses to go on once the counter would pass
 * its limit.
 *
 * Ownership: um_rec_dir_t is caller-owned; um_rec_close wipes its key. */
#ifndef UM_CRYPTO_RECORD_H
#define UM_CRYPTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"

#define UM_REC_HDR_WIRE  2     /* masked length field */
#define UM_REC_BODY_MAX  16448 /* 16 KiB of data + room for the body fields */
#define UM_REC_OVERHEAD  (UM_REC_HDR_WIRE + UM_AEAD_TAGLEN)
#define UM_REC_WIRE_MAX  (UM_REC_OVERHEAD + UM_REC_BODY_MAX)
#define UM_REC_CTR_LIMIT (UINT64_C(1) << 62) /* default: far below a wrap */

typedef struct {
    um_aead_t aead;
    uint8_t key[32];
    uint8_t hk[32]; /* header mask key */
    uint64_t ctr;   /* next nonce counter */
    uint64_t limit; /* a record needs ctr + 1 <= limit */
    uint32_t epoch; /* number of ratchets so far */
    int have_hdr;   /* opener: header of the current record already opened */
    size_t body_len;
} um_rec_dir_t;

/* seal = 1 for the sending direction. limit 0 means UM_REC_CTR_LIMIT. */
int um_rec_init(um_rec_dir_t *d, int alg, int seal, const uint8_t key[32], uint64_t limit);
void um_rec_close(um_rec_dir_t *d);
/* key' = BLAKE2b-256(key = key, "umbra/1 rekey") (and hk from it); the old
 * keys are wiped. */
int um_rec_ratchet(um_rec_dir_t *d);

/* Seals body[n] (1 <= n <= UM_REC_BODY_MAX) into out (cap >= n +
 * UM_REC_OVERHEAD). UM_ERANGE when the counter is exhausted. */
int um_rec_seal(um_rec_dir_t *d, const uint8_t *body, size_t n, uint8_t *out, size_t cap,
                size_t *outn);
/* The same for a body given in pieces (their total length as n above),
 * sealed where they lie: the session seals DATA straight from its send
 * queue. Same wire bytes as um_rec_seal of the concatenation. */
int um_rec_sealv(um_rec_dir_t *d, const um_aead_part_t *parts, size_t nparts, uint8_t *out,
                 size_t cap, size_t *outn);
/* Opens the record starting at p[0]. Returns 0 (body in body[0..*bodyn),
 * *consumed wire bytes used), UM_EAGAIN (need more bytes: call again with the
 * same record start and more bytes), UM_EPROTO (bad length), UM_EAUTH (bad
 * tag), UM_ERANGE (counter exhausted). body cap must be >= UM_REC_BODY_MAX. */
int um_rec_open(um_rec_dir_t *d, const uint8_t *p, size_t n, uint8_t *body, size_t cap,
                size_t *bodyn, size_t *consumed);
/* The same in steps, for a caller that puts the pieces of one body in
 * different places (the session decrypts DATA straight into its read
 * queue): open_start checks the header of the record at p[0] and needs the
 * whole record in p[0..n) (UM_EAGAIN, UM_EPROTO, UM_ERANGE as above; 0:
 * *body_len set, the body's ciphertext is p[2 .. 2 + *body_len) and its tag
 * follows); open_body decrypts consecutive pieces of that ciphertext (in
 * order, *body_len bytes in all); open_finish checks the tag: 0 (the next
 * record is at p[*consumed]) or UM_EAUTH (what open_body wrote is garbage:
 * the caller wipes it). */
int um_rec_open_start(um_rec_dir_t *d, const uint8_t *p, size_t n, size_t *body_len);
int um_rec_open_body(um_rec_dir_t *d, const uint8_t *c, size_t k, uint8_t *out);
int um_rec_open_finish(um_rec_dir_t *d, const uint8_t *p, size_t *consumed);

#endif
