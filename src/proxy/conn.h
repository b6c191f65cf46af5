/* The one interface between ingress (SOCKS5, HTTP proxy, forwards, the VPN)
 * and whatever carries a connection to its destination: a mux stream over the
 * tunnel (src/tunnel/tunnel.c), or a direct TCP connection (src/exit/direct.c).
 * In the manner of curl's connection filters and of src/transport/carrier.h:
 *
 *   - a provider (um_conn_provider_t: a const connector table and its context)
 *     opens streams and UDP associations;
 *   - every stream it opens begins with `um_conn_t`, its own ops pointer, and
 *     every association with `um_assoc_t`; the inline wrappers below go
 *     through that pointer, so a stream is always driven by the table of the
 *     implementation that made it (no (ops, conn) pair to get wrong):
 *
 *         um_conn_t *c;
 *         um_conn_open(prov, &dst, NULL, 0, &cbs, arg, &c);
 *         um_conn_write(c, p, n);  ...  um_conn_close(c);
 *
 * Rules every implementation follows:
 * - Callbacks are never invoked from inside the call that caused them (always
 *   deferred to a later loop iteration), and never after close().
 * - The caller calls close() exactly once on every handle it got from open(),
 *   whatever happened (failed open, error, EOF). close() before on_open cancels
 *   the open. The implementation frees the handle itself, later.
 * - write() copies the bytes (the caller keeps ownership of its buffer).
 *   Before on_open(UM_CONN_OK) an implementation may take writes (the
 *   tunnel does: DATA before OPEN_RESULT) or refuse them with UM_EAGAIN (the
 *   direct connector); a caller must handle both. Pass the bytes already at
 *   hand as `early` to open() (0-RTT on the tunnel).
 * - Backpressure: queued() is the count of bytes accepted by write() and not
 *   yet delivered. Stop feeding above a high-water mark; on_drain fires once the
 *   queue has fallen to low water after having been above high water.
 *   read_stop()/read_start() pause delivery of on_data. */
#ifndef UM_PROXY_CONN_H
#define UM_PROXY_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

/* Result of an open, as the server or the dialer reports it. */
typedef enum {
    UM_CONN_OK = 0,
    UM_CONN_GENERAL_FAILURE = 1,
    UM_CONN_NOT_ALLOWED = 2,     /* egress policy */
    UM_CONN_NET_UNREACHABLE = 3, /* no route */
    UM_CONN_HOST_UNREACHABLE = 4,
    UM_CONN_REFUSED = 5, /* RST */
    UM_CONN_TIMED_OUT = 6,
    UM_CONN_HOST_NOT_FOUND = 7, /* DNS said no such name */
} um_conn_result_t;

const char *um_conn_result_str(int result);

/* Backpressure marks shared by every implementation and user: stop feeding a
 * stream whose queued() exceeds HIGH; on_drain fires at LOW. */
#define UM_CONN_HIGH_WATER (256u * 1024u)
#define UM_CONN_LOW_WATER  (64u * 1024u)

typedef struct um_conn um_conn_t;   /* a stream to one destination */
typedef struct um_assoc um_assoc_t; /* a UDP association (datagrams) */
typedef struct um_conn_ops um_conn_ops_t;
typedef struct um_assoc_ops um_assoc_ops_t;

/* The first member of every implementation's stream / association object. */
struct um_conn {
    const um_conn_ops_t *ops;
};
struct um_assoc {
    const um_assoc_ops_t *ops;
};

/* Events of one stream. `arg` is the value given to open(). Data pointers are
 * borrowed for the duration of the call. */
typedef struct {
    void (*on_open)(void *arg, int result); /* exactly once unless closed first */
    void (*on_data)(void *arg, const uint8_t *p, size_t n);
    void (*on_eof)(void *arg);            /* the far end half-closed */
    void (*on_error)(void *arg, int err); /* stream dead (reset, I/O error) */
    void (*on_drain)(void *arg);          /* queued() back to low water */
} um_conn_cbs_t;

/* Datagram from `src` (borrowed for the call). */
typedef void (*um_assoc_recv_cb)(void *arg, const um_addr_t *src, const uint8_t *p, size_t n);

/* Operations of one stream. */
struct um_conn_ops {
    const char *name;
    int (*write)(um_conn_t *c, const uint8_t *p, size_t n); /* copies; UM_EPIPE when dead */
    size_t (*queued)(um_conn_t *c);
    int (*read_start)(um_conn_t *c);
    int (*read_stop)(um_conn_t *c);
    int (*shutdown)(um_conn_t *c); /* half-close after queued bytes */
    void (*close)(um_conn_t *c);   /* abort; no callbacks after this */
};

/* Operations of one UDP association. Each send is independent and may be
 * dropped (unknown name, policy, full queue): that is UDP. */
struct um_assoc_ops {
    int (*send)(um_assoc_t *a, const um_addr_t *dst, const uint8_t *p, size_t n);
    void (*close)(um_assoc_t *a); /* no callbacks after this */
};

/* What makes streams and associations. */
typedef struct {
    const char *name;
    /* Opens a stream to dst. early/n (copied) are sent right after (or with)
     * the open. cbs is borrowed for the stream's lifetime (usually static).
     * Returns 0 and *out, or a negative UM_E* code (no callbacks then). */
    int (*open)(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                const um_conn_cbs_t *cbs, void *arg, um_conn_t **out);
    /* Opens a UDP association (UDP ASSOCIATE, VPN UDP flows). */
    int (*assoc_open)(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out);
    /* Optional (NULL: never known in advance). What an open to dst would
     * get, when the provider knows it at once without I/O (a routing rule
     * that blocks dst: UM_CONN_NOT_ALLOWED); UM_CONN_OK when it cannot tell.
     * Fast open asks before its early reply, so a refusal known locally
     * keeps its truthful reply code. A refusal given here counts as an open
     * the provider refused. */
    int (*verdict)(void *ctx, const um_addr_t *dst);
} um_connector_ops_t;

/* What a listener is given: ops (static) and its context (borrowed). */
typedef struct {
    const um_connector_ops_t *ops;
    void *ctx;
} um_conn_provider_t;

static inline int um_conn_open(um_conn_provider_t p, const um_addr_t *dst, const uint8_t *early,
                               size_t n, const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    return p.ops->open(p.ctx, dst, early, n, cbs, arg, out);
}
static inline int um_conn_verdict(um_conn_provider_t p, const um_addr_t *dst)
{
    return p.ops->verdict ? p.ops->verdict(p.ctx, dst) : UM_CONN_OK;
}
static inline int um_conn_write(um_conn_t *c, const uint8_t *p, size_t n)
{
    return c->ops->write(c, p, n);
}
static inline size_t um_conn_queued(um_conn_t *c)
{
    return c->ops->queued(c);
}
static inline int um_conn_read_start(um_conn_t *c)
{
    return c->ops->read_start(c);
}
static inline int um_conn_read_stop(um_conn_t *c)
{
    return c->ops->read_stop(c);
}
static inline int um_conn_shutdown(um_conn_t *c)
{
    return c->ops->shutdown(c);
}
static inline void um_conn_close(um_conn_t *c) /* NULL is a no-op */
{
    if (c) c->ops->close(c);
}
static inline const char *um_conn_name(const um_conn_t *c)
{
    return c->ops->name;
}

static inline int um_assoc_open(um_conn_provider_t p, um_assoc_recv_cb cb, void *arg,
                                um_assoc_t **out)
{
    return p.ops->assoc_open(p.ctx, cb, arg, out);
}
static inline int um_assoc_send(um_assoc_t *a, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    return a->ops->send(a, dst, p, n);
}
static inline void um_assoc_close(um_assoc_t *a) /* NULL is a no-op */
{
    if (a) a->ops->close(a);
}

#endif
