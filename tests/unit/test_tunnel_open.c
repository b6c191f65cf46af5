/* A new stream's path through the server's tunnel, in loop turns
 * (src/tunnel/tunnel.c: feed_mux, um_tunnel_flush):
 *   - the OPEN reaches on_opened in the turn the carrier read it, not on
 *     the loop's next turn (the idle handle's pump);
 *   - on_opened may accept, write, close and refuse streams from in there
 *     (it runs inside the carrier's read callback, as it ran inside the
 *     pump before);
 *   - um_tunnel_flush puts what a stream wrote onto the carrier inside the
 *     call, and a stream callback it runs may close that stream.
 *
 * Two tunnels over loopback TCP on two loops run by one thread, so that
 * each side's turns are counted on their own: a check handle (it runs right
 * after the poll phase) counts the server's turns, and a carrier wrapped by
 * the test notes the turn of each read. No timing is measured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>
#include <sys/ioctl.h>
#include <uv.h>

#include "transport/tcp.h"
#include "tunnel/tunnel.h"
#include "util/clock.h"
#include "util/err.h"

/* ---- a carrier that notes the server's turn of each read ---- */

typedef struct {
    um_carrier_t base;
    um_carrier_ops_t ops;
    um_carrier_t *in;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    int *turn;      /* the loop's turn counter */
    int first_read; /* turn of the first read since armed (-1: none) */
    bool armed;
} wrap_t;

static void w_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    wrap_t *w = ud;
    (void)c;
    if (status == 0 && w->armed && w->first_read < 0) w->first_read = *w->turn;
    w->rd(&w->base, p, n, status, w->ud);
}
static void w_drain(um_carrier_t *c, void *ud)
{
    wrap_t *w = ud;
    (void)c;
    w->dr(&w->base, w->ud);
}
static void w_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    wrap_t *w = (wrap_t *)c;
    w->rd = rd;
    w->dr = dr;
    w->ud = ud;
    w->in->ops->set_cbs(w->in, w_read, w_drain, w);
}
static int w_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    return um_carrier_write(((wrap_t *)c)->in, p, n);
}
static size_t w_queued(const um_carrier_t *c)
{
    return um_carrier_queued(((const wrap_t *)c)->in);
}
static void w_set_wq_max(um_carrier_t *c, size_t max)
{
    um_carrier_set_wq_max(((wrap_t *)c)->in, max);
}
static int w_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(((wrap_t *)c)->in);
}
static int w_read_stop(um_carrier_t *c)
{
    return um_carrier_read_stop(((wrap_t *)c)->in);
}
static int w_shutdown(um_carrier_t *c)
{
    return um_carrier_shutdown(((wrap_t *)c)->in);
}
static void w_close(um_carrier_t *c)
{
    wrap_t *w = (wrap_t *)c;
    um_carrier_close(w->in);
    free(w);
}

static um_carrier_t *wrap(um_carrier_t *in, int *turn)
{
    wrap_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->ops = *in->ops;
    w->ops.set_cbs = w_set_cbs;
    w->ops.write = w_write;
    w->ops.writev = NULL;
    w->ops.queued = w_queued;
    w->ops.set_wq_max = w_set_wq_max;
    w->ops.read_start = w_read_start;
    w->ops.read_stop = w_read_stop;
    w->ops.shutdown = w_shutdown;
    w->ops.close = w_close;
    w->ops.absorb = NULL;
    w->ops.sock = NULL; /* the tcp op would take w for its own */
    w->base.ops = &w->ops;
    w->in = in;
    w->turn = turn;
    w->first_read = -1;
    return &w->base;
}

/* ---- the fixture ---- */

enum { OPEN_ACCEPT, OPEN_ACCEPT_CLOSE, OPEN_REFUSE };

typedef struct {
    uv_loop_t lc, ls;
    um_tcp_listener_t *l;
    um_tcp_t *ctcp, *stcp;
    int connected;
    wrap_t *sw;
    um_tunnel_t *ct, *st;
    um_hub_t *hub;
    uv_check_t sturn;
    int turn;       /* the server's turns (check handle) */
    int opened;     /* on_opened calls */
    int open_turn;  /* the turn of the last one */
    int open_mode;  /* what on_opened does */
    um_conn_t *sc;  /* the server's side of the last accepted stream */
    char sgot[256]; /* what it read */
    size_t sgot_n;
    int s_close_on_data; /* the server's on_data closes its stream */
    int c_result, c_opens;
    size_t cgot;
    int cdown, sdown;
    int cfd; /* the client's socket */
} fx_t;

static void on_accept(um_tcp_listener_t *l, um_tcp_t *conn, void *ud)
{
    fx_t *fx = ud;
    (void)l;
    fx->stcp = conn;
    fx->connected++;
}
static void on_connect(um_tcp_t *t, int status, void *ud)
{
    (void)t;
    assert_int_equal(status, 0);
    ((fx_t *)ud)->connected++;
}

static void c_open(void *arg, int result)
{
    fx_t *fx = arg;
    fx->c_opens++;
    fx->c_result = result;
}
static void c_data(void *arg, const uint8_t *p, size_t n)
{
    (void)p;
    ((fx_t *)arg)->cgot += n;
}
static void s_data(void *arg, const uint8_t *p, size_t n)
{
    fx_t *fx = arg;
    assert_true(fx->sgot_n + n <= sizeof(fx->sgot));
    memcpy(fx->sgot + fx->sgot_n, p, n);
    fx->sgot_n += n;
    if (fx->s_close_on_data && fx->sc) {
        um_conn_close(fx->sc); /* from inside the pump: the tunnel must cope */
        fx->sc = NULL;
    }
}
static void any_eof(void *arg)
{
    (void)arg;
}
static void any_error(void *arg, int err)
{
    (void)arg;
    (void)err;
}
static void any_drain(void *arg)
{
    (void)arg;
}
static const um_conn_cbs_t ccbs = {c_open, c_data, any_eof, any_error, any_drain};
static const um_conn_cbs_t scbs = {NULL, s_data, any_eof, any_error, any_drain};

static void srv_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
{
    fx_t *fx = ud;
    (void)dst;
    fx->opened++;
    fx->open_turn = fx->turn;
    if (fx->open_mode == OPEN_REFUSE) {
        um_tunnel_refuse(t, id, UM_CONN_REFUSED);
        return;
    }
    um_conn_t *c = NULL;
    assert_int_equal(um_tunnel_accept(t, id, &scbs, fx, &c), 0);
    assert_int_equal(um_conn_write(c, (const uint8_t *)"hi", 2), 0);
    if (fx->open_mode == OPEN_ACCEPT_CLOSE) {
        um_conn_close(c); /* accepted, written and closed inside on_opened */
        return;
    }
    if (fx->sc) um_conn_close(fx->sc);
    fx->sc = c;
}
static void c_down(um_tunnel_t *t, int err, void *ud)
{
    (void)t;
    (void)err;
    ((fx_t *)ud)->cdown++;
}
static void s_down(um_tunnel_t *t, int err, void *ud)
{
    (void)t;
    (void)err;
    ((fx_t *)ud)->sdown++;
}
static const um_tunnel_cbs_t ctcbs = {.on_down = c_down};
static const um_tunnel_cbs_t stcbs = {.on_opened = srv_opened, .on_down = s_down};

static void on_sturn(uv_check_t *h)
{
    ((fx_t *)h->data)->turn++;
}

static void both_once(fx_t *fx)
{
    uv_run(&fx->lc, UV_RUN_NOWAIT);
    uv_run(&fx->ls, UV_RUN_NOWAIT);
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

static void fx_up(fx_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->open_turn = -1;
    assert_int_equal(uv_loop_init(&fx->lc), 0);
    assert_int_equal(uv_loop_init(&fx->ls), 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(um_tcp_listen(&fx->ls, (struct sockaddr *)&sa, 4, on_accept, fx, &fx->l), 0);
    uv_ip4_addr("127.0.0.1", um_tcp_listener_port(fx->l), &sa);
    assert_int_equal(um_tcp_connect(&fx->lc, (struct sockaddr *)&sa, on_connect, fx, &fx->ctcp), 0);
    uint64_t end = um_now_ms() + 10000;
    while (fx->connected < 2 && um_now_ms() < end)
        both_once(fx);
    assert_int_equal(fx->connected, 2);
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)um_tcp_handle(fx->ctcp), &fd), 0);
    fx->cfd = fd;
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb);
    um_sess_t *a = um_sess_new(&ka, NULL), *b = um_sess_new(&kb, NULL);
    sodium_memzero(&ka, sizeof(ka));
    sodium_memzero(&kb, sizeof(kb));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(um_tunnel_new(&fx->lc, a, um_tcp_carrier(fx->ctcp), UM_MUX_CLIENT, NULL,
                                   &ctcbs, fx, &fx->ct),
                     0);
    um_carrier_t *sw = wrap(um_tcp_carrier(fx->stcp), &fx->turn);
    fx->sw = (wrap_t *)sw;
    assert_int_equal(um_tunnel_new(&fx->ls, b, sw, UM_MUX_SERVER, NULL, &stcbs, fx, &fx->st), 0);
    assert_int_equal(um_hub_new(&fx->lc, 10000, 16, &fx->hub), 0);
    um_hub_set_tunnel(fx->hub, fx->ct);
    assert_int_equal(uv_check_init(&fx->ls, &fx->sturn), 0);
    fx->sturn.data = fx;
    assert_int_equal(uv_check_start(&fx->sturn, on_sturn), 0);
    /* Both loops a while: whatever the tunnels say first is said. */
    for (int i = 0; i < 50; i++)
        both_once(fx);
}

static void fx_down(fx_t *fx)
{
    if (fx->sc) um_conn_close(fx->sc);
    um_tunnel_close(fx->ct, false, 0);
    um_tunnel_close(fx->st, false, 0);
    uint64_t end = um_now_ms() + 10000;
    while ((!fx->cdown || !fx->sdown) && um_now_ms() < end)
        both_once(fx);
    assert_int_equal(fx->cdown, 1);
    assert_int_equal(fx->sdown, 1);
    um_hub_free(fx->hub);
    um_tcp_listener_close(fx->l);
    uv_close((uv_handle_t *)&fx->sturn, NULL);
    uv_run(&fx->lc, UV_RUN_DEFAULT);
    uv_run(&fx->ls, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->lc), 0);
    assert_int_equal(uv_loop_close(&fx->ls), 0);
}

static size_t client_pending(fx_t *fx)
{
    int n = 0;
    assert_int_equal(ioctl(fx->cfd, FIONREAD, &n), 0);
    return (size_t)n;
}

/* The client opens a stream with early data; its loop alone runs until the
 * OPEN is on the wire; then the server's loop, turn by turn, until on_opened
 * (bounded). Returns the client's stream. */
static um_conn_t *open_one(fx_t *fx, const char *early)
{
    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 80;
    um_conn_t *c = NULL;
    assert_int_equal(um_conn_open(um_hub_connector(fx->hub), &d, (const uint8_t *)early,
                                  strlen(early), &ccbs, fx, &c),
                     0);
    for (int i = 0; i < 20; i++)
        uv_run(&fx->lc, UV_RUN_NOWAIT);
    int before = fx->opened;
    fx->sw->first_read = -1;
    fx->sw->armed = true;
    for (int i = 0; i < 2000 && fx->opened == before; i++) {
        uv_run(&fx->ls, UV_RUN_NOWAIT);
        if (fx->sw->first_read < 0) uv_sleep(1); /* not yet in the server's socket */
    }
    fx->sw->armed = false;
    assert_int_equal(fx->opened, before + 1);
    assert_true(fx->sw->first_read >= 0);
    return c;
}

/* Run both loops until cond or a bound. */
#define SPIN_UNTIL(fx, cond)                                                                       \
    do {                                                                                           \
        uint64_t end_ = um_now_ms() + 10000;                                                       \
        while (!(cond) && um_now_ms() < end_)                                                      \
            both_once(fx);                                                                         \
    } while (0)

/* The OPEN reaches on_opened in the turn that read it; the early data then
 * reaches the accepted stream and the client hears "connected" and the
 * server's bytes. Then again for a second stream on the same session. */
static void test_open_in_read_turn(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx);
    for (int k = 0; k < 2; k++) {
        fx.c_opens = 0;
        fx.cgot = 0;
        fx.sgot_n = 0;
        um_conn_t *c = open_one(&fx, "GET / HTTP/1.1\r\n\r\n");
        print_message("stream %d: OPEN read in server turn %d, on_opened in turn %d\n", k,
                      fx.sw->first_read, fx.open_turn);
        assert_int_equal(fx.open_turn, fx.sw->first_read);
        SPIN_UNTIL(&fx, fx.c_opens && fx.cgot == 2 && fx.sgot_n == 18);
        assert_int_equal(fx.c_result, UM_CONN_OK);
        assert_int_equal(fx.cgot, 2);
        assert_int_equal(fx.sgot_n, 18);
        assert_memory_equal(fx.sgot, "GET / HTTP/1.1\r\n\r\n", 18);
        um_conn_close(c);
    }
    fx_down(&fx);
}

/* on_opened, now inside the carrier's read callback, accepts, writes and
 * closes a stream, or refuses one: the tunnel stays consistent (ASan) and
 * the client hears each outcome. */
static void test_open_callbacks_reenter(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx);
    fx.open_mode = OPEN_REFUSE;
    um_conn_t *c = open_one(&fx, "x");
    assert_int_equal(fx.open_turn, fx.sw->first_read);
    SPIN_UNTIL(&fx, fx.c_opens);
    assert_int_equal(fx.c_result, UM_CONN_REFUSED);
    um_conn_close(c);
    fx.c_opens = 0;
    fx.open_mode = OPEN_ACCEPT_CLOSE;
    c = open_one(&fx, "y");
    SPIN_UNTIL(&fx, fx.c_opens);
    /* The stream's end may overtake the answer (the mux's business): the
     * client hears one outcome, either. */
    assert_int_equal(fx.c_opens, 1);
    assert_true(fx.c_result == UM_CONN_OK || fx.c_result == UM_CONN_REFUSED);
    um_conn_close(c);
    /* The session still carries a normal stream afterwards. */
    fx.c_opens = 0;
    fx.cgot = 0;
    fx.open_mode = OPEN_ACCEPT;
    c = open_one(&fx, "z");
    SPIN_UNTIL(&fx, fx.c_opens && fx.cgot == 2);
    assert_int_equal(fx.c_result, UM_CONN_OK);
    assert_int_equal(fx.cgot, 2);
    um_conn_close(c);
    fx_down(&fx);
}

/* um_tunnel_flush: what the server's stream wrote is on the carrier (in the
 * client's socket) when the call returns, the server's loop not turned; and
 * a stream callback run inside it (the early data's delivery) may close the
 * stream it is called for. */
static void test_flush(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx);
    um_conn_t *c = open_one(&fx, "early");
    SPIN_UNTIL(&fx, fx.c_opens && fx.cgot == 2 && fx.sgot_n == 5);
    assert_int_equal(fx.cgot, 2);
    for (int i = 0; i < 50; i++)
        both_once(&fx);
    assert_int_equal(client_pending(&fx), 0);
    static const uint8_t resp[1000] = {1};
    assert_int_equal(um_conn_write(fx.sc, resp, sizeof(resp)), 0);
    assert_int_equal(client_pending(&fx), 0); /* written to the stream, not yet sealed */
    um_tunnel_flush(fx.st);
    for (int i = 0; i < 200 && client_pending(&fx) < sizeof(resp); i++)
        uv_sleep(1); /* loopback delivers at once; the bound is generous */
    assert_true(client_pending(&fx) >= sizeof(resp));
    SPIN_UNTIL(&fx, fx.cgot == 2 + sizeof(resp));
    assert_int_equal(fx.cgot, 2 + sizeof(resp));
    /* A second stream whose early data, delivered by the flush, makes the
     * server's on_data close the stream. */
    um_conn_close(c);
    fx.sgot_n = 0;
    fx.s_close_on_data = 1;
    c = open_one(&fx, "bye");
    um_tunnel_flush(fx.st);
    assert_int_equal(fx.sgot_n, 3);
    assert_null(fx.sc);
    um_tunnel_flush(fx.st); /* nothing left: a no-op */
    SPIN_UNTIL(&fx, fx.c_opens >= 2);
    um_conn_close(c);
    fx_down(&fx);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_in_read_turn),
        cmocka_unit_test(test_open_callbacks_reenter),
        cmocka_unit_test(test_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
