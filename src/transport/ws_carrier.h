/* The `ws` transport's carrier (docs/PROTOCOL.md 11.4): RFC 6455 framing
 * over another carrier (TCP, or the client's TLS), by libwslay's event API.
 *
 *   - each write is one binary message (client frames masked);
 *   - incoming data frames (binary, continuation; fragmented or not) are
 *     streamed through as they arrive, without buffering whole messages:
 *     one inner read gives at most one read callback, so reads behave as
 *     the inner carrier's; a text frame, a bad frame (wslay: reserved bits,
 *     an unmasked client frame, a control frame over 125 bytes or
 *     fragmented) or a message over UM_WS_MSG_MAX ends the connection
 *     (a read error), never the process;
 *   - pings are answered by wslay; the peer's close frame is answered and
 *     read as the orderly end (UM_EPIPE); shutdown sends a close frame
 *     after the queued messages, then ends the inner carrier's writing;
 *   - with a loop, the client pings after ping_ms without a frame sent,
 *     keeping fronts with idle limits from closing it.
 *
 * Backpressure: queued() is wslay's queue plus the inner carrier's; wslay
 * holds what the inner carrier refused and hands it on at its drain. */
#ifndef UM_TRANSPORT_WS_CARRIER_H
#define UM_TRANSPORT_WS_CARRIER_H

#include <stdbool.h>
#include <uv.h>

#include "transport/carrier.h"

#define UM_WS_MSG_MAX  (16u << 20) /* longest message accepted */
#define UM_WS_REC_HINT 16384

typedef struct {
    bool server;      /* server side: frames unmasked out, masked in */
    uv_loop_t *loop;  /* NULL: no pings of our own */
    uint32_t ping_ms; /* 0: UM_WS_PING_MS */
} um_ws_carrier_cfg_t;

extern const um_carrier_ops_t um_ws_carrier_ops;

/* Takes ownership of inner (closing the ws carrier closes it). */
int um_ws_carrier_new(um_carrier_t *inner, const um_ws_carrier_cfg_t *cfg, um_carrier_t **out);

#endif
