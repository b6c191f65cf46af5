/* The first-flight codec seam (transport/codec.h) with the tcp codec: sealed
 * flights and replies open again in every shape and direction; every strict
 * prefix of a flight asks for more; what the codec writes is exactly what
 * PROTOCOL.md sections 2 and 7 describe (the shape's own parser and the
 * mask's own opener accept it, byte for byte); a flipped byte or another
 * server's key never yields a message; bytes after the flight are left for
 * the session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "transport/codec.h"
#include "transport/mask.h"
#include "transport/shape.h"
#include "util/err.h"

#define MSG1_MIN 106 /* UM_HS_MSG1_MIN, UM_HS_MSG2_MIN of the session layer */
#define MSG2_MIN 51

static uint8_t g_pub[32];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) return -1;
    randombytes_buf(g_pub, sizeof(g_pub));
    return 0;
}

static void init(um_codec_tcp_t *c, uint8_t shape)
{
    assert_int_equal(um_codec_tcp_init(c, g_pub, shape, MSG1_MIN, MSG2_MIN), 0);
}

static void test_init_rejects(void **state)
{
    (void)state;
    um_codec_tcp_t c;
    assert_int_equal(um_codec_tcp_init(&c, g_pub, UM_SHAPE_MAX + 1, MSG1_MIN, MSG2_MIN), UM_EINVAL);
    assert_int_equal(um_codec_tcp_init(&c, g_pub, 0, 200, MSG2_MIN), UM_EINVAL);
    assert_int_equal(um_codec_tcp_init(NULL, g_pub, 0, MSG1_MIN, MSG2_MIN), UM_EINVAL);
    init(&c, UM_SHAPE_HTTP);
    assert_string_equal(c.base.ops->name, "tcp");
    assert_string_equal(c.base.ops->prologue, "umbra/1 tcp");
    assert_int_equal(c.base.ops->unauth, UM_UNAUTH_SILENCE);
    assert_null(c.base.ops->client_finish); /* nothing after the reply */
    assert_null(c.base.ops->wrap);          /* records go straight onto TCP */
}

/* Lengths the codec asks for stay in the documented ranges. */
static void test_lengths(void **state)
{
    (void)state;
    um_codec_tcp_t c;
    um_codec_state_t st;
    init(&c, 0);
    memset(&st, 0, sizeof(st));
    size_t lo1 = SIZE_MAX, hi1 = 0, lo2 = SIZE_MAX, hi2 = 0;
    for (int i = 0; i < 20000; i++) {
        size_t a = c.base.ops->msg1_len(&c.base, &st), b = c.base.ops->msg2_len(&c.base, &st);
        lo1 = a < lo1 ? a : lo1, hi1 = a > hi1 ? a : hi1;
        lo2 = b < lo2 ? b : lo2, hi2 = b > hi2 ? b : hi2;
    }
    assert_int_equal(lo1, UM_TCP_FLIGHT_C_MIN - UM_MASK_OVERHEAD);
    assert_int_equal(hi1, UM_TCP_FLIGHT_C_MAX - UM_MASK_OVERHEAD);
    assert_int_equal(lo2, MSG2_MIN);
    assert_int_equal(hi2, UM_TCP_REPLY_MAX - UM_MASK_OVERHEAD);
}

static void roundtrip(uint8_t shape, int reply)
{
    um_codec_tcp_t c;
    um_codec_state_t st;
    init(&c, shape);
    memset(&st, 0, sizeof(st));
    const um_codec_ops_t *o = c.base.ops;
    uint8_t msg[UM_FLIGHT_MSG_MAX], got[UM_FLIGHT_MSG_MAX],
        wire[UM_SHAPE_PREFIX_MAX + UM_FLIGHT_MAX + 64];
    for (int it = 0; it < 40; it++) {
        size_t n = reply ? o->msg2_len(&c.base, &st) : o->msg1_len(&c.base, &st);
        randombytes_buf(msg, n);
        size_t wn = 0, gn = 0, used = 0;
        int r = reply ? o->seal_reply(&c.base, &st, msg, n, NULL, NULL, wire, sizeof(wire), &wn)
                      : o->seal_flight(&c.base, &st, msg, n, wire, sizeof(wire), &wn);
        assert_int_equal(r, 0);
        assert_true(wn <= (reply ? c.base.reply_max : c.base.flight_max));
        /* 64 session bytes follow in the same read. */
        randombytes_buf(wire + wn, 64);
        int (*open)(const um_codec_t *, um_codec_state_t *, const uint8_t *, size_t, uint8_t *,
                    size_t, size_t *, size_t *) = reply ? o->open_reply : o->open_flight;
        assert_int_equal(open(&c.base, &st, wire, wn + 64, got, sizeof(got), &gn, &used), 0);
        assert_int_equal(used, wn);
        assert_int_equal(gn, n);
        assert_memory_equal(got, msg, n);
        /* Every strict prefix asks for more (a few random cut points). */
        for (int k = 0; k < 8; k++) {
            size_t cut = randombytes_uniform((uint32_t)wn);
            assert_int_equal(open(&c.base, &st, wire, cut, got, sizeof(got), &gn, &used),
                             UM_EAGAIN);
        }
        /* The wire format of PROTOCOL.md 2 and 7, opened without the codec. */
        int dir = reply ? UM_SHAPE_S2C : UM_SHAPE_C2S;
        size_t pre = 0, want = 0, mn = 0, fl = 0;
        assert_int_equal(um_shape_strip((um_shape_t)shape, dir, wire, wn, &pre, &want), 0);
        assert_int_equal(um_mask_open(g_pub, dir, reply ? MSG2_MIN : MSG1_MIN, wire + pre, wn - pre,
                                      got, sizeof(got), &mn, &fl),
                         0);
        assert_int_equal(pre + fl, wn);
        if (want) assert_int_equal(want, fl);
        assert_memory_equal(got, msg, n);
        /* Another server's key never opens it to the same message. */
        um_codec_tcp_t other;
        uint8_t pub2[32];
        randombytes_buf(pub2, 32);
        assert_int_equal(um_codec_tcp_init(&other, pub2, shape, MSG1_MIN, MSG2_MIN), 0);
        r = open(&other.base, &st, wire, wn, got, sizeof(got), &gn, &used);
        assert_true(r != 0 || gn != n || memcmp(got, msg, n) != 0);
    }
}

static void test_roundtrip_all_shapes(void **state)
{
    (void)state;
    for (uint8_t s = 0; s <= UM_SHAPE_MAX; s++) {
        roundtrip(s, 0);
        roundtrip(s, 1);
    }
}

/* A wrong shaping prefix is refused as soon as a byte is wrong. */
static void test_wrong_prefix(void **state)
{
    (void)state;
    um_codec_tcp_t c;
    um_codec_state_t st;
    memset(&st, 0, sizeof(st));
    uint8_t got[UM_FLIGHT_MSG_MAX];
    size_t gn, used;
    init(&c, UM_SHAPE_HTTP);
    static const uint8_t get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(
        c.base.ops->open_flight(&c.base, &st, get, sizeof(get) - 1, got, sizeof(got), &gn, &used),
        UM_EPROTO);
    init(&c, UM_SHAPE_TLS);
    static const uint8_t ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
    assert_int_equal(
        c.base.ops->open_flight(&c.base, &st, ssh, sizeof(ssh) - 1, got, sizeof(got), &gn, &used),
        UM_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_roundtrip_all_shapes),
        cmocka_unit_test(test_wrong_prefix),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
