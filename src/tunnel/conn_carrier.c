#include "tunnel/conn_carrier.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

typedef struct {
    um_carrier_t base; /* first: the carrier */
    um_conn_t *conn;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    um_conn_carrier_open_cb open_cb;
    void *open_arg;
    bool opened, reading, closed, dead;
    int in_cb; /* inside a callback of ours: free after it */
} ccar_t;

int um_conn_result_to_err(int result)
{
    switch (result) {
    case UM_CONN_OK: return 0;
    case UM_CONN_NOT_ALLOWED: return UM_EACCES;
    case UM_CONN_NET_UNREACHABLE: return -ENETUNREACH;
    case UM_CONN_HOST_UNREACHABLE: return -EHOSTUNREACH;
    case UM_CONN_REFUSED: return -ECONNREFUSED;
    case UM_CONN_TIMED_OUT: return UM_ETIMEDOUT;
    case UM_CONN_HOST_NOT_FOUND: return UM_ENOENT;
    default: return UM_EIO;
    }
}

static void release(ccar_t *k)
{
    um_conn_t *c = k->conn;
    k->conn = NULL;
    um_conn_close(c);
    free(k);
}

/* After one of our callbacks: a close during it takes effect now. */
static bool leave(ccar_t *k)
{
    if (--k->in_cb == 0 && k->closed) {
        release(k);
        return true;
    }
    return false;
}

static void on_open(void *arg, int result)
{
    ccar_t *k = arg;
    um_conn_carrier_open_cb cb = k->open_cb;
    k->open_cb = NULL;
    if (result != UM_CONN_OK) {
        k->dead = true;
        k->closed = true; /* gone: the owner never saw it */
        if (cb) cb(k->open_arg, um_conn_result_to_err(result), NULL);
        release(k);
        return;
    }
    k->opened = true;
    um_conn_read_stop(k->conn); /* until read_start */
    k->in_cb++;
    if (cb) cb(k->open_arg, 0, &k->base);
    leave(k);
}

static void on_data(void *arg, const uint8_t *p, size_t n)
{
    ccar_t *k = arg;
    if (k->closed || !k->rd) return;
    k->in_cb++;
    k->rd(&k->base, p, n, 0, k->ud);
    leave(k);
}

static void on_end(ccar_t *k, int status)
{
    if (k->dead) return;
    k->dead = true;
    if (k->closed || !k->rd) return;
    k->in_cb++;
    k->rd(&k->base, NULL, 0, status, k->ud);
    leave(k);
}

static void on_eof(void *arg)
{
    on_end(arg, UM_EPIPE);
}

static void on_error(void *arg, int err)
{
    on_end(arg, err < 0 ? err : UM_EIO);
}

static void on_drain(void *arg)
{
    ccar_t *k = arg;
    if (k->closed || !k->dr) return;
    k->in_cb++;
    k->dr(&k->base, k->ud);
    leave(k);
}

static const um_conn_cbs_t conn_cbs = {.on_open = on_open,
                                       .on_data = on_data,
                                       .on_eof = on_eof,
                                       .on_error = on_error,
                                       .on_drain = on_drain};

int um_conn_carrier_open(um_conn_provider_t prov, const um_addr_t *dst, um_conn_carrier_open_cb cb,
                         void *arg, um_carrier_t **out)
{
    if (!prov.ops || !dst || !cb || !out) return UM_EINVAL;
    ccar_t *k = calloc(1, sizeof(*k));
    if (!k) return UM_ENOMEM;
    k->base.ops = &um_conn_carrier_ops;
    k->open_cb = cb;
    k->open_arg = arg;
    int r = um_conn_open(prov, dst, NULL, 0, &conn_cbs, k, &k->conn);
    if (r != 0) {
        um_conn_close(k->conn); /* a failed open's handle, if any */
        free(k);
        return r;
    }
    *out = &k->base;
    return 0;
}

static void c_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    ccar_t *k = (ccar_t *)c;
    k->rd = rd;
    k->dr = dr;
    k->ud = ud;
}

static int c_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    ccar_t *k = (ccar_t *)c;
    if (k->closed || k->dead || !k->opened) return UM_EPIPE;
    return n ? um_conn_write(k->conn, p, n) : 0;
}

static size_t c_queued(const um_carrier_t *c)
{
    const ccar_t *k = (const ccar_t *)c;
    return k->conn && k->opened ? um_conn_queued(k->conn) : 0;
}

static void c_set_wq_max(um_carrier_t *c, size_t max)
{
    (void)c; /* the stream's own bound applies */
    (void)max;
}

static int c_read_start(um_carrier_t *c)
{
    ccar_t *k = (ccar_t *)c;
    if (k->closed || !k->opened) return UM_EPIPE;
    k->reading = true;
    return k->dead ? 0 : um_conn_read_start(k->conn);
}

static int c_read_stop(um_carrier_t *c)
{
    ccar_t *k = (ccar_t *)c;
    k->reading = false;
    return k->conn && k->opened && !k->dead ? um_conn_read_stop(k->conn) : 0;
}

static int c_shutdown(um_carrier_t *c)
{
    ccar_t *k = (ccar_t *)c;
    if (k->closed || k->dead || !k->opened) return UM_EPIPE;
    return um_conn_shutdown(k->conn);
}

static void c_close(um_carrier_t *c)
{
    ccar_t *k = (ccar_t *)c;
    if (k->closed) return;
    k->closed = true;
    k->rd = NULL;
    k->dr = NULL;
    k->open_cb = NULL;
    if (k->in_cb == 0) release(k);
}

static int c_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    (void)c;
    memcpy(out, p, n);
    *outn = n;
    return 0;
}

const um_carrier_ops_t um_conn_carrier_ops = {
    .name = "stream",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16384,
    .set_cbs = c_set_cbs,
    .write = c_write,
    .queued = c_queued,
    .set_wq_max = c_set_wq_max,
    .read_start = c_read_start,
    .read_stop = c_read_stop,
    .shutdown = c_shutdown,
    .close = c_close,
    .absorb = c_absorb,
};
