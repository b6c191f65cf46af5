/* X25519 static keys: RFC 7748 section 6.1 vectors, clamped generation,
 * base64 text round trip (surrounding whitespace tolerated, nothing else),
 * and loading key files (good, missing, garbage, loose permissions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "util/err.h"

#define N(a)   (sizeof(a) / sizeof((a)[0]))
#define S(lit) lit, sizeof(lit) - 1

/* RFC 7748 section 6.1 */
static const char ALICE_PRIV[] = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
static const char ALICE_PUB[] = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
static const char BOB_PRIV[] = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
static const char BOB_PUB[] = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
static const char SHARED[] = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
/* The same keys in standard base64 (computed with Python's base64 module). */
static const char ALICE_PRIV_B64[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
static const char ALICE_PUB_B64[] = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

static char g_dir[64];

static void unhex(uint8_t *out, const char *hex)
{
    size_t len = 0;
    assert_int_equal(sodium_hex2bin(out, 32, hex, 64, NULL, &len, NULL), 0);
    assert_int_equal(len, 32);
}

static int setup(void **state)
{
    if (um_crypto_init() != 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "/tmp/umbra-keys-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0); /* exact mode, whatever the umask */
    assert_int_equal(close(fd), 0);
}

/* ---- X25519 ---- */

static void test_rfc7748_vectors(void **state)
{
    uint8_t priv[32], pub[32], want[32];
    unhex(priv, ALICE_PRIV);
    unhex(want, ALICE_PUB);
    memset(pub, 0, sizeof(pub));
    assert_int_equal(um_key_public(pub, priv), 0);
    assert_memory_equal(pub, want, 32);

    unhex(priv, BOB_PRIV);
    unhex(want, BOB_PUB);
    assert_int_equal(um_key_public(pub, priv), 0);
    assert_memory_equal(pub, want, 32);

    /* and the shared secret both derive, through the same primitive */
    uint8_t a[32], b[32], apub[32], bpub[32], s1[32], s2[32];
    unhex(a, ALICE_PRIV);
    unhex(b, BOB_PRIV);
    unhex(apub, ALICE_PUB);
    unhex(bpub, BOB_PUB);
    unhex(want, SHARED);
    assert_int_equal(crypto_scalarmult(s1, a, bpub), 0);
    assert_int_equal(crypto_scalarmult(s2, b, apub), 0);
    assert_memory_equal(s1, want, 32);
    assert_memory_equal(s2, want, 32);

    /* X25519 clamps: the unclamped and clamped scalar give one public key */
    uint8_t c[32], pc[32];
    memcpy(c, a, 32);
    c[0] &= 248;
    c[31] &= 127;
    c[31] |= 64;
    assert_int_equal(um_key_public(pc, c), 0);
    unhex(want, ALICE_PUB);
    assert_memory_equal(pc, want, 32);
}

static void test_generate_clamped(void **state)
{
    uint8_t prev[32] = {0};
    unsigned low_seen = 0, high_seen = 0;
    for (int i = 0; i < 256; i++) {
        uint8_t priv[32], pub[32], pub2[32];
        um_key_generate(priv);
        assert_int_equal(priv[0] & 7, 0);
        assert_int_equal(priv[31] & 0x80, 0);
        assert_int_equal(priv[31] & 0x40, 0x40);
        assert_memory_not_equal(priv, prev, 32);
        low_seen |= priv[0];
        high_seen |= priv[31];
        memcpy(prev, priv, 32);
        assert_int_equal(um_key_public(pub, priv), 0);
        assert_false(sodium_is_zero(pub, 32));
        /* agrees with libsodium's own base-point multiplication */
        assert_int_equal(crypto_scalarmult_base(pub2, priv), 0);
        assert_memory_equal(pub, pub2, 32);
        sodium_memzero(priv, sizeof(priv));
    }
    /* the bits that are not clamped do vary (the key is random, not constant) */
    assert_int_equal(low_seen, 0xf8);
    assert_int_equal(high_seen, 0x7f);
}

/* ---- base64 text ---- */

static void test_b64_vectors(void **state)
{
    uint8_t priv[32], pub[32], k[32];
    char out[UM_KEY_B64_LEN + 1];
    unhex(priv, ALICE_PRIV);
    memset(out, 'x', sizeof(out));
    um_key_to_b64(out, priv);
    assert_int_equal(out[UM_KEY_B64_LEN], '\0');
    assert_string_equal(out, ALICE_PRIV_B64);
    assert_int_equal(um_key_public(pub, priv), 0);
    um_key_to_b64(out, pub);
    assert_string_equal(out, ALICE_PUB_B64);

    assert_int_equal(um_key_from_b64(k, ALICE_PUB_B64, strlen(ALICE_PUB_B64)), 0);
    assert_memory_equal(k, pub, 32);
}

static void test_b64_roundtrip_whitespace(void **state)
{
    static const char *const around[][2] = {
        {"", ""},    {" ", ""},        {"", "\n"},    {"\t", "\r\n"},         {"  \n", "\n\n"},
        {"\r", " "}, {"\n\n\n", "\t"}, {"", "   \n"}, {" \t \r\n ", " \t\n"},
    };
    for (int rep = 0; rep < 20; rep++) {
        uint8_t key[32], got[32];
        char b64[UM_KEY_B64_LEN + 1], text[128];
        um_key_generate(key);
        um_key_to_b64(b64, key);
        assert_int_equal(strlen(b64), UM_KEY_B64_LEN);
        for (size_t i = 0; i < N(around); i++) {
            int n = snprintf(text, sizeof(text), "%s%s%s", around[i][0], b64, around[i][1]);
            memset(got, 0, sizeof(got));
            if (um_key_from_b64(got, text, (size_t)n) != 0)
                fail_msg("'%s' with whitespace case %zu refused", b64, i);
            assert_memory_equal(got, key, 32);
        }
        /* n is authoritative: bytes after n are not looked at */
        snprintf(text, sizeof(text), "%s!!!!", b64);
        assert_int_equal(um_key_from_b64(got, text, UM_KEY_B64_LEN), 0);
        assert_memory_equal(got, key, 32);
    }
}

static void test_b64_rejects(void **state)
{
    char k[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
    char url[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo";
    char buf[256];
    uint8_t out[32];
    const struct {
        const char *what, *s;
    } bad[] = {
        {"empty", ""},
        {"only whitespace", " \n\t\r "},
        {"URL-safe form", url},
        {"inner space", "dwdtCnMYpX08FsFyUbJmRd9ML4f rwJkqsXf7pR25LCo="},
        {"inner newline", "dwdtCnMYpX08FsFyUbJm\nRd9ML4frwJkqsXf7pR25LCo="},
        {"truncated", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC="},
        {"missing padding", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo"},
        {"double padding", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC=="},
        {"non-canonical last char", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp="},
        {"33 bytes", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCoA"},
        {"48 bytes", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCoAAAAAAAAAAAAAAAAAAAAA"},
        {"two keys", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= "
                     "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="},
        {"comment after", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= # key"},
        {"bad char", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC*="},
        {"hex", ALICE_PRIV},
        {"quoted", "\"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\""},
    };
    for (size_t i = 0; i < N(bad); i++)
        if (um_key_from_b64(out, bad[i].s, strlen(bad[i].s)) != UM_EINVAL)
            fail_msg("%s: '%s' accepted", bad[i].what, bad[i].s);
    /* NUL inside */
    memcpy(buf, k, sizeof(k));
    buf[20] = '\0';
    assert_int_equal(um_key_from_b64(out, buf, UM_KEY_B64_LEN), UM_EINVAL);
    /* NUL after, counted in n: not whitespace */
    memcpy(buf, k, sizeof(k));
    assert_int_equal(um_key_from_b64(out, buf, UM_KEY_B64_LEN + 1), UM_EINVAL);
}

/* ---- key files ---- */

static void test_load_file_good(void **state)
{
    uint8_t key[32], got[32];
    char b64[UM_KEY_B64_LEN + 1], path[128], text[128];
    um_key_generate(key);
    um_key_to_b64(b64, key);
    static const char *const around[][2] = {
        {"", ""}, {"", "\n"}, {"", "\r\n"}, {"\n", "\n\n"}, {"  ", "  \n"}};
    snprintf(path, sizeof(path), "%s/good.key", g_dir);
    for (size_t i = 0; i < N(around); i++) {
        int n = snprintf(text, sizeof(text), "%s%s%s", around[i][0], b64, around[i][1]);
        write_file(path, text, (size_t)n, 0600);
        int loose = -1;
        memset(got, 0, sizeof(got));
        assert_int_equal(um_key_load_file(got, path, &loose), 0);
        assert_memory_equal(got, key, 32);
        assert_int_equal(loose, 0);
    }
    /* 0400 is as private as 0600 */
    write_file(path, b64, strlen(b64), 0400);
    int loose = -1;
    assert_int_equal(um_key_load_file(got, path, &loose), 0);
    assert_int_equal(loose, 0);
    /* loose_perms may be NULL */
    assert_int_equal(um_key_load_file(got, path, NULL), 0);
    assert_memory_equal(got, key, 32);

    /* the RFC key, written as a person would */
    snprintf(text, sizeof(text), "%s\n", ALICE_PRIV_B64);
    write_file(path, text, strlen(text), 0600);
    uint8_t want[32];
    unhex(want, ALICE_PRIV);
    assert_int_equal(um_key_load_file(got, path, NULL), 0);
    assert_memory_equal(got, want, 32);
}

static void test_load_file_loose_perms(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606, 0666, 0610, 0601, 0620, 0602};
    uint8_t key[32], got[32];
    char b64[UM_KEY_B64_LEN + 1], path[128];
    um_key_generate(key);
    um_key_to_b64(b64, key);
    snprintf(path, sizeof(path), "%s/loose.key", g_dir);
    for (size_t i = 0; i < N(modes); i++) {
        write_file(path, b64, strlen(b64), modes[i]);
        int loose = -1;
        memset(got, 0, sizeof(got));
        /* the key still loads; the caller decides how loudly to warn */
        assert_int_equal(um_key_load_file(got, path, &loose), 0);
        if (loose != 1) fail_msg("mode %04o not flagged (loose=%d)", (unsigned)modes[i], loose);
        assert_memory_equal(got, key, 32);
    }
}

static void test_load_file_errors(void **state)
{
    uint8_t got[32];
    char path[128];
    int loose;

    /* missing */
    snprintf(path, sizeof(path), "%s/does-not-exist.key", g_dir);
    assert_int_equal(um_key_load_file(got, path, &loose), UM_ENOENT);
    snprintf(path, sizeof(path), "%s/no/such/dir.key", g_dir);
    assert_int_equal(um_key_load_file(got, path, &loose), UM_ENOENT);

    /* a directory is not a key file */
    assert_int_equal(um_key_load_file(got, g_dir, &loose), UM_EIO);

    /* garbage */
    static const struct {
        const char *what;
        const char *text;
        size_t n;
    } garbage[] = {
        {"empty", S("")},
        {"newline only", S("\n")},
        {"words", S("not a key\n")},
        {"short", S("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC=\n")},
        {"hex", S("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a\n")},
        {"two lines", S("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\nsecond\n")},
        {"binary", S("\x00\x01\x02\xff\xfe\x80\x7f\n")},
        {"config line", S("PrivateKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n")},
    };
    snprintf(path, sizeof(path), "%s/garbage.key", g_dir);
    for (size_t i = 0; i < N(garbage); i++) {
        write_file(path, garbage[i].text, garbage[i].n, 0600);
        int r = um_key_load_file(got, path, &loose);
        if (r != UM_EINVAL) fail_msg("%s: got %d, want UM_EINVAL", garbage[i].what, r);
    }
    /* large junk */
    char big[4096];
    memset(big, 'A', sizeof(big));
    write_file(path, big, sizeof(big), 0600);
    assert_int_equal(um_key_load_file(got, path, &loose), UM_EINVAL);
    /* 32 raw bytes are not the text form */
    uint8_t raw[32];
    randombytes_buf(raw, sizeof(raw));
    write_file(path, raw, sizeof(raw), 0600);
    assert_int_equal(um_key_load_file(got, path, &loose), UM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7748_vectors),
        cmocka_unit_test(test_generate_clamped),
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_roundtrip_whitespace),
        cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_load_file_good),
        cmocka_unit_test(test_load_file_loose_perms),
        cmocka_unit_test(test_load_file_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
