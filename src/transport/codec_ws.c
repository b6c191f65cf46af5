#include "transport/codec_ws.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "transport/ws_carrier.h"
#include "util/b64.h"
#include "util/err.h"

typedef struct {
    char key[UM_WS_KEY_LEN + 1];
} ws_state_t;

_Static_assert(sizeof(ws_state_t) <= UM_CODEC_STATE_MAX, "codec state");

static const um_codec_ws_t *ws_of(const um_codec_t *c)
{
    return (const um_codec_ws_t *)c;
}

bool um_ws_path_ok(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n > UM_WS_PATH_MAX || path[0] != '/') return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] <= ' ' || (unsigned char)path[i] >= 0x7f) return false;
    return true;
}

static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n > UM_WS_HOST_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f) return false;
    return true;
}

/* ---- client ---- */

static size_t ws_msg1_len(const um_codec_t *c, um_codec_state_t *st)
{
    ws_state_t *s = (ws_state_t *)st->b;
    uint8_t k[16];
    randombytes_buf(k, sizeof(k));
    um_b64_encode(s->key, sizeof(s->key), k, sizeof(k), UM_B64_STD);
    return ws_of(c)->msg1_min + 64 + randombytes_uniform(UM_WS_MSG1_SPAN + 1);
}

static int ws_seal_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg1, size_t n,
                          uint8_t *out, size_t cap, size_t *outn)
{
    const um_codec_ws_t *w = ws_of(c);
    ws_state_t *s = (ws_state_t *)st->b;
    char proto[UM_HS_MSG1_B64_MAX];
    if (s->key[0] == '\0' || um_b64_encode(proto, sizeof(proto), msg1, n, UM_B64_URL) != 0)
        return UM_EINVAL;
    const char *extra[UM_WS_XHDR_MAX];
    for (size_t i = 0; i < w->n_xhdr && i < UM_WS_XHDR_MAX; i++)
        extra[i] = w->xhdr[i];
    um_ws_req_t q = {.path = w->path,
                     .host = w->host,
                     .protocol = proto,
                     .extra = extra,
                     .n_extra = w->n_xhdr < UM_WS_XHDR_MAX ? w->n_xhdr : UM_WS_XHDR_MAX};
    memcpy(q.key, s->key, sizeof(q.key));
    int r = um_ws_req_build(&q, (char *)out, cap, outn);
    sodium_memzero(proto, sizeof(proto));
    return r;
}

/* A server frame header at p: FIN, binary, unmasked, 7- or 16-bit length. */
static int frame_head(const uint8_t *p, size_t n, size_t *hl, size_t *len)
{
    if (n < 2) return UM_EAGAIN;
    if (p[0] != 0x82 || (p[1] & 0x80)) return UM_EPROTO;
    size_t l = p[1] & 0x7f;
    if (l == 127) return UM_EPROTO;
    if (l == 126) {
        if (n < 4) return UM_EAGAIN;
        l = ((size_t)p[2] << 8) | p[3];
        *hl = 4;
    } else {
        *hl = 2;
    }
    *len = l;
    return 0;
}

static int ws_open_reply(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                         uint8_t *msg2, size_t cap, size_t *msgn, size_t *consumed)
{
    (void)c;
    const ws_state_t *s = (const ws_state_t *)st->b;
    um_ws_head_t h;
    int r = um_ws_head_parse(p, n, &h);
    if (r) return r == UM_EAGAIN ? r : UM_EPROTO;
    if (um_ws_resp_check(&h, s->key) != 0) return UM_EPROTO;
    size_t hl = 0, len = 0;
    if ((r = frame_head(p + h.len, n - h.len, &hl, &len)) != 0) return r;
    if (len == 0 || len > cap) return UM_EPROTO;
    if (n - h.len - hl < len) return UM_EAGAIN;
    memcpy(msg2, p + h.len + hl, len);
    *msgn = len;
    *consumed = h.len + hl + len;
    return 0;
}

/* ---- server ---- */

static int ws_open_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                          uint8_t *msg1, size_t cap, size_t *msgn, size_t *consumed)
{
    ws_state_t *s = (ws_state_t *)st->b;
    um_ws_head_t h;
    um_ws_span_t pr;
    int r = um_ws_head_parse(p, n, &h);
    if (r) return r == UM_EAGAIN ? r : UM_EPROTO;
    if (um_ws_req_check(&h, ws_of(c)->path, s->key, &pr) != 0) return UM_EPROTO;
    size_t mn = 0;
    if (um_b64_decode(msg1, cap, &mn, (const char *)pr.p, pr.n, UM_B64_URL) != 0 || mn == 0)
        return UM_EPROTO;
    *msgn = mn;
    *consumed = h.len;
    return 0;
}

static size_t ws_msg2_len(const um_codec_t *c, const um_codec_state_t *st)
{
    (void)st;
    return ws_of(c)->msg2_min + randombytes_uniform(UM_WS_MSG2_SPAN + 1);
}

static int ws_seal_reply(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg2, size_t n,
                         um_codec_filler_fn fill, void *fill_ud, uint8_t *out, size_t cap,
                         size_t *outn)
{
    (void)c;
    (void)fill;
    (void)fill_ud;
    const ws_state_t *s = (const ws_state_t *)st->b;
    size_t w = 0;
    if (n == 0 || n > 0xffff) return UM_EINVAL;
    int r = um_ws_resp_build(s->key, (char *)out, cap, &w);
    if (r) return r;
    size_t hl = n < 126 ? 2 : 4;
    if (cap - w < hl + n) return UM_ENOSPC;
    out[w] = 0x82;
    if (n < 126) {
        out[w + 1] = (uint8_t)n;
    } else {
        out[w + 1] = 126;
        out[w + 2] = (uint8_t)(n >> 8);
        out[w + 3] = (uint8_t)n;
    }
    memcpy(out + w + hl, msg2, n);
    *outn = w + hl + n;
    return 0;
}

static int ws_refuse(const um_codec_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t cap,
                     size_t *outn)
{
    (void)c;
    um_ws_head_t h;
    /* A complete request head gets the 404; anything else (a head cut
     * short, bytes that are not HTTP) just the close at the deadline. */
    if (um_ws_head_parse(p, n, &h) != 0 || !h.is_request) return UM_EAGAIN;
    *outn = um_ws_not_found((char *)out, cap);
    return *outn ? 0 : UM_ENOSPC;
}

static int ws_wrap(const um_codec_t *c, const um_codec_state_t *st, int server_side,
                   um_carrier_t *inner, um_carrier_t **out)
{
    (void)st;
    const um_codec_ws_t *w = ws_of(c);
    um_ws_carrier_cfg_t cfg = {.server = server_side != 0, .loop = w->loop, .ping_ms = w->ping_ms};
    return um_ws_carrier_new(inner, &cfg, out);
}

const um_codec_ops_t um_codec_ws_ops = {
    .name = "ws",
    .prologue = "umbra/1 ws",
    .unauth = UM_UNAUTH_REFUSE,
    .msg1_len = ws_msg1_len,
    .seal_flight = ws_seal_flight,
    .open_reply = ws_open_reply,
    .open_flight = ws_open_flight,
    .msg2_len = ws_msg2_len,
    .seal_reply = ws_seal_reply,
    .wrap = ws_wrap,
    .refuse = ws_refuse,
};

int um_codec_ws_init(um_codec_ws_t *c, const char *path, const char *host, size_t msg1_min,
                     size_t msg2_min)
{
    if (!c || !um_ws_path_ok(path) || !host || !host_ok(host)) return UM_EINVAL;
    if (msg1_min + 64 + UM_WS_MSG1_SPAN > UM_HS_MSG1_MAX_WS || msg2_min == 0 ||
        msg2_min + UM_WS_MSG2_SPAN > 1024)
        return UM_EINVAL;
    memset(c, 0, sizeof(*c));
    c->base.ops = &um_codec_ws_ops;
    c->base.flight_max = UM_WS_HEAD_MAX;
    c->base.reply_max = UM_WS_HEAD_MAX + 4 + 1024;
    snprintf(c->path, sizeof(c->path), "%s", path);
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->msg1_min = msg1_min;
    c->msg2_min = msg2_min;
    return 0;
}
