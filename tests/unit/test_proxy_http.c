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
#include "proxy/server.h"
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

/* Audit 12: the Host an absolute-form request is forwarded with comes from
 * its URI (RFC 9112 3.2.2), whatever Host the client sent. */
static void test_host_rebuilt(void **state)
{
    (void)state;
    um_http_request_t *r = malloc(sizeof(*r));
    static const struct {
        const char *req, *host;
    } t[] = {
        {"GET http://a.example:8080/x HTTP/1.1\r\nHost: evil.example\r\n\r\n", "a.example:8080"},
        {"GET http://a.example/x HTTP/1.1\r\nhost: evil.example\r\n\r\n", "a.example"},
        {"GET http://[::1]:81/ HTTP/1.1\r\nX: 1\r\nHOST: 10.0.0.1\r\n\r\n", "[::1]:81"},
        {"GET http://10.1.2.3/ HTTP/1.0\r\n\r\n", "10.1.2.3"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(parse(t[i].req, r), 0);
        uint8_t out[UM_HTTP_HEAD_MAX + 512];
        size_t n = um_http_request_rewrite(r, out, sizeof(out) - 1);
        assert_true(n > 0);
        out[n] = 0;
        char want[128];
        snprintf(want, sizeof(want), "\r\nHost: %s\r\n", t[i].host);
        if (!strstr((char *)out, want)) fail_msg("case %zu: no '%s' in:\n%s", i, t[i].host, out);
        assert_null(strstr((char *)out, "evil"));
        assert_null(strstr((char *)out, "10.0.0.1"));
        /* exactly one Host line */
        const char *h = strcasestr((char *)out, "\nhost:");
        assert_non_null(h);
        assert_null(strcasestr(h + 1, "\nhost:"));
    }
    free(r);
}

/* Audit 12: more than one Host field line is a 400 (RFC 9112 3.2). */
static void test_duplicate_host(void **state)
{
    (void)state;
    um_http_request_t *r = malloc(sizeof(*r));
    const char *dup[] = {
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: a\r\n\r\n",
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nHOST: b:443\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(dup) / sizeof(dup[0]); i++) {
        assert_int_equal(parse(dup[i], r), UM_EPROTO);
        assert_int_equal(r->status, 400);
        assert_string_equal(r->why, "duplicate Host header");
    }
    assert_int_equal(parse("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", r), 0);
    free(r);
}

/* Audit 12: a response with both Content-Length and Transfer-Encoding goes
 * on without Content-Length, and the client connection closes after it
 * (RFC 9112 6.3 (3)). */
static void test_cl_and_te(void **state)
{
    (void)state;
    um_http_response_t *r = malloc(sizeof(*r));
    static const char *const both[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        assert_int_equal(
            um_http_response_parse((const uint8_t *)both[i], strlen(both[i]), false, r), 0);
        assert_true(r->close_after);
        assert_int_not_equal(r->framing, UM_HTTP_BODY_LENGTH);
        uint8_t out[1024];
        size_t n =
            um_http_response_rewrite(r, (const uint8_t *)both[i], true, out, sizeof(out) - 1);
        assert_true(n > 0);
        out[n] = 0;
        assert_null(strcasestr((char *)out, "content-length"));
        assert_non_null(strcasestr((char *)out, "\r\nTransfer-Encoding: "));
        assert_non_null(strstr((char *)out, "\r\nConnection: close\r\n"));
        assert_null(strstr((char *)out, "keep-alive"));
    }
    const char *one = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    assert_int_equal(um_http_response_parse((const uint8_t *)one, strlen(one), false, r), 0);
    assert_false(r->close_after);
    free(r);
}

/* ---- The listener against a scripted origin: a fake connection provider
 * whose stream answers every request with a fixed byte string, delivered in
 * one on_data call, then EOF only if asked. */
typedef struct {
    um_conn_t base; /* first: a fake_conn_t is a um_conn_t */
    const um_conn_cbs_t *cbs;
    void *arg;
    uv_timer_t timer;
    int step;
} fake_conn_t;

static const um_conn_ops_t fake_conn_ops;

typedef struct {
    uv_loop_t *loop;
    const char *answer;
    size_t answer_len;
    int opens;
    /* the client side */
    uv_tcp_t cli;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t deadline;
    const char *request;
    char got[8192];
    size_t got_len;
    bool eof;
    const char *until; /* stop once got ends with this (NULL: at EOF) */
} rig_t;

static rig_t *g_rig;

static void fake_closed(uv_handle_t *h)
{
    free(h->data);
}

static void fake_tick(uv_timer_t *t)
{
    fake_conn_t *c = t->data;
    if (c->step++ == 0) {
        c->cbs->on_open(c->arg, UM_CONN_OK);
        uv_timer_start(&c->timer, fake_tick, 1, 0);
    } else {
        c->cbs->on_data(c->arg, (const uint8_t *)g_rig->answer, g_rig->answer_len);
    }
}

static int fake_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                     const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    (void)dst, (void)early, (void)n;
    rig_t *rig = ctx;
    fake_conn_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    c->base.ops = &fake_conn_ops;
    c->cbs = cbs;
    c->arg = arg;
    uv_timer_init(rig->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, fake_tick, 1, 0);
    rig->opens++;
    *out = &c->base;
    return 0;
}

static int fake_write(um_conn_t *c, const uint8_t *p, size_t n)
{
    (void)c, (void)p, (void)n;
    return 0;
}
static size_t fake_queued(um_conn_t *c)
{
    (void)c;
    return 0;
}
static int fake_noop(um_conn_t *c)
{
    (void)c;
    return 0;
}
static void fake_close(um_conn_t *uc)
{
    fake_conn_t *c = (fake_conn_t *)uc;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, fake_closed);
}

static const um_conn_ops_t fake_conn_ops = {
    .name = "fake",
    .write = fake_write,
    .queued = fake_queued,
    .read_start = fake_noop,
    .read_stop = fake_noop,
    .shutdown = fake_noop,
    .close = fake_close,
};

static const um_connector_ops_t fake_ops = {
    .name = "fake",
    .open = fake_open,
};

static void rig_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    rig_t *rig = h->data;
    b->base = rig->got + rig->got_len;
    b->len = sizeof(rig->got) - 1 - rig->got_len;
}

static void rig_stop(rig_t *rig)
{
    uv_read_stop((uv_stream_t *)&rig->cli);
    uv_stop(rig->loop);
}

static void rig_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    rig_t *rig = s->data;
    if (n < 0) {
        rig->eof = true;
        rig_stop(rig);
        return;
    }
    rig->got_len += (size_t)n;
    rig->got[rig->got_len] = 0;
    size_t ul = rig->until ? strlen(rig->until) : 0;
    if (rig->until && rig->got_len >= ul && strcmp(rig->got + rig->got_len - ul, rig->until) == 0)
        rig_stop(rig);
}

static void rig_written(uv_write_t *w, int status)
{
    (void)w;
    assert_int_equal(status, 0);
}

static void rig_connected(uv_connect_t *req, int status)
{
    rig_t *rig = req->data;
    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)rig->request, (unsigned)strlen(rig->request));
    assert_int_equal(uv_write(&rig->wreq, (uv_stream_t *)&rig->cli, &b, 1, rig_written), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&rig->cli, rig_alloc, rig_read), 0);
}

static void rig_timeout(uv_timer_t *t)
{
    rig_stop(t->data);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Runs one request through an HTTP listener whose origin answers `answer`;
 * fills rig->got until `until` (or EOF), and notes a following EOF. */
static void rig_run(rig_t *rig, const char *request, const char *answer, size_t alen,
                    const char *until)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    rig->loop = &loop;
    rig->answer = answer;
    rig->answer_len = alen;
    rig->request = request;
    rig->until = until;
    g_rig = rig;
    um_proxy_opts_t o = {.conn = {&fake_ops, rig}, .idle_timeout_ms = 10000};
    um_addr_t bind = {.type = UM_ADDR_IPV4, .u.v4 = {127, 0, 0, 1}}, got; /* port 0: any */
    um_proxy_t *px;
    assert_int_equal(um_proxy_new(&loop, UM_PROXY_HTTP, &bind, &o, &px), 0);
    assert_int_equal(um_proxy_local_addr(px, &got), 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(um_addr_to_sockaddr(&got, &ss, &sl), 0);
    uv_tcp_init(&loop, &rig->cli);
    rig->cli.data = rig;
    rig->creq.data = rig;
    assert_int_equal(uv_tcp_connect(&rig->creq, &rig->cli, (struct sockaddr *)&ss, rig_connected),
                     0);
    uv_timer_init(&loop, &rig->deadline);
    rig->deadline.data = rig;
    uv_timer_start(&rig->deadline, rig_timeout, 5000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* After the awaited bytes: does the proxy close the connection? Wait a
     * little for an EOF (a keep-alive connection stays open). */
    if (!rig->eof && rig->until) {
        rig->until = NULL;
        uv_read_start((uv_stream_t *)&rig->cli, rig_alloc, rig_read);
        uv_timer_start(&rig->deadline, rig_timeout, 300, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_timer_stop(&rig->deadline);
    um_proxy_free(px);
    uv_walk(&loop, walk_close, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0); /* no handle left behind */
}

/* Audit 12: nine or more interim (1xx) responses in one read used to stall
 * the final response (a round limit of 8 left the rest in the buffer). */
static void test_many_interim(void **state)
{
    (void)state;
    for (int k = 1; k <= 40; k += 13) { /* 1, 14, 27, 40 interim heads */
        rig_t *rig = calloc(1, sizeof(*rig));
        char answer[4096];
        size_t n = 0;
        for (int i = 0; i < k; i++)
            n += (size_t)snprintf(answer + n, sizeof(answer) - n, "HTTP/1.1 100 Continue\r\n\r\n");
        n += (size_t)snprintf(answer + n, sizeof(answer) - n,
                              "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
        rig_run(rig, "GET http://o.example/ HTTP/1.1\r\nHost: o.example\r\n\r\n", answer, n,
                "done");
        size_t tail = strlen("done");
        if (rig->got_len < tail || strcmp(rig->got + rig->got_len - tail, "done") != 0)
            fail_msg("%d interim responses: the final one did not arrive; got %zu bytes:\n%s", k,
                     rig->got_len, rig->got);
        int seen = 0;
        for (const char *q = rig->got; (q = strstr(q, " 100 ")); q++)
            seen++;
        assert_int_equal(seen, k);
        assert_false(rig->eof); /* keep-alive: the connection stays */
        free(rig);
    }
}

/* Audit 12, through the listener: the CL+TE response reaches the client
 * without Content-Length, and the connection is closed after it. */
static void test_cl_and_te_closes(void **state)
{
    (void)state;
    rig_t *rig = calloc(1, sizeof(*rig));
    const char *ans = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "4\r\nbody\r\n0\r\n\r\n";
    rig_run(rig, "GET http://o.example/ HTTP/1.1\r\nHost: o.example\r\n\r\n", ans, strlen(ans),
            "0\r\n\r\n");
    assert_non_null(strstr(rig->got, "4\r\nbody\r\n0\r\n\r\n"));
    assert_null(strcasestr(rig->got, "content-length"));
    assert_true(rig->eof);
    free(rig);
    /* The same response with Content-Length only keeps the connection. */
    rig = calloc(1, sizeof(*rig));
    ans = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    rig_run(rig, "GET http://o.example/ HTTP/1.1\r\nHost: o.example\r\n\r\n", ans, strlen(ans),
            "body");
    assert_false(rig->eof);
    free(rig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),        cmocka_unit_test(test_absolute),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_response),
        cmocka_unit_test(test_body),           cmocka_unit_test(test_error_build),
        cmocka_unit_test(test_proxy_auth),     cmocka_unit_test(test_host_rebuilt),
        cmocka_unit_test(test_duplicate_host), cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_many_interim),   cmocka_unit_test(test_cl_and_te_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
