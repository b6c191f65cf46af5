/* The shaping prefix parser (docs/PROTOCOL.md section 7) on arbitrary bytes,
 * for every mode and direction, with its properties:
 *   - done: the prefix lies within the bound, announces a length in range, and
 *     parses the same from exactly its own bytes; every shorter cut of it is
 *     "need more";
 *   - need more: only below the bound;
 *   - a verdict never flips from malformed back to valid as bytes arrive;
 *   - round trip: a prefix generated from a seed taken from the input, put
 *     before the input, parses back to its exact length and announced flight. */
#include <stdint.h>
#include <string.h>

#include "transport/mask.h"
#include "transport/shape.h"
#include "util/err.h"

static void check(um_shape_t s, int dir, const uint8_t *p, size_t n)
{
    size_t used = 0, fl = 0, u2 = 0, f2 = 0;
    int r = um_shape_strip(s, dir, p, n, &used, &fl);
    if (r != 0 && r != UM_EAGAIN && r != UM_EPROTO) __builtin_trap();
    if (r == UM_EAGAIN && n >= UM_SHAPE_PREFIX_MAX) __builtin_trap();
    if (r == 0) {
        if (used > n || used > UM_SHAPE_PREFIX_MAX) __builtin_trap();
        if ((s == UM_SHAPE_HTTP || s == UM_SHAPE_TLS) &&
            (fl < UM_MASK_OVERHEAD || fl > UM_FLIGHT_MAX))
            __builtin_trap();
        if ((s == UM_SHAPE_NONE || s == UM_SHAPE_PRINTABLE) && fl != 0) __builtin_trap();
        if (um_shape_strip(s, dir, p, used, &u2, &f2) != 0 || u2 != used || f2 != fl)
            __builtin_trap();
        if (used && um_shape_strip(s, dir, p, used - 1, &u2, &f2) != UM_EAGAIN) __builtin_trap();
    }
    /* Shorter cuts: a malformed cut stays malformed. */
    size_t lim = n < UM_SHAPE_PREFIX_MAX + 8 ? n : UM_SHAPE_PREFIX_MAX + 8;
    for (size_t k = 0; k < lim; k += 1 + k / 16) {
        int rk = um_shape_strip(s, dir, p, k, &u2, &f2);
        if (rk == UM_EPROTO && r != UM_EPROTO) __builtin_trap();
        if (rk == 0 && (r != 0 || u2 != used || f2 != fl)) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    for (int s = UM_SHAPE_NONE; s <= UM_SHAPE_MAX; s++)
        for (int dir = UM_SHAPE_C2S; dir <= UM_SHAPE_S2C; dir++)
            check((um_shape_t)s, dir, p, n);

    if (n < 35) return 0;
    static uint8_t w[UM_SHAPE_PREFIX_MAX + 4096];
    size_t fl = UM_MASK_OVERHEAD + (((size_t)p[32] << 8 | p[33]) % (UM_FLIGHT_MAX - 17));
    um_shape_t s = (um_shape_t)(p[34] % (UM_SHAPE_MAX + 1));
    int dir = 1 + (p[34] >> 7);
    size_t pn = 0, used = 0, got = 0, rest = n - 35 < 4096 ? n - 35 : 4096;
    if (um_shape_prefix_seeded(s, dir, fl, p, w, UM_SHAPE_PREFIX_MAX, &pn) != 0) __builtin_trap();
    memcpy(w + pn, p + 35, rest);
    if (um_shape_strip(s, dir, w, pn + rest, &used, &got) != 0 || used != pn) __builtin_trap();
    if ((s == UM_SHAPE_HTTP || s == UM_SHAPE_TLS) && got != fl) __builtin_trap();
    return 0;
}
