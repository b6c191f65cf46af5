/* Giving freed memory back to the system: see memtrim.h. One account for
 * the process (the heap is the process's); the loop runs on one thread. */
#include "util/memtrim.h"

#include <malloc.h>

#define TRIM_BYTES    (1u << 20)
#define TRIM_EVERY_MS 1000u

static size_t pending;
static uint64_t last_ms, count;

void um_memtrim_note(size_t freed, uint64_t now_ms)
{
    pending += freed;
    if (pending < TRIM_BYTES || (last_ms && now_ms - last_ms < TRIM_EVERY_MS)) return;
    pending = 0;
    last_ms = now_ms ? now_ms : 1;
    malloc_trim(0);
    count++;
}

uint64_t um_memtrim_count(void)
{
    return count;
}
