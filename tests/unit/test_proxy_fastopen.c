/* Fast open in the SOCKS5 and HTTP CONNECT listeners (docs/internals/proxy.md):
 * the success reply goes back before the provider's verdict, the client's
 * first bytes ride in the open as early data, later bytes go to a provider
 * that takes writes before on_open (or wait for the verdict), and a failed
 * open resets the client connection; with fast open off the reply waits and
 * carries the verdict's code. The provider here is a gate the test opens by
 * hand, so "before the verdict" is a fact of the test, not a timing. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/server.h"
#include "util/err.h"

typedef struct gate gate_t;

typedef struct {
    um_conn_t base;
    const um_conn_cbs_t *cbs;
    void *arg;
    gate_t *g;
} gconn_t;

struct gate {
    uv_loop_t *loop;
    bool accept_pre_open; /* take writes before on_open (as the tunnel does) */
    int verdict;          /* what verdict() answers (a router's block: NOT_ALLOWED) */
    int opens, closes;
    bool answered;
    uint8_t early[4096];
    size_t early_len;
    uint8_t wrote[4096];
    size_t wrote_len;
    size_t wrote_pre_open; /* bytes taken by write() before the answer */
    gconn_t *c;
};

static const um_conn_ops_t gconn_ops;

static int g_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                  const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    (void)dst;
    gate_t *g = ctx;
    gconn_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    c->base.ops = &gconn_ops;
    c->cbs = cbs;
    c->arg = arg;
    c->g = g;
    assert_true(n <= sizeof(g->early));
    memcpy(g->early, early, n);
    g->early_len = n;
    g->opens++;
    g->answered = false;
    g->c = c;
    *out = &c->base;
    return 0;
}

static int g_write(um_conn_t *uc, const uint8_t *p, size_t n)
{
    gconn_t *c = (gconn_t *)uc;
    gate_t *g = c->g;
    if (!g->answered && !g->accept_pre_open) return UM_EAGAIN;
    assert_true(g->wrote_len + n <= sizeof(g->wrote));
    memcpy(g->wrote + g->wrote_len, p, n);
    g->wrote_len += n;
    if (!g->answered) g->wrote_pre_open += n;
    return 0;
}
static size_t g_queued(um_conn_t *c)
{
    (void)c;
    return 0;
}
static int g_noop(um_conn_t *c)
{
    (void)c;
    return 0;
}
static void g_close(um_conn_t *uc)
{
    gconn_t *c = (gconn_t *)uc;
    c->g->closes++;
    if (c->g->c == c) c->g->c = NULL;
    free(c);
}

static const um_conn_ops_t gconn_ops = {
    .name = "gate",
    .write = g_write,
    .queued = g_queued,
    .read_start = g_noop,
    .read_stop = g_noop,
    .shutdown = g_noop,
    .close = g_close,
};

static int g_verdict(void *ctx, const um_addr_t *dst)
{
    (void)dst;
    return ((gate_t *)ctx)->verdict;
}

static const um_connector_ops_t gate_ops = {.name = "gate", .open = g_open, .verdict = g_verdict};

/* --- a blocking-ish client beside the loop -------------------------------- */

typedef struct {
    uv_loop_t loop;
    gate_t g;
    um_proxy_t *px;
    int fd;
} rig_t;

static void rig_up(rig_t *r, um_proxy_kind_t kind, bool fast_open, bool accept_pre_open)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    r->g.loop = &r->loop;
    r->g.accept_pre_open = accept_pre_open;
    um_proxy_opts_t o = {.conn = {&gate_ops, &r->g}, .fast_open = fast_open};
    um_addr_t bind = {.type = UM_ADDR_IPV4, .u.v4 = {127, 0, 0, 1}}, got;
    assert_int_equal(um_proxy_new(&r->loop, kind, &bind, &o, &r->px), 0);
    assert_int_equal(um_proxy_local_addr(r->px, &got), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(got.port)};
    memcpy(&sa.sin_addr, got.u.v4, 4);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    /* Loopback: the kernel completes the handshake from the backlog. */
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void rig_down(rig_t *r)
{
    close(r->fd);
    um_proxy_free(r->px);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    uv_walk(&r->loop, walk_close, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    assert_int_equal(r->g.opens, r->g.closes); /* every stream closed exactly once */
}

/* Runs the loop for about ms milliseconds. */
static void pump(rig_t *r, int ms)
{
    for (int i = 0; i < ms; i++) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
    }
}

static void pump_until_open(rig_t *r, int opens)
{
    for (int i = 0; i < 5000 && r->g.opens < opens; i++) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
    }
    assert_int_equal(r->g.opens, opens);
}

static void send_all(rig_t *r, const void *p, size_t n)
{
    assert_int_equal(send(r->fd, p, n, 0), (ssize_t)n);
}

/* Receives exactly n bytes, running the loop meanwhile (5 s bound). 0 or
 * -errno (0 bytes more: -EPIPE for an EOF). */
static int recv_n(rig_t *r, uint8_t *out, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < 5000 && got < n; i++) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        ssize_t k = recv(r->fd, out + got, n - got, MSG_DONTWAIT);
        if (k > 0) {
            got += (size_t)k;
            continue;
        }
        if (k == 0) return -EPIPE;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        poll(NULL, 0, 1);
    }
    return got == n ? 0 : -ETIMEDOUT;
}

/* Nothing arrives for ms milliseconds (the loop running). */
static bool silent(rig_t *r, int ms)
{
    uint8_t b;
    for (int i = 0; i < ms; i++) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        ssize_t k = recv(r->fd, &b, 1, MSG_DONTWAIT);
        if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
        poll(NULL, 0, 1);
    }
    return true;
}

static void answer(rig_t *r, int result)
{
    assert_non_null(r->g.c);
    gconn_t *c = r->g.c;
    r->g.answered = true;
    c->cbs->on_open(c->arg, result);
}

static void socks_request(rig_t *r)
{
    static const uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
    send_all(r, req, sizeof(req));
    uint8_t m[2];
    assert_int_equal(recv_n(r, m, 2), 0);
    assert_int_equal(m[0], 5);
    assert_int_equal(m[1], 0);
}

/* The success reply comes before the verdict; the first bytes ride in the
 * open; later ones go through write(); the far end's bytes come back. */
static void test_socks5_reply_before_verdict(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, true, true);
    socks_request(&r);
    uint8_t rep[10];
    assert_int_equal(recv_n(&r, rep, sizeof(rep)), 0);
    assert_int_equal(rep[0], 5);
    assert_int_equal(rep[1], 0); /* succeeded */
    assert_false(r.g.answered);  /* ... although nobody answered yet */
    send_all(&r, "GET / HTTP/1.0\r\n\r\n", 18);
    pump_until_open(&r, 1);
    assert_int_equal(r.g.early_len, 18); /* the request rode in the open */
    assert_memory_equal(r.g.early, "GET / HTTP/1.0\r\n\r\n", 18);
    /* More before the verdict: the provider takes it now. */
    send_all(&r, "more", 4);
    for (int i = 0; i < 5000 && r.g.wrote_len < 4; i++)
        pump(&r, 1);
    assert_int_equal(r.g.wrote_pre_open, 4);
    answer(&r, UM_CONN_OK);
    r.g.c->cbs->on_data(r.g.c->arg, (const uint8_t *)"pong", 4);
    uint8_t got[4];
    assert_int_equal(recv_n(&r, got, 4), 0);
    assert_memory_equal(got, "pong", 4);
    send_all(&r, "again", 5);
    for (int i = 0; i < 5000 && r.g.wrote_len < 9; i++)
        pump(&r, 1);
    assert_memory_equal(r.g.wrote, "moreagain", 9);
    um_proxy_stats_t st;
    um_proxy_stats(r.px, &st);
    assert_int_equal(st.fo_replies, 1);
    assert_int_equal(st.fo_early, 1);
    assert_int_equal(st.fo_failed, 0);
    rig_down(&r);
}

/* A provider that refuses writes before on_open: the bytes wait in the
 * listener and go out, in order, once the stream is open. */
static void test_socks5_writes_wait_for_verdict(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, true, false);
    socks_request(&r);
    uint8_t rep[10];
    assert_int_equal(recv_n(&r, rep, sizeof(rep)), 0);
    send_all(&r, "first", 5);
    pump_until_open(&r, 1);
    send_all(&r, "second", 6);
    pump(&r, 50);
    assert_int_equal(r.g.wrote_len, 0);
    answer(&r, UM_CONN_OK);
    for (int i = 0; i < 5000 && r.g.wrote_len < 6; i++)
        pump(&r, 1);
    assert_int_equal(r.g.early_len, 5);
    assert_int_equal(r.g.wrote_len, 6);
    assert_memory_equal(r.g.wrote, "second", 6);
    rig_down(&r);
}

/* A client that sends nothing (its server speaks first) still gets its
 * stream: opened without early data after a short wait. */
static void test_socks5_server_speaks_first(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, true, true);
    socks_request(&r);
    uint8_t rep[10];
    assert_int_equal(recv_n(&r, rep, sizeof(rep)), 0);
    pump_until_open(&r, 1);
    assert_int_equal(r.g.early_len, 0);
    answer(&r, UM_CONN_OK);
    r.g.c->cbs->on_data(r.g.c->arg, (const uint8_t *)"220 hi\r\n", 8);
    uint8_t got[8];
    assert_int_equal(recv_n(&r, got, 8), 0);
    assert_memory_equal(got, "220 hi\r\n", 8);
    um_proxy_stats_t st;
    um_proxy_stats(r.px, &st);
    assert_int_equal(st.fo_early, 0);
    rig_down(&r);
}

/* A refused destination after the early reply: the client connection is
 * reset at once (ECONNRESET), not closed gently, not left waiting. */
static void test_socks5_refused_resets(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, true, true);
    socks_request(&r);
    uint8_t rep[10];
    assert_int_equal(recv_n(&r, rep, sizeof(rep)), 0);
    assert_int_equal(rep[1], 0);
    send_all(&r, "hello", 5);
    pump_until_open(&r, 1);
    answer(&r, UM_CONN_REFUSED);
    uint8_t b;
    assert_int_equal(recv_n(&r, &b, 1), -ECONNRESET);
    um_proxy_stats_t st;
    um_proxy_stats(r.px, &st);
    assert_int_equal(st.fo_failed, 1);
    assert_int_equal(st.open_failed, 1);
    rig_down(&r);
}

/* fast_open off: no reply until the verdict, and the reply carries its code
 * (0x05 connection refused), then the connection ends. */
static void test_socks5_truthful_without_fast_open(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, false, true);
    socks_request(&r);
    pump_until_open(&r, 1);
    assert_true(silent(&r, 100)); /* the reply waits for the verdict */
    answer(&r, UM_CONN_REFUSED);
    uint8_t rep[10];
    assert_int_equal(recv_n(&r, rep, sizeof(rep)), 0);
    assert_int_equal(rep[0], 5);
    assert_int_equal(rep[1], 5); /* connection refused */
    uint8_t b;
    assert_int_equal(recv_n(&r, &b, 1), -EPIPE);
    um_proxy_stats_t st;
    um_proxy_stats(r.px, &st);
    assert_int_equal(st.fo_replies, 0);
    rig_down(&r);
}

/* A refusal the provider knows at once (a routing rule's block) keeps its
 * truthful code with fast open on: 0x02 and no open. */
static void test_socks5_local_verdict_truthful(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, true, true);
    r.g.verdict = UM_CONN_NOT_ALLOWED;
    socks_request(&r);
    uint8_t rep[10];
    assert_int_equal(recv_n(&r, rep, sizeof(rep)), 0);
    assert_int_equal(rep[1], 2); /* connection not allowed by ruleset */
    uint8_t b;
    assert_int_equal(recv_n(&r, &b, 1), -EPIPE);
    assert_int_equal(r.g.opens, 0);
    um_proxy_stats_t st;
    um_proxy_stats(r.px, &st);
    assert_int_equal(st.fo_replies, 0);
    rig_down(&r);
}

static const char connect_req[] = "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n";

/* HTTP CONNECT: 200 before the verdict, the ClientHello in the open, and a
 * refusal afterwards resets the connection. */
static void test_http_connect_fast(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_HTTP, true, true);
    send_all(&r, connect_req, sizeof(connect_req) - 1);
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    uint8_t got[sizeof(ok) - 1];
    assert_int_equal(recv_n(&r, got, sizeof(got)), 0);
    assert_memory_equal(got, ok, sizeof(got));
    assert_false(r.g.answered);
    send_all(&r, "\x16\x03\x01hello", 8);
    pump_until_open(&r, 1);
    assert_int_equal(r.g.early_len, 8);
    answer(&r, UM_CONN_NOT_ALLOWED);
    uint8_t b;
    assert_int_equal(recv_n(&r, &b, 1), -ECONNRESET);
    rig_down(&r);
}

/* HTTP CONNECT with fast open and a verdict known at once: 403, no open. */
static void test_http_connect_local_verdict(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_HTTP, true, true);
    r.g.verdict = UM_CONN_NOT_ALLOWED;
    send_all(&r, connect_req, sizeof(connect_req) - 1);
    uint8_t got[12];
    assert_int_equal(recv_n(&r, got, sizeof(got)), 0);
    assert_memory_equal(got, "HTTP/1.1 403", 12);
    assert_int_equal(r.g.opens, 0);
    rig_down(&r);
}

/* HTTP CONNECT without fast open: the status is the verdict's (403). */
static void test_http_connect_truthful(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_HTTP, false, true);
    send_all(&r, connect_req, sizeof(connect_req) - 1);
    pump_until_open(&r, 1);
    assert_true(silent(&r, 100));
    answer(&r, UM_CONN_NOT_ALLOWED);
    uint8_t got[12];
    assert_int_equal(recv_n(&r, got, sizeof(got)), 0);
    assert_memory_equal(got, "HTTP/1.1 403", 12);
    rig_down(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socks5_reply_before_verdict),
        cmocka_unit_test(test_socks5_writes_wait_for_verdict),
        cmocka_unit_test(test_socks5_server_speaks_first),
        cmocka_unit_test(test_socks5_refused_resets),
        cmocka_unit_test(test_socks5_truthful_without_fast_open),
        cmocka_unit_test(test_http_connect_fast),
        cmocka_unit_test(test_http_connect_truthful),
        cmocka_unit_test(test_socks5_local_verdict_truthful),
        cmocka_unit_test(test_http_connect_local_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
