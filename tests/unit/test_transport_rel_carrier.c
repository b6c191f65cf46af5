/* The reliable carrier (rel_carrier.h) over a real uv loop: two carriers
 * joined by an in-process datagram link (5 ms each way, random drops),
 * which pushes packets only when the carrier asked (want_output). Streams
 * of 256 KiB each way through the carrier API with backpressure (write
 * refusals and drain callbacks), then FIN both ways; the loop must end
 * with every handle closed. Also: a dead link ends the stream with
 * UM_ETIMEDOUT, and so does detaching the link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "transport/rel_carrier.h"
#include "util/err.h"

#define NPKT 4096

typedef struct {
    uint64_t at;
    int id; /* pull mode: the query it is or answers */
    size_t n;
    uint8_t p[1200];
} pkt_t;

typedef struct side side_t;
struct side {
    um_rel_carrier_t *rc;
    um_carrier_t *c;
    side_t *peer;
    bool want;    /* want_output was called */
    size_t cap;   /* opportunity size */
    pkt_t *inbox; /* packets on their way to this side */
    size_t n_in;
    uint8_t seed;
    size_t tx_total, tx_done, rx_done;
    int rx_status; /* 0 while open; UM_EPIPE or an error at the end */
    int drains, refusals, wants, link_told;
    bool closed;
};

typedef struct {
    uv_loop_t loop;
    uv_timer_t net, watchdog;
    side_t a, b;
    unsigned drop_pct;
    bool pull;          /* a only sends queries, b only answers them (as dns) */
    uint64_t qsent[64]; /* pull: send time of query id (0: free) */
    int next_id;
    uint64_t last_query;
    uint64_t rng;
    bool done;
} fx_t;

static fx_t fx;

static uint64_t rnd(void)
{
    fx.rng ^= fx.rng << 13;
    fx.rng ^= fx.rng >> 7;
    fx.rng ^= fx.rng << 17;
    return fx.rng;
}

static uint8_t pattern(uint8_t seed, size_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    return (uint8_t)(x >> 29 ^ x >> 47);
}

static void want_output(void *ud)
{
    side_t *s = ud;
    s->want = true;
    s->wants++;
}

static void send_pkt(side_t *s, int id, const uint8_t *p, size_t n)
{
    if (rnd() % 100 < fx.drop_pct) return;
    side_t *d = s->peer;
    assert_true(d->n_in < NPKT);
    pkt_t *w = &d->inbox[d->n_in++];
    w->at = uv_now(&fx.loop) + 5;
    w->id = id;
    w->n = n;
    memcpy(w->p, p, n);
}

/* Pull mode, the client: queries while rel has something, the server said
 * it has more, or an idle poll is due; at most 16 unanswered (a query
 * unanswered for 300 ms is given up). */
static void query(side_t *s)
{
    uint64_t now = uv_now(&fx.loop);
    int free_id = 0, inflight = 0;
    for (int id = 1; id < 64; id++) {
        if (fx.qsent[id] && now - fx.qsent[id] > 300) fx.qsent[id] = 0;
        if (fx.qsent[id])
            inflight++;
        else if (!free_id)
            free_id = id;
    }
    um_rel_t *r = um_rel_carrier_rel(s->rc);
    bool want = s->want || um_rel_carrier_wants_output(s->rc) || um_rel_peer_more(r);
    if (!want && now < fx.last_query + um_rel_poll_interval(r, now)) return;
    if (inflight >= 16 || !free_id) return;
    s->want = false;
    uint8_t p[1200];
    size_t n = 0;
    int e = um_rel_carrier_output(s->rc, p, s->cap, &n);
    if (e) return;
    fx.qsent[free_id] = now;
    fx.last_query = now;
    send_pkt(s, free_id, p, n); /* n = 0: an empty poll */
}

static void pump(side_t *s)
{
    if (s->closed) return;
    if (fx.pull) {
        if (s == &fx.a)
            for (int k = 0; k < 4; k++)
                query(s);
        return; /* the server speaks only when asked */
    }
    if (!s->want) return;
    s->want = false;
    for (int k = 0; k < 64; k++) {
        uint8_t p[1200];
        size_t n = 0;
        int e = um_rel_carrier_output(s->rc, p, s->cap, &n);
        if (e || !n) break;
        send_pkt(s, 0, p, n);
    }
}

static void deliver(side_t *s)
{
    uint64_t now = uv_now(&fx.loop);
    size_t w = 0;
    for (size_t i = 0; i < s->n_in; i++) {
        pkt_t *k = &s->inbox[i];
        if (s->closed) continue;
        if (k->at > now) {
            s->inbox[w++] = *k;
            continue;
        }
        if (k->n) {
            int e = um_rel_carrier_input(s->rc, k->p, k->n);
            assert_true(e == 0 || e == UM_ETIMEDOUT);
        }
        if (fx.pull && s == &fx.b && !s->closed) { /* answer the query */
            uint8_t p[1200];
            size_t n = 0;
            if (um_rel_carrier_output(s->rc, p, s->cap, &n) == 0) send_pkt(s, k->id, p, n);
        } else if (fx.pull && s == &fx.a) {
            fx.qsent[k->id] = 0;
        }
    }
    s->n_in = w;
}

static void on_link_close(void *ud)
{
    side_t *s = ud;
    s->link_told++;
    s->closed = true; /* the link forgets the carrier */
}

static void fill(side_t *s)
{
    uint8_t buf[3000];
    while (s->tx_done < s->tx_total) {
        size_t k = s->tx_total - s->tx_done < sizeof(buf) ? s->tx_total - s->tx_done : sizeof(buf);
        for (size_t i = 0; i < k; i++)
            buf[i] = pattern(s->seed, s->tx_done + i);
        int e = um_carrier_write(s->c, buf, k);
        if (e == UM_ENOSPC) {
            s->refusals++;
            return; /* the drain callback resumes */
        }
        assert_int_equal(e, 0);
        s->tx_done += k;
        if (s->tx_done == s->tx_total) assert_int_equal(um_carrier_shutdown(s->c), 0);
    }
}

static void on_drain(um_carrier_t *c, void *ud)
{
    side_t *s = ud;
    s->drains++;
    fill(s);
}

static void maybe_finish(void)
{
    if (fx.done) return;
    if (!fx.a.rx_status || !fx.b.rx_status) return;
    if (fx.a.rx_status == UM_EPIPE && !(um_rel_finished(um_rel_carrier_rel(fx.a.rc)) &&
                                        um_rel_finished(um_rel_carrier_rel(fx.b.rc))))
        return;
    fx.done = true;
    um_carrier_close(fx.a.c);
    um_carrier_close(fx.b.c);
    uv_close((uv_handle_t *)&fx.net, NULL);
    uv_close((uv_handle_t *)&fx.watchdog, NULL);
}

static void on_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    side_t *s = ud;
    assert_int_equal(s->rx_status, 0);
    if (status) {
        s->rx_status = status;
        maybe_finish();
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(s->peer->seed, s->rx_done + i)) fail_msg("byte %zu", s->rx_done + i);
    s->rx_done += n;
}

static void on_net(uv_timer_t *t)
{
    deliver(&fx.a);
    deliver(&fx.b);
    pump(&fx.a);
    pump(&fx.b);
    maybe_finish();
}

static void on_watchdog(uv_timer_t *t)
{
    fail_msg("watchdog: a %zu/%zu b %zu/%zu", fx.a.rx_done, fx.b.tx_total, fx.b.rx_done,
             fx.a.tx_total);
}

static void setup_fx(const um_rel_cfg_t *cfg, unsigned drop, size_t total)
{
    memset(&fx, 0, sizeof(fx));
    fx.rng = 0x5eed;
    fx.drop_pct = drop;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    side_t *sides[2] = {&fx.a, &fx.b};
    for (int i = 0; i < 2; i++) {
        side_t *s = sides[i];
        s->peer = sides[1 - i];
        s->inbox = calloc(NPKT, sizeof(pkt_t));
        s->seed = (uint8_t)(0x21 + i);
        s->cap = i ? 1000 : 200; /* small up, larger down */
        s->tx_total = total;
        um_rel_link_t link = {want_output, s};
        assert_int_equal(um_rel_carrier_new(&fx.loop, cfg, &link, &s->rc), 0);
        s->c = um_rel_carrier_base(s->rc);
        um_carrier_set_cbs(s->c, on_read, on_drain, s);
        um_rel_carrier_on_close(s->rc, on_link_close, s);
        um_carrier_set_wq_max(s->c, 64 << 10);
        assert_int_equal(um_carrier_read_start(s->c), 0);
    }
    uv_timer_init(&fx.loop, &fx.net);
    uv_timer_start(&fx.net, on_net, 1, 1);
    uv_timer_init(&fx.loop, &fx.watchdog);
    uv_timer_start(&fx.watchdog, on_watchdog, 120000, 0);
}

static void teardown_fx(void)
{
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    free(fx.a.inbox);
    free(fx.b.inbox);
}

static void test_transfer(void **st)
{
    (void)st;
    um_rel_cfg_t cfg = {.snd_max = 32 << 10, .rcv_max = 64 << 10, .idle_timeout_ms = 10000};
    setup_fx(&cfg, 10, 256 << 10);
    fill(&fx.a);
    fill(&fx.b);
    teardown_fx();
    assert_int_equal(fx.a.rx_status, UM_EPIPE);
    assert_int_equal(fx.b.rx_status, UM_EPIPE);
    assert_int_equal(fx.a.rx_done, 256 << 10);
    assert_int_equal(fx.b.rx_done, 256 << 10);
    assert_true(fx.a.refusals > 0 && fx.a.drains > 0); /* backpressure worked */
    assert_true(fx.a.wants > 0 && fx.b.wants > 0);
    assert_int_equal(fx.a.link_told, 1);
    assert_int_equal(fx.b.link_told, 1);
}

/* The same as dns would drive it: the client sends queries of 100 bytes
 * (empty ones to poll), the server only answers, 1000 bytes at most. */
static void test_transfer_pull(void **st)
{
    (void)st;
    um_rel_cfg_t cfg = {.idle_timeout_ms = 10000};
    setup_fx(&cfg, 5, 128 << 10);
    fx.pull = true;
    fx.a.cap = 100;
    fill(&fx.a);
    fill(&fx.b);
    teardown_fx();
    assert_int_equal(fx.a.rx_status, UM_EPIPE);
    assert_int_equal(fx.b.rx_status, UM_EPIPE);
    assert_int_equal(fx.a.rx_done, 128 << 10);
    assert_int_equal(fx.b.rx_done, 128 << 10);
}

/* The link drops everything: both ends learn it by the idle timeout. */
static void test_dead_link(void **st)
{
    (void)st;
    um_rel_cfg_t cfg = {.idle_timeout_ms = 600};
    setup_fx(&cfg, 100, 1000);
    fill(&fx.a);
    teardown_fx();
    assert_int_equal(fx.a.rx_status, UM_ETIMEDOUT);
    assert_int_equal(fx.b.rx_status, UM_ETIMEDOUT);
}

/* The link goes away: the stream ends with UM_ETIMEDOUT at once, and
 * want_output is not called any more. */
static void test_detach(void **st)
{
    (void)st;
    um_rel_cfg_t cfg = {0};
    setup_fx(&cfg, 0, 0);
    um_rel_carrier_detach_link(fx.a.rc);
    um_rel_carrier_detach_link(fx.b.rc);
    int wa = fx.a.wants;
    assert_int_equal(um_carrier_write(fx.a.c, (const uint8_t *)"x", 1), UM_ETIMEDOUT);
    teardown_fx();
    assert_int_equal(fx.a.rx_status, UM_ETIMEDOUT);
    assert_int_equal(fx.b.rx_status, UM_ETIMEDOUT);
    assert_int_equal(fx.a.wants, wa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_transfer_pull),
        cmocka_unit_test(test_dead_link),
        cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
