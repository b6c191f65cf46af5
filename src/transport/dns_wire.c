#include "transport/dns_wire.h"

#include <sodium.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t um_b32_enc(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t need = (n * 8 + 4) / 5, o = 0;
    if (need > cap) return 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32[(acc >> bits) & 31];
        }
    }
    if (bits) out[o++] = b32[(acc << (5 - bits)) & 31];
    return o;
}

static int b32_val(char c)
{
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '2' && c <= '7') return c - '2' + 26;
    return -1;
}

long um_b32_dec(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t rem = n % 8;
    if (rem == 1 || rem == 3 || rem == 6) return -1; /* no byte count ends there */
    if (n * 5 / 8 > cap) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b32_val(s[i]);
        if (v < 0) return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1; /* non-zero spare bits: not ours */
    return (long)o;
}

static uint8_t lc(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

bool um_dnsw_zone_valid(const char *zone)
{
    um_dnsw_t w;
    uint8_t k[32] = {0};
    int r = um_dnsw_init(&w, k, zone);
    um_dnsw_wipe(&w);
    return r == 0;
}

int um_dnsw_init(um_dnsw_t *w, const uint8_t server_pub[32], const char *zone)
{
    memset(w, 0, sizeof(*w));
    size_t n = strlen(zone), o = 0;
    if (n && zone[n - 1] == '.') n--;
    if (n == 0 || n > 200) return UM_EINVAL; /* leave room for data */
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && zone[j] != '.')
            j++;
        size_t l = j - i;
        if (l == 0 || l > 63) return UM_EINVAL;
        for (size_t k = i; k < j; k++) {
            char c = zone[k];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
            if (!ok) return UM_EINVAL;
        }
        w->zone[o++] = (uint8_t)l;
        for (size_t k = i; k < j; k++)
            w->zone[o++] = lc((uint8_t)zone[k]);
        w->zone_labels++;
        i = j + 1;
    }
    w->zone[o++] = 0;
    w->zone_len = o;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"umbra dns v1", 12);
    crypto_generichash_update(&st, server_pub, 32);
    crypto_generichash_final(&st, w->key, 32);
    return 0;
}

void um_dnsw_wipe(um_dnsw_t *w)
{
    sodium_memzero(w, sizeof(*w));
}

/* Characters of base32 that fit in the labels before the zone. */
static size_t up_chars(const um_dnsw_t *w)
{
    size_t avail = UM_DNSW_NAME_MAX - w->zone_len, c = 0;
    while (c + 1 + (c + 1 + 62) / 63 <= avail)
        c++;
    return c;
}

size_t um_dnsw_up_cap(const um_dnsw_t *w)
{
    size_t bytes = up_chars(w) * 5 / 8;
    return bytes > UM_DNSW_UP_HDR ? bytes - UM_DNSW_UP_HDR : 0;
}

static void tag(const um_dnsw_t *w, uint8_t dir, const uint8_t *hdr, size_t hn, const uint8_t *p,
                size_t n, uint8_t out[UM_DNSW_TAG])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, w->key, 32, UM_DNSW_TAG);
    crypto_generichash_update(&st, &dir, 1);
    crypto_generichash_update(&st, hdr, hn);
    crypto_generichash_update(&st, p, n);
    crypto_generichash_final(&st, out, UM_DNSW_TAG);
}

/* Masks (or unmasks) in place: ChaCha20 under the key, nonce conv||nonce,
 * upstream from block 0, downstream from block 1024 (an upstream payload
 * is far below 64 KiB). */
static void mask(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, int down, uint8_t *p, size_t n)
{
    uint8_t nn[8];
    um_st32(nn, conv);
    um_st32(nn + 4, nonce);
    crypto_stream_chacha20_xor_ic(p, p, n, nn, down ? 1024 : 0, w->key);
}

int um_dnsw_up_encode(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, uint8_t flags,
                      const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    if (n > um_dnsw_up_cap(w)) return UM_EMSGSIZE;
    uint8_t raw[256];
    char txt[256];
    um_st32(raw, conv);
    um_st32(raw + 4, nonce);
    raw[8] = flags;
    memcpy(raw + UM_DNSW_UP_HDR, p, n);
    mask(w, conv, nonce, 0, raw + UM_DNSW_UP_HDR, n);
    tag(w, 'u', raw, 9, raw + UM_DNSW_UP_HDR, n, raw + 9);
    size_t c = um_b32_enc(raw, UM_DNSW_UP_HDR + n, txt, sizeof(txt)), o = 0;
    for (size_t i = 0; i < c; i += 63) {
        size_t l = c - i < 63 ? c - i : 63;
        out[o++] = (uint8_t)l;
        memcpy(out + o, txt + i, l);
        o += l;
    }
    memcpy(out + o, w->zone, w->zone_len);
    o += w->zone_len;
    *outn = o;
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

um_dnsw_kind_t um_dnsw_up_decode(const um_dnsw_t *w, const uint8_t *name, size_t len,
                                 uint32_t *conv, uint32_t *nonce, uint8_t *flags, uint8_t *out,
                                 size_t *outn)
{
    size_t off[128], nl = 0, i = 0;
    *outn = 0;
    if (len > UM_DNSW_NAME_MAX) return UM_DNSW_OTHER;
    /* Walk the labels; a name that is not well formed is nobody's. */
    for (;;) {
        if (i >= len) return UM_DNSW_OTHER;
        uint8_t l = name[i];
        if (l > 63) return UM_DNSW_OTHER;
        if (l == 0) break;
        if (nl == 128) return UM_DNSW_OTHER;
        off[nl++] = i;
        i += 1 + (size_t)l;
    }
    if (i + 1 != len || nl < w->zone_labels) return UM_DNSW_OTHER;
    size_t zs = off[nl - w->zone_labels];
    if (len - zs != w->zone_len) return UM_DNSW_OTHER;
    for (size_t k = 0; k < w->zone_len; k++)
        if (lc(name[zs + k]) != w->zone[k]) return UM_DNSW_OTHER;
    if (zs == 0) return UM_DNSW_APEX;
    char txt[256];
    size_t c = 0;
    for (size_t k = 0; k < nl - w->zone_labels; k++) {
        size_t l = name[off[k]];
        memcpy(txt + c, name + off[k] + 1, l);
        c += l;
    }
    uint8_t raw[256];
    long rn = um_b32_dec(txt, c, raw, sizeof(raw));
    if (rn < (long)UM_DNSW_UP_HDR) return UM_DNSW_JUNK;
    size_t n = (size_t)rn - UM_DNSW_UP_HDR;
    uint8_t t[UM_DNSW_TAG];
    tag(w, 'u', raw, 9, raw + UM_DNSW_UP_HDR, n, t);
    if (sodium_memcmp(t, raw + 9, UM_DNSW_TAG) != 0) return UM_DNSW_JUNK;
    *conv = um_ld32(raw);
    *nonce = um_ld32(raw + 4);
    *flags = raw[8];
    memcpy(out, raw + UM_DNSW_UP_HDR, n);
    mask(w, *conv, *nonce, 0, out, n);
    *outn = n;
    return UM_DNSW_TUNNEL;
}

int um_dnsw_down_seal(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, const uint8_t *p, size_t n,
                      uint8_t *out, size_t cap, size_t *outn)
{
    if (cap < UM_DNSW_DOWN_HDR || n > cap - UM_DNSW_DOWN_HDR) return UM_EMSGSIZE;
    uint8_t hdr[8];
    um_st32(hdr, conv);
    um_st32(hdr + 4, nonce);
    memmove(out + UM_DNSW_DOWN_HDR, p, n);
    mask(w, conv, nonce, 1, out + UM_DNSW_DOWN_HDR, n);
    tag(w, 'd', hdr, 8, out + UM_DNSW_DOWN_HDR, n, out);
    *outn = UM_DNSW_DOWN_HDR + n;
    return 0;
}

int um_dnsw_down_open(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, const uint8_t *p, size_t n,
                      uint8_t *out, size_t cap, size_t *outn)
{
    *outn = 0;
    if (n < UM_DNSW_DOWN_HDR) return UM_EPROTO;
    if (n - UM_DNSW_DOWN_HDR > cap) return UM_EMSGSIZE;
    uint8_t hdr[8], t[UM_DNSW_TAG];
    um_st32(hdr, conv);
    um_st32(hdr + 4, nonce);
    tag(w, 'd', hdr, 8, p + UM_DNSW_DOWN_HDR, n - UM_DNSW_DOWN_HDR, t);
    if (sodium_memcmp(t, p, UM_DNSW_TAG) != 0) return UM_EAUTH;
    memmove(out, p + UM_DNSW_DOWN_HDR, n - UM_DNSW_DOWN_HDR);
    mask(w, conv, nonce, 1, out, n - UM_DNSW_DOWN_HDR);
    *outn = n - UM_DNSW_DOWN_HDR;
    return 0;
}
