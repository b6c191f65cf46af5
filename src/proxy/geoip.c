/* GeoIP tables: Tor text ranges in sorted arrays, MaxMind files through
 * libmaxminddb (see geoip.h). */
#include "proxy/geoip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/file.h"

#define RANGES_MAX    (8u << 20)   /* ranges in one table, both families */
#define GEO_LINE_MAX  256          /* characters of one text line */
#define GEO_FILE_MAX  (512u << 20) /* bytes of one text file */
#define MMDB_TAIL_MAX (128u * 1024u)

typedef struct {
    uint32_t lo, hi;
    uint16_t cc;
} r4_t;

typedef struct {
    uint8_t lo[16], hi[16];
    uint16_t cc;
} r6_t;

struct um_geoip {
    r4_t *v4;
    size_t n4, cap4;
    r6_t *v6;
    size_t n6, cap6;
    MMDB_s mm[UM_GEOIP_FILES_MAX];
    size_t n_mm;
};

int um_geoip_new(um_geoip_t **out)
{
    um_geoip_t *g = calloc(1, sizeof(*g));
    if (!g) return UM_ENOMEM;
    *out = g;
    return 0;
}

void um_geoip_free(um_geoip_t *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_mm; i++)
        MMDB_close(&g->mm[i]);
    free(g->v4);
    free(g->v6);
    free(g);
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 1024;
    void *nv = realloc(*v, nc * size);
    if (!nv) return UM_ENOMEM;
    *v = nv;
    *cap = nc;
    return 0;
}

/* Two letters, or "??" (unknown, as Tor writes it). */
static bool is_cc(const char *s, size_t n)
{
    if (n != 2) return false;
    if (s[0] == '?' && s[1] == '?') return true;
    for (size_t i = 0; i < 2; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
    }
    return true;
}

static uint16_t cc_of(const char *s)
{
    char a = s[0], b = s[1];
    if (a >= 'a' && a <= 'z') a = (char)(a - 'a' + 'A');
    if (b >= 'a' && b <= 'z') b = (char)(b - 'a' + 'A');
    return UM_GEOIP_CC(a, b);
}

static int parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10) return UM_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return UM_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX) return UM_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_v6(const char *s, size_t n, uint8_t out[16])
{
    char b[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(b)) return UM_EINVAL;
    memcpy(b, s, n);
    b[n] = 0;
    return inet_pton(AF_INET6, b, out) == 1 ? 0 : UM_EINVAL;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* One non-comment line: 0, or UM_EINVAL with why. */
static int parse_line(um_geoip_t *g, const char *s, size_t n, const char **why)
{
    const char *f[3];
    size_t fl[3];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == ',') {
            if (k == 3) {
                *why = "expected LOW,HIGH,CC (three fields)";
                return UM_EINVAL;
            }
            f[k] = s + start;
            fl[k] = i - start;
            trim(&f[k], &fl[k]);
            k++;
            start = i + 1;
        }
    if (k != 3) {
        *why = "expected LOW,HIGH,CC (three fields)";
        return UM_EINVAL;
    }
    if (!is_cc(f[2], fl[2])) {
        *why = "expected a two-letter country code as the third field";
        return UM_EINVAL;
    }
    uint16_t cc = cc_of(f[2]);
    if ((g->n4 + g->n6) >= RANGES_MAX) {
        *why = "too many ranges";
        return UM_ENOSPC;
    }
    bool six = memchr(f[0], ':', fl[0]) != NULL;
    if (!six) {
        uint32_t lo, hi;
        if (parse_u32(f[0], fl[0], &lo) != 0 || parse_u32(f[1], fl[1], &hi) != 0) {
            *why = "expected IPv4 addresses as decimal integers (INTIPLOW,INTIPHIGH,CC)";
            return UM_EINVAL;
        }
        if (lo > hi) {
            *why = "the range's low end is above its high end";
            return UM_EINVAL;
        }
        if (cc == UM_GEOIP_CC('?', '?')) return 0; /* unknown: as if absent */
        if (grow((void **)&g->v4, &g->cap4, g->n4, sizeof(r4_t)) != 0) {
            *why = "out of memory";
            return UM_ENOMEM;
        }
        g->v4[g->n4++] = (r4_t){lo, hi, cc};
        return 0;
    }
    r6_t r;
    if (parse_v6(f[0], fl[0], r.lo) != 0 || parse_v6(f[1], fl[1], r.hi) != 0) {
        *why = "expected IPv6 addresses (IPV6LOW,IPV6HIGH,CC)";
        return UM_EINVAL;
    }
    if (memcmp(r.lo, r.hi, 16) > 0) {
        *why = "the range's low end is above its high end";
        return UM_EINVAL;
    }
    if (cc == UM_GEOIP_CC('?', '?')) return 0;
    r.cc = cc;
    if (grow((void **)&g->v6, &g->cap6, g->n6, sizeof(r6_t)) != 0) {
        *why = "out of memory";
        return UM_ENOMEM;
    }
    g->v6[g->n6++] = r;
    return 0;
}

int um_geoip_parse_text(um_geoip_t *g, const char *path, const char *text, size_t n, char *err,
                        size_t errlen)
{
    size_t pos = 0;
    unsigned line = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && text[e] != '\n')
            e++;
        line++;
        const char *s = text + pos;
        size_t len = e - pos;
        pos = e < n ? e + 1 : e;
        trim(&s, &len);
        if (len == 0 || s[0] == '#') continue;
        const char *why = NULL;
        int r;
        if (len > GEO_LINE_MAX) {
            why = "line too long";
            r = UM_EINVAL;
        } else if (memchr(s, '\0', len)) {
            why = "NUL byte in line";
            r = UM_EINVAL;
        } else {
            r = parse_line(g, s, len, &why);
        }
        if (r != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, line, why);
            return r;
        }
    }
    return 0;
}

static int cmp4(const void *a, const void *b)
{
    const r4_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cmp6(const void *a, const void *b)
{
    const r6_t *x = a, *y = b;
    return memcmp(x->lo, y->lo, 16);
}

int um_geoip_finish(um_geoip_t *g, char *err, size_t errlen)
{
    if (g->n4) qsort(g->v4, g->n4, sizeof(r4_t), cmp4);
    if (g->n6) qsort(g->v6, g->n6, sizeof(r6_t), cmp6);
    for (size_t i = 1; i < g->n4; i++)
        if (g->v4[i].lo <= g->v4[i - 1].hi) {
            snprintf(err, errlen, "GeoIP ranges %u-%u and %u-%u overlap", g->v4[i - 1].lo,
                     g->v4[i - 1].hi, g->v4[i].lo, g->v4[i].hi);
            return UM_EINVAL;
        }
    for (size_t i = 1; i < g->n6; i++)
        if (memcmp(g->v6[i].lo, g->v6[i - 1].hi, 16) <= 0) {
            char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, g->v6[i - 1].hi, a, sizeof(a));
            inet_ntop(AF_INET6, g->v6[i].lo, b, sizeof(b));
            snprintf(err, errlen,
                     "GeoIP IPv6 ranges overlap (one ends at %s, the next starts at %s)", a, b);
            return UM_EINVAL;
        }
    return 0;
}

/* The MaxMind metadata marker sits in the last 128 KiB of a .mmdb file. */
static bool has_mmdb_marker(const uint8_t *p, size_t n)
{
    static const uint8_t marker[] = "\xab\xcd\xefMaxMind.com";
    const size_t ml = sizeof(marker) - 1;
    size_t from = n > MMDB_TAIL_MAX ? n - MMDB_TAIL_MAX : 0;
    for (size_t i = n >= ml ? n - ml + 1 : 0; i-- > from;)
        if (memcmp(p + i, marker, ml) == 0) return true;
    return false;
}

int um_geoip_load(um_geoip_t *g, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t n = 0;
    int r = um_file_read(path, GEO_FILE_MAX, &text, &n, err, errlen);
    if (r == 0 && has_mmdb_marker((const uint8_t *)text, n)) {
        free(text);
        if (g->n_mm == UM_GEOIP_FILES_MAX) {
            snprintf(err, errlen, "%s: at most %d MaxMind files", path, UM_GEOIP_FILES_MAX);
            return UM_ENOSPC;
        }
        int s = MMDB_open(path, MMDB_MODE_MMAP, &g->mm[g->n_mm]);
        if (s != MMDB_SUCCESS) {
            snprintf(err, errlen, "%s: not a readable MaxMind DB: %s", path, MMDB_strerror(s));
            return UM_EINVAL;
        }
        g->n_mm++;
        return 0;
    }
    if (r == 0) r = um_geoip_parse_text(g, path, text ? text : "", n, err, errlen);
    free(text);
    return r;
}

static uint16_t mm_lookup(const MMDB_s *mm, const um_addr_t *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (ip->type == UM_ADDR_IPV4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ip->u.v4, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ip->u.v6, 16);
    }
    int e = 0;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(mm, (const struct sockaddr *)&ss, &e);
    if (e != MMDB_SUCCESS || !res.found_entry) return 0;
    static const char *const keys[2][3] = {{"country", "iso_code", NULL},
                                           {"registered_country", "iso_code", NULL}};
    for (int k = 0; k < 2; k++) {
        MMDB_entry_data_s d;
        if (MMDB_aget_value(&res.entry, &d, keys[k]) != MMDB_SUCCESS || !d.has_data ||
            d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2 || !is_cc(d.utf8_string, 2))
            continue;
        return cc_of(d.utf8_string);
    }
    return 0;
}

uint16_t um_geoip_lookup(const um_geoip_t *g, const um_addr_t *ip)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    um_addr_t a = *ip;
    if (a.type == UM_ADDR_IPV6 && memcmp(a.u.v6, mapped, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, ip->u.v6 + 12, 4);
        a.type = UM_ADDR_IPV4;
        memcpy(a.u.v4, v4, 4);
    }
    if (a.type == UM_ADDR_IPV4 && g->n4) {
        uint32_t x = (uint32_t)a.u.v4[0] << 24 | (uint32_t)a.u.v4[1] << 16 |
                     (uint32_t)a.u.v4[2] << 8 | a.u.v4[3];
        size_t lo = 0, hi = g->n4; /* first range with lo > x */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (g->v4[mid].lo <= x)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && g->v4[lo - 1].hi >= x) return g->v4[lo - 1].cc;
    } else if (a.type == UM_ADDR_IPV6 && g->n6) {
        size_t lo = 0, hi = g->n6;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (memcmp(g->v6[mid].lo, a.u.v6, 16) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && memcmp(g->v6[lo - 1].hi, a.u.v6, 16) >= 0) return g->v6[lo - 1].cc;
    }
    if (a.type != UM_ADDR_IPV4 && a.type != UM_ADDR_IPV6) return 0;
    for (size_t i = 0; i < g->n_mm; i++) {
        uint16_t cc = mm_lookup(&g->mm[i], &a);
        if (cc) return cc;
    }
    return 0;
}

size_t um_geoip_ranges(const um_geoip_t *g)
{
    return g->n4 + g->n6;
}

size_t um_geoip_mmdb_files(const um_geoip_t *g)
{
    return g->n_mm;
}
