/* The HTTP/1.1 side of the `ws` transport (docs/PROTOCOL.md 11): the
 * WebSocket upgrade request and its 101 answer (RFC 6455 section 4), as pure
 * functions. The parser takes the bytes received so far and finds one
 * message head (request or status line, header fields, the empty line);
 * the field accessors then look fields up by name without copying.
 *
 * Bounds: a head is at most UM_WS_HEAD_MAX bytes and UM_WS_FIELDS_MAX
 * fields; anything longer is refused (UM_EPROTO), never truncated. */
#ifndef UM_TRANSPORT_WS_HTTP_H
#define UM_TRANSPORT_WS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UM_WS_HEAD_MAX   8192
#define UM_WS_FIELDS_MAX 48
#define UM_WS_KEY_LEN    24 /* base64 of 16 bytes */
#define UM_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
/* Extra upgrade request fields (`header = Name: value`): at most this many,
 * each at most this long as "Name: value". */
#define UM_WS_XHDR_MAX 8
#define UM_WS_XHDR_LEN 256

typedef struct {
    const uint8_t *p;
    size_t n;
} um_ws_span_t;

typedef struct {
    bool is_request;
    um_ws_span_t method, target;                                  /* request */
    unsigned status;                                              /* response: 100..599 */
    unsigned minor;                                               /* HTTP/1.<minor> */
    um_ws_span_t name[UM_WS_FIELDS_MAX], value[UM_WS_FIELDS_MAX]; /* value: trimmed */
    size_t n_fields;
    size_t len; /* bytes of the head, the empty line included */
} um_ws_head_t;

/* 0: a complete head in p[0..h->len); UM_EAGAIN: every byte so far may
 * still begin one; UM_EPROTO: cannot be an HTTP/1.x head. Total over any
 * input. */
int um_ws_head_parse(const uint8_t *p, size_t n, um_ws_head_t *h);
/* The value of the first field called name (case-insensitive), or NULL. */
const um_ws_span_t *um_ws_field(const um_ws_head_t *h, const char *name);
/* Whether the comma-separated value of field `name` holds token tok
 * (case-insensitive), in any of the fields of that name. */
bool um_ws_field_has(const um_ws_head_t *h, const char *name, const char *tok);

/* Sec-WebSocket-Accept for a key (RFC 6455 4.2.2): base64(SHA-1(key GUID)). */
void um_ws_accept(const char key[UM_WS_KEY_LEN], char out[UM_WS_ACCEPT_LEN + 1]);

/* What an upgrade request carries: path, the Host header, the key, and the
 * Sec-WebSocket-Protocol value (the early data), base64url. */
typedef struct {
    const char *path;
    const char *host;
    char key[UM_WS_KEY_LEN + 1];
    const char *protocol;     /* NULL: none */
    const char *const *extra; /* n_extra "Name: value" fields (um_ws_xhdr_check) */
    size_t n_extra;
} um_ws_req_t;

/* Whether "Name: value" may be an extra upgrade request field: a token
 * name, a value without CR, LF or other control characters (tab allowed),
 * at most UM_WS_XHDR_LEN bytes in all, and not a field umbra sets itself
 * (Host, Upgrade, Connection, Content-Length, Transfer-Encoding,
 * Sec-WebSocket-*). UM_EINVAL with the reason in why otherwise. Pure. */
int um_ws_xhdr_check(const char *line, char *why, size_t whylen);

/* Builds a browser-like upgrade request; the extra fields after the
 * standard ones (one of the same name as a browser default, such as
 * User-Agent or Origin, replaces that default). UM_ENOSPC when cap is
 * short, UM_EINVAL for an extra field um_ws_xhdr_check refuses. */
int um_ws_req_build(const um_ws_req_t *q, char *out, size_t cap, size_t *outn);
/* Server: checks a parsed head is an upgrade request for `path`; gives the
 * key and the protocol value. UM_EPROTO otherwise. */
int um_ws_req_check(const um_ws_head_t *h, const char *path, char key[UM_WS_KEY_LEN + 1],
                    um_ws_span_t *protocol);
/* Builds the 101 answer for key. */
int um_ws_resp_build(const char key[UM_WS_KEY_LEN + 1], char *out, size_t cap, size_t *outn);
/* Client: checks a parsed head is a 101 upgrade with the accept of key. */
int um_ws_resp_check(const um_ws_head_t *h, const char key[UM_WS_KEY_LEN + 1]);
/* The answer to a request that is not ours: a plain 404 (a generic
 * upstream's; behind nginx with proxy_intercept_errors, nginx's own page
 * replaces it). */
size_t um_ws_not_found(char *out, size_t cap);

#endif
