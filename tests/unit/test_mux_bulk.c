/* Flow control and scheduling under load:
 *  - a slow reader holds at most its window while other streams go full speed;
 *  - 1 KiB request/response latency on one stream while another carries 1 GiB
 *    (p50/p99 in real time and in wire bytes queued ahead of the request);
 *  - window auto-tuning fills a long fat pipe (simulated delay and bandwidth);
 *  - a DNS-like pipe (small records, 1 s RTT): windows stay put, overhead sane. */
#include "test_mux_pair.h"

#include <stdio.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void accept_all(um_mux_t *m)
{
    um_mux_event_t ev;
    while (um_mux_poll(m, &ev)) {
        assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        if (ev.type == UM_MUX_EV_OPENED) assert_int_equal(um_mux_stream_accept(m, ev.id, 0), 0);
    }
}

/* Reads and discards everything buffered on id; returns bytes, sets *eof. */
static size_t drain_stream(um_mux_t *m, uint32_t id, int *eof)
{
    size_t total = 0;
    for (;;) {
        const uint8_t *p;
        size_t n;
        int r = um_mux_stream_peek(m, id, &p, &n);
        if (r == UM_EPIPE && eof) *eof = 1;
        if (r) return total;
        assert_int_equal(um_mux_stream_consume(m, id, n), 0);
        total += n;
    }
}

static size_t fill(um_mux_t *m, uint32_t id, const uint8_t *buf, size_t bufn, uint64_t left)
{
    size_t total = 0;
    while (left > 0) {
        size_t n = left < bufn ? (size_t)left : bufn, acc;
        assert_int_equal(um_mux_stream_write(m, id, buf, n, &acc), 0);
        total += acc;
        left -= acc;
        if (acc < n) break;
    }
    return total;
}

/* ---- slow reader ---------------------------------------------------------- */

static void test_slow_reader(void **state)
{
    int san = sanitized();
    const uint64_t fast_total = san ? 8u << 20 : 64u << 20;
    um_mux_config_t sc, cc;
    um_mux_config_default(&cc);
    um_mux_config_default(&sc);
    sc.stream_window_init = 128 * 1024;
    sc.stream_window_max = 4 * 1024 * 1024;
    sc.session_window_max = 32 * 1024 * 1024;
    cc.ping_interval_ms = sc.ping_interval_ms = 5;
    pair_t p;
    pair_init(&p, &cc, &sc, 21);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    uint32_t slow, fast[3];
    uint64_t fsent[3] = {0}, frecv[3] = {0};
    int feof[3] = {0};
    uint32_t fwin[3] = {0};
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &slow), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &fast[i]), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    static uint8_t buf[65536];
    memset(buf, 's', sizeof(buf));
    size_t slow_max = 0, slow_read = 0;
    uint64_t t = 1;
    long rounds;
    const long min_rounds = (long)(3 * fast_total / (1u << 20));
    for (rounds = 0; rounds < 100000; rounds++, t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        fill(p.m[0], slow, buf, sizeof(buf), UINT64_MAX); /* never ends */
        for (int i = 0; i < 3; i++) {
            if (fsent[i] < fast_total) {
                fsent[i] += fill(p.m[0], fast[i], buf, sizeof(buf), fast_total - fsent[i]);
                if (fsent[i] == fast_total) um_mux_stream_shutdown(p.m[0], fast[i]);
            }
        }
        pair_move(&p, 0, 1u << 20);
        accept_all(p.m[1]); /* READABLE events: we poll the streams below */
        for (int i = 0; i < 3; i++) {
            um_mux_stream_info_t in;
            if (um_mux_stream_info(p.m[1], fast[i], &in) == 0 && in.rx_window > fwin[i])
                fwin[i] = in.rx_window;
            if (!feof[i]) frecv[i] += drain_stream(p.m[1], fast[i], &feof[i]);
        }
        if (rounds % 4 == 0) {
            size_t got;
            char small[1024];
            if (um_mux_stream_read(p.m[1], slow, small, sizeof(small), &got) == 0) slow_read += got;
        }
        um_mux_stream_info_t si;
        assert_int_equal(um_mux_stream_info(p.m[1], slow, &si), 0);
        if (si.rx_buffered > slow_max) slow_max = si.rx_buffered;
        assert_true(si.rx_buffered <= si.rx_window);
        assert_int_equal(si.rx_window, 128 * 1024); /* a slow reader's window never grows */
        pair_move(&p, 1, 1u << 20);
        um_mux_event_t ev;
        while (um_mux_poll(p.m[0], &ev))
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        if (feof[0] && feof[1] && feof[2]) break;
    }
    printf("slow reader: read %zu bytes, at most %zu buffered (window 131072); "
           "3 fast streams x %llu bytes in %ld rounds (floor %ld), windows grew to %u/%u/%u\n",
           slow_read, slow_max, (unsigned long long)fast_total, rounds, min_rounds, fwin[0],
           fwin[1], fwin[2]);
    for (int i = 0; i < 3; i++) {
        assert_true(feof[i]);
        assert_int_equal(frecv[i], fast_total);
        assert_true(fwin[i] > 128 * 1024); /* auto-tuned upwards */
    }
    assert_true(slow_max <= 128 * 1024);
    assert_true(rounds <= 2 * min_rounds + 200); /* full speed despite the slow one */
    /* the slow stream's sender is held back by its window, not buffering without end */
    um_mux_stream_info_t ci;
    assert_int_equal(um_mux_stream_info(p.m[0], slow, &ci), 0);
    um_mux_config_t dc;
    um_mux_config_default(&dc);
    assert_true(ci.tx_buffered <= dc.send_buf_max); /* the send buffer's bound */
    pair_free(&p);
}

/* ---- latency under bulk --------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_latency_under_bulk(void **state)
{
    int san = sanitized();
    const uint64_t bulk_total = san ? 256ull << 20 : 1ull << 30;
    pair_t p;
    pair_init(&p, NULL, NULL, 23);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    uint32_t bulk, rr;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &bulk), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &rr), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    static uint8_t buf[65536];
    memset(buf, 'b', sizeof(buf));
    uint8_t req[1024], resp[1024], tmp[1024];
    memset(req, 'q', sizeof(req));
    memset(resp, 'r', sizeof(resp));
    enum { MAXS = 200000 };
    uint64_t *lat = calloc(MAXS, sizeof(uint64_t)), *ahead = calloc(MAXS, sizeof(uint64_t));
    assert_non_null(lat);
    assert_non_null(ahead);
    size_t ns = 0, req_got = 0, resp_got = 0;
    uint64_t bulk_sent = 0, bulk_recv = 0, t0 = 0, wire0 = 0, wire_c = 0;
    int state_req = 0, eof = 0; /* 0 idle, 1 request in flight, 2 response in flight */
    uint64_t start = now_ns();
    for (long iter = 0; iter < 100000000 && !eof; iter++) {
        if (bulk_sent < bulk_total) {
            bulk_sent += fill(p.m[0], bulk, buf, sizeof(buf), bulk_total - bulk_sent);
            if (bulk_sent == bulk_total) um_mux_stream_shutdown(p.m[0], bulk);
        }
        if (state_req == 0 && ns < MAXS && bulk_sent < bulk_total) {
            write_all(p.m[0], rr, req, sizeof(req));
            t0 = now_ns();
            wire0 = wire_c;
            req_got = 0;
            state_req = 1;
        }
        /* one record client -> server, then the server reacts */
        size_t n = um_mux_pull(p.m[0], p.buf, p.bufcap);
        if (n) assert_int_equal(um_mux_feed(p.m[1], p.buf, n), 0);
        wire_c += n;
        accept_all(p.m[1]);
        bulk_recv += drain_stream(p.m[1], bulk, &eof);
        if (state_req == 1) {
            size_t got;
            while (req_got < sizeof(req) &&
                   um_mux_stream_read(p.m[1], rr, tmp, sizeof(tmp), &got) == 0)
                req_got += got;
            if (req_got == sizeof(req)) {
                ahead[ns] = wire_c - wire0; /* wire bytes pulled until the request was in */
                write_all(p.m[1], rr, resp, sizeof(resp));
                resp_got = 0;
                state_req = 2;
            }
        }
        pair_move(&p, 1, SIZE_MAX / 2);
        accept_all(p.m[0]);
        if (state_req == 2) {
            size_t got;
            while (resp_got < sizeof(resp) &&
                   um_mux_stream_read(p.m[0], rr, tmp, sizeof(tmp), &got) == 0)
                resp_got += got;
            if (resp_got == sizeof(resp)) {
                lat[ns++] = now_ns() - t0;
                state_req = 0;
            }
        }
        if (n == 0 && bulk_sent == bulk_total && !um_mux_want_pull(p.m[0]) && !eof)
            assert_true(um_mux_want_pull(p.m[1]) || eof);
    }
    double secs = (double)(now_ns() - start) / 1e9;
    assert_true(eof);
    assert_int_equal(bulk_recv, bulk_total);
    assert_true(ns > 100);
    qsort(lat, ns, sizeof(uint64_t), cmp_u64);
    qsort(ahead, ns, sizeof(uint64_t), cmp_u64);
    size_t p50 = ns / 2, p99 = ns * 99 / 100;
    printf("bulk %llu bytes in %.2f s (%.0f MB/s) with %zu request/response pairs of 1 KiB%s\n",
           (unsigned long long)bulk_total, secs, (double)bulk_total / secs / 1e6, ns,
           san ? " (bulk shortened under sanitizers)" : "");
    printf("latency p50 %.1f us p99 %.1f us; wire bytes until the request was in: "
           "p50 %llu p99 %llu max %llu (bulk send buffer: the default)\n",
           (double)lat[p50] / 1e3, (double)lat[p99] / 1e3, (unsigned long long)ahead[p50],
           (unsigned long long)ahead[p99], (unsigned long long)ahead[ns - 1]);
    /* Round-robin: at most about one quantum of bulk goes before the request
     * (a record or two), never the bulk stream's whole send buffer. */
    assert_true(ahead[p99] <= 3 * 16384);
    free(lat);
    free(ahead);
    pair_free(&p);
}

/* ---- simulated paths ------------------------------------------------------ */

typedef struct {
    uint32_t record, rtt_ms, bytes_per_ms;
    uint64_t total;
    uint64_t sim_limit_ms;
    double goodput;     /* out: bytes/ms over the second half */
    uint32_t rx_window; /* out: receiver's window at the end */
    double overhead;    /* out: wire bytes / payload bytes - 1 */
    uint64_t elapsed;   /* out: ms */
} path_t;

/* One stream client -> server over a path with a fixed delay and rate. */
static void run_path(path_t *pa)
{
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.record_size = pa->record;
    c.ping_interval_ms = 2 * pa->rtt_ms; /* RTT known early, pings a small cost */
    c.ping_timeout_ms = 0;
    c.stream_window_max = 16u << 20;
    c.session_window_max = 64u << 20;
    pair_t p;
    pair_init(&p, &c, &c, 31);
    um_addr_t d = test_dest();
    uint32_t id;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &id), 0);
    pq_t q[2];
    memset(q, 0, sizeof(q));
    static uint8_t buf[65536], rec[65536];
    memset(buf, 'x', sizeof(buf));
    uint64_t sent = 0, recvd = 0, half_at = 0, half_bytes = 0, wire = 0;
    int eof = 0;
    double credit[2] = {0, 0};
    uint64_t t;
    for (t = 1; t < pa->sim_limit_ms && !eof; t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        if (sent < pa->total) {
            sent += fill(p.m[0], id, buf, sizeof(buf), pa->total - sent);
            if (sent == pa->total) um_mux_stream_shutdown(p.m[0], id);
        }
        for (int s = 0; s < 2; s++) { /* each direction: rate-limited, delayed */
            credit[s] += pa->bytes_per_ms;
            while (credit[s] >= pa->record) {
                size_t n = um_mux_pull(p.m[s], rec, pa->record);
                if (n == 0) break;
                credit[s] -= (double)n;
                if (s == 0) wire += n;
                pq_push(&q[s], t + pa->rtt_ms / 2, rec, n);
            }
            if (credit[s] > 4.0 * pa->record) credit[s] = 4.0 * pa->record;
            pq_deliver(&q[s], p.m[1 - s], t);
        }
        um_mux_event_t ev;
        while (um_mux_poll(p.m[1], &ev)) {
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
            if (ev.type == UM_MUX_EV_OPENED) um_mux_stream_accept(p.m[1], ev.id, 0);
        }
        um_mux_stream_info_t in;
        if (um_mux_stream_info(p.m[1], id, &in) == 0) pa->rx_window = in.rx_window;
        recvd += drain_stream(p.m[1], id, &eof);
        while (um_mux_poll(p.m[0], &ev))
            assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        if (!half_at && recvd >= pa->total / 2) {
            half_at = t;
            half_bytes = recvd;
        }
    }
    assert_true(eof);
    assert_int_equal(recvd, pa->total);
    pa->elapsed = t;
    pa->goodput = (double)(recvd - half_bytes) / (double)(t - half_at);
    pa->overhead = (double)wire / (double)pa->total - 1.0;
    pq_free(&q[0]);
    pq_free(&q[1]);
    pair_free(&p);
}

static void test_long_fat_pipe(void **state)
{
    /* 100 ms RTT at 50 MB/s: BDP 5 MB, far above the 256 KiB initial window */
    path_t pa = {.record = 16384,
                 .rtt_ms = 100,
                 .bytes_per_ms = 50000,
                 .total = sanitized() ? 100u << 20 : 200u << 20,
                 .sim_limit_ms = 600000};
    run_path(&pa);
    printf("long fat pipe (100 ms, 50 MB/s): %llu bytes in %llu ms, goodput over the second "
           "half %.0f bytes/ms (%.0f%% of the line), window grew to %u, overhead %.2f%%\n",
           (unsigned long long)pa.total, (unsigned long long)pa.elapsed, pa.goodput,
           100.0 * pa.goodput / pa.bytes_per_ms, pa.rx_window, 100.0 * pa.overhead);
    /* Without auto-tuning a 256 KiB window gives 2.6 bytes/us: 5% of the line. */
    assert_true(pa.goodput > 0.8 * pa.bytes_per_ms);
    assert_true(pa.rx_window >= 4u << 20);
}

static void test_dns_like_pipe(void **state)
{
    /* 220-byte records, 1 s RTT, 2 KB/s: tiny BDP, windows must stay put */
    path_t pa = {.record = 220,
                 .rtt_ms = 1000,
                 .bytes_per_ms = 2,
                 .total = 64 * 1024,
                 .sim_limit_ms = 400000};
    run_path(&pa);
    printf("dns-like pipe (220 B records, 1 s RTT, 2 KB/s): %llu bytes in %llu ms, goodput "
           "%.2f bytes/ms, window %u, overhead %.2f%%\n",
           (unsigned long long)pa.total, (unsigned long long)pa.elapsed, pa.goodput, pa.rx_window,
           100.0 * pa.overhead);
    assert_true(pa.rx_window <= 256 * 1024); /* never grown */
    assert_true(pa.overhead < 0.06);         /* 8-byte headers in 220-byte records, + pings */
    assert_true(pa.goodput > 0.85 * pa.bytes_per_ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test(test_latency_under_bulk),
        cmocka_unit_test(test_long_fat_pipe),
        cmocka_unit_test(test_dns_like_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
