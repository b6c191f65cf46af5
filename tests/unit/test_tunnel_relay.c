/* The relay's first-data hook (src/tunnel/relay.c, um_relay_set_first): it
 * runs once per side, after that side's first bytes were written to the
 * other side, never for later bytes; and the relay may end inside it (the
 * server's hook flushes the tunnel, whose stream callbacks may end the
 * relay). The relay only sees um_conn_t operations: two in-memory streams
 * stand for the tunnel's stream and the destination's connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <uv.h>

#include "tunnel/relay.h"
#include "util/err.h"

typedef struct {
    um_conn_t base;
    char got[64];
    size_t n;
    int closed, reading;
} mem_conn_t;

static int m_write(um_conn_t *c, const uint8_t *p, size_t n)
{
    mem_conn_t *m = (mem_conn_t *)c;
    assert_false(m->closed);
    assert_true(m->n + n <= sizeof(m->got));
    memcpy(m->got + m->n, p, n);
    m->n += n;
    return 0;
}
static size_t m_queued(um_conn_t *c)
{
    (void)c;
    return 0;
}
static int m_read_start(um_conn_t *c)
{
    ((mem_conn_t *)c)->reading = 1;
    return 0;
}
static int m_read_stop(um_conn_t *c)
{
    ((mem_conn_t *)c)->reading = 0;
    return 0;
}
static int m_shutdown(um_conn_t *c)
{
    (void)c;
    return 0;
}
static void m_close(um_conn_t *c)
{
    ((mem_conn_t *)c)->closed++;
}
static const um_conn_ops_t m_ops = {"mem",       m_write,    m_queued, m_read_start,
                                    m_read_stop, m_shutdown, m_close};

typedef struct {
    mem_conn_t a, b;
    int first[2];
    size_t seen_at_first[2]; /* bytes the other side held when the hook ran */
    int abort_in_hook;
    int ended;
    um_relay_t *r;
} fx_t;

static void on_first(um_relay_t *r, int side, void *ud)
{
    fx_t *fx = ud;
    assert_ptr_equal(r, fx->r);
    fx->first[side]++;
    fx->seen_at_first[side] = side == 1 ? fx->a.n : fx->b.n;
    if (fx->abort_in_hook) um_relay_abort(r);
}

static void on_end(um_relay_t *r, uint64_t up, uint64_t down, void *ud)
{
    (void)r;
    (void)up;
    (void)down;
    ((fx_t *)ud)->ended++;
}

static void fx_start(fx_t *fx, uv_loop_t *loop)
{
    memset(fx, 0, sizeof(*fx));
    fx->a.base.ops = fx->b.base.ops = &m_ops;
    fx->r = um_relay_alloc(loop, NULL, on_end, fx);
    assert_non_null(fx->r);
    um_relay_set_first(fx->r, on_first);
    um_relay_start(fx->r, &fx->a.base, &fx->b.base);
    assert_true(fx->a.reading && fx->b.reading);
}

/* Once per side, after the bytes were passed on; later bytes do not call
 * it; a relay without the hook relays as before. */
static void test_first_once_per_side(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fx_t fx;
    fx_start(&fx, &loop);
    um_relay_cbs_b.on_data(fx.r, (const uint8_t *)"HTTP", 4); /* the destination answers */
    assert_int_equal(fx.first[1], 1);
    assert_int_equal(fx.seen_at_first[1], 4); /* written to the tunnel's side first */
    um_relay_cbs_b.on_data(fx.r, (const uint8_t *)"/1.1", 4);
    assert_int_equal(fx.first[1], 1);
    assert_int_equal(fx.first[0], 0);
    um_relay_cbs_a.on_data(fx.r, (const uint8_t *)"GET", 3);
    assert_int_equal(fx.first[0], 1);
    assert_int_equal(fx.seen_at_first[0], 3);
    assert_int_equal(fx.a.n, 8);
    assert_memory_equal(fx.a.got, "HTTP/1.1", 8);
    um_relay_abort(fx.r);
    assert_int_equal(fx.ended, 1);
    assert_int_equal(fx.a.closed + fx.b.closed, 2);
    /* Without the hook. */
    fx_t g;
    memset(&g, 0, sizeof(g));
    g.a.base.ops = g.b.base.ops = &m_ops;
    g.r = um_relay_alloc(&loop, NULL, on_end, &g);
    um_relay_start(g.r, &g.a.base, &g.b.base);
    um_relay_cbs_b.on_data(g.r, (const uint8_t *)"x", 1);
    assert_int_equal(g.a.n, 1);
    assert_int_equal(g.first[1], 0);
    um_relay_abort(g.r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The relay ends inside the hook (both streams closed): on_data returns
 * without touching them again (ASan), and later events are ignored. */
static void test_end_inside_first(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fx_t fx;
    fx_start(&fx, &loop);
    fx.abort_in_hook = 1;
    um_relay_cbs_b.on_data(fx.r, (const uint8_t *)"HTTP", 4);
    assert_int_equal(fx.first[1], 1);
    assert_int_equal(fx.ended, 1);
    assert_int_equal(fx.a.closed, 1);
    assert_int_equal(fx.b.closed, 1);
    /* The relay's memory lives until its timer's close callback: events
     * that were already on their way are ignored. */
    um_relay_cbs_b.on_data(fx.r, (const uint8_t *)"more", 4);
    um_relay_cbs_a.on_eof(fx.r);
    assert_int_equal(fx.a.n, 4);
    assert_int_equal(fx.first[1], 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_once_per_side),
        cmocka_unit_test(test_end_inside_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
