/* TCP_NOTSENT_LOWAT on every connection transport/tcp.c makes (tcp_tune):
 * the dialled end (um_tcp_connect) and the accepted end (um_tcp_listen), as
 * the kernel reports it with getsockopt on the libuv handle's descriptor. The
 * tcp, tls and ws carriers all run on these connections (the connector dials
 * with um_tcp_connect, the acceptor takes um_tcp_listen's connections); the
 * running client and server are checked by integration/carrier_lowat.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_pair.h"

static int lowat_of(um_tcp_t *t)
{
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)um_tcp_handle(t), &fd), 0);
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &len), 0);
    return v;
}

static void close_all(uv_loop_t *loop, um_tcp_listener_t *ls, um_tcp_t *a, um_tcp_t *b)
{
    um_tcp_close(a);
    um_tcp_close(b);
    um_tcp_listener_close(ls);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Both ends of a connection over 127.0.0.1 carry the bound; a socket made
 * outside tcp.c does not (the kernel's default is "no bound"), so the value
 * read back is tcp.c's doing. */
static void test_both_ends(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    um_tcp_listener_t *ls;
    um_tcp_t *client, *server;
    tcp_pair_open(&loop, &ls, &client, &server);
    assert_non_null(server);
    assert_int_equal(lowat_of(client), UM_TCP_NOTSENT_LOWAT);
    assert_int_equal(lowat_of(server), UM_TCP_NOTSENT_LOWAT);

    int raw = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(raw >= 0);
    int v = 0;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(raw, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &len), 0);
    assert_int_not_equal(v, UM_TCP_NOTSENT_LOWAT);
    close(raw);
    close_all(&loop, ls, client, server);
}

/* Over IPv6 loopback too (the option is set per connection, not per family);
 * skipped where ::1 is not configured. */
static void test_ipv6(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 s6;
    uv_ip6_addr("::1", 0, &s6);
    int ok = probe >= 0 && bind(probe, (struct sockaddr *)&s6, sizeof(s6)) == 0;
    if (probe >= 0) close(probe);
    if (!ok) skip();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    static tcp_pair_state_t st;
    memset(&st, 0, sizeof(st));
    um_tcp_listener_t *ls;
    um_tcp_t *client;
    assert_int_equal(um_tcp_listen(&loop, (struct sockaddr *)&s6, 4, tcp_pair_accepted, &st, &ls),
                     0);
    uv_ip6_addr("::1", um_tcp_listener_port(ls), &s6);
    assert_int_equal(
        um_tcp_connect(&loop, (struct sockaddr *)&s6, tcp_pair_connected, &st, &client), 0);
    uint64_t end = um_now_ms() + 5000;
    while (st.connected < 2 && um_now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.connected, 2);
    assert_int_equal(lowat_of(client), UM_TCP_NOTSENT_LOWAT);
    assert_int_equal(lowat_of(st.server), UM_TCP_NOTSENT_LOWAT);
    close_all(&loop, ls, client, st.server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_both_ends),
                                       cmocka_unit_test(test_ipv6)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
