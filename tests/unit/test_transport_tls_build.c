/* ClientHello builder (src/transport/tls_build.c) against the browsers' own
 * hellos (tests/data/tls/).
 *
 * For each fingerprint, 20 built hellos must: parse; give back the slots and
 * the x25519 key exactly; have the JA4 of the committed captures (computed
 * here from the capture files); carry every constant extension byte for byte
 * as the browser does (GREASE values aside), the same cipher, group, sigalg
 * and key-share lists, the same total length as the capture with the same SNI
 * and ECH payload length; a well-formed ML-KEM-768 key (all 768 coefficients
 * below q); GREASE where Chromium puts it; and an extension order that
 * changes between hellos for Chromium and never for Firefox (as captured). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ja4.h"
#include "transport/tls_hello.h"
#include "util/bytes.h"
#include "util/err.h"

#define BUILDS 20

/* Deterministic rng: ChaCha20 keystream of a seed, advanced per call. */
typedef struct {
    uint8_t key[32];
    uint64_t block;
} test_rng_t;

static void test_rng(void *ctx, uint8_t *out, size_t n)
{
    test_rng_t *r = ctx;
    uint8_t nonce[8];
    um_st64(nonce, r->block++);
    crypto_stream_chacha20(out, n, nonce, r->key);
}

static size_t load(const char *name, uint8_t *buf, size_t cap)
{
    const char *src = getenv("UMBRA_SRC");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/tls/%s", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (set UMBRA_SRC)", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    assert_true(n > 0 && n < cap);
    return n;
}

static um_tls_hello_t *parse(const uint8_t *p, size_t n)
{
    um_tls_hello_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    assert_int_equal(um_tls_hello_parse(p, n, h), 0);
    assert_int_equal(h->consumed, n);
    return h;
}

/* Extension body with GREASE list entries replaced by 0x0a0a. */
static size_t norm_body(const um_tls_hello_t *h, const um_tls_ext_t *x, uint8_t *out)
{
    memcpy(out, um_tls_at(h, x->data), x->data.len);
    size_t start = 0;
    if (x->type == UM_TLS_EXT_VERSIONS) start = 1;
    if (x->type == UM_TLS_EXT_GROUPS || x->type == UM_TLS_EXT_SIGALGS) start = 2;
    if (start)
        for (size_t i = start; i + 1 < x->data.len; i += 2)
            if (um_tls_is_grease(um_ld16(out + i))) um_st16(out + i, 0x0a0a);
    return x->data.len;
}

/* Built hello b against capture c, extension by extension. */
static void same_shape(const um_tls_hello_t *b, const um_tls_hello_t *c)
{
    assert_int_equal(b->record_version, c->record_version);
    assert_int_equal(b->legacy_version, c->legacy_version);
    assert_int_equal(b->session_id_len, c->session_id_len);
    assert_int_equal(b->ciphers.len, c->ciphers.len);
    for (unsigned i = 0; i < b->ciphers.len / 2u; i++) {
        uint16_t x = um_tls_u16(b, b->ciphers, i), y = um_tls_u16(c, c->ciphers, i);
        assert_true(x == y || (um_tls_is_grease(x) && um_tls_is_grease(y)));
    }
    assert_int_equal(b->compression.len, c->compression.len);
    assert_int_equal(b->n_ext, c->n_ext);
    assert_int_equal(b->grease, c->grease);
    uint8_t nb[2048], nc[2048];
    for (unsigned i = 0; i < b->n_ext; i++) {
        const um_tls_ext_t *x = &b->ext[i], *y = NULL;
        if (um_tls_is_grease(x->type)) {
            assert_true(i == 0 || i == b->n_ext - 1);
            y = &c->ext[i];
            assert_true(um_tls_is_grease(y->type));
        } else {
            y = um_tls_hello_ext(c, x->type);
        }
        if (!y) fail_msg("extension %04x not in the browser's hello", x->type);
        if (x->type == UM_TLS_EXT_ECH) continue; /* random, checked apart */
        if (x->type == UM_TLS_EXT_SNI && b->sni.len != c->sni.len) continue;
        if (x->type == UM_TLS_EXT_KEY_SHARE) continue; /* keys: checked apart */
        size_t lb = norm_body(b, x, nb), lc = norm_body(c, y, nc);
        if (x->type == UM_TLS_EXT_SNI) memcpy(nb, nc, lb); /* the name itself may differ */
        if (lb != lc || memcmp(nb, nc, lb) != 0)
            fail_msg("extension %04x differs from the browser's", x->type);
    }
    assert_int_equal(b->n_keyshare, c->n_keyshare);
    for (unsigned i = 0; i < b->n_keyshare; i++) {
        assert_true(
            b->keyshare[i].group == c->keyshare[i].group ||
            (um_tls_is_grease(b->keyshare[i].group) && um_tls_is_grease(c->keyshare[i].group)));
        assert_int_equal(b->keyshare[i].key.len, c->keyshare[i].key.len);
    }
    assert_int_equal(b->ech_type, c->ech_type);
    assert_int_equal(b->ech_kdf, c->ech_kdf);
    assert_int_equal(b->ech_enc.len, c->ech_enc.len);
}

static const um_tls_keyshare_t *share(const um_tls_hello_t *h, uint16_t g)
{
    for (unsigned i = 0; i < h->n_keyshare; i++)
        if (h->keyshare[i].group == g) return &h->keyshare[i];
    return NULL;
}

static void mlkem_well_formed(const um_tls_hello_t *h)
{
    const um_tls_keyshare_t *k = share(h, UM_TLS_GROUP_X25519MLKEM768);
    assert_non_null(k);
    assert_int_equal(k->key.len, UM_TLS_X25519MLKEM768_LEN);
    const uint8_t *e = um_tls_at(h, k->key);
    unsigned maxc = 0;
    for (size_t i = 0; i < 1152; i += 3) {
        unsigned a = e[i] | (unsigned)(e[i + 1] & 15) << 8,
                 b = e[i + 1] >> 4 | (unsigned)e[i + 2] << 4;
        if (a >= 3329 || b >= 3329) fail_msg("ML-KEM coefficient %u/%u at %zu >= q", a, b, i);
        if (a > maxc) maxc = a;
        if (b > maxc) maxc = b;
    }
    assert_true(maxc > 3000); /* uniform below q, not a narrower range */
}

static void run_fp(um_tls_fp_t fp, const char *capture, int permuted)
{
    uint8_t cap[8192], out[UM_TLS_BUILD_MAX];
    size_t cn = load(capture, cap, sizeof cap);
    um_tls_hello_t *c = parse(cap, cn);
    char want[UM_JA4_LEN + 1], got[UM_JA4_LEN + 1];
    assert_int_equal(um_ja4(c, want), 0);

    test_rng_t rng = {{0}, 0};
    memset(rng.key, 0x40 + (int)fp, sizeof rng.key);
    uint16_t orders[BUILDS][UM_TLS_EXT_MAX];
    memset(orders, 0, sizeof orders);
    unsigned g_ext1 = 0;
    int g_ext1_varies = 0;
    for (int b = 0; b < BUILDS; b++) {
        um_tls_slots_t s;
        uint8_t payload[256], x[32];
        test_rng(&rng, s.random, 32);
        test_rng(&rng, s.session_id, 32);
        test_rng(&rng, s.ech_enc, 32);
        test_rng(&rng, x, 32);
        /* Half with the capture's own ECH length (to compare the total
         * length), half drawn as the browser draws. */
        s.ech_payload_len = b % 2 ? c->ech_payload.len : um_tls_fp_ech_len(fp, test_rng, &rng);
        test_rng(&rng, payload, s.ech_payload_len);
        s.ech_payload = payload;
        size_t n = 0;
        assert_int_equal(
            um_tls_hello_build(fp, "example.com", x, &s, test_rng, &rng, out, sizeof out, &n), 0);
        um_tls_hello_t *h = parse(out, n);
        if (s.ech_payload_len == c->ech_payload.len) assert_int_equal(n, cn);

        /* The slots come back out. */
        um_tls_slots_t back;
        uint8_t xb[32];
        assert_int_equal(um_tls_hello_slots(h, &back, xb), 0);
        assert_memory_equal(back.random, s.random, 32);
        assert_memory_equal(back.session_id, s.session_id, 32);
        assert_memory_equal(back.ech_enc, s.ech_enc, 32);
        assert_int_equal(back.ech_payload_len, s.ech_payload_len);
        assert_memory_equal(back.ech_payload, payload, s.ech_payload_len);
        assert_memory_equal(xb, x, 32);

        assert_int_equal(um_ja4(h, got), 0);
        assert_string_equal(got, want);
        same_shape(h, c);
        mlkem_well_formed(h);
        const uint8_t *hy = um_tls_at(h, share(h, UM_TLS_GROUP_X25519MLKEM768)->key);
        if (fp == UM_TLS_FP_FIREFOX) {
            assert_memory_equal(hy + UM_TLS_MLKEM768_EK_LEN, x, 32);
            const um_tls_keyshare_t *p = share(h, UM_TLS_GROUP_P256);
            EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
            EC_POINT *pt = EC_POINT_new(g);
            assert_int_equal(EC_POINT_oct2point(g, pt, um_tls_at(h, p->key), 65, NULL), 1);
            EC_POINT_free(pt);
            EC_GROUP_free(g);
            assert_true(h->ech_aead == 1 || h->ech_aead == 3);
        } else {
            assert_memory_not_equal(hy + UM_TLS_MLKEM768_EK_LEN, x, 32);
            assert_true(um_tls_is_grease(h->ext[0].type));
            assert_true(um_tls_is_grease(h->ext[h->n_ext - 1].type));
            assert_int_not_equal(h->ext[0].type, h->ext[h->n_ext - 1].type);
            assert_int_equal(h->keyshare[0].group, um_tls_u16(h, h->groups, 0));
            if (b == 0) g_ext1 = h->ext[0].type;
            if (h->ext[0].type != g_ext1) g_ext1_varies = 1;
        }
        for (unsigned i = 0; i < h->n_ext; i++)
            orders[b][i] = um_tls_is_grease(h->ext[i].type) ? 0x0a0a : h->ext[i].type;
        free(h);
    }
    /* Extension order: Chromium shuffles per hello, Firefox keeps the
     * capture's order. */
    int distinct = 0;
    for (int b = 0; b < BUILDS; b++) {
        int seen = 0;
        for (int e = 0; e < b; e++)
            seen |= memcmp(orders[b], orders[e], sizeof orders[b]) == 0;
        distinct += !seen;
    }
    if (permuted) {
        assert_int_equal(distinct, BUILDS);
        assert_true(g_ext1_varies);
    } else {
        assert_int_equal(distinct, 1);
        for (unsigned i = 0; i < c->n_ext; i++)
            assert_int_equal(orders[0][i], c->ext[i].type);
    }
    free(c);
}

static void test_chromium(void **state)
{
    (void)state;
    run_fp(UM_TLS_FP_CHROMIUM, "chromium-156-a.bin", 1);
    run_fp(UM_TLS_FP_CHROMIUM, "chromium-156-b.bin", 1);
    run_fp(UM_TLS_FP_CHROMIUM, "chromium-156-c.bin", 1);
}

static void test_firefox(void **state)
{
    (void)state;
    run_fp(UM_TLS_FP_FIREFOX, "firefox-153-a.bin", 0);
    run_fp(UM_TLS_FP_FIREFOX, "firefox-153-b.bin", 0);
}

/* The captured browsers' extension order: Chromium's differs between every
 * pair of captures (so it is shuffled), Firefox's never does. This is the
 * observation the builder's order rule rests on. */
static void test_browser_orders(void **state)
{
    (void)state;
    static const char *ch[] = {"chromium-156-a.bin", "chromium-156-b.bin", "chromium-156-c.bin"};
    static const char *ff[] = {"firefox-153-a.bin", "firefox-153-b.bin", "firefox-153-longsni.bin"};
    uint8_t buf[8192];
    uint16_t o[3][UM_TLS_EXT_MAX];
    for (int k = 0; k < 2; k++) {
        memset(o, 0, sizeof o);
        for (int i = 0; i < 3; i++) {
            size_t n = load(k ? ff[i] : ch[i], buf, sizeof buf);
            um_tls_hello_t *h = parse(buf, n);
            for (unsigned e = 0; e < h->n_ext; e++)
                o[i][e] = um_tls_is_grease(h->ext[e].type) ? 0x0a0a : h->ext[e].type;
            free(h);
        }
        int same01 = memcmp(o[0], o[1], sizeof o[0]) == 0,
            same12 = memcmp(o[1], o[2], sizeof o[0]) == 0;
        assert_int_equal(same01, k);
        assert_int_equal(same12, k);
    }
}

static void test_ech_lengths(void **state)
{
    (void)state;
    test_rng_t rng = {{7}, 0};
    int seen[256] = {0};
    for (int i = 0; i < 400; i++) {
        size_t l = um_tls_fp_ech_len(UM_TLS_FP_CHROMIUM, test_rng, &rng);
        assert_true(um_tls_fp_ech_len_ok(UM_TLS_FP_CHROMIUM, l));
        seen[l]++;
    }
    /* Each of the four lengths about a quarter of the time. */
    assert_true(seen[144] > 60 && seen[176] > 60 && seen[208] > 60 && seen[240] > 60);
    assert_int_equal(um_tls_fp_ech_len(UM_TLS_FP_FIREFOX, test_rng, &rng), 239);
    assert_false(um_tls_fp_ech_len_ok(UM_TLS_FP_FIREFOX, 240));
    assert_int_equal(um_tls_fp_ech_len((um_tls_fp_t)7, NULL, NULL), 0);
    assert_string_equal(um_tls_fp_name(UM_TLS_FP_CHROMIUM), "chromium");
    assert_string_equal(um_tls_fp_name(UM_TLS_FP_FIREFOX), "firefox");
    assert_null(um_tls_fp_name((um_tls_fp_t)9));
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t out[UM_TLS_BUILD_MAX], x[32] = {9}, payload[240] = {0};
    um_tls_slots_t s;
    memset(&s, 0x33, sizeof s);
    s.ech_payload = payload;
    s.ech_payload_len = 240;
    size_t n;
    assert_int_equal(um_tls_hello_build(UM_TLS_FP_CHROMIUM, "example.com", x, &s, NULL, NULL, out,
                                        sizeof out, &n),
                     0);
    /* The real rng varies the hello. */
    uint8_t out2[UM_TLS_BUILD_MAX];
    size_t n2;
    assert_int_equal(um_tls_hello_build(UM_TLS_FP_CHROMIUM, "example.com", x, &s, NULL, NULL, out2,
                                        sizeof out2, &n2),
                     0);
    assert_int_equal(n, n2);
    assert_memory_not_equal(out, out2, n);
    assert_int_equal(
        um_tls_hello_build(UM_TLS_FP_CHROMIUM, "example.com", x, &s, NULL, NULL, out, n - 1, &n2),
        UM_ENOSPC);
    assert_int_equal(um_tls_hello_build(UM_TLS_FP_FIREFOX, "example.com", x, &s, NULL, NULL, out,
                                        sizeof out, &n),
                     UM_EINVAL); /* 240 is not a Firefox length */
    s.ech_payload_len = 239;
    assert_int_equal(um_tls_hello_build(UM_TLS_FP_FIREFOX, "example.com", x, &s, NULL, NULL, out,
                                        sizeof out, &n),
                     0);
    static const char *bad[] = {"", "exa mple.com", "a\x01", "x/y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            um_tls_hello_build(UM_TLS_FP_FIREFOX, bad[i], x, &s, NULL, NULL, out, sizeof out, &n),
            UM_EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(
        um_tls_hello_build(UM_TLS_FP_FIREFOX, longname, x, &s, NULL, NULL, out, sizeof out, &n),
        UM_EINVAL);
    longname[253] = 0; /* the longest name fits in UM_TLS_BUILD_MAX */
    s.ech_payload_len = 240;
    assert_int_equal(
        um_tls_hello_build(UM_TLS_FP_CHROMIUM, longname, x, &s, NULL, NULL, out, sizeof out, &n),
        0);
    assert_int_equal(
        um_tls_hello_build((um_tls_fp_t)5, "a", x, &s, NULL, NULL, out, sizeof out, &n), UM_EINVAL);

    /* The server takes the slots from real browsers' hellos too (they then
     * fail to authenticate); a hello without ECH gives none. */
    uint8_t buf[8192];
    um_tls_slots_t back;
    uint8_t xb[32];
    static const char *files[] = {"chromium-156-a.bin", "firefox-153-a.bin"};
    for (size_t i = 0; i < 2; i++) {
        size_t cn = load(files[i], buf, sizeof buf);
        um_tls_hello_t *h = parse(buf, cn);
        assert_int_equal(um_tls_hello_slots(h, &back, xb), 0);
        h->has_ech = 0;
        assert_int_equal(um_tls_hello_slots(h, &back, xb), UM_EPROTO);
        free(h);
    }
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_browser_orders), cmocka_unit_test(test_chromium),
        cmocka_unit_test(test_firefox),        cmocka_unit_test(test_ech_lengths),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
