/* The `ws` transport's first-flight codec (docs/PROTOCOL.md 11): umbra's
 * handshake inside a WebSocket upgrade, as it passes a reverse proxy or a
 * CDN that terminates TLS and forwards HTTP.
 *
 *   client  GET <path> with a browser's upgrade fields; Noise message 1,
 *           base64url, is the Sec-WebSocket-Protocol value (early data: the
 *           session is up one round trip after the front's TLS).
 *   server  101 Switching Protocols with the key's Sec-WebSocket-Accept,
 *           then one unmasked binary frame: Noise message 2.
 *
 * Then both sides run the session over um_ws_carrier (binary messages). A
 * request that is not an upgrade for the path, or whose message 1 does not
 * authenticate, gets a plain 404 (UM_UNAUTH_REFUSE), or the fallback. */
#ifndef UM_TRANSPORT_CODEC_WS_H
#define UM_TRANSPORT_CODEC_WS_H

#include <uv.h>

#include "transport/codec.h"
#include "transport/ws_http.h"

#define UM_WS_PATH_MAX 255
#define UM_WS_HOST_MAX 261 /* a DNS name and a port */
/* Message 1 and 2 lengths: short enough for any front's header limits. */
#define UM_WS_MSG1_SPAN    256
#define UM_WS_MSG2_SPAN    96
#define UM_HS_MSG1_MAX_WS  1024 /* longest message 1 a request carries */
#define UM_HS_MSG1_B64_MAX 1400 /* its base64url, with the NUL */
/* Keepalive: a ping after this much quiet, well inside CDN idle limits
 * (Cloudflare closes a WebSocket after 100 s without a frame). */
#define UM_WS_PING_MS 30000

typedef struct {
    um_codec_t base;
    char path[UM_WS_PATH_MAX + 1]; /* "/..." */
    char host[UM_WS_HOST_MAX + 1]; /* client: the Host field */
    size_t msg1_min, msg2_min;     /* shortest valid Noise messages (session layer) */
    uv_loop_t *loop;               /* for the carrier's keepalive pings (NULL: none) */
    uint32_t ping_ms;              /* 0: UM_WS_PING_MS */
    /* client: extra upgrade request fields (um_ws_xhdr_check), set after init */
    char xhdr[UM_WS_XHDR_MAX][UM_WS_XHDR_LEN + 1];
    size_t n_xhdr;
} um_codec_ws_t;

extern const um_codec_ops_t um_codec_ws_ops;

/* path: "/" then printable characters without spaces; host: 1..261
 * printable characters (the server's host may be ""). */
int um_codec_ws_init(um_codec_ws_t *c, const char *path, const char *host, size_t msg1_min,
                     size_t msg2_min);
bool um_ws_path_ok(const char *path);

#endif
