/* ClientHello parser and JA4 (src/transport/tls_hello.c, ja4.c).
 *
 * The browsers' own hellos (tests/data/tls/, captured from Debian's Chromium
 * 156 and Firefox ESR 153) must parse to the fields the browsers put there;
 * the same hello split over records of any size must parse the same, and
 * every cut of it must be "need more"; a table of broken hellos must be
 * malformed. JA4 must reproduce FoxIO's published examples and the JA4 of a
 * published Chrome hello, and give one value per browser over its captures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ja4.h"
#include "transport/tls_hello.h"
#include "util/bytes.h"
#include "util/err.h"

#define JA4_CHROMIUM "t13d1517h2_8daaf6152771_cb7bf5808d99"
#define JA4_FIREFOX  "t13d1617h2_86a278354501_3cbfd9057e0d"

static const char *chromium_files[] = {"chromium-156-a.bin", "chromium-156-b.bin",
                                       "chromium-156-c.bin", "chromium-156-longsni.bin"};
static const char *firefox_files[] = {"firefox-153-a.bin", "firefox-153-b.bin",
                                      "firefox-153-longsni.bin"};

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

static um_tls_hello_t *parse_ok(const uint8_t *p, size_t n)
{
    um_tls_hello_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    assert_int_equal(um_tls_hello_parse(p, n, h), 0);
    assert_int_equal(h->consumed, n);
    return h;
}

static int has_alpn_h2_h11(const um_tls_hello_t *h)
{
    static const uint8_t want[] = "\x02h2\x08http/1.1";
    return h->alpn.len == sizeof want - 1 && memcmp(um_tls_at(h, h->alpn), want, h->alpn.len) == 0;
}

static void test_chromium_fields(void **state)
{
    (void)state;
    uint8_t buf[8192];
    for (size_t f = 0; f < sizeof chromium_files / sizeof *chromium_files; f++) {
        size_t n = load(chromium_files[f], buf, sizeof buf);
        um_tls_hello_t *h = parse_ok(buf, n);
        assert_int_equal(h->record_version, 0x0301);
        assert_int_equal(h->legacy_version, 0x0303);
        assert_int_equal(h->n_records, 1);
        assert_int_equal(h->session_id_len, 32);
        assert_int_equal(h->ciphers.len, 16 * 2);
        assert_true(um_tls_is_grease(um_tls_u16(h, h->ciphers, 0)));
        assert_int_equal(um_tls_u16(h, h->ciphers, 1), 0x1301);
        assert_int_equal(h->n_ext, 19);
        assert_true(um_tls_is_grease(h->ext[0].type));
        assert_int_equal(h->ext[0].data.len, 0);
        assert_true(um_tls_is_grease(h->ext[18].type));
        assert_int_equal(h->ext[18].data.len, 1);
        assert_true(h->has_sni);
        if (f < 3) assert_memory_equal(um_tls_at(h, h->sni), "example.com", 11);
        assert_true(has_alpn_h2_h11(h));
        assert_int_equal(h->groups.len, 10);
        assert_int_equal(um_tls_u16(h, h->groups, 1), UM_TLS_GROUP_X25519MLKEM768);
        assert_int_equal(h->n_keyshare, 3);
        assert_true(um_tls_is_grease(h->keyshare[0].group));
        assert_int_equal(h->keyshare[0].key.len, 1);
        assert_int_equal(h->keyshare[1].group, UM_TLS_GROUP_X25519MLKEM768);
        assert_int_equal(h->keyshare[1].key.len, UM_TLS_X25519MLKEM768_LEN);
        assert_int_equal(h->keyshare[2].group, UM_TLS_GROUP_X25519);
        assert_int_equal(h->keyshare[2].key.len, 32);
        assert_true(h->has_ech);
        assert_int_equal(h->ech_type, 0);
        assert_int_equal(h->ech_kdf, 1);
        assert_int_equal(h->ech_aead, 1);
        assert_int_equal(h->ech_enc.len, 32);
        assert_true(h->ech_payload.len == 144 || h->ech_payload.len == 176 ||
                    h->ech_payload.len == 208 || h->ech_payload.len == 240);
        assert_int_equal(h->grease, UM_TLS_GREASE_CIPHER | UM_TLS_GREASE_EXT | UM_TLS_GREASE_GROUP |
                                        UM_TLS_GREASE_KEYSHARE | UM_TLS_GREASE_VERSION |
                                        UM_TLS_GREASE_SIGALG);
        assert_non_null(um_tls_hello_ext(h, UM_TLS_EXT_ALPS));
        assert_non_null(um_tls_hello_ext(h, UM_TLS_EXT_COMPRESS_CERT));
        assert_null(um_tls_hello_ext(h, UM_TLS_EXT_PADDING));
        free(h);
    }
}

static void test_firefox_fields(void **state)
{
    (void)state;
    uint8_t buf[8192];
    for (size_t f = 0; f < sizeof firefox_files / sizeof *firefox_files; f++) {
        size_t n = load(firefox_files[f], buf, sizeof buf);
        um_tls_hello_t *h = parse_ok(buf, n);
        assert_int_equal(h->session_id_len, 32);
        assert_int_equal(h->ciphers.len, 16 * 2);
        assert_int_equal(h->n_ext, 17);
        assert_int_equal(h->ext[0].type, UM_TLS_EXT_SNI);
        assert_int_equal(h->ext[16].type, UM_TLS_EXT_ECH);
        assert_int_equal(h->grease, 0);
        assert_true(has_alpn_h2_h11(h));
        assert_int_equal(h->n_keyshare, 3);
        assert_int_equal(h->keyshare[0].group, UM_TLS_GROUP_X25519MLKEM768);
        assert_int_equal(h->keyshare[1].group, UM_TLS_GROUP_X25519);
        assert_int_equal(h->keyshare[2].group, UM_TLS_GROUP_P256);
        assert_int_equal(h->keyshare[2].key.len, 65);
        /* Firefox reuses its x25519 key inside the hybrid share. */
        assert_memory_equal(um_tls_at(h, h->keyshare[0].key) + UM_TLS_MLKEM768_EK_LEN,
                            um_tls_at(h, h->keyshare[1].key), 32);
        assert_true(h->has_ech);
        assert_int_equal(h->ech_enc.len, 32);
        assert_int_equal(h->ech_payload.len, 239);
        assert_true(h->ech_aead == 1 || h->ech_aead == 3);
        free(h);
    }
}

/* Frames msg[0..m) in records of rl bytes (the last shorter). */
static size_t frame(const uint8_t *msg, size_t m, size_t rl, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < m; i += rl) {
        size_t k = m - i < rl ? m - i : rl;
        out[o] = 22;
        um_st16(out + o + 1, 0x0301);
        um_st16(out + o + 3, (uint16_t)k);
        memcpy(out + o + 5, msg + i, k);
        o += 5 + k;
    }
    return o;
}

static void test_split_records_and_cuts(void **state)
{
    (void)state;
    uint8_t buf[8192];
    size_t n = load("chromium-156-a.bin", buf, sizeof buf);
    um_tls_hello_t *h = parse_ok(buf, n);
    um_tls_hello_t *g = malloc(sizeof(*g));
    uint8_t *w = malloc(6 * n + 64);
    assert_non_null(g);
    assert_non_null(w);
    static const size_t sizes[] = {1, 2, 3, 4, 5, 7, 100, 512, 1500};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t wn = frame(h->msg, h->msg_len, sizes[s], w);
        /* Trailing bytes of the next record are not the hello's. */
        w[wn] = 23;
        assert_int_equal(um_tls_hello_parse(w, wn + 1, g), 0);
        assert_int_equal(g->consumed, wn);
        assert_int_equal(g->msg_len, h->msg_len);
        assert_memory_equal(g->msg, h->msg, h->msg_len);
        assert_memory_equal(g->random, h->random, 32);
        assert_int_equal(g->n_ext, h->n_ext);
        assert_int_equal(g->ech_payload.len, h->ech_payload.len);
        for (size_t k = 0; k < wn; k += (sizes[s] < 10 ? 37 : 1))
            assert_int_equal(um_tls_hello_parse(w, k, g), UM_EAGAIN);
    }
    free(w);
    free(g);
    free(h);
}

typedef struct {
    const char *what;
    size_t at;     /* offset into the capture (record header included) */
    uint8_t value; /* byte written there */
} breakage_t;

/* Each of these turns the (single-record) capture into a malformed hello. */
static void test_malformed(void **state)
{
    (void)state;
    uint8_t buf[8192], w[8192];
    size_t n = load("chromium-156-b.bin", buf, sizeof buf);
    um_tls_hello_t *h = parse_ok(buf, n);
    /* Offsets: 5 record hdr, 4 hs hdr, 2 version, 32 random, sid len at 43. */
    const breakage_t table[] = {
        {"content type alert", 0, 21},
        {"record major 2", 1, 2},
        {"record minor 9", 2, 9},
        {"handshake type ServerHello", 5, 2},
        {"session id length 33", 43, 33},
        {"session id length 200", 43, 200},
        {"cipher list length odd", 43 + 1 + 32 + 1, 0x21},
    };
    um_tls_hello_t *g = malloc(sizeof(*g));
    assert_non_null(g);
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        memcpy(w, buf, n);
        w[table[i].at] = table[i].value;
        int r = um_tls_hello_parse(w, n, g);
        if (r != UM_EPROTO) fail_msg("%s: %d", table[i].what, r);
    }
    /* Record length 0. */
    memcpy(w, buf, n);
    um_st16(w + 3, 0);
    assert_int_equal(um_tls_hello_parse(w, n, g), UM_EPROTO);
    /* The record is longer than the message: a second message follows. */
    memcpy(w, buf, n);
    um_st16(w + 3, (uint16_t)(n - 5 + 1));
    w[n] = 0;
    assert_int_equal(um_tls_hello_parse(w, n + 1, g), UM_EPROTO);
    /* A message too long for the parser. */
    memcpy(w, buf, n);
    w[6] = 0;
    w[7] = 0x40;
    w[8] = 0;
    assert_int_equal(um_tls_hello_parse(w, 9, g), UM_EPROTO);
    /* The first extension (GREASE, empty) duplicated in place of the last. */
    size_t e0 = (size_t)(h->ext[0].data.off - 4) + 5, el = (size_t)(h->ext[18].data.off - 4) + 5;
    memcpy(w, buf, n);
    w[el] = buf[e0];
    w[el + 1] = buf[e0 + 1];
    assert_int_equal(um_tls_hello_parse(w, n, g), UM_EPROTO);
    /* Extension length one past its end, and every key_share length +1. */
    memcpy(w, buf, n);
    um_st16(w + el + 2, 2);
    assert_int_equal(um_tls_hello_parse(w, n, g), UM_EPROTO);
    const um_tls_ext_t *ks = um_tls_hello_ext(h, UM_TLS_EXT_KEY_SHARE);
    memcpy(w, buf, n);
    w[5 + ks->data.off + 1]++;
    assert_int_equal(um_tls_hello_parse(w, n, g), UM_EPROTO);
    /* ECH payload length past the extension. */
    const um_tls_ext_t *ech = um_tls_hello_ext(h, UM_TLS_EXT_ECH);
    memcpy(w, buf, n);
    w[5 + ech->data.off + 1 + 2 + 2 + 1 + 2 + 32 + 1]++;
    assert_int_equal(um_tls_hello_parse(w, n, g), UM_EPROTO);
    /* Not TLS at all. */
    const char *http = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(um_tls_hello_parse((const uint8_t *)http, strlen(http), g), UM_EPROTO);
    /* Decided at once: one wrong byte is enough. */
    assert_int_equal(um_tls_hello_parse((const uint8_t *)"\x17", 1, g), UM_EPROTO);
    assert_int_equal(um_tls_hello_parse((const uint8_t *)"\x16\x03", 2, g), UM_EAGAIN);
    assert_int_equal(um_tls_hello_parse(NULL, 0, g), UM_EINVAL);
    free(g);
    free(h);
}

/* A hello with the given ciphers, extension types (the ones the parser
 * decodes get minimal valid bodies; others are empty) and sigalgs. */
static size_t make_hello(const uint16_t *cs, size_t nc, const uint16_t *ex, size_t ne,
                         const uint16_t *sa, size_t ns, uint8_t *out)
{
    uint8_t *m = out + 5;
    size_t o = 4;
    um_st16(m + o, 0x0303);
    o += 2;
    memset(m + o, 0x11, 32);
    o += 32;
    m[o++] = 0;
    um_st16(m + o, (uint16_t)(2 * nc));
    o += 2;
    for (size_t i = 0; i < nc; i++, o += 2)
        um_st16(m + o, cs[i]);
    m[o++] = 1;
    m[o++] = 0;
    size_t el = o;
    o += 2;
    for (size_t i = 0; i < ne; i++) {
        um_st16(m + o, ex[i]);
        size_t lo = o + 2, b = o + 4;
        switch (ex[i]) {
        case UM_TLS_EXT_SNI:
            um_st16(m + b, 14);
            m[b + 2] = 0;
            um_st16(m + b + 3, 11);
            memcpy(m + b + 5, "example.com", 11);
            o = b + 16;
            break;
        case UM_TLS_EXT_ALPN: memcpy(m + b, "\x00\x03\x02h2", 5), o = b + 5; break;
        case UM_TLS_EXT_VERSIONS: memcpy(m + b, "\x02\x03\x04", 3), o = b + 3; break;
        case UM_TLS_EXT_GROUPS: memcpy(m + b, "\x00\x02\x00\x1d", 4), o = b + 4; break;
        case UM_TLS_EXT_EC_POINT_FORMATS: memcpy(m + b, "\x01\x00", 2), o = b + 2; break;
        case UM_TLS_EXT_KEY_SHARE: memcpy(m + b, "\x00\x00", 2), o = b + 2; break;
        case UM_TLS_EXT_ECH:
            memcpy(m + b, "\x00\x00\x01\x00\x01\x07\x00\x00\x00\x01\x55", 11), o = b + 11;
            break;
        case UM_TLS_EXT_SIGALGS:
            um_st16(m + b, (uint16_t)(2 * ns));
            for (size_t k = 0; k < ns; k++)
                um_st16(m + b + 2 + 2 * k, sa[k]);
            o = b + 2 + 2 * ns;
            break;
        default: o = b; break;
        }
        um_st16(m + lo, (uint16_t)(o - b));
    }
    um_st16(m + el, (uint16_t)(o - el - 2));
    m[0] = 1;
    m[1] = 0;
    um_st16(m + 2, (uint16_t)(o - 4));
    out[0] = 22;
    um_st16(out + 1, 0x0301);
    um_st16(out + 3, (uint16_t)o);
    return o + 5;
}

static void test_ja4_published_examples(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char ja4[UM_JA4_LEN + 1], raw[2048];
    /* FoxIO JA4.md: the example lists and their hashes. */
    static const uint16_t cs[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                                  0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
    static const uint16_t ex[] = {0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
                                  0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015};
    static const uint16_t sa[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
    size_t n = make_hello(cs, 15, ex, 16, sa, 8, buf);
    um_tls_hello_t *h = parse_ok(buf, n);
    assert_int_equal(um_ja4(h, ja4), 0);
    assert_string_equal(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert_int_equal(um_ja4_raw(h, raw, sizeof raw), 0);
    assert_string_equal(raw, "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,"
                             "c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,"
                             "002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601");
    assert_int_equal(um_ja4_raw(h, raw, 20), UM_ENOSPC);
    free(h);

    /* The same without signature algorithms: "6d807ffa2a79" per JA4.md. GREASE
     * values are ignored everywhere, so a sigalgs list of GREASE only counts
     * as none. */
    static const uint16_t ex2[] = {0x0a0a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469,
                                   0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
                                   0x002b, 0xff01, 0x000b, 0x000a, 0x0015};
    static const uint16_t cs2[] = {0xdada, 0x1301, 0x1302}, sa2[] = {0x3a3a};
    n = make_hello(cs2, 3, ex2, 17, sa2, 1, buf);
    h = parse_ok(buf, n);
    assert_int_equal(um_ja4(h, ja4), 0);
    assert_memory_equal(ja4, "t13d0216h2_", 11);
    assert_string_equal(ja4 + 24, "6d807ffa2a79");
    free(h);

    /* A Chrome 143 hello as browserleaks.com reported it (ja4_ro order):
     * ja4 = t13d1516h2_8daaf6152771_d8a2da3f94cd. */
    static const uint16_t ex3[] = {0x002d, 0x0033, 0x0010, 0xfe0d, 0x0017, 0x44cd, 0x0000, 0x000b,
                                   0x000a, 0x002b, 0xff01, 0x0023, 0x0012, 0x0005, 0x000d, 0x001b};
    n = make_hello(cs, 15, ex3, 16, sa, 8, buf);
    h = parse_ok(buf, n);
    assert_int_equal(um_ja4(h, ja4), 0);
    assert_string_equal(ja4, "t13d1516h2_8daaf6152771_d8a2da3f94cd");
    free(h);

    /* No SNI, no ALPN, no extensions: "i", "00" and the all-zero c hash. */
    n = make_hello(cs, 2, NULL, 0, NULL, 0, buf);
    h = parse_ok(buf, n);
    assert_int_equal(um_ja4(h, ja4), 0);
    assert_string_equal(ja4 + 24, "000000000000");
    assert_memory_equal(ja4, "t12i0200", 8);
    free(h);
}

static void ja4_of_files(const char **files, size_t nf, const char *want)
{
    uint8_t buf[8192];
    char ja4[UM_JA4_LEN + 1];
    for (size_t f = 0; f < nf; f++) {
        size_t n = load(files[f], buf, sizeof buf);
        um_tls_hello_t *h = parse_ok(buf, n);
        assert_int_equal(um_ja4(h, ja4), 0);
        if (strcmp(ja4, want) != 0) fail_msg("%s: JA4 %s, want %s", files[f], ja4, want);
        free(h);
    }
}

static void test_ja4_browsers(void **state)
{
    (void)state;
    ja4_of_files(chromium_files, sizeof chromium_files / sizeof *chromium_files, JA4_CHROMIUM);
    ja4_of_files(firefox_files, sizeof firefox_files / sizeof *firefox_files, JA4_FIREFOX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chromium_fields),        cmocka_unit_test(test_firefox_fields),
        cmocka_unit_test(test_split_records_and_cuts), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_ja4_published_examples), cmocka_unit_test(test_ja4_browsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
