/* Frame decoder: never crashes; whatever decodes re-encodes to the very same
 * bytes and decodes again to the same frame (decode -> encode -> decode). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mux/frame.h"
#include "util/err.h"

static void same(const um_mux_frame_t *a, const um_mux_frame_t *b)
{
    if (a->type != b->type || a->flags != b->flags || a->id != b->id || a->length != b->length ||
        a->code != b->code || a->value != b->value || a->ts != b->ts || a->data_len != b->data_len)
        abort();
    if (a->data_len && memcmp(a->data, b->data, a->data_len) != 0) abort();
    if (a->type == UM_MUX_OPEN || a->type == UM_MUX_DATAGRAM) {
        if (!um_addr_equal(&a->addr, &b->addr)) abort();
        if (um_mux_addr_size(&a->addr) + a->data_len != a->length) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[UM_MUX_HDR + UM_MUX_FRAME_MAX];
    size_t off = 0;
    for (int i = 0; i < 64 && off < size; i++) {
        um_mux_frame_t f, g;
        size_t used, w, used2, total;
        int r = um_mux_frame_decode(data + off, size - off, &f, &used);
        int pr = um_mux_frame_peek(data + off, size - off, &total);
        if (r == UM_EAGAIN) {
            if (pr == 0 && total <= size - off) abort(); /* a whole frame is there */
            return 0;
        }
        if (r != 0) {
            if (r != UM_EPROTO) abort();
            return 0;
        }
        if (pr != 0 || total != used || used > size - off) abort();
        if (um_mux_frame_encode(&f, out, sizeof(out), &w) != 0) abort();
        if (w != used || memcmp(out, data + off, used) != 0) abort();
        if (um_mux_frame_decode(out, w, &g, &used2) != 0 || used2 != w) abort();
        same(&f, &g);
        off += used;
    }
    return 0;
}
