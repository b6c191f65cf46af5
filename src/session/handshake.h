/* The umbra handshake on top of Noise IK (docs/PROTOCOL.md section 3):
 * payload formats, timestamp window, authorised client keys, replay filter,
 * cipher negotiation, session id. Sans-I/O: byte strings in and out. The
 * transport decides how the two messages travel (the `tcp` transport masks
 * them, src/transport/mask.h).
 *
 * Ownership: all structs are caller-owned; secrets inside are wiped by the
 * *_close / *_wipe functions and on every failure path. */
#ifndef UM_SESSION_HANDSHAKE_H
#define UM_SESSION_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "session/keyset.h"
#include "session/replay.h"

#define UM_HS_PROLOGUE_TCP "umbra/1 tcp"
#define UM_HS_VERSION      1
#define UM_HS_P1_MIN       10 /* version, flags, timestamp */
/* Offsets in the client's payload (docs/PROTOCOL.md 3.2). */
#define UM_HS_P1_OFF_FLAGS  1
#define UM_HS_P1_OFF_TS     2
#define UM_HS_P1_OFF_SID    UM_HS_P1_MIN                    /* only with RESUME */
#define UM_HS_P1_OFF_RESOFF (UM_HS_P1_OFF_SID + UM_SID_LEN) /* only with RESUME */
#define UM_HS_P1_RESUME_LEN (UM_SID_LEN + 8 + 4)            /* sid, offset, move */
#define UM_HS_P2_MIN        3                               /* version, cipher, flags */
#define UM_HS_MSG1_MIN      (UM_NOISE_MSG1_OVERHEAD + UM_HS_P1_MIN)
#define UM_HS_MSG2_MIN      (UM_NOISE_MSG2_OVERHEAD + UM_HS_P2_MIN)
/* The shortest message 2 with room for the resumed offset (3.3): what a
 * server writes whenever the transport lets it choose. */
#define UM_HS_MSG2_RESUME_MIN (UM_HS_MSG2_MIN + 8)
#define UM_HS_SKEW_DEFAULT    120
#define UM_SID_LEN            16
#define UM_HS_MSG_MAX         4096 /* largest handshake message accepted or written */

enum { UM_HS_F_AES = 1u << 0, UM_HS_F_RESUME = 1u << 1, UM_HS_F_BUDGET = 1u << 2 };
enum { UM_HS_F2_RESUMED = 1u << 0 };
enum { UM_HS_RESUME_NO = 0, UM_HS_RESUME_YES = 1, UM_HS_RESUME_STALE = 2 };

/* Payload 1 (docs/PROTOCOL.md 3.2), parsed: a pure function over the
 * decrypted bytes. */
typedef struct {
    uint8_t flags;
    uint64_t timestamp;
    bool resume;
    uint8_t sid[UM_SID_LEN]; /* resume only */
    uint64_t resume_offset;  /* resume only: what the client has received */
    uint32_t resume_move;    /* resume only: this move's number in the session (1, 2, ...) */
    uint32_t budget;         /* BUDGET only (0: none): bytes this connection may carry */
} um_hs_p1_t;
/* 0, or UM_EPROTO (too short for its flags, or another version). */
int um_hs_p1_parse(const uint8_t *p, size_t n, um_hs_p1_t *out);

/* Payload 2 (3.3), parsed. */
typedef struct {
    uint8_t alg;
    bool resumed;
    bool has_peer_rx; /* resumed with a payload of at least 11 bytes */
    uint64_t peer_rx; /* what the server has received */
} um_hs_p2_t;
int um_hs_p2_parse(const uint8_t *p, size_t n, um_hs_p2_t *out);

/* What both ends know once the handshake is done; the session is built from
 * it (um_sess_new). Wipe with um_sess_keys_wipe. */
typedef struct {
    uint8_t k_send[32], k_recv[32];
    uint8_t sid[UM_SID_LEN]; /* session id */
    uint8_t peer_static[32]; /* client key (server side) or server key */
    int alg;                 /* um_aead_alg_t */
    int initiator;
    int resume_requested; /* server side: the client named a session */
    uint8_t resume_sid[UM_SID_LEN];
    uint64_t resume_offset;  /* server side: what the client has received of it */
    uint32_t resume_move;    /* server side: the move's number */
    int resumed;             /* the named session continues (both sides) */
    uint64_t resume_peer_rx; /* client side, resumed: what the server has received */
    int resume_has_peer_rx;  /* ... when the reply had room to say it */
    uint32_t budget;         /* server side: the client's budget for this connection (0: none) */
    uint64_t timestamp;      /* client's wall clock (server side) */
} um_sess_keys_t;

void um_sess_keys_wipe(um_sess_keys_t *k);

typedef struct {
    uint8_t s_priv[32], s_pub[32];
    um_keyset_t *keys; /* owned reference */
    um_replay_t replay;
    uint32_t skew_s;
    bool aes_hw; /* this server may choose AES-256-GCM */
    /* Optional per-client handshake quota (session/gate.h): asked after the
     * key lookup and timestamp check with commit false, before the replay
     * filter; told with commit true once the filter took the flight (so a
     * replayed flight costs its client nothing). false refuses the flight. */
    bool (*quota)(void *ud, const uint8_t client[32], uint64_t now_s, bool commit);
    void *quota_ud;
    /* Optional resumption lookup (docs/PROTOCOL.md 3.6): does session `sid`
     * of this client exist, is `move` above every move it made so far, and
     * may it resume from client_rx (what the client has received)? Then
     * UM_HS_RESUME_YES and *server_rx (what the server has received).
     * UM_HS_RESUME_STALE: the session is known (or was, within the replay
     * window) and the move is not new: a replay, refused. UM_HS_RESUME_NO:
     * a new session instead. No side effect: the caller resumes the session
     * (and records the move) once message 2 is written. A flight that resumes
     * is exempt from the per-client quota (it adds no session) and from the
     * replay filter (its move number is its replay protection). Asked after
     * the key lookup and the timestamp check. */
    int (*resume)(void *ud, const uint8_t client[32], const uint8_t sid[UM_SID_LEN],
                  uint64_t client_rx, uint32_t move, uint64_t now_s, uint64_t *server_rx);
    void *resume_ud;
} um_hs_server_t;

/* keys: a reference is taken. skew_s 0 = 120; replay_entries 0 = 65536. */
int um_hs_server_init(um_hs_server_t *srv, const uint8_t s_priv[32], um_keyset_t *keys,
                      uint32_t skew_s, size_t replay_entries);
/* Swaps the authorised set (reference taken, old one released). Established
 * sessions are not affected. */
void um_hs_server_set_keys(um_hs_server_t *srv, um_keyset_t *keys);
void um_hs_server_close(um_hs_server_t *srv);

/* Consumes message 1 and, when everything checks (Noise, authorised client
 * key, version, timestamp within skew, replay filter), writes message 2 of
 * exactly reply_len bytes (0 = minimal; clamped to at least UM_HS_MSG2_MIN)
 * and the session keys. Any failure returns <0 (UM_EPROTO, UM_EAUTH,
 * UM_EACCES unknown client, UM_EREPLAY, UM_ENOSPC replay filter full) and
 * writes nothing: callers must react to every code the same way. */
int um_hs_server_respond(um_hs_server_t *srv, const uint8_t *prologue, size_t prolen,
                         const uint8_t *msg1, size_t n, uint64_t now_s, size_t reply_len,
                         uint8_t *reply, size_t cap, size_t *replyn, um_sess_keys_t *keys);

typedef struct {
    um_noise_hs_t nz;
    uint8_t server_pub[32];
    int started;
} um_hs_client_t;

typedef struct {
    bool aes_hw;               /* offer AES-256-GCM */
    const uint8_t *resume_sid; /* NULL: new session */
    uint64_t resume_offset;    /* bytes of the old session received so far */
    uint32_t resume_move;      /* this move's number (um_sess_take_move) */
    uint32_t budget;           /* bytes this connection may carry (0: no BUDGET field) */
} um_hs_client_opts_t;

/* Writes message 1 of exactly msg_len bytes (0 = minimal) with timestamp
 * now_s. c_priv and server_pub are copied. */
int um_hs_client_start(um_hs_client_t *c, const uint8_t *prologue, size_t prolen,
                       const uint8_t c_priv[32], const uint8_t server_pub[32],
                       const um_hs_client_opts_t *opts, uint64_t now_s, size_t msg_len,
                       uint8_t *out, size_t cap, size_t *outn);
/* Consumes message 2; 0 and keys, or <0 (c is wiped either way). */
int um_hs_client_finish(um_hs_client_t *c, const uint8_t *msg2, size_t n, um_sess_keys_t *keys);
void um_hs_client_wipe(um_hs_client_t *c);

#endif
