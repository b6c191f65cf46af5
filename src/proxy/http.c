/* HTTP/1.1 proxy codec. RFC 9112 (message syntax and framing), RFC 9110
 * (semantics: CONNECT, hop-by-hop fields, status codes). */
#include "proxy/http.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/b64.h"
#include "util/err.h"

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    return an == bn && strncasecmp(a, b, an) == 0;
}

/* Finds the end of the head: the offset just past CRLFCRLF, or 0. */
static size_t head_end(const uint8_t *p, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') return i + 1;
    return 0;
}

/* Lines of a head: [p, end) ending in CRLF. Returns the line length without
 * CRLF and advances *off; -1 when a line has a bare CR or LF. */
static long next_line(const uint8_t *p, size_t end, size_t *off)
{
    size_t s = *off;
    for (size_t i = s; i + 1 < end; i++) {
        if (p[i] == '\r') {
            if (p[i + 1] != '\n') return -1;
            *off = i + 2;
            return (long)(i - s);
        }
        if (p[i] == '\n' || p[i] == 0) return -1;
    }
    return -1;
}

static const char *const hop_by_hop[] = {"connection",
                                         "proxy-connection",
                                         "keep-alive",
                                         "proxy-authorization",
                                         "proxy-authenticate",
                                         "te",
                                         "trailer",
                                         "upgrade",
                                         NULL};

/* Does the comma-separated token list v contain tok (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *tok, size_t tn)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tn && strncasecmp(v + s, tok, tn) == 0) return true;
    }
    return false;
}

static bool last_coding_chunked(const char *v, size_t n)
{
    size_t e = n;
    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    size_t s = e;
    while (s > 0 && v[s - 1] != ',')
        s--;
    while (s < e && (v[s] == ' ' || v[s] == '\t'))
        s++;
    return ieq(v + s, e - s, "chunked");
}

/* Parses header lines from *off up to end; fills h/nh. Returns 0 or UM_EPROTO
 * (with *why). */
static int parse_headers(const uint8_t *p, size_t end, size_t off, um_http_header_t *h, size_t *nh,
                         const char **why)
{
    *nh = 0;
    for (;;) {
        long len = next_line(p, end, &off);
        if (len < 0) {
            *why = "bare CR or LF in header";
            return UM_EPROTO;
        }
        if (len == 0) return 0; /* the empty line ending the head */
        const char *line = (const char *)p + off - (size_t)len - 2;
        if (line[0] == ' ' || line[0] == '\t') {
            *why = "obsolete line folding";
            return UM_EPROTO;
        }
        size_t colon = 0;
        while (colon < (size_t)len && is_tchar((uint8_t)line[colon]))
            colon++;
        if (colon == 0 || colon >= (size_t)len || line[colon] != ':') {
            *why = "malformed header field";
            return UM_EPROTO;
        }
        if (*nh == UM_HTTP_HEADERS_MAX) {
            *why = "too many header fields";
            return UM_EPROTO;
        }
        size_t vs = colon + 1, ve = (size_t)len;
        while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
            vs++;
        while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
            ve--;
        for (size_t i = vs; i < ve; i++) {
            uint8_t c = (uint8_t)line[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                *why = "control character in header value";
                return UM_EPROTO;
            }
        }
        h[*nh].name = line;
        h[*nh].name_len = colon;
        h[*nh].value = line + vs;
        h[*nh].value_len = ve - vs;
        (*nh)++;
    }
}

const um_http_header_t *um_http_header_find(const um_http_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (ieq(h[i].name, h[i].name_len, name)) return &h[i];
    return NULL;
}

/* Content-Length and Transfer-Encoding; shared by requests and responses.
 * Returns 0, or UM_EPROTO with *why. *te_other: TE present, last coding not
 * chunked. */
static int parse_framing(const um_http_header_t *h, size_t nh, bool *has_cl, uint64_t *cl,
                         bool *chunked, bool *te_other, const char **why)
{
    *has_cl = *chunked = *te_other = false;
    *cl = 0;
    for (size_t i = 0; i < nh; i++) {
        if (ieq(h[i].name, h[i].name_len, "content-length")) {
            uint64_t v = 0;
            if (h[i].value_len == 0 || h[i].value_len > 15) {
                *why = "bad Content-Length";
                return UM_EPROTO;
            }
            for (size_t k = 0; k < h[i].value_len; k++) {
                char c = h[i].value[k];
                if (c < '0' || c > '9') {
                    *why = "bad Content-Length";
                    return UM_EPROTO;
                }
                v = v * 10 + (uint64_t)(c - '0');
            }
            if (*has_cl && v != *cl) {
                *why = "conflicting Content-Length";
                return UM_EPROTO;
            }
            *has_cl = true;
            *cl = v;
        } else if (ieq(h[i].name, h[i].name_len, "transfer-encoding")) {
            if (last_coding_chunked(h[i].value, h[i].value_len)) {
                *chunked = true;
                *te_other = false;
            } else {
                *chunked = false;
                *te_other = true;
            }
        }
    }
    return 0;
}

static int req_fail(um_http_request_t *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return UM_EPROTO;
}

/* http://authority[/path] (scheme case-insensitive). */
static int parse_absolute(um_http_request_t *r, const char *t, size_t n)
{
    if (n < 7 || strncasecmp(t, "http://", 7) != 0) {
        if (n > 0 && t[0] == '/')
            return req_fail(r, 400, "origin-form request: this is a proxy, use an absolute URI");
        return req_fail(r, 400, "only http:// absolute URIs are proxied (use CONNECT for TLS)");
    }
    t += 7;
    n -= 7;
    size_t a = 0;
    while (a < n && t[a] != '/' && t[a] != '?' && t[a] != '#')
        a++;
    if (memchr(t, '@', a)) return req_fail(r, 400, "user information in URI");
    char err[64];
    if (a == 0 || um_addr_parse(&r->dst, t, a, 80, err, sizeof(err)) != 0)
        return req_fail(r, 400, "bad host in URI");
    r->path = t + a;
    r->path_len = n - a;
    const char *hash = memchr(r->path, '#', r->path_len);
    if (hash) r->path_len = (size_t)(hash - r->path);
    return 0;
}

int um_http_request_parse(const uint8_t *p, size_t n, um_http_request_t *r)
{
    memset(r, 0, sizeof(*r));
    size_t start = 0;
    /* RFC 9112 2.2: ignore at least one empty line before the request line. */
    while (start + 1 < n && start < 4 && p[start] == '\r' && p[start + 1] == '\n')
        start += 2;
    /* Reject garbage early rather than waiting for a head that never comes. */
    size_t i = start;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i < n && (p[i] != ' ' || i == start)) return req_fail(r, 400, "malformed request line");
    if (i - start > 32) return req_fail(r, 501, "method name too long");

    size_t end = head_end(p, n < UM_HTTP_HEAD_MAX ? n : UM_HTTP_HEAD_MAX);
    if (end == 0) {
        if (n >= UM_HTTP_HEAD_MAX) return req_fail(r, 400, "request head too large");
        return UM_EAGAIN;
    }
    size_t off = start;
    long len = next_line(p, end, &off);
    if (len <= 0) return req_fail(r, 400, "malformed request line");
    const char *line = (const char *)p + start;
    const char *sp1 = memchr(line, ' ', (size_t)len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)len - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp2 == sp1 + 1) return req_fail(r, 400, "malformed request line");
    const char *ver = sp2 + 1;
    size_t verlen = (size_t)len - (size_t)(ver - line);
    if (verlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
        return req_fail(r, 400, "unsupported HTTP version");
    r->minor = (uint8_t)(ver[7] - '0');
    r->method = line;
    r->method_len = (size_t)(sp1 - line);
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    for (size_t k = 0; k < tlen; k++)
        if ((uint8_t)target[k] <= 0x20 || (uint8_t)target[k] >= 0x7f)
            return req_fail(r, 400, "bad character in request target");

    int rc = parse_headers(p, end, off, r->headers, &r->nheaders, &r->why);
    if (rc != 0) return req_fail(r, 400, r->why);

    if (ieq(r->method, r->method_len, "CONNECT")) {
        char err[64];
        r->is_connect = true;
        if (um_addr_parse(&r->dst, target, tlen, 0, err, sizeof(err)) != 0)
            return req_fail(r, 400, "CONNECT needs host:port");
    } else {
        if (ieq(r->method, r->method_len, "TRACE") || ieq(r->method, r->method_len, "TRACK"))
            return req_fail(r, 405, "TRACE is not proxied");
        if ((rc = parse_absolute(r, target, tlen)) != 0) return rc;
        r->is_head = ieq(r->method, r->method_len, "HEAD");
    }

    bool has_cl, chunked, te_other;
    if (parse_framing(r->headers, r->nheaders, &has_cl, &r->content_length, &chunked, &te_other,
                      &r->why) != 0)
        return req_fail(r, 400, r->why);
    if (te_other) return req_fail(r, 501, "unsupported Transfer-Encoding");
    if (chunked && has_cl) return req_fail(r, 400, "both Transfer-Encoding and Content-Length");
    if (chunked && r->minor == 0) return req_fail(r, 400, "Transfer-Encoding in HTTP/1.0");
    if (r->is_connect) {
        r->framing = UM_HTTP_BODY_NONE;
        r->content_length = 0;
    } else if (chunked) {
        r->framing = UM_HTTP_BODY_CHUNKED;
    } else if (has_cl && r->content_length > 0) {
        r->framing = UM_HTTP_BODY_LENGTH;
    }

    r->keep_alive = r->minor == 1;
    for (size_t k = 0; k < r->nheaders; k++) {
        const um_http_header_t *h = &r->headers[k];
        if (ieq(h->name, h->name_len, "host")) {
            /* RFC 9112 3.2: more than one Host field line is a 400. */
            if (r->has_host) return req_fail(r, 400, "duplicate Host header");
            r->has_host = true;
        }
        if (ieq(h->name, h->name_len, "connection") ||
            ieq(h->name, h->name_len, "proxy-connection")) {
            if (list_has(h->value, h->value_len, "close", 5))
                r->keep_alive = false;
            else if (list_has(h->value, h->value_len, "keep-alive", 10))
                r->keep_alive = true;
        }
    }
    r->head_len = end;
    return 0;
}

int um_http_response_parse(const uint8_t *p, size_t n, bool head_request, um_http_response_t *r)
{
    memset(r, 0, sizeof(*r));
    /* "HTTP/1.x " must come first; check what we have so far. */
    static const char pre[] = "HTTP/1.";
    for (size_t i = 0; i < n && i < 7; i++)
        if (p[i] != (uint8_t)pre[i]) return UM_EPROTO;
    size_t end = head_end(p, n < UM_HTTP_HEAD_MAX ? n : UM_HTTP_HEAD_MAX);
    if (end == 0) return n >= UM_HTTP_HEAD_MAX ? UM_EPROTO : UM_EAGAIN;
    size_t off = 0;
    long len = next_line(p, end, &off);
    const char *line = (const char *)p;
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (len < 12 || (line[7] != '0' && line[7] != '1') || line[8] != ' ') return UM_EPROTO;
    for (int k = 9; k < 12; k++)
        if (line[k] < '0' || line[k] > '9') return UM_EPROTO;
    if (len > 12 && line[12] != ' ') return UM_EPROTO;
    r->minor = (uint8_t)(line[7] - '0');
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (r->status < 100) return UM_EPROTO;
    r->reason = len > 12 ? line + 13 : line + 12;
    r->reason_len = len > 12 ? (size_t)len - 13 : 0;
    const char *why;
    if (parse_headers(p, end, off, r->headers, &r->nheaders, &why) != 0) return UM_EPROTO;
    bool has_cl, chunked, te_other;
    if (parse_framing(r->headers, r->nheaders, &has_cl, &r->content_length, &chunked, &te_other,
                      &why) != 0)
        return UM_EPROTO;
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304) {
        r->framing = UM_HTTP_BODY_NONE;
    } else if (chunked) {
        r->framing = UM_HTTP_BODY_CHUNKED;
    } else if (te_other) {
        r->framing = UM_HTTP_BODY_EOF;
    } else if (has_cl) {
        r->framing = r->content_length ? UM_HTTP_BODY_LENGTH : UM_HTTP_BODY_NONE;
    } else {
        r->framing = UM_HTTP_BODY_EOF;
    }
    if (chunked || te_other) r->content_length = 0;
    /* RFC 9112 6.3 (3): Transfer-Encoding overrides Content-Length; an
     * intermediary removes Content-Length before forwarding, and the message
     * smells of smuggling: the client connection is closed after it. */
    r->close_after = has_cl && (chunked || te_other);
    r->head_len = end;
    return 0;
}

/* Hop-by-hop? Either a fixed name or one listed in a Connection header. */
static bool is_hop(const um_http_header_t *h, const um_http_header_t *all, size_t n)
{
    for (size_t i = 0; hop_by_hop[i]; i++)
        if (ieq(h->name, h->name_len, hop_by_hop[i])) return true;
    /* Framing and Host stay whatever Connection says: dropping them would
     * desynchronise the message boundaries we rely on (found by fuzzing). */
    if (ieq(h->name, h->name_len, "content-length") ||
        ieq(h->name, h->name_len, "transfer-encoding") || ieq(h->name, h->name_len, "host"))
        return false;
    for (size_t i = 0; i < n; i++)
        if (ieq(all[i].name, all[i].name_len, "connection") &&
            list_has(all[i].value, all[i].value_len, h->name, h->name_len))
            return true;
    return false;
}

typedef struct {
    uint8_t *p;
    size_t cap, len;
    bool bad;
} wr_t;

static void put(wr_t *w, const void *s, size_t n)
{
    if (w->bad || w->cap - w->len < n) {
        w->bad = true;
        return;
    }
    if (n) memcpy(w->p + w->len, s, n); /* s may be NULL for an empty field */
    w->len += n;
}

static void puts_(wr_t *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Copies the header lines, without hop-by-hop ones (strip) and without any
 * named skip (NULL: none). */
static void put_headers(wr_t *w, const um_http_header_t *h, size_t n, bool strip, const char *skip)
{
    for (size_t i = 0; i < n; i++) {
        if (strip && is_hop(&h[i], h, n)) continue;
        if (skip && ieq(h[i].name, h[i].name_len, skip)) continue;
        put(w, h[i].name, h[i].name_len);
        puts_(w, ": ");
        put(w, h[i].value, h[i].value_len);
        puts_(w, "\r\n");
    }
}

size_t um_http_request_rewrite(const um_http_request_t *r, uint8_t *out, size_t cap)
{
    wr_t w = {out, cap, 0, false};
    put(&w, r->method, r->method_len);
    puts_(&w, " ");
    if (r->path_len == 0 || r->path[0] != '/') puts_(&w, "/");
    put(&w, r->path, r->path_len);
    puts_(&w, " HTTP/1.1\r\n");
    /* RFC 9112 3.2.2: a proxy ignores the Host it received with an
     * absolute-form target and sends the target's host instead. */
    {
        char a[UM_ADDR_STRLEN];
        um_addr_t d = r->dst;
        size_t n = um_addr_format(&d, a, sizeof(a));
        /* Drop the default port (":80") as browsers do. */
        if (d.port == 80 && n > 3) n -= 3;
        puts_(&w, "Host: ");
        put(&w, a, n);
        puts_(&w, "\r\n");
    }
    put_headers(&w, r->headers, r->nheaders, true, "host");
    puts_(&w, "Connection: close\r\n\r\n");
    return w.bad ? 0 : w.len;
}

size_t um_http_response_rewrite(const um_http_response_t *r, const uint8_t *head, bool keep_alive,
                                uint8_t *out, size_t cap)
{
    wr_t w = {out, cap, 0, false};
    if (r->status == 101) {
        put(&w, head, r->head_len);
        return w.bad ? 0 : w.len;
    }
    char sl[16];
    snprintf(sl, sizeof(sl), "HTTP/1.1 %03d", r->status);
    puts_(&w, sl);
    if (r->reason_len) {
        puts_(&w, " ");
        put(&w, r->reason, r->reason_len);
    } else {
        puts_(&w, " ");
    }
    puts_(&w, "\r\n");
    put_headers(&w, r->headers, r->nheaders, true, r->close_after ? "content-length" : NULL);
    if (r->status >= 200)
        puts_(&w, keep_alive && !r->close_after ? "Connection: keep-alive\r\n"
                                                : "Connection: close\r\n");
    puts_(&w, "\r\n");
    return w.bad ? 0 : w.len;
}

enum {
    B_SIZE,
    B_EXT,
    B_SIZE_LF,
    B_DATA,
    B_DATA_CR,
    B_DATA_LF,
    B_TRAILER_BOL,
    B_TRAILER,
    B_FINAL_LF,
    B_DONE,
};

#define CHUNK_LINE_MAX 1024
#define TRAILERS_MAX   64

void um_http_body_init(um_http_body_t *b, um_http_framing_t f, uint64_t content_length)
{
    memset(b, 0, sizeof(*b));
    b->framing = (uint8_t)f;
    b->left = content_length;
    if (f == UM_HTTP_BODY_NONE || (f == UM_HTTP_BODY_LENGTH && content_length == 0))
        b->state = B_DONE;
    else
        b->state = f == UM_HTTP_BODY_CHUNKED ? B_SIZE : B_DATA;
}

bool um_http_body_done(const um_http_body_t *b)
{
    return b->state == B_DONE;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int um_http_body_feed(um_http_body_t *b, const uint8_t *p, size_t n, size_t *used)
{
    size_t i = 0;
    *used = 0;
    if (b->state == B_DONE) return 1;
    if (b->framing == UM_HTTP_BODY_EOF) {
        *used = n;
        return 0;
    }
    if (b->framing == UM_HTTP_BODY_LENGTH) {
        size_t take = (uint64_t)n < b->left ? n : (size_t)b->left;
        b->left -= take;
        *used = take;
        if (b->left == 0) b->state = B_DONE;
        return b->state == B_DONE;
    }
    while (i < n && b->state != B_DONE) {
        uint8_t c = p[i];
        switch (b->state) {
        case B_SIZE: {
            int v = hexval(c);
            if (v >= 0) {
                if (b->digits == 15) return UM_EPROTO; /* chunk size overflow */
                b->left = (b->left << 4) | (uint64_t)v;
                b->digits++;
            } else if (b->digits == 0) {
                return UM_EPROTO;
            } else if (c == ';' || c == ' ' || c == '\t') {
                b->state = B_EXT;
                b->line = 0;
            } else if (c == '\r') {
                b->state = B_SIZE_LF;
            } else {
                return UM_EPROTO;
            }
            i++;
            break;
        }
        case B_EXT:
            if (++b->line > CHUNK_LINE_MAX) return UM_EPROTO;
            if (c == '\r')
                b->state = B_SIZE_LF;
            else if (c == '\n')
                return UM_EPROTO;
            i++;
            break;
        case B_SIZE_LF:
            if (c != '\n') return UM_EPROTO;
            b->state = b->left == 0 ? B_TRAILER_BOL : B_DATA;
            i++;
            break;
        case B_DATA: {
            size_t take = (uint64_t)(n - i) < b->left ? n - i : (size_t)b->left;
            b->left -= take;
            i += take;
            if (b->left == 0) b->state = B_DATA_CR;
            break;
        }
        case B_DATA_CR:
            if (c != '\r') return UM_EPROTO;
            b->state = B_DATA_LF;
            i++;
            break;
        case B_DATA_LF:
            if (c != '\n') return UM_EPROTO;
            b->state = B_SIZE;
            b->digits = 0;
            b->left = 0;
            i++;
            break;
        case B_TRAILER_BOL:
            if (c == '\r') {
                b->state = B_FINAL_LF;
            } else {
                if (++b->trailers > TRAILERS_MAX) return UM_EPROTO;
                b->state = B_TRAILER;
                b->line = 1;
            }
            i++;
            break;
        case B_TRAILER:
            if (++b->line > CHUNK_LINE_MAX) return UM_EPROTO;
            if (c == '\n') b->state = B_TRAILER_BOL;
            i++;
            break;
        case B_FINAL_LF:
            if (c != '\n') return UM_EPROTO;
            b->state = B_DONE;
            i++;
            break;
        default: return UM_EPROTO;
        }
    }
    *used = i;
    return b->state == B_DONE;
}

const char *um_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

size_t um_http_error_build(char *out, size_t cap, int status, const char *detail, bool keep_alive)
{
    char body[256];
    int bl = snprintf(body, sizeof(body), "umbra: %d %s%s%s\n", status, um_http_reason(status),
                      detail ? ": " : "", detail ? detail : "");
    if (bl < 0) return 0;
    if ((size_t)bl >= sizeof(body)) bl = (int)sizeof(body) - 1;
    int w = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %d\r\n"
                     "%s"
                     "Connection: %s\r\n\r\n%.*s",
                     status, um_http_reason(status), bl,
                     status == 407 ? "Proxy-Authenticate: Basic realm=\"umbra\"\r\n" : "",
                     keep_alive ? "keep-alive" : "close", bl, body);
    if (w < 0 || (size_t)w >= cap) return 0;
    return (size_t)w;
}

size_t um_http_connect_ok_build(char *out, size_t cap)
{
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (cap < sizeof(ok)) return 0;
    memcpy(out, ok, sizeof(ok));
    return sizeof(ok) - 1;
}

bool um_http_proxy_auth_ok(const um_http_request_t *req, const char *user, const char *pass)
{
    const um_http_header_t *h =
        um_http_header_find(req->headers, req->nheaders, "Proxy-Authorization");
    if (!h || h->value_len < 6 || strncasecmp(h->value, "Basic", 5) != 0 ||
        (h->value[5] != ' ' && h->value[5] != '\t'))
        return false;
    const char *v = h->value + 6;
    size_t vn = h->value_len - 6;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    size_t ul = strlen(user), pl = strlen(pass);
    uint8_t got[UM_HTTP_CRED_MAX * 2 + 1], want[sizeof(got)];
    size_t gl = 0;
    bool ok = ul <= UM_HTTP_CRED_MAX && pl <= UM_HTTP_CRED_MAX &&
              um_b64_decode(got, sizeof(got), &gl, v, vn, UM_B64_STD) == 0;
    if (ok) {
        memcpy(want, user, ul);
        want[ul] = ':';
        memcpy(want + ul + 1, pass, pl);
        /* Lengths may differ in time; the bytes are compared in constant time. */
        ok = gl == ul + 1 + pl && sodium_memcmp(got, want, gl) == 0;
    }
    sodium_memzero(got, sizeof(got));
    sodium_memzero(want, sizeof(want));
    return ok;
}
