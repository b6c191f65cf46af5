/* HTTP proxy codec: request parsing (CONNECT, absolute-form, malformed inputs
 * and the status each gets), the rewrite to origin-form, response framing and
 * the incremental body tracker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proxy/http.h"
#include "util/err.h"

static int parse(const char *s, um_http_request_t *r)
{
    return um_http_request_parse((const uint8_t *)s, strlen(s), r);
}

static void test_connect(void **state)
{
    um_http_request_t *r = malloc(sizeof(*r));
    const char *s = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nTLS";
    assert_int_equal(parse(s, r), 0);
    assert_true(r->is_connect);
    assert_int_equal(r->dst.type, UM_ADDR_DOMAIN);
    assert_string_equal(r->dst.u.domain, "example.com");
    assert_int_equal(r->dst.port, 443);
    assert_int_equal(r->head_len, strlen(s) - 3);
    assert_int_equal(r->framing, UM_HTTP_BODY_NONE);
    assert_int_equal(parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", r), 0);
    assert_int_equal(r->dst.type, UM_ADDR_IPV6);
    assert_int_equal(r->dst.port, 8443);
    /* every prefix of a valid request needs more bytes */
    for (size_t n = 0; n < strlen(s) - 3; n++)
        assert_int_equal(um_http_request_parse((const uint8_t *)s, n, r), UM_EAGAIN);
    free(r);
}

static void test_absolute(void **state)
{
    um_http_request_t *r = malloc(sizeof(*r));
    const char *s = "GET http://127.0.0.1:8080/a/b?x=1 HTTP/1.1\r\n"
                    "Host: 127.0.0.1:8080\r\n"
                    "Proxy-Connection: keep-alive\r\n"
                    "Connection: keep-alive, X-Secret\r\n"
                    "X-Secret: 1\r\n"
                    "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
                    "Accept: */*\r\n\r\n";
    assert_int_equal(parse(s, r), 0);
    assert_false(r->is_connect);
    assert_int_equal(r->dst.port, 8080);
    assert_int_equal(r->path_len, 8);
    assert_memory_equal(r->path, "/a/b?x=1", 8);
    assert_true(r->keep_alive);
    assert_int_equal(r->framing, UM_HTTP_BODY_NONE);
    uint8_t out[UM_HTTP_HEAD_MAX + 512];
    size_t n = um_http_request_rewrite(r, out, sizeof(out));
    assert_true(n > 0);
    out[n] = 0;
    const char *want = "GET /a/b?x=1 HTTP/1.1\r\n"
                       "Host: 127.0.0.1:8080\r\n"
                       "Accept: */*\r\n"
                       "Connection: close\r\n\r\n";
    assert_string_equal((char *)out, want);
    assert_int_equal(um_http_request_rewrite(r, out, 10), 0);

    /* no Host, no path, default port, HTTP/1.0 without keep-alive */
    assert_int_equal(parse("HEAD http://Example.COM HTTP/1.0\r\n\r\n", r), 0);
    assert_int_equal(r->dst.port, 80);
    assert_true(r->is_head);
    assert_false(r->keep_alive);
    n = um_http_request_rewrite(r, out, sizeof(out));
    out[n] = 0;
    assert_string_equal((char *)out,
                        "HEAD / HTTP/1.1\r\nHost: Example.COM\r\nConnection: close\r\n\r\n");
    assert_int_equal(parse("GET http://h.example HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r),
                     0);
    assert_true(r->keep_alive);
    assert_int_equal(parse("GET http://h.example/ HTTP/1.1\r\nConnection: close\r\n\r\n", r), 0);
    assert_false(r->keep_alive);

    assert_int_equal(parse("POST http://h.example/up HTTP/1.1\r\nContent-Length: 12\r\n\r\n", r),
                     0);
    assert_int_equal(r->framing, UM_HTTP_BODY_LENGTH);
    assert_int_equal(r->content_length, 12);
    assert_int_equal(
        parse("POST http://h.example/up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", r),
        0);
    assert_int_equal(r->framing, UM_HTTP_BODY_CHUNKED);
    free(r);
}

static void test_malformed(void **state)
{
    static const struct {
        const char *s;
        int status;
    } t[] = {
        {"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400}, /* origin-form */
        {"GET https://a.example/ HTTP/1.1\r\n\r\n", 400},
        {"GET ftp://a.example/ HTTP/1.1\r\n\r\n", 400},
        {"GET http://user@a.example/ HTTP/1.1\r\n\r\n", 400},
        {"GET http:///x HTTP/1.1\r\n\r\n", 400},
        {"GET http://a.example/ HTTP/2.0\r\n\r\n", 400},
        {"GET http://a.example/ HTTP/1.1 extra\r\n\r\n", 400},
        {"GET  http://a.example/ HTTP/1.1\r\n\r\n", 400},
        {"\x05\x01\x00", 400}, /* SOCKS5 to the HTTP port: rejected at once */
        {"G\x01T http://a/ HTTP/1.1\r\n\r\n", 400},
        {"CONNECT example.com HTTP/1.1\r\n\r\n", 400}, /* no port */
        {"CONNECT example.com:0 HTTP/1.1\r\n\r\n", 400},
        {"GET http://a.example/ HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},
        {"GET http://a.example/ HTTP/1.1\r\n folded: x\r\n\r\n", 400},
        {"GET http://a.example/ HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400},
        {"POST http://a.example/ HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"POST http://a.example/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: "
         "2\r\n\r\n",
         400},
        {"POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"TRACE http://a.example/ HTTP/1.1\r\n\r\n", 405},
    };
    um_http_request_t *r = malloc(sizeof(*r));
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc = parse(t[i].s, r);
        if (rc != UM_EPROTO || r->status != t[i].status)
            fail_msg("case %zu: rc %d status %d", i, rc, r->status);
        assert_non_null(r->why);
    }
    /* too many headers */
    char *big = malloc(UM_HTTP_HEAD_MAX * 2);
    size_t n = (size_t)sprintf(big, "GET http://a/ HTTP/1.1\r\n");
    for (int i = 0; i < UM_HTTP_HEADERS_MAX + 1; i++)
        n += (size_t)sprintf(big + n, "X%d: y\r\n", i);
    n += (size_t)sprintf(big + n, "\r\n");
    assert_int_equal(um_http_request_parse((uint8_t *)big, n, r), UM_EPROTO);
    /* a head that never ends within the limit */
    n = (size_t)sprintf(big, "GET http://a/ HTTP/1.1\r\nX: ");
    memset(big + n, 'a', UM_HTTP_HEAD_MAX);
    assert_int_equal(um_http_request_parse((uint8_t *)big, UM_HTTP_HEAD_MAX + 10, r), UM_EPROTO);
    assert_int_equal(r->status, 400);
    free(big);
    free(r);
}

static void test_response(void **state)
{
    um_http_response_t *r = malloc(sizeof(*r));
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
                    "Keep-Alive: timeout=5\r\nServer: x\r\n\r\nhello";
    assert_int_equal(um_http_response_parse((const uint8_t *)s, strlen(s), false, r), 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->framing, UM_HTTP_BODY_LENGTH);
    assert_int_equal(r->content_length, 5);
    assert_int_equal(r->head_len, strlen(s) - 5);
    uint8_t out[1024];
    size_t n = um_http_response_rewrite(r, (const uint8_t *)s, true, out, sizeof(out));
    out[n] = 0;
    assert_string_equal((char *)out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n"
                                     "Connection: keep-alive\r\n\r\n");
    /* Connection cannot strip the framing headers. */
    const char *evil = "HTTP/1.1 200 OK\r\nConnection: Content-Length, X-A\r\nX-A: 1\r\n"
                       "Content-Length: 5\r\n\r\n";
    assert_int_equal(um_http_response_parse((const uint8_t *)evil, strlen(evil), false, r), 0);
    n = um_http_response_rewrite(r, (const uint8_t *)evil, true, out, sizeof(out));
    out[n] = 0;
    assert_string_equal((char *)out,
                        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(um_http_response_parse((const uint8_t *)s, strlen(s), true, r), 0);
    assert_int_equal(r->framing, UM_HTTP_BODY_NONE); /* HEAD */
    static const struct {
        const char *s;
        int framing;
    } t[] = {
        {"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", UM_HTTP_BODY_NONE},
        {"HTTP/1.1 304 Not Modified\r\n\r\n", UM_HTTP_BODY_NONE},
        {"HTTP/1.1 100 Continue\r\n\r\n", UM_HTTP_BODY_NONE},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", UM_HTTP_BODY_CHUNKED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", UM_HTTP_BODY_EOF},
        {"HTTP/1.0 200 OK\r\n\r\n", UM_HTTP_BODY_EOF},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", UM_HTTP_BODY_NONE},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(um_http_response_parse((const uint8_t *)t[i].s, strlen(t[i].s), false, r),
                         0);
        assert_int_equal(r->framing, t[i].framing);
    }
    assert_int_equal(um_http_response_parse((const uint8_t *)"HTTP/1.1 200 OK\r\n", 17, false, r),
                     UM_EAGAIN);
    assert_int_equal(um_http_response_parse((const uint8_t *)"SSH-2.0-x\r\n\r\n", 13, false, r),
                     UM_EPROTO);
    assert_int_equal(
        um_http_response_parse((const uint8_t *)"HTTP/1.1 2x0 OK\r\n\r\n", 19, false, r),
        UM_EPROTO);
    free(r);
}

static void test_body(void **state)
{
    um_http_body_t b;
    size_t used;
    /* chunked, fed one byte at a time and all at once */
    const char *c = "5;ext=1\r\nhello\r\n0a\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    size_t clen = strlen(c) - 4;
    um_http_body_init(&b, UM_HTTP_BODY_CHUNKED, 0);
    assert_int_equal(um_http_body_feed(&b, (const uint8_t *)c, strlen(c), &used), 1);
    assert_int_equal(used, clen);
    um_http_body_init(&b, UM_HTTP_BODY_CHUNKED, 0);
    for (size_t i = 0; i < clen; i++) {
        int rc = um_http_body_feed(&b, (const uint8_t *)c + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(rc, i == clen - 1 ? 1 : 0);
    }
    static const char *bad[] = {"x\r\n", "5\r\nhelloXX", "5\n", "1234567890abcdef0\r\n", "\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        um_http_body_init(&b, UM_HTTP_BODY_CHUNKED, 0);
        assert_int_equal(um_http_body_feed(&b, (const uint8_t *)bad[i], strlen(bad[i]), &used),
                         UM_EPROTO);
    }
    um_http_body_init(&b, UM_HTTP_BODY_LENGTH, 10);
    assert_int_equal(um_http_body_feed(&b, (const uint8_t *)"0123456", 7, &used), 0);
    assert_int_equal(um_http_body_feed(&b, (const uint8_t *)"789GET", 6, &used), 1);
    assert_int_equal(used, 3);
    um_http_body_init(&b, UM_HTTP_BODY_NONE, 0);
    assert_true(um_http_body_done(&b));
    um_http_body_init(&b, UM_HTTP_BODY_EOF, 0);
    assert_int_equal(um_http_body_feed(&b, (const uint8_t *)"abc", 3, &used), 0);
    assert_int_equal(used, 3);
}

static void test_error_build(void **state)
{
    char out[512];
    size_t n = um_http_error_build(out, sizeof(out), 403, "not allowed by egress policy", false);
    assert_true(n > 0);
    out[n] = 0;
    assert_non_null(strstr(out, "HTTP/1.1 403 Forbidden\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    const char *body = strstr(out, "\r\n\r\n") + 4;
    char cl[32];
    snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(out, cl));
    n = um_http_error_build(out, sizeof(out), 407, NULL, true);
    out[n] = 0;
    assert_non_null(strstr(out, "Proxy-Authenticate: Basic"));
    assert_int_equal(um_http_error_build(out, 20, 502, "x", false), 0);
    n = um_http_connect_ok_build(out, sizeof(out));
    assert_int_equal(n, strlen("HTTP/1.1 200 Connection established\r\n\r\n"));
}

/* The SOCKS5 credentials guard the HTTP port: Proxy-Authorization: Basic. */
static void test_proxy_auth(void **state)
{
    (void)state;
    um_http_request_t *r = malloc(sizeof(*r));
    static const struct {
        const char *hdr; /* NULL: no header */
        bool ok;
    } cases[] = {
        {"Proxy-Authorization: Basic YWxpY2U6czNjcjN0", true}, /* alice:s3cr3t */
        {"proxy-authorization:   basic   YWxpY2U6czNjcjN0", true},
        {NULL, false},
        {"Proxy-Authorization: Basic YWxpY2U6czNjcjN1", false},     /* alice:s3cr3u */
        {"Proxy-Authorization: Basic YWxpY2U6czNjcjN0eA==", false}, /* alice:s3cr3tx */
        {"Proxy-Authorization: Basic YWxpY2U6czNjcjM=", false},     /* alice:s3cr3 */
        {"Proxy-Authorization: Basic YWxpY2U=", false},             /* alice */
        {"Proxy-Authorization: Bearer YWxpY2U6czNjcjN0", false},
        {"Proxy-Authorization: BasicYWxpY2U6czNjcjN0", false},
        {"Proxy-Authorization: Basic !!!!", false},
        {"Proxy-Authorization: Basic", false},
        {"Authorization: Basic YWxpY2U6czNjcjN0", false}, /* the origin's, not ours */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET http://h/ HTTP/1.1\r\nHost: h\r\n%s%s\r\n",
                 cases[i].hdr ? cases[i].hdr : "", cases[i].hdr ? "\r\n" : "");
        assert_int_equal(parse(req, r), 0);
        if (um_http_proxy_auth_ok(r, "alice", "s3cr3t") != cases[i].ok) fail_msg("case %zu", i);
    }
    /* Longest credentials (255 + 255): accepted; beyond: refused without overflow. */
    char user[256], pass[256], cred[600], b64[900], req[1200];
    memset(user, 'u', 255), user[255] = 0;
    memset(pass, 'p', 255), pass[255] = 0;
    snprintf(cred, sizeof(cred), "%s:%s", user, pass);
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, strlen(cred),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(req, sizeof(req), "GET http://h/ HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n",
             b64);
    assert_int_equal(parse(req, r), 0);
    assert_true(um_http_proxy_auth_ok(r, user, pass));
    assert_false(um_http_proxy_auth_ok(r, user, "p"));
    snprintf(cred, sizeof(cred), "%s:%sxx", user, pass);
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, strlen(cred),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(req, sizeof(req), "GET http://h/ HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n",
             b64);
    assert_int_equal(parse(req, r), 0);
    assert_false(um_http_proxy_auth_ok(r, user, pass));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),    cmocka_unit_test(test_absolute),
        cmocka_unit_test(test_malformed),  cmocka_unit_test(test_response),
        cmocka_unit_test(test_body),       cmocka_unit_test(test_error_build),
        cmocka_unit_test(test_proxy_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
