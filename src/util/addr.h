/* Addresses as users write them and as the wire carries them.
 *   "1.2.3.4:443"   "[::1]:443"   "host.example:443"
 * Parsing is a pure function over bytes; errors say what was wrong. */
#ifndef UM_UTIL_ADDR_H
#define UM_UTIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Type values are those of SOCKS5 (RFC 1928), which the mux frames reuse. */
typedef enum { UM_ADDR_IPV4 = 1, UM_ADDR_DOMAIN = 3, UM_ADDR_IPV6 = 4 } um_addr_type_t;

#define UM_DOMAIN_MAX 253

typedef struct {
    uint8_t type; /* um_addr_type_t */
    uint8_t domain_len;
    uint16_t port; /* host order */
    union {
        uint8_t v4[4];
        uint8_t v6[16];
        char domain[UM_DOMAIN_MAX + 1]; /* NUL-terminated, domain_len bytes */
    } u;
} um_addr_t;

/* Parses "host:port". With default_port != 0 the ":port" may be omitted.
 * On error returns UM_EINVAL and, when err is non-NULL, writes a one-line
 * reason (without the input; the caller quotes it). */
int um_addr_parse(um_addr_t *out, const char *s, size_t n, uint16_t default_port, char *err,
                  size_t errlen);
/* Parses a host alone (IPv4, IPv6 without brackets, or a domain name). */
int um_addr_parse_host(um_addr_t *out, const char *s, size_t n, char *err, size_t errlen);
/* True when s is a valid DNS name (labels 1..63 of [A-Za-z0-9_-], total <= 253,
 * no leading or trailing '-' in a label, an optional final '.'). */
bool um_domain_valid(const char *s, size_t n);

/* "1.2.3.4:443", "[::1]:443", "host:443". Returns chars written (excl. NUL). */
size_t um_addr_format(const um_addr_t *a, char *buf, size_t n);
#define UM_ADDR_STRLEN (UM_DOMAIN_MAX + 8)

/* IP addresses only; UM_EINVAL for a domain. len receives the sockaddr size. */
int um_addr_to_sockaddr(const um_addr_t *a, struct sockaddr_storage *ss, socklen_t *len);
int um_addr_from_sockaddr(um_addr_t *a, const struct sockaddr *sa);

bool um_addr_equal(const um_addr_t *a, const um_addr_t *b);

/* CIDR prefixes for policy: "10.0.0.0/8", "::1/128", "127.0.0.1" (= /32). */
typedef struct {
    uint8_t family; /* UM_ADDR_IPV4 or UM_ADDR_IPV6 */
    uint8_t bits;
    uint8_t addr[16];
} um_cidr_t;

int um_cidr_parse(um_cidr_t *out, const char *s, size_t n, char *err, size_t errlen);
/* True when the IP address a lies inside c. IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) match IPv4 prefixes. */
bool um_cidr_match(const um_cidr_t *c, const um_addr_t *a);
size_t um_cidr_format(const um_cidr_t *c, char *buf, size_t n);

#endif
