/* Tunnel glue: session + mux over one TCP connection, and mux streams as
 * um_conn_t. See tunnel.h for the picture and the rules. */
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
#define OPEN_GUARD     (8u * 1024u)
#define OUT_CAP        (64u * 1024u + UM_REC_WIRE_MAX)
#define MUX_OUT_CAP    (64u * 1024u)
#define TCP_HIGH       (1u << 20) /* stop sealing records above this many queued bytes */
#define TCP_WQ_MAX     (2u << 20)
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

static void schedule(um_tunnel_t *t);
static void die(um_tunnel_t *t, int err);
static const um_conn_ops_t conn_ops;
static const um_assoc_ops_t assoc_ops;

/* Allocation failure on demand, for the unit tests (um_tunnel_test_fail_alloc). */
static bool fail_alloc;

void um_tunnel_test_fail_alloc(bool on)
{
    fail_alloc = on;
}

static void *t_calloc(size_t n, size_t size)
{
    return fail_alloc ? NULL : calloc(n, size);
}

/* ---- result codes ---- */

int um_tunnel_result_to_conn(int mux_code)
{
    switch (mux_code) {
    case UM_MUX_OK: return UM_CONN_OK;
    case UM_MUX_ERR_NOT_ALLOWED: return UM_CONN_NOT_ALLOWED;
    case UM_MUX_ERR_NET_UNREACH: return UM_CONN_NET_UNREACHABLE;
    case UM_MUX_ERR_HOST_UNREACH: return UM_CONN_HOST_UNREACHABLE;
    case UM_MUX_ERR_REFUSED: return UM_CONN_REFUSED;
    case UM_MUX_ERR_TIMEDOUT: return UM_CONN_TIMED_OUT;
    case UM_MUX_ERR_HOST_NOT_FOUND: return UM_CONN_HOST_NOT_FOUND;
    default: return UM_CONN_GENERAL_FAILURE;
    }
}

uint8_t um_tunnel_result_to_mux(int r)
{
    switch (r) {
    case UM_CONN_OK: return UM_MUX_OK;
    case UM_CONN_NOT_ALLOWED: return UM_MUX_ERR_NOT_ALLOWED;
    case UM_CONN_NET_UNREACHABLE: return UM_MUX_ERR_NET_UNREACH;
    case UM_CONN_HOST_UNREACHABLE: return UM_MUX_ERR_HOST_UNREACH;
    case UM_CONN_REFUSED: return UM_MUX_ERR_REFUSED;
    case UM_CONN_TIMED_OUT: return UM_MUX_ERR_TIMEDOUT;
    case UM_CONN_HOST_NOT_FOUND: return UM_MUX_ERR_HOST_NOT_FOUND;
    default: return UM_MUX_ERR_GENERAL;
    }
}

/* ---- conn lifetime ---- */

static void conn_unref(struct tconn *c)
{
    if (--c->refs > 0) return;
    um_buf_free(&c->pend);
    free(c);
}

static struct tconn *conn_new(const um_conn_cbs_t *cbs, void *arg)
{
    struct tconn *c = t_calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->base.ops = &conn_ops;
    c->cbs = cbs;
    c->arg = arg;
    c->refs = 1; /* the user's */
    c->reading = true;
    um_buf_init(&c->pend, PEND_MAX);
    return c;
}

/* ---- the tunnel's streams ----
 * No table of its own: the mux keeps each stream's tconn as its user
 * pointer, and events carry it. The list is for die() and the stats. */

static struct tconn *lookup(const um_tunnel_t *t, const um_mux_event_t *ev)
{
    struct tconn *c = ev->ud;
    return c && c->listed && c->t == t && c->id == ev->id ? c : NULL;
}

static void list_add(um_tunnel_t *t, struct tconn *c)
{
    c->lprev = NULL;
    c->lnext = t->conns;
    if (t->conns) t->conns->lprev = c;
    t->conns = c;
    t->n_conns++;
    c->listed = true;
    c->refs++;
    um_mux_stream_set_ud(t->mux, c->id, c);
}

static void list_del(um_tunnel_t *t, struct tconn *c)
{
    if (!c->listed) return;
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        t->conns = c->lnext;
    if (c->lnext) c->lnext->lprev = c->lprev;
    c->lprev = c->lnext = NULL;
    if (t->mux && !c->mux_gone) um_mux_stream_set_ud(t->mux, c->id, NULL);
    /* Drop it from the ready list too. */
    for (struct tconn **pp = &t->ready; *pp; pp = &(*pp)->rnext)
        if (*pp == c) {
            *pp = c->rnext;
            break;
        }
    c->ready = false;
    if (c->above_high) {
        for (struct tconn **pp = &t->high; *pp; pp = &(*pp)->hinext)
            if (*pp == c) {
                *pp = c->hinext;
                break;
            }
        c->above_high = false;
    }
    c->listed = false;
    t->n_conns--;
    conn_unref(c);
}

static void mark_ready(um_tunnel_t *t, struct tconn *c)
{
    if (c->ready || !c->listed) return;
    c->ready = true;
    c->rnext = t->ready;
    t->ready = c;
    schedule(t);
}

/* ---- streams: data towards the user ---- */

/* Bytes written and not yet sent. A stream the mux calls full (the peer's
 * window is closed, or the client's memory share is used up) reports itself
 * above high water, so feeders stop reading their source now rather than
 * queue up to high water; on_drain follows once it can send again. */
static size_t conn_queued(struct tconn *c)
{
    size_t q = um_buf_len(&c->pend);
    um_mux_stream_info_t info;
    if (c->t && c->state == C_OPEN && um_mux_stream_info(c->t->mux, c->id, &info) == 0) {
        q += info.tx_buffered;
        if (info.tx_full && q <= UM_CONN_HIGH_WATER) q = UM_CONN_HIGH_WATER + 1;
    }
    return q;
}

/* Hands received bytes to the user while it reads, within a budget. */
static void deliver(um_tunnel_t *t, struct tconn *c)
{
    size_t budget = DELIVER_BUDGET;
    c->refs++;
    while (!c->closed && c->t == t && c->state == C_OPEN && c->reading && budget > 0) {
        const uint8_t *p;
        size_t n;
        int r = um_mux_stream_peek(t->mux, c->id, &p, &n);
        if (r == UM_EAGAIN) break;
        if (r == UM_EPIPE) {
            /* The final read: the mux may have forgotten the stream. */
            um_mux_stream_info_t in;
            if (um_mux_stream_info(t->mux, c->id, &in) != 0) c->mux_gone = true;
            if (!c->eof_delivered) {
                c->eof_delivered = true;
                if (c->cbs->on_eof) c->cbs->on_eof(c->arg);
            }
            break;
        }
        if (r < 0 || n == 0) break;
        if (n > budget) n = budget;
        if (n > DELIVER_CHUNK) n = DELIVER_CHUNK; /* so a feeder that pauses holds little */
        if (c->cbs->on_data) c->cbs->on_data(c->arg, p, n);
        if (c->t == t && c->listed) um_mux_stream_consume(t->mux, c->id, n);
        budget -= n;
    }
    if (budget == 0 && !c->closed && c->t == t) mark_ready(t, c);
    conn_unref(c);
}

/* Moves bytes the mux refused earlier into it; sends a deferred FIN. */
static void flush_pend(um_tunnel_t *t, struct tconn *c)
{
    if (c->state != C_OPEN || c->t != t) return;
    while (um_buf_len(&c->pend) > 0) {
        const uint8_t *p;
        size_t n = um_buf_peek(&c->pend, &p), acc = 0;
        if (um_mux_stream_write(t->mux, c->id, p, n, &acc) != 0 || acc == 0) break;
        um_buf_consume(&c->pend, acc);
    }
    if (c->shut_wanted && !c->shut_sent && um_buf_len(&c->pend) == 0) {
        c->shut_sent = true;
        um_mux_stream_shutdown(t->mux, c->id);
    }
    schedule(t);
}

/* A stream leaves the tunnel's view (reset, refused, or the user is done
 * with it and it has nothing left to send). */
static void conn_gone(um_tunnel_t *t, struct tconn *c)
{
    c->state = C_DEAD;
    c->t = NULL;
    list_del(t, c); /* may drop the last reference: c is not touched after */
}

static void conn_fail(um_tunnel_t *t, struct tconn *c, int was_opening, int result, int err)
{
    c->refs++;
    conn_gone(t, c);
    if (!c->closed) {
        if (was_opening) {
            if (c->cbs->on_open) c->cbs->on_open(c->arg, result);
        } else if (c->cbs->on_error) {
            c->cbs->on_error(c->arg, err);
        }
    }
    conn_unref(c);
}

/* ---- the pump ---- */

static void handle_event(um_tunnel_t *t, const um_mux_event_t *ev)
{
    struct tconn *c;
    switch (ev->type) {
    case UM_MUX_EV_OPENED:
        if (t->cbs->on_opened)
            t->cbs->on_opened(t, ev->id, &ev->addr, t->ud);
        else
            um_mux_stream_accept(t->mux, ev->id, UM_MUX_ERR_NOT_ALLOWED);
        break;
    case UM_MUX_EV_OPEN_RESULT:
        c = lookup(t, ev);
        if (!c) break;
        if (ev->last) c->mux_gone = true;
        if (ev->code == UM_MUX_OK) {
            c->state = C_OPEN;
            flush_pend(t, c);
            if (!c->closed) {
                c->refs++;
                if (c->cbs->on_open) c->cbs->on_open(c->arg, UM_CONN_OK);
                if (!c->closed && c->t == t) mark_ready(t, c);
                conn_unref(c);
            }
        } else {
            conn_fail(t, c, 1, um_tunnel_result_to_conn(ev->code), 0);
        }
        break;
    case UM_MUX_EV_READABLE:
    case UM_MUX_EV_FIN:
        c = lookup(t, ev);
        if (c) mark_ready(t, c);
        break;
    case UM_MUX_EV_WRITABLE:
        c = lookup(t, ev);
        if (c) flush_pend(t, c);
        break;
    case UM_MUX_EV_RESET:
        c = lookup(t, ev);
        if (!c) break;
        c->mux_gone = true;
        if (c->closed) /* the user closed it while this event was queued */
            conn_gone(t, c);
        else
            conn_fail(t, c, c->state == C_OPENING, UM_CONN_REFUSED, UM_EPIPE);
        break;
    case UM_MUX_EV_DGRAM:
        if (t->cbs->on_dgram) {
            t->cbs->on_dgram(t, ev->id, &ev->addr, ev->data, ev->len, t->ud);
        } else {
            for (struct tassoc *a = t->assocs; a; a = a->next)
                if (a->id == ev->id && a->cb) {
                    a->cb(a->arg, &ev->addr, ev->data, ev->len);
                    break;
                }
        }
        break;
    case UM_MUX_EV_ASSOC_CLOSED:
        if (t->cbs->on_assoc_closed) t->cbs->on_assoc_closed(t, ev->id, t->ud);
        break;
    case UM_MUX_EV_PONG:
        if (t->cbs->on_rtt) t->cbs->on_rtt(t, um_mux_rtt_ms(t->mux), t->ud);
        break;
    case UM_MUX_EV_GOAWAY:
        /* Either way the session is not to be resumed: when its connection
         * ends, the tunnel ends. A CLOSED one is no drain: the connection
         * ends right after it, and on_down says so. */
        t->goaway_in = true;
        if (t->hub && t->hub->t == t) t->hub->t = NULL; /* new opens wait for the next one */
        if (ev->code != UM_MUX_GOAWAY_CLOSED && t->cbs->on_goaway) t->cbs->on_goaway(t, t->ud);
        break;
    case UM_MUX_EV_ERROR:
        if (!t->fatal) t->fatal = ev->code ? ev->code : UM_EPROTO;
        break;
    }
}

/* The drain signal: streams that went above high water hear when they are
 * back at low water. Only the flagged streams are looked at. */
static void check_drain(um_tunnel_t *t)
{
    struct tconn **pp = &t->high;
    while (*pp && !t->down) {
        struct tconn *c = *pp;
        if (c->closed || conn_queued(c) > UM_CONN_LOW_WATER) {
            pp = &c->hinext;
            continue;
        }
        *pp = c->hinext;
        c->above_high = false;
        c->refs++;
        if (c->cbs->on_drain) c->cbs->on_drain(c->arg);
        conn_unref(c);
        pp = &t->high; /* the callback may have changed the list */
    }
}

/* Moves mux frames straight into the session's send queue (no copy between),
 * at most `limit` bytes. Returns how many. */
static size_t fill_session(um_tunnel_t *t, size_t limit)
{
    size_t filled = 0;
    while (filled < limit && um_mux_want_pull(t->mux)) {
        size_t room = 0;
        uint8_t *p = um_sess_write_reserve(t->sess, MUX_OUT_CAP, &room);
        if (!p) break; /* until acknowledgements free room */
        size_t n = um_mux_pull(t->mux, p, room);
        um_sess_write_commit(t->sess, n);
        if (!n) break;
        filled += n;
    }
    return filled;
}

/* ---- the timing profile (tunnel.h) ---- */

static void on_jitter(uv_timer_t *h);

/* Jitter: true when this flush is held back (its timer releases it). Only a
 * flush that starts a burst is: inside one (a record left less than
 * burst_gap_ms ago, or the carrier still has bytes queued) nothing waits. */
static bool jitter_hold(um_tunnel_t *t)
{
    if (t->tm.profile != UM_TUNNEL_TIMING_JITTER || t->jit_go) return false;
    if (t->jit_armed) return true;
    if (!um_mux_want_pull(t->mux) && !um_sess_want_pull(t->sess)) return false;
    if (!t->car || um_carrier_queued(t->car) > 0) return false;
    if (um_now_ms() - t->last_tx_ms < t->tm.burst_gap_ms) return false;
    uint32_t d = randombytes_uniform(t->tm.delay_max_ms + 1);
    if (d == 0) return false;
    t->jit_armed = true;
    t->st.timing_delays++;
    uv_timer_start(&t->jtimer, on_jitter, d, 0);
    return true;
}

static void pump(um_tunnel_t *t);

static void on_jitter(uv_timer_t *h)
{
    um_tunnel_t *t = h->data;
    t->jit_armed = false;
    if (t->down) return;
    t->jit_go = true; /* this pump's flushes go now */
    pump(t);
    t->jit_go = false;
}

static uint32_t idle_gap(const um_tunnel_timing_t *tm)
{
    return tm->idle_min_ms + randombytes_uniform(tm->idle_max_ms - tm->idle_min_ms + 1);
}

/* Sizes of small HTTP/2 frames as TLS 1.3 record payloads (frame, content
 * type byte, 16-byte tag): SETTINGS ack (9), WINDOW_UPDATE (13), PING (17),
 * PING ack, and a small HEADERS/DATA frame of a few dozen bytes. */
static size_t filler_size(void)
{
    static const uint16_t sizes[] = {26, 30, 34, 34, 34, 30};
    uint32_t i = randombytes_uniform(sizeof(sizes) / sizeof(sizes[0]) + 1);
    size_t n = i < sizeof(sizes) / sizeof(sizes[0]) ? sizes[i] : 40 + randombytes_uniform(60);
    return n < UM_SESS_FILLER_MIN ? UM_SESS_FILLER_MIN : n;
}

/* The silence timer: a filler once this side has written nothing for
 * idle_gap_ms; otherwise it sleeps until that point. */
static void on_filler(uv_timer_t *h)
{
    um_tunnel_t *t = h->data;
    if (t->down) return;
    uint64_t now = um_now_ms(), quiet = now - t->last_tx_ms;
    if (quiet < t->idle_gap_ms) {
        uv_timer_start(&t->ftimer, on_filler, t->idle_gap_ms - quiet, 0);
        return;
    }
    size_t fsize = filler_size();
    if (!t->finishing && !t->fatal && t->car && um_carrier_queued(t->car) == 0 &&
        !um_sess_want_pull(t->sess) && !t->budget_hit &&
        (!t->car_budget || t->car_bytes + fsize <= t->car_budget)) {
        size_t n = 0;
        if (um_sess_pull_filler(t->sess, fsize, t->out, OUT_CAP, &n) == 0 && n &&
            um_carrier_write(t->car, t->out, n) == 0) {
            t->st.bytes_out += n;
            t->car_bytes += n;
            t->st.timing_fillers++;
        }
    }
    t->last_tx_ms = now;
    t->idle_gap_ms = idle_gap(&t->tm);
    uv_timer_start(&t->ftimer, on_filler, t->idle_gap_ms, 0);
}

void um_tunnel_timing_default(um_tunnel_timing_t *tm, int profile)
{
    memset(tm, 0, sizeof(*tm));
    tm->profile = profile;
    tm->delay_max_ms = UM_TUNNEL_JITTER_MAX_MS;
    tm->burst_gap_ms = UM_TUNNEL_JITTER_GAP_MS;
    tm->idle_min_ms = UM_TUNNEL_IDLE_MIN_MS;
    tm->idle_max_ms = UM_TUNNEL_IDLE_MAX_MS;
}

void um_tunnel_set_timing(um_tunnel_t *t, const um_tunnel_timing_t *tm)
{
    if (t->down) return;
    t->tm = *tm;
    if (t->tm.delay_max_ms > 1000) t->tm.delay_max_ms = 1000;
    if (t->tm.idle_min_ms < 1) t->tm.idle_min_ms = 1;
    if (t->tm.idle_max_ms < t->tm.idle_min_ms) t->tm.idle_max_ms = t->tm.idle_min_ms;
    uv_timer_stop(&t->ftimer);
    if (t->tm.profile != UM_TUNNEL_TIMING_JITTER) {
        uv_timer_stop(&t->jtimer);
        t->jit_armed = false;
        schedule(t); /* a held flush goes now */
        return;
    }
    t->idle_gap_ms = idle_gap(&t->tm);
    uv_timer_start(&t->ftimer, on_filler, t->idle_gap_ms, 0);
}

/* mux → session → TCP, in batches: up to 64 KiB of frames become a few
 * records that leave in one write. */
static void detach(um_tunnel_t *t, int err);

/* The owner hears once when the carrier has carried its soft mark. */
static void check_soft(um_tunnel_t *t)
{
    if (t->car_soft && !t->soft_told && t->car_bytes >= t->car_soft) {
        t->soft_told = true;
        t->note_budget = true;
        schedule(t);
    }
}

static void outbound(um_tunnel_t *t)
{
    if (!t->car || t->budget_hit) return; /* detached, or waiting for the next carrier */
    if (jitter_hold(t)) return;           /* on_jitter pumps again */
    for (int round = 0; round < 64 && !t->down && t->car; round++) {
        if (um_carrier_queued(t->car) >= TCP_HIGH) return; /* the drain callback resumes */
        size_t filled = fill_session(t, MUX_OUT_CAP);
        if (!um_sess_want_pull(t->sess)) return;
        size_t outn = 0, limit = OUT_CAP;
        if (t->car_budget) {
            uint64_t left = t->car_budget > t->car_bytes ? t->car_budget - t->car_bytes : 0;
            if (left < limit) limit = (size_t)left;
        }
        int r = um_sess_pull_limit(t->sess, t->out, OUT_CAP, limit, &outn);
        if (r < 0) {
            t->fatal = r;
            return;
        }
        if (!outn && limit < OUT_CAP) {
            /* The carrier's budget is spent: what is left waits for the
             * next one, and the owner hears it (from the idle handle). */
            t->budget_hit = true;
            t->note_budget = true;
            schedule(t);
            return;
        }
        if (outn) {
            r = um_carrier_write(t->car, t->out, outn);
            if (r < 0) {
                if (t->resumable && !t->goaway_in)
                    detach(t, r);
                else
                    t->fatal = r;
                return;
            }
            t->st.bytes_out += outn;
            t->car_bytes += outn;
            check_soft(t);
            if (t->tm.profile != UM_TUNNEL_TIMING_NONE) t->last_tx_ms = um_now_ms();
        }
        if (!outn && !filled) return;
    }
    schedule(t); /* more to do: next loop iteration */
}

static void feed_hold(um_tunnel_t *t)
{
    if (!t->hold_len) return;
    size_t used = 0;
    int r = um_sess_feed(t->sess, t->hold, t->hold_len, &used);
    if (r < 0) {
        t->fatal = r;
        return;
    }
    memmove(t->hold, t->hold + used, t->hold_len - used);
    t->hold_len -= used;
    if (t->hold_len == 0 && !t->finishing && t->car) um_carrier_read_start(t->car);
}

static void pump(um_tunnel_t *t)
{
    if (t->down || t->in_pump) return;
    t->in_pump = true;
    for (int round = 0; round < 8 && !t->down && !t->fatal; round++) {
        bool progress = false;
        /* Plaintext from the session into the mux, without a copy between. */
        for (int i = 0; i < 64; i++) {
            const uint8_t *p;
            size_t n = um_sess_peek(t->sess, &p);
            if (!n) break;
            progress = true;
            int r = um_mux_feed(t->mux, p, n);
            um_sess_consume(t->sess, n);
            if (r < 0 && !t->fatal) t->fatal = r;
        }
        feed_hold(t);
        um_mux_event_t ev;
        for (int i = 0; i < 4096 && um_mux_poll(t->mux, &ev); i++) {
            progress = true;
            handle_event(t, &ev);
            if (t->down) goto out;
        }
        while (t->ready && !t->down) {
            struct tconn *c = t->ready;
            t->ready = c->rnext;
            c->ready = false;
            progress = true;
            deliver(t, c);
        }
        if (t->down) goto out;
        outbound(t);
        if (t->high) check_drain(t);
        if (!progress && um_sess_readable(t->sess) == 0) break;
    }
    if (!t->down && (um_sess_readable(t->sess) || t->ready)) schedule(t);
    if (t->fatal && !t->down) {
        /* Send what the mux queued (its GOAWAY), then end. */
        if (t->mux) {
            fill_session(t, MUX_OUT_CAP);
            size_t outn = 0;
            if (t->car && um_sess_pull(t->sess, t->out, OUT_CAP, &outn) == 0 && outn)
                um_carrier_write(t->car, t->out, outn);
        }
        die(t, t->fatal);
    } else if (!t->down && t->graceful && !t->finishing && um_mux_done(t->mux) &&
               !um_sess_want_pull(t->sess)) {
        if (!t->car) {
            die(t, UM_EPIPE); /* nothing left to say, and nowhere to say it */
        } else {
            t->finishing = true;
            um_carrier_shutdown(t->car); /* FIN after the queued records; die on EOF or timer */
        }
    }
out:
    t->in_pump = false;
}

static void finish(um_tunnel_t *t);

static void on_idle(uv_idle_t *h)
{
    um_tunnel_t *t = h->data;
    uv_idle_stop(h);
    t->idle_on = false;
    if (t->down) {
        finish(t);
        return;
    }
    /* The owner's notes, here and not where they arose (that may be inside
     * one of its own calls). */
    if (t->note_detached) {
        int err = t->note_detached;
        t->note_detached = 0;
        if (t->cbs->on_detached) t->cbs->on_detached(t, err, t->ud);
        if (t->down) return;
    }
    if (t->note_budget && t->car) {
        t->note_budget = false;
        if (t->cbs->on_budget) t->cbs->on_budget(t, t->budget_hit, t->ud);
        if (t->down) return;
    }
    pump(t);
}

static void schedule(um_tunnel_t *t)
{
    if (t->down || t->idle_on) return;
    t->idle_on = true;
    uv_idle_start(&t->idle, on_idle);
}

static void on_car_read(um_carrier_t *car, const uint8_t *p, size_t n, int status, void *ud)
{
    um_tunnel_t *t = ud;
    if (t->down) return;
    if (status != 0) {
        if (t->finishing) {
            die(t, UM_EPIPE);
            return;
        }
        if (t->resumable && !t->graceful && !t->goaway_in) {
            /* The connection broke, not the session: the owner brings the
             * next connection, or gives up (um_tunnel_close). */
            detach(t, status);
            return;
        }
        /* The streams still open now are lost with the connection (the
         * mux may reset them before finish() would count them). */
        for (struct tconn *c = t->conns; c; c = c->lnext)
            if (!c->closed) t->st.streams_failed++;
        t->lost_counted = true;
        int r = um_mux_feed_eof(t->mux);
        t->fatal = r ? r : UM_EPIPE;
        pump(t);
        if (!t->down) die(t, t->fatal);
        return;
    }
    t->st.bytes_in += n;
    t->car_bytes += n;
    check_soft(t);
    t->last_rx_ms = um_now_ms();
    size_t used = 0;
    int r = t->hold_len ? 0 : um_sess_feed(t->sess, p, n, &used);
    if (r < 0) {
        t->fatal = r;
    } else if (used < n) {
        /* The session's read queue is full: keep the rest (behind anything
         * already held), stop reading until the pump has fed it. */
        if (n - used > SCRATCH_CAP - t->hold_len) {
            t->fatal = UM_ENOSPC; /* cannot happen: reads stop while bytes are held */
        } else {
            memcpy(t->hold + t->hold_len, p + used, n - used);
            t->hold_len += n - used;
            um_carrier_read_stop(car);
        }
    }
    pump(t);
}

static void on_car_drain(um_carrier_t *car, void *ud)
{
    (void)car;
    pump(ud);
}

static void on_timer(uv_timer_t *h)
{
    um_tunnel_t *t = h->data;
    if (t->down) return;
    uint64_t now = um_now_ms();
    if (t->finishing && now >= t->drain_deadline) {
        die(t, UM_EPIPE);
        return;
    }
    if (t->graceful && !t->finishing && now >= t->drain_deadline) {
        die(t, UM_ETIMEDOUT);
        return;
    }
    if (!t->car) return; /* detached: time stands still for the mux until the next carrier */
    if (t->resumable && t->stall_ms && !t->finishing && !t->goaway_in &&
        now - t->last_rx_ms >= t->stall_ms) {
        /* Nothing has come for stall_ms while the peer owes us an
         * acknowledgement: a frozen or silently dropped connection. */
        um_sess_offsets_t o;
        um_sess_offsets(t->sess, &o);
        if (o.tx_sent > o.tx_acked || o.tx_queued > o.tx_sent) {
            detach(t, UM_ETIMEDOUT);
            return;
        }
    }
    int r = um_mux_tick(t->mux, now);
    if (r == UM_ETIMEDOUT) {
        die(t, UM_ETIMEDOUT);
        return;
    }
    pump(t);
}

/* The carrier is gone; the session, the mux and the streams stay. */
static void detach(um_tunnel_t *t, int err)
{
    if (t->down || !t->car) return;
    um_carrier_close(t->car);
    t->car = NULL;
    t->hold_len = 0; /* bytes of the old connection: the peer resends them */
    t->budget_hit = false;
    t->note_budget = false;
    t->note_detached = err ? err : UM_EPIPE;
    t->st.detaches++;
    uv_timer_stop(&t->jtimer);
    t->jit_armed = false;
    schedule(t);
}

static void on_handle_closed(uv_handle_t *h)
{
    um_tunnel_t *t = h->data;
    if (--t->handles > 0) return;
    free(t->out);
    free(t->hold);
    free(t);
}

/* The tunnel is over. Nothing is told here: die() may run inside a user's
 * call (um_tunnel_close), so the streams' callbacks and on_down run from
 * the idle handle, on the next turn of the loop (finish()). The connection
 * is closed now, so no byte moves after this. */
static void die(um_tunnel_t *t, int err)
{
    if (t->down) return;
    t->down = true;
    t->down_err = err;
    if (t->hub && t->hub->t == t) t->hub->t = NULL;
    if (t->car) um_carrier_close(t->car);
    t->car = NULL;
    uv_timer_stop(&t->timer);
    uv_timer_stop(&t->jtimer);
    uv_timer_stop(&t->ftimer);
    if (!t->idle_on) {
        t->idle_on = true;
        uv_idle_start(&t->idle, on_idle);
    }
}

/* Every stream learns its fate, then the owner; then the tunnel goes. No
 * allocation here (it cannot fail half-way): streams are taken off the
 * list one by one, and a callback may close any of them. */
static void finish(um_tunnel_t *t)
{
    while (t->conns) {
        struct tconn *c = t->conns;
        if (c->closed) {
            conn_gone(t, c);
        } else {
            if (!t->lost_counted) t->st.streams_failed++;
            conn_fail(t, c, c->state == C_OPENING, UM_CONN_GENERAL_FAILURE, UM_EPIPE);
        }
    }
    for (struct tassoc *a = t->assocs; a; a = a->next)
        a->t = NULL;
    t->assocs = NULL;
    if (t->cbs->on_down) t->cbs->on_down(t, t->down_err, t->ud);
    /* Streams a callback closed after they were failed are already off the
     * list; nothing can add one to a tunnel that is down. */
    um_mux_free(t->mux);
    t->mux = NULL;
    um_sess_free(t->sess);
    t->sess = NULL;
    uv_close((uv_handle_t *)&t->idle, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
    uv_close((uv_handle_t *)&t->jtimer, on_handle_closed);
    uv_close((uv_handle_t *)&t->ftimer, on_handle_closed);
}

int um_tunnel_new(uv_loop_t *loop, um_sess_t *sess, um_carrier_t *car, um_mux_role_t role,
                  const um_mux_config_t *mcfg, const um_tunnel_cbs_t *cbs, void *ud,
                  um_tunnel_t **out)
{
    um_tunnel_t *t = t_calloc(1, sizeof(*t));
    if (!t) return UM_ENOMEM;
    t->loop = loop;
    t->cbs = cbs;
    t->ud = ud;
    t->out = malloc(OUT_CAP);
    t->hold = malloc(SCRATCH_CAP);
    t->mux = um_mux_new(role, mcfg);
    if (!t->out || !t->hold || !t->mux) {
        um_mux_free(t->mux);
        free(t->out);
        free(t->hold);
        free(t);
        return UM_ENOMEM;
    }
    t->sess = sess;
    t->car = car;
    uv_idle_init(loop, &t->idle);
    uv_timer_init(loop, &t->timer);
    uv_timer_init(loop, &t->jtimer);
    uv_timer_init(loop, &t->ftimer);
    t->idle.data = t->timer.data = t->jtimer.data = t->ftimer.data = t;
    t->handles = 4;
    t->last_tx_ms = t->last_rx_ms = um_now_ms();
    um_carrier_set_wq_max(car, TCP_WQ_MAX);
    um_carrier_set_cbs(car, on_car_read, on_car_drain, t);
    um_carrier_read_start(car);
    uv_timer_start(&t->timer, on_timer, TICK_MS, TICK_MS);
    um_mux_tick(t->mux, um_now_ms());
    schedule(t); /* the session may already hold bytes that came with the handshake */
    *out = t;
    return 0;
}

void um_tunnel_close(um_tunnel_t *t, bool graceful, uint32_t drain_ms)
{
    if (t->down) return;
    if (!graceful) {
        /* Tell the peer the session ends (so it does not try to resume it):
         * best effort, the GOAWAY leaves now if the connection has room. */
        if (t->car && !t->fatal && um_mux_goaway(t->mux, UM_MUX_GOAWAY_CLOSED) == 0) {
            fill_session(t, MUX_OUT_CAP);
            size_t outn = 0;
            if (um_sess_pull(t->sess, t->out, OUT_CAP, &outn) == 0 && outn)
                um_carrier_write(t->car, t->out, outn);
        }
        die(t, UM_EPIPE);
        return;
    }
    if (t->graceful) return;
    t->graceful = true;
    t->drain_deadline = um_now_ms() + drain_ms;
    if (t->hub && t->hub->t == t) t->hub->t = NULL;
    um_mux_goaway(t->mux, UM_MUX_GOAWAY_NORMAL);
    schedule(t);
}

void um_tunnel_set_resumable(um_tunnel_t *t, uint32_t stall_ms)
{
    t->resumable = t->cbs->on_detached != NULL;
    t->stall_ms = stall_ms;
}

void um_tunnel_set_budget(um_tunnel_t *t, uint64_t budget, uint64_t soft, uint64_t wire)
{
    t->car_budget = budget;
    t->car_soft = soft;
    t->soft_told = false;
    t->car_bytes += wire;
    check_soft(t);
}

int um_tunnel_attach(um_tunnel_t *t, um_carrier_t *car, const uint8_t *rest, size_t n,
                     uint64_t wire, uint64_t budget, uint64_t soft)
{
    if (t->down || t->graceful || !car) return UM_EINVAL;
    if (n > SCRATCH_CAP) return UM_EMSGSIZE;
    if (t->car) {
        um_carrier_close(t->car); /* make-before-break: the new one is ready */
        t->st.rotations++;
    }
    t->note_detached = 0; /* a detach not yet told is moot now */
    t->car = car;
    t->hold_len = 0;                 /* bytes of the old connection: the peer resends them */
    if (n) memcpy(t->hold, rest, n); /* rest may be NULL when n is 0 (client.c) */
    t->hold_len = n;
    t->car_bytes = wire;
    t->car_budget = budget;
    t->car_soft = soft;
    t->soft_told = false;
    t->budget_hit = t->note_budget = false;
    t->last_rx_ms = t->last_tx_ms = um_now_ms();
    t->st.attaches++;
    check_soft(t);
    um_carrier_set_wq_max(car, TCP_WQ_MAX);
    um_carrier_set_cbs(car, on_car_read, on_car_drain, t);
    if (!t->hold_len) um_carrier_read_start(car);
    um_mux_touch(t->mux, um_now_ms());
    schedule(t);
    return 0;
}

void um_tunnel_detach(um_tunnel_t *t)
{
    detach(t, UM_EPIPE);
    t->note_detached = 0; /* the owner knows */
}

bool um_tunnel_attached(const um_tunnel_t *t)
{
    return t->car != NULL;
}

uint64_t um_tunnel_carrier_bytes(const um_tunnel_t *t)
{
    return t->car ? t->car_bytes : 0;
}

um_sess_t *um_tunnel_session(um_tunnel_t *t)
{
    return t->sess;
}

uint32_t um_tunnel_rtt(const um_tunnel_t *t)
{
    return t->mux ? um_mux_rtt_ms(t->mux) : 0;
}

void um_tunnel_stats(const um_tunnel_t *t, um_tunnel_stats_t *st)
{
    *st = t->st;
    st->streams_open = t->n_conns;
    if (t->mux) {
        um_mux_stats_t ms;
        um_mux_get_stats(t->mux, &ms);
        st->payload_in = ms.payload_in;
        st->payload_out = ms.payload_out;
    }
}

bool um_tunnel_is_down(const um_tunnel_t *t)
{
    return t->down;
}

int um_tunnel_accept(um_tunnel_t *t, uint32_t id, const um_conn_cbs_t *cbs, void *arg,
                     um_conn_t **out)
{
    if (t->down) return UM_EPIPE;
    struct tconn *c = conn_new(cbs, arg);
    if (!c) return UM_ENOMEM;
    c->t = t;
    c->id = id;
    c->state = C_OPEN;
    um_sess_guard(t->sess, OPEN_GUARD); /* what a new stream carries first is padded */
    int r = um_mux_stream_accept(t->mux, id, UM_MUX_OK);
    if (r != 0) {
        um_mux_stream_reset(t->mux, id, UM_MUX_RST_INTERNAL);
        conn_unref(c);
        return r;
    }
    list_add(t, c);
    t->st.streams_opened++;
    mark_ready(t, c); /* early data may be waiting */
    *out = &c->base;
    return 0;
}

void um_tunnel_refuse(um_tunnel_t *t, uint32_t id, int result)
{
    if (t->down) return;
    um_mux_stream_accept(t->mux, id, um_tunnel_result_to_mux(result));
    schedule(t);
}

int um_tunnel_dgram_send(um_tunnel_t *t, uint32_t assoc, const um_addr_t *src, const uint8_t *p,
                         size_t n)
{
    if (t->down) return UM_EPIPE;
    int r = um_mux_dgram_send(t->mux, assoc, src, p, n);
    schedule(t);
    return r;
}

/* ---- the conn operations (client opens through a hub; server accepts) ---- */

static int start_open(um_tunnel_t *t, struct tconn *c)
{
    uint32_t id;
    int r = um_mux_stream_open(t->mux, &c->dst, &id);
    if (r != 0) return r;
    um_sess_guard(t->sess, OPEN_GUARD); /* what a new stream carries first is padded */
    c->id = id;
    c->t = t;
    c->state = C_OPENING;
    list_add(t, c);
    t->st.streams_opened++;
    /* Early data rides with the OPEN (0-RTT): the mux takes it before the
     * result comes back. */
    while (um_buf_len(&c->pend) > 0) {
        const uint8_t *p;
        size_t n = um_buf_peek(&c->pend, &p), acc = 0;
        if (um_mux_stream_write(t->mux, id, p, n, &acc) != 0 || acc == 0) break;
        um_buf_consume(&c->pend, acc);
    }
    schedule(t);
    return 0;
}

static void hub_arm(um_hub_t *h);
static void hub_tick(uv_timer_t *tm);

static int op_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                   const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    um_hub_t *h = ctx;
    struct tconn *c = conn_new(cbs, arg);
    if (!c) return UM_ENOMEM;
    c->hub = h;
    c->dst = *dst;
    if (n && um_buf_append(&c->pend, early, n) != 0) {
        conn_unref(c);
        return UM_ENOMEM;
    }
    um_tunnel_t *t = h->t;
    if (t && !t->down && !t->goaway_in) {
        int r = start_open(t, c);
        if (r == 0) {
            *out = &c->base;
            return 0;
        }
        if (r != UM_ELIMIT && r != UM_ENOSPC) {
            conn_unref(c);
            return r;
        }
    }
    /* No usable tunnel: wait, within bounds, for the next one. */
    if (h->n_wait >= h->max_waiting) {
        conn_unref(c);
        return UM_ENOSPC;
    }
    c->state = C_WAITING;
    c->deadline_ms = um_now_ms() + h->wait_ms;
    c->refs++; /* the waiting list's */
    if (h->wait_tail)
        h->wait_tail->wnext = c;
    else
        h->wait_head = c;
    h->wait_tail = c;
    h->n_wait++;
    h->wait_signal = true;
    hub_arm(h);
    uv_timer_start(&h->timer, hub_tick, 0, 100); /* tell the owner on the next turn */
    *out = &c->base;
    return 0;
}

static int op_write(um_conn_t *uc, const uint8_t *p, size_t n)
{
    struct tconn *c = (struct tconn *)uc;
    if (c->closed || c->state == C_DEAD || !c->t) return c->state == C_DEAD ? UM_EPIPE : UM_EAGAIN;
    if (c->state != C_OPEN) return UM_EAGAIN;
    if (c->shut_wanted) return UM_EPIPE;
    um_tunnel_t *t = c->t;
    if (t->down) return UM_EPIPE;
    size_t acc = 0;
    if (um_buf_len(&c->pend) == 0) {
        int r = um_mux_stream_write(t->mux, c->id, p, n, &acc);
        if (r != 0 && r != UM_EAGAIN && r != UM_ENOSPC) return r;
    }
    if (acc < n && um_buf_append(&c->pend, p + acc, n - acc) != 0) return UM_ENOSPC;
    if (!c->above_high && conn_queued(c) > UM_CONN_HIGH_WATER) {
        c->above_high = true;
        c->hinext = t->high;
        t->high = c;
    }
    schedule(t);
    return 0;
}

static size_t op_queued(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    return conn_queued(c);
}

static int op_read_start(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    c->reading = true;
    if (c->t && !c->t->down && c->state == C_OPEN) mark_ready(c->t, c);
    return 0;
}

static int op_read_stop(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    c->reading = false;
    return 0;
}

static int op_shutdown(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    if (c->state == C_DEAD || c->closed) return UM_EPIPE;
    c->shut_wanted = true;
    if (c->t && !c->t->down && c->state == C_OPEN) flush_pend(c->t, c);
    return 0;
}

static void op_close(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    if (c->closed) return;
    c->closed = true;
    um_hub_t *h = c->hub;
    if (c->state == C_WAITING && h) {
        /* Unlink from the waiting list. */
        for (struct tconn **pp = &h->wait_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->wnext)
            if (*pp == c) {
                *pp = c->wnext;
                if (h->wait_tail == c) h->wait_tail = prev;
                h->n_wait--;
                c->refs--; /* the list's reference; the user's is dropped below */
                break;
            }
    } else if (c->t && c->listed) {
        um_tunnel_t *t = c->t;
        /* A stream the user finished in both directions keeps nothing to send
         * once its FIN is out; otherwise closing is an abort. */
        int r = 0;
        if (!c->mux_gone && !(c->shut_sent && c->eof_delivered && um_buf_len(&c->pend) == 0))
            r = um_mux_stream_reset(t->mux, c->id, UM_MUX_RST_CANCEL);
        schedule(t);
        c->state = C_DEAD;
        /* UM_ENOENT: the mux ended the stream and its last event, which
         * names c, is still queued; c stays listed until it is handled. And
         * a tunnel that is down lets finish() unlist it. */
        if (r != UM_ENOENT && !t->down)
            conn_gone(t, c); /* the user's reference keeps c alive here */
    }
    c->state = C_DEAD;
    conn_unref(c);
}

/* Datagram associations (client). */
static int op_assoc_open(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out)
{
    um_hub_t *h = ctx;
    um_tunnel_t *t = h->t;
    if (!t || t->down) return UM_EAGAIN;
    struct tassoc *a = t_calloc(1, sizeof(*a));
    if (!a) return UM_ENOMEM;
    a->base.ops = &assoc_ops;
    int r = um_mux_assoc_open(t->mux, &a->id);
    if (r != 0) {
        free(a);
        return r;
    }
    a->t = t;
    a->cb = cb;
    a->arg = arg;
    a->next = t->assocs;
    t->assocs = a;
    *out = &a->base;
    return 0;
}

static int op_assoc_send(um_assoc_t *ua, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    struct tassoc *a = (struct tassoc *)ua;
    if (!a->t || a->t->down) return UM_EPIPE;
    int r = um_mux_dgram_send(a->t->mux, a->id, dst, p, n);
    schedule(a->t);
    return r;
}

static void op_assoc_close(um_assoc_t *ua)
{
    struct tassoc *a = (struct tassoc *)ua;
    um_tunnel_t *t = a->t;
    if (t && !t->down) {
        um_mux_assoc_close(t->mux, a->id);
        for (struct tassoc **pp = &t->assocs; *pp; pp = &(*pp)->next)
            if (*pp == a) {
                *pp = a->next;
                break;
            }
        schedule(t);
    }
    free(a);
}

static const um_conn_ops_t conn_ops = {
    .name = "tunnel",
    .write = op_write,
    .queued = op_queued,
    .read_start = op_read_start,
    .read_stop = op_read_stop,
    .shutdown = op_shutdown,
    .close = op_close,
};

static const um_assoc_ops_t assoc_ops = {
    .send = op_assoc_send,
    .close = op_assoc_close,
};

static const um_connector_ops_t hub_ops = {
    .name = "tunnel",
    .open = op_open,
    .assoc_open = op_assoc_open,
};

/* ---- hub ---- */

static void hub_tick(uv_timer_t *tm)
{
    um_hub_t *h = tm->data;
    uint64_t now = um_now_ms();
    while (h->failed) {
        struct tconn *c = h->failed;
        h->failed = c->wnext;
        c->wnext = NULL;
        if (!c->closed && c->cbs->on_open) c->cbs->on_open(c->arg, UM_CONN_GENERAL_FAILURE);
        conn_unref(c);
    }
    if (h->wait_signal) {
        h->wait_signal = false;
        if (h->wait_cb && h->wait_head) h->wait_cb(h->wait_ud);
    }
    struct tconn **pp = &h->wait_head, *prev = NULL;
    while (*pp) {
        struct tconn *c = *pp;
        if (now < c->deadline_ms) {
            prev = c;
            pp = &c->wnext;
            continue;
        }
        *pp = c->wnext;
        if (h->wait_tail == c) h->wait_tail = prev;
        h->n_wait--;
        c->state = C_DEAD;
        if (!c->closed && c->cbs->on_open) c->cbs->on_open(c->arg, UM_CONN_GENERAL_FAILURE);
        conn_unref(c); /* the waiting list's reference */
    }
    if (!h->wait_head && h->timer_on) {
        uv_timer_stop(&h->timer);
        h->timer_on = false;
    }
}

static void hub_arm(um_hub_t *h)
{
    if (h->timer_on) return;
    h->timer_on = true;
    uv_timer_start(&h->timer, hub_tick, 100, 100);
}

int um_hub_new(uv_loop_t *loop, uint32_t wait_ms, uint32_t max_waiting, um_hub_t **out)
{
    um_hub_t *h = calloc(1, sizeof(*h));
    if (!h) return UM_ENOMEM;
    h->loop = loop;
    h->wait_ms = wait_ms;
    h->max_waiting = max_waiting;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    *out = h;
    return 0;
}

static void hub_closed(uv_handle_t *hd)
{
    free(hd->data);
}

void um_hub_free(um_hub_t *h)
{
    if (!h) return;
    while (h->wait_head) {
        struct tconn *c = h->wait_head;
        h->wait_head = c->wnext;
        conn_unref(c);
    }
    while (h->failed) {
        struct tconn *c = h->failed;
        h->failed = c->wnext;
        conn_unref(c);
    }
    uv_close((uv_handle_t *)&h->timer, hub_closed);
}

void um_hub_set_tunnel(um_hub_t *h, um_tunnel_t *t)
{
    h->t = t;
    if (!t) return;
    t->hub = h;
    /* Waiting opens start now, in order. */
    while (h->wait_head) {
        struct tconn *c = h->wait_head;
        h->wait_head = c->wnext;
        if (!h->wait_head) h->wait_tail = NULL;
        h->n_wait--;
        c->wnext = NULL;
        if (!c->closed && start_open(t, c) != 0) {
            /* Told on the next tick, not inside this call; the list keeps
             * the waiting list's reference. */
            c->state = C_DEAD;
            c->wnext = h->failed;
            h->failed = c;
            continue;
        }
        conn_unref(c); /* the waiting list's reference */
    }
    if (h->failed) {
        h->timer_on = true;
        uv_timer_start(&h->timer, hub_tick, 0, 100);
    }
}

void um_hub_set_wait_cb(um_hub_t *h, void (*cb)(void *ud), void *ud)
{
    h->wait_cb = cb;
    h->wait_ud = ud;
}

um_conn_provider_t um_hub_connector(um_hub_t *h)
{
    um_conn_provider_t c = {&hub_ops, h};
    return c;
}
