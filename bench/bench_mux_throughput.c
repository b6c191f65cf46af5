/* In-memory mux pair: throughput (bytes/s), frame overhead (%), memory per
 * idle stream (bytes, measured with mallinfo2 around opening N streams). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mux/mux.h"
#include "util/err.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t wire[65536], src[65536];

/* Moves everything pending from a to b; returns wire bytes. */
static size_t move(um_mux_t *a, um_mux_t *b)
{
    size_t total = 0, n;
    while ((n = um_mux_pull(a, wire, sizeof(wire))) > 0) {
        if (um_mux_feed(b, wire, n) != 0) {
            fprintf(stderr, "feed failed\n");
            exit(1);
        }
        total += n;
    }
    return total;
}

static void events(um_mux_t *m)
{
    um_mux_event_t ev;
    while (um_mux_poll(m, &ev))
        if (ev.type == UM_MUX_EV_OPENED) um_mux_stream_accept(m, ev.id, UM_MUX_OK);
}

static um_addr_t dest(void)
{
    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 80;
    return d;
}

/* nstreams streams each carrying total/nstreams bytes client -> server. */
static void throughput(int nstreams, uint64_t total, uint32_t record)
{
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.record_size = record;
    um_mux_t *a = um_mux_new(UM_MUX_CLIENT, &c), *b = um_mux_new(UM_MUX_SERVER, &c);
    uint32_t id[64];
    uint64_t left[64], got = 0, wire_bytes = 0;
    um_addr_t d = dest();
    for (int i = 0; i < nstreams; i++) {
        um_mux_stream_open(a, &d, &id[i]);
        left[i] = total / (uint64_t)nstreams;
    }
    double t0 = now_s();
    while (got < total) {
        for (int i = 0; i < nstreams; i++) {
            while (left[i] > 0) {
                size_t n = left[i] < sizeof(src) ? (size_t)left[i] : sizeof(src), acc;
                um_mux_stream_write(a, id[i], src, n, &acc);
                left[i] -= acc;
                if (acc < n) break;
            }
        }
        /* one record at a time, the receiver reading as it arrives */
        for (int k = 0; k < 64; k++) {
            size_t n = um_mux_pull(a, wire, sizeof(wire));
            if (n == 0) break;
            um_mux_feed(b, wire, n);
            wire_bytes += n;
            events(b);
            for (int i = 0; i < nstreams; i++) {
                const uint8_t *p;
                size_t r;
                while (um_mux_stream_peek(b, id[i], &p, &r) == 0) {
                    um_mux_stream_consume(b, id[i], r);
                    got += r;
                }
            }
        }
        move(b, a);
        events(a);
    }
    double dt = now_s() - t0;
    printf("throughput: %2d stream(s), %5u-byte records: %.0f MB/s (%llu bytes in %.2f s), "
           "frame overhead %.3f%%\n",
           nstreams, record, (double)total / dt / 1e6, (unsigned long long)total, dt,
           100.0 * ((double)wire_bytes / (double)total - 1.0));
    um_mux_free(a);
    um_mux_free(b);
}

static void idle_memory(int n)
{
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.max_streams = (uint32_t)n + 10;
    c.max_pending_opens = (uint32_t)n + 10;
    um_mux_t *a = um_mux_new(UM_MUX_CLIENT, &c), *b = um_mux_new(UM_MUX_SERVER, &c);
    um_addr_t d = dest();
    move(a, b);
    move(b, a);
    malloc_trim(0);
    struct mallinfo2 m0 = mallinfo2();
    for (int i = 0; i < n; i++) {
        uint32_t id;
        um_mux_stream_open(a, &d, &id);
    }
    /* both sides settle: opens sent, accepted, results and grants back */
    for (int k = 0; k < 4; k++) {
        move(a, b);
        events(b);
        move(b, a);
        events(a);
    }
    um_mux_tick(a, 1);
    um_mux_tick(b, 1);
    struct mallinfo2 m1 = mallinfo2();
    double per = (double)(m1.uordblks - m0.uordblks) / n / 2.0;
    printf("memory per idle stream: %.0f bytes (%d established streams on each side, "
           "heap in use %zu -> %zu; both ends counted, divided by 2)\n",
           per, n, m0.uordblks, m1.uordblks);
    /* the same streams after each carried 1 KiB both ways, then one tick */
    for (int i = 0; i < n; i++) {
        uint32_t id = 1 + 2 * (uint32_t)i;
        size_t acc;
        um_mux_stream_write(a, id, src, 1024, &acc);
        um_mux_stream_write(b, id, src, 1024, &acc);
    }
    for (int k = 0; k < 100 && (um_mux_want_pull(a) || um_mux_want_pull(b)); k++) {
        move(a, b);
        move(b, a);
        for (int i = 0; i < n; i++) {
            uint32_t id = 1 + 2 * (uint32_t)i;
            size_t got;
            while (um_mux_stream_read(a, id, wire, sizeof(wire), &got) == 0) {
            }
            while (um_mux_stream_read(b, id, wire, sizeof(wire), &got) == 0) {
            }
        }
        events(a);
        events(b);
    }
    um_mux_tick(a, 2);
    um_mux_tick(b, 2);
    struct mallinfo2 m2 = mallinfo2();
    printf("memory per idle stream after carrying 1 KiB each way and one tick: %.0f bytes\n",
           (double)(m2.uordblks - m0.uordblks) / n / 2.0);
    um_mux_free(a);
    um_mux_free(b);
}

int main(void)
{
    memset(src, 0x5a, sizeof(src));
    throughput(1, 2ull << 30, 16384);
    throughput(16, 2ull << 30, 16384);
    throughput(1, 256ull << 20, 1400);
    throughput(1, 16ull << 20, 220);
    idle_memory(10000);
    return 0;
}
