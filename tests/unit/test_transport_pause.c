/* Read pauses of transport/tcp.c (um_tcp_read_stop, util/uvread.h): a
 * soft pause. Over a loopback pair on a real loop:
 *   - a reader that pauses after each read and resumes from the next turn
 *     of the loop (as the tunnel's per-turn read bound and the feeders'
 *     high water do) gets every byte, in order, never a read while paused,
 *     and its socket never leaves the loop's poll set (the handle stays
 *     active: no epoll_ctl per pause); with uv_read_stop it left it at each
 *     pause;
 *   - a pause that outlasts the turn (the loop finds the socket readable
 *     while still paused) stops the reads for real after at most two polls,
 *     so the loop does not spin on a readable socket nobody reads; a start
 *     afterwards brings the rest.
 * No timing is measured: turns are counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_pair.h"

#define TOTAL (4u << 20)

static struct {
    um_tcp_t *srv;
    uv_idle_t idle;
    uint64_t got;
    int bad; /* bytes out of order */
    int reads, reads_paused, pauses, resumes, armed_at_resume;
    bool paused, pause_each;
} st;

static void on_idle(uv_idle_t *h)
{
    uv_idle_stop(h);
    if (!st.paused) return;
    /* the loop's next turn: still in its poll set? (uv_read_stop takes it out) */
    if (uv_is_active((uv_handle_t *)um_tcp_handle(st.srv))) st.armed_at_resume++;
    st.paused = false;
    st.resumes++;
    assert_int_equal(um_tcp_read_start(st.srv), 0);
}

static void on_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)ud;
    if (status != 0) return;
    st.reads++;
    if (st.paused) st.reads_paused++;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)((st.got + i) * 7)) st.bad++;
    st.got += n;
    if (st.pause_each) {
        st.paused = true;
        st.pauses++;
        assert_int_equal(um_tcp_read_stop(t), 0);
        uv_idle_start(&st.idle, on_idle);
    }
}

static uint8_t *pattern(void)
{
    uint8_t *buf = malloc(TOTAL);
    assert_non_null(buf);
    for (size_t i = 0; i < TOTAL; i++)
        buf[i] = (uint8_t)(i * 7);
    return buf;
}

static void close_all(uv_loop_t *loop, um_tcp_listener_t *ls, um_tcp_t *a, um_tcp_t *b)
{
    uv_close((uv_handle_t *)&st.idle, NULL);
    um_tcp_close(a);
    um_tcp_close(b);
    um_tcp_listener_close(ls);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_pause_each_read(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_idle_init(&loop, &st.idle);
    um_tcp_listener_t *ls;
    um_tcp_t *cli;
    tcp_pair_open(&loop, &ls, &cli, &st.srv);
    uint8_t *buf = pattern();
    um_tcp_set_wq_max(cli, TOTAL + 1);
    assert_int_equal(um_tcp_write(cli, buf, TOTAL), 0);
    st.pause_each = true;
    um_tcp_set_read_cb(st.srv, on_read, NULL);
    assert_int_equal(um_tcp_read_start(st.srv), 0);
    for (int i = 0; i < 200000 && st.got < TOTAL; i++)
        uv_run(&loop, UV_RUN_ONCE);
    print_message("%llu bytes in %d reads, %d pauses, %d resumes (armed at %d)\n",
                  (unsigned long long)st.got, st.reads, st.pauses, st.resumes, st.armed_at_resume);
    assert_int_equal(st.got, TOTAL);
    assert_int_equal(st.bad, 0);
    assert_int_equal(st.reads_paused, 0);
    assert_true(st.pauses >= 16); /* 64 KiB reads at most */
    assert_true(st.resumes >= st.pauses - 1);
    /* Every pause ended before the loop polled again, the socket still armed. */
    assert_int_equal(st.armed_at_resume, st.resumes);
    free(buf);
    close_all(&loop, ls, cli, st.srv);
}

static void test_long_pause_stops(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_idle_init(&loop, &st.idle);
    um_tcp_listener_t *ls;
    um_tcp_t *cli;
    tcp_pair_open(&loop, &ls, &cli, &st.srv);
    uint8_t *buf = pattern();
    um_tcp_set_wq_max(cli, TOTAL + 1);
    um_tcp_set_read_cb(st.srv, on_read, NULL);
    assert_int_equal(um_tcp_read_start(st.srv), 0);
    assert_int_equal(um_tcp_write(cli, buf, 65536), 0);
    for (int i = 0; i < 100000 && st.got < 65536; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.got, 65536);
    /* Paused with bytes waiting in the socket: nothing is read, and after
     * at most two polls that found it readable the socket leaves the poll
     * set. */
    assert_int_equal(um_tcp_read_stop(st.srv), 0);
    st.paused = true;
    assert_int_equal(um_tcp_write(cli, buf + 65536, TOTAL - 65536), 0);
    int turns = 0;
    while (turns < 10000 && uv_is_active((uv_handle_t *)um_tcp_handle(st.srv))) {
        uv_run(&loop, UV_RUN_NOWAIT);
        turns++;
    }
    print_message("paused reader left the poll set after %d turns\n", turns);
    assert_false(uv_is_active((uv_handle_t *)um_tcp_handle(st.srv)));
    assert_true(turns <= 1000); /* the sender's write lands within a few turns, then 2 polls */
    assert_int_equal(st.reads_paused, 0);
    assert_int_equal(st.got, 65536);
    /* Started again: the rest, in order. */
    st.paused = false;
    assert_int_equal(um_tcp_read_start(st.srv), 0);
    for (int i = 0; i < 200000 && st.got < TOTAL; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.got, TOTAL);
    assert_int_equal(st.bad, 0);
    free(buf);
    close_all(&loop, ls, cli, st.srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_each_read),
        cmocka_unit_test(test_long_pause_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
