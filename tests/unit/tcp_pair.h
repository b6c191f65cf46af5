/* Tests' helper: a connected pair of um_tcp_t over 127.0.0.1 on a real
 * loop (the listener stays open; close it with um_tcp_listener_close). Runs
 * the loop until both ends are connected (at most 5 s). Include after
 * cmocka.h. */
#ifndef UM_TESTS_TCP_PAIR_H
#define UM_TESTS_TCP_PAIR_H

#include <uv.h>

#include "transport/tcp.h"
#include "util/clock.h"

typedef struct {
    um_tcp_t *server;
    int connected;
} tcp_pair_state_t;

static void tcp_pair_accepted(um_tcp_listener_t *l, um_tcp_t *conn, void *ud)
{
    tcp_pair_state_t *st = ud;
    (void)l;
    st->server = conn;
    st->connected++;
}

static void tcp_pair_connected(um_tcp_t *t, int status, void *ud)
{
    (void)t;
    assert_int_equal(status, 0);
    ((tcp_pair_state_t *)ud)->connected++;
}

static void tcp_pair_open(uv_loop_t *loop, um_tcp_listener_t **ls, um_tcp_t **client,
                          um_tcp_t **server)
{
    static tcp_pair_state_t st; /* the listener's callback may run later: keep it */
    struct sockaddr_in sa;
    st.server = NULL;
    st.connected = 0;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(um_tcp_listen(loop, (struct sockaddr *)&sa, 16, tcp_pair_accepted, &st, ls),
                     0);
    uv_ip4_addr("127.0.0.1", um_tcp_listener_port(*ls), &sa);
    assert_int_equal(um_tcp_connect(loop, (struct sockaddr *)&sa, tcp_pair_connected, &st, client),
                     0);
    uint64_t end = um_now_ms() + 5000;
    while (st.connected < 2 && um_now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(st.connected, 2);
    *server = st.server;
}

#endif
