/* Frame codec: every type round-trips byte for byte; every malformed form is
 * refused; need-more-bytes is told apart from malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mux/frame.h"
#include "util/err.h"

static um_addr_t v4(void)
{
    um_addr_t a;
    memset(&a, 0, sizeof(a));
    a.type = UM_ADDR_IPV4;
    a.u.v4[0] = 10;
    a.u.v4[3] = 7;
    a.port = 8080;
    return a;
}

static void roundtrip(const um_mux_frame_t *in)
{
    uint8_t buf[UM_MUX_HDR + UM_MUX_FRAME_MAX], buf2[sizeof(buf)];
    size_t w, used, w2;
    um_mux_frame_t out;
    assert_int_equal(um_mux_frame_encode(in, buf, sizeof(buf), &w), 0);
    /* every strict prefix is "need more", never a frame or an error */
    for (size_t i = 0; i < w; i += (w > 64 ? 7 : 1))
        assert_int_equal(um_mux_frame_decode(buf, i, &out, &used), UM_EAGAIN);
    assert_int_equal(um_mux_frame_decode(buf, w, &out, &used), 0);
    assert_int_equal(used, w);
    assert_int_equal(out.type, in->type);
    assert_int_equal(out.data_len, in->data_len);
    if (in->data_len) assert_memory_equal(out.data, in->data, in->data_len);
    assert_int_equal(um_mux_frame_encode(&out, buf2, sizeof(buf2), &w2), 0);
    assert_int_equal(w2, w);
    assert_memory_equal(buf, buf2, w);
    /* too small an output buffer writes nothing */
    assert_int_equal(um_mux_frame_encode(in, buf2, w - 1, &w2), UM_ENOSPC);
}

static void test_roundtrip_all_types(void **state)
{
    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    um_addr_t a4 = v4(), a6, ad;
    memset(&a6, 0, sizeof(a6));
    a6.type = UM_ADDR_IPV6;
    a6.u.v6[15] = 1;
    a6.port = 53;
    memset(&ad, 0, sizeof(ad));
    ad.type = UM_ADDR_DOMAIN;
    memcpy(ad.u.domain, "a.example", 9);
    ad.domain_len = 9;
    ad.port = 443;

    um_mux_frame_t f[] = {
        {.type = UM_MUX_DATA, .id = 1, .data = data, .data_len = 300},
        {.type = UM_MUX_OPEN, .id = 3, .addr = a4},
        {.type = UM_MUX_OPEN, .id = 5, .addr = a6, .data = data, .data_len = 10},
        {.type = UM_MUX_OPEN,
         .id = 7,
         .addr = ad,
         .flags = UM_MUX_FLAG_FIN,
         .data = data,
         .data_len = 1},
        {.type = UM_MUX_OPEN_RESULT, .id = 2, .code = UM_MUX_ERR_HOST_NOT_FOUND},
        {.type = UM_MUX_FIN, .id = 9},
        {.type = UM_MUX_RST, .id = 9, .code = 0xee},
        {.type = UM_MUX_WINDOW, .id = 0, .value = 1},
        {.type = UM_MUX_WINDOW, .id = 4, .value = UM_MUX_WINDOW_LIMIT},
        {.type = UM_MUX_PING, .value = 77, .ts = 0x0102030405060708ULL},
        {.type = UM_MUX_PONG, .value = 0xffffffff, .ts = 1},
        {.type = UM_MUX_GOAWAY, .value = 41, .code = UM_MUX_GOAWAY_PROTOCOL},
        {.type = UM_MUX_PADDING, .data = data, .data_len = 0},
        {.type = UM_MUX_PADDING, .data = data, .data_len = 200},
        {.type = UM_MUX_DATAGRAM, .id = 1, .addr = a4, .data = data, .data_len = 0},
        {.type = UM_MUX_DATAGRAM, .id = 2, .addr = ad, .data = data, .data_len = 100},
        {.type = UM_MUX_ASSOC_CLOSE, .id = 1},
        {.type = 0x80, .flags = 0x5a, .id = 12345, .data = data, .data_len = 3},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        roundtrip(&f[i]);
}

static void test_exact_layout(void **state)
{
    /* WINDOW_UPDATE on stream 0x01020304 for 0x00010000, as in PROTOCOL.md 6. */
    um_mux_frame_t f = {.type = UM_MUX_WINDOW, .id = 0x01020304, .value = 0x10000};
    uint8_t buf[32];
    size_t w;
    assert_int_equal(um_mux_frame_encode(&f, buf, sizeof(buf), &w), 0);
    const uint8_t want[] = {0x05, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04, 0x00, 0x01, 0x00, 0x00};
    assert_int_equal(w, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    /* OPEN to 10.0.0.7:8080 with "hi" */
    um_mux_frame_t o = {
        .type = UM_MUX_OPEN, .id = 1, .addr = v4(), .data = (const uint8_t *)"hi", .data_len = 2};
    assert_int_equal(um_mux_frame_encode(&o, buf, sizeof(buf), &w), 0);
    const uint8_t want2[] = {0x01, 0x00, 0x00, 0x09, 0,    0,    0,   1,  0x01,
                             10,   0,    0,    7,    0x1f, 0x90, 'h', 'i'};
    assert_int_equal(w, sizeof(want2));
    assert_memory_equal(buf, want2, sizeof(want2));
}

typedef struct {
    const char *name;
    uint8_t bytes[32];
    size_t n;
    int want;
} bad_t;

static void test_malformed_table(void **state)
{
    static const bad_t t[] = {
        {"unknown type 0x0c", {0x0c, 0, 0, 0, 0, 0, 0, 0}, 8, UM_EPROTO},
        {"unknown type 0x7f", {0x7f, 0, 0, 0, 0, 0, 0, 0}, 8, UM_EPROTO},
        {"oversized length", {0x00, 0, 0x40, 0x01, 0, 0, 0, 1}, 8, UM_EPROTO},
        {"oversized ignorable", {0x80, 0, 0xff, 0xff, 0, 0, 0, 0}, 8, UM_EPROTO},
        {"DATA on stream 0", {0x00, 0, 0, 1, 0, 0, 0, 0, 'x'}, 9, UM_EPROTO},
        {"empty DATA", {0x00, 0, 0, 0, 0, 0, 0, 1}, 8, UM_EPROTO},
        {"DATA reserved flag", {0x00, 0x01, 0, 1, 0, 0, 0, 1, 'x'}, 9, UM_EPROTO},
        {"OPEN bad atype", {0x01, 0, 0, 7, 0, 0, 0, 1, 2, 1, 2, 3, 4, 0, 80}, 15, UM_EPROTO},
        {"OPEN port 0", {0x01, 0, 0, 7, 0, 0, 0, 1, 1, 1, 2, 3, 4, 0, 0}, 15, UM_EPROTO},
        {"OPEN short v4", {0x01, 0, 0, 5, 0, 0, 0, 1, 1, 1, 2, 3, 4}, 13, UM_EPROTO},
        {"OPEN domain len 0", {0x01, 0, 0, 4, 0, 0, 0, 1, 3, 0, 0, 80}, 12, UM_EPROTO},
        {"OPEN domain bad char", {0x01, 0, 0, 6, 0, 0, 0, 1, 3, 2, 'a', '/', 0, 80}, 14, UM_EPROTO},
        {"OPEN domain overruns", {0x01, 0, 0, 6, 0, 0, 0, 1, 3, 9, 'a', 'b', 0, 80}, 14, UM_EPROTO},
        {"OPEN flag 0x02", {0x01, 0x02, 0, 7, 0, 0, 0, 1, 1, 1, 2, 3, 4, 0, 80}, 15, UM_EPROTO},
        {"OPEN_RESULT unknown code", {0x02, 0, 0, 1, 0, 0, 0, 2, 0x42}, 9, UM_EPROTO},
        {"OPEN_RESULT long", {0x02, 0, 0, 2, 0, 0, 0, 2, 0, 0}, 10, UM_EPROTO},
        {"FIN with payload", {0x03, 0, 0, 1, 0, 0, 0, 2, 0}, 9, UM_EPROTO},
        {"RST without code", {0x04, 0, 0, 0, 0, 0, 0, 2}, 8, UM_EPROTO},
        {"WINDOW zero", {0x05, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}, 12, UM_EPROTO},
        {"WINDOW 2^31", {0x05, 0, 0, 4, 0, 0, 0, 0, 0x80, 0, 0, 0}, 12, UM_EPROTO},
        {"PING on a stream", {0x06, 0, 0, 12, 0, 0, 0, 1}, 20, UM_EPROTO},
        {"PING short", {0x06, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}, 12, UM_EPROTO},
        {"GOAWAY long", {0x08, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 14, UM_EPROTO},
        {"PADDING on a stream", {0x09, 0, 0, 0, 0, 0, 0, 5}, 8, UM_EPROTO},
        {"DATAGRAM assoc 0", {0x0a, 0, 0, 7, 0, 0, 0, 0, 1, 1, 2, 3, 4, 0, 80}, 15, UM_EPROTO},
        {"ASSOC_CLOSE payload", {0x0b, 0, 0, 1, 0, 0, 0, 1, 0}, 9, UM_EPROTO},
        {"truncated header", {0x00, 0, 0}, 3, UM_EAGAIN},
        {"truncated payload", {0x00, 0, 0, 9, 0, 0, 0, 1, 'x'}, 9, UM_EAGAIN},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        um_mux_frame_t f;
        size_t used;
        int r = um_mux_frame_decode(t[i].bytes, t[i].n, &f, &used);
        if (r != t[i].want) fail_msg("%s: got %d want %d", t[i].name, r, t[i].want);
    }
}

static void test_result_mapping(void **state)
{
    assert_int_equal(um_mux_result_socks5(UM_MUX_OK), 0);
    assert_int_equal(um_mux_result_socks5(UM_MUX_ERR_REFUSED), 5);
    assert_int_equal(um_mux_result_socks5(UM_MUX_ERR_HOST_NOT_FOUND), 4);
    assert_int_equal(um_mux_result_socks5(UM_MUX_ERR_NOT_ALLOWED), 2);
    assert_int_equal(um_mux_result_socks5(UM_MUX_ERR_NET_UNREACH), 3);
    assert_int_equal(um_mux_result_socks5(UM_MUX_ERR_TIMEDOUT), 6);
    assert_int_equal(um_mux_result_socks5(UM_MUX_ERR_GENERAL), 1);
    assert_int_equal(um_mux_result_http(UM_MUX_OK), 200);
    assert_int_equal(um_mux_result_http(UM_MUX_ERR_NOT_ALLOWED), 403);
    assert_int_equal(um_mux_result_http(UM_MUX_ERR_TIMEDOUT), 504);
    assert_int_equal(um_mux_result_http(UM_MUX_ERR_REFUSED), 502);
    assert_int_equal(um_mux_result_http(UM_MUX_ERR_HOST_NOT_FOUND), 502);
    assert_null(um_mux_result_str(0x07));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_exact_layout),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_result_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
