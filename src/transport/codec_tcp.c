/* The tcp transport's first-flight codec: a masked flight (PROTOCOL.md
 * section 2) behind the optional first-packet shape (section 7). Byte for
 * byte what the acceptor and connector wrote before the codec seam existed. */
#include <sodium.h>
#include <string.h>

#include "transport/codec.h"
#include "transport/mask.h"
#include "transport/shape.h"
#include "util/err.h"

static const um_codec_tcp_t *tcp_of(const um_codec_t *c)
{
    return (const um_codec_tcp_t *)c;
}

static size_t tcp_msg1_len(const um_codec_t *c, um_codec_state_t *st)
{
    (void)c;
    (void)st;
    size_t total =
        UM_TCP_FLIGHT_C_MIN + randombytes_uniform(UM_TCP_FLIGHT_C_MAX - UM_TCP_FLIGHT_C_MIN + 1);
    return total - UM_MASK_OVERHEAD;
}

static size_t tcp_msg2_len(const um_codec_t *c, const um_codec_state_t *st)
{
    (void)st;
    size_t min = tcp_of(c)->msg2_min + UM_MASK_OVERHEAD;
    size_t total = min + randombytes_uniform((uint32_t)(UM_TCP_REPLY_MAX - min + 1));
    return total - UM_MASK_OVERHEAD;
}

/* One write: shaping prefix, then the masked flight, so the prefix leads the
 * first segment. */
static int seal(const um_codec_tcp_t *t, int dir, const uint8_t *msg, size_t n, uint8_t *out,
                size_t cap, size_t *outn)
{
    uint8_t flight[UM_FLIGHT_MAX];
    size_t fn = 0, pn = 0;
    int r = um_mask_seal(t->server_pub, dir, msg, n, flight, sizeof(flight), &fn);
    if (r == 0) r = um_shape_prefix((um_shape_t)t->shape, dir, fn, out, cap, &pn);
    if (r == 0 && cap - pn < fn) r = UM_ENOSPC;
    if (r == 0) {
        memcpy(out + pn, flight, fn);
        *outn = pn + fn;
    }
    sodium_memzero(flight, sizeof(flight));
    return r;
}

static int open_(const um_codec_tcp_t *t, int dir, size_t min, const uint8_t *p, size_t n,
                 uint8_t *msg, size_t cap, size_t *msgn, size_t *consumed)
{
    size_t pre = 0, want = 0, used = 0;
    int r = um_shape_strip((um_shape_t)t->shape, dir, p, n, &pre, &want);
    if (r == 0) r = um_mask_open(t->server_pub, dir, min, p + pre, n - pre, msg, cap, msgn, &used);
    /* A prefix that announces the flight length must announce it exactly. */
    if (want && ((r == 0 && used != want) || (r == UM_EAGAIN && n - pre >= want))) r = UM_EPROTO;
    if (r == UM_EAGAIN || r == 0) {
        if (r == 0) *consumed = pre + used;
        return r;
    }
    return UM_EPROTO;
}

/* A request line starts with a method token: 1..16 upper-case letters, then
 * a space. A masked first flight starts with uniformly random bytes, so the
 * chance that one looks like this and also holds a blank line is below
 * 2^-40: such bytes cannot be a flight. */
static bool http_head(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    if (i == 0 || i >= n || p[i] != ' ') return false;
    for (size_t j = i + 1; j + 1 < n; j++) {
        if (p[j] == '\n' && p[j + 1] == '\n') return true;
        if (j + 3 < n && p[j] == '\r' && p[j + 1] == '\n' && p[j + 2] == '\r' && p[j + 3] == '\n')
            return true;
    }
    return false;
}

/* A complete TLS handshake record (ContentType 22, version 3.x). */
static bool tls_record(const uint8_t *p, size_t n)
{
    if (n < 5 || p[0] != 0x16 || p[1] != 0x03 || p[2] > 0x04) return false;
    size_t len = ((size_t)p[3] << 8) | p[4];
    return len > 0 && n >= 5 + len;
}

bool um_tcp_not_flight(const uint8_t *p, size_t n)
{
    if (!p || n == 0) return false;
    return http_head(p, n) || tls_record(p, n);
}

static int tcp_seal_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg1, size_t n,
                           uint8_t *out, size_t cap, size_t *outn)
{
    (void)st;
    return seal(tcp_of(c), UM_MASK_C2S, msg1, n, out, cap, outn);
}

static int tcp_seal_reply(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg2, size_t n,
                          um_codec_filler_fn fill, void *fill_ud, uint8_t *out, size_t cap,
                          size_t *outn)
{
    (void)st;
    (void)fill;
    (void)fill_ud;
    return seal(tcp_of(c), UM_MASK_S2C, msg2, n, out, cap, outn);
}

static int tcp_open_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                           uint8_t *msg1, size_t cap, size_t *msgn, size_t *consumed)
{
    (void)st;
    const um_codec_tcp_t *t = tcp_of(c);
    int r = open_(t, UM_MASK_C2S, t->msg1_min, p, n, msg1, cap, msgn, consumed);
    /* Undecided bytes that are plainly another protocol cannot be an
     * unshaped (random-looking) flight: decide now (PROTOCOL.md 5). */
    if (r == UM_EAGAIN &&
        (n >= c->flight_max || (t->shape == UM_SHAPE_NONE && um_tcp_not_flight(p, n))))
        r = UM_EPROTO;
    return r;
}

static int tcp_open_reply(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                          uint8_t *msg2, size_t cap, size_t *msgn, size_t *consumed)
{
    (void)st;
    return open_(tcp_of(c), UM_MASK_S2C, tcp_of(c)->msg2_min, p, n, msg2, cap, msgn, consumed);
}

const um_codec_ops_t um_codec_tcp_ops = {
    .name = "tcp",
    .prologue = "umbra/1 tcp",
    .unauth = UM_UNAUTH_SILENCE,
    .msg1_len = tcp_msg1_len,
    .seal_flight = tcp_seal_flight,
    .open_reply = tcp_open_reply,
    .open_flight = tcp_open_flight,
    .msg2_len = tcp_msg2_len,
    .seal_reply = tcp_seal_reply,
};

int um_codec_tcp_init(um_codec_tcp_t *c, const uint8_t server_pub[32], uint8_t shape,
                      size_t msg1_min, size_t msg2_min)
{
    if (!c || !server_pub || shape > UM_SHAPE_MAX) return UM_EINVAL;
    if (msg1_min + UM_MASK_OVERHEAD > UM_TCP_FLIGHT_C_MIN ||
        msg2_min + UM_MASK_OVERHEAD > UM_TCP_REPLY_MAX)
        return UM_EINVAL;
    memset(c, 0, sizeof(*c));
    c->base.ops = &um_codec_tcp_ops;
    /* What the acceptor and connector kept before: one flight, plus the
     * shape's prefix when shaped. */
    c->base.flight_max = UM_FLIGHT_MAX + (shape ? UM_SHAPE_PREFIX_MAX : 0);
    c->base.reply_max = UM_FLIGHT_MAX + (shape ? UM_SHAPE_PREFIX_MAX : 0);
    memcpy(c->server_pub, server_pub, 32);
    c->shape = shape;
    c->msg1_min = msg1_min;
    c->msg2_min = msg2_min;
    return 0;
}
