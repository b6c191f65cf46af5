/* Two muxes joined by an in-memory pipe that re-chunks the wire bytes at
 * random (1 byte upwards per delivery). Shared by the test_mux_*.c files. */
#ifndef TEST_MUX_PAIR_H
#define TEST_MUX_PAIR_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mux/mux.h"
#include "util/err.h"

typedef struct {
    um_mux_t *m[2]; /* 0: client, 1: server */
    uint64_t rng;
    int rechunk; /* 0: deliver whole pulls; 1: random chunks */
    size_t bufcap;
    uint8_t *buf;
    uint64_t moved[2]; /* wire bytes moved from side i */
    int feed_err[2];   /* last feed error seen by side i (as receiver) */
} pair_t;

static inline uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi) /* inclusive */
{
    return lo + rnd(s) % (hi - lo + 1);
}

static inline int sanitized(void)
{
    const char *e = getenv("UMBRA_SANITIZE");
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#endif
    return e && (e[0] == '1' || e[0] == 'O' || e[0] == 'o');
}

static inline void pair_init(pair_t *p, const um_mux_config_t *cc, const um_mux_config_t *sc,
                             uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->m[0] = um_mux_new(UM_MUX_CLIENT, cc);
    p->m[1] = um_mux_new(UM_MUX_SERVER, sc);
    assert_non_null(p->m[0]);
    assert_non_null(p->m[1]);
    p->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    p->rechunk = 1;
    p->bufcap = 65536;
    p->buf = malloc(p->bufcap);
    assert_non_null(p->buf);
}

static inline void pair_free(pair_t *p)
{
    um_mux_free(p->m[0]);
    um_mux_free(p->m[1]);
    free(p->buf);
}

static inline size_t pair_chunk(pair_t *p, size_t left)
{
    size_t k;
    uint64_t r = rnd(&p->rng) % 100;
    if (r < 10)
        k = (size_t)rnd_range(&p->rng, 1, 8);
    else if (r < 40)
        k = (size_t)rnd_range(&p->rng, 1, 512);
    else
        k = (size_t)rnd_range(&p->rng, 1, 20000);
    return k < left ? k : left;
}

/* Moves up to about `budget` wire bytes from side `from` to the other side.
 * Returns the bytes moved. Feed errors are recorded, not asserted. */
static inline size_t pair_move(pair_t *p, int from, size_t budget)
{
    size_t total = 0;
    um_mux_t *src = p->m[from], *dst = p->m[1 - from];
    while (total < budget) {
        size_t cap = p->rechunk ? (size_t)rnd_range(&p->rng, 64, p->bufcap) : p->bufcap;
        size_t n = um_mux_pull(src, p->buf, cap);
        if (n == 0 && cap < p->bufcap) n = um_mux_pull(src, p->buf, p->bufcap);
        if (n == 0) break;
        size_t off = 0;
        while (off < n) {
            size_t k = p->rechunk ? pair_chunk(p, n - off) : n - off;
            int r = um_mux_feed(dst, p->buf + off, k);
            if (r) {
                p->feed_err[1 - from] = r;
                break;
            }
            off += k;
        }
        total += n;
    }
    p->moved[from] += total;
    return total;
}

/* Moves both ways until nothing is left to send (bounded). */
static inline void pair_settle(pair_t *p)
{
    for (int i = 0; i < 1000; i++) {
        size_t a = pair_move(p, 0, SIZE_MAX / 2);
        size_t b = pair_move(p, 1, SIZE_MAX / 2);
        if (a == 0 && b == 0) return;
    }
    fail_msg("pipe did not settle");
}

/* Pops the next event of side i with the given type, skipping others
 * (which are returned in *skipped count). 1 found, 0 not. */
static inline int pair_expect(pair_t *p, int side, um_mux_event_type_t type, um_mux_event_t *out)
{
    um_mux_event_t ev;
    while (um_mux_poll(p->m[side], &ev)) {
        if (ev.type == type) {
            if (out) *out = ev;
            return 1;
        }
    }
    return 0;
}

static inline um_addr_t test_dest(void)
{
    um_addr_t a;
    memset(&a, 0, sizeof(a));
    a.type = UM_ADDR_DOMAIN;
    memcpy(a.u.domain, "example.com", 11);
    a.domain_len = 11;
    a.port = 443;
    return a;
}

/* Writes all of p to stream id (asserting it fits the send buffer). */
static inline void write_all(um_mux_t *m, uint32_t id, const void *p, size_t n)
{
    size_t acc;
    assert_int_equal(um_mux_stream_write(m, id, p, n, &acc), 0);
    assert_int_equal(acc, n);
}

/* A delayed path for simulations: records queued with the time they arrive
 * (pq_push copies them), fed to the other mux when due (pq_deliver), freed
 * at the end (pq_free). */
typedef struct {
    uint64_t at;
    size_t n;
    uint8_t *b;
} pkt_t;

typedef struct {
    pkt_t *q;
    size_t head, tail, cap;
} pq_t;

static inline void pq_push(pq_t *q, uint64_t at, const uint8_t *b, size_t n)
{
    if (q->tail == q->cap) {
        size_t live = q->tail - q->head;
        if (q->head > 0) {
            memmove(q->q, q->q + q->head, live * sizeof(pkt_t));
        } else {
            q->cap = q->cap ? q->cap * 2 : 1024;
            q->q = realloc(q->q, q->cap * sizeof(pkt_t));
            assert_non_null(q->q);
        }
        q->head = 0;
        q->tail = live;
    }
    pkt_t *k = &q->q[q->tail++];
    k->at = at;
    k->n = n;
    k->b = malloc(n);
    assert_non_null(k->b);
    memcpy(k->b, b, n);
}

static inline void pq_deliver(pq_t *q, um_mux_t *to, uint64_t now)
{
    while (q->head < q->tail && q->q[q->head].at <= now) {
        pkt_t *k = &q->q[q->head++];
        assert_int_equal(um_mux_feed(to, k->b, k->n), 0);
        free(k->b);
    }
}

static inline void pq_free(pq_t *q)
{
    while (q->head < q->tail)
        free(q->q[q->head++].b);
    free(q->q);
}

#endif
