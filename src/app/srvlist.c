/* Signed server lists: the format of docs/PROTOCOL.md, "Signed server lists".
 * Ed25519 through libsodium (crypto_sign_detached / verify_detached). */
#include "app/srvlist.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"
#include "util/err.h"

#define SIG_B64_LEN 86 /* 64 bytes, base64url without padding */

static int fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
{
    if (err && errlen) {
        char msg[384];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "line %zu: %s", line, msg);
    }
    return UM_EINVAL;
}

void um_srvlist_free(um_srvlist_t *l)
{
    if (!l) return;
    free(l->servers);
    memset(l, 0, sizeof(*l));
}

void um_sign_public(uint8_t pub[32], const uint8_t seed[32])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pub, sk, seed);
    sodium_memzero(sk, sizeof(sk));
}

static bool is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return n > 0;
}

static unsigned num(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil, restated). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int um_srvlist_parse_time(int64_t *out, const char *s, size_t n)
{
    /* 0123456789012345678 9
     * YYYY-MM-DDTHH:MM:SSZ */
    if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != 'Z' || !is_digits(s, 4) || !is_digits(s + 5, 2) || !is_digits(s + 8, 2) ||
        !is_digits(s + 11, 2) || !is_digits(s + 14, 2) || !is_digits(s + 17, 2))
        return UM_EINVAL;
    unsigned y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
    unsigned h = num(s + 11, 2), mi = num(s + 14, 2), se = num(s + 17, 2);
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > (unsigned)mdays[mo - 1] + (mo == 2 && leap ? 1u : 0u) || h > 23 || mi > 59 || se > 59)
        return UM_EINVAL;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

static int parse_u64(uint64_t *out, const char *s, size_t n)
{
    if (!is_digits(s, n) || n > 20 || (n > 1 && s[0] == '0')) return UM_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned dg = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dg) / 10) return UM_EINVAL;
        v = v * 10 + dg;
    }
    *out = v;
    return 0;
}

static bool word_is(const char *w, size_t wl, const char *lit)
{
    return wl == strlen(lit) && memcmp(w, lit, wl) == 0;
}

enum { ST_TAG, ST_VERSION, ST_EXPIRES, ST_SERVERS, ST_OPERATOR, ST_DONE };

int um_srvlist_parse(um_srvlist_t *l, const uint8_t *p, size_t n, bool signed_, char *err,
                     size_t errlen)
{
    memset(l, 0, sizeof(*l));
    if (n > UM_SRVLIST_MAX_BYTES)
        return fail(err, errlen, 1, "list larger than %d bytes", UM_SRVLIST_MAX_BYTES);
    if (n == 0) return fail(err, errlen, 1, "empty (expected '%s')", UM_SRVLIST_TAG);
    size_t pos = 0, line = 0, cap = 0;
    int st = ST_TAG, r = 0;
    while (pos < n) {
        line++;
        if (st == ST_DONE) {
            r = fail(err, errlen, line, "text after the signature line");
            goto out;
        }
        const char *s = (const char *)p + pos;
        const uint8_t *eol = memchr(p + pos, '\n', n - pos);
        if (!eol) {
            r = fail(err, errlen, line, "no newline (LF) at the end of the line");
            goto out;
        }
        size_t len = (size_t)(eol - (p + pos)), start = pos;
        pos += len + 1;
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '\r') {
                r = fail(err, errlen, line, "carriage return (lines end with LF alone)");
                goto out;
            }
            if (ch < 0x20 || ch > 0x7e) {
                r = fail(err, errlen, line, "control or non-ASCII byte at column %zu", i + 1);
                goto out;
            }
        }
        if (len == 0) {
            r = fail(err, errlen, line, "empty line");
            goto out;
        }
        const char *sp = memchr(s, ' ', len);
        size_t wl = sp ? (size_t)(sp - s) : len;
        const char *arg = sp ? sp + 1 : s + len;
        size_t al = sp ? len - wl - 1 : 0;
        switch (st) {
        case ST_TAG:
            if (len != strlen(UM_SRVLIST_TAG) || memcmp(s, UM_SRVLIST_TAG, len) != 0) {
                if (word_is(s, wl, "umbra-server-list"))
                    r = fail(err, errlen, line,
                             "format '%.*s' is newer than this umbra understands ('%s')",
                             (int)(len > 40 ? 40 : len), s, UM_SRVLIST_TAG);
                else
                    r = fail(err, errlen, line, "expected the format tag '%s'", UM_SRVLIST_TAG);
                goto out;
            }
            st = ST_VERSION;
            break;
        case ST_VERSION:
            if (!word_is(s, wl, "version") || parse_u64(&l->version, arg, al) != 0) {
                r = fail(err, errlen, line,
                         "expected 'version N' (N a whole number below 2^64, no leading zero)");
                goto out;
            }
            st = ST_EXPIRES;
            break;
        case ST_EXPIRES:
            if (!word_is(s, wl, "expires") || um_srvlist_parse_time(&l->expires, arg, al) != 0) {
                r = fail(err, errlen, line,
                         "expected 'expires YYYY-MM-DDTHH:MM:SSZ' (RFC 3339, UTC, e.g. "
                         "2027-01-31T00:00:00Z)");
                goto out;
            }
            memcpy(l->expires_text, arg, al);
            l->expires_text[al] = '\0';
            st = ST_SERVERS;
            break;
        case ST_SERVERS:
            if (word_is(s, wl, "server")) {
                if (l->n_servers == UM_SRVLIST_MAX_SERVERS) {
                    r = fail(err, errlen, line, "more than %d servers", UM_SRVLIST_MAX_SERVERS);
                    goto out;
                }
                if (l->n_servers == cap) {
                    size_t nc = cap ? cap * 2 : 8;
                    um_link_t *ns = realloc(l->servers, nc * sizeof(*ns));
                    if (!ns) {
                        r = UM_ENOMEM;
                        fail(err, errlen, line, "out of memory");
                        goto out;
                    }
                    l->servers = ns;
                    cap = nc;
                }
                char why[384];
                if (um_link_decode_public(&l->servers[l->n_servers], arg, al, why, sizeof(why)) !=
                    0) {
                    r = fail(err, errlen, line, "server link: %s", why);
                    goto out;
                }
                l->n_servers++;
                break;
            }
            if (!signed_ && (word_is(s, wl, "operator") || word_is(s, wl, "signature"))) {
                r = fail(err, errlen, line,
                         "'%.*s' line in the unsigned text ('umbra list sign' adds it)", (int)wl,
                         s);
                goto out;
            }
            if (word_is(s, wl, "operator")) {
                if (al != UM_SIGN_KEY_B64_LEN ||
                    um_b64_decode_key(l->operator_key, arg, al, UM_B64_URL) != 0) {
                    r = fail(err, errlen, line,
                             "expected 'operator <43-character base64url Ed25519 public key>'");
                    goto out;
                }
                st = ST_OPERATOR;
                break;
            }
            r = fail(err, errlen, line, "expected 'server <umbra link>'%s, not '%.*s'",
                     signed_ ? " or 'operator <key>'" : "", (int)(wl > 20 ? 20 : wl), s);
            goto out;
        case ST_OPERATOR: {
            size_t got = 0;
            if (!word_is(s, wl, "signature") || al != SIG_B64_LEN ||
                um_b64_decode(l->signature, sizeof(l->signature), &got, arg, al, UM_B64_URL) != 0 ||
                got != sizeof(l->signature)) {
                r = fail(err, errlen, line,
                         "expected 'signature <86-character base64url Ed25519 signature>'");
                goto out;
            }
            l->signed_len = start;
            l->has_signature = true;
            st = ST_DONE;
            break;
        }
        }
    }
    if (st < ST_SERVERS) {
        r = fail(err, errlen, line + 1, "missing '%s' line",
                 st == ST_VERSION ? "version N" : "expires YYYY-MM-DDTHH:MM:SSZ");
        goto out;
    }
    if (signed_ && st != ST_DONE) {
        r = fail(err, errlen, line + 1, "missing '%s' line (the list is not signed)",
                 st == ST_SERVERS ? "operator" : "signature");
        goto out;
    }
out:
    if (r != 0) um_srvlist_free(l);
    return r;
}

bool um_srvlist_sig_ok(const um_srvlist_t *l, const uint8_t *p, size_t n, const uint8_t pub[32])
{
    if (!l->has_signature || l->signed_len > n) return false;
    return crypto_sign_verify_detached(l->signature, p, l->signed_len, pub) == 0;
}

um_srvlist_status_t um_srvlist_check(um_srvlist_t *l, const uint8_t *p, size_t n,
                                     const uint8_t *trusted, uint64_t min_version, int64_t now,
                                     char *err, size_t errlen)
{
    if (um_srvlist_parse(l, p, n, true, err, errlen) != 0) return UM_SRVLIST_MALFORMED;
    char key[48];
    if (!trusted || sodium_memcmp(trusted, l->operator_key, 32) != 0) {
        um_b64_encode(key, sizeof(key), l->operator_key, 32, UM_B64_URL);
        snprintf(err, errlen, "signed by operator %s, %s", key,
                 trusted ? "not the trusted operator-key" : "and no operator-key is set");
        return UM_SRVLIST_UNKNOWN_OPERATOR;
    }
    if (!um_srvlist_sig_ok(l, p, n, trusted)) {
        snprintf(err, errlen, "the signature does not verify under the operator key");
        return UM_SRVLIST_BAD_SIGNATURE;
    }
    if (l->expires <= now) {
        snprintf(err, errlen, "version %llu expired at %s", (unsigned long long)l->version,
                 l->expires_text);
        return UM_SRVLIST_EXPIRED;
    }
    if (l->version < min_version) {
        snprintf(err, errlen, "version %llu is older than version %llu already accepted",
                 (unsigned long long)l->version, (unsigned long long)min_version);
        return UM_SRVLIST_OLDER;
    }
    if (err && errlen) err[0] = '\0';
    return UM_SRVLIST_OK;
}

const char *um_srvlist_reason(um_srvlist_status_t st)
{
    switch (st) {
    case UM_SRVLIST_OK: return "";
    case UM_SRVLIST_MALFORMED: return "malformed";
    case UM_SRVLIST_UNKNOWN_OPERATOR: return "unknown operator";
    case UM_SRVLIST_BAD_SIGNATURE: return "bad signature";
    case UM_SRVLIST_EXPIRED: return "expired";
    case UM_SRVLIST_OLDER: return "older version";
    }
    return "malformed";
}

int um_srvlist_sign(const uint8_t *body, size_t n, const uint8_t seed[32], uint8_t **out,
                    size_t *outn, char *err, size_t errlen)
{
    *out = NULL;
    *outn = 0;
    bool add_lf = n > 0 && body[n - 1] != '\n';
    /* The text with its final LF, then "operator <key>\n", "signature <sig>\n". */
    size_t bl = n + add_lf, total = bl + 9 + UM_SIGN_KEY_B64_LEN + 1 + 10 + SIG_B64_LEN + 1;
    if (total > UM_SRVLIST_MAX_BYTES)
        return fail(err, errlen, 1, "the signed list would be larger than %d bytes",
                    UM_SRVLIST_MAX_BYTES);
    uint8_t *buf = malloc(total + 1);
    if (!buf) return UM_ENOMEM;
    memcpy(buf, body, n);
    if (add_lf) buf[n] = '\n';
    um_srvlist_t l;
    int r = um_srvlist_parse(&l, buf, bl, false, err, errlen);
    um_srvlist_free(&l);
    if (r != 0) {
        free(buf);
        return r;
    }
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[64];
    char text[SIG_B64_LEN + 1];
    crypto_sign_seed_keypair(pk, sk, seed);
    um_b64_encode(text, sizeof(text), pk, 32, UM_B64_URL);
    size_t o = bl + (size_t)snprintf((char *)buf + bl, total + 1 - bl, "operator %s\n", text);
    crypto_sign_detached(sig, NULL, buf, o, sk);
    sodium_memzero(sk, sizeof(sk));
    um_b64_encode(text, sizeof(text), sig, sizeof(sig), UM_B64_URL);
    o += (size_t)snprintf((char *)buf + o, total + 1 - o, "signature %s\n", text);
    *out = buf;
    *outn = o;
    return 0;
}

/* ---- merging into a client config ---- */

static bool same_transport(const um_transport_cfg_t *t, const um_link_t *k)
{
    uint8_t shape = k->transport == UM_TR_TLS ? UM_SHAPE_NONE : k->shape;
    return t->type == k->transport && t->shape == shape && t->padding == k->padding &&
           t->timing == UM_CFG_TIMING_NONE && strcmp(t->sni, k->sni) == 0 &&
           (k->transport != UM_TR_TLS || t->fingerprint == k->fingerprint) &&
           (k->transport != UM_TR_WS ||
            (strcmp(t->ws_path, k->ws_path) == 0 && strcmp(t->ws_host, k->ws_host) == 0 &&
             t->ws_tls == !k->ws_notls)) &&
           t->hop_lo == k->hop_lo && t->hop_hi == k->hop_hi &&
           (!k->hop_lo || t->hop_ms == k->hop_ms) && strcmp(t->zone, k->zone) == 0 &&
           strcmp(t->resolver, k->resolver) == 0;
}

static bool name_used(const um_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_servers; i++)
        if (strcmp(c->servers[i].name, name) == 0) return true;
    return false;
}

/* The transport for a link's parameters: an equal one, or a new one. */
static const char *transport_for(um_config_t *c, const um_link_t *k)
{
    for (size_t i = 0; i < c->n_transports; i++)
        if (same_transport(&c->transports[i], k)) return c->transports[i].name;
    if (c->n_transports == UM_CFG_MAX_TRANSPORTS) return NULL;
    um_transport_cfg_t *t = &c->transports[c->n_transports];
    memset(t, 0, sizeof(*t));
    for (unsigned i = (unsigned)c->n_transports;; i++) {
        snprintf(t->name, sizeof(t->name), "list-%u", i);
        bool used = false;
        for (size_t j = 0; j < c->n_transports; j++)
            if (strcmp(c->transports[j].name, t->name) == 0) used = true;
        if (!used) break;
    }
    t->type = k->transport;
    t->shape = k->transport == UM_TR_TLS ? UM_SHAPE_NONE : k->shape;
    t->padding = k->padding;
    if (k->transport == UM_TR_WS) {
        snprintf(t->sni, sizeof(t->sni), "%s", k->sni);
        snprintf(t->ws_path, sizeof(t->ws_path), "%s", k->ws_path);
        snprintf(t->ws_host, sizeof(t->ws_host), "%s", k->ws_host);
        t->ws_tls = !k->ws_notls;
    } else if (k->transport == UM_TR_TLS) {
        snprintf(t->sni, sizeof(t->sni), "%s", k->sni);
        t->fingerprint = k->fingerprint;
    } else if (k->hop_lo) {
        t->hop_lo = k->hop_lo;
        t->hop_hi = k->hop_hi;
        t->hop_ms = k->hop_ms ? k->hop_ms : UM_HOP_DEFAULT_MS;
    }
    snprintf(t->zone, sizeof(t->zone), "%s", k->zone);
    snprintf(t->resolver, sizeof(t->resolver), "%s", k->resolver);
    c->n_transports++;
    return t->name;
}

int um_srvlist_merge(um_config_t *c, const um_srvlist_t *l, size_t *added)
{
    int r = 0;
    *added = 0;
    for (size_t i = 0; i < l->n_servers; i++) {
        const um_link_t *k = &l->servers[i];
        bool known = false;
        for (size_t j = 0; j < c->n_servers && !known; j++)
            known = c->servers[j].has_public_key &&
                    sodium_memcmp(c->servers[j].public_key, k->server_public_key, 32) == 0;
        if (known) continue;
        if (c->n_servers == UM_CFG_MAX_SERVERS) {
            r = UM_ENOSPC;
            break;
        }
        const char *tn = transport_for(c, k);
        if (!tn) {
            r = UM_ENOSPC;
            continue;
        }
        um_peer_server_t *s = &c->servers[c->n_servers];
        um_peer_server_from_link(s, k, tn);
        /* A list's own operator key stands for entries that carry none. */
        if (!k->has_operator_key) memcpy(s->operator_key, l->operator_key, 32);
        s->has_operator_key = true;
        if (um_name_valid(k->name) && !name_used(c, k->name))
            snprintf(s->name, sizeof(s->name), "%s", k->name);
        else
            for (unsigned m = (unsigned)c->n_servers; name_used(c, s->name) || !s->name[0]; m++)
                snprintf(s->name, sizeof(s->name), "list-%u", m);
        c->n_servers++;
        (*added)++;
    }
    um_config_rotation_defaults(c);
    return r;
}
