#include "session/acceptor.h"

#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "session/gate.h"
#include "session/preauth.h"
#include "transport/mask.h"
#include "transport/shape.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* Splice: each side's write queue is bounded by SPLICE_WQ; a side stops
 * reading while the other side's queue holds more than half of it, and the
 * drain callback (a quarter) resumes it. Before the fallback is connected,
 * bytes wait in the connection's buffer (at most SPLICE_PRE + one read). */
#define SPLICE_WQ  (256u << 10)
#define SPLICE_PRE (64u << 10)
/* Gaps after which a connection that holds a parse slot can no longer be a
 * client: its flight is written at once after connect, in one write. */
#define GAP_SILENT_MS 10000 /* nothing arrived since accept */
#define GAP_IDLE_MS   3000  /* part of a flight arrived, then nothing */

typedef enum { C_PARSE, C_DISCARD, C_LINGER, C_SPLICE, C_DONE } cstate_t;

typedef struct pconn pconn_t;
struct pconn {
    um_acceptor_t *a;
    pconn_t *next, *prev;
    um_tcp_t *t;
    um_carrier_t *car; /* instead of t: an adopted carrier (um_acceptor_adopt), or the
                        * listener's own TLS over t (cfg.tls) */
    int adopted;       /* car came from um_acceptor_adopt: never spliced */
    um_tcp_t *f;       /* fallback side, when splicing */
    uv_timer_t timer;
    cstate_t st;
    int peer_eof, f_connected, f_eof, f_failed, parse, t_stopped;
    uint64_t deadline; /* D, loop time in ms */
    uint8_t src[UM_SRC_KEY_LEN];
    um_gate_node_t node; /* evictable once the peer has sent FIN */
    um_preauth_t pa;     /* the pure core: every byte read while undecided */
    um_buf_t buf;        /* bytes for the fallback until it is connected (bounded) */
};

struct um_acceptor {
    uv_loop_t *loop;
    um_tcp_listener_t *l;
    um_acceptor_cfg_t cfg;
    um_gate_t *gate;
    um_acceptor_session_cb cb;
    void *ud;
    const um_codec_t *codec;
    um_codec_tcp_t own_codec; /* when the config named none */
    pconn_t *conns;
    um_acceptor_stats_t st;
    int closing;
    um_ratelimit_t rl;
    uint32_t live_handles; /* timers not yet closed */
};

/* The connection itself: a TCP connection we accepted, the TLS carrier
 * over it (the ws listener's own TLS, cfg.tls), or an adopted carrier
 * (which never splices: it has no fallback). */
static int c_write(pconn_t *c, const uint8_t *p, size_t n)
{
    return c->car ? um_carrier_write(c->car, p, n) : um_tcp_write(c->t, p, n);
}

static void c_shutdown(pconn_t *c)
{
    if (c->car)
        um_carrier_shutdown(c->car);
    else
        um_tcp_shutdown(c->t);
}

static size_t c_queued(pconn_t *c)
{
    return c->car ? um_carrier_queued(c->car) : um_tcp_write_queued(c->t);
}

static void c_reading(pconn_t *c, int on)
{
    if (c->car)
        (void)(on ? um_carrier_read_start(c->car) : um_carrier_read_stop(c->car));
    else
        (void)(on ? um_tcp_read_start(c->t) : um_tcp_read_stop(c->t));
}

static void maybe_free_acceptor(um_acceptor_t *a)
{
    if (a->closing && a->live_handles == 0 && !a->conns) {
        um_ossl_ctx_unref(a->cfg.tls);
        um_gate_unref(a->gate);
        sodium_memzero(&a->cfg, sizeof(a->cfg));
        free(a);
    }
}

static void timer_closed(uv_handle_t *h)
{
    pconn_t *c = h->data;
    um_acceptor_t *a = c->a;
    um_buf_wipe(&c->buf);
    um_preauth_free(&c->pa);
    free(c);
    a->live_handles--;
    maybe_free_acceptor(a);
}

static void release_parse(pconn_t *c)
{
    if (!c->parse) return;
    c->parse = 0;
    um_gate_release_parse(c->a->gate, c->src);
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
    release_parse(c);
    um_gate_unlink(a->gate, &c->node);
    if (!keep_t) {
        um_tcp_close(c->t);
        um_carrier_close(c->car);
    }
    um_tcp_close(c->f);
    c->t = c->f = NULL;
    c->car = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
    um_gate_release_held(a->gate); /* last: may resume listeners */
}

static void on_evict(um_gate_node_t *n)
{
    pconn_t *c = (pconn_t *)((char *)n - offsetof(pconn_t, node));
    pconn_end(c, 0);
}

static void on_timer(uv_timer_t *tm);

/* (Re)arms the timer for D, or for the gap if earlier. */
static void arm(pconn_t *c, uint64_t gap)
{
    uv_update_time(c->a->loop);
    uint64_t now = uv_now(c->a->loop), at = c->deadline;
    if (gap && now + gap < at) at = now + gap;
    uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

static void splice_start(pconn_t *c);

/* The connection can no longer authenticate: splice, or go on discarding
 * until D. The bytes read so far stay in c->buf for the splice. */
static void reject(pconn_t *c)
{
    c->a->st.probes++;
    release_parse(c);
    if (c->a->cfg.has_fallback && !c->f_failed && !c->adopted) {
        const uint8_t *p;
        size_t n = um_preauth_bytes(&c->pa, &p);
        um_buf_init(&c->buf, SPLICE_PRE + 65536 + c->a->codec->flight_max);
        if (n && um_buf_append(&c->buf, p, n) != 0) {
            pconn_end(c, 0);
            return;
        }
        um_preauth_free(&c->pa);
        splice_start(c);
        return;
    }
    const um_codec_ops_t *o = c->a->codec->ops;
    if (o->unauth == UM_UNAUTH_REFUSE && o->refuse) {
        /* An HTTP transport: a complete request gets the plain answer of a
         * web server that does not know it, then the close (at once). */
        const uint8_t *p;
        uint8_t ans[512];
        size_t n = um_preauth_bytes(&c->pa, &p), an = 0;
        if (o->refuse(c->a->codec, p, n, ans, sizeof(ans), &an) == 0 && an &&
            c_write(c, ans, an) == 0) {
            uv_update_time(c->a->loop);
            c->deadline = uv_now(c->a->loop);
        }
    }
    um_preauth_free(&c->pa);
    c->st = C_DISCARD;
    um_buf_wipe(&c->buf);
    if (c->peer_eof) um_gate_evictable(c->a->gate, &c->node);
    arm(c, 0);
}

/* ---- fallback splice ---- */

static void f_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    pconn_t *c = ud;
    (void)t;
    if (status == UM_EPIPE) {
        c->f_eof = 1;
        c_shutdown(c);
        if (c->peer_eof) pconn_end(c, 0);
        return;
    }
    if (status < 0 || c_write(c, p, n) != 0) {
        pconn_end(c, 0);
        return;
    }
    if (c_queued(c) > SPLICE_WQ / 2) um_tcp_read_stop(c->f);
}

static void t_drain(um_tcp_t *t, int status, void *ud)
{
    pconn_t *c = ud;
    (void)t;
    (void)status;
    if (c->st == C_SPLICE && c->f && !c->f_eof) um_tcp_read_start(c->f);
}

static void f_drain(um_tcp_t *t, int status, void *ud)
{
    pconn_t *c = ud;
    (void)t;
    (void)status;
    if (c->st == C_SPLICE && !c->peer_eof) {
        c->t_stopped = 0;
        c_reading(c, 1);
    }
}

static void f_connected(um_tcp_t *t, int status, void *ud)
{
    pconn_t *c = ud;
    (void)t;
    if (status < 0) {
        /* No web server to hand over to: the probe reaction instead (silence
         * until D), as if there were no fallback. */
        um_log_limited(&c->a->rl, 5, 1000, UM_LOG_DEBUG, "fallback connect: %s",
                       um_strerror(status));
        um_tcp_close(c->f);
        c->f = NULL;
        c->f_failed = 1;
        c->a->st.fallbacks--;
        c->st = C_DISCARD;
        um_buf_wipe(&c->buf);
        if (c->peer_eof) um_gate_evictable(c->a->gate, &c->node);
        if (c->t_stopped) {
            c->t_stopped = 0;
            c_reading(c, 1);
        }
        arm(c, 0);
        return;
    }
    c->f_connected = 1;
    um_tcp_set_wq_max(c->f, SPLICE_WQ);
    if (c->car)
        um_carrier_set_wq_max(c->car, SPLICE_WQ);
    else
        um_tcp_set_wq_max(c->t, SPLICE_WQ);
    const uint8_t *p;
    size_t n = um_buf_peek(&c->buf, &p);
    /* At most SPLICE_PRE + one read: within SPLICE_WQ. */
    if (n && um_tcp_write(c->f, p, n) != 0) {
        pconn_end(c, 0);
        return;
    }
    um_buf_wipe(&c->buf);
    if (c->peer_eof) um_tcp_shutdown(c->f);
    um_tcp_set_read_cb(c->f, f_read, c);
    um_tcp_set_drain_cb(c->f, f_drain, c);
    if (!c->car) um_tcp_set_drain_cb(c->t, t_drain, c); /* car: set at accept */
    um_tcp_read_start(c->f);
    if (c->t_stopped && !c->peer_eof && um_tcp_write_queued(c->f) <= SPLICE_WQ / 2) {
        c->t_stopped = 0;
        c_reading(c, 1);
    }
}

static void splice_start(pconn_t *c)
{
    c->st = C_SPLICE;
    c->a->st.fallbacks++;
    uv_timer_stop(&c->timer);
    if (um_tcp_connect(c->a->loop, (const struct sockaddr *)&c->a->cfg.fallback, f_connected, c,
                       &c->f) != 0) {
        c->f = NULL;
        f_connected(NULL, UM_EIO, c);
    }
}

/* Bytes for the fallback while splicing (or about to). */
static void splice_in(pconn_t *c, const uint8_t *p, size_t n)
{
    if (!n) return;
    if (c->f_connected) {
        if (um_tcp_write(c->f, p, n) != 0)
            pconn_end(c, 0);
        else if (um_tcp_write_queued(c->f) > SPLICE_WQ / 2) {
            c->t_stopped = 1;
            c_reading(c, 0);
        }
        return;
    }
    if (um_buf_append(&c->buf, p, n) != 0) { /* cannot happen: reads stop first */
        pconn_end(c, 0);
        return;
    }
    if (um_buf_len(&c->buf) > SPLICE_PRE) { /* resumes once the fallback is connected */
        c->t_stopped = 1;
        c_reading(c, 0);
    }
}

/* ---- the handshake ---- */

/* The core said yes: reply, wrap the connection in the transport's carrier,
 * hand the bytes that followed the flight to the session, and pass both on. */
static void established(pconn_t *c, um_pa_result_t *res)
{
    um_acceptor_t *a = c->a;
    const um_codec_ops_t *o = a->codec->ops;
    um_sess_t *s = res->sess;
    um_resumable_t *e = res->resumed;
    um_carrier_t *own = c->car ? c->car : um_tcp_carrier(c->t);
    um_carrier_t *car = own;
    uint8_t rest[UM_PREAUTH_REPLY_MAX];
    size_t rn = 0, used = 0;
    um_accept_info_t info = {.budget = res->budget, .wire = res->flight_len + res->reply_len};
    int r = c_write(c, res->reply, res->reply_len);
    sodium_memzero(res->reply, res->reply_len);
    if (c->car) {
        um_carrier_read_stop(c->car);
        um_carrier_set_cbs(c->car, NULL, NULL, NULL);
    } else {
        um_tcp_read_stop(c->t);
        um_tcp_set_read_cb(c->t, NULL, NULL);
        um_tcp_set_drain_cb(c->t, NULL, NULL);
    }
    if (r == 0 && o->wrap) r = o->wrap(a->codec, &c->pa.st, 1, car, &car);
    if (r == 0 && res->rest_len > sizeof(rest)) r = UM_EMSGSIZE;
    if (r == 0) r = um_carrier_absorb(car, res->rest, res->rest_len, rest, &rn);
    info.wire += res->rest_len;
    if (r == 0 && !e && rn && (r = um_sess_feed(s, rest, rn, &used)) == 0 && used < rn)
        r = UM_ENOSPC;
    if (r) {
        /* A local failure after authentication: just close. A resumed
         * session has new keys its old connection cannot follow: its owner
         * lets that connection go (attach without a carrier) and the
         * session waits for its client to come again. */
        sodium_memzero(rest, rn);
        if (e) e->attach(e, NULL, NULL, 0, 0, 0);
        if (!e) um_sess_free(s);
        if (car != own) {
            c->t = NULL; /* the wrap owns it now */
            c->car = NULL;
            um_carrier_close(car);
        }
        pconn_end(c, 0);
        return;
    }
    uint8_t client[32];
    memcpy(client, res->client, 32);
    sodium_memzero(res->client, 32);
    a->st.established++;
    if (e) a->st.resumed++;
    pconn_end(c, 1);
    if (e)
        e->attach(e, car, rest, rn, info.budget, info.wire);
    else
        a->cb(a, s, car, client, &info, a->ud);
    sodium_memzero(rest, rn);
    sodium_memzero(client, 32);
}

static void decided(pconn_t *c, um_pa_verdict_t v, um_pa_result_t *res, const uint8_t *more,
                    size_t moren)
{
    if (v == UM_PA_ESTABLISHED) {
        established(c, res);
        return;
    }
    if (res->why && res->why != UM_EPROTO && res->why != UM_EPIPE)
        um_log_limited(&c->a->rl, 5, 1000, UM_LOG_DEBUG, "first flight refused: %s",
                       um_strerror(res->why));
    reject(c);
    if (c->st == C_SPLICE) splice_in(c, more, moren); /* keep every byte */
}

static void on_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    pconn_t *c = ud;
    um_pa_result_t res;
    (void)t;

    if (status == UM_EPIPE) {
        c->peer_eof = 1;
        if (c->st == C_LINGER)
            pconn_end(c, 0);
        else if (c->st == C_SPLICE) {
            if (c->f_connected) {
                um_tcp_shutdown(c->f);
                if (c->f_eof) pconn_end(c, 0);
            }
        } else if (c->st == C_PARSE) {
            /* No more bytes: this cannot become a flight. The slot is free
             * at once; the reaction (splice, or FIN at D) is unchanged. */
            decided(c, um_preauth_end(&c->pa, &res), &res, NULL, 0);
        } else {
            um_gate_evictable(c->a->gate, &c->node);
        }
        return;
    }
    if (status < 0) { /* reset by the peer: nobody is left to observe us */
        pconn_end(c, 0);
        return;
    }
    switch (c->st) {
    case C_PARSE: break;
    case C_SPLICE: splice_in(c, p, n); return;
    default: return; /* discard */
    }
    size_t taken = 0;
    um_pa_verdict_t v =
        um_preauth_feed(&c->pa, p, n, &taken, um_now_ms(), um_wall_s(), &c->a->cfg.sess, &res);
    if (v == UM_PA_MORE) {
        arm(c, GAP_IDLE_MS); /* undecided: wait for the rest, not forever */
        return;
    }
    decided(c, v, &res, p + taken, n - taken);
}

static void on_timer(uv_timer_t *tm)
{
    pconn_t *c = tm->data;
    um_acceptor_t *a = c->a;
    switch (c->st) {
    case C_PARSE: {
        /* The gap (or D) passed without a decision. */
        um_pa_result_t res;
        decided(c, um_preauth_end(&c->pa, &res), &res, NULL, 0);
        return;
    }
    case C_DISCARD: {
        uv_update_time(a->loop);
        if (uv_now(a->loop) < c->deadline) { /* early wake-up: wait for D */
            arm(c, 0);
            return;
        }
        /* The one way we close: FIN, drain until the peer's FIN or linger
         * (jittered: linger_ms to 2 x linger_ms, section 5). */
        um_buf_wipe(&c->buf);
        c->st = C_LINGER;
        c_shutdown(c);
        if (c->peer_eof) {
            pconn_end(c, 0);
            return;
        }
        uint32_t l = a->cfg.linger_ms;
        uv_timer_start(&c->timer, on_timer, l + randombytes_uniform(l + 1), 0);
        return;
    }
    case C_LINGER: pconn_end(c, 0); return;
    default: return;
    }
}

static void on_room(void *ud)
{
    um_acceptor_t *a = ud;
    if (!a->closing && a->l) um_tcp_listener_resume(a->l);
}

static void pconn_start(um_acceptor_t *a, um_tcp_t *t, um_carrier_t *car,
                        const uint8_t src[UM_SRC_KEY_LEN]);

static void on_accept(um_tcp_listener_t *l, um_tcp_t *t, void *ud)
{
    um_acceptor_t *a = ud;
    (void)l;
    a->st.accepted++;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uint8_t src[UM_SRC_KEY_LEN];
    if (a->closing) {
        um_tcp_close(t);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(um_tcp_handle(t), (struct sockaddr *)&ss, &sl) != 0 ||
        um_gate_src_key(a->gate, (struct sockaddr *)&ss, src) != 0)
        memset(src, 0, sizeof(src)); /* gone already: one shared "unknown" source */
    pconn_start(a, t, NULL, src);
}

static void car_read(um_carrier_t *car, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)car;
    on_read(NULL, p, n, status, ud);
}

static void car_drain(um_carrier_t *car, void *ud)
{
    (void)car;
    t_drain(NULL, 0, ud);
}

/* A new pre-auth connection: t (accepted; under cfg.tls wrapped in the
 * listener's TLS), or car (adopted). */
static void pconn_start(um_acceptor_t *a, um_tcp_t *t, um_carrier_t *car,
                        const uint8_t src[UM_SRC_KEY_LEN])
{
    int adopted = car != NULL;
    pconn_t *c = calloc(1, sizeof(*c));
    if (!c || (t && a->cfg.tls && um_ossl_server_new(um_tcp_carrier(t), a->cfg.tls, &car) != 0)) {
        free(c);
        um_tcp_close(t); /* out of memory: nothing better to do */
        um_carrier_close(car);
        return;
    }
    c->a = a;
    c->t = car ? NULL : t; /* the TLS carrier owns t */
    c->car = car;
    c->adopted = adopted;
    memcpy(c->src, src, UM_SRC_KEY_LEN);
    c->node.evict = on_evict;
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    a->live_handles++;
    c->next = a->conns;
    if (a->conns) a->conns->prev = c;
    a->conns = c;
    a->st.preauth++;
    c->parse = um_gate_admit(a->gate, src);
    /* The budget of held connections is reached: take no more until one
     * ends (new ones wait in the backlog; never an accept-then-close). */
    if (!um_gate_room(a->gate) && a->l && um_gate_wait(a->gate, on_room, a) == 0)
        um_tcp_listener_pause(a->l);
    um_preauth_init(&c->pa, a->codec, a->gate);
    um_buf_init(&c->buf, 0);
    uint32_t span = a->cfg.probe_max_ms - a->cfg.probe_min_ms;
    uint64_t delay = a->cfg.probe_min_ms + (span ? randombytes_uniform(span + 1) : 0);
    /* The loop's cached clock may be behind (a busy iteration): refresh it,
     * so the delay runs from now and not from a moment already past. */
    uv_update_time(a->loop);
    c->deadline = uv_now(a->loop) + delay;
    if (car)
        um_carrier_set_cbs(car, car_read, car_drain, c);
    else
        um_tcp_set_read_cb(t, on_read, c);
    if (c->parse) {
        c->st = C_PARSE;
        arm(c, GAP_SILENT_MS);
    } else {
        /* Over a pre-auth budget: never parsed, the same reaction as any
         * connection that does not authenticate. */
        a->st.overload++;
        c->st = C_PARSE;
        reject(c);
        if (c->st == C_DONE) return;
    }
    if ((car ? um_carrier_read_start(car) : um_tcp_read_start(t)) != 0) pconn_end(c, 0);
}

int um_acceptor_adopt(um_acceptor_t *a, um_carrier_t *car, const struct sockaddr *peer)
{
    uint8_t src[UM_SRC_KEY_LEN];
    if (!car) return UM_EINVAL;
    if (!a || a->closing) {
        um_carrier_close(car);
        return UM_EPIPE;
    }
    a->st.accepted++;
    if (!peer || um_gate_src_key(a->gate, peer, src) != 0) memset(src, 0, sizeof(src));
    pconn_start(a, NULL, car, src);
    return 0;
}

int um_acceptor_new(uv_loop_t *loop, const struct sockaddr *listen_addr,
                    const um_acceptor_cfg_t *cfg, um_acceptor_session_cb cb, void *ud,
                    um_acceptor_t **out)
{
    int r;
    if (!loop || !cfg || !cb || !out) return UM_EINVAL;
    if (cfg->probe_max_ms < cfg->probe_min_ms || cfg->shape > UM_SHAPE_MAX) return UM_EINVAL;
    um_acceptor_t *a = calloc(1, sizeof(*a));
    if (!a) return UM_ENOMEM;
    a->loop = loop;
    a->cfg = *cfg;
    a->codec = cfg->codec;
    a->cb = cb;
    a->ud = ud;
    if (!a->cfg.probe_max_ms) {
        a->cfg.probe_min_ms = 15000;
        a->cfg.probe_max_ms = 45000;
    }
    if (!a->cfg.linger_ms) a->cfg.linger_ms = 5000;
    if (cfg->gate) {
        a->gate = um_gate_ref(cfg->gate);
    } else {
        um_gate_cfg_t gc = {.max_preauth = cfg->max_preauth,
                            .per_source = cfg->per_source,
                            .hs_per_s = cfg->hs_per_s,
                            .hs_burst = cfg->hs_burst,
                            .key_hs_per_min = cfg->key_hs_per_min};
        if ((r = um_gate_new(cfg->server_priv, cfg->keys, cfg->skew_s, cfg->replay_entries,
                             cfg->disable_aes, &gc, &a->gate)) != 0) {
            sodium_memzero(a, sizeof(*a));
            free(a);
            return r;
        }
    }
    if (a->codec && a->codec->ops->unauth == UM_UNAUTH_COVER && !cfg->has_fallback) {
        /* A transport whose unauthenticated connections go to a cover site
         * needs the cover's address. */
        um_gate_unref(a->gate);
        sodium_memzero(a, sizeof(*a));
        free(a);
        return UM_EINVAL;
    }
    if (!a->codec) {
        um_codec_tcp_init(&a->own_codec, um_gate_hs(a->gate)->s_pub, cfg->shape, UM_HS_MSG1_MIN,
                          UM_HS_MSG2_RESUME_MIN);
        a->codec = &a->own_codec.base;
    }
    sodium_memzero(a->cfg.server_priv, sizeof(a->cfg.server_priv)); /* the gate has it */
    a->cfg.keys = NULL;
    a->cfg.gate = NULL;
    if (listen_addr && (r = um_tcp_listen(loop, listen_addr, 0, on_accept, a, &a->l)) != 0) {
        um_gate_unref(a->gate);
        sodium_memzero(a, sizeof(*a));
        free(a);
        return r;
    }
    if (a->cfg.tls) um_ossl_ctx_ref(a->cfg.tls); /* released with the acceptor */
    *out = a;
    return 0;
}

int um_acceptor_port(const um_acceptor_t *a)
{
    return a->l ? um_tcp_listener_port(a->l) : 0;
}

void um_acceptor_set_keys(um_acceptor_t *a, um_keyset_t *keys)
{
    um_gate_set_keys(a->gate, keys);
}

void um_acceptor_stats(const um_acceptor_t *a, um_acceptor_stats_t *st)
{
    *st = a->st;
}

void um_acceptor_close(um_acceptor_t *a)
{
    if (!a || a->closing) return;
    a->closing = 1;
    um_gate_unwait(a->gate, a);
    um_tcp_listener_close(a->l);
    a->l = NULL;
    while (a->conns)
        pconn_end(a->conns, 0);
    maybe_free_acceptor(a);
}
