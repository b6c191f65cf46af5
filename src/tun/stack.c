/* Packet dispatch, drop accounting and local ICMP echo (see stack.h). */
#include "tun/stack.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

struct um_tun_stack {
    um_tun_stack_config_t cfg;
    um_ptcp_t *tcp;
    um_tunudp_t *udp;
    void (*output)(void *ctx, const uint8_t *p, size_t n);
    void *ctx;
    uint8_t *pkt; /* scratch for an echo reply */
    size_t pkt_cap;
    um_tun_stack_stats_t st;
    um_ratelimit_t rl;
};

um_tun_stack_t *um_tun_stack_new(const um_tun_stack_config_t *cfg, const um_ptcp_ops_t *tcp_ops,
                                 const um_tunudp_ops_t *udp_ops, void *ctx)
{
    if (!tcp_ops || !udp_ops || !tcp_ops->output || !udp_ops->output) return NULL;
    um_tun_stack_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    if (cfg) s->cfg = *cfg;
    um_ptcp_config_defaults(&s->cfg.tcp);
    if (!s->cfg.udp.mtu) s->cfg.udp.mtu = s->cfg.tcp.mtu;
    s->output = tcp_ops->output;
    s->ctx = ctx;
    s->pkt_cap = s->cfg.tcp.mtu;
    s->pkt = malloc(s->pkt_cap);
    s->tcp = um_ptcp_new(&s->cfg.tcp, tcp_ops, ctx);
    s->udp = um_tunudp_new(&s->cfg.udp, udp_ops, ctx);
    if (!s->pkt || !s->tcp || !s->udp) {
        um_tun_stack_free(s);
        return NULL;
    }
    return s;
}

void um_tun_stack_free(um_tun_stack_t *s)
{
    if (!s) return;
    um_ptcp_free(s->tcp);
    um_tunudp_free(s->udp);
    free(s->pkt);
    free(s);
}

static int echo(um_tun_stack_t *s, const um_ip_pkt_t *in, const uint8_t *p)
{
    bool v4 = in->version == 4;
    if (!s->cfg.icmp_echo || in->icmp.type != (v4 ? 8 : 128) || in->icmp.code != 0) {
        s->st.drop_other++;
        return UM_EACCES;
    }
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = in->version;
    h.proto = in->proto;
    h.ttl = 64;
    memcpy(h.src, in->dst, 16);
    memcpy(h.dst, in->src, 16);
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    h.icmp.type = v4 ? 0 : 129;
    memcpy(h.icmp.rest, in->icmp.rest, 4);
    int n = um_ip_build(&h, p + in->payload_off, in->payload_len, s->pkt, s->pkt_cap);
    if (n < 0) {
        s->st.drop_oversize++;
        return n;
    }
    s->st.icmp_echo_replies++;
    s->output(s->ctx, s->pkt, (size_t)n);
    return 0;
}

int um_tun_stack_input(um_tun_stack_t *s, const uint8_t *p, size_t n, uint64_t now)
{
    if (!s || (!p && n)) return UM_EINVAL;
    s->st.rx_packets++;
    s->st.rx_bytes += n;
    if (n > s->cfg.tcp.mtu) {
        s->st.drop_oversize++;
        return UM_EMSGSIZE;
    }
    um_ip_pkt_t pkt;
    um_ip_drop_t why = um_ip_parse(&pkt, p, n);
    if (why != UM_IP_OK) {
        s->st.drop[why]++;
        um_log_limited(&s->rl, 5, 1000, UM_LOG_DEBUG, "tun: dropped packet (%zu bytes): %s", n,
                       um_ip_drop_name(why));
        return UM_EPROTO;
    }
    switch (pkt.proto) {
    case UM_IPPROTO_TCP: return um_ptcp_input(s->tcp, &pkt, p, now);
    case UM_IPPROTO_UDP: return um_tunudp_input(s->udp, &pkt, p, now);
    default: return echo(s, &pkt, p);
    }
}

void um_tun_stack_tick(um_tun_stack_t *s, uint64_t now)
{
    if (!s) return;
    um_ptcp_tick(s->tcp, now);
    um_tunudp_tick(s->udp, now);
}

uint64_t um_tun_stack_next_timer(const um_tun_stack_t *s)
{
    uint64_t a = um_ptcp_next_timer(s->tcp), b = um_tunudp_next_timer(s->udp);
    return a < b ? a : b;
}

um_ptcp_t *um_tun_stack_tcp(um_tun_stack_t *s)
{
    return s->tcp;
}
um_tunudp_t *um_tun_stack_udp(um_tun_stack_t *s)
{
    return s->udp;
}
const um_tun_stack_stats_t *um_tun_stack_stats(const um_tun_stack_t *s)
{
    return &s->st;
}
