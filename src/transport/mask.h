/* Masked first flights of the `tcp` transport (docs/PROTOCOL.md section 2).
 *
 *   flight = salt[16] || (u16 len || msg[len]) XOR ChaCha20(K, nonce 0)
 *   K      = BLAKE2b-256(key = server static public key,
 *                        msg = "umbra/1 tcp mask" || dir || salt)
 *
 * To anyone without the server's public key the flight is uniform random
 * bytes (the handshake message inside is itself padded to a random length).
 * Pure functions; buffers are borrowed for the call. */
#ifndef UM_TRANSPORT_MASK_H
#define UM_TRANSPORT_MASK_H

#include <stddef.h>
#include <stdint.h>

#define UM_MASK_SALT_LEN  16
#define UM_MASK_OVERHEAD  18   /* salt + masked u16 length */
#define UM_FLIGHT_MAX     2048 /* largest flight in either direction */
#define UM_FLIGHT_MSG_MAX (UM_FLIGHT_MAX - UM_MASK_OVERHEAD)

enum { UM_MASK_C2S = 1, UM_MASK_S2C = 2 };

/* Writes salt || masked(len || msg) to out (cap >= n + 18). UM_EMSGSIZE when
 * n > UM_FLIGHT_MSG_MAX. */
int um_mask_seal(const uint8_t server_pub[32], int dir, const uint8_t *msg, size_t n, uint8_t *out,
                 size_t cap, size_t *outn);
/* Parses the flight prefix p[0..n). Returns 0 with msg[0..*msgn) and
 * *consumed = flight length, UM_EAGAIN when more bytes are needed, UM_EPROTO
 * when the unmasked length is outside [min_msg, UM_FLIGHT_MSG_MAX]. msg cap
 * must be >= UM_FLIGHT_MSG_MAX. */
int um_mask_open(const uint8_t server_pub[32], int dir, size_t min_msg, const uint8_t *p, size_t n,
                 uint8_t *msg, size_t cap, size_t *msgn, size_t *consumed);

#endif
