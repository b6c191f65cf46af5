/* The upstream proxy client (transport/upstream.h): URL parsing (and that
 * errors never quote credentials), the exact SOCKS5 (RFC 1928/1929) and HTTP
 * CONNECT bytes we send, replies split at every byte, the proxy's refusals
 * with their reasons, and bytes after the reply left for the server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "transport/upstream.h"
#include "util/err.h"

static um_addr_t v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    um_addr_t t;
    memset(&t, 0, sizeof(t));
    t.type = UM_ADDR_IPV4;
    t.u.v4[0] = a;
    t.u.v4[1] = b;
    t.u.v4[2] = c;
    t.u.v4[3] = d;
    t.port = port;
    return t;
}

static void test_parse(void **st)
{
    (void)st;
    um_upstream_cfg_t u;
    char why[200], txt[128];
    assert_int_equal(um_upstream_parse(&u, "socks5://127.0.0.1:1080", 23, why, sizeof(why)), 0);
    assert_int_equal(u.kind, UM_UPSTREAM_SOCKS5);
    assert_int_equal(u.proxy.port, 1080);
    assert_string_equal(u.user, "");
    const char *s = "socks5://al%3Aice:p%40ss%25w@10.1.2.3:9050";
    assert_int_equal(um_upstream_parse(&u, s, strlen(s), why, sizeof(why)), 0);
    assert_string_equal(u.user, "al:ice");
    assert_string_equal(u.pass, "p@ss%w");
    um_upstream_format(&u, txt, sizeof(txt));
    assert_string_equal(txt, "socks5://10.1.2.3:9050");
    s = "http://bob:hunter2@[::1]:3128/";
    assert_int_equal(um_upstream_parse(&u, s, strlen(s), why, sizeof(why)), 0);
    assert_int_equal(u.kind, UM_UPSTREAM_HTTP);
    assert_int_equal(u.proxy.type, UM_ADDR_IPV6);
    assert_string_equal(u.pass, "hunter2");
    um_upstream_cfg_wipe(&u);

    static const char *bad[] = {
        "ftp://1.2.3.4:21",
        "socks5://1.2.3.4",
        "socks5://proxy.example:1080",
        "socks5://:hunter2@1.2.3.4:1",
        "socks5://bob:@1.2.3.4:1",
        "socks5://bob@1.2.3.4:1",
        "http://bob:hunter2%4@1.2.3.4:8080",
        "http://bob:hun%00ter2@1.2.3.4:8080",
        "",
        "socks4://1.2.3.4:1080",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = 0;
        assert_int_equal(um_upstream_parse(&u, bad[i], strlen(bad[i]), why, sizeof(why)),
                         UM_EINVAL);
        assert_true(why[0] != 0);
        assert_null(strstr(why, "hunter2")); /* a password is never quoted */
        assert_string_equal(u.pass, "");
    }
}

/* Feeds reply bytes one at a time: need more with nothing used until the
 * last, then the verdict. */
static int feed_bytewise(um_upstream_t *u, const uint8_t *p, size_t n, size_t *used, uint8_t *out,
                         size_t *on)
{
    for (size_t k = 1; k < n; k++) {
        int r = um_upstream_input(u, p, k, used, out, UM_UPSTREAM_OUT_MAX, on);
        if (r != UM_EAGAIN) return r;
        assert_int_equal(*used, 0);
        assert_int_equal(*on, 0);
    }
    return um_upstream_input(u, p, n, used, out, UM_UPSTREAM_OUT_MAX, on);
}

static void test_socks5_noauth(void **st)
{
    (void)st;
    um_upstream_cfg_t cfg = {.kind = UM_UPSTREAM_SOCKS5};
    um_addr_t t = v4(192, 0, 2, 7, 8443);
    um_upstream_t u;
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    size_t on, used;
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(on, 3);
    assert_memory_equal(out, "\x05\x01\x00", 3);
    const uint8_t m[] = {5, 0};
    assert_int_equal(feed_bytewise(&u, m, 2, &used, out, &on), UM_EAGAIN);
    assert_int_equal(used, 2);
    assert_int_equal(on, 10);
    assert_memory_equal(out, "\x05\x01\x00\x01\xc0\x00\x02\x07\x20\xfb", 10);
    const uint8_t rep[] = {5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 'S', 'R', 'V'};
    assert_int_equal(feed_bytewise(&u, rep, 10, &used, out, &on), 0);
    assert_int_equal(used, 10);
    /* with the server's first bytes in the same read: they are not taken */
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(um_upstream_input(&u, m, 2, &used, out, sizeof(out), &on), UM_EAGAIN);
    assert_int_equal(um_upstream_input(&u, rep, sizeof(rep), &used, out, sizeof(out), &on), 0);
    assert_int_equal(used, 10);
    /* a domain-typed bound address */
    const uint8_t rep3[] = {5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 80};
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(um_upstream_input(&u, m, 2, &used, out, sizeof(out), &on), UM_EAGAIN);
    assert_int_equal(feed_bytewise(&u, rep3, sizeof(rep3), &used, out, &on), 0);
    assert_int_equal(used, sizeof(rep3));
}

static void test_socks5_auth(void **st)
{
    (void)st;
    um_upstream_cfg_t cfg = {.kind = UM_UPSTREAM_SOCKS5};
    snprintf(cfg.user, sizeof(cfg.user), "user");
    snprintf(cfg.pass, sizeof(cfg.pass), "pass");
    um_addr_t t;
    memset(&t, 0, sizeof(t));
    t.type = UM_ADDR_DOMAIN;
    t.domain_len = 4;
    memcpy(t.u.domain, "exit", 5);
    t.port = 443;
    um_upstream_t u;
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    size_t on, used;
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_memory_equal(out, "\x05\x01\x02", 3);
    const uint8_t m[] = {5, 2};
    assert_int_equal(um_upstream_input(&u, m, 2, &used, out, sizeof(out), &on), UM_EAGAIN);
    assert_int_equal(on, 11);
    assert_memory_equal(out, "\x01\x04user\x04pass", 11);
    const uint8_t ok[] = {1, 0};
    assert_int_equal(feed_bytewise(&u, ok, 2, &used, out, &on), UM_EAGAIN);
    assert_int_equal(on, 11);
    assert_memory_equal(out,
                        "\x05\x01\x00\x03\x04"
                        "exit\x01\xbb",
                        11);
    const uint8_t rep[] = {5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80};
    assert_int_equal(feed_bytewise(&u, rep, sizeof(rep), &used, out, &on), 0);
    assert_int_equal(used, sizeof(rep));

    /* refusals, with the proxy's reason */
    const uint8_t bad[] = {1, 1};
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(um_upstream_input(&u, m, 2, &used, out, sizeof(out), &on), UM_EAGAIN);
    assert_int_equal(um_upstream_input(&u, bad, 2, &used, out, sizeof(out), &on), UM_EAUTH);
    assert_non_null(strstr(um_upstream_reason(&u), "refused the user name"));
    const uint8_t none[] = {5, 0xff};
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(um_upstream_input(&u, none, 2, &used, out, sizeof(out), &on), UM_EAUTH);
    /* a proxy that skips authentication we asked for is not trusted either */
    const uint8_t skip[] = {5, 0};
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(um_upstream_input(&u, skip, 2, &used, out, sizeof(out), &on), UM_EPROTO);
}

static void test_socks5_errors(void **st)
{
    (void)st;
    um_upstream_cfg_t cfg = {.kind = UM_UPSTREAM_SOCKS5};
    um_addr_t t = v4(10, 0, 0, 1, 443);
    static const struct {
        uint8_t rep;
        int r;
        const char *why;
    } tab[] = {
        {1, UM_EPROTO, "general failure"},     {2, UM_EACCES, "not allowed"},
        {3, UM_EPROTO, "network unreachable"}, {5, UM_EPROTO, "connection refused"},
        {0x42, UM_EPROTO, "unknown reply"},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        um_upstream_t u;
        uint8_t out[UM_UPSTREAM_OUT_MAX];
        size_t on, used;
        const uint8_t m[] = {5, 0}, rep[] = {5, tab[i].rep, 0, 1, 0, 0, 0, 0, 0, 0};
        assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
        assert_int_equal(um_upstream_input(&u, m, 2, &used, out, sizeof(out), &on), UM_EAGAIN);
        assert_int_equal(um_upstream_input(&u, rep, sizeof(rep), &used, out, sizeof(out), &on),
                         tab[i].r);
        assert_non_null(strstr(um_upstream_reason(&u), tab[i].why));
    }
    /* not SOCKS at all (an HTTP proxy answering) */
    um_upstream_t u;
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    size_t on, used;
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(
        um_upstream_input(&u, (const uint8_t *)"HTTP", 4, &used, out, sizeof(out), &on), UM_EPROTO);
}

static void test_http(void **st)
{
    (void)st;
    um_upstream_cfg_t cfg = {.kind = UM_UPSTREAM_HTTP};
    snprintf(cfg.user, sizeof(cfg.user), "Aladdin");
    snprintf(cfg.pass, sizeof(cfg.pass), "open sesame");
    um_addr_t t = v4(10, 9, 8, 7, 443);
    um_upstream_t u;
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    size_t on, used;
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    const char *want = "CONNECT 10.9.8.7:443 HTTP/1.1\r\nHost: 10.9.8.7:443\r\n"
                       "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n";
    assert_int_equal(on, strlen(want));
    assert_memory_equal(out, want, on);
    const char *rep = "HTTP/1.1 200 Connection established\r\nVia: proxy\r\n\r\n\x16\x03";
    size_t rn = strlen(rep);
    assert_int_equal(feed_bytewise(&u, (const uint8_t *)rep, rn, &used, out, &on), 0);
    assert_int_equal(used, rn - 2); /* the server's bytes stay */

    static const struct {
        const char *reply;
        int r;
        const char *why;
    } tab[] = {
        {"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", UM_EAUTH, "HTTP 407 Proxy Auth"},
        {"HTTP/1.0 403 Forbidden\r\nX: y\r\n\r\n", UM_EACCES, "HTTP 403 Forbidden"},
        {"HTTP/1.1 502 Bad\x01Gateway\r\n\r\n", UM_EPROTO, "HTTP 502 Bad?Gateway"},
        {"SSH-2.0-OpenSSH\r\n\r\n", UM_EPROTO, "not an HTTP"},
        {"HTTP/1.1 2x0 OK\r\n\r\n", UM_EPROTO, "malformed"},
        {"HTTP/1.1 200\r\n\r\n", 0, ""},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        cfg.user[0] = 0;
        assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
        assert_null(memmem(out, on, "Proxy-Authorization", 19));
        assert_int_equal(um_upstream_input(&u, (const uint8_t *)tab[i].reply, strlen(tab[i].reply),
                                           &used, out, sizeof(out), &on),
                         tab[i].r);
        if (tab[i].r) assert_non_null(strstr(um_upstream_reason(&u), tab[i].why));
    }
    /* headers without an end are bounded */
    static uint8_t big[UM_UPSTREAM_IN_MAX + 16];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(um_upstream_start(&u, &cfg, &t, out, sizeof(out), &on), 0);
    assert_int_equal(
        um_upstream_input(&u, big, UM_UPSTREAM_IN_MAX - 1, &used, out, sizeof(out), &on),
        UM_EAGAIN);
    assert_int_equal(um_upstream_input(&u, big, sizeof(big), &used, out, sizeof(out), &on),
                     UM_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),       cmocka_unit_test(test_socks5_noauth),
        cmocka_unit_test(test_socks5_auth), cmocka_unit_test(test_socks5_errors),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
