#include "util/buf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void um_buf_init(um_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

/* Every byte that ever held data (the first `dirty` bytes of the storage) is
 * zeroed before the storage goes back to the allocator: any queue may hold
 * plaintext (session, stream and proxy buffers do). The cost is bounded by
 * the bytes written, so it stays amortised O(1) per byte. */
static void release(uint8_t *data, size_t dirty)
{
    if (!data) return;
    if (dirty) sodium_memzero(data, dirty);
    free(data);
}

void um_buf_free(um_buf_t *b)
{
    release(b->data, b->dirty);
    b->data = NULL;
    b->cap = b->head = b->tail = b->dirty = 0;
}

void um_buf_wipe(um_buf_t *b)
{
    if (b->data) sodium_memzero(b->data, b->cap);
    b->dirty = 0;
    um_buf_free(b);
}

/* Makes room for n more bytes at the tail. Compaction moves the queued bytes
 * to the front only when at least as many bytes were consumed since (so each
 * byte is moved at most once per byte consumed: amortised O(1)); otherwise the
 * storage grows, up to twice max. The queue itself never passes max. */
static int make_room(um_buf_t *b, size_t n)
{
    size_t len = b->tail - b->head;
    if (n > b->max - len) return UM_ENOSPC;
    b->used = true;
    if (b->cap - b->tail >= n) return 0;
    if (b->head > 0 && b->cap - len >= n && (b->head >= len || b->cap >= 2 * b->max)) {
        memmove(b->data, b->data + b->head, len);
        b->head = 0;
        b->tail = len;
        return 0;
    }
    /* Growing means a bigger storage: at least twice the old one. Storage of
     * the same size would copy the queue and wipe the old storage for
     * nothing, on every append, once a deep queue (more unread than read
     * since) fills it: a 16 MiB stream queue did that 50 times per GiB. */
    size_t want = len + n, cap = b->cap ? (b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2) : 256;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    size_t limit = b->max > SIZE_MAX / 2 ? b->max : 2 * b->max;
    if (cap > limit) cap = limit > want ? limit : want;
    uint8_t *p = malloc(cap);
    if (!p) return UM_ENOMEM;
    if (len) memcpy(p, b->data + b->head, len);
    release(b->data, b->dirty);
    b->data = p;
    b->cap = cap;
    b->head = 0;
    b->tail = b->dirty = len;
    return 0;
}

int um_buf_append(um_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    int r = make_room(b, n);
    if (r) return r;
    memcpy(b->data + b->tail, p, n);
    b->tail += n;
    if (b->tail > b->dirty) b->dirty = b->tail;
    return 0;
}

uint8_t *um_buf_reserve(um_buf_t *b, size_t n)
{
    if (make_room(b, n ? n : 1)) return NULL;
    return b->data + b->tail;
}

void um_buf_commit(um_buf_t *b, size_t n)
{
    b->tail += n;
    if (b->tail > b->dirty) b->dirty = b->tail;
}

size_t um_buf_peek(const um_buf_t *b, const uint8_t **p)
{
    *p = b->data ? b->data + b->head : NULL;
    return b->tail - b->head;
}

size_t um_buf_read(um_buf_t *b, void *out, size_t n)
{
    size_t len = b->tail - b->head;
    if (n > len) n = len;
    if (n) memcpy(out, b->data + b->head, n);
    um_buf_consume(b, n);
    return n;
}

void um_buf_consume(um_buf_t *b, size_t n)
{
    b->head += n;
    if (b->head == b->tail) b->head = b->tail = 0;
}

void um_buf_clear(um_buf_t *b)
{
    b->head = b->tail = 0;
}

void um_buf_shrink(um_buf_t *b)
{
    size_t len = b->tail - b->head;
    if (!b->data || b->cap <= 16384 || b->cap / 2 < len) return;
    size_t cap = 256;
    while (cap < len)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (!p) return;
    if (len) memcpy(p, b->data + b->head, len);
    release(b->data, b->dirty);
    b->data = p;
    b->cap = cap;
    b->head = 0;
    b->tail = b->dirty = len;
}

void um_buf_trim(um_buf_t *b)
{
    if (b->used) {
        b->used = false;
        return;
    }
    if (!b->data) return;
    if (b->tail == b->head)
        um_buf_free(b);
    else
        um_buf_shrink(b);
}
