#include "transport/ws_http.h"

#include <openssl/sha.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/b64.h"
#include "util/err.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

static bool span_ieq(const uint8_t *p, size_t n, const char *s)
{
    size_t sn = strlen(s);
    if (n != sn) return false;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != lower((uint8_t)s[i])) return false;
    return true;
}

/* One line of p[at..n): its end (before CRLF or LF) and the next line's
 * start; false when no line end is there yet. */
static bool line(const uint8_t *p, size_t n, size_t at, size_t *end, size_t *next)
{
    if (at >= n) return false; /* nothing (p may be NULL) */
    const uint8_t *nl = memchr(p + at, '\n', n - at);
    if (!nl) return false;
    size_t e = (size_t)(nl - p);
    *next = e + 1;
    if (e > at && p[e - 1] == '\r') e--;
    *end = e;
    return true;
}

static int start_line(const uint8_t *p, size_t e, um_ws_head_t *h)
{
    static const char ver[] = "HTTP/1.";
    size_t i = 0;
    if (e >= 12 && memcmp(p, ver, 7) == 0) { /* HTTP/1.x NNN reason */
        if (p[7] < '0' || p[7] > '9' || p[8] != ' ') return UM_EPROTO;
        h->minor = (unsigned)(p[7] - '0');
        unsigned st = 0;
        for (i = 9; i < 12; i++) {
            if (p[i] < '0' || p[i] > '9') return UM_EPROTO;
            st = st * 10 + (unsigned)(p[i] - '0');
        }
        if (st < 100 || (e > 12 && p[12] != ' ')) return UM_EPROTO;
        h->status = st;
        return 0;
    }
    while (i < e && is_tchar(p[i]))
        i++;
    /* A method of at most 32 characters, as could_begin allows. */
    if (i == 0 || i > 32 || i >= e || p[i] != ' ') return UM_EPROTO;
    h->is_request = true;
    h->method = (um_ws_span_t){p, i};
    size_t t0 = ++i;
    while (i < e && p[i] > ' ' && p[i] < 0x7f)
        i++;
    if (i == t0 || i >= e || p[i] != ' ') return UM_EPROTO;
    h->target = (um_ws_span_t){p + t0, i - t0};
    i++;
    if (e - i != 8 || memcmp(p + i, ver, 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9')
        return UM_EPROTO;
    h->minor = (unsigned)(p[i + 7] - '0');
    return 0;
}

/* Whether p[0..n), with no line end yet, can still begin a head. */
static bool could_begin(const uint8_t *p, size_t n)
{
    static const char ver[] = "HTTP/1.";
    size_t m = n < 7 ? n : 7;
    if (memcmp(p, ver, m) == 0) return true;
    size_t i = 0;
    while (i < n && is_tchar(p[i]))
        i++;
    return i > 0 && i <= 32 && (i == n || p[i] == ' ');
}

int um_ws_head_parse(const uint8_t *p, size_t n, um_ws_head_t *h)
{
    size_t e = 0, next = 0;
    memset(h, 0, sizeof(*h));
    size_t lim = n > UM_WS_HEAD_MAX ? UM_WS_HEAD_MAX : n; /* look no further than the bound */
    if (!line(p, lim, 0, &e, &next)) {
        if (lim == UM_WS_HEAD_MAX) return UM_EPROTO;
        return lim == 0 || could_begin(p, lim) ? UM_EAGAIN : UM_EPROTO;
    }
    int r = start_line(p, e, h);
    if (r) return r;
    size_t at = next;
    for (;;) {
        if (!line(p, lim, at, &e, &next)) {
            if (lim == UM_WS_HEAD_MAX) return UM_EPROTO;
            /* A field line so far: name characters, then a colon. */
            for (size_t i = at; i < lim && p[i] != ':'; i++)
                if (!is_tchar(p[i]) && !(p[i] == '\r' && i + 1 == lim)) return UM_EPROTO;
            return UM_EAGAIN;
        }
        if (e == at) { /* the empty line */
            h->len = next;
            return 0;
        }
        if (h->n_fields == UM_WS_FIELDS_MAX) return UM_EPROTO;
        size_t c = at;
        while (c < e && is_tchar(p[c]))
            c++;
        if (c == at || c >= e || p[c] != ':') return UM_EPROTO;
        size_t v0 = c + 1, v1 = e;
        while (v0 < v1 && (p[v0] == ' ' || p[v0] == '\t'))
            v0++;
        while (v1 > v0 && (p[v1 - 1] == ' ' || p[v1 - 1] == '\t'))
            v1--;
        for (size_t i = v0; i < v1; i++)
            if ((p[i] < ' ' && p[i] != '\t') || p[i] == 0x7f) return UM_EPROTO;
        h->name[h->n_fields] = (um_ws_span_t){p + at, c - at};
        h->value[h->n_fields] = (um_ws_span_t){p + v0, v1 - v0};
        h->n_fields++;
        at = next;
    }
}

const um_ws_span_t *um_ws_field(const um_ws_head_t *h, const char *name)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (span_ieq(h->name[i].p, h->name[i].n, name)) return &h->value[i];
    return NULL;
}

bool um_ws_field_has(const um_ws_head_t *h, const char *name, const char *tok)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (!span_ieq(h->name[i].p, h->name[i].n, name)) continue;
        const uint8_t *v = h->value[i].p;
        size_t n = h->value[i].n, a = 0;
        while (a < n) {
            size_t b = a;
            while (b < n && v[b] != ',')
                b++;
            size_t s = a, t = b;
            while (s < t && (v[s] == ' ' || v[s] == '\t'))
                s++;
            while (t > s && (v[t - 1] == ' ' || v[t - 1] == '\t'))
                t--;
            if (span_ieq(v + s, t - s, tok)) return true;
            a = b + 1;
        }
    }
    return false;
}

void um_ws_accept(const char key[UM_WS_KEY_LEN], char out[UM_WS_ACCEPT_LEN + 1])
{
    uint8_t in[UM_WS_KEY_LEN + sizeof(ws_guid) - 1], md[SHA_DIGEST_LENGTH];
    memcpy(in, key, UM_WS_KEY_LEN);
    memcpy(in + UM_WS_KEY_LEN, ws_guid, sizeof(ws_guid) - 1);
    SHA1(in, sizeof(in), md);
    um_b64_encode(out, UM_WS_ACCEPT_LEN + 1, md, sizeof(md), UM_B64_STD);
}

/* The name of "Name: value" (up to the colon) is n. */
static bool name_is(const char *line, size_t n, const char *s)
{
    return span_ieq((const uint8_t *)line, n, s);
}

static size_t xhdr_name_len(const char *line)
{
    const char *c = strchr(line, ':');
    return c ? (size_t)(c - line) : strlen(line);
}

int um_ws_xhdr_check(const char *line, char *why, size_t whylen)
{
    const char *w = NULL;
    size_t n = line ? strlen(line) : 0, nl = line ? xhdr_name_len(line) : 0;
    if (n == 0 || n > UM_WS_XHDR_LEN) {
        w = "empty or longer than 256 characters";
    } else if (nl == n || nl == 0) {
        w = "no field name before a ':'";
    } else {
        for (size_t i = 0; i < nl && !w; i++)
            if (!is_tchar((uint8_t)line[i])) w = "the field name is not an HTTP token";
        for (size_t i = nl + 1; i < n && !w; i++) {
            uint8_t c = (uint8_t)line[i];
            if (c == '\r' || c == '\n' || c == 0x7f || (c < 0x20 && c != '\t'))
                w = "the value holds a control character";
        }
        if (!w && (name_is(line, nl, "host") || name_is(line, nl, "upgrade") ||
                   name_is(line, nl, "connection") || name_is(line, nl, "content-length") ||
                   name_is(line, nl, "transfer-encoding") ||
                   (nl >= 14 && span_ieq((const uint8_t *)line, 14, "sec-websocket-"))))
            w = "umbra sets this field itself";
    }
    if (w && why && whylen) snprintf(why, whylen, "%s", w);
    return w ? UM_EINVAL : 0;
}

/* The value of "Name: value", without the blanks around it. */
static void xhdr_value(const char *line, const char **v, size_t *vn)
{
    const char *p = line + xhdr_name_len(line) + 1, *e = line + strlen(line);
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *v = p;
    *vn = (size_t)(e - p);
}

typedef struct {
    char *out;
    size_t cap, n;
    int err;
} wb_t;

static void wb_put(wb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wb_put(wb_t *b, const char *fmt, ...)
{
    if (b->err) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->out + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->n)
        b->err = UM_ENOSPC;
    else
        b->n += (size_t)n;
}

/* Whether an extra field replaces the default field `name`. */
static bool overridden(const um_ws_req_t *q, const char *name)
{
    for (size_t i = 0; i < q->n_extra; i++)
        if (name_is(q->extra[i], xhdr_name_len(q->extra[i]), name)) return true;
    return false;
}

int um_ws_req_build(const um_ws_req_t *q, char *out, size_t cap, size_t *outn)
{
    /* A current Chromium's upgrade request, field for field, minus the
     * permessage-deflate offer (we would have to decline it). An extra
     * field of the same name as a default one (User-Agent, Origin, ...)
     * replaces it; the extra fields follow the standard ones, in order. */
    static const char *const dflt[][2] = {
        {"Pragma", "no-cache"},
        {"Cache-Control", "no-cache"},
        {"User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
                       "like Gecko) Chrome/131.0.0.0 Safari/537.36"},
        {"Upgrade", "websocket"},
        {"Origin", NULL},
        {"Sec-WebSocket-Version", "13"},
        {"Accept-Encoding", "gzip, deflate, br, zstd"},
        {"Accept-Language", "en-US,en;q=0.9"},
    };
    wb_t b = {.out = out, .cap = cap};
    for (size_t i = 0; i < q->n_extra; i++)
        if (um_ws_xhdr_check(q->extra[i], NULL, 0) != 0) return UM_EINVAL;
    if (cap == 0) return UM_ENOSPC;
    wb_put(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n", q->path, q->host);
    for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++) {
        if (overridden(q, dflt[i][0])) continue;
        if (dflt[i][1])
            wb_put(&b, "%s: %s\r\n", dflt[i][0], dflt[i][1]);
        else
            wb_put(&b, "%s: https://%s\r\n", dflt[i][0], q->host);
    }
    wb_put(&b, "Sec-WebSocket-Key: %s\r\n", q->key);
    if (q->protocol) wb_put(&b, "Sec-WebSocket-Protocol: %s\r\n", q->protocol);
    for (size_t i = 0; i < q->n_extra; i++) {
        const char *v;
        size_t vn;
        xhdr_value(q->extra[i], &v, &vn);
        wb_put(&b, "%.*s: %.*s\r\n", (int)xhdr_name_len(q->extra[i]), q->extra[i], (int)vn, v);
    }
    wb_put(&b, "\r\n");
    if (b.err) return b.err;
    *outn = b.n;
    return 0;
}

static bool key_ok(const um_ws_span_t *k)
{
    uint8_t raw[18];
    size_t rn = 0;
    return k && k->n == UM_WS_KEY_LEN &&
           um_b64_decode(raw, sizeof(raw), &rn, (const char *)k->p, k->n, UM_B64_STD) == 0 &&
           rn == 16;
}

int um_ws_req_check(const um_ws_head_t *h, const char *path, char key[UM_WS_KEY_LEN + 1],
                    um_ws_span_t *protocol)
{
    if (!h->is_request || h->minor < 1 || !span_ieq(h->method.p, h->method.n, "GET"))
        return UM_EPROTO;
    size_t pl = strlen(path);
    if (h->target.n != pl || memcmp(h->target.p, path, pl) != 0) return UM_EPROTO;
    if (!um_ws_field_has(h, "upgrade", "websocket") || !um_ws_field_has(h, "connection", "upgrade"))
        return UM_EPROTO;
    const um_ws_span_t *v = um_ws_field(h, "sec-websocket-version");
    const um_ws_span_t *k = um_ws_field(h, "sec-websocket-key");
    const um_ws_span_t *pr = um_ws_field(h, "sec-websocket-protocol");
    if (!v || v->n != 2 || memcmp(v->p, "13", 2) != 0 || !key_ok(k) || !pr) return UM_EPROTO;
    memcpy(key, k->p, UM_WS_KEY_LEN);
    key[UM_WS_KEY_LEN] = '\0';
    *protocol = *pr;
    return 0;
}

int um_ws_resp_build(const char key[UM_WS_KEY_LEN + 1], char *out, size_t cap, size_t *outn)
{
    char acc[UM_WS_ACCEPT_LEN + 1];
    um_ws_accept(key, acc);
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "\r\n",
                     acc);
    if (n < 0 || (size_t)n >= cap) return UM_ENOSPC;
    *outn = (size_t)n;
    return 0;
}

int um_ws_resp_check(const um_ws_head_t *h, const char key[UM_WS_KEY_LEN + 1])
{
    char acc[UM_WS_ACCEPT_LEN + 1];
    if (h->is_request || h->status != 101) return UM_EPROTO;
    if (!um_ws_field_has(h, "upgrade", "websocket") || !um_ws_field_has(h, "connection", "upgrade"))
        return UM_EPROTO;
    const um_ws_span_t *a = um_ws_field(h, "sec-websocket-accept");
    um_ws_accept(key, acc);
    if (!a || a->n != UM_WS_ACCEPT_LEN || sodium_memcmp(a->p, acc, UM_WS_ACCEPT_LEN) != 0)
        return UM_EPROTO;
    return 0;
}

size_t um_ws_not_found(char *out, size_t cap)
{
    static const char nf[] = "HTTP/1.1 404 Not Found\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 10\r\n"
                             "Connection: close\r\n"
                             "\r\n"
                             "Not Found\n";
    if (cap < sizeof(nf) - 1) return 0;
    memcpy(out, nf, sizeof(nf) - 1);
    return sizeof(nf) - 1;
}
