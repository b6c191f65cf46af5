#include "crypto/record.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

static void nonce_of(uint8_t nonce[12], uint64_t c)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(c >> (8 * i));
}

static void header_key(um_rec_dir_t *d)
{
    static const char label[] = "umbra/1 header";
    crypto_generichash_blake2b(d->hk, 32, (const uint8_t *)label, sizeof(label) - 1, d->key, 32);
}

static void header_mask(const um_rec_dir_t *d, uint8_t m[2])
{
    uint8_t nonce[12];
    nonce_of(nonce, d->ctr);
    crypto_stream_chacha20_ietf(m, 2, nonce, d->hk);
}

int um_rec_init(um_rec_dir_t *d, int alg, int seal, const uint8_t key[32], uint64_t limit)
{
    if (!d || !key) return UM_EINVAL;
    memset(d, 0, sizeof(*d));
    memcpy(d->key, key, 32);
    header_key(d);
    d->limit = limit ? limit : UM_REC_CTR_LIMIT;
    int r = um_aead_init(&d->aead, alg, seal, key);
    if (r) sodium_memzero(d, sizeof(*d));
    return r;
}

void um_rec_close(um_rec_dir_t *d)
{
    if (!d) return;
    um_aead_close(&d->aead);
    sodium_memzero(d, sizeof(*d));
}

int um_rec_ratchet(um_rec_dir_t *d)
{
    static const char label[] = "umbra/1 rekey";
    uint8_t next[32];
    crypto_generichash_blake2b(next, 32, (const uint8_t *)label, sizeof(label) - 1, d->key, 32);
    memcpy(d->key, next, 32);
    sodium_memzero(next, sizeof(next));
    header_key(d);
    d->epoch++;
    return um_aead_rekey(&d->aead, d->key);
}

int um_rec_seal(um_rec_dir_t *d, const uint8_t *body, size_t n, uint8_t *out, size_t cap,
                size_t *outn)
{
    um_aead_part_t part = {body, n};
    if (!body) return UM_EINVAL;
    return um_rec_sealv(d, &part, 1, out, cap, outn);
}

int um_rec_sealv(um_rec_dir_t *d, const um_aead_part_t *parts, size_t nparts, uint8_t *out,
                 size_t cap, size_t *outn)
{
    uint8_t nonce[12], m[2];
    int r;
    size_t n = 0;
    if (!d || (!parts && nparts) || !out || !outn) return UM_EINVAL;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].n > UM_REC_BODY_MAX - n) return UM_EINVAL;
        n += parts[i].n;
    }
    if (n == 0) return UM_EINVAL;
    if (cap < n + UM_REC_OVERHEAD) return UM_ENOSPC;
    if (d->limit < 1 || d->ctr > d->limit - 1) return UM_ERANGE;
    header_mask(d, m);
    out[0] = (uint8_t)(n >> 8) ^ m[0];
    out[1] = (uint8_t)n ^ m[1];
    nonce_of(nonce, d->ctr);
    if ((r = um_aead_sealv(&d->aead, nonce, out, UM_REC_HDR_WIRE, parts, nparts,
                           out + UM_REC_HDR_WIRE)) != 0)
        return r;
    d->ctr++;
    *outn = n + UM_REC_OVERHEAD;
    return 0;
}

int um_rec_open_start(um_rec_dir_t *d, const uint8_t *p, size_t n, size_t *body_len)
{
    uint8_t nonce[12], m[2];
    if (!d || (!p && n) || !body_len) return UM_EINVAL;
    if (d->limit < 1 || d->ctr > d->limit - 1) return UM_ERANGE;
    if (!d->have_hdr) {
        if (n < UM_REC_HDR_WIRE) return UM_EAGAIN;
        header_mask(d, m);
        size_t bl = ((size_t)(p[0] ^ m[0]) << 8) | (p[1] ^ m[1]);
        if (bl == 0 || bl > UM_REC_BODY_MAX) return UM_EPROTO;
        d->body_len = bl;
        d->have_hdr = 1;
    }
    if (n < UM_REC_OVERHEAD + d->body_len) return UM_EAGAIN;
    nonce_of(nonce, d->ctr);
    int r = um_aead_open_init(&d->aead, nonce, p, UM_REC_HDR_WIRE);
    if (r) return r;
    *body_len = d->body_len;
    return 0;
}

int um_rec_open_body(um_rec_dir_t *d, const uint8_t *c, size_t k, uint8_t *out)
{
    return um_aead_open_update(&d->aead, c, k, out);
}

int um_rec_open_finish(um_rec_dir_t *d, const uint8_t *p, size_t *consumed)
{
    int r = um_aead_open_final(&d->aead, p + UM_REC_HDR_WIRE + d->body_len);
    if (r) return r;
    *consumed = UM_REC_OVERHEAD + d->body_len;
    d->have_hdr = 0;
    d->body_len = 0;
    d->ctr++;
    return 0;
}

int um_rec_open(um_rec_dir_t *d, const uint8_t *p, size_t n, uint8_t *body, size_t cap,
                size_t *bodyn, size_t *consumed)
{
    size_t bl = 0;
    int r;
    if (!d || (!p && n) || !body || !bodyn || !consumed || cap < UM_REC_BODY_MAX) return UM_EINVAL;
    if ((r = um_rec_open_start(d, p, n, &bl)) != 0) return r;
    if ((r = um_rec_open_body(d, p + UM_REC_HDR_WIRE, bl, body)) != 0 ||
        (r = um_rec_open_finish(d, p, consumed)) != 0) {
        sodium_memzero(body, bl);
        return r;
    }
    *bodyn = bl;
    return 0;
}
