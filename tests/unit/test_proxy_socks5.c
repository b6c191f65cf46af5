/* SOCKS5 codec: table-driven parses of good and malformed messages, with the
 * reply code each malformed request must get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/conn.h"
#include "proxy/socks5.h"
#include "util/err.h"

static void test_greeting(void **state)
{
    static const struct {
        const char *bytes;
        size_t n;
        int rc;
        size_t used;
    } t[] = {
        {"", 0, UM_EAGAIN, 0},
        {"\x05", 1, UM_EAGAIN, 0},
        {"\x05\x01", 2, UM_EAGAIN, 0},
        {"\x05\x01\x00", 3, 0, 3},
        {"\x05\x02\x00\x02", 4, 0, 4},
        {"\x05\x02\x00\x02GET", 7, 0, 4},
        {"\x04\x01\x00", 3, UM_EPROTO, 0},
        {"GET / HTTP/1.1", 14, UM_EPROTO, 0},
        {"\x05\x00", 2, UM_EPROTO, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        um_socks5_greeting_t g;
        size_t used = 0;
        int rc = um_socks5_greeting_parse((const uint8_t *)t[i].bytes, t[i].n, &used, &g);
        assert_int_equal(rc, t[i].rc);
        if (rc == 0) assert_int_equal(used, t[i].used);
    }
    um_socks5_greeting_t g = {.nmethods = 2, .methods = {0x00, 0x02}};
    assert_int_equal(um_socks5_method_choose(&g, false), UM_SOCKS5_AUTH_NONE);
    assert_int_equal(um_socks5_method_choose(&g, true), UM_SOCKS5_AUTH_USERPASS);
    um_socks5_greeting_t g2 = {.nmethods = 1, .methods = {0x00}};
    assert_int_equal(um_socks5_method_choose(&g2, true), UM_SOCKS5_AUTH_NO_ACCEPTABLE);
    um_socks5_greeting_t g3 = {.nmethods = 1, .methods = {0x02}};
    assert_int_equal(um_socks5_method_choose(&g3, false), UM_SOCKS5_AUTH_NO_ACCEPTABLE);
}

static void test_userpass(void **state)
{
    um_socks5_userpass_t up;
    size_t used;
    const uint8_t ok[] = {1, 3, 'b', 'o', 'b', 2, 'p', 'w'};
    assert_int_equal(um_socks5_userpass_parse(ok, sizeof(ok), &used, &up), 0);
    assert_int_equal(used, sizeof(ok));
    assert_string_equal(up.user, "bob");
    assert_string_equal(up.pass, "pw");
    for (size_t n = 0; n < sizeof(ok); n++)
        assert_int_equal(um_socks5_userpass_parse(ok, n, &used, &up), UM_EAGAIN);
    const uint8_t badver[] = {5, 3, 'b', 'o', 'b', 2, 'p', 'w'};
    assert_int_equal(um_socks5_userpass_parse(badver, sizeof(badver), &used, &up), UM_EPROTO);
    const uint8_t nouser[] = {1, 0, 2, 'p', 'w'};
    assert_int_equal(um_socks5_userpass_parse(nouser, sizeof(nouser), &used, &up), UM_EPROTO);
    uint8_t out[2];
    assert_int_equal(um_socks5_userpass_reply(out, 2, false), 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 1);
}

static void test_request(void **state)
{
    static const struct {
        const char *bytes;
        size_t n;
        int rc;
        uint8_t rep; /* for UM_EPROTO */
        uint8_t cmd;
        uint8_t atyp;
        uint16_t port;
    } t[] = {
        /* CONNECT 127.0.0.1:80 */
        {"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10, 0, 0, 1, UM_ADDR_IPV4, 80},
        /* CONNECT [::1]:443 */
        {"\x05\x01\x00\x04\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x01\xbb", 22, 0, 0, 1, UM_ADDR_IPV6,
         443},
        /* CONNECT example.com:8080 */
        {"\x05\x01\x00\x03\x0b"
         "example.com\x1f\x90",
         18, 0, 0, 1, UM_ADDR_DOMAIN, 8080},
        /* a name that is an IP literal comes back as that IP */
        {"\x05\x01\x00\x03\x09"
         "127.0.0.2\x00\x50",
         16, 0, 0, 1, UM_ADDR_IPV4, 80},
        /* UDP ASSOCIATE 0.0.0.0:0 */
        {"\x05\x03\x00\x01\0\0\0\0\0\0", 10, 0, 0, 3, UM_ADDR_IPV4, 0},
        /* truncated */
        {"\x05\x01\x00\x01\x7f\x00", 6, UM_EAGAIN, 0, 0, 0, 0},
        {"\x05\x01\x00\x03\x0b"
         "exa",
         8, UM_EAGAIN, 0, 0, 0, 0},
        /* BIND: command not supported */
        {"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 10, UM_EPROTO, 0x07, 0, 0, 0},
        /* unknown command */
        {"\x05\x09\x00\x01\x7f\x00\x00\x01\x00\x50", 10, UM_EPROTO, 0x07, 0, 0, 0},
        /* unknown address type */
        {"\x05\x01\x00\x05\x7f\x00\x00\x01\x00\x50", 10, UM_EPROTO, 0x08, 0, 0, 0},
        /* wrong version */
        {"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10, UM_EPROTO, 0x01, 0, 0, 0},
        /* RSV != 0 */
        {"\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50", 10, UM_EPROTO, 0x01, 0, 0, 0},
        /* empty name */
        {"\x05\x01\x00\x03\x00\x00\x50", 7, UM_EPROTO, 0x01, 0, 0, 0},
        /* invalid name */
        {"\x05\x01\x00\x03\x03"
         "a b\x00\x50",
         10, UM_EPROTO, 0x01, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        um_socks5_request_t req;
        size_t used = 0;
        uint8_t rep = 0xee;
        int rc = um_socks5_request_parse((const uint8_t *)t[i].bytes, t[i].n, &used, &req, &rep);
        assert_int_equal(rc, t[i].rc);
        if (rc == UM_EPROTO) assert_int_equal(rep, t[i].rep);
        if (rc == 0) {
            assert_int_equal(used, t[i].n);
            assert_int_equal(req.cmd, t[i].cmd);
            assert_int_equal(req.dst.type, t[i].atyp);
            assert_int_equal(req.dst.port, t[i].port);
        }
    }
}

static void test_reply_roundtrip(void **state)
{
    um_addr_t a;
    assert_int_equal(um_addr_parse(&a, "[2001:db8::7]:5353", 18, 0, NULL, 0), 0);
    uint8_t out[UM_SOCKS5_MSG_MAX];
    size_t n = um_socks5_reply_build(out, sizeof(out), UM_SOCKS5_REP_REFUSED, &a);
    assert_int_equal(n, 22);
    assert_int_equal(out[1], 0x05);
    /* A reply parses like a request header with the same address. */
    um_addr_t b;
    size_t used;
    uint8_t rep;
    assert_int_equal(um_socks5_addr_get(out + 3, n - 3, &used, &b, &rep), 0);
    assert_true(um_addr_equal(&a, &b));
    assert_int_equal(um_socks5_reply_build(out, 5, 0, &a), 0);
    n = um_socks5_reply_build(out, sizeof(out), 0, NULL);
    assert_int_equal(n, 10);
}

static void test_udp_header(void **state)
{
    uint8_t dg[300];
    um_addr_t src;
    assert_int_equal(um_addr_parse(&src, "host.example:53", 15, 0, NULL, 0), 0);
    size_t h = um_socks5_udp_build(dg, sizeof(dg), &src);
    assert_int_equal(h, 3 + 1 + 1 + 12 + 2);
    memcpy(dg + h, "ping", 4);
    size_t hl;
    um_addr_t dst;
    assert_int_equal(um_socks5_udp_parse(dg, h + 4, &hl, &dst), 0);
    assert_int_equal(hl, h);
    assert_true(um_addr_equal(&src, &dst));
    /* every truncation is malformed, never "need more" */
    for (size_t n = 0; n < h; n++)
        assert_int_equal(um_socks5_udp_parse(dg, n, &hl, &dst), UM_EPROTO);
    dg[2] = 1; /* FRAG != 0: dropped */
    assert_int_equal(um_socks5_udp_parse(dg, h + 4, &hl, &dst), UM_EPROTO);
    dg[2] = 0;
    dg[0] = 1; /* RSV != 0 */
    assert_int_equal(um_socks5_udp_parse(dg, h + 4, &hl, &dst), UM_EPROTO);
}

static void test_rep_from_result(void **state)
{
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_OK), 0x00);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_NOT_ALLOWED), 0x02);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_NET_UNREACHABLE), 0x03);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_HOST_UNREACHABLE), 0x04);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_HOST_NOT_FOUND), 0x04);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_REFUSED), 0x05);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_TIMED_OUT), 0x06);
    assert_int_equal(um_socks5_rep_from_result(UM_CONN_GENERAL_FAILURE), 0x01);
    assert_int_equal(um_socks5_rep_from_result(99), 0x01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting),   cmocka_unit_test(test_userpass),
        cmocka_unit_test(test_request),    cmocka_unit_test(test_reply_roundtrip),
        cmocka_unit_test(test_udp_header), cmocka_unit_test(test_rep_from_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
