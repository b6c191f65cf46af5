/* umbra:// links: round trip, canonical form, and precise errors that never
 * show the client's key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "app/link.h"
#include "crypto/keys.h"
#include "util/err.h"

#define SPUB "7Zlb6_JjeDRbmkyeVOGX4Hy-Xz8OeC44gI3YzFNkhRM"
#define CKEY "wMef0tDhAISkLnRzp_2SXKAGpRSgQuepdvX4Y6kKIGA"

static void test_roundtrip_random(void **state)
{
    (void)state;
    for (int i = 0; i < 500; i++) {
        um_link_t a, b;
        memset(&a, 0, sizeof(a));
        randombytes_buf(a.server_public_key, 32);
        randombytes_buf(a.client_private_key, 32);
        a.n_addrs = 1 + randombytes_uniform(UM_CFG_MAX_ADDRS);
        for (size_t k = 0; k < a.n_addrs; k++) {
            um_addr_t *ad = &a.addrs[k];
            ad->port = (uint16_t)(1 + randombytes_uniform(65535));
            switch (randombytes_uniform(3)) {
            case 0:
                ad->type = UM_ADDR_IPV4;
                randombytes_buf(ad->u.v4, 4);
                break;
            case 1:
                ad->type = UM_ADDR_IPV6;
                randombytes_buf(ad->u.v6, 16);
                break;
            default:
                ad->type = UM_ADDR_DOMAIN;
                ad->domain_len = (uint8_t)snprintf(ad->u.domain, sizeof(ad->u.domain),
                                                   "h%u.example", randombytes_uniform(100000));
            }
        }
        a.padding = (uint8_t)randombytes_uniform(2);
        if (randombytes_uniform(2)) {
            a.transport = UM_TR_TLS;
            snprintf(a.sni, sizeof(a.sni), "s%u.x-y.example", randombytes_uniform(100000));
            a.fingerprint = (uint8_t)randombytes_uniform(UM_TLS_FP_MAX + 1);
        } else {
            a.shape = (uint8_t)randombytes_uniform(4);
            if (randombytes_uniform(2)) {
                a.hop_lo = (uint16_t)(1 + randombytes_uniform(65535));
                a.hop_hi = (uint16_t)(a.hop_lo + randombytes_uniform(65536u - a.hop_lo));
                a.hop_ms = randombytes_uniform(2) ? 60000 : 1000 + randombytes_uniform(3599001);
            }
        }
        if ((a.rotate_set = randombytes_uniform(2)) && randombytes_uniform(4)) {
            a.rotate_min = 4096 + randombytes_uniform(1u << 20);
            a.rotate_max = a.rotate_min + randombytes_uniform(1u << 20);
        }
        if ((a.rotate_after_set = randombytes_uniform(2)) && randombytes_uniform(4)) {
            a.rotate_after_min_ms = 1000 + randombytes_uniform(600000);
            a.rotate_after_max_ms = a.rotate_after_min_ms + randombytes_uniform(600000);
        }
        /* Names with characters that need escaping. */
        for (size_t k = 0, n = randombytes_uniform(UM_NAME_MAX + 1); k < n; k++)
            a.name[k] = (char)(0x20 + randombytes_uniform(0x5f));
        char s[UM_LINK_MAX], err[256] = "";
        assert_int_equal(um_link_encode(&a, s, sizeof(s)), 0);
        if (um_link_decode(&b, s, strlen(s), err, sizeof(err)) != 0)
            fail_msg("decode of own encoding failed: %s: %s", err, s);
        assert_memory_equal(a.server_public_key, b.server_public_key, 32);
        assert_memory_equal(a.client_private_key, b.client_private_key, 32);
        assert_int_equal(a.n_addrs, b.n_addrs);
        for (size_t k = 0; k < a.n_addrs; k++)
            assert_true(um_addr_equal(&a.addrs[k], &b.addrs[k]));
        assert_string_equal(a.name, b.name);
        assert_int_equal(a.shape, b.shape);
        assert_int_equal(a.padding, b.padding);
        assert_int_equal(a.transport, b.transport);
        assert_string_equal(a.sni, b.sni);
        assert_int_equal(a.fingerprint, b.fingerprint);
        assert_int_equal(a.hop_lo, b.hop_lo);
        assert_int_equal(a.hop_hi, b.hop_hi);
        assert_int_equal(a.hop_ms, b.hop_ms);
        assert_int_equal(a.rotate_set, b.rotate_set);
        assert_int_equal(a.rotate_min, b.rotate_min);
        assert_int_equal(a.rotate_max, b.rotate_max);
        assert_int_equal(a.rotate_after_set, b.rotate_after_set);
        assert_int_equal(a.rotate_after_min_ms, b.rotate_after_min_ms);
        assert_int_equal(a.rotate_after_max_ms, b.rotate_after_max_ms);
        char s2[UM_LINK_MAX];
        assert_int_equal(um_link_encode(&b, s2, sizeof(s2)), 0);
        assert_string_equal(s, s2);
    }
}

static void test_decode_known(void **state)
{
    (void)state;
    const char *s = "umbra://" SPUB "@vps.example:443,[2001:db8::1]:8443/?k=" CKEY
                    "&shape=http&pad=none&v=1&t=tcp#my%20laptop";
    um_link_t l;
    char err[256] = "";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.n_addrs, 2);
    assert_int_equal(l.addrs[0].type, UM_ADDR_DOMAIN);
    assert_string_equal(l.addrs[0].u.domain, "vps.example");
    assert_int_equal(l.addrs[1].type, UM_ADDR_IPV6);
    assert_int_equal(l.addrs[1].port, 8443);
    assert_int_equal(l.shape, UM_SHAPE_HTTP);
    assert_int_equal(l.padding, UM_CFG_PAD_NONE);
    assert_string_equal(l.name, "my laptop");
    /* Config built from a link. */
    um_config_t c;
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.role, UM_ROLE_CLIENT);
    assert_int_equal(c.n_servers, 1);
    assert_int_equal(c.servers[0].n_addrs, 2);
    assert_memory_equal(c.private_key, l.client_private_key, 32);
    assert_int_equal(um_config_transport(&c, c.servers[0].transport)->shape, UM_SHAPE_HTTP);
    um_config_free(&c);
    um_link_wipe(&l);
    uint8_t zero[32] = {0};
    assert_memory_equal(l.client_private_key, zero, 32);
}

static void test_tls_links(void **state)
{
    (void)state;
    um_link_t l;
    char err[256] = "", out[UM_LINK_MAX];
    /* Parameters in any order, sni case-folded; the canonical form puts
     * t, sni and fp after k, and fp only when not chromium. */
    const char *s =
        "umbra://" SPUB "@192.0.2.1:443?fp=firefox&sni=WWW.Example.com&k=" CKEY "&t=tls&pad=none#x";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.transport, UM_TR_TLS);
    assert_string_equal(l.sni, "www.example.com");
    assert_int_equal(l.fingerprint, UM_TLS_FP_FIREFOX);
    assert_int_equal(l.padding, UM_CFG_PAD_NONE);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, "umbra://" SPUB "@192.0.2.1:443?k=" CKEY
                             "&t=tls&sni=www.example.com&fp=firefox&pad=none#x");
    /* The config a link makes carries the tls fields. */
    um_config_t c;
    um_config_init(&c);
    um_config_from_link(&c, &l);
    const um_transport_cfg_t *t = um_config_transport(&c, c.servers[0].transport);
    assert_non_null(t);
    assert_int_equal(t->type, UM_TR_TLS);
    assert_string_equal(t->sni, "www.example.com");
    assert_int_equal(t->fingerprint, UM_TLS_FP_FIREFOX);
    assert_int_equal(um_config_validate(&c, err, sizeof(err)), 0);
    um_config_free(&c);
    um_link_wipe(&l);

    /* chromium is the default: fp=chromium decodes, and is not written. */
    s = "umbra://" SPUB "@h.example:443?k=" CKEY "&t=tls&sni=h.example&fp=chromium";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.fingerprint, UM_TLS_FP_CHROMIUM);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, "umbra://" SPUB "@h.example:443?k=" CKEY "&t=tls&sni=h.example");
    /* A percent-escaped sni decodes; the longest one fits. */
    char longsni[UM_DOMAIN_MAX + 1], big[UM_LINK_MAX];
    for (size_t i = 0; i < UM_DOMAIN_MAX; i++)
        longsni[i] = (i % 2) ? '.' : 'a';
    longsni[UM_DOMAIN_MAX] = '\0';
    snprintf(big, sizeof(big), "umbra://" SPUB "@h.example:443?k=" CKEY "&t=tls&sni=%s", longsni);
    assert_int_equal(um_link_decode(&l, big, strlen(big), err, sizeof(err)), 0);
    assert_string_equal(l.sni, longsni);
    s = "umbra://" SPUB "@h.example:443?k=" CKEY "&t=tls&sni=h%2Eexample";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_string_equal(l.sni, "h.example");
    /* The encoder refuses a tls link without a valid sni. */
    l.sni[0] = '\0';
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), UM_EINVAL);
    um_link_wipe(&l);
}

static const struct {
    const char *link;
    const char *want;
} bad[] = {
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls",
     "at character 111: t=tls needs parameter 'sni'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a_b.example",
     "at character 121: sni 'a_b.example' is not a DNS host name"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=1.2.3.4", "sni '1.2.3.4' is not a DNS"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=-a.example", "sni '-a.example'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a.example.", "sni 'a.example.'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=", "sni '' is not"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a.b&sni=a.b", "'sni' given twice"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a.b&fp=safari",
     "at character 128: fp 'safari' (expected chromium or firefox)"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a.b&fp=firefox&fp=firefox",
     "'fp' given twice"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a.b&shape=http",
     "at character 125: parameter 'shape' is for t=tcp only"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&shape=none&t=tls&sni=a.b",
     "at character 111: parameter 'shape' is for t=tcp only"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&sni=a.b",
     "at character 111: parameter 'sni' needs t=tls"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tcp&fp=firefox",
     "at character 117: parameter 'fp' needs t=tls"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=quic", "transport 'quic' is not supported"},
    {"", "starts with 'umbra://'"},
    {"http://x", "starts with 'umbra://'"},
    {"umbra://", "expected '<server-public-key>@<address>'"},
    {"umbra://abc@h.example:1?k=" CKEY, "server public key 'abc'"},
    {"umbra://" SPUB "@?k=" CKEY, "missing server address"},
    {"umbra://" SPUB "@h.example?k=" CKEY, "missing ':port'"},
    {"umbra://" SPUB "@h.example:0?k=" CKEY, "port must be"},
    {"umbra://" SPUB "@::1:443?k=" CKEY, "brackets"},
    {"umbra://" SPUB "@h.example:1,?k=" CKEY, "empty address"},
    {"umbra://" SPUB "@h.example:1", "missing parameter 'k'"},
    {"umbra://" SPUB "@h.example:1?k=short", "client key 'k'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&k=" CKEY, "given twice"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=ws", "t=ws needs"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&shape=odd", "shape 'odd'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&pad=x", "pad 'x'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&v=2", "newer than"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&zz=1", "unknown parameter 'zz'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&novalue", "without '=value'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&", "empty parameter"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "#a%2", "bad %-escape"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "#a%0A", "control character"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "#a b", "space"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY
     "#aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "longer than 63"},
    {"umbra://" SPUB "@h.example:1:2?k=" CKEY, "brackets"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&ports=20000", "ports '20000' (expected a port range"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&ports=2-1", "ports '2-1'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&ports=1-2&ports=1-2", "'ports' given twice"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&hop=10s",
     "at character 111: parameter 'hop' needs 'ports'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&ports=1-2&hop=0s", "hop '0s' (expected a slot"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&ports=1-2&hop=2h", "hop '2h'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&ports=1-2&hop=1s&hop=1s", "'hop' given twice"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=a.b&ports=1-2",
     "at character 125: parameter 'ports' is for t=tcp only"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&rot=1k", "rot '1k' (expected bytes per connection"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&rot=16k-12k", "rot '16k-12k'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&rot=off&rot=off", "'rot' given twice"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&rta=500ms", "at character 115: rta '500ms'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&rta=30s-5x", "rta '30s-5x'"},
    {"umbra://" SPUB "@h.example:1?k=" CKEY "&rta=1m&rta=1m", "'rta' given twice"},
};

static void test_bad_links(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        um_link_t l;
        char err[256] = "";
        if (um_link_decode(&l, bad[i].link, strlen(bad[i].link), err, sizeof(err)) == 0)
            fail_msg("case %zu accepted: %s", i, bad[i].link);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].want);
        assert_non_null(strstr(err, "at character "));
        assert_null(strstr(err, CKEY)); /* the secret is never echoed */
    }
}

static void test_encode_small_buffer(void **state)
{
    (void)state;
    um_link_t l;
    memset(&l, 0, sizeof(l));
    l.n_addrs = 1;
    um_addr_parse(&l.addrs[0], "h.example:1", 11, 0, NULL, 0);
    char s[40];
    assert_int_equal(um_link_encode(&l, s, sizeof(s)), UM_ENOSPC);
    assert_string_equal(s, "");
}

/* ports, hop, rot and rta: decoding, the canonical order, the config a link
 * makes (tls: rotate-after 5m-20m unless rta is given), add-client's kind of
 * link, and the encoder's refusals. */
static void test_rotation_hop_links(void **state)
{
    (void)state;
    um_link_t l;
    char err[256] = "", out[UM_LINK_MAX];
    const char *s = "umbra://" SPUB "@192.0.2.1:443?rta=30s-5m&hop=2s&k=" CKEY
                    "&rot=12k-16k&ports=20000-40000&shape=http#h";
    if (um_link_decode(&l, s, strlen(s), err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(l.hop_lo, 20000);
    assert_int_equal(l.hop_hi, 40000);
    assert_int_equal(l.hop_ms, 2000);
    assert_true(l.rotate_set && l.rotate_after_set);
    assert_int_equal(l.rotate_min, 12288);
    assert_int_equal(l.rotate_max, 16384);
    assert_int_equal(l.rotate_after_min_ms, 30000);
    assert_int_equal(l.rotate_after_max_ms, 300000);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, "umbra://" SPUB "@192.0.2.1:443?k=" CKEY
                             "&shape=http&ports=20000-40000&hop=2s&rot=12k-16k&rta=30s-5m#h");
    um_config_t c;
    um_config_init(&c);
    um_config_from_link(&c, &l);
    const um_peer_server_t *ps = &c.servers[0];
    const um_transport_cfg_t *t = um_config_transport(&c, ps->transport);
    assert_int_equal(t->hop_lo, 20000);
    assert_int_equal(t->hop_hi, 40000);
    assert_int_equal(t->hop_ms, 2000);
    assert_int_equal(ps->rotate_min, 12288);
    assert_int_equal(ps->rotate_max, 16384);
    assert_int_equal(ps->rotate_after_min_ms, 30000);
    assert_int_equal(ps->rotate_after_max_ms, 300000);
    assert_int_equal(ps->max_connections, 6);
    assert_true(ps->rotate_set && ps->rotate_after_set);
    assert_int_equal(um_config_validate(&c, err, sizeof(err)), 0);
    um_config_free(&c);
    um_link_wipe(&l);

    /* ports alone: hop 60s, not written back; rot=off is kept (explicit). */
    s = "umbra://" SPUB "@h.example:1?k=" CKEY "&ports=1000-1000&hop=60s&rot=off&rta=0";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.hop_ms, 60000);
    assert_true(l.rotate_set && l.rotate_min == 0 && l.rotate_max == 0);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out,
                        "umbra://" SPUB "@h.example:1?k=" CKEY "&ports=1000-1000&rot=off&rta=off");
    um_link_wipe(&l);

    /* tls: rotate-after defaults to 5m-20m, rta overrides it. */
    s = "umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=h.example";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_false(l.rotate_after_set);
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.servers[0].rotate_after_min_ms, 300000);
    assert_int_equal(c.servers[0].rotate_after_max_ms, 1200000);
    assert_int_equal(c.servers[0].rotate_min, 0);
    um_config_free(&c);
    s = "umbra://" SPUB "@h.example:1?k=" CKEY "&t=tls&sni=h.example&rta=off";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.servers[0].rotate_after_min_ms, 0);
    assert_int_equal(c.servers[0].rotate_after_max_ms, 0);
    um_config_free(&c);
    /* tcp without rta: rotation off. */
    s = "umbra://" SPUB "@h.example:1?k=" CKEY;
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.servers[0].rotate_after_max_ms, 0);
    assert_int_equal(c.servers[0].rotate_max, 0);
    um_config_free(&c);

    /* The encoder refuses what the decoder would. */
    memset(&l, 0, sizeof(l));
    l.n_addrs = 1;
    um_addr_parse(&l.addrs[0], "h.example:1", 11, 0, NULL, 0);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    l.hop_lo = 2;
    l.hop_hi = 1;
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), UM_EINVAL);
    l.hop_hi = 3;
    l.hop_ms = 500;
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), UM_EINVAL);
    l.hop_ms = 0;
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    l.rotate_set = true;
    l.rotate_min = 100;
    l.rotate_max = 100;
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), UM_EINVAL);
    l.rotate_min = 0;
    l.rotate_max = 0;
    l.rotate_after_set = true;
    l.rotate_after_min_ms = 5000;
    l.rotate_after_max_ms = 4000;
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), UM_EINVAL);
}

/* t=ws: path, host, sni, tls; round trip, the config it makes, refusals. */
static void test_ws_links(void **state)
{
    (void)state;
    um_link_t l, l2;
    um_config_t c;
    char err[256] = "", out[UM_LINK_MAX + 1];
    const char *s = "umbra://" SPUB "@192.0.2.1:8443?k=" CKEY
                    "&t=ws&path=/api/v2/s%7E1&host=front.example:8443&sni=cdn.example#w";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.transport, UM_TR_WS);
    assert_string_equal(l.ws_path, "/api/v2/s~1");
    assert_string_equal(l.ws_host, "front.example:8443");
    assert_string_equal(l.sni, "cdn.example");
    assert_false(l.ws_notls);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, "umbra://" SPUB "@192.0.2.1:8443?k=" CKEY
                             "&t=ws&path=/api/v2/s~1&host=front.example:8443&sni=cdn.example#w");
    assert_int_equal(um_link_decode(&l2, out, strlen(out), err, sizeof(err)), 0);
    assert_string_equal(l2.ws_path, l.ws_path);
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.transports[0].type, UM_TR_WS);
    assert_string_equal(c.transports[0].ws_path, "/api/v2/s~1");
    assert_string_equal(c.transports[0].ws_host, "front.example:8443");
    assert_string_equal(c.transports[0].sni, "cdn.example");
    assert_true(c.transports[0].ws_tls);
    um_config_free(&c);
    /* tls=0: plain HTTP to the front, kept through encode. A path with
     * characters that need escaping comes back escaped. */
    s = "umbra://" SPUB "@192.0.2.1:80?k=" CKEY "&t=ws&path=/a%26b&host=f.example&tls=0";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_true(l.ws_notls);
    assert_string_equal(l.ws_path, "/a&b");
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, s);
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_false(c.transports[0].ws_tls);
    um_config_free(&c);
    static const struct {
        const char *q, *why;
    } wsbad[] = {
        {"&t=ws&host=f.example", "t=ws needs parameters 'path' and 'host'"},
        {"&t=ws&path=/p", "t=ws needs parameters 'path' and 'host'"},
        {"&t=ws&path=p&host=f", "is not a URL path"},
        {"&t=ws&path=/p&host=f&shape=http", "not for t=ws"},
        {"&t=ws&path=/p&host=f&tls=2", "expected 0 or 1"},
        {"&path=/p", "need t=ws"},
        {"&t=tls&sni=a.example&host=f", "need t=ws"},
        {"&t=dns", "t=dns needs parameter 'zone'"},
    };
    for (size_t i = 0; i < sizeof(wsbad) / sizeof(wsbad[0]); i++) {
        char link[512];
        snprintf(link, sizeof(link), "umbra://" SPUB "@192.0.2.1:443?k=" CKEY "%s", wsbad[i].q);
        err[0] = '\0';
        assert_int_equal(um_link_decode(&l, link, strlen(link), err, sizeof(err)), UM_EINVAL);
        if (!strstr(err, wsbad[i].why))
            fail_msg("%s: '%s' lacks '%s'", wsbad[i].q, err, wsbad[i].why);
        assert_null(strstr(err, CKEY));
    }
}

/* via=: a bridge link (no k=) inside an exit link; decode, round trip,
 * the config it makes (the exit's via names the bridge), and refusals. */
static void test_via_links(void **state)
{
    (void)state;
    const char *bridge = "umbra://" SPUB "@192.0.2.7:443?t=tls&sni=www.example.com#br";
    char enc[UM_LINK_MAX + 1], s[UM_LINK_MAX + 1];
    size_t o = 0;
    for (const char *p = bridge; *p; p++)
        o += (size_t)snprintf(enc + o, sizeof(enc) - o,
                              (*p == ':' || *p == '/' || *p == '?' || *p == '&' || *p == '=' ||
                               *p == '#' || *p == '@')
                                  ? "%%%02X"
                                  : "%c",
                              (unsigned char)*p);
    snprintf(s, sizeof(s), "umbra://" SPUB "@203.0.113.9:443?k=" CKEY "&via=%s#exit", enc);
    um_link_t l, l2;
    char err[256] = "", out[UM_LINK_MAX + 1];
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_string_equal(l.via, bridge);
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_int_equal(um_link_decode(&l2, out, strlen(out), err, sizeof(err)), 0);
    assert_string_equal(l2.via, bridge);
    um_config_t c;
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.n_servers, 2);
    assert_string_equal(c.servers[0].name, "exit");
    assert_string_equal(c.servers[0].via, "br");
    assert_string_equal(c.servers[1].name, "br");
    assert_int_equal(c.servers[1].addrs[0].port, 443);
    assert_int_equal(um_config_transport(&c, c.servers[1].transport)->type, UM_TR_TLS);
    assert_int_equal(um_config_transport(&c, c.servers[0].transport)->type, UM_TR_TCP);
    assert_int_equal(um_config_validate(&c, err, sizeof(err)), 0);
    um_config_free(&c);
    um_link_wipe(&l);
    um_link_wipe(&l2);

    static const struct {
        const char *via, *want;
    } vbad[] = {
        {"umbra%3A%2F%2F" SPUB "%40192.0.2.7%3A443%3Fk%3D" CKEY, "carries no 'k'"},
        {"umbra%3A%2F%2F" SPUB "%40bridge.example%3A443", "must be an IP address"},
        {"umbra%3A%2F%2F" SPUB "%40192.0.2.7%3A443%3Fvia%3Dx", "no 'via' of its own"},
        {"umbra%3A%2F%2Fnotakey%40192.0.2.7%3A443", "server public key"},
        {"", "empty"},
        {"%zz", "bad %-escape"},
    };
    for (size_t i = 0; i < sizeof(vbad) / sizeof(vbad[0]); i++) {
        snprintf(s, sizeof(s), "umbra://" SPUB "@203.0.113.9:443?k=" CKEY "&via=%s", vbad[i].via);
        err[0] = 0;
        assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), UM_EINVAL);
        if (!strstr(err, vbad[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, vbad[i].want);
        assert_null(strstr(err, CKEY));
    }
}

/* o= and l= (signed server lists), and links without k=. */
static void test_operator_list_links(void **state)
{
    (void)state;
    um_link_t l;
    char err[256], out[UM_LINK_MAX];
    const char *s = "umbra://" SPUB "@1.2.3.4:443?k=" CKEY "&o=" CKEY
                    "&l=https%3A//lists.example/a%3Fb.list&l=http://10.0.0.1:8080/l#x";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_true(l.has_operator_key);
    assert_int_equal(l.n_list_urls, 2);
    assert_string_equal(l.list_urls[0], "https://lists.example/a?b.list");
    assert_string_equal(l.list_urls[1], "http://10.0.0.1:8080/l");
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, "umbra://" SPUB "@1.2.3.4:443?k=" CKEY "&o=" CKEY
                             "&l=https://lists.example/a%3Fb.list&l=http://10.0.0.1:8080/l#x");
    s = "umbra://" SPUB "@1.2.3.4:443?k=" CKEY "&l=ftp://x";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), UM_EINVAL);
    assert_non_null(strstr(err, "list URL 'l'"));
    s = "umbra://" SPUB "@1.2.3.4:443?k=" CKEY "&o=abc";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), UM_EINVAL);
    assert_non_null(strstr(err, "operator key 'o'"));
    /* Without k=: a server list entry; k= is refused there. */
    s = "umbra://" SPUB "@1.2.3.4:443?t=tls&sni=a.example";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), UM_EINVAL);
    assert_int_equal(um_link_decode_public(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.transport, UM_TR_TLS);
    s = "umbra://" SPUB "@1.2.3.4:443?k=" CKEY;
    assert_int_equal(um_link_decode_public(&l, s, strlen(s), err, sizeof(err)), UM_EINVAL);
    assert_non_null(strstr(err, "parameter 'k' (a client's private key) has no place here"));
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_decode_known),
        cmocka_unit_test(test_tls_links),
        cmocka_unit_test(test_bad_links),
        cmocka_unit_test(test_encode_small_buffer),
        cmocka_unit_test(test_rotation_hop_links),
        cmocka_unit_test(test_via_links),
        cmocka_unit_test(test_operator_list_links),
        cmocka_unit_test(test_ws_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
