#include "util/uvwrite.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

typedef struct {
    uv_write_t req;
    um_uvw_done_cb done;
    void *ud;
    size_t n;
    uint8_t data[];
} uvw_t;

static void written(uv_write_t *req, int status)
{
    uvw_t *w = (uvw_t *)req;
    um_uvw_done_cb done = w->done;
    void *ud = w->ud;
    size_t n = w->n;
    sodium_memzero(w->data, n); /* it may have been plaintext */
    free(w);
    done(ud, n, status);
}

int um_uv_write_copy(uv_stream_t *s, const void *p, size_t n, um_uvw_done_cb done, void *ud)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    if (!p || n > UINT32_MAX) return UM_EINVAL;
    return um_uv_write_gather(s, &b, 1, 0, done, ud);
}

int um_uv_write_gather(uv_stream_t *s, const uv_buf_t *bufs, unsigned nb, size_t skip,
                       um_uvw_done_cb done, void *ud)
{
    size_t total = 0;
    if (!s || !bufs || !done) return UM_EINVAL;
    for (unsigned i = 0; i < nb; i++) {
        if (!bufs[i].base && bufs[i].len) return UM_EINVAL;
        total += bufs[i].len;
    }
    if (skip >= total || total - skip > UINT32_MAX) return UM_EINVAL;
    size_t n = total - skip;
    uvw_t *w = malloc(sizeof(*w) + n);
    if (!w) return UM_ENOMEM;
    w->done = done;
    w->ud = ud;
    w->n = n;
    size_t off = 0;
    for (unsigned i = 0; i < nb; i++) {
        size_t a = bufs[i].len;
        const char *p = bufs[i].base;
        if (skip >= a) {
            skip -= a;
            continue;
        }
        p += skip;
        a -= skip;
        skip = 0;
        memcpy(w->data + off, p, a);
        off += a;
    }
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int r = uv_write(&w->req, s, &b, 1, written);
    if (r) {
        sodium_memzero(w->data, n);
        free(w);
    }
    return r;
}

int um_uv_write_some(uv_stream_t *s, const void *p, size_t n, um_uvw_done_cb done, void *ud,
                     size_t *queued)
{
    *queued = 0;
    if (!s || !p || !done || n == 0 || n > INT32_MAX) return UM_EINVAL;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    /* uv_try_write refuses (UV_EAGAIN) while earlier writes are queued, so
     * the bytes keep their order. */
    int w = uv_try_write(s, &b, 1);
    if (w == (int)n) return 0;
    if (w < 0 && w != UV_EAGAIN) return w;
    size_t skip = w > 0 ? (size_t)w : 0;
    int r = um_uv_write_gather(s, &b, 1, skip, done, ud);
    if (r == 0) *queued = n - skip;
    return r;
}
