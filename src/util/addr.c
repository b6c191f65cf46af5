#include "util/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

static int fail(char *err, size_t errlen, const char *why)
{
    if (err && errlen) snprintf(err, errlen, "%s", why);
    return UM_EINVAL;
}

bool um_domain_valid(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '.') n--;
    if (n == 0 || n > UM_DOMAIN_MAX) return false;
    size_t label = 0;
    bool all_digits_last = true;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63) return false;
            if (s[i - 1] == '-' || s[i - label] == '-') return false;
            label = 0;
            continue;
        }
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) return false;
        if (label == 0) all_digits_last = true;
        if (!(c >= '0' && c <= '9')) all_digits_last = false;
        label++;
    }
    /* A name whose last label is all digits would be mistaken for an IPv4. */
    return !all_digits_last;
}

int um_addr_parse_host(um_addr_t *out, const char *s, size_t n, char *err, size_t errlen)
{
    char tmp[UM_DOMAIN_MAX + 2];
    memset(out, 0, sizeof(*out));
    if (n == 0) return fail(err, errlen, "empty host");
    if (memchr(s, '\0', n)) return fail(err, errlen, "NUL byte in host");
    if (n > UM_DOMAIN_MAX + 1) return fail(err, errlen, "host name longer than 253 characters");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (memchr(s, ':', n)) {
        if (inet_pton(AF_INET6, tmp, out->u.v6) != 1)
            return fail(err, errlen, "not a valid IPv6 address");
        out->type = UM_ADDR_IPV6;
        return 0;
    }
    /* inet_pton(AF_INET) accepts only the dotted-quad form, which is what we want. */
    if (inet_pton(AF_INET, tmp, out->u.v4) == 1) {
        out->type = UM_ADDR_IPV4;
        return 0;
    }
    bool digits_dots = true;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) digits_dots = false;
    if (digits_dots) return fail(err, errlen, "not a valid IPv4 address");
    if (!um_domain_valid(s, n)) return fail(err, errlen, "not a valid host name");
    if (s[n - 1] == '.') n--; /* canonical form has no trailing dot */
    out->type = UM_ADDR_DOMAIN;
    out->domain_len = (uint8_t)n;
    memcpy(out->u.domain, s, n);
    out->u.domain[n] = '\0';
    return 0;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5) return UM_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return UM_EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) return UM_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int um_addr_parse(um_addr_t *out, const char *s, size_t n, uint16_t default_port, char *err,
                  size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hostlen = n, portlen = 0;
    memset(out, 0, sizeof(*out));
    if (n == 0) return fail(err, errlen, "empty address");
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return fail(err, errlen, "missing ']' after IPv6 address");
        host = s + 1;
        hostlen = (size_t)(close - s) - 1;
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest > 0) {
            if (close[1] != ':') return fail(err, errlen, "expected ':port' after ']'");
            port = close + 2;
            portlen = rest - 1;
        }
        if (!memchr(host, ':', hostlen)) return fail(err, errlen, "brackets hold no IPv6 address");
    } else {
        const char *colon = NULL;
        size_t ncolon = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ':') {
                colon = s + i;
                ncolon++;
            }
        if (ncolon > 1)
            return fail(err, errlen, "IPv6 address must be written in brackets: [::1]:443");
        if (colon) {
            hostlen = (size_t)(colon - s);
            port = colon + 1;
            portlen = n - hostlen - 1;
        }
    }
    if (port) {
        if (parse_port(port, portlen, &out->port) != 0)
            return fail(err, errlen, "port must be a number from 1 to 65535");
    } else if (default_port) {
        out->port = default_port;
    } else {
        return fail(err, errlen, "missing ':port'");
    }
    uint16_t p = out->port;
    int r = um_addr_parse_host(out, host, hostlen, err, errlen);
    out->port = p;
    return r;
}

size_t um_addr_format(const um_addr_t *a, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    int w;
    switch (a->type) {
    case UM_ADDR_IPV4:
        inet_ntop(AF_INET, a->u.v4, ip, sizeof(ip));
        w = snprintf(buf, n, "%s:%u", ip, a->port);
        break;
    case UM_ADDR_IPV6:
        inet_ntop(AF_INET6, a->u.v6, ip, sizeof(ip));
        w = snprintf(buf, n, "[%s]:%u", ip, a->port);
        break;
    case UM_ADDR_DOMAIN:
        w = snprintf(buf, n, "%.*s:%u", a->domain_len, a->u.domain, a->port);
        break;
    default: w = snprintf(buf, n, "(none)"); break;
    }
    if (w < 0) return 0;
    return (size_t)w < n ? (size_t)w : (n ? n - 1 : 0);
}

int um_addr_to_sockaddr(const um_addr_t *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->type == UM_ADDR_IPV4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->u.v4, 4);
        *len = sizeof(*s4);
        return 0;
    }
    if (a->type == UM_ADDR_IPV6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->u.v6, 16);
        *len = sizeof(*s6);
        return 0;
    }
    return UM_EINVAL;
}

int um_addr_from_sockaddr(um_addr_t *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        a->type = UM_ADDR_IPV4;
        memcpy(a->u.v4, &s4->sin_addr, 4);
        a->port = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a->type = UM_ADDR_IPV6;
        memcpy(a->u.v6, &s6->sin6_addr, 16);
        a->port = ntohs(s6->sin6_port);
        return 0;
    }
    return UM_EINVAL;
}

bool um_addr_equal(const um_addr_t *a, const um_addr_t *b)
{
    if (a->type != b->type || a->port != b->port) return false;
    switch (a->type) {
    case UM_ADDR_IPV4: return memcmp(a->u.v4, b->u.v4, 4) == 0;
    case UM_ADDR_IPV6: return memcmp(a->u.v6, b->u.v6, 16) == 0;
    case UM_ADDR_DOMAIN:
        return a->domain_len == b->domain_len &&
               strncasecmp(a->u.domain, b->u.domain, a->domain_len) == 0;
    default: return false;
    }
}

int um_cidr_parse(um_cidr_t *out, const char *s, size_t n, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *slash = memchr(s, '/', n);
    size_t hostlen = slash ? (size_t)(slash - s) : n;
    um_addr_t a;
    char why[96];
    if (um_addr_parse_host(&a, s, hostlen, why, sizeof(why)) != 0 || a.type == UM_ADDR_DOMAIN)
        return fail(err, errlen, "expected an IP address or prefix such as 10.0.0.0/8 or ::1/128");
    unsigned max = a.type == UM_ADDR_IPV4 ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1;
        size_t plen = n - hostlen - 1;
        if (plen == 0 || plen > 3) return fail(err, errlen, "prefix length must follow '/'");
        bits = 0;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9') return fail(err, errlen, "prefix length is not a number");
            bits = bits * 10 + (unsigned)(p[i] - '0');
        }
        if (bits > max)
            return fail(err, errlen,
                        a.type == UM_ADDR_IPV4 ? "IPv4 prefix length above 32"
                                               : "IPv6 prefix length above 128");
    }
    out->family = a.type;
    out->bits = (uint8_t)bits;
    memcpy(out->addr, a.type == UM_ADDR_IPV4 ? a.u.v4 : a.u.v6, max / 8);
    /* Host bits are cleared so that equal prefixes compare equal. */
    for (unsigned i = bits; i < max; i++)
        out->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rem = bits % 8;
    if (memcmp(a, b, full) != 0) return false;
    if (rem == 0) return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rem));
    return (a[full] & mask) == (b[full] & mask);
}

bool um_cidr_match(const um_cidr_t *c, const um_addr_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family == UM_ADDR_IPV4) {
        if (a->type == UM_ADDR_IPV4) return prefix_eq(c->addr, a->u.v4, c->bits);
        if (a->type == UM_ADDR_IPV6 && memcmp(a->u.v6, mapped, 12) == 0)
            return prefix_eq(c->addr, a->u.v6 + 12, c->bits);
        return false;
    }
    if (c->family == UM_ADDR_IPV6 && a->type == UM_ADDR_IPV6)
        return prefix_eq(c->addr, a->u.v6, c->bits);
    return false;
}

size_t um_cidr_format(const um_cidr_t *c, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(c->family == UM_ADDR_IPV4 ? AF_INET : AF_INET6, c->addr, ip, sizeof(ip));
    int w = snprintf(buf, n, "%s/%u", ip, c->bits);
    if (w < 0) return 0;
    return (size_t)w < n ? (size_t)w : (n ? n - 1 : 0);
}
