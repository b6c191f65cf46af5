/* Buffer sizing from the measured bandwidth-delay product: see sizing.h. */
#include "tunnel/sizing.h"

size_t um_tunnel_resend_size(size_t cur, size_t lo, size_t ceiling, uint64_t acked, uint64_t rtt_ms,
                             uint64_t interval_ms)
{
    if (interval_ms == 0) return cur;
    if (rtt_ms == 0) rtt_ms = 1;
    if (lo > ceiling) lo = ceiling;
    /* acked / interval is at most the link's rate; times 2 RTT stays far
     * from overflow for any real path (2^64 / 2^40 bytes per second). */
    uint64_t want = 2 * acked * rtt_ms / interval_ms;
    if (want < cur - cur / 4) want = cur - cur / 4;
    if (want < lo) want = lo;
    if (want > ceiling) want = ceiling;
    return (size_t)want;
}
