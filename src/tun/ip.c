/* IPv4 / IPv6 / TCP / UDP / ICMP parsing and building (see ip.h). */
#include "tun/ip.h"

#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

const char *um_ip_drop_name(um_ip_drop_t why)
{
    switch (why) {
    case UM_IP_OK: return "ok";
    case UM_IP_DROP_TRUNC: return "truncated";
    case UM_IP_DROP_HDR: return "bad header";
    case UM_IP_DROP_FRAG: return "fragment";
    case UM_IP_DROP_CSUM: return "bad checksum";
    case UM_IP_DROP_EXT: return "unhandled extension header";
    case UM_IP_DROP_PROTO: return "unhandled protocol";
    default: return "unknown";
    }
}

uint32_t um_ip_csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    /* RFC 1071: the ones' complement sum of 16-bit words equals, modulo
     * 0xffff, the sum of 32-bit big-endian words (hi * 65536 + lo == hi + lo
     * mod 0xffff), so eight bytes are added per step in a 64-bit accumulator
     * and folded at the end. No overflow for any n below 2^32. */
    uint64_t s = sum;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint32_t a, b;
        memcpy(&a, p + i, 4);
        memcpy(&b, p + i + 4, 4);
        s += __builtin_bswap32(a);
        s += __builtin_bswap32(b);
    }
    for (; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < n) s += (uint32_t)p[i] << 8;
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s;
}

uint16_t um_ip_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t um_ip_pseudo_sum(uint8_t version, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                          size_t l4_len)
{
    size_t alen = version == 4 ? 4 : 16;
    uint32_t s = um_ip_csum_add(0, src, alen);
    s = um_ip_csum_add(s, dst, alen);
    uint8_t tail[8];
    if (version == 4) {
        tail[0] = 0;
        tail[1] = proto;
        um_st16(tail + 2, (uint16_t)l4_len);
        return um_ip_csum_add(s, tail, 4);
    }
    um_st32(tail, (uint32_t)l4_len);
    tail[4] = tail[5] = tail[6] = 0;
    tail[7] = proto;
    return um_ip_csum_add(s, tail, 8);
}

/* TCP options (RFC 9293 3.1): bounded by the option area's length. */
static um_ip_drop_t parse_tcp_opts(um_tcp_hdr_t *t, const uint8_t *o, size_t n, bool syn)
{
    size_t i = 0;
    while (i < n) {
        uint8_t kind = o[i];
        if (kind == 0) break; /* end of option list */
        if (kind == 1) {      /* no-operation */
            i++;
            continue;
        }
        if (i + 1 >= n) return UM_IP_DROP_HDR;
        size_t len = o[i + 1];
        if (len < 2 || len > n - i) return UM_IP_DROP_HDR;
        const uint8_t *v = o + i + 2;
        switch (kind) {
        case 2:
            if (len != 4) return UM_IP_DROP_HDR;
            if (syn) t->mss = um_ld16(v);
            break;
        case 3:
            if (len != 3) return UM_IP_DROP_HDR;
            if (syn) t->wscale = v[0];
            break;
        case 4:
            if (len != 2) return UM_IP_DROP_HDR;
            if (syn) t->sack_ok = true;
            break;
        case 8:
            if (len != 10) return UM_IP_DROP_HDR;
            t->has_ts = true;
            t->ts_val = um_ld32(v);
            t->ts_ecr = um_ld32(v + 4);
            break;
        default: break; /* SACK blocks and unknown options are skipped */
        }
        i += len;
    }
    return UM_IP_OK;
}

static um_ip_drop_t parse_l4(um_ip_pkt_t *out, const uint8_t *p)
{
    const uint8_t *l4 = p + out->l4_off;
    size_t n = out->l4_len;
    uint32_t sum;
    switch (out->proto) {
    case UM_IPPROTO_TCP: {
        if (n < UM_TCP_HDR) return UM_IP_DROP_TRUNC;
        size_t doff = (size_t)(l4[12] >> 4) * 4;
        if (doff < UM_TCP_HDR) return UM_IP_DROP_HDR;
        if (doff > n) return UM_IP_DROP_TRUNC;
        sum = um_ip_pseudo_sum(out->version, out->src, out->dst, UM_IPPROTO_TCP, n);
        if (um_ip_csum_fold(um_ip_csum_add(sum, l4, n)) != 0) return UM_IP_DROP_CSUM;
        um_tcp_hdr_t *t = &out->tcp;
        out->sport = um_ld16(l4);
        out->dport = um_ld16(l4 + 2);
        t->seq = um_ld32(l4 + 4);
        t->ack = um_ld32(l4 + 8);
        t->flags = l4[13] & 0x3f;
        t->window = um_ld16(l4 + 14);
        t->urg = um_ld16(l4 + 18);
        t->wscale = UM_TCP_WSCALE_NONE;
        um_ip_drop_t r =
            parse_tcp_opts(t, l4 + UM_TCP_HDR, doff - UM_TCP_HDR, (t->flags & UM_TCP_SYN) != 0);
        if (r) return r;
        out->payload_off = out->l4_off + doff;
        out->payload_len = n - doff;
        return UM_IP_OK;
    }
    case UM_IPPROTO_UDP: {
        if (n < UM_UDP_HDR) return UM_IP_DROP_TRUNC;
        size_t ulen = um_ld16(l4 + 4);
        if (ulen < UM_UDP_HDR) return UM_IP_DROP_HDR;
        if (ulen > n) return UM_IP_DROP_TRUNC;
        uint16_t ck = um_ld16(l4 + 6);
        if (ck == 0) {
            if (out->version == 6) return UM_IP_DROP_CSUM; /* mandatory in IPv6 */
        } else {
            sum = um_ip_pseudo_sum(out->version, out->src, out->dst, UM_IPPROTO_UDP, ulen);
            if (um_ip_csum_fold(um_ip_csum_add(sum, l4, ulen)) != 0) return UM_IP_DROP_CSUM;
        }
        out->sport = um_ld16(l4);
        out->dport = um_ld16(l4 + 2);
        out->l4_len = ulen;
        out->payload_off = out->l4_off + UM_UDP_HDR;
        out->payload_len = ulen - UM_UDP_HDR;
        return UM_IP_OK;
    }
    case UM_IPPROTO_ICMP:
    case UM_IPPROTO_ICMPV6: {
        if ((out->proto == UM_IPPROTO_ICMP) != (out->version == 4)) return UM_IP_DROP_PROTO;
        if (n < UM_ICMP_HDR) return UM_IP_DROP_TRUNC;
        sum = out->version == 6 ? um_ip_pseudo_sum(6, out->src, out->dst, UM_IPPROTO_ICMPV6, n) : 0;
        if (um_ip_csum_fold(um_ip_csum_add(sum, l4, n)) != 0) return UM_IP_DROP_CSUM;
        out->icmp.type = l4[0];
        out->icmp.code = l4[1];
        memcpy(out->icmp.rest, l4 + 4, 4);
        out->payload_off = out->l4_off + UM_ICMP_HDR;
        out->payload_len = n - UM_ICMP_HDR;
        return UM_IP_OK;
    }
    default: return UM_IP_DROP_PROTO;
    }
}

static um_ip_drop_t parse_v4(um_ip_pkt_t *out, const uint8_t *p, size_t n)
{
    if (n < UM_IPV4_HDR) return UM_IP_DROP_TRUNC;
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    if (ihl < UM_IPV4_HDR) return UM_IP_DROP_HDR;
    size_t tot = um_ld16(p + 2);
    if (tot < ihl) return UM_IP_DROP_HDR;
    if (tot > n || ihl > n) return UM_IP_DROP_TRUNC;
    if (um_ip_csum_fold(um_ip_csum_add(0, p, ihl)) != 0) return UM_IP_DROP_CSUM;
    out->tos = p[1];
    out->ttl = p[8];
    out->proto = p[9];
    memcpy(out->src, p + 12, 4);
    memcpy(out->dst, p + 16, 4);
    uint16_t frag = um_ld16(p + 6);
    if ((frag & 0x2000) || (frag & 0x1fff)) return UM_IP_DROP_FRAG; /* MF or offset */
    out->total_len = tot;
    out->l4_off = ihl;
    out->l4_len = tot - ihl;
    return UM_IP_OK;
}

static um_ip_drop_t parse_v6(um_ip_pkt_t *out, const uint8_t *p, size_t n)
{
    if (n < UM_IPV6_HDR) return UM_IP_DROP_TRUNC;
    size_t plen = um_ld16(p + 4);
    if (plen > n - UM_IPV6_HDR) return UM_IP_DROP_TRUNC;
    if (plen == 0) return UM_IP_DROP_HDR; /* jumbograms are not for a TUN */
    out->tos = (uint8_t)((p[0] & 0x0f) << 4 | p[1] >> 4);
    out->ttl = p[7];
    memcpy(out->src, p + 8, 16);
    memcpy(out->dst, p + 24, 16);
    size_t tot = UM_IPV6_HDR + plen;
    uint8_t next = p[6];
    size_t off = UM_IPV6_HDR;
    for (int i = 0;; i++) {
        if (next == 0 || next == 43 || next == 60) { /* hop-by-hop, routing, dest opts */
            if (i >= UM_IPV6_MAX_EXT) return UM_IP_DROP_EXT;
            if (tot - off < 8) return UM_IP_DROP_TRUNC;
            size_t elen = ((size_t)p[off + 1] + 1) * 8;
            if (elen > tot - off) return UM_IP_DROP_TRUNC;
            next = p[off];
            off += elen;
            continue;
        }
        if (next == 44) return UM_IP_DROP_FRAG;
        break;
    }
    if (next != UM_IPPROTO_TCP && next != UM_IPPROTO_UDP && next != UM_IPPROTO_ICMPV6)
        return (next == 59 || next == 50 || next == 51 || next == 135 || next == 139 ||
                next == 140 || next == 253 || next == 254)
                   ? UM_IP_DROP_EXT
                   : UM_IP_DROP_PROTO;
    out->proto = next;
    out->total_len = tot;
    out->l4_off = off;
    out->l4_len = tot - off;
    return UM_IP_OK;
}

um_ip_drop_t um_ip_parse(um_ip_pkt_t *out, const uint8_t *p, size_t n)
{
    memset(out, 0, sizeof(*out));
    out->tcp.wscale = UM_TCP_WSCALE_NONE;
    if (!p || n < 1) return UM_IP_DROP_TRUNC;
    out->version = p[0] >> 4;
    um_ip_drop_t r;
    if (out->version == 4)
        r = parse_v4(out, p, n);
    else if (out->version == 6)
        r = parse_v6(out, p, n);
    else
        return UM_IP_DROP_HDR;
    if (r) return r;
    return parse_l4(out, p);
}

size_t um_ip_tcp_opts_len(const um_tcp_hdr_t *h)
{
    size_t n = 0;
    if (h->mss) n += 4;
    if (h->wscale != UM_TCP_WSCALE_NONE) n += 4; /* NOP + 3 */
    if (h->sack_ok) n += 4;                      /* NOP NOP + 2 */
    if (h->has_ts) n += 12;                      /* NOP NOP + 10 */
    return n;
}

static size_t write_tcp_opts(uint8_t *o, const um_tcp_hdr_t *h)
{
    size_t i = 0;
    if (h->mss) {
        o[i++] = 2;
        o[i++] = 4;
        um_st16(o + i, h->mss);
        i += 2;
    }
    if (h->wscale != UM_TCP_WSCALE_NONE) {
        o[i++] = 1;
        o[i++] = 3;
        o[i++] = 3;
        o[i++] = h->wscale;
    }
    if (h->sack_ok) {
        o[i++] = 1;
        o[i++] = 1;
        o[i++] = 4;
        o[i++] = 2;
    }
    if (h->has_ts) {
        o[i++] = 1;
        o[i++] = 1;
        o[i++] = 8;
        o[i++] = 10;
        um_st32(o + i, h->ts_val);
        um_st32(o + i + 4, h->ts_ecr);
        i += 8;
    }
    return i;
}

int um_ip_build(const um_ip_pkt_t *h, const uint8_t *payload, size_t plen, uint8_t *out, size_t cap)
{
    size_t iph, l4h;
    if (h->version == 4)
        iph = UM_IPV4_HDR;
    else if (h->version == 6)
        iph = UM_IPV6_HDR;
    else
        return UM_EINVAL;
    switch (h->proto) {
    case UM_IPPROTO_TCP: l4h = UM_TCP_HDR + um_ip_tcp_opts_len(&h->tcp); break;
    case UM_IPPROTO_UDP: l4h = UM_UDP_HDR; break;
    case UM_IPPROTO_ICMP:
        if (h->version != 4) return UM_EINVAL;
        l4h = UM_ICMP_HDR;
        break;
    case UM_IPPROTO_ICMPV6:
        if (h->version != 6) return UM_EINVAL;
        l4h = UM_ICMP_HDR;
        break;
    default: return UM_EINVAL;
    }
    if (plen > UM_IP_MAX_PACKET) return UM_EMSGSIZE;
    size_t l4len = l4h + plen, tot = iph + l4len;
    if (tot > cap) return UM_EMSGSIZE;
    if (h->version == 4 ? tot > UM_IP_MAX_PACKET : l4len > UM_IP_MAX_PACKET) return UM_EMSGSIZE;

    uint8_t *ip = out, *l4 = out + iph;
    if (h->version == 4) {
        ip[0] = 0x45;
        ip[1] = h->tos;
        um_st16(ip + 2, (uint16_t)tot);
        um_st16(ip + 4, 0);      /* id: DF packets need none (RFC 6864) */
        um_st16(ip + 6, 0x4000); /* DF */
        ip[8] = h->ttl;
        ip[9] = h->proto;
        um_st16(ip + 10, 0);
        memcpy(ip + 12, h->src, 4);
        memcpy(ip + 16, h->dst, 4);
        um_st16(ip + 10, um_ip_csum_fold(um_ip_csum_add(0, ip, UM_IPV4_HDR)));
    } else {
        ip[0] = (uint8_t)(0x60 | h->tos >> 4);
        ip[1] = (uint8_t)(h->tos << 4);
        ip[2] = ip[3] = 0;
        um_st16(ip + 4, (uint16_t)l4len);
        ip[6] = h->proto;
        ip[7] = h->ttl;
        memcpy(ip + 8, h->src, 16);
        memcpy(ip + 24, h->dst, 16);
    }
    if (plen) memcpy(l4 + l4h, payload, plen);

    size_t ck_off;
    switch (h->proto) {
    case UM_IPPROTO_TCP:
        um_st16(l4, h->sport);
        um_st16(l4 + 2, h->dport);
        um_st32(l4 + 4, h->tcp.seq);
        um_st32(l4 + 8, h->tcp.ack);
        l4[12] = (uint8_t)((l4h / 4) << 4);
        l4[13] = h->tcp.flags & 0x3f;
        um_st16(l4 + 14, h->tcp.window);
        um_st16(l4 + 16, 0);
        um_st16(l4 + 18, h->tcp.urg);
        write_tcp_opts(l4 + UM_TCP_HDR, &h->tcp);
        ck_off = 16;
        break;
    case UM_IPPROTO_UDP:
        um_st16(l4, h->sport);
        um_st16(l4 + 2, h->dport);
        um_st16(l4 + 4, (uint16_t)l4len);
        um_st16(l4 + 6, 0);
        ck_off = 6;
        break;
    default: /* ICMP, ICMPv6 */
        l4[0] = h->icmp.type;
        l4[1] = h->icmp.code;
        um_st16(l4 + 2, 0);
        memcpy(l4 + 4, h->icmp.rest, 4);
        ck_off = 2;
        break;
    }
    uint32_t sum = h->proto == UM_IPPROTO_ICMP
                       ? 0
                       : um_ip_pseudo_sum(h->version, h->src, h->dst, h->proto, l4len);
    uint16_t ck = um_ip_csum_fold(um_ip_csum_add(sum, l4, l4len));
    if (h->proto == UM_IPPROTO_UDP && ck == 0) ck = 0xffff; /* 0 means "none" */
    um_st16(l4 + ck_off, ck);
    return (int)tot;
}
