/* The one interface between ingress (SOCKS5, HTTP proxy, forwards) and whatever
 * carries a connection to its destination: a mux stream over the tunnel, or a
 * direct TCP connection (src/exit/direct.c). A const table of operations plus
 * an opaque handle, in the manner of curl's connection filters.
 *
 * Rules every implementation follows:
 * - Callbacks are never invoked from inside the call that caused them (always
 *   deferred to a later loop iteration), and never after close().
 * - The caller calls close() exactly once on every handle it got from open(),
 *   whatever happened (failed open, error, EOF). close() before on_open cancels
 *   the open. The implementation frees the handle itself, later.
 * - write() copies the bytes (the caller keeps ownership of its buffer).
 *   Writes before on_open(UM_CONN_OK) are refused with UM_EAGAIN: pass the
 *   bytes already at hand as `early` to open() instead (0-RTT on the tunnel).
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

typedef struct {
    const char *name;
    /* Opens a stream to dst. early/n (copied) are sent right after (or with)
     * the open. cbs is borrowed for the stream's lifetime (usually static).
     * Returns 0 and *out, or a negative UM_E* code (no callbacks then). */
    int (*open)(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                const um_conn_cbs_t *cbs, void *arg, um_conn_t **out);
    int (*write)(um_conn_t *c, const uint8_t *p, size_t n); /* copies; UM_EPIPE when dead */
    size_t (*queued)(um_conn_t *c);
    int (*read_start)(um_conn_t *c);
    int (*read_stop)(um_conn_t *c);
    int (*shutdown)(um_conn_t *c); /* half-close after queued bytes */
    void (*close)(um_conn_t *c);   /* abort; no callbacks after this */

    /* Datagrams (UDP ASSOCIATE). Each send is independent and may be dropped
     * (unknown name, policy, full queue): that is UDP. */
    int (*assoc_open)(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out);
    int (*assoc_send)(um_assoc_t *a, const um_addr_t *dst, const uint8_t *p, size_t n);
    void (*assoc_close)(um_assoc_t *a); /* no callbacks after this */
} um_conn_ops_t;

/* What a listener is given: ops (static) and its context (borrowed). */
typedef struct {
    const um_conn_ops_t *ops;
    void *ctx;
} um_conn_provider_t;

#endif
