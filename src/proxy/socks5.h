/* SOCKS5 codec (RFC 1928, RFC 1929 user/password). Pure functions over bytes:
 * no sockets, no allocation. Parsers answer in three states:
 *   0          done, *used = bytes consumed
 *   UM_EAGAIN  need more bytes (nothing consumed)
 *   UM_EPROTO  malformed; where the protocol has a reply for it, *rep holds the
 *              SOCKS5 reply code to send before closing.
 * Builders write into a caller-provided buffer and return the byte count (0 when
 * the buffer is too small). */
#ifndef UM_PROXY_SOCKS5_H
#define UM_PROXY_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define UM_SOCKS5_VERSION 5

enum {
    UM_SOCKS5_AUTH_NONE = 0x00,
    UM_SOCKS5_AUTH_USERPASS = 0x02,
    UM_SOCKS5_AUTH_NO_ACCEPTABLE = 0xff,
};

enum {
    UM_SOCKS5_CMD_CONNECT = 0x01,
    UM_SOCKS5_CMD_BIND = 0x02,
    UM_SOCKS5_CMD_UDP_ASSOCIATE = 0x03,
};

/* Reply codes (RFC 1928 section 6). */
enum {
    UM_SOCKS5_REP_SUCCEEDED = 0x00,
    UM_SOCKS5_REP_GENERAL_FAILURE = 0x01,
    UM_SOCKS5_REP_NOT_ALLOWED = 0x02,
    UM_SOCKS5_REP_NET_UNREACHABLE = 0x03,
    UM_SOCKS5_REP_HOST_UNREACHABLE = 0x04,
    UM_SOCKS5_REP_REFUSED = 0x05,
    UM_SOCKS5_REP_TTL_EXPIRED = 0x06,
    UM_SOCKS5_REP_CMD_UNSUPPORTED = 0x07,
    UM_SOCKS5_REP_ATYP_UNSUPPORTED = 0x08,
};

/* Largest request or reply: VER CMD RSV ATYP + 1 + 255 + 2. */
#define UM_SOCKS5_MSG_MAX 262
/* Largest UDP request header: RSV(2) FRAG ATYP + 1 + 255 + 2. */
#define UM_SOCKS5_UDP_HDR_MAX 262

typedef struct {
    uint8_t nmethods;
    uint8_t methods[255];
} um_socks5_greeting_t;

/* VER NMETHODS METHODS...; UM_EPROTO when VER != 5 or NMETHODS == 0. */
int um_socks5_greeting_parse(const uint8_t *p, size_t n, size_t *used, um_socks5_greeting_t *g);
/* The method the server picks: USERPASS when credentials are required (and
 * offered), NONE when not required (and offered), else NO_ACCEPTABLE. */
uint8_t um_socks5_method_choose(const um_socks5_greeting_t *g, bool require_userpass);
/* VER METHOD (2 bytes). */
size_t um_socks5_method_reply(uint8_t *out, size_t cap, uint8_t method);

/* RFC 1929: VER(1) ULEN UNAME PLEN PASSWD. Strings are NUL-terminated copies;
 * the caller wipes `pass` (sodium_memzero) when done. */
typedef struct {
    uint8_t ulen, plen;
    char user[256];
    char pass[256];
} um_socks5_userpass_t;

int um_socks5_userpass_parse(const uint8_t *p, size_t n, size_t *used, um_socks5_userpass_t *up);
/* VER(1) STATUS (0 = success). */
size_t um_socks5_userpass_reply(uint8_t *out, size_t cap, bool ok);

typedef struct {
    uint8_t cmd;   /* UM_SOCKS5_CMD_CONNECT or _UDP_ASSOCIATE */
    um_addr_t dst; /* a domain that is an IP literal is returned as that IP */
} um_socks5_request_t;

/* VER CMD RSV ATYP DST.ADDR DST.PORT. On UM_EPROTO *rep is:
 * CMD_UNSUPPORTED for BIND and unknown commands, ATYP_UNSUPPORTED for an
 * unknown address type, GENERAL_FAILURE otherwise (bad version, RSV != 0,
 * empty or invalid domain name). *used covers the whole message when its
 * length is known, so a caller may reply and close. */
int um_socks5_request_parse(const uint8_t *p, size_t n, size_t *used, um_socks5_request_t *req,
                            uint8_t *rep);

/* VER REP RSV ATYP BND.ADDR BND.PORT; bnd NULL means 0.0.0.0:0. */
size_t um_socks5_reply_build(uint8_t *out, size_t cap, uint8_t rep, const um_addr_t *bnd);

/* UDP request header (RFC 1928 section 7): RSV(2) FRAG ATYP DST.ADDR DST.PORT.
 * A datagram is never partial, so this is two-state: 0 with *hdr_len = header
 * bytes (payload follows), or UM_EPROTO (truncated, RSV != 0, bad ATYP or
 * name, or FRAG != 0: fragments are not supported and are dropped). */
int um_socks5_udp_parse(const uint8_t *p, size_t n, size_t *hdr_len, um_addr_t *dst);
/* Writes a header for a datagram from `src`; returns its length or 0. */
size_t um_socks5_udp_build(uint8_t *out, size_t cap, const um_addr_t *src);

/* Address encoding shared with the mux: ATYP ADDR PORT. Returns bytes written
 * or 0 when cap is too small or the type unknown. */
size_t um_socks5_addr_put(uint8_t *out, size_t cap, const um_addr_t *a);
/* Parses ATYP ADDR PORT: 0 / UM_EAGAIN / UM_EPROTO (*rep as above). */
int um_socks5_addr_get(const uint8_t *p, size_t n, size_t *used, um_addr_t *a, uint8_t *rep);

/* The reply code for an open result (um_conn_result_t of proxy/conn.h):
 * not allowed 0x02, refused 0x05, network 0x03, host unreachable and host not
 * found 0x04, timed out 0x06 (TTL expired), anything else 0x01. */
uint8_t um_socks5_rep_from_result(int result);

#endif
