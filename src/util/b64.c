#include "util/b64.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

static int variant(um_b64_variant_t v)
{
    return v == UM_B64_URL ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                           : sodium_base64_VARIANT_ORIGINAL;
}

size_t um_b64_encoded_len(size_t n, um_b64_variant_t v)
{
    return sodium_base64_encoded_len(n, variant(v));
}

int um_b64_encode(char *out, size_t outcap, const uint8_t *in, size_t n, um_b64_variant_t v)
{
    if (outcap < um_b64_encoded_len(n, v)) return UM_ENOSPC;
    sodium_bin2base64(out, outcap, in, n, variant(v));
    return 0;
}

int um_b64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *s, size_t n,
                  um_b64_variant_t v)
{
    const char *end = NULL;
    size_t len = 0, need;
    /* libsodium 1.0.18 maps bytes >= 0x80 to a valid digit: refuse them here. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == '\0') return UM_EINVAL;
    /* The exact decoded size tells "too small" apart from "malformed". */
    if (v == UM_B64_STD) {
        if (n % 4) return UM_EINVAL;
        size_t pad = (n >= 1 && s[n - 1] == '=') + (n >= 2 && s[n - 2] == '=');
        need = (n / 4) * 3 - pad;
    } else {
        if (n % 4 == 1) return UM_EINVAL;
        need = (n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0);
    }
    if (need > outcap) return UM_ENOSPC;
    if (sodium_base642bin(out, outcap, s, n, NULL, &len, &end, variant(v)) != 0) return UM_EINVAL;
    if (end != s + n) return UM_EINVAL;
    *outlen = len;
    return 0;
}

int um_b64_decode_key(uint8_t key[32], const char *s, size_t n, um_b64_variant_t v)
{
    uint8_t tmp[33];
    size_t len = 0;
    int r = um_b64_decode(tmp, sizeof(tmp), &len, s, n, v);
    if (r == 0 && len != 32) r = UM_EINVAL;
    if (r == 0) memcpy(key, tmp, 32);
    sodium_memzero(tmp, sizeof(tmp));
    return r == UM_ENOSPC ? UM_EINVAL : r;
}
