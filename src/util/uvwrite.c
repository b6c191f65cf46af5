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
    if (!s || !p || !n || !done || n > UINT32_MAX) return UM_EINVAL;
    uvw_t *w = malloc(sizeof(*w) + n);
    if (!w) return UM_ENOMEM;
    w->done = done;
    w->ud = ud;
    w->n = n;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int r = uv_write(&w->req, s, &b, 1, written);
    if (r) {
        sodium_memzero(w->data, n);
        free(w);
    }
    return r;
}
