/* The dns transport's server side (docs/PROTOCOL.md section 13): the
 * authoritative server of the tunnel's zone on UDP and TCP. Tunnel queries
 * (names under the zone whose tag verifies) feed one conversation each: a
 * reliable carrier (dns_car.h over rel) handed to the caller, which gives
 * it to the acceptor; every answer carries what that conversation has to
 * send. Everything else gets an ordinary authoritative answer: the apex's
 * SOA and NS, NXDOMAIN with the SOA below it, REFUSED outside the zone,
 * FORMERR for a mangled query, NOTIMP for another opcode.
 *
 * Bounds: at most max_convs conversations (each within the rel buffer
 * bounds and a small answer cache), at most UM_DNS_SRV_TCP_MAX TCP
 * connections, each closed after UM_DNS_SRV_TCP_IDLE_MS idle. */
#ifndef UM_TRANSPORT_DNS_SERVER_H
#define UM_TRANSPORT_DNS_SERVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "transport/carrier.h"
#include "transport/rel.h"

#define UM_DNS_SRV_CONVS_DEFAULT 256
#define UM_DNS_SRV_TCP_MAX       128
#define UM_DNS_SRV_TCP_IDLE_MS   20000
#define UM_DNS_CONV_IDLE_MS      60000 /* no query of a conversation for this long: dropped */

typedef struct um_dns_server um_dns_server_t;

typedef struct {
    const char *zone; /* borrowed for um_dns_server_new */
    uint8_t server_pub[32];
    uint32_t max_convs; /* 0 = UM_DNS_SRV_CONVS_DEFAULT */
    um_rel_cfg_t rel;
} um_dns_server_cfg_t;

/* A new conversation: car is the callee's (close it when done); peer is
 * the query's source (the resolver), borrowed for the call. */
typedef void (*um_dns_server_conv_cb)(void *ud, um_carrier_t *car, const struct sockaddr *peer);

typedef struct {
    uint64_t queries, tunnel, answered_data, dup, nxdomain, refused, formerr, dropped;
    uint64_t convs_opened, convs_refused;
    uint32_t convs, tcp_conns;
} um_dns_server_stats_t;

int um_dns_server_new(uv_loop_t *loop, const struct sockaddr *listen,
                      const um_dns_server_cfg_t *cfg, um_dns_server_conv_cb cb, void *ud,
                      um_dns_server_t **out);
int um_dns_server_port(const um_dns_server_t *s);
void um_dns_server_stats(const um_dns_server_t *s, um_dns_server_stats_t *st);
/* Closes the sockets; the conversations' carriers end for their holders. */
void um_dns_server_close(um_dns_server_t *s);

/* The pure core: one query in, one reply out (or *outn = 0: no reply).
 * limit: the transport's bound on the reply. Exposed for the fuzz target;
 * the caller supplies the loop-free parts through the server. */
int um_dns_server_handle(um_dns_server_t *s, const uint8_t *q, size_t n, size_t limit,
                         const struct sockaddr *peer, uint8_t *out, size_t cap, size_t *outn);

#endif
