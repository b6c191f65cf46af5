/* Fuzz the client's state file parser (app/dialstate.h) with a round-trip
 * property: whatever parses must format, parse back to the same state, and
 * that text must be a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/dialstate.h"

static int same(const um_dialstate_t *a, const um_dialstate_t *b)
{
    if (a->has_remembered != b->has_remembered) return 0;
    if (!a->has_remembered) return 1;
    const um_dial_rec_t *x = &a->remembered, *y = &b->remembered;
    return !strcmp(x->server, y->server) && !strcmp(x->key_fp, y->key_fp) &&
           !strcmp(x->address, y->address) && !strcmp(x->transport, y->transport) &&
           x->at_s == y->at_s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    um_dialstate_t a, b;
    char err[256], t1[2048], t2[2048];
    size_t n1, n2;
    err[0] = 0;
    if (um_dialstate_parse(&a, (const char *)data, size, err, sizeof(err)) != 0) {
        if (strncmp(err, "line ", 5) != 0 && strncmp(err, "longer", 6) != 0) abort();
        return 0;
    }
    if (um_dialstate_format(&a, t1, sizeof(t1), &n1) != 0) abort();
    if (um_dialstate_parse(&b, t1, n1, err, sizeof(err)) != 0) abort();
    if (!same(&a, &b)) abort();
    if (um_dialstate_format(&b, t2, sizeof(t2), &n2) != 0 || n1 != n2 || memcmp(t1, t2, n1))
        abort();
    return 0;
}
