/* DNS messages for the dns transport, built and parsed with NLnet Labs'
 * ldns (docs/PROTOCOL.md section 13). Pure functions over byte strings;
 * the tunnel's own encoding inside the names and TXT strings is
 * dns_wire.h's.
 *
 * Server side: a query is parsed into um_dnsm_query_t, and the reply built
 * from it never exceeds the size the query allows: 512 bytes without EDNS0,
 * else the advertised payload size capped at UM_DNSM_EDNS (1232) and at
 * least 512; the reply carries an OPT record exactly when the query did.
 * Client side: a query is built (EDNS0 1232 or plain), an answer parsed
 * into its header, question and the TXT strings of its answer section. */
#ifndef UM_TRANSPORT_DNS_MSG_H
#define UM_TRANSPORT_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/dns_wire.h"

#define UM_DNSM_EDNS     1232
#define UM_DNSM_PLAIN    512
#define UM_DNSM_TCP_MAX  65535
#define UM_DNSM_TYPE_A   1
#define UM_DNSM_TYPE_NS  2
#define UM_DNSM_TYPE_SOA 6
#define UM_DNSM_TYPE_TXT 16
#define UM_DNSM_TYPE_OPT 41
#define UM_DNSM_TYPE_ANY 255

enum {
    UM_DNSM_NOERROR = 0,
    UM_DNSM_FORMERR = 1,
    UM_DNSM_SERVFAIL = 2,
    UM_DNSM_NXDOMAIN = 3,
    UM_DNSM_NOTIMP = 4,
    UM_DNSM_REFUSED = 5,
};

typedef struct {
    uint16_t id;
    uint8_t opcode;
    bool rd, cd;
    uint16_t qtype, qclass;
    uint8_t qname[UM_DNSW_NAME_MAX]; /* wire form, as received (case kept) */
    size_t qname_len;
    bool edns;
    uint16_t udp_size; /* the limit for our reply (512 without EDNS) */
} um_dnsm_query_t;

/* 0: a query with one question; UM_EPROTO: malformed but with a header we
 * can answer (FORMERR; q->id set, qname_len 0); UM_EINVAL: not a query or too
 * short to answer: drop it. */
int um_dnsm_query_parse(const uint8_t *p, size_t n, um_dnsm_query_t *q);

/* Payload bytes a TXT answer to q can carry within limit (a transport
 * limit: the UDP size of q, or UM_DNSM_TCP_MAX over TCP, whichever the
 * caller uses). */
size_t um_dnsm_txt_cap(const um_dnsm_query_t *q, size_t limit);

/* Reply to q. rcode and aa as given; txt (n bytes, split into strings of
 * 255) as a TXT answer for q's name when non-NULL; soa_auth: the zone's SOA
 * in the authority section (negative answers); apex_rr: SOA or NS answers
 * for the zone apex (qtype decides). zone: wire form. The reply is at most
 * limit bytes (TC set and sections dropped when it would not fit). */
typedef struct {
    uint8_t rcode;
    bool aa;
    const uint8_t *txt;
    size_t txt_n;
    bool soa_auth;
    bool apex_answer; /* answer q's SOA or NS (or both for ANY) */
    const uint8_t *zone;
    size_t zone_len;
} um_dnsm_reply_t;
int um_dnsm_reply_build(const um_dnsm_query_t *q, const um_dnsm_reply_t *r, size_t limit,
                        uint8_t *out, size_t cap, size_t *outn);

/* Client side. */
int um_dnsm_query_build(uint16_t id, const uint8_t *qname, size_t qlen, uint16_t qtype, bool edns,
                        uint8_t *out, size_t cap, size_t *outn);

typedef struct {
    uint16_t id;
    uint8_t rcode;
    bool qr, tc;
    uint8_t qname[UM_DNSW_NAME_MAX];
    size_t qname_len;
    uint16_t qtype;
    size_t n_txt; /* TXT records in the answer section */
} um_dnsm_answer_t;
/* 0: a response; txt gets the strings of the first TXT answer joined (at most
 * cap bytes, more is UM_EMSGSIZE); UM_EPROTO: malformed. */
int um_dnsm_answer_parse(const uint8_t *p, size_t n, um_dnsm_answer_t *a, uint8_t *txt, size_t cap,
                         size_t *txtn);

/* Case-insensitive equality of two wire-form names. */
bool um_dnsm_name_eq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

#endif
