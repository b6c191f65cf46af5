#include "app/link.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/dns_cfg.h"
#include "util/b64.h"
#include "util/err.h"

static const char scheme[] = "umbra://";

static int fail(char *err, size_t errlen, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, size_t pos, const char *fmt, ...)
{
    if (err && errlen) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "at character %zu: %s", pos + 1, msg);
    }
    return UM_EINVAL;
}

void um_link_wipe(um_link_t *l)
{
    sodium_memzero(l->client_private_key, sizeof(l->client_private_key));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes incl. NUL). Returns the length,
 * or -1 for a bad escape, -2 when too long, -3 for a control character. */
static long pct_decode(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) return -3;
        if (o + 1 >= cap) return -2;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

static int decode_key(uint8_t key[32], const char *s, size_t n)
{
    if (n != 43) return UM_EINVAL;
    return um_b64_decode_key(key, s, n, UM_B64_URL);
}

/* A list URL: http:// or https://, then printable characters, no space. */
static bool list_url_valid(const char *u, size_t n)
{
    if (!(n > 7 && strncasecmp(u, "http://", 7) == 0) &&
        !(n > 8 && strncasecmp(u, "https://", 8) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) return false;
    return true;
}

/* depth 1: the bridge link of a via= (no k=, no via=, IP addresses).
 * want_k: the link carries the client's key (a share link), or must not
 * (a server list's entry, a bridge). */
static int decode_at(um_link_t *l, const char *s, size_t n, char *err, size_t errlen, int depth,
                     bool want_k)
{
    memset(l, 0, sizeof(*l));
    const size_t sl = sizeof(scheme) - 1;
    if (n > UM_LINK_MAX) return fail(err, errlen, 0, "link longer than %d characters", UM_LINK_MAX);
    if (n < sl || strncasecmp(s, scheme, sl) != 0)
        return fail(err, errlen, 0, "a link starts with 'umbra://'");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return fail(err, errlen, i, "space, control or non-ASCII character");
    size_t pos = sl;
    const char *at = memchr(s + pos, '@', n - pos);
    if (!at) return fail(err, errlen, pos, "expected '<server-public-key>@<address>'");
    size_t klen = (size_t)(at - s) - pos;
    if (decode_key(l->server_public_key, s + pos, klen) != 0)
        return fail(err, errlen, pos,
                    "server public key '%.*s' is not a 43-character base64url X25519 key",
                    (int)(klen > 60 ? 60 : klen), s + pos);
    pos += klen + 1;
    /* Authority ends at '/', '?' or '#'. */
    size_t end = pos;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    if (end == pos) return fail(err, errlen, pos, "missing server address after '@'");
    size_t a = pos;
    while (a < end) {
        size_t b = a;
        /* An IPv6 literal holds ':' and ',' never; split on ',' outside brackets. */
        bool br = false;
        while (b < end && (br || s[b] != ',')) {
            if (s[b] == '[') br = true;
            if (s[b] == ']') br = false;
            b++;
        }
        if (l->n_addrs == UM_CFG_MAX_ADDRS)
            return fail(err, errlen, a, "more than %d addresses", UM_CFG_MAX_ADDRS);
        char why[128];
        if (um_addr_parse(&l->addrs[l->n_addrs], s + a, b - a, 0, why, sizeof(why)) != 0)
            return fail(err, errlen, a, "address '%.*s': %s", (int)(b - a > 80 ? 80 : b - a), s + a,
                        why);
        l->n_addrs++;
        a = b + 1;
        if (b < end && a == end) return fail(err, errlen, b, "empty address after ','");
    }
    pos = end;
    if (pos < n && s[pos] == '/') pos++;
    bool have_k = false, seen_t = false, seen_shape = false, seen_pad = false, seen_v = false;
    bool seen_sni = false, seen_fp = false, seen_ports = false, seen_hop = false;
    bool seen_zone = false, seen_resolver = false;
    size_t zone_pos = 0, resolver_pos = 0;
    /* where each parameter starts */
    size_t t_pos = 0, shape_pos = 0, sni_pos = 0, fp_pos = 0, ports_pos = 0, hop_pos = 0;
    if (pos < n && s[pos] == '?') {
        pos++;
        size_t qend = pos;
        while (qend < n && s[qend] != '#')
            qend++;
        while (pos < qend) {
            size_t pe = pos;
            while (pe < qend && s[pe] != '&')
                pe++;
            const char *eq = memchr(s + pos, '=', pe - pos);
            if (!eq) return fail(err, errlen, pos, "parameter without '=value'");
            size_t nl = (size_t)(eq - s) - pos, vpos = (size_t)(eq - s) + 1, vl = pe - vpos;
            const char *nm = s + pos, *v = s + vpos;
            char val[UM_DOMAIN_MAX + 1]; /* the longest value is an sni */
            long dl = -2;
            if (vl < sizeof(val) * 3) dl = pct_decode(val, sizeof(val), v, vl);
#define PARAM(str) (nl == sizeof(str) - 1 && memcmp(nm, str, nl) == 0)
            if (PARAM("k")) {
                if (depth)
                    return fail(err, errlen, pos,
                                "a bridge link carries no 'k' (the client's key is the exit's)");
                if (!want_k)
                    return fail(err, errlen, pos,
                                "parameter 'k' (a client's private key) has no place here");
                if (have_k) return fail(err, errlen, pos, "parameter 'k' given twice");
                if (decode_key(l->client_private_key, v, vl) != 0)
                    return fail(err, errlen, vpos,
                                "client key 'k' is not a 43-character base64url key "
                                "(%zu characters given; value not shown)",
                                vl);
                have_k = true;
            } else if (PARAM("via")) {
                if (depth) return fail(err, errlen, pos, "a bridge link has no 'via' of its own");
                if (l->via[0]) return fail(err, errlen, pos, "parameter 'via' given twice");
                long vn = pct_decode(l->via, sizeof(l->via), v, vl);
                if (vn <= 0)
                    return fail(err, errlen, vpos, "parameter 'via': %s",
                                vn == 0 || vn == -2 ? "empty or longer than 1024 characters"
                                                    : "bad %-escape or control character");
                um_link_t *b = malloc(sizeof(*b));
                char why[200];
                int r =
                    b ? decode_at(b, l->via, (size_t)vn, why, sizeof(why), 1, false) : UM_ENOMEM;
                free(b);
                if (r) {
                    l->via[0] = 0;
                    return fail(err, errlen, vpos, "bridge link 'via': %s",
                                r == UM_ENOMEM ? "out of memory" : why);
                }
            } else if (PARAM("l")) {
                if (l->n_list_urls == UM_CFG_MAX_LIST_URLS)
                    return fail(err, errlen, pos, "more than %d list URLs 'l'",
                                UM_CFG_MAX_LIST_URLS);
                char *u = l->list_urls[l->n_list_urls];
                long ul =
                    vl < (UM_LIST_URL_MAX + 1) * 3 ? pct_decode(u, UM_LIST_URL_MAX + 1, v, vl) : -2;
                if (ul < 0 || !list_url_valid(u, (size_t)ul)) {
                    u[0] = '\0';
                    return fail(err, errlen, vpos,
                                "list URL 'l' is not a percent-encoded http:// or https:// URL "
                                "of at most %d characters",
                                UM_LIST_URL_MAX);
                }
                l->n_list_urls++;
            } else if (dl < 0) {
                return fail(err, errlen, vpos, "parameter '%.*s': %s", (int)(nl > 20 ? 20 : nl), nm,
                            dl == -1   ? "bad %-escape"
                            : dl == -2 ? "value too long"
                                       : "control character");
            } else if (PARAM("t")) {
                if (seen_t) return fail(err, errlen, pos, "parameter 't' given twice");
                seen_t = true;
                t_pos = pos;
                if (um_tr_type_parse(val, &l->transport) != 0)
                    return fail(err, errlen, vpos,
                                "transport '%s' is not supported (expected tcp, tls, ws or dns)",
                                val);
            } else if (PARAM("sni")) {
                if (seen_sni) return fail(err, errlen, pos, "parameter 'sni' given twice");
                seen_sni = true;
                sni_pos = pos;
                if (!um_sni_valid(val, (size_t)dl))
                    return fail(err, errlen, vpos,
                                "sni '%s' is not a DNS host name (labels of letters, digits and "
                                "'-', dot-separated, at most 253 characters)",
                                val);
                for (long i = 0; i <= dl; i++)
                    l->sni[i] =
                        (val[i] >= 'A' && val[i] <= 'Z') ? (char)(val[i] - 'A' + 'a') : val[i];
            } else if (PARAM("path")) {
                if (l->ws_path[0]) return fail(err, errlen, pos, "parameter 'path' given twice");
                if (!um_ws_path_ok(val))
                    return fail(err, errlen, vpos, "path '%s' is not a URL path ('/' first)", val);
                snprintf(l->ws_path, sizeof(l->ws_path), "%s", val);
            } else if (PARAM("host")) {
                if (l->ws_host[0]) return fail(err, errlen, pos, "parameter 'host' given twice");
                bool ok = dl > 0;
                for (long i = 0; ok && i < dl; i++)
                    if ((unsigned char)val[i] <= ' ' || (unsigned char)val[i] >= 0x7f ||
                        val[i] == '/')
                        ok = false;
                if (!ok) return fail(err, errlen, vpos, "host '%s' is not a host[:port]", val);
                snprintf(l->ws_host, sizeof(l->ws_host), "%s", val);
            } else if (PARAM("tls")) {
                if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
                    return fail(err, errlen, vpos, "tls '%s' (expected 0 or 1)", val);
                l->ws_notls = val[0] == '0';
                l->ws_tls_set = true;
            } else if (PARAM("fp")) {
                if (seen_fp) return fail(err, errlen, pos, "parameter 'fp' given twice");
                seen_fp = true;
                fp_pos = pos;
                if (um_cfg_fp_parse(val, &l->fingerprint) != 0)
                    return fail(err, errlen, vpos, "fp '%s' (expected chromium or firefox)", val);
            } else if (PARAM("shape")) {
                if (seen_shape) return fail(err, errlen, pos, "parameter 'shape' given twice");
                seen_shape = true;
                shape_pos = pos;
                if (um_shape_parse(val, &l->shape) != 0)
                    return fail(err, errlen, vpos,
                                "shape '%s' (expected none, printable, http or tls)", val);
            } else if (PARAM("pad")) {
                if (seen_pad) return fail(err, errlen, pos, "parameter 'pad' given twice");
                seen_pad = true;
                if (um_cfg_pad_parse(val, &l->padding) != 0)
                    return fail(err, errlen, vpos, "pad '%s' (expected random or none)", val);
            } else if (PARAM("ports")) {
                if (seen_ports) return fail(err, errlen, pos, "parameter 'ports' given twice");
                seen_ports = true;
                ports_pos = pos;
                if (um_parse_port_range(&l->hop_lo, &l->hop_hi, val) != 0)
                    return fail(err, errlen, vpos,
                                "ports '%s' (expected a port range LO-HI, e.g. 20000-40000)", val);
            } else if (PARAM("hop")) {
                if (seen_hop) return fail(err, errlen, pos, "parameter 'hop' given twice");
                seen_hop = true;
                hop_pos = pos;
                if (um_parse_duration_ms(&l->hop_ms, val) != 0 || l->hop_ms < UM_HOP_MIN_MS ||
                    l->hop_ms > UM_HOP_MAX_MS)
                    return fail(err, errlen, vpos,
                                "hop '%s' (expected a slot length from 1s to 1h, e.g. 60s)", val);
            } else if (PARAM("rot")) {
                if (l->rotate_set) return fail(err, errlen, pos, "parameter 'rot' given twice");
                l->rotate_set = true;
                if (um_parse_size_range(&l->rotate_min, &l->rotate_max, val, UM_ROTATE_BYTES_MIN,
                                        UM_ROTATE_BYTES_MAX) != 0)
                    return fail(err, errlen, vpos,
                                "rot '%s' (expected bytes per connection MIN[-MAX] from 4k to "
                                "1024m, e.g. 12k-16k, or off)",
                                val);
            } else if (PARAM("rta")) {
                if (l->rotate_after_set)
                    return fail(err, errlen, pos, "parameter 'rta' given twice");
                l->rotate_after_set = true;
                if (um_parse_duration_range(&l->rotate_after_min_ms, &l->rotate_after_max_ms, val,
                                            UM_ROTATE_AFTER_MIN_MS, UM_ROTATE_AFTER_MAX_MS) != 0)
                    return fail(err, errlen, vpos,
                                "rta '%s' (expected a time per connection MIN[-MAX] from 1s to "
                                "24h, e.g. 30s-5m, or off)",
                                val);
            } else if (PARAM("o")) {
                if (l->has_operator_key) return fail(err, errlen, pos, "parameter 'o' given twice");
                if (decode_key(l->operator_key, val, (size_t)dl) != 0)
                    return fail(err, errlen, vpos,
                                "operator key 'o' '%s' is not a 43-character base64url Ed25519 "
                                "public key",
                                val);
                l->has_operator_key = true;
            } else if (PARAM("zone")) {
                if (seen_zone) return fail(err, errlen, pos, "parameter 'zone' given twice");
                seen_zone = true;
                zone_pos = pos;
                if (um_dns_zone_norm(val, l->zone, sizeof(l->zone)) != 0)
                    return fail(err, errlen, vpos,
                                "zone '%s' is not a DNS zone name (at most 200 characters, e.g. "
                                "zone=t.example.com)",
                                val);
            } else if (PARAM("resolver")) {
                if (seen_resolver)
                    return fail(err, errlen, pos, "parameter 'resolver' given twice");
                seen_resolver = true;
                resolver_pos = pos;
                if (um_dns_resolver_parse(val, NULL, NULL) != 0)
                    return fail(err, errlen, vpos,
                                "resolver '%s' (expected IP:PORT or tls://IP:PORT, "
                                "percent-encoded)",
                                val);
                snprintf(l->resolver, sizeof(l->resolver), "%s", val);
            } else if (PARAM("v")) {
                if (seen_v) return fail(err, errlen, pos, "parameter 'v' given twice");
                seen_v = true;
                if (strcmp(val, "1") != 0)
                    return fail(err, errlen, vpos,
                                "link version '%s' is newer than this umbra understands (1)", val);
            } else {
                return fail(err, errlen, pos, "unknown parameter '%.*s'", (int)(nl > 20 ? 20 : nl),
                            nm);
            }
#undef PARAM
            pos = pe < qend ? pe + 1 : pe;
            if (pe < qend && pos == qend) return fail(err, errlen, pe, "empty parameter after '&'");
        }
    }
    if (pos < n && s[pos] != '#')
        return fail(err, errlen, pos, "unexpected '%c' (expected '?' or '#')", s[pos]);
    /* Parameters that belong to one transport (any order in the query). */
    if (l->transport == UM_TR_TLS) {
        if (seen_shape)
            return fail(err, errlen, shape_pos,
                        "parameter 'shape' is for t=tcp only (a tls link is TLS already)");
        if (!seen_sni)
            return fail(err, errlen, t_pos,
                        "t=tls needs parameter 'sni' (the cover site's name, e.g. "
                        "sni=www.example.com)");
        if (seen_ports)
            return fail(err, errlen, ports_pos,
                        "parameter 'ports' is for t=tcp only (port hopping is a tcp feature)");
    } else if (l->transport == UM_TR_WS) {
        if (!l->ws_path[0] || !l->ws_host[0])
            return fail(err, errlen, t_pos,
                        "t=ws needs parameters 'path' and 'host' (e.g. "
                        "path=/api/stream&host=cdn.example.com)");
        if (seen_shape || seen_ports || seen_fp)
            return fail(err, errlen,
                        seen_shape   ? shape_pos
                        : seen_ports ? ports_pos
                                     : fp_pos,
                        "parameters 'shape', 'ports' and 'fp' are not for t=ws");
    } else {
        if (seen_sni) return fail(err, errlen, sni_pos, "parameter 'sni' needs t=tls");
        if (seen_fp) return fail(err, errlen, fp_pos, "parameter 'fp' needs t=tls");
    }
    if (l->transport != UM_TR_WS && (l->ws_path[0] || l->ws_host[0] || l->ws_tls_set))
        return fail(err, errlen, t_pos, "parameters 'path', 'host' and 'tls' need t=ws");
    if (seen_hop && !seen_ports)
        return fail(err, errlen, hop_pos, "parameter 'hop' needs 'ports' (the range to hop over)");
    if (l->transport == UM_TR_DNS) {
        if (!seen_zone)
            return fail(err, errlen, t_pos,
                        "t=dns needs parameter 'zone' (the tunnel's DNS zone, e.g. "
                        "zone=t.example.com)");
        if (seen_shape || seen_ports)
            return fail(err, errlen, seen_shape ? shape_pos : ports_pos,
                        "parameter '%s' is for t=tcp only", seen_shape ? "shape" : "ports");
    } else if (seen_zone || seen_resolver) {
        return fail(err, errlen, seen_zone ? zone_pos : resolver_pos, "parameter '%s' needs t=dns",
                    seen_zone ? "zone" : "resolver");
    }
    if (seen_ports && !seen_hop) l->hop_ms = UM_HOP_DEFAULT_MS;
    if (pos < n) {
        pos++;
        long dl = pct_decode(l->name, sizeof(l->name), s + pos, n - pos);
        if (dl < 0)
            return fail(err, errlen, pos, "name: %s",
                        dl == -1   ? "bad %-escape"
                        : dl == -2 ? "longer than 63 bytes"
                                   : "control character");
    }
    if (!have_k && want_k) {
        um_link_wipe(l);
        return fail(err, errlen, n, "missing parameter 'k' (the client's private key)");
    }
    for (size_t i = 0; depth && i < l->n_addrs; i++)
        if (l->addrs[i].type == UM_ADDR_DOMAIN)
            return fail(err, errlen, sl, "a bridge's address must be an IP address");
    return 0;
}

int um_link_decode(um_link_t *l, const char *s, size_t n, char *err, size_t errlen)
{
    return decode_at(l, s, n, err, errlen, 0, true);
}

int um_link_decode_public(um_link_t *l, const char *s, size_t n, char *err, size_t errlen)
{
    return decode_at(l, s, n, err, errlen, 0, false);
}

/* Characters left unescaped in a name: RFC 3986 unreserved. */
static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int um_link_encode(const um_link_t *l, char *out, size_t cap)
{
    char key[48], addr[UM_ADDR_STRLEN];
    size_t o = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(out + o, o < cap ? cap - o : 0, __VA_ARGS__);                            \
        if (w_ < 0 || (size_t)w_ >= (o < cap ? cap - o : 0)) goto full;                            \
        o += (size_t)w_;                                                                           \
    } while (0)
    bool hop_bad =
        l->hop_lo && (l->hop_lo > l->hop_hi || l->transport != UM_TR_TCP ||
                      (l->hop_ms && (l->hop_ms < UM_HOP_MIN_MS || l->hop_ms > UM_HOP_MAX_MS)));
    bool rot_bad = l->rotate_set && (l->rotate_min || l->rotate_max) &&
                   (l->rotate_min < UM_ROTATE_BYTES_MIN || l->rotate_max > UM_ROTATE_BYTES_MAX ||
                    l->rotate_min > l->rotate_max);
    bool rta_bad = l->rotate_after_set && (l->rotate_after_min_ms || l->rotate_after_max_ms) &&
                   (l->rotate_after_min_ms < UM_ROTATE_AFTER_MIN_MS ||
                    l->rotate_after_max_ms > UM_ROTATE_AFTER_MAX_MS ||
                    l->rotate_after_min_ms > l->rotate_after_max_ms);
    bool dns_bad =
        l->transport == UM_TR_DNS &&
        (!l->zone[0] || (l->resolver[0] && um_dns_resolver_parse(l->resolver, NULL, NULL)));
    if (hop_bad || rot_bad || rta_bad || dns_bad ||
        (l->transport == UM_TR_TLS && !um_sni_valid(l->sni, strnlen(l->sni, sizeof(l->sni))))) {
        if (cap) out[0] = '\0';
        return UM_EINVAL;
    }
    um_b64_encode(key, sizeof(key), l->server_public_key, 32, UM_B64_URL);
    PUT("umbra://%s@", key);
    for (size_t i = 0; i < l->n_addrs; i++) {
        um_addr_format(&l->addrs[i], addr, sizeof(addr));
        PUT("%s%s", i ? "," : "", addr);
    }
    um_b64_encode(key, sizeof(key), l->client_private_key, 32, UM_B64_URL);
    PUT("?k=%s", key);
    sodium_memzero(key, sizeof(key));
    if (l->transport == UM_TR_WS) {
        if (!um_ws_path_ok(l->ws_path) || !l->ws_host[0]) goto full;
        PUT("&t=ws&path=");
        for (const char *q = l->ws_path; *q; q++) {
            if (unreserved((unsigned char)*q) || *q == '/')
                PUT("%c", *q);
            else
                PUT("%%%02X", (unsigned char)*q);
        }
        PUT("&host=");
        for (const char *q = l->ws_host; *q; q++) {
            if (unreserved((unsigned char)*q) || *q == ':')
                PUT("%c", *q);
            else
                PUT("%%%02X", (unsigned char)*q);
        }
        if (l->sni[0]) PUT("&sni=%s", l->sni);
        if (l->ws_notls) PUT("&tls=0");
    } else if (l->transport == UM_TR_TLS) {
        /* The sni's characters are all unreserved: no escaping. */
        PUT("&t=tls&sni=%s", l->sni);
        if (l->fingerprint != UM_TLS_FP_CHROMIUM) PUT("&fp=%s", um_cfg_fp_name(l->fingerprint));
    } else if (l->transport == UM_TR_DNS) {
        PUT("&t=dns&zone=%s", l->zone); /* a normalised zone is all unreserved */
        if (l->resolver[0]) {
            PUT("&resolver=");
            for (const unsigned char *p = (const unsigned char *)l->resolver; *p; p++) {
                if (unreserved(*p))
                    PUT("%c", *p);
                else
                    PUT("%%%02X", *p);
            }
        }
    } else {
        if (l->shape != UM_SHAPE_NONE) PUT("&shape=%s", um_shape_name(l->shape));
        if (l->hop_lo) {
            PUT("&ports=%u-%u", (unsigned)l->hop_lo, (unsigned)l->hop_hi);
            if (l->hop_ms && l->hop_ms != UM_HOP_DEFAULT_MS) {
                char d[16];
                um_format_duration(d, sizeof(d), l->hop_ms);
                PUT("&hop=%s", d);
            }
        }
    }
    if (l->padding != UM_CFG_PAD_RANDOM) PUT("&pad=%s", um_cfg_pad_name(l->padding));
    if (l->rotate_set) {
        char r[40];
        um_format_size_range(r, sizeof(r), l->rotate_min, l->rotate_max);
        PUT("&rot=%s", r);
    }
    if (l->rotate_after_set) {
        char r[40];
        um_format_duration_range(r, sizeof(r), l->rotate_after_min_ms, l->rotate_after_max_ms);
        PUT("&rta=%s", r);
    }
    if (l->has_operator_key) {
        um_b64_encode(key, sizeof(key), l->operator_key, 32, UM_B64_URL);
        PUT("&o=%s", key);
    }
    for (size_t i = 0; i < l->n_list_urls && i < UM_CFG_MAX_LIST_URLS; i++) {
        PUT("&l=");
        for (const unsigned char *p = (const unsigned char *)l->list_urls[i]; *p; p++) {
            if (unreserved(*p) || *p == ':' || *p == '/')
                PUT("%c", *p);
            else
                PUT("%%%02X", *p);
        }
    }
    if (l->via[0]) {
        PUT("&via=");
        for (const unsigned char *p = (const unsigned char *)l->via; *p; p++) {
            if (unreserved(*p))
                PUT("%c", *p);
            else
                PUT("%%%02X", *p);
        }
    }
    if (l->name[0]) {
        PUT("#");
        for (const unsigned char *p = (const unsigned char *)l->name; *p; p++) {
            if (unreserved(*p))
                PUT("%c", *p);
            else
                PUT("%%%02X", *p);
        }
    }
    return 0;
full:
    sodium_memzero(key, sizeof(key));
    if (cap) out[0] = '\0';
    return UM_ENOSPC;
#undef PUT
}

/* The bridge of a link's via=, after the sections there are: a [server]
 * named for its link (else "bridge") with its own transport, named in the
 * via of servers[exit_i]. */
static void add_via(um_config_t *c, size_t exit_i, const um_link_t *l)
{
    if (!l->via[0] || c->n_servers >= UM_CFG_MAX_SERVERS ||
        c->n_transports >= UM_CFG_MAX_TRANSPORTS)
        return;
    um_link_t *b = malloc(sizeof(*b));
    if (!b) return;
    if (decode_at(b, l->via, strlen(l->via), NULL, 0, 1, false) != 0) {
        free(b);
        return;
    }
    size_t si = c->n_servers, ti = c->n_transports;
    um_peer_server_t *s = &c->servers[si];
    memset(s, 0, sizeof(*s));
    bool own = um_name_valid(b->name) && strcmp(b->name, c->servers[exit_i].name) != 0;
    snprintf(s->name, sizeof(s->name), "%s", own ? b->name : "bridge");
    memcpy(s->public_key, b->server_public_key, 32);
    s->has_public_key = true;
    memcpy(s->addrs, b->addrs, sizeof(b->addrs));
    s->n_addrs = b->n_addrs;
    s->weight = 1;
    s->max_connections = UM_MAX_CONNECTIONS_DEF;
    um_transport_cfg_t *t = &c->transports[ti];
    memset(t, 0, sizeof(*t));
    char tn[UM_NAME_MAX + 1];
    snprintf(tn, sizeof(tn), "link-via%zu", si);
    memcpy(t->name, tn, sizeof(tn));
    memcpy(s->transport, tn, sizeof(tn));
    t->type = b->transport;
    t->shape = b->transport == UM_TR_TLS ? UM_SHAPE_NONE : b->shape;
    t->padding = b->padding;
    if (b->transport == UM_TR_TLS) {
        snprintf(t->sni, sizeof(t->sni), "%s", b->sni);
        t->fingerprint = b->fingerprint;
    }
    if (b->transport == UM_TR_WS) {
        snprintf(t->sni, sizeof(t->sni), "%s", b->sni);
        snprintf(t->ws_path, sizeof(t->ws_path), "%s", b->ws_path);
        snprintf(t->ws_host, sizeof(t->ws_host), "%s", b->ws_host);
        t->ws_tls = !b->ws_notls;
    }
    if (b->transport == UM_TR_DNS) {
        snprintf(t->zone, sizeof(t->zone), "%s", b->zone);
        snprintf(t->resolver, sizeof(t->resolver), "%s", b->resolver);
    }
    memcpy(c->servers[exit_i].via, s->name, sizeof(s->name)); /* same size, NUL-terminated */
    c->n_servers++;
    c->n_transports++;
    free(b);
}

void um_peer_server_from_link(um_peer_server_t *s, const um_link_t *l, const char *transport)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->public_key, l->server_public_key, 32);
    s->has_public_key = true;
    memcpy(s->addrs, l->addrs, sizeof(l->addrs));
    s->n_addrs = l->n_addrs;
    s->weight = 1;
    s->max_connections = UM_MAX_CONNECTIONS_DEF;
    s->rotate_min = l->rotate_min;
    s->rotate_max = l->rotate_max;
    s->rotate_set = l->rotate_set;
    s->rotate_after_min_ms = l->rotate_after_min_ms;
    s->rotate_after_max_ms = l->rotate_after_max_ms;
    s->rotate_after_set = l->rotate_after_set;
    snprintf(s->transport, sizeof(s->transport), "%s", transport);
    memcpy(s->operator_key, l->operator_key, 32);
    s->has_operator_key = l->has_operator_key;
    for (size_t i = 0; i < l->n_list_urls && i < UM_CFG_MAX_LIST_URLS; i++)
        snprintf(s->list_urls[i], sizeof(s->list_urls[i]), "%s", l->list_urls[i]);
    s->n_list_urls = l->n_list_urls;
}

void um_config_from_link(um_config_t *c, const um_link_t *l)
{
    c->role = UM_ROLE_CLIENT;
    memcpy(c->private_key, l->client_private_key, 32);
    c->has_private_key = true;
    um_peer_server_t *s = &c->servers[0];
    um_peer_server_from_link(s, l, "link");
    snprintf(s->name, sizeof(s->name), "%s", um_name_valid(l->name) ? l->name : "link");
    c->n_servers = 1;
    um_transport_cfg_t *t = &c->transports[0];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "link");
    t->type = l->transport;
    t->shape = l->shape;
    t->padding = l->padding;
    if (l->transport == UM_TR_WS) {
        t->shape = UM_SHAPE_NONE;
        snprintf(t->sni, sizeof(t->sni), "%s", l->sni);
        snprintf(t->ws_path, sizeof(t->ws_path), "%s", l->ws_path);
        snprintf(t->ws_host, sizeof(t->ws_host), "%s", l->ws_host);
        t->ws_tls = !l->ws_notls;
    } else if (l->transport == UM_TR_TLS) {
        t->shape = UM_SHAPE_NONE;
        snprintf(t->sni, sizeof(t->sni), "%s", l->sni);
        t->fingerprint = l->fingerprint;
    } else if (l->hop_lo) {
        t->hop_lo = l->hop_lo;
        t->hop_hi = l->hop_hi;
        t->hop_ms = l->hop_ms ? l->hop_ms : UM_HOP_DEFAULT_MS;
    }
    if (l->transport == UM_TR_DNS) {
        t->shape = UM_SHAPE_NONE;
        snprintf(t->zone, sizeof(t->zone), "%s", l->zone);
        snprintf(t->resolver, sizeof(t->resolver), "%s", l->resolver);
    }
    c->n_transports = 1;
    add_via(c, 0, l);
    um_config_rotation_defaults(c);
}

/* A server name from an address: what um_name_valid refuses becomes '-'. */
static void name_from_addr(const um_addr_t *a, char *out, size_t cap)
{
    char s[UM_ADDR_STRLEN];
    size_t k = 0;
    um_addr_format(a, s, sizeof(s));
    for (size_t i = 0; s[i] && k + 1 < cap && k < UM_NAME_MAX; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_';
        if (!ok && (k == 0 || out[k - 1] == '-')) continue;
        out[k++] = ok ? ch : '-';
    }
    while (k > 0 && out[k - 1] == '-')
        k--;
    out[k] = 0;
    if (k == 0) snprintf(out, cap, "link");
}

int um_config_add_link(um_config_t *c, const um_link_t *l, char *err, size_t errlen)
{
    if (c->n_servers == 0) {
        um_config_from_link(c, l);
        return 0;
    }
    if (!c->has_private_key || sodium_memcmp(c->private_key, l->client_private_key, 32) != 0) {
        snprintf(err, errlen,
                 "carries another client key than the first link (all the links "
                 "of one client carry its one key)");
        return UM_EINVAL;
    }
    um_config_t *one = malloc(sizeof(*one));
    if (!one) return UM_ENOMEM;
    um_config_init(one);
    um_config_from_link(one, l);
    /* The link's server, and its bridge when it names one (via=): each with
     * a transport of its own, names no other server has, the exit's via
     * following its bridge's new name. */
    if (c->n_servers + one->n_servers > UM_CFG_MAX_SERVERS ||
        c->n_transports + one->n_servers > UM_CFG_MAX_TRANSPORTS) {
        um_config_free(one);
        free(one);
        snprintf(err, errlen, "more than %d links", UM_CFG_MAX_TRANSPORTS);
        return UM_ENOSPC;
    }
    size_t first = c->n_servers;
    for (size_t k = 0; k < one->n_servers; k++) {
        um_peer_server_t *s = &c->servers[c->n_servers];
        um_transport_cfg_t *t = &c->transports[c->n_transports];
        *s = one->servers[k];
        const um_transport_cfg_t *ot = um_config_transport(one, one->servers[k].transport);
        if (ot) *t = *ot;
        snprintf(t->name, sizeof(t->name), "link-%zu", c->n_servers + 1);
        memcpy(s->transport, t->name, sizeof(s->transport));
        char base[UM_NAME_MAX + 1];
        if (k == 0 && um_name_valid(l->name))
            snprintf(base, sizeof(base), "%s", l->name);
        else if (k == 0)
            name_from_addr(&l->addrs[0], base, sizeof(base));
        else
            snprintf(base, sizeof(base), "%s", one->servers[k].name);
        snprintf(s->name, sizeof(s->name), "%s", base);
        for (unsigned n = 2; n < 1000; n++) { /* a name no other server has */
            bool taken = false;
            for (size_t i = 0; i < c->n_servers && !taken; i++)
                taken = strcmp(c->servers[i].name, s->name) == 0;
            if (!taken) break;
            snprintf(s->name, sizeof(s->name), "%.*s-%u", UM_NAME_MAX - 4, base, n);
        }
        c->n_servers++;
        c->n_transports++;
    }
    if (one->n_servers > 1 && c->servers[first].via[0])
        memcpy(c->servers[first].via, c->servers[first + 1].name, sizeof(c->servers[first].via));
    um_config_free(one);
    free(one);
    return 0;
}
