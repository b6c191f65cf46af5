/* um_buf_t: one bounded byte queue for every socket, stream and record.
 *
 * Ownership: the buffer owns its storage; um_buf_free() releases it. Any
 * queue may hold plaintext, so storage is never handed back to the allocator
 * unwiped: growth and um_buf_free() zero every byte that ever held data, and
 * um_buf_wipe() zeroes the whole allocation (for buffers that held keys).
 * Pointers from um_buf_peek()/um_buf_reserve() are borrowed and stay valid
 * only until the next call that changes the buffer.
 *
 * The queue never holds more than `max` bytes: um_buf_append() refuses (and
 * appends nothing) when that would be exceeded, so a producer must check
 * um_buf_space() or handle UM_ENOSPC: that is the backpressure signal.
 * Storage may reach twice max, so that compaction stays amortised O(1). */
#ifndef UM_UTIL_BUF_H
#define UM_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data; /* storage, cap bytes */
    size_t cap;    /* allocated */
    size_t head;   /* first unread byte */
    size_t tail;   /* one past the last byte */
    size_t max;    /* hard bound on queued bytes */
    size_t dirty;  /* storage bytes [0, dirty) have held data: wiped on release */
    bool used;     /* appended to since the owner last cleared it (um_buf_trim) */
} um_buf_t;

void um_buf_init(um_buf_t *b, size_t max);
/* For owners that hand back storage of idle queues now and then: storage
 * that was appended to since the last call stays (a busy queue that happens
 * to be empty would otherwise be regrown from nothing, copy and wipe at every
 * step, right after); else an empty queue's storage is released and a small
 * queue's shrunk (um_buf_shrink). */
void um_buf_trim(um_buf_t *b);
void um_buf_free(um_buf_t *b); /* wipes what held data, releases; may be re-used */
void um_buf_wipe(um_buf_t *b); /* zero all the storage, then release it */

static inline size_t um_buf_len(const um_buf_t *b)
{
    return b->tail - b->head;
}
static inline size_t um_buf_space(const um_buf_t *b)
{
    return b->max - (b->tail - b->head);
}

/* Copies n bytes in. UM_ENOSPC (nothing appended) past max, UM_ENOMEM. */
int um_buf_append(um_buf_t *b, const void *p, size_t n);
/* Returns a writable region of at least n bytes at the tail, or NULL
 * (past max, or out of memory). Follow with um_buf_commit(b, used <= n). */
uint8_t *um_buf_reserve(um_buf_t *b, size_t n);
void um_buf_commit(um_buf_t *b, size_t n);
/* Contiguous view of all queued bytes (borrowed); returns the length. */
size_t um_buf_peek(const um_buf_t *b, const uint8_t **p);
/* Copies up to n bytes out and consumes them; returns how many. */
size_t um_buf_read(um_buf_t *b, void *out, size_t n);
void um_buf_consume(um_buf_t *b, size_t n); /* n <= um_buf_len() */
void um_buf_clear(um_buf_t *b);             /* drop all bytes, keep storage */
/* Storage much larger than the queued bytes (twice, and above 16 KiB)
 * is replaced by a copy that just fits them (the old storage wiped). On
 * allocation failure nothing changes. */
void um_buf_shrink(um_buf_t *b);

#endif
