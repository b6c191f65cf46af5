/* um_tunudp_t: UDP flows seen on the TUN device, each 5-tuple mapped to one
 * datagram association of the layer above (DNS to port 53 included: it is
 * just another flow). Sans-I/O like um_ptcp_t: packets in through
 * um_tunudp_input(), reply packets out through ops->output(), time passed in.
 *
 *   first datagram of a 5-tuple ─► on_open(id, src, dst): 0 accept, < 0 refuse
 *                                  (the datagram is dropped and counted; the
 *                                  next one asks again)
 *   every datagram (accepted)  ─► on_datagram(id, payload)
 *   um_tunudp_reply(id, payload) builds the answer packet (addresses and
 *                                  ports swapped, checksum) and outputs it
 *   idle for idle_timeout_ms (dns_timeout_ms for port 53), or evicted as
 *   the least recently used when the table is full ─► on_close(id)
 *   (eviction happens before on_open is asked, so a refused first datagram
 *   on a full table still costs the oldest flow its slot)
 * After on_close, or after um_tunudp_close(id), the id is dead: calls with
 * it return UM_ENOENT. Callbacks may call back into this API. */
#ifndef UM_TUN_UDP_H
#define UM_TUN_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "tun/ip.h"
#include "util/addr.h"

typedef struct um_tunudp um_tunudp_t;

typedef struct {
    uint32_t max_flows;       /* default 512, at most 65535 */
    uint32_t idle_timeout_ms; /* default 60000 */
    uint32_t dns_timeout_ms;  /* flows to port 53 (default 10000) */
    uint16_t mtu;             /* replies larger than this are refused (default 1500) */
} um_tunudp_config_t;

typedef struct {
    void (*output)(void *ctx, const uint8_t *p, size_t n); /* p borrowed */
    int (*on_open)(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst);
    void (*on_datagram)(void *ctx, uint32_t id, const uint8_t *p, size_t n); /* p borrowed */
    void (*on_close)(void *ctx, uint32_t id);
} um_tunudp_ops_t;

typedef struct {
    uint64_t flows_opened, flows_refused, flows_evicted, flows_expired, flows_active;
    uint64_t dgram_in, dgram_out, bytes_in, bytes_out, drop_refused, drop_reply_size;
} um_tunudp_stats_t;

/* cfg copied (NULL = defaults), ops copied, ctx borrowed. Caller frees. */
um_tunudp_t *um_tunudp_new(const um_tunudp_config_t *cfg, const um_tunudp_ops_t *ops, void *ctx);
/* Forgets every flow silently. NULL is a no-op. */
void um_tunudp_free(um_tunudp_t *u);

/* One parsed UDP packet (proto UDP) and its bytes (borrowed). 0, or
 * UM_EACCES (refused by on_open), UM_EINVAL. */
int um_tunudp_input(um_tunudp_t *u, const um_ip_pkt_t *pkt, const uint8_t *p, uint64_t now_ms);
/* A datagram back to the app from the flow's destination; p borrowed.
 * UM_ENOENT, UM_EMSGSIZE (larger than the MTU allows). */
int um_tunudp_reply(um_tunudp_t *u, uint32_t id, const uint8_t *p, size_t n, uint64_t now_ms);
/* Forget a flow now (no callback). */
int um_tunudp_close(um_tunudp_t *u, uint32_t id);
/* Expires idle flows (on_close for each). */
void um_tunudp_tick(um_tunudp_t *u, uint64_t now_ms);
uint64_t um_tunudp_next_timer(const um_tunudp_t *u);
uint32_t um_tunudp_flow_count(const um_tunudp_t *u);
const um_tunudp_stats_t *um_tunudp_stats(const um_tunudp_t *u);

#endif
