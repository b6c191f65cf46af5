/* Routing rules: the parsers and the compiled matcher (see rules.h for the
 * indexes and how they keep first-match order). */
#include "proxy/rules.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

#define NONE32        UINT32_MAX
#define AC_SYMS       40 /* a-z 0-9 - . _ and "anything else" */
#define AC_OTHER      39
#define AC_NODES_MAX  65536u /* keyword automaton states */
#define RULE_LINE_MAX 1024   /* characters of one rules-file line */

static const char *const action_names[] = {"tunnel", "direct", "block"};

int um_rule_action_parse(const char *s, size_t n, uint8_t *out)
{
    for (uint8_t i = 0; i < 3; i++)
        if (strlen(action_names[i]) == n && strncasecmp(s, action_names[i], n) == 0) {
            *out = i;
            return 0;
        }
    return UM_EINVAL;
}

const char *um_rule_action_name(uint8_t action)
{
    return action < 3 ? action_names[action] : "?";
}

static int fail(char *why, size_t whylen, const char *msg)
{
    if (why && whylen) snprintf(why, whylen, "%s", msg);
    return UM_EINVAL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int ac_sym(unsigned char c)
{
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '0' && c <= '9') return 26 + (c - '0');
    if (c == '-') return 36;
    if (c == '.') return 37;
    if (c == '_') return 38;
    return AC_OTHER;
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5) return UM_EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return UM_EINVAL;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535) return UM_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

int um_rule_parse(um_rule_t *r, const char *s, size_t n, char *why, size_t whylen)
{
    memset(r, 0, sizeof(*r));
    while (n && is_space(*s)) {
        s++;
        n--;
    }
    while (n && is_space(s[n - 1]))
        n--;
    if (n == 0) return fail(why, whylen, "expected ACTION MATCH, e.g. 'direct cidr:10.0.0.0/8'");
    if (memchr(s, '\0', n)) return fail(why, whylen, "NUL byte in rule");
    size_t a = 0;
    while (a < n && !is_space(s[a]))
        a++;
    if (um_rule_action_parse(s, a, &r->action) != 0)
        return fail(why, whylen, "expected the action tunnel, direct or block first");
    const char *m = s + a;
    size_t mn = n - a;
    while (mn && is_space(*m)) {
        m++;
        mn--;
    }
    if (mn == 0)
        return fail(why, whylen,
                    "expected a match after the action: cidr:, domain:, keyword:, port: or geoip:");
    for (size_t i = 0; i < mn; i++)
        if (is_space(m[i])) return fail(why, whylen, "expected one match after the action");
    const char *colon = memchr(m, ':', mn);
    if (!colon)
        return fail(why, whylen,
                    "expected KIND:VALUE with KIND cidr, domain, keyword, port or geoip");
    size_t kl = (size_t)(colon - m);
    const char *v = colon + 1;
    size_t vn = mn - kl - 1;
    if (vn == 0) return fail(why, whylen, "empty value after the match kind");
    if (kl == 4 && strncasecmp(m, "cidr", 4) == 0) {
        char e[96];
        r->kind = UM_RULE_CIDR;
        if (um_cidr_parse(&r->cidr, v, vn, e, sizeof(e)) != 0)
            return fail(why, whylen, "cidr: expected an IP prefix such as 10.0.0.0/8 or fd00::/8");
        return 0;
    }
    if (kl == 6 && strncasecmp(m, "domain", 6) == 0) {
        r->kind = UM_RULE_DOMAIN;
        if (vn > 1 && v[vn - 1] == '.') vn--;
        if (vn > UM_DOMAIN_MAX) return fail(why, whylen, "domain: name longer than 253 characters");
        for (size_t i = 0; i < vn; i++) /* '_' too: service labels (_dmarc) are names */
            if (ac_sym((unsigned char)v[i]) == AC_OTHER)
                return fail(why, whylen,
                            "domain: expected a name of letters, digits, '-', '_' and '.'");
        for (size_t i = 0; i < vn; i++)
            r->text[i] = lower(v[i]);
        r->text[vn] = 0;
        r->text_len = (uint16_t)vn;
        if (r->text[0] == '.' || strstr(r->text, "..") || r->text[vn - 1] == '.')
            return fail(why, whylen, "domain: empty label in the name");
        return 0;
    }
    if (kl == 7 && strncasecmp(m, "keyword", 7) == 0) {
        r->kind = UM_RULE_KEYWORD;
        if (vn > UM_RULE_KEYWORD_MAX)
            return fail(why, whylen, "keyword: longer than 63 characters");
        for (size_t i = 0; i < vn; i++) {
            if (ac_sym((unsigned char)v[i]) == AC_OTHER)
                return fail(
                    why, whylen,
                    "keyword: expected letters, digits, '-', '_' and '.' (what names hold)");
            r->text[i] = lower(v[i]);
        }
        r->text[vn] = 0;
        r->text_len = (uint16_t)vn;
        return 0;
    }
    if (kl == 4 && strncasecmp(m, "port", 4) == 0) {
        r->kind = UM_RULE_PORT;
        const char *dash = memchr(v, '-', vn);
        size_t l1 = dash ? (size_t)(dash - v) : vn;
        if (parse_port(v, l1, &r->port_lo) != 0 ||
            (dash ? parse_port(dash + 1, vn - l1 - 1, &r->port_hi)
                  : (r->port_hi = r->port_lo, 0)) != 0 ||
            r->port_lo > r->port_hi)
            return fail(why, whylen, "port: expected N or N-M, 1 <= N <= M <= 65535");
        return 0;
    }
    if (kl == 5 && strncasecmp(m, "geoip", 5) == 0) {
        r->kind = UM_RULE_GEOIP;
        char c0 = vn == 2 ? v[0] : 0, c1 = vn == 2 ? v[1] : 0;
        c0 = (char)(c0 >= 'a' && c0 <= 'z' ? c0 - 'a' + 'A' : c0);
        c1 = (char)(c1 >= 'a' && c1 <= 'z' ? c1 - 'a' + 'A' : c1);
        if (c0 < 'A' || c0 > 'Z' || c1 < 'A' || c1 > 'Z')
            return fail(why, whylen, "geoip: expected a two-letter country code such as DE");
        r->cc = UM_GEOIP_CC(c0, c1);
        return 0;
    }
    return fail(why, whylen, "unknown match kind (expected cidr, domain, keyword, port or geoip)");
}

size_t um_rule_format(const um_rule_t *r, char *buf, size_t n)
{
    char v[UM_DOMAIN_MAX + 8];
    const char *kind = "?";
    v[0] = 0;
    switch (r->kind) {
    case UM_RULE_CIDR:
        kind = "cidr";
        um_cidr_format(&r->cidr, v, sizeof(v));
        break;
    case UM_RULE_DOMAIN:
    case UM_RULE_KEYWORD:
        kind = r->kind == UM_RULE_DOMAIN ? "domain" : "keyword";
        snprintf(v, sizeof(v), "%s", r->text);
        break;
    case UM_RULE_PORT:
        kind = "port";
        if (r->port_lo == r->port_hi)
            snprintf(v, sizeof(v), "%u", (unsigned)r->port_lo);
        else
            snprintf(v, sizeof(v), "%u-%u", (unsigned)r->port_lo, (unsigned)r->port_hi);
        break;
    case UM_RULE_GEOIP:
        kind = "geoip";
        snprintf(v, sizeof(v), "%c%c", (char)(r->cc >> 8), (char)(r->cc & 0xff));
        break;
    default: break;
    }
    int k = snprintf(buf, n, "%s %s:%s", um_rule_action_name(r->action), kind, v);
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n ? n - 1 : 0;
}

void um_rule_list_init(um_rule_list_t *l)
{
    memset(l, 0, sizeof(*l));
}

void um_rule_list_free(um_rule_list_t *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int um_rule_list_add(um_rule_list_t *l, const um_rule_t *r)
{
    if (l->n >= UM_RULES_MAX) return UM_ENOSPC;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        um_rule_t *v = realloc(l->v, nc * sizeof(*v));
        if (!v) return UM_ENOMEM;
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n++] = *r;
    return 0;
}

int um_rules_file_parse(um_rule_list_t *l, const char *path, const char *text, size_t n, char *err,
                        size_t errlen)
{
    size_t pos = 0;
    unsigned line = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && text[e] != '\n')
            e++;
        line++;
        const char *s = text + pos;
        size_t len = e - pos;
        pos = e < n ? e + 1 : e;
        while (len && is_space(*s)) {
            s++;
            len--;
        }
        if (len == 0 || s[0] == '#' || s[0] == ';') continue;
        if (len > RULE_LINE_MAX) {
            snprintf(err, errlen, "%s:%u: line longer than %d characters", path, line,
                     RULE_LINE_MAX);
            return UM_EINVAL;
        }
        for (size_t i = 1; i < len; i++) /* " # comment" at the end */
            if (s[i] == '#' && is_space(s[i - 1])) {
                len = i;
                break;
            }
        um_rule_t r;
        char why[160];
        if (um_rule_parse(&r, s, len, why, sizeof(why)) != 0) {
            while (len && is_space(s[len - 1]))
                len--;
            bool printable = true;
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) printable = false;
            if (printable && len <= 200)
                snprintf(err, errlen, "%s:%u: '%.*s': %s", path, line, (int)len, s, why);
            else
                snprintf(err, errlen, "%s:%u: %s", path, line, why);
            return UM_EINVAL;
        }
        int rc = um_rule_list_add(l, &r);
        if (rc != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, line,
                     rc == UM_ENOSPC ? "too many rules" : "out of memory");
            return rc;
        }
    }
    return 0;
}

/* ---- compiled set ---- */

typedef struct {
    uint32_t child[2];
    uint32_t best; /* lowest rule number of a prefix ending here */
} tnode_t;

typedef struct {
    tnode_t *v;
    uint32_t n, cap;
} trie_t;

typedef struct {
    uint64_t h;
    uint32_t rule; /* NONE32: empty slot */
    uint32_t off;  /* name in the pool */
    uint16_t len;
} dslot_t;

struct um_rules {
    size_t n_rules;
    uint8_t *actions; /* by rule number */
    uint8_t def;
    trie_t trie[2]; /* [0] IPv4, [1] IPv6 */
    um_geoip_t *geo;
    uint32_t cc_best[26 * 26];
    uint32_t geo_min; /* lowest rule number of any geoip rule */
    dslot_t *dom;
    size_t dom_mask; /* slots - 1; 0 with no domain rules */
    char *pool;
    uint64_t seed;
    uint32_t *ac_next; /* keyword automaton: states * AC_SYMS */
    uint32_t *ac_best;
    uint32_t ac_n;
    uint32_t *port_best; /* 65536 entries, NULL with no port rules */
};

static int trie_node(trie_t *t, uint32_t *out)
{
    if (t->n == t->cap) {
        uint32_t nc = t->cap ? t->cap * 2 : 64;
        tnode_t *v = realloc(t->v, (size_t)nc * sizeof(*v));
        if (!v) return UM_ENOMEM;
        t->v = v;
        t->cap = nc;
    }
    t->v[t->n] = (tnode_t){{0, 0}, NONE32};
    *out = t->n++;
    return 0;
}

static int trie_add(trie_t *t, const uint8_t *addr, unsigned bits, uint32_t rule)
{
    uint32_t cur = 0, nx;
    if (t->n == 0 && trie_node(t, &cur) != 0) return UM_ENOMEM;
    for (unsigned i = 0; i < bits; i++) {
        int b = (addr[i / 8] >> (7 - i % 8)) & 1;
        if (t->v[cur].child[b] == 0) {
            if (trie_node(t, &nx) != 0) return UM_ENOMEM;
            t->v[cur].child[b] = nx;
        }
        cur = t->v[cur].child[b];
    }
    if (rule < t->v[cur].best) t->v[cur].best = rule;
    return 0;
}

static uint32_t trie_find(const trie_t *t, const uint8_t *addr, unsigned bits)
{
    if (t->n == 0) return NONE32;
    uint32_t best = t->v[0].best, cur = 0;
    for (unsigned i = 0; i < bits; i++) {
        uint32_t nx = t->v[cur].child[(addr[i / 8] >> (7 - i % 8)) & 1];
        if (nx == 0) break;
        cur = nx;
        if (t->v[cur].best < best) best = t->v[cur].best;
    }
    return best;
}

/* FNV-1a over the reversed name, seeded: h of "b.c" extends to h of "a.b.c"
 * by feeding ".a" (reversed), so a lookup hashes the name once. */
static uint64_t rhash_step(uint64_t h, char c)
{
    return (h ^ (uint8_t)c) * 0x100000001b3ull;
}

static int dom_add(um_rules_t *r, const um_rule_t *ru, uint32_t rule, size_t *pool_used)
{
    uint64_t h = r->seed;
    for (size_t i = ru->text_len; i-- > 0;)
        h = rhash_step(h, ru->text[i]);
    size_t i = (size_t)h & r->dom_mask;
    for (;; i = (i + 1) & r->dom_mask) {
        dslot_t *s = &r->dom[i];
        if (s->rule == NONE32) {
            memcpy(r->pool + *pool_used, ru->text, ru->text_len);
            *s = (dslot_t){h, rule, (uint32_t)*pool_used, ru->text_len};
            *pool_used += ru->text_len;
            return 0;
        }
        if (s->h == h && s->len == ru->text_len &&
            memcmp(r->pool + s->off, ru->text, ru->text_len) == 0)
            return 0; /* a repeat: the earlier rule wins */
    }
}

static uint32_t dom_get(const um_rules_t *r, uint64_t h, const char *name, size_t len)
{
    for (size_t i = (size_t)h & r->dom_mask;; i = (i + 1) & r->dom_mask) {
        const dslot_t *s = &r->dom[i];
        if (s->rule == NONE32) return NONE32;
        if (s->h == h && s->len == len && memcmp(r->pool + s->off, name, len) == 0) return s->rule;
    }
}

static int build_ac(um_rules_t *r, const um_rule_t *rules, size_t n, char *why, size_t whylen)
{
    size_t chars = 1;
    for (size_t i = 0; i < n; i++)
        if (rules[i].kind == UM_RULE_KEYWORD) chars += rules[i].text_len;
    if (chars == 1) return 0;
    if (chars > AC_NODES_MAX)
        return fail(why, whylen, "keyword rules too long together (at most 65535 characters)");
    r->ac_next = calloc(chars * AC_SYMS, sizeof(uint32_t));
    r->ac_best = malloc(chars * sizeof(uint32_t));
    uint32_t *fail_of = calloc(chars, sizeof(uint32_t));
    uint32_t *queue = malloc(chars * sizeof(uint32_t));
    if (!r->ac_next || !r->ac_best || !fail_of || !queue) {
        free(fail_of);
        free(queue);
        return UM_ENOMEM;
    }
    r->ac_n = 1;
    r->ac_best[0] = NONE32;
    /* 0 in ac_next means "no edge" while building (the root is never a child). */
    for (size_t i = 0; i < n; i++) {
        if (rules[i].kind != UM_RULE_KEYWORD) continue;
        uint32_t cur = 0;
        for (size_t k = 0; k < rules[i].text_len; k++) {
            int s = ac_sym((unsigned char)rules[i].text[k]);
            uint32_t *e = &r->ac_next[(size_t)cur * AC_SYMS + (size_t)s];
            if (*e == 0) {
                r->ac_best[r->ac_n] = NONE32;
                *e = r->ac_n++;
            }
            cur = *e;
        }
        if ((uint32_t)i < r->ac_best[cur]) r->ac_best[cur] = (uint32_t)i;
    }
    /* Breadth first: failure links, the full transition table, and each
     * state's best folded with its failure state's (the keywords that end
     * at a suffix of what was read). */
    size_t qh = 0, qt = 0;
    for (int s = 0; s < AC_SYMS; s++) {
        uint32_t c = r->ac_next[s];
        if (c) {
            fail_of[c] = 0;
            queue[qt++] = c;
        }
    }
    while (qh < qt) {
        uint32_t u = queue[qh++];
        uint32_t f = fail_of[u];
        if (r->ac_best[f] < r->ac_best[u]) r->ac_best[u] = r->ac_best[f];
        for (int s = 0; s < AC_SYMS; s++) {
            uint32_t *e = &r->ac_next[(size_t)u * AC_SYMS + (size_t)s];
            uint32_t via = r->ac_next[(size_t)f * AC_SYMS + (size_t)s];
            if (*e) {
                fail_of[*e] = via;
                queue[qt++] = *e;
            } else {
                *e = via;
            }
        }
    }
    free(fail_of);
    free(queue);
    return 0;
}

int um_rules_compile(const um_rule_t *rules, size_t n, uint8_t default_action, um_geoip_t *geo,
                     um_rules_t **out, char *why, size_t whylen)
{
    if (n > UM_RULES_MAX || default_action > UM_RULE_BLOCK || (n && !rules)) {
        um_geoip_free(geo);
        return fail(why, whylen, "too many rules");
    }
    um_rules_t *r = calloc(1, sizeof(*r));
    if (!r) {
        um_geoip_free(geo);
        fail(why, whylen, "out of memory");
        return UM_ENOMEM;
    }
    r->geo = geo;
    r->def = default_action;
    r->n_rules = n;
    r->geo_min = NONE32;
    for (size_t i = 0; i < 26 * 26; i++)
        r->cc_best[i] = NONE32;
    randombytes_buf(&r->seed, sizeof(r->seed));
    r->seed |= 1;
    int rc = 0;
    size_t n_dom = 0, dom_chars = 0;
    bool any_port = false;
    r->actions = malloc(n ? n : 1);
    if (!r->actions) {
        rc = UM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const um_rule_t *ru = &rules[i];
        r->actions[i] = ru->action;
        switch (ru->kind) {
        case UM_RULE_CIDR: {
            int six = ru->cidr.family == UM_ADDR_IPV6;
            if ((rc = trie_add(&r->trie[six], ru->cidr.addr, ru->cidr.bits, (uint32_t)i)) != 0)
                goto out;
            break;
        }
        case UM_RULE_DOMAIN:
            n_dom++;
            dom_chars += ru->text_len;
            break;
        case UM_RULE_PORT: any_port = true; break;
        case UM_RULE_GEOIP: {
            if (!geo) {
                rc = fail(why, whylen, "a geoip rule needs a GeoIP table (geoip-file)");
                goto out;
            }
            unsigned a = (ru->cc >> 8) - 'A', b = (ru->cc & 0xff) - 'A';
            if (a >= 26 || b >= 26) {
                rc = fail(why, whylen, "bad country code");
                goto out;
            }
            if ((uint32_t)i < r->cc_best[a * 26 + b]) r->cc_best[a * 26 + b] = (uint32_t)i;
            if ((uint32_t)i < r->geo_min) r->geo_min = (uint32_t)i;
            break;
        }
        case UM_RULE_KEYWORD: break;
        default: rc = fail(why, whylen, "unknown rule kind"); goto out;
        }
    }
    if (n_dom) {
        size_t slots = 16;
        while (slots < n_dom * 2)
            slots *= 2;
        r->dom = malloc(slots * sizeof(*r->dom));
        r->pool = malloc(dom_chars ? dom_chars : 1);
        if (!r->dom || !r->pool) {
            rc = UM_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < slots; i++)
            r->dom[i].rule = NONE32;
        r->dom_mask = slots - 1;
        size_t used = 0;
        for (size_t i = 0; i < n; i++)
            if (rules[i].kind == UM_RULE_DOMAIN) dom_add(r, &rules[i], (uint32_t)i, &used);
    }
    if (any_port) {
        r->port_best = malloc(65536 * sizeof(uint32_t));
        if (!r->port_best) {
            rc = UM_ENOMEM;
            goto out;
        }
        /* In rule order, each rule takes the ports of its range that no
         * earlier rule took; next[p] leads to the first free port >= p (path
         * halving), so every port is written once: O(65536 + rules). */
        uint32_t *next = malloc(65537 * sizeof(uint32_t));
        if (!next) {
            rc = UM_ENOMEM;
            goto out;
        }
        for (uint32_t p = 0; p <= 65536; p++) {
            next[p] = p;
            if (p < 65536) r->port_best[p] = NONE32;
        }
        for (size_t i = 0; i < n; i++) {
            if (rules[i].kind != UM_RULE_PORT) continue;
            uint32_t p = rules[i].port_lo;
            for (;;) {
                while (next[p] != p) { /* find the first free port >= p */
                    next[p] = next[next[p]];
                    p = next[p];
                }
                if (p > rules[i].port_hi) break;
                r->port_best[p] = (uint32_t)i;
                next[p] = p + 1;
            }
        }
        free(next);
    }
    if ((rc = build_ac(r, rules, n, why, whylen)) != 0) goto out;
out:
    if (rc != 0) {
        if (rc == UM_ENOMEM) fail(why, whylen, "out of memory");
        um_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void um_rules_free(um_rules_t *r)
{
    if (!r) return;
    free(r->actions);
    free(r->trie[0].v);
    free(r->trie[1].v);
    um_geoip_free(r->geo);
    free(r->dom);
    free(r->pool);
    free(r->ac_next);
    free(r->ac_best);
    free(r->port_best);
    free(r);
}

static bool literal_ip(const um_addr_t *dst, um_addr_t *ip)
{
    char b[UM_DOMAIN_MAX + 1];
    size_t n = dst->domain_len < sizeof(b) ? dst->domain_len : sizeof(b) - 1;
    memcpy(b, dst->u.domain, n);
    b[n] = 0;
    if (n > 2 && b[0] == '[' && b[n - 1] == ']') { /* [v6] */
        memmove(b, b + 1, n - 2);
        b[n - 2] = 0;
    }
    memset(ip, 0, sizeof(*ip));
    ip->port = dst->port;
    if (inet_pton(AF_INET, b, ip->u.v4) == 1) {
        ip->type = UM_ADDR_IPV4;
        return true;
    }
    if (inet_pton(AF_INET6, b, ip->u.v6) == 1) {
        ip->type = UM_ADDR_IPV6;
        return true;
    }
    return false;
}

static uint32_t match_name(const um_rules_t *r, const char *raw, size_t n, uint32_t best)
{
    char name[UM_DOMAIN_MAX + 1];
    if (n > UM_DOMAIN_MAX) n = UM_DOMAIN_MAX;
    for (size_t i = 0; i < n; i++)
        name[i] = lower(raw[i]);
    if (n > 1 && name[n - 1] == '.') n--;
    if (r->dom_mask) {
        uint64_t h = r->seed;
        for (size_t i = n; i-- > 0;) {
            h = rhash_step(h, name[i]);
            if (i == 0 || name[i - 1] == '.') {
                uint32_t k = dom_get(r, h, name + i, n - i);
                if (k < best) best = k;
            }
        }
    }
    if (r->ac_n) {
        uint32_t st = 0;
        for (size_t i = 0; i < n; i++) {
            /* no keyword holds the "other" symbol: its edges all lead to the root */
            st = r->ac_next[(size_t)st * AC_SYMS + (size_t)ac_sym((unsigned char)name[i])];
            if (r->ac_best[st] < best) best = r->ac_best[st];
        }
    }
    return best;
}

static uint32_t match_ip(const um_rules_t *r, um_addr_t ip, uint32_t best)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (ip.type == UM_ADDR_IPV6 && memcmp(ip.u.v6, mapped, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, ip.u.v6 + 12, 4);
        ip.type = UM_ADDR_IPV4;
        memcpy(ip.u.v4, v4, 4);
    }
    int six = ip.type == UM_ADDR_IPV6;
    uint32_t k = trie_find(&r->trie[six], six ? ip.u.v6 : ip.u.v4, six ? 128 : 32);
    if (k < best) best = k;
    if (r->geo_min < best) { /* only when a geoip rule could still come first */
        uint16_t cc = um_geoip_lookup(r->geo, &ip);
        unsigned a = (cc >> 8) - 'A', b = (cc & 0xff) - 'A';
        if (cc && a < 26 && b < 26 && r->cc_best[a * 26 + b] < best) best = r->cc_best[a * 26 + b];
    }
    return best;
}

static uint8_t finish(const um_rules_t *r, uint32_t best, uint16_t port, size_t *index)
{
    if (r->port_best && r->port_best[port] < best) best = r->port_best[port];
    if (index) *index = best == NONE32 ? UM_RULE_NONE : best;
    return best == NONE32 ? r->def : r->actions[best];
}

uint8_t um_rules_match(const um_rules_t *r, const um_addr_t *dst, size_t *index)
{
    uint32_t best = NONE32;
    um_addr_t ip = *dst;
    bool is_ip = dst->type == UM_ADDR_IPV4 || dst->type == UM_ADDR_IPV6;
    if (dst->type == UM_ADDR_DOMAIN) {
        if (literal_ip(dst, &ip))
            is_ip = true;
        else
            best = match_name(r, dst->u.domain, dst->domain_len, best);
    }
    if (is_ip) best = match_ip(r, ip, best);
    return finish(r, best, dst->port, index);
}

uint8_t um_rules_match_named(const um_rules_t *r, const um_addr_t *ip, const char *name, size_t n,
                             size_t *index)
{
    uint32_t best = match_name(r, name, n, NONE32);
    return finish(r, match_ip(r, *ip, best), ip->port, index);
}

size_t um_rules_count(const um_rules_t *r)
{
    return r->n_rules;
}

uint8_t um_rules_default(const um_rules_t *r)
{
    return r->def;
}

const um_geoip_t *um_rules_geoip(const um_rules_t *r)
{
    return r->geo;
}
