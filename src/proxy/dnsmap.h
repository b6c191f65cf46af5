/* Names of addresses, learnt from DNS answers that pass through the client
 * (VPN mode's UDP flows to port 53, SOCKS5 UDP ASSOCIATE): so that domain
 * and keyword routing rules can match a flow that arrives as a bare IP
 * address (proxy/rules.h, um_rules_match_named). An address is mapped to the
 * name the application asked for (the question), whatever CNAMEs led to it.
 *
 * The map is a bounded cache (a fixed number of slots, the newest answer for
 * an address wins, entries expire with their TTL, at least 60 s and at most
 * 1 h). It trusts the resolver the application uses: a resolver that lies
 * about a name can only change how that name's flows are routed. */
#ifndef UM_PROXY_DNSMAP_H
#define UM_PROXY_DNSMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

/* One A or AAAA answer: name (lower case, no trailing dot, n bytes, not
 * NUL-terminated; borrowed for the call) has address ip (port 0). */
typedef void (*um_dns_answer_cb)(void *ud, const char *name, size_t n, const um_addr_t *ip,
                                 uint32_t ttl);

/* Parses a DNS response (RFC 1035: QR set, RCODE 0, exactly one question)
 * and calls cb for every A/AAAA record of the answer section, attributed to
 * the question's name. Pure; compression pointers followed at most 16 times.
 * Returns the number of addresses, or UM_EPROTO for anything malformed (the
 * answers before the bad record have been reported). */
int um_dns_answers(const uint8_t *p, size_t n, um_dns_answer_cb cb, void *ud);

typedef struct um_dnsmap um_dnsmap_t;

#define UM_DNSMAP_SLOTS 4096

int um_dnsmap_new(um_dnsmap_t **out);
void um_dnsmap_free(um_dnsmap_t *m); /* NULL is a no-op */
/* Learns every answer of a DNS response. Returns what um_dns_answers does. */
int um_dnsmap_learn(um_dnsmap_t *m, const uint8_t *p, size_t n, uint64_t now_ms);
void um_dnsmap_put(um_dnsmap_t *m, const um_addr_t *ip, const char *name, size_t n, uint32_t ttl,
                   uint64_t now_ms);
/* The name learnt for ip (IPv4-mapped IPv6 as IPv4), NUL-terminated in out
 * (cap >= UM_DOMAIN_MAX + 1); false when none or expired. */
bool um_dnsmap_get(const um_dnsmap_t *m, const um_addr_t *ip, uint64_t now_ms, char *out,
                   size_t cap, size_t *n);

#endif
