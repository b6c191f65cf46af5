/* Fuzz the signed server list parser (src/app/srvlist.c). Any input is
 * parsed in both forms; whatever parses as the unsigned text must sign into a
 * list that parses, verifies under the signer's key and passes the client's
 * check with the same version, expiry and servers. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/srvlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t seed[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    char err[512];
    um_srvlist_t a, b;
    if (sodium_init() < 0) abort();
    if (um_srvlist_parse(&a, data, size, true, err, sizeof(err)) == 0) {
        if (!a.has_signature || a.signed_len >= size) abort();
        (void)um_srvlist_sig_ok(&a, data, size, a.operator_key);
    }
    um_srvlist_free(&a);
    if (um_srvlist_parse(&a, data, size, false, err, sizeof(err)) != 0) {
        um_srvlist_free(&a);
        return 0;
    }
    uint8_t *out, pub[32];
    size_t outn;
    if (um_srvlist_sign(data, size, seed, &out, &outn, err, sizeof(err)) != 0) {
        /* Only a body too large to take the two lines may fail. */
        if (size + 151 <= UM_SRVLIST_MAX_BYTES) abort();
        um_srvlist_free(&a);
        return 0;
    }
    um_sign_public(pub, seed);
    if (um_srvlist_check(&b, out, outn, pub, a.version, -1, err, sizeof(err)) != UM_SRVLIST_OK)
        abort();
    if (b.version != a.version || b.expires != a.expires || b.n_servers != a.n_servers ||
        strcmp(b.expires_text, a.expires_text) != 0)
        abort();
    for (size_t i = 0; i < a.n_servers; i++)
        if (memcmp(a.servers[i].server_public_key, b.servers[i].server_public_key, 32) != 0)
            abort();
    /* One flipped bit anywhere is refused. */
    size_t at = size ? data[0] % outn : 0;
    out[at] ^= 0x01;
    um_srvlist_free(&b);
    if (um_srvlist_check(&b, out, outn, pub, 0, -1, err, sizeof(err)) == UM_SRVLIST_OK) abort();
    um_srvlist_free(&b);
    um_srvlist_free(&a);
    free(out);
    return 0;
}
