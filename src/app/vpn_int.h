/* Internal to VPN mode (src/app/vpn*.c): its state and the calls between
 * its files.
 *   vpn.c        the lifecycle (um_vpn_start/stop), device output and its
 *                bounded write queue, the loop glue (poll, timer, prepare)
 *   vpn_flow.c   the packet path: TCP flows via pseudo-TCP <-> streams, UDP
 *                flows <-> associations, lingering streams
 *   vpn_route.c  device setup: MTU, addresses, routes (server pins, the
 *                resolvers with tun_dns), and removing the routes at teardown */
#ifndef UM_APP_VPN_INT_H
#define UM_APP_VPN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "app/vpn.h"
#include "tun/route.h"
#include "tun/stack.h"
#include "tun/tundev.h"
#include "util/buf.h"
#include "util/log.h"

#define CREDIT_LIMIT  (2u * UM_CONN_HIGH_WATER)
#define CREDIT_MIN    (16u * 1024u) /* top up in steps of at least this */
#define LEFTOVER_MAX  (256u * 1024u)
#define READ_BATCH    64         /* packets per readable callback */
#define WQ_MAX_PKTS   2048       /* packets waiting for the device */
#define WQ_MAX_BYTES  (4u << 20) /* and their bytes */
#define LINGER_MS     30000      /* a finished stream flushing its queue */
#define SWEEP_MS      100
#define MAX_ROUTES    (UM_CFG_MAX_SERVERS * UM_CFG_MAX_ADDRS * 4 + 16)
#define MAX_TCP_FLOWS 4096
#define MAX_UDP_FLOWS 1024

typedef struct tflow {
    um_vpn_t *v;
    uint32_t id; /* ptcp id */
    um_conn_t *conn;
    size_t granted; /* credit ptcp still holds for the app */
    um_buf_t left;  /* stream bytes ptcp could not take yet */
    bool tcp_alive; /* the ptcp id is valid */
    bool opening, app_fin, eof_wanted, tcp_shut, paused, lingering;
    uint64_t linger_deadline;
    struct tflow *lnext;
} tflow_t;

typedef struct uflow {
    um_vpn_t *v;
    uint32_t id;
    um_assoc_t *a;
    um_addr_t dst;
} uflow_t;

typedef struct wpkt {
    struct wpkt *next;
    size_t n;
    uint8_t p[];
} wpkt_t;

struct um_vpn {
    uv_loop_t *loop;
    const um_config_t *cfg;
    um_conn_provider_t prov;
    um_tundev_t dev;
    um_tun_stack_t *stack;
    unsigned mtu;
    uint8_t *rbuf;
    uv_poll_t poll;
    uv_timer_t timer, sweep;
    uv_prepare_t prep;
    int handles; /* open libuv handles */
    bool polling, stopping, dirty, sweeping;
    int poll_events;
    tflow_t **tcp; /* by slot (id & 0xffff) */
    uflow_t **udp;
    uint32_t tcp_cap, udp_cap;
    tflow_t *linger;
    wpkt_t *wq_head, *wq_tail;
    size_t wq_pkts, wq_bytes;
    um_route_t routes[MAX_ROUTES]; /* the routes we added, in order */
    size_t n_routes;
    um_vpn_stats_t st;
    um_ratelimit_t rl;
    /* rules: the interface of the route out before ours (direct traffic) */
    char direct_dev[16];
};

/* vpn.c */
void vpn_output(void *ctx, const uint8_t *p, size_t n);

/* vpn_flow.c */
extern const um_ptcp_ops_t vpn_tcp_ops;
extern const um_tunudp_ops_t vpn_udp_ops;
um_ptcp_t *vpn_ptcp(um_vpn_t *v);
void vpn_uflow_free(um_vpn_t *v, uflow_t *f);

/* vpn_route.c */
int vpn_setup_device(um_vpn_t *v);
void vpn_del_routes(um_vpn_t *v);

#endif
