#include "transport/ws_carrier.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "transport/codec_ws.h"
#include "util/buf.h"
#include "util/err.h"

/* The most bytes one inner read gives (the TCP glue reads 64 KiB); reads
 * larger than this are taken in pieces. */
#define SCRATCH (64u << 10)
/* wslay hands a frame over in pieces (its header, then the payload, masked
 * in 4 KiB chunks on the client): they are gathered here and go to the inner
 * carrier in one write, so a frame is one TLS record (or one segment), not
 * a header record and payload records. wslay is not asked for more while
 * this much waits. */
#define OBUF_STEP (256u << 10)
#define OBUF_MAX  (64u << 20)

typedef struct {
    um_carrier_t base;
    um_carrier_t *inner;
    wslay_event_context_ptr ws;
    bool server;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    /* The bytes being fed to wslay, and where its data goes. */
    const uint8_t *in;
    size_t in_n;
    uint8_t *out;
    size_t out_n, out_cap;
    uint8_t *scratch; /* SCRATCH: the data of one inner read */
    um_buf_t obuf;    /* wire bytes wslay produced, not yet taken by the inner carrier */
    int data_frame;   /* the frame being received carries data */
    int bad;          /* a text frame: not ours */
    size_t wq_max;
    int shut_pending, shut_done;
    int in_cb, dead;
    int peer_closed; /* its close frame came: the orderly end */
    uv_timer_t *ping;
    uint32_t ping_ms;
    int sent_since_ping;
} ws_carrier_t;

static ws_carrier_t *of(um_carrier_t *c)
{
    return (ws_carrier_t *)c;
}

static void ping_closed(uv_handle_t *h)
{
    free(h);
}

static void release(ws_carrier_t *t)
{
    if (t->ws) wslay_event_context_free(t->ws);
    sodium_memzero(t->scratch, SCRATCH);
    free(t->scratch);
    um_buf_wipe(&t->obuf);
    if (t->ping) {
        uv_timer_stop(t->ping);
        uv_close((uv_handle_t *)t->ping, ping_closed);
    }
    free(t);
}

/* ---- wslay callbacks ---- */

static ssize_t cb_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    ws_carrier_t *t = ud;
    if (t->in_n == 0 || t->dead) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t take = len < t->in_n ? len : t->in_n;
    memcpy(buf, t->in, take);
    t->in += take;
    t->in_n -= take;
    return (ssize_t)take;
}

static ssize_t cb_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    ws_carrier_t *t = ud;
    if (t->dead || !t->inner) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (um_buf_len(&t->obuf) >= OBUF_STEP) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (um_buf_append(&t->obuf, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    t->sent_since_ping = 1;
    return (ssize_t)len;
}

static int cb_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx;
    (void)ud;
    randombytes_buf(buf, len);
    return 0;
}

static void cb_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    (void)ctx;
    ws_carrier_t *t = ud;
    t->data_frame = arg->opcode == WSLAY_BINARY_FRAME || arg->opcode == WSLAY_CONTINUATION_FRAME;
    if (arg->opcode == WSLAY_TEXT_FRAME) t->bad = 1;
}

static void cb_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *ud)
{
    (void)ctx;
    ws_carrier_t *t = ud;
    if (!t->data_frame || t->bad) return;
    if (t->out_cap - t->out_n < arg->data_length) { /* cannot happen: data <= wire bytes */
        t->bad = 1;
        return;
    }
    memcpy(t->out + t->out_n, arg->data, arg->data_length);
    t->out_n += arg->data_length;
}

static void cb_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ctx;
    ws_carrier_t *t = ud;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) t->peer_closed = 1;
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = cb_recv,
    .send_callback = cb_send,
    .genmask_callback = cb_genmask,
    .on_frame_recv_start_callback = cb_frame_start,
    .on_frame_recv_chunk_callback = cb_frame_chunk,
    .on_msg_recv_callback = cb_msg,
};

/* Hands what wslay queued (pongs, close replies, messages the inner
 * carrier refused before) to the inner carrier; then the deferred inner
 * shutdown, once everything is out. */
static size_t held(const ws_carrier_t *t)
{
    return wslay_event_get_queued_msg_length(t->ws) + um_buf_len(&t->obuf);
}

static int flush(ws_carrier_t *t)
{
    for (int round = 0; round < 1024; round++) {
        if (wslay_event_want_write(t->ws) && wslay_event_send(t->ws) != 0) return UM_EPIPE;
        const uint8_t *q;
        size_t qn = um_buf_peek(&t->obuf, &q);
        if (qn == 0) break;
        int r = um_carrier_write(t->inner, q, qn);
        if (r == UM_ENOSPC) return 0; /* the inner drain comes back here */
        if (r) return r;
        um_buf_clear(&t->obuf);
        if (!wslay_event_want_write(t->ws)) break;
    }
    if (t->shut_pending && !t->shut_done && held(t) == 0) {
        t->shut_done = 1;
        return um_carrier_shutdown(t->inner);
    }
    return 0;
}

/* Runs p[0..n) through wslay; the data bytes go to out (room for n). */
static int feed(ws_carrier_t *t, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    t->in = p;
    t->in_n = n;
    t->out = out;
    t->out_n = 0;
    t->out_cap = n;
    int r = 0;
    if (wslay_event_get_read_enabled(t->ws)) {
        r = wslay_event_recv(t->ws);
        /* A bad frame, or a message over the bound (wslay then stops
         * reading and queues its close): the connection is over. */
        if (r != 0 || t->bad || (!wslay_event_get_read_enabled(t->ws) && !t->peer_closed))
            r = UM_EPROTO;
    }
    *outn = t->out_n;
    t->in = NULL;
    t->in_n = 0;
    t->out = NULL;
    t->out_cap = t->out_n = 0;
    if (r == 0 && !t->dead) r = flush(t);
    return r;
}

/* Calls the user's read callback; false when it closed the carrier. */
static int deliver(ws_carrier_t *t, const uint8_t *p, size_t n, int status)
{
    t->in_cb = 1;
    t->rd(&t->base, p, n, status, t->ud);
    t->in_cb = 0;
    if (t->dead) {
        release(t);
        return 0;
    }
    return 1;
}

static void inner_read(um_carrier_t *ic, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)ic;
    ws_carrier_t *t = ud;
    if (!t->rd) return;
    if (status < 0) {
        deliver(t, NULL, 0, status);
        return;
    }
    uint8_t *buf = t->scratch;
    while (n && t->rd && !t->peer_closed) {
        size_t take = n < SCRATCH ? n : SCRATCH, got = 0;
        int r = feed(t, p, take, buf, &got);
        p += take;
        n -= take;
        int alive = 1;
        if (got) alive = deliver(t, buf, got, 0);
        if (alive && r < 0 && t->rd) alive = deliver(t, NULL, 0, r);
        if (alive && r == 0 && t->peer_closed && t->rd) alive = deliver(t, NULL, 0, UM_EPIPE);
        if (!alive) return; /* released, scratch with it */
        sodium_memzero(buf, got);
        if (r < 0) break;
    }
}

static void inner_drain(um_carrier_t *ic, void *ud)
{
    (void)ic;
    ws_carrier_t *t = ud;
    flush(t);
    if (t->dr && held(t) == 0) t->dr(&t->base, t->ud);
}

static void on_ping(uv_timer_t *tm)
{
    ws_carrier_t *t = tm->data;
    if (!t || t->dead || !t->inner) return;
    if (!t->sent_since_ping && wslay_event_get_write_enabled(t->ws)) {
        uint8_t b[4];
        randombytes_buf(b, sizeof(b));
        struct wslay_event_msg m = {.opcode = WSLAY_PING, .msg = b, .msg_length = sizeof(b)};
        if (wslay_event_queue_msg(t->ws, &m) == 0) flush(t);
    }
    t->sent_since_ping = 0;
}

/* ---- ops ---- */

static void w_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    ws_carrier_t *t = of(c);
    t->rd = rd;
    t->dr = dr;
    t->ud = ud;
    um_carrier_set_cbs(t->inner, rd ? inner_read : NULL, inner_drain, t);
}

static size_t w_queued(const um_carrier_t *c)
{
    const ws_carrier_t *t = (const ws_carrier_t *)c;
    return held(t) + um_carrier_queued(t->inner);
}

static int w_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    ws_carrier_t *t = of(c);
    if (n == 0) return 0;
    if (t->shut_pending || !wslay_event_get_write_enabled(t->ws)) return UM_EPIPE;
    size_t h = held(t), iq = um_carrier_queued(t->inner);
    /* Refused only when a drain is sure to follow: bytes wait here because
     * the inner carrier refused them, or its queue is past half its bound. */
    if ((h || iq > t->wq_max / 2) && h + iq + n > t->wq_max) return UM_ENOSPC;
    struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = p, .msg_length = n};
    int r = wslay_event_queue_msg(t->ws, &m);
    if (r == WSLAY_ERR_NOMEM) return UM_ENOMEM;
    if (r) return UM_EPIPE;
    return flush(t);
}

static void w_set_wq_max(um_carrier_t *c, size_t max)
{
    ws_carrier_t *t = of(c);
    t->wq_max = max;
    um_carrier_set_wq_max(t->inner, max);
}

static int w_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(of(c)->inner);
}

static int w_read_stop(um_carrier_t *c)
{
    return um_carrier_read_stop(of(c)->inner);
}

static int w_shutdown(um_carrier_t *c)
{
    ws_carrier_t *t = of(c);
    if (t->shut_pending) return 0;
    t->shut_pending = 1;
    if (wslay_event_get_write_enabled(t->ws)) wslay_event_queue_close(t->ws, 1000, NULL, 0);
    return flush(t);
}

static void w_close(um_carrier_t *c)
{
    ws_carrier_t *t = of(c);
    um_carrier_set_cbs(t->inner, NULL, NULL, NULL);
    um_carrier_close(t->inner);
    t->inner = NULL;
    t->rd = NULL;
    t->dr = NULL;
    t->dead = 1;
    if (!t->in_cb) release(t); /* else released when the callback returns */
}

static int w_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    int r = feed(of(c), p, n, out, outn);
    return r < 0 ? r : 0;
}

static int w_sock(const um_carrier_t *c)
{
    return um_carrier_sock(((const ws_carrier_t *)c)->inner);
}

const um_carrier_ops_t um_ws_carrier_ops = {
    .name = "ws",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = UM_WS_REC_HINT,
    .set_cbs = w_set_cbs,
    .write = w_write,
    .queued = w_queued,
    .set_wq_max = w_set_wq_max,
    .read_start = w_read_start,
    .read_stop = w_read_stop,
    .shutdown = w_shutdown,
    .close = w_close,
    .absorb = w_absorb,
    .sock = w_sock,
};

int um_ws_carrier_new(um_carrier_t *inner, const um_ws_carrier_cfg_t *cfg, um_carrier_t **out)
{
    if (!inner || !cfg || !out) return UM_EINVAL;
    ws_carrier_t *t = calloc(1, sizeof(*t));
    if (!t) return UM_ENOMEM;
    if (!(t->scratch = malloc(SCRATCH))) {
        free(t);
        return UM_ENOMEM;
    }
    t->base.ops = &um_ws_carrier_ops;
    t->server = cfg->server;
    t->wq_max = 4u << 20; /* the TCP carrier's default, until set_wq_max */
    um_buf_init(&t->obuf, OBUF_MAX);
    int r = cfg->server ? wslay_event_context_server_init(&t->ws, &callbacks, t)
                        : wslay_event_context_client_init(&t->ws, &callbacks, t);
    if (r) {
        free(t->scratch);
        free(t);
        return UM_ENOMEM;
    }
    wslay_event_config_set_no_buffering(t->ws, 1);
    wslay_event_config_set_max_recv_msg_length(t->ws, UM_WS_MSG_MAX);
    if (cfg->loop && !cfg->server) {
        t->ping = malloc(sizeof(*t->ping));
        if (t->ping) {
            uv_timer_init(cfg->loop, t->ping);
            t->ping->data = t;
            uint32_t ms = cfg->ping_ms ? cfg->ping_ms : UM_WS_PING_MS;
            uv_timer_start(t->ping, on_ping, ms, ms);
        }
    }
    t->inner = inner;
    um_carrier_set_cbs(inner, NULL, inner_drain, t);
    *out = &t->base;
    return 0;
}
