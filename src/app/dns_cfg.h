/* The dns transport's config values (docs/CONFIG.md, "Transport dns"):
 * the zone and the resolver, shared by the config parser, share links and
 * the client. Pure functions but um_dns_resolver_default. */
#ifndef UM_APP_DNS_CFG_H
#define UM_APP_DNS_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define UM_DNS_RESOLVER_MAX 64 /* "tls://[v6]:port" fits */

/* A zone as written (any case, trailing dot optional) into out (lower case,
 * no trailing dot; cap >= 254). UM_EINVAL when it is not a host name with
 * room for tunnel data below it (at most 200 characters). */
int um_dns_zone_norm(const char *s, char *out, size_t cap);
/* "IP", "IP:PORT", "[IPv6]:PORT", or the same after "tls://" (DNS over
 * TLS, port 853 by default; else 53). ss may be NULL (check only). */
int um_dns_resolver_parse(const char *s, struct sockaddr_storage *ss, bool *dot);
/* The first nameserver of resolv_conf (NULL: /etc/resolv.conf), port 53. */
int um_dns_resolver_default(const char *resolv_conf, struct sockaddr_storage *ss);

#endif
