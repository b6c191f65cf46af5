/* Edits of a config file's text for runtime changes (app/mgmt.h): whole
 * lines are removed, replaced or inserted; every other byte stays as it
 * was, comments and lines this version does not know included. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/mgmt.h"
#include "util/err.h"

typedef struct {
    size_t b, e; /* the line's bytes, newline excluded */
    size_t next; /* where the next line starts */
} line_t;

static bool next_line(const char *t, size_t n, size_t pos, line_t *l)
{
    if (pos >= n) return false;
    const char *nl = memchr(t + pos, '\n', n - pos);
    l->b = pos;
    l->e = nl ? (size_t)(nl - t) : n;
    l->next = nl ? l->e + 1 : n;
    return true;
}

static size_t skip_ws(const char *t, size_t i, size_t e)
{
    while (i < e && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r'))
        i++;
    return i;
}

/* 1 when the line is a section header, 2 when it is [word "name"]. */
static int header(const char *t, const line_t *l, const char *word, const char *name)
{
    size_t i = skip_ws(t, l->b, l->e);
    if (i == l->e || t[i] != '[') return 0;
    const char *close = memchr(t + i, ']', l->e - i);
    if (!close) return 0;
    size_t end = (size_t)(close - t), wl = strlen(word), nl = strlen(name);
    i++;
    if (end - i < wl || memcmp(t + i, word, wl) != 0) return 1;
    i += wl;
    size_t j = skip_ws(t, i, end);
    if (j == i || end - j != nl + 2 || t[j] != '"' || memcmp(t + j + 1, name, nl) != 0 ||
        t[j + 1 + nl] != '"')
        return 1;
    return 2;
}

/* The line is "key = ..." (or "key: ..."), whitespace around allowed. */
static bool key_line(const char *t, const line_t *l, const char *key)
{
    size_t i = skip_ws(t, l->b, l->e), kl = strlen(key);
    if (l->e - i < kl || memcmp(t + i, key, kl) != 0) return false;
    i = skip_ws(t, i + kl, l->e);
    return i < l->e && (t[i] == '=' || t[i] == ':');
}

/* [start, end) of the section: its header line to the next header. */
static bool find_section(const char *t, size_t n, const char *word, const char *name, size_t *start,
                         size_t *hdr_end, size_t *end)
{
    line_t l;
    bool in = false;
    for (size_t pos = 0; next_line(t, n, pos, &l); pos = l.next) {
        int h = header(t, &l, word, name);
        if (in && h) {
            *end = l.b;
            return true;
        }
        if (!in && h == 2) {
            in = true;
            *start = l.b;
            *hdr_end = l.next;
        }
    }
    if (in) *end = n;
    return in;
}

bool um_cfgedit_has_section(const char *text, size_t n, const char *word, const char *name)
{
    size_t a, h, b;
    return find_section(text, n, word, name, &a, &h, &b);
}

/* out = text[0,a) + mid + text[b,n) */
static char *text_splice(const char *t, size_t n, size_t a, size_t b, const char *mid, size_t midn,
                         size_t *outn)
{
    size_t len = a + midn + (n - b);
    char *o = malloc(len + 1);
    if (!o) return NULL;
    memcpy(o, t, a);
    if (midn) memcpy(o + a, mid, midn);
    memcpy(o + a + midn, t + b, n - b);
    o[len] = '\0';
    *outn = len;
    return o;
}

char *um_cfgedit_remove_section(const char *text, size_t n, const char *word, const char *name,
                                size_t *outn)
{
    size_t a, h, b;
    *outn = 0;
    if (!find_section(text, n, word, name, &a, &h, &b)) return NULL;
    return text_splice(text, n, a, b, NULL, 0, outn);
}

char *um_cfgedit_set_key(const char *text, size_t n, const char *word, const char *name,
                         const char *key, const char *value, size_t *outn)
{
    size_t a, h, b;
    *outn = 0;
    if (!find_section(text, n, word, name, &a, &h, &b)) return NULL;
    char mid[512];
    size_t midn = 0;
    if (value) {
        int w = snprintf(mid, sizeof(mid), "%s = %s\n", key, value);
        if (w < 0 || (size_t)w >= sizeof(mid)) return NULL;
        midn = (size_t)w;
    }
    /* Build: [0, h) kept, then the section's lines with key lines dropped
     * (the first replaced), the new line after the last non-blank line when
     * none was there. */
    char *o = malloc(n + midn + 2);
    if (!o) return NULL;
    size_t on = 0, last_body = 0;
    bool done = false;
    memcpy(o, text, h);
    on = h;
    if (on && o[on - 1] != '\n' && midn) o[on++] = '\n'; /* a header on the last line */
    last_body = on;
    line_t l;
    for (size_t pos = h; pos < b && next_line(text, n, pos, &l); pos = l.next) {
        if (key_line(text, &l, key)) {
            if (!done && midn) {
                memcpy(o + on, mid, midn);
                on += midn;
                last_body = on;
            }
            done = true;
            continue;
        }
        memcpy(o + on, text + l.b, l.next - l.b);
        on += l.next - l.b;
        if (skip_ws(text, l.b, l.e) < l.e) last_body = on;
        if (l.next == n && l.e == n && !done && midn) { /* last line of a file without '\n' */
            o[on++] = '\n';
            last_body = on;
        }
    }
    if (!done && midn) {
        memmove(o + last_body + midn, o + last_body, on - last_body);
        memcpy(o + last_body, mid, midn);
        on += midn;
    }
    memcpy(o + on, text + b, n - b);
    on += n - b;
    o[on] = '\0';
    *outn = on;
    return o;
}

int um_cfgedit_write(const char *path_in, const char *text, size_t n, char *err, size_t errlen)
{
    char tmp[UM_PATH_MAX + 16], dir[UM_PATH_MAX], real[PATH_MAX];
    /* A symlinked config (/etc/umbra/x.conf -> ...) stays a symlink: the
     * file it names is replaced. */
    const char *path = realpath(path_in, real) && strlen(real) < UM_PATH_MAX ? real : path_in;
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return UM_EIO;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file beside %s: %s", path, strerror(errno));
        return UM_EIO;
    }
    size_t off = 0;
    int e = 0;
    if (fchmod(fd, 0600) != 0) e = errno;
    while (!e && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            e = w < 0 ? errno : EIO;
        else
            off += (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        return UM_EIO;
    }
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself made durable; best effort */
        close(dfd);
    }
    return 0;
}
