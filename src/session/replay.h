/* Replay filter over accepted first flights (docs/PROTOCOL.md section 3.5).
 *
 * Keyed on the initiator's ephemeral public key, which an attacker cannot
 * change without breaking the handshake (es = DH(e, server s) authenticates
 * everything after it). An entry lives until the flight's own authenticated
 * timestamp + skew: after that the timestamp check rejects the flight anyway.
 *
 * Bounded: at most max_entries entries. When full, expired entries are swept;
 * if still full the filter REFUSES the new flight (UM_ENOSPC, which the server
 * treats as a probe): a live entry is never evicted, because evicting one
 * would reopen a replay window. Memory: about 48 bytes * 2 * max_entries. */
#ifndef UM_SESSION_REPLAY_H
#define UM_SESSION_REPLAY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t tag[16];
    uint64_t expires; /* wall seconds; 0 = empty slot */
} um_replay_slot_t;

typedef struct {
    um_replay_slot_t *slots;
    size_t cap;       /* power of two, >= 2 * max */
    size_t used;      /* occupied slots (live or expired) */
    size_t max;       /* bound on used */
    uint8_t hkey[16]; /* random key for the slot hash */
} um_replay_t;

int um_replay_init(um_replay_t *r, size_t max_entries); /* max_entries >= 1 */
void um_replay_free(um_replay_t *r);
/* 0: new, remembered until `expires`; UM_EREPLAY: seen and still live;
 * UM_ENOSPC: full of live entries (refuse). */
int um_replay_check(um_replay_t *r, const uint8_t e[32], uint64_t expires, uint64_t now);
size_t um_replay_live(const um_replay_t *r, uint64_t now);

#endif
