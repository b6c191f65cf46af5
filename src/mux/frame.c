/* Multiplexer frame codec (docs/PROTOCOL.md section 6). */
#include "mux/frame.h"

#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

static int known_type(uint8_t t)
{
    return t <= UM_MUX_ASSOC_CLOSE;
}

int um_mux_frame_peek(const uint8_t *p, size_t n, size_t *total)
{
    if (n < UM_MUX_HDR) return UM_EAGAIN;
    uint16_t len = um_ld16(p + 2);
    if (len > UM_MUX_FRAME_MAX) return UM_EPROTO;
    if (!known_type(p[0]) && !(p[0] & UM_MUX_TYPE_IGNORABLE)) return UM_EPROTO;
    *total = UM_MUX_HDR + (size_t)len;
    return 0;
}

/* Address field: atype u8 | v4[4] / len u8 + name / v6[16] | port u16. */
static int addr_decode(const uint8_t *p, size_t n, um_addr_t *a, size_t *used)
{
    size_t k;
    memset(a, 0, sizeof(*a));
    if (n < 1) return UM_EPROTO;
    switch (p[0]) {
    case UM_ADDR_IPV4:
        if (n < 1 + 4 + 2) return UM_EPROTO;
        memcpy(a->u.v4, p + 1, 4);
        k = 5;
        break;
    case UM_ADDR_IPV6:
        if (n < 1 + 16 + 2) return UM_EPROTO;
        memcpy(a->u.v6, p + 1, 16);
        k = 17;
        break;
    case UM_ADDR_DOMAIN:
        if (n < 2) return UM_EPROTO;
        k = p[1];
        if (k == 0 || k > UM_DOMAIN_MAX || n < 2 + k + 2) return UM_EPROTO;
        if (!um_domain_valid((const char *)p + 2, k)) return UM_EPROTO;
        memcpy(a->u.domain, p + 2, k);
        a->u.domain[k] = '\0';
        a->domain_len = (uint8_t)k;
        k += 2;
        break;
    default: return UM_EPROTO;
    }
    a->type = p[0];
    a->port = um_ld16(p + k);
    if (a->port == 0) return UM_EPROTO;
    *used = k + 2;
    return 0;
}

size_t um_mux_addr_size(const um_addr_t *a)
{
    switch (a->type) {
    case UM_ADDR_IPV4: return 7;
    case UM_ADDR_IPV6: return 19;
    case UM_ADDR_DOMAIN: return 4 + (size_t)a->domain_len;
    default: return 0;
    }
}

static int addr_valid(const um_addr_t *a)
{
    if (a->port == 0) return 0;
    if (a->type == UM_ADDR_DOMAIN)
        return a->domain_len > 0 && um_domain_valid(a->u.domain, a->domain_len);
    return a->type == UM_ADDR_IPV4 || a->type == UM_ADDR_IPV6;
}

static size_t addr_encode(const um_addr_t *a, uint8_t *p)
{
    size_t k;
    p[0] = a->type;
    switch (a->type) {
    case UM_ADDR_IPV4:
        memcpy(p + 1, a->u.v4, 4);
        k = 5;
        break;
    case UM_ADDR_IPV6:
        memcpy(p + 1, a->u.v6, 16);
        k = 17;
        break;
    default:
        p[1] = a->domain_len;
        memcpy(p + 2, a->u.domain, a->domain_len);
        k = 2 + (size_t)a->domain_len;
        break;
    }
    um_st16(p + k, a->port);
    return k + 2;
}

int um_mux_frame_decode(const uint8_t *p, size_t n, um_mux_frame_t *f, size_t *used)
{
    size_t total;
    int r = um_mux_frame_peek(p, n, &total);
    if (r) return r;
    if (n < total) return UM_EAGAIN;
    memset(f, 0, sizeof(*f));
    f->type = p[0];
    f->flags = p[1];
    f->length = um_ld16(p + 2);
    f->id = um_ld32(p + 4);
    const uint8_t *q = p + UM_MUX_HDR;
    size_t len = f->length, k;
    uint8_t allowed_flags = 0;
    switch (f->type) {
    case UM_MUX_DATA:
        if (f->id == 0 || len == 0) return UM_EPROTO;
        f->data = q;
        f->data_len = len;
        break;
    case UM_MUX_OPEN:
        allowed_flags = UM_MUX_FLAG_FIN;
        if (f->id == 0 || addr_decode(q, len, &f->addr, &k) != 0) return UM_EPROTO;
        f->data = q + k;
        f->data_len = len - k;
        break;
    case UM_MUX_OPEN_RESULT:
        if (f->id == 0 || len != 1) return UM_EPROTO;
        f->code = q[0];
        if (um_mux_result_str(f->code) == NULL) return UM_EPROTO;
        break;
    case UM_MUX_FIN:
    case UM_MUX_ASSOC_CLOSE:
        if (f->id == 0 || len != 0) return UM_EPROTO;
        break;
    case UM_MUX_RST:
        if (f->id == 0 || len != 1) return UM_EPROTO;
        f->code = q[0];
        break;
    case UM_MUX_WINDOW:
        if (len != 4) return UM_EPROTO;
        f->value = um_ld32(q);
        if (f->value == 0 || f->value > UM_MUX_WINDOW_LIMIT) return UM_EPROTO;
        break;
    case UM_MUX_PING:
    case UM_MUX_PONG:
        if (f->id != 0 || len != 12) return UM_EPROTO;
        f->value = um_ld32(q);
        f->ts = um_ld64(q + 4);
        break;
    case UM_MUX_GOAWAY:
        if (f->id != 0 || len != 5) return UM_EPROTO;
        f->value = um_ld32(q);
        f->code = q[4];
        break;
    case UM_MUX_PADDING:
        if (f->id != 0) return UM_EPROTO;
        f->data = q;
        f->data_len = len;
        break;
    case UM_MUX_DATAGRAM:
        if (f->id == 0 || addr_decode(q, len, &f->addr, &k) != 0) return UM_EPROTO;
        f->data = q + k;
        f->data_len = len - k;
        break;
    default: /* ignorable extension (peek refused the rest) */
        f->data = q;
        f->data_len = len;
        allowed_flags = 0xff;
        break;
    }
    if (f->flags & (uint8_t)~allowed_flags) return UM_EPROTO;
    *used = total;
    return 0;
}

int um_mux_frame_encode(const um_mux_frame_t *f, uint8_t *out, size_t cap, size_t *written)
{
    size_t len = 0;
    uint8_t flags = 0;
    switch (f->type) {
    case UM_MUX_DATA:
        if (f->id == 0 || f->data_len == 0) return UM_EINVAL;
        len = f->data_len;
        break;
    case UM_MUX_OPEN:
    case UM_MUX_DATAGRAM:
        if (f->id == 0 || !addr_valid(&f->addr)) return UM_EINVAL;
        len = um_mux_addr_size(&f->addr) + f->data_len;
        if (f->type == UM_MUX_OPEN) flags = f->flags & UM_MUX_FLAG_FIN;
        break;
    case UM_MUX_OPEN_RESULT:
        if (f->id == 0 || um_mux_result_str(f->code) == NULL) return UM_EINVAL;
        len = 1;
        break;
    case UM_MUX_FIN:
    case UM_MUX_ASSOC_CLOSE:
        if (f->id == 0) return UM_EINVAL;
        break;
    case UM_MUX_RST:
        if (f->id == 0) return UM_EINVAL;
        len = 1;
        break;
    case UM_MUX_WINDOW:
        if (f->value == 0 || f->value > UM_MUX_WINDOW_LIMIT) return UM_EINVAL;
        len = 4;
        break;
    case UM_MUX_PING:
    case UM_MUX_PONG: len = 12; break;
    case UM_MUX_GOAWAY: len = 5; break;
    case UM_MUX_PADDING: len = f->data_len; break;
    default:
        if (!(f->type & UM_MUX_TYPE_IGNORABLE)) return UM_EINVAL;
        len = f->data_len;
        flags = f->flags;
        break;
    }
    if (len > UM_MUX_FRAME_MAX) return UM_EINVAL;
    if (cap < UM_MUX_HDR + len) return UM_ENOSPC;
    uint32_t id = f->id;
    if (f->type == UM_MUX_PING || f->type == UM_MUX_PONG || f->type == UM_MUX_GOAWAY ||
        f->type == UM_MUX_PADDING)
        id = 0;
    out[0] = f->type;
    out[1] = flags;
    um_st16(out + 2, (uint16_t)len);
    um_st32(out + 4, id);
    uint8_t *q = out + UM_MUX_HDR;
    switch (f->type) {
    case UM_MUX_OPEN:
    case UM_MUX_DATAGRAM: q += addr_encode(&f->addr, q); break;
    case UM_MUX_OPEN_RESULT:
    case UM_MUX_RST: q[0] = f->code; break;
    case UM_MUX_WINDOW: um_st32(q, f->value); break;
    case UM_MUX_PING:
    case UM_MUX_PONG:
        um_st32(q, f->value);
        um_st64(q + 4, f->ts);
        break;
    case UM_MUX_GOAWAY:
        um_st32(q, f->value);
        q[4] = f->code;
        break;
    default: break;
    }
    switch (f->type) {
    case UM_MUX_DATA:
    case UM_MUX_OPEN:
    case UM_MUX_DATAGRAM:
    case UM_MUX_PADDING:
        if (f->data_len) {
            if (f->data)
                memcpy(q, f->data, f->data_len);
            else
                memset(q, 0, f->data_len);
        }
        break;
    default:
        if ((f->type & UM_MUX_TYPE_IGNORABLE) && f->data_len) memcpy(q, f->data, f->data_len);
        break;
    }
    *written = UM_MUX_HDR + len;
    return 0;
}

uint8_t um_mux_result_socks5(uint8_t code)
{
    switch (code) {
    case UM_MUX_OK: return 0x00;
    case UM_MUX_ERR_NOT_ALLOWED: return 0x02;
    case UM_MUX_ERR_NET_UNREACH: return 0x03;
    case UM_MUX_ERR_HOST_UNREACH:
    case UM_MUX_ERR_HOST_NOT_FOUND: return 0x04;
    case UM_MUX_ERR_REFUSED: return 0x05;
    case UM_MUX_ERR_TIMEDOUT: return 0x06;
    case UM_MUX_ERR_ATYPE: return 0x08;
    default: return 0x01;
    }
}

int um_mux_result_http(uint8_t code)
{
    switch (code) {
    case UM_MUX_OK: return 200;
    case UM_MUX_ERR_NOT_ALLOWED: return 403;
    case UM_MUX_ERR_TIMEDOUT: return 504;
    default: return 502;
    }
}

const char *um_mux_result_str(uint8_t code)
{
    switch (code) {
    case UM_MUX_OK: return "connected";
    case UM_MUX_ERR_GENERAL: return "general failure";
    case UM_MUX_ERR_NOT_ALLOWED: return "not allowed by policy";
    case UM_MUX_ERR_NET_UNREACH: return "network unreachable";
    case UM_MUX_ERR_HOST_UNREACH: return "host unreachable";
    case UM_MUX_ERR_REFUSED: return "connection refused";
    case UM_MUX_ERR_TIMEDOUT: return "timed out";
    case UM_MUX_ERR_ATYPE: return "address type not supported";
    case UM_MUX_ERR_HOST_NOT_FOUND: return "host not found";
    default: return NULL;
    }
}
