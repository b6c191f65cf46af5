/* The session's record consumer (um_sess_feed: record bodies, acks, data
 * offsets, rekey) on bytes that DO authenticate: the input is split into
 * bodies that we seal with the peer's key, so the fuzzer exercises the body
 * parser behind the AEAD. Must never crash or deliver more than was sent. */
#include <string.h>

#include "crypto/record.h"
#include "session/session.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    static uint8_t wire[UM_REC_WIRE_MAX], out[4096];
    um_sess_keys_t k;
    um_rec_dir_t tx;
    size_t used, wn;
    memset(&k, 0, sizeof(k));
    memset(k.k_recv, 0x11, 32);
    memset(k.k_send, 0x22, 32);
    k.alg = UM_AEAD_CHACHA20_POLY1305;
    um_sess_t *s = um_sess_new(&k, NULL);
    if (!s || um_rec_init(&tx, k.alg, 1, k.k_recv, 0)) __builtin_trap();
    /* Input: u16 length || body, repeated. */
    size_t off = 0;
    for (int i = 0; i < 64 && off + 2 <= n; i++) {
        size_t bl = ((size_t)p[off] << 8 | p[off + 1]) % 2048;
        off += 2;
        if (bl > n - off) bl = n - off;
        if (bl == 0) break;
        if (um_rec_seal(&tx, p + off, bl, wire, sizeof(wire), &wn)) break;
        off += bl;
        /* A REKEY body makes the receiver ratchet: follow it. */
        int r = um_sess_feed(s, wire, wn, &used);
        if (r) break;
        if (p[off - bl] == UM_REC_T_REKEY) um_rec_ratchet(&tx);
        while (um_sess_read(s, out, sizeof(out)))
            ;
    }
    um_sess_offsets_t o;
    um_sess_offsets(s, &o);
    if (o.tx_acked != 0) __builtin_trap(); /* nothing was sent: no ack can be valid */
    um_rec_close(&tx);
    um_sess_free(s);
    return 0;
}
