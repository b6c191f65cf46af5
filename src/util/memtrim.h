/* Giving freed memory back to the system. glibc's malloc returns the top of
 * its heap when more than 128 KiB are free there, but storage freed in the
 * middle (a thousand stream buffers freed when the streams go idle, with
 * live blocks between them) stays resident until malloc_trim() releases
 * the free pages. Callers report what they freed; once 1 MiB has been freed
 * and at most once a second, the heap is trimmed. */
#ifndef UM_UTIL_MEMTRIM_H
#define UM_UTIL_MEMTRIM_H

#include <stddef.h>
#include <stdint.h>

/* `freed` bytes of storage went back to the allocator at now_ms. */
void um_memtrim_note(size_t freed, uint64_t now_ms);

/* How many times the heap was trimmed (tests, stats). */
uint64_t um_memtrim_count(void);

#endif
