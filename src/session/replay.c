#include "session/replay.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int um_replay_init(um_replay_t *r, size_t max_entries)
{
    if (!r || max_entries == 0 || max_entries > (SIZE_MAX / 4) / sizeof(um_replay_slot_t))
        return UM_EINVAL;
    memset(r, 0, sizeof(*r));
    size_t cap = 16;
    while (cap < 2 * max_entries)
        cap *= 2;
    r->slots = calloc(cap, sizeof(*r->slots));
    if (!r->slots) return UM_ENOMEM;
    r->cap = cap;
    r->max = max_entries;
    randombytes_buf(r->hkey, sizeof(r->hkey));
    return 0;
}

void um_replay_free(um_replay_t *r)
{
    if (!r) return;
    free(r->slots);
    memset(r, 0, sizeof(*r));
}

static size_t slot_of(const um_replay_t *r, const uint8_t tag[16])
{
    uint64_t h = 0;
    memcpy(&h, tag, 8);
    return (size_t)h & (r->cap - 1);
}

/* Rebuilds the table without expired entries (linear probing has no cheap
 * delete). O(cap), done only when the table is full. */
static void sweep(um_replay_t *r, uint64_t now)
{
    um_replay_slot_t *old = r->slots;
    size_t cap = r->cap;
    um_replay_slot_t *fresh = calloc(cap, sizeof(*fresh));
    if (!fresh) return; /* stay full: refusing is the safe side */
    r->slots = fresh;
    r->used = 0;
    for (size_t i = 0; i < cap; i++) {
        if (old[i].expires == 0 || old[i].expires < now) continue;
        size_t j = slot_of(r, old[i].tag);
        while (r->slots[j].expires)
            j = (j + 1) & (cap - 1);
        r->slots[j] = old[i];
        r->used++;
    }
    free(old);
}

int um_replay_check(um_replay_t *r, const uint8_t e[32], uint64_t expires, uint64_t now)
{
    uint8_t tag[16];
    if (!r || !r->slots || !e) return UM_EINVAL;
    if (expires == 0) expires = 1;
    crypto_generichash_blake2b(tag, sizeof(tag), e, 32, r->hkey, sizeof(r->hkey));
    size_t j = slot_of(r, tag);
    size_t free_slot = SIZE_MAX;
    /* Bounded: the table is never more than half full, so an empty slot
     * ends the probe within cap steps. */
    for (size_t k = 0; k < r->cap; k++, j = (j + 1) & (r->cap - 1)) {
        um_replay_slot_t *s = &r->slots[j];
        if (s->expires == 0) {
            if (free_slot == SIZE_MAX) free_slot = j;
            break;
        }
        if (sodium_memcmp(s->tag, tag, 16) == 0) {
            if (s->expires >= now) return UM_EREPLAY;
            s->expires = expires; /* expired entry of the same key: reuse */
            return 0;
        }
    }
    if (r->used >= r->max) {
        sweep(r, now);
        if (r->used >= r->max) return UM_ENOSPC;
        j = slot_of(r, tag);
        while (r->slots[j].expires)
            j = (j + 1) & (r->cap - 1);
        free_slot = j;
    }
    if (free_slot == SIZE_MAX) return UM_ENOSPC;
    memcpy(r->slots[free_slot].tag, tag, 16);
    r->slots[free_slot].expires = expires;
    r->used++;
    return 0;
}

size_t um_replay_live(const um_replay_t *r, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; r && i < r->cap; i++)
        n += r->slots[i].expires != 0 && r->slots[i].expires >= now;
    return n;
}
