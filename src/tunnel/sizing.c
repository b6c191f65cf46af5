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

size_t um_tunnel_rcvbuf_size(size_t cur, size_t lo, size_t cap, uint64_t received,
                             uint64_t min_rtt_us, uint64_t interval_us)
{
    if (min_rtt_us == 0) return cur; /* nothing known of the path yet */
    if (lo > cap) lo = cap;
    if (cur == 0) {
        /* The bound is for good (the kernel's autotuning stays off once it
         * is set): only a path whose product at the fastest rate we can
         * reach stays within what growing may give is bounded at all. */
        if (2 * UM_TUNNEL_RATE_MAX * min_rtt_us / 1000000 > cap) return 0;
    }
    uint64_t want = lo;
    if (interval_us) {
        /* received / interval is at most the link's rate (2^40 B/s times an
         * RTT of 2^24 us stays far from overflow). */
        uint64_t bdp2 = 2 * received * min_rtt_us / interval_us;
        if (bdp2 > want) want = bdp2;
    }
    if (want > cap) want = cap;
    if (want < cur) want = cur; /* it only grows */
    return (size_t)want;
}
