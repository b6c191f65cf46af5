/* HTTP/1.1 proxy codec (RFC 9110, RFC 9112). Pure functions over bytes.
 *
 * Requests: CONNECT host:port (authority-form), or absolute-form
 * `http://host[:port]/path` for any other method; origin-form ("/path") is
 * refused with 400 because a proxy cannot know where to send it.
 * Responses: the head, and the body framing a proxy needs to keep a client
 * connection in step (Content-Length, chunked, close-delimited, 1xx,
 * HEAD/204/304 without a body).
 *
 * Parsers are three-state: 0 done (head_len = bytes of the head), UM_EAGAIN
 * need more bytes, UM_EPROTO malformed (request: `status` holds the HTTP
 * status to answer). Header pointers borrow from the parsed bytes and stay
 * valid as long as those bytes do. */
#ifndef UM_PROXY_HTTP_H
#define UM_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define UM_HTTP_HEAD_MAX    16384 /* request or response head, CRLFCRLF included */
#define UM_HTTP_HEADERS_MAX 64
/* Room a rewritten response head needs: each header line may grow by two
 * bytes (": " and CRLF normalised), plus the status line and Connection. */
#define UM_HTTP_RESPONSE_REWRITE_CAP(head_len, nheaders) ((head_len) + 2 * (nheaders) + 64)

typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* without surrounding whitespace */
    size_t value_len;
} um_http_header_t;

typedef enum {
    UM_HTTP_BODY_NONE = 0,
    UM_HTTP_BODY_LENGTH,  /* Content-Length bytes */
    UM_HTTP_BODY_CHUNKED, /* chunked transfer coding, ends at the last chunk + trailers */
    UM_HTTP_BODY_EOF,     /* response until the connection closes */
} um_http_framing_t;

typedef struct {
    const char *method;
    size_t method_len;
    bool is_connect;
    bool is_head;
    um_addr_t dst;    /* CONNECT authority, or the absolute-form host (default port 80) */
    const char *path; /* origin-form target to forward; may be empty or start with '?' */
    size_t path_len;
    uint8_t minor;   /* HTTP/1.minor */
    bool keep_alive; /* the client wants a persistent connection */
    bool has_host;
    um_http_framing_t framing;
    uint64_t content_length;
    size_t nheaders;
    um_http_header_t headers[UM_HTTP_HEADERS_MAX];
    size_t head_len;
    int status;      /* on UM_EPROTO: 400, 405 or 501 */
    const char *why; /* on UM_EPROTO: a short static reason */
} um_http_request_t;

typedef struct {
    int status;
    uint8_t minor;
    um_http_framing_t framing;
    uint64_t content_length;
    size_t nheaders;
    um_http_header_t headers[UM_HTTP_HEADERS_MAX];
    const char *reason; /* status line text after the code */
    size_t reason_len;
    size_t head_len;
    bool close_after; /* both Content-Length and Transfer-Encoding (RFC 9112 6.3):
                       * the rewrite drops Content-Length, the connection ends */
} um_http_response_t;

int um_http_request_parse(const uint8_t *p, size_t n, um_http_request_t *req);
/* head_request: the request was HEAD (its response has no body). */
int um_http_response_parse(const uint8_t *p, size_t n, bool head_request, um_http_response_t *res);

/* Writes the request head to forward to the origin: origin-form target,
 * HTTP/1.1, a Host header built from the absolute URI (any Host the client
 * sent is dropped, RFC 9112 3.2.2), hop-by-hop headers
 * removed (Connection, Proxy-Connection, Keep-Alive, Proxy-Authorization, TE,
 * Trailer, Upgrade and every header named in Connection), and
 * "Connection: close". Returns the length, or 0 when cap is too small;
 * UM_HTTP_HEAD_MAX + 512 is always enough. */
size_t um_http_request_rewrite(const um_http_request_t *req, uint8_t *out, size_t cap);
/* Writes the response head to relay to the client: hop-by-hop headers removed
 * (and Content-Length when close_after) and "Connection: keep-alive" or
 * "Connection: close" (always close when close_after) added (1xx heads are
 * passed on without a Connection header; 101 verbatim). 0 when cap is short. */
size_t um_http_response_rewrite(const um_http_response_t *res, const uint8_t *head, bool keep_alive,
                                uint8_t *out, size_t cap);

/* Incremental body framing: where does this body end? */
typedef struct {
    uint8_t framing; /* um_http_framing_t */
    uint8_t state;
    uint8_t digits;
    uint16_t line; /* bytes of the current chunk-size, extension or trailer line */
    uint16_t trailers;
    uint64_t left; /* LENGTH: bytes to go; CHUNKED: bytes left in this chunk */
} um_http_body_t;

void um_http_body_init(um_http_body_t *b, um_http_framing_t f, uint64_t content_length);
/* Consumes body bytes from p; *used is how many belong to the body. Returns 1
 * when the body is complete, 0 when it needs more, UM_EPROTO on bad chunked
 * syntax. A close-delimited body never completes here. */
int um_http_body_feed(um_http_body_t *b, const uint8_t *p, size_t n, size_t *used);
bool um_http_body_done(const um_http_body_t *b);

/* "HTTP/1.1 <status> <reason>" with a short text/plain body naming `detail`
 * (may be NULL), Content-Length, and Connection: close unless keep_alive.
 * 407 adds Proxy-Authenticate: Basic. Returns the length or 0. */
size_t um_http_error_build(char *out, size_t cap, int status, const char *detail, bool keep_alive);
/* "HTTP/1.1 200 Connection established\r\n\r\n". */
size_t um_http_connect_ok_build(char *out, size_t cap);
const char *um_http_reason(int status);

#define UM_HTTP_CRED_MAX 255 /* user or password, as RFC 1929 */
/* True when the request carries "Proxy-Authorization: Basic" (RFC 7617) with
 * exactly user:pass. The credentials are compared in constant time and the
 * decoded copy wiped. Pure. */
bool um_http_proxy_auth_ok(const um_http_request_t *req, const char *user, const char *pass);

/* Case-insensitive lookup of the first header with this name; NULL if none. */
const um_http_header_t *um_http_header_find(const um_http_header_t *h, size_t n, const char *name);

#endif
