/* The routing connector: a um_conn_provider_t (proxy/conn.h) that sends each
 * destination through the tunnel provider, the direct provider, or refuses it
 * (on_open with UM_CONN_NOT_ALLOWED), by the compiled rules
 * (proxy/rules.h). The SOCKS5 and HTTP proxies, the forwards and VPN mode
 * are given this one instead of the tunnel's.
 *
 * Rules are swapped with um_router_set_rules (SIGHUP): streams already open
 * stay on the provider they were opened on; new opens use the new rules. A
 * UDP association opens a tunnel and a direct association on first use and
 * routes every datagram by its destination (block: dropped, UM_EACCES).
 * DNS answers coming back on an association (source port 53) teach the
 * router the names of their addresses (proxy/dnsmap.h): a later stream or
 * datagram to such an address is matched by domain and keyword rules on
 * that name as well as by the address rules (VPN mode, where every flow
 * arrives as an address). */
#ifndef UM_PROXY_ROUTER_H
#define UM_PROXY_ROUTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/conn.h"
#include "proxy/rules.h"

typedef struct um_router um_router_t;

typedef struct {
    uint64_t opens[3]; /* streams opened, by um_rule_action_t */
    uint64_t datagrams[3];
    uint64_t learnt; /* DNS answers whose addresses' names were learnt */
    uint64_t named;  /* IP destinations routed by a learnt name too */
} um_router_stats_t;

/* The providers are borrowed (their contexts must outlive the router);
 * rules: taken (NULL: everything through the tunnel). */
int um_router_new(uv_loop_t *loop, um_conn_provider_t tunnel, um_conn_provider_t direct,
                  um_rules_t *rules, um_router_t **out);
/* Every stream and association opened through it must be closed first, and
 * the loop run once (refusals are released in close callbacks). */
void um_router_free(um_router_t *r);
/* Takes rules; frees the old set. */
void um_router_set_rules(um_router_t *r, um_rules_t *rules);
const um_rules_t *um_router_rules(const um_router_t *r);
/* Refuse what the rules send direct (as block), e.g. VPN mode without an
 * interface to bind direct sockets to: they would loop into the TUN. */
void um_router_refuse_direct(um_router_t *r, bool refuse);
void um_router_stats(const um_router_t *r, um_router_stats_t *out);
um_conn_provider_t um_router_connector(um_router_t *r);

#endif
