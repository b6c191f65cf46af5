/* um_mux_t: many TCP-like streams and UDP-like datagram associations over
 * one reliable, ordered byte pipe (the session). Sans-I/O: bytes from the
 * peer go in with um_mux_feed(), bytes for the peer come out of
 * um_mux_pull(), time comes in with um_mux_tick(), and everything that
 * happened comes out as events from um_mux_poll(). No callback is ever
 * called, so any um_mux_* function may be called while handling an event.
 *
 * Streams and associations are named by id (client odd, server even), never
 * by pointer. Wire format: docs/PROTOCOL.md section 6. Design notes:
 * docs/internals/mux.md.
 *
 * Ownership: um_mux_new() returns a mux the caller frees with um_mux_free().
 * Every buffer passed in is borrowed for the duration of the call and copied
 * when kept. Event payloads (um_mux_event_t.data) are owned by the mux and
 * stay valid until the next um_mux_poll() or um_mux_free(). */
#ifndef UM_MUX_MUX_H
#define UM_MUX_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mux/budget.h"
#include "mux/frame.h"
#include "util/addr.h"

typedef enum { UM_MUX_CLIENT = 1, UM_MUX_SERVER = 2 } um_mux_role_t;

typedef struct {
    uint32_t max_streams;        /* live streams, both directions together */
    uint32_t max_pending_opens;  /* peer opens not yet answered by um_mux_stream_accept */
    uint32_t stream_window_init; /* receive window granted per stream (>= 64 KiB) */
    uint32_t stream_window_max;  /* auto-tuning ceiling per stream */
    uint32_t session_window_init;
    uint32_t session_window_max;
    uint32_t send_buf_max;     /* bytes um_mux_stream_write queues per stream */
    uint32_t record_size;      /* most bytes one um_mux_pull produces */
    uint32_t max_frame;        /* largest payload this side sends (<= 16384) */
    uint32_t quantum;          /* deficit round-robin quantum, bytes */
    uint32_t young_bytes;      /* streams that sent less go first (0: off) */
    uint32_t bulk_queue;       /* tx_full past this many queued once not young (0: off) */
    uint32_t max_assocs;       /* datagram associations */
    uint32_t dgram_queue_max;  /* outgoing datagram bytes queued */
    uint32_t dgram_rx_max;     /* received datagram bytes waiting in events */
    uint32_t ping_interval_ms; /* 0: no pings */
    uint32_t ping_timeout_ms;  /* nothing received for this long: dead. 0: never */
    uint32_t control_max;      /* bytes of queued control frames (PONG, RST, ...) */
    /* A stream whose bytes wait this long without moving (received, not
     * read; or queued with no window from the peer) is reset. 0: never. */
    uint32_t stream_timeout_ms;
    /* The memory account the mux charges (NULL: none). Borrowed; the mux
     * takes a reference for its lifetime. Receive credit is withheld (and
     * windows stop growing) while the account is over its share, peer opens
     * are refused with RST 0x07, and tx_full tells writers to stop. */
    um_memacct_t *mem;
    /* Bytes queued to send over all streams together (um_mux_stream_write,
     * not yet pulled) beyond which every stream with bytes queued reports
     * tx_full, so 1000 busy streams hold about this much between them
     * instead of 1000 send buffers. 0: no bound. */
    uint32_t send_total_max;
} um_mux_config_t;

/* Defaults: 1024 streams, 128 pending opens, windows 256 KiB..16 MiB per
 * stream and 1..64 MiB per session, 384 KiB send buffer per stream and
 * 1 MiB over all streams, 16 KiB records and
 * frames, 64 KiB quantum, 256 associations, 10 s ping, 30 s timeout, 60 s
 * stream progress timeout. */
/* A stream is young until it has sent young_bytes (default 256 KiB) of
 * payload: young streams are served before the others, round-robin among
 * themselves, so a small response or request beside a bulk transfer leaves
 * at once. While another stream is open, a stream past its young bytes
 * reports tx_full once it has more than bulk_queue (default 64 KiB) queued:
 * its writer reads its source in small bites, so the loop turns of a bulk
 * transfer stay short; a stream alone on the session keeps the larger bites
 * (fewer turns per byte) (docs/internals/mux.md, Scheduler). */
void um_mux_config_default(um_mux_config_t *c);

typedef enum {
    UM_MUX_EV_OPENED = 1,  /* peer opened stream `id` to `addr`; answer with um_mux_stream_accept */
    UM_MUX_EV_OPEN_RESULT, /* our stream `id` got `code` (um_mux_result_t); not 0: stream gone */
    UM_MUX_EV_READABLE,    /* stream `id` has bytes (or end of stream) to read */
    UM_MUX_EV_WRITABLE,    /* stream `id` has send-buffer space again after a short write */
    UM_MUX_EV_FIN,         /* peer half-closed `id`; reads return UM_EPIPE once drained */
    UM_MUX_EV_RESET,       /* stream `id` was reset (`code` um_mux_rst_t); stream gone */
    UM_MUX_EV_DGRAM,       /* datagram on association `id` from/to `addr`: data, len */
    UM_MUX_EV_ASSOC_CLOSED, /* peer closed association `id` */
    UM_MUX_EV_PONG,         /* keepalive answer; `value` = RTT sample in ms */
    UM_MUX_EV_GOAWAY,       /* peer goes away; `value` = last stream id it serves, `code` */
    UM_MUX_EV_ERROR,        /* the session is dead: `code` = -UM_E* (UM_EPROTO, UM_ETIMEDOUT..) */
} um_mux_event_type_t;

typedef struct {
    um_mux_event_type_t type;
    uint32_t id;
    int code;
    uint32_t value;
    bool fin;            /* OPENED: the opener already half-closed (OPEN carried FIN) */
    um_addr_t addr;      /* OPENED, DGRAM */
    const uint8_t *data; /* DGRAM payload, owned by the mux until the next poll */
    size_t len;
    /* Stream events: the stream's user pointer (um_mux_stream_set_ud) as it
     * is when the event is polled, NULL once the stream is gone; except for
     * `last` events (RESET, a failed OPEN_RESULT), after which the mux has
     * forgotten the stream: they carry the pointer it had when it ended. */
    void *ud;
    bool last;
} um_mux_event_t;

typedef struct {
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;     /* wire bytes */
    uint64_t payload_in, payload_out; /* stream and datagram payload bytes */
    uint64_t frames_ignored;          /* ignorable unknown types, stray PONGs, late frames */
    uint64_t dgram_dropped_in, dgram_dropped_out;
    uint64_t pongs_dropped;
    uint64_t opens_refused;
    uint64_t streams_stalled;   /* reset by the stream progress timeout */
    uint64_t opens_over_budget; /* peer opens refused: memory account full */
    uint64_t grants_withheld;   /* window grants delayed: memory account full */
    uint64_t opens_early_in;    /* peer OPENs that carried early data (0-RTT) */
} um_mux_stats_t;

typedef struct {
    size_t rx_buffered; /* received, not yet read */
    size_t tx_buffered; /* written, not yet sent */
    uint32_t rx_window; /* current receive window size (auto-tuned) */
    uint64_t tx_credit; /* bytes the peer currently lets us send */
    /* Stop writing: more is queued than the peer's stream window takes (plus
     * a little slack), or the memory account is over its share, or a
     * stream past its young bytes has more than bulk_queue queued, or the
     * streams together queue more than send_total_max. */
    bool tx_full;
    bool fin_received, fin_sent, local_opened, established;
    size_t rx_storage, tx_storage; /* bytes of storage the two queues hold */
} um_mux_stream_info_t;

typedef struct um_mux um_mux_t;

/* NULL on allocation failure or an invalid config (cfg may be NULL: defaults). */
um_mux_t *um_mux_new(um_mux_role_t role, const um_mux_config_t *cfg);
void um_mux_free(um_mux_t *m);

/* Bytes from the peer, any chunking. 0, or the fatal error that ended the
 * session (UM_EPROTO, UM_ELIMIT, UM_ENOMEM): pull once more to get the
 * GOAWAY, then close the pipe. */
int um_mux_feed(um_mux_t *m, const uint8_t *p, size_t n);
/* The pipe closed: UM_EPROTO when it cut a frame in half, else UM_EPIPE.
 * Either way the session is over (EV_ERROR queued). */
int um_mux_feed_eof(um_mux_t *m);
/* Writes up to min(cap, record_size) bytes of frames; returns how many (0:
 * nothing to send). Control frames first, then streams and datagrams by
 * deficit round-robin. */
size_t um_mux_pull(um_mux_t *m, uint8_t *out, size_t cap);
bool um_mux_want_pull(const um_mux_t *m);
/* True when the next pull carries a new stream's OPEN (a stream we opened
 * whose OPEN has not left yet: the young ring serves it before the bulk
 * one). The tunnel sends it before it hands the turn's received bulk to the
 * streams. */
bool um_mux_want_pull_urgent(const um_mux_t *m);
/* A new connection under the session: the keepalive clock starts again now
 * and a ping goes at the next tick. */
void um_mux_touch(um_mux_t *m, uint64_t now_ms);
/* Time in (monotonic ms; the mux has no clock of its own): sends pings,
 * detects a silent peer (UM_ETIMEDOUT: the session is over, EV_ERROR queued),
 * returns idle buffers' storage. Returns 0 or the session's fatal error. */
int um_mux_tick(um_mux_t *m, uint64_t now_ms);
/* 1 and *ev filled, or 0 when no event is pending. */
int um_mux_poll(um_mux_t *m, um_mux_event_t *ev);

/* Streams. Open sends nothing by itself: the OPEN goes out with the first
 * pull, carrying whatever was written before it (0-RTT). */
int um_mux_stream_open(um_mux_t *m, const um_addr_t *dest, uint32_t *id);
/* Answers a peer's open with UM_MUX_OK (stream established) or an error code
 * (stream gone). */
int um_mux_stream_accept(um_mux_t *m, uint32_t id, uint8_t code);
/* Queues up to n bytes; *accepted may be short (EV_WRITABLE follows). */
int um_mux_stream_write(um_mux_t *m, uint32_t id, const void *p, size_t n, size_t *accepted);
/* Reads up to cap bytes, returning credit to the peer. 0 with *got > 0;
 * UM_EAGAIN nothing yet; UM_EPIPE end of stream. */
int um_mux_stream_read(um_mux_t *m, uint32_t id, void *out, size_t cap, size_t *got);
/* Zero-copy read: *p borrowed until the next call on this mux. */
int um_mux_stream_peek(um_mux_t *m, uint32_t id, const uint8_t **p, size_t *n);
int um_mux_stream_consume(um_mux_t *m, uint32_t id, size_t n);
/* Half-close: FIN after the bytes already written. */
int um_mux_stream_shutdown(um_mux_t *m, uint32_t id);
/* Abort: RST to the peer, buffered bytes dropped, id forgotten. */
int um_mux_stream_reset(um_mux_t *m, uint32_t id, uint8_t code);
int um_mux_stream_info(const um_mux_t *m, uint32_t id, um_mux_stream_info_t *info);
/* Streams (and the datagram queue) with something to send now or once
 * the peer grants window: those the send scheduler goes round, on the young
 * ring and the bulk ring together. */
size_t um_mux_sending_count(const um_mux_t *m);
/* The application's pointer for stream id (NULL until set, and for an id
 * that names no live stream). Forgotten with the stream: after EV_RESET,
 * a refused OPEN_RESULT, um_mux_stream_reset or the final read. */
void um_mux_stream_set_ud(um_mux_t *m, uint32_t id, void *ud);
void *um_mux_stream_get_ud(const um_mux_t *m, uint32_t id);
size_t um_mux_stream_count(const um_mux_t *m);

/* Datagram associations. */
int um_mux_assoc_open(um_mux_t *m, uint32_t *id);
int um_mux_assoc_close(um_mux_t *m, uint32_t id);
/* UM_ENOSPC (datagram dropped) when the outgoing queue is full, UM_EPIPE when
 * the association is closed, UM_EMSGSIZE when it does not fit one frame. */
int um_mux_dgram_send(um_mux_t *m, uint32_t id, const um_addr_t *addr, const void *p, size_t n);

/* Graceful end: the peer may finish its open streams, new ones are refused. */
int um_mux_goaway(um_mux_t *m, uint8_t code);
/* True when a GOAWAY went either way, no stream is left and nothing is queued. */
bool um_mux_done(const um_mux_t *m);
int um_mux_error(const um_mux_t *m); /* 0 or the fatal error */

uint32_t um_mux_rtt_ms(const um_mux_t *m); /* smoothed RTT, 0 before the first PONG */
void um_mux_get_stats(const um_mux_t *m, um_mux_stats_t *st);

#endif
