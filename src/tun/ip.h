/* IPv4 / IPv6 packets as a TUN device carries them (no link header, no
 * packet-information prefix): parsing into a view and building with every
 * checksum filled in.
 *
 * Parsing is a pure function over (p, n): lengths are checked before each
 * field is read, loops over options and IPv6 extension headers are bounded,
 * and every rejection names its reason (um_ip_drop_t) so the caller can count
 * it. A whole packet is always given, so there is no "need more bytes" state:
 * a packet is either accepted or malformed.
 *
 * References: RFC 791 (IPv4), RFC 8200 (IPv6), RFC 9293 (TCP), RFC 768 (UDP),
 * RFC 792 / RFC 4443 (ICMP / ICMPv6), RFC 1071 (Internet checksum),
 * RFC 7323 (window scale, timestamps), RFC 2018 (SACK-permitted). */
#ifndef UM_TUN_IP_H
#define UM_TUN_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    UM_IPPROTO_ICMP = 1,
    UM_IPPROTO_TCP = 6,
    UM_IPPROTO_UDP = 17,
    UM_IPPROTO_ICMPV6 = 58,
};

/* TCP flag bits as they sit in byte 13 of the header. */
enum {
    UM_TCP_FIN = 0x01,
    UM_TCP_SYN = 0x02,
    UM_TCP_RST = 0x04,
    UM_TCP_PSH = 0x08,
    UM_TCP_ACK = 0x10,
    UM_TCP_URG = 0x20,
};

#define UM_IP_MAX_PACKET   65535u
#define UM_IPV4_HDR        20u
#define UM_IPV6_HDR        40u
#define UM_TCP_HDR         20u
#define UM_UDP_HDR         8u
#define UM_ICMP_HDR        8u
#define UM_IPV6_MAX_EXT    8 /* extension headers walked before giving up */
#define UM_TCP_WSCALE_NONE 0xff

/* Why a packet was refused. UM_IP_OK is 0. */
typedef enum {
    UM_IP_OK = 0,
    UM_IP_DROP_TRUNC, /* shorter than a header or a length field says */
    UM_IP_DROP_HDR,   /* bad version, header length or option encoding */
    UM_IP_DROP_FRAG,  /* a fragment (IPv4 MF/offset, IPv6 fragment header) */
    UM_IP_DROP_CSUM,  /* IPv4 header or L4 checksum wrong */
    UM_IP_DROP_EXT,   /* IPv6 extension header we do not walk, or too many */
    UM_IP_DROP_PROTO, /* L4 protocol we do not handle */
    UM_IP_DROP__COUNT
} um_ip_drop_t;

const char *um_ip_drop_name(um_ip_drop_t why);

typedef struct {
    uint32_t seq, ack;
    uint8_t flags;   /* UM_TCP_* */
    uint16_t window; /* raw, unscaled */
    uint16_t urg;
    /* options (only meaningful where present) */
    uint16_t mss;   /* 0 = absent */
    uint8_t wscale; /* UM_TCP_WSCALE_NONE = absent */
    bool sack_ok;
    bool has_ts;
    uint32_t ts_val, ts_ecr;
} um_tcp_hdr_t;

typedef struct {
    uint8_t type, code;
    uint8_t rest[4]; /* echo: identifier and sequence number */
} um_icmp_hdr_t;

/* A view of one packet. Offsets index the buffer that was parsed (borrowed:
 * the view holds no pointer and owns nothing). */
typedef struct {
    uint8_t version;          /* 4 or 6 */
    uint8_t proto;            /* UM_IPPROTO_* (after IPv6 extension headers) */
    uint8_t ttl;              /* TTL or hop limit */
    uint8_t tos;              /* IPv4 TOS / IPv6 traffic class */
    uint8_t src[16], dst[16]; /* IPv4 uses the first 4 bytes, the rest zero */
    size_t total_len;         /* bytes of the packet (trailing bytes beyond ignored) */
    size_t l4_off;            /* where the TCP/UDP/ICMP header starts */
    size_t l4_len;            /* L4 header + payload */
    size_t payload_off;       /* where the L4 payload starts */
    size_t payload_len;
    uint16_t sport, dport; /* TCP and UDP */
    um_tcp_hdr_t tcp;
    um_icmp_hdr_t icmp;
} um_ip_pkt_t;

/* Parses and validates one packet: IP header (and IPv4 header checksum),
 * IPv6 extension headers (hop-by-hop, routing and destination options are
 * skipped, at most UM_IPV6_MAX_EXT of them; a fragment header is
 * UM_IP_DROP_FRAG; anything else after them is the L4 protocol), then the
 * TCP, UDP, ICMP or ICMPv6 header and its checksum. Other L4 protocols are
 * UM_IP_DROP_PROTO. Returns UM_IP_OK and fills *out, or the drop reason (out
 * then holds whatever was read so far). */
um_ip_drop_t um_ip_parse(um_ip_pkt_t *out, const uint8_t *p, size_t n);

/* RFC 1071 ones' complement sum of (p, n) added to sum (not folded). */
uint32_t um_ip_csum_add(uint32_t sum, const uint8_t *p, size_t n);
/* Folds and complements a running sum into the 16-bit checksum value. */
uint16_t um_ip_csum_fold(uint32_t sum);
/* Sum of the TCP/UDP/ICMPv6 pseudo-header for (version, src, dst, proto, len). */
uint32_t um_ip_pseudo_sum(uint8_t version, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                          size_t l4_len);

/* Writes a complete packet into out (cap bytes): the IP header from h
 * (version, proto, ttl, tos, src, dst), the L4 header from h (ports, tcp or
 * icmp fields; TCP options MSS, window scale, SACK-permitted and timestamps
 * when set in h->tcp) and the payload (borrowed, may be NULL when plen == 0),
 * with every checksum computed. IPv4 packets carry DF and id 0.
 * Returns the packet length, or UM_EMSGSIZE when it would exceed cap or
 * 65535 bytes, UM_EINVAL for an unsupported version or protocol. */
int um_ip_build(const um_ip_pkt_t *h, const uint8_t *payload, size_t plen, uint8_t *out,
                size_t cap);

/* Bytes of TCP options um_ip_build() writes for h (a multiple of 4). */
size_t um_ip_tcp_opts_len(const um_tcp_hdr_t *h);

/* Sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4). */
static inline bool um_seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}
static inline bool um_seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

#endif
