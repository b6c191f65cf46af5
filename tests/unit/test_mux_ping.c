/* The PING a mux sends when its session starts (mux.c, um_mux_tick's first
 * call; PROTOCOL.md 6.8): window auto-tuning needs the round trip, and
 * without it the first estimate would wait for the keepalive interval. On
 * the mux API alone, with the wire bytes decoded frame by frame:
 *   - the first bytes a new mux sends carry exactly one PING, ahead of the
 *     first DATA frame of a stream that has bulk queued from the start, and
 *     no second PING follows before the interval;
 *   - its PONG gives both ends an RTT estimate (the sample is the simulated
 *     round trip) after one round trip, while bulk DATA is still queued;
 *   - the same holds when the monotonic clock still reads less than the
 *     ping interval (a router whose service starts seconds after boot);
 *   - um_mux_touch (a new carrier under the session) pings again at once;
 *   - with no keepalive timeout (ping_timeout_ms 0, what resumable sessions
 *     run with) a PONG that comes after later ticks still gives the
 *     estimate (a round trip longer than the tunnel's 500 ms tick: a dns
 *     transport, a queue under load), and an unanswered PING is given up
 *     after the interval, when the next one goes. */
#include "test_mux_pair.h"

#include "mux/frame.h"

enum { BULK = 256 * 1024 };

typedef struct {
    int pings, pongs, data;
    int first_ping, first_data; /* frame index of the first one, -1: none */
    int frames;
    uint32_t data_bytes;
} census_t;

/* Everything m has to send now (bounded), decoded; frames are counted in
 * *c and the raw bytes appended to wire (when not NULL). */
static size_t pull_all(um_mux_t *m, census_t *c, uint8_t *wire, size_t cap)
{
    static uint8_t rec[65536];
    size_t total = 0;
    for (int i = 0; i < 4096; i++) {
        size_t n = um_mux_pull(m, rec, sizeof(rec));
        if (n == 0) break;
        size_t off = 0;
        while (off < n) {
            um_mux_frame_t f;
            size_t used = 0;
            assert_int_equal(um_mux_frame_decode(rec + off, n - off, &f, &used), 0);
            assert_true(used > 0);
            if (f.type == UM_MUX_PING) {
                if (c->first_ping < 0) c->first_ping = c->frames;
                c->pings++;
            } else if (f.type == UM_MUX_PONG) {
                c->pongs++;
            } else if (f.type == UM_MUX_DATA) {
                if (c->first_data < 0) c->first_data = c->frames;
                c->data++;
                c->data_bytes += f.length;
            }
            c->frames++;
            off += used;
        }
        if (wire) {
            assert_true(total + n <= cap);
            memcpy(wire + total, rec, n);
        }
        total += n;
    }
    return total;
}

static void census_init(census_t *c)
{
    memset(c, 0, sizeof(*c));
    c->first_ping = c->first_data = -1;
}

static int pong_sample(um_mux_t *m)
{
    um_mux_event_t ev;
    int sample = -1;
    while (um_mux_poll(m, &ev)) {
        assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        if (ev.type == UM_MUX_EV_PONG) sample = (int)ev.value;
        if (ev.type == UM_MUX_EV_OPENED)
            assert_int_equal(um_mux_stream_accept(m, ev.id, UM_MUX_OK), 0);
    }
    return sample;
}

/* A client that opens a stream and queues bulk before its first pull. */
static void start_client(um_mux_t *m, uint64_t t0, uint32_t *id)
{
    static uint8_t bulk[BULK];
    memset(bulk, 0x5a, sizeof(bulk));
    assert_int_equal(um_mux_tick(m, t0), 0);
    um_addr_t dst = test_dest();
    assert_int_equal(um_mux_stream_open(m, &dst, id), 0);
    size_t acc = 0;
    assert_int_equal(um_mux_stream_write(m, *id, bulk, sizeof(bulk), &acc), 0);
    assert_true(acc > 0);
}

static void check_touch(uint64_t t);

static void check_start(uint64_t t0)
{
    um_mux_config_t cfg;
    um_mux_config_default(&cfg);
    assert_true(cfg.ping_interval_ms > 1000);
    pair_t p;
    pair_init(&p, &cfg, &cfg, 7);
    uint32_t id;
    start_client(p.m[0], t0, &id);
    assert_int_equal(um_mux_rtt_ms(p.m[0]), 0); /* no estimate before a PONG */

    /* The client's first flight: one PING, before the first DATA frame. */
    static uint8_t wire[1 << 20];
    census_t c;
    census_init(&c);
    size_t n = pull_all(p.m[0], &c, wire, sizeof(wire));
    assert_true(n > 0);
    assert_int_equal(c.pings, 1);
    assert_true(c.data > 0);
    assert_true(c.first_ping >= 0 && c.first_ping < c.first_data);

    /* The server starts as the bytes arrive, 15 ms later: its own PING goes
     * with its PONG. */
    assert_int_equal(um_mux_tick(p.m[1], t0 + 15), 0);
    assert_int_equal(um_mux_feed(p.m[1], wire, n), 0);
    census_t s;
    census_init(&s);
    n = pull_all(p.m[1], &s, wire, sizeof(wire));
    assert_int_equal(s.pongs, 1);
    assert_int_equal(s.pings, 1);

    /* Back at the client 30 ms after its PING: the estimate is that round
     * trip, and the stream still has bulk queued behind the window. */
    assert_int_equal(um_mux_tick(p.m[0], t0 + 30), 0);
    assert_int_equal(um_mux_feed(p.m[0], wire, n), 0);
    assert_int_equal(pong_sample(p.m[0]), 30);
    assert_int_equal(um_mux_rtt_ms(p.m[0]), 30);
    um_mux_stream_info_t in;
    assert_int_equal(um_mux_stream_info(p.m[0], id, &in), 0);
    assert_true(in.tx_buffered > 0 || c.data_bytes < BULK);

    /* The client's answer to the server's PING gives the server its own. */
    census_t c2;
    census_init(&c2);
    n = pull_all(p.m[0], &c2, wire, sizeof(wire));
    assert_int_equal(c2.pongs, 1);
    assert_int_equal(c2.pings, 0); /* one PING per interval, not one per tick */
    assert_int_equal(um_mux_tick(p.m[1], t0 + 45), 0);
    assert_int_equal(um_mux_feed(p.m[1], wire, n), 0);
    assert_int_equal(pong_sample(p.m[1]), 30);
    assert_int_equal(um_mux_rtt_ms(p.m[1]), 30);

    /* Ticks within the interval send no further PING. */
    census_t c3;
    census_init(&c3);
    for (uint64_t t = t0 + 100; t < t0 + cfg.ping_interval_ms; t += 500) {
        assert_int_equal(um_mux_tick(p.m[0], t), 0);
        pull_all(p.m[0], &c3, NULL, 0);
    }
    assert_int_equal(c3.pings, 0);
    pair_free(&p);
}

static void test_start_ping(void **state)
{
    (void)state;
    check_start(5000000); /* a machine that has been up for a while */
}

/* CLOCK_MONOTONIC counts from boot: a service started 3 s after boot sees a
 * clock below the 10 s ping interval, and must still ping at once (at start
 * and on a new carrier). */
static void test_start_ping_early_clock(void **state)
{
    (void)state;
    check_start(3000);
    check_start(0);
    check_touch(3000);
}

/* A mux with pings off (ping_interval_ms 0) sends none, at start or later. */
static void test_no_ping_when_off(void **state)
{
    (void)state;
    um_mux_config_t cfg;
    um_mux_config_default(&cfg);
    cfg.ping_interval_ms = 0;
    cfg.ping_timeout_ms = 0;
    um_mux_t *m = um_mux_new(UM_MUX_CLIENT, &cfg);
    assert_non_null(m);
    uint32_t id;
    start_client(m, 5000000, &id);
    census_t c;
    census_init(&c);
    pull_all(m, &c, NULL, 0);
    for (uint64_t t = 5000000; t < 5000000 + 60000; t += 1000) {
        assert_int_equal(um_mux_tick(m, t), 0);
        pull_all(m, &c, NULL, 0);
    }
    assert_int_equal(c.pings, 0);
    um_mux_free(m);
}

/* A new carrier under a running session (resumption) pings at once. */
static void check_touch(uint64_t t)
{
    um_mux_t *m = um_mux_new(UM_MUX_CLIENT, NULL);
    assert_non_null(m);
    assert_int_equal(um_mux_tick(m, t), 0);
    census_t c;
    census_init(&c);
    pull_all(m, &c, NULL, 0);
    assert_int_equal(c.pings, 1);
    /* The PING is lost with the old connection; 2 s later a new one. */
    t += 2000;
    um_mux_touch(m, t);
    assert_int_equal(um_mux_tick(m, t), 0);
    pull_all(m, &c, NULL, 0);
    assert_int_equal(c.pings, 2);
    um_mux_free(m);
}

static void test_touch_pings_again(void **state)
{
    (void)state;
    check_touch(5000000);
}

static void test_slow_pong_without_timeout(void **state)
{
    (void)state;
    um_mux_config_t cfg;
    um_mux_config_default(&cfg);
    cfg.ping_timeout_ms = 0; /* as the client and a resumable server run */
    pair_t p;
    pair_init(&p, &cfg, &cfg, 9);
    const uint64_t t0 = 5000000;
    static uint8_t wire[1 << 16];
    assert_int_equal(um_mux_tick(p.m[0], t0), 0);
    census_t c;
    census_init(&c);
    size_t n = pull_all(p.m[0], &c, wire, sizeof(wire));
    assert_int_equal(c.pings, 1);
    /* The tunnel ticks every 500 ms while the PING is on its way. */
    assert_int_equal(um_mux_tick(p.m[0], t0 + 500), 0);
    assert_int_equal(um_mux_tick(p.m[0], t0 + 1000), 0);
    assert_int_equal(um_mux_tick(p.m[1], t0 + 600), 0);
    assert_int_equal(um_mux_feed(p.m[1], wire, n), 0);
    census_t s;
    census_init(&s);
    n = pull_all(p.m[1], &s, wire, sizeof(wire));
    assert_int_equal(s.pongs, 1);
    assert_int_equal(um_mux_tick(p.m[0], t0 + 1200), 0);
    assert_int_equal(um_mux_feed(p.m[0], wire, n), 0);
    assert_int_equal(pong_sample(p.m[0]), 1200);
    assert_int_equal(um_mux_rtt_ms(p.m[0]), 1200);
    pair_free(&p);

    /* A PING nobody answers blocks no later one: the next goes after the
     * interval. */
    um_mux_t *m = um_mux_new(UM_MUX_CLIENT, &cfg);
    assert_non_null(m);
    census_init(&c);
    assert_int_equal(um_mux_tick(m, t0), 0);
    pull_all(m, &c, NULL, 0);
    for (uint64_t t = t0 + 500; t <= t0 + cfg.ping_interval_ms; t += 500) {
        assert_int_equal(um_mux_tick(m, t), 0);
        pull_all(m, &c, NULL, 0);
    }
    assert_int_equal(c.pings, 2);
    um_mux_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_ping),
        cmocka_unit_test(test_start_ping_early_clock),
        cmocka_unit_test(test_no_ping_when_off),
        cmocka_unit_test(test_touch_pings_again),
        cmocka_unit_test(test_slow_pong_without_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
