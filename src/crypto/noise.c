/* Noise_IK_25519_ChaChaPoly_BLAKE2b, following The Noise Protocol Framework,
 * revision 34 (2018-07-11), sections 5 (processing rules), 7.5 (IK), 12
 * (25519, ChaChaPoly, BLAKE2b). Comments name the spec's functions and tokens. */
#include "crypto/noise.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

#define BLOCKLEN 128

/* HMAC-HASH (RFC 2104) with BLAKE2b-512, unkeyed: the key-pad blocks are
 * absorbed once into two states, which each MAC then copies. */
typedef struct {
    crypto_generichash_blake2b_state in, out;
} hmac_key_t;

static void hmac_key(hmac_key_t *hk, const uint8_t *key, size_t keylen)
{
    uint8_t kb[BLOCKLEN], pad[BLOCKLEN];
    memset(kb, 0, sizeof(kb));
    if (keylen > BLOCKLEN)
        crypto_generichash_blake2b(kb, 64, key, keylen, NULL, 0);
    else if (keylen)
        memcpy(kb, key, keylen);
    for (int i = 0; i < BLOCKLEN; i++)
        pad[i] = kb[i] ^ 0x36;
    crypto_generichash_blake2b_init(&hk->in, NULL, 0, 64);
    crypto_generichash_blake2b_update(&hk->in, pad, BLOCKLEN);
    for (int i = 0; i < BLOCKLEN; i++)
        pad[i] = kb[i] ^ 0x5c;
    crypto_generichash_blake2b_init(&hk->out, NULL, 0, 64);
    crypto_generichash_blake2b_update(&hk->out, pad, BLOCKLEN);
    sodium_memzero(kb, sizeof(kb));
    sodium_memzero(pad, sizeof(pad));
}

static void hmac_run(const hmac_key_t *hk, uint8_t out[64], const uint8_t *d1, size_t n1,
                     const uint8_t *d2, size_t n2)
{
    crypto_generichash_blake2b_state st = hk->in;
    uint8_t inner[64];
    if (n1) crypto_generichash_blake2b_update(&st, d1, n1);
    if (n2) crypto_generichash_blake2b_update(&st, d2, n2);
    crypto_generichash_blake2b_final(&st, inner, 64);
    st = hk->out;
    crypto_generichash_blake2b_update(&st, inner, 64);
    crypto_generichash_blake2b_final(&st, out, 64);
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&st, sizeof(st));
}

void um_noise_hmac(uint8_t out[64], const uint8_t *key, size_t keylen, const uint8_t *d1, size_t n1,
                   const uint8_t *d2, size_t n2)
{
    hmac_key_t hk;
    hmac_key(&hk, key, keylen);
    hmac_run(&hk, out, d1, n1, d2, n2);
    sodium_memzero(&hk, sizeof(hk));
}

/* HKDF(chaining_key, input_key_material, num_outputs), section 4.3. */
void um_noise_hkdf(const uint8_t ck[64], const uint8_t *ikm, size_t ikmlen, uint8_t o1[64],
                   uint8_t o2[64], uint8_t o3[64])
{
    uint8_t temp[64], a[64], b[64];
    const uint8_t one = 1, two = 2, three = 3;
    hmac_key_t hk;

    um_noise_hmac(temp, ck, 64, ikm, ikmlen, NULL, 0); /* temp_key */
    hmac_key(&hk, temp, 64);
    hmac_run(&hk, a, &one, 1, NULL, 0);
    if (o2 || o3) hmac_run(&hk, b, a, 64, &two, 1);
    if (o3) hmac_run(&hk, o3, b, 64, &three, 1);
    if (o1) memcpy(o1, a, 64);
    if (o2) memcpy(o2, b, 64);
    sodium_memzero(temp, sizeof(temp));
    sodium_memzero(a, sizeof(a));
    sodium_memzero(b, sizeof(b));
    sodium_memzero(&hk, sizeof(hk));
}

static void nonce_bytes(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

int um_noise_encrypt(const uint8_t k[32], uint64_t n, const uint8_t *ad, size_t adlen,
                     const uint8_t *p, size_t plen, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long clen;

    if (n == UINT64_MAX) return UM_ERANGE; /* 2^64-1 is reserved (section 5.1) */
    nonce_bytes(nonce, n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, p, plen, ad, adlen, NULL, nonce, k);
    return 0;
}

int um_noise_decrypt(const uint8_t k[32], uint64_t n, const uint8_t *ad, size_t adlen,
                     const uint8_t *c, size_t clen, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long plen;

    if (n == UINT64_MAX) return UM_ERANGE;
    if (clen < UM_NOISE_TAGLEN) return UM_EPROTO;
    nonce_bytes(nonce, n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, c, clen, ad, adlen, nonce, k) !=
        0)
        return UM_EAUTH;
    return 0;
}

/* ---- SymmetricState (section 5.2) ---- */

static void mix_hash(um_noise_hs_t *hs, const uint8_t *d, size_t n)
{
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, 64);
    crypto_generichash_blake2b_update(&st, hs->h, 64);
    if (n) crypto_generichash_blake2b_update(&st, d, n);
    crypto_generichash_blake2b_final(&st, hs->h, 64);
}

static void mix_key(um_noise_hs_t *hs, const uint8_t ikm[32])
{
    uint8_t temp_k[64];
    um_noise_hkdf(hs->ck, ikm, 32, hs->ck, temp_k, NULL);
    memcpy(hs->k, temp_k, 32); /* HASHLEN 64: truncate temp_k to 32 bytes */
    hs->n = 0;
    hs->has_k = 1;
    sodium_memzero(temp_k, sizeof(temp_k));
}

/* EncryptAndHash: out holds n + 16 (a key is always set where we call it). */
static int encrypt_and_hash(um_noise_hs_t *hs, const uint8_t *p, size_t n, uint8_t *out)
{
    int r = um_noise_encrypt(hs->k, hs->n, hs->h, 64, p, n, out);
    if (r) return r;
    hs->n++;
    mix_hash(hs, out, n + UM_NOISE_TAGLEN);
    return 0;
}

static int decrypt_and_hash(um_noise_hs_t *hs, const uint8_t *c, size_t n, uint8_t *out)
{
    int r = um_noise_decrypt(hs->k, hs->n, hs->h, 64, c, n, out);
    if (r) return r;
    hs->n++;
    mix_hash(hs, c, n);
    return 0;
}

/* DH(); a low-order peer key gives an all-zero result, which we reject. */
static int dh(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32])
{
    return crypto_scalarmult(out, priv, pub) == 0 ? 0 : UM_EAUTH;
}

static int mix_dh(um_noise_hs_t *hs, const uint8_t priv[32], const uint8_t pub[32])
{
    uint8_t shared[32];
    int r = dh(shared, priv, pub);
    if (r == 0) mix_key(hs, shared);
    sodium_memzero(shared, sizeof(shared));
    return r;
}

void um_noise_hs_wipe(um_noise_hs_t *hs)
{
    sodium_memzero(hs, sizeof(*hs));
    hs->step = -1;
}

/* Initialize() with the IK pre-message "<- s". s_pub may be NULL (derived). */
static int init_common(um_noise_hs_t *hs, const uint8_t *prologue, size_t plen,
                       const uint8_t s_priv[32], const uint8_t *s_pub)
{
    memset(hs, 0, sizeof(*hs));
    /* InitializeSymmetric: the name is <= HASHLEN, so h = name || zeros. */
    memcpy(hs->h, UM_NOISE_PROTOCOL, sizeof(UM_NOISE_PROTOCOL) - 1);
    memcpy(hs->ck, hs->h, 64);
    mix_hash(hs, prologue, plen); /* MixHash(prologue) */
    memcpy(hs->s_priv, s_priv, 32);
    if (s_pub) {
        memcpy(hs->s_pub, s_pub, 32);
    } else if (crypto_scalarmult_base(hs->s_pub, hs->s_priv) != 0) {
        um_noise_hs_wipe(hs);
        return UM_EINVAL;
    }
    return 0;
}

int um_noise_init_initiator(um_noise_hs_t *hs, const uint8_t *prologue, size_t prologue_len,
                            const uint8_t s_priv[32], const uint8_t rs[32])
{
    if (!hs || !s_priv || !rs || (prologue_len && !prologue)) return UM_EINVAL;
    int r = init_common(hs, prologue, prologue_len, s_priv, NULL);
    if (r) return r;
    hs->initiator = 1;
    hs->step = 0;
    memcpy(hs->rs, rs, 32);
    mix_hash(hs, hs->rs, 32); /* pre-message <- s */
    return 0;
}

int um_noise_init_responder_kp(um_noise_hs_t *hs, const uint8_t *prologue, size_t prologue_len,
                               const uint8_t s_priv[32], const uint8_t *s_pub)
{
    if (!hs || !s_priv || (prologue_len && !prologue)) return UM_EINVAL;
    int r = init_common(hs, prologue, prologue_len, s_priv, s_pub);
    if (r) return r;
    hs->initiator = 0;
    hs->step = 0;
    mix_hash(hs, hs->s_pub, 32); /* pre-message <- s */
    return 0;
}

int um_noise_init_responder(um_noise_hs_t *hs, const uint8_t *prologue, size_t prologue_len,
                            const uint8_t s_priv[32])
{
    return um_noise_init_responder_kp(hs, prologue, prologue_len, s_priv, NULL);
}

int um_noise_set_ephemeral(um_noise_hs_t *hs, const uint8_t e_priv[32])
{
    memcpy(hs->e_priv, e_priv, 32);
    if (crypto_scalarmult_base(hs->e_pub, hs->e_priv) != 0) return UM_EINVAL;
    hs->fixed_e = 1;
    return 0;
}

static int gen_e(um_noise_hs_t *hs)
{
    if (hs->fixed_e) return 0;
    randombytes_buf(hs->e_priv, 32);
    return crypto_scalarmult_base(hs->e_pub, hs->e_priv) == 0 ? 0 : UM_EIO;
}

static int fail(um_noise_hs_t *hs, int r)
{
    um_noise_hs_wipe(hs);
    return r;
}

int um_noise_write_msg1(um_noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                        size_t cap, size_t *outlen)
{
    int r;
    if (!hs || !out || !outlen || (plen && !payload)) return UM_EINVAL;
    if (!hs->initiator || hs->step != 0) return UM_EINVAL;
    if (plen > UM_NOISE_MSG_MAX - UM_NOISE_MSG1_OVERHEAD || cap < UM_NOISE_MSG1_OVERHEAD + plen)
        return UM_ENOSPC;
    /* e */
    if ((r = gen_e(hs)) != 0) return fail(hs, r);
    memcpy(out, hs->e_pub, 32);
    mix_hash(hs, hs->e_pub, 32);
    /* es */
    if ((r = mix_dh(hs, hs->e_priv, hs->rs)) != 0) return fail(hs, r);
    /* s */
    if ((r = encrypt_and_hash(hs, hs->s_pub, 32, out + 32)) != 0) return fail(hs, r);
    /* ss */
    if ((r = mix_dh(hs, hs->s_priv, hs->rs)) != 0) return fail(hs, r);
    /* payload */
    if ((r = encrypt_and_hash(hs, payload, plen, out + 80)) != 0) return fail(hs, r);
    *outlen = UM_NOISE_MSG1_OVERHEAD + plen;
    hs->step = 1;
    return 0;
}

int um_noise_read_msg1(um_noise_hs_t *hs, const uint8_t *msg, size_t n, uint8_t *payload,
                       size_t cap, size_t *plen)
{
    int r;
    if (!hs || !msg || !plen) return UM_EINVAL;
    if (hs->initiator || hs->step != 0) return UM_EINVAL;
    if (n < UM_NOISE_MSG1_OVERHEAD || n > UM_NOISE_MSG_MAX) return fail(hs, UM_EPROTO);
    if (cap < n - UM_NOISE_MSG1_OVERHEAD || (!payload && n > UM_NOISE_MSG1_OVERHEAD))
        return fail(hs, UM_ENOSPC);
    /* e */
    memcpy(hs->re, msg, 32);
    mix_hash(hs, hs->re, 32);
    /* es */
    if ((r = mix_dh(hs, hs->s_priv, hs->re)) != 0) return fail(hs, r);
    /* s */
    if ((r = decrypt_and_hash(hs, msg + 32, 48, hs->rs)) != 0) return fail(hs, r);
    /* ss */
    if ((r = mix_dh(hs, hs->s_priv, hs->rs)) != 0) return fail(hs, r);
    /* payload */
    if ((r = decrypt_and_hash(hs, msg + 80, n - 80, payload)) != 0) return fail(hs, r);
    *plen = n - UM_NOISE_MSG1_OVERHEAD;
    hs->step = 1;
    return 0;
}

int um_noise_write_msg2(um_noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                        size_t cap, size_t *outlen)
{
    int r;
    if (!hs || !out || !outlen || (plen && !payload)) return UM_EINVAL;
    if (hs->initiator || hs->step != 1) return UM_EINVAL;
    if (plen > UM_NOISE_MSG_MAX - UM_NOISE_MSG2_OVERHEAD || cap < UM_NOISE_MSG2_OVERHEAD + plen)
        return UM_ENOSPC;
    /* e */
    if ((r = gen_e(hs)) != 0) return fail(hs, r);
    memcpy(out, hs->e_pub, 32);
    mix_hash(hs, hs->e_pub, 32);
    /* ee */
    if ((r = mix_dh(hs, hs->e_priv, hs->re)) != 0) return fail(hs, r);
    /* se: DH(responder e, initiator s) */
    if ((r = mix_dh(hs, hs->e_priv, hs->rs)) != 0) return fail(hs, r);
    /* payload */
    if ((r = encrypt_and_hash(hs, payload, plen, out + 32)) != 0) return fail(hs, r);
    *outlen = UM_NOISE_MSG2_OVERHEAD + plen;
    hs->step = 2;
    return 0;
}

int um_noise_read_msg2(um_noise_hs_t *hs, const uint8_t *msg, size_t n, uint8_t *payload,
                       size_t cap, size_t *plen)
{
    int r;
    if (!hs || !msg || !plen) return UM_EINVAL;
    if (!hs->initiator || hs->step != 1) return UM_EINVAL;
    if (n < UM_NOISE_MSG2_OVERHEAD || n > UM_NOISE_MSG_MAX) return fail(hs, UM_EPROTO);
    if (cap < n - UM_NOISE_MSG2_OVERHEAD || (!payload && n > UM_NOISE_MSG2_OVERHEAD))
        return fail(hs, UM_ENOSPC);
    /* e */
    memcpy(hs->re, msg, 32);
    mix_hash(hs, hs->re, 32);
    /* ee */
    if ((r = mix_dh(hs, hs->e_priv, hs->re)) != 0) return fail(hs, r);
    /* se: DH(initiator s, responder e) */
    if ((r = mix_dh(hs, hs->s_priv, hs->re)) != 0) return fail(hs, r);
    /* payload */
    if ((r = decrypt_and_hash(hs, msg + 32, n - 32, payload)) != 0) return fail(hs, r);
    *plen = n - UM_NOISE_MSG2_OVERHEAD;
    hs->step = 2;
    return 0;
}

int um_noise_split(um_noise_hs_t *hs, um_noise_split_t *out)
{
    uint8_t t1[64], t2[64];
    if (!hs || !out || hs->step != 2) return UM_EINVAL;
    /* Split(): temp_k1, temp_k2 = HKDF(ck, zerolen, 2), truncated to 32. */
    um_noise_hkdf(hs->ck, NULL, 0, t1, t2, NULL);
    memcpy(out->k_send, hs->initiator ? t1 : t2, 32);
    memcpy(out->k_recv, hs->initiator ? t2 : t1, 32);
    memcpy(out->h, hs->h, 64);
    sodium_memzero(t1, sizeof(t1));
    sodium_memzero(t2, sizeof(t2));
    um_noise_hs_wipe(hs);
    return 0;
}
