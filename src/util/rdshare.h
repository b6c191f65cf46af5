/* Read sizes shared out among the connections that are reading now.
 *
 * A connector that gives every readable connection a 64 KiB read turns
 * 1000 busy connections into 64 MiB copied into buffers in one turn of the
 * loop, before any backpressure can be seen (each reader pauses only after
 * its first read). So the bytes one round of reads may bring in are shared:
 * a read gets total / (connections that read in the last period), between
 * min and max. One bulk connection still reads max at a time; a thousand get
 * min each, and their first reads together stay near total + n x min.
 *
 * Pure accounting, O(1) per read: the connections that read in the current
 * and in the previous period (1 s: readers that take turns under
 * backpressure, each reading once in a while, all count) are counted through a per-connection
 * stamp of the last period it read in. */
#ifndef UM_UTIL_RDSHARE_H
#define UM_UTIL_RDSHARE_H

#include <stddef.h>
#include <stdint.h>

#define UM_RDSHARE_PERIOD_MS 1000

typedef struct {
    uint64_t period; /* current period (ms / UM_RDSHARE_PERIOD_MS) + 1; 0: none yet */
    uint32_t cur;    /* connections that read in it */
    uint32_t prev;   /* ... in the one before */
} um_rdshare_t;

/* The size of the next read of one connection, whose stamp is *stamp (0 for
 * a new one; updated here). total: bytes a round of reads may bring in;
 * the answer is within [min, max]. */
size_t um_rdshare_next(um_rdshare_t *r, uint64_t *stamp, uint64_t now_ms, size_t total, size_t min,
                       size_t max);

#endif
