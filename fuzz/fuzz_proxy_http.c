/* HTTP request and response parsers, the rewriters and the body tracker on
 * arbitrary bytes. Properties: a parsed request's rewrite parses again as
 * a request for the same origin-form target (after re-adding the authority);
 * head_len never exceeds the input; a rewritten request has exactly one Host
 * line; a rewritten response never has Content-Length beside
 * Transfer-Encoding; body framing consumes at most its input
 * and gives the same answer fed whole or byte by byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/http.h"
#include "util/err.h"

/* Header lines named `name` in a head written by a rewriter ("Name: " form). */
static size_t count_field(const uint8_t *p, size_t n, const char *name)
{
    size_t c = 0, nl = strlen(name);
    for (size_t i = 0; i + 2 + nl < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' &&
            strncasecmp((const char *)p + i + 2, name, nl) == 0 && p[i + 2 + nl] == ':')
            c++;
    return c;
}

static void body_check(const uint8_t *p, size_t n, um_http_framing_t f, uint64_t len)
{
    um_http_body_t a, b;
    size_t used_a = 0, used_b = 0, u;
    um_http_body_init(&a, f, len);
    um_http_body_init(&b, f, len);
    int ra = um_http_body_feed(&a, p, n, &used_a);
    int rb = um_http_body_feed(&b, p, 0, &u);
    if (u != 0) abort();
    for (size_t i = 0; i < n && rb == 0; i++) {
        rb = um_http_body_feed(&b, p + i, 1, &u);
        used_b += u;
    }
    if (used_a > n) abort();
    if (ra != rb) abort();
    if (ra == 1 && used_a != used_b) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_http_request_t *r = malloc(sizeof(*r));
    um_http_response_t *s = malloc(sizeof(*s));
    int rc = um_http_request_parse(p, n, r);
    if (rc == UM_EPROTO && (r->status < 400 || !r->why)) abort();
    if (rc == 0) {
        if (r->head_len > n) abort();
        size_t cap = r->head_len + 600;
        uint8_t *out = malloc(cap);
        size_t k = um_http_request_rewrite(r, out, cap);
        if (k == 0) abort();
        if (!r->is_connect) {
            /* The rewrite is origin-form: a proxy must refuse it. */
            um_http_request_t *r2 = malloc(sizeof(*r2));
            if (um_http_request_parse(out, k, r2) != UM_EPROTO || r2->status != 400) abort();
            free(r2);
            /* Exactly one Host, the one built from the URI. */
            if (count_field(out, k, "host") != 1) abort();
        }
        free(out);
        body_check(p + r->head_len, n - r->head_len, r->framing, r->content_length);
    }
    for (int head = 0; head < 2; head++) {
        rc = um_http_response_parse(p, n, head, s);
        if (rc == 0) {
            if (s->head_len > n || s->status < 100 || s->status > 999) abort();
            size_t cap = UM_HTTP_RESPONSE_REWRITE_CAP(s->head_len, s->nheaders);
            uint8_t *out = malloc(cap);
            size_t k = um_http_response_rewrite(s, p, true, out, cap);
            if (k == 0) abort();
            /* Content-Length beside Transfer-Encoding is never passed on. */
            if (s->close_after && s->status != 101 && count_field(out, k, "content-length") != 0)
                abort();
            um_http_response_t *s2 = malloc(sizeof(*s2));
            /* The rewrite adds a Connection header: at our own parser's header
             * limit it has one more than that parser takes (clients have no
             * such limit), so the re-parse property holds below the limit. */
            if (s->nheaders < UM_HTTP_HEADERS_MAX &&
                (um_http_response_parse(out, k, head, s2) != 0 || s2->status != s->status ||
                 (s->status != 101 && s2->framing != s->framing)))
                abort();
            free(s2);
            free(out);
        }
    }
    body_check(p, n, UM_HTTP_BODY_CHUNKED, 0);
    free(r);
    free(s);
    return 0;
}
