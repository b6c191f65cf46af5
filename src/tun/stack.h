/* um_tun_stack_t: the packet core of VPN mode. Takes every IP packet read
 * from the TUN device, validates it (um_ip_parse), counts and drops what is
 * malformed, truncated, fragmented or unhandled, answers ICMP / ICMPv6 echo
 * locally (optional), and hands TCP to um_ptcp_t and UDP to um_tunudp_t.
 * Sans-I/O: the caller reads the device, calls um_tun_stack_input() per
 * packet and um_tun_stack_tick() on a timer, and writes what ops.output
 * produces. */
#ifndef UM_TUN_STACK_H
#define UM_TUN_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tun/ip.h"
#include "tun/ptcp.h"
#include "tun/udp.h"

typedef struct {
    um_ptcp_config_t tcp;
    um_tunudp_config_t udp;
    bool icmp_echo; /* answer echo requests to any address locally */
} um_tun_stack_config_t;

typedef struct {
    uint64_t rx_packets, rx_bytes;
    uint64_t drop[UM_IP_DROP__COUNT]; /* by reason; [UM_IP_OK] unused */
    uint64_t drop_oversize;           /* longer than the MTU */
    uint64_t drop_other;              /* valid but unwanted (ICMP we don't answer, ...) */
    uint64_t icmp_echo_replies;
} um_tun_stack_stats_t;

typedef struct um_tun_stack um_tun_stack_t;

/* The output callbacks of tcp_ops and udp_ops must both be set (they may be
 * the same function). cfg copied (NULL = defaults), ops copied, ctx borrowed
 * (passed to every callback of both). Caller frees. */
um_tun_stack_t *um_tun_stack_new(const um_tun_stack_config_t *cfg, const um_ptcp_ops_t *tcp_ops,
                                 const um_tunudp_ops_t *udp_ops, void *ctx);
void um_tun_stack_free(um_tun_stack_t *s);

/* One packet from the device (borrowed). 0 when it was taken, or a negative
 * code when it was dropped (and counted). */
int um_tun_stack_input(um_tun_stack_t *s, const uint8_t *p, size_t n, uint64_t now_ms);
void um_tun_stack_tick(um_tun_stack_t *s, uint64_t now_ms);
uint64_t um_tun_stack_next_timer(const um_tun_stack_t *s);

um_ptcp_t *um_tun_stack_tcp(um_tun_stack_t *s);
um_tunudp_t *um_tun_stack_udp(um_tun_stack_t *s);
const um_tun_stack_stats_t *um_tun_stack_stats(const um_tun_stack_t *s);

#endif
