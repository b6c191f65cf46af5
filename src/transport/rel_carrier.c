/* The reliable carrier over a datagram link (rel_carrier.h): thin libuv
 * glue around the sans-I/O reliability layer (rel.c).
 *
 * Two timers: `tm` follows um_rel_next_timer (RTO, pings, idle death) and
 * `kick` (0 ms) runs the deferred work after every call that changed
 * something: read callbacks, the drain callback, the link's want_output.
 * So no user callback ever runs inside a carrier call. The carrier's write
 * queue is rel's send buffer plus an overflow queue (`ovf`) for what rel
 * cannot take yet, both together bounded by wq_max; it drains into rel as
 * acks free space. The memory is released once both timers are closed. */
#include "transport/rel_carrier.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"

#define READ_CHUNK    (16u << 10)
#define READS_PER_RUN 16 /* chunks delivered per run (then another kick) */
#define WQ_DEFAULT    (1u << 20)

struct um_rel_carrier {
    um_carrier_t base;
    uv_loop_t *loop;
    um_rel_t *rel;
    um_rel_link_t link;
    bool linked;
    uv_timer_t tm, kick;
    int open_handles;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    um_buf_t ovf;
    size_t wq_max;
    bool reading, shut, shut_pending, closed, end_delivered, drain_armed, kick_armed;
    int err; /* terminal error to deliver (UM_ETIMEDOUT) */
    void (*on_close)(void *ud);
    void *on_close_ud;
    uint8_t *scratch;
};

static um_rel_carrier_t *of(um_carrier_t *c)
{
    return (um_rel_carrier_t *)c;
}

static uint64_t now_ms(const um_rel_carrier_t *rc)
{
    return uv_now(rc->loop);
}

static void run(um_rel_carrier_t *rc);

static void on_kick(uv_timer_t *t)
{
    um_rel_carrier_t *rc = t->data;
    rc->kick_armed = false;
    run(rc);
}

static void on_timer(uv_timer_t *t)
{
    run(t->data);
}

/* Deferred work after a call: runs from the loop, never inside the call. */
static void kick(um_rel_carrier_t *rc)
{
    if (rc->closed || rc->kick_armed) return;
    rc->kick_armed = true;
    uv_timer_start(&rc->kick, on_kick, 0, 0);
}

static size_t queued(const um_rel_carrier_t *rc)
{
    return um_rel_queued(rc->rel) + um_buf_len(&rc->ovf);
}

/* Moves what rel takes from the overflow queue into it; then the FIN. */
static void flush(um_rel_carrier_t *rc)
{
    const uint8_t *p;
    size_t n = um_buf_peek(&rc->ovf, &p), room = um_rel_space(rc->rel);
    size_t k = n < room ? n : room;
    if (k && um_rel_write(rc->rel, p, k) == 0) um_buf_consume(&rc->ovf, k);
    if (rc->shut_pending && um_buf_len(&rc->ovf) == 0) {
        rc->shut_pending = false;
        (void)um_rel_shutdown(rc->rel);
    }
}

/* Calls the read callback (set); false once the carrier was closed in it. */
static bool deliver(um_rel_carrier_t *rc, const uint8_t *p, size_t n, int status)
{
    rc->rd(&rc->base, p, n, status, rc->ud);
    return !rc->closed;
}

static void run(um_rel_carrier_t *rc)
{
    if (rc->closed) return;
    uint64_t now = now_ms(rc);
    if (!rc->err) {
        int e = um_rel_poll(rc->rel, now);
        if (e) rc->err = e;
    }
    flush(rc);
    /* reads, bounded per run */
    for (int i = 0; rc->reading && rc->rd && !rc->end_delivered && i < READS_PER_RUN; i++) {
        size_t n = 0;
        int e = um_rel_read(rc->rel, rc->scratch, READ_CHUNK, &n);
        if (n) {
            if (!deliver(rc, rc->scratch, n, 0)) return;
            if (i == READS_PER_RUN - 1) kick(rc); /* more next time round */
            continue;
        }
        if (e == 0 && rc->err) e = rc->err;
        if (e) {
            rc->end_delivered = true;
            if (!deliver(rc, NULL, 0, e)) return;
        }
        break;
    }
    if (rc->closed) return;
    if (rc->drain_armed && queued(rc) <= rc->wq_max / 4) {
        rc->drain_armed = false;
        if (rc->dr) {
            rc->dr(&rc->base, rc->ud);
            if (rc->closed) return;
        }
    }
    if (rc->linked && !rc->err && um_rel_wants_output(rc->rel, now)) {
        rc->link.want_output(rc->link.ud);
        if (rc->closed) return;
    }
    uint64_t t = rc->err ? UINT64_MAX : um_rel_next_timer(rc->rel, now);
    if (t == UINT64_MAX)
        uv_timer_stop(&rc->tm);
    else
        uv_timer_start(&rc->tm, on_timer, t > now ? t - now : 0, 0);
}

/* ---- link side -------------------------------------------------------- */

int um_rel_carrier_input(um_rel_carrier_t *rc, const uint8_t *pkt, size_t n)
{
    if (rc->closed) return UM_EPIPE;
    if (rc->err) return rc->err;
    int e = um_rel_input(rc->rel, pkt, n, now_ms(rc));
    if (e == UM_EPROTO) return e;
    if (e) rc->err = e;
    kick(rc);
    return 0;
}

int um_rel_carrier_output(um_rel_carrier_t *rc, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (rc->closed) return UM_EPIPE;
    if (rc->err) return rc->err;
    flush(rc); /* bytes written since the last run go out now */
    int e = um_rel_output(rc->rel, now_ms(rc), out, cap, n);
    if (e) rc->err = e;
    kick(rc); /* the timer follows (an RTO was armed) */
    return e;
}

bool um_rel_carrier_wants_output(const um_rel_carrier_t *rc)
{
    if (rc->closed || rc->err) return false;
    return um_rel_wants_output(rc->rel, now_ms(rc)) ||
           (um_buf_len(&rc->ovf) && um_rel_space(rc->rel)) || rc->shut_pending;
}

void um_rel_carrier_detach_link(um_rel_carrier_t *rc)
{
    rc->linked = false;
    if (!rc->err && !um_rel_finished(rc->rel)) rc->err = UM_ETIMEDOUT;
    kick(rc);
}

um_rel_t *um_rel_carrier_rel(um_rel_carrier_t *rc)
{
    return rc->rel;
}

void um_rel_carrier_on_close(um_rel_carrier_t *rc, void (*cb)(void *ud), void *ud)
{
    rc->on_close = cb;
    rc->on_close_ud = ud;
}

um_carrier_t *um_rel_carrier_base(um_rel_carrier_t *rc)
{
    return &rc->base;
}

/* ---- carrier ops ------------------------------------------------------ */

static void c_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    um_rel_carrier_t *rc = of(c);
    rc->rd = rd;
    rc->dr = dr;
    rc->ud = ud;
}

static int c_writev(um_carrier_t *c, const um_carrier_iov_t *iov, size_t n_iov)
{
    um_rel_carrier_t *rc = of(c);
    if (rc->closed) return UM_EPIPE;
    if (rc->err) return rc->err;
    if (rc->shut) return UM_EPIPE;
    size_t total = 0;
    for (size_t i = 0; i < n_iov; i++)
        total += iov[i].n;
    if (!total) return 0;
    size_t q = queued(rc);
    if (total > rc->wq_max - (q < rc->wq_max ? q : rc->wq_max) || q > rc->wq_max) {
        rc->drain_armed = true;
        return UM_ENOSPC;
    }
    for (size_t i = 0; i < n_iov; i++) {
        const uint8_t *p = iov[i].p;
        size_t n = iov[i].n;
        if (um_buf_len(&rc->ovf) == 0) { /* straight into rel where it fits */
            size_t room = um_rel_space(rc->rel), k = n < room ? n : room;
            if (k && um_rel_write(rc->rel, p, k) == 0) {
                p += k;
                n -= k;
            }
        }
        if (n) {
            if (rc->ovf.max < um_buf_len(&rc->ovf) + n) rc->ovf.max = um_buf_len(&rc->ovf) + n;
            int e = um_buf_append(&rc->ovf, p, n);
            if (e) return e;
        }
    }
    if (queued(rc) > rc->wq_max / 2) rc->drain_armed = true;
    kick(rc);
    return 0;
}

static int c_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    um_carrier_iov_t v = {p, n};
    return c_writev(c, &v, 1);
}

static size_t c_queued(const um_carrier_t *c)
{
    return queued((const um_rel_carrier_t *)c);
}

static void c_set_wq_max(um_carrier_t *c, size_t max)
{
    of(c)->wq_max = max;
}

static int c_read_start(um_carrier_t *c)
{
    um_rel_carrier_t *rc = of(c);
    if (rc->closed) return UM_EPIPE;
    rc->reading = true;
    kick(rc);
    return 0;
}

static int c_read_stop(um_carrier_t *c)
{
    of(c)->reading = false;
    return 0;
}

static int c_shutdown(um_carrier_t *c)
{
    um_rel_carrier_t *rc = of(c);
    if (rc->closed) return UM_EPIPE;
    if (rc->err) return rc->err;
    if (!rc->shut) rc->shut = rc->shut_pending = true;
    kick(rc);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    um_rel_carrier_t *rc = h->data;
    if (--rc->open_handles > 0) return;
    um_rel_free(rc->rel);
    um_buf_free(&rc->ovf);
    free(rc->scratch);
    free(rc);
}

static void c_close(um_carrier_t *c)
{
    um_rel_carrier_t *rc = of(c);
    if (rc->closed) return;
    rc->closed = true;
    rc->linked = false;
    rc->rd = NULL;
    rc->dr = NULL;
    if (rc->on_close) rc->on_close(rc->on_close_ud);
    uv_close((uv_handle_t *)&rc->tm, on_closed);
    uv_close((uv_handle_t *)&rc->kick, on_closed);
}

static int c_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    /* bytes read from this carrier are stream bytes already */
    memcpy(out, p, n);
    *outn = n;
    return 0;
}

const um_carrier_ops_t um_rel_carrier_ops = {
    .name = "rel",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 4096,
    .set_cbs = c_set_cbs,
    .write = c_write,
    .queued = c_queued,
    .set_wq_max = c_set_wq_max,
    .read_start = c_read_start,
    .read_stop = c_read_stop,
    .shutdown = c_shutdown,
    .close = c_close,
    .absorb = c_absorb,
    .writev = c_writev,
};

int um_rel_carrier_new(uv_loop_t *loop, const um_rel_cfg_t *cfg, const um_rel_link_t *link,
                       um_rel_carrier_t **out)
{
    *out = NULL;
    if (!loop || !cfg || !link || !link->want_output) return UM_EINVAL;
    um_rel_carrier_t *rc = calloc(1, sizeof(*rc));
    if (!rc) return UM_ENOMEM;
    int e = um_rel_new(cfg, uv_now(loop), &rc->rel);
    if (e) {
        free(rc);
        return e;
    }
    if (!(rc->scratch = malloc(READ_CHUNK))) {
        um_rel_free(rc->rel);
        free(rc);
        return UM_ENOMEM;
    }
    rc->base.ops = &um_rel_carrier_ops;
    rc->loop = loop;
    rc->link = *link;
    rc->linked = true;
    rc->wq_max = WQ_DEFAULT;
    um_buf_init(&rc->ovf, 0);
    uv_timer_init(loop, &rc->tm);
    uv_timer_init(loop, &rc->kick);
    rc->tm.data = rc->kick.data = rc;
    rc->open_handles = 2;
    kick(rc); /* arms the idle timer */
    *out = rc;
    return 0;
}
