/* The umbra handshake over Noise: authorised keys (and reload), timestamp
 * window, replay filter (window and full behaviour), cipher negotiation,
 * masked flights (parsing, every prefix, lengths) and the uniformity of
 * first flights and replies over 1000 handshakes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "session/connector.h"
#include "session/handshake.h"
#include "session/replay.h"
#include "transport/mask.h"
#include "util/err.h"

#define PRO     ((const uint8_t *)UM_HS_PROLOGUE_TCP)
#define PRO_LEN (sizeof(UM_HS_PROLOGUE_TCP) - 1)
#define NOW     1700000000ull

static uint8_t ci[32], cp[32], si[32], sp[32];

static int setup(void **st)
{
    um_key_generate(ci);
    um_key_generate(si);
    um_key_public(cp, ci);
    um_key_public(sp, si);
    return 0;
}

static void server(um_hs_server_t *srv, int with_client, size_t replay)
{
    um_keyset_t *ks = um_keyset_new();
    if (with_client) assert_int_equal(um_keyset_add(ks, cp), 0);
    assert_int_equal(um_hs_server_init(srv, si, ks, 0, replay), 0);
    um_keyset_unref(ks);
}

static int run(um_hs_server_t *srv, uint64_t client_now, uint64_t server_now, bool aes,
               um_sess_keys_t *ck, um_sess_keys_t *sk)
{
    um_hs_client_t c;
    uint8_t m1[600], m2[600];
    size_t m1n, m2n;
    um_hs_client_opts_t o = {.aes_hw = aes};
    assert_int_equal(
        um_hs_client_start(&c, PRO, PRO_LEN, ci, sp, &o, client_now, 300, m1, sizeof(m1), &m1n), 0);
    assert_int_equal(m1n, 300);
    int r =
        um_hs_server_respond(srv, PRO, PRO_LEN, m1, m1n, server_now, 200, m2, sizeof(m2), &m2n, sk);
    if (r) {
        um_hs_client_wipe(&c);
        return r;
    }
    assert_int_equal(m2n, 200);
    return um_hs_client_finish(&c, m2, m2n, ck);
}

static void test_ok_and_keys(void **st)
{
    um_hs_server_t srv;
    um_sess_keys_t a, b;
    server(&srv, 1, 0);
    assert_int_equal(run(&srv, NOW, NOW, false, &a, &b), 0);
    assert_memory_equal(a.k_send, b.k_recv, 32);
    assert_memory_equal(a.k_recv, b.k_send, 32);
    assert_memory_equal(a.sid, b.sid, UM_SID_LEN);
    assert_memory_equal(b.peer_static, cp, 32);
    assert_memory_equal(a.peer_static, sp, 32);
    assert_int_equal(a.alg, UM_AEAD_CHACHA20_POLY1305);
    assert_int_equal(b.alg, a.alg);
    assert_int_equal(b.timestamp, NOW);
    /* AES only when both sides have it. */
    srv.aes_hw = true;
    assert_int_equal(run(&srv, NOW, NOW, true, &a, &b), 0);
    assert_int_equal(a.alg, UM_AEAD_AES256_GCM);
    assert_int_equal(b.alg, UM_AEAD_AES256_GCM);
    srv.aes_hw = false;
    assert_int_equal(run(&srv, NOW, NOW, true, &a, &b), 0);
    assert_int_equal(a.alg, UM_AEAD_CHACHA20_POLY1305);
    um_hs_server_close(&srv);
}

static void test_unknown_client_and_reload(void **st)
{
    um_hs_server_t srv;
    um_sess_keys_t a, b;
    server(&srv, 0, 0);
    assert_int_equal(run(&srv, NOW, NOW, false, &a, &b), UM_EACCES);
    assert_true(sodium_is_zero((const uint8_t *)&b, sizeof(b)));
    /* Reload with the client: accepted; reload without: refused again. */
    um_keyset_t *ks = um_keyset_new();
    uint8_t other[32];
    um_key_generate(other);
    um_key_public(other, other);
    assert_int_equal(um_keyset_add(ks, other), 0);
    assert_int_equal(um_keyset_add(ks, cp), 0);
    assert_int_equal(um_keyset_add(ks, cp), UM_EEXIST);
    assert_int_equal(um_keyset_count(ks), 2);
    um_hs_server_set_keys(&srv, ks);
    um_keyset_unref(ks);
    assert_int_equal(run(&srv, NOW, NOW, false, &a, &b), 0);
    ks = um_keyset_new();
    um_hs_server_set_keys(&srv, ks);
    um_keyset_unref(ks);
    assert_int_equal(run(&srv, NOW + 1, NOW + 1, false, &a, &b), UM_EACCES);
    um_hs_server_close(&srv);
}

static void test_skew(void **st)
{
    um_hs_server_t srv;
    um_sess_keys_t a, b;
    server(&srv, 1, 0);
    assert_int_equal(srv.skew_s, 120);
    assert_int_equal(run(&srv, NOW - 120, NOW, false, &a, &b), 0);
    assert_int_equal(run(&srv, NOW + 120, NOW, false, &a, &b), 0);
    assert_int_equal(run(&srv, NOW - 121, NOW, false, &a, &b), UM_EREPLAY);
    assert_int_equal(run(&srv, NOW + 121, NOW, false, &a, &b), UM_EREPLAY);
    assert_int_equal(run(&srv, 0, NOW, false, &a, &b), UM_EREPLAY);
    um_hs_server_close(&srv);
}

/* A replayed message 1 (verbatim, or with any byte changed) is refused. */
static void test_replay(void **st)
{
    um_hs_server_t srv;
    um_hs_client_t c;
    um_sess_keys_t k;
    uint8_t m1[300], m2[300], bad[300];
    size_t m1n, m2n;
    server(&srv, 1, 0);
    assert_int_equal(
        um_hs_client_start(&c, PRO, PRO_LEN, ci, sp, NULL, NOW, 150, m1, sizeof(m1), &m1n), 0);
    assert_int_equal(
        um_hs_server_respond(&srv, PRO, PRO_LEN, m1, m1n, NOW, 0, m2, sizeof(m2), &m2n, &k), 0);
    assert_int_equal(m2n, UM_HS_MSG2_MIN);
    assert_int_equal(
        um_hs_server_respond(&srv, PRO, PRO_LEN, m1, m1n, NOW + 5, 0, m2, sizeof(m2), &m2n, &k),
        UM_EREPLAY);
    for (size_t i = 0; i < m1n; i++) {
        memcpy(bad, m1, m1n);
        bad[i] ^= 0x01;
        int r = um_hs_server_respond(&srv, PRO, PRO_LEN, bad, m1n, NOW + 5, 0, m2, sizeof(m2), &m2n,
                                     &k);
        assert_true(r == UM_EAUTH || r == UM_EREPLAY);
    }
    /* After the window the timestamp check refuses it. */
    assert_int_equal(
        um_hs_server_respond(&srv, PRO, PRO_LEN, m1, m1n, NOW + 121, 0, m2, sizeof(m2), &m2n, &k),
        UM_EREPLAY);
    um_hs_client_wipe(&c);
    um_hs_server_close(&srv);
}

static void test_replay_filter(void **st)
{
    um_replay_t r;
    uint8_t e[32];
    assert_int_equal(um_replay_init(&r, 4), 0);
    for (int i = 0; i < 4; i++) {
        memset(e, i, 32);
        assert_int_equal(um_replay_check(&r, e, 100 + i, 50), 0);
    }
    memset(e, 2, 32);
    assert_int_equal(um_replay_check(&r, e, 300, 60), UM_EREPLAY);
    /* Full of live entries: refuse, never evict. */
    memset(e, 9, 32);
    assert_int_equal(um_replay_check(&r, e, 300, 60), UM_ENOSPC);
    assert_int_equal(um_replay_live(&r, 60), 4);
    /* At time 101 the first two (expires 100, 101) : 100 expired. */
    assert_int_equal(um_replay_check(&r, e, 300, 101), 0);
    memset(e, 0, 32);
    assert_int_equal(um_replay_check(&r, e, 300, 101), UM_ENOSPC); /* 101,102,103,e9 live */
    assert_int_equal(um_replay_check(&r, e, 400, 200), 0);         /* all but e9 expired */
    memset(e, 1, 32);
    assert_int_equal(um_replay_check(&r, e, 400, 200), 0);
    assert_int_equal(um_replay_check(&r, e, 400, 200), UM_EREPLAY);
    assert_int_equal(um_replay_live(&r, 200), 3);
    um_replay_free(&r);

    /* Many entries with expiry; bounded probes. */
    assert_int_equal(um_replay_init(&r, 1000), 0);
    for (uint32_t i = 0; i < 5000; i++) {
        randombytes_buf(e, 32);
        assert_int_equal(um_replay_check(&r, e, i / 1000 * 10 + 5, i / 1000 * 10), 0);
    }
    um_replay_free(&r);
    /* A server whose filter is full refuses new flights. */
    um_hs_server_t srv;
    um_sess_keys_t a, b;
    server(&srv, 1, 2);
    assert_int_equal(run(&srv, NOW, NOW, false, &a, &b), 0);
    assert_int_equal(run(&srv, NOW, NOW, false, &a, &b), 0);
    assert_int_equal(run(&srv, NOW, NOW, false, &a, &b), UM_ENOSPC);
    assert_int_equal(run(&srv, NOW + 200, NOW + 200, false, &a, &b), 0);
    um_hs_server_close(&srv);
}

static void test_mask(void **st)
{
    uint8_t msg[UM_FLIGHT_MSG_MAX], fl[UM_FLIGHT_MAX], out[UM_FLIGHT_MSG_MAX];
    size_t fn, on, used;
    randombytes_buf(msg, sizeof(msg));
    assert_int_equal(um_mask_seal(sp, UM_MASK_C2S, msg, 200, fl, sizeof(fl), &fn), 0);
    assert_int_equal(fn, 218);
    for (size_t k = 0; k < fn; k++)
        assert_int_equal(um_mask_open(sp, UM_MASK_C2S, 100, fl, k, out, sizeof(out), &on, &used),
                         UM_EAGAIN);
    assert_int_equal(um_mask_open(sp, UM_MASK_C2S, 100, fl, fn, out, sizeof(out), &on, &used), 0);
    assert_int_equal(on, 200);
    assert_int_equal(used, fn);
    assert_memory_equal(out, msg, 200);
    /* Extra bytes after the flight are not consumed. */
    assert_int_equal(
        um_mask_open(sp, UM_MASK_C2S, 100, fl, sizeof(fl), out, sizeof(out), &on, &used), 0);
    assert_int_equal(used, fn);
    /* Other direction or other key: the length decodes to garbage; with a
     * min length the chance of EAGAIN is the length window. */
    int bad = 0;
    for (int t = 0; t < 200; t++) {
        assert_int_equal(um_mask_seal(sp, UM_MASK_C2S, msg, 200, fl, sizeof(fl), &fn), 0);
        int r = um_mask_open(sp, UM_MASK_S2C, 100, fl, fn, out, sizeof(out), &on, &used);
        bad += r != 0 || on != 200;
    }
    assert_int_equal(bad, 200);
    assert_int_equal(um_mask_open(sp, UM_MASK_C2S, 300, fl, fn, out, sizeof(out), &on, &used),
                     UM_EPROTO);
    assert_int_equal(um_mask_seal(sp, UM_MASK_C2S, msg, UM_FLIGHT_MSG_MAX + 1, fl, 4096, &fn),
                     UM_EMSGSIZE);
}

/* Chi-square over byte values and mean set bits per byte. */
static void check_uniform(const char *what, const unsigned long cnt[256], unsigned long total,
                          unsigned long bits)
{
    double exp = total / 256.0, chi = 0;
    for (int v = 0; v < 256; v++)
        chi += (cnt[v] - exp) * (cnt[v] - exp) / exp;
    double mean_bits = (double)bits / total;
    printf("%s: %lu bytes, chi-square %.1f (255 dof), mean set bits %.4f\n", what, total, chi,
           mean_bits);
    /* 255 dof: mean 255, sd 22.6; 380 is p ~ 1e-6. */
    assert_true(chi < 380.0);
    assert_true(mean_bits >= 3.95 && mean_bits <= 4.05);
}

static void test_uniformity_1000(void **st)
{
    um_hs_server_t srv;
    static unsigned long c1[256], c2[256]; /* test-only counters */
    unsigned long t1 = 0, t2 = 0, b1 = 0, b2 = 0;
    size_t minlen = SIZE_MAX, maxlen = 0;
    unsigned long first32[256] = {0}, f32 = 0, bf = 0;
    server(&srv, 1, 4096);
    srv.aes_hw = true;
    memset(c1, 0, sizeof(c1));
    memset(c2, 0, sizeof(c2));
    for (int i = 0; i < 1000; i++) {
        um_hs_client_t c;
        uint8_t f1[UM_FLIGHT_MAX], m1[UM_FLIGHT_MSG_MAX], m2[UM_FLIGHT_MSG_MAX], f2[UM_FLIGHT_MAX];
        size_t f1n, m1n, used, m2n, f2n;
        um_sess_keys_t sk, ck;
        assert_int_equal(um_connector_flight(&c, ci, sp, 1, NOW, f1, sizeof(f1), &f1n), 0);
        assert_true(f1n >= UM_FLIGHT_C_MIN && f1n <= UM_FLIGHT_C_MAX);
        if (f1n < minlen) minlen = f1n;
        if (f1n > maxlen) maxlen = f1n;
        for (size_t k = 0; k < f1n; k++) {
            c1[f1[k]]++;
            b1 += __builtin_popcount(f1[k]);
        }
        /* The ephemeral key's position (18..49 after the salt and length) is
         * uniform too: a raw X25519 key would have its top bit clear. */
        for (size_t k = 0; k < 64; k++, f32++) {
            first32[f1[k]]++;
            bf += __builtin_popcount(f1[k]);
        }
        t1 += f1n;
        assert_int_equal(
            um_mask_open(sp, UM_MASK_C2S, UM_HS_MSG1_MIN, f1, f1n, m1, sizeof(m1), &m1n, &used), 0);
        size_t rl = 64 + randombytes_uniform(900);
        assert_int_equal(
            um_hs_server_respond(&srv, PRO, PRO_LEN, m1, m1n, NOW, rl, m2, sizeof(m2), &m2n, &sk),
            0);
        assert_int_equal(um_mask_seal(sp, UM_MASK_S2C, m2, m2n, f2, sizeof(f2), &f2n), 0);
        for (size_t k = 0; k < f2n; k++) {
            c2[f2[k]]++;
            b2 += __builtin_popcount(f2[k]);
        }
        t2 += f2n;
        assert_int_equal(
            um_mask_open(sp, UM_MASK_S2C, UM_HS_MSG2_MIN, f2, f2n, m2, sizeof(m2), &m2n, &used), 0);
        assert_int_equal(um_hs_client_finish(&c, m2, m2n, &ck), 0);
        assert_memory_equal(ck.k_send, sk.k_recv, 32);
    }
    check_uniform("first flights", c1, t1, b1);
    check_uniform("replies", c2, t2, b2);
    /* The first 64 bytes (salt, length, ephemeral key) at their fixed
     * positions: a raw X25519 key (top bit of its last byte always clear)
     * would fail this. */
    check_uniform("first 64 bytes of flights", first32, f32, bf);
    printf("flight lengths %zu..%zu\n", minlen, maxlen);
    assert_true(maxlen - minlen > 500);
    um_hs_server_close(&srv);
}

int main(void)
{
    if (um_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_and_keys),
        cmocka_unit_test(test_unknown_client_and_reload),
        cmocka_unit_test(test_skew),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_replay_filter),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_uniformity_1000),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
