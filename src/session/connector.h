/* Client side glue: dial the server, send the transport's first flight (the
 * codec's shape of Noise message 1), read the reply, finish the handshake,
 * send what the codec sends after it, wrap the connection in the transport's
 * carrier, and report the established session (or a failure) once through
 * the callback.
 *
 * Ownership: the config is copied (keys wiped when the connector ends). On
 * success the callback receives ownership of the session and the connection;
 * the connector itself is freed after the callback returns. */
#ifndef UM_SESSION_CONNECTOR_H
#define UM_SESSION_CONNECTOR_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "session/session.h"
#include "transport/carrier.h"
#include "transport/codec.h"
#include "transport/ossl.h"
#include "transport/tcp.h"
#include "transport/upstream.h"
#include "util/addr.h"

/* A maker of byte streams to the server other than a TCP connection of our
 * own (a stream through a bridge's tunnel, src/app/bridge.h). start() dials
 * dst and calls cb exactly once on a later turn of the loop (status 0: car
 * is the callee's to keep, i.e. the connector's), unless cancel(handle) came
 * first. */
typedef void (*um_connector_dial_cb)(void *arg, int status, um_carrier_t *car);
typedef struct {
    int (*start)(void *ctx, const um_addr_t *dst, um_connector_dial_cb cb, void *arg,
                 void **handle);
    void (*cancel)(void *handle);
    void *ctx;
} um_connector_dialer_t;

typedef struct {
    uint8_t client_priv[32];
    uint8_t server_pub[32];
    int offer_aes;       /* -1 = detect (default when 0 is not wanted: set explicitly) */
    uint32_t timeout_ms; /* whole handshake; 0 = 10000 */
    um_sess_cfg_t sess;
    /* The transport's first-flight codec (transport/codec.h), borrowed until
     * the callback has run. NULL: the tcp codec with `shape`. */
    const um_codec_t *codec;
    uint8_t shape; /* um_shape_t (codec NULL only): prefix before our first flight,
                      expected before the reply (PROTOCOL.md section 7) */
    /* Continue this session (borrowed until the callback has run) instead of
     * making a new one (PROTOCOL.md 3.6). When the server continues it, the
     * callback gets it back (um_connector_resumed() true) with the new keys
     * installed: from then on its old connection is useless. When the server
     * does not know it, the callback gets a new session as without. */
    um_sess_t *resume;
    uint32_t budget; /* bytes this connection may carry, told to the server (0: none) */
    /* Reach the server through this proxy (copied; NULL or kind NONE: dial
     * it directly): TCP to the proxy, its CONNECT to `server`, then the
     * flight on the same connection. */
    const um_upstream_cfg_t *upstream;
    /* Instead of TCP, the byte stream comes from this dialer (borrowed until
     * the callback has run); upstream is then not used. */
    const um_connector_dialer_t *dialer;
    /* ws: a real TLS client (transport/ossl.h) over the byte stream, whatever
     * made it, before the first flight (tls.ctx NULL: none; the connector
     * takes its own reference to the context). */
    um_ossl_client_cfg_t tls;
} um_connector_cfg_t;

typedef struct um_connector um_connector_t;

/* status 0: s and conn (the carrier the session runs on: the codec's wrap
 * of the TCP connection) are the caller's; else both NULL. */
typedef void (*um_connector_cb)(um_connector_t *c, int status, um_sess_t *s, um_carrier_t *conn,
                                void *ud);

int um_connector_start(uv_loop_t *loop, const struct sockaddr *server,
                       const um_connector_cfg_t *cfg, um_connector_cb cb, void *ud,
                       um_connector_t **out);
/* During the callback: whether the session is cfg.resume continued (also on
 * a failure after the keys changed, so the owner drops the old connection);
 * the wire bytes of the handshake; and, when resumed, the stream bytes that
 * followed the reply (borrowed for the callback; the session's owner feeds
 * them after whatever it still holds of the old connection is discarded). */
int um_connector_resumed(const um_connector_t *c);
size_t um_connector_wire(const um_connector_t *c);
size_t um_connector_rest(const um_connector_t *c, const uint8_t **p);
/* Cancels a pending connector: the callback does not run. */
void um_connector_cancel(um_connector_t *c);

/* Builds a masked first flight of a random length in [UM_FLIGHT_C_MIN,
 * UM_FLIGHT_C_MAX] (exposed for tests and tools). hs receives the state
 * needed to finish. */
#define UM_FLIGHT_C_MIN 128
#define UM_FLIGHT_C_MAX 1024
int um_connector_flight(um_hs_client_t *hs, const uint8_t client_priv[32],
                        const uint8_t server_pub[32], int offer_aes, uint64_t now_s, uint8_t *out,
                        size_t cap, size_t *outn);

#endif
