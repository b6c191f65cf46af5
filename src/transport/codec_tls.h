/* The `tls` transport's first-flight codec (docs/PROTOCOL.md 8): umbra's
 * handshake inside a browser's ClientHello and a cover site's server flight.
 *
 *   client  ClientHello in the shape of `fp` (tls_hello.h): the Noise
 *           ephemeral is the X25519 key share; the rest of Noise message 1
 *           fills random, legacy_session_id and the GREASE ECH payload.
 *   server  the cover's ServerHello (tls_shello.h) with our ephemeral as its
 *           X25519 share and the client's session id echoed, ChangeCipherSpec,
 *           then application_data records of the cover's flight lengths: the
 *           first carries the rest of Noise message 2, the others (and any
 *           room left in the first) filler session records.
 *   client  ChangeCipherSpec and a Finished-sized filler record.
 *
 * Then both sides run the session over um_tls_carrier. An unauthenticated
 * connection gets the cover site (UM_UNAUTH_COVER). */
#ifndef UM_TRANSPORT_CODEC_TLS_H
#define UM_TRANSPORT_CODEC_TLS_H

#include "transport/codec.h"
#include "transport/tls_hello.h"
#include "transport/tls_shello.h"

/* The most of Noise message 2 (after the ephemeral) that rides in the first
 * application_data record; a longer record has a filler after it. */
#define UM_TLS_MSG2_REST_MAX 1024

/* The session padding the tls transport asks for (PROTOCOL.md 4.2): the
 * first 8 KiB of every burst after 1 s of quiet, and of every new stream, in
 * records of random sizes, against reading an inner TLS handshake (a user's
 * own https) off the outer record sizes. */
#define UM_TLS_GUARD_BYTES   8192
#define UM_TLS_GUARD_IDLE_MS 1000

typedef struct {
    um_codec_t base;
    um_tls_fp_t fp;               /* client: whose hello */
    char sni[UM_TLS_SNI_MAX + 1]; /* client: sent; server: required */
    /* Server: what the cover answers each fingerprint (learned, or the
     * default profile until learned). */
    um_tls_cover_t cover[UM_TLS_FP_MAX + 1];
} um_codec_tls_t;

extern const um_codec_ops_t um_codec_tls_ops;

/* sni: a DNS name (1..253 bytes). Covers start as um_tls_cover_default(). */
int um_codec_tls_init(um_codec_tls_t *c, um_tls_fp_t fp, const char *sni);
/* Server: the profile learned from the cover for hellos of fingerprint fp. */
void um_codec_tls_set_cover(um_codec_tls_t *c, um_tls_fp_t fp, const um_tls_cover_t *cv);

/* The GREASE ECH enc the browser fp would send (it carries nothing of ours:
 * see docs/internals/tls-hello.md). */
void um_tls_grease_ech_enc(um_tls_fp_t fp, uint8_t enc[32]);

/* Length of Noise message 2 that rides in a first record of rec0 payload
 * bytes, or 0 when rec0 cannot carry one (both sides compute it). */
size_t um_tls_msg2_rest_len(size_t rec0);

#endif
