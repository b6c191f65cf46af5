/* Asynchronous name resolution with c-ares on a libuv loop: never blocks the
 * loop; A and AAAA; /etc/hosts first (so "localhost" works), then DNS; IP
 * literals answered without DNS. */
#ifndef UM_EXIT_RESOLVER_H
#define UM_EXIT_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/addr.h"

#define UM_RESOLVE_MAX_ADDRS 16

typedef struct um_resolver um_resolver_t;
typedef struct um_resolve um_resolve_t;

/* status: 0 (n >= 1), UM_ENOENT (no such name, or no address), UM_ETIMEDOUT,
 * UM_EIO. addrs (borrowed for the call) carry the port given to the query.
 * Always called from the loop, never from inside um_resolver_query. */
typedef void (*um_resolve_cb)(void *arg, int status, const um_addr_t *addrs, size_t n);

/* timeout_ms bounds one query (0: 5000). The resolver lives until
 * um_resolver_free(); its memory is released in the close callbacks. */
int um_resolver_new(uv_loop_t *loop, uint32_t timeout_ms, um_resolver_t **out);
/* Cancels every query (their callbacks are not called). NULL is a no-op. */
void um_resolver_free(um_resolver_t *r);

/* name: NUL-terminated host name or IP literal (borrowed for the call).
 * *out (optional) may be passed to um_resolve_cancel until the callback. */
int um_resolver_query(um_resolver_t *r, const char *name, uint16_t port, um_resolve_cb cb,
                      void *arg, um_resolve_t **out);
/* The callback will not be called; the query is released. */
void um_resolve_cancel(um_resolve_t *q);

/* Latency of answered name queries (IP literals not counted), from the
 * query to its answer, in buckets whose upper bounds are
 * um_resolve_lat_us (1 ms .. 5 s; the last count is above them all). */
#define UM_RESOLVE_LAT_BUCKETS 10
extern const uint64_t um_resolve_lat_us[UM_RESOLVE_LAT_BUCKETS];
typedef struct {
    uint64_t count[UM_RESOLVE_LAT_BUCKETS + 1];
    uint64_t sum_us;
} um_resolver_lat_t;
void um_resolver_latency(const um_resolver_t *r, um_resolver_lat_t *out);

#endif
