/* SOCKS5 codec: RFC 1928 (protocol) and RFC 1929 (username/password). */
#include "proxy/socks5.h"

#include <string.h>

#include "proxy/conn.h"
#include "util/err.h"

int um_socks5_greeting_parse(const uint8_t *p, size_t n, size_t *used, um_socks5_greeting_t *g)
{
    if (n < 1) return UM_EAGAIN;
    if (p[0] != UM_SOCKS5_VERSION) return UM_EPROTO;
    if (n < 2) return UM_EAGAIN;
    if (p[1] == 0) return UM_EPROTO;
    if (n < 2 + (size_t)p[1]) return UM_EAGAIN;
    g->nmethods = p[1];
    memcpy(g->methods, p + 2, p[1]);
    *used = 2 + (size_t)p[1];
    return 0;
}

uint8_t um_socks5_method_choose(const um_socks5_greeting_t *g, bool require_userpass)
{
    uint8_t want = require_userpass ? UM_SOCKS5_AUTH_USERPASS : UM_SOCKS5_AUTH_NONE;
    for (size_t i = 0; i < g->nmethods; i++)
        if (g->methods[i] == want) return want;
    return UM_SOCKS5_AUTH_NO_ACCEPTABLE;
}

size_t um_socks5_method_reply(uint8_t *out, size_t cap, uint8_t method)
{
    if (cap < 2) return 0;
    out[0] = UM_SOCKS5_VERSION;
    out[1] = method;
    return 2;
}

int um_socks5_userpass_parse(const uint8_t *p, size_t n, size_t *used, um_socks5_userpass_t *up)
{
    if (n < 1) return UM_EAGAIN;
    if (p[0] != 0x01) return UM_EPROTO; /* sub-negotiation version 1 */
    if (n < 2) return UM_EAGAIN;
    size_t ulen = p[1];
    if (ulen == 0) return UM_EPROTO;
    if (n < 2 + ulen + 1) return UM_EAGAIN;
    size_t plen = p[2 + ulen];
    if (plen == 0) return UM_EPROTO;
    if (n < 3 + ulen + plen) return UM_EAGAIN;
    up->ulen = (uint8_t)ulen;
    up->plen = (uint8_t)plen;
    memcpy(up->user, p + 2, ulen);
    up->user[ulen] = '\0';
    memcpy(up->pass, p + 3 + ulen, plen);
    up->pass[plen] = '\0';
    *used = 3 + ulen + plen;
    return 0;
}

size_t um_socks5_userpass_reply(uint8_t *out, size_t cap, bool ok)
{
    if (cap < 2) return 0;
    out[0] = 0x01;
    out[1] = ok ? 0x00 : 0x01;
    return 2;
}

int um_socks5_addr_get(const uint8_t *p, size_t n, size_t *used, um_addr_t *a, uint8_t *rep)
{
    memset(a, 0, sizeof(*a));
    if (n < 1) return UM_EAGAIN;
    size_t alen;
    switch (p[0]) {
    case UM_ADDR_IPV4: alen = 4; break;
    case UM_ADDR_IPV6: alen = 16; break;
    case UM_ADDR_DOMAIN:
        if (n < 2) return UM_EAGAIN;
        alen = 1 + (size_t)p[1];
        break;
    default: *rep = UM_SOCKS5_REP_ATYP_UNSUPPORTED; return UM_EPROTO;
    }
    if (n < 1 + alen + 2) return UM_EAGAIN;
    *used = 1 + alen + 2;
    uint16_t port = (uint16_t)((p[1 + alen] << 8) | p[2 + alen]);
    if (p[0] == UM_ADDR_IPV4) {
        a->type = UM_ADDR_IPV4;
        memcpy(a->u.v4, p + 1, 4);
    } else if (p[0] == UM_ADDR_IPV6) {
        a->type = UM_ADDR_IPV6;
        memcpy(a->u.v6, p + 1, 16);
    } else {
        /* A name may be an IP literal (clients that resolve nothing send
         * everything as a name); um_addr_parse_host returns it as an IP. */
        if (alen == 1 || um_addr_parse_host(a, (const char *)p + 2, alen - 1, NULL, 0) != 0) {
            *rep = UM_SOCKS5_REP_GENERAL_FAILURE;
            return UM_EPROTO;
        }
    }
    a->port = port;
    return 0;
}

size_t um_socks5_addr_put(uint8_t *out, size_t cap, const um_addr_t *a)
{
    size_t alen;
    switch (a->type) {
    case UM_ADDR_IPV4: alen = 4; break;
    case UM_ADDR_IPV6: alen = 16; break;
    case UM_ADDR_DOMAIN: alen = 1 + (size_t)a->domain_len; break;
    default: return 0;
    }
    if (cap < 1 + alen + 2) return 0;
    out[0] = a->type;
    if (a->type == UM_ADDR_IPV4) {
        memcpy(out + 1, a->u.v4, 4);
    } else if (a->type == UM_ADDR_IPV6) {
        memcpy(out + 1, a->u.v6, 16);
    } else {
        out[1] = a->domain_len;
        memcpy(out + 2, a->u.domain, a->domain_len);
    }
    out[1 + alen] = (uint8_t)(a->port >> 8);
    out[2 + alen] = (uint8_t)a->port;
    return 1 + alen + 2;
}

int um_socks5_request_parse(const uint8_t *p, size_t n, size_t *used, um_socks5_request_t *req,
                            uint8_t *rep)
{
    *rep = UM_SOCKS5_REP_GENERAL_FAILURE;
    memset(req, 0, sizeof(*req));
    if (n < 1) return UM_EAGAIN;
    if (p[0] != UM_SOCKS5_VERSION) return UM_EPROTO;
    if (n < 4) return UM_EAGAIN;
    size_t alen = 0;
    int r = um_socks5_addr_get(p + 3, n - 3, &alen, &req->dst, rep);
    if (r == UM_EAGAIN) {
        /* Reject a bad header early, without waiting for the address. */
        if (p[2] != 0) return UM_EPROTO;
        return r;
    }
    *used = 3 + alen;
    if (r != 0) return r;
    if (p[2] != 0) {
        *rep = UM_SOCKS5_REP_GENERAL_FAILURE;
        return UM_EPROTO;
    }
    if (p[1] != UM_SOCKS5_CMD_CONNECT && p[1] != UM_SOCKS5_CMD_UDP_ASSOCIATE) {
        *rep = UM_SOCKS5_REP_CMD_UNSUPPORTED; /* BIND included */
        return UM_EPROTO;
    }
    req->cmd = p[1];
    return 0;
}

size_t um_socks5_reply_build(uint8_t *out, size_t cap, uint8_t rep, const um_addr_t *bnd)
{
    um_addr_t zero = {.type = UM_ADDR_IPV4};
    if (!bnd) bnd = &zero;
    if (cap < 3) return 0;
    out[0] = UM_SOCKS5_VERSION;
    out[1] = rep;
    out[2] = 0;
    size_t a = um_socks5_addr_put(out + 3, cap - 3, bnd);
    return a ? 3 + a : 0;
}

int um_socks5_udp_parse(const uint8_t *p, size_t n, size_t *hdr_len, um_addr_t *dst)
{
    uint8_t rep;
    size_t alen = 0;
    if (n < 4 || p[0] != 0 || p[1] != 0 || p[2] != 0) return UM_EPROTO;
    if (um_socks5_addr_get(p + 3, n - 3, &alen, dst, &rep) != 0) return UM_EPROTO;
    *hdr_len = 3 + alen;
    return 0;
}

size_t um_socks5_udp_build(uint8_t *out, size_t cap, const um_addr_t *src)
{
    if (cap < 3) return 0;
    out[0] = out[1] = out[2] = 0;
    size_t a = um_socks5_addr_put(out + 3, cap - 3, src);
    return a ? 3 + a : 0;
}

uint8_t um_socks5_rep_from_result(int result)
{
    switch (result) {
    case UM_CONN_OK: return UM_SOCKS5_REP_SUCCEEDED;
    case UM_CONN_NOT_ALLOWED: return UM_SOCKS5_REP_NOT_ALLOWED;
    case UM_CONN_NET_UNREACHABLE: return UM_SOCKS5_REP_NET_UNREACHABLE;
    case UM_CONN_HOST_UNREACHABLE:
    case UM_CONN_HOST_NOT_FOUND: return UM_SOCKS5_REP_HOST_UNREACHABLE;
    case UM_CONN_REFUSED: return UM_SOCKS5_REP_REFUSED;
    case UM_CONN_TIMED_OUT: return UM_SOCKS5_REP_TTL_EXPIRED;
    default: return UM_SOCKS5_REP_GENERAL_FAILURE;
    }
}
