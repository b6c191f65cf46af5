/* Read sizes shared among the connections reading now: see rdshare.h. */
#include "util/rdshare.h"

size_t um_rdshare_next(um_rdshare_t *r, uint64_t *stamp, uint64_t now_ms, size_t total, size_t min,
                       size_t max)
{
    uint64_t p = now_ms / UM_RDSHARE_PERIOD_MS + 1;
    if (p != r->period) {
        r->prev = p == r->period + 1 ? r->cur : 0;
        r->cur = 0;
        r->period = p;
    }
    if (*stamp != p) {
        *stamp = p;
        r->cur++;
    }
    uint32_t n = r->cur > r->prev ? r->cur : r->prev;
    size_t sz = total / (n ? n : 1);
    if (sz > max) sz = max;
    if (sz < min) sz = min;
    return sz;
}
