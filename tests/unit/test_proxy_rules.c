/* Routing rules: the rule parser, the rules-file parser, the GeoIP text
 * parser, and the compiled matcher: each match kind, IPv4 and IPv6,
 * boundaries, first-match order across kinds, and a differential test
 * against a plain linear scan of the list. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/dnsmap.h"
#include "proxy/geoip.h"
#include "proxy/rules.h"
#include "util/err.h"

static um_addr_t dst(const char *host, uint16_t port)
{
    um_addr_t a;
    assert_int_equal(um_addr_parse_host(&a, host, strlen(host), NULL, 0), 0);
    a.port = port;
    return a;
}

static um_rule_t rule(const char *s)
{
    um_rule_t r;
    char why[160];
    int rc = um_rule_parse(&r, s, strlen(s), why, sizeof(why));
    if (rc != 0) fail_msg("'%s': %s", s, why);
    return r;
}

/* Compiles a NULL-terminated list of rule texts. */
static um_rules_t *compile(const char *const *txt, uint8_t def, um_geoip_t *geo)
{
    um_rule_t v[64];
    size_t n = 0;
    while (txt[n]) {
        v[n] = rule(txt[n]);
        n++;
    }
    um_rules_t *r = NULL;
    char why[160];
    int rc = um_rules_compile(v, n, def, geo, &r, why, sizeof(why));
    if (rc != 0) fail_msg("compile: %s", why);
    return r;
}

static uint8_t act(um_rules_t *r, const char *host, uint16_t port, size_t *idx)
{
    um_addr_t a = dst(host, port);
    return um_rules_match(r, &a, idx);
}

static void test_parse_good(void **state)
{
    static const struct {
        const char *in, *canon;
    } t[] = {
        {"direct cidr:10.0.0.0/8", "direct cidr:10.0.0.0/8"},
        {"  BLOCK   Domain:Ads.Example.COM.  ", "block domain:ads.example.com"},
        {"tunnel keyword:Track", "tunnel keyword:track"},
        {"direct port:443", "direct port:443"},
        {"direct port:1-65535", "direct port:1-65535"},
        {"direct geoip:de", "direct geoip:DE"},
        {"direct cidr:fd00::/8", "direct cidr:fd00::/8"},
        {"direct cidr:10.1.2.3", "direct cidr:10.1.2.3/32"},
        {"direct cidr:10.1.2.3/8", "direct cidr:10.0.0.0/8"},
        {"block domain:_dmarc.example.org", "block domain:_dmarc.example.org"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        um_rule_t r = rule(t[i].in);
        char b[300];
        um_rule_format(&r, b, sizeof(b));
        assert_string_equal(b, t[i].canon);
    }
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "direct",
        "allow cidr:10.0.0.0/8",
        "direct cidr:10.0.0.0/33",
        "direct cidr:",
        "direct cidr:example.com",
        "direct domain:a..b",
        "direct domain:.a",
        "direct domain:a b",
        "direct domain:exa$mple.com",
        "direct keyword:a/b",
        "direct port:0",
        "direct port:65536",
        "direct port:10-5",
        "direct port:x",
        "direct port:1-",
        "direct geoip:DEU",
        "direct geoip:1A",
        "direct country:DE",
        "direct cidr 10.0.0.0/8",
        "direct cidr:10.0.0.0/8 extra",
        "direct keyword:0123456789012345678901234567890123456789"
        "012345678901234567890123456789",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        um_rule_t r;
        char why[160] = "";
        if (um_rule_parse(&r, bad[i], strlen(bad[i]), why, sizeof(why)) != UM_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_true(why[0] != 0);
    }
}

static void test_file(void **state)
{
    const char txt[] = "# comment\n"
                       "; another\n"
                       "\n"
                       "direct cidr:10.0.0.0/8   # trailing comment\n"
                       "  block domain:ads.example\r\n"
                       "tunnel port:22";
    um_rule_list_t l;
    um_rule_list_init(&l);
    char err[256];
    assert_int_equal(um_rules_file_parse(&l, "r.rules", txt, sizeof(txt) - 1, err, sizeof(err)), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0].kind, UM_RULE_CIDR);
    assert_int_equal(l.v[1].action, UM_RULE_BLOCK);
    assert_int_equal(l.v[2].port_lo, 22);
    const char bad[] = "direct cidr:10.0.0.0/8\n\n# x\ndirect domian:x.org\n";
    assert_int_equal(um_rules_file_parse(&l, "r.rules", bad, sizeof(bad) - 1, err, sizeof(err)),
                     UM_EINVAL);
    assert_non_null(strstr(err, "r.rules:4: 'direct domian:x.org': unknown match kind"));
    um_rule_list_free(&l);
}

static void test_cidr(void **state)
{
    static const char *const t[] = {"direct cidr:10.1.0.0/16", "block cidr:10.0.0.0/8",
                                    "direct cidr:2001:db8::/32", "block cidr:0.0.0.0/0", NULL};
    um_rules_t *r = compile(t, UM_RULE_TUNNEL, NULL);
    size_t i;
    assert_int_equal(act(r, "10.1.255.255", 80, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 0);
    assert_int_equal(act(r, "10.2.0.0", 80, &i), UM_RULE_BLOCK); /* boundary just outside /16 */
    assert_int_equal(i, 1);
    assert_int_equal(act(r, "10.0.255.255", 80, &i), UM_RULE_BLOCK);
    assert_int_equal(act(r, "11.0.0.0", 80, &i), UM_RULE_BLOCK); /* the /0 */
    assert_int_equal(i, 3);
    assert_int_equal(act(r, "::ffff:10.1.0.1", 80, &i), UM_RULE_DIRECT); /* mapped: as IPv4 */
    assert_int_equal(act(r, "2001:db8:ffff::1", 80, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 2);
    assert_int_equal(act(r, "2001:db9::1", 80, &i), UM_RULE_TUNNEL); /* no IPv6 /0 */
    assert_int_equal(i, UM_RULE_NONE);
    assert_int_equal(act(r, "10.1.2.3.example", 80, &i), UM_RULE_TUNNEL); /* names: no cidr */
    um_addr_t lit;
    memset(&lit, 0, sizeof(lit));
    lit.type = UM_ADDR_DOMAIN;
    strcpy(lit.u.domain, "10.1.2.3"); /* an IP literal given as a name: as the IP */
    lit.domain_len = 8;
    assert_int_equal(um_rules_match(r, &lit, &i), UM_RULE_DIRECT);
    um_rules_free(r);
}

static void test_domain_keyword(void **state)
{
    static const char *const t[] = {"direct domain:example.org", "block keyword:ads",
                                    "block domain:org", "tunnel domain:a.example.org", NULL};
    um_rules_t *r = compile(t, UM_RULE_DIRECT, NULL);
    size_t i;
    assert_int_equal(act(r, "example.org", 443, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 0);
    assert_int_equal(act(r, "WWW.Example.Org.", 443, &i), UM_RULE_DIRECT); /* case, dot */
    assert_int_equal(i, 0);
    /* rule 0 comes before rule 3, which is more specific: first match wins */
    assert_int_equal(act(r, "x.a.example.org", 443, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 0);
    assert_int_equal(act(r, "badexample.org", 443, &i), UM_RULE_BLOCK); /* not a subdomain */
    assert_int_equal(i, 2);
    assert_int_equal(act(r, "ads.example.org", 443, &i), UM_RULE_DIRECT); /* rule 0 first */
    assert_int_equal(act(r, "myads.net", 443, &i), UM_RULE_BLOCK);
    assert_int_equal(i, 1);
    assert_int_equal(act(r, "example.com", 443, &i), UM_RULE_DIRECT);
    assert_int_equal(i, UM_RULE_NONE);
    assert_int_equal(act(r, "a-d-s.com", 443, &i), UM_RULE_DIRECT);
    assert_int_equal(i, UM_RULE_NONE);
    um_rules_free(r);
}

static void test_port_and_order(void **state)
{
    static const char *const t[] = {"block port:25",          "direct port:20-30",
                                    "tunnel cidr:10.0.0.0/8", "direct port:65535",
                                    "block port:1-65535",     NULL};
    um_rules_t *r = compile(t, UM_RULE_TUNNEL, NULL);
    size_t i;
    assert_int_equal(act(r, "10.0.0.1", 25, &i), UM_RULE_BLOCK);
    assert_int_equal(i, 0);
    assert_int_equal(act(r, "10.0.0.1", 20, &i), UM_RULE_DIRECT);
    assert_int_equal(act(r, "10.0.0.1", 31, &i), UM_RULE_TUNNEL);
    assert_int_equal(i, 2);
    assert_int_equal(act(r, "example.org", 30, &i), UM_RULE_DIRECT);
    assert_int_equal(act(r, "example.org", 19, &i), UM_RULE_BLOCK);
    assert_int_equal(i, 4);
    assert_int_equal(act(r, "example.org", 65535, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 3);
    um_rules_free(r);
}

static void test_geoip(void **state)
{
    const char txt[] = "# Tor geoip\n"
                       "16777216,16777471,AU\n"   /* 1.0.0.0 - 1.0.0.255 */
                       "167772160,184549375,de\n" /* 10.0.0.0/8 */
                       "184549376,184549376,??\n"
                       "2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,FR\n";
    um_geoip_t *g;
    char err[256];
    assert_int_equal(um_geoip_new(&g), 0);
    assert_int_equal(um_geoip_parse_text(g, "geoip", txt, sizeof(txt) - 1, err, sizeof(err)), 0);
    assert_int_equal(um_geoip_finish(g, err, sizeof(err)), 0);
    assert_int_equal(um_geoip_ranges(g), 3);
    um_addr_t a = dst("1.0.0.0", 1);
    assert_int_equal(um_geoip_lookup(g, &a), UM_GEOIP_CC('A', 'U'));
    a = dst("1.0.0.255", 1);
    assert_int_equal(um_geoip_lookup(g, &a), UM_GEOIP_CC('A', 'U'));
    a = dst("1.0.1.0", 1);
    assert_int_equal(um_geoip_lookup(g, &a), 0);
    a = dst("0.255.255.255", 1);
    assert_int_equal(um_geoip_lookup(g, &a), 0);
    a = dst("11.0.0.0", 1); /* the ?? range */
    assert_int_equal(um_geoip_lookup(g, &a), 0);
    a = dst("2001:db8:1::1", 1);
    assert_int_equal(um_geoip_lookup(g, &a), UM_GEOIP_CC('F', 'R'));
    static const char *const t[] = {"block cidr:10.9.0.0/16", "direct geoip:DE", "block geoip:FR",
                                    NULL};
    um_rules_t *r = compile(t, UM_RULE_TUNNEL, g);
    size_t i;
    assert_int_equal(act(r, "10.1.1.1", 80, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 1);
    assert_int_equal(act(r, "10.9.1.1", 80, &i), UM_RULE_BLOCK);
    assert_int_equal(i, 0);
    assert_int_equal(act(r, "2001:db8::5", 80, &i), UM_RULE_BLOCK);
    assert_int_equal(act(r, "1.0.0.1", 80, &i), UM_RULE_TUNNEL);
    um_rules_free(r); /* frees g */

    static const char *const bad[] = {
        "1,2\n",
        "1,2,ABC\n",
        "2,1,DE\n",
        "x,2,DE\n",
        "4294967296,4294967296,DE\n",
        "2001:db8::,zz,DE\n",
        "1,2,D1\n",
        "1,2,A?\n",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(um_geoip_new(&g), 0);
        assert_int_not_equal(
            um_geoip_parse_text(g, "geoip", bad[k], strlen(bad[k]), err, sizeof(err)), 0);
        assert_non_null(strstr(err, "geoip:1: "));
        um_geoip_free(g);
    }
    assert_int_equal(um_geoip_new(&g), 0);
    const char ov[] = "1,10,DE\n10,20,FR\n";
    assert_int_equal(um_geoip_parse_text(g, "geoip", ov, sizeof(ov) - 1, err, sizeof(err)), 0);
    assert_int_equal(um_geoip_finish(g, err, sizeof(err)), UM_EINVAL);
    um_geoip_free(g);
    /* geoip rule without a table */
    um_rule_t gr = rule("direct geoip:DE");
    um_rules_t *rr = NULL;
    assert_int_equal(um_rules_compile(&gr, 1, 0, NULL, &rr, err, sizeof(err)), UM_EINVAL);
}

/* ---- MaxMind DB: a small file written here (format 2.0, 24-bit records,
 * an IPv4 tree), read back through um_geoip_load ---- */

typedef struct {
    uint8_t *p;
    size_t n;
} wbuf_t;

static void put(wbuf_t *b, const void *x, size_t n)
{
    b->p = realloc(b->p, b->n + n);
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void put_str(wbuf_t *b, const char *s)
{
    uint8_t c = (uint8_t)(0x40 | strlen(s)); /* type 2 (utf8), size < 29 */
    put(b, &c, 1);
    put(b, s, strlen(s));
}

static void put_uint(wbuf_t *b, int type, uint64_t v, int bytes)
{
    uint8_t c[10];
    size_t k = 0;
    if (type <= 7) {
        c[k++] = (uint8_t)(type << 5 | bytes);
    } else { /* extended type */
        c[k++] = (uint8_t)bytes;
        c[k++] = (uint8_t)(type - 7);
    }
    for (int i = bytes - 1; i >= 0; i--)
        c[k++] = (uint8_t)(v >> (8 * i));
    put(b, c, k);
}

/* nodes[i][b]: >= 0 a node, -1 nothing, <= -2 data entry -(v + 2) */
static void write_mmdb(const char *path)
{
    static const struct {
        uint32_t ip;
        unsigned bits;
        const char *cc;
    } nets[] = {{0x0a000000u, 8, "DE"}, {0xc0a80100u, 24, "fr"}, {0xc0a80180u, 25, "US"}};
    int nodes[128][2];
    int nn = 1;
    nodes[0][0] = nodes[0][1] = -1;
    for (size_t k = 0; k < 3; k++) {
        int cur = 0;
        for (unsigned i = 0; i < nets[k].bits; i++) {
            int bit = (nets[k].ip >> (31 - i)) & 1;
            if (i == nets[k].bits - 1) {
                nodes[cur][bit] = -(int)(k + 2);
                break;
            }
            if (nodes[cur][bit] < 0) { /* a new node (replaces a shorter prefix's data) */
                int old = nodes[cur][bit];
                nodes[nn][0] = nodes[nn][1] = old;
                nodes[cur][bit] = nn++;
            }
            cur = nodes[cur][bit];
        }
    }
    wbuf_t data = {0}, f = {0};
    size_t off[3];
    for (size_t k = 0; k < 3; k++) {
        off[k] = data.n;
        uint8_t m1 = 0xe1; /* map of 1 */
        put(&data, &m1, 1);
        put_str(&data, "country");
        put(&data, &m1, 1);
        put_str(&data, "iso_code");
        put_str(&data, nets[k].cc);
    }
    for (int i = 0; i < nn; i++)
        for (int b = 0; b < 2; b++) {
            int v = nodes[i][b];
            uint32_t rec = v >= 0    ? (uint32_t)v
                           : v == -1 ? (uint32_t)nn
                                     : (uint32_t)(nn + 16 + (int)off[-v - 2]);
            uint8_t r3[3] = {(uint8_t)(rec >> 16), (uint8_t)(rec >> 8), (uint8_t)rec};
            put(&f, r3, 3);
        }
    uint8_t zero[16] = {0};
    put(&f, zero, 16);
    put(&f, data.p, data.n);
    put(&f, "\xab\xcd\xefMaxMind.com", 14);
    uint8_t m = 0xe0 | 9; /* metadata: a map of 9 */
    put(&f, &m, 1);
    put_str(&f, "node_count");
    put_uint(&f, 6, (uint64_t)nn, 4);
    put_str(&f, "record_size");
    put_uint(&f, 5, 24, 2);
    put_str(&f, "ip_version");
    put_uint(&f, 5, 4, 2);
    put_str(&f, "database_type");
    put_str(&f, "umbra-test");
    put_str(&f, "languages");
    uint8_t arr0[2] = {0x00, 0x04}; /* extended type 11 (array), 0 entries */
    put(&f, arr0, 2);
    put_str(&f, "binary_format_major_version");
    put_uint(&f, 5, 2, 2);
    put_str(&f, "binary_format_minor_version");
    put_uint(&f, 5, 0, 2);
    put_str(&f, "build_epoch");
    put_uint(&f, 9, 1700000000u, 8);
    put_str(&f, "description");
    uint8_t m0 = 0xe0;
    put(&f, &m0, 1);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(f.p, 1, f.n, fp), f.n);
    fclose(fp);
    free(f.p);
    free(data.p);
}

static void test_mmdb(void **state)
{
    char path[] = "/tmp/umbra-test-mmdb-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_mmdb(path);
    um_geoip_t *g;
    char err[256];
    assert_int_equal(um_geoip_new(&g), 0);
    int rc = um_geoip_load(g, path, err, sizeof(err));
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(um_geoip_mmdb_files(g), 1);
    assert_int_equal(um_geoip_ranges(g), 0);
    assert_int_equal(um_geoip_finish(g, err, sizeof(err)), 0);
    um_addr_t a = dst("10.255.0.1", 1);
    assert_int_equal(um_geoip_lookup(g, &a), UM_GEOIP_CC('D', 'E'));
    a = dst("192.168.1.127", 1);
    assert_int_equal(um_geoip_lookup(g, &a), UM_GEOIP_CC('F', 'R')); /* upper-cased */
    a = dst("192.168.1.128", 1);
    assert_int_equal(um_geoip_lookup(g, &a), UM_GEOIP_CC('U', 'S'));
    a = dst("11.0.0.1", 1);
    assert_int_equal(um_geoip_lookup(g, &a), 0);
    static const char *const t[] = {"direct geoip:FR", "block geoip:DE", NULL};
    um_rules_t *r = compile(t, UM_RULE_TUNNEL, g);
    size_t i;
    assert_int_equal(act(r, "192.168.1.5", 80, &i), UM_RULE_DIRECT);
    assert_int_equal(act(r, "10.0.0.1", 80, &i), UM_RULE_BLOCK);
    assert_int_equal(act(r, "192.168.1.200", 80, &i), UM_RULE_TUNNEL);
    um_rules_free(r);
    /* the same bytes without the marker are taken as text, and refused */
    FILE *fp = fopen(path, "wb");
    fputs("10.0.0.0,10.255.255.255,DE\n", fp);
    fclose(fp);
    assert_int_equal(um_geoip_new(&g), 0);
    assert_int_not_equal(um_geoip_load(g, path, err, sizeof(err)), 0);
    assert_non_null(strstr(err, ":1: "));
    um_geoip_free(g);
    unlink(path);
}

/* ---- names of addresses from DNS answers ---- */

/* A response for `www.Example.org` A: a CNAME to cdn.example.net, then two
 * A records and one AAAA for that name (compressed owner names). */
static size_t dns_response(uint8_t *m)
{
    static const uint8_t hdr[12] = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 4, 0, 0, 0, 0};
    size_t n = 0;
    memcpy(m, hdr, 12);
    n = 12;
    static const uint8_t q[] = {3,   'w', 'w', 'w', 7,   'E', 'x', 'a', 'm', 'p', 'l',
                                'e', 3,   'o', 'r', 'g', 0,   0,   1,   0,   1};
    memcpy(m + n, q, sizeof(q));
    n += sizeof(q);
    /* CNAME: owner -> question (0xc00c), rdata cdn.example.net */
    static const uint8_t cn[] = {0xc0, 0x0c, 0,   5,   0,   1,   0,   0,   0,   30,
                                 0,    17,   3,   'c', 'd', 'n', 7,   'e', 'x', 'a',
                                 'm',  'p',  'l', 'e', 3,   'n', 'e', 't', 0};
    size_t cname_at = n + 12;
    memcpy(m + n, cn, sizeof(cn));
    n += sizeof(cn);
    for (int k = 0; k < 2; k++) {
        uint8_t a[] = {0xc0, (uint8_t)cname_at, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 203, 0,
                       113,  (uint8_t)(10 + k)};
        memcpy(m + n, a, sizeof(a));
        n += sizeof(a);
    }
    uint8_t a6[28] = {0xc0, (uint8_t)cname_at, 0, 28, 0, 1, 0, 0, 0, 5, 0, 16, 0x20, 0x01, 0x0d,
                      0xb8};
    a6[27] = 1;
    memcpy(m + n, a6, sizeof(a6));
    n += sizeof(a6);
    return n;
}

static void test_dnsmap(void **state)
{
    uint8_t m[512];
    size_t n = dns_response(m);
    um_dnsmap_t *dm;
    assert_int_equal(um_dnsmap_new(&dm), 0);
    assert_int_equal(um_dnsmap_learn(dm, m, n, 1000), 3);
    char name[UM_DOMAIN_MAX + 1];
    size_t nl;
    um_addr_t a = dst("203.0.113.11", 443);
    assert_true(um_dnsmap_get(dm, &a, 2000, name, sizeof(name), &nl));
    assert_string_equal(name, "www.example.org"); /* the question, lower case */
    a = dst("::ffff:203.0.113.10", 443);          /* mapped: as IPv4 */
    assert_true(um_dnsmap_get(dm, &a, 2000, name, sizeof(name), &nl));
    a = dst("2001:db8::1", 443);
    assert_true(um_dnsmap_get(dm, &a, 2000, name, sizeof(name), &nl));
    assert_false(um_dnsmap_get(dm, &a, 1000 + 61000, name, sizeof(name), &nl)); /* ttl 5 -> 60 s */
    a = dst("203.0.113.12", 443);
    assert_false(um_dnsmap_get(dm, &a, 2000, name, sizeof(name), &nl));
    /* the learnt name routes the bare address */
    static const char *const t[] = {"block domain:example.org", "direct cidr:203.0.113.0/24", NULL};
    um_rules_t *r = compile(t, UM_RULE_TUNNEL, NULL);
    size_t i;
    a = dst("203.0.113.11", 443);
    assert_int_equal(um_rules_match_named(r, &a, "www.example.org", 15, &i), UM_RULE_BLOCK);
    assert_int_equal(i, 0);
    assert_int_equal(um_rules_match(r, &a, &i), UM_RULE_DIRECT);
    assert_int_equal(um_rules_match_named(r, &a, "other.net", 9, &i), UM_RULE_DIRECT);
    assert_int_equal(i, 1);
    um_rules_free(r);
    /* malformed: a query, an error, truncations, a pointer loop */
    uint8_t b[512];
    memcpy(b, m, n);
    b[2] &= 0x7f;
    assert_int_equal(um_dns_answers(b, n, NULL, NULL), UM_EPROTO);
    memcpy(b, m, n);
    b[3] |= 3;
    assert_int_equal(um_dns_answers(b, n, NULL, NULL), UM_EPROTO);
    for (size_t k = 0; k < n; k++)
        assert_true(um_dns_answers(m, k, NULL, NULL) < 3);
    static const uint8_t loop[] = {0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    assert_int_equal(um_dns_answers(loop, sizeof(loop), NULL, NULL), UM_EPROTO);
    um_dnsmap_free(dm);
}

/* ---- differential: the compiled set against a linear scan ---- */

static bool ref_match_one(const um_rule_t *ru, const um_addr_t *a, const um_geoip_t *g)
{
    switch (ru->kind) {
    case UM_RULE_CIDR: return a->type != UM_ADDR_DOMAIN && um_cidr_match(&ru->cidr, a);
    case UM_RULE_PORT: return a->port >= ru->port_lo && a->port <= ru->port_hi;
    case UM_RULE_GEOIP: return a->type != UM_ADDR_DOMAIN && um_geoip_lookup(g, a) == ru->cc;
    case UM_RULE_KEYWORD: return a->type == UM_ADDR_DOMAIN && strstr(a->u.domain, ru->text) != NULL;
    case UM_RULE_DOMAIN: {
        if (a->type != UM_ADDR_DOMAIN) return false;
        size_t n = a->domain_len, k = ru->text_len;
        if (n < k || memcmp(a->u.domain + n - k, ru->text, k) != 0) return false;
        return n == k || a->u.domain[n - k - 1] == '.';
    }
    default: return false;
    }
}

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static void test_differential(void **state)
{
    uint64_t seed = 12345;
    static const char *const labels[] = {"a", "b", "ads", "x", "cdn", "org", "com", "tracker"};
    um_geoip_t *g;
    assert_int_equal(um_geoip_new(&g), 0);
    char err[256], txt[64];
    for (uint32_t k = 0; k < 8; k++) { /* 10.k.0.0/16 in country A?+k */
        int n = snprintf(txt, sizeof(txt), "%u,%u,%c%c\n", (10u << 24) | (k << 16),
                         (10u << 24) | (k << 16) | 0xffff, 'A', 'A' + k);
        assert_int_equal(um_geoip_parse_text(g, "g", txt, (size_t)n, err, sizeof(err)), 0);
    }
    assert_int_equal(um_geoip_finish(g, err, sizeof(err)), 0);
    for (int round = 0; round < 20; round++) {
        um_rule_t v[200];
        size_t n = 50 + rnd(&seed) % 150;
        for (size_t i = 0; i < n; i++) {
            char s[128];
            const char *an = um_rule_action_name((uint8_t)(rnd(&seed) % 3));
            switch (rnd(&seed) % 5) {
            case 0:
                snprintf(s, sizeof(s), "%s cidr:10.%u.%u.0/%u", an, rnd(&seed) % 8, rnd(&seed) % 4,
                         8 + rnd(&seed) % 25);
                break;
            case 1:
                snprintf(s, sizeof(s), "%s domain:%s.%s", an, labels[rnd(&seed) % 8],
                         labels[rnd(&seed) % 8]);
                break;
            case 2: snprintf(s, sizeof(s), "%s keyword:%s", an, labels[rnd(&seed) % 8]); break;
            case 3: {
                unsigned lo = 1 + rnd(&seed) % 100;
                snprintf(s, sizeof(s), "%s port:%u-%u", an, lo, lo + rnd(&seed) % 20);
                break;
            }
            default: snprintf(s, sizeof(s), "%s geoip:A%c", an, 'A' + rnd(&seed) % 9); break;
            }
            v[i] = rule(s);
        }
        um_rules_t *r = NULL;
        uint8_t def = (uint8_t)(rnd(&seed) % 3);
        /* the compiled set takes the table: give it one of its own per round */
        um_geoip_t *gc;
        assert_int_equal(um_geoip_new(&gc), 0);
        for (uint32_t k = 0; k < 8; k++) {
            int m = snprintf(txt, sizeof(txt), "%u,%u,%c%c\n", (10u << 24) | (k << 16),
                             (10u << 24) | (k << 16) | 0xffff, 'A', 'A' + k);
            assert_int_equal(um_geoip_parse_text(gc, "g", txt, (size_t)m, err, sizeof(err)), 0);
        }
        assert_int_equal(um_geoip_finish(gc, err, sizeof(err)), 0);
        assert_int_equal(um_rules_compile(v, n, def, gc, &r, err, sizeof(err)), 0);
        for (int q = 0; q < 2000; q++) {
            um_addr_t a;
            char h[128];
            if (rnd(&seed) % 2) {
                snprintf(h, sizeof(h), "10.%u.%u.%u", rnd(&seed) % 9, rnd(&seed) % 5,
                         rnd(&seed) % 256);
            } else {
                snprintf(h, sizeof(h), "%s.%s.%s", labels[rnd(&seed) % 8], labels[rnd(&seed) % 8],
                         labels[rnd(&seed) % 8]);
            }
            a = dst(h, (uint16_t)(1 + rnd(&seed) % 130));
            size_t want = UM_RULE_NONE, got;
            for (size_t i = 0; i < n && want == UM_RULE_NONE; i++)
                if (ref_match_one(&v[i], &a, g)) want = i;
            uint8_t ga = um_rules_match(r, &a, &got);
            if (got != want) fail_msg("%s port %u: rule %zu, want %zu", h, a.port, got, want);
            assert_int_equal(ga, want == UM_RULE_NONE ? def : v[want].action);
        }
        um_rules_free(r);
    }
    um_geoip_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),     cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_file),           cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_domain_keyword), cmocka_unit_test(test_port_and_order),
        cmocka_unit_test(test_geoip),          cmocka_unit_test(test_differential),
        cmocka_unit_test(test_mmdb),           cmocka_unit_test(test_dnsmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
