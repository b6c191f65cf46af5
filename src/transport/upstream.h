/* Upstream proxies: the client reaches its server (or bridge) through a
 * SOCKS5 (RFC 1928, with RFC 1929 user/password) or HTTP CONNECT (RFC 9110
 * 9.3.6, with Basic auth) proxy. The connector dials the proxy, runs this
 * exchange on the connection, then sends its first flight on the same
 * connection as it would on a direct one (docs/CONFIG.md `upstream`).
 *
 * Sans-I/O: um_upstream_start() gives the first bytes to send;
 * um_upstream_input() takes everything the proxy sent so far (the caller
 * keeps the bytes it has not been told were used), and answers
 *   - UM_EAGAIN: need more bytes; *outn bytes (maybe 0) to send first;
 *   - 0: the tunnel through the proxy is open; the first *used bytes were the
 *     proxy's, the rest (none expected) belong to the server;
 *   - an error (UM_EPROTO: not a proxy reply we understand; UM_EAUTH: the
 *     proxy refused our credentials or wants some; UM_EACCES: it refused the
 *     CONNECT), with the proxy's reason in um_upstream_reason().
 * Output buffers may hold the password: the caller wipes them after the
 * write. */
#ifndef UM_TRANSPORT_UPSTREAM_H
#define UM_TRANSPORT_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

typedef enum {
    UM_UPSTREAM_NONE = 0,
    UM_UPSTREAM_SOCKS5 = 1,
    UM_UPSTREAM_HTTP = 2
} um_upstream_kind_t;

#define UM_UPSTREAM_CRED_MAX 255  /* user and password, each (RFC 1929's bound) */
#define UM_UPSTREAM_OUT_MAX  1024 /* the longest message we send */
#define UM_UPSTREAM_IN_MAX   8192 /* the longest reply we accept (HTTP headers) */

typedef struct {
    uint8_t kind; /* um_upstream_kind_t */
    um_addr_t proxy;
    char user[UM_UPSTREAM_CRED_MAX + 1]; /* "" = no authentication */
    char pass[UM_UPSTREAM_CRED_MAX + 1]; /* secret */
} um_upstream_cfg_t;

/* Parses "socks5://[user:pass@]host:port" or "http://[user:pass@]host:port"
 * (host an IP address, [v6] in brackets; user and pass percent-encoded where
 * they hold ':', '@' or '%'). Pure. 0, or UM_EINVAL with a reason that never
 * quotes the credentials in why. */
int um_upstream_parse(um_upstream_cfg_t *u, const char *s, size_t n, char *why, size_t whylen);
/* "socks5://host:port" or "http://host:port" (never the credentials). */
size_t um_upstream_format(const um_upstream_cfg_t *u, char *out, size_t cap);
void um_upstream_cfg_wipe(um_upstream_cfg_t *u);

typedef struct {
    const um_upstream_cfg_t *cfg; /* borrowed until the exchange ends */
    um_addr_t target;
    int phase;
    char reason[128]; /* printable, NUL-terminated */
} um_upstream_t;

int um_upstream_start(um_upstream_t *u, const um_upstream_cfg_t *cfg, const um_addr_t *target,
                      uint8_t *out, size_t cap, size_t *outn);
int um_upstream_input(um_upstream_t *u, const uint8_t *p, size_t n, size_t *used, uint8_t *out,
                      size_t cap, size_t *outn);
const char *um_upstream_reason(const um_upstream_t *u);

#endif
