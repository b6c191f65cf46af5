/* The dns client's bulk window (docs/internals/dns.md, the poll
 * controller): a real um_dns_server and um_dns_client on loopback, with a
 * "resolver" in between (a UDP relay in this test) that holds every answer
 * 40 ms, as a resolver with a 40 ms path to the server would. The server
 * pushes 512 KiB; while it has more, the client must keep more than the
 * base window (16) of queries in flight, or the rate stays bound by
 * 16 x answer / RTT. The relay counts the queries it has forwarded and not
 * yet answered. Bounded: the transfer must end within 60 s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "transport/carrier.h"
#include "transport/dns_client.h"
#include "transport/dns_server.h"
#include "util/err.h"

#define DELAY_MS 40
#define TOTAL    (512u << 10)
#define HELD     512

typedef struct {
    uv_timer_t tm;
    bool used;
    size_t n;
    uint8_t p[1500];
} held_t;

static uv_loop_t loop;
static uv_udp_t relay;
static struct sockaddr_storage srv_addr, cli_addr;
static bool have_cli;
static held_t held[HELD];
static int outstanding, max_outstanding;
static um_carrier_t *scar, *ccar;
static size_t sent, got;
static uint8_t chunk[16384];
static bool done, timed_out;
static uv_timer_t guard;

static void relay_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static uint8_t buf[65536];
    (void)h;
    (void)sz;
    *b = uv_buf_init((char *)buf, sizeof(buf));
}

static void deliver(uv_timer_t *t)
{
    held_t *h = t->data;
    uv_buf_t b = uv_buf_init((char *)h->p, (unsigned)h->n);
    (void)uv_udp_try_send(&relay, &b, 1, (struct sockaddr *)&cli_addr);
    h->used = false;
    outstanding--;
}

static bool from_server(const struct sockaddr *a)
{
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)&srv_addr;
    return x->sin_port == y->sin_port;
}

static void relay_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *a,
                       unsigned flags)
{
    (void)u;
    (void)flags;
    if (nread <= 0 || !a) return;
    if (from_server(a)) { /* an answer: to the client, DELAY_MS later */
        for (unsigned i = 0; i < HELD; i++) {
            held_t *h = &held[i];
            if (h->used || (size_t)nread > sizeof(h->p)) continue;
            h->used = true;
            h->n = (size_t)nread;
            memcpy(h->p, b->base, h->n);
            uv_timer_start(&h->tm, deliver, DELAY_MS, 0);
            return;
        }
        outstanding--; /* no room: dropped, as a full queue would */
        return;
    }
    memcpy(&cli_addr, a, sizeof(struct sockaddr_in));
    have_cli = true;
    if (++outstanding > max_outstanding) max_outstanding = outstanding;
    uv_buf_t f = uv_buf_init(b->base, (unsigned)nread);
    (void)uv_udp_try_send(&relay, &f, 1, (struct sockaddr *)&srv_addr);
}

static void push(um_carrier_t *c, void *ud)
{
    (void)ud;
    while (sent < TOTAL) {
        size_t n = TOTAL - sent < sizeof(chunk) ? TOTAL - sent : sizeof(chunk);
        if (um_carrier_write(c, chunk, n) != 0) return; /* the drain callback comes back */
        sent += n;
    }
}

static void srv_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)c;
    (void)p;
    (void)n;
    (void)status;
    (void)ud;
}

static void on_conv(void *ud, um_carrier_t *car, const struct sockaddr *peer)
{
    (void)ud;
    (void)peer;
    scar = car;
    um_carrier_set_cbs(car, srv_read, push, NULL);
    um_carrier_read_start(car);
    push(car, NULL);
}

static void cli_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)c;
    (void)p;
    (void)ud;
    if (status == 0) got += n;
    if (got >= TOTAL || status != 0) {
        done = true;
        uv_stop(&loop);
    }
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
    uv_stop(&loop);
}

static void t_window(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    for (unsigned i = 0; i < HELD; i++) {
        uv_timer_init(&loop, &held[i].tm);
        held[i].tm.data = &held[i];
    }
    uint8_t pub[32];
    randombytes_buf(pub, sizeof(pub));
    randombytes_buf(chunk, sizeof(chunk));
    um_dns_server_cfg_t scfg = {.zone = "t.example.com"};
    memcpy(scfg.server_pub, pub, 32);
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    um_dns_server_t *s = NULL;
    int rr = UM_EIO;
    for (int i = 0; i < 10 && rr != 0; i++) { /* port 0: TCP may find UDP's number taken */
        rr = um_dns_server_new(&loop, (struct sockaddr *)&lo, &scfg, on_conv, NULL, &s);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(rr, 0);
    struct sockaddr_in *sa = (struct sockaddr_in *)&srv_addr;
    *sa = lo;
    sa->sin_port = htons((uint16_t)um_dns_server_port(s));

    assert_int_equal(uv_udp_init(&loop, &relay), 0);
    assert_int_equal(uv_udp_bind(&relay, (struct sockaddr *)&lo, 0), 0);
    assert_int_equal(uv_udp_recv_start(&relay, relay_alloc, relay_recv), 0);
    struct sockaddr_storage ra;
    int rl = sizeof(ra);
    assert_int_equal(uv_udp_getsockname(&relay, (struct sockaddr *)&ra, &rl), 0);

    um_dns_client_cfg_t ccfg = {.zone = "t.example.com"};
    memcpy(ccfg.server_pub, pub, 32);
    memcpy(&ccfg.resolver, &ra, sizeof(struct sockaddr_in));
    assert_int_equal(um_dns_client_new(&loop, &ccfg, &ccar), 0);
    um_carrier_set_cbs(ccar, cli_read, NULL, NULL);
    assert_int_equal(um_carrier_read_start(ccar), 0);

    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 60000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(timed_out);
    assert_true(done);
    assert_true(have_cli);
    assert_int_equal(got, TOTAL);
    print_message("max queries in flight at the resolver: %d (base window %d)\n", max_outstanding,
                  UM_DNS_CLI_INFLIGHT_DEFAULT);
    assert_true(max_outstanding > UM_DNS_CLI_INFLIGHT_DEFAULT + 8);
    assert_true(max_outstanding <= UM_DNS_CLI_INFLIGHT_MAX + 1);

    um_carrier_close(ccar);
    if (scar) um_carrier_close(scar);
    um_dns_server_close(s);
    uv_close((uv_handle_t *)&relay, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    for (unsigned i = 0; i < HELD; i++)
        uv_close((uv_handle_t *)&held[i].tm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(t_window)};
    if (sodium_init() < 0) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
