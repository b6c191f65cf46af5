/* The client's side of signed server lists (docs/PROTOCOL.md section 10):
 * fetches lists through the tunnel (list.umbra.internal:1) and from each
 * list-url (libcurl on the libuv thread pool), checks them against the
 * operator key, persists accepted ones in the state directory, and merges
 * their servers into the client's (mutable) config. Events list_accepted
 * and list_refused. */
#ifndef UM_APP_LISTFETCH_H
#define UM_APP_LISTFETCH_H

#include <stddef.h>
#include <uv.h>

#include "app/config.h"
#include "app/events.h"
#include "proxy/conn.h"

typedef struct um_listfetch um_listfetch_t;

/* New servers were appended to cfg->servers (added of them). */
typedef void (*um_listfetch_added_cb)(void *ud, size_t added);

/* cfg (borrowed; its servers and transports grow), ev (borrowed) and prov
 * (the tunnel's streams) outlive the fetcher. Loads the lists kept in the
 * state directory and starts fetching the list-urls. 0 or UM_ENOMEM. */
int um_listfetch_new(uv_loop_t *loop, um_config_t *cfg, um_events_t *ev, um_conn_provider_t prov,
                     um_listfetch_added_cb cb, void *ud, um_listfetch_t **out);
/* A session came up to `server` (borrowed for the call), or went down
 * (NULL). Up: fetches its list through the tunnel when it has an
 * operator-key (at most once a minute). */
void um_listfetch_session(um_listfetch_t *lf, const um_peer_server_t *server);
/* Stops: no callback or event after this; memory goes once the loop has
 * run the close callbacks and any fetch in flight has ended. NULL: no-op. */
void um_listfetch_free(um_listfetch_t *lf);

/* The state directory: $XDG_STATE_HOME/umbra, else $HOME/.local/state/umbra.
 * 0, or UM_ENOENT when neither variable is set (absolute). */
int um_state_dir(char *out, size_t cap);

#endif
