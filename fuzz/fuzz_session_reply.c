/* The client's reply parser: unmask (S2C) then Noise message 2 and the reply
 * payload, on arbitrary bytes, for a fresh client each run; the bytes are
 * tried both masked (tcp transport) and as a raw Noise message. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "crypto/keys.h"
#include "session/handshake.h"
#include "transport/mask.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    static const uint8_t ci[32] = {1, 2, 3}, si[32] = {4, 5, 6};
    uint8_t sp[32], m1[UM_HS_MSG1_MIN], msg[UM_FLIGHT_MSG_MAX];
    size_t m1n, mn = 0, used = 0;
    um_hs_client_t c;
    um_sess_keys_t k;
    um_hs_client_opts_t o = {0};

    um_crypto_init();
    crypto_scalarmult_base(sp, si);
    if (um_hs_client_start(&c, (const uint8_t *)"p", 1, ci, sp, &o, 1, 0, m1, sizeof(m1), &m1n))
        return 0;
    int r = um_mask_open(sp, UM_MASK_S2C, UM_HS_MSG2_MIN, p, n, msg, sizeof(msg), &mn, &used);
    if (r == 0) {
        r = um_hs_client_finish(&c, msg, mn, &k);
        if (r == 0) __builtin_trap(); /* forging needs the server key */
    } else {
        r = um_hs_client_finish(&c, p, n, &k);
        if (r == 0) __builtin_trap();
    }
    um_hs_client_wipe(&c);
    return 0;
}
