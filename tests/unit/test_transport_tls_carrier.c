/* The tls carrier's write path (src/transport/tls_carrier.c) and the TCP
 * carrier's gathered write (um_tcp_writev):
 *
 *   - over an inner carrier that offers writev, a write goes out as record
 *     headers and pieces of the caller's own buffer (no framing copy), one
 *     gathered write per call; over one that does not, as one framed write;
 *     both give exactly the bytes um_tls_rec_frame() gives;
 *   - over a real loopback TCP connection, writes of every size (1 byte, a
 *     full record, one byte more, 16 records, more than 16) and a bulk of
 *     24 MiB written while the peer does not read (so the socket takes only
 *     part of a gathered write and the rest is queued) arrive intact, in
 *     order, as TLS records whose payloads are the bytes written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tcp_pair.h"
#include <sodium.h>
#include <uv.h>

#include "transport/tcp.h"
#include "transport/tls_carrier.h"
#include "transport/tls_record.h"
#include "util/clock.h"
#include "util/err.h"

/* ---- an inner carrier in memory that records how it was written ---- */

typedef struct {
    um_carrier_t base;
    uint8_t *buf;
    size_t len, cap;
    int writes, writevs;
    const uint8_t *lo, *hi; /* the caller's buffer: pieces from it were not copied */
    size_t pieces_in_caller;
} mem_t;

static void mem_put(mem_t *m, const uint8_t *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->buf = realloc(m->buf, m->cap);
        assert_non_null(m->buf);
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
}

static void m_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    (void)c;
    (void)rd;
    (void)dr;
    (void)ud;
}

static int m_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    mem_t *m = (mem_t *)c;
    m->writes++;
    mem_put(m, p, n);
    return 0;
}

static int m_writev(um_carrier_t *c, const um_carrier_iov_t *iov, size_t n_iov)
{
    mem_t *m = (mem_t *)c;
    m->writevs++;
    for (size_t i = 0; i < n_iov; i++) {
        if (iov[i].p >= m->lo && iov[i].p + iov[i].n <= m->hi) m->pieces_in_caller++;
        mem_put(m, iov[i].p, iov[i].n);
    }
    return 0;
}

static size_t m_queued(const um_carrier_t *c)
{
    (void)c;
    return 0;
}

static void m_set_wq_max(um_carrier_t *c, size_t max)
{
    (void)c;
    (void)max;
}

static int m_nop(um_carrier_t *c)
{
    (void)c;
    return 0;
}

static void m_close(um_carrier_t *c)
{
    (void)c; /* the test owns the mem_t */
}

static int m_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    (void)c;
    memcpy(out, p, n);
    *outn = n;
    return 0;
}

static const um_carrier_ops_t mem_v_ops = {
    .name = "memv",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16384,
    .set_cbs = m_set_cbs,
    .write = m_write,
    .queued = m_queued,
    .set_wq_max = m_set_wq_max,
    .read_start = m_nop,
    .read_stop = m_nop,
    .shutdown = m_nop,
    .close = m_close,
    .absorb = m_absorb,
    .writev = m_writev,
};

static const um_carrier_ops_t mem_ops = {
    .name = "mem",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16384,
    .set_cbs = m_set_cbs,
    .write = m_write,
    .queued = m_queued,
    .set_wq_max = m_set_wq_max,
    .read_start = m_nop,
    .read_stop = m_nop,
    .shutdown = m_nop,
    .close = m_close,
    .absorb = m_absorb,
};

static const size_t sizes[] = {
    1, 100, 16401, 16402, 64 * 1024 + 16466, 16 * 16401, 16 * 16401 + 1, 300000};

/* framed(p, n) by the pure function: what the wire must hold */
static uint8_t *framed(const uint8_t *p, size_t n, size_t *outn)
{
    size_t cap = um_tls_rec_framed_len(n);
    uint8_t *o = malloc(cap);
    assert_non_null(o);
    assert_int_equal(um_tls_rec_frame(p, n, o, cap, outn), 0);
    return o;
}

static void test_write_paths(void **state)
{
    (void)state;
    static uint8_t data[300000];
    randombytes_buf(data, sizeof(data));
    for (int v = 0; v < 2; v++) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            size_t n = sizes[k];
            mem_t m;
            memset(&m, 0, sizeof(m));
            m.base.ops = v ? &mem_v_ops : &mem_ops;
            m.lo = data;
            m.hi = data + sizeof(data);
            um_tls_deframer_t rx;
            um_tls_deframer_init(&rx, 0);
            um_carrier_t *tc = NULL;
            assert_int_equal(um_tls_carrier_new(&m.base, &rx, &tc), 0);
            assert_int_equal(um_carrier_write(tc, data, n), 0);
            size_t en = 0;
            uint8_t *e = framed(data, n, &en);
            assert_int_equal(m.len, en);
            assert_memory_equal(m.buf, e, en);
            size_t nrec = (n + UM_TLS_REC_FULL - 1) / UM_TLS_REC_FULL;
            if (v && nrec <= 16) {
                /* one gathered write; every payload piece is the caller's */
                assert_int_equal(m.writevs, 1);
                assert_int_equal(m.writes, 0);
                assert_int_equal(m.pieces_in_caller, nrec);
            } else {
                assert_int_equal(m.writevs, 0);
                assert_int_equal(m.writes, 1);
            }
            free(e);
            um_carrier_close(tc);
            free(m.buf);
        }
    }
}

/* ---- over real TCP ---- */

typedef struct {
    uv_loop_t loop;
    um_tcp_listener_t *ls;
    um_tcp_t *ctcp, *stcp;
    uint8_t *got;
    size_t got_len, got_cap;
} fx_t;

static void s_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    fx_t *fx = ud;
    (void)c;
    if (status != 0) return;
    assert_true(fx->got_len + n <= fx->got_cap);
    memcpy(fx->got + fx->got_len, p, n);
    fx->got_len += n;
}

static void test_over_tcp(void **state)
{
    (void)state;
    fx_t fx;
    memset(&fx, 0, sizeof(fx));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    tcp_pair_open(&fx.loop, &fx.ls, &fx.ctcp, &fx.stcp);

    um_tls_deframer_t rx;
    um_tls_deframer_init(&rx, 0);
    um_carrier_t *tc = NULL;
    assert_int_equal(um_tls_carrier_new(um_tcp_carrier(fx.ctcp), &rx, &tc), 0);
    um_carrier_set_wq_max(tc, 64u << 20);

    /* what is written: every size of the table, then 24 MiB in 64 KiB
     * writes, all before the peer reads a byte */
    size_t bulk = 24u << 20, chunk = 64u * 1024u, total = bulk;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        total += sizes[k];
    uint8_t *src = malloc(total);
    assert_non_null(src);
    randombytes_buf(src, total);
    size_t exp_cap = um_tls_rec_framed_len(total) + 64 * UM_TLS_REC_HDR, exp_len = 0, off = 0;
    uint8_t *exp = malloc(exp_cap);
    assert_non_null(exp);
    for (size_t k = 0; k <= sizeof(sizes) / sizeof(sizes[0]); k++) {
        bool is_bulk = k == sizeof(sizes) / sizeof(sizes[0]);
        size_t n = is_bulk ? bulk : sizes[k];
        for (size_t done = 0; done < n;) {
            size_t w = is_bulk ? chunk : n;
            assert_int_equal(um_carrier_write(tc, src + off, w), 0);
            size_t en = 0;
            assert_int_equal(um_tls_rec_frame(src + off, w, exp + exp_len, exp_cap - exp_len, &en),
                             0);
            exp_len += en;
            off += w;
            done += w;
        }
    }
    assert_int_equal(off, total);
    assert_true(um_carrier_queued(tc) > 0); /* the socket did not take it all */

    fx.got_cap = exp_len;
    fx.got = malloc(fx.got_cap);
    assert_non_null(fx.got);
    um_carrier_t *sc = um_tcp_carrier(fx.stcp);
    um_carrier_set_cbs(sc, s_read, NULL, &fx);
    um_carrier_read_start(sc);
    uint64_t end = um_now_ms() + 30000;
    while (fx.got_len < exp_len && um_now_ms() < end)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(fx.got_len, exp_len);
    assert_memory_equal(fx.got, exp, exp_len);
    assert_int_equal(um_carrier_queued(tc), 0);

    um_carrier_close(tc);
    um_carrier_close(sc);
    um_tcp_listener_close(fx.ls);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    free(src);
    free(exp);
    free(fx.got);
}

/* um_tcp_writev's own argument checks. */
static void test_writev_args(void **state)
{
    (void)state;
    um_carrier_iov_t iov[UM_TCP_IOV_MAX + 1];
    memset(iov, 0, sizeof(iov));
    assert_int_equal(um_tcp_writev(NULL, iov, 1), UM_EINVAL);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_paths),
        cmocka_unit_test(test_over_tcp),
        cmocka_unit_test(test_writev_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
