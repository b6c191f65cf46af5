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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_copied_writes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
