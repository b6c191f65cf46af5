/* The `tls` transport's server-side parsers on arbitrary bytes: the
 * ServerHello parser, the cover-profile learner and the record deframer.
 * Properties:
 *   - ServerHello: done only with every span inside the input and the record
 *     length it reports; it parses the same from exactly its own bytes; every
 *     shorter cut is "need more" or malformed, never done;
 *   - a learned profile rebuilds a ServerHello that parses back to the random,
 *     session id and x25519 key put in;
 *   - the deframer, fed the input in two pieces, yields the same payload
 *     bytes as fed whole, and never more than it was given. */
#include <stdint.h>
#include <string.h>

#include "transport/tls_record.h"
#include "transport/tls_shello.h"
#include "util/err.h"

static void deframe_all(const uint8_t *p, size_t n, size_t cut, uint8_t *out, size_t *outn,
                        int *res)
{
    um_tls_deframer_t d;
    um_tls_deframer_init(&d, (int)(n & 1)); /* with and without a leading CCS */
    size_t got = 0;
    int r = 0;
    const uint8_t *parts[2] = {p, p + cut};
    size_t lens[2] = {cut, n - cut};
    for (int i = 0; i < 2 && r >= 0; i++) {
        const uint8_t *q = parts[i], *span;
        size_t m = lens[i], sn;
        while ((r = um_tls_deframe(&d, &q, &m, &span, &sn)) == 1) {
            if (sn > n - got || span < p || span + sn > p + n) __builtin_trap();
            memcpy(out + got, span, sn);
            got += sn;
        }
    }
    *outn = got;
    *res = r;
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_tls_sh_t sh, sh2;
    int r = um_tls_sh_parse(p, n, &sh);
    if (r != 0 && r != UM_EAGAIN && r != UM_EPROTO) __builtin_trap();
    if (r == 0) {
        if (sh.len > n || sh.off_share + sh.share_len > sh.len || sh.off_sid + sh.sid_len > sh.len)
            __builtin_trap();
        if (um_tls_sh_parse(p, sh.len, &sh2) != 0 || sh2.len != sh.len) __builtin_trap();
        for (size_t i = 0; i < sh.len; i += 7)
            if (um_tls_sh_parse(p, i, &sh2) == 0) __builtin_trap();
    }
    um_tls_cover_t cv;
    if (um_tls_cover_learn(p, n, &cv) == 0) {
        uint8_t rnd[32], sid[32], x[32], ct[UM_TLS_MLKEM768_CT_LEN], out[UM_TLS_SH_MAX];
        size_t on = 0;
        memset(rnd, 0x11, 32);
        memset(sid, 0x22, 32);
        memset(x, 0x33, 32);
        memset(ct, 0x44, sizeof(ct));
        if (um_tls_cover_server_hello(&cv, rnd, sid, x, ct, out, sizeof(out), &on) != 0)
            __builtin_trap();
        if (um_tls_sh_parse(out, on, &sh2) != 0 || memcmp(sh2.random, rnd, 32) ||
            memcmp(sh2.sid, sid, 32) ||
            memcmp(um_tls_share_x25519(sh2.group, sh2.share, sh2.share_len), x, 32))
            __builtin_trap();
    }
    static uint8_t a[1 << 17], b[1 << 17];
    if (n > sizeof(a)) return 0;
    size_t an = 0, bn = 0;
    int ra = 0, rb = 0;
    deframe_all(p, n, n, a, &an, &ra);
    deframe_all(p, n, n / 2, b, &bn, &rb);
    if (ra != rb || an != bn || memcmp(a, b, an) != 0) __builtin_trap();
    return 0;
}
