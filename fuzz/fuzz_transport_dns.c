/* The dns transport's codec (docs/PROTOCOL.md section 13) on arbitrary
 * bytes, both as a query reaching the server and as an answer reaching the
 * client: never a crash; a parsed query's reply stays within its limit and
 * parses back as a response with the same id; a tunnel name decodes only
 * with a payload within the cap, and re-encodes to a name that decodes the
 * same. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "transport/dns_msg.h"
#include "transport/dns_wire.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    static uint8_t pub[32] = {7};
    um_dnsw_t w;
    if (um_dnsw_init(&w, pub, "t.example.com") != 0) __builtin_trap();
    um_dnsm_query_t q;
    uint8_t rep[UM_DNSM_EDNS + 64], pay[256], txt[1500];
    size_t rn = 0, pn = 0, tn = 0;
    int r = um_dnsm_query_parse(p, n, &q);
    if (r == 0 || r == UM_EPROTO) {
        uint32_t conv = 0, nonce = 0;
        uint8_t fl = 0;
        um_dnsw_kind_t k =
            r == 0 ? um_dnsw_up_decode(&w, q.qname, q.qname_len, &conv, &nonce, &fl, pay, &pn)
                   : UM_DNSW_OTHER;
        if (k == UM_DNSW_TUNNEL) {
            uint8_t name[UM_DNSW_NAME_MAX], p2[256];
            size_t nl, p2n;
            uint32_t c2, n2;
            uint8_t f2;
            if (pn > um_dnsw_up_cap(&w)) __builtin_trap();
            if (um_dnsw_up_encode(&w, conv, nonce, fl, pay, pn, name, &nl) != 0 ||
                um_dnsw_up_decode(&w, name, nl, &c2, &n2, &f2, p2, &p2n) != UM_DNSW_TUNNEL ||
                c2 != conv || n2 != nonce || f2 != fl || p2n != pn || memcmp(p2, pay, pn))
                __builtin_trap();
        }
        um_dnsm_reply_t rr = {.rcode = r ? UM_DNSM_FORMERR : UM_DNSM_NXDOMAIN,
                              .aa = true,
                              .soa_auth = k != UM_DNSW_OTHER,
                              .apex_answer = k == UM_DNSW_APEX,
                              .zone = w.zone,
                              .zone_len = w.zone_len};
        uint8_t d[1300];
        if (k == UM_DNSW_TUNNEL && q.qtype == UM_DNSM_TYPE_TXT) {
            size_t cap = um_dnsm_txt_cap(&q, q.udp_size);
            memset(d, 0xa5, sizeof(d));
            rr.rcode = 0;
            rr.soa_auth = false;
            rr.txt = d;
            rr.txt_n = cap < sizeof(d) ? cap : sizeof(d);
        }
        if (um_dnsm_reply_build(&q, &rr, q.udp_size, rep, sizeof(rep), &rn) == 0) {
            um_dnsm_answer_t a;
            if (rn > q.udp_size) __builtin_trap();
            if (um_dnsm_answer_parse(rep, rn, &a, txt, sizeof(txt), &tn) != 0 || a.id != q.id ||
                !a.qr)
                __builtin_trap();
        }
    }
    um_dnsm_answer_t a;
    (void)um_dnsm_answer_parse(p, n, &a, txt, sizeof(txt), &tn);
    if (tn > sizeof(txt)) __builtin_trap();
    uint8_t o[1500];
    size_t on;
    if (tn && um_dnsw_down_open(&w, 1, 2, txt, tn, o, sizeof(o), &on) == 0 && on + 8 != tn)
        __builtin_trap();
    return 0;
}
