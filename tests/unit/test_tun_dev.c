/* The TUN device layer, and the packet core against the real Linux TCP/UDP
 * stack, inside a network namespace this test creates for itself (so the
 * host's interfaces and routes are never touched). Needs root (or
 * CAP_NET_ADMIN + CAP_SYS_ADMIN) and /dev/net/tun; skipped otherwise.
 *
 *   [netns]  socket 10.99.0.1 / fd00:99::1 ── kernel ── tun "umtest0" ══ fd ══ um_tun_stack
 *            connect to 10.99.0.2:7 / [fd00:99::2]:7                     (upper layer: echo)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tun/stack.h"
#include "tun/tundev.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

static int g_skip; /* reason printed once */

static int group_setup(void **state)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skip: not root (needs CAP_NET_ADMIN and a network namespace)\n");
        g_skip = 1;
        return 0;
    }
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
        fprintf(stderr, "skip: no /dev/net/tun\n");
        g_skip = 1;
        return 0;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "skip: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        g_skip = 1;
        return 0;
    }
    return sodium_init() < 0 ? -1 : 0;
}

static um_addr_t ip(const char *s)
{
    um_addr_t a;
    char err[64];
    assert_int_equal(um_addr_parse_host(&a, s, strlen(s), err, sizeof(err)), 0);
    return a;
}

static int g_dev_ready;
static um_tundev_t g_dev;

/* One device for the whole file: umtest0, MTU 1400, both families, up. */
static void need_dev(void)
{
    if (g_skip) skip();
    if (g_dev_ready) return;
    assert_int_equal(um_tundev_open(&g_dev, "umtest0"), 0);
    assert_string_equal(g_dev.name, "umtest0");
    assert_true(g_dev.ifindex > 0);
    assert_int_equal(um_tundev_set_mtu(&g_dev, 1400), 0);
    um_addr_t a4 = ip("10.99.0.1"), a6 = ip("fd00:99::1");
    assert_int_equal(um_tundev_add_addr(&g_dev, &a4, 24), 0);
    assert_int_equal(um_tundev_add_addr(&g_dev, &a6, 64), 0);
    assert_int_equal(um_tundev_up(&g_dev), 0);
    g_dev_ready = 1;
}

static void test_open_configure(void **state)
{
    need_dev();
    unsigned mtu = 0;
    assert_int_equal(um_tundev_get_mtu(&g_dev, &mtu), 0);
    assert_int_equal(mtu, 1400);
    um_addr_t a4 = ip("10.99.0.1");
    assert_int_equal(um_tundev_add_addr(&g_dev, &a4, 24), UM_EEXIST);
    assert_int_equal(um_tundev_add_addr(&g_dev, &a4, 33), UM_EINVAL);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "umtest0");
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(s >= 0);
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    assert_true(ifr.ifr_flags & IFF_UP);
    close(s);
    /* a bound socket on the address proves the kernel has it */
    s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.99.0.1", &sin.sin_addr);
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    close(s);
    um_tundev_t bad;
    assert_int_equal(um_tundev_open(&bad, "this-name-is-too-long"), UM_EINVAL);
    assert_int_equal(bad.fd, -1);
}

static int kernel_flags(int fd)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(fd, TUNGETIFF, &ifr) != 0) return 0;
    return (unsigned short)ifr.ifr_flags;
}

static void test_adopt(void **state)
{
    if (g_skip) skip();
    /* what a parent would hand over */
    int fd = open("/dev/net/tun", O_RDWR);
    assert_true(fd >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strcpy(ifr.ifr_name, "umadopt0");
    assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
    um_tundev_t d;
    assert_int_equal(um_tundev_adopt(&d, fd), 0);
    assert_string_equal(d.name, "umadopt0");
    assert_int_equal(d.fd, fd);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(um_tundev_read(&d, (uint8_t[64]){0}, 64), UM_EAGAIN);
    um_tundev_close(&d);
    assert_int_equal(d.fd, -1);
    um_tundev_close(&d); /* twice is fine */

    /* a TAP device, a device with packet information, and a pipe are refused
     * and left open for the caller */
    int flags[] = {IFF_TAP | IFF_NO_PI, IFF_TUN};
    for (int i = 0; i < 2; i++) {
        fd = open("/dev/net/tun", O_RDWR);
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_flags = (short)flags[i];
        assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
        int got = kernel_flags(fd);
        if (!(got & (IFF_TUN | IFF_TAP)) || (got & ~flags[i] & IFF_NO_PI)) {
            fprintf(stderr,
                    "note: this kernel reports flags %#x for a device asked as %#x; "
                    "case skipped\n",
                    got, flags[i]);
            close(fd);
            continue;
        }
        assert_int_equal(um_tundev_adopt(&d, fd), UM_EINVAL);
        assert_true(fcntl(fd, F_GETFD) >= 0);
        close(fd);
    }
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(um_tundev_adopt(&d, p[0]), UM_EINVAL);
    assert_true(fcntl(p[0], F_GETFD) >= 0);
    close(p[0]);
    close(p[1]);
}

/* ---- the stack on the device ----------------------------------------------- */

typedef struct {
    um_tun_stack_t *s;
    uint32_t id;
    bool opened, fin, shut, reset;
    um_buf_t pending; /* echoed bytes the flow's send queue could not take yet */
    uint64_t written, write_drops;
    uint32_t udp_id;
    int udp_dgrams;
} echo_t;

static void out_cb(void *ctx, const uint8_t *p, size_t n)
{
    echo_t *e = ctx;
    if (um_tundev_write(&g_dev, p, n) == 0)
        e->written++;
    else
        e->write_drops++;
}

static int open_cb(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst)
{
    echo_t *e = ctx;
    if (dst->port != 7) return UM_EACCES; /* only the echo port is "reachable" */
    e->id = id;
    e->opened = true;
    return um_ptcp_accept(um_tun_stack_tcp(e->s), id, 256u << 10, um_now_ms());
}

static void data_cb(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    echo_t *e = ctx;
    /* fits: credit is only given back for bytes that left pending */
    assert_int_equal(um_buf_append(&e->pending, p, n), 0);
}

static void fin_cb(void *ctx, uint32_t id)
{
    ((echo_t *)ctx)->fin = true;
}

static void reset_cb(void *ctx, uint32_t id, int err)
{
    ((echo_t *)ctx)->reset = true;
}

static int uopen_cb(void *ctx, uint32_t id, const um_addr_t *s, const um_addr_t *d)
{
    return 0;
}

static void udata_cb(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    echo_t *e = ctx;
    e->udp_dgrams++;
    um_tunudp_reply(um_tun_stack_udp(e->s), id, p, n, um_now_ms());
}

static void echo_init(echo_t *e)
{
    memset(e, 0, sizeof(*e));
    um_buf_init(&e->pending, 256u << 10);
    um_tun_stack_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.tcp.mtu = 1400;
    cfg.udp.mtu = 1400;
    cfg.icmp_echo = true;
    um_ptcp_ops_t tops = {out_cb, open_cb, data_cb, fin_cb, reset_cb, NULL};
    um_tunudp_ops_t uops = {out_cb, uopen_cb, udata_cb, NULL};
    e->s = um_tun_stack_new(&cfg, &tops, &uops, e);
    assert_non_null(e->s);
}

static void echo_free(echo_t *e)
{
    um_tun_stack_free(e->s);
    um_buf_free(&e->pending);
}

/* Reads the device, runs timers, moves echoed bytes on. */
static void pump(echo_t *e)
{
    uint8_t buf[2048];
    for (int i = 0; i < 256; i++) {
        ssize_t n = um_tundev_read(&g_dev, buf, sizeof(buf));
        if (n <= 0) break;
        um_tun_stack_input(e->s, buf, (size_t)n, um_now_ms());
    }
    um_ptcp_t *t = um_tun_stack_tcp(e->s);
    if (e->opened && !e->reset) {
        const uint8_t *p;
        size_t len = um_buf_peek(&e->pending, &p);
        if (len) {
            int r = um_ptcp_send(t, e->id, p, len, um_now_ms());
            if (r > 0) {
                um_buf_consume(&e->pending, (size_t)r);
                um_ptcp_credit(t, e->id, (size_t)r, um_now_ms());
            }
        }
        if (e->fin && !e->shut && um_buf_len(&e->pending) == 0) {
            um_ptcp_shutdown(t, e->id, um_now_ms());
            e->shut = true;
        }
    }
    um_tun_stack_tick(e->s, um_now_ms());
}

static void tcp_echo(int family, const char *dst, size_t size)
{
    need_dev();
    echo_t e;
    echo_init(&e);
    uint8_t *tx = malloc(size), *rx = malloc(size);
    randombytes_buf(tx, size);
    int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(s >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(7);
        inet_pton(AF_INET, dst, &a->sin_addr);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(7);
        inet_pton(AF_INET6, dst, &a->sin6_addr);
        sl = sizeof(*a);
    }
    int r = connect(s, (struct sockaddr *)&ss, sl);
    assert_true(r == 0 || errno == EINPROGRESS);
    size_t sent = 0, got = 0;
    bool eof = false, wr_shut = false;
    uint64_t deadline = um_now_ms() + 20000;
    while (!eof && um_now_ms() < deadline) {
        struct pollfd pf[2] = {{g_dev.fd, POLLIN, 0}, {s, POLLIN | (sent < size ? POLLOUT : 0), 0}};
        poll(pf, 2, 5);
        pump(&e);
        if (sent < size) {
            ssize_t w = send(s, tx + sent, size - sent > 65536 ? 65536 : size - sent, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
        } else if (!wr_shut) {
            assert_int_equal(shutdown(s, SHUT_WR), 0);
            wr_shut = true;
        }
        for (int i = 0; i < 64; i++) {
            ssize_t n = recv(s, rx + got, size - got > 0 ? size - got : 1, 0);
            if (n > 0) {
                got += (size_t)n;
                assert_true(got <= size);
            } else {
                if (n == 0) eof = true;
                break;
            }
        }
        pump(&e);
    }
    const um_ptcp_stats_t *st = um_ptcp_stats(um_tun_stack_tcp(e.s));
    print_message("tcp echo %zu bytes via %s: sent %zu got %zu eof %d; segs in %llu out %llu "
                  "retransmits %llu, device write drops %llu\n",
                  size, dst, sent, got, eof, (unsigned long long)st->seg_in,
                  (unsigned long long)st->seg_out, (unsigned long long)st->retransmits,
                  (unsigned long long)e.write_drops);
    assert_true(e.opened);
    assert_false(e.reset);
    assert_int_equal(got, size);
    assert_true(eof);
    assert_memory_equal(tx, rx, size);
    close(s);
    /* the kernel's final ACK arrives; the flow ends */
    for (int i = 0; i < 200 && um_ptcp_flow_count(um_tun_stack_tcp(e.s)); i++) {
        usleep(2000);
        pump(&e);
    }
    assert_int_equal(um_ptcp_flow_count(um_tun_stack_tcp(e.s)), 0);
    free(tx);
    free(rx);
    echo_free(&e);
}

static void test_kernel_tcp_v4(void **state)
{
    tcp_echo(AF_INET, "10.99.0.2", 4u << 20);
}

static void test_kernel_tcp_v6(void **state)
{
    tcp_echo(AF_INET6, "fd00:99::2", 1u << 20);
}

/* A refused open is an RST: the kernel reports "connection refused". */
static void test_kernel_tcp_refused(void **state)
{
    need_dev();
    echo_t e;
    echo_init(&e);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(81)};
    inet_pton(AF_INET, "10.99.0.2", &a.sin_addr);
    int r = connect(s, (struct sockaddr *)&a, sizeof(a));
    assert_true(r == 0 || errno == EINPROGRESS);
    int err = 0;
    for (int i = 0; i < 1000 && !err; i++) {
        struct pollfd pf = {s, POLLOUT, 0};
        poll(&pf, 1, 2);
        pump(&e);
        socklen_t l = sizeof(err);
        if (pf.revents) getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
    }
    assert_int_equal(err, ECONNREFUSED);
    close(s);
    echo_free(&e);
}

static void test_kernel_udp_echo(void **state)
{
    need_dev();
    echo_t e;
    echo_init(&e);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, "10.99.0.2", &a.sin_addr);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    int replies = 0;
    char buf[64];
    for (int i = 0; i < 500 && replies < 3; i++) {
        if (i % 50 == 0) {
            snprintf(buf, sizeof(buf), "dns query %d", replies);
            assert_true(send(s, buf, strlen(buf), 0) > 0);
        }
        usleep(1000);
        pump(&e);
        char in[64];
        ssize_t n = recv(s, in, sizeof(in), 0);
        if (n > 0) {
            assert_memory_equal(in, "dns query", 9);
            replies++;
        }
    }
    assert_int_equal(replies, 3);
    assert_int_equal(um_tunudp_flow_count(um_tun_stack_udp(e.s)), 1);
    close(s);
    echo_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_configure),     cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_kernel_tcp_v4),      cmocka_unit_test(test_kernel_tcp_v6),
        cmocka_unit_test(test_kernel_tcp_refused), cmocka_unit_test(test_kernel_udp_echo),
    };
    int r = cmocka_run_group_tests(tests, group_setup, NULL);
    if (g_dev_ready) um_tundev_close(&g_dev);
    return r;
}
