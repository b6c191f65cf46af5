/* Egress policy: which destination addresses the server may connect to.
 * Everything that is not a public unicast address is refused unless an allow
 * rule (a CIDR prefix) covers it. The check runs on every address after name
 * resolution, so a name that resolves to 127.0.0.1 is refused like the
 * literal. IPv6 forms that embed an IPv4 address (mapped ::ffff:0:0/96,
 * NAT64 64:ff9b::/96, 6to4 2002::/16, IPv4-compatible ::/96) are classified by
 * the embedded address. The host's own addresses (set by the owner, see
 * src/exit/hostaddr.h) are refused as well, unless an allow rule covers them:
 * a service bound to the wildcard address and firewalled from outside must
 * not be reachable through the tunnel. */
#ifndef UM_EXIT_POLICY_H
#define UM_EXIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/addr.h"

typedef enum {
    UM_IP_PUBLIC = 0,
    UM_IP_LOOPBACK,
    UM_IP_PRIVATE,   /* RFC 1918, IPv6 site-local */
    UM_IP_ULA,       /* fc00::/7 */
    UM_IP_LINKLOCAL, /* 169.254/16, fe80::/10 */
    UM_IP_CGNAT,     /* 100.64/10 */
    UM_IP_MULTICAST,
    UM_IP_UNSPECIFIED, /* 0.0.0.0/8, :: */
    UM_IP_BROADCAST,
    UM_IP_METADATA, /* 169.254.169.254, fd00:ec2::254, 100.100.100.200 */
    UM_IP_DOCUMENTATION,
    UM_IP_RESERVED, /* 240/4, benchmarking, IETF assignments, unassigned IPv6 */
    UM_IP_HOST,     /* one of this host's own addresses (um_policy_check only) */
    UM_IP_NOT_IP,   /* a domain name: resolve first */
} um_ip_class_t;

um_ip_class_t um_policy_classify(const um_addr_t *a);
const char *um_ip_class_name(um_ip_class_t c);

typedef struct {
    um_cidr_t *allow; /* owned */
    size_t n, cap;
    um_cidr_t *host; /* owned: this host's addresses, full-length prefixes */
    size_t n_host;
} um_policy_t;

void um_policy_init(um_policy_t *p);
void um_policy_close(um_policy_t *p);
/* Copies the rule. UM_ENOMEM, UM_ENOSPC past 4096 rules. */
int um_policy_allow(um_policy_t *p, const um_cidr_t *rule);
/* Parses "10.0.0.0/8" and adds it; UM_EINVAL with a reason in err. */
int um_policy_allow_str(um_policy_t *p, const char *s, char *err, size_t errlen);
/* Replaces the set of the host's own addresses with a copy of addrs (IP
 * addresses; others are skipped; the port is ignored). An IPv6 form that
 * embeds an IPv4 address is stored as that IPv4 address. On UM_ENOMEM, or
 * UM_ENOSPC past 4096 addresses, the old set stays. */
int um_policy_set_host(um_policy_t *p, const um_addr_t *addrs, size_t n);
/* Is a one of the host's own addresses (embedded IPv4 forms by that IPv4)? */
bool um_policy_is_host(const um_policy_t *p, const um_addr_t *a);
/* 0 when the policy lets us connect to a, UM_EACCES when not (and *cls, when
 * non-NULL, says why: UM_IP_HOST for a public address of this host). An
 * allow rule wins over every refused class. A NULL policy refuses everything
 * non-public. */
int um_policy_check(const um_policy_t *p, const um_addr_t *a, um_ip_class_t *cls);

#endif
