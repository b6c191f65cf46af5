/* Fuzz the metrics endpoint's request reader (um_metrics_route): any bytes,
 * any length. Properties: the answer is one of 0, 200, 400, 404; 200 only
 * for GET /metrics; a complete header stays complete (and answered the
 * same) when more bytes follow it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *r = (const char *)data;
    if (size > UM_METRICS_REQ_MAX) return 0;
    int code = um_metrics_route(r, size);
    if (code != 0 && code != 200 && code != 400 && code != 404) abort();
    if (code == 200 && (size < 14 || memcmp(r, "GET /metrics", 12) != 0)) abort();
    if (code != 0) {
        char *more = malloc(size + 7);
        if (!more) return 0;
        memcpy(more, r, size);
        memcpy(more + size, "GET / ", 6);
        if (um_metrics_route(more, size + 6) != code) abort();
        free(more);
    }
    return 0;
}
