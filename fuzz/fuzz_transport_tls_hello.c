/* The ClientHello parser (src/transport/tls_hello.c) on arbitrary bytes, with
 * its properties:
 *   - the verdict is done, need more or malformed, never anything else;
 *   - done: consumed <= n, every span lies inside the message, and the same
 *     bytes cut at consumed parse the same; every shorter cut is "need more";
 *   - a shorter cut never says malformed unless the whole input does (a
 *     verdict never flips from malformed back to valid as bytes arrive);
 *   - round trip: the message re-serialised from the parsed fields equals
 *     the reassembled message, and re-framed into records of other sizes
 *     (taken from the input) it parses to the same fields;
 *   - the JA4 of a parsed hello is always 36 characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ja4.h"
#include "transport/tls_hello.h"
#include "util/bytes.h"
#include "util/err.h"

static void span_ok(const um_tls_hello_t *h, um_tls_span_t s)
{
    if ((size_t)s.off + s.len > h->msg_len) __builtin_trap();
}

static void check_done(const uint8_t *p, size_t n, const um_tls_hello_t *h)
{
    if (h->consumed > n || h->msg_len < 4 || h->n_ext > UM_TLS_EXT_MAX) __builtin_trap();
    span_ok(h, h->ciphers);
    span_ok(h, h->compression);
    span_ok(h, h->sni);
    span_ok(h, h->alpn);
    span_ok(h, h->groups);
    span_ok(h, h->sigalgs);
    span_ok(h, h->versions);
    span_ok(h, h->ech_enc);
    span_ok(h, h->ech_payload);
    for (unsigned i = 0; i < h->n_ext; i++)
        span_ok(h, h->ext[i].data);
    for (unsigned i = 0; i < h->n_keyshare; i++)
        span_ok(h, h->keyshare[i].key);

    /* Re-serialise the message from the fields. */
    uint8_t *w = malloc(UM_TLS_HELLO_MAX);
    if (!w) return;
    size_t o = 4;
    um_st16(w + o, h->legacy_version);
    o += 2;
    memcpy(w + o, h->random, 32);
    o += 32;
    w[o++] = h->session_id_len;
    memcpy(w + o, h->session_id, h->session_id_len);
    o += h->session_id_len;
    um_st16(w + o, h->ciphers.len);
    memcpy(w + o + 2, um_tls_at(h, h->ciphers), h->ciphers.len);
    o += 2u + h->ciphers.len;
    w[o++] = (uint8_t)h->compression.len;
    memcpy(w + o, um_tls_at(h, h->compression), h->compression.len);
    o += h->compression.len;
    if (o < h->msg_len) {
        size_t el = o;
        o += 2;
        for (unsigned i = 0; i < h->n_ext; i++) {
            um_st16(w + o, h->ext[i].type);
            um_st16(w + o + 2, h->ext[i].data.len);
            memcpy(w + o + 4, um_tls_at(h, h->ext[i].data), h->ext[i].data.len);
            o += 4u + h->ext[i].data.len;
        }
        um_st16(w + el, (uint16_t)(o - el - 2));
    }
    w[0] = 1;
    w[1] = 0;
    um_st16(w + 2, (uint16_t)(o - 4));
    if (o != h->msg_len || memcmp(w, h->msg, o) != 0) __builtin_trap();
    free(w);

    char ja4[UM_JA4_LEN + 1];
    if (um_ja4(h, ja4) != 0 || strlen(ja4) != UM_JA4_LEN) __builtin_trap();
}

/* The message of h framed in records of sizes drawn from seed[0..k). */
static void reframe(const um_tls_hello_t *h, const uint8_t *seed, size_t k)
{
    size_t cap = (size_t)h->msg_len * 6 + 16;
    uint8_t *w = malloc(cap);
    um_tls_hello_t *g = malloc(sizeof(*g));
    if (!w || !g) goto out;
    size_t o = 0, m = 0, i = 0;
    while (m < h->msg_len) {
        size_t rl = k ? 1 + seed[i++ % k] * 8 : 1000;
        if (rl > h->msg_len - m) rl = h->msg_len - m;
        w[o] = 22;
        um_st16(w + o + 1, 0x0303);
        um_st16(w + o + 3, (uint16_t)rl);
        memcpy(w + o + 5, h->msg + m, rl);
        o += 5 + rl;
        m += rl;
    }
    if (um_tls_hello_parse(w, o, g) != 0 || g->consumed != o || g->msg_len != h->msg_len ||
        memcmp(g->msg, h->msg, h->msg_len) != 0 || g->n_ext != h->n_ext ||
        g->n_keyshare != h->n_keyshare || g->has_sni != h->has_sni || g->grease != h->grease ||
        g->has_ech != h->has_ech)
        __builtin_trap();
out:
    free(w);
    free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_tls_hello_t *h = malloc(sizeof(*h)), *g = malloc(sizeof(*g));
    if (!h || !g) goto out;
    int r = um_tls_hello_parse(p, n, h);
    if (r != 0 && r != UM_EAGAIN && r != UM_EPROTO) __builtin_trap();
    if (r == 0) {
        check_done(p, n, h);
        if (um_tls_hello_parse(p, h->consumed, g) != 0 || g->consumed != h->consumed)
            __builtin_trap();
        reframe(h, p, n < 8 ? n : 8);
    }
    for (size_t k = 0; k < n; k += 1 + k / 8) {
        int rk = um_tls_hello_parse(p, k, g);
        if (rk == UM_EPROTO && r != UM_EPROTO) __builtin_trap();
        if (r == 0 && k < h->consumed && rk != UM_EAGAIN) __builtin_trap();
        if (rk == 0 && (r != 0 || g->consumed != h->consumed)) __builtin_trap();
    }
out:
    free(h);
    free(g);
    return 0;
}
