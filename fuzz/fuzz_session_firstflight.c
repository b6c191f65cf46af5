/* The server's first-flight path: unmasking (transport/mask) and the
 * handshake (Noise IK read + umbra payload checks) on arbitrary bytes. Must
 * never crash, never accept, never write a reply. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "crypto/keys.h"
#include "session/handshake.h"
#include "transport/mask.h"
#include "util/err.h"

static um_hs_server_t srv;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    uint8_t msg[UM_FLIGHT_MSG_MAX], reply[UM_HS_MSG_MAX];
    size_t mn = 0, used = 0, rn = 0;
    um_sess_keys_t k;
    if (!ready) {
        uint8_t priv[32], cpub[32];
        um_crypto_init();
        memset(priv, 7, 32);
        um_keyset_t *ks = um_keyset_new();
        memset(cpub, 9, 32);
        um_keyset_add(ks, cpub);
        um_hs_server_init(&srv, priv, ks, 0, 1024);
        um_keyset_unref(ks);
        ready = 1;
    }
    /* Every prefix length must give EAGAIN or a verdict, never a crash. */
    int r =
        um_mask_open(srv.s_pub, UM_MASK_C2S, UM_HS_MSG1_MIN, p, n, msg, sizeof(msg), &mn, &used);
    if (r == 0) {
        if (used > n || mn + UM_MASK_OVERHEAD != used) __builtin_trap();
        r = um_hs_server_respond(&srv, (const uint8_t *)UM_HS_PROLOGUE_TCP,
                                 sizeof(UM_HS_PROLOGUE_TCP) - 1, msg, mn, 1700000000, 0, reply,
                                 sizeof(reply), &rn, &k);
        if (r == 0) __builtin_trap(); /* nobody without a client key gets in */
    }
    /* The raw Noise message path as well (the tls transport will carry it
     * unmasked). */
    if (n <= UM_HS_MSG_MAX) {
        r = um_hs_server_respond(&srv, (const uint8_t *)UM_HS_PROLOGUE_TCP,
                                 sizeof(UM_HS_PROLOGUE_TCP) - 1, p, n, 1700000000, 0, reply,
                                 sizeof(reply), &rn, &k);
        if (r == 0) __builtin_trap();
    }
    return 0;
}
