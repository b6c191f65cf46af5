/* UDP flows, ICMP echo and the stack's drop accounting, packet by packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tun/stack.h"
#include "util/err.h"

typedef struct {
    um_tun_stack_t *s;
    uint8_t out[8][1600];
    size_t outn[8];
    int nout;
    int opens, dgrams, closes, refuse;
    uint32_t id, closed_id;
    um_addr_t dst;
    uint8_t last[1600];
    size_t lastn;
} u_t;

static u_t *U;

static void out_cb(void *ctx, const uint8_t *p, size_t n)
{
    u_t *u = ctx;
    assert_true(u->nout < 8);
    memcpy(u->out[u->nout], p, n);
    u->outn[u->nout++] = n;
}

static int open_cb(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst)
{
    u_t *u = ctx;
    u->opens++;
    u->id = id;
    u->dst = *dst;
    return u->refuse ? UM_EACCES : 0;
}

static void dgram_cb(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    u_t *u = ctx;
    u->dgrams++;
    u->id = id;
    memcpy(u->last, p, n);
    u->lastn = n;
}

static void close_cb(void *ctx, uint32_t id)
{
    u_t *u = ctx;
    u->closes++;
    u->closed_id = id;
}

static int tcp_open(void *ctx, uint32_t id, const um_addr_t *s, const um_addr_t *d)
{
    return UM_EACCES;
}

static void make(uint32_t max_flows, bool echo)
{
    U = calloc(1, sizeof(*U));
    um_tun_stack_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.udp.max_flows = max_flows;
    cfg.udp.idle_timeout_ms = 30000;
    cfg.udp.dns_timeout_ms = 5000;
    cfg.icmp_echo = echo;
    um_ptcp_ops_t tops = {out_cb, tcp_open, NULL, NULL, NULL, NULL};
    um_tunudp_ops_t uops = {out_cb, open_cb, dgram_cb, close_cb};
    U->s = um_tun_stack_new(&cfg, &tops, &uops, U);
    assert_non_null(U->s);
}

static int teardown(void **state)
{
    if (U) {
        um_tun_stack_free(U->s);
        free(U);
        U = NULL;
    }
    return 0;
}

static um_ip_pkt_t hdr(uint8_t v, uint8_t proto, uint16_t sport, uint16_t dport)
{
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = v;
    h.proto = proto;
    h.ttl = 64;
    if (v == 4) {
        memcpy(h.src, "\x0a\x07\x00\x02", 4);
        memcpy(h.dst, "\x01\x01\x01\x01", 4);
    } else {
        h.src[0] = 0xfd;
        h.src[15] = 2;
        h.dst[0] = 0x26;
        h.dst[1] = 0x06;
        h.dst[15] = 0x11;
    }
    h.sport = sport;
    h.dport = dport;
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    return h;
}

static int feed(const um_ip_pkt_t *h, const void *pl, size_t n, uint64_t now)
{
    uint8_t buf[1600];
    int len = um_ip_build(h, pl, n, buf, sizeof(buf));
    assert_true(len > 0);
    return um_tun_stack_input(U->s, buf, (size_t)len, now);
}

static void test_udp_flow_and_reply(void **state)
{
    make(0, false);
    um_tunudp_t *u = um_tun_stack_udp(U->s);
    for (int v = 4; v <= 6; v += 2) {
        U->opens = U->dgrams = U->nout = 0;
        um_ip_pkt_t h = hdr((uint8_t)v, UM_IPPROTO_UDP, 5353, 53);
        assert_int_equal(feed(&h, "query", 5, 1000), 0);
        assert_int_equal(U->opens, 1);
        assert_int_equal(U->dgrams, 1);
        assert_int_equal(U->lastn, 5);
        assert_memory_equal(U->last, "query", 5);
        assert_int_equal(U->dst.type, v == 4 ? UM_ADDR_IPV4 : UM_ADDR_IPV6);
        assert_int_equal(U->dst.port, 53);
        assert_int_equal(feed(&h, "again", 5, 1001), 0);
        assert_int_equal(U->opens, 1); /* same 5-tuple, same association */
        assert_int_equal(U->dgrams, 2);
        uint32_t id = U->id;
        assert_int_equal(um_tunudp_reply(u, id, (const uint8_t *)"answer", 6, 1002), 0);
        assert_int_equal(U->nout, 1);
        um_ip_pkt_t p;
        assert_int_equal(um_ip_parse(&p, U->out[0], U->outn[0]), UM_IP_OK);
        assert_int_equal(p.proto, UM_IPPROTO_UDP);
        assert_memory_equal(p.src, h.dst, 16);
        assert_memory_equal(p.dst, h.src, 16);
        assert_int_equal(p.sport, 53);
        assert_int_equal(p.dport, 5353);
        assert_int_equal(p.payload_len, 6);
        assert_memory_equal(U->out[0] + p.payload_off, "answer", 6);
        /* a reply larger than the MTU is refused */
        uint8_t big[1600] = {0};
        assert_int_equal(um_tunudp_reply(u, id, big, sizeof(big), 1003), UM_EMSGSIZE);
        /* another source port is another flow */
        h.sport = 5354;
        feed(&h, "q2", 2, 1004);
        assert_int_equal(U->opens, 2);
    }
    assert_int_equal(um_tunudp_flow_count(u), 4);
}

static void test_udp_timeouts(void **state)
{
    make(0, false);
    um_tunudp_t *u = um_tun_stack_udp(U->s);
    um_ip_pkt_t dns = hdr(4, UM_IPPROTO_UDP, 4000, 53);
    um_ip_pkt_t quic = hdr(4, UM_IPPROTO_UDP, 4001, 443);
    feed(&dns, "d", 1, 0);
    uint32_t dns_id = U->id;
    feed(&quic, "q", 1, 0);
    uint32_t quic_id = U->id;
    assert_int_equal(um_tun_stack_next_timer(U->s), 5000);
    um_tun_stack_tick(U->s, 4999);
    assert_int_equal(U->closes, 0);
    um_tun_stack_tick(U->s, 5000); /* DNS flows expire sooner */
    assert_int_equal(U->closes, 1);
    assert_int_equal(U->closed_id, dns_id);
    assert_int_equal(um_tunudp_reply(u, dns_id, (const uint8_t *)"x", 1, 5000), UM_ENOENT);
    /* a reply counts as activity */
    assert_int_equal(um_tunudp_reply(u, quic_id, (const uint8_t *)"x", 1, 20000), 0);
    um_tun_stack_tick(U->s, 30000);
    assert_int_equal(U->closes, 1);
    um_tun_stack_tick(U->s, 50000);
    assert_int_equal(U->closes, 2);
    assert_int_equal(um_tunudp_flow_count(u), 0);
    assert_int_equal(um_tunudp_stats(u)->flows_expired, 2);
}

static void test_udp_limit_and_refusal(void **state)
{
    make(3, false);
    um_tunudp_t *u = um_tun_stack_udp(U->s);
    for (uint16_t i = 0; i < 3; i++) {
        um_ip_pkt_t h = hdr(4, UM_IPPROTO_UDP, (uint16_t)(6000 + i), 443);
        feed(&h, "x", 1, 100 + i);
    }
    um_ip_pkt_t h = hdr(4, UM_IPPROTO_UDP, 6000, 443);
    feed(&h, "x", 1, 200); /* refresh the first: now the second is the oldest */
    h = hdr(4, UM_IPPROTO_UDP, 7000, 443);
    feed(&h, "x", 1, 300);
    assert_int_equal(um_tunudp_flow_count(u), 3);
    assert_int_equal(U->closes, 1);
    assert_int_equal(um_tunudp_stats(u)->flows_evicted, 1);
    /* the evicted one was port 6001: a new datagram from it opens anew */
    int opens = U->opens;
    h = hdr(4, UM_IPPROTO_UDP, 6001, 443);
    feed(&h, "x", 1, 400);
    assert_int_equal(U->opens, opens + 1);
    /* refusal: dropped and counted, not kept */
    U->refuse = 1;
    h = hdr(4, UM_IPPROTO_UDP, 9999, 443);
    assert_int_equal(feed(&h, "x", 1, 500), UM_EACCES);
    assert_int_equal(um_tunudp_stats(u)->drop_refused, 1);
    /* the table was full: the least recently used flow made room first */
    assert_int_equal(um_tunudp_flow_count(u), 2);
}

static void test_icmp_echo(void **state)
{
    make(0, true);
    for (int v = 4; v <= 6; v += 2) {
        U->nout = 0;
        um_ip_pkt_t h = hdr((uint8_t)v, v == 4 ? UM_IPPROTO_ICMP : UM_IPPROTO_ICMPV6, 0, 0);
        h.icmp.type = v == 4 ? 8 : 128;
        memcpy(h.icmp.rest, "\xbe\xef\x00\x07", 4);
        assert_int_equal(feed(&h, "pingdata", 8, 0), 0);
        assert_int_equal(U->nout, 1);
        um_ip_pkt_t p;
        assert_int_equal(um_ip_parse(&p, U->out[0], U->outn[0]), UM_IP_OK);
        assert_int_equal(p.icmp.type, v == 4 ? 0 : 129);
        assert_memory_equal(p.icmp.rest, "\xbe\xef\x00\x07", 4);
        assert_memory_equal(p.src, h.dst, 16);
        assert_memory_equal(U->out[0] + p.payload_off, "pingdata", 8);
        /* an echo reply or other ICMP is not answered */
        h.icmp.type = v == 4 ? 0 : 129;
        assert_int_not_equal(feed(&h, "x", 1, 0), 0);
        assert_int_equal(U->nout, 1);
    }
    assert_int_equal(um_tun_stack_stats(U->s)->icmp_echo_replies, 2);
    teardown(NULL);
    make(0, false);
    um_ip_pkt_t h = hdr(4, UM_IPPROTO_ICMP, 0, 0);
    h.icmp.type = 8;
    assert_int_not_equal(feed(&h, "x", 1, 0), 0);
    assert_int_equal(U->nout, 0);
    assert_int_equal(um_tun_stack_stats(U->s)->drop_other, 1);
}

/* Malformed, truncated, fragmented and oversized packets are counted by
 * reason and dropped; nothing reaches the upper layer, nothing goes out. */
static void test_stack_drops_are_counted(void **state)
{
    make(0, true);
    uint8_t buf[1600];
    um_ip_pkt_t h = hdr(4, UM_IPPROTO_UDP, 1, 2);
    int n = um_ip_build(&h, (const uint8_t *)"payload", 7, buf, sizeof(buf));
    const um_tun_stack_stats_t *st = um_tun_stack_stats(U->s);
    for (int i = 0; i < n; i++)
        assert_int_equal(um_tun_stack_input(U->s, buf, (size_t)i, 0), UM_EPROTO);
    assert_int_equal(st->drop[UM_IP_DROP_TRUNC], (uint64_t)n);
    buf[6] = 0x20; /* MF */
    buf[10] = buf[11] = 0;
    uint16_t c = um_ip_csum_fold(um_ip_csum_add(0, buf, 20));
    buf[10] = (uint8_t)(c >> 8);
    buf[11] = (uint8_t)c;
    um_tun_stack_input(U->s, buf, (size_t)n, 0);
    assert_int_equal(st->drop[UM_IP_DROP_FRAG], 1);
    n = um_ip_build(&h, (const uint8_t *)"payload", 7, buf, sizeof(buf));
    buf[n - 1] ^= 1;
    um_tun_stack_input(U->s, buf, (size_t)n, 0);
    assert_int_equal(st->drop[UM_IP_DROP_CSUM], 1);
    uint8_t huge[2000] = {0};
    um_tun_stack_input(U->s, huge, sizeof(huge), 0);
    assert_int_equal(st->drop_oversize, 1);
    /* random garbage of every length: never accepted as anything that
     * reaches the upper layer with a bad checksum; never crashes */
    uint32_t x = 12345;
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(i % 200);
        for (size_t j = 0; j < len; j++) {
            x = x * 1103515245u + 12345u;
            buf[j] = (uint8_t)(x >> 16);
        }
        if (len) buf[0] = i & 1 ? 0x45 : 0x60;
        um_tun_stack_input(U->s, buf, len, 0);
    }
    assert_int_equal(U->dgrams, 0);
    assert_int_equal(U->nout, 0);
    assert_int_equal(st->rx_packets, (uint64_t)(20000 + n + 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_udp_flow_and_reply, teardown),
        cmocka_unit_test_teardown(test_udp_timeouts, teardown),
        cmocka_unit_test_teardown(test_udp_limit_and_refusal, teardown),
        cmocka_unit_test_teardown(test_icmp_echo, teardown),
        cmocka_unit_test_teardown(test_stack_drops_are_counted, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
