/* Signed server lists: sign and verify, every flipped byte refused, expiry,
 * versions, operators, malformed input with its line, bounds, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/srvlist.h"
#include "util/err.h"

#define SPUB1 "7Zlb6_JjeDRbmkyeVOGX4Hy-Xz8OeC44gI3YzFNkhRM"
#define SPUB2 "wMef0tDhAISkLnRzp_2SXKAGpRSgQuepdvX4Y6kKIGA"

static const char body[] =
    "umbra-server-list 1\n"
    "version 7\n"
    "expires 2030-01-31T12:00:00Z\n"
    "server umbra://" SPUB1 "@192.0.2.1:443#one\n"
    "server umbra://" SPUB2 "@vps.example:8443,[2001:db8::1]:443?t=tls&sni=www.example.com\n";

#define T2030 1896091200 /* 2030-01-31T12:00:00Z */

static uint8_t seed[32], pub[32];

static uint8_t *sign_body(const char *b, size_t *n)
{
    uint8_t *out;
    char err[256];
    int r = um_srvlist_sign((const uint8_t *)b, strlen(b), seed, &out, n, err, sizeof(err));
    if (r != 0) fail_msg("sign: %s", err);
    return out;
}

static void test_sign_verify(void **state)
{
    (void)state;
    size_t n;
    uint8_t *s = sign_body(body, &n);
    um_srvlist_t l;
    char err[256];
    assert_int_equal(um_srvlist_check(&l, s, n, pub, 7, T2030 - 1, err, sizeof(err)),
                     UM_SRVLIST_OK);
    assert_int_equal(l.version, 7);
    assert_int_equal(l.expires, T2030);
    assert_string_equal(l.expires_text, "2030-01-31T12:00:00Z");
    assert_int_equal(l.n_servers, 2);
    assert_string_equal(l.servers[0].name, "one");
    assert_int_equal(l.servers[1].n_addrs, 2);
    assert_int_equal(l.servers[1].transport, UM_TR_TLS);
    assert_memory_equal(l.operator_key, pub, 32);
    assert_int_equal(l.signed_len, n - 97);
    /* The signed text is the body, then the two lines. */
    assert_memory_equal(s, body, strlen(body));
    assert_memory_equal(s + strlen(body), "operator ", 9);
    assert_memory_equal(s + n - 97, "signature ", 10);
    um_srvlist_free(&l);
    free(s);
}

static void test_every_flipped_byte_refused(void **state)
{
    (void)state;
    size_t n;
    uint8_t *s = sign_body(body, &n);
    char err[256];
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            um_srvlist_t l;
            s[i] ^= (uint8_t)(1u << bit);
            um_srvlist_status_t st = um_srvlist_check(&l, s, n, pub, 0, 0, err, sizeof(err));
            if (st == UM_SRVLIST_OK) fail_msg("byte %zu bit %d flipped: accepted", i, bit);
            um_srvlist_free(&l);
            s[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* A byte cut off or added anywhere too. */
    for (size_t k = 0; k < n; k++) {
        um_srvlist_t l;
        assert_int_not_equal(um_srvlist_check(&l, s, k, pub, 0, 0, err, sizeof(err)),
                             UM_SRVLIST_OK);
        um_srvlist_free(&l);
    }
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, s, n);
    longer[n] = '\n';
    um_srvlist_t l;
    assert_int_equal(um_srvlist_check(&l, longer, n + 1, pub, 0, 0, err, sizeof(err)),
                     UM_SRVLIST_MALFORMED);
    assert_string_equal(err, "line 8: text after the signature line");
    um_srvlist_free(&l);
    free(longer);
    free(s);
}

static void test_expired_older_operator(void **state)
{
    (void)state;
    size_t n;
    uint8_t *s = sign_body(body, &n);
    um_srvlist_t l;
    char err[256];
    assert_int_equal(um_srvlist_check(&l, s, n, pub, 0, T2030, err, sizeof(err)),
                     UM_SRVLIST_EXPIRED);
    assert_string_equal(err, "version 7 expired at 2030-01-31T12:00:00Z");
    assert_string_equal(um_srvlist_reason(UM_SRVLIST_EXPIRED), "expired");
    um_srvlist_free(&l);
    assert_int_equal(um_srvlist_check(&l, s, n, pub, 8, 0, err, sizeof(err)), UM_SRVLIST_OLDER);
    assert_string_equal(err, "version 7 is older than version 8 already accepted");
    assert_string_equal(um_srvlist_reason(UM_SRVLIST_OLDER), "older version");
    um_srvlist_free(&l);
    uint8_t other[32];
    memcpy(other, pub, 32);
    other[5] ^= 1;
    assert_int_equal(um_srvlist_check(&l, s, n, other, 0, 0, err, sizeof(err)),
                     UM_SRVLIST_UNKNOWN_OPERATOR);
    um_srvlist_free(&l);
    assert_int_equal(um_srvlist_check(&l, s, n, NULL, 0, 0, err, sizeof(err)),
                     UM_SRVLIST_UNKNOWN_OPERATOR);
    assert_string_equal(um_srvlist_reason(UM_SRVLIST_UNKNOWN_OPERATOR), "unknown operator");
    um_srvlist_free(&l);
    /* Signed by another key that claims ours: bad signature. */
    uint8_t seed2[32], *s2, pub2[32];
    size_t n2;
    char e2[256];
    memcpy(seed2, seed, 32);
    seed2[0] ^= 1;
    assert_int_equal(
        um_srvlist_sign((const uint8_t *)body, strlen(body), seed2, &s2, &n2, e2, sizeof(e2)), 0);
    um_sign_public(pub2, seed2);
    char k1[48], k2[48];
    sodium_bin2base64(k1, sizeof(k1), pub, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(k2, sizeof(k2), pub2, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *at = strstr((char *)s2, k2);
    assert_non_null(at);
    memcpy(at, k1, 43);
    assert_int_equal(um_srvlist_check(&l, s2, n2, pub, 0, 0, err, sizeof(err)),
                     UM_SRVLIST_BAD_SIGNATURE);
    assert_string_equal(um_srvlist_reason(UM_SRVLIST_BAD_SIGNATURE), "bad signature");
    um_srvlist_free(&l);
    free(s2);
    free(s);
}

static void test_malformed_lines(void **state)
{
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"", "line 1: empty (expected 'umbra-server-list 1')"},
        {"umbra-server-list 2\n", "line 1: format 'umbra-server-list 2' is newer than this umbra "
                                  "understands ('umbra-server-list 1')"},
        {"hello\n", "line 1: expected the format tag 'umbra-server-list 1'"},
        {"umbra-server-list 1\n", "line 2: missing 'version N' line"},
        {"umbra-server-list 1\r\n", "line 1: carriage return (lines end with LF alone)"},
        {"umbra-server-list 1\nversion 01\n", "line 2: expected 'version N' (N a whole number "
                                              "below 2^64, no leading zero)"},
        {"umbra-server-list 1\nversion 18446744073709551616\n",
         "line 2: expected 'version N' (N a whole number below 2^64, no leading zero)"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-02-30T00:00:00Z\n",
         "line 3: expected 'expires YYYY-MM-DDTHH:MM:SSZ' (RFC 3339, UTC, e.g. "
         "2027-01-31T00:00:00Z)"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00+01:00\n",
         "line 3: expected 'expires YYYY-MM-DDTHH:MM:SSZ' (RFC 3339, UTC, e.g. "
         "2027-01-31T00:00:00Z)"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\n\n", "line 4: empty line"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\nserver x\n",
         "line 4: server link: at character 1: a link starts with 'umbra://'"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\nserver umbra://" SPUB1
         "@1.2.3.4:1?k=" SPUB2 "\n",
         "line 4: server link: at character 63: parameter 'k' (a client's private key) has no "
         "place here"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\nserver umbra://" SPUB1
         "@1.2.3.4:1\xc3\xa9\n",
         "line 4: control or non-ASCII byte at column 69"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\nserver umbra://" SPUB1
         "@1.2.3.4:1",
         "line 4: no newline (LF) at the end of the line"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\n",
         "line 4: missing 'operator' line (the list is not signed)"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\nfoo bar\n",
         "line 4: expected 'server <umbra link>' or 'operator <key>', not 'foo'"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\noperator " SPUB1 "\n",
         "line 5: missing 'signature' line (the list is not signed)"},
        {"umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\noperator " SPUB1
         "\nsignature abc\n",
         "line 5: expected 'signature <86-character base64url Ed25519 signature>'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        um_srvlist_t l;
        char err[512] = "";
        size_t n = strlen(cases[i].text);
        if (um_srvlist_parse(&l, (const uint8_t *)cases[i].text, n, true, err, sizeof(err)) !=
            UM_EINVAL)
            fail_msg("case %zu parsed", i);
        if (strcmp(err, cases[i].err) != 0) fail_msg("case %zu: got '%s'", i, err);
        assert_null(l.servers);
        um_srvlist_free(&l);
    }
    /* The unsigned text refuses the lines signing adds. */
    um_srvlist_t l;
    char err[256];
    const char *t = "umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\noperator x\n";
    assert_int_equal(um_srvlist_parse(&l, (const uint8_t *)t, strlen(t), false, err, sizeof(err)),
                     UM_EINVAL);
    assert_string_equal(err, "line 4: 'operator' line in the unsigned text ('umbra list sign' "
                             "adds it)");
    /* Signing refuses a malformed body, and adds a missing final LF. */
    uint8_t *out;
    size_t on;
    assert_int_equal(um_srvlist_sign((const uint8_t *)"x", 1, seed, &out, &on, err, sizeof(err)),
                     UM_EINVAL);
    assert_null(out);
    t = "umbra-server-list 1\nversion 3\nexpires 2030-01-01T00:00:00Z";
    assert_int_equal(
        um_srvlist_sign((const uint8_t *)t, strlen(t), seed, &out, &on, err, sizeof(err)), 0);
    assert_int_equal(um_srvlist_check(&l, out, on, pub, 0, 0, err, sizeof(err)), UM_SRVLIST_OK);
    assert_int_equal(l.n_servers, 0);
    um_srvlist_free(&l);
    free(out);
}

static void test_bounds(void **state)
{
    (void)state;
    char *b = malloc(UM_SRVLIST_MAX_BYTES + 256);
    size_t o = (size_t)sprintf(b, "umbra-server-list 1\nversion 1\nexpires 2030-01-01T00:00:00Z\n");
    uint8_t key[32];
    char kt[48], err[256];
    size_t last = 0;
    for (int i = 0; i < UM_SRVLIST_MAX_SERVERS + 1; i++) {
        last = o;
        randombytes_buf(key, 32);
        sodium_bin2base64(kt, sizeof(kt), key, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        o += (size_t)sprintf(b + o, "server umbra://%s@10.0.%d.%d:443\n", kt, i / 256, i % 256);
    }
    um_srvlist_t l;
    assert_int_equal(um_srvlist_parse(&l, (const uint8_t *)b, o, false, err, sizeof(err)),
                     UM_EINVAL);
    assert_string_equal(err, "line 260: more than 256 servers");
    /* 256 are fine. */
    assert_int_equal(um_srvlist_parse(&l, (const uint8_t *)b, last, false, err, sizeof(err)), 0);
    assert_int_equal(l.n_servers, 256);
    um_srvlist_free(&l);
    /* Larger than 64 KiB: refused before anything else. */
    memset(b, 'a', UM_SRVLIST_MAX_BYTES + 1);
    assert_int_equal(
        um_srvlist_parse(&l, (const uint8_t *)b, UM_SRVLIST_MAX_BYTES + 1, true, err, sizeof(err)),
        UM_EINVAL);
    assert_string_equal(err, "line 1: list larger than 65536 bytes");
    free(b);
}

static void test_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(um_srvlist_parse_time(&t, "1970-01-01T00:00:00Z", 20), 0);
    assert_int_equal(t, 0);
    assert_int_equal(um_srvlist_parse_time(&t, "2000-02-29T23:59:59Z", 20), 0);
    assert_int_equal(t, 951868799);
    assert_int_equal(um_srvlist_parse_time(&t, "2030-01-31T12:00:00Z", 20), 0);
    assert_int_equal(t, T2030);
    assert_int_equal(um_srvlist_parse_time(&t, "2100-02-29T00:00:00Z", 20), UM_EINVAL);
    assert_int_equal(um_srvlist_parse_time(&t, "2024-13-01T00:00:00Z", 20), UM_EINVAL);
    assert_int_equal(um_srvlist_parse_time(&t, "2024-01-01T24:00:00Z", 20), UM_EINVAL);
    assert_int_equal(um_srvlist_parse_time(&t, "2024-01-01t00:00:00Z", 20), UM_EINVAL);
    assert_int_equal(um_srvlist_parse_time(&t, "1969-12-31T23:59:59Z", 20), UM_EINVAL);
}

static void test_merge(void **state)
{
    (void)state;
    size_t n, added;
    uint8_t *s = sign_body(body, &n);
    um_srvlist_t l;
    char err[256];
    assert_int_equal(um_srvlist_check(&l, s, n, pub, 0, 0, err, sizeof(err)), UM_SRVLIST_OK);
    um_config_t c;
    um_config_init(&c);
    c.role = UM_ROLE_CLIENT;
    /* A configured server with the first list entry's key and the name "one". */
    c.n_servers = 1;
    snprintf(c.servers[0].name, sizeof(c.servers[0].name), "one");
    assert_int_equal(sodium_base642bin(c.servers[0].public_key, 32, SPUB2, 43, NULL, NULL, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    c.servers[0].has_public_key = true;
    assert_int_equal(um_srvlist_merge(&c, &l, &added), 0);
    assert_int_equal(added, 1); /* the second entry's key is known */
    assert_int_equal(c.n_servers, 2);
    assert_string_equal(c.servers[1].name, "list-1"); /* "one" is taken */
    assert_true(c.servers[1].has_operator_key);
    assert_memory_equal(c.servers[1].operator_key, pub, 32);
    const um_transport_cfg_t *t = um_config_transport(&c, c.servers[1].transport);
    assert_non_null(t);
    assert_int_equal(t->type, UM_TR_TCP);
    /* Merging again adds nothing. */
    assert_int_equal(um_srvlist_merge(&c, &l, &added), 0);
    assert_int_equal(added, 0);
    assert_int_equal(c.n_servers, 2);
    /* A full table: UM_ENOSPC. */
    c.n_servers = UM_CFG_MAX_SERVERS;
    for (size_t i = 2; i < UM_CFG_MAX_SERVERS; i++) {
        snprintf(c.servers[i].name, sizeof(c.servers[i].name), "s%zu", i);
        c.servers[i].has_public_key = false;
    }
    memset(c.servers[0].public_key, 0, 32);
    assert_int_equal(um_srvlist_merge(&c, &l, &added), UM_ENOSPC);
    assert_int_equal(added, 0);
    um_config_free(&c);
    um_srvlist_free(&l);
    free(s);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    randombytes_buf(seed, sizeof(seed));
    um_sign_public(pub, seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_every_flipped_byte_refused),
        cmocka_unit_test(test_expired_older_operator),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
