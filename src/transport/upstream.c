#include "transport/upstream.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/b64.h"
#include "util/err.h"

enum {
    P_NONE = 0,
    P_S_METHOD,  /* socks5: sent the greeting, want the method */
    P_S_AUTH,    /* socks5: sent user/password, want its verdict */
    P_S_CONNECT, /* socks5: sent CONNECT, want the reply */
    P_H_REPLY,   /* http: sent CONNECT, want the status and headers */
    P_DONE,
    P_FAIL,
};

static int fail(um_upstream_t *u, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(um_upstream_t *u, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->reason, sizeof(u->reason), fmt, ap);
    va_end(ap);
    u->phase = P_FAIL;
    return r;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated); 1..CRED_MAX bytes, no NUL. */
static int decode_cred(char *out, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return UM_EINVAL;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return UM_EINVAL;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || k == UM_UPSTREAM_CRED_MAX) return UM_EINVAL;
        out[k++] = (char)c;
    }
    out[k] = 0;
    return k ? 0 : UM_EINVAL;
}

static int why_set(char *why, size_t whylen, const char *msg)
{
    if (why && whylen) snprintf(why, whylen, "%s", msg);
    return UM_EINVAL;
}

int um_upstream_parse(um_upstream_cfg_t *u, const char *s, size_t n, char *why, size_t whylen)
{
    memset(u, 0, sizeof(*u));
    size_t skip;
    if (n >= 9 && memcmp(s, "socks5://", 9) == 0) {
        u->kind = UM_UPSTREAM_SOCKS5;
        skip = 9;
    } else if (n >= 7 && memcmp(s, "http://", 7) == 0) {
        u->kind = UM_UPSTREAM_HTTP;
        skip = 7;
    } else {
        return why_set(why, whylen,
                       "expected socks5://[user:pass@]host:port or "
                       "http://[user:pass@]host:port");
    }
    s += skip;
    n -= skip;
    if (n && s[n - 1] == '/') n--; /* "http://host:port/" */
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@') at = s + i; /* the last one: the host has none */
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon || decode_cred(u->user, s, (size_t)(colon - s)) != 0 ||
            decode_cred(u->pass, colon + 1, (size_t)(at - colon - 1)) != 0) {
            um_upstream_cfg_wipe(u);
            return why_set(why, whylen,
                           "bad credentials: expected user:password@ (1 to 255 characters each, "
                           "percent-encoded)");
        }
        n -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    char aw[128];
    if (um_addr_parse(&u->proxy, s, n, 0, aw, sizeof(aw)) != 0) {
        um_upstream_cfg_wipe(u);
        char m[200];
        snprintf(m, sizeof(m), "proxy address: %s", aw);
        return why_set(why, whylen, m);
    }
    if (u->proxy.type == UM_ADDR_DOMAIN) {
        um_upstream_cfg_wipe(u);
        return why_set(why, whylen, "proxy address: expected an IP address and port");
    }
    return 0;
}

size_t um_upstream_format(const um_upstream_cfg_t *u, char *out, size_t cap)
{
    char a[UM_ADDR_STRLEN];
    um_addr_format(&u->proxy, a, sizeof(a));
    int k = snprintf(out, cap, "%s://%s", u->kind == UM_UPSTREAM_HTTP ? "http" : "socks5", a);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap ? cap - 1 : 0;
}

void um_upstream_cfg_wipe(um_upstream_cfg_t *u)
{
    sodium_memzero(u, sizeof(*u));
}

const char *um_upstream_reason(const um_upstream_t *u)
{
    return u->reason[0] ? u->reason : "no error";
}

/* SOCKS5 CONNECT request (RFC 1928 section 4). */
static int socks_connect(um_upstream_t *u, uint8_t *out, size_t cap, size_t *outn)
{
    const um_addr_t *t = &u->target;
    size_t k = 0, alen = t->type == UM_ADDR_IPV4   ? 4
                         : t->type == UM_ADDR_IPV6 ? 16
                                                   : 1u + t->domain_len;
    if (cap < 6 + alen) return UM_ENOSPC;
    out[k++] = 5;
    out[k++] = 1; /* CONNECT */
    out[k++] = 0;
    out[k++] = t->type;
    if (t->type == UM_ADDR_IPV4) {
        memcpy(out + k, t->u.v4, 4);
    } else if (t->type == UM_ADDR_IPV6) {
        memcpy(out + k, t->u.v6, 16);
    } else {
        out[k] = t->domain_len;
        memcpy(out + k + 1, t->u.domain, t->domain_len);
    }
    k += alen;
    out[k++] = (uint8_t)(t->port >> 8);
    out[k++] = (uint8_t)t->port;
    *outn = k;
    u->phase = P_S_CONNECT;
    return 0;
}

int um_upstream_start(um_upstream_t *u, const um_upstream_cfg_t *cfg, const um_addr_t *target,
                      uint8_t *out, size_t cap, size_t *outn)
{
    *outn = 0;
    if (!cfg || !target ||
        (target->type != UM_ADDR_IPV4 && target->type != UM_ADDR_IPV6 &&
         (target->type != UM_ADDR_DOMAIN || target->domain_len == 0)))
        return UM_EINVAL;
    memset(u, 0, sizeof(*u));
    u->cfg = cfg;
    u->target = *target;
    if (cfg->kind == UM_UPSTREAM_SOCKS5) {
        if (cap < 3) return UM_ENOSPC;
        out[0] = 5;
        out[1] = 1;
        out[2] = cfg->user[0] ? 2 : 0; /* user/password, or no authentication */
        *outn = 3;
        u->phase = P_S_METHOD;
        return 0;
    }
    if (cfg->kind != UM_UPSTREAM_HTTP) return UM_EINVAL;
    char hp[UM_ADDR_STRLEN], cred[2 * UM_UPSTREAM_CRED_MAX + 2];
    char b64[((2 * UM_UPSTREAM_CRED_MAX + 1) / 3 + 1) * 4 + 1];
    um_addr_format(target, hp, sizeof(hp));
    int k = snprintf((char *)out, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", hp, hp);
    if (k < 0 || (size_t)k >= cap) return UM_ENOSPC;
    if (cfg->user[0]) {
        int cn = snprintf(cred, sizeof(cred), "%s:%s", cfg->user, cfg->pass);
        int r = um_b64_encode(b64, sizeof(b64), (const uint8_t *)cred, (size_t)cn, UM_B64_STD);
        sodium_memzero(cred, sizeof(cred));
        int m = r ? -1
                  : snprintf((char *)out + k, cap - (size_t)k, "Proxy-Authorization: Basic %s\r\n",
                             b64);
        sodium_memzero(b64, sizeof(b64));
        if (m < 0 || (size_t)m >= cap - (size_t)k) {
            sodium_memzero(out, cap);
            return UM_ENOSPC;
        }
        k += m;
    }
    if ((size_t)k + 2 >= cap) {
        sodium_memzero(out, cap);
        return UM_ENOSPC;
    }
    memcpy(out + k, "\r\n", 2);
    *outn = (size_t)k + 2;
    u->phase = P_H_REPLY;
    return 0;
}

static const char *socks_rep(uint8_t rep)
{
    static const char *const t[] = {
        "succeeded",           "general failure",       "connection not allowed by ruleset",
        "network unreachable", "host unreachable",      "connection refused",
        "TTL expired",         "command not supported", "address type not supported",
    };
    return rep < sizeof(t) / sizeof(t[0]) ? t[rep] : "unknown reply code";
}

static int connect_or(um_upstream_t *u, uint8_t *out, size_t cap, size_t *outn)
{
    int r = socks_connect(u, out, cap, outn);
    return r ? r : UM_EAGAIN;
}

static int socks_input(um_upstream_t *u, const uint8_t *p, size_t n, size_t *used, uint8_t *out,
                       size_t cap, size_t *outn)
{
    const um_upstream_cfg_t *cfg = u->cfg;
    if (n >= 1 && p[0] != (u->phase == P_S_AUTH ? 1 : 5))
        return fail(u, UM_EPROTO, "not a SOCKS5 proxy (reply starts with 0x%02x)", p[0]);
    if (u->phase == P_S_METHOD) {
        if (n < 2) return UM_EAGAIN;
        *used = 2;
        if (p[1] == 0xff) return fail(u, UM_EAUTH, "proxy accepts none of our methods");
        if (p[1] == 0 && !cfg->user[0]) return connect_or(u, out, cap, outn);
        if (p[1] != 2 || !cfg->user[0])
            return fail(u, UM_EPROTO, "proxy chose a method we did not offer (0x%02x)", p[1]);
        size_t ul = strlen(cfg->user), pl = strlen(cfg->pass);
        if (cap < 3 + ul + pl) return UM_ENOSPC;
        out[0] = 1; /* RFC 1929 version */
        out[1] = (uint8_t)ul;
        memcpy(out + 2, cfg->user, ul);
        out[2 + ul] = (uint8_t)pl;
        memcpy(out + 3 + ul, cfg->pass, pl);
        *outn = 3 + ul + pl;
        u->phase = P_S_AUTH;
        return UM_EAGAIN;
    }
    if (u->phase == P_S_AUTH) {
        if (n < 2) return UM_EAGAIN;
        *used = 2;
        if (p[1] != 0) return fail(u, UM_EAUTH, "proxy refused the user name and password");
        return connect_or(u, out, cap, outn);
    }
    /* P_S_CONNECT: VER REP RSV ATYP BND.ADDR BND.PORT */
    if (n < 2) return UM_EAGAIN;
    if (p[1] != 0) {
        *used = n < 10 ? n : 10;
        return fail(u, p[1] == 2 ? UM_EACCES : UM_EPROTO, "proxy: %s", socks_rep(p[1]));
    }
    if (n < 5) return UM_EAGAIN;
    if (p[2] != 0) return fail(u, UM_EPROTO, "malformed SOCKS5 reply");
    size_t alen;
    if (p[3] == 1)
        alen = 4;
    else if (p[3] == 4)
        alen = 16;
    else if (p[3] == 3)
        alen = 1u + p[4];
    else
        return fail(u, UM_EPROTO, "SOCKS5 reply with address type 0x%02x", p[3]);
    if (n < 4 + alen + 2) return UM_EAGAIN;
    *used = 4 + alen + 2;
    u->phase = P_DONE;
    return 0;
}

/* Copies the printable bytes of s[0..n) into out. */
static void printable(char *out, size_t cap, const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    out[k] = 0;
}

static int http_input(um_upstream_t *u, const uint8_t *p, size_t n, size_t *used)
{
    static const char pre[] = "HTTP/1.";
    size_t cmp = n < 7 ? n : 7;
    if (memcmp(p, pre, cmp) != 0) return fail(u, UM_EPROTO, "not an HTTP proxy reply");
    size_t lim = n < UM_UPSTREAM_IN_MAX ? n : UM_UPSTREAM_IN_MAX, end = 0;
    for (size_t i = 3; i < lim; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') {
            end = i + 1;
            break;
        }
    if (!end) {
        if (n >= UM_UPSTREAM_IN_MAX) return fail(u, UM_EPROTO, "proxy reply headers too long");
        return UM_EAGAIN;
    }
    /* "HTTP/1.x SSS reason\r\n" */
    size_t eol = 0;
    while (eol < end && p[eol] != '\r')
        eol++;
    if (eol < 12 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
        p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || (eol > 12 && p[12] != ' '))
        return fail(u, UM_EPROTO, "malformed HTTP status line");
    *used = end;
    int code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (code / 100 != 2) {
        char line[96];
        printable(line, sizeof(line), p + 9, eol - 9);
        return fail(u,
                    code == 407   ? UM_EAUTH
                    : code == 403 ? UM_EACCES
                                  : UM_EPROTO,
                    "proxy: HTTP %s", line);
    }
    u->phase = P_DONE;
    return 0;
}

int um_upstream_input(um_upstream_t *u, const uint8_t *p, size_t n, size_t *used, uint8_t *out,
                      size_t cap, size_t *outn)
{
    *used = 0;
    *outn = 0;
    switch (u->phase) {
    case P_S_METHOD:
    case P_S_AUTH:
    case P_S_CONNECT: return n ? socks_input(u, p, n, used, out, cap, outn) : UM_EAGAIN;
    case P_H_REPLY: return n ? http_input(u, p, n, used) : UM_EAGAIN;
    case P_DONE: return 0;
    case P_FAIL: return UM_EPROTO;
    default: return UM_EINVAL;
    }
}
