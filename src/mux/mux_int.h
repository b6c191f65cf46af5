/* Private to src/mux: the multiplexer state shared by mux.c (lifecycle, events,
 * errors, timers), stream.c (stream table, flow control, stream API), send.c
 * (the scheduler behind um_mux_pull), recv.c (um_mux_feed and the frame
 * handlers) and dgram.c (datagram associations). See docs/internals/mux.md. */
#ifndef UM_MUX_INT_H
#define UM_MUX_INT_H

#include "mux/mux.h"

#include "util/buf.h"
#include "util/log.h"

#define DEFAULT_RTT_MS 100 /* for window auto-tuning before the first PONG */
#define HASH_INIT      16
#define CTL_HEADROOM   65536 /* control bytes our own API may queue past control_max */
#define TX_SLACK       16384 /* queued beyond the peer's window before tx_full */

enum {
    S_LOCAL = 1u << 0,        /* we opened it */
    S_OPEN_PENDING = 1u << 1, /* local: OPEN not yet sent */
    S_ESTABLISHED = 1u << 2,  /* local: OPEN_RESULT ok received; peer: accepted */
    S_FIN_QUEUED = 1u << 3,   /* app shut down its side */
    S_FIN_SENT = 1u << 4,
    S_FIN_RECV = 1u << 5,
    S_EOF_READ = 1u << 6, /* app saw UM_EPIPE from a read */
    S_EV_READABLE = 1u << 7,
    S_EV_WRITABLE = 1u << 8,
    S_WANT_WRITABLE = 1u << 9,
    S_ACTIVE = 1u << 10,
    S_IN_WU = 1u << 11,
    S_DGRAM = 1u << 12,    /* the datagram queue's place in the round-robin */
    S_WITHHELD = 1u << 13, /* a window grant is due but the memory account is full */
    S_YOUNG = 1u << 14,    /* on the young ring (send.c), not the bulk one */
};

typedef struct stream {
    uint32_t id;
    uint32_t flags;
    uint32_t tx_credit;   /* bytes the peer lets us send */
    uint32_t rx_credit;   /* bytes the peer may still send (granted, not received) */
    uint32_t rx_win;      /* receive window size, auto-tuned */
    uint32_t rx_unacked;  /* read by the app, not yet granted again */
    uint32_t rx_announce; /* granted, WINDOW_UPDATE not yet sent */
    uint32_t deficit;     /* DRR */
    uint32_t charged;     /* bytes charged to the memory account (stream_cost) */
    uint64_t rx_epoch;    /* time of the last grant, +1 (0 = never) */
    uint64_t progress;    /* last tick at which the stream moved or had nothing waiting */
    uint64_t sent;        /* payload bytes sent (OPEN early data and DATA) */
    void *ud;             /* the application's pointer (um_mux_stream_set_ud) */
    struct stream *hnext;
    struct stream *anext, *aprev; /* active (has something to send) ring */
    struct stream *wnext, *wprev; /* needs a WINDOW_UPDATE */
    um_addr_t *dest;              /* local, until the OPEN is sent */
    um_buf_t rx, tx;
} stream_t;

typedef struct evnode {
    struct evnode *next;
    um_mux_event_t ev;
    uint8_t data[];
} evnode_t;

struct um_mux {
    um_mux_config_t cfg;
    um_mux_role_t role;
    int err;
    uint64_t now;

    stream_t **buckets;
    size_t nbuckets, nstreams, npending;
    uint32_t next_id;     /* our next stream id */
    uint32_t peer_max_id; /* highest stream id the peer opened */

    size_t tx_queued; /* bytes in every stream's tx (not the datagram queue) */

    /* Streams with something to send, on two DRR rings: the young ring
     * (streams that have sent less than cfg.young_bytes) is served first,
     * then the bulk ring (send.c). */
    stream_t *active; /* head of the bulk ring (and the datagram queue) */
    size_t nactive;
    stream_t *young; /* head of the young ring */
    size_t nyoung;
    stream_t *wu_head;
    stream_t dg; /* datagram queue: dg.tx holds encoded DATAGRAM frames */

    /* session flow control */
    uint32_t tx_credit, rx_credit, rx_win, rx_unacked, rx_announce;
    uint64_t rx_epoch;

    um_buf_t ctl; /* encoded control frames, sent first */

    /* one frame too big for the record it started in: sent over several pulls */
    uint8_t *stage;
    size_t stage_off, stage_len;

    /* receive reassembly of one frame cut by the pipe */
    uint8_t *part;
    size_t part_len, part_need;

    /* events */
    evnode_t *ev_head, *ev_tail, *ev_last;
    size_t dg_rx_bytes;

    /* associations */
    uint32_t *assoc;
    size_t nassoc;
    uint32_t next_assoc, peer_assoc_max;

    /* keepalive */
    uint64_t last_rx, last_ping;
    bool ping_out, has_rtt, started;
    uint32_t ping_id;
    uint32_t srtt;

    bool goaway_sent, goaway_recv;
    uint32_t goaway_last_sent, goaway_last_recv;

    um_mux_stats_t st;
    um_ratelimit_t rl;
};

/* mux.c */
bool mux_own_id(const um_mux_t *m, uint32_t id);
bool mux_id_seen(const um_mux_t *m, uint32_t id);
uint32_t mux_min32(uint64_t a, uint64_t b);
void mux_dbg(um_mux_t *m, const char *what, uint32_t id);
um_mux_event_t *mux_ev_push(um_mux_t *m, um_mux_event_type_t type, uint32_t id, int code,
                            size_t datalen);
int mux_ctl_frame(um_mux_t *m, const um_mux_frame_t *f, bool from_peer);
int mux_fail(um_mux_t *m, int err, uint8_t gcode, const char *why);
int mux_proto(um_mux_t *m, const char *why);
int mux_flow_err(um_mux_t *m);
int mux_nomem(um_mux_t *m);
/* The last event of a stream the mux frees right after (RESET, a failed
 * OPEN_RESULT): it carries the stream's user pointer, which nothing can
 * look up any more. */
um_mux_event_t *mux_ev_push_last(um_mux_t *m, const void *sp, um_mux_event_type_t type, int code);

/* stream.c */
stream_t *mux_find(const um_mux_t *m, uint32_t id);
int mux_table_grow(um_mux_t *m);
void mux_active_add(um_mux_t *m, stream_t *s);
void mux_active_remove(um_mux_t *m, stream_t *s);
void mux_active_demote(um_mux_t *m, stream_t *s);
void mux_wu_add(um_mux_t *m, stream_t *s);
void mux_wu_remove(um_mux_t *m, stream_t *s);
void mux_acct_sync(um_mux_t *m, stream_t *s);
bool mux_acct_fits(const um_mux_t *m, uint64_t n);
stream_t *mux_stream_new(um_mux_t *m, uint32_t id, uint32_t flags);
void mux_stream_free(um_mux_t *m, stream_t *s);
void mux_session_consumed(um_mux_t *m, size_t n);
void mux_stream_grant(um_mux_t *m, stream_t *s);
void mux_maybe_free(um_mux_t *m, stream_t *s);
bool mux_stream_can_send(const stream_t *s);
bool mux_addr_ok(const um_addr_t *a);

/* dgram.c */
int mux_on_datagram(um_mux_t *m, const um_mux_frame_t *f);
int mux_on_assoc_close(um_mux_t *m, const um_mux_frame_t *f);

#endif
