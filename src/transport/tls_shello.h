/* The server's side of the `tls` transport's first flight (docs/PROTOCOL.md
 * 8): the ServerHello, and the cover profile it is built from.
 *
 * An authenticated hello is answered as the cover site answers a browser:
 * the cover's own ServerHello (learned at start-up from a real handshake
 * with the cover) with a fresh random, the client's session id echoed and
 * the key share replaced, then the CCS record, then application_data records
 * of the lengths the cover's encrypted handshake flight had.
 *
 * Pure functions; every buffer is borrowed for the call (parsed spans point
 * into the caller's input). */
#ifndef UM_TRANSPORT_TLS_SHELLO_H
#define UM_TRANSPORT_TLS_SHELLO_H

#include <stddef.h>
#include <stdint.h>

#include "transport/tls_hello.h" /* group codepoints */

#define UM_TLS_MLKEM768_CT_LEN 1088 /* server share: ciphertext || x25519 */
#define UM_TLS_SH_MAX          1600 /* a ServerHello record we accept or keep */
#define UM_TLS_COVER_RECS      8    /* encrypted flight records remembered */

/* A parsed ServerHello (spans borrowed from the input). */
typedef struct {
    const uint8_t *random; /* 32 bytes */
    const uint8_t *sid;
    size_t sid_len;
    uint16_t cipher;
    uint16_t version; /* from supported_versions: 0x0304 */
    uint16_t group;   /* key_share */
    const uint8_t *share;
    size_t share_len;
    size_t off_random, off_sid, off_share; /* offsets from the record's start */
    size_t len;                            /* the whole record, header included */
} um_tls_sh_t;

/* Parses a ServerHello record at the start of p[0..n): 0 (with sh->len the
 * record's size), UM_EAGAIN (a valid beginning), UM_EPROTO (anything else: not
 * a handshake record, not a TLS 1.3 ServerHello, a HelloRetryRequest, a
 * ServerHello spread over several records, no key share). */
int um_tls_sh_parse(const uint8_t *p, size_t n, um_tls_sh_t *sh);

/* The x25519 public key inside a key share of `group` (the whole share for
 * x25519, its last 32 bytes for X25519MLKEM768), or NULL. */
const uint8_t *um_tls_share_x25519(uint16_t group, const uint8_t *share, size_t len);

/* What the cover site answered one browser hello with. */
typedef struct {
    uint8_t sh[UM_TLS_SH_MAX]; /* its ServerHello record, verbatim */
    size_t sh_len;
    size_t off_random, off_sid, sid_len, off_share, share_len;
    uint16_t cipher, group;
    int ccs;                         /* a ChangeCipherSpec record followed */
    uint16_t rec[UM_TLS_COVER_RECS]; /* application_data payload lengths */
    size_t n_rec;
} um_tls_cover_t;

/* Learns a profile from the bytes a cover sent in answer to one hello (its
 * first flight, read until it fell silent). Only whole records count.
 * UM_EPROTO when the bytes are not a TLS 1.3 server flight with at least one
 * application_data record, or when the key share is not one umbra can answer
 * (x25519 or X25519MLKEM768), or the session id is not 32 bytes. */
int um_tls_cover_learn(const uint8_t *p, size_t n, um_tls_cover_t *cv);

/* A profile for when the cover cannot be reached: the flight of nginx with
 * OpenSSL 3 and one ECDSA P-256 certificate, answering Chromium. */
void um_tls_cover_default(um_tls_cover_t *cv);

/* The ServerHello of cv with `random` (32 bytes), the session id `sid`
 * (cv->sid_len bytes) and our x25519 key `x25519` (32 bytes) as the key share
 * (preceded by `mlkem_ct`, UM_TLS_MLKEM768_CT_LEN bytes, for the hybrid
 * group). Writes cv->sh_len bytes. */
int um_tls_cover_server_hello(const um_tls_cover_t *cv, const uint8_t random[32],
                              const uint8_t *sid, const uint8_t x25519[32], const uint8_t *mlkem_ct,
                              uint8_t *out, size_t cap, size_t *outn);

#endif
