/* TLS record layer framing for the `tls` transport (docs/PROTOCOL.md 8):
 * after its first flights, a `tls` connection is a sequence of TLS 1.3
 * application_data records (type 23, legacy version 03 03) whose payloads,
 * concatenated, are the session's record stream.
 *
 * Pure functions and a sans-I/O deframer; every buffer is borrowed for the
 * call (spans the deframer returns point into the caller's input). */
#ifndef UM_TRANSPORT_TLS_RECORD_H
#define UM_TRANSPORT_TLS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define UM_TLS_REC_HDR 5
/* Largest payload of a TLS 1.3 record on the wire: TLSCiphertext is at most
 * 2^14 + 256 bytes (RFC 8446 5.2). */
#define UM_TLS_REC_PAYLOAD_MAX (16384 + 256)
/* What TLS 1.3 stacks put in a full application_data record: 2^14 bytes of
 * plaintext, the inner content type and a 16-byte tag. Bulk data is cut into
 * records of this size, as a browser's and a web server's is. */
#define UM_TLS_REC_FULL 16401

enum {
    UM_TLS_CT_CCS = 20,
    UM_TLS_CT_ALERT = 21,
    UM_TLS_CT_HANDSHAKE = 22,
    UM_TLS_CT_APPDATA = 23,
};

/* Reads a record header at p[0..n): 0 with *type and *len (payload bytes),
 * UM_EAGAIN for fewer than 5 bytes, UM_EPROTO for an unknown type, a legacy
 * version other than 03 01..03 03, an empty record or one longer than
 * UM_TLS_REC_PAYLOAD_MAX. */
int um_tls_rec_header(const uint8_t *p, size_t n, uint8_t *type, size_t *len);
void um_tls_rec_put_header(uint8_t out[UM_TLS_REC_HDR], uint8_t type, size_t len);

/* Bytes um_tls_rec_frame() writes for n payload bytes. */
size_t um_tls_rec_framed_len(size_t n);
/* Cuts p[0..n) into application_data records of UM_TLS_REC_FULL payload
 * bytes (the last one shorter) and writes them to out. UM_ENOSPC when cap <
 * um_tls_rec_framed_len(n). */
int um_tls_rec_frame(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *outn);

/* The receiving side: feed wire bytes, take application_data payload spans.
 * Any other record type after the handshake (an alert, a handshake record,
 * a second CCS) ends the connection. */
typedef struct {
    uint8_t hdr[UM_TLS_REC_HDR];
    size_t hdr_have; /* header bytes collected so far */
    size_t left;     /* payload bytes of the current record still to come */
    int ccs_ok;      /* one ChangeCipherSpec may still come (and is dropped) */
    int in_ccs;      /* the current record is that ChangeCipherSpec */
    int err;
} um_tls_deframer_t;

/* allow_ccs: the peer may send one ChangeCipherSpec record before its first
 * application_data record (a TLS 1.3 client in middlebox compatibility mode
 * does, after the server's flight). */
void um_tls_deframer_init(um_tls_deframer_t *d, int allow_ccs);
/* Takes bytes from *p (advancing *p and *n) and returns
 *   1          a payload span in *span[0..*spann) (borrowed from the input);
 *   0          the input is used up (no span);
 *   UM_EPROTO  not an application_data record, or a bad header; the error
 *              sticks (every later call returns it). */
int um_tls_deframe(um_tls_deframer_t *d, const uint8_t **p, size_t *n, const uint8_t **span,
                   size_t *spann);

#endif
