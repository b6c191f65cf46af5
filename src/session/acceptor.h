/* Server side glue (docs/PROTOCOL.md sections 2, 5 and 8): accepts TCP
 * connections, feeds what they send to the pre-auth core (session/preauth.h:
 * the transport's codec and the server's gate decide) and either
 * hands an established session to the caller or applies the probe reaction:
 *
 *   - a random delay D, uniform in [probe_min_ms, probe_max_ms], drawn when
 *     the connection is accepted, independent of what or when anything arrives;
 *   - until D: read and discard everything (at most UM_FLIGHT_MAX bytes, plus
 *     UM_SHAPE_PREFIX_MAX when shaped, are kept for the parser); never a byte
 *     sent; a missing or wrong shaping prefix is one more invalid flight;
 *   - at D: FIN (shutdown), keep reading and discarding until the peer's FIN
 *     or linger_ms, then close. The same for every invalid input, for a client
 *     that sends nothing, and for a client that sends half a flight.
 *   - or, with a fallback address, as soon as the bytes cannot be a flight
 *     (refused, a complete HTTP head or TLS record, peer FIN, an idle gap; at
 *     the latest D), the connection is spliced to the fallback with every
 *     byte read so far; if the fallback cannot be reached, silence until D.
 *   - admission (budgets, handshake rate, replay filter) is the gate's
 *     (session/gate.h), shared by every acceptor of a server.
 *
 * Ownership: the config is copied (the key set is referenced). The session
 * callback receives ownership of the session and the connection. */
#ifndef UM_SESSION_ACCEPTOR_H
#define UM_SESSION_ACCEPTOR_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "session/gate.h"
#include "session/handshake.h"
#include "session/keyset.h"
#include "session/session.h"
#include "transport/carrier.h"
#include "transport/codec.h"
#include "transport/ossl.h"
#include "transport/tcp.h"

typedef struct {
    /* The server's admission state (replay filter, handshake rate, pre-auth
     * budgets), shared by all its acceptors; a reference is taken. When NULL,
     * the acceptor makes its own from the fields below it. */
    um_gate_t *gate;
    uint8_t server_priv[32];
    um_keyset_t *keys;       /* authorised clients (referenced) */
    uint32_t skew_s;         /* 0 = 120 */
    size_t replay_entries;   /* 0 = 65536 */
    uint32_t max_preauth;    /* unauthenticated connections parsed at once; 0 = 1024 */
    uint32_t per_source;     /* ... from one source address; 0 = 64 */
    uint32_t hs_per_s;       /* handshake rate (token bucket); 0 = 2000 */
    uint32_t hs_burst;       /* 0 = 256 */
    uint32_t key_hs_per_min; /* handshakes per client key; 0 = 60 */
    int disable_aes;         /* never choose AES-256-GCM */
    /* (end of the gate's fields) */
    uint32_t probe_min_ms; /* 0/0 = 15000..45000 */
    uint32_t probe_max_ms;
    uint32_t linger_ms; /* after our FIN, jittered up to twice that; 0 = 5000 */
    int has_fallback;
    struct sockaddr_storage fallback;
    um_sess_cfg_t sess; /* for every established session */
    /* The transport's first-flight codec (transport/codec.h), borrowed: it
     * must outlive the acceptor. NULL: the tcp codec with `shape`. A codec
     * whose unauthenticated connections go to a cover (UM_UNAUTH_COVER)
     * needs the cover as `fallback` (UM_EINVAL otherwise). */
    const um_codec_t *codec;
    uint8_t shape; /* um_shape_t (codec NULL only): first-flight prefix expected from
                      clients and put before our reply (PROTOCOL.md section 7) */
    /* ws exposed directly (PROTOCOL.md 11.5): a server TLS context
     * (um_ossl_server_ctx_new; a reference is taken) layered over every
     * accepted connection before the codec sees a byte; the refusal, the
     * probe reaction and a fallback splice then run inside that TLS. NULL:
     * none. */
    um_ossl_ctx_t *tls;
} um_acceptor_cfg_t;

typedef struct um_acceptor um_acceptor_t;

/* What else the handshake said about the new connection. */
typedef struct {
    uint32_t budget; /* the client's budget for this connection (0: none) */
    size_t wire;     /* wire bytes it carried already (flight, reply, what followed) */
} um_accept_info_t;

/* A new session. client_static: the authenticated client key. conn is the
 * carrier the session runs on (the codec's wrap of the TCP connection). A
 * flight that continued a session listed in the gate (um_gate_add_resumable)
 * goes to that entry's attach callback instead. */
typedef void (*um_acceptor_session_cb)(um_acceptor_t *a, um_sess_t *s, um_carrier_t *conn,
                                       const uint8_t client_static[32],
                                       const um_accept_info_t *info, void *ud);

typedef struct {
    uint64_t accepted, established, probes, fallbacks, overload;
    uint64_t resumed; /* of established: flights that continued a session */
    uint32_t preauth;
} um_acceptor_stats_t;

int um_acceptor_new(uv_loop_t *loop, const struct sockaddr *listen_addr,
                    const um_acceptor_cfg_t *cfg, um_acceptor_session_cb cb, void *ud,
                    um_acceptor_t **out);
int um_acceptor_port(const um_acceptor_t *a); /* 0 without a listener */
/* Takes a connection made elsewhere (the dns transport's conversations: a
 * reliable carrier over datagrams) as if it had been accepted: the same
 * pre-auth core, gate and probe reaction (never a splice: an adopted
 * carrier has no fallback). Takes ownership of car, also on failure. peer
 * (may be NULL) names the source for the gate's per-source budget. An
 * acceptor made with listen_addr NULL has no listener and takes only
 * these. */
int um_acceptor_adopt(um_acceptor_t *a, um_carrier_t *car, const struct sockaddr *peer);
/* Swaps the authorised keys (SIGHUP reload); sessions are untouched. */
void um_acceptor_set_keys(um_acceptor_t *a, um_keyset_t *keys);
void um_acceptor_stats(const um_acceptor_t *a, um_acceptor_stats_t *st);
/* Closes the listener and every pre-auth connection; the acceptor memory is
 * released once their handles have closed. */
void um_acceptor_close(um_acceptor_t *a);

#endif
