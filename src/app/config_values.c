/* Value parsers and formatters of the configuration, shared with the
 * command line (sizes, durations, ranges, names, forwards). Each is a pure
 * function of its input; the INI sections and keys that use them are in
 * config.c. */
#include "app/config.h"
#include "app/config_int.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

/* An interface address with its prefix, host bits kept ("10.233.0.1/30"),
 * unlike a policy prefix. */
int um_cfg_ifaddr_parse(um_cidr_t *cd, const char *v, char *why, size_t whylen)
{
    if (um_cidr_parse(cd, v, strlen(v), why, whylen) != 0 || !strchr(v, '/')) return UM_EINVAL;
    um_addr_t a;
    if (um_addr_parse_host(&a, v, (size_t)(strchr(v, '/') - v), why, whylen) != 0) return UM_EINVAL;
    memcpy(cd->addr, a.type == UM_ADDR_IPV4 ? a.u.v4 : a.u.v6, a.type == UM_ADDR_IPV4 ? 4 : 16);
    return 0;
}

bool um_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > UM_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

int um_parse_u32(uint32_t *out, const char *s, uint32_t min, uint32_t max)
{
    if (!*s || strlen(s) > 10) return UM_EINVAL;
    uint64_t v = 0;
    for (const char *q = s; *q; q++) {
        if (*q < '0' || *q > '9') return UM_EINVAL;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (v < min || v > max) return UM_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* Digits then a unit among units[] (scale[] each; "" for none), into
 * uint32_t. Pure; bounded by the 10 digits it reads. */
static int parse_scaled(uint32_t *out, const char *s, const char *const *units,
                        const uint32_t *scale, size_t n_units)
{
    size_t d = 0;
    uint64_t v = 0;
    while (s[d] >= '0' && s[d] <= '9') {
        if (d == 10) return UM_EINVAL;
        v = v * 10 + (uint64_t)(s[d] - '0');
        d++;
    }
    if (d == 0) return UM_EINVAL;
    for (size_t i = 0; i < n_units; i++)
        if (strcmp(s + d, units[i]) == 0) {
            v *= scale[i];
            if (v > UINT32_MAX) return UM_EINVAL;
            *out = (uint32_t)v;
            return 0;
        }
    return UM_EINVAL;
}

int um_parse_size(uint32_t *out, const char *s)
{
    static const char *const units[] = {"", "k", "m"};
    static const uint32_t scale[] = {1, 1024, 1024 * 1024};
    return parse_scaled(out, s, units, scale, 3);
}

int um_parse_duration_ms(uint32_t *out, const char *s)
{
    static const char *const units[] = {"", "ms", "s", "m", "h"};
    static const uint32_t scale[] = {1000, 1, 1000, 60000, 3600000};
    return parse_scaled(out, s, units, scale, 5);
}

static int parse_range(uint32_t *min, uint32_t *max, const char *s, uint32_t lo, uint32_t hi,
                       int (*one)(uint32_t *, const char *))
{
    char a[24];
    uint32_t x, y;
    if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
        *min = *max = 0;
        return 0;
    }
    const char *dash = strchr(s, '-');
    size_t n = dash ? (size_t)(dash - s) : strlen(s);
    if (n == 0 || n >= sizeof(a)) return UM_EINVAL;
    memcpy(a, s, n);
    a[n] = '\0';
    if (one(&x, a) != 0) return UM_EINVAL;
    y = x;
    if (dash && one(&y, dash + 1) != 0) return UM_EINVAL;
    if (x < lo || y > hi || x > y) return UM_EINVAL;
    *min = x;
    *max = y;
    return 0;
}

int um_parse_size_range(uint32_t *min, uint32_t *max, const char *s, uint32_t lo, uint32_t hi)
{
    return parse_range(min, max, s, lo, hi, um_parse_size);
}

int um_parse_duration_range(uint32_t *min, uint32_t *max, const char *s, uint32_t lo, uint32_t hi)
{
    return parse_range(min, max, s, lo, hi, um_parse_duration_ms);
}

int um_parse_port_range(uint16_t *lo, uint16_t *hi, const char *s)
{
    char a[8];
    uint32_t x, y;
    const char *dash = strchr(s, '-');
    if (!dash || dash == s || (size_t)(dash - s) >= sizeof(a)) return UM_EINVAL;
    memcpy(a, s, (size_t)(dash - s));
    a[dash - s] = '\0';
    if (um_parse_u32(&x, a, 1, 65535) != 0 || um_parse_u32(&y, dash + 1, 1, 65535) != 0 || x > y)
        return UM_EINVAL;
    *lo = (uint16_t)x;
    *hi = (uint16_t)y;
    return 0;
}

void um_format_size(char *out, size_t cap, uint32_t v)
{
    if (v && v % (1024u * 1024) == 0)
        snprintf(out, cap, "%um", (unsigned)(v / (1024u * 1024)));
    else if (v && v % 1024 == 0)
        snprintf(out, cap, "%uk", (unsigned)(v / 1024));
    else
        snprintf(out, cap, "%u", (unsigned)v);
}

void um_format_duration(char *out, size_t cap, uint32_t ms)
{
    if (ms && ms % 3600000 == 0)
        snprintf(out, cap, "%uh", (unsigned)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(out, cap, "%um", (unsigned)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, cap, "%us", (unsigned)(ms / 1000));
    else
        snprintf(out, cap, "%ums", (unsigned)ms);
}

static void format_range(char *out, size_t cap, uint32_t min, uint32_t max,
                         void (*one)(char *, size_t, uint32_t))
{
    char a[16], b[16];
    if (min == 0 && max == 0) {
        snprintf(out, cap, "off");
        return;
    }
    one(a, sizeof(a), min);
    one(b, sizeof(b), max);
    if (min == max)
        snprintf(out, cap, "%s", a);
    else
        snprintf(out, cap, "%s-%s", a, b);
}

void um_format_size_range(char *out, size_t cap, uint32_t min, uint32_t max)
{
    format_range(out, cap, min, max, um_format_size);
}

void um_format_duration_range(char *out, size_t cap, uint32_t min, uint32_t max)
{
    format_range(out, cap, min, max, um_format_duration);
}

static const char *const shape_names[] = {"none", "printable", "http", "tls"};
static const char *const pad_names[] = {"random", "none"};

int um_shape_parse(const char *s, uint8_t *out)
{
    for (uint8_t i = 0; i < 4; i++)
        if (strcmp(s, shape_names[i]) == 0) {
            *out = i;
            return 0;
        }
    return UM_EINVAL;
}

int um_cfg_pad_parse(const char *s, uint8_t *out)
{
    for (uint8_t i = 0; i < 2; i++)
        if (strcmp(s, pad_names[i]) == 0) {
            *out = i;
            return 0;
        }
    return UM_EINVAL;
}

const char *um_shape_name(uint8_t shape)
{
    return shape < 4 ? shape_names[shape] : "?";
}

const char *um_cfg_pad_name(uint8_t pad)
{
    return pad < 2 ? pad_names[pad] : "?";
}

static const char *const tr_type_names[] = {"tcp", "tls", "ws", "dns"};
static const char *const fp_names[] = {"chromium", "firefox"};
static const char *const timing_names[] = {"none", "jitter"};

static int name_lookup(const char *const *names, uint8_t n, const char *s, uint8_t *out)
{
    for (uint8_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return UM_EINVAL;
}

int um_tr_type_parse(const char *s, uint8_t *out)
{
    int r = name_lookup(tr_type_names, 4, s, out);
    return r == 0 && *out == UM_TR_WS ? UM_EINVAL : r; /* ws: not built on this branch */
}

const char *um_tr_type_name(uint8_t type)
{
    return type < 4 ? tr_type_names[type] : "?";
}

int um_cfg_fp_parse(const char *s, uint8_t *out)
{
    _Static_assert(UM_TLS_FP_CHROMIUM == 0 && UM_TLS_FP_FIREFOX == 1 && UM_TLS_FP_MAX == 1,
                   "fp_names follows um_tls_fp_t");
    return name_lookup(fp_names, 2, s, out);
}

const char *um_cfg_fp_name(uint8_t fp)
{
    return fp <= UM_TLS_FP_MAX ? fp_names[fp] : "?";
}

int um_cfg_timing_parse(const char *s, uint8_t *out)
{
    return name_lookup(timing_names, 2, s, out);
}

const char *um_cfg_timing_name(uint8_t timing)
{
    return timing < 2 ? timing_names[timing] : "?";
}

bool um_sni_valid(const char *s, size_t n)
{
    if (n == 0 || n > UM_DOMAIN_MAX) return false;
    size_t label = 0;   /* length of the current label */
    bool digits = true; /* the current label is all digits */
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-') return false;
            label = 0;
            digits = true;
            continue;
        }
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        bool digit = ch >= '0' && ch <= '9';
        if (!alpha && !digit && ch != '-') return false;
        if (ch == '-' && label == 0) return false;
        if (++label > 63) return false;
        if (!digit) digits = false;
    }
    /* An empty or hyphen-ended last label, or an all-digit one (an IPv4
     * literal such as 192.0.2.1; no top-level domain is numeric). */
    return label > 0 && s[n - 1] != '-' && !digits;
}

/* "[bind:]port:host:hostport" as ssh -L; bind defaults to 127.0.0.1. */
int um_parse_forward(um_forward_t *f, const char *s, char *err, size_t errlen)
{
    char why[128];
    size_t n = strlen(s);
    memset(f, 0, sizeof(*f));
    /* Split from the right: the target is the last "host:port" (host may be
     * [v6]); what is left is "[bind:]port". */
    const char *end = s + n, *p = end;
    while (p > s && p[-1] != ':')
        p--;
    if (p == s) goto bad;
    const char *tport = p;
    p--; /* at ':' before target port */
    const char *thost_end = p;
    const char *q = thost_end;
    if (q > s && q[-1] == ']') {
        while (q > s && q[-1] != '[')
            q--;
        if (q == s) goto bad;
        q--;
    } else {
        while (q > s && q[-1] != ':')
            q--;
    }
    if (q == s) goto bad;
    const char *target = q;
    size_t tlen = (size_t)(end - target);
    (void)tport;
    if (um_addr_parse(&f->target, target, tlen, 0, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "target: %s", why);
        return UM_EINVAL;
    }
    size_t llen = (size_t)(target - 1 - s);
    if (memchr(s, ':', llen) || (llen > 0 && s[0] == '[')) {
        if (um_addr_parse(&f->listen, s, llen, 0, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "listen address: %s", why);
            return UM_EINVAL;
        }
    } else {
        char buf[32];
        if (llen == 0 || llen > 5) goto bad;
        snprintf(buf, sizeof(buf), "127.0.0.1:%.*s", (int)llen, s);
        if (um_addr_parse(&f->listen, buf, strlen(buf), 0, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "listen port: %s", why);
            return UM_EINVAL;
        }
    }
    if (f->listen.type == UM_ADDR_DOMAIN) {
        snprintf(err, errlen, "listen address must be an IP address");
        return UM_EINVAL;
    }
    return 0;
bad:
    snprintf(err, errlen, "expected [bind:]port:host:hostport, e.g. 127.0.0.1:2222:host:22");
    return UM_EINVAL;
}

bool um_tun_name_valid(const char *s)
{
    /* A section name's characters, but at most IFNAMSIZ - 1 of them. */
    return strlen(s) <= 15 && um_name_valid(s) && strcmp(s, ".") && strcmp(s, "..");
}
