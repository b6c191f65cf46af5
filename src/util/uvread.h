/* Pausing a libuv stream's reads without telling the kernel, for readers
 * that pause and resume within a turn of the loop (a feeder that stops at
 * its high water and restarts when the pump has drained it, the tunnel's
 * per-turn read bound).
 *
 * uv_read_stop() takes the descriptor out of the loop's interest set and
 * uv_read_start() puts it back: on Linux an epoll_ctl ADD, which fails with
 * EEXIST because the descriptor never left epoll, then a MOD, and a DEL when
 * it fired while stopped: 2 to 3 system calls per pause. Eight parallel
 * downloads paused every egress connection after each 64 KiB read (the
 * tunnel's send share), 5109 epoll_ctl for 256 MiB at the server.
 *
 * A soft pause leaves the descriptor armed and refuses the reads instead:
 * the allocation callback returns an empty buffer while paused, so libuv
 * reads nothing and calls the read callback with UV_ENOBUFS, which the
 * owner hands to um_uvread_enobufs(). The first refusal after a pause is
 * libuv's own read loop going round again (the read that led to the pause
 * filled its buffer); a second one means the loop polled and found the
 * descriptor readable while still paused: then the reads really stop
 * (uv_read_stop), so a long pause never spins the loop. um_uvread_start()
 * undoes either.
 *
 * Pure bookkeeping beside the stream: the owner keeps its own alloc and
 * read callbacks and calls these from them. */
#ifndef UM_UTIL_UVREAD_H
#define UM_UTIL_UVREAD_H

#include <stdbool.h>
#include <uv.h>

typedef struct {
    bool on;      /* uv_read_start is in effect */
    bool paused;  /* the owner stopped reading */
    bool refused; /* a read was refused since the pause */
} um_uvread_t;

/* Resumes (or starts) reading: returns uv_read_start's result, 0 when the
 * reads were only paused. */
int um_uvread_start(um_uvread_t *r, uv_stream_t *s, uv_alloc_cb alloc, uv_read_cb cb);
/* Pauses reading; the descriptor stays armed. */
void um_uvread_pause(um_uvread_t *r);
/* Stops reading for good (EOF, an error, closing): uv_read_stop now. */
void um_uvread_halt(um_uvread_t *r, uv_stream_t *s);
/* For the allocation callback: true when this read is to be refused (give
 * libuv an empty buffer). */
static inline bool um_uvread_refuse(const um_uvread_t *r)
{
    return r->paused;
}
/* For the read callback, on UV_ENOBUFS while paused (um_uvread_refuse was
 * true): counts the refusal, stops the reads at the second. Returns true
 * when the UV_ENOBUFS was ours (the owner ignores it). */
bool um_uvread_enobufs(um_uvread_t *r, uv_stream_t *s);

#endif
