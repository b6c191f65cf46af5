/* Rules files. Properties: a file that parses compiles; every parsed rule's
 * canonical text parses back to the same rule; the compiled set agrees with
 * a linear first-match scan on destinations taken from the rules themselves
 * (each domain rule's name, one level below it, each cidr's first address,
 * each port range's ends). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/rules.h"
#include "util/err.h"

static bool one(const um_rule_t *ru, const um_addr_t *a)
{
    switch (ru->kind) {
    case UM_RULE_CIDR: return a->type != UM_ADDR_DOMAIN && um_cidr_match(&ru->cidr, a);
    case UM_RULE_PORT: return a->port >= ru->port_lo && a->port <= ru->port_hi;
    case UM_RULE_KEYWORD: return a->type == UM_ADDR_DOMAIN && strstr(a->u.domain, ru->text);
    case UM_RULE_DOMAIN: {
        if (a->type != UM_ADDR_DOMAIN) return false;
        size_t n = a->domain_len, k = ru->text_len;
        if (n < k || memcmp(a->u.domain + n - k, ru->text, k) != 0) return false;
        return n == k || a->u.domain[n - k - 1] == '.';
    }
    default: return false;
    }
}

static void check(const um_rules_t *r, const um_rule_list_t *l, const um_addr_t *a)
{
    uint8_t b[16];
    if (a->type == UM_ADDR_DOMAIN &&
        (inet_pton(AF_INET, a->u.domain, b) == 1 || inet_pton(AF_INET6, a->u.domain, b) == 1))
        return; /* an IP literal as a name is matched as the IP (rules.h) */
    size_t want = UM_RULE_NONE, got;
    um_addr_t norm = *a; /* names are matched without a trailing dot (rules.h) */
    if (norm.type == UM_ADDR_DOMAIN && norm.domain_len > 1 &&
        norm.u.domain[norm.domain_len - 1] == '.')
        norm.u.domain[--norm.domain_len] = 0;
    for (size_t i = 0; i < l->n && want == UM_RULE_NONE; i++)
        if (one(&l->v[i], &norm)) want = i;
    um_rules_match(r, a, &got);
    if (got != want) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_rule_list_t l;
    um_rule_list_init(&l);
    char err[512];
    if (um_rules_file_parse(&l, "fuzz", (const char *)p, n, err, sizeof(err)) != 0) {
        um_rule_list_free(&l);
        return 0;
    }
    for (size_t i = 0; i < l.n; i++) {
        char t[300];
        um_rule_t back;
        um_rule_format(&l.v[i], t, sizeof(t));
        if (um_rule_parse(&back, t, strlen(t), err, sizeof(err)) != 0) abort();
        if (back.kind != l.v[i].kind || back.action != l.v[i].action) abort();
    }
    size_t k = 0; /* no GeoIP table here: leave the geoip rules out */
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].kind != UM_RULE_GEOIP) l.v[k++] = l.v[i];
    l.n = k;
    um_rules_t *r = NULL;
    if (um_rules_compile(l.v, l.n, UM_RULE_TUNNEL, NULL, &r, err, sizeof(err)) != 0) {
        /* only a too-long keyword set may fail */
        um_rule_list_free(&l);
        return 0;
    }
    for (size_t i = 0; i < l.n && i < 64; i++) {
        um_addr_t a;
        memset(&a, 0, sizeof(a));
        a.port = 80;
        const um_rule_t *ru = &l.v[i];
        if (ru->kind == UM_RULE_DOMAIN || ru->kind == UM_RULE_KEYWORD) {
            a.type = UM_ADDR_DOMAIN;
            memcpy(a.u.domain, ru->text, ru->text_len);
            a.domain_len = ru->text_len;
            check(r, &l, &a);
            if (ru->text_len + 2 <= UM_DOMAIN_MAX) {
                memmove(a.u.domain + 2, a.u.domain, ru->text_len);
                memcpy(a.u.domain, "x.", 2);
                a.domain_len = (uint16_t)(ru->text_len + 2);
                a.u.domain[a.domain_len] = 0;
                check(r, &l, &a);
            }
        } else if (ru->kind == UM_RULE_CIDR) {
            a.type = ru->cidr.family;
            memcpy(a.u.v6, ru->cidr.addr, 16);
            check(r, &l, &a);
        } else if (ru->kind == UM_RULE_PORT && ru->port_lo <= ru->port_hi) {
            a.type = UM_ADDR_IPV4;
            a.port = ru->port_lo;
            check(r, &l, &a);
            a.port = ru->port_hi;
            check(r, &l, &a);
        }
    }
    um_rules_free(r);
    um_rule_list_free(&l);
    return 0;
}
