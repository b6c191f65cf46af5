#include "session/connector.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "transport/mask.h"
#include "transport/shape.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

struct um_connector {
    uv_loop_t *loop;
    um_connector_cfg_t cfg;
    um_connector_cb cb;
    void *ud;
    um_tcp_t *t;
    uv_timer_t timer;
    um_hs_client_t hs;
    um_buf_t buf;
    int done;
};

int um_connector_flight(um_hs_client_t *hs, const uint8_t client_priv[32],
                        const uint8_t server_pub[32], int offer_aes, uint64_t now_s, uint8_t *out,
                        size_t cap, size_t *outn)
{
    uint8_t msg[UM_FLIGHT_C_MAX];
    size_t mn = 0;
    um_hs_client_opts_t o = {.aes_hw = offer_aes != 0};
    size_t total = UM_FLIGHT_C_MIN + randombytes_uniform(UM_FLIGHT_C_MAX - UM_FLIGHT_C_MIN + 1);
    int r = um_hs_client_start(hs, (const uint8_t *)UM_HS_PROLOGUE_TCP,
                               sizeof(UM_HS_PROLOGUE_TCP) - 1, client_priv, server_pub, &o, now_s,
                               total - UM_MASK_OVERHEAD, msg, sizeof(msg), &mn);
    if (r) return r;
    r = um_mask_seal(server_pub, UM_MASK_C2S, msg, mn, out, cap, outn);
    if (r) um_hs_client_wipe(hs);
    return r;
}

static void timer_closed(uv_handle_t *h)
{
    um_connector_t *c = h->data;
    um_buf_wipe(&c->buf);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

static void finish(um_connector_t *c, int status, um_sess_t *s)
{
    if (c->done) return;
    c->done = 1;
    um_tcp_t *t = c->t;
    c->t = NULL;
    um_hs_client_wipe(&c->hs);
    sodium_memzero(&c->cfg, sizeof(c->cfg));
    uv_timer_stop(&c->timer);
    if (status == 0) {
        um_tcp_read_stop(t);
        um_tcp_set_read_cb(t, NULL, NULL);
    } else {
        um_tcp_close(t);
        t = NULL;
    }
    if (c->cb) c->cb(c, status, s, t, c->ud);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static void on_timeout(uv_timer_t *tm)
{
    finish(tm->data, UM_ETIMEDOUT, NULL);
}

static void on_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    um_connector_t *c = ud;
    uint8_t msg[UM_FLIGHT_MSG_MAX];
    size_t mn = 0, used = 0, fed = 0, pre = 0, want = 0;
    um_sess_keys_t keys;

    if (status < 0) {
        finish(c, status, NULL);
        return;
    }
    /* Keep at most one (shaped) flight; records the server sent right after
     * its reply stay in p and go straight to the session. */
    size_t take = c->buf.max - um_buf_len(&c->buf);
    if (take > n) take = n;
    if (take && um_buf_append(&c->buf, p, take) != 0) {
        finish(c, UM_ENOMEM, NULL);
        return;
    }
    const uint8_t *q;
    size_t qn = um_buf_peek(&c->buf, &q);
    int r = um_shape_strip((um_shape_t)c->cfg.shape, UM_SHAPE_S2C, q, qn, &pre, &want);
    if (r == 0)
        r = um_mask_open(c->cfg.server_pub, UM_MASK_S2C, UM_HS_MSG2_MIN, q + pre, qn - pre, msg,
                         sizeof(msg), &mn, &used);
    if (want && ((r == 0 && used != want) || (r == UM_EAGAIN && qn - pre >= want))) r = UM_EPROTO;
    if (r == UM_EAGAIN) {
        if (qn == c->buf.max) finish(c, UM_EPROTO, NULL); /* bounded: cannot happen */
        return;
    }
    used += pre;
    if (r == 0) r = um_hs_client_finish(&c->hs, msg, mn, &keys);
    sodium_memzero(msg, sizeof(msg));
    if (r) {
        finish(c, r, NULL);
        return;
    }
    um_sess_t *s = um_sess_new(&keys, &c->cfg.sess);
    um_sess_keys_wipe(&keys);
    if (!s) {
        finish(c, UM_ENOMEM, NULL);
        return;
    }
    /* The session's read queue (>= 16 KiB free when new) must take these
     * bytes whole: one read is at most 64 KiB, so rx_max below that can
     * fail here with UM_ENOSPC. */
    if (qn > used && (r = um_sess_feed(s, q + used, qn - used, &fed)) == 0 && fed < qn - used)
        r = UM_ENOSPC;
    if (!r && n > take && (r = um_sess_feed(s, p + take, n - take, &fed)) == 0 && fed < n - take)
        r = UM_ENOSPC;
    if (r) {
        um_sess_free(s);
        finish(c, r, NULL);
        return;
    }
    finish(c, 0, s);
}

static void on_connect(um_tcp_t *t, int status, void *ud)
{
    um_connector_t *c = ud;
    uint8_t flight[UM_FLIGHT_MAX], wire[UM_SHAPE_PREFIX_MAX + UM_FLIGHT_MAX];
    size_t fn = 0, wn = 0;
    if (status < 0) {
        finish(c, status, NULL);
        return;
    }
    int aes = c->cfg.offer_aes < 0 ? um_cpu_has_aes() : c->cfg.offer_aes;
    int r = um_connector_flight(&c->hs, c->cfg.client_priv, c->cfg.server_pub, aes, um_wall_s(),
                                flight, sizeof(flight), &fn);
    /* One write: shaping prefix (section 7), then the flight, so the prefix
     * leads the first TCP segment. */
    if (r == 0)
        r = um_shape_prefix((um_shape_t)c->cfg.shape, UM_SHAPE_C2S, fn, wire, sizeof(wire), &wn);
    if (r == 0) {
        memcpy(wire + wn, flight, fn);
        r = um_tcp_write(t, wire, wn + fn);
    }
    if (r == 0) {
        um_tcp_set_read_cb(t, on_read, c);
        r = um_tcp_read_start(t);
    }
    if (r) finish(c, r, NULL);
}

int um_connector_start(uv_loop_t *loop, const struct sockaddr *server,
                       const um_connector_cfg_t *cfg, um_connector_cb cb, void *ud,
                       um_connector_t **out)
{
    if (!loop || !server || !cfg || !cb || cfg->shape > UM_SHAPE_MAX) return UM_EINVAL;
    um_connector_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    c->cb = cb;
    c->ud = ud;
    um_buf_init(&c->buf, UM_FLIGHT_MAX + (cfg->shape ? UM_SHAPE_PREFIX_MAX : 0));
    int r = um_tcp_connect(loop, server, on_connect, c, &c->t);
    if (r) {
        sodium_memzero(c, sizeof(*c));
        free(c);
        return r;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timeout, cfg->timeout_ms ? cfg->timeout_ms : 10000, 0);
    if (out) *out = c;
    return 0;
}

void um_connector_cancel(um_connector_t *c)
{
    if (!c || c->done) return;
    c->cb = NULL;
    finish(c, UM_EPIPE, NULL);
}
