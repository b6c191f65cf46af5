/* The routing connector over two fake providers ("tunnel" and "direct"):
 * each destination reaches the provider its rule names; a block is
 * reported as UM_CONN_NOT_ALLOWED on a later loop turn (never inside open),
 * and closing it first cancels the callback; swapping rules changes new
 * opens only; refuse_direct turns direct into block; an association routes
 * each datagram, and a DNS answer coming back on it names its addresses for
 * later opens. Every test ends with a loop that closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/router.h"
#include "proxy/rules.h"
#include "util/err.h"

/* ---- fake providers ---- */

typedef struct {
    int opens, assocs, sends;
    um_assoc_recv_cb cb; /* of the last association */
    void *cb_arg;
} fake_t;

typedef struct {
    um_conn_t base;
    fake_t *f;
} fconn_t;

typedef struct {
    um_assoc_t base;
    fake_t *f;
} fassoc_t;

static int f_write(um_conn_t *c, const uint8_t *p, size_t n)
{
    return 0;
}
static size_t f_queued(um_conn_t *c)
{
    return 0;
}
static int f_nop(um_conn_t *c)
{
    return 0;
}
static void f_close(um_conn_t *c)
{
    free(c);
}
static const um_conn_ops_t fconn_ops = {"fake", f_write, f_queued, f_nop, f_nop, f_nop, f_close};

static int fa_send(um_assoc_t *a, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    ((fassoc_t *)a)->f->sends++;
    return 0;
}
static void fa_close(um_assoc_t *a)
{
    free(a);
}
static const um_assoc_ops_t fassoc_ops = {fa_send, fa_close};

static int fp_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                   const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    fake_t *f = ctx;
    fconn_t *c = calloc(1, sizeof(*c));
    c->base.ops = &fconn_ops;
    c->f = f;
    f->opens++;
    *out = &c->base;
    return 0;
}

static int fp_assoc(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out)
{
    fake_t *f = ctx;
    fassoc_t *a = calloc(1, sizeof(*a));
    a->base.ops = &fassoc_ops;
    a->f = f;
    f->assocs++;
    f->cb = cb;
    f->cb_arg = arg;
    *out = &a->base;
    return 0;
}

static const um_connector_ops_t fake_ops = {
    .name = "fake", .open = fp_open, .assoc_open = fp_assoc};

/* ---- helpers ---- */

typedef struct {
    int opened, result;
} rec_t;

static void on_open(void *arg, int result)
{
    rec_t *r = arg;
    r->opened++;
    r->result = result;
}
static void on_data(void *arg, const uint8_t *p, size_t n) {}
static void on_eof(void *arg) {}
static void on_error(void *arg, int err) {}
static void on_drain(void *arg) {}
static const um_conn_cbs_t cbs = {on_open, on_data, on_eof, on_error, on_drain};
static int replies;
static void on_dgram(void *arg, const um_addr_t *src, const uint8_t *p, size_t n)
{
    replies++;
}

static um_rules_t *compile(const char *const *txt, uint8_t def)
{
    um_rule_t v[16];
    size_t n = 0;
    char why[160];
    for (; txt[n]; n++)
        assert_int_equal(um_rule_parse(&v[n], txt[n], strlen(txt[n]), why, sizeof(why)), 0);
    um_rules_t *r;
    assert_int_equal(um_rules_compile(v, n, def, NULL, &r, why, sizeof(why)), 0);
    return r;
}

static um_addr_t dst(const char *host, uint16_t port)
{
    um_addr_t a;
    assert_int_equal(um_addr_parse_host(&a, host, strlen(host), NULL, 0), 0);
    a.port = port;
    return a;
}

static void run_and_close(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_open_routes(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t tun = {0}, dir = {0};
    static const char *const t[] = {"direct cidr:10.0.0.0/8", "block domain:bad.example", NULL};
    um_router_t *r;
    assert_int_equal(um_router_new(&loop, (um_conn_provider_t){&fake_ops, &tun},
                                   (um_conn_provider_t){&fake_ops, &dir}, compile(t, 0), &r),
                     0);
    um_conn_provider_t p = um_router_connector(r);
    um_conn_t *c[4];
    rec_t rec[4] = {{0}};
    um_addr_t a = dst("10.1.2.3", 80);
    assert_int_equal(um_conn_open(p, &a, NULL, 0, &cbs, &rec[0], &c[0]), 0);
    a = dst("www.example.org", 80);
    assert_int_equal(um_conn_open(p, &a, NULL, 0, &cbs, &rec[1], &c[1]), 0);
    assert_int_equal(dir.opens, 1);
    assert_int_equal(tun.opens, 1);
    a = dst("x.bad.example", 443);
    assert_int_equal(um_conn_open(p, &a, NULL, 0, &cbs, &rec[2], &c[2]), 0);
    assert_int_equal(um_conn_open(p, &a, NULL, 0, &cbs, &rec[3], &c[3]), 0);
    assert_int_equal(rec[2].opened, 0); /* never from inside open */
    assert_int_equal(um_conn_write(c[2], (const uint8_t *)"x", 1), UM_EAGAIN);
    um_conn_close(c[3]); /* closed before the refusal: no callback */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(rec[2].opened, 1);
    assert_int_equal(rec[2].result, UM_CONN_NOT_ALLOWED);
    assert_int_equal(rec[3].opened, 0);
    assert_int_equal(dir.opens + tun.opens, 2);
    um_router_stats_t st;
    um_router_stats(r, &st);
    assert_int_equal(st.opens[UM_RULE_TUNNEL], 1);
    assert_int_equal(st.opens[UM_RULE_DIRECT], 1);
    assert_int_equal(st.opens[UM_RULE_BLOCK], 2);
    /* new rules for new opens */
    static const char *const t2[] = {"block cidr:10.0.0.0/8", NULL};
    um_router_set_rules(r, compile(t2, UM_RULE_DIRECT));
    a = dst("www.example.org", 80);
    um_conn_t *d;
    assert_int_equal(um_conn_open(p, &a, NULL, 0, &cbs, &rec[0], &d), 0);
    assert_int_equal(dir.opens, 2); /* the new default */
    um_conn_close(d);
    um_router_refuse_direct(r, true);
    rec_t rr = {0};
    assert_int_equal(um_conn_open(p, &a, NULL, 0, &cbs, &rr, &d), 0);
    assert_int_equal(dir.opens, 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(rr.result, UM_CONN_NOT_ALLOWED);
    um_conn_close(d);
    for (int i = 0; i < 3; i++)
        um_conn_close(c[i]);
    um_router_free(r);
    run_and_close(&loop);
}

static void test_assoc_and_dns_names(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t tun = {0}, dir = {0};
    static const char *const t[] = {"block domain:ads.example", "direct cidr:192.0.2.0/24", NULL};
    um_router_t *r;
    assert_int_equal(um_router_new(&loop, (um_conn_provider_t){&fake_ops, &tun},
                                   (um_conn_provider_t){&fake_ops, &dir}, compile(t, 0), &r),
                     0);
    um_conn_provider_t p = um_router_connector(r);
    um_assoc_t *as;
    assert_int_equal(um_assoc_open(p, on_dgram, NULL, &as), 0);
    um_addr_t resolver = dst("198.51.100.53", 53), local = dst("192.0.2.9", 9);
    assert_int_equal(um_assoc_send(as, &resolver, (const uint8_t *)"q", 1), 0);
    assert_int_equal(um_assoc_send(as, &local, (const uint8_t *)"q", 1), 0);
    assert_int_equal(tun.sends, 1);
    assert_int_equal(dir.sends, 1);
    um_addr_t blocked = dst("x.ads.example", 9);
    assert_int_equal(um_assoc_send(as, &blocked, (const uint8_t *)"q", 1), UM_EACCES);
    /* before any answer: 203.0.113.7 goes the default way */
    um_addr_t ip = dst("203.0.113.7", 443);
    um_conn_t *c;
    rec_t rec = {0};
    assert_int_equal(um_conn_open(p, &ip, NULL, 0, &cbs, &rec, &c), 0);
    assert_int_equal(tun.opens, 1);
    um_conn_close(c);
    /* the resolver's answer: www.ads.example A 203.0.113.7 */
    static const uint8_t ans[] = {
        0,   1,   0x81, 0x80, 0,   1,   0,   1,   0,   0,   0,   0,   3, 'w', 'w', 'w', 3,
        'a', 'd', 's',  7,    'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,   0, 1,   0,   1,   0xc0,
        12,  0,   1,    0,    1,   0,   0,   1,   0,   0,   4,   203, 0, 113, 7};
    tun.cb(tun.cb_arg, &resolver, ans, sizeof(ans));
    assert_int_equal(replies, 1); /* passed on to the association's user */
    assert_int_equal(um_conn_open(p, &ip, NULL, 0, &cbs, &rec, &c), 0);
    assert_int_equal(tun.opens, 1); /* not opened: blocked by its name */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(rec.result, UM_CONN_NOT_ALLOWED);
    um_conn_close(c);
    /* the same answer from a non-DNS port teaches nothing */
    um_router_stats_t st;
    um_router_stats(r, &st);
    assert_int_equal(st.learnt, 1);
    assert_int_equal(st.named, 1);
    um_addr_t other = dst("198.51.100.53", 5353);
    tun.cb(tun.cb_arg, &other, ans, sizeof(ans));
    um_router_stats(r, &st);
    assert_int_equal(st.learnt, 1);
    um_assoc_close(as);
    um_router_free(r);
    run_and_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_routes),
        cmocka_unit_test(test_assoc_and_dns_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
