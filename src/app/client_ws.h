/* The client side of a ws transport (client_ws.c), shared by the client and
 * the bridge. */
#ifndef UM_APP_CLIENT_WS_H
#define UM_APP_CLIENT_WS_H

#include <uv.h>

#include "app/config.h"
#include "session/connector.h"
#include "transport/codec_ws.h"

/* The codec and the front's TLS of ws transport tr for a dial to dst, into
 * ws (which the connector borrows) and cc; UM_EINVAL (logged) when the
 * transport cannot be set up. */
int cli_ws_setup(uv_loop_t *loop, const um_transport_cfg_t *tr, const um_addr_t *dst,
                 um_codec_ws_t *ws, um_connector_cfg_t *cc);

#endif
