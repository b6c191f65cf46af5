/* Port hopping derivation: HOTP (RFC 4226) with HMAC-SHA-256 over the time
 * slot, as docs/PROTOCOL.md ("Port hopping") specifies byte for byte. */
#include "transport/hop.h"

#include <sodium.h>

static const char label[] = "umbra/1 port hopping";

void um_hop_key(const uint8_t server_pub[32], uint8_t key[32])
{
    crypto_generichash(key, 32, (const unsigned char *)label, sizeof(label) - 1, server_pub, 32);
}

uint64_t um_hop_slot(uint64_t unix_ms, uint32_t hop_ms)
{
    return hop_ms ? unix_ms / hop_ms : 0;
}

uint32_t um_hop_value(const uint8_t key[32], uint64_t slot)
{
    uint8_t counter[8], mac[crypto_auth_hmacsha256_BYTES];
    for (int i = 7; i >= 0; i--) {
        counter[i] = (uint8_t)slot;
        slot >>= 8;
    }
    crypto_auth_hmacsha256(mac, counter, sizeof(counter), key);
    unsigned off = mac[sizeof(mac) - 1] & 0x0f; /* at most 15: off + 3 < 32 */
    uint32_t v = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                 ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
    sodium_memzero(mac, sizeof(mac));
    return v;
}

uint16_t um_hop_port(const uint8_t key[32], uint64_t slot, uint16_t lo, uint16_t hi)
{
    if (hi < lo) return lo;
    uint32_t span = (uint32_t)(hi - lo) + 1;
    return (uint16_t)(lo + um_hop_value(key, slot) % span);
}
