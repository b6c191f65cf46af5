/* Base64: RFC 4648 vectors in both variants, agreement with a reference
 * encoder on random inputs, strict decoding (non-canonical trailing bits,
 * whitespace, wrong length, wrong alphabet, misplaced padding), the
 * UM_ENOSPC/UM_EINVAL contract on output capacity, and um_b64_decode_key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "util/b64.h"
#include "util/err.h"

#define N(a)   (sizeof(a) / sizeof((a)[0]))
#define S(lit) lit, sizeof(lit) - 1

static int setup(void **state)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* A plain reference encoder, written from RFC 4648 section 4 and 5. */
static void ref_encode(char *out, const uint8_t *in, size_t n, um_b64_variant_t v)
{
    const char *abc = v == UM_B64_URL
                          ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[w >> 18 & 63];
        out[o++] = abc[w >> 12 & 63];
        out[o++] = abc[w >> 6 & 63];
        out[o++] = abc[w & 63];
    }
    if (n - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[o++] = abc[w >> 18 & 63];
        out[o++] = abc[w >> 12 & 63];
        if (v == UM_B64_STD) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = abc[w >> 18 & 63];
        out[o++] = abc[w >> 12 & 63];
        out[o++] = abc[w >> 6 & 63];
        if (v == UM_B64_STD) out[o++] = '=';
    }
    out[o] = '\0';
}

static void test_rfc4648_vectors(void **state)
{
    static const struct {
        const char *raw, *std, *url;
    } v[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
        {"\xfb\xff\xbf", "+/+/", "-_-_"},
        {"\xfb\xff", "+/8=", "-_8"},
        {"\x00\x10\x83\x10\x51\x87", "ABCDEFGH", "ABCDEFGH"},
    };
    for (size_t i = 0; i < N(v); i++) {
        size_t n = strlen(v[i].raw);
        if (i == N(v) - 1) n = 6; /* embedded NUL */
        const uint8_t *raw = (const uint8_t *)v[i].raw;
        char out[32];
        uint8_t dec[32];
        size_t dlen = 99;

        assert_int_equal(um_b64_encoded_len(n, UM_B64_STD), strlen(v[i].std) + 1);
        assert_int_equal(um_b64_encode(out, sizeof(out), raw, n, UM_B64_STD), 0);
        assert_string_equal(out, v[i].std);
        assert_int_equal(
            um_b64_decode(dec, sizeof(dec), &dlen, v[i].std, strlen(v[i].std), UM_B64_STD), 0);
        assert_int_equal(dlen, n);
        assert_memory_equal(dec, raw, n);

        assert_int_equal(um_b64_encoded_len(n, UM_B64_URL), strlen(v[i].url) + 1);
        assert_int_equal(um_b64_encode(out, sizeof(out), raw, n, UM_B64_URL), 0);
        assert_string_equal(out, v[i].url);
        dlen = 99;
        assert_int_equal(
            um_b64_decode(dec, sizeof(dec), &dlen, v[i].url, strlen(v[i].url), UM_B64_URL), 0);
        assert_int_equal(dlen, n);
        assert_memory_equal(dec, raw, n);
    }
}

static void test_random_roundtrip(void **state)
{
    uint8_t in[200], dec[200];
    char enc[300], ref[300];
    for (int v = 0; v < 2; v++) {
        um_b64_variant_t var = v ? UM_B64_URL : UM_B64_STD;
        for (size_t n = 0; n <= 130; n++) {
            for (int rep = 0; rep < 8; rep++) {
                randombytes_buf(in, n);
                size_t el = um_b64_encoded_len(n, var);
                assert_int_equal(um_b64_encode(enc, el, in, n, var), 0);
                ref_encode(ref, in, n, var);
                assert_string_equal(enc, ref);
                assert_int_equal(strlen(enc) + 1, el);
                size_t dlen = 0;
                assert_int_equal(um_b64_decode(dec, sizeof(dec), &dlen, enc, strlen(enc), var), 0);
                assert_int_equal(dlen, n);
                assert_memory_equal(dec, in, n);
                /* the other variant refuses whenever the text differs in form */
                um_b64_variant_t other = v ? UM_B64_STD : UM_B64_URL;
                int r = um_b64_decode(dec, sizeof(dec), &dlen, enc, strlen(enc), other);
                if (strpbrk(enc, "+/=-_") != NULL) assert_int_equal(r, UM_EINVAL);
            }
        }
    }
}

static void test_encode_capacity(void **state)
{
    char out[16];
    memset(out, 'x', sizeof(out));
    assert_int_equal(um_b64_encode(out, 8, (const uint8_t *)"foob", 4, UM_B64_STD), UM_ENOSPC);
    assert_int_equal(um_b64_encode(out, 9, (const uint8_t *)"foob", 4, UM_B64_STD), 0);
    assert_string_equal(out, "Zm9vYg==");
    assert_int_equal(um_b64_encode(out, 6, (const uint8_t *)"foob", 4, UM_B64_URL), UM_ENOSPC);
    assert_int_equal(um_b64_encode(out, 7, (const uint8_t *)"foob", 4, UM_B64_URL), 0);
    assert_string_equal(out, "Zm9vYg");
    assert_int_equal(um_b64_encode(out, 0, (const uint8_t *)"", 0, UM_B64_STD), UM_ENOSPC);
    assert_int_equal(um_b64_encode(out, 1, (const uint8_t *)"", 0, UM_B64_STD), 0);
    assert_string_equal(out, "");
}

static void test_strict_rejects(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        um_b64_variant_t v;
    } bad[] = {
        /* non-canonical trailing bits */
        {S("Zh=="), UM_B64_STD}, /* 'h' leaves 4 low bits set */
        {S("Zn=="), UM_B64_STD},
        {S("Zm9="), UM_B64_STD}, /* '9' leaves 2 low bits set */
        {S("Zm+="), UM_B64_STD},
        {S("Zm9vYh=="), UM_B64_STD},
        {S("Zh"), UM_B64_URL},
        {S("Zm9"), UM_B64_URL},
        {S("Zm9vYmF"), UM_B64_URL},
        {S("-_9"), UM_B64_URL},
        /* whitespace anywhere */
        {S(" Zm9v"), UM_B64_STD},
        {S("Zm9v "), UM_B64_STD},
        {S("Zm 9v"), UM_B64_STD},
        {S("Zm9v\n"), UM_B64_STD},
        {S("Zm9v\r\n"), UM_B64_STD},
        {S("\tZm9v"), UM_B64_STD},
        {S("Zg==\n"), UM_B64_STD},
        {S("Zm9v\n"), UM_B64_URL},
        {S("Zm9 v"), UM_B64_URL},
        /* wrong length / missing or extra padding */
        {S("Z"), UM_B64_STD},
        {S("Zg"), UM_B64_STD},
        {S("Zg="), UM_B64_STD},
        {S("Zm8"), UM_B64_STD},
        {S("Zm9vY"), UM_B64_STD},
        {S("Zm9vYg="), UM_B64_STD},
        {S("Zg==="), UM_B64_STD},
        {S("Zm9v="), UM_B64_STD},
        {S("Zm9v===="), UM_B64_STD},
        {S("="), UM_B64_STD},
        {S("===="), UM_B64_STD},
        {S("Z"), UM_B64_URL},
        {S("Zm9vY"), UM_B64_URL},
        {S("Zg=="), UM_B64_URL},
        {S("Zm8="), UM_B64_URL},
        {S("Zg="), UM_B64_URL},
        /* padding in the middle */
        {S("Zg==Zg=="), UM_B64_STD},
        {S("Zm=9"), UM_B64_STD},
        {S("Z=9v"), UM_B64_STD},
        /* the other alphabet, or none */
        {S("-_-_"), UM_B64_STD},
        {S("Zm9v-A=="), UM_B64_STD},
        {S("+/+/"), UM_B64_URL},
        {S("Zm9v+A"), UM_B64_URL},
        {S("Zm9v!A=="), UM_B64_STD},
        {S("Zm.v"), UM_B64_STD},
        {S("Zm\0v"), UM_B64_STD},
        {S("Zm\0v"), UM_B64_URL},
    };
    for (size_t i = 0; i < N(bad); i++) {
        uint8_t out[64];
        size_t len = 12345;
        int r = um_b64_decode(out, sizeof(out), &len, bad[i].s, bad[i].n, bad[i].v);
        if (r != UM_EINVAL)
            fail_msg("bad[%zu] '%.*s' (%s) gave %d", i, (int)bad[i].n, bad[i].s,
                     bad[i].v == UM_B64_URL ? "url" : "std", r);
        assert_int_equal(len, 12345); /* not touched on failure */
    }
}

/* Strict means ASCII only: a byte 0x80..0xff is never a base64 character, in
 * any position, in either variant. */
static void test_decode_rejects_non_ascii(void **state)
{
    uint8_t out[16];
    for (int v = 0; v < 2; v++) {
        um_b64_variant_t var = v ? UM_B64_URL : UM_B64_STD;
        for (int pos = 0; pos < 4; pos++) {
            for (unsigned c = 0x80; c <= 0xff; c++) {
                char s[5] = "AAAA";
                s[pos] = (char)c;
                size_t len = 0;
                int r = um_b64_decode(out, sizeof(out), &len, s, 4, var);
                if (r != UM_EINVAL)
                    fail_msg("%s: 'AAAA' with byte 0x%02x at %d gave %d (decoded %zu bytes, "
                             "last 0x%02x), want UM_EINVAL",
                             v ? "url" : "std", c, pos, r, len, len ? out[len - 1] : 0);
            }
        }
    }
    /* and a key with one such byte is not a key */
    uint8_t key[32];
    char k[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    k[10] = (char)0xff;
    assert_int_equal(um_b64_decode_key(key, k, 44, UM_B64_STD), UM_EINVAL);
}

/* The length argument is authoritative: bytes past n are ignored, and a
 * valid prefix followed by more text is refused when n covers it. */
static void test_decode_exact_n(void **state)
{
    uint8_t out[16];
    size_t len = 0;
    assert_int_equal(um_b64_decode(out, sizeof(out), &len, "Zm9vYmFy!!!", 8, UM_B64_STD), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "foobar", 6);
    assert_int_equal(um_b64_decode(out, sizeof(out), &len, "Zm9vYmFy!!!", 9, UM_B64_STD),
                     UM_EINVAL);
    assert_int_equal(um_b64_decode(out, sizeof(out), &len, "Zm9v", 0, UM_B64_STD), 0);
    assert_int_equal(len, 0);
}

/* Header contract: UM_ENOSPC when out is too small, success when it is just
 * large enough, for every length in both variants. */
static void test_decode_capacity_contract(void **state)
{
    uint8_t in[64], out[64];
    char enc[100];
    for (int v = 0; v < 2; v++) {
        um_b64_variant_t var = v ? UM_B64_URL : UM_B64_STD;
        for (size_t n = 1; n <= 40; n++) {
            randombytes_buf(in, n);
            assert_int_equal(um_b64_encode(enc, sizeof(enc), in, n, var), 0);
            size_t len = 0;
            int r = um_b64_decode(out, n, &len, enc, strlen(enc), var);
            if (r != 0)
                fail_msg("%s: %zu bytes ('%s') into a %zu-byte buffer gave %d, want 0",
                         v ? "url" : "std", n, enc, n, r);
            assert_int_equal(len, n);
            assert_memory_equal(out, in, n);
            r = um_b64_decode(out, n - 1, &len, enc, strlen(enc), var);
            if (r != UM_ENOSPC)
                fail_msg("%s: %zu bytes ('%s') into a %zu-byte buffer gave %d, want UM_ENOSPC",
                         v ? "url" : "std", n, enc, n - 1, r);
        }
    }
}

/* ---- decode_key ---- */

static void test_decode_key(void **state)
{
    uint8_t key[32], got[32];
    char std[64], url[64];
    for (int rep = 0; rep < 50; rep++) {
        randombytes_buf(key, sizeof(key));
        assert_int_equal(um_b64_encode(std, sizeof(std), key, 32, UM_B64_STD), 0);
        assert_int_equal(um_b64_encode(url, sizeof(url), key, 32, UM_B64_URL), 0);
        assert_int_equal(strlen(std), 44);
        assert_int_equal(strlen(url), 43);
        memset(got, 0, sizeof(got));
        assert_int_equal(um_b64_decode_key(got, std, 44, UM_B64_STD), 0);
        assert_memory_equal(got, key, 32);
        memset(got, 0, sizeof(got));
        assert_int_equal(um_b64_decode_key(got, url, 43, UM_B64_URL), 0);
        assert_memory_equal(got, key, 32);
        /* the variants are not interchangeable */
        assert_int_equal(um_b64_decode_key(got, std, 44, UM_B64_URL), UM_EINVAL);
        assert_int_equal(um_b64_decode_key(got, url, 43, UM_B64_STD), UM_EINVAL);
        /* truncated or extended */
        assert_int_equal(um_b64_decode_key(got, std, 43, UM_B64_STD), UM_EINVAL);
        assert_int_equal(um_b64_decode_key(got, url, 42, UM_B64_URL), UM_EINVAL);
    }

    /* all-zero key and its non-canonical sibling */
    static const char zero_std[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    static const char zero_url[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    memset(got, 0xff, sizeof(got));
    assert_int_equal(um_b64_decode_key(got, S(zero_std), UM_B64_STD), 0);
    assert_true(sodium_is_zero(got, 32));
    assert_int_equal(um_b64_decode_key(got, S(zero_url), UM_B64_URL), 0);
    assert_int_equal(
        um_b64_decode_key(got, S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="), UM_B64_STD),
        UM_EINVAL);
    assert_int_equal(
        um_b64_decode_key(got, S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"), UM_B64_URL),
        UM_EINVAL);
    /* 'E' in the last position carries only the top 4 bits: canonical */
    assert_int_equal(
        um_b64_decode_key(got, S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="), UM_B64_STD), 0);
    assert_int_equal(got[31], 0x01);

    static const struct {
        const char *s;
        size_t n;
        um_b64_variant_t v;
    } bad[] = {
        {S(""), UM_B64_STD},
        {S(""), UM_B64_URL},
        /* 31 bytes */
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), UM_B64_URL},
        /* 33 bytes */
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), UM_B64_URL},
        /* 48 and 64 bytes */
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AA=="),
         UM_B64_STD},
        /* whitespace is not the decoder's business */
        {S(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), UM_B64_URL},
        {S("AAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA="), UM_B64_STD},
        /* extra padding, stray characters */
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=A"), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*="), UM_B64_STD},
        {S("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\0"), UM_B64_URL},
    };
    for (size_t i = 0; i < N(bad); i++) {
        memset(got, 0x5a, sizeof(got));
        if (um_b64_decode_key(got, bad[i].s, bad[i].n, bad[i].v) != UM_EINVAL)
            fail_msg("decode_key bad[%zu] '%.*s' accepted", i, (int)bad[i].n, bad[i].s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_encode_capacity),
        cmocka_unit_test(test_strict_rejects),
        cmocka_unit_test(test_decode_exact_n),
        cmocka_unit_test(test_decode_key),
        cmocka_unit_test(test_decode_rejects_non_ascii),
        cmocka_unit_test(test_decode_capacity_contract),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
