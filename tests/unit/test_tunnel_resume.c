/* Tunnels that outlive their carriers (src/tunnel/tunnel.c, PROTOCOL.md 3.6,
 * 3.7) on a real libuv loop: two tunnels over a loopback TCP pair, streams
 * in both directions; the TCP connection is closed under one side (both
 * tunnels detach, on_detached), the sessions are resumed with keys from a
 * real resumption handshake (um_hs_client_start with RESUME, a server with a
 * resume hook, um_hs_client_finish, um_sess_resume on both ends), new
 * carriers are attached on a new TCP pair, and every stream completes
 * intact. And connection budgets (um_tunnel_set_budget / attach): no record
 * is sent that takes a carrier past its budget (counted by a wrapping
 * carrier), on_budget(false) comes at the soft mark and on_budget(true) when
 * the budget is spent, and rotating onto new carriers (make-before-break and
 * after the budget was spent) moves every byte. Each end bounds its own
 * count (sent + received + handshake) at every write, as PROTOCOL.md 3.7
 * says; the two directions together are only bounded by twice the budget
 * when both ends send at once (the tests print the largest two-way total). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tcp_pair.h"
#include <sodium.h>
#include <uv.h>

#include "crypto/keys.h"
#include "session/handshake.h"
#include "transport/tcp.h"
#include "tunnel/tunnel.h"
#include "util/clock.h"
#include "util/err.h"

#define NS   3   /* streams */
#define MAXW 256 /* carriers per test */
#define MAXL 128 /* listeners per test */
#define PRO  ((const uint8_t *)UM_HS_PROLOGUE_TCP)
#define PROL (sizeof(UM_HS_PROLOGUE_TCP) - 1)
#define NOW  1700000000ull

/* ---- a carrier that counts what crosses it, and can be broken ---- */

typedef struct {
    um_carrier_t base;
    um_carrier_t *in; /* the TCP carrier (NULL once broken) */
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    uint64_t out, got, wire; /* bytes written, read; the handshake's */
    uint64_t budget;         /* 0: none */
    uint64_t soft_mark;
    uint64_t peak; /* the most out + got + wire + n seen at a write */
    bool over;     /* a write would have passed the budget */
    bool closed, broken;
    uv_timer_t tm; /* delivers the break to the tunnel from the loop */
} wcar_t;

static wcar_t *of(um_carrier_t *c)
{
    return (wcar_t *)c;
}

static void w_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    wcar_t *w = ud;
    (void)c;
    if (status == 0) w->got += n;
    if (w->rd) w->rd(&w->base, p, n, status, w->ud);
}

static void w_drain(um_carrier_t *c, void *ud)
{
    wcar_t *w = ud;
    (void)c;
    if (w->dr) w->dr(&w->base, w->ud);
}

static void w_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    wcar_t *w = of(c);
    w->rd = rd;
    w->dr = dr;
    w->ud = ud;
}

static int w_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    wcar_t *w = of(c);
    if (w->broken || !w->in) return UM_EPIPE;
    uint64_t now = w->out + w->got + w->wire + n;
    if (now > w->peak) w->peak = now;
    if (w->budget && now > w->budget) w->over = true;
    int r = um_carrier_write(w->in, p, n);
    if (r == 0) w->out += n;
    return r;
}

static size_t w_queued(const um_carrier_t *c)
{
    const wcar_t *w = (const wcar_t *)c;
    return w->in ? um_carrier_queued(w->in) : 0;
}

static void w_set_wq_max(um_carrier_t *c, size_t max)
{
    if (of(c)->in) um_carrier_set_wq_max(of(c)->in, max);
}

static int w_read_start(um_carrier_t *c)
{
    return of(c)->in ? um_carrier_read_start(of(c)->in) : 0;
}

static int w_read_stop(um_carrier_t *c)
{
    return of(c)->in ? um_carrier_read_stop(of(c)->in) : 0;
}

static int w_shutdown(um_carrier_t *c)
{
    return of(c)->in ? um_carrier_shutdown(of(c)->in) : UM_EPIPE;
}

static void w_close(um_carrier_t *c)
{
    wcar_t *w = of(c);
    uv_timer_stop(&w->tm);
    if (w->in) um_carrier_close(w->in);
    w->in = NULL;
    w->closed = true;
}

static int w_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    (void)c;
    memcpy(out, p, n);
    *outn = n;
    return 0;
}

static const um_carrier_ops_t w_ops = {
    .name = "counted",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16466,
    .set_cbs = w_set_cbs,
    .write = w_write,
    .queued = w_queued,
    .set_wq_max = w_set_wq_max,
    .read_start = w_read_start,
    .read_stop = w_read_stop,
    .shutdown = w_shutdown,
    .close = w_close,
    .absorb = w_absorb,
};

static void w_init(wcar_t *w, uv_loop_t *loop, um_tcp_t *tcp, uint64_t wire, uint64_t budget)
{
    memset(w, 0, sizeof(*w));
    w->base.ops = &w_ops;
    w->in = um_tcp_carrier(tcp);
    w->wire = wire;
    w->budget = budget;
    uv_timer_init(loop, &w->tm);
    w->tm.data = w;
    um_carrier_set_cbs(w->in, w_read, w_drain, w);
}

static void w_broken(uv_timer_t *h)
{
    wcar_t *w = h->data;
    if (!w->closed && w->rd) w->rd(&w->base, NULL, 0, UV_ECONNRESET, w->ud);
}

/* The connection dies under this side: its TCP socket is closed (the peer
 * sees EOF), and this side's tunnel hears a reset from the loop. */
static void w_break(wcar_t *w)
{
    if (w->in) um_carrier_close(w->in);
    w->in = NULL;
    w->broken = true;
    uv_timer_start(&w->tm, w_broken, 0, 0);
}

/* ---- streams ---- */

typedef struct fx fx_t;

typedef struct {
    fx_t *fx;
    um_conn_t *c;
    uint8_t seed, pseed;
    uint64_t sent, got;
    uint64_t want, expect; /* bytes it sends, it receives */
    int opened, result, errors, eofs;
    bool closed, bad;
} stream_t;

struct fx {
    uv_loop_t loop;
    um_tcp_listener_t *ls[MAXL];
    int nls;
    wcar_t w[MAXW];
    int nw;
    wcar_t *cw, *sw; /* the current carriers */
    um_tunnel_t *ct, *st;
    um_hub_t *hub;
    um_hs_server_t srv;
    uint8_t ci[32], si[32], sp[32];
    stream_t cs[NS], ss[NS];
    int nss;
    uint64_t up, down; /* bytes per stream: client to server, server to client */
    int cdet, sdet, cdet_err, sdet_err, cdown, sdown;
    int c_soft, c_spent, s_soft, s_spent; /* on_budget calls on the current carriers */
    /* spent told with no soft before it on a carrier (both marks were
     * passed within one turn of the loop: one call says both) */
    int c_coalesced, s_coalesced;
    int c_soft_early; /* client soft marks told below the budget */
};

static uint8_t pat(uint8_t seed, uint64_t off)
{
    uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull + seed * 0x632BE59BD9B4E019ull;
    x ^= x >> 29;
    return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

static void feed(stream_t *s)
{
    uint8_t buf[16384];
    if (!s->c || s->closed || s->opened == 0 || s->result != UM_CONN_OK) return;
    for (int i = 0; i < 64 && s->sent < s->want; i++) {
        if (um_conn_queued(s->c) >= UM_CONN_HIGH_WATER) return;
        size_t k = s->want - s->sent < sizeof(buf) ? (size_t)(s->want - s->sent) : sizeof(buf);
        for (size_t j = 0; j < k; j++)
            buf[j] = pat(s->seed, s->sent + j);
        if (um_conn_write(s->c, buf, k) != 0) return;
        s->sent += k;
    }
}

static void on_open(void *arg, int result)
{
    stream_t *s = arg;
    s->opened = 1;
    s->result = result;
    feed(s);
}

static void on_data(void *arg, const uint8_t *p, size_t n)
{
    stream_t *s = arg;
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(s->pseed, s->got + i)) s->bad = true;
    s->got += n;
}

static void on_eof(void *arg)
{
    ((stream_t *)arg)->eofs++;
}

static void on_error(void *arg, int err)
{
    (void)err;
    ((stream_t *)arg)->errors++;
}

static void on_drain(void *arg)
{
    feed(arg);
}

static const um_conn_cbs_t conn_cbs = {on_open, on_data, on_eof, on_error, on_drain};

/* ---- tunnel callbacks ---- */

static void srv_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
{
    fx_t *fx = ud;
    (void)dst;
    if (fx->nss >= NS) {
        um_tunnel_refuse(t, id, UM_CONN_GENERAL_FAILURE);
        return;
    }
    stream_t *s = &fx->ss[fx->nss];
    s->fx = fx;
    s->seed = (uint8_t)(0x80 + fx->nss);
    s->pseed = (uint8_t)(0x10 + fx->nss);
    s->want = fx->down;
    s->expect = fx->up;
    fx->nss++;
    assert_int_equal(um_tunnel_accept(t, id, &conn_cbs, s, &s->c), 0);
    s->opened = 1;
    s->result = UM_CONN_OK;
    feed(s);
}

static void c_detached(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    fx->cdet++;
    fx->cdet_err = err;
}

static void s_detached(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    fx->sdet++;
    fx->sdet_err = err;
}

static void c_down(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    (void)err;
    fx->cdown++;
    fx->ct = NULL;
}

static void s_down(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    (void)err;
    fx->sdown++;
    fx->st = NULL;
}

static void c_budget(um_tunnel_t *t, bool spent, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    if (spent) {
        if (!fx->c_soft) fx->c_coalesced++;
        fx->c_spent++;
    } else {
        /* Told at the soft mark, while the carrier still has room. */
        wcar_t *w = fx->cw;
        uint64_t at = w->out + w->got + w->wire;
        if (at >= w->soft_mark && at < w->budget) fx->c_soft_early++;
        fx->c_soft++;
    }
}

static void s_budget(um_tunnel_t *t, bool spent, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    if (spent) {
        if (!fx->s_soft) fx->s_coalesced++;
        fx->s_spent++;
    } else {
        fx->s_soft++;
    }
}

static const um_tunnel_cbs_t ccbs = {
    .on_down = c_down, .on_detached = c_detached, .on_budget = c_budget};
static const um_tunnel_cbs_t scbs = {
    .on_opened = srv_opened, .on_down = s_down, .on_detached = s_detached, .on_budget = s_budget};

/* ---- fixture ---- */

static int resume_hook(void *ud, const uint8_t client[32], const uint8_t sid[UM_SID_LEN],
                       uint64_t client_rx, uint32_t move, uint64_t now_s, uint64_t *server_rx)
{
    fx_t *fx = ud;
    (void)client;
    (void)move;
    (void)now_s;
    um_sess_t *s = fx->st ? um_tunnel_session(fx->st) : NULL;
    if (!s || sodium_memcmp(um_sess_id(s), sid, UM_SID_LEN) != 0) return UM_HS_RESUME_NO;
    if (!um_sess_resumable(s, client_rx)) return UM_HS_RESUME_NO;
    um_sess_offsets_t o;
    um_sess_offsets(s, &o);
    *server_rx = o.rx_next;
    return UM_HS_RESUME_YES;
}

static uint64_t g_soft;
static wcar_t *new_w(fx_t *fx, um_tcp_t *tcp, uint64_t wire, uint64_t budget)
{
    assert_true(fx->nw < MAXW);
    wcar_t *w = &fx->w[fx->nw++];
    w_init(w, &fx->loop, tcp, wire, budget);
    w->soft_mark = g_soft;
    return w;
}

static void tcp_pair(fx_t *fx, um_tcp_t **c, um_tcp_t **s)
{
    assert_true(fx->nls < MAXL);
    tcp_pair_open(&fx->loop, &fx->ls[fx->nls++], c, s);
}

static void fx_up(fx_t *fx, uint64_t up, uint64_t down, uint64_t budget, uint64_t soft)
{
    memset(fx, 0, sizeof(*fx));
    g_soft = soft;
    fx->up = up;
    fx->down = down;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    um_key_generate(fx->ci);
    um_key_generate(fx->si);
    um_key_public(fx->sp, fx->si);
    uint8_t cp[32];
    um_key_public(cp, fx->ci);
    um_keyset_t *ks = um_keyset_new();
    assert_int_equal(um_keyset_add(ks, cp), 0);
    assert_int_equal(um_hs_server_init(&fx->srv, fx->si, ks, 0, 1024), 0);
    um_keyset_unref(ks);
    fx->srv.resume = resume_hook;
    fx->srv.resume_ud = fx;

    /* The first session, from a real handshake. */
    um_hs_client_t hs;
    uint8_t m1[UM_HS_MSG_MAX], m2[UM_HS_MSG_MAX];
    size_t m1n, m2n;
    um_sess_keys_t ck, sk;
    um_hs_client_opts_t o = {.budget = (uint32_t)budget};
    assert_int_equal(
        um_hs_client_start(&hs, PRO, PROL, fx->ci, fx->sp, &o, NOW, 0, m1, sizeof(m1), &m1n), 0);
    assert_int_equal(um_hs_server_respond(&fx->srv, PRO, PROL, m1, m1n, NOW, UM_HS_MSG2_RESUME_MIN,
                                          m2, sizeof(m2), &m2n, &sk),
                     0);
    assert_int_equal(um_hs_client_finish(&hs, m2, m2n, &ck), 0);
    assert_int_equal(sk.budget, (uint32_t)budget);
    um_sess_cfg_t scfg = {.tx_max = UM_TUNNEL_SESS_TX_MAX};
    um_sess_t *a = um_sess_new(&ck, &scfg), *b = um_sess_new(&sk, &scfg);
    um_sess_keys_wipe(&ck);
    um_sess_keys_wipe(&sk);
    assert_non_null(a);
    assert_non_null(b);

    um_tcp_t *ctcp, *stcp;
    tcp_pair(fx, &ctcp, &stcp);
    fx->cw = new_w(fx, ctcp, m1n + m2n, budget);
    fx->sw = new_w(fx, stcp, m1n + m2n, budget);
    um_mux_config_t mc;
    um_mux_config_default(&mc);
    mc.ping_timeout_ms = 0; /* resumable: the carrier's stall detection decides */
    assert_int_equal(
        um_tunnel_new(&fx->loop, a, &fx->cw->base, UM_MUX_CLIENT, &mc, &ccbs, fx, &fx->ct), 0);
    assert_int_equal(
        um_tunnel_new(&fx->loop, b, &fx->sw->base, UM_MUX_SERVER, &mc, &scbs, fx, &fx->st), 0);
    um_tunnel_set_resumable(fx->ct, 0);
    um_tunnel_set_resumable(fx->st, 0);
    if (budget) {
        um_tunnel_set_budget(fx->ct, budget, soft, m1n + m2n);
        um_tunnel_set_budget(fx->st, budget, soft, m1n + m2n);
    }
    assert_int_equal(um_hub_new(&fx->loop, 10000, 16, &fx->hub), 0);
    um_hub_set_tunnel(fx->hub, fx->ct);
    for (int i = 0; i < NS; i++) {
        stream_t *s = &fx->cs[i];
        s->fx = fx;
        s->seed = (uint8_t)(0x10 + i);
        s->pseed = (uint8_t)(0x80 + i);
        s->want = fx->up;
        s->expect = fx->down;
        um_addr_t d;
        memset(&d, 0, sizeof(d));
        d.type = UM_ADDR_IPV4;
        d.u.v4[0] = 127;
        d.u.v4[3] = 1;
        d.port = (uint16_t)(80 + i);
        assert_int_equal(um_conn_open(um_hub_connector(fx->hub), &d, (const uint8_t *)"x", 0,
                                      &conn_cbs, s, &s->c),
                         0);
    }
}

typedef bool (*pred_t)(fx_t *fx);

static bool run_until(fx_t *fx, pred_t done, uint64_t ms)
{
    uint64_t end = um_now_ms() + ms;
    while (!done(fx) && um_now_ms() < end) {
        for (int i = 0; i < NS; i++) {
            feed(&fx->cs[i]);
            feed(&fx->ss[i]);
        }
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    return done(fx);
}

static uint64_t c_got(fx_t *fx)
{
    uint64_t g = 0;
    for (int i = 0; i < NS; i++)
        g += fx->cs[i].got;
    return g;
}

static bool all_done(fx_t *fx)
{
    if (fx->nss < NS) return false;
    for (int i = 0; i < NS; i++)
        if (fx->cs[i].got < fx->cs[i].expect || fx->ss[i].got < fx->ss[i].expect) return false;
    return true;
}

static void check_streams(fx_t *fx)
{
    assert_int_equal(fx->nss, NS);
    for (int i = 0; i < NS; i++) {
        assert_int_equal(fx->cs[i].result, UM_CONN_OK);
        assert_int_equal(fx->cs[i].got, fx->down);
        assert_int_equal(fx->ss[i].got, fx->up);
        assert_false(fx->cs[i].bad);
        assert_false(fx->ss[i].bad);
        assert_int_equal(fx->cs[i].errors, 0);
        assert_int_equal(fx->ss[i].errors, 0);
    }
    assert_int_equal(fx->cdown, 0);
    assert_int_equal(fx->sdown, 0);
}

/* A resumption handshake (computed here, its bytes counted as the new
 * carriers' wire bytes), then both tunnels move onto a new TCP pair. */
static void move_on(fx_t *fx, uint64_t budget, uint64_t soft)
{
    /* The connection first (this runs the loop); from the server's resume
     * to both attaches nothing may run, as in the pre-auth core and the
     * connector: the old carriers' bytes are under keys that are gone. */
    um_tcp_t *ctcp, *stcp;
    tcp_pair(fx, &ctcp, &stcp);
    um_sess_t *a = um_tunnel_session(fx->ct), *b = um_tunnel_session(fx->st);
    um_sess_offsets_t o;
    um_sess_offsets(a, &o);
    um_hs_client_t hs;
    uint8_t m1[UM_HS_MSG_MAX], m2[UM_HS_MSG_MAX];
    size_t m1n, m2n;
    um_sess_keys_t ck, sk;
    um_hs_client_opts_t ho = {
        .resume_sid = um_sess_id(a), .resume_offset = o.rx_next, .budget = (uint32_t)budget};
    assert_int_equal(
        um_hs_client_start(&hs, PRO, PROL, fx->ci, fx->sp, &ho, NOW, 0, m1, sizeof(m1), &m1n), 0);
    assert_int_equal(um_hs_server_respond(&fx->srv, PRO, PROL, m1, m1n, NOW, UM_HS_MSG2_RESUME_MIN,
                                          m2, sizeof(m2), &m2n, &sk),
                     0);
    assert_true(sk.resumed);
    assert_int_equal(um_sess_resume(b, &sk, sk.resume_offset), 0);
    wcar_t *sw = new_w(fx, stcp, m1n + m2n, budget);
    assert_int_equal(um_tunnel_attach(fx->st, &sw->base, NULL, 0, m1n + m2n, budget, soft), 0);
    fx->sw = sw;
    assert_int_equal(um_hs_client_finish(&hs, m2, m2n, &ck), 0);
    assert_true(ck.resumed && ck.resume_has_peer_rx);
    assert_int_equal(um_sess_resume(a, &ck, ck.resume_peer_rx), 0);
    wcar_t *cw = new_w(fx, ctcp, m1n + m2n, budget);
    assert_int_equal(um_tunnel_attach(fx->ct, &cw->base, NULL, 0, m1n + m2n, budget, soft), 0);
    fx->cw = cw;
    um_sess_keys_wipe(&ck);
    um_sess_keys_wipe(&sk);
    fx->c_soft = fx->c_spent = fx->s_soft = fx->s_spent = 0;
}

static void fx_down(fx_t *fx)
{
    for (int i = 0; i < NS; i++) {
        if (fx->cs[i].c) um_conn_close(fx->cs[i].c);
        if (fx->ss[i].c) um_conn_close(fx->ss[i].c);
    }
    if (fx->ct) um_tunnel_close(fx->ct, false, 0);
    if (fx->st) um_tunnel_close(fx->st, false, 0);
    uint64_t end = um_now_ms() + 5000;
    while ((!fx->cdown || !fx->sdown) && um_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(fx->cdown, 1);
    assert_int_equal(fx->sdown, 1);
    um_hub_free(fx->hub);
    for (int i = 0; i < fx->nls; i++)
        um_tcp_listener_close(fx->ls[i]);
    for (int i = 0; i < fx->nw; i++) {
        if (!fx->w[i].closed) w_close(&fx->w[i].base);
        uv_close((uv_handle_t *)&fx->w[i].tm, NULL);
    }
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    um_hs_server_close(&fx->srv);
}

static uint64_t g_mark;
static bool c_past_mark(fx_t *fx)
{
    return c_got(fx) >= g_mark || all_done(fx);
}

static bool both_detached(fx_t *fx)
{
    return fx->cdet && fx->sdet;
}

/* The TCP connection is closed under one side (the client's, then the
 * server's, then the client's again) in the middle of the transfer: both
 * tunnels detach, the session resumes on a new pair with fresh keys, and
 * every stream completes intact in both directions. */
static void test_carrier_closed_resume(void **st)
{
    (void)st;
    fx_t fx;
    fx_up(&fx, 6u << 20, 6u << 20, 0, 0);
    for (int k = 0; k < 3; k++) {
        g_mark = (uint64_t)(k + 1) * NS * fx.down / 4;
        assert_true(run_until(&fx, c_past_mark, 60000));
        assert_false(all_done(&fx));
        fx.cdet = fx.sdet = 0;
        w_break(k == 1 ? fx.sw : fx.cw);
        assert_true(run_until(&fx, both_detached, 10000));
        assert_false(um_tunnel_attached(fx.ct));
        assert_false(um_tunnel_attached(fx.st));
        /* Both heard that their connection broke (a reset, an end of file,
         * or a write that failed), not that the session ended. */
        assert_true(fx.cdet_err < 0 && fx.sdet_err < 0);
        assert_int_equal(fx.cdown + fx.sdown, 0);
        move_on(&fx, 0, 0);
    }
    assert_true(run_until(&fx, all_done, 120000));
    check_streams(&fx);
    um_tunnel_stats_t cs, ss;
    um_tunnel_stats(fx.ct, &cs);
    um_tunnel_stats(fx.st, &ss);
    assert_int_equal(cs.detaches, 3);
    assert_int_equal(ss.detaches, 3);
    assert_int_equal(cs.attaches, 3);
    assert_int_equal(ss.attaches, 3);
    assert_int_equal(cs.rotations, 0);
    print_message("carrier closed 3 times: %llu MiB each way intact\n",
                  (unsigned long long)(NS * fx.down >> 20));
    fx_down(&fx);
}

static bool rotate_due(fx_t *fx)
{
    return all_done(fx) || fx->c_soft || fx->s_soft || fx->c_spent || fx->s_spent;
}
static bool spent_due(fx_t *fx)
{
    return all_done(fx) || fx->c_spent || fx->s_spent;
}

typedef struct {
    int carriers, after_spent, c_spent_seen, c_coalesced, s_coalesced, soft_early;
    uint64_t peak, max_two_way;
} budget_run_t;

/* Budgets: every carrier gets 48 KiB (soft mark at half). Odd carriers are
 * replaced at the first on_budget (make-before-break: the old one is still
 * attached), even ones only once a side has spent its budget and stopped.
 * No record ever takes a side's count (sent + received + handshake) past the
 * budget, a side that spent its budget sends nothing more on that carrier,
 * and all bytes arrive. */
static void run_budget(uint64_t up, uint64_t down, uint64_t budget, uint64_t soft,
                       budget_run_t *res)
{
    fx_t fx;
    memset(res, 0, sizeof(*res));
    fx_up(&fx, up, down, budget, soft);
    for (int k = 0; k < 400 && !all_done(&fx); k++) {
        bool wait_spent = k % 2 == 0;
        bool ok = run_until(&fx, wait_spent ? spent_due : rotate_due, 20000);
        if (!ok)
            print_message("stuck at carrier %d (%s): client soft %d spent %d out %llu got %llu; "
                          "server soft %d spent %d out %llu got %llu\n",
                          k, wait_spent ? "spent" : "soft", fx.c_soft, fx.c_spent,
                          (unsigned long long)fx.cw->out, (unsigned long long)fx.cw->got, fx.s_soft,
                          fx.s_spent, (unsigned long long)fx.sw->out,
                          (unsigned long long)fx.sw->got);
        assert_true(ok);
        if (all_done(&fx)) break;
        if (wait_spent) {
            assert_true(fx.c_spent || fx.s_spent);
            /* Spent means spent: nothing more goes out on that side. */
            wcar_t *w = fx.c_spent ? fx.cw : fx.sw;
            uint64_t out = w->out;
            uint64_t end = um_now_ms() + 30;
            while (um_now_ms() < end)
                uv_run(&fx.loop, UV_RUN_NOWAIT);
            assert_int_equal(w->out, out);
            res->after_spent++;
            res->c_spent_seen += fx.c_spent > 0;
        }
        uint64_t two = fx.cw->out + fx.sw->out + fx.cw->wire;
        if (two > res->max_two_way) res->max_two_way = two;
        move_on(&fx, budget, soft);
        res->carriers++;
    }
    assert_true(run_until(&fx, all_done, 60000));
    check_streams(&fx);
    res->c_coalesced = fx.c_coalesced;
    res->s_coalesced = fx.s_coalesced;
    res->soft_early = fx.c_soft_early;
    for (int i = 0; i < fx.nw; i++) {
        assert_false(fx.w[i].over);
        if (fx.w[i].peak > res->peak) res->peak = fx.w[i].peak;
        /* Each side is bounded, so the two directions together are at most
         * twice the budget. */
        assert_true(fx.w[i].out + fx.w[i].wire <= budget);
    }
    assert_true(res->peak <= budget);
    res->carriers++;
    print_message(
        "budget %llu, %llu up / %llu down per stream: %d carriers (%d waited for a "
        "spent budget), largest side count at a write %llu, largest two-way total "
        "%llu; client: soft told below the budget %d, spent %d, spent with no soft first %d; "
        "server: spent with no soft first %d\n",
        (unsigned long long)budget, (unsigned long long)up, (unsigned long long)down, res->carriers,
        res->after_spent, (unsigned long long)res->peak, (unsigned long long)res->max_two_way,
        res->soft_early, res->c_spent_seen, res->c_coalesced, res->s_coalesced);
    fx_down(&fx);
}

/* Download (the server sends, the client acknowledges) with room between
 * the marks (soft 64 KiB, budget 8 MiB: more than one turn of the loop can
 * read, so the marks are never passed in the same turn, however loaded the
 * machine): the client hears on_budget(false) at the soft mark while the
 * carrier still has room, and never on_budget(true) without it first. */
static void test_budget_soft_then_spent(void **st)
{
    (void)st;
    budget_run_t r;
    run_budget(1000, 8u << 20, 8u << 20, 64 * 1024, &r);
    assert_true(r.carriers >= 4);
    assert_true(r.after_spent >= 2);
    assert_true(r.soft_early >= r.carriers - 1);
    assert_int_equal(r.c_coalesced, 0);
}

/* A TSPU-sized budget (48 KiB) on a download: many carriers, every byte. */
static void test_budget_small_download(void **st)
{
    (void)st;
    budget_run_t r;
    run_budget(1000, 512 * 1024, 48 * 1024, 24 * 1024, &r);
    assert_true(r.carriers >= 20);
    assert_true(r.after_spent >= 5);
}

/* Both directions in bulk at once: each side still keeps its own count
 * under the budget at every write. */
static void test_budget_two_way(void **st)
{
    (void)st;
    budget_run_t r;
    run_budget(256 * 1024, 256 * 1024, 48 * 1024, 24 * 1024, &r);
    assert_true(r.carriers >= 10);
    assert_true(r.after_spent >= 3);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as umbra does (app/main.c): a write to a closed peer is EPIPE */
    um_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_carrier_closed_resume),
        cmocka_unit_test(test_budget_soft_then_spent),
        cmocka_unit_test(test_budget_small_download),
        cmocka_unit_test(test_budget_two_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
