/* VPN mode ('umbra client --tun'): the libuv glue between a TUN device and
 * the tunnel. Packets read from the device go into the sans-I/O packet core
 * (src/tun/stack.h); every TCP flow it terminates becomes one stream opened
 * through a um_conn_provider_t (the client's hub), every UDP flow one
 * datagram association; packets the core produces are written back to the
 * device. Routes: everything through the device except the servers' own
 * addresses (host routes via the route that reached them before), restored
 * on stop; see docs/internals/tun.md.
 *
 *   TUN fd ──uv_poll──► um_tun_stack_input ──► ptcp flow ──► um_conn_open/write ──► hub ══► server
 *   TUN fd ◄─write/queue── output ◄── um_ptcp_send ◄── on_data ◄────────────────── hub
 */
#ifndef UM_APP_VPN_H
#define UM_APP_VPN_H

#include <stdint.h>
#include <uv.h>

#include "app/config.h"
#include "proxy/conn.h"

typedef struct um_vpn um_vpn_t;

typedef struct {
    uint64_t pkts_in, pkts_out, bytes_in, bytes_out; /* device reads / writes */
    uint64_t drop_in;                                /* refused by the packet core */
    uint64_t drop_out;                               /* write queue full or write error */
    uint64_t tcp_opened, tcp_refused, udp_opened, udp_refused;
    uint64_t udp_drop; /* datagrams that could not be sent either way */
    size_t tcp_active, udp_active;
} um_vpn_stats_t;

/* Opens (or, with cfg->tun_fd >= 0, adopts) the TUN device, configures it
 * (address, MTU, up; not for an adopted descriptor, which its parent
 * configured), installs the routes, and starts pumping packets. cfg is
 * borrowed for the VPN's lifetime; prov's ctx must outlive it too. On
 * failure nothing is left behind (device closed, routes removed) and the
 * reason has been logged. Servers given by name are resolved here, once,
 * before the routes change. */
int um_vpn_start(uv_loop_t *loop, const um_config_t *cfg, um_conn_provider_t prov, um_vpn_t **out);
/* Resets every flow (RST to the applications), closes every stream and
 * association, removes exactly the routes it added, closes the device.
 * Memory is released in libuv close callbacks: run the loop afterwards.
 * NULL is a no-op. */
void um_vpn_stop(um_vpn_t *v);
void um_vpn_stats(const um_vpn_t *v, um_vpn_stats_t *st);
/* The interface that reached the outside before the VPN's routes (the
 * default route's, else the first server's): routing rules' direct traffic
 * is bound to it so it never enters the TUN. "" when unknown (no routes of
 * ours, an adopted descriptor). */
const char *um_vpn_direct_device(const um_vpn_t *v);
/* The device's name ("" before start). */
const char *um_vpn_ifname(const um_vpn_t *v);

#endif
