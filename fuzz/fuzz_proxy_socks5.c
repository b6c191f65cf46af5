/* SOCKS5 parsers on arbitrary bytes, with round trips: a parsed request's
 * address re-encoded and parsed again must agree; same for UDP headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/socks5.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    size_t used = 0;
    um_socks5_greeting_t g;
    int rc = um_socks5_greeting_parse(p, n, &used, &g);
    if (rc == 0 && (used > n || used != 2u + g.nmethods)) abort();

    um_socks5_userpass_t up;
    rc = um_socks5_userpass_parse(p, n, &used, &up);
    if (rc == 0 && (used > n || strlen(up.user) > up.ulen || strlen(up.pass) > up.plen)) abort();

    um_socks5_request_t req;
    uint8_t rep = 0;
    rc = um_socks5_request_parse(p, n, &used, &req, &rep);
    if (rc != 0 && rc != UM_EAGAIN && rc != UM_EPROTO) abort();
    if (rc == UM_EPROTO && rep != 0x01 && rep != 0x07 && rep != 0x08) abort();
    if (rc == 0) {
        if (used > n) abort();
        uint8_t out[UM_SOCKS5_MSG_MAX];
        size_t k = um_socks5_reply_build(out, sizeof(out), 0, &req.dst);
        um_addr_t again;
        size_t u2;
        uint8_t r2;
        if (k == 0 || um_socks5_addr_get(out + 3, k - 3, &u2, &again, &r2) != 0) abort();
        if (!um_addr_equal(&again, &req.dst)) abort();
    }

    um_addr_t dst;
    size_t hl;
    if (um_socks5_udp_parse(p, n, &hl, &dst) == 0) {
        if (hl > n) abort();
        uint8_t out[UM_SOCKS5_UDP_HDR_MAX];
        size_t k = um_socks5_udp_build(out, sizeof(out), &dst);
        um_addr_t again;
        size_t h2;
        if (k == 0 || um_socks5_udp_parse(out, k, &h2, &again) != 0 || h2 != k) abort();
        if (!um_addr_equal(&again, &dst)) abort();
    }
    return 0;
}
