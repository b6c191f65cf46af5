/* DNS answers for the address-to-name map. Properties: no crash or hang on
 * any input (compression loops bounded); every reported name is at most 253
 * bytes and lower case; every address reported is then found in the map
 * under its name, made printable (the newest answer for an address wins). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dnsmap.h"
#include "util/err.h"

static void cb(void *ud, const char *name, size_t n, const um_addr_t *ip, uint32_t ttl)
{
    um_dnsmap_t *m = ud;
    if (n == 0 || n > UM_DOMAIN_MAX) abort();
    for (size_t i = 0; i < n; i++)
        if (name[i] >= 'A' && name[i] <= 'Z') abort();
    um_dnsmap_put(m, ip, name, n, ttl, 0);
    char got[UM_DOMAIN_MAX + 1];
    size_t gl;
    if (!um_dnsmap_get(m, ip, 0, got, sizeof(got), &gl) || gl != n) abort();
    for (size_t i = 0; i < gl; i++) /* stored printable (it may be logged) */
        if (got[i] <= 0x20 || got[i] >= 0x7f || (got[i] != name[i] && got[i] != '?')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_dnsmap_t *m;
    if (um_dnsmap_new(&m) != 0) return 0;
    um_dns_answers(p, n, cb, m);
    um_dnsmap_free(m);
    return 0;
}
