/* JA4 (see ja4.h for the definition, written from FoxIO's JA4.md). */
#include "transport/ja4.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static const char hx[] = "0123456789abcdef";

/* Where the unhashed text goes: a SHA-256 state or a bounded buffer. */
typedef struct {
    crypto_hash_sha256_state *sha;
    char *buf;
    size_t cap, len;
    int full;
} sink_t;

static void put(sink_t *s, const char *t, size_t k)
{
    if (s->sha) {
        crypto_hash_sha256_update(s->sha, (const unsigned char *)t, k);
        return;
    }
    if (s->len + k >= s->cap) {
        s->full = 1;
        return;
    }
    memcpy(s->buf + s->len, t, k);
    s->len += k;
    s->buf[s->len] = 0;
}

static void put_hex16(sink_t *s, unsigned v, int comma)
{
    char t[6];
    int k = snprintf(t, sizeof t, "%s%04x", comma ? "," : "", v & 0xffff);
    put(s, t, (size_t)k);
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Sorted non-GREASE ciphers into v (cap UM_TLS_HELLO_MAX / 2); returns count. */
static size_t sorted_ciphers(const um_tls_hello_t *h, uint16_t *v)
{
    size_t k = 0;
    for (unsigned i = 0; i < h->ciphers.len / 2u; i++) {
        uint16_t c = um_tls_u16(h, h->ciphers, i);
        if (!um_tls_is_grease(c)) v[k++] = c;
    }
    qsort(v, k, sizeof *v, cmp_u16);
    return k;
}

/* Sorted non-GREASE extensions other than SNI and ALPN into v; count. */
static size_t sorted_exts(const um_tls_hello_t *h, uint16_t *v)
{
    size_t k = 0;
    for (unsigned i = 0; i < h->n_ext; i++) {
        uint16_t t = h->ext[i].type;
        if (!um_tls_is_grease(t) && t != UM_TLS_EXT_SNI && t != UM_TLS_EXT_ALPN) v[k++] = t;
    }
    qsort(v, k, sizeof *v, cmp_u16);
    return k;
}

static void emit_ciphers(sink_t *s, const uint16_t *v, size_t k)
{
    for (size_t i = 0; i < k; i++)
        put_hex16(s, v[i], i > 0);
}

static void emit_exts(sink_t *s, const um_tls_hello_t *h, const uint16_t *v, size_t k)
{
    for (size_t i = 0; i < k; i++)
        put_hex16(s, v[i], i > 0);
    int first = 1;
    for (unsigned i = 0; i < h->sigalgs.len / 2u; i++) {
        uint16_t a = um_tls_u16(h, h->sigalgs, i);
        if (um_tls_is_grease(a)) continue;
        if (first) put(s, "_", 1);
        put_hex16(s, a, !first);
        first = 0;
    }
}

static int alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The a part: 10 characters + NUL. */
static void part_a(const um_tls_hello_t *h, char a[11])
{
    unsigned ver = h->legacy_version;
    if (um_tls_hello_ext(h, UM_TLS_EXT_VERSIONS)) {
        ver = 0;
        for (unsigned i = 0; i < h->versions.len / 2u; i++) {
            uint16_t v = um_tls_u16(h, h->versions, i);
            if (!um_tls_is_grease(v) && v > ver) ver = v;
        }
    }
    const char *vs = "00";
    switch (ver) {
    case 0x0304: vs = "13"; break;
    case 0x0303: vs = "12"; break;
    case 0x0302: vs = "11"; break;
    case 0x0301: vs = "10"; break;
    case 0x0300: vs = "s3"; break;
    case 0x0002: vs = "s2"; break;
    case 0xfeff: vs = "d1"; break;
    case 0xfefd: vs = "d2"; break;
    case 0xfefc: vs = "d3"; break;
    default: break;
    }
    unsigned nc = 0, ne = 0;
    for (unsigned i = 0; i < h->ciphers.len / 2u; i++)
        nc += !um_tls_is_grease(um_tls_u16(h, h->ciphers, i));
    for (unsigned i = 0; i < h->n_ext; i++)
        ne += !um_tls_is_grease(h->ext[i].type);
    char al[3] = "00";
    const uint8_t *q = um_tls_at(h, h->alpn), *end = q + h->alpn.len;
    while (q < end) { /* the parser checked the list */
        size_t l = q[0];
        const uint8_t *name = q + 1;
        q += 1 + l;
        if (l == 2 && um_tls_is_grease((uint16_t)(name[0] << 8 | name[1]))) continue;
        uint8_t f = name[0], z = name[l - 1];
        if (alnum(f) && alnum(z)) {
            al[0] = (char)f;
            al[1] = (char)z;
        } else {
            al[0] = hx[f >> 4];
            al[1] = hx[z & 15];
        }
        break;
    }
    snprintf(a, 11, "t%s%c%02u%02u%s", vs, um_tls_hello_ext(h, UM_TLS_EXT_SNI) ? 'd' : 'i',
             nc > 99 ? 99 : nc, ne > 99 ? 99 : ne, al);
}

static void hash12(crypto_hash_sha256_state *st, size_t count, char out[13])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(st, d);
    if (count == 0) {
        memcpy(out, "000000000000", 13);
        return;
    }
    sodium_bin2hex(out, 13, d, 6);
}

int um_ja4(const um_tls_hello_t *h, char out[UM_JA4_LEN + 1])
{
    if (!h || !out) return UM_EINVAL;
    uint16_t v[UM_TLS_HELLO_MAX / 2];
    char a[11], b[13], c[13];
    part_a(h, a);
    crypto_hash_sha256_state st;
    sink_t s = {&st, NULL, 0, 0, 0};
    crypto_hash_sha256_init(&st);
    size_t k = sorted_ciphers(h, v);
    emit_ciphers(&s, v, k);
    hash12(&st, k, b);
    crypto_hash_sha256_init(&st);
    k = sorted_exts(h, v);
    emit_exts(&s, h, v, k);
    hash12(&st, k, c);
    snprintf(out, UM_JA4_LEN + 1, "%s_%s_%s", a, b, c);
    return 0;
}

int um_ja4_raw(const um_tls_hello_t *h, char *out, size_t cap)
{
    if (!h || !out || cap == 0) return UM_EINVAL;
    uint16_t v[UM_TLS_HELLO_MAX / 2];
    char a[11];
    part_a(h, a);
    sink_t s = {NULL, out, cap, 0, 0};
    out[0] = 0;
    put(&s, a, strlen(a));
    put(&s, "_", 1);
    emit_ciphers(&s, v, sorted_ciphers(h, v));
    put(&s, "_", 1);
    emit_exts(&s, h, v, sorted_exts(h, v));
    return s.full ? UM_ENOSPC : 0;
}
