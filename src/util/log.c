#include "util/log.h"

#include <sodium.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/err.h"

static um_log_level_t g_level = UM_LOG_INFO;
static FILE *g_stream;

static const char *const names[] = {"error", "warn", "info", "debug", "trace"};

void um_log_set_level(um_log_level_t level)
{
    g_level = level;
}

um_log_level_t um_log_get_level(void)
{
    return g_level;
}

void um_log_set_stream(FILE *f)
{
    g_stream = f;
}

int um_log_level_parse(const char *s, um_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (um_log_level_t)i;
            return 0;
        }
    }
    return UM_EINVAL;
}

__attribute__((format(printf, 2, 0))) static void vlog(um_log_level_t level, const char *fmt,
                                                       va_list ap)
{
    FILE *f = g_stream ? g_stream : stderr;
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line so concurrent writers do not interleave mid-line. */
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(f, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000, names[level], msg);
    fflush(f);
}

void um_log(um_log_level_t level, const char *fmt, ...)
{
    if (level > g_level) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void um_log_limited(um_ratelimit_t *rl, uint32_t burst, uint32_t interval_ms, um_log_level_t level,
                    const char *fmt, ...)
{
    if (level > g_level) return;
    uint64_t now = um_now_ms();
    if (now - rl->window_start_ms >= interval_ms) {
        if (rl->suppressed) um_log(level, "(%u similar messages suppressed)", rl->suppressed);
        rl->window_start_ms = now;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count >= burst) {
        rl->suppressed++;
        return;
    }
    rl->count++;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void um_log_fingerprint(const uint8_t key[32], char out[9])
{
    uint8_t h[16];
    char b64[32];
    crypto_generichash(h, sizeof(h), key, 32, NULL, 0);
    sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    memcpy(out, b64, 8);
    out[8] = '\0';
}
