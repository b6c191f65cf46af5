/* Buffer sizing from the measured bandwidth-delay product: pure functions,
 * no clock, no I/O (the tunnel feeds them what it measured; tests feed them
 * simulated paths: tests/unit/test_tunnel_sizing.c). */
#ifndef UM_TUNNEL_SIZING_H
#define UM_TUNNEL_SIZING_H

#include <stddef.h>
#include <stdint.h>

/* The resend buffer (the session's bound on unacknowledged plus queued
 * bytes) for the next interval, from the last one: `acked` bytes were
 * acknowledged in `interval_ms` with a round trip of `rtt_ms` (0 is taken
 * as 1 ms, below the clock's resolution). The answer is twice the bytes
 * acknowledged per round trip (the product, with room for the acks' own
 * delay), never below lo nor above ceiling, and never below three quarters
 * of cur (it shrinks gradually; a path the bound limits delivers bound/RTT,
 * so the estimate doubles the bound each interval until the path is the
 * limit). interval_ms 0: cur, unchanged (nothing measured). */
size_t um_tunnel_resend_size(size_t cur, size_t lo, size_t ceiling, uint64_t acked, uint64_t rtt_ms,
                             uint64_t interval_ms);

#endif
