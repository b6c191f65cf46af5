#include "session/acceptor.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "transport/mask.h"
#include "transport/shape.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define SPLICE_BUF (64u << 10)
#define REPLY_MIN  (UM_HS_MSG2_MIN + UM_MASK_OVERHEAD)
#define REPLY_MAX  1024

typedef enum { C_PARSE, C_DISCARD, C_LINGER, C_SPLICE, C_DONE } cstate_t;

typedef struct pconn pconn_t;
struct pconn {
    um_acceptor_t *a;
    pconn_t *next, *prev;
    um_tcp_t *t;
    um_tcp_t *f; /* fallback side, when splicing */
    uv_timer_t timer;
    cstate_t st;
    int peer_eof, f_connected, f_eof, refs;
    um_buf_t buf; /* first flight bytes (bounded) */
};

struct um_acceptor {
    uv_loop_t *loop;
    um_tcp_listener_t *l;
    um_acceptor_cfg_t cfg;
    um_hs_server_t hs;
    um_acceptor_session_cb cb;
    void *ud;
    pconn_t *conns;
    um_acceptor_stats_t st;
    double tokens;
    uint64_t tok_ms;
    int closing;
    um_ratelimit_t rl;
    uint32_t live_handles; /* timers not yet closed */
};

static void maybe_free_acceptor(um_acceptor_t *a)
{
    if (a->closing && a->live_handles == 0 && !a->conns) {
        um_hs_server_close(&a->hs);
        sodium_memzero(&a->cfg, sizeof(a->cfg));
        free(a);
    }
}

static void timer_closed(uv_handle_t *h)
{
    pconn_t *c = h->data;
    um_acceptor_t *a = c->a;
    um_buf_wipe(&c->buf);
    free(c);
    a->live_handles--;
    maybe_free_acceptor(a);
}

/* Ends a pre-auth connection; handles are closed (not freed by us). */
static void pconn_end(pconn_t *c, int keep_t)
{
    um_acceptor_t *a = c->a;
    if (c->st == C_DONE) return;
    c->st = C_DONE;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    a->st.preauth--;
    if (!keep_t) um_tcp_close(c->t);
    um_tcp_close(c->f);
    c->t = c->f = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static bool take_token(um_acceptor_t *a)
{
    uint64_t now = um_now_ms();
    a->tokens += (double)(now - a->tok_ms) * a->cfg.hs_per_s / 1000.0;
    a->tok_ms = now;
    if (a->tokens > a->cfg.hs_burst) a->tokens = a->cfg.hs_burst;
    if (a->tokens < 1.0) return false;
    a->tokens -= 1.0;
    return true;
}

static void splice_start(pconn_t *c);

/* The flight is invalid: splice, or go on discarding until the timer. */
static void reject(pconn_t *c)
{
    c->a->st.probes++;
    if (c->a->cfg.has_fallback) {
        splice_start(c);
        return;
    }
    c->st = C_DISCARD;
    um_buf_wipe(&c->buf);
}

/* ---- fallback splice ---- */

static void f_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    pconn_t *c = ud;
    if (status == UM_EPIPE) {
        c->f_eof = 1;
        um_tcp_shutdown(c->t);
        if (c->peer_eof) pconn_end(c, 0);
        return;
    }
    if (status < 0) {
        pconn_end(c, 0);
        return;
    }
    if (um_tcp_write(c->t, p, n) != 0) {
        pconn_end(c, 0);
        return;
    }
    if (um_tcp_write_queued(c->t) > SPLICE_BUF) um_tcp_read_stop(c->f);
}

static void t_drain(um_tcp_t *t, int status, void *ud)
{
    pconn_t *c = ud;
    if (c->st == C_SPLICE && c->f && !c->f_eof) um_tcp_read_start(c->f);
}

static void f_drain(um_tcp_t *t, int status, void *ud)
{
    pconn_t *c = ud;
    if (c->st == C_SPLICE && !c->peer_eof) um_tcp_read_start(c->t);
}

static void f_connected(um_tcp_t *t, int status, void *ud)
{
    pconn_t *c = ud;
    if (status < 0) {
        um_log_limited(&c->a->rl, 5, 1000, UM_LOG_DEBUG, "fallback connect: %s",
                       um_strerror(status));
        pconn_end(c, 0);
        return;
    }
    c->f_connected = 1;
    const uint8_t *p;
    size_t n = um_buf_peek(&c->buf, &p);
    if (n && um_tcp_write(c->f, p, n) != 0) {
        pconn_end(c, 0);
        return;
    }
    um_buf_wipe(&c->buf);
    if (c->peer_eof) um_tcp_shutdown(c->f);
    um_tcp_set_read_cb(c->f, f_read, c);
    um_tcp_set_drain_cb(c->f, f_drain, c);
    um_tcp_set_drain_cb(c->t, t_drain, c);
    um_tcp_read_start(c->f);
}

static void splice_start(pconn_t *c)
{
    c->st = C_SPLICE;
    c->a->st.fallbacks++;
    uv_timer_stop(&c->timer);
    c->buf.max = SPLICE_BUF; /* keep what we have, and more until connected */
    if (um_tcp_connect(c->a->loop, (const struct sockaddr *)&c->a->cfg.fallback, f_connected, c,
                       &c->f) != 0) {
        c->f = NULL;
        pconn_end(c, 0);
    }
}

/* ---- the handshake ---- */

static void established(pconn_t *c, const uint8_t *msg, size_t mn, const uint8_t *rest,
                        size_t restn)
{
    um_acceptor_t *a = c->a;
    uint8_t reply[REPLY_MAX], flight[REPLY_MAX + UM_MASK_OVERHEAD];
    uint8_t wire[UM_SHAPE_PREFIX_MAX + sizeof(flight)];
    size_t rn = 0, fn = 0, wn = 0, used = 0;
    um_sess_keys_t keys;
    size_t total = REPLY_MIN + randombytes_uniform(REPLY_MAX - REPLY_MIN + 1);

    int r = um_hs_server_respond(&a->hs, (const uint8_t *)UM_HS_PROLOGUE_TCP,
                                 sizeof(UM_HS_PROLOGUE_TCP) - 1, msg, mn, um_wall_s(),
                                 total - UM_MASK_OVERHEAD, reply, sizeof(reply), &rn, &keys);
    if (r) {
        um_log_limited(&c->a->rl, 5, 1000, UM_LOG_DEBUG, "first flight refused: %s",
                       um_strerror(r));
        reject(c);
        return;
    }
    um_sess_t *s = NULL;
    /* The reply goes out as one write: shaping prefix (section 7), then flight. */
    if ((r = um_mask_seal(a->hs.s_pub, UM_MASK_S2C, reply, rn, flight, sizeof(flight), &fn)) == 0 &&
        (r = um_shape_prefix((um_shape_t)a->cfg.shape, UM_SHAPE_S2C, fn, wire, sizeof(wire),
                             &wn)) == 0) {
        memcpy(wire + wn, flight, fn);
        wn += fn;
    }
    if (r || !(s = um_sess_new(&keys, &a->cfg.sess)) ||
        (restn && (r = um_sess_feed(s, rest, restn, &used)) != 0) ||
        (r = um_tcp_write(c->t, wire, wn)) != 0) {
        /* Local failure after authentication: just close. */
        um_sess_free(s);
        um_sess_keys_wipe(&keys);
        pconn_end(c, 0);
        return;
    }
    uint8_t client[32];
    memcpy(client, keys.peer_static, 32);
    um_sess_keys_wipe(&keys);
    um_tcp_t *t = c->t;
    um_tcp_read_stop(t);
    um_tcp_set_read_cb(t, NULL, NULL);
    um_tcp_set_drain_cb(t, NULL, NULL);
    a->st.established++;
    pconn_end(c, 1);
    a->cb(a, s, t, client, a->ud);
}

static void on_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    pconn_t *c = ud;
    uint8_t msg[UM_FLIGHT_MSG_MAX];
    size_t mn = 0, used = 0, pre = 0, want = 0;

    if (status == UM_EPIPE) {
        c->peer_eof = 1;
        if (c->st == C_LINGER)
            pconn_end(c, 0);
        else if (c->st == C_SPLICE && c->f_connected) {
            um_tcp_shutdown(c->f);
            if (c->f_eof) pconn_end(c, 0);
        }
        /* otherwise: wait for the timer, as for any probe */
        return;
    }
    if (status < 0) { /* reset by the peer: nobody is left to observe us */
        pconn_end(c, 0);
        return;
    }
    switch (c->st) {
    case C_PARSE: break;
    case C_SPLICE:
        if (c->f_connected) {
            if (um_tcp_write(c->f, p, n) != 0)
                pconn_end(c, 0);
            else if (um_tcp_write_queued(c->f) > SPLICE_BUF)
                um_tcp_read_stop(c->t);
        } else if (um_buf_append(&c->buf, p, n) != 0) {
            um_tcp_read_stop(c->t); /* resumes once the fallback is connected */
        }
        return;
    default: return; /* discard */
    }
    size_t room = um_buf_space(&c->buf);
    size_t take = n < room ? n : room;
    if (take && um_buf_append(&c->buf, p, take) != 0) {
        reject(c);
        return;
    }
    const uint8_t *q;
    size_t qn = um_buf_peek(&c->buf, &q);
    /* Shaping prefix first (section 7): a wrong one is an invalid flight like
     * any other, with the same reaction. */
    int r = um_shape_strip((um_shape_t)c->a->cfg.shape, UM_SHAPE_C2S, q, qn, &pre, &want);
    if (r == 0)
        r = um_mask_open(c->a->hs.s_pub, UM_MASK_C2S, UM_HS_MSG1_MIN, q + pre, qn - pre, msg,
                         sizeof(msg), &mn, &used);
    /* A prefix that announces the flight length must announce it exactly. */
    if (want && ((r == 0 && used != want) || (r == UM_EAGAIN && qn - pre >= want))) r = UM_EPROTO;
    if (r == UM_EAGAIN) {
        if (qn == c->buf.max) reject(c); /* cannot happen: lengths are bounded */
        return;
    }
    if (r || !take_token(c->a)) {
        reject(c);
        return;
    }
    /* Bytes after the flight (records the client pipelined) go to the session;
     * if this read had more than the buffer held, the flight is too long. */
    if (take < n) {
        reject(c);
        return;
    }
    established(c, msg, mn, q + pre + used, qn - pre - used);
    sodium_memzero(msg, mn);
}

static void on_timer(uv_timer_t *tm)
{
    pconn_t *c = tm->data;
    switch (c->st) {
    case C_PARSE:
    case C_DISCARD:
        if (c->a->cfg.has_fallback) {
            if (c->st == C_PARSE) c->a->st.probes++;
            splice_start(c);
            return;
        }
        /* The one way we close: FIN, drain until the peer's FIN or linger. */
        um_buf_wipe(&c->buf);
        c->st = C_LINGER;
        um_tcp_shutdown(c->t);
        if (c->peer_eof) {
            pconn_end(c, 0);
            return;
        }
        uv_update_time(c->a->loop);
        uv_timer_start(&c->timer, on_timer, c->a->cfg.linger_ms, 0);
        return;
    case C_LINGER: pconn_end(c, 0); return;
    default: return;
    }
}

static void on_accept(um_tcp_listener_t *l, um_tcp_t *t, void *ud)
{
    um_acceptor_t *a = ud;
    a->st.accepted++;
    if (a->closing || a->st.preauth >= a->cfg.max_preauth) {
        a->st.overload++;
        um_tcp_close(t);
        return;
    }
    pconn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        um_tcp_close(t);
        return;
    }
    c->a = a;
    c->t = t;
    c->st = C_PARSE;
    um_buf_init(&c->buf, UM_FLIGHT_MAX + (a->cfg.shape ? UM_SHAPE_PREFIX_MAX : 0));
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    a->live_handles++;
    c->next = a->conns;
    if (a->conns) a->conns->prev = c;
    a->conns = c;
    a->st.preauth++;
    uint32_t span = a->cfg.probe_max_ms - a->cfg.probe_min_ms;
    uint64_t delay = a->cfg.probe_min_ms + (span ? randombytes_uniform(span + 1) : 0);
    /* The loop's cached clock may be behind (a busy iteration): refresh it,
     * so the delay runs from now and not from a moment already past. */
    uv_update_time(a->loop);
    uv_timer_start(&c->timer, on_timer, delay, 0);
    um_tcp_set_read_cb(t, on_read, c);
    if (um_tcp_read_start(t) != 0) pconn_end(c, 0);
}

int um_acceptor_new(uv_loop_t *loop, const struct sockaddr *listen_addr,
                    const um_acceptor_cfg_t *cfg, um_acceptor_session_cb cb, void *ud,
                    um_acceptor_t **out)
{
    int r;
    if (!loop || !listen_addr || !cfg || !cb || !out) return UM_EINVAL;
    if (cfg->probe_max_ms < cfg->probe_min_ms || cfg->shape > UM_SHAPE_MAX) return UM_EINVAL;
    um_acceptor_t *a = calloc(1, sizeof(*a));
    if (!a) return UM_ENOMEM;
    a->loop = loop;
    a->cfg = *cfg;
    a->cb = cb;
    a->ud = ud;
    if (!a->cfg.probe_max_ms) {
        a->cfg.probe_min_ms = 5000;
        a->cfg.probe_max_ms = 30000;
    }
    if (!a->cfg.linger_ms) a->cfg.linger_ms = 5000;
    if (!a->cfg.max_preauth) a->cfg.max_preauth = 1024;
    if (!a->cfg.hs_per_s) a->cfg.hs_per_s = 2000;
    if (!a->cfg.hs_burst) a->cfg.hs_burst = 256;
    a->tokens = a->cfg.hs_burst;
    a->tok_ms = um_now_ms();
    if ((r = um_hs_server_init(&a->hs, cfg->server_priv, cfg->keys, cfg->skew_s,
                               cfg->replay_entries)) != 0) {
        sodium_memzero(a, sizeof(*a));
        free(a);
        return r;
    }
    a->cfg.keys = NULL; /* the reference lives in a->hs */
    if (cfg->disable_aes) a->hs.aes_hw = false;
    if ((r = um_tcp_listen(loop, listen_addr, 511, on_accept, a, &a->l)) != 0) {
        um_hs_server_close(&a->hs);
        sodium_memzero(a, sizeof(*a));
        free(a);
        return r;
    }
    *out = a;
    return 0;
}

int um_acceptor_port(const um_acceptor_t *a)
{
    return um_tcp_listener_port(a->l);
}

void um_acceptor_set_keys(um_acceptor_t *a, um_keyset_t *keys)
{
    um_hs_server_set_keys(&a->hs, keys);
}

void um_acceptor_stats(const um_acceptor_t *a, um_acceptor_stats_t *st)
{
    *st = a->st;
}

void um_acceptor_close(um_acceptor_t *a)
{
    if (!a || a->closing) return;
    a->closing = 1;
    um_tcp_listener_close(a->l);
    a->l = NULL;
    while (a->conns)
        pconn_end(a->conns, 0);
    maybe_free_acceptor(a);
}
