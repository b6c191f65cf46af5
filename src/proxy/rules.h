/* Client routing rules (split tunnelling): ordered `ACTION MATCH` rules that
 * send a destination through the tunnel, directly from this host, or nowhere.
 *
 *   tunnel domain:example.org      that name and every name under it
 *   direct cidr:192.168.0.0/16     an IPv4 or IPv6 prefix
 *   block  keyword:ads             a name containing the word
 *   direct port:5000-5100          a destination port or range
 *   direct geoip:DE                an address a GeoIP table places in a country
 *
 * The first rule that matches decides; no rule: the default action.
 *
 * Compiled form (um_rules_compile): one index per kind, each answering "the
 * lowest rule number of this kind that matches", and the answer is the
 * lowest over the kinds, which is exactly the first matching rule of the
 * list. The indexes: a binary trie per address family for cidr (every node
 * keeps the lowest rule number of the prefixes that end there; a lookup walks
 * at most 32 or 128 nodes), sorted interval arrays in um_geoip_t plus a
 * per-country table for geoip, a hash of the reversed domain names for domain
 * (one probe per label of the name), an Aho-Corasick automaton for keyword,
 * and a 65536-entry table for port. None of these grows with the number of
 * rules at lookup time. See docs/CONFIG.md, "Routing rules".
 *
 * Names are matched in lower case without a trailing dot (a keyword
 * "ads." does not match the name "ads."). Domain rules and keyword rules
 * match the name the application gave; a
 * destination given as an IP address (or an IP literal as its name) is
 * matched by cidr, geoip and port rules only. The parsers are pure. */
#ifndef UM_PROXY_RULES_H
#define UM_PROXY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/geoip.h"
#include "util/addr.h"

typedef enum { UM_RULE_TUNNEL = 0, UM_RULE_DIRECT = 1, UM_RULE_BLOCK = 2 } um_rule_action_t;
typedef enum {
    UM_RULE_CIDR = 1,
    UM_RULE_DOMAIN = 2,
    UM_RULE_KEYWORD = 3,
    UM_RULE_PORT = 4,
    UM_RULE_GEOIP = 5,
} um_rule_kind_t;

#define UM_RULE_KEYWORD_MAX 63       /* characters of one keyword */
#define UM_RULES_MAX        1000000  /* rules in one compiled set */
#define UM_RULE_NONE        SIZE_MAX /* um_rules_match: no rule matched */

typedef struct {
    uint8_t action; /* um_rule_action_t */
    uint8_t kind;   /* um_rule_kind_t */
    uint16_t port_lo, port_hi;
    uint16_t cc;    /* geoip: UM_GEOIP_CC('D', 'E') */
    um_cidr_t cidr; /* cidr */
    /* domain (lower case, no trailing dot) or keyword (lower case) */
    char text[UM_DOMAIN_MAX + 1];
    uint16_t text_len;
} um_rule_t;

/* "tunnel", "direct", "block" (any case): 0 or UM_EINVAL. */
int um_rule_action_parse(const char *s, size_t n, uint8_t *out);
const char *um_rule_action_name(uint8_t action);

/* One rule "ACTION KIND:VALUE" (white space around and between the two
 * words). 0, or UM_EINVAL with the reason (not quoting the input) in why. */
int um_rule_parse(um_rule_t *r, const char *s, size_t n, char *why, size_t whylen);
/* The rule's canonical text ("direct cidr:10.0.0.0/8"), NUL-terminated. */
size_t um_rule_format(const um_rule_t *r, char *buf, size_t n);

/* A growable list of rules (owned array). */
typedef struct {
    um_rule_t *v;
    size_t n, cap;
} um_rule_list_t;

void um_rule_list_init(um_rule_list_t *l);
void um_rule_list_free(um_rule_list_t *l);
/* Copies r. UM_ENOMEM, or UM_ENOSPC past UM_RULES_MAX. */
int um_rule_list_add(um_rule_list_t *l, const um_rule_t *r);

/* A rules file: one rule a line; empty lines and lines whose first
 * non-blank character is '#' or ';' are skipped, and so is the rest of a
 * line after " #". Appends to l. 0, or UM_EINVAL (UM_ENOMEM, UM_ENOSPC) with
 * "PATH:LINE: ..." in err; l keeps the rules before the bad line. */
int um_rules_file_parse(um_rule_list_t *l, const char *path, const char *text, size_t n, char *err,
                        size_t errlen);

typedef struct um_rules um_rules_t;

/* Compiles n rules (copied) with a default action. geo: the GeoIP table
 * geoip rules look addresses up in; the compiled set takes ownership of it
 * (freed by um_rules_free, also when compiling fails); NULL: none, and then
 * a geoip rule is an error. 0, or UM_EINVAL / UM_ENOMEM with why. */
int um_rules_compile(const um_rule_t *rules, size_t n, uint8_t default_action, um_geoip_t *geo,
                     um_rules_t **out, char *why, size_t whylen);
void um_rules_free(um_rules_t *r); /* NULL is a no-op */

/* The action for dst (IP or domain, with port). *index (may be NULL): the
 * number of the rule that decided, or UM_RULE_NONE for the default. */
uint8_t um_rules_match(const um_rules_t *r, const um_addr_t *dst, size_t *index);
/* The same for an IP destination known to be the address of `name` (n
 * bytes; a DNS answer seen earlier, proxy/dnsmap.h): cidr, geoip and port
 * rules on the address, domain and keyword rules on the name; first match
 * over all of them. */
uint8_t um_rules_match_named(const um_rules_t *r, const um_addr_t *ip, const char *name, size_t n,
                             size_t *index);
size_t um_rules_count(const um_rules_t *r);
uint8_t um_rules_default(const um_rules_t *r);
const um_geoip_t *um_rules_geoip(const um_rules_t *r);

#endif
