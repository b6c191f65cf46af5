/* The dns server's core (docs/PROTOCOL.md 13.3, 13.4) through
 * um_dns_server_handle: a NEW query opens a conversation (handed to the
 * callback), a repeated nonce gets the very same answer (the resolver's
 * retry), another nonce a fresh one, an unknown conversation without NEW
 * gets NXDOMAIN, max_convs bounds the table (NXDOMAIN beyond), and a
 * conversation closed from above is forgotten (NXDOMAIN). Every tunnel
 * answer opens with the client's key and fits the query's limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <uv.h>

#include "transport/dns_msg.h"
#include "transport/dns_server.h"
#include "transport/dns_wire.h"
#include "util/err.h"

static um_carrier_t *cars[8];
static int n_cars;

static void on_conv(void *ud, um_carrier_t *car, const struct sockaddr *peer)
{
    (void)ud;
    (void)peer;
    cars[n_cars++] = car;
}

static size_t query(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, uint8_t flags, bool edns,
                    uint8_t *q)
{
    uint8_t name[UM_DNSW_NAME_MAX], pay[4] = {1, 2, 3, 4};
    size_t nl, qn;
    assert_int_equal(um_dnsw_up_encode(w, conv, nonce, flags, pay, 0, name, &nl), 0);
    assert_int_equal(um_dnsm_query_build(0x7777, name, nl, UM_DNSM_TYPE_TXT, edns, q, 600, &qn), 0);
    return qn;
}

static void t_server(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint8_t pub[32];
    randombytes_buf(pub, sizeof(pub));
    um_dns_server_cfg_t cfg = {.zone = "t.example.com", .max_convs = 2};
    memcpy(cfg.server_pub, pub, 32);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    um_dns_server_t *s;
    /* Port 0: UDP takes a free port, TCP the same number, which another
     * program may hold: try a few times. */
    int rr = UM_EIO;
    for (int i = 0; i < 10 && rr != 0; i++) {
        rr = um_dns_server_new(&loop, (struct sockaddr *)&sa, &cfg, on_conv, NULL, &s);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(rr, 0);
    assert_true(um_dns_server_port(s) > 0);
    um_dnsw_t w;
    assert_int_equal(um_dnsw_init(&w, pub, "t.example.com"), 0);
    uint8_t q[600], r1[1400], r2[1400], t[1400], pay[1400];
    size_t qn, n1, n2, tn, pn;
    um_dnsm_answer_t a;

    /* unknown, no NEW: NXDOMAIN, nothing opened */
    qn = query(&w, 1, 10, 0, true, q);
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r1, sizeof(r1), &n1), 0);
    assert_int_equal(um_dnsm_answer_parse(r1, n1, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(a.rcode, UM_DNSM_NXDOMAIN);
    assert_int_equal(n_cars, 0);

    /* NEW: opened; the answer authenticates */
    qn = query(&w, 1, 11, UM_DNSW_FLAG_NEW, true, q);
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r1, sizeof(r1), &n1), 0);
    assert_int_equal(n_cars, 1);
    assert_true(n1 <= 1232);
    assert_int_equal(um_dnsm_answer_parse(r1, n1, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(a.rcode, UM_DNSM_NOERROR);
    assert_int_equal(a.n_txt, 1);
    assert_int_equal(um_dnsw_down_open(&w, 1, 11, t, tn, pay, sizeof(pay), &pn), 0);
    assert_int_equal(um_dnsw_down_open(&w, 1, 12, t, tn, pay, sizeof(pay), &pn), UM_EAUTH);

    /* the same nonce again: the same bytes */
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r2, sizeof(r2), &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(r1, r2, n1);
    um_dns_server_stats_t st;
    um_dns_server_stats(s, &st);
    assert_int_equal(st.dup, 1);

    /* without EDNS0: within 512 */
    qn = query(&w, 1, 13, 0, false, q);
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r1, sizeof(r1), &n1), 0);
    assert_true(n1 <= 512);
    assert_int_equal(um_dnsm_answer_parse(r1, n1, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(a.n_txt, 1);

    /* the table is bounded: a second fits, a third gets NXDOMAIN */
    qn = query(&w, 2, 1, UM_DNSW_FLAG_NEW, true, q);
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r1, sizeof(r1), &n1), 0);
    assert_int_equal(n_cars, 2);
    qn = query(&w, 3, 1, UM_DNSW_FLAG_NEW, true, q);
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r1, sizeof(r1), &n1), 0);
    assert_int_equal(um_dnsm_answer_parse(r1, n1, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(a.rcode, UM_DNSM_NXDOMAIN);
    assert_int_equal(n_cars, 2);
    um_dns_server_stats(s, &st);
    assert_int_equal(st.convs, 2);
    assert_int_equal(st.convs_refused, 1);

    /* closed from above: forgotten, room again */
    um_carrier_close(cars[0]);
    qn = query(&w, 1, 14, 0, true, q);
    assert_int_equal(um_dns_server_handle(s, q, qn, 1232, NULL, r1, sizeof(r1), &n1), 0);
    assert_int_equal(um_dnsm_answer_parse(r1, n1, &a, t, sizeof(t), &tn), 0);
    assert_int_equal(a.rcode, UM_DNSM_NXDOMAIN);
    um_dns_server_stats(s, &st);
    assert_int_equal(st.convs, 1);

    um_carrier_close(cars[1]);
    um_dns_server_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(t_server)};
    if (sodium_init() < 0) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
