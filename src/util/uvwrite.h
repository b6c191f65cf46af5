/* One copied write on a libuv stream, the way every TCP writer in umbra
 * writes (transport/tcp.c, exit/direct.c, proxy/server.c): the bytes are
 * copied into a single request, so the caller's buffer is free as soon as
 * the call returns, and done(ud, n, status) runs once libuv has finished
 * with them (status < 0 on error, or UV_ECANCELED when the stream closed).
 *
 * Ownership: the request and its copy belong to this module; ud is borrowed
 * and must stay valid until done has run (a stream's close callback runs
 * after the callbacks of its cancelled writes, so a handle freed there is
 * safe). */
#ifndef UM_UTIL_UVWRITE_H
#define UM_UTIL_UVWRITE_H

#include <stddef.h>
#include <uv.h>

typedef void (*um_uvw_done_cb)(void *ud, size_t n, int status);

/* Returns 0 (done will run), UM_ENOMEM, or libuv's error (nothing queued,
 * done will not run). n must be > 0. */
int um_uv_write_copy(uv_stream_t *s, const void *p, size_t n, um_uvw_done_cb done, void *ud);
/* The same for the bytes of nb buffers after the first `skip` of them (those
 * the socket already took), gathered into one request. */
int um_uv_write_gather(uv_stream_t *s, const uv_buf_t *b, unsigned nb, size_t skip,
                       um_uvw_done_cb done, void *ud);
/* The socket first: what it takes at once is written with no copy and no
 * request; only the rest is copied and queued (done runs once for those
 * *queued bytes, and not at all when *queued is 0). Returns as
 * um_uv_write_copy; on an error nothing is queued. */
int um_uv_write_some(uv_stream_t *s, const void *p, size_t n, um_uvw_done_cb done, void *ud,
                     size_t *queued);

#endif
