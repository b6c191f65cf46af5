/* Multiplexer frames: the byte layout of docs/PROTOCOL.md section 6.
 *
 * Every frame is an 8-byte header followed by `length` payload bytes:
 *   type u8 | flags u8 | length u16 | stream_id u32      (big-endian)
 * The decoder is a pure function over (p, n) with three answers: a frame
 * (0, *used set), UM_EAGAIN (need more bytes) or UM_EPROTO (malformed).
 * It is strict: reserved flag bits, wrong lengths, a zero or non-zero
 * stream id where the spec says otherwise, bad addresses and oversized
 * frames are all UM_EPROTO, so that decode -> encode gives back the very
 * same bytes. */
#ifndef UM_MUX_FRAME_H
#define UM_MUX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define UM_MUX_HDR       8     /* header bytes */
#define UM_MUX_FRAME_MAX 16384 /* largest payload a receiver accepts */
/* Protocol constants: the credit each side has before any WINDOW_UPDATE. */
#define UM_MUX_INIT_WINDOW         65536u      /* per stream, each direction */
#define UM_MUX_INIT_SESSION_WINDOW 262144u     /* per session, each direction */
#define UM_MUX_WINDOW_LIMIT        0x7fffffffu /* a send window above this is an error */

typedef enum {
    UM_MUX_DATA = 0x00,
    UM_MUX_OPEN = 0x01,
    UM_MUX_OPEN_RESULT = 0x02,
    UM_MUX_FIN = 0x03,
    UM_MUX_RST = 0x04,
    UM_MUX_WINDOW = 0x05,
    UM_MUX_PING = 0x06,
    UM_MUX_PONG = 0x07,
    UM_MUX_GOAWAY = 0x08,
    UM_MUX_PADDING = 0x09,
    UM_MUX_DATAGRAM = 0x0a,
    UM_MUX_ASSOC_CLOSE = 0x0b,
    UM_MUX_TYPE_IGNORABLE = 0x80, /* types 0x80..0xff: skipped by length */
} um_mux_frame_type_t;

#define UM_MUX_FLAG_FIN 0x01u /* OPEN only: the opener sends nothing after the early data */

/* OPEN_RESULT codes. Values 0..8 are the SOCKS5 (RFC 1928) reply codes. */
typedef enum {
    UM_MUX_OK = 0x00,
    UM_MUX_ERR_GENERAL = 0x01,
    UM_MUX_ERR_NOT_ALLOWED = 0x02,
    UM_MUX_ERR_NET_UNREACH = 0x03,
    UM_MUX_ERR_HOST_UNREACH = 0x04,
    UM_MUX_ERR_REFUSED = 0x05,
    UM_MUX_ERR_TIMEDOUT = 0x06,
    UM_MUX_ERR_ATYPE = 0x08,
    UM_MUX_ERR_HOST_NOT_FOUND = 0x10,
} um_mux_result_t;

/* RST reason codes (any value is accepted on receipt). */
typedef enum {
    UM_MUX_RST_CANCEL = 0x00,      /* the application closed the stream */
    UM_MUX_RST_REFUSED = 0x01,     /* stream or pending-open limit; never processed */
    UM_MUX_RST_GOING_AWAY = 0x02,  /* id above the GOAWAY's last id; never processed, retryable */
    UM_MUX_RST_CONN_RESET = 0x03,  /* the destination reset the connection */
    UM_MUX_RST_INTERNAL = 0x04,    /* local failure (memory) */
    UM_MUX_RST_SESSION_END = 0x05, /* local only: the session died under the stream */
    UM_MUX_RST_STALLED = 0x06,     /* local only: reset by the stream progress timeout */
    UM_MUX_RST_OVERLOADED = 0x07,  /* memory budget: never processed, retry later */
} um_mux_rst_t;

/* GOAWAY codes. */
typedef enum {
    UM_MUX_GOAWAY_NORMAL = 0x00,
    UM_MUX_GOAWAY_PROTOCOL = 0x01,
    UM_MUX_GOAWAY_FLOW_CONTROL = 0x02,
    UM_MUX_GOAWAY_LIMIT = 0x03,
    UM_MUX_GOAWAY_INTERNAL = 0x04,
    UM_MUX_GOAWAY_TIMEOUT = 0x05,
    UM_MUX_GOAWAY_CLOSED = 0x06, /* the sender ends the session now: not to be resumed */
    /* Like CLOSED, with the operator's reason (docs/PROTOCOL.md 6.8) */
    UM_MUX_GOAWAY_QUOTA = 0x07,   /* the client's byte quota is used up */
    UM_MUX_GOAWAY_EXPIRED = 0x08, /* the client's access has expired */
    UM_MUX_GOAWAY_REVOKED = 0x09, /* the client's key was removed */
    UM_MUX_GOAWAY_KICKED = 0x0a,  /* the operator ended this session */
} um_mux_goaway_t;

/* True for the codes that end the session at once (CLOSED and its reasons). */
#define UM_MUX_GOAWAY_ENDS_NOW(c) ((c) >= UM_MUX_GOAWAY_CLOSED && (c) <= UM_MUX_GOAWAY_KICKED)

/* A decoded frame. Pointers borrow from the decoder's input buffer. */
typedef struct {
    uint8_t type;
    uint8_t flags;
    uint32_t id;         /* stream id, association id, or 0 */
    uint16_t length;     /* payload length */
    uint8_t code;        /* OPEN_RESULT, RST, GOAWAY */
    uint32_t value;      /* WINDOW increment, GOAWAY last id, PING/PONG id */
    uint64_t ts;         /* PING/PONG timestamp (sender's milliseconds) */
    um_addr_t addr;      /* OPEN, DATAGRAM */
    const uint8_t *data; /* DATA, OPEN early data, DATAGRAM, PADDING, ignorable: borrowed */
    size_t data_len;
} um_mux_frame_t;

/* Header check alone: UM_EAGAIN (n < 8), UM_EPROTO (oversized or a
 * non-ignorable unknown type), else 0 with *total = 8 + length. */
int um_mux_frame_peek(const uint8_t *p, size_t n, size_t *total);
/* Decodes one frame from p (borrowed; f's pointers point into it). */
int um_mux_frame_decode(const uint8_t *p, size_t n, um_mux_frame_t *f, size_t *used);
/* Encoded size of an address field (atype, address, port): 7, 19 or 4+len. */
size_t um_mux_addr_size(const um_addr_t *a);
/* Encodes f into out. Returns 0 and *written, UM_ENOSPC when cap is too
 * small (nothing written), UM_EINVAL for a frame the decoder would refuse. */
int um_mux_frame_encode(const um_mux_frame_t *f, uint8_t *out, size_t cap, size_t *written);

/* Maps an OPEN_RESULT code onto a SOCKS5 reply code and an HTTP status. */
uint8_t um_mux_result_socks5(uint8_t code);
int um_mux_result_http(uint8_t code);
const char *um_mux_result_str(uint8_t code);

#endif
