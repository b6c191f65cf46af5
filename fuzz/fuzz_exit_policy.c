/* Egress policy on arbitrary addresses. Properties: an IPv6 address that
 * embeds an IPv4 one (mapped, NAT64) is never more permitted than the IPv4
 * address itself, also when the host's own addresses include it; the check
 * agrees with the class when no rule allows; knowing the host's addresses
 * never permits more. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exit/policy.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    if (n < 16) return 0;
    um_addr_t v6 = {.type = UM_ADDR_IPV6, .port = 1}, v4 = {.type = UM_ADDR_IPV4, .port = 1};
    memcpy(v6.u.v6, p, 16);
    memcpy(v4.u.v4, p, 4);
    um_policy_t pol;
    um_policy_init(&pol);
    if (n >= 22) {
        um_cidr_t c = {.family = (p[16] & 1) ? UM_ADDR_IPV6 : UM_ADDR_IPV4};
        c.bits = (uint8_t)(p[17] % (c.family == UM_ADDR_IPV4 ? 33 : 129));
        memcpy(c.addr, p + 18, n - 18 < 16 ? n - 18 : 16);
        um_policy_allow(&pol, &c);
    }
    if (n >= 38) {
        /* One host address from the input, IPv4 or IPv6 by a flag bit. */
        um_addr_t h = {.type = (p[16] & 2) ? UM_ADDR_IPV6 : UM_ADDR_IPV4, .port = 1};
        memcpy(h.type == UM_ADDR_IPV6 ? h.u.v6 : h.u.v4, p + 22, h.type == UM_ADDR_IPV6 ? 16 : 4);
        if (um_policy_set_host(&pol, &h, 1) != 0) abort();
        if (!um_policy_is_host(&pol, &h)) abort();
        um_policy_t bare;
        um_policy_init(&bare);
        for (size_t i = 0; i < pol.n; i++)
            um_policy_allow(&bare, &pol.allow[i]);
        /* Never more permitted than without the host addresses. */
        bool ok_bare = um_policy_check(&bare, &h, NULL) == 0;
        if (um_policy_check(&pol, &h, NULL) == 0 && !ok_bare) abort();
        um_policy_close(&bare);
    }
    um_ip_class_t c6 = um_policy_classify(&v6), c4 = um_policy_classify(&v4);
    if ((um_policy_check(NULL, &v6, NULL) == 0) != (c6 == UM_IP_PUBLIC)) abort();
    if ((um_policy_check(NULL, &v4, NULL) == 0) != (c4 == UM_IP_PUBLIC)) abort();
    static const uint8_t pre[2][12] = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                                       {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}};
    for (int k = 0; k < 2; k++) {
        um_addr_t e = {.type = UM_ADDR_IPV6, .port = 1};
        memcpy(e.u.v6, pre[k], 12);
        memcpy(e.u.v6 + 12, v4.u.v4, 4);
        if (um_policy_classify(&e) != c4) abort();
        if ((um_policy_check(&pol, &e, NULL) == 0) != (um_policy_check(&pol, &v4, NULL) == 0))
            abort();
    }
    um_policy_close(&pol);
    return 0;
}
