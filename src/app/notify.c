/* sd_notify readiness: see notify.h. */
#include "app/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* STATUS= is one line: a newline would start another assignment. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r') *s = ' ';
}

/* The sd_notify protocol itself (systemd's sd_notify(3), "NOTIFY_SOCKET"):
 * one datagram of newline-separated assignments to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, a path, or an abstract name when it starts with '@'.
 * Done here rather than through libsystemd, whose dependencies (libgcrypt,
 * liblzma, liblz4, libzstd, libcap...) cost every process about 1 MiB of
 * resident mappings for this one datagram. Returns 0 when no manager asked
 * (no $NOTIFY_SOCKET), 1 when sent, a negative errno otherwise. */
static int notify_send(const char *state)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || !*e) return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t n = strlen(e);
    if ((e[0] != '/' && e[0] != '@') || n >= sizeof(sa.sun_path)) return -EINVAL;
    memcpy(sa.sun_path, e, n);
    if (e[0] == '@') sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int r = w < 0 ? -errno : 1;
    close(fd);
    return r;
}

static void send_state(const char *state)
{
    int r = notify_send(state);
    if (r < 0) um_log(UM_LOG_DEBUG, "sd_notify: error %d", r);
}

static void send_with_status(const char *head, const char *fmt, va_list ap)
{
    char st[512], msg[600];
    vsnprintf(st, sizeof(st), fmt, ap);
    one_line(st);
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", head, st);
    send_state(msg);
}

void um_notify_ready(const char *fmt, ...)
{
    if (!fmt) {
        send_state("READY=1");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    send_with_status("READY=1\n", fmt, ap);
    va_end(ap);
}

void um_notify_reloading(void)
{
    struct timespec ts;
    char msg[96];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    send_state(msg);
}

void um_notify_stopping(void)
{
    send_state("STOPPING=1\nSTATUS=stopping");
}

void um_notify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_with_status("", fmt, ap);
    va_end(ap);
}
