#include "crypto/aead.h"

#include <limits.h>
#include <openssl/evp.h>

#include "util/err.h"

static const EVP_CIPHER *cipher_of(int alg)
{
    switch (alg) {
    case UM_AEAD_CHACHA20_POLY1305: return EVP_chacha20_poly1305();
    case UM_AEAD_AES256_GCM: return EVP_aes_256_gcm();
    default: return NULL;
    }
}

const char *um_aead_name(int alg)
{
    switch (alg) {
    case UM_AEAD_CHACHA20_POLY1305: return "chacha20-poly1305";
    case UM_AEAD_AES256_GCM: return "aes-256-gcm";
    default: return "none";
    }
}

int um_aead_init(um_aead_t *a, int alg, int encrypt, const uint8_t key[UM_AEAD_KEYLEN])
{
    const EVP_CIPHER *c = cipher_of(alg);
    if (!a || !c || !key) return UM_EINVAL;
    a->ctx = EVP_CIPHER_CTX_new();
    a->alg = alg;
    a->encrypt = encrypt ? 1 : 0;
    if (!a->ctx) return UM_ENOMEM;
    if (EVP_CipherInit_ex(a->ctx, c, NULL, NULL, NULL, a->encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_IVLEN, UM_AEAD_NONCELEN, NULL) != 1 ||
        EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, a->encrypt) != 1) {
        um_aead_close(a);
        return UM_EIO;
    }
    return 0;
}

int um_aead_rekey(um_aead_t *a, const uint8_t key[UM_AEAD_KEYLEN])
{
    if (!a || !a->ctx) return UM_EINVAL;
    return EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, a->encrypt) == 1 ? 0 : UM_EIO;
}

void um_aead_close(um_aead_t *a)
{
    if (!a) return;
    if (a->ctx) EVP_CIPHER_CTX_free(a->ctx);
    a->ctx = NULL;
}

int um_aead_seal(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                 size_t adlen, const uint8_t *p, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = a->ctx;
    int l = 0;
    if (!ctx || !a->encrypt || n > INT_MAX || adlen > INT_MAX) return UM_EINVAL;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1) return UM_EIO;
    if (adlen && EVP_EncryptUpdate(ctx, NULL, &l, ad, (int)adlen) != 1) return UM_EIO;
    if (n && EVP_EncryptUpdate(ctx, out, &l, p, (int)n) != 1) return UM_EIO;
    if (EVP_EncryptFinal_ex(ctx, out + n, &l) != 1) return UM_EIO;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, UM_AEAD_TAGLEN, out + n) != 1)
        return UM_EIO;
    return 0;
}

int um_aead_sealv(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                  size_t adlen, const um_aead_part_t *parts, size_t nparts, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = a->ctx;
    int l = 0;
    size_t n = 0;
    if (!ctx || !a->encrypt || adlen > INT_MAX || (!parts && nparts)) return UM_EINVAL;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].n > INT_MAX - n || (!parts[i].p && parts[i].n)) return UM_EINVAL;
        n += parts[i].n;
    }
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1) return UM_EIO;
    if (adlen && EVP_EncryptUpdate(ctx, NULL, &l, ad, (int)adlen) != 1) return UM_EIO;
    size_t at = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (!parts[i].n) continue;
        /* Both ciphers are stream modes: a piece of any length continues
         * the key stream where the previous one stopped. */
        if (EVP_EncryptUpdate(ctx, out + at, &l, parts[i].p, (int)parts[i].n) != 1 ||
            (size_t)l != parts[i].n)
            return UM_EIO;
        at += parts[i].n;
    }
    if (EVP_EncryptFinal_ex(ctx, out + n, &l) != 1) return UM_EIO;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, UM_AEAD_TAGLEN, out + n) != 1)
        return UM_EIO;
    return 0;
}

int um_aead_open_init(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                      size_t adlen)
{
    EVP_CIPHER_CTX *ctx = a->ctx;
    int l = 0;
    if (!ctx || a->encrypt || adlen > INT_MAX) return UM_EINVAL;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1) return UM_EIO;
    if (adlen && EVP_DecryptUpdate(ctx, NULL, &l, ad, (int)adlen) != 1) return UM_EIO;
    return 0;
}

int um_aead_open_update(um_aead_t *a, const uint8_t *c, size_t n, uint8_t *out)
{
    int l = 0;
    if (!a->ctx || a->encrypt || n > INT_MAX) return UM_EINVAL;
    if (!n) return 0;
    /* Both ciphers are stream modes: every byte in gives a byte out. */
    if (EVP_DecryptUpdate(a->ctx, out, &l, c, (int)n) != 1 || (size_t)l != n) return UM_EIO;
    return 0;
}

int um_aead_open_final(um_aead_t *a, const uint8_t tag[UM_AEAD_TAGLEN])
{
    uint8_t none[16];
    int l = 0;
    if (!a->ctx || a->encrypt) return UM_EINVAL;
    /* The tag is copied by OpenSSL; the cast drops const only for its API. */
    if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, UM_AEAD_TAGLEN, (void *)tag) != 1)
        return UM_EIO;
    return EVP_DecryptFinal_ex(a->ctx, none, &l) == 1 ? 0 : UM_EAUTH;
}

int um_aead_open(um_aead_t *a, const uint8_t nonce[UM_AEAD_NONCELEN], const uint8_t *ad,
                 size_t adlen, const uint8_t *c, size_t clen, uint8_t *out)
{
    int r;
    if (!a->ctx || a->encrypt || clen > INT_MAX || adlen > INT_MAX) return UM_EINVAL;
    if (clen < UM_AEAD_TAGLEN) return UM_EPROTO;
    size_t n = clen - UM_AEAD_TAGLEN;
    if ((r = um_aead_open_init(a, nonce, ad, adlen)) != 0 ||
        (r = um_aead_open_update(a, c, n, out)) != 0)
        return r;
    return um_aead_open_final(a, c + n);
}
