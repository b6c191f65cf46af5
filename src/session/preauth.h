/* The pure core of one unauthenticated connection (docs/PROTOCOL.md 5):
 * bytes in, a verdict out. Transport independent: the transport's
 * first-flight codec (transport/codec.h) says whether the bytes so far are
 * a flight, and the server's gate (session/gate.h) runs the handshake with
 * its replay filter and rates. The acceptor is the libuv glue around it
 * (timers, the splice, writes); the fuzz target drives this core directly.
 *
 * Ownership: the core keeps every byte it was given (bounded by the codec's
 * flight_max) until um_preauth_free, so a rejected connection can be spliced
 * to a fallback or cover with nothing lost. An established result's session
 * belongs to the caller. */
#ifndef UM_SESSION_PREAUTH_H
#define UM_SESSION_PREAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "session/gate.h"
#include "session/session.h"
#include "transport/codec.h"
#include "util/buf.h"

#define UM_PREAUTH_REPLY_MAX 16384 /* a reply with its fillers */

typedef enum {
    UM_PA_MORE = 0,    /* every byte so far may begin a flight: wait (bounded by the glue) */
    UM_PA_REJECT,      /* cannot authenticate: the codec's unauth reaction */
    UM_PA_ESTABLISHED, /* a session: write the reply, wrap the carrier */
} um_pa_verdict_t;

typedef struct {
    const um_codec_t *codec; /* borrowed */
    um_gate_t *gate;         /* borrowed */
    um_codec_state_t st;     /* the codec's per-connection facts (wrap needs them) */
    um_buf_t buf;            /* every byte read (bounded); the flight and what followed */
    int done;                /* a verdict other than MORE was given */
} um_preauth_t;

typedef struct {
    um_sess_t *sess; /* the caller's (NULL when resumed) */
    /* A flight that continued a listed session (gate.h): that session has
     * been resumed with the new keys; the glue hands it the connection
     * (resumed->attach). */
    um_resumable_t *resumed;
    uint32_t budget;   /* the client's for this connection (0: none) */
    size_t flight_len; /* wire bytes of the flight */
    uint8_t client[32];
    uint8_t reply[UM_PREAUTH_REPLY_MAX]; /* to write as is, before anything else */
    size_t reply_len;
    const uint8_t *rest; /* wire bytes after the flight (borrowed from the core) */
    size_t rest_len;
    int why; /* UM_PA_REJECT: the reason (UM_EPROTO, UM_EAUTH, UM_EREPLAY, UM_EAGAIN for the
                handshake rate, ...), for logs */
} um_pa_result_t;

void um_preauth_init(um_preauth_t *pa, const um_codec_t *codec, um_gate_t *gate);
void um_preauth_free(um_preauth_t *pa); /* wipes */

/* Adds p[0..n) and decides. now_ms (monotonic) drives the handshake rate,
 * wall_s the timestamp check. After a verdict other than MORE, more bytes
 * only accumulate (for the splice) and the verdict stays. *taken: bytes of
 * p kept (fewer than n only when the buffer is full, which is a REJECT). */
um_pa_verdict_t um_preauth_feed(um_preauth_t *pa, const uint8_t *p, size_t n, size_t *taken,
                                uint64_t now_ms, uint64_t wall_s, const um_sess_cfg_t *scfg,
                                um_pa_result_t *res);
/* The peer ended its side (FIN) or fell silent: if undecided, a REJECT. */
um_pa_verdict_t um_preauth_end(um_preauth_t *pa, um_pa_result_t *res);
/* Every byte read so far (borrowed). */
size_t um_preauth_bytes(const um_preauth_t *pa, const uint8_t **p);

#endif
