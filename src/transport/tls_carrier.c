#include "transport/tls_carrier.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* One inner read is at most this much (the TCP glue reads 64 KiB). */
#define SCRATCH (64u << 10)

typedef struct {
    um_carrier_t base;
    um_carrier_t *inner;
    um_tls_deframer_t rx;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    uint8_t *in;  /* payload bytes of one inner read (SCRATCH) */
    uint8_t *out; /* framed bytes of one write (grown as needed) */
    size_t out_cap;
    int in_cb; /* inside a read callback: a close there frees afterwards */
    int dead;
} tls_carrier_t;

static void release(tls_carrier_t *t)
{
    if (t->out) sodium_memzero(t->out, t->out_cap);
    sodium_memzero(t->in, SCRATCH);
    free(t->out);
    free(t->in);
    free(t);
}

/* Calls the user's read callback; false when it closed the carrier (which
 * is then released here). */
static int deliver(tls_carrier_t *t, const uint8_t *p, size_t n, int status)
{
    t->in_cb = 1;
    t->rd(&t->base, p, n, status, t->ud);
    t->in_cb = 0;
    if (t->dead) {
        release(t);
        return 0;
    }
    return 1;
}

static tls_carrier_t *of(um_carrier_t *c)
{
    return (tls_carrier_t *)c;
}

/* Payload bytes of raw[0..n) into out; returns 0 or the deframer's error. */
static int take_apart(tls_carrier_t *t, const uint8_t *raw, size_t n, uint8_t *out, size_t *outn)
{
    const uint8_t *span;
    size_t sn, w = 0;
    int r;
    while ((r = um_tls_deframe(&t->rx, &raw, &n, &span, &sn)) == 1) {
        memcpy(out + w, span, sn);
        w += sn;
    }
    *outn = w;
    return r;
}

static void inner_read(um_carrier_t *ic, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)ic;
    tls_carrier_t *t = ud;
    if (!t->rd) return;
    if (status < 0) {
        deliver(t, NULL, 0, status);
        return;
    }
    while (n && t->rd) { /* reads larger than the scratch are taken in pieces */
        size_t take = n < SCRATCH ? n : SCRATCH, got = 0;
        int r = take_apart(t, p, take, t->in, &got);
        p += take;
        n -= take;
        if (got && !deliver(t, t->in, got, 0)) return;
        if (r < 0) {
            if (t->rd) deliver(t, NULL, 0, r);
            return;
        }
    }
}

static void inner_drain(um_carrier_t *ic, void *ud)
{
    (void)ic;
    tls_carrier_t *t = ud;
    if (t->dr) t->dr(&t->base, t->ud);
}

static void t_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    tls_carrier_t *t = of(c);
    t->rd = rd;
    t->dr = dr;
    t->ud = ud;
    um_carrier_set_cbs(t->inner, rd ? inner_read : NULL, dr ? inner_drain : NULL, t);
}

/* Records per gathered write: a header and a payload piece each. */
#define IOV_RECS 16

static int t_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    tls_carrier_t *t = of(c);
    if (n == 0) return 0;
    size_t nrec = (n + UM_TLS_REC_FULL - 1) / UM_TLS_REC_FULL;
    if (t->inner->ops->writev && nrec <= IOV_RECS) {
        /* The headers go between the caller's bytes, not into a copy of
         * them: bulk data is written once, not framed into a buffer first. */
        uint8_t hdr[IOV_RECS][UM_TLS_REC_HDR];
        um_carrier_iov_t iov[2 * IOV_RECS];
        for (size_t i = 0, off = 0; i < nrec; i++) {
            size_t take = n - off < UM_TLS_REC_FULL ? n - off : UM_TLS_REC_FULL;
            um_tls_rec_put_header(hdr[i], UM_TLS_CT_APPDATA, take);
            iov[2 * i] = (um_carrier_iov_t){hdr[i], UM_TLS_REC_HDR};
            iov[2 * i + 1] = (um_carrier_iov_t){p + off, take};
            off += take;
        }
        return t->inner->ops->writev(t->inner, iov, 2 * nrec);
    }
    size_t need = um_tls_rec_framed_len(n), wn = 0;
    if (need > t->out_cap) {
        uint8_t *q = malloc(need);
        if (!q) return UM_ENOMEM;
        if (t->out) {
            sodium_memzero(t->out, t->out_cap);
            free(t->out);
        }
        t->out = q;
        t->out_cap = need;
    }
    int r = um_tls_rec_frame(p, n, t->out, t->out_cap, &wn);
    if (r == 0) r = um_carrier_write(t->inner, t->out, wn);
    return r;
}

static size_t t_queued(const um_carrier_t *c)
{
    return um_carrier_queued(((const tls_carrier_t *)c)->inner);
}

static void t_set_wq_max(um_carrier_t *c, size_t max)
{
    um_carrier_set_wq_max(of(c)->inner, max);
}

static int t_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(of(c)->inner);
}

static int t_read_stop(um_carrier_t *c)
{
    return um_carrier_read_stop(of(c)->inner);
}

static int t_shutdown(um_carrier_t *c)
{
    return um_carrier_shutdown(of(c)->inner);
}

static void t_close(um_carrier_t *c)
{
    tls_carrier_t *t = of(c);
    um_carrier_set_cbs(t->inner, NULL, NULL, NULL);
    um_carrier_close(t->inner);
    t->inner = NULL;
    t->rd = NULL;
    t->dr = NULL;
    if (t->in_cb)
        t->dead = 1; /* released when the callback returns */
    else
        release(t);
}

static int t_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    int r = take_apart(of(c), p, n, out, outn);
    return r < 0 ? r : 0;
}

static int t_sock(const um_carrier_t *c)
{
    return um_carrier_sock(((const tls_carrier_t *)c)->inner);
}

const um_carrier_ops_t um_tls_carrier_ops = {
    .name = "tls",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = UM_TLS_REC_FULL,
    .set_cbs = t_set_cbs,
    .write = t_write,
    .queued = t_queued,
    .set_wq_max = t_set_wq_max,
    .read_start = t_read_start,
    .read_stop = t_read_stop,
    .shutdown = t_shutdown,
    .close = t_close,
    .absorb = t_absorb,
    .sock = t_sock,
};

int um_tls_carrier_new(um_carrier_t *inner, const um_tls_deframer_t *rx, um_carrier_t **out)
{
    if (!inner || !rx || !out) return UM_EINVAL;
    tls_carrier_t *t = calloc(1, sizeof(*t));
    if (!t) return UM_ENOMEM;
    if (!(t->in = malloc(SCRATCH))) {
        free(t);
        return UM_ENOMEM;
    }
    t->base.ops = &um_tls_carrier_ops;
    t->inner = inner;
    t->rx = *rx;
    *out = &t->base;
    return 0;
}
