/* sd_notify readiness: see notify.h. */
#include "app/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "util/log.h"

/* STATUS= is one line: a newline would start another assignment. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r') *s = ' ';
}

static void send_state(const char *state)
{
    int r = sd_notify(0, state);
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
