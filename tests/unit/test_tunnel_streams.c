/* The tunnel layer (src/tunnel/tunnel.c) on a real libuv loop: a real session
 * pair over loopback TCP, streams opened through the hub on the client and
 * accepted on the server. Checks the contract of tunnel.h (no callback
 * inside a user call: um_tunnel_close, um_hub_set_tunnel), stream
 * open/write/close/reset in every order against a session that goes down at
 * each step, allocation failure while the tunnel dies, and that the loop
 * closes cleanly after every test (uv_loop_close() == 0: no leaked handle).
 * Named test_app_* because the tunnel lives in src/app for now. */
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

#include "tunnel/tunnel.h"
#include "transport/tcp.h"
#include "util/clock.h"
#include "util/err.h"

#define MAXS 8

typedef struct fx fx_t;

typedef struct {
    fx_t *fx;
    um_conn_t *c;
    int opened, open_result, errors, eofs;
    size_t got;
    bool closed;
} side_stream_t;

struct fx {
    uv_loop_t loop;
    um_tcp_listener_t *ls;
    um_tcp_t *ctcp, *stcp;
    um_tunnel_t *ct, *st;
    um_hub_t *hub;
    int cdown, sdown;
    bool in_call; /* a user call is running: no callback may fire */
    side_stream_t cs[MAXS], ss[MAXS];
    int n_cs, n_ss;
};

/* ---- stream callbacks ---- */

static void no_call(fx_t *fx)
{
    assert_false(fx->in_call);
}

static void s_on_open(void *arg, int result)
{
    side_stream_t *s = arg;
    no_call(s->fx);
    assert_false(s->closed);
    assert_int_equal(s->opened, 0);
    s->opened = 1;
    s->open_result = result;
}

static void s_on_data(void *arg, const uint8_t *p, size_t n)
{
    side_stream_t *s = arg;
    (void)p;
    no_call(s->fx);
    assert_false(s->closed);
    s->got += n;
}

static void s_on_eof(void *arg)
{
    side_stream_t *s = arg;
    no_call(s->fx);
    assert_false(s->closed);
    s->eofs++;
}

static void s_on_error(void *arg, int err)
{
    side_stream_t *s = arg;
    (void)err;
    no_call(s->fx);
    assert_false(s->closed);
    assert_int_equal(s->errors, 0); /* at most one */
    s->errors++;
}

static void s_on_drain(void *arg)
{
    no_call(((side_stream_t *)arg)->fx);
}

static const um_conn_cbs_t s_cbs = {s_on_open, s_on_data, s_on_eof, s_on_error, s_on_drain};

static void s_close(side_stream_t *s)
{
    if (s->closed || !s->c) return;
    s->fx->in_call = true;
    um_conn_close(s->c);
    s->fx->in_call = false;
    s->closed = true;
}

/* ---- tunnel callbacks ---- */

static void srv_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
{
    fx_t *fx = ud;
    (void)dst;
    no_call(fx);
    assert_true(fx->n_ss < MAXS);
    side_stream_t *s = &fx->ss[fx->n_ss++];
    s->fx = fx;
    assert_int_equal(um_tunnel_accept(t, id, &s_cbs, s, &s->c), 0);
}

static void c_down(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)err;
    no_call(fx);
    assert_true(t == fx->ct);
    fx->cdown++;
    fx->ct = NULL;
}

static void s_down(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)err;
    no_call(fx);
    assert_true(t == fx->st);
    fx->sdown++;
    fx->st = NULL;
}

static const um_tunnel_cbs_t ccbs = {.on_down = c_down};
static const um_tunnel_cbs_t scbs = {.on_opened = srv_opened, .on_down = s_down};

/* ---- loop helpers ---- */

typedef bool (*pred_t)(fx_t *fx);

static bool run_until(fx_t *fx, pred_t done, uint64_t ms)
{
    uint64_t end = um_now_ms() + ms;
    while (!done(fx) && um_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    return done(fx);
}

static void mkkeys(um_sess_keys_t *a, um_sess_keys_t *b)
{
    memset(a, 0, sizeof(*a));
    randombytes_buf(a->k_send, 32);
    randombytes_buf(a->k_recv, 32);
    randombytes_buf(a->sid, UM_SID_LEN);
    a->alg = UM_AEAD_CHACHA20_POLY1305;
    a->initiator = 1;
    *b = *a;
    memcpy(b->k_send, a->k_recv, 32);
    memcpy(b->k_recv, a->k_send, 32);
    b->initiator = 0;
}

static void fx_up(fx_t *fx, bool with_tunnel)
{
    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    tcp_pair_open(&fx->loop, &fx->ls, &fx->ctcp, &fx->stcp);
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb);
    um_sess_t *a = um_sess_new(&ka, NULL), *b = um_sess_new(&kb, NULL);
    sodium_memzero(&ka, sizeof(ka));
    sodium_memzero(&kb, sizeof(kb));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(um_tunnel_new(&fx->loop, a, um_tcp_carrier(fx->ctcp), UM_MUX_CLIENT, NULL,
                                   &ccbs, fx, &fx->ct),
                     0);
    assert_int_equal(um_tunnel_new(&fx->loop, b, um_tcp_carrier(fx->stcp), UM_MUX_SERVER, NULL,
                                   &scbs, fx, &fx->st),
                     0);
    assert_int_equal(um_hub_new(&fx->loop, 10000, 16, &fx->hub), 0);
    if (with_tunnel) um_hub_set_tunnel(fx->hub, fx->ct);
}

static bool both_down(fx_t *fx)
{
    return fx->cdown && fx->sdown;
}

/* Ends every tunnel and stream, then the loop must close with no handle left. */
static void fx_down(fx_t *fx)
{
    for (int i = 0; i < fx->n_cs; i++)
        s_close(&fx->cs[i]);
    for (int i = 0; i < fx->n_ss; i++)
        s_close(&fx->ss[i]);
    if (fx->ct) um_tunnel_close(fx->ct, false, 0);
    if (fx->st) um_tunnel_close(fx->st, false, 0);
    assert_true(run_until(fx, both_down, 5000));
    assert_int_equal(fx->cdown, 1);
    assert_int_equal(fx->sdown, 1);
    um_hub_free(fx->hub);
    um_tcp_listener_close(fx->ls);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static side_stream_t *c_open(fx_t *fx, const char *early)
{
    assert_true(fx->n_cs < MAXS);
    side_stream_t *s = &fx->cs[fx->n_cs++];
    s->fx = fx;
    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 80;
    fx->in_call = true;
    int r = um_conn_open(um_hub_connector(fx->hub), &d, (const uint8_t *)early,
                         early ? strlen(early) : 0, &s_cbs, s, &s->c);
    fx->in_call = false;
    assert_int_equal(r, 0);
    return s;
}

static int g_want;
static bool cs_opened(fx_t *fx)
{
    int n = 0;
    for (int i = 0; i < fx->n_cs; i++)
        n += fx->cs[i].opened;
    return n >= g_want && fx->n_ss >= g_want;
}

static void spin(fx_t *fx, uint64_t ms)
{
    uint64_t end = um_now_ms() + ms;
    while (um_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* ---- tests ---- */

static void test_open_echo_close(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx, true);
    side_stream_t *a = c_open(&fx, "hello");
    g_want = 1;
    assert_true(run_until(&fx, cs_opened, 5000));
    assert_int_equal(a->open_result, UM_CONN_OK);
    spin(&fx, 50);
    assert_int_equal(fx.ss[0].got, 5);
    assert_int_equal(um_conn_write(fx.ss[0].c, (const uint8_t *)"world!", 6), 0);
    spin(&fx, 50);
    assert_int_equal(a->got, 6);
    um_tunnel_stats_t st;
    um_tunnel_stats(fx.st, &st);
    assert_int_equal(st.streams_open, 1);
    s_close(a);
    spin(&fx, 50);
    assert_int_equal(fx.ss[0].errors, 1); /* the abort reached the server */
    fx_down(&fx);
}

/* The send share: while several streams have bytes waiting for the mux,
 * each reports itself above high water past its share of 256 KiB (at least
 * 32 KiB), so a feeder stops at that instead of at high water; one stream
 * alone keeps the whole high water. Everything written still arrives. */
static bool all_got_share(fx_t *fx)
{
    for (int i = 0; i < g_want; i++)
        if (fx->ss[i].got < 40000) return false;
    return true;
}

static void test_tx_share(void **state)
{
    (void)state;
    static uint8_t buf[40000];
    fx_t fx;
    fx_up(&fx, true);
    for (int i = 0; i < MAXS; i++)
        c_open(&fx, NULL);
    g_want = MAXS;
    assert_true(run_until(&fx, cs_opened, 5000));
    randombytes_buf(buf, sizeof(buf));
    /* No loop turn between the writes: the mux holds every byte. */
    assert_int_equal(um_conn_write(fx.cs[0].c, buf, sizeof(buf)), 0);
    assert_int_equal(um_conn_queued(fx.cs[0].c), sizeof(buf)); /* alone: its true count */
    for (int i = 1; i < MAXS; i++)
        assert_int_equal(um_conn_write(fx.cs[i].c, buf, sizeof(buf)), 0);
    for (int i = 0; i < MAXS; i++) /* 8 sending: a share of 32 KiB each */
        assert_true(um_conn_queued(fx.cs[i].c) > UM_CONN_HIGH_WATER);
    assert_true(run_until(&fx, all_got_share, 5000));
    for (int i = 0; i < MAXS; i++) {
        assert_int_equal(fx.ss[i].got, sizeof(buf));
        assert_int_equal(um_conn_queued(fx.cs[i].c), 0);
    }
    fx_down(&fx);
}

/* um_tunnel_close(t, false) runs no callback inside the call; the streams'
 * on_error and on_down follow from the loop (review item 1). */
static void test_close_defers_callbacks(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx, true);
    for (int i = 0; i < 4; i++)
        c_open(&fx, "x");
    g_want = 4;
    assert_true(run_until(&fx, cs_opened, 5000));
    fx.in_call = true; /* any callback now fails the test */
    um_tunnel_close(fx.ct, false, 0);
    fx.in_call = false;
    assert_int_equal(fx.cdown, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(fx.cs[i].errors, 0);
    assert_true(run_until(&fx, both_down, 5000));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fx.cs[i].errors, 1);
        assert_int_equal(fx.ss[i].errors, 1); /* the server's side died with its session */
    }
    fx_down(&fx);
}

/* um_hub_set_tunnel starting waiting opens that cannot start (the tunnel is
 * going away) reports their failure later, not inside the call. */
static void test_hub_set_tunnel_defers_failures(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx, false);
    for (int i = 0; i < 3; i++)
        c_open(&fx, NULL);              /* no tunnel: they wait */
    um_tunnel_close(fx.ct, true, 5000); /* GOAWAY: no new stream on it */
    fx.in_call = true;
    um_hub_set_tunnel(fx.hub, fx.ct);
    fx.in_call = false;
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx.cs[i].opened, 0);
    g_want = 0;
    spin(&fx, 300);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx.cs[i].opened, 1);
        assert_int_not_equal(fx.cs[i].open_result, UM_CONN_OK);
    }
    um_hub_set_tunnel(fx.hub, NULL);
    fx_down(&fx);
}

/* Review item 2: every allocation fails while the tunnel dies; every
 * stream still hears of it and nothing is used after the tunnel is freed
 * (the ASan build checks the latter). */
static void test_alloc_failure_while_dying(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx, true);
    for (int i = 0; i < 5; i++)
        c_open(&fx, "data");
    g_want = 5;
    assert_true(run_until(&fx, cs_opened, 5000));
    um_tunnel_test_fail_alloc(true);
    side_stream_t extra = {.fx = &fx};
    um_addr_t d = {.type = UM_ADDR_IPV4, .port = 80};
    d.u.v4[0] = 127;
    assert_int_equal(um_conn_open(um_hub_connector(fx.hub), &d, NULL, 0, &s_cbs, &extra, &extra.c),
                     UM_ENOMEM);
    um_tunnel_close(fx.ct, false, 0);
    assert_true(run_until(&fx, both_down, 5000));
    um_tunnel_test_fail_alloc(false);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fx.cs[i].errors, 1);
    /* The user closes the failed streams after the tunnel is gone. */
    fx_down(&fx);
}

/* Stream operations in every order, with the session going down (either
 * side) before each step. Every stream hears exactly one end (error, EOF,
 * or nothing once closed by its user), no callback after close, and the
 * loop closes cleanly. */
enum { OP_OPEN, OP_WRITE, OP_SWRITE, OP_SHUT, OP_SSHUT, OP_SCLOSE, OP_CLOSE, OP_N };

static const int orders[][OP_N] = {
    {OP_OPEN, OP_WRITE, OP_SWRITE, OP_SHUT, OP_SSHUT, OP_SCLOSE, OP_CLOSE},
    {OP_OPEN, OP_SWRITE, OP_SCLOSE, OP_WRITE, OP_SHUT, OP_CLOSE, OP_SSHUT},
    {OP_OPEN, OP_CLOSE, OP_WRITE, OP_SWRITE, OP_SHUT, OP_SSHUT, OP_SCLOSE},
    {OP_OPEN, OP_SSHUT, OP_SHUT, OP_SWRITE, OP_WRITE, OP_CLOSE, OP_SCLOSE},
};

static void run_order(const int *ops, int down_at, bool server_dies)
{
    fx_t fx;
    fx_up(&fx, true);
    side_stream_t *a = NULL;
    for (int k = 0; k < OP_N; k++) {
        if (k == down_at) {
            um_tunnel_t *t = server_dies ? fx.st : fx.ct;
            if (t) {
                fx.in_call = true;
                um_tunnel_close(t, false, 0);
                fx.in_call = false;
            }
        }
        side_stream_t *s = fx.n_ss ? &fx.ss[0] : NULL;
        fx.in_call = true;
        switch (ops[k]) {
        case OP_OPEN:
            fx.in_call = false;
            a = c_open(&fx, "early");
            break;
        case OP_WRITE:
            if (a && !a->closed) um_conn_write(a->c, (const uint8_t *)"abc", 3);
            break;
        case OP_SWRITE:
            if (s && !s->closed) um_conn_write(s->c, (const uint8_t *)"defg", 4);
            break;
        case OP_SHUT:
            if (a && !a->closed) um_conn_shutdown(a->c);
            break;
        case OP_SSHUT:
            if (s && !s->closed) um_conn_shutdown(s->c);
            break;
        case OP_SCLOSE:
            fx.in_call = false;
            if (s) s_close(s);
            break;
        case OP_CLOSE:
            fx.in_call = false;
            if (a) s_close(a);
            break;
        }
        fx.in_call = false;
        spin(&fx, 20);
    }
    spin(&fx, 50);
    if (a && !a->closed) assert_true(a->errors + a->eofs + (a->opened && a->open_result) >= 1);
    if (down_at < OP_N) assert_true(run_until(&fx, both_down, 5000));
    fx_down(&fx);
}

static void test_orders_with_session_down(void **state)
{
    (void)state;
    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++)
        for (int down_at = 0; down_at <= OP_N; down_at++)
            for (int side = 0; side < 2; side++)
                run_order(orders[o], down_at, side == 1);
}

/* ---- a carrier that holds every read until the end, then delivers all ---- */
/* The tunnel pumps from its idle handle after the reads of one loop
 * iteration; when the last reads and the end of the connection arrive in the
 * same iteration (libuv reads a socket up to 32 times in a row), the records
 * of those reads must still reach the streams before the end does. This
 * carrier makes that case certain: it keeps every read of the client's TCP
 * connection and, on its end, hands them all over and then the end, in one
 * call stack. */
typedef struct {
    um_carrier_t base;
    um_carrier_ops_t ops;
    um_carrier_t *in;
    um_carrier_read_cb rd;
    void *ud;
    uint8_t *buf;
    size_t n;
} batch_car_t;

static void bc_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    batch_car_t *b = ud;
    (void)c;
    if (status == 0) {
        assert_true(b->n + n <= (1u << 20));
        memcpy(b->buf + b->n, p, n);
        b->n += n;
        return;
    }
    for (size_t off = 0; off < b->n; off += 65536)
        b->rd(&b->base, b->buf + off, b->n - off < 65536 ? b->n - off : 65536, 0, b->ud);
    b->n = 0;
    b->rd(&b->base, NULL, 0, status, b->ud);
}
static void bc_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    batch_car_t *b = (batch_car_t *)c;
    b->rd = rd;
    b->ud = ud;
    um_carrier_set_cbs(b->in, bc_read, dr, b);
}
static int bc_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    return um_carrier_write(((batch_car_t *)c)->in, p, n);
}
static size_t bc_queued(const um_carrier_t *c)
{
    return um_carrier_queued(((const batch_car_t *)c)->in);
}
static void bc_set_wq_max(um_carrier_t *c, size_t max)
{
    um_carrier_set_wq_max(((batch_car_t *)c)->in, max);
}
static int bc_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(((batch_car_t *)c)->in);
}
static int bc_read_stop(um_carrier_t *c)
{
    return ((batch_car_t *)c)->in->ops->read_stop(((batch_car_t *)c)->in);
}
static int bc_shutdown(um_carrier_t *c)
{
    return ((batch_car_t *)c)->in->ops->shutdown(((batch_car_t *)c)->in);
}
static void bc_close(um_carrier_t *c)
{
    batch_car_t *b = (batch_car_t *)c;
    um_carrier_close(b->in);
    free(b->buf);
    free(b);
}

static void test_reads_then_end_in_one_batch(void **state)
{
    (void)state;
    fx_t fx;
    memset(&fx, 0, sizeof(fx));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    tcp_pair_open(&fx.loop, &fx.ls, &fx.ctcp, &fx.stcp);
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb);
    um_sess_t *a = um_sess_new(&ka, NULL), *b = um_sess_new(&kb, NULL);
    assert_non_null(a);
    assert_non_null(b);
    batch_car_t *bc = calloc(1, sizeof(*bc));
    assert_non_null(bc);
    bc->buf = malloc(1u << 20);
    assert_non_null(bc->buf);
    bc->in = um_tcp_carrier(fx.ctcp);
    bc->ops = *bc->in->ops;
    bc->ops.set_cbs = bc_set_cbs;
    bc->ops.write = bc_write;
    bc->ops.queued = bc_queued;
    bc->ops.set_wq_max = bc_set_wq_max;
    bc->ops.read_start = bc_read_start;
    bc->ops.read_stop = bc_read_stop;
    bc->ops.shutdown = bc_shutdown;
    bc->ops.close = bc_close;
    bc->ops.writev = NULL;
    bc->ops.sock = NULL; /* the tcp op would take bc for its own */
    bc->base.ops = &bc->ops;
    assert_int_equal(um_tunnel_new(&fx.loop, a, &bc->base, UM_MUX_CLIENT, NULL, &ccbs, &fx, &fx.ct),
                     0);
    assert_int_equal(um_tunnel_new(&fx.loop, b, um_tcp_carrier(fx.stcp), UM_MUX_SERVER, NULL, &scbs,
                                   &fx, &fx.st),
                     0);
    assert_int_equal(um_hub_new(&fx.loop, 10000, 16, &fx.hub), 0);
    um_hub_set_tunnel(fx.hub, fx.ct);
    side_stream_t *s = c_open(&fx, "hello");
    uint64_t end = um_now_ms() + 5000;
    while (fx.n_ss < 1 && um_now_ms() < end)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(fx.n_ss, 1);
    /* The server answers 60000 bytes and its FIN, then its TCP connection
     * ends; the client has read nothing yet (the carrier holds it). */
    static uint8_t reply[60000];
    memset(reply, 'r', sizeof(reply));
    assert_int_equal(um_conn_write(fx.ss[0].c, reply, sizeof(reply)), 0);
    assert_int_equal(um_conn_shutdown(fx.ss[0].c), 0);
    spin(&fx, 200);
    assert_int_equal(s->got, 0);
    assert_int_equal(um_tcp_shutdown(fx.stcp), 0);
    end = um_now_ms() + 5000;
    while (!fx.cdown && um_now_ms() < end)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_true(fx.cdown);
    assert_int_equal(s->opened, 1);
    assert_int_equal(s->open_result, UM_CONN_OK);
    assert_int_equal(s->got, sizeof(reply)); /* every byte before the end */
    assert_int_equal(s->eofs, 1);
    fx_down(&fx);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    signal(SIGPIPE, SIG_IGN); /* as umbra does (app/main.c): a write to a closed peer is EPIPE */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_echo_close),
        cmocka_unit_test(test_close_defers_callbacks),
        cmocka_unit_test(test_hub_set_tunnel_defers_failures),
        cmocka_unit_test(test_alloc_failure_while_dying),
        cmocka_unit_test(test_orders_with_session_down),
        cmocka_unit_test(test_reads_then_end_in_one_batch),
        cmocka_unit_test(test_tx_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
