/* sd_notify messages (src/app/notify.c) as a service manager receives them:
 * a datagram socket named by $NOTIFY_SOCKET, one message per call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "app/notify.h"

static int sock = -1;
static char path[108];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/umbra-notify-%d.sock", (int)getpid());
    unlink(path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)) != 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", path, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(sock);
    unlink(path);
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

/* The next message, NUL-terminated. */
static void next(char *out, size_t cap)
{
    ssize_t n = recv(sock, out, cap - 1, 0);
    assert_true(n > 0);
    out[n] = 0;
}

static void test_ready(void **state)
{
    (void)state;
    char m[1024];
    um_notify_ready(NULL);
    next(m, sizeof(m));
    assert_string_equal(m, "READY=1");
    um_notify_ready("serving %d client(s)", 3);
    next(m, sizeof(m));
    assert_string_equal(m, "READY=1\nSTATUS=serving 3 client(s)");
}

/* A newline in a status would start another assignment: it becomes a space. */
static void test_status_one_line(void **state)
{
    (void)state;
    char m[1024];
    um_notify_status("down: %s", "reset\nREADY=1\r");
    next(m, sizeof(m));
    assert_string_equal(m, "STATUS=down: reset READY=1 ");
}

static void test_reloading_stopping(void **state)
{
    (void)state;
    char m[1024];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    um_notify_reloading();
    clock_gettime(CLOCK_MONOTONIC, &b);
    next(m, sizeof(m));
    unsigned long long us;
    assert_int_equal(sscanf(m, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading", &us), 1);
    assert_non_null(strstr(m, "\nSTATUS=reloading"));
    unsigned long long lo = (unsigned long long)a.tv_sec * 1000000ull + a.tv_nsec / 1000,
                       hi = (unsigned long long)b.tv_sec * 1000000ull + b.tv_nsec / 1000;
    assert_true(us >= lo && us <= hi);
    um_notify_stopping();
    next(m, sizeof(m));
    assert_string_equal(m, "STOPPING=1\nSTATUS=stopping");
}

/* Without $NOTIFY_SOCKET (not started by systemd) every call is harmless. */
static void test_no_socket(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    um_notify_ready("x");
    um_notify_reloading();
    um_notify_stopping();
    um_notify_status("y");
    char m[16];
    assert_true(recv(sock, m, sizeof(m), MSG_DONTWAIT) < 0);
    setenv("NOTIFY_SOCKET", path, 1);
}

/* An abstract socket ("@name", how systemd names it in some setups): the
 * name has no terminating NUL in the address, as the manager binds it. */
static void test_abstract_socket(void **state)
{
    (void)state;
    char name[64], env[66], m[1024];
    snprintf(name, sizeof(name), "umbra-notify-abs-%d", (int)getpid());
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path + 1, name, strlen(name));
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    int a = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(a >= 0);
    assert_int_equal(bind(a, (struct sockaddr *)&sa, len), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    um_notify_ready(NULL);
    ssize_t n = recv(a, m, sizeof(m) - 1, 0);
    assert_true(n > 0);
    m[n] = 0;
    assert_string_equal(m, "READY=1");
    close(a);
    setenv("NOTIFY_SOCKET", path, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready),
        cmocka_unit_test(test_status_one_line),
        cmocka_unit_test(test_reloading_stopping),
        cmocka_unit_test(test_no_socket),
        cmocka_unit_test(test_abstract_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
