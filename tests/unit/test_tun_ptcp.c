/* Pseudo-TCP, packet by packet: the test plays the application's TCP (it
 * builds every segment with um_ip_build and feeds it through the stack) and
 * the upper layer (the callbacks), and inspects every packet that comes out.
 * Time is simulated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tun/stack.h"
#include "util/err.h"

#define QMAX 2048

typedef struct {
    uint8_t b[1600];
    size_t n;
} qpkt_t;

enum { OPEN_PENDING = 0, OPEN_ACCEPT = 1, OPEN_REFUSE = -1, OPEN_ABORT = 2 };

typedef struct {
    um_tun_stack_t *s;
    um_ptcp_t *t;
    uint64_t now;
    qpkt_t *q;
    size_t qn, qhead;
    /* upper layer */
    int open_mode;
    size_t accept_credit;
    uint32_t id;
    int opens, fins, resets, last_err, writable;
    um_addr_t src, dst;
    uint8_t *rx;
    size_t rxn;
    bool shut_on_fin;
    /* the app's TCP */
    uint8_t v;
    uint16_t sport, dport;
    uint32_t seq;      /* next sequence number the app sends */
    uint32_t ack;      /* next byte the app expects from us */
    uint32_t iss;      /* the stack's ISN */
    uint16_t wnd;      /* the app's advertised window (unscaled) */
    uint8_t wscale_us; /* what the stack told us */
} h_t;

static h_t *H;

static const uint8_t APP4[16] = {10, 7, 0, 2};
static const uint8_t REM4[16] = {192, 0, 2, 80};
static const uint8_t APP6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t REM6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80};

static void cb_output(void *ctx, const uint8_t *p, size_t n)
{
    h_t *h = ctx;
    assert_true(h->qn < QMAX);
    assert_true(n <= sizeof(h->q[0].b));
    memcpy(h->q[h->qn].b, p, n);
    h->q[h->qn++].n = n;
}

static int cb_open(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst)
{
    h_t *h = ctx;
    h->opens++;
    h->id = id;
    h->src = *src;
    h->dst = *dst;
    if (h->open_mode == OPEN_REFUSE) return UM_EACCES;
    if (h->open_mode == OPEN_ACCEPT)
        assert_int_equal(um_ptcp_accept(h->t, id, h->accept_credit, h->now), 0);
    if (h->open_mode == OPEN_ABORT) assert_int_equal(um_ptcp_abort(h->t, id), 0);
    return 0;
}

static void cb_data(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    h_t *h = ctx;
    assert_int_equal(id, h->id);
    assert_true(h->rxn + n <= (4u << 20));
    memcpy(h->rx + h->rxn, p, n);
    h->rxn += n;
}

static void cb_fin(void *ctx, uint32_t id)
{
    h_t *h = ctx;
    h->fins++;
    if (h->shut_on_fin) assert_int_equal(um_ptcp_shutdown(h->t, id, h->now), 0);
}

static void cb_reset(void *ctx, uint32_t id, int err)
{
    h_t *h = ctx;
    h->resets++;
    h->last_err = err;
}

static void cb_writable(void *ctx, uint32_t id)
{
    ((h_t *)ctx)->writable++;
}

static void udp_out(void *ctx, const uint8_t *p, size_t n)
{
    cb_output(ctx, p, n);
}

static void make(const um_ptcp_config_t *tcfg, uint8_t v)
{
    H = calloc(1, sizeof(*H));
    H->q = calloc(QMAX, sizeof(qpkt_t));
    H->rx = malloc(4u << 20);
    um_tun_stack_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (tcfg) cfg.tcp = *tcfg;
    if (!cfg.tcp.rto_init_ms) cfg.tcp.rto_init_ms = 1000;
    um_ptcp_ops_t ops = {cb_output, cb_open, cb_data, cb_fin, cb_reset, cb_writable};
    um_tunudp_ops_t uops = {udp_out, NULL, NULL, NULL};
    H->s = um_tun_stack_new(&cfg, &ops, &uops, H);
    assert_non_null(H->s);
    H->t = um_tun_stack_tcp(H->s);
    H->now = 1000000;
    H->open_mode = OPEN_PENDING;
    H->accept_credit = 65536;
    H->v = v;
    H->sport = 43210;
    H->dport = 443;
    H->seq = 0x10000000;
    H->wnd = 65535;
}

static int teardown(void **state)
{
    if (!H) return 0;
    um_tun_stack_free(H->s);
    free(H->q);
    free(H->rx);
    free(H);
    H = NULL;
    return 0;
}

/* ---- app side -------------------------------------------------------------- */

static um_ip_pkt_t app_hdr(void)
{
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = H->v;
    h.proto = UM_IPPROTO_TCP;
    h.ttl = 64;
    memcpy(h.src, H->v == 4 ? APP4 : APP6, 16);
    memcpy(h.dst, H->v == 4 ? REM4 : REM6, 16);
    h.sport = H->sport;
    h.dport = H->dport;
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    return h;
}

static int feed(const um_ip_pkt_t *h, const uint8_t *data, size_t len)
{
    uint8_t buf[1600];
    int n = um_ip_build(h, data, len, buf, sizeof(buf));
    assert_true(n > 0);
    return um_tun_stack_input(H->s, buf, (size_t)n, H->now);
}

/* A segment from the app with explicit fields. */
static int seg(uint8_t flags, uint32_t seq, uint32_t ack, const void *data, size_t len)
{
    um_ip_pkt_t h = app_hdr();
    h.tcp.flags = flags;
    h.tcp.seq = seq;
    h.tcp.ack = ack;
    h.tcp.window = H->wnd;
    return feed(&h, data, len);
}

/* Next segment in the app's stream (advances the app's seq). */
static int app_send(uint8_t flags, const void *data, size_t len)
{
    int r = seg(flags | UM_TCP_ACK, H->seq, H->ack, data, len);
    H->seq += (uint32_t)len + ((flags & UM_TCP_FIN) ? 1 : 0);
    return r;
}

static size_t nout(void)
{
    return H->qn - H->qhead;
}

/* Pops the next packet the stack sent; its payload is at *data. */
static um_ip_pkt_t pop(const uint8_t **data)
{
    assert_true(nout() > 0);
    qpkt_t *q = &H->q[H->qhead++];
    if (H->qhead == H->qn) H->qhead = H->qn = 0;
    um_ip_pkt_t p;
    assert_int_equal(um_ip_parse(&p, q->b, q->n), UM_IP_OK);
    assert_int_equal(p.proto, UM_IPPROTO_TCP);
    assert_int_equal(p.version, H->v);
    assert_memory_equal(p.dst, H->v == 4 ? APP4 : APP6, 16);
    assert_memory_equal(p.src, H->v == 4 ? REM4 : REM6, 16);
    assert_int_equal(p.dport, H->sport);
    assert_int_equal(p.sport, H->dport);
    if (data) *data = q->b + p.payload_off;
    return p;
}

static void drain(void)
{
    H->qn = H->qhead = 0;
}

static void tick(uint64_t ms)
{
    H->now += ms;
    um_tun_stack_tick(H->s, H->now);
}

static void syn(void)
{
    um_ip_pkt_t h = app_hdr();
    h.tcp.flags = UM_TCP_SYN;
    h.tcp.seq = H->seq;
    h.tcp.window = 64240;
    h.tcp.mss = 1460;
    h.tcp.wscale = 7;
    h.tcp.sack_ok = true;
    h.tcp.has_ts = true;
    h.tcp.ts_val = 1;
    assert_int_equal(feed(&h, NULL, 0), 0);
    H->seq++;
}

/* SYN, accept (if pending), SYN-ACK checked, final ACK. Returns the id. */
static uint32_t establish(void)
{
    syn();
    assert_int_equal(H->opens, 1);
    if (H->open_mode == OPEN_PENDING) {
        assert_int_equal(nout(), 0);
        assert_int_equal(um_ptcp_state(H->t, H->id), UM_PTCP_SYN_PENDING);
        assert_int_equal(um_ptcp_accept(H->t, H->id, H->accept_credit, H->now), 0);
    }
    assert_int_equal(nout(), 1);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
    assert_int_equal(p.tcp.ack, H->seq);
    H->iss = p.tcp.seq;
    H->ack = p.tcp.seq + 1;
    H->wscale_us = p.tcp.wscale;
    assert_int_equal(app_send(0, NULL, 0), 0);
    assert_int_equal(nout(), 0);
    assert_int_equal(um_ptcp_state(H->t, H->id), UM_PTCP_ESTABLISHED);
    return H->id;
}

/* The app reads every queued segment in order and acknowledges it. Returns
 * how many payload bytes it took. */
static size_t app_take(uint8_t *out, size_t cap, bool *fin)
{
    size_t got = 0;
    while (nout()) {
        const uint8_t *d;
        um_ip_pkt_t p = pop(&d);
        if (p.tcp.seq == H->ack && p.payload_len) {
            assert_true(got + p.payload_len <= cap);
            memcpy(out + got, d, p.payload_len);
            got += p.payload_len;
            H->ack += (uint32_t)p.payload_len;
        }
        if ((p.tcp.flags & UM_TCP_FIN) && p.tcp.seq + p.payload_len == H->ack - 0 &&
            p.tcp.seq + p.payload_len == H->ack) {
            H->ack++;
            if (fin) *fin = true;
        }
    }
    return got;
}

static uint32_t scaled_wnd(const um_ip_pkt_t *p)
{
    return (uint32_t)p->tcp.window << H->wscale_us;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_handshake_v4_options(void **state)
{
    make(NULL, 4);
    syn();
    assert_int_equal(H->opens, 1);
    assert_int_equal(H->dst.type, UM_ADDR_IPV4);
    assert_memory_equal(H->dst.u.v4, REM4, 4);
    assert_int_equal(H->dst.port, 443);
    assert_int_equal(H->src.port, 43210);
    assert_int_equal(nout(), 0); /* pending: nothing until the upper layer answers */
    /* a retransmitted SYN while pending is absorbed */
    H->seq--;
    syn();
    assert_int_equal(H->opens, 1);
    assert_int_equal(nout(), 0);
    assert_int_equal(um_ptcp_accept(H->t, H->id, 100000, H->now), 0);
    assert_int_equal(um_ptcp_accept(H->t, H->id, 100000, H->now), UM_EINVAL);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
    assert_int_equal(p.tcp.ack, H->seq);
    assert_int_equal(p.tcp.mss, 1460); /* MTU 1500 - 40 */
    assert_int_equal(p.tcp.wscale, 7);
    assert_false(p.tcp.sack_ok);
    assert_false(p.tcp.has_ts);
    assert_int_equal(p.tcp.window, 65535); /* SYN windows are never scaled */
    assert_int_equal(um_ptcp_state(H->t, H->id), UM_PTCP_SYN_RCVD);
    /* the SYN-ACK is lost: the app retransmits its SYN, we resend it */
    H->seq--;
    syn();
    um_ip_pkt_t p2 = pop(NULL);
    assert_int_equal(p2.tcp.seq, p.tcp.seq);
    assert_int_equal(p2.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
    H->ack = p.tcp.seq + 1;
    H->wscale_us = 7;
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_state(H->t, H->id), UM_PTCP_ESTABLISHED);
    assert_int_equal(nout(), 0);
    /* window now scaled: 100000 >> 7 = 781 */
    app_send(UM_TCP_PSH, "hi", 2);
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    assert_int_equal(p.tcp.window, (100000 - 2) >> 7);
}

static void test_handshake_v6_no_wscale(void **state)
{
    make(NULL, 6);
    H->open_mode = OPEN_ACCEPT;
    H->accept_credit = 1u << 20;
    um_ip_pkt_t h = app_hdr();
    h.tcp.flags = UM_TCP_SYN;
    h.tcp.seq = H->seq++;
    h.tcp.window = 5000;
    assert_int_equal(feed(&h, NULL, 0), 0);
    assert_int_equal(H->dst.type, UM_ADDR_IPV6);
    assert_memory_equal(H->dst.u.v6, REM6, 16);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
    assert_int_equal(p.tcp.mss, 1440);                  /* 1500 - 60 */
    assert_int_equal(p.tcp.wscale, UM_TCP_WSCALE_NONE); /* the app did not offer it */
    H->ack = p.tcp.seq + 1;
    H->wnd = 5000;
    app_send(0, NULL, 0);
    /* no MSS option from the app: we send at most 1220 per segment; the
     * app's 5000-byte window is respected */
    uint8_t big[8000];
    memset(big, 'q', sizeof(big));
    assert_int_equal(um_ptcp_send(H->t, H->id, big, sizeof(big), H->now), 8000);
    size_t total = 0;
    while (nout()) {
        p = pop(NULL);
        assert_true(p.payload_len <= 1220);
        total += p.payload_len;
    }
    assert_int_equal(total, 5000);
    /* window unscaled in ACKs too: credit 1 MiB caps at 65535 */
    app_send(UM_TCP_PSH, "x", 1);
    p = pop(NULL);
    assert_int_equal(p.tcp.window, 65535);
}

static void test_synack_retransmit_and_give_up(void **state)
{
    um_ptcp_config_t c = {.max_retries = 3};
    make(&c, 4);
    H->open_mode = OPEN_ACCEPT;
    syn();
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(um_ptcp_next_timer(H->t), H->now + 1000);
    /* the SYN-ACK is lost and the app is silent: resent after 1, 2, 4 s */
    uint64_t waits[] = {1000, 2000, 4000};
    for (int i = 0; i < 3; i++) {
        tick(waits[i] - 1);
        assert_int_equal(nout(), 0);
        tick(1);
        um_ip_pkt_t r = pop(NULL);
        assert_int_equal(r.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
        assert_int_equal(r.tcp.seq, p.tcp.seq);
    }
    tick(8000);
    p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_RST);
    assert_int_equal(H->resets, 1);
    assert_int_equal(H->last_err, UM_ETIMEDOUT);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    assert_int_equal(um_ptcp_next_timer(H->t), UINT64_MAX);
}

static void test_refuse_and_abort_pending(void **state)
{
    make(NULL, 4);
    H->open_mode = OPEN_REFUSE;
    syn();
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_RST | UM_TCP_ACK);
    assert_int_equal(p.tcp.ack, H->seq);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    assert_int_equal(H->resets, 0);
    assert_int_equal(um_ptcp_stats(H->t)->flows_refused, 1);
    /* pending, then the upper layer's open fails: RST ("connection refused") */
    H->open_mode = OPEN_PENDING;
    H->sport++;
    syn();
    assert_int_equal(nout(), 0);
    assert_int_equal(um_ptcp_abort(H->t, H->id), 0);
    p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_RST);
    assert_int_equal(p.tcp.ack, H->seq);
    assert_int_equal(um_ptcp_abort(H->t, H->id), UM_ENOENT);
    assert_int_equal(um_ptcp_send(H->t, H->id, (const uint8_t *)"x", 1, H->now), UM_ENOENT);
    /* abort from inside on_open */
    H->open_mode = OPEN_ABORT;
    H->sport++;
    syn();
    p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_RST);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    /* pending open times out */
    H->open_mode = OPEN_PENDING;
    H->sport++;
    syn();
    tick(29999);
    assert_int_equal(nout(), 0);
    tick(1);
    p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_RST);
    assert_int_equal(H->resets, 1);
    assert_int_equal(H->last_err, UM_ETIMEDOUT);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
}

static void test_data_both_ways(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    const char *msg = "GET / HTTP/1.1\r\n\r\n";
    app_send(UM_TCP_PSH, msg, strlen(msg));
    assert_int_equal(H->rxn, strlen(msg));
    assert_memory_equal(H->rx, msg, strlen(msg));
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_ACK);
    assert_int_equal(p.tcp.ack, H->seq);
    /* a duplicate is not delivered twice, and is ACKed */
    seg(UM_TCP_ACK | UM_TCP_PSH, H->seq - (uint32_t)strlen(msg), H->ack, msg, strlen(msg));
    assert_int_equal(H->rxn, strlen(msg));
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    /* a partial overlap delivers only the new part */
    seg(UM_TCP_ACK, H->seq - 3, H->ack, "\r\nXYZ", 5);
    H->seq += 2;
    assert_int_equal(H->rxn, strlen(msg) + 2);
    assert_memory_equal(H->rx + strlen(msg), "YZ", 2);
    drain();
    /* upper -> app: 10000 bytes in MSS segments */
    uint8_t data[10000], got[10000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(um_ptcp_send(H->t, id, data, sizeof(data), H->now), 10000);
    size_t segs = nout();
    assert_int_equal(segs, 7); /* ceil(10000 / 1460) */
    assert_int_equal(app_take(got, sizeof(got), NULL), 10000);
    assert_memory_equal(got, data, sizeof(data));
    app_send(0, NULL, 0); /* ack all */
    assert_int_equal(nout(), 0);
    assert_int_equal(um_ptcp_stats(H->t)->buffered, 0);
    assert_int_equal(um_ptcp_stats(H->t)->bytes_out, 10000);
}

/* The glue reads its clock once per batch of packets, so an ACK can arrive
 * "before" the data it acknowledges was stamped: the RTT sample must not wrap
 * (UBSan caught a signed overflow here under load) and the idle timer must
 * not fire on such a clock. */
static void test_clock_behind_stamp(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    uint8_t data[1000], got[1000];
    memset(data, 7, sizeof(data));
    for (int i = 0; i < 50; i++) {
        /* stamped 500 ms "later" than the ACK that follows */
        assert_int_equal(um_ptcp_send(H->t, id, data, sizeof(data), H->now + 500), 1000);
        assert_int_equal(app_take(got, sizeof(got), NULL), 1000);
        app_send(0, NULL, 0);
        H->now += 1;
    }
    /* one huge gap, then normal samples */
    assert_int_equal(um_ptcp_send(H->t, id, data, sizeof(data), H->now), 1000);
    H->now += 4000000000ull;
    assert_int_equal(app_take(got, sizeof(got), NULL), 1000);
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_ESTABLISHED);
    assert_int_equal(H->resets, 0);
    assert_int_equal(um_ptcp_stats(H->t)->buffered, 0);
}

static void test_delayed_ack(void **state)
{
    um_ptcp_config_t c = {.delack_ms = 40};
    make(&c, 4);
    establish();
    app_send(UM_TCP_PSH, "a", 1);
    assert_int_equal(nout(), 0); /* held */
    tick(39);
    assert_int_equal(nout(), 0);
    tick(1);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    app_send(UM_TCP_PSH, "b", 1);
    assert_int_equal(nout(), 0);
    app_send(UM_TCP_PSH, "c", 1); /* second segment: ACK at once */
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    tick(100);
    assert_int_equal(nout(), 0);
    /* data from the upper layer carries the pending ACK */
    app_send(UM_TCP_PSH, "d", 1);
    assert_int_equal(um_ptcp_send(H->t, H->id, (const uint8_t *)"r", 1, H->now), 1);
    p = pop(NULL);
    assert_int_equal(p.payload_len, 1);
    assert_int_equal(p.tcp.ack, H->seq);
    tick(100);
    assert_int_equal(nout(), 0);
}

static void test_window_follows_credit(void **state)
{
    make(NULL, 4);
    H->accept_credit = 3000;
    uint32_t id = establish();
    uint8_t d[1460];
    memset(d, 'w', sizeof(d));
    app_send(0, d, 1460);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(scaled_wnd(&p), (3000 - 1460) & ~127u);
    app_send(0, d, 1460);
    p = pop(NULL);
    assert_int_equal(p.tcp.window, 0); /* 80 bytes left: below one scale unit */
    app_send(0, d, 80);
    p = pop(NULL);
    assert_int_equal(p.tcp.window, 0);
    assert_int_equal(H->rxn, 3000);
    /* the app keeps sending into the closed window: nothing is delivered,
     * it is told the window again (zero-window probe answered) */
    seg(UM_TCP_ACK, H->seq, H->ack, d, 1);
    assert_int_equal(H->rxn, 3000);
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    assert_int_equal(p.tcp.window, 0);
    assert_true(um_ptcp_stats(H->t)->drop_window >= 1);
    /* the upper layer consumed: a small credit does not trigger an update */
    um_ptcp_credit(H->t, id, 100, H->now);
    assert_int_equal(nout(), 0);
    /* a full MSS of credit does */
    um_ptcp_credit(H->t, id, 4000, H->now);
    p = pop(NULL);
    assert_int_equal(scaled_wnd(&p), 4096 - 0); /* 4100 rounded down to 128 */
    assert_int_equal(p.tcp.ack, H->seq);
    app_send(0, d, 1460);
    assert_int_equal(H->rxn, 4460);
    /* data that straddles the window edge is cut at the credit */
    drain();
    seg(UM_TCP_ACK, H->seq, H->ack, d, 1460);
    seg(UM_TCP_ACK, H->seq + 1460, H->ack, d, 1460);
    assert_int_equal(H->rxn, 4460 + 2640);
    p = pop(NULL);
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq + 2640);
    assert_int_equal(p.tcp.window, 0);
}

static void test_out_of_order(void **state)
{
    make(NULL, 4);
    establish();
    uint32_t s0 = H->seq;
    seg(UM_TCP_ACK, s0 + 10, H->ack, "klmnopqrst", 10); /* second */
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.ack, s0); /* duplicate ACK for the hole */
    assert_int_equal(H->rxn, 0);
    seg(UM_TCP_ACK, s0 + 25, H->ack, "zzzzz", 5);       /* a later one, gap again */
    seg(UM_TCP_ACK, s0 + 10, H->ack, "klmnopqrst", 10); /* duplicate of the stored one */
    drain();
    assert_true(um_ptcp_stats(H->t)->drop_ooo >= 1);
    seg(UM_TCP_ACK, s0, H->ack, "abcdefghij", 10); /* the hole */
    assert_int_equal(H->rxn, 20);
    assert_memory_equal(H->rx, "abcdefghijklmnopqrst", 20);
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, s0 + 20);
    seg(UM_TCP_ACK, s0 + 20, H->ack, "uvwxy", 5);
    assert_int_equal(H->rxn, 30);
    assert_memory_equal(H->rx + 20, "uvwxyzzzzz", 10);
    assert_int_equal(um_ptcp_stats(H->t)->buffered, 0);
    /* an out-of-order FIN is held until the hole is filled */
    drain();
    s0 += 30;
    seg(UM_TCP_ACK | UM_TCP_FIN, s0 + 3, H->ack, "end", 3);
    assert_int_equal(H->fins, 0);
    seg(UM_TCP_ACK, s0, H->ack, "the", 3);
    assert_int_equal(H->fins, 1);
    assert_memory_equal(H->rx + 30, "theend", 6);
    assert_int_equal(um_ptcp_state(H->t, H->id), UM_PTCP_CLOSE_WAIT);
}

static void test_retransmit_and_give_up(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"hello", 5, H->now), 5);
    um_ip_pkt_t p = pop(NULL);
    uint32_t s = p.tcp.seq;
    /* the host drops it: after the RTO it comes again (the handshake's RTT
     * was 0, so RTO = rto_min = 200) */
    tick(199);
    assert_int_equal(nout(), 0);
    tick(1);
    const uint8_t *d;
    p = pop(&d);
    assert_int_equal(p.tcp.seq, s);
    assert_int_equal(p.payload_len, 5);
    assert_memory_equal(d, "hello", 5);
    assert_int_equal(um_ptcp_stats(H->t)->retransmits, 1);
    /* backoff: next after 400 */
    tick(399);
    assert_int_equal(nout(), 0);
    tick(1);
    pop(NULL);
    /* ack it: timer stops */
    H->ack = s + 5;
    app_send(0, NULL, 0);
    tick(100000);
    assert_int_equal(nout(), 0);
    /* now never ack: after max_retries the flow is reset */
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"again", 5, H->now), 5);
    for (int i = 0; i < 20 && um_ptcp_flow_count(H->t); i++)
        tick(60000);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    assert_int_equal(H->resets, 1);
    assert_int_equal(H->last_err, UM_ETIMEDOUT);
    size_t rst = 0;
    while (nout())
        if (pop(NULL).tcp.flags & UM_TCP_RST) rst++;
    assert_int_equal(rst, 1);
}

static void test_fast_retransmit(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    uint8_t d[1460 * 5];
    memset(d, 'f', sizeof(d));
    assert_int_equal(um_ptcp_send(H->t, id, d, sizeof(d), H->now), (int)sizeof(d));
    um_ip_pkt_t first = pop(NULL);
    drain(); /* first segment lost, the others arrive: three duplicate ACKs */
    for (int i = 0; i < 3; i++)
        seg(UM_TCP_ACK, H->seq, first.tcp.seq, NULL, 0);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.seq, first.tcp.seq);
    assert_int_equal(p.payload_len, 1460);
    assert_int_equal(nout(), 0);
}

static void test_zero_window_probe(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    H->wnd = 0; /* the app's buffer is full */
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"data", 4, H->now), 4);
    assert_int_equal(nout(), 0);
    tick(200);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.payload_len, 0);
    assert_int_equal(p.tcp.seq, H->ack - 1); /* probe */
    /* still closed: probe backs off */
    seg(UM_TCP_ACK, H->seq, H->ack, NULL, 0);
    tick(399);
    assert_int_equal(nout(), 0);
    tick(1);
    pop(NULL);
    H->wnd = 1000; /* opens */
    seg(UM_TCP_ACK, H->seq, H->ack, NULL, 0);
    p = pop(NULL);
    assert_int_equal(p.payload_len, 4);
    assert_int_equal(um_ptcp_flow_count(H->t), 1);
}

/* The app takes part of a flight and closes its window: the rest is not
 * hammered into the closed window and the flow is not given up on while the
 * app answers the probes, however long it stays closed. */
static void test_window_shrinks_under_flight(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    uint8_t d[3000];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)i;
    assert_int_equal(um_ptcp_send(H->t, id, d, sizeof(d), H->now), 3000);
    um_ip_pkt_t first = pop(NULL);
    drain();
    H->ack = first.tcp.seq + 1460;
    H->wnd = 0;
    app_send(0, NULL, 0);
    assert_int_equal(nout(), 0);
    size_t probes = 0, data = 0;
    for (int i = 0; i < 600; i++) { /* ten minutes */
        tick(1000);
        while (nout()) {
            um_ip_pkt_t p = pop(NULL);
            if (p.payload_len)
                data++;
            else if (p.tcp.seq == H->ack - 1) {
                probes++;
                seg(UM_TCP_ACK, H->seq, H->ack, NULL, 0); /* still closed */
                drain();
            }
        }
    }
    assert_int_equal(um_ptcp_flow_count(H->t), 1);
    assert_int_equal(H->resets, 0);
    assert_true(probes >= 10);
    assert_true(data <= 1); /* at most the one RTO that found the window closed */
    H->wnd = 65535;
    seg(UM_TCP_ACK, H->seq, H->ack, NULL, 0);
    const uint8_t *pl;
    um_ip_pkt_t p = pop(&pl);
    assert_int_equal(p.tcp.seq, H->ack);
    assert_int_equal(p.payload_len, 1460);
    assert_memory_equal(pl, d + 1460, 1460);
}

static void test_fin_app_first(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    app_send(UM_TCP_PSH | UM_TCP_FIN, "bye", 3);
    assert_int_equal(H->fins, 1);
    assert_int_equal(H->rxn, 3);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq); /* data + FIN acked */
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_CLOSE_WAIT);
    /* half-close: the upper layer still sends */
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"reply", 5, H->now), 5);
    p = pop(NULL);
    assert_int_equal(p.payload_len, 5);
    assert_int_equal(um_ptcp_shutdown(H->t, id, H->now), 0);
    p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_FIN);
    assert_int_equal(p.tcp.seq, H->ack + 5);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_LAST_ACK);
    /* detached now: no more calls with this id */
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"x", 1, H->now), UM_ENOENT);
    H->ack += 6;
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    assert_int_equal(H->resets, 0);
}

static void test_fin_upper_first(void **state)
{
    make(NULL, 6);
    uint32_t id = establish();
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"last", 4, H->now), 4);
    assert_int_equal(um_ptcp_shutdown(H->t, id, H->now), 0);
    assert_int_equal(um_ptcp_shutdown(H->t, id, H->now), 0); /* idempotent */
    assert_int_equal(um_ptcp_send(H->t, id, (const uint8_t *)"x", 1, H->now), UM_EPIPE);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.payload_len, 4);
    assert_int_equal(nout(), 1);
    p = pop(NULL); /* FIN rides after the data */
    assert_true(p.tcp.flags & UM_TCP_FIN);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_FIN_WAIT_1);
    H->ack += 5;
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_FIN_WAIT_2);
    /* the app keeps sending (half-close), then closes */
    app_send(0, "more", 4);
    assert_int_equal(H->rxn, 4);
    pop(NULL);
    app_send(UM_TCP_FIN, NULL, 0);
    assert_int_equal(H->fins, 1);
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_TIME_WAIT);
    /* a retransmitted FIN in TIME_WAIT is ACKed again */
    seg(UM_TCP_ACK | UM_TCP_FIN, H->seq - 1, H->ack, NULL, 0);
    p = pop(NULL);
    assert_int_equal(p.tcp.ack, H->seq);
    tick(2000);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    assert_int_equal(H->resets, 0);
}

static void test_fin_simultaneous(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    assert_int_equal(um_ptcp_shutdown(H->t, id, H->now), 0);
    um_ip_pkt_t p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_FIN);
    /* the app's FIN crosses ours: it does not ack our FIN yet */
    app_send(UM_TCP_FIN, NULL, 0);
    assert_int_equal(H->fins, 1);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_CLOSING);
    pop(NULL);
    H->ack++;
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_TIME_WAIT);
    /* a new SYN on the same 4-tuple reuses the slot at once */
    H->seq += 100000;
    H->open_mode = OPEN_ACCEPT;
    syn();
    assert_int_equal(H->opens, 2);
    p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_SYN | UM_TCP_ACK);
    assert_int_equal(um_ptcp_flow_count(H->t), 1);
}

static void test_fin_and_ack_in_one(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    um_ptcp_shutdown(H->t, id, H->now);
    pop(NULL);
    H->ack++;
    app_send(UM_TCP_FIN, "z", 1); /* acks our FIN and sends its own */
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_TIME_WAIT);
    assert_int_equal(H->rxn, 1);
    /* shutdown during SYN_RCVD: FIN right after the handshake */
    H->sport++;
    H->opens = 0;
    drain();
    H->open_mode = OPEN_ACCEPT;
    syn();
    um_ip_pkt_t p = pop(NULL);
    id = H->id;
    assert_int_equal(um_ptcp_shutdown(H->t, id, H->now), 0);
    assert_int_equal(nout(), 0);
    H->ack = p.tcp.seq + 1;
    app_send(0, NULL, 0);
    p = pop(NULL);
    assert_true(p.tcp.flags & UM_TCP_FIN);
    assert_int_equal(p.tcp.seq, H->ack);
}

/* Drives a fresh flow into the given state. */
static uint32_t drive(um_ptcp_state_t st)
{
    H->sport++;
    H->opens = 0;
    H->open_mode = OPEN_PENDING;
    H->fins = H->resets = 0;
    H->seq += 1000000;
    drain();
    syn();
    uint32_t id = H->id;
    if (st == UM_PTCP_SYN_PENDING) return id;
    um_ptcp_accept(H->t, id, 65536, H->now);
    um_ip_pkt_t p = pop(NULL);
    H->ack = p.tcp.seq + 1;
    H->wscale_us = p.tcp.wscale;
    if (st == UM_PTCP_SYN_RCVD) return id;
    app_send(0, NULL, 0);
    switch (st) {
    case UM_PTCP_CLOSE_WAIT: app_send(UM_TCP_FIN, NULL, 0); break;
    case UM_PTCP_FIN_WAIT_1: um_ptcp_shutdown(H->t, id, H->now); break;
    case UM_PTCP_FIN_WAIT_2:
        um_ptcp_shutdown(H->t, id, H->now);
        H->ack++;
        app_send(0, NULL, 0);
        break;
    case UM_PTCP_CLOSING:
        um_ptcp_shutdown(H->t, id, H->now);
        app_send(UM_TCP_FIN, NULL, 0);
        break;
    case UM_PTCP_LAST_ACK:
        app_send(UM_TCP_FIN, NULL, 0);
        um_ptcp_shutdown(H->t, id, H->now);
        break;
    default: break;
    }
    assert_int_equal(um_ptcp_state(H->t, id), st);
    drain();
    return id;
}

static void test_rst_from_app_in_every_state(void **state)
{
    make(NULL, 4);
    static const struct {
        um_ptcp_state_t st;
        bool told; /* the upper layer still attached, so it hears on_reset */
    } cases[] = {
        {UM_PTCP_SYN_PENDING, true}, {UM_PTCP_SYN_RCVD, true},   {UM_PTCP_ESTABLISHED, true},
        {UM_PTCP_CLOSE_WAIT, true},  {UM_PTCP_FIN_WAIT_1, true}, {UM_PTCP_FIN_WAIT_2, true},
        {UM_PTCP_CLOSING, false},    {UM_PTCP_LAST_ACK, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t id = drive(cases[i].st);
        /* an RST outside the window is ignored */
        seg(UM_TCP_RST, H->seq + 10000000, 0, NULL, 0);
        assert_int_equal(um_ptcp_state(H->t, id), cases[i].st);
        assert_int_equal(nout(), 0);
        seg(UM_TCP_RST, H->seq, 0, NULL, 0);
        assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_CLOSED);
        assert_int_equal(um_ptcp_flow_count(H->t), 0);
        assert_int_equal(H->resets, cases[i].told ? 1 : 0);
        if (cases[i].told) assert_int_equal(H->last_err, UM_EPIPE);
        assert_int_equal(nout(), 0); /* never RST an RST */
    }
}

static void test_rst_from_upper_in_every_state(void **state)
{
    make(NULL, 4);
    um_ptcp_state_t states[] = {UM_PTCP_SYN_PENDING, UM_PTCP_SYN_RCVD,   UM_PTCP_ESTABLISHED,
                                UM_PTCP_CLOSE_WAIT,  UM_PTCP_FIN_WAIT_1, UM_PTCP_FIN_WAIT_2};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        uint32_t id = drive(states[i]);
        assert_int_equal(um_ptcp_abort(H->t, id), 0);
        um_ip_pkt_t p = pop(NULL);
        assert_true(p.tcp.flags & UM_TCP_RST);
        assert_int_equal(p.tcp.ack, H->seq);
        assert_int_equal(H->resets, 0);
        assert_int_equal(um_ptcp_flow_count(H->t), 0);
        /* late segments from the app get RST */
        seg(UM_TCP_ACK, H->seq, H->ack, "late", 4);
        p = pop(NULL);
        assert_int_equal(p.tcp.flags, UM_TCP_RST);
    }
    /* after both FINs the flow is detached: abort is refused */
    uint32_t id = drive(UM_PTCP_LAST_ACK);
    assert_int_equal(um_ptcp_abort(H->t, id), UM_ENOENT);
}

static void test_flow_limit(void **state)
{
    um_ptcp_config_t c = {.max_flows = 4};
    make(&c, 4);
    for (int i = 0; i < 4; i++) {
        H->sport++;
        syn();
    }
    assert_int_equal(um_ptcp_flow_count(H->t), 4);
    assert_int_equal(nout(), 0);
    H->sport++;
    um_ip_pkt_t h = app_hdr();
    h.tcp.flags = UM_TCP_SYN;
    h.tcp.seq = H->seq;
    assert_int_equal(feed(&h, NULL, 0), UM_ELIMIT);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_RST | UM_TCP_ACK);
    assert_int_equal(p.tcp.ack, H->seq + 1);
    assert_int_equal(um_ptcp_stats(H->t)->flows_full, 1);
    assert_int_equal(H->opens, 4);
    /* an unknown non-SYN segment gets RST with seq = its ACK */
    seg(UM_TCP_ACK, 5, 0xabcdef01, NULL, 0);
    p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_RST);
    assert_int_equal(p.tcp.seq, 0xabcdef01);
    seg(UM_TCP_RST, 5, 0, NULL, 0); /* unknown RST: silence */
    assert_int_equal(nout(), 0);
}

static void test_byte_limits(void **state)
{
    um_ptcp_config_t c = {.max_bytes = 6000, .sndbuf = 4000, .ooo_max = 1000};
    make(&c, 4);
    uint32_t id = establish();
    uint8_t d[8000];
    memset(d, 'b', sizeof(d));
    H->wnd = 0;
    app_send(0, NULL, 0);
    assert_int_equal(um_ptcp_send_space(H->t, id), 4000);
    assert_int_equal(um_ptcp_send(H->t, id, d, sizeof(d), H->now), 4000);
    assert_int_equal(um_ptcp_send(H->t, id, d, 1, H->now), 0);
    assert_int_equal(um_ptcp_stats(H->t)->buffered, 4000);
    /* the global bound: a second flow gets only what is left */
    uint32_t saved_seq = H->seq, saved_ack = H->ack;
    H->sport++;
    H->opens = 0;
    uint32_t id2 = establish();
    assert_int_equal(um_ptcp_send(H->t, id2, d, sizeof(d), H->now), 2000);
    drain();
    /* out-of-order bytes are bounded too */
    seg(UM_TCP_ACK, H->seq + 100, H->ack, d, 1200);
    assert_int_equal(um_ptcp_stats(H->t)->buffered, 6000);
    assert_true(um_ptcp_stats(H->t)->drop_ooo >= 1);
    drain();
    /* the first flow drains: on_writable fires once */
    H->sport--;
    H->seq = saved_seq;
    H->ack = saved_ack;
    H->wnd = 65535;
    H->wscale_us = 7;
    app_send(0, NULL, 0);
    bool fin = false;
    uint8_t got[4000];
    assert_int_equal(app_take(got, sizeof(got), &fin), 4000);
    assert_int_equal(H->writable, 0);
    app_send(0, NULL, 0);
    assert_int_equal(H->writable, 1);
    assert_int_equal(um_ptcp_stats(H->t)->buffered, 2000);
}

static void test_idle_timeout(void **state)
{
    um_ptcp_config_t c = {.idle_timeout_ms = 5000};
    make(&c, 4);
    establish();
    tick(4000);
    app_send(0, "k", 1);
    drain();
    tick(4999);
    assert_int_equal(um_ptcp_flow_count(H->t), 1);
    tick(1);
    assert_int_equal(um_ptcp_flow_count(H->t), 0);
    assert_int_equal(H->last_err, UM_ETIMEDOUT);
    assert_true(pop(NULL).tcp.flags & UM_TCP_RST);
}

static void test_hostile_segments(void **state)
{
    make(NULL, 4);
    uint32_t id = establish();
    size_t before = um_ptcp_stats(H->t)->drop_bad;
    /* SYN+FIN, SYN+RST, no ACK, ACK of unsent data */
    seg(UM_TCP_SYN | UM_TCP_FIN, H->seq, 0, NULL, 0);
    seg(UM_TCP_SYN | UM_TCP_RST, H->seq, 0, NULL, 0);
    seg(UM_TCP_PSH, H->seq, 0, "x", 1);
    seg(UM_TCP_ACK, H->seq, H->ack + 100000, NULL, 0);
    assert_int_equal(um_ptcp_stats(H->t)->drop_bad, before + 4);
    assert_int_equal(H->rxn, 0);
    /* a SYN on an established flow: challenge ACK, flow untouched */
    drain();
    seg(UM_TCP_SYN, H->seq + 5, 0, NULL, 0);
    um_ip_pkt_t p = pop(NULL);
    assert_int_equal(p.tcp.flags, UM_TCP_ACK);
    assert_int_equal(um_ptcp_state(H->t, id), UM_PTCP_ESTABLISHED);
    /* a SYN with ACK for no flow: RST, no flow */
    H->sport++;
    seg(UM_TCP_SYN | UM_TCP_ACK, 1, 2, NULL, 0);
    assert_int_equal(um_ptcp_flow_count(H->t), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_handshake_v4_options, teardown),
        cmocka_unit_test_teardown(test_handshake_v6_no_wscale, teardown),
        cmocka_unit_test_teardown(test_synack_retransmit_and_give_up, teardown),
        cmocka_unit_test_teardown(test_refuse_and_abort_pending, teardown),
        cmocka_unit_test_teardown(test_data_both_ways, teardown),
        cmocka_unit_test_teardown(test_clock_behind_stamp, teardown),
        cmocka_unit_test_teardown(test_delayed_ack, teardown),
        cmocka_unit_test_teardown(test_window_follows_credit, teardown),
        cmocka_unit_test_teardown(test_out_of_order, teardown),
        cmocka_unit_test_teardown(test_retransmit_and_give_up, teardown),
        cmocka_unit_test_teardown(test_fast_retransmit, teardown),
        cmocka_unit_test_teardown(test_zero_window_probe, teardown),
        cmocka_unit_test_teardown(test_window_shrinks_under_flight, teardown),
        cmocka_unit_test_teardown(test_fin_app_first, teardown),
        cmocka_unit_test_teardown(test_fin_upper_first, teardown),
        cmocka_unit_test_teardown(test_fin_simultaneous, teardown),
        cmocka_unit_test_teardown(test_fin_and_ack_in_one, teardown),
        cmocka_unit_test_teardown(test_rst_from_app_in_every_state, teardown),
        cmocka_unit_test_teardown(test_rst_from_upper_in_every_state, teardown),
        cmocka_unit_test_teardown(test_flow_limit, teardown),
        cmocka_unit_test_teardown(test_byte_limits, teardown),
        cmocka_unit_test_teardown(test_idle_timeout, teardown),
        cmocka_unit_test_teardown(test_hostile_segments, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
