#include "session/keyset.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct um_keyset {
    int refs;
    size_t n, cap;
    uint8_t (*keys)[32];
};

um_keyset_t *um_keyset_new(void)
{
    um_keyset_t *ks = calloc(1, sizeof(*ks));
    if (ks) ks->refs = 1;
    return ks;
}

int um_keyset_add(um_keyset_t *ks, const uint8_t pub[32])
{
    if (!ks || !pub) return UM_EINVAL;
    if (um_keyset_contains(ks, pub)) return UM_EEXIST;
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        void *p = realloc(ks->keys, cap * 32);
        if (!p) return UM_ENOMEM;
        ks->keys = p;
        ks->cap = cap;
    }
    memcpy(ks->keys[ks->n++], pub, 32);
    return 0;
}

size_t um_keyset_count(const um_keyset_t *ks)
{
    return ks ? ks->n : 0;
}

bool um_keyset_contains(const um_keyset_t *ks, const uint8_t pub[32])
{
    int found = 0;
    if (!ks) return false;
    for (size_t i = 0; i < ks->n; i++)
        found |= sodium_memcmp(ks->keys[i], pub, 32) == 0;
    return found != 0;
}

um_keyset_t *um_keyset_ref(um_keyset_t *ks)
{
    if (ks) ks->refs++;
    return ks;
}

void um_keyset_unref(um_keyset_t *ks)
{
    if (!ks || --ks->refs > 0) return;
    free(ks->keys);
    free(ks);
}
