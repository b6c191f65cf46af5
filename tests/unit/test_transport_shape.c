/* First-packet shaping (docs/PROTOCOL.md section 7).
 *
 * A classifier written here from the exemption rules of Wu et al. (USENIX
 * Security 2023, section 4.1) must call every shaped first write "exempt",
 * over 1000 random flights per mode, each through the rule the mode relies
 * on; as a control, unshaped flights must NOT be exempt in the vast majority.
 * The parser must return the flight for every split point, reject malformed
 * prefixes (table-driven) as soon as a byte is wrong, and prefixes must vary
 * between connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/mask.h"
#include "transport/shape.h"
#include "util/err.h"

#define MSS    1460 /* a first TCP segment on an Ethernet path */
#define BUFCAP (UM_SHAPE_PREFIX_MAX + UM_FLIGHT_MAX + 64)

/* ---- the censor's classifier (Wu et al. 2023, Algorithm 1) ---- */

enum { EX1 = 1, EX2 = 2, EX3 = 4, EX4 = 8, EX5 = 16 };

static int printable(uint8_t b)
{
    return b >= 0x20 && b <= 0x7e;
}

/* Bit set of the exemption rules that first packet p[0..n) satisfies; 0 means
 * the connection would be blocked as fully encrypted. */
static int exemptions(const uint8_t *p, size_t n)
{
    int ex = 0;
    size_t bits = 0, pr = 0, run = 0, best = 0;
    for (size_t i = 0; i < n; i++) {
        bits += (size_t)__builtin_popcount(p[i]);
        if (printable(p[i])) {
            pr++;
            if (++run > best) best = run;
        } else {
            run = 0;
        }
    }
    /* Ex1: popcount mean per byte <= 3.4 or >= 4.6 (compared in integers) */
    if (n && (bits * 10 <= 34 * n || bits * 10 >= 46 * n)) ex |= EX1;
    /* Ex2: first six bytes printable */
    if (n >= 6) {
        int all = 1;
        for (size_t i = 0; i < 6; i++)
            all &= printable(p[i]);
        if (all) ex |= EX2;
    }
    /* Ex3: more than half of the bytes printable */
    if (pr * 2 > n) ex |= EX3;
    /* Ex4: more than 20 contiguous printable bytes */
    if (best > 20) ex |= EX4;
    /* Ex5: TLS record header or an HTTP method */
    if (n >= 3 && (p[0] == 0x16 || p[0] == 0x17) && p[1] == 0x03 && p[2] <= 0x09) ex |= EX5;
    if (n >= 4 && (!memcmp(p, "GET ", 4) || !memcmp(p, "PUT ", 4) || !memcmp(p, "POST", 4) ||
                   !memcmp(p, "HEAD", 4)))
        ex |= EX5;
    return ex;
}

/* The rule(s) each mode relies on: they hold for any flight. The censor's
 * rules are about the client's first packet; the server's reply is shaped to
 * match (an HTTP response is not a method, so Ex2 and Ex4 there). */
static int relied_on(um_shape_t s, int dir)
{
    switch (s) {
    case UM_SHAPE_PRINTABLE: return EX2 | EX4;
    case UM_SHAPE_HTTP: return dir == UM_SHAPE_C2S ? EX2 | EX5 : EX2 | EX4;
    case UM_SHAPE_TLS: return EX5;
    default: return 0;
    }
}

/* A first write: prefix || flight, flight = fn random bytes (a masked flight
 * is uniform to the censor). Returns the total; *pn = prefix length. */
static size_t first_write(um_shape_t s, int dir, size_t fn, uint8_t *out, size_t *pn)
{
    size_t n = 0;
    assert_int_equal(um_shape_prefix(s, dir, fn, out, UM_SHAPE_PREFIX_MAX, &n), 0);
    assert_true(n <= UM_SHAPE_PREFIX_MAX);
    randombytes_buf(out + n, fn);
    *pn = n;
    return n + fn;
}

static size_t rand_flight_len(void)
{
    return 128 + randombytes_uniform(1024 - 128 + 1);
}

static void test_exempt(void **st)
{
    static const um_shape_t modes[] = {UM_SHAPE_PRINTABLE, UM_SHAPE_HTTP, UM_SHAPE_TLS};
    uint8_t w[BUFCAP];
    for (size_t m = 0; m < 3; m++) {
        for (int dir = UM_SHAPE_C2S; dir <= UM_SHAPE_S2C; dir++) {
            int need = relied_on(modes[m], dir);
            for (int i = 0; i < 1000; i++) {
                size_t pn, n = first_write(modes[m], dir, rand_flight_len(), w, &pn);
                int ex = exemptions(w, n);
                if ((ex & need) != need)
                    printf("mode %d dir %d: exemptions %#x\n", modes[m], dir, ex);
                assert_int_equal(ex & need, need);
                /* The same when the first segment is cut at an MSS. */
                ex = exemptions(w, n < MSS ? n : MSS);
                assert_int_equal(ex & need, need);
            }
        }
        /* And across the whole flight range of the tcp transport. */
        int need = relied_on(modes[m], UM_SHAPE_C2S);
        size_t pn, n = first_write(modes[m], UM_SHAPE_C2S, UM_FLIGHT_MAX, w, &pn);
        assert_int_equal(exemptions(w, n) & need, need);
    }
    /* Control: unshaped flights are blocked (no rule applies) nearly always:
     * Ex2 alone lets through (95/256)^6 = 0.3%. */
    int exempt = 0;
    for (int i = 0; i < 1000; i++) {
        size_t pn, n = first_write(UM_SHAPE_NONE, UM_SHAPE_C2S, rand_flight_len(), w, &pn);
        assert_int_equal(pn, 0);
        exempt += exemptions(w, n) != 0;
    }
    printf("unshaped flights exempt: %d / 1000\n", exempt);
    assert_true(exempt <= 20);
    /* The classifier itself: hand-made cases. */
    assert_int_equal(exemptions((const uint8_t *)"GET / HTTP/1.1", 14) & EX5, EX5);
    static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    assert_int_equal(exemptions(tls, sizeof(tls)) & EX5, EX5);
    uint8_t zeros[200] = {0};
    assert_int_equal(exemptions(zeros, sizeof(zeros)), EX1);
}

/* ---- stripping ---- */

static void check_splits(um_shape_t s, int dir, size_t fn)
{
    uint8_t w[BUFCAP];
    size_t pn, n = first_write(s, dir, fn, w, &pn), used, fl;
    /* Byte by byte, as a receiver accumulating reads sees it. */
    for (size_t k = 0; k <= n; k++) {
        used = fl = 12345;
        int r = um_shape_strip(s, dir, w, k, &used, &fl);
        if (k < pn) {
            assert_int_equal(r, UM_EAGAIN);
            continue;
        }
        assert_int_equal(r, 0);
        assert_int_equal(used, pn);
        assert_int_equal(fl, (s == UM_SHAPE_HTTP || s == UM_SHAPE_TLS) ? fn : 0);
    }
    /* Every two-chunk split: the first chunk alone, then both together. */
    for (size_t k = 0; k <= n; k += 1 + k / 64) {
        uint8_t acc[BUFCAP];
        memcpy(acc, w, k);
        int r = um_shape_strip(s, dir, acc, k, &used, &fl);
        assert_int_equal(r, k < pn ? UM_EAGAIN : 0);
        memcpy(acc + k, w + k, n - k);
        assert_int_equal(um_shape_strip(s, dir, acc, n, &used, &fl), 0);
        assert_int_equal(used, pn);
        assert_memory_equal(acc + used, w + pn, fn); /* the flight, untouched */
    }
}

static void test_strip_splits(void **st)
{
    static const um_shape_t modes[] = {UM_SHAPE_NONE, UM_SHAPE_PRINTABLE, UM_SHAPE_HTTP,
                                       UM_SHAPE_TLS};
    for (size_t m = 0; m < 4; m++)
        for (int dir = UM_SHAPE_C2S; dir <= UM_SHAPE_S2C; dir++) {
            check_splits(modes[m], dir, UM_MASK_OVERHEAD);
            check_splits(modes[m], dir, UM_FLIGHT_MAX);
            for (int i = 0; i < 30; i++)
                check_splits(modes[m], dir, rand_flight_len());
        }
}

/* A real masked flight behind every prefix comes out whole. */
static void test_roundtrip_mask(void **st)
{
    static const um_shape_t modes[] = {UM_SHAPE_PRINTABLE, UM_SHAPE_HTTP, UM_SHAPE_TLS};
    uint8_t spub[32], msg[600], got[UM_FLIGHT_MSG_MAX], fl[UM_FLIGHT_MAX], w[BUFCAP];
    randombytes_buf(spub, sizeof(spub));
    for (size_t m = 0; m < 3; m++)
        for (int i = 0; i < 50; i++) {
            size_t mn = 106 + randombytes_uniform(sizeof(msg) - 106), fn, pn, used, want, gn, c;
            randombytes_buf(msg, mn);
            assert_int_equal(um_mask_seal(spub, UM_MASK_C2S, msg, mn, fl, sizeof(fl), &fn), 0);
            assert_int_equal(um_shape_prefix(modes[m], UM_SHAPE_C2S, fn, w, sizeof(w), &pn), 0);
            memcpy(w + pn, fl, fn);
            assert_int_equal(um_shape_strip(modes[m], UM_SHAPE_C2S, w, pn + fn, &used, &want), 0);
            assert_int_equal(used, pn);
            assert_int_equal(um_mask_open(spub, UM_MASK_C2S, 106, w + used, pn + fn - used, got,
                                          sizeof(got), &gn, &c),
                             0);
            assert_int_equal(gn, mn);
            assert_memory_equal(got, msg, mn);
            if (want) assert_int_equal(c, want);
        }
}

/* ---- malformed prefixes ---- */

typedef struct {
    um_shape_t s;
    int dir;
    const char *p; /* NULL: use bin[0..binn) */
    uint8_t bin[16];
    size_t binn;
    const char *why;
} bad_t;

#define T(s, d, str, why)                                                                          \
    {                                                                                              \
        s, d, str, {0}, 0, why                                                                     \
    }
#define TB(d, why, ...)                                                                            \
    {                                                                                              \
        UM_SHAPE_TLS, d, NULL, {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__}), why                \
    }

static const bad_t bad[] = {
    T(UM_SHAPE_PRINTABLE, 1, "abcdefghijklmnopqrstuvw\n", "23 characters"),
    T(UM_SHAPE_PRINTABLE, 1, "\n", "empty run"),
    T(UM_SHAPE_PRINTABLE, 1, "abcdefghijkl mnopqrstuvwxyz\n", "space"),
    T(UM_SHAPE_PRINTABLE, 1, "abcdefghijkl-mnopqrstuvwxyz\n", "not base64"),
    T(UM_SHAPE_PRINTABLE, 1, "abcdefghijklmnopqrstuvwxyz\r\n", "CR"),
    T(UM_SHAPE_PRINTABLE, 2,
      "\x01"
      "bcdefghijklmnopqrstuvwxyz\n",
      "control"),
    T(UM_SHAPE_PRINTABLE, 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/x\n",
      "65 characters"),
    T(UM_SHAPE_HTTP, 1, "GET / HTTP/1.1\r\n", "GET"),
    T(UM_SHAPE_HTTP, 1, "HEAD / HTTP/1.1\r\n", "HEAD"),
    T(UM_SHAPE_HTTP, 1, "PATCH / HTTP/1.1\r\n", "PATCH"),
    T(UM_SHAPE_HTTP, 1, "post / HTTP/1.1\r\n", "lower-case method"),
    T(UM_SHAPE_HTTP, 1, "POST  / HTTP/1.1\r\n", "two spaces"),
    T(UM_SHAPE_HTTP, 1, "POST x HTTP/1.1\r\n", "path without slash"),
    T(UM_SHAPE_HTTP, 1, "POST /a\tb HTTP/1.1\r\n", "tab in path"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.0\r\n", "HTTP/1.0"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\n", "bare LF"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nHost: a.com\r\n\r\n", "no Content-Length"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 200\r\nContent-Length: 200\r\n\r\n",
      "two Content-Length"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "length 0"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", "length 17"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 2049\r\n\r\n", "length 2049"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 0200\r\n\r\n", "leading zero"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 2x0\r\n\r\n", "not a number"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", "empty length"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length:200\r\n\r\n", "no space"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nHost a.com\r\n\r\n", "no colon"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nHo st: a\r\n\r\n", "space in name"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\n: a\r\n\r\n", "empty name"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nHost: a\x01\r\n\r\n", "control in value"),
    T(UM_SHAPE_HTTP, 1, "POST / HTTP/1.1\r\nContent-Length: 200\r\n\r\r", "bad end"),
    T(UM_SHAPE_HTTP, 1,
      "POST / HTTP/1.1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\n"
      "A: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\n"
      "Content-Length: 200\r\n\r\n",
      "17 headers"),
    T(UM_SHAPE_HTTP, 1, "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n", "a response"),
    T(UM_SHAPE_HTTP, 2, "POST / HTTP/1.1\r\nContent-Length: 200\r\n\r\n", "a request"),
    T(UM_SHAPE_HTTP, 2, "HTTP/1.1 404 Not Found\r\nContent-Length: 200\r\n\r\n", "404"),
    T(UM_SHAPE_HTTP, 2, "HTTP/1.1 200 OK\r\n\r\n", "no length"),
    TB(1, "alert", 0x15, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03),
    TB(1, "app data", 0x17, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03),
    TB(1, "record 03 03", 0x16, 0x03, 0x03, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03),
    TB(1, "SSLv3", 0x16, 0x03, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03),
    TB(1, "record too short", 0x16, 0x03, 0x01, 0x00, 0x17, 0x01, 0x00, 0x00, 0x13, 0x03, 0x03),
    TB(1, "record too long", 0x16, 0x03, 0x01, 0x08, 0x07, 0x01, 0x00, 0x08, 0x03, 0x03, 0x03),
    TB(1, "ServerHello", 0x16, 0x03, 0x01, 0x00, 0x80, 0x02, 0x00, 0x00, 0x7c, 0x03, 0x03),
    TB(1, "hs length", 0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7d, 0x03, 0x03),
    TB(1, "hs length top", 0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x01, 0x00, 0x7c, 0x03, 0x03),
    TB(1, "version 03 01", 0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x01),
    TB(2, "ClientHello", 0x16, 0x03, 0x03, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03),
    TB(2, "record 03 01", 0x16, 0x03, 0x01, 0x00, 0x80, 0x02, 0x00, 0x00, 0x7c, 0x03, 0x03),
};

static void test_malformed(void **st)
{
    uint8_t w[BUFCAP];
    size_t used, fl;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const bad_t *b = &bad[i];
        size_t n = b->p ? strlen(b->p) : b->binn;
        memcpy(w, b->p ? (const uint8_t *)b->p : b->bin, n);
        int r = um_shape_strip(b->s, b->dir, w, n, &used, &fl);
        if (r != UM_EPROTO) printf("case '%s': %d\n", b->why, r);
        assert_int_equal(r, UM_EPROTO);
        /* Nothing appended can repair it. */
        randombytes_buf(w + n, 600);
        assert_int_equal(um_shape_strip(b->s, b->dir, w, n + 600, &used, &fl), UM_EPROTO);
    }
    /* The controls of the table: the same with the defect fixed parse. */
    static const char *ok_http = "POST / HTTP/1.1\r\ncontent-length: 200\r\n\r\n";
    assert_int_equal(
        um_shape_strip(UM_SHAPE_HTTP, 1, (const uint8_t *)ok_http, strlen(ok_http), &used, &fl), 0);
    assert_int_equal(fl, 200);
    static const uint8_t ok_tls[] = {0x16, 0x03, 0x01, 0x00, 0x80, 0x01,
                                     0x00, 0x00, 0x7c, 0x03, 0x03};
    assert_int_equal(um_shape_strip(UM_SHAPE_TLS, 1, ok_tls, sizeof(ok_tls), &used, &fl), 0);
    assert_int_equal(fl, 0x80 - 6);
    static const char *ok_pr = "abcdefghijklmnopqrstuvwx\n";
    assert_int_equal(
        um_shape_strip(UM_SHAPE_PRINTABLE, 1, (const uint8_t *)ok_pr, strlen(ok_pr), &used, &fl),
        0);
    assert_int_equal(used, 25);

    /* A head that never ends is refused at the bound, not waited for. */
    size_t n = 0;
    n += (size_t)sprintf((char *)w, "POST / HTTP/1.1\r\nX: ");
    memset(w + n, 'a', BUFCAP - n);
    assert_int_equal(um_shape_strip(UM_SHAPE_HTTP, 1, w, UM_SHAPE_PREFIX_MAX - 1, &used, &fl),
                     UM_EAGAIN);
    assert_int_equal(um_shape_strip(UM_SHAPE_HTTP, 1, w, UM_SHAPE_PREFIX_MAX, &used, &fl),
                     UM_EPROTO);
    assert_int_equal(um_shape_strip(UM_SHAPE_HTTP, 1, w, BUFCAP, &used, &fl), UM_EPROTO);

    /* Unshaped flights are refused by every shaped parser, and early. */
    static const um_shape_t modes[] = {UM_SHAPE_PRINTABLE, UM_SHAPE_HTTP, UM_SHAPE_TLS};
    for (size_t m = 0; m < 3; m++)
        for (int i = 0; i < 1000; i++) {
            size_t fn = rand_flight_len();
            randombytes_buf(w, fn);
            assert_int_equal(um_shape_strip(modes[m], 1, w, fn, &used, &fl), UM_EPROTO);
        }
    /* A valid prefix of one mode or direction is wrong for the others. */
    for (size_t m = 0; m < 3; m++)
        for (size_t o = 0; o < 3; o++)
            for (int d = 1; d <= 2; d++)
                for (int e = 1; e <= 2; e++) {
                    if (m == o && d == e) continue;
                    if (modes[m] == UM_SHAPE_PRINTABLE && modes[o] == UM_SHAPE_PRINTABLE) continue;
                    size_t pn, wn = first_write(modes[m], d, 300, w, &pn);
                    assert_int_equal(um_shape_strip(modes[o], e, w, wn, &used, &fl), UM_EPROTO);
                }

    /* Arguments. */
    assert_int_equal(um_shape_strip((um_shape_t)4, 1, w, 10, &used, &fl), UM_EINVAL);
    assert_int_equal(um_shape_strip(UM_SHAPE_HTTP, 3, w, 10, &used, &fl), UM_EINVAL);
    assert_int_equal(um_shape_prefix(UM_SHAPE_HTTP, 1, 17, w, sizeof(w), &n), UM_EINVAL);
    assert_int_equal(um_shape_prefix(UM_SHAPE_HTTP, 1, 2049, w, sizeof(w), &n), UM_EINVAL);
    assert_int_equal(um_shape_prefix(UM_SHAPE_TLS, 1, 300, w, 10, &n), UM_ENOSPC);
    assert_int_equal(um_shape_prefix(UM_SHAPE_HTTP, 1, 300, w, 40, &n), UM_ENOSPC);
    assert_int_equal(um_shape_prefix((um_shape_t)7, 1, 300, w, sizeof(w), &n), UM_EINVAL);
}

/* ---- variety ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Number of distinct strings among v[0..n) (sorts v). */
static size_t distinct(char **v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_str);
    size_t d = n ? 1 : 0;
    for (size_t i = 1; i < n; i++)
        d += strcmp(v[i], v[i - 1]) != 0;
    return d;
}

static char *line(const uint8_t *p, size_t n, size_t which)
{
    size_t s = 0;
    for (size_t i = 0; i < which; i++) {
        while (s < n && p[s] != '\n')
            s++;
        s++;
    }
    size_t e = s;
    while (e < n && p[e] != '\r' && p[e] != '\n')
        e++;
    char *o = malloc(e - s + 1);
    memcpy(o, p + s, e - s);
    o[e - s] = 0;
    return o;
}

#define NV 300

static void test_variety(void **st)
{
    uint8_t w[BUFCAP];
    char *a[NV], *b[NV], *c[NV];
    size_t pn, minlen = 1000, maxlen = 0, maxhttp = 0;
    /* printable: run and length change per connection */
    for (int i = 0; i < NV; i++) {
        first_write(UM_SHAPE_PRINTABLE, 1, 300, w, &pn);
        a[i] = line(w, pn, 0);
        if (pn < minlen) minlen = pn;
        if (pn > maxlen) maxlen = pn;
    }
    assert_int_equal(distinct(a, NV), NV);
    printf("printable prefix lengths %zu..%zu\n", minlen, maxlen);
    assert_true(minlen <= 32 && maxlen >= 57);
    /* http, same flight length: request line, host and head all vary */
    for (int i = 0; i < NV; i++) {
        first_write(UM_SHAPE_HTTP, 1, 300, w, &pn);
        b[i] = line(w, pn, 0);
        c[i] = line(w, pn, 1);
        free(a[i]);
        a[i] = malloc(pn + 1);
        memcpy(a[i], w, pn);
        a[i][pn] = 0;
    }
    size_t dl = distinct(b, NV), dh = distinct(c, NV), dp = distinct(a, NV);
    printf("http: %zu distinct request lines, %zu hosts, %zu heads of %d\n", dl, dh, dp, NV);
    assert_true(dl >= NV - 2 && dh >= NV - 10 && dp == NV);
    for (int i = 0; i < NV; i++) {
        free(a[i]);
        free(b[i]);
        free(c[i]);
    }
    /* heads stay within the bound, even for the largest flight */
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(
            um_shape_prefix(UM_SHAPE_HTTP, 1 + (i & 1), UM_FLIGHT_MAX, w, sizeof(w), &pn), 0);
        if (pn > maxhttp) maxhttp = pn;
    }
    printf("longest http head %zu (bound %d)\n", maxhttp, UM_SHAPE_PREFIX_MAX);
    assert_true(maxhttp <= UM_SHAPE_PREFIX_MAX);
    /* tls: only the lengths change, with the flight length */
    size_t same = 0;
    uint8_t prev[UM_SHAPE_TLS_LEN] = {0};
    for (int i = 0; i < NV; i++) {
        first_write(UM_SHAPE_TLS, 1, rand_flight_len(), w, &pn);
        assert_int_equal(pn, UM_SHAPE_TLS_LEN);
        same += memcmp(prev, w, pn) == 0;
        memcpy(prev, w, pn);
    }
    assert_true(same < 10);
    /* the seeded generator is deterministic, and the seed matters */
    uint8_t s1[32] = {1}, s2[32] = {2}, x[UM_SHAPE_PREFIX_MAX], y[UM_SHAPE_PREFIX_MAX];
    size_t xn, yn;
    assert_int_equal(um_shape_prefix_seeded(UM_SHAPE_HTTP, 1, 500, s1, x, sizeof(x), &xn), 0);
    assert_int_equal(um_shape_prefix_seeded(UM_SHAPE_HTTP, 1, 500, s1, y, sizeof(y), &yn), 0);
    assert_int_equal(xn, yn);
    assert_memory_equal(x, y, xn);
    assert_int_equal(um_shape_prefix_seeded(UM_SHAPE_HTTP, 1, 500, s2, y, sizeof(y), &yn), 0);
    assert_true(xn != yn || memcmp(x, y, xn) != 0);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exempt),         cmocka_unit_test(test_strip_splits),
        cmocka_unit_test(test_roundtrip_mask), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_variety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
