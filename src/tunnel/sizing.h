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

/* The fastest a carrier's bytes can come in (bytes per second): more than
 * one core decrypts (about 1.5 GB/s a stream on loopback here). */
#define UM_TUNNEL_RATE_MAX 4000000000ull

/* The receive buffer of the carrier's socket (SO_RCVBUF): the bytes the
 * kernel may queue for us ahead of the tunnel, and so ahead of a new
 * stream's first bytes (the window it offers is its free space). `cur` is
 * the bound set (0: none, the kernel autotunes); `received` bytes came in
 * `interval_us` (0: nothing measured) over a path whose least round trip is
 * `min_rtt_us` (0: unknown: cur, unchanged); `cap` is the most the kernel
 * lets us set (net.core.rmem_max).
 * The answer is twice the bytes received per round trip (the product, with
 * room for the reader's own turns), never below lo (what a short path needs
 * to keep the sender busy while the reader is off the CPU) nor above cap,
 * and never below cur: a bound, once set, turns the kernel's autotuning off
 * for good, so it only grows (doubling per interval while it is the limit:
 * a path it limits delivers about cur per round trip). For the same reason
 * a path is bounded at all (cur 0) only when twice its product at
 * UM_TUNNEL_RATE_MAX fits in cap; otherwise 0: the kernel's autotuning
 * keeps the socket (a long fat path fills as it does without us). */
size_t um_tunnel_rcvbuf_size(size_t cur, size_t lo, size_t cap, uint64_t received,
                             uint64_t min_rtt_us, uint64_t interval_us);

#endif
