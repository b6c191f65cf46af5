/* Fuzz the umbra:// link decoder with a round-trip property: whatever
 * decodes must encode to a link that decodes to the same thing, and that
 * encoding must be a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/link.h"

static int same(const um_link_t *a, const um_link_t *b)
{
    if (memcmp(a->server_public_key, b->server_public_key, 32) ||
        memcmp(a->client_private_key, b->client_private_key, 32) || a->n_addrs != b->n_addrs ||
        strcmp(a->name, b->name) || a->shape != b->shape || a->padding != b->padding ||
        a->transport != b->transport || strcmp(a->sni, b->sni) ||
        a->fingerprint != b->fingerprint || a->hop_lo != b->hop_lo || a->hop_hi != b->hop_hi ||
        a->hop_ms != b->hop_ms || a->rotate_set != b->rotate_set ||
        a->rotate_min != b->rotate_min || a->rotate_max != b->rotate_max ||
        a->rotate_after_set != b->rotate_after_set ||
        a->rotate_after_min_ms != b->rotate_after_min_ms ||
        a->rotate_after_max_ms != b->rotate_after_max_ms ||
        a->has_operator_key != b->has_operator_key ||
        memcmp(a->operator_key, b->operator_key, 32) || a->n_list_urls != b->n_list_urls)
        return 0;
    for (size_t i = 0; i < a->n_list_urls; i++)
        if (strcmp(a->list_urls[i], b->list_urls[i])) return 0;
    for (size_t i = 0; i < a->n_addrs; i++)
        if (!um_addr_equal(&a->addrs[i], &b->addrs[i])) return 0;
    if (strcmp(a->via, b->via) != 0) return 0; /* via= (bridges) */
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    um_link_t a, b;
    char err[256], s1[UM_LINK_MAX * 2], s2[UM_LINK_MAX * 2];
    if (um_link_decode(&a, (const char *)data, size, err, sizeof(err)) != 0) return 0;
    if (um_link_encode(&a, s1, sizeof(s1)) != 0) abort();
    if (um_link_decode(&b, s1, strlen(s1), err, sizeof(err)) != 0) abort();
    if (!same(&a, &b)) abort();
    if (um_link_encode(&b, s2, sizeof(s2)) != 0 || strcmp(s1, s2) != 0) abort();
    return 0;
}
