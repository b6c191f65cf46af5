/* The ws transport (docs/PROTOCOL.md 11): the HTTP upgrade parsers
 * (src/transport/ws_http.c), the codec (codec_ws.c) and the carrier
 * (ws_carrier.c, libwslay) over a carrier pair in memory:
 *
 *   - the RFC 6455 accept example; a built request parses and checks, every
 *     prefix of it is "need more", other paths, methods, versions and
 *     missing fields are refused; the 101 answer checks only for its key;
 *   - extra upgrade fields (`header`): the request bytes exactly, with and
 *     without them (after the standard fields, in order, trimmed; one named
 *     like a browser default replaces it); the codec sends them; names that
 *     are not tokens, control characters, overlong lines and the fields
 *     umbra sets (Host, Upgrade, Connection, Sec-WebSocket-*) are refused;
 *   - the codec's flight carries message 1 to the server and its reply
 *     message 2 to the client, split anywhere; bytes after them are left;
 *     refuse() answers a complete request only, with a 404;
 *   - the carrier: messages of 1 B to 1 MiB both ways under every chunking,
 *     client frames masked and server frames not, each frame one inner write; a ping gets its pong;
 * a fragmented message arrives whole; a text frame, an unmasked client frame and a long control
 * frame end the connection (a read error); a close frame is the orderly end (UM_EPIPE) and gets its
 * close back; shutdown sends a close frame, then ends the inner carrier; backpressure: a refused
 * inner write is held and goes out at drain; keepalive: a masked ping after ping_ms without a frame
 * sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>
#include <uv.h>

#include "mem_pipe.h"
#include "transport/codec_ws.h"
#include "transport/ws_carrier.h"
#include "transport/ws_http.h"
#include "util/err.h"

/* ---- HTTP ---- */

static void t_accept_rfc(void **s)
{
    (void)s;
    char out[UM_WS_ACCEPT_LEN + 1];
    um_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static size_t build_req(char *buf, size_t cap, const char *path, const char *proto)
{
    um_ws_req_t q = {.path = path, .host = "front.example:8443", .protocol = proto};
    memcpy(q.key, "dGhlIHNhbXBsZSBub25jZQ==", UM_WS_KEY_LEN + 1);
    size_t n = 0;
    assert_int_equal(um_ws_req_build(&q, buf, cap, &n), 0);
    return n;
}

static void t_request(void **s)
{
    (void)s;
    char buf[4096], key[UM_WS_KEY_LEN + 1];
    um_ws_head_t h;
    um_ws_span_t pr;
    size_t n = build_req(buf, sizeof(buf), "/a/b", "AbC-_9");
    assert_int_equal(um_ws_head_parse((uint8_t *)buf, n, &h), 0);
    assert_int_equal(h.len, n);
    assert_true(h.is_request);
    assert_int_equal(um_ws_req_check(&h, "/a/b", key, &pr), 0);
    assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_int_equal(pr.n, 6);
    assert_memory_equal(pr.p, "AbC-_9", 6);
    const um_ws_span_t *host = um_ws_field(&h, "HOST");
    assert_non_null(host);
    assert_int_equal(host->n, strlen("front.example:8443"));
    assert_int_equal(um_ws_req_check(&h, "/a", key, &pr), UM_EPROTO);
    assert_int_equal(um_ws_req_check(&h, "/a/b/", key, &pr), UM_EPROTO);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(um_ws_head_parse((uint8_t *)buf, i, &h), UM_EAGAIN);
    /* Variants that are not an upgrade for us. */
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"GET ", "POST "},
        {"HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"},
        {"Upgrade: websocket", "Upgrade: h2c"},
        {"Connection: Upgrade", "Connection: close"},
        {"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"},
        {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j"},
        {"Sec-WebSocket-Protocol: AbC-_9\r\n", ""},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char v[4096];
        const char *at = strstr(buf, edits[i].from);
        assert_non_null(at);
        int w = snprintf(v, sizeof(v), "%.*s%s%s", (int)(at - buf), buf, edits[i].to,
                         at + strlen(edits[i].from));
        int r = um_ws_head_parse((uint8_t *)v, (size_t)w, &h);
        if (r == 0) r = um_ws_req_check(&h, "/a/b", key, &pr);
        assert_int_equal(r, UM_EPROTO);
    }
    /* Not HTTP at all, or broken heads. */
    static const char *junk[] = {"\x16\x03\x01\x02\x00", "GET /a/b HTTP/1.1\r\nbad header\r\n\r\n",
                                 "GET  /x HTTP/1.1\r\n\r\n", "G\x01T / HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        assert_int_equal(um_ws_head_parse((const uint8_t *)junk[i], strlen(junk[i]), &h),
                         UM_EPROTO);
    /* Nothing at all (a connection that closed without a byte: the
     * refusal sees NULL, 0; UBSan flags a memchr on NULL). */
    assert_int_equal(um_ws_head_parse(NULL, 0, &h), UM_EAGAIN);
    um_codec_ws_t sc;
    uint8_t ans[512];
    size_t an = 0;
    assert_int_equal(um_codec_ws_init(&sc, "/a/b", "", 60, 40), 0);
    assert_int_equal(um_codec_ws_ops.refuse(&sc.base, NULL, 0, ans, sizeof(ans), &an), UM_EAGAIN);
    /* Longer than the bound: refused, not "need more" forever. */
    char *big = malloc(UM_WS_HEAD_MAX + 10);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', UM_WS_HEAD_MAX - 9);
    assert_int_equal(um_ws_head_parse((uint8_t *)big, UM_WS_HEAD_MAX + 10, &h), UM_EPROTO);
    free(big);
}

#define REQ_HEAD                                                                                   \
    "GET /a/b HTTP/1.1\r\n"                                                                        \
    "Host: front.example:8443\r\n"                                                                 \
    "Connection: Upgrade\r\n"                                                                      \
    "Pragma: no-cache\r\n"                                                                         \
    "Cache-Control: no-cache\r\n"
#define REQ_UA                                                                                     \
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "       \
    "Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"
#define REQ_TAIL                                                                                   \
    "Upgrade: websocket\r\n"                                                                       \
    "Origin: https://front.example:8443\r\n"                                                       \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"                                                 \
    "Accept-Language: en-US,en;q=0.9\r\n"                                                          \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Sec-WebSocket-Protocol: AbC-_9\r\n"

static void t_request_extra(void **s)
{
    (void)s;
    char buf[4096], key[UM_WS_KEY_LEN + 1];
    um_ws_head_t h;
    um_ws_span_t pr;
    um_ws_req_t q = {.path = "/a/b", .host = "front.example:8443", .protocol = "AbC-_9"};
    memcpy(q.key, "dGhlIHNhbXBsZSBub25jZQ==", UM_WS_KEY_LEN + 1);
    size_t n = 0;
    /* None: a Chromium's request, byte for byte. */
    static const char plain[] = REQ_HEAD REQ_UA REQ_TAIL "\r\n";
    assert_int_equal(um_ws_req_build(&q, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, sizeof(plain) - 1);
    assert_memory_equal(buf, plain, n);
    /* Three: after the standard fields, in order, the value trimmed; the
     * User-Agent replaces the browser's. */
    const char *extra[] = {"X-Client:  web ", "User-Agent: curl/8.5", "X-Tab:\ta\tb"};
    q.extra = extra;
    q.n_extra = 3;
    static const char want[] = REQ_HEAD REQ_TAIL "X-Client: web\r\n"
                                                 "User-Agent: curl/8.5\r\n"
                                                 "X-Tab: a\tb\r\n"
                                                 "\r\n";
    assert_int_equal(um_ws_req_build(&q, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    assert_int_equal(um_ws_head_parse((uint8_t *)buf, n, &h), 0);
    assert_int_equal(um_ws_req_check(&h, "/a/b", key, &pr), 0); /* still our upgrade */
    /* Short room: refused, never cut. */
    for (size_t cap = 0; cap < n + 1; cap += 37)
        assert_int_equal(um_ws_req_build(&q, buf, cap, &n), UM_ENOSPC);
    /* Refused lines: refused by the builder too. */
    char longv[UM_WS_XHDR_LEN + 2];
    memset(longv, 'v', sizeof(longv) - 1);
    memcpy(longv, "X: ", 3);
    longv[sizeof(longv) - 1] = '\0';
    const char *bad[] = {"Host: evil.example",
                         "host: x",
                         "Upgrade: h2c",
                         "Connection: close",
                         "Content-Length: 5",
                         "Transfer-Encoding: chunked",
                         "Sec-WebSocket-Protocol: x",
                         "sec-websocket-key: x",
                         "X: a\r\nHost: b",
                         "X: a\nb",
                         "X: a\rb",
                         "X: a\x01",
                         "Bad Name: v",
                         "Bad(name): v",
                         ": v",
                         "NoColon",
                         "",
                         longv};
    char why[96];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(um_ws_xhdr_check(bad[i], why, sizeof(why)), UM_EINVAL);
        assert_true(why[0] != '\0');
        const char *one[] = {bad[i]};
        um_ws_req_t b = q;
        b.extra = one;
        b.n_extra = 1;
        assert_int_equal(um_ws_req_build(&b, buf, sizeof(buf), &n), UM_EINVAL);
    }
    longv[UM_WS_XHDR_LEN] = '\0'; /* exactly the bound */
    const char *good[] = {"X-A: b", "X-Empty:", "Origin: https://www.example.com", longv,
                          "X-Sec-WebSocket-Like: fine"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(um_ws_xhdr_check(good[i], why, sizeof(why)), 0);
    /* The codec sends what it was given. */
    um_codec_ws_t cli;
    assert_int_equal(um_codec_ws_init(&cli, "/p", "h.example", 60, 40), 0);
    snprintf(cli.xhdr[0], sizeof(cli.xhdr[0]), "X-Client: web");
    snprintf(cli.xhdr[1], sizeof(cli.xhdr[1]), "Origin: https://www.example.com");
    cli.n_xhdr = 2;
    um_codec_state_t cs;
    memset(&cs, 0, sizeof(cs));
    size_t n1 = um_codec_ws_ops.msg1_len(&cli.base, &cs);
    uint8_t m1[1024], fl[8192];
    randombytes_buf(m1, n1);
    size_t fn = 0;
    assert_int_equal(um_codec_ws_ops.seal_flight(&cli.base, &cs, m1, n1, fl, sizeof(fl) - 1, &fn),
                     0);
    fl[fn] = 0;
    assert_non_null(
        strstr((char *)fl, "\r\nX-Client: web\r\nOrigin: https://www.example.com\r\n\r\n"));
    assert_null(strstr((char *)fl, "Origin: https://h.example"));
}

static void t_response(void **s)
{
    (void)s;
    char buf[512];
    size_t n = 0;
    um_ws_head_t h;
    const char key[] = "dGhlIHNhbXBsZSBub25jZQ==", other[] = "AAAAAAAAAAAAAAAAAAAAAA==";
    assert_int_equal(um_ws_resp_build(key, buf, sizeof(buf), &n), 0);
    assert_int_equal(um_ws_head_parse((uint8_t *)buf, n, &h), 0);
    assert_int_equal(h.status, 101);
    assert_int_equal(um_ws_resp_check(&h, key), 0);
    assert_int_equal(um_ws_resp_check(&h, other), UM_EPROTO);
    size_t nf = um_ws_not_found(buf, sizeof(buf));
    assert_int_equal(um_ws_head_parse((uint8_t *)buf, nf, &h), 0);
    assert_int_equal(h.status, 404);
    assert_int_equal(um_ws_resp_check(&h, key), UM_EPROTO);
}

/* ---- codec ---- */

static void t_codec(void **s)
{
    (void)s;
    um_codec_ws_t cli, srv;
    assert_int_equal(um_codec_ws_init(&cli, "/p", "h.example", 60, 40), 0);
    assert_int_equal(um_codec_ws_init(&srv, "/p", "", 60, 40), 0);
    assert_int_equal(um_codec_ws_init(&cli, "p", "h", 60, 40), UM_EINVAL);
    assert_int_equal(um_codec_ws_init(&cli, "/a b", "h", 60, 40), UM_EINVAL);
    assert_int_equal(um_codec_ws_init(&cli, "/p", "h.example", 60, 40), 0);
    const um_codec_ops_t *o = &um_codec_ws_ops;
    for (int round = 0; round < 20; round++) {
        um_codec_state_t cs, ss;
        memset(&cs, 0, sizeof(cs));
        memset(&ss, 0, sizeof(ss));
        size_t n1 = o->msg1_len(&cli.base, &cs);
        assert_true(n1 >= 60 && n1 <= UM_HS_MSG1_MAX_WS);
        uint8_t m1[1024], fl[8192], got[4096], rep[8192];
        randombytes_buf(m1, n1);
        size_t fn = 0, gn = 0, used = 0, rn = 0;
        assert_int_equal(o->seal_flight(&cli.base, &cs, m1, n1, fl, sizeof(fl) - 5, &fn), 0);
        memcpy(fl + fn, "MORE!", 5); /* the session's first bytes */
        for (size_t cut = 0; cut < fn; cut += 1 + fn / 50)
            assert_int_equal(o->open_flight(&srv.base, &ss, fl, cut, got, sizeof(got), &gn, &used),
                             UM_EAGAIN);
        assert_int_equal(o->open_flight(&srv.base, &ss, fl, fn + 5, got, sizeof(got), &gn, &used),
                         0);
        assert_int_equal(gn, n1);
        assert_memory_equal(got, m1, n1);
        assert_int_equal(used, fn);
        size_t n2 = o->msg2_len(&srv.base, &ss);
        assert_true(n2 >= 40);
        uint8_t m2[1024];
        randombytes_buf(m2, n2);
        assert_int_equal(
            o->seal_reply(&srv.base, &ss, m2, n2, NULL, NULL, rep, sizeof(rep) - 3, &rn), 0);
        memcpy(rep + rn, "abc", 3);
        for (size_t cut = 0; cut < rn; cut += 1 + rn / 50)
            assert_int_equal(o->open_reply(&cli.base, &cs, rep, cut, got, sizeof(got), &gn, &used),
                             UM_EAGAIN);
        assert_int_equal(o->open_reply(&cli.base, &cs, rep, rn + 3, got, sizeof(got), &gn, &used),
                         0);
        assert_int_equal(gn, n2);
        assert_memory_equal(got, m2, n2);
        assert_int_equal(used, rn);
        /* Another client's key: not ours. */
        um_codec_state_t cs2;
        memset(&cs2, 0, sizeof(cs2));
        o->msg1_len(&cli.base, &cs2);
        assert_int_equal(o->open_reply(&cli.base, &cs2, rep, rn, got, sizeof(got), &gn, &used),
                         UM_EPROTO);
    }
    /* Refusals: a 404 for a complete request, nothing for a partial one. */
    char req[4096];
    size_t qn = build_req(req, sizeof(req), "/other", "AAAA");
    uint8_t ans[512], got[2048];
    size_t an = 0, gn = 0, used = 0;
    um_codec_state_t ss;
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(
        o->open_flight(&srv.base, &ss, (uint8_t *)req, qn, got, sizeof(got), &gn, &used),
        UM_EPROTO);
    assert_int_equal(o->refuse(&srv.base, (uint8_t *)req, qn, ans, sizeof(ans), &an), 0);
    assert_true(an > 12 && memcmp(ans, "HTTP/1.1 404 ", 13) == 0);
    assert_int_equal(o->refuse(&srv.base, (uint8_t *)req, qn - 2, ans, sizeof(ans), &an),
                     UM_EAGAIN);
    assert_int_equal(o->unauth, UM_UNAUTH_REFUSE);
}

/* ---- carrier ---- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int err, eof, reads;
} sink_t;

static void sink_rd(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)c;
    sink_t *k = ud;
    k->reads++;
    if (status == UM_EPIPE) {
        k->eof = 1;
        return;
    }
    if (status < 0) {
        k->err = status;
        return;
    }
    if (k->len + n > k->cap) {
        k->cap = (k->len + n) * 2 + 1024;
        k->buf = realloc(k->buf, k->cap);
    }
    memcpy(k->buf + k->len, p, n);
    k->len += n;
}

static int drains;
static void count_drain(um_carrier_t *c, void *ud)
{
    (void)c;
    (void)ud;
    drains++;
}

typedef struct {
    mp_end_t a, b; /* a: under the client; b: under the server */
    um_carrier_t *cli, *srv;
    sink_t cs, ss;
} pair_t;

static void pair_up(pair_t *p)
{
    memset(p, 0, sizeof(*p));
    mp_pair(&p->a, &p->b);
    um_ws_carrier_cfg_t cc = {.server = false}, sc = {.server = true};
    assert_int_equal(um_ws_carrier_new(&p->a.base, &cc, &p->cli), 0);
    assert_int_equal(um_ws_carrier_new(&p->b.base, &sc, &p->srv), 0);
    um_carrier_set_cbs(p->cli, sink_rd, count_drain, &p->cs);
    um_carrier_set_cbs(p->srv, sink_rd, count_drain, &p->ss);
}

static void pair_down(pair_t *p)
{
    um_carrier_close(p->cli);
    um_carrier_close(p->srv);
    mp_free(&p->a);
    mp_free(&p->b);
    free(p->cs.buf);
    free(p->ss.buf);
}

static void t_carrier_bulk(void **s)
{
    (void)s;
    static const size_t sizes[] = {1, 125, 126, 127, 65535, 65536, 70000, 1u << 20};
    static const size_t pieces[] = {0, 1, 7, 4096};
    uint8_t *data = malloc(1u << 20);
    randombytes_buf(data, 1u << 20);
    for (size_t pi = 0; pi < sizeof(pieces) / sizeof(pieces[0]); pi++) {
        pair_t p;
        pair_up(&p);
        size_t total = 0;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            if (pieces[pi] == 1 && sizes[i] > 70000) continue; /* slow byte by byte */
            size_t q0 = p.a.qn;
            int w0 = p.a.writes;
            assert_int_equal(um_carrier_write(p.cli, data, sizes[i]), 0);
            /* One frame, one inner write (over TLS: one record per 16 KiB,
             * no record holding a frame header alone); a frame past 256 KiB
             * in 256 KiB pieces. */
            if (sizes[i] <= (256u << 10))
                assert_int_equal(p.a.writes, w0 + 1);
            else
                assert_true(p.a.writes - w0 <= 1 + (int)(sizes[i] / (256u << 10)));
            /* The client's frame is masked: the wire differs from the data. */
            assert_true(p.a.q[q0 + 1] & 0x80);
            assert_int_equal(um_carrier_write(p.srv, data, sizes[i]), 0);
            assert_false(p.b.q[0] & 0x00);
            total += sizes[i];
        }
        size_t bwire = p.b.qn;
        assert_true(bwire > total); /* headers, unmasked */
        mp_pump(&p.a, pieces[pi], SIZE_MAX);
        mp_pump(&p.b, pieces[pi], SIZE_MAX);
        assert_int_equal(p.ss.len, total);
        assert_int_equal(p.cs.len, total);
        assert_int_equal(p.ss.err, 0);
        assert_int_equal(p.cs.err, 0);
        size_t off = 0;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            if (pieces[pi] == 1 && sizes[i] > 70000) continue;
            assert_memory_equal(p.ss.buf + off, data, sizes[i]);
            assert_memory_equal(p.cs.buf + off, data, sizes[i]);
            off += sizes[i];
        }
        pair_down(&p);
    }
    free(data);
}

/* A raw frame as a client would send it (masked) or a server (not). */
static size_t frame(uint8_t *out, uint8_t b0, const uint8_t *pl, size_t n, int mask)
{
    size_t w = 0;
    out[w++] = b0;
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        out[w++] = m | (uint8_t)n;
    } else {
        out[w++] = m | 126;
        out[w++] = (uint8_t)(n >> 8);
        out[w++] = (uint8_t)n;
    }
    uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    if (mask) {
        memcpy(out + w, key, 4);
        w += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[w + i] = mask ? pl[i] ^ key[i % 4] : pl[i];
    return w + n;
}

/* Feeds raw bytes to the server carrier as one inner read. */
static void to_server(pair_t *p, const uint8_t *w, size_t n)
{
    p->b.rd(&p->b.base, w, n, 0, p->b.ud);
}

static void t_carrier_control(void **s)
{
    (void)s;
    uint8_t w[1024];
    pair_t p;
    size_t n;
    /* Ping: pong with the same payload, unmasked. */
    pair_up(&p);
    n = frame(w, 0x89, (const uint8_t *)"hi", 2, 1);
    to_server(&p, w, n);
    assert_int_equal(p.b.qn, 4);
    assert_int_equal(p.b.q[0], 0x8a);
    assert_int_equal(p.b.q[1], 2);
    assert_memory_equal(p.b.q + 2, "hi", 2);
    assert_int_equal(p.ss.err, 0);
    /* A fragmented message, with a ping between its fragments. */
    size_t k = frame(w, 0x02, (const uint8_t *)"abc", 3, 1);
    k += frame(w + k, 0x89, (const uint8_t *)"", 0, 1);
    k += frame(w + k, 0x00, (const uint8_t *)"def", 3, 1);
    k += frame(w + k, 0x80, (const uint8_t *)"g", 1, 1);
    for (size_t i = 0; i < k; i++)
        to_server(&p, w + i, 1);
    assert_int_equal(p.ss.len, 7);
    assert_memory_equal(p.ss.buf, "abcdefg", 7);
    assert_int_equal(p.ss.err, 0);
    /* Close: the orderly end, and a close frame back. */
    p.b.qn = 0;
    uint8_t code[2] = {0x03, 0xe8};
    n = frame(w, 0x88, code, 2, 1);
    to_server(&p, w, n);
    assert_int_equal(p.ss.eof, 1);
    assert_true(p.b.qn >= 2 && p.b.q[0] == 0x88);
    pair_down(&p);

    static const struct {
        uint8_t b0;
        size_t len;
        int mask;
    } bad[] = {
        {0x81, 3, 1},   /* text */
        {0x82, 3, 0},   /* unmasked client frame */
        {0x89, 126, 1}, /* a control frame over 125 bytes */
        {0x09, 1, 1},   /* a fragmented control frame */
        {0xc2, 3, 1},   /* RSV1 without an extension */
        {0x80, 3, 1},   /* a continuation without a start */
    };
    uint8_t pl[200];
    memset(pl, 'x', sizeof(pl));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pair_up(&p);
        n = frame(w, bad[i].b0, pl, bad[i].len, bad[i].mask);
        to_server(&p, w, n);
        assert_int_equal(p.ss.err, UM_EPROTO);
        assert_int_equal(p.ss.len, 0);
        pair_down(&p);
    }
    /* A server frame that is masked is bad for the client. */
    pair_up(&p);
    n = frame(w, 0x82, pl, 3, 1);
    p.a.rd(&p.a.base, w, n, 0, p.a.ud);
    assert_int_equal(p.cs.err, UM_EPROTO);
    pair_down(&p);
}

static void t_carrier_shutdown_backpressure(void **s)
{
    (void)s;
    pair_t p;
    pair_up(&p);
    uint8_t data[4096];
    randombytes_buf(data, sizeof(data));
    assert_int_equal(um_carrier_write(p.cli, data, 10), 0);
    assert_int_equal(um_carrier_shutdown(p.cli), 0);
    assert_int_equal(p.a.shut, 1);
    assert_int_equal(um_carrier_write(p.cli, data, 10), UM_EPIPE);
    mp_pump(&p.a, 0, SIZE_MAX);
    assert_int_equal(p.ss.len, 10);
    assert_int_equal(p.ss.eof, 1);
    pair_down(&p);

    /* The inner carrier refuses: wslay holds the frame, queued() counts it,
     * writes are refused while it is held, and it goes out at the drain. */
    pair_up(&p);
    um_carrier_set_wq_max(p.srv, 8192);
    p.b.bound = 2000; /* the inner carrier refuses sooner than the ws bound */
    drains = 0;
    size_t wrote = 0;
    int r = 0;
    for (int i = 0; i < 64 && (r = um_carrier_write(p.srv, data + wrote % 3000, 1000)) == 0; i++)
        wrote += 1000;
    assert_int_equal(r, UM_ENOSPC);
    assert_true(p.b.refused);
    assert_true(wrote >= 6000);
    assert_true(um_carrier_queued(p.srv) + 1000 > 8192);
    assert_true(um_carrier_queued(p.srv) > p.b.qn); /* wslay holds some */
    for (int i = 0; i < 100 && um_carrier_queued(p.srv); i++)
        mp_pump(&p.b, 0, 4096);
    assert_true(drains > 0);
    assert_int_equal(um_carrier_queued(p.srv), 0);
    assert_int_equal(p.cs.len, wrote);
    for (size_t off = 0; off < wrote; off += 1000)
        assert_memory_equal(p.cs.buf + off, data + off % 3000, 1000);
    pair_down(&p);
}

/* A read callback that closes the carrier it was called for. */
static void close_rd(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)p;
    (void)n;
    (void)status;
    *(int *)ud += 1;
    um_carrier_close(c);
}

static void t_carrier_close_in_cb(void **s)
{
    (void)s;
    mp_end_t a, b;
    mp_pair(&a, &b);
    um_carrier_t *srv = NULL;
    um_ws_carrier_cfg_t sc = {.server = true};
    assert_int_equal(um_ws_carrier_new(&b.base, &sc, &srv), 0);
    int calls = 0;
    um_carrier_set_cbs(srv, close_rd, NULL, &calls);
    uint8_t w[64];
    size_t n = frame(w, 0x82, (const uint8_t *)"one", 3, 1);
    n += frame(w + n, 0x82, (const uint8_t *)"two", 3, 1);
    b.rd(&b.base, w, n, 0, b.ud);
    assert_int_equal(calls, 1);
    assert_int_equal(b.closed, 1);
    mp_free(&a);
    mp_free(&b);
}

static void step_cb(uv_timer_t *t)
{
    (void)t;
}

/* Keepalive: with a loop, the client pings after ping_ms without a frame
 * sent (a masked ping with 4 bytes), and not while it is sending. */
static void t_carrier_ping(void **s)
{
    (void)s;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mp_end_t a, b;
    mp_pair(&a, &b);
    um_carrier_t *cli = NULL;
    um_ws_carrier_cfg_t cc = {.server = false, .loop = &loop, .ping_ms = 200};
    uv_timer_t step; /* keeps uv_run(ONCE) returning every 5 ms */
    uv_timer_init(&loop, &step);
    uv_timer_start(&step, step_cb, 5, 5);
    assert_int_equal(um_ws_carrier_new(&a.base, &cc, &cli), 0);
    sink_t k = {0};
    um_carrier_set_cbs(cli, sink_rd, NULL, &k);
    uint64_t t0 = uv_now(&loop);
    while (a.qn == 0 && uv_now(&loop) - t0 < 5000)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.qn, 10); /* header 2, mask 4, payload 4 */
    assert_int_equal(a.q[0], 0x89);
    assert_int_equal(a.q[1], 0x80 | 4);
    /* A data frame every 25 ms: no ping in 8 intervals. */
    a.qn = 0;
    uint64_t gap = 0, last = uv_now(&loop);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(um_carrier_write(cli, (const uint8_t *)"x", 1), 0);
        uv_update_time(&loop);
        if (uv_now(&loop) - last > gap) gap = uv_now(&loop) - last;
        last = uv_now(&loop);
        while (uv_now(&loop) - last < 25)
            uv_run(&loop, UV_RUN_ONCE);
    }
    /* Each a 7-byte binary frame, unless the machine stalled this process
     * for most of an interval (then a ping is right, and nothing is said). */
    if (gap < 150)
        for (size_t off = 0; off < a.qn; off += 7)
            assert_int_equal(a.q[off], 0x82);
    um_carrier_close(cli);
    uv_close((uv_handle_t *)&step, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* the timers' close */
    assert_int_equal(uv_loop_close(&loop), 0);
    mp_free(&a);
    mp_free(&b);
    free(k.buf);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_accept_rfc),
        cmocka_unit_test(t_request),
        cmocka_unit_test(t_response),
        cmocka_unit_test(t_request_extra),
        cmocka_unit_test(t_codec),
        cmocka_unit_test(t_carrier_bulk),
        cmocka_unit_test(t_carrier_control),
        cmocka_unit_test(t_carrier_shutdown_backpressure),
        cmocka_unit_test(t_carrier_close_in_cb),
        cmocka_unit_test(t_carrier_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
