/* Server admission state (docs/PROTOCOL.md section 5): one per server,
 * referenced by every acceptor (every listen address, later every
 * transport), so that a first flight accepted on one listener is a replay on
 * every other, and so that the handshake rate and the pre-auth budgets are
 * the server's and not a listener's.
 *
 * It holds the handshake responder (server key, authorised keys, the replay
 * filter) and the pre-auth bookkeeping:
 *
 *   - parse slots: connections that may still become a session. At most
 *     max_preauth in all, at most per_source from one source prefix (/32
 *     IPv4, /64 IPv6 by default). A connection that gets no slot gets the
 *     probe reaction without being parsed. A slot is released as soon as the
 *     connection can no longer authenticate (refused flight, peer FIN, the
 *     idle gap, D).
 *   - held connections: every pre-auth connection, parsed or not, until it
 *     is closed (they all wait for D). At most max_held; at the bound, the
 *     oldest connection whose peer has already sent FIN is closed (nobody is
 *     left to observe it, or only a prober that half-closed), and if there is
 *     none the acceptors stop accepting (new connections wait in the kernel's
 *     backlog) until one ends.
 *   - a token bucket on handshake work (hs_per_s, burst hs_burst) and a
 *     token bucket per authorised client key (key_hs_per_min, same burst),
 *     checked after the key lookup and before the replay filter insert, so
 *     one client cannot fill the filter for everybody.
 *
 * The bookkeeping functions are pure (no I/O, time passed in); the acceptor
 * is the glue that calls them. Memory: fixed tables sized from max_preauth,
 * plus 48 bytes per authorised key that handshook recently. */
#ifndef UM_SESSION_GATE_H
#define UM_SESSION_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "session/handshake.h"
#include "session/keyset.h"
#include "session/session.h"
#include "transport/carrier.h"

#define UM_SRC_KEY_LEN 17 /* family byte + 16 address bytes, masked to the prefix */

typedef struct {
    uint32_t max_preauth;         /* parse slots, all listeners; 0 = 1024 */
    uint32_t per_source;          /* parse slots per source prefix; 0 = 64 */
    uint8_t v4_prefix, v6_prefix; /* source prefix lengths; 0 = 32, 64 */
    uint32_t max_held;            /* pre-auth connections in all; 0 = 4 * max_preauth */
    uint32_t hs_per_s, hs_burst;  /* handshake work; 0 = 2000, 256 */
    uint32_t key_hs_per_min;      /* handshakes per client key (and burst); 0 = 60 */
} um_gate_cfg_t;

/* A token bucket (pure). */
typedef struct {
    double tokens;
    uint64_t t_ms;
    int started;
} um_bucket_t;
/* Refills at rate_per_s up to burst, then takes one token if commit (and if
 * there is one). Returns whether a token was (or would be) available. */
bool um_bucket_take(um_bucket_t *b, uint64_t now_ms, double rate_per_s, double burst, bool commit);

/* The source key of an address: family and the first v4_prefix / v6_prefix
 * bits (IPv4-mapped IPv6 counts as IPv4). Returns 0, or UM_EINVAL. */
int um_src_key(const struct sockaddr *sa, uint8_t v4_prefix, uint8_t v6_prefix,
               uint8_t out[UM_SRC_KEY_LEN]);

/* Intrusive node of a connection that may be closed to make room. */
typedef struct um_gate_node um_gate_node_t;
struct um_gate_node {
    um_gate_node_t *prev, *next;
    void (*evict)(um_gate_node_t *n);
    bool linked;
};

typedef struct um_gate um_gate_t;

typedef struct {
    uint64_t parse_granted, parse_refused_source, parse_refused_global, evicted, paused,
        quota_refused;
    uint32_t parsing, held;
} um_gate_stats_t;

/* keys: a reference is taken. skew_s 0 = 120; replay_entries 0 = 65536. */
int um_gate_new(const uint8_t server_priv[32], um_keyset_t *keys, uint32_t skew_s,
                size_t replay_entries, bool disable_aes, const um_gate_cfg_t *cfg, um_gate_t **out);
um_gate_t *um_gate_ref(um_gate_t *g);
void um_gate_unref(um_gate_t *g); /* NULL is a no-op */
um_hs_server_t *um_gate_hs(um_gate_t *g);
/* um_src_key() with this gate's prefix lengths. */
int um_gate_src_key(const um_gate_t *g, const struct sockaddr *sa, uint8_t out[UM_SRC_KEY_LEN]);
void um_gate_set_keys(um_gate_t *g, um_keyset_t *keys);
void um_gate_stats(const um_gate_t *g, um_gate_stats_t *st);

/* A new connection is held (always; see um_gate_room), and gets a parse slot
 * when both the global and its source's budgets allow: returns true then. */
bool um_gate_admit(um_gate_t *g, const uint8_t src[UM_SRC_KEY_LEN]);
void um_gate_release_parse(um_gate_t *g, const uint8_t src[UM_SRC_KEY_LEN]);
/* The connection is closed. Wakes waiters when room appears. */
void um_gate_release_held(um_gate_t *g);
/* Is there room for one more held connection? At the bound, evicts the
 * oldest evictable node first (its evict callback must release it). */
bool um_gate_room(um_gate_t *g);
void um_gate_evictable(um_gate_t *g, um_gate_node_t *n); /* appended (newest) */
void um_gate_unlink(um_gate_t *g, um_gate_node_t *n);    /* no-op if not linked */
/* Called (once) when room appears after um_gate_room() returned false. */
int um_gate_wait(um_gate_t *g, void (*cb)(void *ud), void *ud);
void um_gate_unwait(um_gate_t *g, void *ud);

/* Pure: true when bytes on which an unshaped first flight is still undecided
 * cannot be one: they hold a complete HTTP request head or a complete TLS
 * record (a web client; a masked flight looks like random bytes), so the
 * fallback gets them at once. Total over any input. */
bool um_gate_not_flight(const uint8_t *p, size_t n);

/* Resumable sessions (docs/PROTOCOL.md 3.6): the server's owner of each
 * session lists it here while the session may be continued on a new
 * connection; the handshake asks (um_hs_server_t.resume) and the pre-auth
 * core resumes it. Entries are the owner's (intrusive); lookups compare the
 * session id and the client key in constant time. */
typedef struct um_resumable um_resumable_t;
struct um_resumable {
    uint8_t sid[UM_SID_LEN];
    uint8_t client[32];
    um_sess_t *sess;    /* borrowed: the session to continue */
    uint32_t last_move; /* the highest move that resumed it (0: none yet) */
    uint64_t last_ts;   /* that move's flight timestamp (wall clock, s) */
    /* The new connection, once the reply is written and the session resumed:
     * car is the owner's; rest are stream bytes that followed the flight
     * (borrowed for the call); budget is the client's for this connection
     * (0: none); wire the handshake bytes it carried already. car NULL: the
     * session was resumed but the new connection failed right after: the
     * owner lets the old one go (its keys are gone) and waits. */
    void (*attach)(um_resumable_t *e, um_carrier_t *car, const uint8_t *rest, size_t n,
                   uint32_t budget, size_t wire);
    um_resumable_t *next;
    bool linked;
};
void um_gate_add_resumable(um_gate_t *g, um_resumable_t *e);
/* No-op if not listed. A session that was ever resumed leaves a tombstone
 * (its id, until its last move's flight is out of the timestamp window), so
 * that a replay of a resuming flight, which the replay filter never saw,
 * is refused rather than taken for a new session. */
void um_gate_del_resumable(um_gate_t *g, um_resumable_t *e);
/* Records the move that just resumed e (preauth, after message 2). */
void um_gate_resumed(um_resumable_t *e, uint32_t move, uint64_t ts);
um_resumable_t *um_gate_find_resumable(um_gate_t *g, const uint8_t sid[UM_SID_LEN],
                                       const uint8_t client[32]);

/* The server-wide handshake token bucket. */
bool um_gate_take_handshake(um_gate_t *g, uint64_t now_ms);

#endif
