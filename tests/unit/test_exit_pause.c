/* Read pauses of the direct connector's connections (exit/direct.c,
 * util/uvread.h): a stream whose reader pauses after each read (the tunnel's
 * relay at the send share) and resumes from the next turn of the loop gets
 * every byte of a 4 MiB response, in order, never a read while paused; and
 * its socket stays in the loop's poll set across each pause (its handle
 * stays active: no epoll_ctl per pause). With uv_read_stop it left the poll
 * set at each pause. Loopback only; turns are counted, nothing is timed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "exit/direct.h"
#include "exit/policy.h"
#include "util/err.h"

#define TOTAL (4u << 20)

static uv_loop_t loop;
static uv_tcp_t lsn, peer; /* the origin: sends TOTAL bytes, then FIN */
static uint8_t *pat;
static uv_write_t wreq;
static uv_shutdown_t sreq;
static uv_idle_t idle;

static struct {
    um_conn_t *c;
    uint64_t got;
    int bad, reads, reads_paused, pauses, resumes, armed_at_resume, opened, eof, err;
    bool paused;
} st;

static void on_written(uv_write_t *r, int status)
{
    (void)status;
    uv_shutdown(&sreq, r->handle, NULL);
}

static void on_conn(uv_stream_t *s, int status)
{
    assert_int_equal(status, 0);
    uv_tcp_init(&loop, &peer);
    assert_int_equal(uv_accept(s, (uv_stream_t *)&peer), 0);
    uv_buf_t b = uv_buf_init((char *)pat, TOTAL);
    assert_int_equal(uv_write(&wreq, (uv_stream_t *)&peer, &b, 1, on_written), 0);
}

/* Active TCP handles other than the origin's: the direct connection's. */
static void count_active(uv_handle_t *h, void *arg)
{
    if (h->type == UV_TCP && h != (uv_handle_t *)&lsn && h != (uv_handle_t *)&peer &&
        uv_is_active(h))
        ++*(int *)arg;
}

static void on_idle(uv_idle_t *h)
{
    uv_idle_stop(h);
    if (!st.paused) return;
    int active = 0;
    uv_walk(&loop, count_active, &active);
    if (active == 1) st.armed_at_resume++;
    st.paused = false;
    st.resumes++;
    assert_int_equal(um_conn_read_start(st.c), 0);
}

static void c_open(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, UM_CONN_OK);
    st.opened++;
}

static void c_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    st.reads++;
    if (st.paused) st.reads_paused++;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)((st.got + i) * 13)) st.bad++;
    st.got += n;
    /* as the relay does above its high water, and its drain signal one
     * turn later */
    st.paused = true;
    st.pauses++;
    assert_int_equal(um_conn_read_stop(st.c), 0);
    uv_idle_start(&idle, on_idle);
}

static void c_eof(void *arg)
{
    (void)arg;
    st.eof++;
}

static void c_error(void *arg, int err)
{
    (void)arg;
    st.err = err;
}

static void c_drain(void *arg)
{
    (void)arg;
}

static const um_conn_cbs_t cbs = {c_open, c_data, c_eof, c_error, c_drain};

static void test_pause_each_read(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    pat = malloc(TOTAL);
    assert_non_null(pat);
    for (size_t i = 0; i < TOTAL; i++)
        pat[i] = (uint8_t)(i * 13);
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_idle_init(&loop, &idle);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&loop, &lsn);
    assert_int_equal(uv_tcp_bind(&lsn, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&lsn, 4, on_conn), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&lsn, (struct sockaddr *)&ss, &len);
    unsigned port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    um_policy_t pol;
    um_policy_init(&pol);
    assert_int_equal(um_policy_allow_str(&pol, "127.0.0.1/32", NULL, 0), 0);
    um_direct_t *dir;
    assert_int_equal(um_direct_new(&loop, &pol, 3000, &dir), 0);
    um_addr_t dst;
    char s[64];
    snprintf(s, sizeof(s), "127.0.0.1:%u", port);
    assert_int_equal(um_addr_parse(&dst, s, strlen(s), 0, NULL, 0), 0);
    assert_int_equal(um_conn_open(um_direct_connector(dir), &dst, NULL, 0, &cbs, NULL, &st.c), 0);
    for (int i = 0; i < 400000 && !st.eof && !st.err; i++)
        uv_run(&loop, UV_RUN_ONCE);
    print_message("%llu bytes in %d reads, %d pauses, %d resumes (armed at %d)\n",
                  (unsigned long long)st.got, st.reads, st.pauses, st.resumes, st.armed_at_resume);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.err, 0);
    assert_int_equal(st.eof, 1);
    assert_int_equal(st.got, TOTAL);
    assert_int_equal(st.bad, 0);
    assert_int_equal(st.reads_paused, 0);
    assert_true(st.pauses >= 16); /* reads of 64 KiB at most */
    assert_int_equal(st.resumes, st.pauses);
    /* Every pause ended before the loop polled again, the socket still armed. */
    assert_int_equal(st.armed_at_resume, st.resumes);

    um_conn_close(st.c);
    uv_close((uv_handle_t *)&idle, NULL);
    uv_close((uv_handle_t *)&peer, NULL);
    uv_close((uv_handle_t *)&lsn, NULL);
    um_direct_free(dir);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    um_policy_close(&pol);
    free(pat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_each_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
