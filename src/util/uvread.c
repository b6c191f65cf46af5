/* Soft pauses of a libuv stream's reads: see uvread.h. */
#include "util/uvread.h"

int um_uvread_start(um_uvread_t *r, uv_stream_t *s, uv_alloc_cb alloc, uv_read_cb cb)
{
    r->paused = false;
    r->refused = false;
    if (r->on) return 0;
    int rc = uv_read_start(s, alloc, cb);
    if (rc == 0 || rc == UV_EALREADY) {
        r->on = true;
        return 0;
    }
    return rc;
}

void um_uvread_pause(um_uvread_t *r)
{
    if (!r->on || r->paused) return;
    r->paused = true;
    r->refused = false;
}

void um_uvread_halt(um_uvread_t *r, uv_stream_t *s)
{
    r->paused = false;
    r->refused = false;
    if (r->on) uv_read_stop(s);
    r->on = false;
}

bool um_uvread_enobufs(um_uvread_t *r, uv_stream_t *s)
{
    if (!r->paused) return false;
    if (!r->refused) {
        r->refused = true; /* libuv's read loop came round: armed, nothing read */
        return true;
    }
    /* Polled readable while paused: stop for real, or the loop would spin.
     * The pause stays, so um_uvread_start knows to start again. */
    uv_read_stop(s);
    r->on = false;
    return true;
}
