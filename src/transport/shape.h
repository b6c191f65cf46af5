/* First-packet shaping of the `tcp` transport (docs/PROTOCOL.md section 7):
 * what the client's first flight (and the server's reply) look like to a
 * censor's classifier of fully encrypted traffic.
 *
 * A shaped first write is  prefix || flight  (one write), where flight is the
 * masked flight of section 2 and prefix depends on the mode:
 *
 *   none       nothing
 *   printable  24..64 characters of [A-Za-z0-9+/] then "\n"
 *   http       "POST|PUT /path HTTP/1.1\r\n" (reply: "HTTP/1.1 200 OK\r\n"),
 *              a few headers, "Content-Length: <flight length>\r\n\r\n"
 *   tls        TLS record header + handshake header (ClientHello, reply:
 *              ServerHello) + version 03 03, lengths covering the flight
 *
 * Generators and the parser are pure functions over byte strings; buffers are
 * borrowed for the call. */
#ifndef UM_TRANSPORT_SHAPE_H
#define UM_TRANSPORT_SHAPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    UM_SHAPE_NONE = 0,      /* uniformly random bytes */
    UM_SHAPE_PRINTABLE = 1, /* a printable ASCII prefix */
    UM_SHAPE_HTTP = 2,      /* begins like an HTTP request */
    UM_SHAPE_TLS = 3,       /* begins like a TLS record */
} um_shape_t;

#define UM_SHAPE_MAX           UM_SHAPE_TLS
#define UM_SHAPE_PREFIX_MAX    512 /* longest prefix in any mode and direction */
#define UM_SHAPE_PRINTABLE_MIN 24  /* printable run, terminator excluded */
#define UM_SHAPE_PRINTABLE_MAX 64
#define UM_SHAPE_TLS_LEN       11

/* Directions: the same values as UM_MASK_C2S / UM_MASK_S2C. */
enum { UM_SHAPE_C2S = 1, UM_SHAPE_S2C = 2 };

/* Writes a fresh random prefix for a flight of flight_len bytes (which must
 * lie in [UM_MASK_OVERHEAD, UM_FLIGHT_MAX]) to out[0..*outn). *outn = 0 for
 * UM_SHAPE_NONE. UM_EINVAL: unknown shape or direction, flight_len out of
 * range; UM_ENOSPC: cap too small (cap >= UM_SHAPE_PREFIX_MAX always works). */
int um_shape_prefix(um_shape_t shape, int dir, size_t flight_len, uint8_t *out, size_t cap,
                    size_t *outn);

/* The same with every random choice drawn from seed (32 bytes, borrowed):
 * deterministic, for tests and fuzzing. */
int um_shape_prefix_seeded(um_shape_t shape, int dir, size_t flight_len, const uint8_t seed[32],
                           uint8_t *out, size_t cap, size_t *outn);

/* Parses the prefix at the start of p[0..n) (the bytes received so far).
 *   0           complete: the flight starts at p + *consumed; *flight_len is
 *               the flight length the prefix announces (http, tls), or 0 when
 *               the mode announces none (none, printable);
 *   UM_EAGAIN   every byte so far is a valid beginning: need more;
 *   UM_EPROTO   malformed, or no complete prefix within UM_SHAPE_PREFIX_MAX
 *               bytes (decided as soon as a byte is wrong);
 *   UM_EINVAL   unknown shape or direction, NULL arguments.
 * Reads at most UM_SHAPE_PREFIX_MAX bytes of p. */
int um_shape_strip(um_shape_t shape, int dir, const uint8_t *p, size_t n, size_t *consumed,
                   size_t *flight_len);

#endif
