/* The ws carrier's frame decoding (transport/ws_carrier.c, libwslay) on
 * arbitrary bytes, over a carrier in memory. Input: byte 0 picks the side
 * (bit 0: server, which wants masked frames) and the read size (bits 1-7);
 * the rest arrives in reads of that size. Properties:
 *   - no crash, no leak, no read past the input (sanitizers);
 *   - the data delivered is never more than the wire bytes;
 *   - after a read error or the orderly end nothing more is delivered;
 *   - whatever the carrier writes back (pongs, close) is framed as its
 *     side must: a server's frames unmasked, a client's masked. */
#include <stdint.h>
#include <string.h>

#include "../tests/unit/mem_pipe.h"
#include "transport/ws_carrier.h"
#include "util/err.h"

typedef struct {
    size_t got;
    int ended;
} sink_t;

static void rd(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)c;
    (void)p;
    sink_t *k = ud;
    if (k->ended) __builtin_trap(); /* nothing after the end */
    if (status < 0) {
        k->ended = 1;
        return;
    }
    k->got += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    if (n < 1) return 0;
    int server = p[0] & 1;
    size_t piece = (size_t)(p[0] >> 1) + 1;
    p++;
    n--;
    mp_end_t a, b;
    mp_pair(&a, &b);
    um_carrier_t *c = NULL;
    um_ws_carrier_cfg_t cfg = {.server = server};
    if (um_ws_carrier_new(&a.base, &cfg, &c) != 0) return 0;
    sink_t k = {0, 0};
    um_carrier_set_cbs(c, rd, NULL, &k);
    for (size_t off = 0; off < n && !k.ended; off += piece) {
        size_t take = n - off < piece ? n - off : piece;
        a.rd(&a.base, p + off, take, 0, a.ud);
    }
    if (k.got > n) __builtin_trap();
    if (a.qn >= 2 && ((a.q[1] & 0x80) != 0) == (server != 0)) __builtin_trap();
    um_carrier_close(c);
    mp_free(&a);
    mp_free(&b);
    return 0;
}
