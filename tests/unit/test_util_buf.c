/* um_buf_t: the bounded byte queue. Covers append/reserve/commit/peek/read/
 * consume/clear, the hard `max` bound (UM_ENOSPC with nothing appended),
 * compaction and growth preserving content, a randomized model check against
 * a trivial reference queue, and wipe (storage zeroed before release). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"

/* ---- sodium_memzero interposer -------------------------------------------
 * Defined in the executable, it takes precedence over libsodium's (shared)
 * definition, so we can see which region um_buf_wipe() zeroes and that it
 * happens while the storage is still allocated. It really zeroes. */
static const void *g_zero_ptr;
static size_t g_zero_len;
static int g_zero_calls;

void sodium_memzero(void *const pnt, const size_t len)
{
    volatile unsigned char *p = (volatile unsigned char *)pnt;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
    /* Every byte must read back as zero (and the region must be live memory,
     * which ASan checks for us). */
    const unsigned char *q = (const unsigned char *)pnt;
    for (size_t i = 0; i < len; i++)
        if (q[i] != 0) abort();
    g_zero_ptr = pnt;
    g_zero_len = len;
    g_zero_calls++;
}

/* ---- deterministic PRNG (xorshift64*) ---- */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static int sanitized(void)
{
    const char *s = getenv("UMBRA_SANITIZE");
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#endif
    return s && s[0] == '1';
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((seed + i) * 2654435761u >> 13);
}

static void assert_content(const um_buf_t *b, const uint8_t *want, size_t n)
{
    const uint8_t *p = NULL;
    size_t len = um_buf_peek(b, &p);
    assert_int_equal(len, n);
    assert_int_equal(um_buf_len(b), n);
    if (n) {
        assert_non_null(p);
        assert_memory_equal(p, want, n);
    }
}

static int setup(void **state)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* ---- basic operations ---- */

static void test_init_empty(void **state)
{
    um_buf_t b;
    memset(&b, 0xa5, sizeof(b));
    um_buf_init(&b, 1000);
    assert_int_equal(um_buf_len(&b), 0);
    assert_int_equal(um_buf_space(&b), 1000);
    assert_int_equal(b.max, 1000);
    const uint8_t *p = (const uint8_t *)&b;
    assert_int_equal(um_buf_peek(&b, &p), 0);
    uint8_t out[4];
    assert_int_equal(um_buf_read(&b, out, sizeof(out)), 0);
    um_buf_free(&b);
    um_buf_free(&b); /* twice is harmless */
}

static void test_append_peek_read_consume(void **state)
{
    um_buf_t b;
    um_buf_init(&b, 4096);
    assert_int_equal(um_buf_append(&b, "hello", 5), 0);
    assert_int_equal(um_buf_append(&b, NULL, 0), 0); /* zero bytes: no-op */
    assert_int_equal(um_buf_append(&b, " world", 6), 0);
    assert_content(&b, (const uint8_t *)"hello world", 11);
    assert_int_equal(um_buf_space(&b), 4096 - 11);

    char out[16] = {0};
    assert_int_equal(um_buf_read(&b, out, 3), 3);
    assert_memory_equal(out, "hel", 3);
    assert_content(&b, (const uint8_t *)"lo world", 8);

    um_buf_consume(&b, 3);
    assert_content(&b, (const uint8_t *)"world", 5);
    assert_int_equal(um_buf_space(&b), 4096 - 5);

    /* read more than is queued: returns what there is */
    memset(out, 0, sizeof(out));
    assert_int_equal(um_buf_read(&b, out, sizeof(out)), 5);
    assert_memory_equal(out, "world", 5);
    assert_int_equal(um_buf_len(&b), 0);
    assert_int_equal(um_buf_read(&b, out, sizeof(out)), 0);

    /* consume(0) changes nothing */
    assert_int_equal(um_buf_append(&b, "xy", 2), 0);
    um_buf_consume(&b, 0);
    assert_content(&b, (const uint8_t *)"xy", 2);

    /* clear drops bytes, buffer still usable */
    um_buf_clear(&b);
    assert_int_equal(um_buf_len(&b), 0);
    assert_int_equal(um_buf_space(&b), 4096);
    assert_int_equal(um_buf_append(&b, "z", 1), 0);
    assert_content(&b, (const uint8_t *)"z", 1);

    /* free then re-use */
    um_buf_free(&b);
    assert_int_equal(um_buf_len(&b), 0);
    assert_int_equal(um_buf_append(&b, "again", 5), 0);
    assert_content(&b, (const uint8_t *)"again", 5);
    um_buf_free(&b);
}

static void test_reserve_commit(void **state)
{
    um_buf_t b;
    um_buf_init(&b, 1000);
    assert_int_equal(um_buf_append(&b, "ab", 2), 0);
    uint8_t *w = um_buf_reserve(&b, 100);
    assert_non_null(w);
    memset(w, 'x', 100); /* all 100 bytes must be writable (ASan checks) */
    memcpy(w, "cdef", 4);
    um_buf_commit(&b, 4); /* commit fewer than reserved */
    assert_content(&b, (const uint8_t *)"abcdef", 6);

    /* reserve(0) still gives a valid pointer when there is space */
    assert_non_null(um_buf_reserve(&b, 0));
    um_buf_commit(&b, 0);
    assert_content(&b, (const uint8_t *)"abcdef", 6);

    /* exactly up to the bound */
    w = um_buf_reserve(&b, 994);
    assert_non_null(w);
    memset(w, 'y', 994);
    um_buf_commit(&b, 994);
    assert_int_equal(um_buf_len(&b), 1000);
    assert_int_equal(um_buf_space(&b), 0);

    /* past the bound: NULL, nothing changes */
    assert_null(um_buf_reserve(&b, 1));
    assert_int_equal(um_buf_len(&b), 1000);
    const uint8_t *p;
    um_buf_peek(&b, &p);
    assert_memory_equal(p, "abcdef", 6);
    assert_int_equal(p[999], 'y');

    um_buf_consume(&b, 10);
    assert_null(um_buf_reserve(&b, 11));
    w = um_buf_reserve(&b, 10);
    assert_non_null(w);
    memset(w, 'z', 10);
    um_buf_commit(&b, 10);
    assert_int_equal(um_buf_len(&b), 1000);
    um_buf_peek(&b, &p);
    assert_int_equal(p[0], 'y');
    assert_int_equal(p[989], 'y');
    assert_int_equal(p[990], 'z');
    assert_int_equal(p[999], 'z');
    um_buf_free(&b);
}

/* ---- the max bound, table-driven ---- */

static void test_max_bound_table(void **state)
{
    static const struct {
        size_t max, first, second;
        int want;
    } cases[] = {
        {0, 0, 1, UM_ENOSPC},
        {1, 0, 1, 0},
        {1, 1, 1, UM_ENOSPC},
        {10, 10, 1, UM_ENOSPC},
        {10, 9, 1, 0},
        {10, 9, 2, UM_ENOSPC},
        {100, 60, 40, 0},
        {100, 60, 41, UM_ENOSPC},
        {256, 255, 1, 0},
        {256, 256, 1, UM_ENOSPC},
        {257, 256, 1, 0},
        {4096, 0, 4097, UM_ENOSPC},
        {4096, 4000, 96, 0},
        {4096, 4000, 97, UM_ENOSPC},
        {100000, 99999, 1, 0},
        {100000, 50000, 50001, UM_ENOSPC},
        {100000, 1, SIZE_MAX, UM_ENOSPC}, /* huge n must not overflow the check */
        {100000, 1, SIZE_MAX - 1, UM_ENOSPC},
    };
    uint8_t *src = malloc(100001);
    assert_non_null(src);
    fill_pattern(src, 100001, 7);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        um_buf_t b;
        um_buf_init(&b, cases[i].max);
        if (cases[i].first) assert_int_equal(um_buf_append(&b, src, cases[i].first), 0);
        size_t before = um_buf_len(&b);
        /* For the huge-n rows the pointer is never read (refused first). */
        int r = um_buf_append(&b, src + 1, cases[i].second);
        if (r != cases[i].want) fail_msg("case %zu: append gave %d, want %d", i, r, cases[i].want);
        if (r == UM_ENOSPC) {
            /* nothing appended: the old content exactly */
            assert_int_equal(um_buf_len(&b), before);
            assert_content(&b, src, before);
            /* reserve refuses too */
            assert_null(um_buf_reserve(&b, cases[i].second));
            assert_content(&b, src, before);
        } else {
            assert_int_equal(um_buf_len(&b), before + cases[i].second);
            const uint8_t *p;
            um_buf_peek(&b, &p);
            assert_memory_equal(p, src, before);
            assert_memory_equal(p + before, src + 1, cases[i].second);
        }
        assert_true(um_buf_len(&b) <= cases[i].max);
        assert_int_equal(um_buf_space(&b), cases[i].max - um_buf_len(&b));
        um_buf_free(&b);
    }
    free(src);
}

/* Fill to max in odd-sized pieces; the piece that would cross max is refused
 * whole (never partially appended), and the queue is exactly max at the end. */
static void test_max_never_partial(void **state)
{
    const size_t max = 1000;
    um_buf_t b;
    um_buf_init(&b, max);
    uint8_t piece[37];
    size_t total = 0;
    for (int i = 0; i < 100; i++) {
        fill_pattern(piece, sizeof(piece), (uint32_t)i);
        int r = um_buf_append(&b, piece, sizeof(piece));
        if (total + sizeof(piece) <= max) {
            assert_int_equal(r, 0);
            total += sizeof(piece);
        } else {
            assert_int_equal(r, UM_ENOSPC);
        }
        assert_int_equal(um_buf_len(&b), total);
    }
    assert_int_equal(total, (max / sizeof(piece)) * sizeof(piece));
    assert_int_equal(um_buf_append(&b, piece, max - total), 0);
    assert_int_equal(um_buf_len(&b), max);
    assert_int_equal(um_buf_append(&b, piece, 1), UM_ENOSPC);
    um_buf_free(&b);
}

/* ---- compaction and growth ---- */

/* Unread bytes at the back of the storage are moved to the front instead of
 * growing, and survive the move intact. */
static void test_compaction_preserves(void **state)
{
    um_buf_t b;
    um_buf_init(&b, 256);
    uint8_t src[256];
    fill_pattern(src, sizeof(src), 99);
    assert_int_equal(um_buf_append(&b, src, 200), 0);
    size_t cap0 = b.cap;
    assert_true(cap0 >= 200 && cap0 <= 256);
    um_buf_consume(&b, 150); /* 50 live bytes at offset 150 */
    assert_int_equal(um_buf_append(&b, src + 200, 56), 0);
    assert_int_equal(um_buf_append(&b, src, 100), 0); /* needs the space at the front */
    assert_int_equal(b.cap, cap0);                    /* no growth */
    assert_int_equal(um_buf_len(&b), 206);
    const uint8_t *p;
    um_buf_peek(&b, &p);
    assert_memory_equal(p, src + 150, 106);
    assert_memory_equal(p + 106, src, 100);
    /* peek is contiguous: the whole queue in one view */
    uint8_t out[256];
    assert_int_equal(um_buf_read(&b, out, sizeof(out)), 206);
    assert_memory_equal(out, src + 150, 106);
    assert_memory_equal(out + 106, src, 100);
    um_buf_free(&b);
}

static void test_growth_preserves(void **state)
{
    const size_t max = 1u << 20;
    um_buf_t b;
    um_buf_init(&b, max);
    uint8_t *src = malloc(max);
    assert_non_null(src);
    fill_pattern(src, max, 3);
    size_t in = 0, out = 0, lastcap = 0;
    int grew = 0;
    uint8_t tmp[777];
    /* append 3 KiB, read 777, repeatedly: queue grows through many doublings */
    while (in + 3072 <= max) {
        assert_int_equal(um_buf_append(&b, src + in, 3072), 0);
        in += 3072;
        if (b.cap != lastcap) {
            grew++;
            lastcap = b.cap;
        }
        size_t got = um_buf_read(&b, tmp, sizeof(tmp));
        assert_int_equal(got, sizeof(tmp));
        assert_memory_equal(tmp, src + out, got);
        out += got;
        const uint8_t *p;
        size_t len = um_buf_peek(&b, &p);
        assert_int_equal(len, in - out);
        assert_memory_equal(p, src + out, len);
    }
    assert_true(grew >= 5);
    assert_true(grew <= 14); /* geometric growth: 256 B .. 1 MiB is 12 doublings */
    assert_true(b.cap <= max);
    um_buf_free(&b);
    free(src);
}

/* Steady state: a queue that is drained as fast as it is filled does not keep
 * growing its storage. */
static void test_steady_state_no_growth(void **state)
{
    um_buf_t b;
    um_buf_init(&b, 1u << 20);
    uint8_t chunk[1000], out[1000];
    fill_pattern(chunk, sizeof(chunk), 1);
    assert_int_equal(um_buf_append(&b, chunk, 500), 0);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(um_buf_append(&b, chunk, sizeof(chunk)), 0);
        assert_int_equal(um_buf_read(&b, out, sizeof(out)), sizeof(out));
    }
    assert_int_equal(um_buf_len(&b), 500);
    assert_true(b.cap <= 4096);
    um_buf_free(&b);
}

/* ---- randomized model check ---- */

typedef struct {
    uint8_t *d;
    size_t len, max;
} model_t;

static void model_check(const um_buf_t *b, const model_t *m)
{
    assert_int_equal(um_buf_len(b), m->len);
    assert_int_equal(um_buf_space(b), m->max - m->len);
    assert_content(b, m->d, m->len);
    assert_true(b->head <= b->tail);
    assert_true(b->tail <= b->cap);
    /* the storage is bounded too */
    /* Storage may reach twice max (amortised compaction, buf.h). */
    assert_true(b->cap <= (2 * m->max > 256 ? 2 * m->max : 256));
}

static void run_model(size_t max, unsigned steps, uint64_t seed)
{
    rng_state = seed;
    um_buf_t b;
    model_t m = {malloc(max + 1), 0, max};
    uint8_t *src = malloc(2 * max + 64), *out = malloc(2 * max + 64);
    assert_non_null(m.d);
    assert_non_null(src);
    assert_non_null(out);
    um_buf_init(&b, max);
    unsigned refused = 0, accepted = 0;
    for (unsigned step = 0; step < steps; step++) {
        unsigned op = (unsigned)rnd_below(100);
        /* sizes biased toward the edges: tiny, around the free space, huge */
        size_t space = max - m.len, n;
        switch (rnd_below(4)) {
        case 0: n = rnd_below(8); break;
        case 1: n = space + rnd_below(3) - (space ? 1 : 0); break;
        case 2: n = rnd_below(max / 4 + 2); break;
        default: n = rnd_below(max + 16); break;
        }
        if (n > 2 * max + 32) n = 2 * max + 32;
        fill_pattern(src, n, (uint32_t)step);
        if (op < 35) { /* append */
            int r = um_buf_append(&b, src, n);
            if (n <= space) {
                assert_int_equal(r, 0);
                memcpy(m.d + m.len, src, n);
                m.len += n;
                accepted++;
            } else {
                assert_int_equal(r, UM_ENOSPC);
                refused++;
            }
        } else if (op < 50) { /* reserve + partial commit */
            uint8_t *w = um_buf_reserve(&b, n);
            if (n <= space && (n > 0 || space > 0)) {
                assert_non_null(w);
                memset(w, 0xee, n); /* whole reservation writable */
                size_t used = n ? rnd_below(n + 1) : 0;
                memcpy(w, src, used);
                um_buf_commit(&b, used);
                memcpy(m.d + m.len, src, used);
                m.len += used;
            } else if (n > space) {
                assert_null(w);
            }
        } else if (op < 70) { /* read */
            size_t got = um_buf_read(&b, out, n);
            size_t want = n < m.len ? n : m.len;
            assert_int_equal(got, want);
            assert_memory_equal(out, m.d, got);
            memmove(m.d, m.d + got, m.len - got);
            m.len -= got;
        } else if (op < 90) { /* consume */
            size_t c = m.len ? rnd_below(m.len + 1) : 0;
            um_buf_consume(&b, c);
            memmove(m.d, m.d + c, m.len - c);
            m.len -= c;
        } else if (op < 93) {
            um_buf_clear(&b);
            m.len = 0;
        } else if (op < 94) {
            um_buf_free(&b);
            m.len = 0;
        } else {
            /* peek-only step, checked below */
        }
        model_check(&b, &m);
    }
    assert_true(accepted > 0);
    if (max > 0) assert_true(refused > 0);
    um_buf_wipe(&b);
    free(m.d);
    free(src);
    free(out);
}

static void test_model_random(void **state)
{
    static const size_t maxes[] = {0, 1, 7, 100, 255, 256, 257, 1000, 4096, 65536};
    unsigned steps = sanitized() ? 4000 : 20000;
    for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++)
        run_model(maxes[i], maxes[i] >= 65536 ? steps / 8 : steps,
                  0x9e3779b97f4a7c15ULL ^ (uint64_t)(i * 7919 + 1));
}

/* ---- wipe ---- */

static void test_wipe_zeroes_then_frees(void **state)
{
    um_buf_t b;
    um_buf_init(&b, 4096);
    uint8_t secret[300];
    fill_pattern(secret, sizeof(secret), 42);
    assert_int_equal(um_buf_append(&b, secret, sizeof(secret)), 0);
    um_buf_consume(&b, 100); /* consumed bytes are wiped too: whole storage */
    const uint8_t *data = b.data;
    size_t cap = b.cap;
    assert_non_null(data);
    g_zero_calls = 0;
    g_zero_ptr = NULL;
    g_zero_len = 0;
    um_buf_wipe(&b);
    assert_int_equal(g_zero_calls, 1);
    assert_ptr_equal(g_zero_ptr, data);
    assert_int_equal(g_zero_len, cap);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(um_buf_len(&b), 0);
    assert_int_equal(b.max, 4096); /* still usable with the same bound */
    assert_int_equal(um_buf_append(&b, "k", 1), 0);
    assert_content(&b, (const uint8_t *)"k", 1);
    um_buf_wipe(&b);

    /* wiping a buffer that never allocated does nothing harmful */
    um_buf_t e;
    um_buf_init(&e, 10);
    g_zero_calls = 0;
    um_buf_wipe(&e);
    assert_int_equal(g_zero_calls, 0);
    assert_null(e.data);
}

/* A deep queue (more unread than was read since) that fills its storage
 * gets a bigger one, not a copy of the same size: a same-size copy moved the
 * whole queue and wiped the old storage on every append that found no room
 * (a 16 MiB stream queue did that about 50 times per GiB of upload). Here the
 * queue stays between 3/4 and all of max; the storage is replaced once (to
 * twice max) and compacted in place from then on. */
static void test_deep_queue_grows_not_copies(void **state)
{
    (void)state;
    const size_t max = 4096;
    um_buf_t b;
    um_buf_init(&b, max);
    uint8_t piece[512], out[512];
    fill_pattern(piece, sizeof(piece), 3);
    while (um_buf_len(&b) + sizeof(piece) <= max)
        assert_int_equal(um_buf_append(&b, piece, sizeof(piece)), 0);
    assert_int_equal(um_buf_len(&b), max);
    const uint8_t *data = b.data;
    size_t cap = b.cap, replaced = 0, same_size = 0;
    uint64_t in = max, got = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(um_buf_read(&b, out, sizeof(out)), sizeof(out));
        for (size_t k = 0; k < sizeof(out); k++)
            assert_int_equal(out[k], piece[(got + k) % sizeof(piece)]);
        got += sizeof(out);
        assert_int_equal(um_buf_append(&b, piece, sizeof(piece)), 0);
        in += sizeof(piece);
        if (b.data != data) {
            replaced++;
            if (b.cap == cap) same_size++;
            data = b.data;
            cap = b.cap;
        }
    }
    assert_int_equal(um_buf_len(&b), in - got);
    assert_int_equal(same_size, 0);
    assert_true(replaced <= 1);
    assert_true(b.cap <= 2 * max);
    um_buf_free(&b);
}

/* um_buf_trim keeps the storage of a queue appended to since the last trim
 * (a busy queue that is empty at that moment), and releases it at the next
 * trim if nothing came in between. */
static void test_trim_keeps_busy_storage(void **state)
{
    (void)state;
    um_buf_t b;
    um_buf_init(&b, 1 << 20);
    uint8_t piece[4096], out[4096];
    fill_pattern(piece, sizeof(piece), 5);
    assert_int_equal(um_buf_append(&b, piece, sizeof(piece)), 0);
    assert_int_equal(um_buf_read(&b, out, sizeof(out)), sizeof(out));
    const uint8_t *data = b.data;
    um_buf_trim(&b); /* empty, but appended to since: kept */
    assert_ptr_equal(b.data, data);
    assert_int_equal(um_buf_append(&b, piece, 100), 0);
    assert_ptr_equal(b.data, data); /* no regrowth */
    um_buf_trim(&b);
    assert_ptr_equal(b.data, data); /* used again */
    um_buf_consume(&b, 100);
    g_zero_calls = 0;
    um_buf_trim(&b); /* idle for a whole trim period: released, wiped */
    assert_null(b.data);
    assert_int_equal(g_zero_calls, 1);
    um_buf_free(&b);
}

/* Storage outgrown by a bigger queue, and storage released by um_buf_free(),
 * is zeroed first wherever it held data: session and stream queues hold
 * plaintext, which must not linger in freed heap memory. */
static void test_growth_and_free_wipe_old_storage(void **state)
{
    um_buf_t b;
    um_buf_init(&b, 1 << 20);
    uint8_t secret[200];
    fill_pattern(secret, sizeof(secret), 7);
    assert_int_equal(um_buf_append(&b, secret, sizeof(secret)), 0);
    const uint8_t *old = b.data;
    size_t old_cap = b.cap;
    assert_true(old_cap < 4096);
    uint8_t big[4096];
    fill_pattern(big, sizeof(big), 9);
    g_zero_calls = 0;
    g_zero_ptr = NULL;
    assert_int_equal(um_buf_append(&b, big, sizeof(big)), 0); /* must grow */
    assert_true(b.data != old || b.cap != old_cap);
    assert_int_equal(g_zero_calls, 1);
    assert_ptr_equal(g_zero_ptr, old);
    assert_int_equal(g_zero_len, sizeof(secret)); /* every byte that held data */

    const uint8_t *cur = b.data;
    size_t used = um_buf_len(&b);
    um_buf_consume(&b, used); /* empty again: bytes stay in storage */
    g_zero_calls = 0;
    um_buf_free(&b);
    assert_int_equal(g_zero_calls, 1);
    assert_ptr_equal(g_zero_ptr, cur);
    assert_int_equal(g_zero_len, used);
    assert_null(b.data);

    /* a buffer that never held a byte is released without a wipe */
    um_buf_t e;
    um_buf_init(&e, 10);
    assert_non_null(um_buf_reserve(&e, 4));
    g_zero_calls = 0;
    um_buf_free(&e);
    assert_int_equal(g_zero_calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_append_peek_read_consume),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_max_bound_table),
        cmocka_unit_test(test_max_never_partial),
        cmocka_unit_test(test_compaction_preserves),
        cmocka_unit_test(test_deep_queue_grows_not_copies),
        cmocka_unit_test(test_trim_keeps_busy_storage),
        cmocka_unit_test(test_growth_preserves),
        cmocka_unit_test(test_steady_state_no_growth),
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_wipe_zeroes_then_frees),
        cmocka_unit_test(test_growth_and_free_wipe_old_storage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
