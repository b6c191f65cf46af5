/* First-packet shaping (docs/PROTOCOL.md section 7). The exemption rules the
 * modes rely on are those of Wu et al., "How the Great Firewall of China
 * Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023, section
 * 4.1: Ex2 (first six bytes printable) and Ex4 (a printable run longer than 20)
 * for `printable`, Ex5 (HTTP method) and Ex2 for `http`, Ex5 (TLS record
 * header 16 03 0x) for `tls`. */
#include "transport/shape.h"

#include <sodium.h>
#include <string.h>

#include "transport/mask.h"
#include "util/err.h"

/* ---- randomness: a ChaCha20 stream from a 32-byte seed ---- */

typedef struct {
    uint8_t seed[randombytes_SEEDBYTES];
    uint8_t pool[256];
    size_t pos;
} rng_t;

static void rng_init(rng_t *r, const uint8_t seed[32])
{
    memcpy(r->seed, seed, sizeof(r->seed));
    r->pos = sizeof(r->pool);
}

/* Uniform in [0, n) up to a bias below 2^-24 (n is small, choices are public). */
static uint32_t rnd(rng_t *r, uint32_t n)
{
    if (r->pos + 4 > sizeof(r->pool)) {
        randombytes_buf_deterministic(r->pool, sizeof(r->pool), r->seed);
        memcpy(r->seed, r->pool, sizeof(r->seed)); /* next refill: a new key */
        r->pos = sizeof(r->seed);
    }
    uint32_t v = (uint32_t)r->pool[r->pos] << 24 | (uint32_t)r->pool[r->pos + 1] << 16 |
                 (uint32_t)r->pool[r->pos + 2] << 8 | r->pool[r->pos + 3];
    r->pos += 4;
    return n ? v % n : 0;
}

static uint32_t rnd_in(rng_t *r, uint32_t lo, uint32_t hi)
{
    return lo + rnd(r, hi - lo + 1);
}

/* ---- bounded output ---- */

typedef struct {
    uint8_t *p;
    size_t cap, n;
    int err;
} wr_t;

static void put_bytes(wr_t *w, const void *s, size_t k)
{
    if (w->err) return;
    if (w->cap - w->n < k) {
        w->err = UM_ENOSPC;
        return;
    }
    memcpy(w->p + w->n, s, k);
    w->n += k;
}

static void put(wr_t *w, const char *s)
{
    put_bytes(w, s, strlen(s));
}

static void put_ch(wr_t *w, char ch)
{
    put_bytes(w, &ch, 1);
}

static void put_num(wr_t *w, size_t v)
{
    char d[24];
    size_t k = sizeof(d);
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v && k > 0);
    put_bytes(w, d + k, sizeof(d) - k);
}

static void put_rand(wr_t *w, rng_t *r, const char *alphabet, size_t len)
{
    size_t an = strlen(alphabet);
    for (size_t i = 0; i < len; i++)
        put_ch(w, alphabet[rnd(r, (uint32_t)an)]);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char LOWER_DIGIT[] = "abcdefghijklmnopqrstuvwxyz0123456789";
static const char LOWER[] = "abcdefghijklmnopqrstuvwxyz";
static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* ---- generators ---- */

static void gen_printable(wr_t *w, rng_t *r)
{
    put_rand(w, r, B64, rnd_in(r, UM_SHAPE_PRINTABLE_MIN, UM_SHAPE_PRINTABLE_MAX));
    put_ch(w, '\n');
}

static void gen_tls(wr_t *w, int dir, size_t flight_len)
{
    size_t rec = flight_len + 6, hs = flight_len + 2;
    uint8_t h[UM_SHAPE_TLS_LEN] = {
        0x16,
        0x03,
        dir == UM_SHAPE_C2S ? 0x01 : 0x03, /* record: handshake, TLS 1.x */
        (uint8_t)(rec >> 8),
        (uint8_t)rec,                      /* record length */
        dir == UM_SHAPE_C2S ? 0x01 : 0x02, /* ClientHello / ServerHello */
        (uint8_t)(hs >> 16),
        (uint8_t)(hs >> 8),
        (uint8_t)hs, /* handshake length */
        0x03,
        0x03, /* legacy_version */
    };
    put_bytes(w, h, sizeof(h));
}

static const char *const TLDS[] = {"com", "net", "org", "io", "info", "co", "app", "dev"};
static const char *const SUBS[] = {"www", "api", "cdn", "static", "m", "upload", "img", "app"};
static const char *const EXTS[] = {"", "", "", ".php", ".json", ".bin", ".do", ".aspx"};
static const char *const CTYPES[] = {"application/octet-stream",
                                     "application/x-www-form-urlencoded", "application/x-protobuf",
                                     "text/plain"};
static const char *const REQ_OPT[] = {
    "Accept: */*",
    "Accept-Encoding: gzip, deflate",
    "Accept-Language: en-US,en;q=0.9",
    "Cache-Control: no-cache",
    "Connection: keep-alive",
    "Pragma: no-cache",
};
static const char *const RSP_OPT[] = {
    "Cache-Control: no-store",         "Connection: keep-alive", "Pragma: no-cache",
    "X-Content-Type-Options: nosniff", "Vary: Accept-Encoding",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A random subset of opt[0..n) (n <= 8) in random order, one header each. */
static void put_opt_headers(wr_t *w, rng_t *r, const char *const *opt, size_t n)
{
    size_t idx[8];
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd(r, (uint32_t)(i + 1)), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    size_t k = rnd_in(r, 0, (uint32_t)(n < 4 ? n : 4));
    for (size_t i = 0; i < k; i++) {
        put(w, opt[idx[i]]);
        put(w, "\r\n");
    }
}

static void gen_http(wr_t *w, rng_t *r, int dir, size_t flight_len)
{
    if (dir == UM_SHAPE_C2S) {
        put(w, rnd(r, 4) ? "POST /" : "PUT /");
        uint32_t segs = rnd_in(r, 1, 3);
        for (uint32_t i = 0; i < segs; i++) {
            if (i) put_ch(w, '/');
            put_rand(w, r, LOWER_DIGIT, rnd_in(r, 3, 12));
        }
        put(w, EXTS[rnd(r, NELEM(EXTS))]);
        if (rnd(r, 3) == 0) {
            put_ch(w, '?');
            put_rand(w, r, LOWER, rnd_in(r, 1, 8));
            put_ch(w, '=');
            put_rand(w, r, ALNUM, rnd_in(r, 4, 16));
        }
        put(w, " HTTP/1.1\r\nHost: ");
        if (rnd(r, 2)) {
            put(w, SUBS[rnd(r, NELEM(SUBS))]);
            put_ch(w, '.');
        }
        put_rand(w, r, LOWER_DIGIT, rnd_in(r, 4, 14));
        put_ch(w, '.');
        put(w, TLDS[rnd(r, NELEM(TLDS))]);
        put(w, "\r\n");
        put_opt_headers(w, r, REQ_OPT, NELEM(REQ_OPT));
    } else {
        put(w, "HTTP/1.1 200 OK\r\n");
        put_opt_headers(w, r, RSP_OPT, NELEM(RSP_OPT));
    }
    put(w, "Content-Type: ");
    put(w, CTYPES[rnd(r, NELEM(CTYPES))]);
    put(w, "\r\nContent-Length: ");
    put_num(w, flight_len);
    put(w, "\r\n\r\n");
}

static int check_args(um_shape_t shape, int dir)
{
    if ((unsigned)shape > UM_SHAPE_MAX) return UM_EINVAL;
    if (dir != UM_SHAPE_C2S && dir != UM_SHAPE_S2C) return UM_EINVAL;
    return 0;
}

int um_shape_prefix_seeded(um_shape_t shape, int dir, size_t flight_len, const uint8_t seed[32],
                           uint8_t *out, size_t cap, size_t *outn)
{
    int r;
    if ((r = check_args(shape, dir)) != 0) return r;
    if (!seed || !outn || (!out && cap)) return UM_EINVAL;
    if (flight_len < UM_MASK_OVERHEAD || flight_len > UM_FLIGHT_MAX) return UM_EINVAL;
    rng_t rng;
    wr_t w = {.p = out, .cap = cap};
    rng_init(&rng, seed);
    switch (shape) {
    case UM_SHAPE_NONE: break;
    case UM_SHAPE_PRINTABLE: gen_printable(&w, &rng); break;
    case UM_SHAPE_HTTP: gen_http(&w, &rng, dir, flight_len); break;
    case UM_SHAPE_TLS: gen_tls(&w, dir, flight_len); break;
    }
    sodium_memzero(&rng, sizeof(rng));
    if (w.err) return w.err;
    *outn = w.n;
    return 0;
}

int um_shape_prefix(um_shape_t shape, int dir, size_t flight_len, uint8_t *out, size_t cap,
                    size_t *outn)
{
    uint8_t seed[32];
    randombytes_buf(seed, sizeof(seed));
    int r = um_shape_prefix_seeded(shape, dir, flight_len, seed, out, cap, outn);
    sodium_memzero(seed, sizeof(seed));
    return r;
}

/* ---- the parser ----
 *
 * A cursor over p[0..lim), lim = min(n, UM_SHAPE_PREFIX_MAX). Running out of
 * bytes means "need more" while lim < UM_SHAPE_PREFIX_MAX, "malformed" at the
 * bound. Every byte is checked as soon as it is there. */

typedef struct {
    const uint8_t *p;
    size_t lim, pos;
    int at_bound; /* lim is the prefix bound, not the end of the data */
} cur_t;

static int short_of(const cur_t *c)
{
    return c->at_bound ? UM_EPROTO : UM_EAGAIN;
}

/* Matches the literal s; UM_EAGAIN/UM_EPROTO as above. */
static int lit(cur_t *c, const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        if (c->pos >= c->lim) return short_of(c);
        if (c->p[c->pos] != (uint8_t)s[i]) return UM_EPROTO;
        c->pos++;
    }
    return 0;
}

static int is_print(uint8_t b)
{
    return b >= 0x20 && b <= 0x7e;
}

static int is_b64(uint8_t b)
{
    return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '+' ||
           b == '/';
}

static int is_tchar(uint8_t b)
{
    return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-';
}

static int strip_printable(cur_t *c, size_t *flight_len)
{
    for (;;) { /* bounded: pos grows up to lim */
        if (c->pos >= c->lim) return short_of(c);
        uint8_t b = c->p[c->pos];
        if (b == '\n') {
            if (c->pos < UM_SHAPE_PRINTABLE_MIN) return UM_EPROTO;
            c->pos++;
            *flight_len = 0;
            return 0;
        }
        if (!is_b64(b) || c->pos >= UM_SHAPE_PRINTABLE_MAX) return UM_EPROTO;
        c->pos++;
    }
}

static int strip_tls(cur_t *c, int dir, size_t *flight_len)
{
    const uint8_t ver = dir == UM_SHAPE_C2S ? 0x01 : 0x03;
    const uint8_t type = dir == UM_SHAPE_C2S ? 0x01 : 0x02;
    size_t rec = 0, hs = 0;
    for (; c->pos < UM_SHAPE_TLS_LEN; c->pos++) {
        if (c->pos >= c->lim) return short_of(c);
        uint8_t b = c->p[c->pos];
        switch (c->pos) {
        case 0: /* content type: handshake */
            if (b != 0x16) return UM_EPROTO;
            break;
        case 1:
        case 9:
        case 10:
            if (b != 0x03) return UM_EPROTO;
            break;
        case 2:
            if (b != ver) return UM_EPROTO;
            break;
        case 3: rec = (size_t)b << 8; break;
        case 4:
            rec |= b;
            if (rec < UM_MASK_OVERHEAD + 6 || rec > UM_FLIGHT_MAX + 6) return UM_EPROTO;
            break;
        case 5:
            if (b != type) return UM_EPROTO;
            break;
        case 6:
        case 7:
        case 8:
            hs = hs << 8 | b;
            if (c->pos == 8 && hs != rec - 4) return UM_EPROTO;
            if (c->pos == 6 && b != 0) return UM_EPROTO; /* rec <= 2054 */
            break;
        }
    }
    *flight_len = rec - 6;
    return 0;
}

/* Case-insensitive compare of p[0..n) with the lower-case literal s. */
static int name_is(const uint8_t *p, size_t n, const char *s)
{
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (b >= 'A' && b <= 'Z') b = (uint8_t)(b + 32);
        if (b != (uint8_t)s[i]) return 0;
    }
    return 1;
}

#define HTTP_MAX_HEADERS 16

static int strip_http(cur_t *c, int dir, size_t *flight_len)
{
    int r;
    if (dir == UM_SHAPE_C2S) {
        /* method: POST or PUT */
        if (c->pos + 1 >= c->lim) {
            if (c->pos < c->lim && c->p[c->pos] != 'P') return UM_EPROTO;
            return short_of(c);
        }
        if ((r = lit(c, c->p[c->pos + 1] == 'U' ? "PUT /" : "POST /")) != 0) return r;
        /* path: printable without space, then " HTTP/1.1\r\n" */
        for (;;) {
            if (c->pos >= c->lim) return short_of(c);
            uint8_t b = c->p[c->pos];
            if (b == ' ') break;
            if (!is_print(b)) return UM_EPROTO;
            c->pos++;
        }
        if ((r = lit(c, " HTTP/1.1\r\n")) != 0) return r;
    } else if ((r = lit(c, "HTTP/1.1 200 OK\r\n")) != 0) {
        return r;
    }
    size_t clen = 0;
    int have_clen = 0;
    for (int line = 0; line <= HTTP_MAX_HEADERS; line++) {
        if (c->pos >= c->lim) return short_of(c);
        if (c->p[c->pos] == '\r') { /* the empty line ends the head */
            if ((r = lit(c, "\r\n")) != 0) return r;
            if (!have_clen) return UM_EPROTO;
            *flight_len = clen;
            return 0;
        }
        if (line == HTTP_MAX_HEADERS) return UM_EPROTO;
        size_t name = c->pos;
        for (;;) {
            if (c->pos >= c->lim) return short_of(c);
            uint8_t b = c->p[c->pos];
            if (b == ':') break;
            if (!is_tchar(b)) return UM_EPROTO;
            c->pos++;
        }
        if (c->pos == name) return UM_EPROTO;
        int is_clen = name_is(c->p + name, c->pos - name, "content-length");
        if (is_clen && have_clen) return UM_EPROTO;
        if ((r = lit(c, ": ")) != 0) return r;
        size_t val = c->pos, v = 0;
        for (;;) {
            if (c->pos >= c->lim) return short_of(c);
            uint8_t b = c->p[c->pos];
            if (b == '\r') break;
            if (!is_print(b)) return UM_EPROTO;
            if (is_clen) {
                if (b < '0' || b > '9' || (c->pos > val && v == 0)) return UM_EPROTO;
                v = v * 10 + (size_t)(b - '0');
                if (v > UM_FLIGHT_MAX) return UM_EPROTO;
            }
            c->pos++;
        }
        if (is_clen) {
            if (c->pos == val || v < UM_MASK_OVERHEAD) return UM_EPROTO;
            clen = v;
            have_clen = 1;
        }
        if ((r = lit(c, "\r\n")) != 0) return r;
    }
    return UM_EPROTO; /* not reached: the loop returns */
}

int um_shape_strip(um_shape_t shape, int dir, const uint8_t *p, size_t n, size_t *consumed,
                   size_t *flight_len)
{
    int r;
    if ((r = check_args(shape, dir)) != 0) return r;
    if ((!p && n) || !consumed || !flight_len) return UM_EINVAL;
    cur_t c = {.p = p, .lim = n, .pos = 0, .at_bound = 0};
    if (n >= UM_SHAPE_PREFIX_MAX) {
        c.lim = UM_SHAPE_PREFIX_MAX;
        c.at_bound = 1;
    }
    size_t fl = 0;
    switch (shape) {
    case UM_SHAPE_NONE: r = 0; break;
    case UM_SHAPE_PRINTABLE: r = strip_printable(&c, &fl); break;
    case UM_SHAPE_HTTP: r = strip_http(&c, dir, &fl); break;
    case UM_SHAPE_TLS: r = strip_tls(&c, dir, &fl); break;
    default: return UM_EINVAL;
    }
    if (r) return r;
    *consumed = c.pos;
    *flight_len = fl;
    return 0;
}
