/* A transport's first-flight codec (sans-I/O; docs/internals/transport.md).
 *
 * The session layer makes the Noise messages; a codec decides what they look
 * like on the wire for one transport, and what an unauthenticated connection
 * gets. The client seals its Noise message 1 into the transport's first
 * flight and opens the server's reply to get message 2; the server does the
 * reverse. `open_*` work on the bytes received so far and answer
 *
 *   0          complete: the message is in msg[0..*msgn), and the flight took
 *              p[0..*consumed) (bytes after it belong to the session);
 *   UM_EAGAIN  every byte so far may still begin a valid flight: need more;
 *   UM_EPROTO  these bytes cannot be a flight of this transport.
 *
 * A codec object begins with um_codec_t (its ops pointer), followed by the
 * transport's parameters (server key for masking, shape, SNI, fingerprint,
 * ...). Codecs are pure: no I/O, no globals; randomness comes from libsodium.
 * Per-connection facts that the reply must match (a TLS session id, the
 * group chosen) live in a um_codec_state_t the caller keeps between the
 * calls of one handshake (zeroed before the first; wiped after the last).
 * Every buffer is borrowed for the duration of the call. */
#ifndef UM_TRANSPORT_CODEC_H
#define UM_TRANSPORT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a connection whose first bytes do not authenticate gets. */
typedef enum {
    /* Read and discard; FIN at a random delay; or, when the server has a
     * fallback, a splice to it once the bytes cannot be a flight. */
    UM_UNAUTH_SILENCE = 0,
    /* Everything, the bytes read so far included, spliced untouched to the
     * cover site as soon as the bytes cannot be a flight (tls). */
    UM_UNAUTH_COVER = 1,
    /* An HTTP transport (ws): a complete request gets the codec's refusal
     * (refuse: a plain 404), then FIN; without a fallback, anything else as
     * UM_UNAUTH_SILENCE; with one, the splice as there. */
    UM_UNAUTH_REFUSE = 2,
} um_unauth_t;

#define UM_CODEC_STATE_MAX 512

typedef struct {
    _Alignas(8) uint8_t b[UM_CODEC_STATE_MAX];
} um_codec_state_t;

typedef struct um_codec um_codec_t;
typedef struct um_carrier um_carrier_t;

/* Seals one session record of exactly `size` wire bytes that carries no
 * data (um_sess_pull_filler): how a codec gives its flights the sizes of
 * what the transport imitates without knowing the session layer. */
typedef int (*um_codec_filler_fn)(void *ud, size_t size, uint8_t *out, size_t cap, size_t *outn);

typedef struct {
    const char *name;     /* "tcp", "tls" */
    const char *prologue; /* Noise prologue: binds the handshake to the transport */
    um_unauth_t unauth;

    /* Client, first: prepares the next flight in st and returns the length
     * of Noise message 1 to make for it (drawn at random where the transport
     * hides lengths). */
    size_t (*msg1_len)(const um_codec_t *c, um_codec_state_t *st);
    int (*seal_flight)(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg1, size_t n,
                       uint8_t *out, size_t cap, size_t *outn);
    int (*open_reply)(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                      uint8_t *msg2, size_t cap, size_t *msgn, size_t *consumed);

    /* Server. */
    int (*open_flight)(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                       uint8_t *msg1, size_t cap, size_t *msgn, size_t *consumed);
    size_t (*msg2_len)(const um_codec_t *c, const um_codec_state_t *st);
    /* The reply, and whatever filler records follow it in the same flight
     * (fill may be NULL for codecs that use none). */
    int (*seal_reply)(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg2, size_t n,
                      um_codec_filler_fn fill, void *fill_ud, uint8_t *out, size_t cap,
                      size_t *outn);

    /* Optional (NULL: none). Bytes appended to the prologue, binding the
     * handshake to what the flight carries besides the Noise message (the
     * tls transport: a hash of the ClientHello). Valid on the client after
     * msg1_len, on the server after open_flight returned 0. */
    size_t (*bind)(const um_codec_t *c, const um_codec_state_t *st, uint8_t *out, size_t cap);
    /* Optional (NULL: nothing). Client, after open_reply: bytes to send
     * before the session's own records (a TLS client's CCS and Finished). */
    int (*client_finish)(const um_codec_t *c, um_codec_state_t *st, um_codec_filler_fn fill,
                         void *fill_ud, uint8_t *out, size_t cap, size_t *outn);
    /* Optional (NULL: the connection's carrier as it is). Either side, once
     * the flights are done: the carrier the session runs on, layered over
     * `inner` (which it then owns: closing the result closes inner). */
    int (*wrap)(const um_codec_t *c, const um_codec_state_t *st, int server_side,
                um_carrier_t *inner, um_carrier_t **out);
    /* Optional (UM_UNAUTH_REFUSE): the answer an unauthenticated connection
     * gets for the bytes it sent (p: all of them): 0 with out[0..*outn) to
     * write before the FIN, UM_EAGAIN for no answer. */
    int (*refuse)(const um_codec_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t cap,
                  size_t *outn);
} um_codec_ops_t;

#define UM_CODEC_PROLOGUE_MAX 96

/* The Noise prologue of a handshake through codec c: the transport's fixed
 * prologue, then its bind bytes. Returns the length written to out. */
static inline size_t um_codec_prologue(const um_codec_t *c, const um_codec_state_t *st,
                                       uint8_t out[UM_CODEC_PROLOGUE_MAX]);

struct um_codec {
    const um_codec_ops_t *ops;
    size_t flight_max; /* longest client flight (the server's parse buffer bound) */
    size_t reply_max;  /* longest server reply (the client's parse buffer bound) */
};

static inline size_t um_codec_prologue(const um_codec_t *c, const um_codec_state_t *st,
                                       uint8_t out[UM_CODEC_PROLOGUE_MAX])
{
    size_t n = 0;
    for (const char *p = c->ops->prologue; *p && n < UM_CODEC_PROLOGUE_MAX; p++)
        out[n++] = (uint8_t)*p;
    if (c->ops->bind) n += c->ops->bind(c, st, out + n, UM_CODEC_PROLOGUE_MAX - n);
    return n;
}

/* ---- tcp: masked flights (PROTOCOL.md section 2) behind an optional
 * first-packet shape (section 7). ---- */

#define UM_TCP_FLIGHT_C_MIN 128 /* client flight, masked, without the shape prefix */
#define UM_TCP_FLIGHT_C_MAX 1024
#define UM_TCP_REPLY_MAX    1024

typedef struct {
    um_codec_t base;
    uint8_t server_pub[32]; /* masking key (public: every client knows it) */
    uint8_t shape;          /* um_shape_t */
    size_t msg1_min;        /* shortest valid Noise message 1 / 2 (session layer) */
    size_t msg2_min;
} um_codec_tcp_t;

extern const um_codec_ops_t um_codec_tcp_ops;

/* Pure: true when bytes on which an unshaped first flight is still undecided
 * cannot be one: they hold a complete HTTP request head or a complete TLS
 * record (a web client; a masked flight looks like random bytes). Total over
 * any input. */
bool um_tcp_not_flight(const uint8_t *p, size_t n);

/* UM_EINVAL for an unknown shape or minimum lengths that cannot fit. */
int um_codec_tcp_init(um_codec_tcp_t *c, const uint8_t server_pub[32], uint8_t shape,
                      size_t msg1_min, size_t msg2_min);

#endif
