/* Port hopping for the tcp transport (docs/PROTOCOL.md, "Port hopping"):
 * which port a server listens on and a client dials in each time slot.
 * Pure functions; the key is derived from the server's static public key,
 * so everyone who may dial the server can compute the ports, and an
 * observer without the key cannot predict them. */
#ifndef UM_TRANSPORT_HOP_H
#define UM_TRANSPORT_HOP_H

#include <stdint.h>

/* key = BLAKE2b-256(key = server_pub, message = "umbra/1 port hopping"). */
void um_hop_key(const uint8_t server_pub[32], uint8_t key[32]);
/* The slot of a moment: floor(unix_ms / hop_ms); 0 when hop_ms is 0. */
uint64_t um_hop_slot(uint64_t unix_ms, uint32_t hop_ms);
/* The 31-bit HOTP value (RFC 4226 section 5.3, dynamic truncation) of
 * HMAC-SHA-256(key, the 8-byte big-endian slot). */
uint32_t um_hop_value(const uint8_t key[32], uint64_t slot);
/* The port of a slot: lo + um_hop_value mod (hi - lo + 1); lo when hi < lo. */
uint16_t um_hop_port(const uint8_t key[32], uint64_t slot, uint16_t lo, uint16_t hi);

#endif
