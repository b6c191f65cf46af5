/* Routing-rule lookups per second: a GeoIP table of N ranges (Tor text
 * format, generated here, 100k by default), D domain rules, K keyword rules,
 * C cidr rules and a few port and geoip rules, then lookups of random
 * destinations (half IPv4, half names) timed for a fixed count.
 *   bench_proxy_rules [GEOIP_RANGES [DOMAINS [LOOKUPS]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/geoip.h"
#include "proxy/rules.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t ranges = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t domains = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000;
    size_t lookups = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000000;
    char err[256];
    um_geoip_t *g;
    if (um_geoip_new(&g) != 0) return 1;
    size_t cap = ranges * 40 + 64, n = 0;
    char *txt = malloc(cap);
    uint32_t step = ranges ? (uint32_t)(0xffffffffu / ranges) : 1;
    for (size_t i = 0; i < ranges; i++) { /* contiguous ranges over the IPv4 space */
        uint32_t lo = (uint32_t)i * step, hi = lo + step - 1;
        n += (size_t)snprintf(txt + n, cap - n, "%u,%u,%c%c\n", lo, hi, 'A' + (int)(i % 26),
                              'A' + (int)((i / 26) % 26));
    }
    double t0 = now_s();
    if (um_geoip_parse_text(g, "gen", txt, n, err, sizeof(err)) != 0 ||
        um_geoip_finish(g, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t_geo = now_s() - t0;
    free(txt);
    size_t nr = domains + 1000 + 200 + 20 + 10;
    um_rule_t *v = calloc(nr, sizeof(*v));
    size_t k = 0;
    char s[128];
    for (size_t i = 0; i < domains; i++) {
        snprintf(s, sizeof(s), "%s domain:d%zu.example%zu.com", i % 3 ? "direct" : "block", i,
                 i % 97);
        um_rule_parse(&v[k++], s, strlen(s), err, sizeof(err));
    }
    for (size_t i = 0; i < 1000; i++) {
        snprintf(s, sizeof(s), "block keyword:kw%zux", i);
        um_rule_parse(&v[k++], s, strlen(s), err, sizeof(err));
    }
    for (size_t i = 0; i < 200; i++) {
        snprintf(s, sizeof(s), "direct cidr:%u.%u.0.0/16", 10 + (unsigned)(i % 200),
                 (unsigned)(i * 7 % 256));
        um_rule_parse(&v[k++], s, strlen(s), err, sizeof(err));
    }
    for (size_t i = 0; i < 20; i++) {
        snprintf(s, sizeof(s), "direct geoip:%c%c", 'A' + (int)i, 'B');
        um_rule_parse(&v[k++], s, strlen(s), err, sizeof(err));
    }
    for (size_t i = 0; i < 10; i++) {
        snprintf(s, sizeof(s), "block port:%zu-%zu", 6000 + i * 10, 6005 + i * 10);
        um_rule_parse(&v[k++], s, strlen(s), err, sizeof(err));
    }
    um_rules_t *r;
    t0 = now_s();
    if (um_rules_compile(v, k, UM_RULE_TUNNEL, g, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "compile: %s\n", err);
        return 1;
    }
    double t_comp = now_s() - t0;
    enum { POOL = 4096 };
    um_addr_t *q = calloc(POOL, sizeof(*q));
    for (size_t i = 0; i < POOL; i++) {
        q[i].port = (uint16_t)(1 + rnd() % 65535);
        if (i % 2) {
            q[i].type = UM_ADDR_IPV4;
            uint32_t x = rnd();
            memcpy(q[i].u.v4, &x, 4);
        } else {
            q[i].type = UM_ADDR_DOMAIN;
            int m = snprintf(q[i].u.domain, sizeof(q[i].u.domain), "www.d%u.example%u.com",
                             rnd() % (unsigned)(domains * 2 + 1), rnd() % 97);
            q[i].domain_len = (uint16_t)m;
        }
    }
    size_t counts[3] = {0, 0, 0};
    t0 = now_s();
    for (size_t i = 0; i < lookups; i++)
        counts[um_rules_match(r, &q[i % POOL], NULL)]++;
    double t = now_s() - t0;
    printf("rules: %zu (%zu domain, 1000 keyword, 200 cidr, 20 geoip, 10 port); GeoIP %zu ranges "
           "(parsed in %.2f s); compiled in %.3f s\n",
           k, domains, ranges, t_geo, t_comp);
    printf("lookups: %zu in %.3f s = %.2f M/s (%.0f ns each); tunnel %zu direct %zu block %zu\n",
           lookups, t, (double)lookups / t / 1e6, t * 1e9 / (double)lookups, counts[0], counts[1],
           counts[2]);
    um_rules_free(r);
    free(v);
    free(q);
    return 0;
}
