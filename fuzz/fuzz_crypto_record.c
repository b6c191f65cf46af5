/* The record decoder on arbitrary wire bytes (both ciphers), plus the
 * round-trip property: seal(input) then open must give the input back, in one
 * piece and byte by byte. */
#include <string.h>

#include "crypto/record.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    static const uint8_t key[32] = {0x42};
    static uint8_t body[UM_REC_BODY_MAX], wire[UM_REC_WIRE_MAX];
    um_rec_dir_t rx, tx, rx2;
    size_t bn = 0, used = 0, wn = 0;
    int alg = (n && (p[0] & 1)) ? UM_AEAD_AES256_GCM : UM_AEAD_CHACHA20_POLY1305;

    /* Decoder on arbitrary bytes: a bounded walk over the records. */
    if (um_rec_init(&rx, alg, 0, key, 0)) return 0;
    size_t off = 0;
    for (int i = 0; i < 64 && off < n; i++) {
        int r = um_rec_open(&rx, p + off, n - off, body, sizeof(body), &bn, &used);
        if (r) break;
        if (used > n - off || bn > UM_REC_BODY_MAX) __builtin_trap();
        off += used;
    }
    um_rec_close(&rx);

    /* Round trip. */
    size_t len = n > UM_REC_BODY_MAX ? UM_REC_BODY_MAX : n;
    if (len == 0) return 0;
    if (um_rec_init(&tx, alg, 1, key, 0) || um_rec_init(&rx, alg, 0, key, 0) ||
        um_rec_init(&rx2, alg, 0, key, 0))
        __builtin_trap();
    if (um_rec_seal(&tx, p, len, wire, sizeof(wire), &wn) || wn != len + UM_REC_OVERHEAD)
        __builtin_trap();
    if (um_rec_open(&rx, wire, wn, body, sizeof(body), &bn, &used) || bn != len || used != wn ||
        memcmp(body, p, len) != 0)
        __builtin_trap();
    /* Incremental feeding: the same record start, growing prefixes. */
    for (size_t k = 0; k < wn; k += 1 + k / 4) {
        int r = um_rec_open(&rx2, wire, k, body, sizeof(body), &bn, &used);
        if (r != UM_EAGAIN) __builtin_trap();
    }
    if (um_rec_open(&rx2, wire, wn, body, sizeof(body), &bn, &used) || memcmp(body, p, len))
        __builtin_trap();
    um_rec_close(&tx);
    um_rec_close(&rx);
    um_rec_close(&rx2);
    return 0;
}
