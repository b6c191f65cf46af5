/* The listeners' per-connection syscalls (docs/internals/proxy.md, "The
 * accept path"): what an accepted connection costs the proxy is counted here,
 * not timed. The test binary defines setsockopt, shutdown, epoll_ctl, write
 * and writev itself (libuv, a shared library, calls them through the dynamic
 * symbol table, so it reaches these), records the fd and the call, and makes
 * the system call. The provider is a gate the test answers by hand, as in
 * test_proxy_fastopen.c.
 *
 * - the listener has TCP_NODELAY (inherited by accepted sockets) and, for
 *   SOCKS5 and HTTP, TCP_DEFER_ACCEPT: no setsockopt per connection, and a
 *   connection is handed over only with its first bytes;
 * - a connection both sides ended is closed without a shutdown() call;
 * - an HTTP CONNECT (fast open) and a plain request do not stop and restart
 *   reading (no epoll_ctl beyond the first ADD);
 * - a response head and the body bytes that came with it leave in one write. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/server.h"
#include "util/err.h"

/* --- the syscalls, counted ------------------------------------------------ */

enum { K_SETSOCKOPT, K_SHUTDOWN, K_EPOLL_CTL, K_WRITE };
#define LOG_MAX 4096
static struct {
    int kind, fd, op;
} calls[LOG_MAX];
static size_t ncalls;

static void note(int kind, int fd, int op)
{
    if (ncalls < LOG_MAX) {
        calls[ncalls].kind = kind;
        calls[ncalls].fd = fd;
        calls[ncalls].op = op;
        ncalls++;
    }
}

int setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
    note(K_SETSOCKOPT, fd, name);
    return (int)syscall(SYS_setsockopt, fd, level, name, v, len);
}

int shutdown(int fd, int how)
{
    note(K_SHUTDOWN, fd, how);
    return (int)syscall(SYS_shutdown, fd, how);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    note(K_EPOLL_CTL, fd, op);
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

ssize_t write(int fd, const void *p, size_t n)
{
    note(K_WRITE, fd, 0);
    return (ssize_t)syscall(SYS_write, fd, p, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    note(K_WRITE, fd, 1);
    return (ssize_t)syscall(SYS_writev, fd, iov, n);
}

static size_t count(int kind, int fd)
{
    size_t k = 0;
    for (size_t i = 0; i < ncalls; i++)
        if (calls[i].kind == kind && calls[i].fd == fd) k++;
    return k;
}

/* --- the gate provider ------------------------------------------------------ */

typedef struct gate gate_t;

typedef struct {
    um_conn_t base;
    const um_conn_cbs_t *cbs;
    void *arg;
    gate_t *g;
} gconn_t;

struct gate {
    int opens, closes, shutdowns;
    uint8_t early[4096];
    size_t early_len;
    uint8_t wrote[4096];
    size_t wrote_len;
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
    if (n) memcpy(g->early, early, n);
    g->early_len = n;
    g->opens++;
    g->c = c;
    *out = &c->base;
    return 0;
}

static int g_write(um_conn_t *uc, const uint8_t *p, size_t n)
{
    gate_t *g = ((gconn_t *)uc)->g;
    assert_true(g->wrote_len + n <= sizeof(g->wrote));
    memcpy(g->wrote + g->wrote_len, p, n);
    g->wrote_len += n;
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
static int g_shutdown(um_conn_t *uc)
{
    ((gconn_t *)uc)->g->shutdowns++;
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
    .shutdown = g_shutdown,
    .close = g_close,
};

static const um_connector_ops_t gate_ops = {.name = "gate", .open = g_open};

/* --- the rig ---------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    gate_t g;
    um_proxy_t *px;
    struct sockaddr_in at; /* the listener */
    int fd;                /* our client end */
} rig_t;

static void rig_up(rig_t *r, um_proxy_kind_t kind, bool fast_open)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    um_proxy_opts_t o = {.conn = {&gate_ops, &r->g}, .fast_open = fast_open};
    um_addr_t bind = {.type = UM_ADDR_IPV4, .u.v4 = {127, 0, 0, 1}}, got;
    if (kind == UM_PROXY_FORWARD) {
        o.forward_dst = bind;
        o.forward_dst.port = 9;
    }
    assert_int_equal(um_proxy_new(&r->loop, kind, &bind, &o, &r->px), 0);
    assert_int_equal(um_proxy_local_addr(r->px, &got), 0);
    r->at.sin_family = AF_INET;
    r->at.sin_port = htons(got.port);
    memcpy(&r->at.sin_addr, got.u.v4, 4);
    ncalls = 0;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&r->at, sizeof(r->at)), 0);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void rig_down(rig_t *r)
{
    if (r->fd >= 0) close(r->fd);
    um_proxy_free(r->px);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    uv_walk(&r->loop, walk_close, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    assert_int_equal(r->g.opens, r->g.closes);
}

static bool same_in(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* The proxy's end of our connection (its peer is our local address), or -1. */
static int accepted_fd(const rig_t *r)
{
    struct sockaddr_in me;
    socklen_t l = sizeof(me);
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&me, &l), 0);
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in p;
        l = sizeof(p);
        if (fd != r->fd && getpeername(fd, (struct sockaddr *)&p, &l) == 0 &&
            p.sin_family == AF_INET && same_in(&p, &me))
            return fd;
    }
    return -1;
}

/* The listening socket, or -1. */
static int listener_fd(const rig_t *r)
{
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in s;
        socklen_t l = sizeof(s);
        int acc = 0;
        socklen_t al = sizeof(acc);
        if (getsockname(fd, (struct sockaddr *)&s, &l) == 0 && s.sin_family == AF_INET &&
            same_in(&s, &r->at) && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc)
            return fd;
    }
    return -1;
}

static void send_all(rig_t *r, const void *p, size_t n)
{
    assert_int_equal(send(r->fd, p, n, 0), (ssize_t)n);
}

/* Receives exactly n bytes, running the loop meanwhile (5 s bound). */
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

/* Runs the loop until cond holds (5 s bound). */
#define PUMP_UNTIL(r, cond)                                                                        \
    do {                                                                                           \
        for (int i_ = 0; i_ < 5000 && !(cond); i_++) {                                             \
            uv_run(&(r)->loop, UV_RUN_NOWAIT);                                                     \
            if (!(cond)) poll(NULL, 0, 1);                                                         \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

static void socks_connect(rig_t *r)
{
    static const uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
    send_all(r, req, sizeof(req));
    uint8_t m[12];
    assert_int_equal(recv_n(r, m, sizeof(m)), 0);
    assert_int_equal(m[0], 5);
    assert_int_equal(m[1], 0);
    assert_int_equal(m[3], 0); /* succeeded */
}

/* --- tests ------------------------------------------------------------------ */

/* No setsockopt per accepted connection, and the accepted socket still has
 * TCP_NODELAY (from the listener). */
static void test_accept_no_setsockopt(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, true); /* fast open: the reply does not wait for the gate */
    socks_connect(&r);
    int a = accepted_fd(&r);
    assert_true(a >= 0);
    assert_int_equal(count(K_SETSOCKOPT, a), 0);
    int v = 0;
    socklen_t l = sizeof(v);
    assert_int_equal(getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &l), 0);
    assert_int_not_equal(v, 0);
    rig_down(&r);
}

/* SOCKS5 and HTTP listeners defer the accept until the first bytes: a
 * connection that has sent nothing is not handed over, however many turns
 * the loop makes (without the option the kernel queues it for accept before
 * connect() returns on loopback); the greeting brings it. Forwards do not
 * defer (their protocol may have the server speak first). */
static void defer_case(um_proxy_kind_t kind, bool defers)
{
    rig_t r;
    rig_up(&r, kind, false);
    int l = listener_fd(&r);
    assert_true(l >= 0);
    int v = 0;
    socklen_t vl = sizeof(v);
    assert_int_equal(getsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vl), 0);
    um_proxy_stats_t st;
    for (int i = 0; i < 5; i++)
        uv_run(&r.loop, UV_RUN_NOWAIT);
    um_proxy_stats(r.px, &st);
    if (!defers) {
        assert_int_equal(v, 0);
        PUMP_UNTIL(&r, (um_proxy_stats(r.px, &st), st.accepted == 1));
        rig_down(&r);
        return;
    }
    assert_int_not_equal(v, 0);
    assert_int_equal(st.accepted, 0); /* nothing sent: not handed over yet */
    send_all(&r, kind == UM_PROXY_SOCKS5 ? "\x05\x01\x00" : "GET ",
             kind == UM_PROXY_SOCKS5 ? 3 : 4);
    PUMP_UNTIL(&r, (um_proxy_stats(r.px, &st), st.accepted == 1));
    rig_down(&r);
}

static void test_defer_accept(void **state)
{
    (void)state;
    defer_case(UM_PROXY_SOCKS5, true);
    defer_case(UM_PROXY_HTTP, true);
    defer_case(UM_PROXY_FORWARD, false);
}

/* The first bytes are handled in the turn that accepts the connection: one
 * loop turn after the greeting was sent, the method reply is there (the
 * accept's turn used to start reading only, and the next one read). The same
 * for an HTTP CONNECT (fast open: the 200 comes at once) and a plain request
 * (the stream opens in that turn). */
static void test_first_bytes_in_accept_turn(void **state)
{
    (void)state;
    rig_t r;
    uint8_t got[64];
    rig_up(&r, UM_PROXY_SOCKS5, true);
    send_all(&r, "\x05\x01\x00", 3);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(recv(r.fd, got, sizeof(got), MSG_DONTWAIT), 2);
    assert_memory_equal(got, "\x05\x00", 2);
    rig_down(&r);

    rig_up(&r, UM_PROXY_HTTP, true);
    static const char req[] = "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n";
    send_all(&r, req, sizeof(req) - 1);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    assert_int_equal(recv(r.fd, got, sizeof(got), MSG_DONTWAIT), (ssize_t)(sizeof(ok) - 1));
    assert_memory_equal(got, ok, sizeof(ok) - 1);
    rig_down(&r);

    rig_up(&r, UM_PROXY_HTTP, true);
    static const char get[] = "GET http://127.0.0.1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(&r, get, sizeof(get) - 1);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.g.opens, 1);
    rig_down(&r);
}

/* The client ended first, then the stream: the proxy closes without a
 * shutdown() call, and the client gets every byte, then the end (a FIN, not
 * a reset). */
static void test_close_after_both_ends(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, false);
    static const uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
    send_all(&r, req, sizeof(req));
    PUMP_UNTIL(&r, r.g.opens == 1);
    r.g.c->cbs->on_open(r.g.c->arg, UM_CONN_OK);
    uint8_t m[12];
    assert_int_equal(recv_n(&r, m, sizeof(m)), 0);
    int a = accepted_fd(&r);
    assert_true(a >= 0);
    send_all(&r, "ping", 4);
    assert_int_equal(shutdown(r.fd, SHUT_WR), 0);
    PUMP_UNTIL(&r, r.g.shutdowns == 1);
    assert_int_equal(r.g.wrote_len, 4);
    r.g.c->cbs->on_data(r.g.c->arg, (const uint8_t *)"pong", 4);
    r.g.c->cbs->on_eof(r.g.c->arg);
    uint8_t got[4];
    assert_int_equal(recv_n(&r, got, 4), 0);
    assert_memory_equal(got, "pong", 4);
    assert_int_equal(recv_n(&r, got, 1), -EPIPE); /* the end, in order */
    assert_int_equal(count(K_SHUTDOWN, a), 0);
    PUMP_UNTIL(&r, um_proxy_active(r.px) == 0);
    rig_down(&r);
}

/* The stream ended first: the client gets a FIN (shutdown) while it may
 * still send, and what it sends still reaches the stream. */
static void test_half_close_from_stream(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_SOCKS5, false);
    static const uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
    send_all(&r, req, sizeof(req));
    PUMP_UNTIL(&r, r.g.opens == 1);
    r.g.c->cbs->on_open(r.g.c->arg, UM_CONN_OK);
    uint8_t m[12];
    assert_int_equal(recv_n(&r, m, sizeof(m)), 0);
    int a = accepted_fd(&r);
    r.g.c->cbs->on_data(r.g.c->arg, (const uint8_t *)"bye", 3);
    r.g.c->cbs->on_eof(r.g.c->arg);
    uint8_t got[3];
    assert_int_equal(recv_n(&r, got, 3), 0);
    assert_int_equal(recv_n(&r, got, 1), -EPIPE);
    assert_int_equal(count(K_SHUTDOWN, a), 1);
    send_all(&r, "late", 4);
    PUMP_UNTIL(&r, r.g.wrote_len == 4);
    assert_memory_equal(r.g.wrote, "late", 4);
    rig_down(&r);
}

/* HTTP CONNECT with fast open: reading is never stopped and started again
 * around the request (one epoll_ctl: the ADD). */
static void test_http_connect_reads_on(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_HTTP, true);
    static const char req[] = "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n";
    send_all(&r, req, sizeof(req) - 1);
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    uint8_t got[sizeof(ok) - 1];
    assert_int_equal(recv_n(&r, got, sizeof(got)), 0);
    assert_memory_equal(got, ok, sizeof(got));
    send_all(&r, "\x16\x03\x01hi", 5);
    PUMP_UNTIL(&r, r.g.opens == 1);
    assert_int_equal(r.g.early_len, 5);
    r.g.c->cbs->on_open(r.g.c->arg, UM_CONN_OK);
    send_all(&r, "more", 4);
    PUMP_UNTIL(&r, r.g.wrote_len == 4);
    int a = accepted_fd(&r);
    assert_true(a >= 0);
    assert_int_equal(count(K_EPOLL_CTL, a), 1);
    rig_down(&r);
}

/* A plain request: the response head and the body bytes that came with it
 * leave in one write; reading stays on across the request, so the next
 * request on the connection needs no epoll_ctl either. */
static void test_http_get_one_write(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_HTTP, true);
    static const char req[] = "GET http://127.0.0.1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(&r, req, sizeof(req) - 1);
    PUMP_UNTIL(&r, r.g.opens == 1);
    assert_true(r.g.early_len > 0);
    int a = accepted_fd(&r);
    assert_true(a >= 0);
    r.g.c->cbs->on_open(r.g.c->arg, UM_CONN_OK);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    size_t w0 = count(K_WRITE, a);
    r.g.c->cbs->on_data(r.g.c->arg, (const uint8_t *)resp, sizeof(resp) - 1);
    assert_int_equal(count(K_WRITE, a) - w0, 1);
    char got[512] = {0};
    size_t n = 0;
    while (n < 5 || memcmp(got + n - 5, "hello", 5) != 0) {
        assert_true(n < sizeof(got));
        assert_int_equal(recv_n(&r, (uint8_t *)got + n, 1), 0);
        n++;
    }
    assert_true(n > 17 && memcmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(got, "\r\n\r\nhello"));
    /* The next request on the same connection. */
    PUMP_UNTIL(&r, r.g.c == NULL);
    send_all(&r, req, sizeof(req) - 1);
    PUMP_UNTIL(&r, r.g.opens == 2);
    assert_int_equal(count(K_EPOLL_CTL, a), 1);
    rig_down(&r);
}

/* A request body that is not all there yet: reading pauses until the stream
 * is open, and the body reaches it whole and in order, not taken for the
 * next request. */
static void test_http_body_after_open(void **state)
{
    (void)state;
    rig_t r;
    rig_up(&r, UM_PROXY_HTTP, false);
    static const char head[] = "POST http://127.0.0.1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Length: 10\r\n\r\nabc";
    send_all(&r, head, sizeof(head) - 1);
    PUMP_UNTIL(&r, r.g.opens == 1);
    send_all(&r, "defghij", 7);
    for (int i = 0; i < 20; i++)
        uv_run(&r.loop, UV_RUN_NOWAIT);
    r.g.c->cbs->on_open(r.g.c->arg, UM_CONN_OK);
    PUMP_UNTIL(&r, r.g.wrote_len == 7);
    assert_memory_equal(r.g.wrote, "defghij", 7);
    assert_memory_equal(r.g.early + r.g.early_len - 3, "abc", 3);
    rig_down(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_no_setsockopt),
        cmocka_unit_test(test_defer_accept),
        cmocka_unit_test(test_first_bytes_in_accept_turn),
        cmocka_unit_test(test_close_after_both_ends),
        cmocka_unit_test(test_half_close_from_stream),
        cmocka_unit_test(test_http_connect_reads_on),
        cmocka_unit_test(test_http_get_one_write),
        cmocka_unit_test(test_http_body_after_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
