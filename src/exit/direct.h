/* The direct connector: a um_conn_provider_t (src/proxy/conn.h) over real TCP
 * connections and UDP sockets from this host, with the egress policy, async
 * resolution and happy-eyeballs dialing of this layer. The proxies use it to
 * work standalone (and in tests); the server's egress does the same work for
 * streams that arrive through the tunnel. */
#ifndef UM_EXIT_DIRECT_H
#define UM_EXIT_DIRECT_H

#include <stdint.h>
#include <uv.h>

#include "exit/dial.h"
#include "exit/policy.h"
#include "proxy/conn.h"

typedef struct um_direct um_direct_t;

/* policy is borrowed and must outlive the connector. connect_timeout_ms: 0
 * means 10000. The connector owns a resolver. */
int um_direct_new(uv_loop_t *loop, const um_policy_t *policy, uint32_t connect_timeout_ms,
                  um_direct_t **out);
/* A connector for one client: the root's resolver, policy and global dial
 * budget, plus a budget of its own (concurrent dials and connection
 * attempts; see direct.c). Free it (every reference) before the root. */
int um_direct_client_new(um_direct_t *root, um_direct_t **out);
/* Another reference (a second session of the same client); returns d. */
um_direct_t *um_direct_ref(um_direct_t *d);
/* Drops a reference; the last one frees. Every stream and association of
 * this connector must have been closed first. Handles are released in their
 * close callbacks. NULL is a no-op. */
void um_direct_free(um_direct_t *d);
/* The connector's budget in use: global for the root, the client's else. */
void um_direct_quota(const um_direct_t *d, um_dial_quota_t *out);

/* Binds every later socket of d to the interface ifname (SO_BINDTODEVICE;
 * NULL or "": none), copied. VPN mode: direct traffic never enters the TUN. */
void um_direct_set_device(um_direct_t *d, const char *ifname);

/* The provider that opens streams and associations through d. */
um_conn_provider_t um_direct_connector(um_direct_t *d);
/* The resolver the connector uses (borrowed; the root's for a client). */
struct um_resolver *um_direct_resolver(um_direct_t *d);

#endif
