/* Routes through the kernel's own interface (rtnetlink, RFC 3549; see
 * rtnetlink(7)): look up the route the kernel would use to reach an address,
 * add and delete routes in the main table. Used by VPN mode to send
 * everything through the TUN device except the server's own addresses, and
 * to restore the previous state on exit. Acts in the network namespace the
 * process runs in. OS-specific: route_linux.c implements this header. */
#ifndef UM_TUN_ROUTE_H
#define UM_TUN_ROUTE_H

#include <stdbool.h>

#include "util/addr.h"

typedef struct {
    um_addr_t dst;   /* IPv4 or IPv6 (port ignored) */
    unsigned prefix; /* 0..32 or 0..128 */
    um_addr_t gw;    /* gateway, same family; only when has_gw */
    bool has_gw;
    int oif;        /* output interface index (0: none) */
    unsigned type;  /* RTN_UNICAST, RTN_LOCAL, ... (filled by um_route_get) */
    unsigned table; /* RT_TABLE_MAIN when 0 */
} um_route_t;

/* The route the kernel picks for ip (RTM_GETROUTE): fills out->gw/has_gw,
 * oif and type; out->dst = ip, prefix = full length. UM_ENOENT (or the
 * kernel's -ENETUNREACH) when there is none. */
int um_route_get(const um_addr_t *ip, um_route_t *out);
/* Adds r (RTM_NEWROUTE, NLM_F_EXCL): UM_EEXIST when an identical route is
 * already there. dst is masked to its prefix by the kernel's rules: pass a
 * clean network address. */
int um_route_add(const um_route_t *r);
/* Deletes r (RTM_DELROUTE, matched on table, dst/prefix, gateway, oif). */
int um_route_del(const um_route_t *r);
/* "0.0.0.0/1 via 10.0.0.1 dev 5" for logs; returns buf. */
const char *um_route_format(const um_route_t *r, char *buf, size_t n);

#endif
