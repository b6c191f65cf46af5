/* The `tls` transport's record layer and server side (tls_record.h,
 * tls_shello.h): a real nginx flight (tests/data/tls/nginx-tls13-flight.bin)
 * is parsed and learned as a cover profile; a ServerHello built from the
 * profile parses back to our random, session id and key share and differs
 * from the cover's in nothing else; every strict prefix of a ServerHello asks
 * for more; HelloRetryRequest, TLS 1.2 and foreign records are refused;
 * framing and deframing round-trip under random chunking, and the deframer
 * refuses anything but application_data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/tls_record.h"
#include "transport/tls_shello.h"
#include "util/err.h"

static uint8_t g_flight[8192];
static size_t g_flight_len;

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) return -1;
    const char *src = getenv("UMBRA_SRC");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/data/tls/nginx-tls13-flight.bin", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    g_flight_len = fread(g_flight, 1, sizeof(g_flight), f);
    fclose(f);
    return g_flight_len > 200 ? 0 : -1;
}

static void test_parse_real_server_hello(void **state)
{
    (void)state;
    um_tls_sh_t sh;
    assert_int_equal(um_tls_sh_parse(g_flight, g_flight_len, &sh), 0);
    assert_int_equal(sh.len, 127);
    assert_int_equal(sh.version, 0x0304);
    assert_int_equal(sh.cipher, 0x1301);
    assert_int_equal(sh.group, UM_TLS_GROUP_X25519);
    assert_int_equal(sh.share_len, 32);
    assert_int_equal(sh.sid_len, 32);
    assert_non_null(um_tls_share_x25519(sh.group, sh.share, sh.share_len));
    /* Every strict prefix is a valid beginning. */
    for (size_t i = 0; i < sh.len; i++)
        assert_int_equal(um_tls_sh_parse(g_flight, i, &sh), UM_EAGAIN);
}

static void test_learn_real_flight(void **state)
{
    (void)state;
    um_tls_cover_t cv;
    assert_int_equal(um_tls_cover_learn(g_flight, g_flight_len, &cv), 0);
    assert_int_equal(cv.sh_len, 127);
    assert_true(cv.ccs);
    assert_int_equal(cv.n_rec, 4);
    assert_int_equal(cv.rec[0], 36);
    assert_int_equal(cv.rec[1], 418);
    assert_int_equal(cv.rec[3], 53);
    /* A flight cut inside its last record counts only the whole ones. */
    assert_int_equal(um_tls_cover_learn(g_flight, g_flight_len - 10, &cv), 0);
    assert_int_equal(cv.n_rec, 3);
    /* No application_data at all: nothing to imitate. */
    assert_int_equal(um_tls_cover_learn(g_flight, 127 + 6, &cv), UM_EPROTO);
}

static void check_built(const um_tls_cover_t *cv, int hybrid)
{
    uint8_t rnd[32], sid[32], x[32], ct[UM_TLS_MLKEM768_CT_LEN], out[UM_TLS_SH_MAX];
    size_t on = 0;
    randombytes_buf(rnd, 32);
    randombytes_buf(sid, 32);
    randombytes_buf(x, 32);
    randombytes_buf(ct, sizeof(ct));
    assert_int_equal(
        um_tls_cover_server_hello(cv, rnd, sid, x, hybrid ? ct : NULL, out, sizeof(out), &on), 0);
    assert_int_equal(on, cv->sh_len);
    um_tls_sh_t sh;
    assert_int_equal(um_tls_sh_parse(out, on, &sh), 0);
    assert_memory_equal(sh.random, rnd, 32);
    assert_memory_equal(sh.sid, sid, 32);
    assert_memory_equal(um_tls_share_x25519(sh.group, sh.share, sh.share_len), x, 32);
    /* Outside the three fields, byte for byte the cover's ServerHello. */
    for (size_t i = 0; i < on; i++) {
        int ours = (i >= cv->off_random && i < cv->off_random + 32) ||
                   (i >= cv->off_sid && i < cv->off_sid + 32) ||
                   (i >= cv->off_share && i < cv->off_share + cv->share_len);
        if (!ours) assert_int_equal(out[i], cv->sh[i]);
    }
}

static void test_build_from_profiles(void **state)
{
    (void)state;
    um_tls_cover_t cv;
    assert_int_equal(um_tls_cover_learn(g_flight, g_flight_len, &cv), 0);
    check_built(&cv, 0);
    um_tls_cover_default(&cv);
    check_built(&cv, 0);
    /* The default profile is what the captured nginx sent, but for the CV
     * length (an ECDSA signature varies by a byte or two). */
    um_tls_cover_t real;
    assert_int_equal(um_tls_cover_learn(g_flight, g_flight_len, &real), 0);
    assert_int_equal(cv.sh_len, real.sh_len);
    assert_int_equal(cv.n_rec, real.n_rec);
    assert_int_equal(cv.off_share, real.off_share);
    /* A cover that answers with the hybrid group. */
    uint8_t sh[UM_TLS_SH_MAX];
    size_t n = 0;
    memcpy(sh, real.sh, real.sh_len);
    n = real.sh_len;
    /* Rewrite the key share to X25519MLKEM768 with a 1120-byte share. */
    size_t ks = real.off_share - 8; /* ext type(2) len(2) group(2) slen(2) */
    uint8_t big[UM_TLS_SH_MAX];
    size_t add = UM_TLS_MLKEM768_CT_LEN;
    memcpy(big, sh, ks);
    big[ks] = 0x00, big[ks + 1] = 0x33;
    big[ks + 2] = (uint8_t)((1124) >> 8), big[ks + 3] = (uint8_t)1124;
    big[ks + 4] = 0x11, big[ks + 5] = 0xec;
    big[ks + 6] = (uint8_t)(1120 >> 8), big[ks + 7] = (uint8_t)1120;
    randombytes_buf(big + ks + 8, 1120);
    size_t tail = n - (real.off_share + 32);
    memcpy(big + ks + 8 + 1120, sh + real.off_share + 32, tail);
    n += add;
    /* lengths: record, handshake, extensions */
    size_t rl = n - 5, hl = rl - 4;
    big[3] = (uint8_t)(rl >> 8), big[4] = (uint8_t)rl;
    big[6] = (uint8_t)(hl >> 16), big[7] = (uint8_t)(hl >> 8), big[8] = (uint8_t)hl;
    size_t el_off = real.off_sid + 32 + 3;
    size_t el = ((size_t)big[el_off] << 8 | big[el_off + 1]) + add;
    big[el_off] = (uint8_t)(el >> 8), big[el_off + 1] = (uint8_t)el;
    static const uint8_t ccs_app[] = {0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 40};
    memcpy(big + n, ccs_app, sizeof(ccs_app));
    randombytes_buf(big + n + sizeof(ccs_app), 40);
    um_tls_cover_t hy;
    assert_int_equal(um_tls_cover_learn(big, n + sizeof(ccs_app) + 40, &hy), 0);
    assert_int_equal(hy.group, UM_TLS_GROUP_X25519MLKEM768);
    check_built(&hy, 1);
    uint8_t out[UM_TLS_SH_MAX], z[32] = {0};
    size_t on;
    assert_int_equal(um_tls_cover_server_hello(&hy, z, z, z, NULL, out, sizeof(out), &on),
                     UM_EINVAL);
}

static void test_refusals(void **state)
{
    (void)state;
    um_tls_sh_t sh;
    uint8_t b[256];
    memcpy(b, g_flight, 127);
    /* HelloRetryRequest random */
    static const uint8_t hrr[32] = {
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
        0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
        0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
    };
    memcpy(b + 11, hrr, 32);
    assert_int_equal(um_tls_sh_parse(b, 127, &sh), UM_EPROTO);
    /* not a handshake record, not a ServerHello, TLS 1.2 (no supported_versions) */
    memcpy(b, g_flight, 127);
    b[0] = 0x17;
    assert_int_equal(um_tls_sh_parse(b, 1, &sh), UM_EPROTO);
    memcpy(b, g_flight, 127);
    b[5] = 1;
    assert_int_equal(um_tls_sh_parse(b, 6, &sh), UM_EPROTO);
    um_tls_sh_t ok;
    assert_int_equal(um_tls_sh_parse(g_flight, 127, &ok), 0);
    size_t sv = 0;
    for (size_t i = 76; i + 6 <= 127; i++)
        if (g_flight[i] == 0 && g_flight[i + 1] == 0x2b) sv = i;
    assert_true(sv > 0);
    memcpy(b, g_flight, 127);
    b[sv + 5] = 0x03;
    assert_int_equal(um_tls_sh_parse(b, 127, &sh), UM_EPROTO);
    /* every single-byte change of the length fields is refused, never read past */
    for (size_t i = 0; i < 127; i++) {
        memcpy(b, g_flight, 127);
        b[i] ^= 0xff;
        (void)um_tls_sh_parse(b, 127, &sh);
    }
}

static void test_frame_deframe(void **state)
{
    (void)state;
    size_t N = 100000;
    uint8_t *src = malloc(N), *wire = malloc(um_tls_rec_framed_len(N)), *dst = malloc(N);
    randombytes_buf(src, N);
    size_t wn = 0;
    assert_int_equal(um_tls_rec_frame(src, N, wire, 10, &wn), UM_ENOSPC);
    assert_int_equal(um_tls_rec_frame(src, N, wire, um_tls_rec_framed_len(N), &wn), 0);
    assert_int_equal(wn, N + 5 * 7); /* six full records and one shorter */
    for (size_t at = 0, k = 0; at < wn; k++) {
        uint8_t t;
        size_t l;
        assert_int_equal(um_tls_rec_header(wire + at, wn - at, &t, &l), 0);
        assert_int_equal(t, UM_TLS_CT_APPDATA);
        if (at + 5 + l < wn) assert_int_equal(l, UM_TLS_REC_FULL);
        at += 5 + l;
    }
    for (int round = 0; round < 20; round++) {
        um_tls_deframer_t d;
        um_tls_deframer_init(&d, 0);
        size_t at = 0, got = 0;
        while (at < wn) {
            size_t chunk = 1 + randombytes_uniform(round < 10 ? 7 : 40000);
            if (chunk > wn - at) chunk = wn - at;
            const uint8_t *p = wire + at, *span;
            size_t n = chunk, sn;
            int r;
            while ((r = um_tls_deframe(&d, &p, &n, &span, &sn)) == 1) {
                memcpy(dst + got, span, sn);
                got += sn;
            }
            assert_int_equal(r, 0);
            assert_int_equal(n, 0);
            at += chunk;
        }
        assert_int_equal(got, N);
        assert_memory_equal(src, dst, N);
    }
    /* An alert (or any non-application_data record) ends it, for good. */
    um_tls_deframer_t d;
    um_tls_deframer_init(&d, 0);
    static const uint8_t alert[] = {0x15, 3, 3, 0, 2, 2, 0};
    const uint8_t *p = alert, *span;
    size_t n = sizeof(alert), sn;
    assert_int_equal(um_tls_deframe(&d, &p, &n, &span, &sn), UM_EPROTO);
    p = wire, n = wn;
    assert_int_equal(um_tls_deframe(&d, &p, &n, &span, &sn), UM_EPROTO);
    /* One leading ChangeCipherSpec is dropped where allowed; not twice, not
     * after application data, not where it is not allowed. */
    static const uint8_t ccs_app[] = {0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 2, 'h', 'i'};
    for (int allow = 0; allow < 2; allow++) {
        for (size_t cut = 0; cut <= sizeof(ccs_app); cut++) {
            um_tls_deframer_init(&d, allow);
            uint8_t got[4];
            size_t gn = 0;
            int r = 0;
            const uint8_t *parts[2] = {ccs_app, ccs_app + cut};
            size_t lens[2] = {cut, sizeof(ccs_app) - cut};
            for (int i = 0; i < 2 && r >= 0; i++) {
                p = parts[i], n = lens[i];
                while ((r = um_tls_deframe(&d, &p, &n, &span, &sn)) == 1) {
                    memcpy(got + gn, span, sn);
                    gn += sn;
                }
            }
            if (allow) {
                assert_int_equal(r, 0);
                assert_int_equal(gn, 2);
                assert_memory_equal(got, "hi", 2);
                p = ccs_app, n = 6; /* a second CCS */
                assert_int_equal(um_tls_deframe(&d, &p, &n, &span, &sn), UM_EPROTO);
            } else {
                assert_int_equal(r, UM_EPROTO);
            }
        }
    }
    static const uint8_t bad_ccs[] = {0x14, 3, 3, 0, 1, 2};
    um_tls_deframer_init(&d, 1);
    p = bad_ccs, n = sizeof(bad_ccs);
    assert_int_equal(um_tls_deframe(&d, &p, &n, &span, &sn), UM_EPROTO);
    /* Oversized and empty records are refused by the header parser. */
    uint8_t h[5];
    uint8_t t;
    size_t l;
    um_tls_rec_put_header(h, UM_TLS_CT_APPDATA, UM_TLS_REC_PAYLOAD_MAX + 1);
    assert_int_equal(um_tls_rec_header(h, 5, &t, &l), UM_EPROTO);
    um_tls_rec_put_header(h, UM_TLS_CT_APPDATA, 0);
    assert_int_equal(um_tls_rec_header(h, 5, &t, &l), UM_EPROTO);
    assert_int_equal(um_tls_rec_header(h, 4, &t, &l), UM_EAGAIN);
    free(src);
    free(wire);
    free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_real_server_hello), cmocka_unit_test(test_learn_real_flight),
        cmocka_unit_test(test_build_from_profiles),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_frame_deframe),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
