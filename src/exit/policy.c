/* Egress policy. Address registries: RFC 6890 (special-purpose), RFC 1918,
 * RFC 6598 (CGNAT), RFC 3927/4291 (link-local), RFC 4193 (ULA), RFC 5737 and
 * RFC 3849/9637 (documentation), RFC 6052 (NAT64), RFC 3056 (6to4). */
#include "exit/policy.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define RULES_MAX 4096

static bool in4(const uint8_t *a, uint8_t b0, uint8_t b1, unsigned bits)
{
    uint32_t x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    uint32_t y = (uint32_t)b0 << 24 | (uint32_t)b1 << 16;
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (x & mask) == (y & mask);
}

static bool eq4(const uint8_t *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
    return a[0] == b0 && a[1] == b1 && a[2] == b2 && a[3] == b3;
}

static um_ip_class_t classify4(const uint8_t *a)
{
    if (eq4(a, 169, 254, 169, 254) || eq4(a, 100, 100, 100, 200)) return UM_IP_METADATA;
    if (eq4(a, 255, 255, 255, 255)) return UM_IP_BROADCAST;
    if (in4(a, 0, 0, 8)) return UM_IP_UNSPECIFIED;
    if (in4(a, 127, 0, 8)) return UM_IP_LOOPBACK;
    if (in4(a, 10, 0, 8) || in4(a, 172, 16, 12) || in4(a, 192, 168, 16)) return UM_IP_PRIVATE;
    if (in4(a, 169, 254, 16)) return UM_IP_LINKLOCAL;
    if (in4(a, 100, 64, 10)) return UM_IP_CGNAT;
    if (in4(a, 224, 0, 4)) return UM_IP_MULTICAST;
    if (in4(a, 240, 0, 4)) return UM_IP_RESERVED;
    if ((a[0] == 192 && a[1] == 0 && a[2] == 2) || (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
        (a[0] == 203 && a[1] == 0 && a[2] == 113))
        return UM_IP_DOCUMENTATION;
    if (a[0] == 192 && a[1] == 0 && a[2] == 0) return UM_IP_RESERVED;   /* IETF assignments */
    if (in4(a, 198, 18, 15)) return UM_IP_RESERVED;                     /* benchmarking */
    if (a[0] == 192 && a[1] == 88 && a[2] == 99) return UM_IP_RESERVED; /* 6to4 anycast */
    return UM_IP_PUBLIC;
}

/* An IPv4 address embedded in an IPv6 form we know; NULL if none. */
static const uint8_t *embedded4(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero12[12] = {0};
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) return a + 12;
    if (a[0] == 0x20 && a[1] == 0x02) return a + 2; /* 6to4 2002:AABB:CCDD::/48 */
    /* IPv4-compatible ::a.b.c.d (deprecated), but not :: and ::1. */
    if (memcmp(a, zero12, 12) == 0 && !(a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1))
        return a + 12;
    return NULL;
}

static um_ip_class_t classify6(const uint8_t *a)
{
    static const uint8_t zero[16] = {0};
    static const uint8_t ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
    if (memcmp(a, zero, 16) == 0) return UM_IP_UNSPECIFIED;
    if (memcmp(a, zero, 15) == 0 && a[15] == 1) return UM_IP_LOOPBACK;
    if (memcmp(a, ec2, 16) == 0) return UM_IP_METADATA;
    const uint8_t *v4 = embedded4(a);
    if (v4) {
        um_ip_class_t c = classify4(v4);
        /* An IPv4-compatible address is itself deprecated. */
        static const uint8_t zero12[12] = {0};
        return c == UM_IP_PUBLIC && memcmp(a, zero12, 12) == 0 ? UM_IP_RESERVED : c;
    }
    if (a[0] == 0xff) return UM_IP_MULTICAST;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return UM_IP_LINKLOCAL;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return UM_IP_PRIVATE; /* site-local */
    if ((a[0] & 0xfe) == 0xfc) return UM_IP_ULA;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return UM_IP_DOCUMENTATION;
    if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0) return UM_IP_DOCUMENTATION;
    if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
        return UM_IP_RESERVED; /* local-use NAT64 64:ff9b:1::/48 */
    /* 2001::/23 is IETF protocol assignments (Teredo, benchmarking, ORCHID...). */
    if (a[0] == 0x20 && a[1] == 0x01 && (a[2] & 0xfe) == 0) return UM_IP_RESERVED;
    /* Outside 2000::/3 nothing is assigned as global unicast. */
    if ((a[0] & 0xe0) != 0x20) return UM_IP_RESERVED;
    return UM_IP_PUBLIC;
}

um_ip_class_t um_policy_classify(const um_addr_t *a)
{
    if (a->type == UM_ADDR_IPV4) return classify4(a->u.v4);
    if (a->type == UM_ADDR_IPV6) return classify6(a->u.v6);
    return UM_IP_NOT_IP;
}

const char *um_ip_class_name(um_ip_class_t c)
{
    switch (c) {
    case UM_IP_PUBLIC: return "public";
    case UM_IP_LOOPBACK: return "loopback";
    case UM_IP_PRIVATE: return "private";
    case UM_IP_ULA: return "unique local";
    case UM_IP_LINKLOCAL: return "link-local";
    case UM_IP_CGNAT: return "carrier-grade NAT";
    case UM_IP_MULTICAST: return "multicast";
    case UM_IP_UNSPECIFIED: return "unspecified";
    case UM_IP_BROADCAST: return "broadcast";
    case UM_IP_METADATA: return "cloud metadata";
    case UM_IP_DOCUMENTATION: return "documentation";
    case UM_IP_RESERVED: return "reserved";
    case UM_IP_HOST: return "this host's own address";
    case UM_IP_NOT_IP: return "not an IP address";
    }
    return "unknown";
}

void um_policy_init(um_policy_t *p)
{
    memset(p, 0, sizeof(*p));
}

void um_policy_close(um_policy_t *p)
{
    free(p->allow);
    free(p->host);
    memset(p, 0, sizeof(*p));
}

int um_policy_allow(um_policy_t *p, const um_cidr_t *rule)
{
    if (p->n == p->cap) {
        if (p->cap >= RULES_MAX) return UM_ENOSPC;
        size_t cap = p->cap ? p->cap * 2 : 8;
        um_cidr_t *v = realloc(p->allow, cap * sizeof(*v));
        if (!v) return UM_ENOMEM;
        p->allow = v;
        p->cap = cap;
    }
    p->allow[p->n++] = *rule;
    return 0;
}

int um_policy_allow_str(um_policy_t *p, const char *s, char *err, size_t errlen)
{
    um_cidr_t c;
    int r = um_cidr_parse(&c, s, strlen(s), err, errlen);
    return r ? r : um_policy_allow(p, &c);
}

/* An address that embeds an IPv4 one is judged by that IPv4 address alone:
 * "--allow ::/0" must not open ::ffff:127.0.0.1. *v4 is scratch space. */
static const um_addr_t *judged(const um_addr_t *a, um_addr_t *v4)
{
    const uint8_t *e = a->type == UM_ADDR_IPV6 ? embedded4(a->u.v6) : NULL;
    if (!e) return a;
    memset(v4, 0, sizeof(*v4));
    v4->type = UM_ADDR_IPV4;
    memcpy(v4->u.v4, e, 4);
    return v4;
}

static bool allowed(const um_policy_t *p, const um_addr_t *a)
{
    if (!p) return false;
    um_addr_t v4;
    const um_addr_t *x = judged(a, &v4);
    for (size_t i = 0; i < p->n; i++)
        if (um_cidr_match(&p->allow[i], x)) return true;
    return false;
}

int um_policy_set_host(um_policy_t *p, const um_addr_t *addrs, size_t n)
{
    if (n > RULES_MAX) return UM_ENOSPC;
    um_cidr_t *v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v) return UM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (addrs[i].type != UM_ADDR_IPV4 && addrs[i].type != UM_ADDR_IPV6) continue;
        um_addr_t v4;
        const um_addr_t *x = judged(&addrs[i], &v4);
        v[k].family = x->type;
        v[k].bits = x->type == UM_ADDR_IPV4 ? 32 : 128;
        memcpy(v[k].addr, x->type == UM_ADDR_IPV4 ? x->u.v4 : x->u.v6,
               x->type == UM_ADDR_IPV4 ? 4 : 16);
        k++;
    }
    free(p->host);
    p->host = v;
    p->n_host = k;
    return 0;
}

bool um_policy_is_host(const um_policy_t *p, const um_addr_t *a)
{
    if (!p || (a->type != UM_ADDR_IPV4 && a->type != UM_ADDR_IPV6)) return false;
    um_addr_t v4;
    const um_addr_t *x = judged(a, &v4);
    for (size_t i = 0; i < p->n_host; i++)
        if (um_cidr_match(&p->host[i], x)) return true;
    return false;
}

int um_policy_check(const um_policy_t *p, const um_addr_t *a, um_ip_class_t *cls)
{
    um_ip_class_t c = um_policy_classify(a);
    if (cls) *cls = c;
    if (c == UM_IP_NOT_IP) return UM_EACCES;
    if (allowed(p, a)) return 0;
    if (c != UM_IP_PUBLIC) return UM_EACCES;
    if (um_policy_is_host(p, a)) {
        if (cls) *cls = UM_IP_HOST;
        return UM_EACCES;
    }
    return 0;
}
