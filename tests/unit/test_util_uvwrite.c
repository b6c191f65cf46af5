/* util/uvwrite.h: the one copied-write helper of the TCP writers. Over a
 * socketpair on a real loop: the caller's buffer may change right after the
 * call (the bytes were copied), done reports every write with its length,
 * in order, and a write on a closed stream reports a cancellation instead of
 * being lost; bad arguments are refused without a callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "util/err.h"
#include "util/uvwrite.h"

static size_t g_done_n[16];
static int g_done_st[16];
static int g_calls;

static void done(void *ud, size_t n, int status)
{
    (void)ud;
    g_done_n[g_calls] = n;
    g_done_st[g_calls] = status;
    g_calls++;
}

static void test_copied_writes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uv_loop_t loop;
    uv_pipe_t p;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_pipe_init(&loop, &p, 0), 0);
    assert_int_equal(uv_pipe_open(&p, sv[0]), 0);
    g_calls = 0;
    char buf[64] = "first write";
    assert_int_equal(um_uv_write_copy((uv_stream_t *)&p, buf, 11, done, NULL), 0);
    memset(buf, 'X', sizeof(buf)); /* the copy went out, not this */
    memcpy(buf, "second", 6);
    assert_int_equal(um_uv_write_copy((uv_stream_t *)&p, buf, 6, done, NULL), 0);
    assert_int_equal(um_uv_write_copy((uv_stream_t *)&p, buf, 0, done, NULL), UM_EINVAL);
    assert_int_equal(um_uv_write_copy(NULL, buf, 3, done, NULL), UM_EINVAL);
    while (g_calls < 2)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(g_done_n[0], 11);
    assert_int_equal(g_done_n[1], 6);
    assert_int_equal(g_done_st[0], 0);
    assert_int_equal(g_done_st[1], 0);
    char got[32] = {0};
    assert_int_equal(read(sv[1], got, sizeof(got)), 17);
    assert_memory_equal(got, "first writesecond", 17);
    /* A write still queued when the stream closes is reported, cancelled. */
    close(sv[1]);
    static char big[1 << 20];
    int queued = 0;
    for (int i = 0; i < 8; i++)
        queued += um_uv_write_copy((uv_stream_t *)&p, big, sizeof(big), done, NULL) == 0;
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(g_calls, 2 + queued);
    for (int i = 2; i < g_calls; i++)
        assert_true(g_done_st[i] < 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* um_uv_write_some: what the socket takes at once is neither copied nor
 * queued (no callback); the rest is copied and queued, and a later write
 * waits behind it, so the peer reads every byte in order. */
static void test_write_some(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uv_loop_t loop;
    uv_pipe_t p;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_pipe_init(&loop, &p, 0), 0);
    assert_int_equal(uv_pipe_open(&p, sv[0]), 0);
    g_calls = 0;
    size_t q = 99;
    assert_int_equal(um_uv_write_some((uv_stream_t *)&p, "hello", 5, done, NULL, &q), 0);
    assert_int_equal(q, 0); /* taken by the socket at once */
    assert_int_equal(um_uv_write_some((uv_stream_t *)&p, "x", 0, done, NULL, &q), UM_EINVAL);
    assert_int_equal(q, 0);
    /* More than the socket buffer holds: the rest is a copy, queued. */
    size_t big_n = 4u << 20;
    uint8_t *big = malloc(big_n), *want = malloc(big_n + 9), *got = malloc(big_n + 9);
    assert_non_null(big);
    assert_non_null(want);
    assert_non_null(got);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 11));
    memcpy(want, "hello", 5);
    memcpy(want + 5, big, big_n);
    memcpy(want + 5 + big_n, "tail", 4);
    size_t q1 = 0, q2 = 0;
    assert_int_equal(um_uv_write_some((uv_stream_t *)&p, big, big_n, done, NULL, &q1), 0);
    assert_true(q1 > 0 && q1 < big_n);
    memset(big, 'X', big_n); /* the queued part was copied */
    assert_int_equal(um_uv_write_some((uv_stream_t *)&p, "tail", 4, done, NULL, &q2), 0);
    assert_int_equal(q2, 4); /* behind the queued bytes, not before them */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(g_calls <= 2);
    size_t have = 0;
    for (int spins = 0; have < big_n + 9 && spins < 100000; spins++) {
        ssize_t r = recv(sv[1], got + have, big_n + 9 - have, MSG_DONTWAIT);
        if (r > 0) have += (size_t)r;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    while (g_calls < 2)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(have, big_n + 9);
    assert_memory_equal(got, want, big_n + 9);
    assert_int_equal(g_calls, 2);
    assert_int_equal(g_done_n[0], q1);
    assert_int_equal(g_done_n[1], 4);
    assert_int_equal(g_done_st[0], 0);
    assert_int_equal(g_done_st[1], 0);
    free(big);
    free(want);
    free(got);
    close(sv[1]);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* um_uv_write_some on a socket that takes nothing (its buffer already full,
 * no write of ours queued: EAGAIN at once): every byte is copied and queued,
 * done runs once with all of them after the peer reads; and on a socket
 * whose peer is gone the error comes back at once, with nothing queued and
 * no callback. */
static void test_write_some_full_and_error(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uv_loop_t loop;
    uv_pipe_t p;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_pipe_init(&loop, &p, 0), 0);
    assert_int_equal(uv_pipe_open(&p, sv[0]), 0); /* non-blocking from here */
    static uint8_t fill[1 << 16];
    memset(fill, 'f', sizeof(fill));
    size_t filled = 0;
    for (int i = 0; i < 4096; i++) {
        ssize_t w = write(sv[0], fill, sizeof(fill));
        if (w < 0) break;
        filled += (size_t)w;
    }
    assert_true(filled > 0);
    g_calls = 0;
    char msg[] = "after the fill";
    size_t q = 0;
    assert_int_equal(um_uv_write_some((uv_stream_t *)&p, msg, sizeof(msg), done, NULL, &q), 0);
    assert_int_equal(q, sizeof(msg)); /* nothing taken: all of it copied */
    memset(msg, 'X', sizeof(msg));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g_calls, 0); /* still waiting for room */
    size_t want = filled + sizeof(msg), have = 0;
    uint8_t *got = malloc(want);
    assert_non_null(got);
    for (int spins = 0; have < want && spins < 100000; spins++) {
        ssize_t r = recv(sv[1], got + have, want - have, MSG_DONTWAIT);
        if (r > 0) have += (size_t)r;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    while (g_calls < 1)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(have, want);
    assert_memory_equal(got + filled, "after the fill", sizeof(msg));
    assert_int_equal(g_calls, 1);
    assert_int_equal(g_done_n[0], sizeof(msg));
    assert_int_equal(g_done_st[0], 0);
    free(got);

    /* The peer is gone: EPIPE now, nothing queued, done never runs. */
    close(sv[1]);
    g_calls = 0;
    q = 99;
    int r = um_uv_write_some((uv_stream_t *)&p, "late", 4, done, NULL, &q);
    assert_true(r < 0);
    assert_int_equal(q, 0);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(g_calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_copied_writes),
                                       cmocka_unit_test(test_write_some),
                                       cmocka_unit_test(test_write_some_full_and_error)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
