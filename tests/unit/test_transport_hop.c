/* Port hopping derivation (docs/PROTOCOL.md, "Port hopping") against
 * vectors computed independently with Python's hashlib and hmac:
 *
 *   import hmac, hashlib, struct
 *   def val(key, slot):
 *       m = hmac.new(key, struct.pack('>Q', slot), hashlib.sha256).digest()
 *       o = m[31] & 15
 *       return struct.unpack('>I', m[o:o+4])[0] & 0x7fffffff
 *   hk = hashlib.blake2b(b"umbra/1 port hopping", key=bytes(range(32)),
 *                        digest_size=32).digest()
 *   [(s, 20000 + val(hk, s) % 20001, 1 + val(hk, s) % 65535)
 *    for s in (0, 1, 2, 28928000, 2**32 + 5, 2**63)]
 *
 * and the HMAC-SHA-256 HOTP core against RFC 6238 appendix B (TOTP is HOTP
 * over floor(T / 30); 8 digits = value mod 10^8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "transport/hop.h"

static void test_rfc6238_sha256(void **state)
{
    (void)state;
    const uint8_t *key = (const uint8_t *)"12345678901234567890123456789012";
    static const struct {
        uint64_t t;
        uint32_t totp;
    } v[] = {{59, 46119246},         {1111111109, 68084774}, {1111111111, 67062674},
             {1234567890, 91819424}, {2000000000, 90698825}, {20000000000ull, 77737706}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(um_hop_value(key, v[i].t / 30) % 100000000u, v[i].totp);
}

static void test_key_and_ports(void **state)
{
    (void)state;
    uint8_t pub[32], key[32], want[32];
    for (int i = 0; i < 32; i++)
        pub[i] = (uint8_t)i;
    um_hop_key(pub, key);
    assert_int_equal(
        sodium_hex2bin(want, 32,
                       "b0a89c288363914af229e0306b6218e20da632b2f068f4774f616a50c7fb06e"
                       "c",
                       64, NULL, NULL, NULL),
        0);
    assert_memory_equal(key, want, 32);
    static const struct {
        uint64_t slot;
        uint16_t p20000_40000, p1_65535;
    } v[] = {{0, 30970, 51921},
             {1, 35345, 2419},
             {2, 21335, 46567},
             {28928000, 31304, 13801},
             {4294967301ull, 24597, 12914},
             {9223372036854775808ull, 25530, 12143}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(um_hop_port(key, v[i].slot, 20000, 40000), v[i].p20000_40000);
        assert_int_equal(um_hop_port(key, v[i].slot, 1, 65535), v[i].p1_65535);
    }
    /* A one-port range, and a reversed one, give lo. */
    assert_int_equal(um_hop_port(key, 7, 443, 443), 443);
    assert_int_equal(um_hop_port(key, 7, 500, 400), 500);
}

static void test_slot(void **state)
{
    (void)state;
    assert_int_equal(um_hop_slot(0, 60000), 0);
    assert_int_equal(um_hop_slot(59999, 60000), 0);
    assert_int_equal(um_hop_slot(60000, 60000), 1);
    assert_int_equal(um_hop_slot(1700000000123ull, 2000), 850000000);
    assert_int_equal(um_hop_slot(UINT64_MAX, 1), UINT64_MAX);
    assert_int_equal(um_hop_slot(12345, 0), 0);
}

/* Ports stay in range and spread over it: over 20000 slots of a 100-port
 * range every port is hit, none more than twice its share (expected 200
 * each; a binomial(20000, 0.01) above 400 has probability far below 1e-30),
 * and consecutive slots differ most of the time. */
static void test_range_and_spread(void **state)
{
    (void)state;
    uint8_t pub[32], key[32];
    randombytes_buf(pub, sizeof(pub));
    um_hop_key(pub, key);
    unsigned count[100] = {0}, same = 0;
    uint16_t prev = 0;
    for (uint64_t s = 0; s < 20000; s++) {
        uint16_t p = um_hop_port(key, 1000000 + s, 30000, 30099);
        assert_true(p >= 30000 && p <= 30099);
        count[p - 30000]++;
        if (s && p == prev) same++;
        prev = p;
    }
    for (int i = 0; i < 100; i++) {
        if (count[i] < 100 || count[i] > 400)
            fail_msg("port %d hit %u times of 20000", 30000 + i, count[i]);
    }
    assert_true(same < 600); /* expected 200 */
    /* The full range: both ends reachable in a small range, never outside. */
    bool lo_hit = false, hi_hit = false;
    for (uint64_t s = 0; s < 1000; s++) {
        uint16_t p = um_hop_port(key, s, 65533, 65535);
        assert_true(p >= 65533);
        lo_hit |= p == 65533;
        hi_hit |= p == 65535;
    }
    assert_true(lo_hit && hi_hit);
    /* Another server's key gives other ports. */
    uint8_t key2[32];
    pub[0] ^= 1;
    um_hop_key(pub, key2);
    unsigned differ = 0;
    for (uint64_t s = 0; s < 100; s++)
        differ += um_hop_port(key, s, 20000, 40000) != um_hop_port(key2, s, 20000, 40000);
    assert_true(differ > 90);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6238_sha256),
        cmocka_unit_test(test_key_and_ports),
        cmocka_unit_test(test_slot),
        cmocka_unit_test(test_range_and_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
