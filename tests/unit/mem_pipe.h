/* A carrier pair in memory for unit tests of layered carriers: what one end
 * writes waits in its queue until the test pumps it to the other end's read
 * callback, in pieces of a chosen size. Writes beyond `bound` queued bytes
 * are refused (UM_ENOSPC); pumping fires the drain callback afterwards. */
#ifndef UM_TESTS_MEM_PIPE_H
#define UM_TESTS_MEM_PIPE_H

#include <stdlib.h>
#include <string.h>

#include "transport/carrier.h"
#include "util/err.h"

typedef struct mp_end {
    um_carrier_t base;
    struct mp_end *peer;
    uint8_t *q;
    size_t qn, qcap, bound;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    int reading, shut, closed, refused, peer_eof_sent;
    int writes; /* accepted write calls */
} mp_end_t;

static void mp_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    mp_end_t *e = (mp_end_t *)c;
    e->rd = rd;
    e->dr = dr;
    e->ud = ud;
}

static int mp_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    mp_end_t *e = (mp_end_t *)c;
    if (e->shut) return UM_EPIPE;
    if (e->bound && e->qn && e->qn + n > e->bound) {
        e->refused = 1;
        return UM_ENOSPC;
    }
    if (e->qn + n > e->qcap) {
        e->qcap = (e->qn + n) * 2;
        e->q = realloc(e->q, e->qcap);
    }
    memcpy(e->q + e->qn, p, n);
    e->qn += n;
    e->writes++;
    return 0;
}

static size_t mp_queued(const um_carrier_t *c)
{
    return ((const mp_end_t *)c)->qn;
}

static void mp_set_wq_max(um_carrier_t *c, size_t max)
{
    ((mp_end_t *)c)->bound = max;
}

static int mp_read_start(um_carrier_t *c)
{
    ((mp_end_t *)c)->reading = 1;
    return 0;
}

static int mp_read_stop(um_carrier_t *c)
{
    ((mp_end_t *)c)->reading = 0;
    return 0;
}

static int mp_shutdown(um_carrier_t *c)
{
    ((mp_end_t *)c)->shut = 1;
    return 0;
}

static void mp_close(um_carrier_t *c)
{
    mp_end_t *e = (mp_end_t *)c;
    e->closed = 1;
    e->rd = NULL;
    e->dr = NULL;
}

static int mp_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    (void)c;
    memcpy(out, p, n);
    *outn = n;
    return 0;
}

static const um_carrier_ops_t mp_ops = {
    .name = "mem",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16384,
    .set_cbs = mp_set_cbs,
    .write = mp_write,
    .queued = mp_queued,
    .set_wq_max = mp_set_wq_max,
    .read_start = mp_read_start,
    .read_stop = mp_read_stop,
    .shutdown = mp_shutdown,
    .close = mp_close,
    .absorb = mp_absorb,
};

static inline void mp_pair(mp_end_t *a, mp_end_t *b)
{
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    a->base.ops = b->base.ops = &mp_ops;
    a->peer = b;
    b->peer = a;
    a->reading = b->reading = 1;
}

/* Moves up to `max` queued bytes of e to its peer's read callback, in
 * pieces of `piece` bytes (0: all at once); then e's drain. Returns the
 * bytes moved. */
static inline size_t mp_pump(mp_end_t *e, size_t piece, size_t max)
{
    size_t moved = 0;
    while (e->qn && moved < max && e->peer->rd && e->peer->reading && !e->peer->closed) {
        size_t take = piece && piece < e->qn ? piece : e->qn;
        if (take > max - moved) take = max - moved;
        uint8_t *tmp = malloc(take);
        memcpy(tmp, e->q, take);
        memmove(e->q, e->q + take, e->qn - take);
        e->qn -= take;
        moved += take;
        e->peer->rd(&e->peer->base, tmp, take, 0, e->peer->ud);
        free(tmp);
    }
    if (e->shut && e->qn == 0 && !e->peer_eof_sent && e->peer->rd && !e->peer->closed) {
        e->peer_eof_sent = 1;
        e->peer->rd(&e->peer->base, NULL, 0, UM_EPIPE, e->peer->ud);
    }
    if (moved && e->dr && !e->closed) e->dr(&e->base, e->ud);
    return moved;
}

static inline void mp_free(mp_end_t *e)
{
    free(e->q);
    e->q = NULL;
}

#endif
