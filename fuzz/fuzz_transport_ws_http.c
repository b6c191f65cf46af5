/* The ws transport's HTTP side (transport/ws_http.h, codec_ws.c) on
 * arbitrary bytes: the head parser, the request and response checks, the
 * codec's open_flight / open_reply / refuse. Properties:
 *   - every answer is complete, need more or refused; a complete head lies
 *     within the input and its fields within the head;
 *   - the parser is prefix-monotone: a complete head stays complete (same
 *     length) with more bytes after it, and a refused input stays refused;
 *   - open_flight's message fits its buffer and consumed is the head;
 *   - the input as an extra upgrade field (`header`, up to its first NUL):
 *     one that um_ws_xhdr_check accepts builds a request that parses back
 *     as our upgrade with exactly one field more than without it, and the
 *     Host and Sec-WebSocket-Protocol of the original (no injection). */
#include <stdint.h>
#include <string.h>

#include "transport/codec_ws.h"
#include "transport/ws_http.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_ws_head_t h, h2;
    int r = um_ws_head_parse(p, n, &h);
    if (r != 0 && r != UM_EAGAIN && r != UM_EPROTO) __builtin_trap();
    if (r == 0) {
        if (h.len == 0 || h.len > n || h.n_fields > UM_WS_FIELDS_MAX) __builtin_trap();
        for (size_t i = 0; i < h.n_fields; i++)
            if (h.name[i].p < p || h.name[i].p + h.name[i].n > p + h.len || h.value[i].p < p ||
                h.value[i].p + h.value[i].n > p + h.len)
                __builtin_trap();
        char key[UM_WS_KEY_LEN + 1];
        um_ws_span_t pr;
        if (um_ws_req_check(&h, "/p", key, &pr) == 0 && (strlen(key) != UM_WS_KEY_LEN || !pr.p))
            __builtin_trap();
        (void)um_ws_resp_check(&h, "dGhlIHNhbXBsZSBub25jZQ==");
        (void)um_ws_field_has(&h, "connection", "upgrade");
        /* More bytes after a complete head do not change it. */
        if (um_ws_head_parse(p, h.len, &h2) != 0 || h2.len != h.len) __builtin_trap();
    }
    if (n > 0) {
        int r2 = um_ws_head_parse(p, n - 1, &h2);
        if (r2 == UM_EPROTO && r != UM_EPROTO && n - 1 < UM_WS_HEAD_MAX) __builtin_trap();
    }
    um_codec_ws_t c;
    if (um_codec_ws_init(&c, "/p", "h", 60, 40) != 0) __builtin_trap();
    um_codec_state_t st;
    memset(&st, 0, sizeof(st));
    uint8_t msg[4096], ans[512];
    size_t mn = 0, used = 0, an = 0;
    r = c.base.ops->open_flight(&c.base, &st, p, n, msg, sizeof(msg), &mn, &used);
    if (r == 0 && (mn == 0 || mn > sizeof(msg) || used > n)) __builtin_trap();
    if (r != 0 && r != UM_EAGAIN && r != UM_EPROTO) __builtin_trap();
    r = c.base.ops->refuse(&c.base, p, n, ans, sizeof(ans), &an);
    if (r == 0 && (an == 0 || an > sizeof(ans))) __builtin_trap();
    memset(&st, 0, sizeof(st));
    c.base.ops->msg1_len(&c.base, &st);
    r = c.base.ops->open_reply(&c.base, &st, p, n, msg, sizeof(msg), &mn, &used);
    if (r == 0 && (mn == 0 || mn > sizeof(msg) || used > n)) __builtin_trap();

    char line[UM_WS_XHDR_LEN + 2], why[96];
    size_t ln = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
    memcpy(line, p, ln);
    line[ln] = '\0';
    if (um_ws_xhdr_check(line, why, sizeof(why)) == 0) {
        const char *extra[] = {line};
        um_ws_req_t q = {.path = "/p", .host = "h.example", .protocol = "QUJD"};
        memcpy(q.key, "dGhlIHNhbXBsZSBub25jZQ==", UM_WS_KEY_LEN + 1);
        char base[8192], with[8192], key[UM_WS_KEY_LEN + 1];
        size_t bn = 0, wn = 0;
        if (um_ws_req_build(&q, base, sizeof(base), &bn) != 0) __builtin_trap();
        q.extra = extra;
        q.n_extra = 1;
        if (um_ws_req_build(&q, with, sizeof(with), &wn) != 0) __builtin_trap();
        um_ws_span_t pr;
        if (um_ws_head_parse((const uint8_t *)base, bn, &h) != 0 ||
            um_ws_head_parse((const uint8_t *)with, wn, &h2) != 0 || h2.len != wn)
            __builtin_trap();
        /* One more field, or the same count when it replaced a default. */
        if (h2.n_fields != h.n_fields + 1 && h2.n_fields != h.n_fields) __builtin_trap();
        if (um_ws_req_check(&h2, "/p", key, &pr) != 0 || pr.n != 4 || memcmp(pr.p, "QUJD", 4))
            __builtin_trap();
        const um_ws_span_t *host = um_ws_field(&h2, "host");
        if (!host || host->n != 9 || memcmp(host->p, "h.example", 9)) __builtin_trap();
    }
    return 0;
}
