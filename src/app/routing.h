/* The client's routing (split tunnelling, docs/CONFIG.md "Routing rules"):
 * builds the compiled rules from the config (rule lines, then each
 * rules-file in order; geoip-file tables), a direct connector from this host,
 * and the router (proxy/router.h) that the proxies, forwards and VPN mode are
 * given instead of the tunnel's provider. On SIGHUP it reads the rules and
 * GeoIP files again and swaps the set in: open streams are not touched; a
 * file with an error leaves the old rules in force (logged with the file
 * and line). */
#ifndef UM_APP_ROUTING_H
#define UM_APP_ROUTING_H

#include <stdbool.h>
#include <uv.h>

#include "app/config.h"
#include "app/events.h"
#include "proxy/conn.h"
#include "proxy/router.h"

typedef struct um_routing um_routing_t;

/* Is any routing configured (rules, rules files or a default other than
 * tunnel)? Without, the client hands out the tunnel's provider as before. */
bool um_routing_wanted(const um_config_t *cfg);

/* Compiles cfg's rules (reading its rules and GeoIP files). 0, or a UM_E*
 * code with the message in err: "FILE:LINE: key 'rule': ...", "RULESFILE:
 * LINE: ...", "GEOIPFILE:LINE: ...". *out: caller frees (um_rules_free). */
int um_routing_build(const um_config_t *cfg, um_rules_t **out, char *err, size_t errlen);

/* cfg is borrowed for the routing's lifetime; tunnel: the hub's provider.
 * ev (may be NULL): a "rules_reloaded" event on each reload. */
int um_routing_new(uv_loop_t *loop, const um_config_t *cfg, um_conn_provider_t tunnel,
                   um_events_t *ev, um_routing_t **out, char *err, size_t errlen);
/* Direct connections leave through this interface (SO_BINDTODEVICE; VPN
 * mode: never into the TUN). NULL or "": routing tables decide. */
void um_routing_bind_device(um_routing_t *rt, const char *ifname);
/* VPN mode is up: bind direct sockets to dev (um_vpn_direct_device); when
 * dev is "" and the VPN installed its routes, direct traffic would loop into
 * the TUN, so it is refused (logged once). */
void um_routing_vpn(um_routing_t *rt, const char *dev, bool own_routes);
/* Reads the files again; 0 or the error (old rules kept). */
int um_routing_reload(um_routing_t *rt);
um_conn_provider_t um_routing_connector(um_routing_t *rt);
void um_routing_stats(const um_routing_t *rt, um_router_stats_t *out);
/* After every stream and association opened through it was closed. The
 * signal handle is closed here; run the loop to release it. */
void um_routing_free(um_routing_t *rt);

#endif
