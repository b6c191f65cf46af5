/* Addresses: "host:port" parsing (accepted forms, default port, a table of
 * malformed inputs each refused with a reason), formatting round trip,
 * sockaddr round trip, domain validation, CIDR parse/format/match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "util/addr.h"
#include "util/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* A string literal with its exact length (embedded NULs count). */
#define S(lit) lit, sizeof(lit) - 1

/* ---- long names built at run time ---- */

static char label63[64], label64[65];
static char name253[254], name254[255]; /* valid labels, total 253 / 254 */
static char name253dot[255];            /* 253 + trailing dot */
static char with_port[7][300];          /* the above with ":443" */

static void build_names(void)
{
    memset(label63, 'a', 63);
    label63[63] = 0;
    memset(label64, 'b', 64);
    label64[64] = 0;
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    snprintf(name253, sizeof(name253), "%s.%s.%s.%.*s", label63, label63, label63, 61, label63);
    assert_int_equal(strlen(name253), 253);
    snprintf(name254, sizeof(name254), "%s.%s.%s.%.*s", label63, label63, label63, 62, label63);
    assert_int_equal(strlen(name254), 254);
    snprintf(name253dot, sizeof(name253dot), "%s.", name253);
    snprintf(with_port[0], sizeof(with_port[0]), "%s.example:443", label63);
    snprintf(with_port[1], sizeof(with_port[1]), "%s.example:443", label64);
    snprintf(with_port[2], sizeof(with_port[2]), "%s:443", name253);
    snprintf(with_port[3], sizeof(with_port[3]), "%s:443", name254);
    snprintf(with_port[4], sizeof(with_port[4]), "%s:443", name253dot);
    snprintf(with_port[5], sizeof(with_port[5]), "[%s]:443", name253);
    snprintf(with_port[6], sizeof(with_port[6]), "%s.:443", name254);
}

static int setup(void **state)
{
    build_names();
    return 0;
}

/* ---- accepted forms ---- */

typedef struct {
    const char *in;
    uint16_t defport;
    uint8_t type;
    const char *host; /* dotted/colon text for IPs (via inet_pton), the name for domains */
    uint16_t port;
    const char *formatted;
} good_t;

static const good_t good[] = {
    {"1.2.3.4:443", 0, UM_ADDR_IPV4, "1.2.3.4", 443, "1.2.3.4:443"},
    {"0.0.0.0:1", 0, UM_ADDR_IPV4, "0.0.0.0", 1, "0.0.0.0:1"},
    {"255.255.255.255:65535", 0, UM_ADDR_IPV4, "255.255.255.255", 65535, "255.255.255.255:65535"},
    {"127.0.0.1:8080", 443, UM_ADDR_IPV4, "127.0.0.1", 8080, "127.0.0.1:8080"},
    {"[::1]:443", 0, UM_ADDR_IPV6, "::1", 443, "[::1]:443"},
    {"[::]:9", 0, UM_ADDR_IPV6, "::", 9, "[::]:9"},
    {"[2001:db8::1]:8443", 0, UM_ADDR_IPV6, "2001:db8::1", 8443, "[2001:db8::1]:8443"},
    {"[2001:DB8:0:0:0:0:0:1]:80", 0, UM_ADDR_IPV6, "2001:db8::1", 80, "[2001:db8::1]:80"},
    {"[::ffff:1.2.3.4]:80", 0, UM_ADDR_IPV6, "::ffff:1.2.3.4", 80, "[::ffff:1.2.3.4]:80"},
    {"[fe80::1:2:3:4]:65535", 0, UM_ADDR_IPV6, "fe80::1:2:3:4", 65535, "[fe80::1:2:3:4]:65535"},
    {"host.example:443", 0, UM_ADDR_DOMAIN, "host.example", 443, "host.example:443"},
    {"a:1", 0, UM_ADDR_DOMAIN, "a", 1, "a:1"},
    {"localhost:53", 0, UM_ADDR_DOMAIN, "localhost", 53, "localhost:53"},
    {"Host.Example.:443", 0, UM_ADDR_DOMAIN, "Host.Example", 443, "Host.Example:443"},
    {"xn--bcher-kva.example:443", 0, UM_ADDR_DOMAIN, "xn--bcher-kva.example", 443,
     "xn--bcher-kva.example:443"},
    {"_acme.a-b.example:25", 0, UM_ADDR_DOMAIN, "_acme.a-b.example", 25, "_acme.a-b.example:25"},
    {"123.example:80", 0, UM_ADDR_DOMAIN, "123.example", 80, "123.example:80"},
    {"1.2.3.4a:80", 0, UM_ADDR_DOMAIN, "1.2.3.4a", 80, "1.2.3.4a:80"},
    /* default port: the ":port" may be omitted; an explicit one wins */
    {"1.2.3.4", 443, UM_ADDR_IPV4, "1.2.3.4", 443, "1.2.3.4:443"},
    {"[::1]", 443, UM_ADDR_IPV6, "::1", 443, "[::1]:443"},
    {"host.example", 8080, UM_ADDR_DOMAIN, "host.example", 8080, "host.example:8080"},
    {"host.example.", 7, UM_ADDR_DOMAIN, "host.example", 7, "host.example:7"},
    {"host.example:80", 443, UM_ADDR_DOMAIN, "host.example", 80, "host.example:80"},
    {"[::1]:80", 443, UM_ADDR_IPV6, "::1", 80, "[::1]:80"},
};

static void check_good(const good_t *g, const char *in, size_t n)
{
    um_addr_t a;
    char err[128] = "untouched";
    int r = um_addr_parse(&a, in, n, g->defport, err, sizeof(err));
    if (r != 0) fail_msg("'%s' refused: %d (%s)", in, r, err);
    assert_int_equal(a.type, g->type);
    assert_int_equal(a.port, g->port);
    if (g->type == UM_ADDR_IPV4) {
        uint8_t want[4];
        assert_int_equal(inet_pton(AF_INET, g->host, want), 1);
        assert_memory_equal(a.u.v4, want, 4);
    } else if (g->type == UM_ADDR_IPV6) {
        uint8_t want[16];
        assert_int_equal(inet_pton(AF_INET6, g->host, want), 1);
        assert_memory_equal(a.u.v6, want, 16);
    } else {
        assert_int_equal(a.domain_len, strlen(g->host));
        assert_string_equal(a.u.domain, g->host);
    }
    /* format gives the canonical text, and it parses back to the same address */
    char buf[UM_ADDR_STRLEN];
    size_t w = um_addr_format(&a, buf, sizeof(buf));
    assert_int_equal(w, strlen(g->formatted));
    assert_string_equal(buf, g->formatted);
    um_addr_t b;
    assert_int_equal(um_addr_parse(&b, buf, w, 0, err, sizeof(err)), 0);
    assert_true(um_addr_equal(&a, &b));
    assert_true(um_addr_equal(&b, &a));
}

static void test_parse_good(void **state)
{
    for (size_t i = 0; i < N(good); i++) {
        /* the length is authoritative: trailing bytes beyond n are ignored */
        char padded[128];
        snprintf(padded, sizeof(padded), "%s:99x", good[i].in);
        check_good(&good[i], good[i].in, strlen(good[i].in));
        check_good(&good[i], padded, strlen(good[i].in));
    }
}

static void test_parse_long_names(void **state)
{
    good_t g = {NULL, 0, UM_ADDR_DOMAIN, NULL, 443, NULL};
    char host[300], fmt[300];
    snprintf(host, sizeof(host), "%s.example", label63);
    snprintf(fmt, sizeof(fmt), "%s:443", host);
    g.host = host;
    g.formatted = fmt;
    check_good(&g, with_port[0], strlen(with_port[0]));

    g.host = name253;
    snprintf(fmt, sizeof(fmt), "%s:443", name253);
    check_good(&g, with_port[2], strlen(with_port[2])); /* exactly 253: accepted */
    check_good(&g, with_port[4], strlen(with_port[4])); /* 253 + final dot: accepted */

    /* the longest formatted address fits UM_ADDR_STRLEN */
    um_addr_t a;
    assert_int_equal(um_addr_parse(&a, name253, 253, 65535, NULL, 0), 0);
    char buf[UM_ADDR_STRLEN];
    assert_int_equal(um_addr_format(&a, buf, sizeof(buf)), 253 + 6);
}

/* ---- malformed inputs ---- */

typedef struct {
    const char *in;
    size_t n;
    uint16_t defport;
} bad_t;

static void check_bad(const char *in, size_t n, uint16_t defport, size_t idx)
{
    um_addr_t a;
    char err[128];
    memset(err, 0, sizeof(err));
    int r = um_addr_parse(&a, in, n, defport, err, sizeof(err));
    if (r != UM_EINVAL)
        fail_msg("bad[%zu] '%.*s' (defport %u): got %d, want UM_EINVAL", idx, (int)n, in,
                 (unsigned)defport, r);
    if (err[0] == '\0') fail_msg("bad[%zu] '%.*s': empty reason", idx, (int)n, in);
    assert_null(memchr(err, '\n', strlen(err))); /* one line */
    /* err may be NULL */
    assert_int_equal(um_addr_parse(&a, in, n, defport, NULL, 0), UM_EINVAL);
    /* and a one-byte err buffer stays terminated */
    char tiny[1] = {'x'};
    assert_int_equal(um_addr_parse(&a, in, n, defport, tiny, sizeof(tiny)), UM_EINVAL);
    assert_int_equal(tiny[0], '\0');
}

static void test_parse_bad(void **state)
{
    static const bad_t bad[] = {
        {S(""), 0},
        {S(""), 443},
        /* missing port */
        {S("1.2.3.4"), 0},
        {S("host.example"), 0},
        {S("[::1]"), 0},
        {S("1.2.3.4:"), 0},
        {S("1.2.3.4:"), 443},
        {S("[::1]:"), 443},
        /* port out of range or not a plain number */
        {S("1.2.3.4:0"), 0},
        {S("1.2.3.4:00000"), 443},
        {S("1.2.3.4:65536"), 0},
        {S("1.2.3.4:99999"), 0},
        {S("1.2.3.4:123456"), 0},
        {S("1.2.3.4:4294967739"), 0}, /* 2^32 + 443 must not wrap */
        {S("1.2.3.4:+443"), 0},
        {S("1.2.3.4:-1"), 0},
        {S("1.2.3.4: 443"), 0},
        {S("1.2.3.4:443 "), 0},
        {S("1.2.3.4:0x1bb"), 0},
        {S("1.2.3.4:44a"), 0},
        {S("1.2.3.4:4\0"), 0},
        {S("[::1]:0"), 0},
        {S("[::1]:65536"), 0},
        {S("host.example:443:"), 0},
        {S("host.example:443:80"), 0},
        /* IPv6 without brackets, or with bad brackets */
        {S("::1:443"), 0},
        {S("::1"), 443},
        {S("2001:db8::1"), 443},
        {S("2001:db8::1:443"), 0},
        {S("[::1:443"), 0},
        {S("[::1"), 443},
        {S("::1]:443"), 0},
        {S("[::1]443"), 0},
        {S("[::1]:443x"), 0},
        {S("[::1]]:443"), 0},
        {S("[[::1]]:443"), 0},
        {S("[]:443"), 0},
        {S("[]"), 443},
        {S("[1.2.3.4]:443"), 0},
        {S("[host.example]:443"), 0},
        {S("[::g]:443"), 0},
        {S("[::1%eth0]:443"), 0},
        {S("[:::1]:443"), 0},
        {S("[1:2:3:4:5:6:7:8:9]:443"), 0},
        {S("x[::1]:443"), 0},
        /* bad IPv4 */
        {S("1.2.3.256:443"), 0},
        {S("256.1.1.1:443"), 0},
        {S("1.2.3:443"), 0},
        {S("1.2.3.4.5:443"), 0},
        {S("1..2.3:443"), 0},
        {S("1.2.3.:443"), 0},
        {S("01.2.3.4:443"), 0},
        {S("1.2.3.4.:443"), 0},
        {S("999999999999:443"), 0},
        /* bad domains */
        {with_port[1], 0, 0}, /* label of 64 (length filled in below) */
        {with_port[3], 0, 0}, /* 254 characters */
        {with_port[5], 0, 0}, /* a name in brackets */
        {with_port[6], 0, 0}, /* 254 + dot */
        {S("-host.example:443"), 0},
        {S("host-.example:443"), 0},
        {S("host.-example:443"), 0},
        {S("host.example-:443"), 0},
        {S("host..example:443"), 0},
        {S(".host.example:443"), 0},
        {S("host.example..:443"), 0},
        {S(".:443"), 0},
        {S(":443"), 0},
        {S(":443"), 443},
        {S("host.123:443"), 0},
        {S("ho\0st.example:443"), 0},
        {S("host.example\0:443"), 0},
        {S("\0"), 443},
        {S("ho st.example:443"), 0},
        {S(" host.example:443"), 0},
        {S("host.example :443"), 0},
        {S("\thost.example:443"), 0},
        {S("host.example\n:443"), 0},
        {S("host!.example:443"), 0},
        {S("b\xc3\xbc"
           "cher.example:443"),
         0},
        {S("host/path:443"), 0},
        {S("user@host:443"), 0},
        {S("http://host:443"), 0},
        {S("host*.example:443"), 0},
    };
    _Static_assert(N(bad) >= 30, "at least 30 malformed inputs");
    for (size_t i = 0; i < N(bad); i++) {
        size_t n = bad[i].n ? bad[i].n : strlen(bad[i].in);
        check_bad(bad[i].in, n, bad[i].defport, i);
    }
}

static void test_parse_host(void **state)
{
    um_addr_t a;
    char err[128];
    assert_int_equal(um_addr_parse_host(&a, S("::1"), err, sizeof(err)), 0);
    assert_int_equal(a.type, UM_ADDR_IPV6);
    assert_int_equal(a.port, 0);
    assert_int_equal(um_addr_parse_host(&a, S("10.0.0.1"), err, sizeof(err)), 0);
    assert_int_equal(a.type, UM_ADDR_IPV4);
    assert_int_equal(um_addr_parse_host(&a, S("example.org"), err, sizeof(err)), 0);
    assert_int_equal(a.type, UM_ADDR_DOMAIN);
    assert_string_equal(a.u.domain, "example.org");
    static const char *const bad[] = {"",     "[::1]", "1.2.3.4:80", "1.2.3.999", "exa mple.org",
                                      "-a.b", "::1::", "a..b",       "1.2.3",     "host:80"};
    for (size_t i = 0; i < N(bad); i++) {
        err[0] = '\0';
        if (um_addr_parse_host(&a, bad[i], strlen(bad[i]), err, sizeof(err)) != UM_EINVAL)
            fail_msg("host '%s' accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_domain_valid(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"a", true},      {"a.b", true},   {"a.b.", true}, {"a-b.c", true},        {"_x.y", true},
        {"x_.y", true},   {"A.B.C", true}, {"1a", true},   {"a.1a", true},         {"0x10", true},
        {"", false},      {".", false},    {"..", false},  {"a..", false},         {".a", false},
        {"a..b", false},  {"-a", false},   {"a-", false},  {"a.-b", false},        {"a.b-", false},
        {"a.b-.", false}, {"1", false},    {"a.1", false}, {"1.2.3.4", false},     {"a.12.", false},
        {"a b", false},   {"a:b", false},  {"a/b", false}, {"\xc3\xbc.de", false}, {"a*", false},
        {"a.b..", false},
    };
    for (size_t i = 0; i < N(cases); i++)
        if (um_domain_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("um_domain_valid('%s') != %d", cases[i].s, cases[i].ok);
    assert_true(um_domain_valid(label63, 63));
    assert_false(um_domain_valid(label64, 64));
    assert_true(um_domain_valid(name253, 253));
    assert_true(um_domain_valid(name253dot, 254));
    assert_false(um_domain_valid(name254, 254));
    /* n is authoritative */
    assert_true(um_domain_valid("abc.def-", 7));
    assert_false(um_domain_valid("a\0b", 3));
}

/* ---- formatting ---- */

static void test_format_truncation_and_equal(void **state)
{
    um_addr_t a, b;
    assert_int_equal(um_addr_parse(&a, S("[2001:db8::1]:8443"), 0, NULL, 0), 0);
    char buf[8];
    memset(buf, 'x', sizeof(buf));
    size_t w = um_addr_format(&a, buf, sizeof(buf));
    assert_int_equal(w, sizeof(buf) - 1);
    assert_int_equal(buf[7], '\0');
    assert_memory_equal(buf, "[2001:d", 7);
    assert_int_equal(um_addr_format(&a, buf, 0), 0);

    um_addr_t none;
    memset(&none, 0, sizeof(none));
    char nb[16];
    um_addr_format(&none, nb, sizeof(nb));
    assert_string_equal(nb, "(none)");
    assert_false(um_addr_equal(&none, &none));

    /* domains compare without regard to case; port and type matter */
    assert_int_equal(um_addr_parse(&a, S("Host.EXAMPLE:443"), 0, NULL, 0), 0);
    assert_int_equal(um_addr_parse(&b, S("host.example:443"), 0, NULL, 0), 0);
    assert_true(um_addr_equal(&a, &b));
    assert_int_equal(um_addr_parse(&b, S("host.example:444"), 0, NULL, 0), 0);
    assert_false(um_addr_equal(&a, &b));
    assert_int_equal(um_addr_parse(&b, S("host.exampl:443"), 0, NULL, 0), 0);
    assert_false(um_addr_equal(&a, &b));
    assert_int_equal(um_addr_parse(&a, S("127.0.0.1:1"), 0, NULL, 0), 0);
    assert_int_equal(um_addr_parse(&b, S("[::ffff:127.0.0.1]:1"), 0, NULL, 0), 0);
    assert_false(um_addr_equal(&a, &b));
    assert_int_equal(um_addr_parse(&b, S("127.0.0.2:1"), 0, NULL, 0), 0);
    assert_false(um_addr_equal(&a, &b));
}

/* ---- sockaddr ---- */

static void test_sockaddr_roundtrip(void **state)
{
    static const char *const in[] = {"1.2.3.4:443", "127.0.0.1:1",      "255.255.255.255:65535",
                                     "[::1]:443",   "[2001:db8::5]:80", "[::ffff:10.0.0.1]:8080",
                                     "[::]:65535"};
    for (size_t i = 0; i < N(in); i++) {
        um_addr_t a, b;
        struct sockaddr_storage ss;
        socklen_t len = 0;
        assert_int_equal(um_addr_parse(&a, in[i], strlen(in[i]), 0, NULL, 0), 0);
        memset(&ss, 0xcc, sizeof(ss));
        assert_int_equal(um_addr_to_sockaddr(&a, &ss, &len), 0);
        if (a.type == UM_ADDR_IPV4) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
            assert_int_equal(len, sizeof(struct sockaddr_in));
            assert_int_equal(s4->sin_family, AF_INET);
            assert_int_equal(ntohs(s4->sin_port), a.port);
            assert_memory_equal(&s4->sin_addr, a.u.v4, 4);
        } else {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
            assert_int_equal(len, sizeof(struct sockaddr_in6));
            assert_int_equal(s6->sin6_family, AF_INET6);
            assert_int_equal(ntohs(s6->sin6_port), a.port);
            assert_memory_equal(&s6->sin6_addr, a.u.v6, 16);
            assert_int_equal(s6->sin6_flowinfo, 0);
            assert_int_equal(s6->sin6_scope_id, 0);
        }
        memset(&b, 0xcc, sizeof(b));
        assert_int_equal(um_addr_from_sockaddr(&b, (const struct sockaddr *)&ss), 0);
        assert_true(um_addr_equal(&a, &b));
        char f1[UM_ADDR_STRLEN], f2[UM_ADDR_STRLEN];
        um_addr_format(&a, f1, sizeof(f1));
        um_addr_format(&b, f2, sizeof(f2));
        assert_string_equal(f1, in[i]);
        assert_string_equal(f2, in[i]);
    }

    /* from a sockaddr built independently */
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(5353);
    assert_int_equal(inet_pton(AF_INET6, "fe80::42", &s6.sin6_addr), 1);
    um_addr_t c;
    assert_int_equal(um_addr_from_sockaddr(&c, (const struct sockaddr *)&s6), 0);
    char f[UM_ADDR_STRLEN];
    um_addr_format(&c, f, sizeof(f));
    assert_string_equal(f, "[fe80::42]:5353");

    /* a domain has no sockaddr; a non-IP family is refused */
    um_addr_t d;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(um_addr_parse(&d, S("host.example:443"), 0, NULL, 0), 0);
    assert_int_equal(um_addr_to_sockaddr(&d, &ss, &len), UM_EINVAL);
    struct sockaddr_un su;
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    assert_int_equal(um_addr_from_sockaddr(&d, (const struct sockaddr *)&su), UM_EINVAL);
}

/* ---- CIDR ---- */

static void test_cidr_parse_good(void **state)
{
    static const struct {
        const char *in;
        uint8_t family, bits;
        const char *addr; /* the prefix with host bits cleared */
        const char *formatted;
    } cases[] = {
        {"10.0.0.0/8", UM_ADDR_IPV4, 8, "10.0.0.0", "10.0.0.0/8"},
        {"10.1.2.3/8", UM_ADDR_IPV4, 8, "10.0.0.0", "10.0.0.0/8"},
        {"127.0.0.1", UM_ADDR_IPV4, 32, "127.0.0.1", "127.0.0.1/32"},
        {"127.0.0.1/32", UM_ADDR_IPV4, 32, "127.0.0.1", "127.0.0.1/32"},
        {"0.0.0.0/0", UM_ADDR_IPV4, 0, "0.0.0.0", "0.0.0.0/0"},
        {"1.2.3.4/0", UM_ADDR_IPV4, 0, "0.0.0.0", "0.0.0.0/0"},
        {"255.255.255.255/1", UM_ADDR_IPV4, 1, "128.0.0.0", "128.0.0.0/1"},
        {"192.168.1.255/23", UM_ADDR_IPV4, 23, "192.168.0.0", "192.168.0.0/23"},
        {"1.2.3.5/31", UM_ADDR_IPV4, 31, "1.2.3.4", "1.2.3.4/31"},
        {"172.31.255.255/12", UM_ADDR_IPV4, 12, "172.16.0.0", "172.16.0.0/12"},
        {"::1", UM_ADDR_IPV6, 128, "::1", "::1/128"},
        {"::1/128", UM_ADDR_IPV6, 128, "::1", "::1/128"},
        {"::/0", UM_ADDR_IPV6, 0, "::", "::/0"},
        {"ffff::1/0", UM_ADDR_IPV6, 0, "::", "::/0"},
        {"2001:db8::/32", UM_ADDR_IPV6, 32, "2001:db8::", "2001:db8::/32"},
        {"2001:db8:ffff::1/33", UM_ADDR_IPV6, 33, "2001:db8:8000::", "2001:db8:8000::/33"},
        {"fe80::1234/10", UM_ADDR_IPV6, 10, "fe80::", "fe80::/10"},
        {"2001:db8::ff/127", UM_ADDR_IPV6, 127, "2001:db8::fe", "2001:db8::fe/127"},
        {"::ffff:10.9.8.7/104", UM_ADDR_IPV6, 104, "::ffff:10.0.0.0", "::ffff:10.0.0.0/104"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        um_cidr_t c, d;
        char err[128] = "";
        int r = um_cidr_parse(&c, cases[i].in, strlen(cases[i].in), err, sizeof(err));
        if (r != 0) fail_msg("cidr '%s' refused: %s", cases[i].in, err);
        assert_int_equal(c.family, cases[i].family);
        assert_int_equal(c.bits, cases[i].bits);
        uint8_t want[16] = {0};
        assert_int_equal(
            inet_pton(c.family == UM_ADDR_IPV4 ? AF_INET : AF_INET6, cases[i].addr, want), 1);
        assert_memory_equal(c.addr, want, 16); /* unused tail of a v4 prefix is zero */
        char buf[64];
        size_t w = um_cidr_format(&c, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].formatted);
        assert_int_equal(w, strlen(cases[i].formatted));
        /* round trip */
        assert_int_equal(um_cidr_parse(&d, buf, w, NULL, 0), 0);
        assert_memory_equal(&c, &d, sizeof(c));
    }
}

static void test_cidr_parse_bad(void **state)
{
    static const struct {
        const char *in;
        size_t n;
    } bad[] = {
        {S("")},
        {S("/8")},
        {S("/")},
        {S("10.0.0.0/")},
        {S("10.0.0.0/33")},
        {S("10.0.0.0/99")},
        {S("10.0.0.0/100")},
        {S("10.0.0.0/1000")},
        {S("10.0.0.0/-1")},
        {S("10.0.0.0/+8")},
        {S("10.0.0.0/8/8")},
        {S("10.0.0.0/ 8")},
        {S("10.0.0.0 /8")},
        {S("10.0.0.0/8 ")},
        {S("10.0.0.0/a")},
        {S("10.0.0.0/0x8")},
        {S("10.0.0.0/8\0")},
        {S("::/129")},
        {S("::/200")},
        {S("::1/12a")},
        {S("10.0.0/8")},
        {S("10.0.0.256/8")},
        {S("example.com/8")},
        {S("example.com")},
        {S("[::1]/128")},
        {S("1.2.3.4:80")},
        {S("1.2.3.4:80/32")},
        {S("1.2.3.4\0/32")},
        {S("::1%lo/128")},
    };
    for (size_t i = 0; i < N(bad); i++) {
        um_cidr_t c;
        char err[128] = "";
        int r = um_cidr_parse(&c, bad[i].in, bad[i].n, err, sizeof(err));
        if (r != UM_EINVAL) fail_msg("cidr '%.*s' gave %d", (int)bad[i].n, bad[i].in, r);
        if (!err[0]) fail_msg("cidr '%.*s': empty reason", (int)bad[i].n, bad[i].in);
        assert_int_equal(um_cidr_parse(&c, bad[i].in, bad[i].n, NULL, 0), UM_EINVAL);
    }
}

static void test_cidr_match(void **state)
{
    static const struct {
        const char *prefix, *addr;
        bool match;
    } cases[] = {
        {"10.0.0.0/8", "10.255.1.2", true},
        {"10.0.0.0/8", "10.0.0.0", true},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"10.0.0.0/8", "9.255.255.255", false},
        /* IPv4-mapped IPv6 matches an IPv4 prefix */
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},
        {"10.0.0.0/8", "::ffff:11.1.2.3", false},
        {"127.0.0.0/8", "::ffff:127.0.0.1", true},
        {"1.2.3.4", "::ffff:1.2.3.4", true},
        {"1.2.3.4", "::ffff:1.2.3.5", false},
        /* but IPv4-compatible and NAT64 forms do not */
        {"10.0.0.0/8", "::10.1.2.3", false},
        {"10.0.0.0/8", "64:ff9b::10.1.2.3", false},
        {"10.0.0.0/8", "::fffe:10.1.2.3", false},
        /* /0 */
        {"0.0.0.0/0", "1.2.3.4", true},
        {"0.0.0.0/0", "255.255.255.255", true},
        {"0.0.0.0/0", "::ffff:1.2.3.4", true},
        {"0.0.0.0/0", "::1", false},
        {"::/0", "::1", true},
        {"::/0", "ffff:ffff::ffff", true},
        {"::/0", "::ffff:1.2.3.4", true},
        {"::/0", "1.2.3.4", false},
        /* /32 and /128 */
        {"1.2.3.4/32", "1.2.3.4", true},
        {"1.2.3.4/32", "1.2.3.5", false},
        {"::1/128", "::1", true},
        {"::1/128", "::2", false},
        {"::1/128", "::", false},
        {"::1/128", "127.0.0.1", false},
        {"2001:db8::1/128", "2001:db8::1", true},
        {"2001:db8::1/128", "2001:db8::1:0", false},
        /* bit boundaries */
        {"1.2.3.4/31", "1.2.3.5", true},
        {"1.2.3.4/31", "1.2.3.6", false},
        {"192.168.0.0/23", "192.168.1.255", true},
        {"192.168.0.0/23", "192.168.2.0", false},
        {"128.0.0.0/1", "200.1.1.1", true},
        {"128.0.0.0/1", "127.255.255.255", false},
        {"2001:db8::/32", "2001:db8:1::1", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"2001:db8:8000::/33", "2001:db8:ffff::1", true},
        {"2001:db8:8000::/33", "2001:db8:7fff::1", false},
        {"fe80::/10", "febf::1", true},
        {"fe80::/10", "fec0::1", false},
        {"::ffff:0:0/96", "::ffff:1.2.3.4", true},
        {"::ffff:0:0/96", "::fffe:1.2.3.4", false},
        {"2001:db8::fe/127", "2001:db8::ff", true},
        {"2001:db8::fe/127", "2001:db8::100", false},
        /* host bits in the prefix text do not matter */
        {"10.9.9.9/8", "10.1.1.1", true},
    };
    for (size_t i = 0; i < N(cases); i++) {
        um_cidr_t c;
        um_addr_t a;
        assert_int_equal(um_cidr_parse(&c, cases[i].prefix, strlen(cases[i].prefix), NULL, 0), 0);
        assert_int_equal(um_addr_parse_host(&a, cases[i].addr, strlen(cases[i].addr), NULL, 0), 0);
        a.port = 443; /* the port plays no part */
        if (um_cidr_match(&c, &a) != cases[i].match)
            fail_msg("match(%s, %s) != %d", cases[i].prefix, cases[i].addr, cases[i].match);
    }

    /* a domain never matches, even /0 */
    um_cidr_t c;
    um_addr_t d;
    assert_int_equal(um_addr_parse_host(&d, S("example.com"), NULL, 0), 0);
    assert_int_equal(um_cidr_parse(&c, S("0.0.0.0/0"), NULL, 0), 0);
    assert_false(um_cidr_match(&c, &d));
    assert_int_equal(um_cidr_parse(&c, S("::/0"), NULL, 0), 0);
    assert_false(um_cidr_match(&c, &d));
}

/* Every prefix length: an address matches its own prefix; flipping the first
 * bit past the prefix keeps the match, flipping the last prefix bit loses it. */
static void test_cidr_match_every_length(void **state)
{
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78,
                                   0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44};
    for (int fam = 0; fam < 2; fam++) {
        unsigned max = fam == 0 ? 32 : 128;
        for (unsigned bits = 0; bits <= max; bits++) {
            char txt[80], ip[INET6_ADDRSTRLEN];
            um_addr_t a;
            memset(&a, 0, sizeof(a));
            if (fam == 0) {
                a.type = UM_ADDR_IPV4;
                memcpy(a.u.v4, "\xc0\xa8\x55\xaa", 4);
                inet_ntop(AF_INET, a.u.v4, ip, sizeof(ip));
            } else {
                a.type = UM_ADDR_IPV6;
                memcpy(a.u.v6, v6, 16);
                inet_ntop(AF_INET6, a.u.v6, ip, sizeof(ip));
            }
            snprintf(txt, sizeof(txt), "%s/%u", ip, bits);
            um_cidr_t c;
            assert_int_equal(um_cidr_parse(&c, txt, strlen(txt), NULL, 0), 0);
            assert_int_equal(c.bits, bits);
            assert_true(um_cidr_match(&c, &a));
            if (bits < max) { /* a host bit: still inside */
                um_addr_t h = a;
                uint8_t *q = fam == 0 ? h.u.v4 : h.u.v6;
                q[bits / 8] ^= (uint8_t)(0x80u >> (bits % 8));
                assert_true(um_cidr_match(&c, &h));
            }
            if (bits > 0) { /* the last prefix bit: outside */
                um_addr_t o = a;
                uint8_t *q = fam == 0 ? o.u.v4 : o.u.v6;
                q[(bits - 1) / 8] ^= (uint8_t)(0x80u >> ((bits - 1) % 8));
                assert_false(um_cidr_match(&c, &o));
            }
            /* the stored prefix has every host bit clear */
            for (unsigned i = bits; i < max; i++)
                assert_int_equal(c.addr[i / 8] & (0x80u >> (i % 8)), 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_long_names),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_host),
        cmocka_unit_test(test_domain_valid),
        cmocka_unit_test(test_format_truncation_and_equal),
        cmocka_unit_test(test_sockaddr_roundtrip),
        cmocka_unit_test(test_cidr_parse_good),
        cmocka_unit_test(test_cidr_parse_bad),
        cmocka_unit_test(test_cidr_match),
        cmocka_unit_test(test_cidr_match_every_length),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
