/* The server admission state (session/gate.h): per-client-key handshake
 * quota, per-source budgets, eviction; and (transport glue it relies on)
 * a listener that keeps accepting after an allocation failure, and idle
 * connections that pin no read buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <uv.h>

#include "crypto/keys.h"
#include "session/gate.h"
#include "transport/tcp.h"
#include "util/err.h"

#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void); /* ASan runtime */
static size_t allocated(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t allocated(void)
{
    return mallinfo2().uordblks;
}
#endif

#define PRO     UM_HS_PROLOGUE_TCP
#define PRO_LEN (sizeof(UM_HS_PROLOGUE_TCP) - 1)

static int flight_from(um_gate_t *g, const uint8_t c_priv[32], const uint8_t s_pub[32],
                       uint64_t now, uint8_t *m, size_t *mn)
{
    um_hs_client_t c;
    uint8_t reply[UM_HS_MSG_MAX];
    size_t rn;
    um_sess_keys_t k;
    assert_int_equal(um_hs_client_start(&c, (const uint8_t *)PRO, PRO_LEN, c_priv, s_pub, NULL, now,
                                        0, m, UM_HS_MSG_MAX, mn),
                     0);
    um_hs_client_wipe(&c);
    int r = um_hs_server_respond(um_gate_hs(g), (const uint8_t *)PRO, PRO_LEN, m, *mn, now, 0,
                                 reply, sizeof(reply), &rn, &k);
    um_sess_keys_wipe(&k);
    return r;
}

/* Audit item 5: one client may not fill the replay filter. With a quota of
 * 10/min, the 11th fresh flight of client A in the same second is refused
 * (UM_ELIMIT) while client B is still served; a replayed flight of A costs
 * A nothing; after 60 s A has tokens again. Control: the handshake responder
 * without the hook (as before the gate) takes all 11. */
static void test_key_quota(void **st)
{
    (void)st;
    uint8_t s_priv[32], s_pub[32], a[32], ap[32], b[32], bp[32];
    uint8_t m[UM_HS_MSG_MAX], first[UM_HS_MSG_MAX];
    size_t mn, fn;
    um_key_generate(s_priv);
    um_key_public(s_pub, s_priv);
    um_key_generate(a);
    um_key_public(ap, a);
    um_key_generate(b);
    um_key_public(bp, b);
    um_keyset_t *ks = um_keyset_new();
    um_keyset_add(ks, ap);
    um_keyset_add(ks, bp);
    um_gate_cfg_t gc = {.key_hs_per_min = 10};
    um_gate_t *g;
    assert_int_equal(um_gate_new(s_priv, ks, 0, 4096, false, &gc, &g), 0);
    uint64_t now = 1700000000;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(flight_from(g, a, s_pub, now, m, &mn), 0);
        if (i == 0) {
            memcpy(first, m, mn);
            fn = mn;
        }
    }
    assert_int_equal(flight_from(g, a, s_pub, now, m, &mn), UM_ELIMIT);
    assert_int_equal(flight_from(g, b, s_pub, now, m, &mn), 0);
    /* A replay of A's first flight: refused by the filter, not by the quota
     * (and it must not use up B's or anybody's tokens). */
    uint8_t reply[UM_HS_MSG_MAX];
    size_t rn;
    um_sess_keys_t k;
    assert_int_equal(um_hs_server_respond(um_gate_hs(g), (const uint8_t *)PRO, PRO_LEN, first, fn,
                                          now + 61, 0, reply, sizeof(reply), &rn, &k),
                     UM_EREPLAY);
    assert_int_equal(flight_from(g, a, s_pub, now + 61, m, &mn), 0); /* refilled */
    um_gate_stats_t s;
    um_gate_stats(g, &s);
    assert_true(s.quota_refused >= 1);
    /* Control: the responder without the quota (the old behaviour) lets one
     * client handshake without bound. */
    um_hs_server_t *hs = um_gate_hs(g);
    hs->quota = NULL;
    for (int i = 0; i < 11; i++)
        assert_int_equal(flight_from(g, a, s_pub, now + 62, m, &mn), 0);
    um_gate_unref(g);
    um_keyset_unref(ks);
}

static int evicted;
static um_gate_t *ev_gate;
static void on_evict(um_gate_node_t *n)
{
    (void)n;
    evicted++;
    um_gate_release_held(ev_gate);
}

/* Per-source and global parse budgets, the held bound and eviction. */
static void test_budgets(void **st)
{
    (void)st;
    uint8_t s_priv[32] = {7}, x[UM_SRC_KEY_LEN], y[UM_SRC_KEY_LEN], z[UM_SRC_KEY_LEN];
    um_keyset_t *ks = um_keyset_new();
    um_gate_cfg_t gc = {.max_preauth = 4, .per_source = 2, .max_held = 6};
    um_gate_t *g;
    assert_int_equal(um_gate_new(s_priv, ks, 0, 1024, false, &gc, &g), 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    a4.sin_addr.s_addr = htonl(0x0a000001);
    assert_int_equal(um_gate_src_key(g, (struct sockaddr *)&a4, x), 0);
    a4.sin_addr.s_addr = htonl(0x0a000002);
    assert_int_equal(um_gate_src_key(g, (struct sockaddr *)&a4, y), 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    a6.sin6_addr.s6_addr[0] = 0x20;
    a6.sin6_addr.s6_addr[15] = 1;
    assert_int_equal(um_gate_src_key(g, (struct sockaddr *)&a6, z), 0);
    uint8_t z2[UM_SRC_KEY_LEN];
    a6.sin6_addr.s6_addr[15] = 2; /* same /64 */
    assert_int_equal(um_gate_src_key(g, (struct sockaddr *)&a6, z2), 0);
    assert_memory_equal(z, z2, UM_SRC_KEY_LEN);

    assert_true(um_gate_admit(g, x));
    assert_true(um_gate_admit(g, x));
    assert_false(um_gate_admit(g, x)); /* per source */
    assert_true(um_gate_admit(g, y));
    assert_true(um_gate_admit(g, z));
    assert_false(um_gate_admit(g, z2)); /* global (4) */
    um_gate_release_parse(g, x);        /* peer closed: slot free at once */
    assert_true(um_gate_admit(g, x));
    um_gate_stats_t s;
    um_gate_stats(g, &s);
    assert_int_equal(s.parsing, 4);
    assert_int_equal(s.held, 7);
    /* Held bound 6: over it; with an evictable node it makes room. */
    um_gate_node_t n = {.evict = on_evict};
    ev_gate = g;
    um_gate_evictable(g, &n);
    assert_true(um_gate_room(g) == false); /* 7 - 1 = 6: still at the bound */
    assert_int_equal(evicted, 1);
    um_gate_release_held(g);
    assert_true(um_gate_room(g));
    um_gate_unref(g);
    um_keyset_unref(ks);
}

/* ---- transport glue ---- */

typedef struct {
    uv_loop_t loop;
    um_tcp_listener_t *l;
    um_tcp_t *acc[256];
    int n_acc;
    uv_tcp_t cl[256];
    uv_connect_t creq[256];
    int n_conn, eof[256];
    uv_timer_t deadline;
} tctx_t;

static void t_accept(um_tcp_listener_t *l, um_tcp_t *t, void *ud)
{
    (void)l;
    tctx_t *c = ud;
    c->acc[c->n_acc++] = t;
    um_tcp_read_start(t);
}

static void cl_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    (void)s;
    static char buf[256];
    *b = uv_buf_init(buf, sizeof(buf));
}

static void cl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0) {
        int *eof = s->data;
        *eof = 1;
        uv_read_stop(s);
    }
}

static void cl_connected(uv_connect_t *r, int status)
{
    assert_int_equal(status, 0);
    uv_read_start(r->handle, cl_alloc, cl_read);
}

static void connect_one(tctx_t *c, int port)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    int i = c->n_conn++;
    uv_tcp_init(&c->loop, &c->cl[i]);
    c->cl[i].data = &c->eof[i];
    uv_tcp_connect(&c->creq[i], &c->cl[i], (struct sockaddr *)&a, cl_connected);
}

static void run_until(tctx_t *c, int *cond, int want, uint64_t ms)
{
    uint64_t end = uv_now(&c->loop) + ms;
    while (*cond < want && uv_now(&c->loop) < end)
        uv_run(&c->loop, UV_RUN_ONCE);
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
}

static void tctx_init(tctx_t *c, int *port)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(um_tcp_listen(&c->loop, (struct sockaddr *)&a, 0, t_accept, c, &c->l), 0);
    *port = um_tcp_listener_port(c->l);
    uv_timer_init(&c->loop, &c->deadline); /* keeps UV_RUN_ONCE from blocking forever */
    uv_timer_start(&c->deadline, on_deadline, 50, 50);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void tctx_close(tctx_t *c)
{
    for (int i = 0; i < c->n_acc; i++)
        um_tcp_close(c->acc[i]);
    um_tcp_listener_close(c->l);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    uv_walk(&c->loop, close_walk, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

/* Review item 3: an allocation failure in the accept callback used to
 * return without uv_accept(), and libuv then never polled the listener
 * again. Now the connection is accepted and closed (the peer sees EOF) and
 * the next one is served. */
static void test_accept_alloc_failure(void **st)
{
    (void)st;
    static tctx_t c;
    int port;
    tctx_init(&c, &port);
    um_tcp_test_fail_alloc(1);
    connect_one(&c, port);
    run_until(&c, &c.eof[0], 1, 5000);
    assert_int_equal(c.eof[0], 1); /* closed, not left hanging */
    assert_int_equal(c.n_acc, 0);
    connect_one(&c, port);
    run_until(&c, &c.n_acc, 1, 5000);
    assert_int_equal(c.n_acc, 1); /* the listener still accepts */
    /* Pause: a new connection waits (not accepted, not closed) until resume. */
    um_tcp_listener_pause(c.l);
    connect_one(&c, port);
    uint64_t end = uv_now(&c.loop) + 300;
    while (uv_now(&c.loop) < end)
        uv_run(&c.loop, UV_RUN_ONCE);
    assert_int_equal(c.n_acc, 1);
    assert_int_equal(c.eof[2], 0);
    um_tcp_listener_resume(c.l);
    run_until(&c, &c.n_acc, 2, 5000);
    assert_int_equal(c.n_acc, 2);
    tctx_close(&c);
}

/* Review item 8: idle connections reading pin no 64 KiB buffer each. */
static void test_idle_memory(void **st)
{
    (void)st;
    static tctx_t c;
    int port, n = 200;
    tctx_init(&c, &port);
    size_t before = allocated();
    for (int i = 0; i < n; i++)
        connect_one(&c, port);
    run_until(&c, &c.n_acc, n, 10000);
    assert_int_equal(c.n_acc, n);
    size_t after = allocated();
    size_t per = after > before ? (after - before) / (size_t)n : 0;
    printf("idle connections: %zu bytes allocated each (both ends)\n", per);
    assert_true(per < 8192);
    tctx_close(&c);
}

int main(void)
{
    um_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_quota),
        cmocka_unit_test(test_budgets),
        cmocka_unit_test(test_accept_alloc_failure),
        cmocka_unit_test(test_idle_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
