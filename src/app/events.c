#include "app/events.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

int um_events_open(um_events_t *e, const char *path)
{
    memset(e, 0, sizeof(*e));
    if (!path || !*path) return 0;
    if (strcmp(path, "-") == 0) {
        e->f = stdout;
        return 0;
    }
    /* Created 0600: events name servers, addresses and times of use. */
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) return UM_EIO;
    e->f = fdopen(fd, "a");
    if (!e->f) {
        close(fd);
        return UM_EIO;
    }
    e->owned = 1;
    return 0;
}

void um_events_close(um_events_t *e)
{
    if (e->f && e->owned) fclose(e->f);
    e->f = NULL;
}

size_t um_json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap == 0) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        const char *rep = NULL;
        size_t rl;
        switch (c) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                rep = tmp;
            }
        }
        if (rep) {
            rl = strlen(rep);
            if (o + rl >= cap) break;
            memcpy(out + o, rep, rl);
            o += rl;
        } else {
            if (o + 1 >= cap) break;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

static void put(um_events_t *e, const char *s, size_t n)
{
    if (e->len + n >= sizeof(e->line)) n = sizeof(e->line) - 1 - e->len;
    memcpy(e->line + e->len, s, n);
    e->len += n;
    e->line[e->len] = '\0';
}

static void put_key(um_events_t *e, const char *key)
{
    char k[128];
    size_t n = um_json_escape(k, sizeof(k), key);
    put(e, ",\"", 2);
    put(e, k, n);
    put(e, "\":", 2);
}

void um_ev_begin(um_events_t *e, const char *event)
{
    if (!e->f) return;
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    e->len = 0;
    put(e, "{\"ts\":\"", 7);
    put(e, when, strlen(when));
    put(e, "\"", 1);
    um_ev_str(e, "event", event);
}

void um_ev_str(um_events_t *e, const char *key, const char *value)
{
    if (!e->f) return;
    char v[1024];
    size_t n = um_json_escape(v, sizeof(v), value ? value : "");
    put_key(e, key);
    put(e, "\"", 1);
    put(e, v, n);
    put(e, "\"", 1);
}

void um_ev_int(um_events_t *e, const char *key, int64_t value)
{
    if (!e->f) return;
    char v[32];
    int n = snprintf(v, sizeof(v), "%" PRId64, value);
    put_key(e, key);
    put(e, v, (size_t)n);
}

void um_ev_end(um_events_t *e)
{
    if (!e->f) return;
    put(e, "}\n", 2);
    fwrite(e->line, 1, e->len, e->f);
    fflush(e->f);
    e->len = 0;
}
