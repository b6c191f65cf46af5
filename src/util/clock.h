/* Time sources. Monotonic for every timeout and rate; wall clock only where the
 * protocol needs it (handshake timestamps, port hopping slots). */
#ifndef UM_UTIL_CLOCK_H
#define UM_UTIL_CLOCK_H

#include <stdint.h>

uint64_t um_now_ns(void);  /* monotonic nanoseconds, arbitrary origin */
uint64_t um_now_ms(void);  /* monotonic milliseconds */
uint64_t um_wall_s(void);  /* seconds since the Unix epoch (UTC) */
uint64_t um_wall_ms(void); /* milliseconds since the Unix epoch (port hopping slots) */

#endif
