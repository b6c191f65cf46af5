/* Local listeners of the client: SOCKS5 (RFC 1928/1929), HTTP proxy, and
 * -L style static forwards. Each accepted connection becomes a stream opened
 * through a um_conn_provider_t (src/proxy/conn.h): the tunnel, or the direct
 * connector of src/exit. Relays both ways with backpressure (a side is paused
 * while the other's queue is above UM_CONN_HIGH_WATER), propagates half-close,
 * bounds the handshake time and the number of connections. */
#ifndef UM_PROXY_SERVER_H
#define UM_PROXY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/conn.h"
#include "util/addr.h"

typedef enum { UM_PROXY_SOCKS5 = 1, UM_PROXY_HTTP, UM_PROXY_FORWARD } um_proxy_kind_t;

typedef struct {
    um_conn_provider_t conn;       /* borrowed; must outlive the listener */
    uint32_t handshake_timeout_ms; /* request must be complete within (0: 10000) */
    uint32_t idle_timeout_ms;      /* HTTP keep-alive between requests (0: 60000) */
    uint32_t max_conns;            /* concurrent client connections (0: 1024) */
    const char *user, *pass;       /* SOCKS5 (RFC 1929) or HTTP (Proxy-Authorization: Basic)
                                    * user/password; both or neither (copied) */
    um_addr_t forward_dst;         /* UM_PROXY_FORWARD: where every connection goes */
    /* Fast open (docs/internals/proxy.md): the SOCKS5 success reply and the
     * HTTP CONNECT 200 go back at once, before the provider's verdict; the
     * client's first bytes then travel with the open (early data). A failed
     * open afterwards resets the client connection. false: replies wait for
     * the verdict and carry its code (what a zeroed opts gives). */
    bool fast_open;
} um_proxy_opts_t;

typedef struct um_proxy um_proxy_t;

/* Binds and listens on `bind` (an IP address; port 0 picks one). */
int um_proxy_new(uv_loop_t *loop, um_proxy_kind_t kind, const um_addr_t *bind,
                 const um_proxy_opts_t *opts, um_proxy_t **out);
/* Closes the listener and every connection; memory is released in the close
 * callbacks. NULL is a no-op. */
void um_proxy_free(um_proxy_t *px);
/* The address actually bound (useful with port 0). */
int um_proxy_local_addr(const um_proxy_t *px, um_addr_t *out);
size_t um_proxy_active(const um_proxy_t *px);

typedef struct {
    uint64_t accepted, refused_limit, handshake_failed, open_failed, bytes_up, bytes_down;
    /* fast open: replies sent before the verdict, opens that carried the
     * client's first bytes, and opens that failed after the reply (each
     * such client connection was reset) */
    uint64_t fo_replies, fo_early, fo_failed;
} um_proxy_stats_t;
void um_proxy_stats(const um_proxy_t *px, um_proxy_stats_t *out);

/* "[bind:]port:host:hostport" as ssh -L; bind defaults to 127.0.0.1; IPv6 in
 * brackets. UM_EINVAL with a reason in err. */
int um_forward_spec_parse(const char *s, um_addr_t *listen, um_addr_t *dst, char *err,
                          size_t errlen);

#endif
