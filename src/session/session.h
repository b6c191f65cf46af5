/* A session: the confidential, length-hiding, reliable byte pipe the mux rides
 * on (docs/PROTOCOL.md section 4). Sans-I/O: the caller feeds wire bytes in
 * (um_sess_feed), pulls wire bytes out (um_sess_pull), writes plaintext in
 * (um_sess_write) and reads plaintext out (um_sess_read).
 *
 * Reliability groundwork for resumption (docs/PROTOCOL.md 3.6): every data
 * byte has a session offset; every record carries the cumulative offset this
 * side has received (ack); sent data stays in a bounded buffer until acked, so
 * after a reconnection (um_sess_resume) it can be sent again from the peer's
 * acknowledged offset; the receiver drops bytes it already has.
 *
 * Ownership: um_sess_new copies the keys (the caller wipes its copy);
 * um_sess_free wipes every key and plaintext buffer. Plaintext passed to
 * um_sess_write is copied. Single-threaded. */
#ifndef UM_SESSION_SESSION_H
#define UM_SESSION_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/record.h"
#include "session/handshake.h"

#define UM_SESS_DATA_MAX 16384 /* data bytes per record */

typedef enum {
    UM_PAD_NONE = 0,   /* no padding */
    UM_PAD_RANDOM = 1, /* 0..max random padding bytes per record */
    UM_PAD_BLOCK = 2,  /* pad each record's wire size up to a multiple of block */
} um_pad_mode_t;

typedef struct {
    int mode;       /* um_pad_mode_t */
    uint16_t max;   /* UM_PAD_RANDOM */
    uint16_t block; /* UM_PAD_BLOCK, >= 64 */
    /* Burst guard (any mode; 0 = off): the first guard_bytes of data after
     * guard_idle_ms without data, and after um_sess_guard(), go in records
     * whose wire size is drawn uniformly from [max(size, 1024), that + 1024],
     * so the sizes of what starts a burst (an inner TLS handshake of a user
     * browsing https through the tunnel) cannot be read off the records. */
    uint32_t guard_bytes;
    uint32_t guard_idle_ms;
} um_pad_policy_t;

#define UM_PAD_RANDOM_MAX    255  /* the random policy's default maximum */
#define UM_SESS_GUARD_MIN    1024 /* guarded records are at least this big on the wire */
#define UM_SESS_GUARD_SPREAD 1024 /* ... plus up to this much */

typedef struct {
    size_t tx_max;            /* queued + unacknowledged plaintext bound; 0 = 4 MiB */
    size_t rx_max;            /* received, not yet read plaintext bound; 0 = 1 MiB */
    uint64_t rekey_bytes;     /* per direction and key; 0 = 1 GiB */
    uint64_t rekey_ms;        /* per direction and key; 0 = 10 minutes */
    uint64_t ctr_limit;       /* nonce counter limit; 0 = UM_REC_CTR_LIMIT (tests) */
    um_pad_policy_t pad;      /* default: none */
    uint64_t (*now_ms)(void); /* monotonic clock; NULL = um_now_ms (tests) */
} um_sess_cfg_t;

enum {
    UM_SESS_EV_ESTABLISHED = 1u << 0,
    UM_SESS_EV_REKEY_TX = 1u << 1,
    UM_SESS_EV_REKEY_RX = 1u << 2,
    UM_SESS_EV_ERROR = 1u << 3,
    UM_SESS_EV_ACKED = 1u << 4,
    UM_SESS_EV_READABLE = 1u << 5,
};

/* Record body types. */
enum { UM_REC_T_DATA = 1, UM_REC_T_ACK = 2, UM_REC_T_REKEY = 3 };

typedef struct um_sess um_sess_t;

typedef struct {
    uint64_t tx_acked;           /* peer has everything below this offset */
    uint64_t tx_sent;            /* sealed into records up to here (since the last resumption) */
    uint64_t tx_high;            /* the most ever sealed */
    uint64_t tx_queued;          /* accepted from the writer up to here */
    uint64_t rx_next;            /* received (and delivered to the read queue) up to here */
    uint32_t tx_epoch, rx_epoch; /* key ratchets so far */
} um_sess_offsets_t;

/* NULL on bad arguments or ENOMEM. cfg may be NULL (defaults). */
um_sess_t *um_sess_new(const um_sess_keys_t *keys, const um_sess_cfg_t *cfg);
void um_sess_free(um_sess_t *s); /* NULL is a no-op */

/* Queues plaintext; returns how many bytes were accepted (> 0), UM_ENOSPC
 * when none fit (backpressure: wait for UM_SESS_EV_ACKED), or the session's
 * fatal error. */
int um_sess_write(um_sess_t *s, const uint8_t *p, size_t n);
/* Consumes wire bytes; *consumed < n means the read queue is full (stop
 * reading the transport until um_sess_read makes room). Returns 0 or a fatal
 * error (UM_EAUTH, UM_EPROTO, UM_ERANGE): the session is then dead. */
int um_sess_feed(um_sess_t *s, const uint8_t *wire, size_t n, size_t *consumed);
/* Copies up to cap bytes of received plaintext out. */
size_t um_sess_read(um_sess_t *s, uint8_t *out, size_t cap);
size_t um_sess_readable(const um_sess_t *s);
/* Zero-copy read: a borrowed view of all received plaintext (valid until the
 * next call on s), then consume what was used. */
size_t um_sess_peek(const um_sess_t *s, const uint8_t **p);
void um_sess_consume(um_sess_t *s, size_t n);
/* Zero-copy write: room for up to `want` bytes at the tail of the send queue
 * (borrowed until the next call on s; *room bytes, NULL when full), then
 * commit what was written. */
uint8_t *um_sess_write_reserve(um_sess_t *s, size_t want, size_t *room);
void um_sess_write_commit(um_sess_t *s, size_t n);
/* Produces wire bytes (whole records) into out; *outn == 0 when there is
 * nothing to send. cap should be >= UM_REC_WIRE_MAX. */
int um_sess_pull(um_sess_t *s, uint8_t *out, size_t cap, size_t *outn);
/* The same, with at most `limit` wire bytes in all (a connection's budget):
 * DATA records shrink to fit; nothing is produced when less than the
 * smallest DATA record (UM_SESS_RECORD_MIN bytes) is left. */
#define UM_SESS_RECORD_MIN (UM_REC_OVERHEAD + 20)
int um_sess_pull_limit(um_sess_t *s, uint8_t *out, size_t cap, size_t limit, size_t *outn);
bool um_sess_want_pull(const um_sess_t *s);
/* Seals one record of exactly wire_len bytes that carries no data (an ACK,
 * zero-padded): transports use it to give their first flights the sizes of
 * what they imitate (PROTOCOL.md 4.2). wire_len in [UM_SESS_FILLER_MIN,
 * UM_REC_WIRE_MAX]; UM_EINVAL outside, UM_ENOSPC when cap < wire_len. */
#define UM_SESS_FILLER_MIN (UM_REC_OVERHEAD + 9)
int um_sess_pull_filler(um_sess_t *s, size_t wire_len, uint8_t *out, size_t cap, size_t *outn);
/* Returns and clears the pending UM_SESS_EV_* bits. */
unsigned um_sess_events(um_sess_t *s);
int um_sess_error(const um_sess_t *s);
void um_sess_set_padding(um_sess_t *s, const um_pad_policy_t *pad);
/* Guards the next `bytes` of data (at least), as a burst would be, when the
 * policy has a burst guard (guard_bytes > 0): the tunnel calls it when a
 * stream opens. */
void um_sess_guard(um_sess_t *s, uint32_t bytes);
const uint8_t *um_sess_id(const um_sess_t *s); /* UM_SID_LEN bytes, borrowed */
int um_sess_alg(const um_sess_t *s);
void um_sess_offsets(const um_sess_t *s, um_sess_offsets_t *o);
/* The bound on queued + unacknowledged plaintext (the resend buffer), and a
 * new one (never below what is queued now; 0 is ignored): the tunnel sizes
 * it from the measured bandwidth-delay product. */
size_t um_sess_tx_max(const um_sess_t *s);
void um_sess_set_tx_max(um_sess_t *s, size_t max);
/* Resumption (PROTOCOL.md 3.6, 4.4): install the keys of a fresh handshake
 * that named this session and resend from peer_rx (the peer's received
 * offset, at most tx_high: um_sess_resumable; one below tx_acked means
 * tx_acked, as the peer may have written it before acknowledging more). A
 * partial record of the old connection is dropped; what arrives under the
 * old keys after this fails to open, so the caller stops reading the old
 * connection first. */
int um_sess_resume(um_sess_t *s, const um_sess_keys_t *keys, uint64_t peer_rx);
bool um_sess_resumable(const um_sess_t *s, uint64_t peer_rx);
/* The number of the client's next move of this session (1, 2, ...): each
 * resuming handshake carries a new one (PROTOCOL.md 3.6). */
uint32_t um_sess_take_move(um_sess_t *s);

#endif
