/* sd_notify readiness: see notify.h. */
#include "app/notify.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* STATUS= is one line: a newline would start another assignment. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r') *s = ' ';
}

/* sd_notify(3) from libsystemd, opened the first time a service manager
 * asks for notifications ($NOTIFY_SOCKET set): a process that is not run by
 * systemd never maps libsystemd and its dependencies (libgcrypt, liblzma,
 * liblz4, libzstd, libcap...: about 1 MiB resident in every process when it
 * was linked). Returns 0 when no manager asked, 1 when sent, a negative
 * errno otherwise. */
static int notify_send(const char *state)
{
    static int (*fn)(int unset_environment, const char *state);
    static bool tried;
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || !*e) return 0;
    if (!tried) {
        tried = true;
        void *lib = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        void *p = lib ? dlsym(lib, "sd_notify") : NULL;
        if (p)
            memcpy(&fn, &p, sizeof(p)); /* POSIX: dlsym's pointer is the function's */
        else
            UM_WARN("NOTIFY_SOCKET is set but libsystemd cannot be loaded (%s): no "
                    "readiness notifications",
                    dlerror());
    }
    if (!fn) return -ENOSYS;
    int r = fn(0, state);
    return r < 0 ? r : r > 0;
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
