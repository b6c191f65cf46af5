/* 1000 concurrent streams, random sizes from 0 to 4 MiB in both directions,
 * random write chunking and random re-chunking of the wire bytes (1 byte
 * upwards per delivery); the SHA-256 of what each side sent equals the
 * SHA-256 of what the other side received, in both directions. */
#include "test_mux_pair.h"

#include <sodium.h>
#include <stdio.h>
#include <time.h>

#define NSTREAMS 1000

typedef struct {
    uint32_t id;
    uint64_t size[2];  /* [0] client->server, [1] server->client */
    uint64_t sent[2];  /* by the sending side of each direction */
    uint64_t recvd[2]; /* by the receiving side */
    int fin_sent[2], eof[2], accepted;
    crypto_hash_sha256_state tx[2], rx[2];
} sctx_t;

/* The byte at offset o of direction d of stream i: 8-byte blocks of a hash. */
static void gen(uint64_t seed, uint64_t off, uint8_t *out, size_t n)
{
    uint64_t blk = off / 8, skip = off % 8;
    size_t k = 0;
    while (k < n) {
        uint64_t z = (seed ^ (blk * 0x9E3779B97F4A7C15ULL)) + 0x632BE59BD9B4E019ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        uint8_t b[8];
        memcpy(b, &z, 8);
        for (size_t j = skip; j < 8 && k < n; j++)
            out[k++] = b[j];
        skip = 0;
        blk++;
    }
}

static uint64_t pick_size(uint64_t *rng, uint64_t max)
{
    uint64_t r = rnd(rng) % 100;
    if (r < 4) return 0;
    if (r < 7) return max;
    /* log-uniform between 1 and max: many small streams, some big ones */
    double e = (double)(rnd(rng) % 1000001) / 1000000.0;
    double lg = 0;
    for (uint64_t m = max; m > 1; m >>= 1)
        lg += 1;
    uint64_t v = 1;
    double x = e * lg;
    while (x >= 1) {
        v <<= 1;
        x -= 1;
    }
    v += (uint64_t)((double)v * x);
    return v > max ? max : v;
}

static size_t pick_chunk(uint64_t *rng)
{
    uint64_t r = rnd(rng) % 100;
    if (r < 20) return (size_t)rnd_range(rng, 1, 64);
    if (r < 60) return (size_t)rnd_range(rng, 1, 4096);
    return (size_t)rnd_range(rng, 1, 65536);
}

static sctx_t *ctx_of(sctx_t *c, uint32_t id)
{
    uint32_t i = (id - 1) / 2;
    assert_true(i < NSTREAMS);
    assert_int_equal(c[i].id, id);
    return &c[i];
}

/* side: 0 client, 1 server. Writes a random chunk of direction `side`. */
static void write_some(pair_t *p, sctx_t *s, int side, uint8_t *scratch)
{
    if (s->fin_sent[side] || (side == 1 && !s->accepted)) return;
    uint64_t left = s->size[side] - s->sent[side];
    if (left > 0) {
        size_t n = pick_chunk(&p->rng);
        if (n > left) n = (size_t)left;
        gen(s->id * 2 + (uint64_t)side, s->sent[side], scratch, n);
        size_t acc;
        assert_int_equal(um_mux_stream_write(p->m[side], s->id, scratch, n, &acc), 0);
        crypto_hash_sha256_update(&s->tx[side], scratch, acc);
        s->sent[side] += acc;
        left -= acc;
    }
    if (left == 0) {
        assert_int_equal(um_mux_stream_shutdown(p->m[side], s->id), 0);
        s->fin_sent[side] = 1;
    }
}

/* Reads what side has for stream s (direction 1 - side). */
static void read_all(pair_t *p, sctx_t *s, int side, uint8_t *scratch)
{
    int dir = 1 - side;
    for (;;) {
        size_t got;
        int r = um_mux_stream_read(p->m[side], s->id, scratch, 65536, &got);
        if (r == UM_EAGAIN) return;
        if (r == UM_EPIPE) {
            s->eof[dir] = 1;
            return;
        }
        assert_int_equal(r, 0);
        crypto_hash_sha256_update(&s->rx[dir], scratch, got);
        s->recvd[dir] += got;
        assert_true(s->recvd[dir] <= s->size[dir]);
    }
}

static void events(pair_t *p, sctx_t *c, int side, uint8_t *scratch)
{
    um_mux_event_t ev;
    while (um_mux_poll(p->m[side], &ev)) {
        switch (ev.type) {
        case UM_MUX_EV_OPENED: {
            assert_int_equal(side, 1);
            sctx_t *s = ctx_of(c, ev.id);
            assert_int_equal(um_mux_stream_accept(p->m[1], ev.id, UM_MUX_OK), 0);
            s->accepted = 1;
            read_all(p, s, 1, scratch);
            break;
        }
        case UM_MUX_EV_OPEN_RESULT: assert_int_equal(ev.code, UM_MUX_OK); break;
        case UM_MUX_EV_READABLE:
        case UM_MUX_EV_FIN: {
            sctx_t *s = ctx_of(c, ev.id);
            if (!s->eof[1 - side]) read_all(p, s, side, scratch);
            break;
        }
        case UM_MUX_EV_WRITABLE: break;
        default: fail_msg("unexpected event %d (code %d) on side %d", ev.type, ev.code, side);
        }
    }
}

static void test_thousand_streams(void **state)
{
    int san = sanitized();
    uint64_t maxsz = san ? 2 * 1024 * 1024 : 4 * 1024 * 1024;
    um_mux_config_t cfg;
    um_mux_config_default(&cfg);
    cfg.send_buf_max = 32 * 1024;
    cfg.max_pending_opens = NSTREAMS; /* all 1000 OPENs arrive in one delivery */
    cfg.session_window_max = 16 * 1024 * 1024;
    cfg.stream_window_max = 4 * 1024 * 1024;
    pair_t p;
    pair_init(&p, &cfg, &cfg, 0xC0FFEE);
    sctx_t *c = calloc(NSTREAMS, sizeof(*c));
    uint8_t *scratch = malloc(65536);
    assert_non_null(c);
    assert_non_null(scratch);
    uint64_t total[2] = {0, 0}, big = 0, zero = 0;
    um_addr_t d = test_dest();
    for (int i = 0; i < NSTREAMS; i++) {
        for (int dir = 0; dir < 2; dir++) {
            c[i].size[dir] = pick_size(&p.rng, maxsz);
            total[dir] += c[i].size[dir];
            if (c[i].size[dir] == maxsz) big++;
            if (c[i].size[dir] == 0) zero++;
            crypto_hash_sha256_init(&c[i].tx[dir]);
            crypto_hash_sha256_init(&c[i].rx[dir]);
        }
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &c[i].id), 0);
    }
    printf(
        "1000 streams, sizes 0..%llu (%llu empty, %llu of the max): %llu bytes up, %llu down%s\n",
        (unsigned long long)maxsz, (unsigned long long)zero, (unsigned long long)big,
        (unsigned long long)total[0], (unsigned long long)total[1],
        san ? " (sizes capped under sanitizers)" : "");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int done = 0;
    long rounds = 0;
    for (; rounds < 200000 && !done; rounds++) {
        for (int i = 0; i < NSTREAMS; i++) {
            write_some(&p, &c[i], 0, scratch);
            write_some(&p, &c[i], 1, scratch);
        }
        pair_move(&p, 0, 8u << 20);
        events(&p, c, 1, scratch);
        pair_move(&p, 1, 8u << 20);
        events(&p, c, 0, scratch);
        assert_int_equal(p.feed_err[0] | p.feed_err[1], 0);
        done = 1;
        for (int i = 0; i < NSTREAMS && done; i++)
            done = c[i].eof[0] && c[i].eof[1];
    }
    pair_settle(&p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("done in %ld rounds, %.2f s; wire bytes %llu up, %llu down\n", rounds, secs,
           (unsigned long long)p.moved[0], (unsigned long long)p.moved[1]);
    assert_true(done);
    for (int i = 0; i < NSTREAMS; i++)
        for (int dir = 0; dir < 2; dir++) {
            uint8_t a[32], b[32];
            assert_int_equal(c[i].recvd[dir], c[i].size[dir]);
            crypto_hash_sha256_final(&c[i].tx[dir], a);
            crypto_hash_sha256_final(&c[i].rx[dir], b);
            if (memcmp(a, b, 32) != 0) fail_msg("stream %u dir %d: sha256 differs", c[i].id, dir);
        }
    /* every stream finished and was forgotten on both sides */
    assert_int_equal(um_mux_stream_count(p.m[0]), 0);
    assert_int_equal(um_mux_stream_count(p.m[1]), 0);
    free(c);
    free(scratch);
    pair_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
