/* The dns transport's codec (docs/PROTOCOL.md section 13): base32 both
 * ways and case-insensitively; query names within 63-byte labels and 253
 * characters for every payload size up to the cap, round trip, tag
 * refusal; the ldns messages: a query parsed back, replies within the
 * 512 / 1232 limits with OPT exactly when asked, TXT payload round trip at
 * the cap, apex SOA/NS, NXDOMAIN, FORMERR for a mangled query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "transport/dns_msg.h"
#include "transport/dns_wire.h"
#include "util/err.h"

static uint8_t pub[32];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) return -1;
    randombytes_buf(pub, sizeof(pub));
    return 0;
}

static void t_b32(void **state)
{
    (void)state;
    char out[64];
    size_t n = um_b32_enc((const uint8_t *)"foobar", 6, out, sizeof(out));
    assert_int_equal(n, 10);
    assert_memory_equal(out, "mzxw6ytboi", 10); /* RFC 4648 "MZXW6YTBOI" */
    uint8_t b[16];
    assert_int_equal(um_b32_dec("MZxW6yTBOI", 10, b, sizeof(b)), 6);
    assert_memory_equal(b, "foobar", 6);
    assert_int_equal(um_b32_dec("mzx", 3, b, sizeof(b)), -1);  /* impossible length */
    assert_int_equal(um_b32_dec("mz1w", 4, b, sizeof(b)), -1); /* bad character */
    assert_int_equal(um_b32_dec("mzxx", 4, b, sizeof(b)), -1); /* spare bits set */
    for (size_t len = 0; len < 200; len++) {
        uint8_t in[200], dec[200];
        char txt[400];
        randombytes_buf(in, len);
        size_t c = um_b32_enc(in, len, txt, sizeof(txt));
        assert_int_equal(um_b32_dec(txt, c, dec, sizeof(dec)), (long)len);
        assert_memory_equal(in, dec, len);
    }
}

/* The presentation length of a wire name (no trailing dot). */
static size_t pres_len(const uint8_t *w, size_t n)
{
    size_t l = 0;
    for (size_t i = 0; i < n && w[i]; i += 1 + w[i]) {
        assert_true(w[i] <= 63);
        l += w[i] + (l ? 1 : 0);
    }
    return l;
}

static void t_names(void **state)
{
    (void)state;
    um_dnsw_t w;
    assert_int_equal(um_dnsw_init(&w, pub, "t.Example.COM."), 0);
    assert_int_equal(um_dnsw_init(&w, pub, "bad..zone"), UM_EINVAL);
    assert_int_equal(um_dnsw_init(&w, pub, "sp ace.com"), UM_EINVAL);
    assert_int_equal(um_dnsw_init(&w, pub, "t.example.com"), 0);
    size_t cap = um_dnsw_up_cap(&w);
    assert_true(cap >= 120);
    for (size_t n = 0; n <= cap; n++) {
        uint8_t p[255], name[UM_DNSW_NAME_MAX], out[255];
        size_t nl, on;
        randombytes_buf(p, n);
        assert_int_equal(um_dnsw_up_encode(&w, 0x11223344u, (uint32_t)n, 1, p, n, name, &nl), 0);
        assert_true(nl <= 255);
        assert_true(pres_len(name, nl) <= 253);
        /* resolvers may randomise the case (0x20) */
        for (size_t i = 0; i < nl; i++)
            if (name[i] >= 'a' && name[i] <= 'z' && (i & 1)) name[i] = (uint8_t)(name[i] - 32);
        uint32_t conv, nonce;
        uint8_t fl;
        assert_int_equal(um_dnsw_up_decode(&w, name, nl, &conv, &nonce, &fl, out, &on),
                         UM_DNSW_TUNNEL);
        assert_int_equal(conv, 0x11223344u);
        assert_int_equal(nonce, (uint32_t)n);
        assert_int_equal(fl, 1);
        assert_int_equal(on, n);
        assert_memory_equal(out, p, n);
        /* one flipped character: no longer ours */
        name[3] = name[3] == 'a' ? 'b' : 'a';
        assert_int_equal(um_dnsw_up_decode(&w, name, nl, &conv, &nonce, &fl, out, &on),
                         UM_DNSW_JUNK);
    }
    uint8_t big[255], name[UM_DNSW_NAME_MAX];
    size_t nl;
    assert_int_equal(um_dnsw_up_encode(&w, 1, 2, 0, big, cap + 1, name, &nl), UM_EMSGSIZE);
    /* another key: junk, not tunnel */
    um_dnsw_t w2;
    uint8_t pub2[32] = {1};
    assert_int_equal(um_dnsw_init(&w2, pub2, "t.example.com"), 0);
    assert_int_equal(um_dnsw_up_encode(&w2, 1, 2, 0, big, 10, name, &nl), 0);
    uint32_t c, no;
    uint8_t fl, out[255];
    size_t on;
    assert_int_equal(um_dnsw_up_decode(&w, name, nl, &c, &no, &fl, out, &on), UM_DNSW_JUNK);
    assert_int_equal(um_dnsw_up_decode(&w, w.zone, w.zone_len, &c, &no, &fl, out, &on),
                     UM_DNSW_APEX);
    static const uint8_t other[] = "\7example\3com";
    assert_int_equal(um_dnsw_up_decode(&w, other, sizeof(other), &c, &no, &fl, out, &on),
                     UM_DNSW_OTHER);
    /* downstream */
    uint8_t d[1000], s[1100], o2[1000];
    size_t sn, o2n;
    randombytes_buf(d, sizeof(d));
    assert_int_equal(um_dnsw_down_seal(&w, 5, 6, d, sizeof(d), s, sizeof(s), &sn), 0);
    assert_int_equal(sn, sizeof(d) + UM_DNSW_DOWN_HDR);
    assert_int_equal(um_dnsw_down_open(&w, 5, 6, s, sn, o2, sizeof(o2), &o2n), 0);
    assert_memory_equal(o2, d, sizeof(d));
    assert_int_equal(um_dnsw_down_open(&w, 5, 7, s, sn, o2, sizeof(o2), &o2n), UM_EAUTH);
}

static void roundtrip(bool edns)
{
    um_dnsw_t w;
    assert_int_equal(um_dnsw_init(&w, pub, "t.example.com"), 0);
    uint8_t p[255], name[UM_DNSW_NAME_MAX], q[600], rep[2000];
    size_t nl, qn, rn, cap = um_dnsw_up_cap(&w);
    randombytes_buf(p, cap);
    assert_int_equal(um_dnsw_up_encode(&w, 7, 8, 0, p, cap, name, &nl), 0);
    assert_int_equal(
        um_dnsm_query_build(0x4242, name, nl, UM_DNSM_TYPE_TXT, edns, q, sizeof(q), &qn), 0);
    um_dnsm_query_t qq;
    assert_int_equal(um_dnsm_query_parse(q, qn, &qq), 0);
    assert_int_equal(qq.id, 0x4242);
    assert_int_equal(qq.qtype, UM_DNSM_TYPE_TXT);
    assert_int_equal(qq.edns, edns);
    assert_int_equal(qq.udp_size, edns ? UM_DNSM_EDNS : UM_DNSM_PLAIN);
    assert_true(um_dnsm_name_eq(qq.qname, qq.qname_len, name, nl));
    size_t tcap = um_dnsm_txt_cap(&qq, qq.udp_size);
    assert_true(tcap > (edns ? 900u : 200u));
    uint8_t d[2000];
    randombytes_buf(d, tcap);
    um_dnsm_reply_t r = {.aa = true, .txt = d, .txt_n = tcap};
    assert_int_equal(um_dnsm_reply_build(&qq, &r, qq.udp_size, rep, sizeof(rep), &rn), 0);
    assert_true(rn <= qq.udp_size);
    assert_true(rn + 8 > qq.udp_size); /* the cap is tight */
    um_dnsm_answer_t a;
    uint8_t t[2000];
    size_t tn;
    assert_int_equal(um_dnsm_answer_parse(rep, rn, &a, t, sizeof(t), &tn), 0);
    assert_false(a.tc);
    assert_int_equal(a.id, 0x4242);
    assert_int_equal(a.n_txt, 1);
    assert_int_equal(tn, tcap);
    assert_memory_equal(t, d, tcap);
    /* OPT in the reply exactly when the query had one: ARCOUNT */
    assert_int_equal(rep[11], edns ? 1 : 0);
    /* too much for the limit: TC, no answer */
    r.txt_n = tcap + 50;
    assert_int_equal(um_dnsm_reply_build(&qq, &r, qq.udp_size, rep, sizeof(rep), &rn), 0);
    assert_int_equal(um_dnsm_answer_parse(rep, rn, &a, t, sizeof(t), &tn), 0);
    assert_true(a.tc);
    assert_int_equal(a.n_txt, 0);
}

static void t_msg(void **state)
{
    (void)state;
    roundtrip(true);
    roundtrip(false);
    um_dnsw_t w;
    assert_int_equal(um_dnsw_init(&w, pub, "t.example.com"), 0);
    uint8_t q[600], rep[2000], t[2000];
    size_t qn, rn, tn;
    um_dnsm_query_t qq;
    um_dnsm_answer_t a;
    assert_int_equal(
        um_dnsm_query_build(9, w.zone, w.zone_len, UM_DNSM_TYPE_SOA, true, q, sizeof(q), &qn), 0);
    assert_int_equal(um_dnsm_query_parse(q, qn, &qq), 0);
    um_dnsm_reply_t r = {.aa = true, .apex_answer = true, .zone = w.zone, .zone_len = w.zone_len};
    assert_int_equal(um_dnsm_reply_build(&qq, &r, qq.udp_size, rep, sizeof(rep), &rn), 0);
    assert_int_equal(um_dnsm_answer_parse(rep, rn, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(rep[7], 1); /* ANCOUNT 1: the SOA */
    assert_true(rep[2] & 0x04);  /* AA */
    um_dnsm_reply_t nx = {.rcode = UM_DNSM_NXDOMAIN,
                          .aa = true,
                          .soa_auth = true,
                          .zone = w.zone,
                          .zone_len = w.zone_len};
    assert_int_equal(um_dnsm_reply_build(&qq, &nx, qq.udp_size, rep, sizeof(rep), &rn), 0);
    assert_int_equal(um_dnsm_answer_parse(rep, rn, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(a.rcode, UM_DNSM_NXDOMAIN);
    assert_int_equal(rep[9], 1); /* NSCOUNT 1 */
    /* mangled: header readable, body not */
    q[qn - 1 - 11] ^= 0xff;
    q[12] = 0xc0; /* a pointer loop where the name starts */
    q[13] = 12;
    assert_int_equal(um_dnsm_query_parse(q, qn, &qq), UM_EPROTO);
    assert_int_equal(qq.id, 9);
    assert_int_equal(um_dnsm_query_parse(q, 5, &qq), UM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_b32),
        cmocka_unit_test(t_names),
        cmocka_unit_test(t_msg),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
