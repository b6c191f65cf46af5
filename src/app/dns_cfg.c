#include "app/dns_cfg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/dns_wire.h"
#include "util/err.h"

int um_dns_zone_norm(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '.') n--;
    if (cap < 254 || n == 0 || n > 200 || !um_dnsw_zone_valid(s)) return UM_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return 0;
}

int um_dns_resolver_parse(const char *s, struct sockaddr_storage *ss, bool *dot)
{
    struct sockaddr_storage tmp;
    bool d = false;
    if (!ss) ss = &tmp;
    if (strncmp(s, "tls://", 6) == 0) {
        d = true;
        s += 6;
    }
    size_t n = strlen(s);
    if (n == 0 || n > UM_DNS_RESOLVER_MAX) return UM_EINVAL;
    char host[64];
    const char *port = NULL;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || (size_t)(e - s - 1) >= sizeof(host)) return UM_EINVAL;
        memcpy(host, s + 1, (size_t)(e - s - 1));
        host[e - s - 1] = '\0';
        if (e[1] == ':')
            port = e + 2;
        else if (e[1])
            return UM_EINVAL;
    } else {
        const char *c = strchr(s, ':');
        if (c && strchr(c + 1, ':')) c = NULL; /* a bare IPv6 address */
        size_t hl = c ? (size_t)(c - s) : n;
        if (hl >= sizeof(host)) return UM_EINVAL;
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (c) port = c + 1;
    }
    unsigned long p = d ? 853 : 53;
    if (port) {
        char *end;
        if (!*port || *port < '0' || *port > '9') return UM_EINVAL;
        p = strtoul(port, &end, 10);
        if (*end || p == 0 || p > 65535) return UM_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
    } else {
        return UM_EINVAL; /* an IP address: a name would need a resolver to find the resolver */
    }
    if (dot) *dot = d;
    return 0;
}

int um_dns_resolver_default(const char *resolv_conf, struct sockaddr_storage *ss)
{
    FILE *f = fopen(resolv_conf ? resolv_conf : "/etc/resolv.conf", "r");
    if (!f) return UM_ENOENT;
    char line[512];
    int r = UM_ENOENT;
    while (r != 0 && fgets(line, sizeof(line), f)) {
        char a[128];
        if (sscanf(line, " nameserver %127s", a) != 1) continue;
        char *pct = strchr(a, '%'); /* fe80::1%eth0: the scope is not ours to keep */
        if (pct) *pct = '\0';
        bool dot;
        if (strchr(a, ':')) {
            char b[140];
            snprintf(b, sizeof(b), "[%s]:53", a);
            r = um_dns_resolver_parse(b, ss, &dot);
        } else {
            r = um_dns_resolver_parse(a, ss, &dot);
        }
    }
    fclose(f);
    return r;
}
