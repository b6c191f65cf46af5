/* Stream multiplexer state machine. Wire format: docs/PROTOCOL.md section 6;
 * design notes (windows, scheduler, lifetimes): docs/internals/mux.md. */
#include "mux/mux_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/memtrim.h"

void um_mux_config_default(um_mux_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->max_streams = 1024;
    c->max_pending_opens = 128;
    c->stream_window_init = 256 * 1024;
    c->stream_window_max = 16 * 1024 * 1024;
    c->session_window_init = 1024 * 1024;
    c->session_window_max = 64 * 1024 * 1024;
    c->send_buf_max = 384 * 1024;
    c->send_total_max = 1024 * 1024;
    c->record_size = 16384;
    c->max_frame = UM_MUX_FRAME_MAX;
    /* Four records per turn of the round-robin: with 16 KiB, 8 downloads
     * reached the client interleaved record by record, so each loop turn
     * (256 KiB read) gave every stream ~32 KiB and the client wrote its
     * applications' sockets in as many small writes, one wakeup of the
     * reader each (docs/internals/mux.md, Scheduler). */
    c->quantum = 65536;
    c->young_bytes = 256 * 1024;
    c->bulk_queue = 64 * 1024;
    c->max_assocs = 256;
    c->dgram_queue_max = 256 * 1024;
    c->dgram_rx_max = 256 * 1024;
    c->ping_interval_ms = 10000;
    c->ping_timeout_ms = 30000;
    c->control_max = 64 * 1024;
    c->stream_timeout_ms = 60000;
}

/* ---- small helpers ---------------------------------------------------- */

bool mux_own_id(const um_mux_t *m, uint32_t id)
{
    return (id & 1u) == (m->role == UM_MUX_CLIENT ? 1u : 0u);
}

/* True when id names a stream that existed (or was refused) and is gone. */
bool mux_id_seen(const um_mux_t *m, uint32_t id)
{
    return mux_own_id(m, id) ? id < m->next_id : id <= m->peer_max_id;
}

uint32_t mux_min32(uint64_t a, uint64_t b)
{
    uint64_t v = a < b ? a : b;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void mux_dbg(um_mux_t *m, const char *what, uint32_t id)
{
    um_log_limited(&m->rl, 5, 1000, UM_LOG_DEBUG, "mux: %s (id %u)", what, id);
}

/* ---- events ------------------------------------------------------------ */

um_mux_event_t *mux_ev_push(um_mux_t *m, um_mux_event_type_t type, uint32_t id, int code,
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

/* ---- control queue and fatal errors ------------------------------------ */

int mux_ctl_frame(um_mux_t *m, const um_mux_frame_t *f, bool from_peer)
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
            mux_stream_free(m, m->buckets[i]);
}

/* The session is over: one GOAWAY out, one EV_ERROR up, every stream gone. */
int mux_fail(um_mux_t *m, int err, uint8_t gcode, const char *why)
{
    if (m->err) return m->err;
    m->err = err;
    um_log_limited(&m->rl, 5, 1000, UM_LOG_DEBUG, "mux: session ends: %s (%s)", why,
                   um_strerror(err));
    free_all_streams(m);
    mux_active_remove(m, &m->dg);
    um_buf_free(&m->dg.tx);
    /* queued control frames (and a frame cut at a record's end) still go out
     * whole before the GOAWAY, so the peer can parse it */
    m->rx_announce = 0;
    if (err != UM_EPIPE) {
        um_mux_frame_t f = {.type = UM_MUX_GOAWAY, .value = m->peer_max_id, .code = gcode};
        mux_ctl_frame(m, &f, false);
    }
    mux_ev_push(m, UM_MUX_EV_ERROR, 0, err, 0);
    return err;
}

int mux_proto(um_mux_t *m, const char *why)
{
    return mux_fail(m, UM_EPROTO, UM_MUX_GOAWAY_PROTOCOL, why);
}

int mux_flow_err(um_mux_t *m)
{
    return mux_fail(m, UM_EPROTO, UM_MUX_GOAWAY_FLOW_CONTROL, "peer overran a window");
}

int mux_nomem(um_mux_t *m)
{
    return mux_fail(m, UM_ENOMEM, UM_MUX_GOAWAY_INTERNAL, "out of memory");
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
    if (!m->part || !m->stage || (c.max_assocs && !m->assoc) || mux_table_grow(m) != 0) {
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
    size_t before = 0, after = 0;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (stream_t *s = m->buckets[i]; s; s = s->hnext) {
            before += s->rx.cap + s->tx.cap;
            trim(&s->rx);
            trim(&s->tx);
            after += s->rx.cap + s->tx.cap;
            mux_acct_sync(m, s);
        }
    trim(&m->dg.tx);
    trim(&m->ctl);
    /* What the streams gave back goes back to the system too (memtrim.h). */
    if (before > after) um_memtrim_note(before - after, m->now);
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
                if (mux_ctl_frame(m, &f, false) != 0)
                    return mux_fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
            } else if (!(s->flags & (S_LOCAL | S_ESTABLISHED))) {
                continue; /* not accepted yet: the application answers it */
            }
            if (!mux_ev_push_last(m, s, UM_MUX_EV_RESET, UM_MUX_RST_STALLED)) return mux_nomem(m);
            m->st.streams_stalled++;
            mux_stream_free(m, s);
        }
    return 0;
}

/* Grants withheld while the memory account was full: retried each tick. */
static void retry_withheld(um_mux_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (stream_t *s = m->buckets[i]; s; s = s->hnext)
            if (s->flags & S_WITHHELD) mux_stream_grant(m, s);
}

void um_mux_touch(um_mux_t *m, uint64_t now_ms)
{
    if (now_ms < m->now) now_ms = m->now;
    m->last_rx = now_ms;
    m->ping_out = false;
    /* A ping at the next tick: the round trip of the new path. The interval
     * is taken back modulo 2^64 (now_ms - last_ping is then exactly the
     * interval), so this holds while the clock still reads less than it. */
    m->last_ping = now_ms - m->cfg.ping_interval_ms;
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
        /* A ping at once (as um_mux_touch does for a new path): window
         * auto-tuning needs the round trip; before the first PONG it
         * assumes DEFAULT_RTT_MS and doubles windows towards their maximum
         * on any fast path, which is memory a slow reader then fills.
         * Modulo 2^64 as in um_mux_touch: a monotonic clock reads less than
         * the interval for the first seconds after boot. */
        m->last_ping = now_ms - m->cfg.ping_interval_ms;
    }
    if (m->cfg.ping_timeout_ms && now_ms - m->last_rx >= m->cfg.ping_timeout_ms)
        return mux_fail(m, UM_ETIMEDOUT, UM_MUX_GOAWAY_TIMEOUT, "keepalive timeout");
    /* An unanswered PING is given up after the keepalive timeout, or with
     * none (resumable sessions) after the interval, when the next one goes;
     * until then its PONG, however late, is the round trip. */
    uint32_t give_up = m->cfg.ping_timeout_ms ? m->cfg.ping_timeout_ms : m->cfg.ping_interval_ms;
    if (m->ping_out && now_ms - m->last_ping >= give_up) m->ping_out = false;
    if (m->cfg.ping_interval_ms && !m->ping_out &&
        now_ms - m->last_ping >= m->cfg.ping_interval_ms) {
        um_mux_frame_t f = {.type = UM_MUX_PING, .value = ++m->ping_id, .ts = now_ms};
        if (mux_ctl_frame(m, &f, false) == 0) {
            m->ping_out = true;
            m->last_ping = now_ms;
        }
    }
    if (m->cfg.mem) retry_withheld(m);
    if (m->cfg.stream_timeout_ms) return reap_stalled(m);
    return 0;
}

/* ---- events out -------------------------------------------------------- */

um_mux_event_t *mux_ev_push_last(um_mux_t *m, const void *sp, um_mux_event_type_t type, int code)
{
    const stream_t *s = sp;
    um_mux_event_t *ev = mux_ev_push(m, type, s->id, code, 0);
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
        stream_t *s = mux_find(m, ev->id);
        if (s)
            s->flags &= ~(uint32_t)(ev->type == UM_MUX_EV_READABLE ? S_EV_READABLE : S_EV_WRITABLE);
    }
    if (!ev->last && ev->id && ev->type != UM_MUX_EV_DGRAM && ev->type != UM_MUX_EV_ASSOC_CLOSED &&
        ev->type != UM_MUX_EV_GOAWAY) {
        const stream_t *s = mux_find(m, ev->id);
        ev->ud = s ? s->ud : NULL; /* as it is now; NULL once the stream is gone */
    }
    return 1;
}

/* ---- session ----------------------------------------------------------- */

int um_mux_goaway(um_mux_t *m, uint8_t code)
{
    if (m->err) return m->err;
    if (m->goaway_sent) return 0;
    um_mux_frame_t f = {.type = UM_MUX_GOAWAY, .value = m->peer_max_id, .code = code};
    if (mux_ctl_frame(m, &f, false) != 0)
        return mux_fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
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
