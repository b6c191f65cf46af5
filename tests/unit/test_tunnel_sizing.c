/* Buffer sizing from the measured bandwidth-delay product (issue 15): the
 * resend buffer (um_tunnel_resend_size, what the tunnel applies every tick),
 * the mux's receive windows on simulated paths, the bound on bytes queued to
 * send over many streams, the storage idle streams hold, and the read share
 * of connectors (util/rdshare). Every case states what a fixed size would
 * do instead, and fails with it. */
#include "test_mux_pair.h"

#include <stdio.h>

#include "tunnel/sizing.h"
#include "tunnel/tunnel.h"
#include "util/rdshare.h"

#define TICK_MS 500 /* the tunnel's timer */

/* ---- the resend buffer ------------------------------------------------- */

/* One tick over a path of `rate` bytes/ms and `rtt` ms: a sender whose
 * unacknowledged bytes are bounded by `bound` delivers min(rate, bound/rtt).
 * Returns the bytes acknowledged in the tick. */
static uint64_t path_tick(size_t bound, uint64_t rate, uint64_t rtt)
{
    uint64_t per_ms = bound / rtt;
    if (per_ms > rate) per_ms = rate;
    return per_ms * TICK_MS;
}

/* A short path (loopback: 1 GB/s, 1 ms; product 1 MB) and an idle session
 * keep the bound at its start size: a buffer sized for the worst path up
 * front (the ceiling, 16 MiB) fails here. */
static void test_resend_small_at_low_bdp(void **state)
{
    (void)state;
    size_t b = UM_TUNNEL_SESS_TX_START;
    for (int i = 0; i < 40; i++) {
        uint64_t acked = i < 20 ? path_tick(b, 1000000, 1) : 0; /* then idle */
        b = um_tunnel_resend_size(b, UM_TUNNEL_SESS_TX_START, UM_TUNNEL_SESS_TX_MAX, acked, 1,
                                  TICK_MS);
        assert_int_equal(b, UM_TUNNEL_SESS_TX_START);
    }
    /* A first tick with nothing measured changes nothing. */
    assert_int_equal(
        um_tunnel_resend_size(b, UM_TUNNEL_SESS_TX_START, UM_TUNNEL_SESS_TX_MAX, 12345, 1, 0), b);
}

/* A long fat path (100 ms at 50 MB/s: 5 MB in flight) limits a 2 MiB bound
 * to 20 MB/s; the bound doubles per tick until the path is the limit, and
 * settles near twice the product, not at the ceiling. A fixed 2 MiB stays
 * at 40% of the line. */
static void test_resend_grows_under_high_bdp(void **state)
{
    (void)state;
    const uint64_t rate = 50000, rtt = 100, bdp = rate * rtt;
    size_t b = UM_TUNNEL_SESS_TX_START;
    int reached = -1;
    uint64_t acked = 0;
    for (int i = 0; i < 20; i++) {
        acked = path_tick(b, rate, rtt);
        size_t nb = um_tunnel_resend_size(b, UM_TUNNEL_SESS_TX_START, UM_TUNNEL_SESS_TX_MAX, acked,
                                          rtt, TICK_MS);
        assert_true(nb <= 2 * b + 1); /* at most doubles per tick */
        b = nb;
        if (reached < 0 && b >= bdp) reached = i;
    }
    printf("resend bound on a 5 MB path: %zu KiB (product reached after %d ticks)\n", b >> 10,
           reached + 1);
    assert_true(reached >= 0 && reached < 4);
    assert_true(b >= bdp);
    assert_true(b <= 2 * bdp + (1u << 20)); /* follows the product, not the ceiling */
    assert_true(acked == rate * TICK_MS);   /* the path is full */
}

/* When the path shortens (or the session goes idle) the bound comes back to
 * its start size, a quarter at most per tick (so a burst after a pause still
 * finds room). A bound that only grows stays at 16 MiB. */
static void test_resend_shrinks_back(void **state)
{
    (void)state;
    size_t b = UM_TUNNEL_SESS_TX_MAX;
    int back = -1;
    for (int i = 0; i < 20; i++) {
        uint64_t acked = i % 2 ? 0 : path_tick(b, 1000000, 1);
        size_t nb = um_tunnel_resend_size(b, UM_TUNNEL_SESS_TX_START, UM_TUNNEL_SESS_TX_MAX, acked,
                                          1, TICK_MS);
        assert_true(nb <= b);
        assert_true(nb >= b - b / 4);
        b = nb;
        if (back < 0 && b == UM_TUNNEL_SESS_TX_START) back = i;
    }
    assert_true(back >= 0 && back < 10);
    /* The ceiling bounds the growth, and a ceiling below the start wins. */
    assert_int_equal(um_tunnel_resend_size(1u << 20, 2u << 20, 1u << 20, 1ull << 40, 100, 500),
                     1u << 20);
}

/* ---- receive windows on a simulated path -------------------------------- */

/* One stream client -> server, `total` bytes over rtt ms at rate bytes/ms;
 * the receiver reads at once. Out: the receiver's largest window and the
 * goodput (bytes/ms) over the second half. */
static void run_path(uint32_t rtt, uint32_t rate, uint64_t total, uint32_t *win_max,
                     double *goodput)
{
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.ping_interval_ms = 2 * rtt; /* the RTT known early */
    pair_t p;
    pair_init(&p, &c, &c, 77);
    um_addr_t d = test_dest();
    uint32_t id;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &id), 0);
    pq_t q[2];
    memset(q, 0, sizeof(q));
    static uint8_t buf[65536], rec[16384];
    memset(buf, 'x', sizeof(buf));
    uint64_t sent = 0, recvd = 0, half_at = 0, half_bytes = 0, t;
    double credit[2] = {0, 0};
    *win_max = 0;
    for (t = 1; t < 600000 && recvd < total; t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        while (sent < total) {
            size_t n = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf), acc;
            assert_int_equal(um_mux_stream_write(p.m[0], id, buf, n, &acc), 0);
            sent += acc;
            if (acc < n) break;
        }
        for (int s = 0; s < 2; s++) {
            credit[s] += rate;
            while (credit[s] >= sizeof(rec)) {
                size_t n = um_mux_pull(p.m[s], rec, sizeof(rec));
                if (n == 0) break;
                credit[s] -= (double)n;
                pq_push(&q[s], t + rtt / 2, rec, n);
            }
            if (credit[s] > 4.0 * sizeof(rec)) credit[s] = 4.0 * sizeof(rec);
            pq_deliver(&q[s], p.m[1 - s], t);
        }
        um_mux_event_t ev;
        while (um_mux_poll(p.m[1], &ev)) {
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
            if (ev.type == UM_MUX_EV_OPENED) um_mux_stream_accept(p.m[1], ev.id, 0);
        }
        while (um_mux_poll(p.m[0], &ev))
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        um_mux_stream_info_t in;
        if (um_mux_stream_info(p.m[1], id, &in) == 0 && in.rx_window > *win_max)
            *win_max = in.rx_window;
        for (;;) {
            const uint8_t *pp;
            size_t n;
            if (um_mux_stream_peek(p.m[1], id, &pp, &n) != 0) break;
            assert_int_equal(um_mux_stream_consume(p.m[1], id, n), 0);
            recvd += n;
        }
        if (!half_at && recvd >= total / 2) {
            half_at = t;
            half_bytes = recvd;
        }
    }
    assert_int_equal(recvd, total);
    *goodput = (double)(recvd - half_bytes) / (double)(t - half_at);
    pq_free(&q[0]);
    pq_free(&q[1]);
    pair_free(&p);
}

/* 40 ms at 25 MB/s (1 MB in flight, four times the initial window): the
 * window grows until the path is full, and stops within a few times the
 * product, far from its 16 MiB ceiling. A fixed 256 KiB window runs at a
 * quarter of the line; a window granted at its ceiling up front (16 MiB)
 * fails the upper bound. */
static void test_windows_follow_bdp(void **state)
{
    (void)state;
    const uint32_t rtt = 40, rate = 25000;
    const uint64_t bdp = (uint64_t)rtt * rate;
    uint32_t win;
    double gp;
    run_path(rtt, rate, sanitized() ? 48u << 20 : 96u << 20, &win, &gp);
    printf("40 ms x 25 MB/s: window %u KiB (product %llu KiB), goodput %.0f%% of the line\n",
           win >> 10, (unsigned long long)(bdp >> 10), 100.0 * gp / rate);
    assert_true(gp > 0.8 * rate);
    assert_true(win >= bdp);
    assert_true(win <= 4 * bdp + (256u << 10));
}

/* A short path (2 ms at 5 MB/s: 10 KB in flight) never grows the window
 * past its initial size, and still runs at line rate. A window granted at
 * its ceiling up front fails here. */
static void test_windows_stay_at_low_bdp(void **state)
{
    (void)state;
    uint32_t win;
    double gp;
    run_path(2, 5000, 8u << 20, &win, &gp);
    printf("2 ms x 5 MB/s: window %u KiB, goodput %.0f%% of the line\n", win >> 10,
           100.0 * gp / 5000);
    assert_true(win <= 256u << 10); /* the initial window (the product is 10 KB) */
    assert_true(gp > 0.8 * 5000);
}

/* ---- many streams ------------------------------------------------------ */

#define NS    1000
#define CHUNK 4096

/* Opens NS client streams, the server accepts them all (the server's side
 * then has NS streams to send on, as in 1000 downloads). */
static void open_many(pair_t *p, uint32_t *ids, size_t ns)
{
    um_addr_t d = test_dest();
    for (size_t i = 0; i < ns; i++)
        assert_int_equal(um_mux_stream_open(p->m[0], &d, &ids[i]), 0);
    for (int round = 0; round < 100; round++) {
        pair_settle(p);
        um_mux_event_t ev;
        int any = 0;
        while (um_mux_poll(p->m[1], &ev))
            if (ev.type == UM_MUX_EV_OPENED) {
                assert_int_equal(um_mux_stream_accept(p->m[1], ev.id, 0), 0);
                any = 1;
            }
        while (um_mux_poll(p->m[0], &ev))
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        if (!any && round > 0) break;
    }
    pair_settle(p);
}

static size_t queued_total(um_mux_t *m, const uint32_t *ids, size_t ns)
{
    size_t q = 0;
    for (size_t i = 0; i < ns; i++) {
        um_mux_stream_info_t in;
        if (um_mux_stream_info(m, ids[i], &in) == 0) q += in.tx_buffered;
    }
    return q;
}

/* Writers that stop at tx_full, as the relay does, on 1000 streams with
 * 256 KiB of window each: together they queue about send_total_max plus a
 * chunk each, not 1000 windows (a per-stream bound alone lets them queue
 * 272 MB). And the bytes still all get through. */
static void test_send_total_bounds_many_streams(void **state)
{
    (void)state;
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.max_streams = 2 * NS;
    c.max_pending_opens = 2 * NS;
    pair_t p;
    pair_init(&p, &c, &c, 5);
    p.rechunk = 0;
    static uint32_t ids[NS];
    static uint64_t left[NS], got[NS];
    open_many(&p, ids, NS);
    static uint8_t chunk[CHUNK];
    memset(chunk, 'y', sizeof(chunk));
    const uint64_t each = 64 * 1024;
    for (size_t i = 0; i < NS; i++)
        left[i] = each;
    size_t peak = 0, done = 0;
    for (int round = 0; round < 20000 && done < NS; round++) {
        for (size_t i = 0; i < NS; i++) { /* every writer until full */
            um_mux_stream_info_t in;
            while (left[i] && um_mux_stream_info(p.m[1], ids[i], &in) == 0 && !in.tx_full) {
                size_t n = left[i] < CHUNK ? (size_t)left[i] : CHUNK, acc;
                assert_int_equal(um_mux_stream_write(p.m[1], ids[i], chunk, n, &acc), 0);
                left[i] -= acc;
                if (acc < n) break;
            }
        }
        size_t q = queued_total(p.m[1], ids, NS);
        if (q > peak) peak = q;
        pair_move(&p, 1, 256 * 1024); /* the carrier takes 256 KiB per turn */
        pair_move(&p, 0, SIZE_MAX / 2);
        done = 0;
        for (size_t i = 0; i < NS; i++) {
            const uint8_t *pp;
            size_t n;
            while (um_mux_stream_peek(p.m[0], ids[i], &pp, &n) == 0) {
                assert_int_equal(um_mux_stream_consume(p.m[0], ids[i], n), 0);
                got[i] += n;
            }
            if (got[i] == each) done++;
        }
        um_mux_event_t ev;
        while (um_mux_poll(p.m[0], &ev))
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        while (um_mux_poll(p.m[1], &ev))
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
    }
    printf("%d streams x 64 KiB: at most %zu KiB queued to send at once (bound %u KiB)\n", NS,
           peak >> 10, c.send_total_max >> 10);
    assert_int_equal(done, NS);
    assert_true(peak <= c.send_total_max + (size_t)NS * CHUNK + 16384);
    pair_free(&p);
}

/* Streams that carried data and went idle hold no storage after a tick
 * with nothing appended: an idle stream costs its struct, whatever it
 * carried before. Storage kept for good (a buffer allocated up front, or
 * never given back) fails here. */
static void test_idle_streams_hold_no_storage(void **state)
{
    (void)state;
    enum { N = 64 };
    pair_t p;
    pair_init(&p, NULL, NULL, 9);
    uint32_t ids[N];
    open_many(&p, ids, N);
    static uint8_t data[48 * 1024];
    memset(data, 'z', sizeof(data));
    for (size_t i = 0; i < N; i++) {
        write_all(p.m[0], ids[i], data, sizeof(data));
        write_all(p.m[1], ids[i], data, sizeof(data));
    }
    pair_settle(&p);
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < N; i++) {
            const uint8_t *pp;
            size_t n, total = 0;
            while (um_mux_stream_peek(p.m[side], ids[i], &pp, &n) == 0) {
                assert_int_equal(um_mux_stream_consume(p.m[side], ids[i], n), 0);
                total += n;
            }
            assert_int_equal(total, sizeof(data));
        }
    pair_settle(&p); /* window updates */
    size_t before = 0;
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < N; i++) {
            um_mux_stream_info_t in;
            assert_int_equal(um_mux_stream_info(p.m[side], ids[i], &in), 0);
            before += in.rx_storage + in.tx_storage;
        }
    for (uint64_t t = 1000; t <= 3000; t += 500) { /* the tunnel's ticks */
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        pair_settle(&p);
    }
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < N; i++) {
            um_mux_stream_info_t in;
            assert_int_equal(um_mux_stream_info(p.m[side], ids[i], &in), 0);
            assert_int_equal(in.rx_storage, 0);
            assert_int_equal(in.tx_storage, 0);
        }
    printf("%d idle streams: %zu KiB of storage after the transfer, none after two ticks\n", N,
           before >> 10);
    assert_true(before > 0); /* they did hold some while busy */
    pair_free(&p);
}

/* Under send pressure (the streams together queue more than half of
 * send_total_max) a stream whose queue empties gives its storage back at
 * once, not at the next tick: 1000 streams waiting their turn hold none. */
static void test_emptied_stream_releases_under_pressure(void **state)
{
    (void)state;
    enum { N = 128 };
    um_mux_config_t c;
    um_mux_config_default(&c);
    pair_t p;
    pair_init(&p, &c, &c, 11);
    p.rechunk = 0;
    uint32_t ids[N];
    open_many(&p, ids, N);
    static uint8_t data[24 * 1024]; /* a record and a half each */
    memset(data, 'w', sizeof(data));
    for (size_t i = 0; i < N; i++) /* 3 MiB queued: above send_total_max */
        write_all(p.m[1], ids[i], data, sizeof(data));
    /* One record at a time until some stream's queue is empty. */
    uint8_t rec[16384];
    um_mux_stream_info_t in;
    int empty = -1;
    for (int i = 0; i < 1000 && empty < 0; i++) {
        size_t n = um_mux_pull(p.m[1], rec, sizeof(rec));
        assert_true(n > 0);
        assert_int_equal(um_mux_feed(p.m[0], rec, n), 0);
        pair_move(&p, 0, SIZE_MAX / 2); /* the session window's updates */
        for (int k = 0; k < N && empty < 0; k++) {
            assert_int_equal(um_mux_stream_info(p.m[1], ids[k], &in), 0);
            if (in.tx_buffered == 0) empty = k;
        }
    }
    assert_true(empty >= 0);
    size_t others = queued_total(p.m[1], ids, N);
    printf("stream %d emptied first, %zu KiB still queued on the others; its storage: %zu\n", empty,
           others >> 10, in.tx_storage);
    assert_true(others > c.send_total_max / 2);
    assert_int_equal(in.tx_storage, 0);
    pair_free(&p);
}

/* ---- read shares --------------------------------------------------------- */

/* One connection reading gets whole reads; a thousand that start reading
 * at once get small ones, so their first reads together bring in a few MiB
 * rather than 1000 x 64 KiB; when they stop, the one left gets whole reads
 * again within two periods. A fixed read size fails the middle part. */
static void test_read_share(void **state)
{
    (void)state;
    um_rdshare_t r = {0};
    static uint64_t stamp[1000];
    uint64_t now = 10000;
    const size_t total = 1u << 20, lo = 4096, hi = 65536;
    for (int i = 0; i < 10; i++)
        assert_int_equal(um_rdshare_next(&r, &stamp[0], now + (uint64_t)i * 30, total, lo, hi), hi);
    now += 1000;
    size_t first = 0;
    for (size_t i = 0; i < 1000; i++) {
        size_t sz = um_rdshare_next(&r, &stamp[i], now, total, lo, hi);
        assert_true(sz >= lo && sz <= hi);
        first += sz;
    }
    printf("first reads of 1000 connections starting at once: %zu KiB (fixed: %zu KiB)\n",
           first >> 10, (1000 * hi) >> 10);
    assert_true(first <= 8u << 20);
    assert_int_equal(um_rdshare_next(&r, &stamp[1], now + 10, total, lo, hi), lo);
    /* Only connection 0 reads from now on. */
    size_t sz = 0;
    for (uint64_t t = now + UM_RDSHARE_PERIOD_MS; t <= now + 3 * UM_RDSHARE_PERIOD_MS; t += 10)
        sz = um_rdshare_next(&r, &stamp[0], t, total, lo, hi);
    assert_int_equal(sz, hi);
}

/* ---- the carrier's receive buffer --------------------------------------- */

#define TICK_US ((uint64_t)TICK_MS * 1000)
#define RCV_CAP (8u << 20) /* net.core.rmem_max 4 MiB, doubled by the kernel */

/* One tick of a path of `rate` bytes/us and least round trip `rtt` us, to a
 * receiver whose socket buffer is `buf`: at most buf per round trip arrives
 * (the reader's own delay only lowers that). */
static uint64_t rcv_tick(size_t buf, uint64_t rate, uint64_t rtt)
{
    uint64_t per_us = buf / rtt;
    if (per_us > rate) per_us = rate;
    return per_us * TICK_US;
}

/* Loopback (1.4 GB/s, a least round trip of 30 us: a product of 42 KB) is
 * bounded at the floor from the first look on, busy or idle: the kernel's
 * autotuned buffer (32 MiB here, 1-2 MB queued behind a bulk transfer)
 * fails here. */
static void test_rcvbuf_floor_on_loopback(void **state)
{
    (void)state;
    const size_t lo = UM_TUNNEL_RCV_FLOOR;
    size_t b = um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 0, 30, 0); /* at attach: nothing measured */
    assert_int_equal(b, lo);
    for (int i = 0; i < 40; i++) {
        uint64_t got = i < 20 ? 1400 * TICK_US : 0; /* then idle */
        b = um_tunnel_rcvbuf_size(b, lo, RCV_CAP, got, 30, TICK_US);
        assert_int_equal(b, lo);
    }
    /* No round trip known yet: nothing decided. */
    assert_int_equal(um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 12345, 0, TICK_US), 0);
    assert_int_equal(um_tunnel_rcvbuf_size(b, lo, RCV_CAP, 12345, 0, TICK_US), b);
    /* A kernel that lets us set less than the floor: what it lets us set,
     * for a path fast enough at any rate (2 x 4 GB/s x 10 us = 80 KB). */
    assert_int_equal(um_tunnel_rcvbuf_size(0, lo, 256u << 10, 0, 10, 0), 256u << 10);
}

/* The long fat path of bench/delay.sh (50 ms, 200 Mbit/s: a product of
 * 1.25 MB): a bound at the floor would deliver 10.5 MB/s, 42% of the line,
 * and the buffer could never grow past the kernel's cap at the fastest
 * rate, so the path is not bounded at all (0: the kernel's autotuning keeps
 * it, as without us). */
static void test_rcvbuf_long_path_left_alone(void **state)
{
    (void)state;
    const size_t lo = UM_TUNNEL_RCV_FLOOR;
    assert_true(rcv_tick(lo, 25, 50000) < 25 * TICK_US / 2); /* what a floor would do */
    assert_int_equal(um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 0, 50000, 0), 0);
    assert_int_equal(um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 25 * TICK_US, 50000, TICK_US), 0);
    /* A LAN round trip at the edge: 2 x 4 GB/s x 1 ms = 8 MB, within the
     * cap: bounded; 1.1 ms is not. */
    assert_int_equal(um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 0, 1000, 0), lo);
    assert_int_equal(um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 0, 1100, 0), 0);
}

/* A bounded path whose rate grows (a LAN of 1 ms, idle when it was bounded,
 * then 4 GB/s, as much as the buffer lets through): the buffer
 * doubles per tick while it is the limit, reaches the product within a few
 * ticks, and never shrinks (the kernel's autotuning is off for good). A
 * buffer fixed at the floor stays at 13% of the line. */
static void test_rcvbuf_grows_with_product(void **state)
{
    (void)state;
    const size_t lo = UM_TUNNEL_RCV_FLOOR;
    const uint64_t rate = 4000, rtt = 1000, bdp = rate * rtt; /* 4 MB */
    size_t b = um_tunnel_rcvbuf_size(0, lo, RCV_CAP, 0, rtt, 0);
    assert_int_equal(b, lo);
    assert_true(rcv_tick(lo, rate, rtt) * 7 < rate * TICK_US); /* a fixed floor */
    int reached = -1;
    for (int i = 0; i < 20; i++) {
        uint64_t got = rcv_tick(b, rate, rtt);
        if (reached < 0 && got >= rate * TICK_US) reached = i;
        size_t nb = um_tunnel_rcvbuf_size(b, lo, RCV_CAP, got, rtt, TICK_US);
        assert_true(nb >= b);
        b = nb;
    }
    printf("1 ms at 4 GB/s: the full rate after %d ticks, buffer %zu KiB (product %llu KiB)\n",
           reached, b >> 10, (unsigned long long)(bdp >> 10));
    assert_true(reached >= 0 && reached <= 5);
    assert_true(b >= bdp && b <= RCV_CAP);
    /* Idle afterwards: it stays. */
    assert_int_equal(um_tunnel_rcvbuf_size(b, lo, RCV_CAP, 0, rtt, TICK_US), b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_small_at_low_bdp),
        cmocka_unit_test(test_resend_grows_under_high_bdp),
        cmocka_unit_test(test_resend_shrinks_back),
        cmocka_unit_test(test_windows_follow_bdp),
        cmocka_unit_test(test_windows_stay_at_low_bdp),
        cmocka_unit_test(test_send_total_bounds_many_streams),
        cmocka_unit_test(test_idle_streams_hold_no_storage),
        cmocka_unit_test(test_emptied_stream_releases_under_pressure),
        cmocka_unit_test(test_read_share),
        cmocka_unit_test(test_rcvbuf_floor_on_loopback),
        cmocka_unit_test(test_rcvbuf_long_path_left_alone),
        cmocka_unit_test(test_rcvbuf_grows_with_product),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
