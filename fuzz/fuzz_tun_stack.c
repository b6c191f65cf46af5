/* Fuzz the whole packet core: arbitrary packets, well-formed TCP segments
 * with fuzzed fields (so the fuzzer reaches every TCP state), UDP datagrams,
 * upper-layer calls and clock jumps. Properties: no crash, no sanitizer
 * report, and the bounds hold after every step (flows <= max_flows,
 * buffered bytes <= max_bytes).
 *
 * Input: records of [op][len][len bytes]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tun/stack.h"

#define MAX_FLOWS 8
#define MAX_BYTES 20000

typedef struct {
    um_tun_stack_t *s;
    uint64_t now;
    uint32_t ids[16];
    unsigned nids;
    uint32_t udp_id;
    int mode;
    size_t outs;
    uint32_t last_seq, last_ack; /* from the last segment the stack sent */
} st_t;

static void out_cb(void *ctx, const uint8_t *p, size_t n)
{
    st_t *s = ctx;
    s->outs++;
    um_ip_pkt_t pkt;
    if (um_ip_parse(&pkt, p, n) != UM_IP_OK) abort(); /* we only ever emit valid packets */
    if (pkt.proto == UM_IPPROTO_TCP) {
        s->last_seq = pkt.tcp.seq;
        s->last_ack = pkt.tcp.ack;
    }
}

static int open_cb(void *ctx, uint32_t id, const um_addr_t *a, const um_addr_t *b)
{
    st_t *s = ctx;
    s->ids[s->nids++ % 16] = id;
    switch (s->mode % 3) {
    case 0: return 0; /* pending */
    case 1: um_ptcp_accept(um_tun_stack_tcp(s->s), id, 3000, s->now); return 0;
    default: return -13;
    }
}

static void data_cb(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    st_t *s = ctx;
    if (s->mode & 4) um_ptcp_credit(um_tun_stack_tcp(s->s), id, n, s->now);
    if (s->mode & 8) um_ptcp_send(um_tun_stack_tcp(s->s), id, p, n, s->now);
}

static void fin_cb(void *ctx, uint32_t id)
{
    st_t *s = ctx;
    if (s->mode & 16) um_ptcp_shutdown(um_tun_stack_tcp(s->s), id, s->now);
}

static void reset_cb(void *ctx, uint32_t id, int err)
{
    st_t *s = ctx;
    /* the id is dead: every call must say so */
    if (um_ptcp_send(um_tun_stack_tcp(s->s), id, (const uint8_t *)"x", 1, s->now) >= 0) abort();
}

static int uopen_cb(void *ctx, uint32_t id, const um_addr_t *a, const um_addr_t *b)
{
    st_t *s = ctx;
    s->udp_id = id;
    return (s->mode & 32) ? -13 : 0;
}

static void udata_cb(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    st_t *s = ctx;
    um_tunudp_reply(um_tun_stack_udp(s->s), id, p, n, s->now);
}

static void build_and_feed(st_t *s, const uint8_t *d, size_t n, uint8_t proto)
{
    if (n < 16) return;
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = (d[0] & 1) ? 6 : 4;
    h.proto = proto;
    h.ttl = 64;
    h.src[0] = 10;
    h.src[3] = (uint8_t)(d[1] & 1); /* two apps */
    h.dst[0] = 192;
    h.dst[3] = (uint8_t)(d[2] & 3);
    h.sport = (uint16_t)(40000 + (d[1] & 3));
    h.dport = (d[2] & 4) ? 53 : 443;
    h.tcp.flags = d[3];
    /* sequence numbers near the ones in play, or anywhere */
    uint32_t ds = (uint32_t)d[4] << 8 | d[5], da = (uint32_t)d[6] << 8 | d[7];
    h.tcp.seq = (d[8] & 1) ? s->last_ack + ds - 128 : ((uint32_t)ds << 16 | da);
    h.tcp.ack = (d[8] & 2) ? s->last_seq + da - 128 : ((uint32_t)da << 16 | ds);
    h.tcp.window = (uint16_t)((uint32_t)d[9] << 8 | d[10]);
    h.tcp.wscale = (d[11] & 0x10) ? (uint8_t)(d[11] & 0x0f) : UM_TCP_WSCALE_NONE;
    h.tcp.mss = (d[11] & 0x20) ? (uint16_t)((uint32_t)d[12] << 8 | d[13]) : 0;
    h.tcp.sack_ok = d[11] & 0x40;
    uint8_t buf[1600];
    int len = um_ip_build(&h, d + 16, n - 16 > 1400 ? 1400 : n - 16, buf, sizeof(buf));
    if (len > 0) um_tun_stack_input(s->s, buf, (size_t)len, s->now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_t s;
    memset(&s, 0, sizeof(s));
    s.now = 1000;
    if (size < 1) return 0;
    s.mode = data[0];
    data++;
    size--;
    um_tun_stack_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.tcp.max_flows = MAX_FLOWS;
    cfg.tcp.max_bytes = MAX_BYTES;
    cfg.tcp.sndbuf = 8000;
    cfg.tcp.ooo_max = 4000;
    cfg.tcp.delack_ms = (s.mode & 64) ? 20 : 0;
    cfg.udp.max_flows = 4;
    cfg.icmp_echo = true;
    um_ptcp_ops_t tops = {out_cb, open_cb, data_cb, fin_cb, reset_cb, NULL};
    um_tunudp_ops_t uops = {out_cb, uopen_cb, udata_cb, NULL};
    s.s = um_tun_stack_new(&cfg, &tops, &uops, &s);
    if (!s.s) abort();
    um_ptcp_t *t = um_tun_stack_tcp(s.s);
    size_t off = 0;
    for (int steps = 0; off + 3 <= size && steps < 2000; steps++) {
        uint8_t op = data[off];
        size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (len > size - off) len = size - off;
        const uint8_t *d = data + off;
        off += len;
        uint32_t id = s.nids ? s.ids[(op >> 4) % (s.nids < 16 ? s.nids : 16)] : 0;
        switch (op & 0x0f) {
        case 0: um_tun_stack_input(s.s, d, len, s.now); break;
        case 1: build_and_feed(&s, d, len, UM_IPPROTO_TCP); break;
        case 2: build_and_feed(&s, d, len, UM_IPPROTO_UDP); break;
        case 3: s.now += len ? (uint64_t)d[0] * (len > 1 ? d[1] : 1) * 10 : 1; break;
        case 4: um_tun_stack_tick(s.s, s.now); break;
        case 5: um_ptcp_accept(t, id, len * 100, s.now); break;
        case 6: um_ptcp_send(t, id, d, len, s.now); break;
        case 7: um_ptcp_credit(t, id, len * 10, s.now); break;
        case 8: um_ptcp_shutdown(t, id, s.now); break;
        case 9: um_ptcp_abort(t, id); break;
        case 10: um_tunudp_reply(um_tun_stack_udp(s.s), s.udp_id, d, len, s.now); break;
        case 11:
            s.now += 60000;
            um_tun_stack_tick(s.s, s.now);
            break;
        default: build_and_feed(&s, d, len, (op & 1) ? UM_IPPROTO_ICMP : UM_IPPROTO_ICMPV6);
        }
        if (um_ptcp_flow_count(t) > MAX_FLOWS) abort();
        if (um_ptcp_stats(t)->buffered > MAX_BYTES) abort();
        if (um_tunudp_flow_count(um_tun_stack_udp(s.s)) > 4) abort();
    }
    /* everything ends eventually: hours later, only nothing is left */
    for (int i = 0; i < 40; i++) {
        s.now += 3600000;
        um_tun_stack_tick(s.s, s.now);
    }
    if (um_ptcp_flow_count(t) != 0 || um_ptcp_stats(t)->buffered != 0) abort();
    um_tun_stack_free(s.s);
    return 0;
}
