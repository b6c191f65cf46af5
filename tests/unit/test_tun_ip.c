/* IPv4/IPv6/TCP/UDP/ICMP parser and builder: known vectors, round trips,
 * every truncation, checksum flips, fragments, extension headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tun/ip.h"
#include "util/err.h"

static const uint8_t A4[16] = {10, 0, 0, 2};
static const uint8_t B4[16] = {93, 184, 216, 34};
static const uint8_t A6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t B6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static um_ip_pkt_t hdr(uint8_t version, uint8_t proto)
{
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = version;
    h.proto = proto;
    h.ttl = 64;
    memcpy(h.src, version == 4 ? A4 : A6, 16);
    memcpy(h.dst, version == 4 ? B4 : B6, 16);
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    return h;
}

/* Wikipedia's IPv4 header checksum example: 0xb861. */
static void test_ipv4_header_checksum_vector(void **state)
{
    uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    assert_int_equal(um_ip_csum_fold(um_ip_csum_add(0, h, 20)), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    assert_int_equal(um_ip_csum_fold(um_ip_csum_add(0, h, 20)), 0);
    /* odd length: the last byte is padded with zero (RFC 1071) */
    uint8_t odd[3] = {0x01, 0x02, 0x03};
    assert_int_equal(um_ip_csum_fold(um_ip_csum_add(0, odd, 3)), (uint16_t) ~(0x0102 + 0x0300));
}

static void test_tcp_round_trip_with_options(void **state)
{
    for (int v = 4; v <= 6; v += 2) {
        um_ip_pkt_t h = hdr((uint8_t)v, UM_IPPROTO_TCP);
        h.sport = 40000;
        h.dport = 443;
        h.tcp.seq = 0xfffffff0u;
        h.tcp.ack = 7;
        h.tcp.flags = UM_TCP_SYN | UM_TCP_ACK;
        h.tcp.window = 29200;
        h.tcp.mss = 1460;
        h.tcp.wscale = 7;
        h.tcp.sack_ok = true;
        h.tcp.has_ts = true;
        h.tcp.ts_val = 0x01020304;
        h.tcp.ts_ecr = 0xa0b0c0d0;
        uint8_t pl[33], buf[256];
        for (size_t i = 0; i < sizeof(pl); i++)
            pl[i] = (uint8_t)(i * 7);
        int n = um_ip_build(&h, pl, sizeof(pl), buf, sizeof(buf));
        size_t iph = v == 4 ? 20 : 40;
        assert_int_equal(n, (int)(iph + 20 + 24 + sizeof(pl)));
        um_ip_pkt_t p;
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
        assert_int_equal(p.version, v);
        assert_int_equal(p.proto, UM_IPPROTO_TCP);
        assert_memory_equal(p.src, h.src, 16);
        assert_memory_equal(p.dst, h.dst, 16);
        assert_int_equal(p.sport, 40000);
        assert_int_equal(p.dport, 443);
        assert_int_equal(p.tcp.seq, h.tcp.seq);
        assert_int_equal(p.tcp.ack, 7);
        assert_int_equal(p.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
        assert_int_equal(p.tcp.window, 29200);
        assert_int_equal(p.tcp.mss, 1460);
        assert_int_equal(p.tcp.wscale, 7);
        assert_true(p.tcp.sack_ok);
        assert_true(p.tcp.has_ts);
        assert_int_equal(p.tcp.ts_val, 0x01020304);
        assert_int_equal(p.tcp.ts_ecr, 0xa0b0c0d0);
        assert_int_equal(p.payload_len, sizeof(pl));
        assert_memory_equal(buf + p.payload_off, pl, sizeof(pl));
        assert_int_equal(p.l4_off, iph);
        assert_int_equal(p.total_len, (size_t)n);
    }
}

static void test_udp_icmp_round_trip(void **state)
{
    uint8_t buf[256], pl[5] = {1, 2, 3, 4, 5};
    um_ip_pkt_t p;
    for (int v = 4; v <= 6; v += 2) {
        um_ip_pkt_t h = hdr((uint8_t)v, UM_IPPROTO_UDP);
        h.sport = 5353;
        h.dport = 53;
        int n = um_ip_build(&h, pl, sizeof(pl), buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
        assert_int_equal(p.sport, 5353);
        assert_int_equal(p.dport, 53);
        assert_int_equal(p.payload_len, 5);
        assert_memory_equal(buf + p.payload_off, pl, 5);

        h = hdr((uint8_t)v, v == 4 ? UM_IPPROTO_ICMP : UM_IPPROTO_ICMPV6);
        h.icmp.type = v == 4 ? 8 : 128;
        memcpy(h.icmp.rest, "\x12\x34\x00\x01", 4);
        n = um_ip_build(&h, pl, sizeof(pl), buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
        assert_int_equal(p.icmp.type, h.icmp.type);
        assert_memory_equal(p.icmp.rest, "\x12\x34\x00\x01", 4);
        assert_int_equal(p.payload_len, 5);
    }
    /* ICMP in IPv6 and ICMPv6 in IPv4 are refused by the builder */
    um_ip_pkt_t h = hdr(6, UM_IPPROTO_ICMP);
    assert_int_equal(um_ip_build(&h, NULL, 0, buf, sizeof(buf)), UM_EINVAL);
    h = hdr(4, 47);
    assert_int_equal(um_ip_build(&h, NULL, 0, buf, sizeof(buf)), UM_EINVAL);
    h = hdr(4, UM_IPPROTO_UDP);
    assert_int_equal(um_ip_build(&h, pl, 5, buf, 20), UM_EMSGSIZE);
}

static int build_tcp(uint8_t v, uint8_t *buf, size_t cap)
{
    um_ip_pkt_t h = hdr(v, UM_IPPROTO_TCP);
    h.sport = 1234;
    h.dport = 80;
    h.tcp.flags = UM_TCP_ACK | UM_TCP_PSH;
    h.tcp.mss = 0;
    uint8_t pl[40];
    memset(pl, 'x', sizeof(pl));
    return um_ip_build(&h, pl, sizeof(pl), buf, cap);
}

/* Every strict prefix is refused, and every single-bit flip in a field that
 * a checksum or a length check covers is refused (ones' complement sums
 * catch every single-bit error). */
static void test_truncation_and_bit_flips(void **state)
{
    for (int v = 4; v <= 6; v += 2) {
        uint8_t buf[256];
        int n = build_tcp((uint8_t)v, buf, sizeof(buf));
        assert_true(n > 0);
        um_ip_pkt_t p;
        for (int i = 0; i < n; i++)
            assert_int_not_equal(um_ip_parse(&p, buf, (size_t)i), UM_IP_OK);
        for (int i = 0; i < n; i++) {
            for (int b = 0; b < 8; b++) {
                if (v == 6 && (i == 1 || (i == 0 && b < 4) || i == 2 || i == 3 || i == 7))
                    continue; /* traffic class, flow label, hop limit: not checksummed */
                buf[i] ^= (uint8_t)(1u << b);
                um_ip_drop_t r = um_ip_parse(&p, buf, (size_t)n);
                buf[i] ^= (uint8_t)(1u << b);
                if (r == UM_IP_OK) fail_msg("v%d byte %d bit %d accepted", v, i, b);
            }
        }
        /* trailing bytes after the stated length are ignored */
        buf[n] = 0xee;
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n + 1), UM_IP_OK);
        assert_int_equal(p.total_len, (size_t)n);
    }
}

static void set_v4_csum(uint8_t *b)
{
    b[10] = b[11] = 0;
    uint16_t c = um_ip_csum_fold(um_ip_csum_add(0, b, 20));
    b[10] = (uint8_t)(c >> 8);
    b[11] = (uint8_t)c;
}

static void test_fragments_and_headers(void **state)
{
    uint8_t buf[256];
    um_ip_pkt_t p;
    struct {
        uint8_t b6, b7;
        um_ip_drop_t want;
    } frag[] = {
        {0x20, 0x00, UM_IP_DROP_FRAG}, /* MF */
        {0x00, 0x10, UM_IP_DROP_FRAG}, /* offset */
        {0x3f, 0xff, UM_IP_DROP_FRAG}, /* both */
        {0x40, 0x00, UM_IP_OK},        /* DF only */
        {0x00, 0x00, UM_IP_OK},
    };
    for (size_t i = 0; i < sizeof(frag) / sizeof(frag[0]); i++) {
        int n = build_tcp(4, buf, sizeof(buf));
        buf[6] = frag[i].b6;
        buf[7] = frag[i].b7;
        set_v4_csum(buf);
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n), frag[i].want);
    }
    /* bad version, IHL < 5, total length < IHL */
    int n = build_tcp(4, buf, sizeof(buf));
    buf[0] = 0x55;
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_HDR);
    buf[0] = 0x44;
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_HDR);
    buf[0] = 0x45;
    buf[2] = 0;
    buf[3] = 10;
    set_v4_csum(buf);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_HDR);
    /* TCP data offset < 5 */
    n = build_tcp(4, buf, sizeof(buf));
    buf[20 + 12] = 0x40;
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_HDR);
    /* unknown L4 protocol */
    n = build_tcp(4, buf, sizeof(buf));
    buf[9] = 47;
    set_v4_csum(buf);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_PROTO);
    assert_int_equal(um_ip_parse(&p, NULL, 0), UM_IP_DROP_TRUNC);
}

/* Inserts IPv6 extension headers of the given types before the TCP header. */
static int v6_with_ext(uint8_t *buf, size_t cap, const uint8_t *types, int count)
{
    uint8_t tmp[256];
    int n = build_tcp(6, tmp, sizeof(tmp));
    size_t l4 = (size_t)n - 40;
    memcpy(buf, tmp, 40);
    size_t off = 40;
    uint8_t *next = &buf[6];
    for (int i = 0; i < count; i++) {
        *next = types[i];
        memset(buf + off, 0, 8);
        buf[off + 1] = 0; /* 8 bytes */
        next = &buf[off];
        off += 8;
    }
    *next = UM_IPPROTO_TCP;
    memcpy(buf + off, tmp + 40, l4);
    off += l4;
    buf[4] = (uint8_t)((off - 40) >> 8);
    buf[5] = (uint8_t)(off - 40);
    (void)cap;
    return (int)off;
}

static void test_ipv6_extension_headers(void **state)
{
    uint8_t buf[512];
    um_ip_pkt_t p;
    uint8_t ok3[] = {0, 60, 43};
    int n = v6_with_ext(buf, sizeof(buf), ok3, 3);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
    assert_int_equal(p.l4_off, 40 + 24);
    assert_int_equal(p.dport, 80);
    uint8_t many[UM_IPV6_MAX_EXT + 1];
    memset(many, 60, sizeof(many));
    n = v6_with_ext(buf, sizeof(buf), many, UM_IPV6_MAX_EXT);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
    n = v6_with_ext(buf, sizeof(buf), many, UM_IPV6_MAX_EXT + 1);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_EXT);
    uint8_t frag[] = {0, 44};
    n = v6_with_ext(buf, sizeof(buf), frag, 2);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_FRAG);
    uint8_t esp[] = {50};
    n = v6_with_ext(buf, sizeof(buf), esp, 1);
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_EXT);
    /* an extension header whose length runs past the packet */
    n = v6_with_ext(buf, sizeof(buf), ok3, 1);
    buf[41] = 200;
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_TRUNC);
    /* payload length beyond the buffer; zero payload length */
    n = build_tcp(6, buf, sizeof(buf));
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n - 1), UM_IP_DROP_TRUNC);
    buf[4] = buf[5] = 0;
    assert_int_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_DROP_HDR);
}

static void test_tcp_options_malformed(void **state)
{
    struct {
        uint8_t opt[8];
        um_ip_drop_t want;
    } cases[] = {
        {{2, 4, 5, 0xb4, 1, 1, 1, 0}, UM_IP_OK},       /* MSS 1460, NOPs, EOL */
        {{2, 3, 5, 0xb4, 1, 1, 1, 0}, UM_IP_DROP_HDR}, /* MSS with length 3 */
        {{3, 4, 7, 0, 0, 0, 0, 0}, UM_IP_DROP_HDR},    /* wscale length 4 */
        {{1, 1, 1, 1, 1, 1, 1, 99}, UM_IP_DROP_HDR},   /* kind with no length byte */
        {{99, 0, 0, 0, 0, 0, 0, 0}, UM_IP_DROP_HDR},   /* length 0 */
        {{99, 9, 0, 0, 0, 0, 0, 0}, UM_IP_DROP_HDR},   /* runs past the options */
        {{99, 8, 0, 0, 0, 0, 0, 0}, UM_IP_OK},         /* unknown option skipped */
        {{0, 99, 99, 99, 99, 99, 99, 99}, UM_IP_OK},   /* EOL stops the walk */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* build a SYN with 8 bytes of options (MSS + wscale placeholders),
         * then overwrite them and fix the checksum */
        um_ip_pkt_t h = hdr(4, UM_IPPROTO_TCP);
        h.tcp.flags = UM_TCP_SYN;
        h.tcp.mss = 1;
        h.tcp.wscale = 1;
        uint8_t buf[128];
        int n = um_ip_build(&h, NULL, 0, buf, sizeof(buf));
        assert_int_equal(n, 48);
        memcpy(buf + 40, cases[i].opt, 8);
        buf[36] = buf[37] = 0;
        uint16_t c =
            um_ip_csum_fold(um_ip_csum_add(um_ip_pseudo_sum(4, h.src, h.dst, 6, 28), buf + 20, 28));
        buf[36] = (uint8_t)(c >> 8);
        buf[37] = (uint8_t)c;
        um_ip_pkt_t p;
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n), cases[i].want);
        if (i == 0) {
            assert_int_equal(p.tcp.mss, 1460);
            assert_int_equal(p.tcp.wscale, UM_TCP_WSCALE_NONE);
        }
    }
}

static void test_udp_checksum_rules(void **state)
{
    uint8_t buf[128];
    um_ip_pkt_t p;
    for (int v = 4; v <= 6; v += 2) {
        um_ip_pkt_t h = hdr((uint8_t)v, UM_IPPROTO_UDP);
        int n = um_ip_build(&h, (const uint8_t *)"abc", 3, buf, sizeof(buf));
        size_t l4 = v == 4 ? 20 : 40;
        buf[l4 + 6] = buf[l4 + 7] = 0; /* "no checksum" */
        assert_int_equal(um_ip_parse(&p, buf, (size_t)n), v == 4 ? UM_IP_OK : UM_IP_DROP_CSUM);
        /* UDP length larger than the IP payload, smaller than a header */
        n = um_ip_build(&h, (const uint8_t *)"abc", 3, buf, sizeof(buf));
        buf[l4 + 5] = 12;
        assert_int_not_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
        buf[l4 + 5] = 4;
        assert_int_not_equal(um_ip_parse(&p, buf, (size_t)n), UM_IP_OK);
    }
}

static void test_seq_arith(void **state)
{
    assert_true(um_seq_lt(0xfffffff0u, 5));
    assert_false(um_seq_lt(5, 0xfffffff0u));
    assert_true(um_seq_le(7, 7));
    assert_false(um_seq_lt(7, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_header_checksum_vector),
        cmocka_unit_test(test_tcp_round_trip_with_options),
        cmocka_unit_test(test_udp_icmp_round_trip),
        cmocka_unit_test(test_truncation_and_bit_flips),
        cmocka_unit_test(test_fragments_and_headers),
        cmocka_unit_test(test_ipv6_extension_headers),
        cmocka_unit_test(test_tcp_options_malformed),
        cmocka_unit_test(test_udp_checksum_rules),
        cmocka_unit_test(test_seq_arith),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
