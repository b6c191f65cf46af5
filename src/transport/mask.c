#include "transport/mask.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

static void mask_key(uint8_t k[32], const uint8_t spub[32], int dir, const uint8_t *salt)
{
    static const char label[] = "umbra/1 tcp mask";
    crypto_generichash_blake2b_state st;
    uint8_t d = (uint8_t)dir;
    crypto_generichash_blake2b_init(&st, spub, 32, 32);
    crypto_generichash_blake2b_update(&st, (const uint8_t *)label, sizeof(label) - 1);
    crypto_generichash_blake2b_update(&st, &d, 1);
    crypto_generichash_blake2b_update(&st, salt, UM_MASK_SALT_LEN);
    crypto_generichash_blake2b_final(&st, k, 32);
}

int um_mask_seal(const uint8_t server_pub[32], int dir, const uint8_t *msg, size_t n, uint8_t *out,
                 size_t cap, size_t *outn)
{
    static const uint8_t zero_nonce[12];
    uint8_t k[32];
    if (!server_pub || (!msg && n) || !out || !outn) return UM_EINVAL;
    if (n > UM_FLIGHT_MSG_MAX) return UM_EMSGSIZE;
    if (cap < n + UM_MASK_OVERHEAD) return UM_ENOSPC;
    randombytes_buf(out, UM_MASK_SALT_LEN);
    out[UM_MASK_SALT_LEN] = (uint8_t)(n >> 8);
    out[UM_MASK_SALT_LEN + 1] = (uint8_t)n;
    memmove(out + UM_MASK_OVERHEAD, msg, n);
    mask_key(k, server_pub, dir, out);
    crypto_stream_chacha20_ietf_xor(out + UM_MASK_SALT_LEN, out + UM_MASK_SALT_LEN, n + 2,
                                    zero_nonce, k);
    sodium_memzero(k, sizeof(k));
    *outn = n + UM_MASK_OVERHEAD;
    return 0;
}

int um_mask_open(const uint8_t server_pub[32], int dir, size_t min_msg, const uint8_t *p, size_t n,
                 uint8_t *msg, size_t cap, size_t *msgn, size_t *consumed)
{
    static const uint8_t zero_nonce[12];
    uint8_t k[32], tmp[UM_FLIGHT_MAX];
    int r = 0;
    if (!server_pub || (!p && n) || !msg || !msgn || !consumed || cap < UM_FLIGHT_MSG_MAX)
        return UM_EINVAL;
    if (n < UM_MASK_OVERHEAD) return UM_EAGAIN;
    mask_key(k, server_pub, dir, p);
    size_t avail = n - UM_MASK_SALT_LEN;
    if (avail > UM_FLIGHT_MAX - UM_MASK_SALT_LEN) avail = UM_FLIGHT_MAX - UM_MASK_SALT_LEN;
    crypto_stream_chacha20_ietf_xor(tmp, p + UM_MASK_SALT_LEN, avail, zero_nonce, k);
    size_t len = ((size_t)tmp[0] << 8) | tmp[1];
    if (len < min_msg || len > UM_FLIGHT_MSG_MAX) {
        r = UM_EPROTO;
    } else if (avail < len + 2) {
        r = UM_EAGAIN;
    } else {
        memcpy(msg, tmp + 2, len);
        *msgn = len;
        *consumed = len + UM_MASK_OVERHEAD;
    }
    sodium_memzero(k, sizeof(k));
    sodium_memzero(tmp, avail);
    return r;
}
