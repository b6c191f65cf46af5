/* The tunnel's timing profile (um_tunnel_set_timing, tunnel.h) on a real
 * libuv loop: a session pair over loopback TCP, the client's carrier wrapped
 * in a recording carrier that forwards every call to the real TCP carrier
 * and notes when each write reached it and how big it was.
 *
 *   none:   a stream write reaches the carrier on the next turns of the loop
 *           without any timer, and an idle tunnel writes nothing;
 *   jitter: a write after a silence is held back by a random 0..max ms (some
 *           are, none for much longer than the bound), a bulk transfer pays
 *           that at most a few times (once per burst, not per flush), and an
 *           idle tunnel sends padding-only records of small-frame sizes, no
 *           two closer than the idle minimum, which the peer takes as
 *           ordinary records (the tunnel stays up and carries data after).
 *
 * Timing bounds are one-sided where the machine's load could matter (a timer
 * never fires early; a loaded machine only makes gaps longer); upper bounds
 * are generous. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tcp_pair.h"
#include <sodium.h>
#include <uv.h>

#include "transport/tcp.h"
#include "tunnel/tunnel.h"
#include "util/clock.h"
#include "util/err.h"

/* ---- a carrier that records its writes ---- */

#define MAXW 4096

typedef struct {
    um_carrier_t base;
    um_carrier_t *inner;
    size_t n;             /* writes seen */
    uint64_t at_ns[MAXW]; /* uv_hrtime() of each (the first MAXW) */
    size_t len[MAXW];
} spy_t;

static spy_t *spy_of(um_carrier_t *c)
{
    return (spy_t *)c;
}

static void sp_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    um_carrier_set_cbs(spy_of(c)->inner, rd, dr, ud);
}

static int sp_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    spy_t *s = spy_of(c);
    if (s->n < MAXW) {
        s->at_ns[s->n] = uv_hrtime();
        s->len[s->n] = n;
    }
    s->n++;
    return um_carrier_write(s->inner, p, n);
}

static size_t sp_queued(const um_carrier_t *c)
{
    return um_carrier_queued(((const spy_t *)c)->inner);
}

static void sp_set_wq_max(um_carrier_t *c, size_t max)
{
    um_carrier_set_wq_max(spy_of(c)->inner, max);
}

static int sp_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(spy_of(c)->inner);
}

static int sp_read_stop(um_carrier_t *c)
{
    return um_carrier_read_stop(spy_of(c)->inner);
}

static int sp_shutdown(um_carrier_t *c)
{
    return um_carrier_shutdown(spy_of(c)->inner);
}

static void sp_close(um_carrier_t *c)
{
    spy_t *s = spy_of(c);
    um_carrier_close(s->inner);
    s->inner = NULL; /* the fixture frees the spy after the loop has closed */
}

static int sp_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    return um_carrier_absorb(spy_of(c)->inner, p, n, out, outn);
}

static const um_carrier_ops_t spy_ops = {
    .name = "spy",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16384,
    .set_cbs = sp_set_cbs,
    .write = sp_write,
    .queued = sp_queued,
    .set_wq_max = sp_set_wq_max,
    .read_start = sp_read_start,
    .read_stop = sp_read_stop,
    .shutdown = sp_shutdown,
    .close = sp_close,
    .absorb = sp_absorb,
};

/* ---- fixture: client tunnel (over the spy) and server tunnel ---- */

typedef struct {
    uv_loop_t loop;
    um_tcp_listener_t *ls;
    um_tcp_t *ctcp, *stcp;
    spy_t *spy;
    um_tunnel_t *ct, *st;
    um_hub_t *hub;
    int cdown, sdown;
    um_conn_t *cc, *sc; /* the one stream, client and server side */
    int opened;
    size_t s_got;
} fx_t;

static void c_on_open(void *arg, int result)
{
    fx_t *fx = arg;
    assert_int_equal(result, UM_CONN_OK);
    fx->opened = 1;
}

static void s_on_data(void *arg, const uint8_t *p, size_t n)
{
    (void)p;
    ((fx_t *)arg)->s_got += n;
}

static void on_data_ignore(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
}

static void on_eof(void *arg)
{
    (void)arg;
}

static void on_error(void *arg, int err)
{
    (void)arg;
    (void)err;
}

static void on_drain(void *arg)
{
    (void)arg;
}

static const um_conn_cbs_t c_cbs = {c_on_open, on_data_ignore, on_eof, on_error, on_drain};
static const um_conn_cbs_t s_cbs = {NULL, s_on_data, on_eof, on_error, on_drain};

static void srv_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
{
    fx_t *fx = ud;
    (void)dst;
    assert_null(fx->sc);
    assert_int_equal(um_tunnel_accept(t, id, &s_cbs, fx, &fx->sc), 0);
}

static void c_down(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    (void)err;
    fx->cdown++;
    fx->ct = NULL;
}

static void s_down(um_tunnel_t *t, int err, void *ud)
{
    fx_t *fx = ud;
    (void)t;
    (void)err;
    fx->sdown++;
    fx->st = NULL;
}

static const um_tunnel_cbs_t ccbs = {.on_down = c_down};
static const um_tunnel_cbs_t scbs = {.on_opened = srv_opened, .on_down = s_down};

typedef bool (*pred_t)(fx_t *fx);

static bool run_until(fx_t *fx, pred_t done, uint64_t ms)
{
    uint64_t end = um_now_ms() + ms;
    while (!done(fx) && um_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    return done(fx);
}

static void spin(fx_t *fx, uint64_t ms)
{
    uint64_t end = um_now_ms() + ms;
    while (um_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

static bool stream_up(fx_t *fx)
{
    return fx->opened && fx->sc;
}

static bool both_down(fx_t *fx)
{
    return fx->cdown && fx->sdown;
}

static void mkkeys(um_sess_keys_t *a, um_sess_keys_t *b)
{
    memset(a, 0, sizeof(*a));
    randombytes_buf(a->k_send, 32);
    randombytes_buf(a->k_recv, 32);
    randombytes_buf(a->sid, UM_SID_LEN);
    a->alg = UM_AEAD_CHACHA20_POLY1305;
    a->initiator = 1;
    *b = *a;
    memcpy(b->k_send, a->k_recv, 32);
    memcpy(b->k_recv, a->k_send, 32);
    b->initiator = 0;
}

/* Both tunnels up, the client's with timing tm, one stream open. */
static void fx_up(fx_t *fx, const um_tunnel_timing_t *tm)
{
    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    tcp_pair_open(&fx->loop, &fx->ls, &fx->ctcp, &fx->stcp);
    fx->spy = calloc(1, sizeof(*fx->spy));
    assert_non_null(fx->spy);
    fx->spy->base.ops = &spy_ops;
    fx->spy->inner = um_tcp_carrier(fx->ctcp);
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb);
    um_sess_t *a = um_sess_new(&ka, NULL), *b = um_sess_new(&kb, NULL);
    sodium_memzero(&ka, sizeof(ka));
    sodium_memzero(&kb, sizeof(kb));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(
        um_tunnel_new(&fx->loop, a, &fx->spy->base, UM_MUX_CLIENT, NULL, &ccbs, fx, &fx->ct), 0);
    assert_int_equal(um_tunnel_new(&fx->loop, b, um_tcp_carrier(fx->stcp), UM_MUX_SERVER, NULL,
                                   &scbs, fx, &fx->st),
                     0);
    um_tunnel_set_timing(fx->ct, tm);
    assert_int_equal(um_hub_new(&fx->loop, 10000, 16, &fx->hub), 0);
    um_hub_set_tunnel(fx->hub, fx->ct);
    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 80;
    assert_int_equal(um_conn_open(um_hub_connector(fx->hub), &d, NULL, 0, &c_cbs, fx, &fx->cc), 0);
    assert_true(run_until(fx, stream_up, 5000));
}

static void fx_down(fx_t *fx)
{
    um_conn_close(fx->cc);
    um_conn_close(fx->sc);
    if (fx->ct) um_tunnel_close(fx->ct, false, 0);
    if (fx->st) um_tunnel_close(fx->st, false, 0);
    assert_true(run_until(fx, both_down, 5000));
    um_hub_free(fx->hub);
    um_tcp_listener_close(fx->ls);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    assert_null(fx->spy->inner); /* the tunnel closed its carrier */
    free(fx->spy);
}

static um_tunnel_timing_t timing(int profile, uint32_t idle_min, uint32_t idle_max)
{
    um_tunnel_timing_t tm;
    um_tunnel_timing_default(&tm, profile);
    tm.idle_min_ms = idle_min;
    tm.idle_max_ms = idle_max;
    return tm;
}

/* One write after a silence: how long until it reached the carrier (ns),
 * and whether it did within `loop_turns` turns of the loop that run no
 * timer (UV_RUN_NOWAIT). */
static uint64_t write_after_silence(fx_t *fx, int loop_turns, bool *in_turns)
{
    spin(fx, 80); /* longer than the burst gap (50 ms) */
    size_t n0 = fx->spy->n;
    uint64_t t0 = uv_hrtime();
    assert_int_equal(um_conn_write(fx->cc, (const uint8_t *)"ping", 4), 0);
    for (int i = 0; i < loop_turns && fx->spy->n == n0; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    *in_turns = fx->spy->n > n0;
    uint64_t end = um_now_ms() + 5000;
    while (fx->spy->n == n0 && um_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(fx->spy->n > n0);
    assert_true(n0 < MAXW);
    return fx->spy->at_ns[n0] - t0;
}

/* ---- tests ---- */

static void test_defaults(void **state)
{
    (void)state;
    um_tunnel_timing_t tm;
    um_tunnel_timing_default(&tm, UM_TUNNEL_TIMING_JITTER);
    assert_int_equal(tm.profile, UM_TUNNEL_TIMING_JITTER);
    assert_int_equal(tm.delay_max_ms, 5);
    assert_int_equal(tm.burst_gap_ms, 50);
    assert_int_equal(tm.idle_min_ms, 2000);
    assert_int_equal(tm.idle_max_ms, 10000);
}

/* none: every flush leaves within a few turns of the loop with no timer in
 * between, and an idle tunnel writes nothing (even with idle bounds that
 * would give jitter several fillers). */
static void test_none_changes_nothing(void **state)
{
    (void)state;
    fx_t fx;
    um_tunnel_timing_t tm = timing(UM_TUNNEL_TIMING_NONE, 50, 100);
    fx_up(&fx, &tm);
    for (int i = 0; i < 10; i++) {
        bool in_turns = false;
        write_after_silence(&fx, 4, &in_turns);
        assert_true(in_turns);
    }
    spin(&fx, 100);
    size_t n0 = fx.spy->n;
    spin(&fx, 800);
    assert_int_equal(fx.spy->n, n0);
    um_tunnel_stats_t st;
    um_tunnel_stats(fx.ct, &st);
    assert_int_equal(st.timing_delays, 0);
    assert_int_equal(st.timing_fillers, 0);
    fx_down(&fx);
}

/* jitter: flushes after a silence wait 0..5 ms. Of 20, P(none held back)
 * is (1/6)^20; a timer never fires early, so a held one is >= 1 ms late. */
static void test_jitter_delays_flushes(void **state)
{
    (void)state;
    fx_t fx;
    um_tunnel_timing_t tm = timing(UM_TUNNEL_TIMING_JITTER, 60000, 60000);
    fx_up(&fx, &tm);
    int held = 0, late_1ms = 0;
    uint64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        bool in_turns = true;
        uint64_t ns = write_after_silence(&fx, 4, &in_turns);
        held += !in_turns;
        late_1ms += ns >= 1000000;
        if (ns > worst) worst = ns;
    }
    um_tunnel_stats_t st;
    um_tunnel_stats(fx.ct, &st);
    assert_true(st.timing_delays >= 5);
    assert_true(held >= 5);
    assert_true(late_1ms >= 5);
    /* the bound is 5 ms; a loaded or ASan machine adds its own lateness */
    assert_true(worst < 1000 * 1000000ull);
    assert_int_equal(st.timing_fillers, 0);
    fx_down(&fx);
}

static bool got_all(fx_t *fx);
static size_t g_total;
static bool got_all(fx_t *fx)
{
    return fx->s_got >= g_total;
}

/* jitter: a bulk transfer is one burst; its flushes are not each held back
 * (4 MiB is over 60 flushes of 64 KiB; only a pause of 50 ms without any
 * record, which a loaded machine may cause now and then, starts a burst). */
static void test_jitter_bulk_not_per_flush(void **state)
{
    (void)state;
    fx_t fx;
    um_tunnel_timing_t tm = timing(UM_TUNNEL_TIMING_JITTER, 60000, 60000);
    fx_up(&fx, &tm);
    static uint8_t chunk[64 * 1024];
    memset(chunk, 'b', sizeof(chunk));
    um_tunnel_stats_t st0, st;
    um_tunnel_stats(fx.ct, &st0);
    size_t w0 = fx.spy->n;
    g_total = 4u << 20;
    for (size_t sent = 0; sent < g_total; sent += sizeof(chunk))
        assert_int_equal(um_conn_write(fx.cc, chunk, sizeof(chunk)), 0);
    assert_true(run_until(&fx, got_all, 30000));
    um_tunnel_stats(fx.ct, &st);
    assert_int_equal(fx.s_got, g_total);
    assert_true(fx.spy->n - w0 >= 16); /* the carrier saw many flushes */
    assert_true(st.timing_delays - st0.timing_delays <= 10);
    fx_down(&fx);
}

/* jitter: an idle tunnel sends fillers of small-frame sizes, never two
 * closer than idle_min_ms; the peer takes them as records and the stream
 * still carries data after them. */
static void test_jitter_idle_fillers(void **state)
{
    (void)state;
    fx_t fx;
    um_tunnel_timing_t tm = timing(UM_TUNNEL_TIMING_JITTER, 150, 300);
    fx_up(&fx, &tm);
    spin(&fx, 100);
    size_t n0 = fx.spy->n;
    um_tunnel_stats_t st0, st;
    um_tunnel_stats(fx.ct, &st0);
    um_tunnel_stats_t ss0, ss;
    um_tunnel_stats(fx.st, &ss0);
    spin(&fx, 2500);
    size_t n1 = fx.spy->n;
    assert_true(n1 <= MAXW);
    um_tunnel_stats(fx.ct, &st);
    /* 2.5 s of silence, a filler every 150..300 ms: about 8-16; a loaded
     * machine makes timers late, never early, so fewer, not more */
    assert_true(n1 - n0 >= 3);
    assert_true(n1 - n0 <= 2500 / 150 + 1);
    /* Fillers, and the session's ACKs of what the server's session
     * acknowledged in turn (ordinary small records): both are small. */
    uint64_t fillers = st.timing_fillers - st0.timing_fillers;
    assert_true(fillers >= 3);
    assert_true(fillers <= n1 - n0);
    size_t close_pairs = 0;
    for (size_t i = n0; i < n1; i++) {
        assert_true(fx.spy->len[i] >= UM_SESS_FILLER_MIN);
        assert_true(fx.spy->len[i] < 100);
        /* 2 ms for the loop's cached clock */
        if (i > n0 && fx.spy->at_ns[i] - fx.spy->at_ns[i - 1] < (150 - 2) * 1000000ull)
            close_pairs++;
    }
    /* no two fillers closer than idle_min_ms: only a write that is not a
     * filler may stand close to another (at most two pairs each) */
    assert_true(close_pairs <= 2 * ((n1 - n0) - fillers));
    um_tunnel_stats(fx.st, &ss);
    assert_true(ss.bytes_in > ss0.bytes_in); /* the server read them */
    assert_non_null(fx.ct);
    assert_non_null(fx.st);
    g_total = fx.s_got + 4;
    assert_int_equal(um_conn_write(fx.cc, (const uint8_t *)"data", 4), 0);
    assert_true(run_until(&fx, got_all, 5000));
    fx_down(&fx);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_none_changes_nothing),
        cmocka_unit_test(test_jitter_delays_flushes),
        cmocka_unit_test(test_jitter_bulk_not_per_flush),
        cmocka_unit_test(test_jitter_idle_fillers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
