/* The state file of remembered dial parameters (app/dialstate.h). */
#include "app/dialstate.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define LINE_MAX_LEN 1024
#define MAX_FIELDS   8

/* A token of the file: printable ASCII without spaces, 1..max bytes. */
static bool token_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

static bool fp_ok(const char *s, size_t n)
{
    if (n != UM_DIALSTATE_FP_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* Decimal digits, at most 12 (Unix seconds until the year 33658). */
static bool parse_secs(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 12) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* The canonical text of an address ("host:port"), or false. */
static bool canon_addr(const char *s, size_t n, char *out, size_t cap)
{
    um_addr_t a;
    char why[128];
    if (n == 0 || n >= UM_ADDR_STRLEN) return false;
    if (um_addr_parse(&a, s, n, 0, why, sizeof(why)) != 0 || a.port == 0) return false;
    um_addr_format(&a, out, cap);
    return true;
}

/* What of the bad input an error quotes: the start of it, control
 * characters as '?'. */
static void quote(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap && i < 32; i++)
        out[k++] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) ? '?' : s[i];
    out[k] = 0;
}

int um_dialstate_parse(um_dialstate_t *st, const char *text, size_t n, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    if (n > UM_DIALSTATE_MAX) {
        snprintf(err, errlen, "longer than %d bytes", UM_DIALSTATE_MAX);
        return UM_EINVAL;
    }
    bool header = false;
    unsigned line = 0;
    size_t pos = 0;
    char q[40];
    while (pos < n) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - p) : n - pos;
        pos += len + (nl ? 1 : 0);
        line++;
        if (len > 0 && p[len - 1] == '\r') len--;
        if (len > LINE_MAX_LEN) {
            snprintf(err, errlen, "line %u: longer than %d characters", line, LINE_MAX_LEN);
            goto bad;
        }
        /* Fields separated by spaces or tabs; '#' starts a comment line. */
        const char *f[MAX_FIELDS];
        size_t fl[MAX_FIELDS], nf = 0, i = 0;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == len || p[i] == '#') continue;
        while (i < len) {
            while (i < len && (p[i] == ' ' || p[i] == '\t'))
                i++;
            if (i == len) break;
            size_t s = i;
            while (i < len && p[i] != ' ' && p[i] != '\t')
                i++;
            if (nf == MAX_FIELDS) {
                snprintf(err, errlen, "line %u: too many fields", line);
                goto bad;
            }
            f[nf] = p + s;
            fl[nf++] = i - s;
        }
        if (nf == 0) continue;
        for (size_t k = 0; k < nf; k++)
            if (!token_ok(f[k], fl[k], LINE_MAX_LEN)) {
                snprintf(err, errlen, "line %u: control or non-ASCII characters", line);
                goto bad;
            }
        if (!header) {
            if (nf != 2 || fl[0] != 11 || memcmp(f[0], "umbra-state", 11) != 0) {
                snprintf(err, errlen, "line %u: expected 'umbra-state 1'", line);
                goto bad;
            }
            if (fl[1] != 1 || f[1][0] != '1') {
                quote(q, sizeof(q), f[1], fl[1]);
                snprintf(err, errlen, "line %u: unknown version '%s' (expected 1)", line, q);
                goto bad;
            }
            header = true;
            continue;
        }
        if (fl[0] == 10 && memcmp(f[0], "remembered", 10) == 0) {
            um_dial_rec_t *r = &st->remembered;
            if (st->has_remembered) {
                snprintf(err, errlen, "line %u: a second 'remembered' entry", line);
                goto bad;
            }
            if (nf != 6) {
                snprintf(err, errlen,
                         "line %u: expected 'remembered SERVER KEYFP ADDRESS TRANSPORT SECONDS'",
                         line);
                goto bad;
            }
            if (!token_ok(f[1], fl[1], UM_NAME_MAX)) {
                snprintf(err, errlen, "line %u: server name longer than %d characters", line,
                         UM_NAME_MAX);
                goto bad;
            }
            if (!fp_ok(f[2], fl[2])) {
                snprintf(err, errlen, "line %u: expected a key fingerprint of %d hex digits", line,
                         UM_DIALSTATE_FP_LEN);
                goto bad;
            }
            if (!canon_addr(f[3], fl[3], r->address, sizeof(r->address))) {
                quote(q, sizeof(q), f[3], fl[3]);
                snprintf(err, errlen, "line %u: bad address '%s' (expected host:port)", line, q);
                goto bad;
            }
            if (!token_ok(f[4], fl[4], UM_NAME_MAX)) {
                snprintf(err, errlen, "line %u: transport name longer than %d characters", line,
                         UM_NAME_MAX);
                goto bad;
            }
            if (!parse_secs(f[5], fl[5], &r->at_s)) {
                quote(q, sizeof(q), f[5], fl[5]);
                snprintf(err, errlen, "line %u: bad time '%s' (expected Unix seconds)", line, q);
                goto bad;
            }
            memcpy(r->server, f[1], fl[1]);
            r->server[fl[1]] = 0;
            memcpy(r->key_fp, f[2], fl[2]);
            r->key_fp[fl[2]] = 0;
            memcpy(r->transport, f[4], fl[4]);
            r->transport[fl[4]] = 0;
            st->has_remembered = true;
            continue;
        }
        quote(q, sizeof(q), f[0], fl[0]);
        snprintf(err, errlen, "line %u: unknown entry '%s'", line, q);
        goto bad;
    }
    if (!header) {
        snprintf(err, errlen, "line %u: no 'umbra-state 1' line", line ? line : 1);
        goto bad;
    }
    return 0;
bad:
    memset(st, 0, sizeof(*st));
    return UM_EINVAL;
}

bool um_dial_rec_valid(const um_dial_rec_t *r)
{
    char canon[UM_ADDR_STRLEN];
    size_t al = strnlen(r->address, sizeof(r->address));
    return token_ok(r->server, strnlen(r->server, sizeof(r->server)), UM_NAME_MAX) &&
           fp_ok(r->key_fp, strnlen(r->key_fp, sizeof(r->key_fp))) &&
           canon_addr(r->address, al, canon, sizeof(canon)) && strcmp(canon, r->address) == 0 &&
           token_ok(r->transport, strnlen(r->transport, sizeof(r->transport)), UM_NAME_MAX) &&
           r->at_s <= 999999999999ull;
}

int um_dialstate_format(const um_dialstate_t *st, char *out, size_t cap, size_t *outn)
{
    int n;
    if (st->has_remembered && !um_dial_rec_valid(&st->remembered)) return UM_EINVAL;
    if (st->has_remembered) {
        const um_dial_rec_t *r = &st->remembered;
        n = snprintf(out, cap,
                     "# umbra client state (docs/CONFIG.md); rewritten by the client\n"
                     "umbra-state 1\nremembered %s %s %s %s %llu\n",
                     r->server, r->key_fp, r->address, r->transport, (unsigned long long)r->at_s);
    } else {
        n = snprintf(out, cap,
                     "# umbra client state (docs/CONFIG.md); rewritten by the client\n"
                     "umbra-state 1\n");
    }
    if (n < 0 || (size_t)n >= cap) return UM_ENOSPC;
    *outn = (size_t)n;
    return 0;
}

void um_dialstate_key_fp(const uint8_t pub[32], char out[UM_DIALSTATE_FP_LEN + 1])
{
    uint8_t h[UM_DIALSTATE_FP_LEN / 2];
    crypto_generichash(h, sizeof(h), pub, 32, NULL, 0);
    sodium_bin2hex(out, UM_DIALSTATE_FP_LEN + 1, h, sizeof(h));
}

int um_dialstate_default_path(char *out, size_t cap)
{
    const char *x = getenv("XDG_STATE_HOME"), *h = getenv("HOME");
    int n;
    if (x && x[0] == '/')
        n = snprintf(out, cap, "%s/umbra/state", x);
    else if (h && h[0] == '/')
        n = snprintf(out, cap, "%s/.local/state/umbra/state", h);
    else
        return UM_ENOENT;
    return n < 0 || (size_t)n >= cap ? UM_ENOSPC : 0;
}

int um_dialstate_load(const char *path, um_dialstate_t *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return UM_ENOENT;
        snprintf(err, errlen, "%s", strerror(errno));
        return UM_EIO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return UM_EINVAL;
    }
    char *buf = malloc(UM_DIALSTATE_MAX + 1);
    if (!buf) {
        close(fd);
        return UM_ENOMEM;
    }
    size_t got = 0;
    int r = 0;
    while (got <= UM_DIALSTATE_MAX) {
        ssize_t k = read(fd, buf + got, UM_DIALSTATE_MAX + 1 - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            r = UM_EIO;
            break;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (r == 0 && got > UM_DIALSTATE_MAX) {
        snprintf(err, errlen, "longer than %d bytes", UM_DIALSTATE_MAX);
        r = UM_EINVAL;
    }
    if (r == 0) r = um_dialstate_parse(st, buf, got, err, errlen);
    free(buf);
    return r;
}

/* mkdir -p with mode 0700 for every directory made. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char p[UM_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(p)) return 0;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char keep = p[i];
        p[i] = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            return UM_EIO;
        }
        p[i] = keep;
    }
    return 0;
}

int um_dialstate_save(const char *path, const um_dialstate_t *st, char *err, size_t errlen)
{
    char text[2048], tmp[UM_PATH_MAX + 16], dir[UM_PATH_MAX];
    size_t n;
    int r = um_dialstate_format(st, text, sizeof(text), &n);
    if (r != 0) {
        snprintf(err, errlen, "cannot write this state: %s", um_strerror(r));
        return r;
    }
    size_t pl = strlen(path);
    const char *slash = strrchr(path, '/');
    if (pl == 0 || pl >= UM_PATH_MAX || (slash && slash[1] == 0)) {
        snprintf(err, errlen, "bad file name");
        return UM_EINVAL;
    }
    if (slash) {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, dl);
        dir[dl] = 0;
        snprintf(tmp, sizeof(tmp), "%.*s/.state.XXXXXX", (int)(slash - path), path);
        if ((r = make_dirs(dir, err, errlen)) != 0) return r;
    } else {
        snprintf(tmp, sizeof(tmp), ".state.XXXXXX");
    }
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file next to it: %s", strerror(errno));
        return UM_EIO;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(fd, text + off, n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        off += (size_t)k;
    }
    bool good = off == n && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && good) {
        good = false;
        saved = errno;
    }
    if (good && rename(tmp, path) != 0) {
        good = false;
        saved = errno;
    }
    if (!good) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write: %s", strerror(saved));
        return UM_EIO;
    }
    return 0;
}
