/* ClientHello builder in the shapes of Chromium 156 and Firefox ESR 153, and
 * the server's extraction of the slots (tls_hello.h). Every constant below
 * was read off the browsers' own hellos in tests/data/tls/; the randomised
 * parts follow what the captures show (docs/internals/tls-hello.md):
 *   Chromium (BoringSSL): GREASE cipher, version, sigalg, group (the key share
 *     reuses the group's value) and two GREASE extensions (first, empty; last,
 *     one zero byte; never equal), each drawn on its own; the 17 other
 *     extensions in a fresh uniformly random order per hello; separate x25519
 *     keys in the hybrid and the plain share; GREASE ECH with AES-128-GCM and
 *     a payload of 144, 176, 208 or 240 bytes.
 *   Firefox (NSS): fixed order, no GREASE; the hybrid's x25519 part is the
 *     plain x25519 share; a P-256 share; GREASE ECH with AES-128-GCM or
 *     ChaCha20-Poly1305 and a 239-byte payload. */
#include "transport/tls_hello.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <sodium.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

#define MLKEM_Q 3329

/* ---- output with length placeholders ---- */

typedef struct {
    uint8_t *p;
    size_t cap, off;
    int full;
} wr_t;

static uint8_t *wr_take(wr_t *w, size_t k)
{
    if (w->full || w->cap - w->off < k) {
        w->full = 1;
        return NULL;
    }
    uint8_t *q = w->p + w->off;
    w->off += k;
    return q;
}

static void wr_bytes(wr_t *w, const void *b, size_t k)
{
    uint8_t *q = wr_take(w, k);
    if (q && k) memcpy(q, b, k);
}

static void wr_u8(wr_t *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    wr_bytes(w, &b, 1);
}

static void wr_u16(wr_t *w, unsigned v)
{
    uint8_t b[2];
    um_st16(b, (uint16_t)v);
    wr_bytes(w, b, 2);
}

/* Opens a length field of k (1, 2 or 3) bytes; returns its offset. */
static size_t wr_open(wr_t *w, size_t k)
{
    size_t at = w->off;
    wr_take(w, k);
    return at;
}

/* Closes the length field opened at at (k bytes) over what followed it. */
static void wr_close(wr_t *w, size_t at, size_t k)
{
    if (w->full) return;
    size_t v = w->off - at - k;
    for (size_t i = 0; i < k; i++)
        w->p[at + i] = (uint8_t)(v >> (8 * (k - 1 - i)));
}

/* ---- randomness ---- */

typedef struct {
    um_tls_rng_cb fn;
    void *ctx;
} rng_t;

static void rnd(const rng_t *r, void *out, size_t n)
{
    if (r->fn)
        r->fn(r->ctx, out, n);
    else
        randombytes_buf(out, n);
}

/* Uniform in [0, n) for n <= 256, by rejection (bounded: falls back to a
 * modulo after 64 rejections, which a working rng never reaches). */
static unsigned rnd_below(const rng_t *r, unsigned n)
{
    unsigned lim = 256 - 256 % n;
    uint8_t b = 0;
    for (int i = 0; i < 64; i++) {
        rnd(r, &b, 1);
        if (b < lim) break;
    }
    return b % n;
}

/* A GREASE value as BoringSSL draws it: 0x?A?A with a random high nibble. */
static uint16_t grease(const rng_t *r)
{
    uint8_t b;
    rnd(r, &b, 1);
    unsigned v = (b & 0xf0u) | 0x0au;
    return (uint16_t)(v << 8 | v);
}

/* A well-formed ML-KEM-768 encapsulation key (FIPS 203: ByteEncode12 of
 * 768 coefficients below q, then the 32-byte seed rho): uniform coefficients
 * by rejection sampling, 12 bits at a time, as SampleNTT draws them. */
static int mlkem_ek(const rng_t *r, uint8_t ek[UM_TLS_MLKEM768_EK_LEN])
{
    uint16_t c[768];
    size_t have = 0;
    uint8_t b[168];
    for (int round = 0; round < 64 && have < 768; round++) {
        rnd(r, b, sizeof b);
        for (size_t i = 0; i + 3 <= sizeof b && have < 768; i += 3) {
            unsigned d1 = b[i] | (unsigned)(b[i + 1] & 0x0f) << 8;
            unsigned d2 = b[i + 1] >> 4 | (unsigned)b[i + 2] << 4;
            if (d1 < MLKEM_Q) c[have++] = (uint16_t)d1;
            if (d2 < MLKEM_Q && have < 768) c[have++] = (uint16_t)d2;
        }
    }
    sodium_memzero(b, sizeof b);
    if (have < 768) return UM_EIO;
    for (size_t i = 0; i < 384; i++) {
        unsigned a = c[2 * i], z = c[2 * i + 1];
        ek[3 * i] = (uint8_t)a;
        ek[3 * i + 1] = (uint8_t)(a >> 8 | (z & 0x0f) << 4);
        ek[3 * i + 2] = (uint8_t)(z >> 4);
    }
    rnd(r, ek + 1152, 32); /* rho */
    return 0;
}

/* A fresh x25519 public key (the secret is thrown away). */
static void x25519_pub(const rng_t *r, uint8_t pub[32])
{
    uint8_t sk[32];
    rnd(r, sk, sizeof sk);
    crypto_scalarmult_curve25519_base(pub, sk);
    sodium_memzero(sk, sizeof sk);
}

/* A fresh P-256 public key, uncompressed (04 || X || Y). */
static int p256_pub(const rng_t *r, uint8_t pub[65])
{
    int rc = UM_ENOMEM;
    uint8_t sk[32];
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    BIGNUM *k = BN_new();
    BN_CTX *ctx = BN_CTX_new();
    if (!g || !pt || !k || !ctx) goto out;
    const BIGNUM *order = EC_GROUP_get0_order(g);
    rc = UM_EIO;
    for (int i = 0; i < 16; i++) {
        rnd(r, sk, sizeof sk);
        if (!BN_bin2bn(sk, sizeof sk, k)) goto out;
        if (!BN_is_zero(k) && BN_cmp(k, order) < 0) {
            rc = 0;
            break;
        }
    }
    if (rc != 0) goto out;
    if (!EC_POINT_mul(g, pt, k, NULL, NULL, ctx) ||
        EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, 65, ctx) != 65)
        rc = UM_EIO;
out:
    sodium_memzero(sk, sizeof sk);
    BN_clear_free(k);
    BN_CTX_free(ctx);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return rc;
}

/* ---- the fingerprints' constant parts ---- */

static const uint16_t chromium_ciphers[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f,
                                            0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                                            0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
static const uint16_t chromium_sigalgs[] = {0x0904, 0x0905, 0x0906, 0x0403, 0x0804, 0x0401,
                                            0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
static const uint16_t chromium_groups[] = {UM_TLS_GROUP_X25519MLKEM768, UM_TLS_GROUP_X25519, 0x0017,
                                           0x0018};
static const uint16_t chromium_ech_lens[] = {144, 176, 208, 240};
/* Chromium's trust_anchors (0xca34) body: the same in every capture. */
static const uint8_t chromium_trust_anchors[186] = {
    0x00, 0xb8, 0x05, 0x82, 0xdf, 0x13, 0x02, 0x01, 0x05, 0x82, 0xdf, 0x13, 0x02, 0x06, 0x05, 0x82,
    0xdf, 0x13, 0x02, 0x0d, 0x05, 0x82, 0xdf, 0x13, 0x02, 0x0e, 0x05, 0x82, 0xdf, 0x13, 0x02, 0x0f,
    0x05, 0x82, 0xdf, 0x13, 0x02, 0x12, 0x05, 0x82, 0xdf, 0x13, 0x02, 0x13, 0x05, 0x82, 0xdf, 0x13,
    0x02, 0x14, 0x08, 0x83, 0x9a, 0x64, 0x8c, 0x9b, 0x2d, 0x01, 0x07, 0x08, 0x83, 0x9a, 0x64, 0x8c,
    0x9b, 0x2d, 0x01, 0x08, 0x08, 0x83, 0x9a, 0x64, 0x8c, 0x9b, 0x2d, 0x01, 0x09, 0x08, 0x83, 0x9a,
    0x64, 0x8c, 0x9b, 0x2d, 0x01, 0x0a, 0x08, 0x83, 0x9a, 0x64, 0x8c, 0x9b, 0x2d, 0x01, 0x0b, 0x08,
    0x83, 0x9a, 0x64, 0x8c, 0x9b, 0x2d, 0x01, 0x0c, 0x08, 0x83, 0x9a, 0x64, 0x8c, 0x9b, 0x2d, 0x01,
    0x0d, 0x08, 0x83, 0x9a, 0x64, 0x8c, 0x9b, 0x2d, 0x01, 0x12, 0x08, 0x83, 0x9a, 0x64, 0x8c, 0x9b,
    0x2d, 0x01, 0x13, 0x04, 0xd6, 0x79, 0x09, 0x01, 0x04, 0xd6, 0x79, 0x09, 0x04, 0x04, 0xd6, 0x79,
    0x09, 0x05, 0x04, 0xd6, 0x79, 0x09, 0x06, 0x04, 0xd6, 0x79, 0x09, 0x07, 0x04, 0xd6, 0x79, 0x09,
    0x08, 0x04, 0xd6, 0x79, 0x09, 0x0a, 0x04, 0xd6, 0x79, 0x09, 0x0b, 0x04, 0xd6, 0x79, 0x09, 0x0c,
    0x04, 0xd6, 0x79, 0x09, 0x0d, 0x04, 0xd6, 0x79, 0x09, 0x0f,
};

static const uint16_t firefox_ciphers[] = {0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9,
                                           0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc013, 0xc014,
                                           0x009c, 0x009d, 0x002f, 0x0035};
static const uint16_t firefox_groups[] = {
    UM_TLS_GROUP_X25519MLKEM768, UM_TLS_GROUP_X25519, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101};
static const uint16_t firefox_sigalgs[] = {0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806,
                                           0x0401, 0x0501, 0x0601, 0x0203, 0x0201};
static const uint16_t firefox_delegated[] = {0x0403, 0x0503, 0x0603, 0x0203};
static const uint16_t firefox_ech_lens[] = {239};

static const uint8_t alpn_h2_h11[] = {0x00, 0x0c, 0x02, 'h', '2', 0x08, 'h',
                                      't',  't',  'p',  '/', '1', '.',  '1'};
static const uint8_t status_ocsp[] = {0x01, 0x00, 0x00, 0x00, 0x00};

#define N(a) (sizeof(a) / sizeof *(a))

const char *um_tls_fp_name(um_tls_fp_t fp)
{
    switch (fp) {
    case UM_TLS_FP_CHROMIUM: return "chromium";
    case UM_TLS_FP_FIREFOX: return "firefox";
    default: return NULL;
    }
}

static const uint16_t *ech_lens(um_tls_fp_t fp, size_t *n)
{
    switch (fp) {
    case UM_TLS_FP_CHROMIUM: *n = N(chromium_ech_lens); return chromium_ech_lens;
    case UM_TLS_FP_FIREFOX: *n = N(firefox_ech_lens); return firefox_ech_lens;
    default: *n = 0; return NULL;
    }
}

size_t um_tls_fp_ech_len(um_tls_fp_t fp, um_tls_rng_cb rng, void *rng_ctx)
{
    size_t n;
    const uint16_t *l = ech_lens(fp, &n);
    if (!l) return 0;
    rng_t r = {rng, rng_ctx};
    return l[n > 1 ? rnd_below(&r, (unsigned)n) : 0];
}

int um_tls_fp_ech_len_ok(um_tls_fp_t fp, size_t len)
{
    size_t n;
    const uint16_t *l = ech_lens(fp, &n);
    for (size_t i = 0; i < n; i++)
        if (l[i] == len) return 1;
    return 0;
}

int um_tls_sni_ok(const char *s, size_t *len)
{
    if (!s) return 0;
    size_t n = strnlen(s, 254);
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    if (len) *len = n;
    return 1;
}

/* ---- extension writers ---- */

static void ext_begin(wr_t *w, uint16_t type, size_t *at)
{
    wr_u16(w, type);
    *at = wr_open(w, 2);
}

static void ext_raw(wr_t *w, uint16_t type, const void *b, size_t k)
{
    wr_u16(w, type);
    wr_u16(w, (unsigned)k);
    wr_bytes(w, b, k);
}

static void ext_sni(wr_t *w, const char *sni, size_t n)
{
    size_t a, l;
    ext_begin(w, UM_TLS_EXT_SNI, &a);
    l = wr_open(w, 2);
    wr_u8(w, 0); /* host_name */
    wr_u16(w, (unsigned)n);
    wr_bytes(w, sni, n);
    wr_close(w, l, 2);
    wr_close(w, a, 2);
}

/* A list of uint16 with a len16 (len8 when len8) prefix; a GREASE value
 * first when g != 0. */
static void ext_u16s(wr_t *w, uint16_t type, int len8, uint16_t g, const uint16_t *v, size_t n)
{
    size_t a, l;
    ext_begin(w, type, &a);
    l = wr_open(w, len8 ? 1 : 2);
    if (g) wr_u16(w, g);
    for (size_t i = 0; i < n; i++)
        wr_u16(w, v[i]);
    wr_close(w, l, len8 ? 1 : 2);
    wr_close(w, a, 2);
}

static void ext_ech(wr_t *w, const rng_t *r, uint16_t aead, const um_tls_slots_t *s)
{
    size_t a;
    uint8_t cfg;
    rnd(r, &cfg, 1);
    ext_begin(w, UM_TLS_EXT_ECH, &a);
    wr_u8(w, 0);       /* outer */
    wr_u16(w, 0x0001); /* HKDF-SHA256 */
    wr_u16(w, aead);
    wr_u8(w, cfg);
    wr_u16(w, UM_TLS_ECH_ENC_LEN);
    wr_bytes(w, s->ech_enc, UM_TLS_ECH_ENC_LEN);
    wr_u16(w, (unsigned)s->ech_payload_len);
    wr_bytes(w, s->ech_payload, s->ech_payload_len);
    wr_close(w, a, 2);
}

/* ---- Chromium ---- */

enum {
    CH_VERSIONS,
    CH_TRUST_ANCHORS,
    CH_COMPRESS_CERT,
    CH_ALPN,
    CH_STATUS,
    CH_SCT,
    CH_ALPS,
    CH_RENEG,
    CH_SNI,
    CH_TICKET,
    CH_SIGALGS,
    CH_GROUPS,
    CH_EMS,
    CH_ECH,
    CH_PSK_MODES,
    CH_KEY_SHARE,
    CH_POINT_FORMATS,
    CH_N
};

typedef struct {
    uint16_t g_cipher, g_group, g_ext1, g_ext2, g_version, g_sigalg;
    const char *sni;
    size_t sni_len;
    const uint8_t *x25519;
    const uint8_t *hybrid; /* UM_TLS_X25519MLKEM768_LEN */
    const um_tls_slots_t *slots;
} chromium_t;

static void chromium_ext(wr_t *w, const rng_t *r, const chromium_t *c, int which)
{
    size_t a, l;
    switch (which) {
    case CH_VERSIONS: {
        static const uint16_t v[] = {0x0304, 0x0303};
        ext_u16s(w, UM_TLS_EXT_VERSIONS, 1, c->g_version, v, N(v));
        break;
    }
    case CH_TRUST_ANCHORS:
        ext_raw(w, UM_TLS_EXT_TRUST_ANCHORS, chromium_trust_anchors, sizeof chromium_trust_anchors);
        break;
    case CH_COMPRESS_CERT: ext_raw(w, UM_TLS_EXT_COMPRESS_CERT, "\x02\x00\x02", 3); break;
    case CH_ALPN: ext_raw(w, UM_TLS_EXT_ALPN, alpn_h2_h11, sizeof alpn_h2_h11); break;
    case CH_STATUS: ext_raw(w, UM_TLS_EXT_STATUS_REQUEST, status_ocsp, sizeof status_ocsp); break;
    case CH_SCT: ext_raw(w, UM_TLS_EXT_SCT, NULL, 0); break;
    case CH_ALPS: ext_raw(w, UM_TLS_EXT_ALPS, "\x00\x03\x02h2", 5); break;
    case CH_RENEG: ext_raw(w, UM_TLS_EXT_RENEGOTIATION, "\x00", 1); break;
    case CH_SNI: ext_sni(w, c->sni, c->sni_len); break;
    case CH_TICKET: ext_raw(w, UM_TLS_EXT_SESSION_TICKET, NULL, 0); break;
    case CH_SIGALGS:
        ext_u16s(w, UM_TLS_EXT_SIGALGS, 0, c->g_sigalg, chromium_sigalgs, N(chromium_sigalgs));
        break;
    case CH_GROUPS:
        ext_u16s(w, UM_TLS_EXT_GROUPS, 0, c->g_group, chromium_groups, N(chromium_groups));
        break;
    case CH_EMS: ext_raw(w, UM_TLS_EXT_EMS, NULL, 0); break;
    case CH_ECH: ext_ech(w, r, 0x0001, c->slots); break;
    case CH_PSK_MODES: ext_raw(w, UM_TLS_EXT_PSK_MODES, "\x01\x01", 2); break;
    case CH_KEY_SHARE:
        ext_begin(w, UM_TLS_EXT_KEY_SHARE, &a);
        l = wr_open(w, 2);
        wr_u16(w, c->g_group); /* BoringSSL's GREASE share: one zero byte */
        wr_u16(w, 1);
        wr_u8(w, 0);
        wr_u16(w, UM_TLS_GROUP_X25519MLKEM768);
        wr_u16(w, UM_TLS_X25519MLKEM768_LEN);
        wr_bytes(w, c->hybrid, UM_TLS_X25519MLKEM768_LEN);
        wr_u16(w, UM_TLS_GROUP_X25519);
        wr_u16(w, 32);
        wr_bytes(w, c->x25519, 32);
        wr_close(w, l, 2);
        wr_close(w, a, 2);
        break;
    case CH_POINT_FORMATS: ext_raw(w, UM_TLS_EXT_EC_POINT_FORMATS, "\x01\x00", 2); break;
    default: break;
    }
}

static int build_chromium(wr_t *w, const rng_t *r, chromium_t *c)
{
    uint8_t hybrid[UM_TLS_X25519MLKEM768_LEN];
    int rc = mlkem_ek(r, hybrid);
    if (rc != 0) return rc;
    x25519_pub(r, hybrid + UM_TLS_MLKEM768_EK_LEN); /* a key of its own, as Chromium */
    c->hybrid = hybrid;
    c->g_cipher = grease(r);
    c->g_group = grease(r);
    c->g_ext1 = grease(r);
    c->g_ext2 = grease(r);
    if (c->g_ext2 == c->g_ext1) c->g_ext2 ^= 0x1010;
    c->g_version = grease(r);
    c->g_sigalg = grease(r);
    uint8_t order[CH_N];
    for (unsigned i = 0; i < CH_N; i++)
        order[i] = (uint8_t)i;
    for (unsigned i = CH_N - 1; i > 0; i--) { /* Fisher-Yates */
        unsigned j = rnd_below(r, i + 1);
        uint8_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    wr_u16(w, 2 * (1 + N(chromium_ciphers)));
    wr_u16(w, c->g_cipher);
    for (size_t i = 0; i < N(chromium_ciphers); i++)
        wr_u16(w, chromium_ciphers[i]);
    wr_u8(w, 1); /* compression: null only */
    wr_u8(w, 0);
    size_t el = wr_open(w, 2);
    ext_raw(w, c->g_ext1, NULL, 0);
    for (unsigned i = 0; i < CH_N; i++)
        chromium_ext(w, r, c, order[i]);
    ext_raw(w, c->g_ext2, "\x00", 1);
    wr_close(w, el, 2);
    return 0;
}

/* ---- Firefox ---- */

static int build_firefox(wr_t *w, const rng_t *r, const char *sni, size_t sni_len,
                         const uint8_t x25519[32], const um_tls_slots_t *s)
{
    uint8_t hybrid[UM_TLS_X25519MLKEM768_LEN], p256[65];
    int rc = mlkem_ek(r, hybrid);
    if (rc == 0) rc = p256_pub(r, p256);
    if (rc != 0) return rc;
    memcpy(hybrid + UM_TLS_MLKEM768_EK_LEN, x25519, 32); /* NSS reuses its x25519 key */
    uint8_t b;
    rnd(r, &b, 1);
    uint16_t aead = (b & 1) ? 0x0003 : 0x0001;

    wr_u16(w, 2 * N(firefox_ciphers));
    for (size_t i = 0; i < N(firefox_ciphers); i++)
        wr_u16(w, firefox_ciphers[i]);
    wr_u8(w, 1);
    wr_u8(w, 0);
    size_t el = wr_open(w, 2), a, l;
    ext_sni(w, sni, sni_len);
    ext_raw(w, UM_TLS_EXT_EMS, NULL, 0);
    ext_raw(w, UM_TLS_EXT_RENEGOTIATION, "\x00", 1);
    ext_u16s(w, UM_TLS_EXT_GROUPS, 0, 0, firefox_groups, N(firefox_groups));
    ext_raw(w, UM_TLS_EXT_EC_POINT_FORMATS, "\x01\x00", 2);
    ext_raw(w, UM_TLS_EXT_SESSION_TICKET, NULL, 0);
    ext_raw(w, UM_TLS_EXT_ALPN, alpn_h2_h11, sizeof alpn_h2_h11);
    ext_raw(w, UM_TLS_EXT_STATUS_REQUEST, status_ocsp, sizeof status_ocsp);
    ext_u16s(w, UM_TLS_EXT_DELEGATED_CREDS, 0, 0, firefox_delegated, N(firefox_delegated));
    ext_raw(w, UM_TLS_EXT_SCT, NULL, 0);
    ext_begin(w, UM_TLS_EXT_KEY_SHARE, &a);
    l = wr_open(w, 2);
    wr_u16(w, UM_TLS_GROUP_X25519MLKEM768);
    wr_u16(w, UM_TLS_X25519MLKEM768_LEN);
    wr_bytes(w, hybrid, sizeof hybrid);
    wr_u16(w, UM_TLS_GROUP_X25519);
    wr_u16(w, 32);
    wr_bytes(w, x25519, 32);
    wr_u16(w, UM_TLS_GROUP_P256);
    wr_u16(w, 65);
    wr_bytes(w, p256, 65);
    wr_close(w, l, 2);
    wr_close(w, a, 2);
    static const uint16_t v[] = {0x0304, 0x0303};
    ext_u16s(w, UM_TLS_EXT_VERSIONS, 1, 0, v, N(v));
    ext_u16s(w, UM_TLS_EXT_SIGALGS, 0, 0, firefox_sigalgs, N(firefox_sigalgs));
    ext_raw(w, UM_TLS_EXT_PSK_MODES, "\x01\x01", 2);
    ext_raw(w, UM_TLS_EXT_RECORD_SIZE_LIMIT, "\x40\x01", 2);
    ext_raw(w, UM_TLS_EXT_COMPRESS_CERT, "\x06\x00\x01\x00\x02\x00\x03", 7);
    ext_ech(w, r, aead, s);
    wr_close(w, el, 2);
    return 0;
}

int um_tls_hello_build(um_tls_fp_t fp, const char *sni, const uint8_t x25519_pub[32],
                       const um_tls_slots_t *slots, um_tls_rng_cb rng, void *rng_ctx, uint8_t *out,
                       size_t cap, size_t *outn)
{
    size_t sni_len = 0;
    if (!sni || !x25519_pub || !slots || !out || !outn || (unsigned)fp > UM_TLS_FP_MAX)
        return UM_EINVAL;
    if (!um_tls_sni_ok(sni, &sni_len) || !um_tls_fp_ech_len_ok(fp, slots->ech_payload_len) ||
        !slots->ech_payload)
        return UM_EINVAL;
    rng_t r = {rng, rng_ctx};
    wr_t w = {out, cap, 0, 0};
    wr_u8(&w, 22); /* handshake record, TLS 1.0 record version as both send */
    wr_u16(&w, 0x0301);
    size_t rl = wr_open(&w, 2);
    wr_u8(&w, 1); /* ClientHello */
    size_t hl = wr_open(&w, 3);
    wr_u16(&w, 0x0303);
    wr_bytes(&w, slots->random, 32);
    wr_u8(&w, 32);
    wr_bytes(&w, slots->session_id, 32);
    int rc;
    if (fp == UM_TLS_FP_CHROMIUM) {
        chromium_t c = {0};
        c.sni = sni;
        c.sni_len = sni_len;
        c.x25519 = x25519_pub;
        c.slots = slots;
        rc = build_chromium(&w, &r, &c);
    } else {
        rc = build_firefox(&w, &r, sni, sni_len, x25519_pub, slots);
    }
    if (rc != 0) return rc;
    wr_close(&w, hl, 3);
    wr_close(&w, rl, 2);
    if (w.full) return UM_ENOSPC;
    *outn = w.off;
    return 0;
}

int um_tls_hello_slots(const um_tls_hello_t *h, um_tls_slots_t *out, uint8_t x25519_pub[32])
{
    if (!h || !out || !x25519_pub) return UM_EINVAL;
    if (h->session_id_len != 32 || !h->has_ech || h->ech_type != 0 ||
        h->ech_enc.len != UM_TLS_ECH_ENC_LEN ||
        !(um_tls_fp_ech_len_ok(UM_TLS_FP_CHROMIUM, h->ech_payload.len) ||
          um_tls_fp_ech_len_ok(UM_TLS_FP_FIREFOX, h->ech_payload.len)))
        return UM_EPROTO;
    int found = 0;
    for (unsigned i = 0; i < h->n_keyshare; i++) {
        if (h->keyshare[i].group != UM_TLS_GROUP_X25519) continue;
        if (found++ || h->keyshare[i].key.len != 32) return UM_EPROTO;
        memcpy(x25519_pub, um_tls_at(h, h->keyshare[i].key), 32);
    }
    if (!found) return UM_EPROTO;
    memcpy(out->random, h->random, 32);
    memcpy(out->session_id, h->session_id, 32);
    memcpy(out->ech_enc, um_tls_at(h, h->ech_enc), UM_TLS_ECH_ENC_LEN);
    out->ech_payload = um_tls_at(h, h->ech_payload);
    out->ech_payload_len = h->ech_payload.len;
    return 0;
}
