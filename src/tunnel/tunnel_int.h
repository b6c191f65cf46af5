/* Private to src/tunnel/: the structures the tunnel core (tunnel.c), the
 * streams seen as um_conn_t (conn.c) and the hub (hub.c) share, and the
 * functions one of them calls in another. Nothing outside src/tunnel/
 * includes this; tunnel.h is the interface. */
#ifndef UM_TUNNEL_TUNNEL_INT_H
#define UM_TUNNEL_TUNNEL_INT_H

#include "tunnel/tunnel.h"
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define SCRATCH_CAP (64u * 1024u)
/* Bytes after a stream opens that go in guarded records, when the
 * transport's padding policy has a guard (PROTOCOL.md 4.2). */
#define OPEN_GUARD  (8u * 1024u)
#define OUT_CAP     (64u * 1024u + UM_REC_WIRE_MAX)
#define MUX_OUT_CAP (64u * 1024u)
#define TCP_HIGH    (256u << 10) /* stop sealing records above this many queued bytes */
#define TCP_WQ_MAX  (512u << 10)
#ifndef RD_ITER_MAX
#define RD_ITER_MAX (256u << 10) /* carrier bytes read per loop turn (on_car_read) */
#endif
#define PEND_MAX       (16u << 20) /* hard bound on bytes a stream holds above the mux */
#define DELIVER_BUDGET (256u * 1024u)
#define DELIVER_CHUNK  (64u * 1024u) /* most bytes one on_data hands over */
#define TICK_MS        500

enum { C_WAITING, C_OPENING, C_OPEN, C_DEAD };

/* A mux stream seen as a um_conn_t. Lifetime: one reference for the user
 * (dropped by close()), one per callback in progress, one while the tunnel
 * lists it (the mux holds the pointer as the stream's user pointer, and a
 * stream's last event carries it). Freed when the last one goes. */
struct tconn {
    um_conn_t base; /* first: a tconn is a um_conn_t */
    um_tunnel_t *t; /* NULL while waiting, or once the tunnel is gone */
    um_hub_t *hub;
    uint32_t id;
    int state;
    int refs;
    const um_conn_cbs_t *cbs;
    void *arg;
    um_addr_t dst;
    um_buf_t pend; /* written, not yet taken by the mux (early data while waiting) */
    uint64_t deadline_ms;
    bool reading, closed, listed, shut_wanted, shut_sent, eof_delivered, above_high, ready;
    bool mux_gone;               /* the mux forgot the stream (final read) */
    bool last_pending;           /* the mux ended it; its last event is still queued */
    struct tconn *lprev, *lnext; /* the tunnel's streams */
    struct tconn *wnext;         /* hub waiting list, then hub failed list */
    struct tconn *rnext;         /* tunnel ready list */
    struct tconn *hinext;        /* tunnel list of streams above high water */
};

struct tassoc {
    um_assoc_t base; /* first */
    um_tunnel_t *t;
    uint32_t id;
    um_assoc_recv_cb cb;
    void *arg;
    struct tassoc *next;
};

struct um_tunnel {
    uv_loop_t *loop;
    um_sess_t *sess;
    um_carrier_t *car; /* the transport's connection (owned) */
    um_mux_t *mux;
    uv_idle_t idle;
    uv_timer_t timer;
    uv_timer_t jtimer; /* timing: the held flush's release */
    uv_timer_t ftimer; /* timing: the filler over a silence */
    int handles;       /* open libuv handles; freed at zero once down */
    const um_tunnel_cbs_t *cbs;
    void *ud;
    um_hub_t *hub;       /* the hub whose current tunnel this is, if any */
    struct tconn *conns; /* every listed stream */
    size_t n_conns;
    int down_err;
    struct tconn *ready;
    struct tconn *high; /* streams waiting for their drain signal */
    struct tassoc *assocs;
    uint8_t *out;
    uint8_t *hold; /* TCP bytes the session could not take yet */
    size_t hold_len;
    int fatal;
    bool down, idle_on, graceful, goaway_in, in_pump, finishing;
    int goaway_code_in; /* mgmt: the code of the peer's GOAWAY (-1: none) */
    uint64_t drain_deadline;
    um_tunnel_stats_t st;
    um_tunnel_timing_t tm;
    uint64_t last_tx_ms; /* when a record last went to the carrier */
    /* Resumption (tunnel.h): a carrier that breaks detaches (car NULL) and
     * the owner brings the next one (um_tunnel_attach). */
    bool resumable;
    bool lost_counted;   /* st.streams_failed was counted when the connection ended */
    uint32_t stall_ms;   /* a carrier silent this long while we wait for an ack is dead */
    uint64_t last_rx_ms; /* when the current carrier last delivered bytes */
    uint64_t car_bytes;  /* wire bytes both ways on the current carrier */
    uint64_t car_budget; /* the most it may carry (0: no bound) */
    bool budget_hit;     /* it did: nothing more is sent on it */
    uint64_t car_soft;   /* on_budget(spent = false) once car_bytes reaches this (0: never) */
    bool soft_told;
    bool note_budget;     /* on_budget is owed (told from the idle handle) */
    int note_detached;    /* on_detached is owed, with this error (0: none) */
    uint32_t idle_gap_ms; /* the silence that earns the next filler */
    bool jit_armed, jit_go;
    size_t rd_iter;       /* carrier bytes read since the last idle turn */
    size_t tx_ceiling;    /* the session's configured resend bound */
    uint64_t bdp_t0;      /* size_resend: when the last tick measured */
    uint64_t bdp_acked0;  /* ... and the acknowledged offset then */
    uint64_t rtt_probe_t; /* ack clock: when tx_sent was rtt_probe_off (0: none out) */
    uint64_t rtt_probe_off;
    uint64_t rtt_min; /* least ack-clock RTT this tick, ms (UINT64_MAX: none) */
    bool rd_paused;   /* reading paused for the rest of this loop turn */

    /* The carrier socket's receive buffer (size_rcvq) */
    uint64_t rq_t0;     /* size_rcvq: when the last tick measured (0: not yet) */
    uint64_t rq_bytes0; /* ... and the socket's bytes received then */
    size_t rq_buf;      /* the receive buffer set on the carrier's socket (0: none) */
};

struct um_hub {
    uv_loop_t *loop;
    um_tunnel_t *t;
    uv_timer_t timer;
    bool timer_on;
    struct tconn *wait_head, *wait_tail;
    struct tconn *failed; /* opens that could not start: told on the next tick */
    size_t n_wait;
    uint32_t wait_ms, max_waiting;
    void (*wait_cb)(void *ud);
    void *wait_ud;
    bool wait_signal; /* an open started waiting since the last tick */
};

void tn_die(um_tunnel_t *t, int err);
void tn_finish(um_tunnel_t *t);
void tn_schedule(um_tunnel_t *t);
int tn_start_open(um_tunnel_t *t, struct tconn *c);
void *tn_t_calloc(size_t n, size_t size);
extern const um_assoc_ops_t tn_assoc_ops;
void tn_conn_fail(um_tunnel_t *t, struct tconn *c, int was_opening, int result, int err);
void tn_conn_gone(um_tunnel_t *t, struct tconn *c);
struct tconn *tn_conn_new(const um_conn_cbs_t *cbs, void *arg);
size_t tn_conn_queued(struct tconn *c);
void tn_conn_unref(struct tconn *c);
void tn_deliver(um_tunnel_t *t, struct tconn *c);
void tn_flush_pend(um_tunnel_t *t, struct tconn *c);
void tn_list_add(um_tunnel_t *t, struct tconn *c);
struct tconn *tn_lookup(const um_tunnel_t *t, const um_mux_event_t *ev);
void tn_mark_ready(um_tunnel_t *t, struct tconn *c);

/* tick.c: the path's measurements (the pump and the tick call them) */
void tn_ack_clock(um_tunnel_t *t);
void tn_size_resend(um_tunnel_t *t, uint64_t now);
void tn_size_rcvq(um_tunnel_t *t, uint64_t now);

#endif
