/* Fuzz the IP/TCP/UDP/ICMP parser with a round-trip property: a packet that
 * parses must build (from its view and payload) into a packet that parses
 * to the same fields and payload, and building that again gives the same
 * bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tun/ip.h"

static uint8_t out1[70000], out2[70000];

static int same(const um_ip_pkt_t *a, const uint8_t *pa, const um_ip_pkt_t *b, const uint8_t *pb)
{
    if (a->version != b->version || a->proto != b->proto || a->ttl != b->ttl || a->tos != b->tos ||
        memcmp(a->src, b->src, 16) || memcmp(a->dst, b->dst, 16) ||
        a->payload_len != b->payload_len ||
        memcmp(pa + a->payload_off, pb + b->payload_off, a->payload_len))
        return 0;
    if (a->proto == UM_IPPROTO_TCP || a->proto == UM_IPPROTO_UDP)
        if (a->sport != b->sport || a->dport != b->dport) return 0;
    if (a->proto == UM_IPPROTO_TCP) {
        const um_tcp_hdr_t *x = &a->tcp, *y = &b->tcp;
        if (x->seq != y->seq || x->ack != y->ack || x->flags != y->flags ||
            x->window != y->window || x->urg != y->urg || x->mss != y->mss ||
            x->wscale != y->wscale || x->sack_ok != y->sack_ok || x->has_ts != y->has_ts ||
            (x->has_ts && (x->ts_val != y->ts_val || x->ts_ecr != y->ts_ecr)))
            return 0;
    }
    if (a->proto == UM_IPPROTO_ICMP || a->proto == UM_IPPROTO_ICMPV6)
        if (a->icmp.type != b->icmp.type || a->icmp.code != b->icmp.code ||
            memcmp(a->icmp.rest, b->icmp.rest, 4))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    um_ip_pkt_t a, b;
    if (um_ip_parse(&a, data, size) != UM_IP_OK) return 0;
    if (a.total_len > size || a.l4_off + a.l4_len > a.total_len ||
        a.payload_off + a.payload_len > a.total_len)
        abort();
    int n = um_ip_build(&a, data + a.payload_off, a.payload_len, out1, sizeof(out1));
    if (n < 0) abort();
    if (um_ip_parse(&b, out1, (size_t)n) != UM_IP_OK) abort();
    if (!same(&a, data, &b, out1)) abort();
    int m = um_ip_build(&b, out1 + b.payload_off, b.payload_len, out2, sizeof(out2));
    if (m != n || memcmp(out1, out2, (size_t)n) != 0) abort();
    return 0;
}
