/* Stream multiplexer state machine. Wire format: docs/PROTOCOL.md section 6;
 * design notes (windows, scheduler, lifetimes): docs/internals/mux.md. */
#include "mux/mux.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
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

    stream_t *active; /* head of the DRR ring */
    size_t nactive;
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

void um_mux_config_default(um_mux_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->max_streams = 1024;
    c->max_pending_opens = 128;
    c->stream_window_init = 256 * 1024;
    c->stream_window_max = 16 * 1024 * 1024;
    c->session_window_init = 1024 * 1024;
    c->session_window_max = 64 * 1024 * 1024;
    c->send_buf_max = 256 * 1024;
    c->record_size = 16384;
    c->max_frame = UM_MUX_FRAME_MAX;
    c->quantum = 16384;
    c->max_assocs = 256;
    c->dgram_queue_max = 256 * 1024;
    c->dgram_rx_max = 256 * 1024;
    c->ping_interval_ms = 10000;
    c->ping_timeout_ms = 30000;
    c->control_max = 64 * 1024;
    c->stream_timeout_ms = 60000;
}

/* ---- small helpers ---------------------------------------------------- */

static bool own_id(const um_mux_t *m, uint32_t id)
{
    return (id & 1u) == (m->role == UM_MUX_CLIENT ? 1u : 0u);
}

/* True when id names a stream that existed (or was refused) and is gone. */
static bool id_seen(const um_mux_t *m, uint32_t id)
{
    return own_id(m, id) ? id < m->next_id : id <= m->peer_max_id;
}

static uint32_t min32(uint64_t a, uint64_t b)
{
    uint64_t v = a < b ? a : b;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void dbg(um_mux_t *m, const char *what, uint32_t id)
{
    um_log_limited(&m->rl, 5, 1000, UM_LOG_DEBUG, "mux: %s (id %u)", what, id);
}

/* ---- events ------------------------------------------------------------ */

static um_mux_event_t *ev_push(um_mux_t *m, um_mux_event_type_t type, uint32_t id, int code,
                               size_t datalen)
{
    evnode_t *n = calloc(1, sizeof(*n) + datalen);
    if (!n) return NULL;
    n->ev.type = type;
    n->ev.id = id;
    n->ev.code = code;
    n->ev.len = datalen;
    if (datalen) n->ev.data = n->data;
    if (m->ev_tail)
        m->ev_tail->next = n;
    else
        m->ev_head = n;
    m->ev_tail = n;
    return &n->ev;
}

/* The last event of a stream the mux frees right after (RESET, a failed
 * OPEN_RESULT): it carries the stream's user pointer, which nothing can
 * look up any more. */
static um_mux_event_t *ev_push_last(um_mux_t *m, const void *sp, um_mux_event_type_t type,
                                    int code);

/* ---- stream table ------------------------------------------------------ */

static stream_t *find(const um_mux_t *m, uint32_t id)
{
    if (!m->buckets) return NULL;
    stream_t *s = m->buckets[(id >> 1) & (m->nbuckets - 1)];
    while (s && s->id != id)
        s = s->hnext;
    return s;
}

static int table_grow(um_mux_t *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : HASH_INIT;
    stream_t **b = calloc(nb, sizeof(*b));
    if (!b) return UM_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        stream_t *s = m->buckets[i];
        while (s) {
            stream_t *next = s->hnext;
            size_t k = (s->id >> 1) & (nb - 1);
            s->hnext = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

static void active_add(um_mux_t *m, stream_t *s)
{
    if (s->flags & S_ACTIVE) return;
    s->flags |= S_ACTIVE;
    if (!m->active) {
        s->anext = s->aprev = s;
        m->active = s;
    } else { /* insert at the tail = before the head */
        s->anext = m->active;
        s->aprev = m->active->aprev;
        s->aprev->anext = s;
        m->active->aprev = s;
    }
    m->nactive++;
}

static void active_remove(um_mux_t *m, stream_t *s)
{
    if (!(s->flags & S_ACTIVE)) return;
    s->flags &= ~(uint32_t)S_ACTIVE;
    if (s->anext == s) {
        m->active = NULL;
    } else {
        s->aprev->anext = s->anext;
        s->anext->aprev = s->aprev;
        if (m->active == s) m->active = s->anext;
    }
    s->anext = s->aprev = NULL;
    s->deficit = 0;
    m->nactive--;
}

static void wu_add(um_mux_t *m, stream_t *s)
{
    if (s->flags & S_IN_WU) return;
    s->flags |= S_IN_WU;
    s->wprev = NULL;
    s->wnext = m->wu_head;
    if (m->wu_head) m->wu_head->wprev = s;
    m->wu_head = s;
}

static void wu_remove(um_mux_t *m, stream_t *s)
{
    if (!(s->flags & S_IN_WU)) return;
    s->flags &= ~(uint32_t)S_IN_WU;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        m->wu_head = s->wnext;
    if (s->wnext) s->wnext->wprev = s->wprev;
    s->wnext = s->wprev = NULL;
}

/* ---- memory budget ----------------------------------------------------- */

/* What a stream commits the process to hold: the receive credit the peer
 * may still use plus what it sent and nobody read (or the storage holding
 * it, when larger), and the storage of what we queued to send. */
static uint64_t stream_cost(const stream_t *s)
{
    uint64_t rx = um_buf_len(&s->rx);
    if (!(s->flags & S_FIN_RECV)) rx += s->rx_credit;
    if (s->rx.cap > rx) rx = s->rx.cap;
    uint64_t tx = s->tx.cap > um_buf_len(&s->tx) ? s->tx.cap : um_buf_len(&s->tx);
    return rx + tx;
}

/* Brings the stream's charge to the account in line with its cost. */
static void acct_sync(um_mux_t *m, stream_t *s)
{
    if (!m->cfg.mem) return;
    uint64_t c = stream_cost(s);
    if (c > UINT32_MAX) c = UINT32_MAX;
    if (c > s->charged)
        um_memacct_charge(m->cfg.mem, c - s->charged);
    else if (c < s->charged)
        um_memacct_release(m->cfg.mem, s->charged - c);
    s->charged = (uint32_t)c;
}

static bool acct_fits(const um_mux_t *m, uint64_t n)
{
    return !m->cfg.mem || um_memacct_fits(m->cfg.mem, n);
}

static stream_t *stream_new(um_mux_t *m, uint32_t id, uint32_t flags)
{
    if (m->nstreams >= m->nbuckets && table_grow(m) != 0) return NULL;
    stream_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->id = id;
    s->flags = flags;
    s->tx_credit = UM_MUX_INIT_WINDOW;
    s->rx_credit = UM_MUX_INIT_WINDOW;
    s->rx_win = m->cfg.stream_window_init;
    s->rx_epoch = m->now + 1;
    s->progress = m->now;
    um_buf_init(&s->rx, m->cfg.stream_window_max);
    um_buf_init(&s->tx, m->cfg.send_buf_max);
    size_t k = (id >> 1) & (m->nbuckets - 1);
    s->hnext = m->buckets[k];
    m->buckets[k] = s;
    m->nstreams++;
    return s;
}

static void stream_free(um_mux_t *m, stream_t *s)
{
    stream_t **pp = &m->buckets[(s->id >> 1) & (m->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) *pp = s->hnext;
    active_remove(m, s);
    wu_remove(m, s);
    if (!(s->flags & (S_LOCAL | S_ESTABLISHED))) m->npending--;
    if (m->cfg.mem && s->charged) um_memacct_release(m->cfg.mem, s->charged);
    um_buf_free(&s->rx);
    um_buf_free(&s->tx);
    free(s->dest);
    free(s);
    m->nstreams--;
}

/* ---- flow control ------------------------------------------------------ */

/* Receiver-side auto-tuning: a window used up within two RTTs is too small
 * for the path, so it doubles (up to max). Returns the growth to grant. */
static uint32_t autotune(um_mux_t *m, uint32_t *win, uint64_t *epoch, uint32_t max)
{
    uint64_t rtt = m->has_rtt ? m->srtt : DEFAULT_RTT_MS;
    if (rtt == 0) rtt = 1;
    uint32_t grow = 0;
    if (*epoch && m->now + 1 - *epoch < 2 * rtt && *win < max) {
        grow = min32(*win, max - *win);
        *win += grow;
    }
    *epoch = m->now + 1;
    return grow;
}

/* n bytes of the session's receive budget are free again. */
static void session_consumed(um_mux_t *m, size_t n)
{
    m->rx_unacked += (uint32_t)n;
    if (m->rx_unacked < m->rx_win / 2) return;
    uint32_t grant =
        m->rx_unacked + autotune(m, &m->rx_win, &m->rx_epoch, m->cfg.session_window_max);
    m->rx_unacked = 0;
    m->rx_credit += grant;
    m->rx_announce += grant;
}

/* The app read n bytes of stream s. The session's share was given back
 * when the bytes arrived (see on_data): a stream's buffer is bounded by its
 * own window, so readers that stop never hold the session window. */
static void stream_grant(um_mux_t *m, stream_t *s)
{
    if ((s->flags & S_FIN_RECV) || s->rx_unacked < s->rx_win / 2) return;
    uint32_t win = s->rx_win;
    uint64_t epoch = s->rx_epoch;
    uint32_t grow = autotune(m, &s->rx_win, &s->rx_epoch, m->cfg.stream_window_max);
    if (grow && !acct_fits(m, (uint64_t)s->rx_unacked + grow)) {
        s->rx_win = win; /* over the share: the window stops growing */
        grow = 0;
    }
    if (!acct_fits(m, s->rx_unacked)) {
        /* The client holds its share already: the peer gets no new credit
         * for this stream until some is freed (retried at every tick). */
        s->rx_epoch = epoch;
        if (!(s->flags & S_WITHHELD)) m->st.grants_withheld++;
        s->flags |= S_WITHHELD;
        return;
    }
    s->flags &= ~(uint32_t)S_WITHHELD;
    uint32_t grant = s->rx_unacked + grow;
    s->rx_unacked = 0;
    s->rx_credit += grant;
    s->rx_announce += grant;
    if (!(s->flags & S_OPEN_PENDING)) wu_add(m, s);
    acct_sync(m, s);
}

static void stream_consumed(um_mux_t *m, stream_t *s, size_t n)
{
    s->progress = m->now;
    if (!(s->flags & S_FIN_RECV)) s->rx_unacked += (uint32_t)n; /* else the peer sends no more */
    acct_sync(m, s);
    stream_grant(m, s);
}

/* ---- control queue and fatal errors ------------------------------------ */

static int ctl_frame(um_mux_t *m, const um_mux_frame_t *f, bool from_peer)
{
    if (from_peer && um_buf_len(&m->ctl) >= m->cfg.control_max) return UM_ENOSPC;
    uint8_t *p = um_buf_reserve(&m->ctl, UM_MUX_HDR + 32);
    if (!p) return UM_ENOSPC;
    size_t w;
    int r = um_mux_frame_encode(f, p, UM_MUX_HDR + 32, &w);
    if (r) return r;
    um_buf_commit(&m->ctl, w);
    return 0;
}

static void free_all_streams(um_mux_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        while (m->buckets[i])
            stream_free(m, m->buckets[i]);
}

/* The session is over: one GOAWAY out, one EV_ERROR up, every stream gone. */
static int fail(um_mux_t *m, int err, uint8_t gcode, const char *why)
{
    if (m->err) return m->err;
    m->err = err;
    um_log_limited(&m->rl, 5, 1000, UM_LOG_DEBUG, "mux: session ends: %s (%s)", why,
                   um_strerror(err));
    free_all_streams(m);
    active_remove(m, &m->dg);
    um_buf_free(&m->dg.tx);
    /* queued control frames (and a frame cut at a record's end) still go out
     * whole before the GOAWAY, so the peer can parse it */
    m->rx_announce = 0;
    if (err != UM_EPIPE) {
        um_mux_frame_t f = {.type = UM_MUX_GOAWAY, .value = m->peer_max_id, .code = gcode};
        ctl_frame(m, &f, false);
    }
    ev_push(m, UM_MUX_EV_ERROR, 0, err, 0);
    return err;
}

static int proto(um_mux_t *m, const char *why)
{
    return fail(m, UM_EPROTO, UM_MUX_GOAWAY_PROTOCOL, why);
}

static int flow_err(um_mux_t *m)
{
    return fail(m, UM_EPROTO, UM_MUX_GOAWAY_FLOW_CONTROL, "peer overran a window");
}

static int nomem(um_mux_t *m)
{
    return fail(m, UM_ENOMEM, UM_MUX_GOAWAY_INTERNAL, "out of memory");
}

/* ---- lifecycle --------------------------------------------------------- */

um_mux_t *um_mux_new(um_mux_role_t role, const um_mux_config_t *cfg)
{
    um_mux_config_t c;
    if (cfg)
        c = *cfg;
    else
        um_mux_config_default(&c);
    if (role != UM_MUX_CLIENT && role != UM_MUX_SERVER) return NULL;
    if (c.stream_window_init < UM_MUX_INIT_WINDOW) c.stream_window_init = UM_MUX_INIT_WINDOW;
    if (c.stream_window_max < c.stream_window_init) c.stream_window_max = c.stream_window_init;
    if (c.session_window_init < UM_MUX_INIT_SESSION_WINDOW)
        c.session_window_init = UM_MUX_INIT_SESSION_WINDOW;
    if (c.session_window_max < c.session_window_init) c.session_window_max = c.session_window_init;
    if (c.stream_window_max > UM_MUX_WINDOW_LIMIT / 2 ||
        c.session_window_max > UM_MUX_WINDOW_LIMIT / 2)
        return NULL;
    if (c.max_frame == 0 || c.max_frame > UM_MUX_FRAME_MAX) c.max_frame = UM_MUX_FRAME_MAX;
    if (c.record_size < UM_MUX_HDR + 32) return NULL;
    if (c.quantum == 0) c.quantum = c.max_frame;
    if (c.send_buf_max == 0 || c.max_streams == 0) return NULL;
    if (c.control_max < 1024) c.control_max = 1024;

    um_mux_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->cfg = c;
    m->role = role;
    if (c.mem) um_memacct_attach(c.mem);
    m->next_id = role == UM_MUX_CLIENT ? 1 : 2;
    m->next_assoc = m->next_id;
    m->tx_credit = UM_MUX_INIT_SESSION_WINDOW;
    m->rx_credit = c.session_window_init;
    m->rx_win = c.session_window_init;
    m->rx_announce = c.session_window_init - UM_MUX_INIT_SESSION_WINDOW;
    m->rx_epoch = 1;
    m->dg.flags = S_DGRAM;
    um_buf_init(&m->dg.tx, c.dgram_queue_max);
    um_buf_init(&m->ctl, (size_t)c.control_max + CTL_HEADROOM);
    m->part = malloc(UM_MUX_HDR + UM_MUX_FRAME_MAX);
    m->stage = malloc(UM_MUX_HDR + UM_MUX_FRAME_MAX);
    m->assoc = c.max_assocs ? calloc(c.max_assocs, sizeof(uint32_t)) : NULL;
    if (!m->part || !m->stage || (c.max_assocs && !m->assoc) || table_grow(m) != 0) {
        um_mux_free(m);
        return NULL;
    }
    return m;
}

void um_mux_free(um_mux_t *m)
{
    if (!m) return;
    if (m->buckets) free_all_streams(m);
    free(m->buckets);
    um_buf_free(&m->dg.tx);
    um_buf_free(&m->ctl);
    free(m->part);
    free(m->stage);
    free(m->assoc);
    if (m->cfg.mem) um_memacct_detach(m->cfg.mem);
    free(m->ev_last);
    for (evnode_t *n = m->ev_head, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    free(m);
}

/* ---- receiving --------------------------------------------------------- */

static int rst_refuse(um_mux_t *m, uint32_t id, uint8_t code)
{
    um_mux_frame_t f = {.type = UM_MUX_RST, .id = id, .code = code};
    m->st.opens_refused++;
    if (ctl_frame(m, &f, true) != 0)
        return fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "peer opens streams faster than it reads");
    return 0;
}

static void maybe_free(um_mux_t *m, stream_t *s)
{
    uint32_t done = S_FIN_SENT | S_FIN_RECV | S_EOF_READ;
    if ((s->flags & done) == done && um_buf_len(&s->rx) == 0) stream_free(m, s);
}

static int readable(um_mux_t *m, stream_t *s)
{
    if (s->flags & S_EV_READABLE) return 0;
    if (!ev_push(m, UM_MUX_EV_READABLE, s->id, 0, 0)) return nomem(m);
    s->flags |= S_EV_READABLE;
    return 0;
}

static int on_open(um_mux_t *m, const um_mux_frame_t *f)
{
    if (own_id(m, f->id) || f->id <= m->peer_max_id) return proto(m, "OPEN with a bad stream id");
    if (f->data_len > m->rx_credit || f->data_len > UM_MUX_INIT_WINDOW) return flow_err(m);
    m->rx_credit -= (uint32_t)f->data_len;
    m->peer_max_id = f->id;
    if (m->goaway_sent || m->nstreams >= m->cfg.max_streams ||
        m->npending >= m->cfg.max_pending_opens) {
        session_consumed(m, f->data_len);
        return rst_refuse(m, f->id, m->goaway_sent ? UM_MUX_RST_GOING_AWAY : UM_MUX_RST_REFUSED);
    }
    if (!acct_fits(m, UM_MUX_INIT_WINDOW)) { /* its initial window would pass the share */
        session_consumed(m, f->data_len);
        m->st.opens_over_budget++;
        return rst_refuse(m, f->id, UM_MUX_RST_OVERLOADED);
    }
    stream_t *s = stream_new(m, f->id, 0);
    if (!s) return nomem(m);
    m->npending++;
    s->rx_credit -= (uint32_t)f->data_len;
    if (f->data_len && um_buf_append(&s->rx, f->data, f->data_len) != 0) return nomem(m);
    session_consumed(m, f->data_len); /* buffered: the stream's window bounds it now */
    if (f->flags & UM_MUX_FLAG_FIN) s->flags |= S_FIN_RECV;
    acct_sync(m, s);
    um_mux_event_t *ev = ev_push(m, UM_MUX_EV_OPENED, f->id, 0, 0);
    if (!ev) return nomem(m);
    ev->addr = f->addr;
    ev->fin = (f->flags & UM_MUX_FLAG_FIN) != 0;
    return f->data_len ? readable(m, s) : 0;
}

static int on_data(um_mux_t *m, const um_mux_frame_t *f)
{
    if (f->data_len > m->rx_credit) return flow_err(m);
    m->rx_credit -= (uint32_t)f->data_len;
    stream_t *s = find(m, f->id);
    if (!s) {
        if (!id_seen(m, f->id)) return proto(m, "DATA on a stream never opened");
        session_consumed(m, f->data_len); /* late data of a reset stream */
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_FIN_RECV) return proto(m, "DATA after FIN");
    if ((s->flags & S_LOCAL) && !(s->flags & S_ESTABLISHED))
        return proto(m, "DATA before OPEN_RESULT");
    if (f->data_len > s->rx_credit) return flow_err(m);
    s->rx_credit -= (uint32_t)f->data_len;
    int r = um_buf_append(&s->rx, f->data, f->data_len);
    if (r == UM_ENOSPC) return flow_err(m);
    if (r) return nomem(m);
    session_consumed(m, f->data_len); /* buffered: the stream's window bounds it now */
    acct_sync(m, s);
    return readable(m, s);
}

static int on_open_result(um_mux_t *m, const um_mux_frame_t *f)
{
    stream_t *s = find(m, f->id);
    if (!s) {
        if (own_id(m, f->id) && id_seen(m, f->id)) {
            m->st.frames_ignored++; /* we reset it before the answer came */
            return 0;
        }
        return proto(m, "OPEN_RESULT for a stream never opened");
    }
    if (!(s->flags & S_LOCAL) || (s->flags & (S_OPEN_PENDING | S_ESTABLISHED)))
        return proto(m, "unexpected OPEN_RESULT");
    if (f->code == UM_MUX_OK ? !ev_push(m, UM_MUX_EV_OPEN_RESULT, s->id, f->code, 0)
                             : !ev_push_last(m, s, UM_MUX_EV_OPEN_RESULT, f->code))
        return nomem(m);
    if (f->code == UM_MUX_OK) {
        s->flags |= S_ESTABLISHED;
        return 0;
    }
    stream_free(m, s);
    return 0;
}

static int on_fin(um_mux_t *m, const um_mux_frame_t *f)
{
    stream_t *s = find(m, f->id);
    if (!s) {
        if (!id_seen(m, f->id)) return proto(m, "FIN on a stream never opened");
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_FIN_RECV) return proto(m, "second FIN");
    if ((s->flags & S_LOCAL) && !(s->flags & S_ESTABLISHED))
        return proto(m, "FIN before OPEN_RESULT");
    s->flags |= S_FIN_RECV;
    wu_remove(m, s);
    acct_sync(m, s); /* its unused credit is not a commitment any more */
    if (!ev_push(m, UM_MUX_EV_FIN, s->id, 0, 0)) return nomem(m);
    return 0;
}

static int on_rst(um_mux_t *m, const um_mux_frame_t *f)
{
    stream_t *s = find(m, f->id);
    if (!s) {
        if (!id_seen(m, f->id)) return proto(m, "RST on a stream never opened");
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_OPEN_PENDING) return proto(m, "RST before OPEN");
    if (!ev_push_last(m, s, UM_MUX_EV_RESET, f->code)) return nomem(m);
    stream_free(m, s);
    return 0;
}

static bool stream_can_send(const stream_t *s)
{
    if (s->flags & S_DGRAM) return um_buf_len(&s->tx) > 0;
    if (s->flags & S_OPEN_PENDING) return true;
    if (!(s->flags & (S_LOCAL | S_ESTABLISHED))) return false; /* not accepted yet */
    if (um_buf_len(&s->tx) > 0) return s->tx_credit > 0;
    return (s->flags & (S_FIN_QUEUED | S_FIN_SENT)) == S_FIN_QUEUED;
}

static int on_window(um_mux_t *m, const um_mux_frame_t *f)
{
    if (f->id == 0) {
        if ((uint64_t)m->tx_credit + f->value > UM_MUX_WINDOW_LIMIT) return flow_err(m);
        m->tx_credit += f->value;
        return 0;
    }
    stream_t *s = find(m, f->id);
    if (!s) {
        if (!id_seen(m, f->id)) return proto(m, "WINDOW_UPDATE for a stream never opened");
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_OPEN_PENDING) return proto(m, "WINDOW_UPDATE before OPEN");
    if ((uint64_t)s->tx_credit + f->value > UM_MUX_WINDOW_LIMIT) return flow_err(m);
    s->tx_credit += f->value;
    if (stream_can_send(s)) active_add(m, s);
    return 0;
}

static int on_pong(um_mux_t *m, const um_mux_frame_t *f)
{
    if (!m->ping_out || f->value != m->ping_id) {
        m->st.frames_ignored++;
        dbg(m, "PONG that answers no PING", f->value);
        return 0;
    }
    m->ping_out = false;
    uint64_t rtt = m->now >= f->ts ? m->now - f->ts : 0;
    if (rtt > UINT32_MAX) rtt = UINT32_MAX;
    if (!m->has_rtt)
        m->srtt = (uint32_t)rtt;
    else
        m->srtt = (uint32_t)(((uint64_t)m->srtt * 7 + rtt) / 8);
    m->has_rtt = true;
    um_mux_event_t *ev = ev_push(m, UM_MUX_EV_PONG, 0, 0, 0);
    if (!ev) return nomem(m);
    ev->value = (uint32_t)rtt;
    return 0;
}

static int on_goaway(um_mux_t *m, const um_mux_frame_t *f)
{
    if (f->value != 0 && !own_id(m, f->value)) return proto(m, "GOAWAY names a peer stream");
    if (!m->goaway_recv || f->value < m->goaway_last_recv) m->goaway_last_recv = f->value;
    m->goaway_recv = true;
    um_mux_event_t *ev = ev_push(m, UM_MUX_EV_GOAWAY, 0, f->code, 0);
    if (!ev) return nomem(m);
    ev->value = f->value;
    /* Our streams above the last id were never processed: reset them here. */
    for (size_t i = 0; i < m->nbuckets; i++) {
        stream_t *s = m->buckets[i];
        while (s) {
            stream_t *next = s->hnext;
            if ((s->flags & S_LOCAL) && s->id > m->goaway_last_recv) {
                if (!ev_push_last(m, s, UM_MUX_EV_RESET, UM_MUX_RST_GOING_AWAY)) return nomem(m);
                stream_free(m, s);
            }
            s = next;
        }
    }
    return 0;
}

static long assoc_find(const um_mux_t *m, uint32_t id)
{
    for (size_t i = 0; i < m->nassoc; i++)
        if (m->assoc[i] == id) return (long)i;
    return -1;
}

static void assoc_del(um_mux_t *m, size_t i)
{
    m->assoc[i] = m->assoc[--m->nassoc];
}

static int on_datagram(um_mux_t *m, const um_mux_frame_t *f)
{
    if (assoc_find(m, f->id) < 0) {
        if (own_id(m, f->id)) {
            if (f->id >= m->next_assoc) return proto(m, "DATAGRAM on an association never opened");
            m->st.dgram_dropped_in++;
            dbg(m, "datagram on a closed association dropped", f->id);
            return 0;
        }
        if (f->id <= m->peer_assoc_max) {
            m->st.dgram_dropped_in++;
            dbg(m, "datagram on a closed association dropped", f->id);
            return 0;
        }
        m->peer_assoc_max = f->id; /* the first datagram opens the association */
        if (m->nassoc >= m->cfg.max_assocs) {
            um_mux_frame_t c = {.type = UM_MUX_ASSOC_CLOSE, .id = f->id};
            m->st.dgram_dropped_in++;
            dbg(m, "association refused: limit", f->id);
            ctl_frame(m, &c, true); /* best effort: the datagram is lost anyway */
            return 0;
        }
        m->assoc[m->nassoc++] = f->id;
    }
    if (m->dg_rx_bytes + f->data_len > m->cfg.dgram_rx_max) {
        m->st.dgram_dropped_in++;
        dbg(m, "datagram dropped: receive queue full", f->id);
        return 0;
    }
    um_mux_event_t *ev = ev_push(m, UM_MUX_EV_DGRAM, f->id, 0, f->data_len);
    if (!ev) return nomem(m);
    ev->addr = f->addr;
    if (f->data_len) memcpy((uint8_t *)ev->data, f->data, f->data_len);
    m->dg_rx_bytes += f->data_len;
    m->st.payload_in += f->data_len;
    return 0;
}

static int on_assoc_close(um_mux_t *m, const um_mux_frame_t *f)
{
    long i = assoc_find(m, f->id);
    if (i < 0) {
        if (own_id(m, f->id) ? f->id >= m->next_assoc : false)
            return proto(m, "ASSOC_CLOSE for an association never opened");
        if (!own_id(m, f->id) && f->id > m->peer_assoc_max) m->peer_assoc_max = f->id;
        m->st.frames_ignored++;
        return 0;
    }
    assoc_del(m, (size_t)i);
    if (!ev_push(m, UM_MUX_EV_ASSOC_CLOSED, f->id, 0, 0)) return nomem(m);
    return 0;
}

static int handle(um_mux_t *m, const um_mux_frame_t *f)
{
    m->st.frames_in++;
    switch (f->type) {
    case UM_MUX_DATA: m->st.payload_in += f->data_len; return on_data(m, f);
    case UM_MUX_OPEN: m->st.payload_in += f->data_len; return on_open(m, f);
    case UM_MUX_OPEN_RESULT: return on_open_result(m, f);
    case UM_MUX_FIN: return on_fin(m, f);
    case UM_MUX_RST: return on_rst(m, f);
    case UM_MUX_WINDOW: return on_window(m, f);
    case UM_MUX_PING: {
        um_mux_frame_t p = *f;
        p.type = UM_MUX_PONG;
        if (ctl_frame(m, &p, true) != 0) {
            m->st.pongs_dropped++;
            dbg(m, "PONG dropped: control queue full", f->value);
        }
        return 0;
    }
    case UM_MUX_PONG: return on_pong(m, f);
    case UM_MUX_GOAWAY: return on_goaway(m, f);
    case UM_MUX_PADDING: return 0;
    case UM_MUX_DATAGRAM: return on_datagram(m, f);
    case UM_MUX_ASSOC_CLOSE: return on_assoc_close(m, f);
    default:
        m->st.frames_ignored++;
        dbg(m, "ignorable frame type skipped", f->type);
        return 0;
    }
}

static int handle_bytes(um_mux_t *m, const uint8_t *p, size_t n)
{
    um_mux_frame_t f;
    size_t used;
    if (um_mux_frame_decode(p, n, &f, &used) != 0 || used != n) return proto(m, "malformed frame");
    return handle(m, &f);
}

int um_mux_feed(um_mux_t *m, const uint8_t *p, size_t n)
{
    if (m->err) return m->err;
    if (n && !p) return UM_EINVAL;
    m->last_rx = m->now;
    m->st.bytes_in += n;
    while (n > 0 && !m->err) {
        if (m->part_len > 0) {
            if (m->part_len < UM_MUX_HDR) {
                size_t k = UM_MUX_HDR - m->part_len;
                if (k > n) k = n;
                memcpy(m->part + m->part_len, p, k);
                m->part_len += k;
                p += k;
                n -= k;
                if (m->part_len < UM_MUX_HDR) break;
                if (um_mux_frame_peek(m->part, m->part_len, &m->part_need) != 0)
                    return proto(m, "bad frame header");
            }
            size_t k = m->part_need - m->part_len;
            if (k > n) k = n;
            memcpy(m->part + m->part_len, p, k);
            m->part_len += k;
            p += k;
            n -= k;
            if (m->part_len == m->part_need) {
                m->part_len = 0;
                handle_bytes(m, m->part, m->part_need);
            }
            continue;
        }
        um_mux_frame_t f;
        size_t used;
        int r = um_mux_frame_decode(p, n, &f, &used);
        if (r == UM_EAGAIN) { /* n < one frame <= HDR + FRAME_MAX: keep it */
            memcpy(m->part, p, n);
            m->part_len = n;
            if (n >= UM_MUX_HDR) um_mux_frame_peek(p, n, &m->part_need);
            break;
        }
        if (r) return proto(m, "malformed frame");
        handle(m, &f);
        p += used;
        n -= used;
    }
    return m->err;
}

int um_mux_feed_eof(um_mux_t *m)
{
    if (m->err) return m->err;
    if (m->part_len) return proto(m, "pipe closed inside a frame");
    return fail(m, UM_EPIPE, UM_MUX_GOAWAY_NORMAL, "pipe closed");
}

/* ---- sending ----------------------------------------------------------- */

static void tx_drained(um_mux_t *m, stream_t *s)
{
    if ((s->flags & S_WANT_WRITABLE) && um_buf_len(&s->tx) <= m->cfg.send_buf_max / 2) {
        s->flags &= ~(uint32_t)S_WANT_WRITABLE;
        if (!(s->flags & S_EV_WRITABLE) && ev_push(m, UM_MUX_EV_WRITABLE, s->id, 0, 0))
            s->flags |= S_EV_WRITABLE;
    }
}

/* Copies what fits of a frame encoded in m->stage and keeps the rest for the
 * next pulls (frames may span records; nothing else goes in between). */
static size_t stage_out(um_mux_t *m, size_t total, uint8_t *out, size_t room)
{
    size_t k = total < room ? total : room;
    memcpy(out, m->stage, k);
    m->stage_len = total;
    m->stage_off = k;
    if (k == total) m->stage_len = m->stage_off = 0;
    return k;
}

/* Writes at most one frame of s into out (room bytes). Returns the bytes
 * written, 0 when s has nothing it may send into that room now. A frame that
 * cannot be cut (OPEN, DATAGRAM) and does not fit goes out over several pulls
 * when it starts a record (may_split), else waits for the next record. */
static size_t emit_one(um_mux_t *m, stream_t *s, uint8_t *out, size_t room, bool may_split)
{
    um_mux_frame_t f;
    size_t w = 0;
    if (s->flags & S_DGRAM) {
        const uint8_t *p;
        size_t n = um_buf_peek(&s->tx, &p), total;
        if (n == 0 || um_mux_frame_peek(p, n, &total) != 0) return 0;
        if (total > room && !may_split) return 0;
        if (total <= room)
            memcpy(out, p, total);
        else
            memcpy(m->stage, p, total);
        um_buf_consume(&s->tx, total);
        m->st.payload_out += total; /* approximately: address included */
        return total <= room ? total : stage_out(m, total, out, room);
    }
    memset(&f, 0, sizeof(f));
    f.id = s->id;
    const uint8_t *p;
    size_t avail = um_buf_peek(&s->tx, &p);
    size_t fixed = UM_MUX_HDR;
    bool staged = false;
    if (s->flags & S_OPEN_PENDING) {
        f.type = UM_MUX_OPEN;
        f.addr = *s->dest;
        fixed += um_mux_addr_size(s->dest);
        if (room < fixed) {
            if (!may_split) return 0;
            staged = true;
        }
    } else if (avail > 0 && s->tx_credit > 0 && m->tx_credit > 0) {
        f.type = UM_MUX_DATA;
        if (room < fixed + 1) return 0;
    } else if (avail == 0 && (s->flags & (S_FIN_QUEUED | S_FIN_SENT)) == S_FIN_QUEUED) {
        if (room < UM_MUX_HDR) return 0;
        f.type = UM_MUX_FIN;
        um_mux_frame_encode(&f, out, room, &w);
        s->flags |= S_FIN_SENT;
        return w;
    } else {
        return 0;
    }
    size_t n = avail;
    if (n > s->tx_credit) n = s->tx_credit;
    if (n > m->tx_credit) n = m->tx_credit;
    if (staged)
        n = 0;
    else if (n > room - fixed)
        n = room - fixed;
    if (n > m->cfg.max_frame - (fixed - UM_MUX_HDR)) n = m->cfg.max_frame - (fixed - UM_MUX_HDR);
    f.data = p;
    f.data_len = n;
    if (f.type == UM_MUX_OPEN && n == avail && (s->flags & S_FIN_QUEUED)) {
        f.flags = UM_MUX_FLAG_FIN;
        s->flags |= S_FIN_SENT;
    }
    if (staged) {
        if (um_mux_frame_encode(&f, m->stage, UM_MUX_HDR + UM_MUX_FRAME_MAX, &w) != 0) return 0;
    } else if (um_mux_frame_encode(&f, out, room, &w) != 0) {
        return 0;
    }
    if (f.type == UM_MUX_OPEN) {
        s->flags &= ~(uint32_t)S_OPEN_PENDING;
        free(s->dest);
        s->dest = NULL;
        if (s->rx_win > UM_MUX_INIT_WINDOW) { /* our initial grant, now that the peer knows s */
            uint32_t extra = s->rx_win - UM_MUX_INIT_WINDOW;
            if (acct_fits(m, extra)) {
                s->rx_credit += extra;
                s->rx_announce += extra;
            } else {
                s->rx_win = UM_MUX_INIT_WINDOW; /* over the share: the protocol's minimum */
            }
        }
        if (s->rx_announce) wu_add(m, s);
    }
    s->tx_credit -= (uint32_t)n;
    m->tx_credit -= (uint32_t)n;
    m->st.payload_out += n;
    if (n) s->progress = m->now;
    um_buf_consume(&s->tx, n);
    acct_sync(m, s);
    tx_drained(m, s);
    return staged ? stage_out(m, w, out, room) : w;
}

static size_t emit_window(um_mux_t *m, uint32_t id, uint32_t *announce, uint8_t *out, size_t room)
{
    size_t w = 0, total = 0;
    while (*announce && room - total >= UM_MUX_HDR + 4) {
        uint32_t v = *announce > UM_MUX_WINDOW_LIMIT ? UM_MUX_WINDOW_LIMIT : *announce;
        um_mux_frame_t f = {.type = UM_MUX_WINDOW, .id = id, .value = v};
        um_mux_frame_encode(&f, out + total, room - total, &w);
        total += w;
        *announce -= v;
        m->st.frames_out++;
    }
    return total;
}

size_t um_mux_pull(um_mux_t *m, uint8_t *out, size_t cap)
{
    if (cap > m->cfg.record_size) cap = m->cfg.record_size;
    size_t w = 0;
    if (m->stage_len) { /* the rest of a frame cut at the end of the last record */
        w = m->stage_len - m->stage_off;
        if (w > cap) w = cap;
        memcpy(out, m->stage + m->stage_off, w);
        m->stage_off += w;
        if (m->stage_off < m->stage_len) goto out;
        m->stage_len = m->stage_off = 0;
    }
    w += um_buf_read(&m->ctl, out + w, cap - w);
    if (um_buf_len(&m->ctl) > 0 || m->err) goto out;

    w += emit_window(m, 0, &m->rx_announce, out + w, cap - w);
    while (m->wu_head && cap - w >= UM_MUX_HDR + 4) {
        stream_t *s = m->wu_head;
        w += emit_window(m, s->id, &s->rx_announce, out + w, cap - w);
        if (s->rx_announce == 0) wu_remove(m, s);
    }

    /* Deficit round-robin over streams with something to send. */
    size_t skips = 0, guard = 0;
    while (m->active && cap > w && guard++ < 100000) {
        stream_t *s = m->active;
        if (s->deficit == 0) s->deficit = m->cfg.quantum;
        bool sent = false;
        for (;;) {
            size_t n = emit_one(m, s, out + w, cap - w, w == 0);
            if (n == 0) break;
            w += n;
            sent = true;
            m->st.frames_out++;
            s->deficit = n >= s->deficit ? 0 : s->deficit - (uint32_t)n;
            if (s->deficit == 0) break;
        }
        if (!stream_can_send(s)) {
            active_remove(m, s);
            if (!(s->flags & S_DGRAM)) maybe_free(m, s);
            skips = 0;
            continue;
        }
        if (sent) skips = 0;
        if (s->deficit == 0) { /* quantum used up: to the back */
            m->active = s->anext;
            continue;
        }
        if (m->tx_credit == 0 && um_buf_len(&s->tx) > 0 &&
            !(s->flags & (S_DGRAM | S_OPEN_PENDING))) {
            /* blocked by the session window only: let the others try */
            m->active = s->anext;
            if (++skips >= m->nactive) break;
            continue;
        }
        break; /* no room left for s's next frame */
    }
out:
    m->st.bytes_out += w;
    return w;
}

bool um_mux_want_pull(const um_mux_t *m)
{
    if (um_buf_len(&m->ctl) || m->stage_len) return true;
    if (m->err) return false;
    return m->rx_announce || m->wu_head || m->active;
}

/* ---- time -------------------------------------------------------------- */

/* Buffers keep their storage while busy (no malloc per record); an empty
 * buffer that nothing was appended to for a whole tick gives it back, so an
 * idle stream costs only its struct, and a stream whose window closed keeps
 * little storage. A busy stream's buffer that is empty at the tick keeps
 * its storage: regrowing it from nothing (a copy and a wipe per doubling, up
 * to 32 MiB, and fresh pages) twice a second cost about a tenth of the
 * server's CPU during a bulk upload. */
static void trim(um_buf_t *b)
{
    um_buf_trim(b);
}

static void trim_all(um_mux_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (stream_t *s = m->buckets[i]; s; s = s->hnext) {
            trim(&s->rx);
            trim(&s->tx);
            acct_sync(m, s);
        }
    trim(&m->dg.tx);
    trim(&m->ctl);
}

/* A stream with bytes waiting that nobody takes: received bytes the
 * application does not read, or bytes to send that the peer grants no
 * window for. */
static bool stream_stuck(const stream_t *s)
{
    if (um_buf_len(&s->rx) > 0) return true;
    return um_buf_len(&s->tx) > 0 && s->tx_credit == 0 && !(s->flags & S_OPEN_PENDING);
}

/* Streams stuck for stream_timeout_ms are reset (RST to the peer, EV_RESET
 * with UM_MUX_RST_STALLED here), so they give back what they hold. */
static int reap_stalled(um_mux_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (stream_t *s = m->buckets[i], *next; s; s = next) {
            next = s->hnext;
            if (!stream_stuck(s)) {
                s->progress = m->now;
                continue;
            }
            if (m->now - s->progress < m->cfg.stream_timeout_ms) continue;
            bool both_fin = (s->flags & (S_FIN_SENT | S_FIN_RECV)) == (S_FIN_SENT | S_FIN_RECV);
            if (!both_fin && (s->flags & (S_LOCAL | S_ESTABLISHED))) {
                um_mux_frame_t f = {.type = UM_MUX_RST, .id = s->id, .code = UM_MUX_RST_CANCEL};
                if (ctl_frame(m, &f, false) != 0)
                    return fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
            } else if (!(s->flags & (S_LOCAL | S_ESTABLISHED))) {
                continue; /* not accepted yet: the application answers it */
            }
            if (!ev_push_last(m, s, UM_MUX_EV_RESET, UM_MUX_RST_STALLED)) return nomem(m);
            m->st.streams_stalled++;
            stream_free(m, s);
        }
    return 0;
}

/* Grants withheld while the memory account was full: retried each tick. */
static void retry_withheld(um_mux_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (stream_t *s = m->buckets[i]; s; s = s->hnext)
            if (s->flags & S_WITHHELD) stream_grant(m, s);
}

void um_mux_touch(um_mux_t *m, uint64_t now_ms)
{
    if (now_ms < m->now) now_ms = m->now;
    m->last_rx = now_ms;
    m->ping_out = false;
    /* A ping at the next tick: the round trip of the new path. */
    m->last_ping = now_ms >= m->cfg.ping_interval_ms ? now_ms - m->cfg.ping_interval_ms : 0;
}

int um_mux_tick(um_mux_t *m, uint64_t now_ms)
{
    if (m->err) return m->err;
    if (now_ms < m->now) now_ms = m->now; /* time never runs backwards here */
    if (now_ms != m->now || !m->started) trim_all(m);
    m->now = now_ms;
    if (!m->started) {
        m->started = true;
        m->last_rx = now_ms;
        m->last_ping = now_ms;
    }
    if (m->cfg.ping_timeout_ms && now_ms - m->last_rx >= m->cfg.ping_timeout_ms)
        return fail(m, UM_ETIMEDOUT, UM_MUX_GOAWAY_TIMEOUT, "keepalive timeout");
    if (m->ping_out && now_ms - m->last_ping >= m->cfg.ping_timeout_ms) m->ping_out = false;
    if (m->cfg.ping_interval_ms && !m->ping_out &&
        now_ms - m->last_ping >= m->cfg.ping_interval_ms) {
        um_mux_frame_t f = {.type = UM_MUX_PING, .value = ++m->ping_id, .ts = now_ms};
        if (ctl_frame(m, &f, false) == 0) {
            m->ping_out = true;
            m->last_ping = now_ms;
        }
    }
    if (m->cfg.mem) retry_withheld(m);
    if (m->cfg.stream_timeout_ms) return reap_stalled(m);
    return 0;
}

/* ---- events out -------------------------------------------------------- */

static um_mux_event_t *ev_push_last(um_mux_t *m, const void *sp, um_mux_event_type_t type, int code)
{
    const stream_t *s = sp;
    um_mux_event_t *ev = ev_push(m, type, s->id, code, 0);
    if (ev) {
        ev->ud = s->ud;
        ev->last = true;
    }
    return ev;
}

int um_mux_poll(um_mux_t *m, um_mux_event_t *ev)
{
    if (m->ev_last) {
        if (m->ev_last->ev.type == UM_MUX_EV_DGRAM) m->dg_rx_bytes -= m->ev_last->ev.len;
        free(m->ev_last);
        m->ev_last = NULL;
    }
    evnode_t *n = m->ev_head;
    if (!n) return 0;
    m->ev_head = n->next;
    if (!m->ev_head) m->ev_tail = NULL;
    m->ev_last = n;
    *ev = n->ev;
    if (ev->type == UM_MUX_EV_READABLE || ev->type == UM_MUX_EV_WRITABLE) {
        stream_t *s = find(m, ev->id);
        if (s)
            s->flags &= ~(uint32_t)(ev->type == UM_MUX_EV_READABLE ? S_EV_READABLE : S_EV_WRITABLE);
    }
    if (!ev->last && ev->id && ev->type != UM_MUX_EV_DGRAM && ev->type != UM_MUX_EV_ASSOC_CLOSED &&
        ev->type != UM_MUX_EV_GOAWAY) {
        const stream_t *s = find(m, ev->id);
        ev->ud = s ? s->ud : NULL; /* as it is now; NULL once the stream is gone */
    }
    return 1;
}

/* ---- stream API -------------------------------------------------------- */

static int get(um_mux_t *m, uint32_t id, stream_t **out)
{
    if (m->err) return m->err;
    *out = find(m, id);
    return *out ? 0 : UM_ENOENT;
}

static bool addr_ok(const um_addr_t *a)
{
    return a && um_mux_addr_size(a) > 0 && a->port != 0 &&
           (a->type != UM_ADDR_DOMAIN ||
            (a->domain_len > 0 && um_domain_valid(a->u.domain, a->domain_len)));
}

int um_mux_stream_open(um_mux_t *m, const um_addr_t *dest, uint32_t *id)
{
    if (m->err) return m->err;
    if (!addr_ok(dest) || !id) return UM_EINVAL;
    if (m->goaway_sent || m->goaway_recv) return UM_EPIPE;
    if (m->nstreams >= m->cfg.max_streams || m->next_id > UINT32_MAX - 2) return UM_ELIMIT;
    um_addr_t *d = malloc(sizeof(*d));
    if (!d) return UM_ENOMEM;
    *d = *dest;
    stream_t *s = stream_new(m, m->next_id, S_LOCAL | S_OPEN_PENDING);
    if (!s) {
        free(d);
        return UM_ENOMEM;
    }
    s->dest = d;
    m->next_id += 2;
    active_add(m, s);
    *id = s->id;
    return 0;
}

int um_mux_stream_accept(um_mux_t *m, uint32_t id, uint8_t code)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    if ((s->flags & (S_LOCAL | S_ESTABLISHED)) || !um_mux_result_str(code)) return UM_EINVAL;
    um_mux_frame_t f = {.type = UM_MUX_OPEN_RESULT, .id = id, .code = code};
    if (ctl_frame(m, &f, false) != 0)
        return fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    if (code != UM_MUX_OK) {
        stream_free(m, s);
        return 0;
    }
    s->flags |= S_ESTABLISHED;
    m->npending--;
    if (s->rx_win > UM_MUX_INIT_WINDOW) {
        uint32_t extra = s->rx_win - UM_MUX_INIT_WINDOW;
        if (acct_fits(m, extra)) {
            s->rx_credit += extra;
            s->rx_announce += extra;
            if (!(s->flags & S_FIN_RECV)) wu_add(m, s);
            acct_sync(m, s);
        } else {
            s->rx_win = UM_MUX_INIT_WINDOW; /* over the share: the protocol's minimum */
        }
    }
    if (stream_can_send(s)) active_add(m, s);
    return 0;
}

int um_mux_stream_write(um_mux_t *m, uint32_t id, const void *p, size_t n, size_t *accepted)
{
    stream_t *s;
    *accepted = 0;
    int r = get(m, id, &s);
    if (r) return r;
    if (s->flags & S_FIN_QUEUED) return UM_EPIPE;
    if (n && !p) return UM_EINVAL;
    size_t k = um_buf_space(&s->tx);
    if (k > n) k = n;
    if (k && (r = um_buf_append(&s->tx, p, k)) != 0) return r;
    if (k < n) s->flags |= S_WANT_WRITABLE;
    *accepted = k;
    if (k) acct_sync(m, s);
    if (k && stream_can_send(s)) active_add(m, s);
    return 0;
}

int um_mux_stream_peek(um_mux_t *m, uint32_t id, const uint8_t **p, size_t *n)
{
    stream_t *s;
    *n = 0;
    int r = get(m, id, &s);
    if (r) return r;
    *n = um_buf_peek(&s->rx, p);
    if (*n) return 0;
    if (!(s->flags & S_FIN_RECV)) return UM_EAGAIN;
    s->flags |= S_EOF_READ;
    maybe_free(m, s);
    return UM_EPIPE;
}

int um_mux_stream_consume(um_mux_t *m, uint32_t id, size_t n)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    if (n > um_buf_len(&s->rx)) return UM_EINVAL;
    um_buf_consume(&s->rx, n);
    stream_consumed(m, s, n);
    return 0;
}

int um_mux_stream_read(um_mux_t *m, uint32_t id, void *out, size_t cap, size_t *got)
{
    const uint8_t *p;
    size_t n;
    *got = 0;
    int r = um_mux_stream_peek(m, id, &p, &n);
    if (r) return r;
    if (n > cap) n = cap;
    if (n == 0) return UM_EAGAIN;
    memcpy(out, p, n);
    *got = n;
    return um_mux_stream_consume(m, id, n);
}

int um_mux_stream_shutdown(um_mux_t *m, uint32_t id)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    if (s->flags & S_FIN_QUEUED) return 0;
    s->flags |= S_FIN_QUEUED;
    if (stream_can_send(s)) active_add(m, s);
    return 0;
}

int um_mux_stream_reset(um_mux_t *m, uint32_t id, uint8_t code)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    bool both_fin = (s->flags & (S_FIN_SENT | S_FIN_RECV)) == (S_FIN_SENT | S_FIN_RECV);
    if (!(s->flags & S_OPEN_PENDING) && !both_fin) {
        um_mux_frame_t f = {.type = UM_MUX_RST, .id = id, .code = code};
        if (ctl_frame(m, &f, false) != 0)
            return fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    }
    stream_free(m, s);
    return 0;
}

void um_mux_stream_set_ud(um_mux_t *m, uint32_t id, void *ud)
{
    stream_t *s = find(m, id);
    if (s) s->ud = ud;
}

void *um_mux_stream_get_ud(const um_mux_t *m, uint32_t id)
{
    const stream_t *s = find(m, id);
    return s ? s->ud : NULL;
}

int um_mux_stream_info(const um_mux_t *m, uint32_t id, um_mux_stream_info_t *info)
{
    const stream_t *s = find(m, id);
    if (!s) return UM_ENOENT;
    info->rx_buffered = um_buf_len(&s->rx);
    info->tx_buffered = um_buf_len(&s->tx);
    info->rx_window = s->rx_win;
    info->tx_credit = s->tx_credit < m->tx_credit ? s->tx_credit : m->tx_credit;
    size_t txq = um_buf_len(&s->tx);
    info->tx_full = txq > (uint64_t)s->tx_credit + TX_SLACK ||
                    (txq >= TX_SLACK && m->cfg.mem && !um_memacct_fits(m->cfg.mem, 0));
    info->fin_received = (s->flags & S_FIN_RECV) != 0;
    info->fin_sent = (s->flags & S_FIN_SENT) != 0;
    info->local_opened = (s->flags & S_LOCAL) != 0;
    info->established = (s->flags & S_ESTABLISHED) != 0;
    return 0;
}

size_t um_mux_stream_count(const um_mux_t *m)
{
    return m->nstreams;
}

/* ---- datagrams --------------------------------------------------------- */

int um_mux_assoc_open(um_mux_t *m, uint32_t *id)
{
    if (m->err) return m->err;
    if (m->nassoc >= m->cfg.max_assocs || m->next_assoc > UINT32_MAX - 2) return UM_ELIMIT;
    *id = m->next_assoc;
    m->next_assoc += 2;
    m->assoc[m->nassoc++] = *id;
    return 0;
}

int um_mux_assoc_close(um_mux_t *m, uint32_t id)
{
    if (m->err) return m->err;
    long i = assoc_find(m, id);
    if (i < 0) return UM_ENOENT;
    assoc_del(m, (size_t)i);
    um_mux_frame_t f = {.type = UM_MUX_ASSOC_CLOSE, .id = id};
    if (ctl_frame(m, &f, false) != 0)
        return fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    return 0;
}

int um_mux_dgram_send(um_mux_t *m, uint32_t id, const um_addr_t *addr, const void *p, size_t n)
{
    if (m->err) return m->err;
    if (!addr_ok(addr) || (n && !p)) return UM_EINVAL;
    if (assoc_find(m, id) < 0)
        return (own_id(m, id) ? id < m->next_assoc : id <= m->peer_assoc_max) ? UM_EPIPE
                                                                              : UM_ENOENT;
    size_t len = um_mux_addr_size(addr) + n;
    if (len > m->cfg.max_frame) return UM_EMSGSIZE;
    uint8_t *q = um_buf_reserve(&m->dg.tx, UM_MUX_HDR + len);
    if (!q) {
        m->st.dgram_dropped_out++;
        return UM_ENOSPC;
    }
    um_mux_frame_t f = {.type = UM_MUX_DATAGRAM, .id = id, .addr = *addr, .data = p, .data_len = n};
    size_t w;
    int r = um_mux_frame_encode(&f, q, UM_MUX_HDR + len, &w);
    if (r) return r;
    um_buf_commit(&m->dg.tx, w);
    active_add(m, &m->dg);
    return 0;
}

/* ---- session ----------------------------------------------------------- */

int um_mux_goaway(um_mux_t *m, uint8_t code)
{
    if (m->err) return m->err;
    if (m->goaway_sent) return 0;
    um_mux_frame_t f = {.type = UM_MUX_GOAWAY, .value = m->peer_max_id, .code = code};
    if (ctl_frame(m, &f, false) != 0)
        return fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    m->goaway_sent = true;
    m->goaway_last_sent = m->peer_max_id;
    return 0;
}

bool um_mux_done(const um_mux_t *m)
{
    if (m->err) return um_buf_len(&m->ctl) == 0;
    return (m->goaway_sent || m->goaway_recv) && m->nstreams == 0 && !um_mux_want_pull(m);
}

int um_mux_error(const um_mux_t *m)
{
    return m->err;
}

uint32_t um_mux_rtt_ms(const um_mux_t *m)
{
    return m->has_rtt ? m->srtt : 0;
}

void um_mux_get_stats(const um_mux_t *m, um_mux_stats_t *st)
{
    *st = m->st;
}
