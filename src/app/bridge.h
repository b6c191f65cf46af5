/* Bridges (docs/PROTOCOL.md "Bridges", docs/CONFIG.md `via`): a [server]
 * that another one names in `via` is a bridge. The client keeps a session to
 * it (an ordinary umbra session, over its transport and the upstream proxy
 * if any) while an exit needs it, and the session to the exit runs over a
 * stream of that session, opened to the exit's address: the bridge's egress
 * relays it like any TCP destination, so it learns the exit's address and
 * sees only the exit session's records.
 *
 * The client's connector gets the bridge as a dialer (session/connector.h):
 * each dial opens a stream through the bridge's tunnel, waiting (bounded)
 * for a session to the bridge, which is made on demand and again after it
 * went down. Ownership: the bridge borrows cfg and the server entry for its
 * lifetime; um_bridge_free() resets its streams and closes its session. */
#ifndef UM_APP_BRIDGE_H
#define UM_APP_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "app/config.h"
#include "app/events.h"
#include "session/connector.h"

typedef struct um_bridge um_bridge_t;

/* The bridge for cfg->servers[index]; ev (borrowed, may be NULL) gets its
 * bridge_up / bridge_down events. */
int um_bridge_new(uv_loop_t *loop, const um_config_t *cfg, size_t index, um_events_t *ev,
                  um_bridge_t **out);
/* Starts the end: the session's streams are reset and it closes; the memory
 * goes on a later turn of the loop (run it while um_bridge_live() > 0). */
void um_bridge_free(um_bridge_t *b); /* NULL is a no-op */
size_t um_bridge_live(void);
/* The dialer a connector to an exit behind this bridge uses (borrowed for
 * the bridge's lifetime). */
const um_connector_dialer_t *um_bridge_dialer(um_bridge_t *b);
/* Whether the bridge's own session is up (status reports). */
bool um_bridge_up(const um_bridge_t *b);

/* cfg->servers[i] is some server's bridge (named in a `via`). */
bool um_bridge_is_bridge(const um_config_t *cfg, size_t i);
/* The index of the bridge of cfg->servers[i], or -1 when it has none. */
int um_bridge_of(const um_config_t *cfg, size_t i);

#endif
