/* The set of authorised client static public keys. Built once (um_keyset_new,
 * um_keyset_add), then shared read-only by reference: the server swaps in a
 * new set on SIGHUP (um_hs_server_set_keys) while established sessions, which
 * never point at the set, continue untouched. Single-threaded (one loop). */
#ifndef UM_SESSION_KEYSET_H
#define UM_SESSION_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct um_keyset um_keyset_t;

um_keyset_t *um_keyset_new(void); /* refcount 1; NULL on ENOMEM */
/* Adds a key (copied). UM_EEXIST for a duplicate, UM_ENOMEM. */
int um_keyset_add(um_keyset_t *ks, const uint8_t pub[32]);
size_t um_keyset_count(const um_keyset_t *ks);
/* Constant time in the key compared and in where it sits: every entry is
 * compared with sodium_memcmp, no early exit. NULL set contains nothing. */
bool um_keyset_contains(const um_keyset_t *ks, const uint8_t pub[32]);
um_keyset_t *um_keyset_ref(um_keyset_t *ks);
void um_keyset_unref(um_keyset_t *ks); /* frees at zero; NULL is a no-op */

#endif
