/* Thin libuv TCP glue: listen/accept/connect, reads delivered to a callback,
 * copied writes with a bounded queue (backpressure), FIN, close.
 *
 * Ownership: an um_tcp_t is heap-allocated and owned by whoever holds it (the
 * accept callback receives ownership). um_tcp_close() starts the libuv close;
 * the memory is released in the close callback, and no callback of the
 * connection runs after um_tcp_close() returns. Bytes passed to the read
 * callback are borrowed for the duration of the call. */
#ifndef UM_TRANSPORT_TCP_H
#define UM_TRANSPORT_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "transport/carrier.h"

typedef struct um_tcp um_tcp_t;
typedef struct um_tcp_listener um_tcp_listener_t;

/* status 0: n bytes in p; UM_EPIPE: peer sent FIN (EOF); else a read error. */
typedef void (*um_tcp_read_cb)(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud);
/* Connect completion (status 0 or <0), or write queue drained below low water. */
typedef void (*um_tcp_event_cb)(um_tcp_t *t, int status, void *ud);
typedef void (*um_tcp_accept_cb)(um_tcp_listener_t *l, um_tcp_t *conn, void *ud);

#define UM_TCP_WQ_MAX_DEFAULT (4u << 20)
/* TCP_NOTSENT_LOWAT of every connection (tcp.c: tcp_tune) */
#ifndef UM_TCP_NOTSENT_LOWAT
#define UM_TCP_NOTSENT_LOWAT (128 * 1024)
#endif
#define UM_TCP_BACKLOG 511 /* listen backlog when the caller passes 0 */

int um_tcp_listen(uv_loop_t *loop, const struct sockaddr *sa, int backlog, um_tcp_accept_cb cb,
                  void *ud, um_tcp_listener_t **out);
int um_tcp_listener_port(const um_tcp_listener_t *l); /* bound port, host order */
void um_tcp_listener_close(um_tcp_listener_t *l);
/* Pause: new connections are not taken (libuv holds at most one, the rest
 * wait in the kernel's backlog) until resume. Never an accept-then-close. */
void um_tcp_listener_pause(um_tcp_listener_t *l);
void um_tcp_listener_resume(um_tcp_listener_t *l);

/* Starts a connection; cb(t, status) fires once. On status < 0 the caller
 * still owns t and must um_tcp_close() it. */
int um_tcp_connect(uv_loop_t *loop, const struct sockaddr *sa, um_tcp_event_cb cb, void *ud,
                   um_tcp_t **out);

void um_tcp_set_read_cb(um_tcp_t *t, um_tcp_read_cb cb, void *ud);
/* drain cb: called once the queue falls to a quarter of wq_max after a write
 * was refused or the queue passed half of wq_max. */
void um_tcp_set_drain_cb(um_tcp_t *t, um_tcp_event_cb cb, void *ud);
void um_tcp_set_wq_max(um_tcp_t *t, size_t max);
int um_tcp_read_start(um_tcp_t *t);
/* Pauses reading: no read callback until um_tcp_read_start. A soft pause
 * (util/uvread.h): the socket stays in the loop's poll set until the loop
 * finds it readable while still paused, so a stop and a start within one
 * turn of the loop cost no system call. Returns 0. */
int um_tcp_read_stop(um_tcp_t *t);
/* Copies p. UM_ENOSPC (nothing queued) when the queue would pass wq_max. */
int um_tcp_write(um_tcp_t *t, const uint8_t *p, size_t n);
/* As um_tcp_write of the pieces' concatenation: the socket is tried with all
 * of them at once, and only what it does not take is copied and queued.
 * At most UM_TCP_IOV_MAX pieces (UM_EINVAL beyond). */
#define UM_TCP_IOV_MAX 32
int um_tcp_writev(um_tcp_t *t, const um_carrier_iov_t *iov, size_t n_iov);
size_t um_tcp_write_queued(const um_tcp_t *t);
/* Sends FIN after the queued writes. */
int um_tcp_shutdown(um_tcp_t *t);
void um_tcp_close(um_tcp_t *t); /* NULL is a no-op */
uv_tcp_t *um_tcp_handle(um_tcp_t *t);

/* A TCP connection is a carrier (carrier.h): the same object, seen through
 * the transport-independent interface. Setting carrier callbacks replaces
 * the um_tcp_* read and drain callbacks. */
extern const um_carrier_ops_t um_tcp_carrier_ops;
um_carrier_t *um_tcp_carrier(um_tcp_t *t);
um_tcp_t *um_tcp_from_carrier(um_carrier_t *c); /* NULL when c is not TCP */

/* Test hook: the next n connection allocations fail (as if out of memory). */
void um_tcp_test_fail_alloc(unsigned n);

#endif
