#include "session/connector.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "transport/mask.h"
#include "transport/shape.h"
#include "transport/upstream.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define FINISH_MAX 1024 /* what a codec sends after the reply (TLS: CCS + Finished) */

struct um_connector {
    uv_loop_t *loop;
    um_connector_cfg_t cfg;
    um_connector_cb cb;
    void *ud;
    um_tcp_t *t;       /* while TCP connects */
    um_carrier_t *car; /* the byte stream to the server once there is one */
    void *dial;        /* cfg.dialer's pending dial */
    uv_timer_t timer;
    um_hs_client_t hs;
    const um_codec_t *codec;
    um_codec_tcp_t own_codec; /* when the config named none */
    um_codec_state_t st;
    um_buf_t buf;
    int done;
    int resumed;   /* the callback's session is cfg.resume, continued */
    size_t wire;   /* wire bytes of the handshake (both ways) */
    uint8_t *rest; /* resumed: stream bytes that followed the reply */
    size_t rest_len;
    /* An upstream proxy (cfg.upstream, copied): its exchange runs first. */
    um_upstream_cfg_t up_cfg;
    um_upstream_t up;
    um_addr_t target;
    um_buf_t pbuf; /* what the proxy sent that its codec has not used yet */
    bool proxying;
    bool tls_on; /* cfg.tls wraps car */
};

int um_connector_flight(um_hs_client_t *hs, const uint8_t client_priv[32],
                        const uint8_t server_pub[32], int offer_aes, uint64_t now_s, uint8_t *out,
                        size_t cap, size_t *outn)
{
    uint8_t msg[UM_FLIGHT_C_MAX];
    size_t mn = 0;
    um_codec_tcp_t tc;
    um_codec_state_t st;
    um_hs_client_opts_t o = {.aes_hw = offer_aes != 0};
    int r = um_codec_tcp_init(&tc, server_pub, 0, UM_HS_MSG1_MIN, UM_HS_MSG2_MIN);
    if (r) return r;
    memset(&st, 0, sizeof(st));
    uint8_t pro[UM_CODEC_PROLOGUE_MAX];
    size_t n1 = tc.base.ops->msg1_len(&tc.base, &st);
    size_t pn = um_codec_prologue(&tc.base, &st, pro);
    r = um_hs_client_start(hs, pro, pn, client_priv, server_pub, &o, now_s, n1, msg, sizeof(msg),
                           &mn);
    if (r) return r;
    r = tc.base.ops->seal_flight(&tc.base, &st, msg, mn, out, cap, outn);
    sodium_memzero(msg, sizeof(msg));
    if (r) um_hs_client_wipe(hs);
    return r;
}

static void timer_closed(uv_handle_t *h)
{
    um_connector_t *c = h->data;
    um_buf_wipe(&c->buf);
    um_buf_wipe(&c->pbuf);
    if (c->rest) sodium_memzero(c->rest, c->rest_len);
    free(c->rest);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

static void finish(um_connector_t *c, int status, um_sess_t *s, um_carrier_t *car)
{
    if (c->done) return;
    c->done = 1;
    um_tcp_t *t = c->t;
    um_carrier_t *base = c->car;
    c->t = NULL;
    c->car = NULL;
    if (c->dial && c->cfg.dialer) c->cfg.dialer->cancel(c->dial);
    c->dial = NULL;
    um_hs_client_wipe(&c->hs);
    um_ossl_ctx_unref(c->cfg.tls.ctx);
    sodium_memzero(&c->cfg, sizeof(c->cfg));
    sodium_memzero(&c->st, sizeof(c->st));
    um_upstream_cfg_wipe(&c->up_cfg);
    sodium_memzero(&c->up, sizeof(c->up));
    uv_timer_stop(&c->timer);
    if (status != 0) {
        if (car)
            um_carrier_close(car); /* owns base */
        else if (base)
            um_carrier_close(base); /* owns t */
        else
            um_tcp_close(t);
        car = NULL;
    }
    if (c->cb) c->cb(c, status, s, car, c->ud);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static void on_timeout(uv_timer_t *tm)
{
    finish(tm->data, UM_ETIMEDOUT, NULL, NULL);
}

static int filler(void *ud, size_t size, uint8_t *out, size_t cap, size_t *outn)
{
    return um_sess_pull_filler(ud, size, out, cap, outn);
}

/* Decodes wire bytes through the carrier into out (room for n bytes: a
 * carrier's stream bytes are never more than its wire bytes). */
static int absorb_all(um_carrier_t *car, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    *outn = 0;
    while (n) {
        size_t take = n < 16384 ? n : 16384, tn = 0;
        int r = um_carrier_absorb(car, p, take, out + *outn, &tn);
        if (r) return r;
        *outn += tn;
        p += take;
        n -= take;
    }
    return 0;
}

/* Hands wire bytes that came with (or right after) the reply to the session,
 * through the carrier's decoding. They must fit whole: the session's read
 * queue is >= 16 KiB free when new, and one read is at most 64 KiB. */
static int feed_rest(um_carrier_t *car, um_sess_t *s, const uint8_t *p, size_t n)
{
    uint8_t tmp[16384];
    while (n) {
        size_t take = n < sizeof(tmp) ? n : sizeof(tmp), tn = 0, fed = 0;
        int r = um_carrier_absorb(car, p, take, tmp, &tn);
        if (r == 0 && tn) r = um_sess_feed(s, tmp, tn, &fed);
        if (r == 0 && fed < tn) r = UM_ENOSPC;
        sodium_memzero(tmp, tn);
        if (r) return r;
        p += take;
        n -= take;
    }
    return 0;
}

static void on_read(um_carrier_t *base, const uint8_t *p, size_t n, int status, void *ud)
{
    um_connector_t *c = ud;
    const um_codec_ops_t *o = c->codec->ops;
    uint8_t msg[UM_HS_MSG_MAX], fin[FINISH_MAX];
    size_t mn = 0, used = 0, fn = 0;
    um_sess_keys_t keys;
    (void)base;

    if (status < 0) {
        finish(c, status, NULL, NULL);
        return;
    }
    /* Keep at most one reply; records the server sent right after it stay
     * in p and go straight to the session. */
    size_t take = c->buf.max - um_buf_len(&c->buf);
    if (take > n) take = n;
    if (take && um_buf_append(&c->buf, p, take) != 0) {
        finish(c, UM_ENOMEM, NULL, NULL);
        return;
    }
    const uint8_t *q;
    size_t qn = um_buf_peek(&c->buf, &q);
    int r = o->open_reply(c->codec, &c->st, q, qn, msg, sizeof(msg), &mn, &used);
    if (r == UM_EAGAIN) {
        if (qn == c->buf.max) finish(c, UM_EPROTO, NULL, NULL); /* bounded */
        return;
    }
    if (r == 0) r = um_hs_client_finish(&c->hs, msg, mn, &keys);
    sodium_memzero(msg, sizeof(msg));
    if (r) {
        /* Not our server (a hijack to the real site answers TLS, not Noise):
         * close, as a browser whose handshake failed would. */
        finish(c, r, NULL, NULL);
        return;
    }
    um_sess_t *s = NULL, *old = c->cfg.resume;
    if (keys.resumed) {
        /* Resend from what the server has, or (a reply too short to say)
         * from what it acknowledged. */
        um_sess_offsets_t of;
        if (old) um_sess_offsets(old, &of);
        uint64_t peer = old && keys.resume_has_peer_rx ? keys.resume_peer_rx
                        : old                          ? of.tx_acked
                                                       : 0;
        r = !old || !um_sess_resumable(old, peer) ? UM_EPROTO : um_sess_resume(old, &keys, peer);
        if (r == 0) {
            s = old;
            c->resumed = 1;
        }
    } else {
        s = um_sess_new(&keys, &c->cfg.sess);
        r = s ? 0 : UM_ENOMEM;
    }
    um_sess_keys_wipe(&keys);
    if (r) {
        finish(c, r, NULL, NULL);
        return;
    }
    c->wire += qn + (n - take);
    um_carrier_t *car = c->car;
    um_carrier_read_stop(car);
    um_carrier_set_cbs(car, NULL, NULL, NULL);
    if (o->client_finish) r = o->client_finish(c->codec, &c->st, filler, s, fin, sizeof(fin), &fn);
    if (r == 0 && fn) r = um_carrier_write(car, fin, fn);
    c->wire += fn;
    if (r == 0 && o->wrap) {
        um_carrier_t *w = NULL;
        r = o->wrap(c->codec, &c->st, 0, car, &w);
        if (r == 0) car = w;
    }
    if (c->resumed) {
        /* The session's owner still reads the old connection: the bytes go
         * to it with the new one (um_connector_rest), not into the session. */
        size_t total = qn - used + (n - take);
        c->rest = total ? malloc(total) : NULL;
        if (total && !c->rest) r = UM_ENOMEM;
        if (r == 0) r = absorb_all(car, q + used, qn - used, c->rest, &c->rest_len);
        if (r == 0 && n > take) {
            size_t more = 0;
            r = absorb_all(car, p + take, n - take, c->rest + c->rest_len, &more);
            c->rest_len += more;
        }
    } else {
        if (r == 0) r = feed_rest(car, s, q + used, qn - used);
        if (r == 0 && n > take) r = feed_rest(car, s, p + take, n - take);
    }
    if (r) {
        /* A resumed session has the new keys already: its owner must treat
         * the old connection as broken (um_connector_resumed says so). */
        if (!c->resumed) um_sess_free(s);
        finish(c, r, NULL, car);
        return;
    }
    c->car = NULL; /* the caller's now */
    finish(c, 0, s, car);
}

/* The first flight, on the byte stream to the server; `early` are bytes
 * that came from the server's side before it (after a proxy's reply: none
 * expected), handled as the first read. */
static void send_flight(um_connector_t *c, const uint8_t *early, size_t en)
{
    const um_codec_ops_t *o = c->codec->ops;
    uint8_t msg[UM_HS_MSG_MAX], wire[8192];
    size_t mn = 0, wn = 0;
    if (c->cfg.tls.ctx && !c->tls_on) {
        /* The front's TLS first; the flight waits in it until the handshake
         * is done (the server speaks second, so there are no early bytes). */
        um_carrier_t *w = NULL;
        int tr = um_ossl_client_new(c->car, &c->cfg.tls, &w);
        if (tr) {
            finish(c, tr, NULL, NULL);
            return;
        }
        c->car = w;
        c->tls_on = true;
        en = 0;
    }
    int aes = c->cfg.offer_aes < 0 ? um_cpu_has_aes() : c->cfg.offer_aes;
    um_hs_client_opts_t ho = {.aes_hw = aes != 0, .budget = c->cfg.budget};
    if (c->cfg.resume) {
        um_sess_offsets_t of;
        um_sess_offsets(c->cfg.resume, &of);
        ho.resume_sid = um_sess_id(c->cfg.resume);
        ho.resume_offset = of.rx_next;
        ho.resume_move = um_sess_take_move(c->cfg.resume);
    }
    uint8_t pro[UM_CODEC_PROLOGUE_MAX];
    size_t n1 = o->msg1_len(c->codec, &c->st);
    size_t pn = um_codec_prologue(c->codec, &c->st, pro);
    int r = n1 ? um_hs_client_start(&c->hs, pro, pn, c->cfg.client_priv, c->cfg.server_pub, &ho,
                                    um_wall_s(), n1, msg, sizeof(msg), &mn)
               : UM_EIO;
    /* One write, so the flight leads the first segment. */
    if (r == 0) r = o->seal_flight(c->codec, &c->st, msg, mn, wire, sizeof(wire), &wn);
    sodium_memzero(msg, sizeof(msg));
    if (r == 0) r = um_carrier_write(c->car, wire, wn);
    c->wire += wn;
    if (r == 0) {
        um_carrier_set_cbs(c->car, on_read, NULL, c);
        r = um_carrier_read_start(c->car);
    }
    if (r) {
        finish(c, r, NULL, NULL);
        return;
    }
    if (en) on_read(c->car, early, en, 0, c);
}

static void proxy_failed(um_connector_t *c, int r)
{
    char a[UM_ADDR_STRLEN];
    um_addr_format(&c->up_cfg.proxy, a, sizeof(a));
    UM_WARN("upstream proxy %s: %s", a, um_upstream_reason(&c->up));
    finish(c, r, NULL, NULL);
}

/* The proxy's replies, until its tunnel to the server is open. */
static void on_proxy_read(um_carrier_t *base, const uint8_t *p, size_t n, int status, void *ud)
{
    um_connector_t *c = ud;
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    (void)base;
    if (status < 0) {
        snprintf(c->up.reason, sizeof(c->up.reason), "%s",
                 status == UM_EPIPE ? "closed the connection" : um_strerror(status));
        proxy_failed(c, status);
        return;
    }
    c->wire += n;
    size_t take = c->pbuf.max - um_buf_len(&c->pbuf);
    if (take > n) take = n;
    if (take && um_buf_append(&c->pbuf, p, take) != 0) {
        finish(c, UM_ENOMEM, NULL, NULL);
        return;
    }
    int r = UM_EAGAIN;
    for (int rounds = 0; r == UM_EAGAIN && rounds < 8; rounds++) {
        const uint8_t *q;
        size_t qn = um_buf_peek(&c->pbuf, &q), used = 0, on = 0;
        r = um_upstream_input(&c->up, q, qn, &used, out, sizeof(out), &on);
        um_buf_consume(&c->pbuf, used);
        if (on) {
            int w = um_carrier_write(c->car, out, on);
            c->wire += on;
            sodium_memzero(out, on); /* may hold the password */
            if (w) {
                finish(c, w, NULL, NULL);
                return;
            }
        }
        if (r == UM_EAGAIN && used == 0) break;
    }
    if (r == UM_EAGAIN) {
        if (um_buf_len(&c->pbuf) == c->pbuf.max) {
            snprintf(c->up.reason, sizeof(c->up.reason), "reply too long");
            proxy_failed(c, UM_EPROTO);
        }
        return;
    }
    if (r) {
        proxy_failed(c, r);
        return;
    }
    /* Open: what followed the reply is the server's. */
    c->proxying = false;
    c->wire -= um_buf_len(&c->pbuf) + (n - take);
    uint8_t early[UM_UPSTREAM_IN_MAX];
    const uint8_t *q;
    size_t qn = um_buf_peek(&c->pbuf, &q), en = qn;
    memcpy(early, q, qn);
    um_buf_consume(&c->pbuf, qn);
    if (n > take) {
        /* Rare: more than the buffer's room came at once; it goes on in order. */
        send_flight(c, early, en);
        if (!c->done) on_read(c->car, p + take, n - take, 0, c);
        return;
    }
    send_flight(c, early, en);
}

static void start_on(um_connector_t *c)
{
    if (!c->proxying) {
        send_flight(c, NULL, 0);
        return;
    }
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    size_t on = 0;
    int r = um_upstream_start(&c->up, &c->up_cfg, &c->target, out, sizeof(out), &on);
    if (r == 0) r = um_carrier_write(c->car, out, on);
    sodium_memzero(out, sizeof(out));
    c->wire += on;
    if (r == 0) {
        um_carrier_set_cbs(c->car, on_proxy_read, NULL, c);
        r = um_carrier_read_start(c->car);
    }
    if (r) finish(c, r, NULL, NULL);
}

static void on_connect(um_tcp_t *t, int status, void *ud)
{
    um_connector_t *c = ud;
    if (status < 0) {
        finish(c, status, NULL, NULL);
        return;
    }
    c->car = um_tcp_carrier(t);
    c->t = NULL; /* the carrier's */
    start_on(c);
}

static void on_dialed(void *arg, int status, um_carrier_t *car)
{
    um_connector_t *c = arg;
    c->dial = NULL;
    if (status != 0 || !car) {
        finish(c, status ? status : UM_EIO, NULL, NULL);
        return;
    }
    c->car = car;
    start_on(c);
}

int um_connector_start(uv_loop_t *loop, const struct sockaddr *server,
                       const um_connector_cfg_t *cfg, um_connector_cb cb, void *ud,
                       um_connector_t **out)
{
    if (!loop || !server || !cfg || !cb || cfg->shape > UM_SHAPE_MAX) return UM_EINVAL;
    if (cfg->dialer && (!cfg->dialer->start || !cfg->dialer->cancel)) return UM_EINVAL;
    um_connector_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    c->cb = cb;
    c->ud = ud;
    c->codec = cfg->codec;
    int r = um_addr_from_sockaddr(&c->target, server);
    if (r == 0 && !cfg->dialer && cfg->upstream && cfg->upstream->kind != UM_UPSTREAM_NONE) {
        c->up_cfg = *cfg->upstream;
        c->proxying = true;
    }
    c->cfg.upstream = NULL; /* copied */
    if (c->cfg.tls.ctx) um_ossl_ctx_ref(c->cfg.tls.ctx);
    if (r == 0 && !c->codec) {
        r = um_codec_tcp_init(&c->own_codec, cfg->server_pub, cfg->shape, UM_HS_MSG1_MIN,
                              UM_HS_MSG2_MIN);
        c->codec = &c->own_codec.base;
    }
    um_buf_init(&c->buf, c->codec ? c->codec->reply_max : 0);
    um_buf_init(&c->pbuf, UM_UPSTREAM_IN_MAX);
    if (r == 0 && cfg->dialer) {
        r = cfg->dialer->start(cfg->dialer->ctx, &c->target, on_dialed, c, &c->dial);
    } else if (r == 0) {
        struct sockaddr_storage ss;
        socklen_t len;
        const struct sockaddr *to = server;
        if (c->proxying) {
            um_addr_to_sockaddr(&c->up_cfg.proxy, &ss, &len);
            to = (const struct sockaddr *)&ss;
        }
        r = um_tcp_connect(loop, to, on_connect, c, &c->t);
    }
    if (r) {
        um_upstream_cfg_wipe(&c->up_cfg);
        um_ossl_ctx_unref(c->cfg.tls.ctx);
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
    finish(c, UM_EPIPE, NULL, NULL);
}

int um_connector_resumed(const um_connector_t *c)
{
    return c->resumed;
}

size_t um_connector_wire(const um_connector_t *c)
{
    return c->wire;
}

size_t um_connector_rest(const um_connector_t *c, const uint8_t **p)
{
    *p = c->rest;
    return c->rest_len;
}
