/* The reliability layer against hostile packets (docs/PROTOCOL.md 12).
 *
 * The input is a script of operations on three endpoints: A, its twin A2,
 * and an honest peer B. A and A2 see exactly the same operations, except
 * that a packet A refuses with UM_EPROTO is not given to A2; since a
 * refused packet must change nothing, A and A2 must then answer every
 * later call identically (same return codes, same packets out, same bytes
 * read). Also checked: every packet out fits its opportunity and parses;
 * no read drains more than rcv_max between reads; the send queue stays
 * within snd_max; parsed data lies inside the packet. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/rel.h"
#include "util/err.h"

#define SND_MAX 8192
#define RCV_MAX 4096

typedef struct {
    const uint8_t *p;
    size_t n;
} in_t;

static int take(in_t *in, size_t k, const uint8_t **out)
{
    if (in->n < k) return 0;
    *out = in->p;
    in->p += k;
    in->n -= k;
    return 1;
}

static uint8_t byte(in_t *in)
{
    const uint8_t *b;
    return take(in, 1, &b) ? b[0] : 0;
}

static void check_pkt(const uint8_t *p, size_t n, size_t cap)
{
    um_rel_pkt_t k;
    if (n > cap) abort();
    if (n && um_rel_pkt_parse(p, n, &k) != 0) abort();
}

static void drain(um_rel_t *a, um_rel_t *a2)
{
    uint8_t x[2048], y[2048];
    size_t total = 0;
    for (;;) {
        size_t n = 0, m = 0;
        int r = um_rel_read(a, x, sizeof(x), &n);
        int r2 = a2 ? um_rel_read(a2, y, sizeof(y), &m) : r;
        if (a2 && (r != r2 || n != m || memcmp(x, y, n) != 0)) abort();
        total += n;
        if (total > RCV_MAX) abort();
        if (r || !n) break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    um_rel_cfg_t cfg = {.snd_max = SND_MAX,
                        .rcv_max = RCV_MAX,
                        .rto_min_ms = 50,
                        .rto_max_ms = 2000,
                        .idle_timeout_ms = 10000};
    um_rel_t *a = NULL, *a2 = NULL, *b = NULL;
    uint64_t now = 1000;
    if (um_rel_new(&cfg, now, &a) || um_rel_new(&cfg, now, &a2) || um_rel_new(&cfg, now, &b))
        goto out;
    in_t in = {data, size};
    uint8_t pa[1600], pa2[1600], wbuf[1024]; /* opportunities up to 9 + 255 * 6 */
    for (int step = 0; step < 2000 && in.n; step++) {
        uint8_t op = byte(&in);
        size_t n = 0, n2 = 0, cap;
        int r, r2;
        switch (op % 7) {
        case 0: { /* a hostile packet to A */
            size_t len = byte(&in) | (size_t)byte(&in) << 8;
            const uint8_t *p;
            if (len > in.n) len = in.n;
            if (!take(&in, len, &p)) break;
            um_rel_pkt_t k;
            if (um_rel_pkt_parse(p, len, &k) == 0 && (k.flags & UM_REL_F_DATA) &&
                (k.data < p || k.data + k.data_len != p + len))
                abort();
            r = um_rel_input(a, p, len, now);
            if (r == UM_EPROTO) break;
            if (um_rel_input(a2, p, len, now) != r) abort();
            break;
        }
        case 1: /* B -> A, honest */
            cap = 9 + byte(&in) * 6u;
            r = um_rel_output(b, now, pa, cap, &n);
            if (r != 0 && r != UM_ETIMEDOUT) abort();
            check_pkt(pa, n, cap);
            if (n) {
                r = um_rel_input(a, pa, n, now);
                if (um_rel_input(a2, pa, n, now) != r) abort();
            }
            break;
        case 2: /* A -> B */
            cap = 9 + byte(&in) * 6u;
            r = um_rel_output(a, now, pa, cap, &n);
            r2 = um_rel_output(a2, now, pa2, cap, &n2);
            if (r != r2 || n != n2 || memcmp(pa, pa2, n) != 0) abort();
            check_pkt(pa, n, cap);
            if (n) (void)um_rel_input(b, pa, n, now);
            break;
        case 3: { /* writes */
            size_t k = byte(&in) * 4u;
            memset(wbuf, op, k);
            r = um_rel_write(a, wbuf, k);
            if (um_rel_write(a2, wbuf, k) != r) abort();
            (void)um_rel_write(b, wbuf, k);
            if (um_rel_queued(a) > SND_MAX) abort();
            break;
        }
        case 4: /* time passes */
            now += byte(&in) * 8u;
            r = um_rel_poll(a, now);
            if (um_rel_poll(a2, now) != r) abort();
            if (um_rel_next_timer(a, now) != um_rel_next_timer(a2, now)) abort();
            if (um_rel_wants_output(a, now) != um_rel_wants_output(a2, now)) abort();
            if (um_rel_peer_more(a) != um_rel_peer_more(a2)) abort();
            if (um_rel_poll_interval(a, now) != um_rel_poll_interval(a2, now)) abort();
            if (um_rel_queued(a) != um_rel_queued(a2)) abort();
            (void)um_rel_poll(b, now);
            break;
        case 5:
            drain(a, a2);
            drain(b, NULL);
            break;
        default:
            if (op & 0x80) {
                r = um_rel_shutdown(a);
                if (um_rel_shutdown(a2) != r) abort();
            } else {
                (void)um_rel_shutdown(b);
            }
            break;
        }
    }
    /* the twins end alike */
    for (int i = 0; i < 4; i++) {
        size_t n = 0, n2 = 0;
        int r = um_rel_output(a, now, pa, sizeof(pa), &n);
        int r2 = um_rel_output(a2, now, pa2, sizeof(pa2), &n2);
        if (r != r2 || n != n2 || memcmp(pa, pa2, n) != 0) abort();
    }
    drain(a, a2);
out:
    um_rel_free(a);
    um_rel_free(a2);
    um_rel_free(b);
    return 0;
}
