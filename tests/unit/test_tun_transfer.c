/* A few MiB both ways across the pseudo-TCP stack through a lossy, reordering
 * packet path, with a slow upper layer that lets the window close; SHA-256 of
 * both streams checked, then both FINs and the flow's end.
 *
 *   app model (a simple go-back-N TCP) ═ lossy pipe ═ um_tun_stack ─ upper model
 *
 * The app model is deliberately plain: in-order receive only, cumulative
 * ACKs, retransmission from the first unacknowledged byte after a timeout,
 * one-byte probes into a zero window. Time is simulated (1 ms steps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "tun/stack.h"
#include "util/err.h"

#define PIPE_MAX 4096
#define APP_MSS  1460
#define APP_WS   7
#define APP_RWND (256u << 10)

typedef struct {
    uint64_t at, seq;
    size_t n;
    uint8_t b[1600];
} inflight_t;

typedef struct {
    inflight_t *q;
    size_t n;
} pipe_t;

typedef struct {
    uint8_t v;
    size_t size;
    uint64_t now;
    uint32_t rng;
    uint64_t pkt_seq;
    uint64_t probes, zero_windows;
    unsigned loss_pct, jitter_ms;
    pipe_t to_stack, to_app;
    um_tun_stack_t *s;
    um_ptcp_t *t;
    /* app -> upper stream */
    uint8_t *a_data, *a_got;
    size_t a_una, a_nxt, a_got_n;
    uint32_t a_iss;
    bool a_syn_acked, a_fin_sent, a_fin_acked;
    uint64_t a_last_progress, a_last_syn;
    uint32_t peer_wnd; /* the stack's window, scaled */
    uint8_t peer_ws;
    /* upper -> app stream */
    uint8_t *b_data, *b_got;
    size_t b_sent, b_got_n;
    uint32_t s_iss;
    bool s_iss_known, app_got_fin;
    /* upper layer */
    uint32_t id;
    bool opened, upper_got_fin, upper_shut, reset;
    size_t owed_credit;
    uint64_t stall_until;
} sim_t;

static uint32_t rnd(sim_t *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 17;
    m->rng ^= m->rng << 5;
    return m->rng;
}

static void pipe_put(sim_t *m, pipe_t *p, const uint8_t *b, size_t n)
{
    if (rnd(m) % 100 < m->loss_pct || p->n >= PIPE_MAX) return;
    inflight_t *f = &p->q[p->n++];
    f->at = m->now + 1 + (m->jitter_ms ? rnd(m) % m->jitter_ms : 0);
    f->seq = m->pkt_seq++;
    f->n = n;
    memcpy(f->b, b, n);
}

static void cb_output(void *ctx, const uint8_t *p, size_t n)
{
    sim_t *m = ctx;
    assert_true(n <= 1600);
    pipe_put(m, &m->to_app, p, n);
}

static int cb_open(void *ctx, uint32_t id, const um_addr_t *s, const um_addr_t *d)
{
    sim_t *m = ctx;
    assert_false(m->opened);
    m->opened = true;
    m->id = id;
    assert_int_equal(um_ptcp_accept(m->t, id, 32u << 10, m->now), 0);
    return 0;
}

static void cb_data(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    sim_t *m = ctx;
    assert_true(m->a_got_n + n <= m->size);
    memcpy(m->a_got + m->a_got_n, p, n);
    m->a_got_n += n;
    m->owed_credit += n;
}

static void cb_fin(void *ctx, uint32_t id)
{
    ((sim_t *)ctx)->upper_got_fin = true;
}

static void cb_reset(void *ctx, uint32_t id, int err)
{
    sim_t *m = ctx;
    m->reset = true;
    fail_msg("flow reset: %s (a_una %zu b_got %zu)", um_strerror(err), m->a_una, m->b_got_n);
}

static void udp_out(void *ctx, const uint8_t *p, size_t n) {}

static size_t app_mss(const sim_t *m)
{
    return m->v == 4 ? APP_MSS : APP_MSS - 20;
}

/* ---- the app's TCP --------------------------------------------------------- */

static void app_emit(sim_t *m, uint8_t flags, uint32_t seq, const uint8_t *d, size_t n, bool syn)
{
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = m->v;
    h.proto = UM_IPPROTO_TCP;
    h.ttl = 64;
    if (m->v == 4) {
        memcpy(h.src, "\x0a\x00\x00\x02", 4);
        memcpy(h.dst, "\xc6\x33\x64\x01", 4);
    } else {
        h.src[0] = h.dst[0] = 0xfd;
        h.src[15] = 2;
        h.dst[15] = 9;
    }
    h.sport = 50000;
    h.dport = 8080;
    h.tcp.flags = flags;
    h.tcp.seq = seq;
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    if (syn) {
        h.tcp.window = 65535;
        h.tcp.mss = (uint16_t)app_mss(m);
        h.tcp.wscale = APP_WS;
    } else {
        h.tcp.ack = m->s_iss + 1 + (uint32_t)m->b_got_n + (m->app_got_fin ? 1 : 0);
        h.tcp.window = (uint16_t)(APP_RWND >> APP_WS);
    }
    uint8_t buf[1600];
    int len = um_ip_build(&h, d, n, buf, sizeof(buf));
    assert_true(len > 0);
    pipe_put(m, &m->to_stack, buf, (size_t)len);
}

static void app_send(sim_t *m)
{
    if (!m->a_syn_acked) {
        if (m->now - m->a_last_syn >= 300 || m->a_last_syn == 0) {
            app_emit(m, UM_TCP_SYN, m->a_iss, NULL, 0, true);
            m->a_last_syn = m->now;
        }
        return;
    }
    /* timeout: go back to the first unacknowledged byte */
    bool outstanding = m->a_una < m->a_nxt || (m->a_fin_sent && !m->a_fin_acked);
    if (outstanding && m->now - m->a_last_progress >= 300) {
        m->a_nxt = m->a_una;
        m->a_fin_sent = false;
        m->a_last_progress = m->now;
        if (m->peer_wnd == 0 && m->a_una < m->size && ++m->probes) /* zero-window probe */
            app_emit(m, UM_TCP_ACK, m->a_iss + 1 + (uint32_t)m->a_una, m->a_data + m->a_una, 1,
                     false);
    }
    for (int burst = 0; burst < 64 && m->a_nxt < m->size; burst++) {
        size_t inflight = m->a_nxt - m->a_una;
        if (inflight >= m->peer_wnd) break;
        size_t len = m->size - m->a_nxt;
        if (len > app_mss(m)) len = app_mss(m);
        if (len > m->peer_wnd - inflight) len = m->peer_wnd - inflight;
        if (!outstanding) m->a_last_progress = m->now;
        outstanding = true;
        app_emit(m, UM_TCP_ACK, m->a_iss + 1 + (uint32_t)m->a_nxt, m->a_data + m->a_nxt, len,
                 false);
        m->a_nxt += len;
    }
    if (m->a_nxt == m->size && !m->a_fin_sent) {
        app_emit(m, UM_TCP_ACK | UM_TCP_FIN, m->a_iss + 1 + (uint32_t)m->size, NULL, 0, false);
        m->a_fin_sent = true;
        if (!outstanding) m->a_last_progress = m->now;
    }
}

static void app_recv(sim_t *m, const uint8_t *b, size_t n)
{
    um_ip_pkt_t p;
    assert_int_equal(um_ip_parse(&p, b, n), UM_IP_OK);
    assert_int_equal(p.proto, UM_IPPROTO_TCP);
    uint8_t fl = p.tcp.flags;
    assert_false(fl & UM_TCP_RST);
    if (fl & UM_TCP_SYN) {
        assert_int_equal(p.tcp.ack, m->a_iss + 1);
        m->s_iss = p.tcp.seq;
        m->s_iss_known = true;
        m->peer_ws = p.tcp.wscale;
        m->peer_wnd = p.tcp.window;
        if (!m->a_syn_acked) m->a_last_progress = m->now;
        m->a_syn_acked = true;
        app_emit(m, UM_TCP_ACK, m->a_iss + 1, NULL, 0, false);
        return;
    }
    if (!m->s_iss_known) return;
    /* ACK */
    size_t acked = (uint32_t)(p.tcp.ack - (m->a_iss + 1));
    if (acked <= m->size + 1) {
        if (acked > m->size) {
            m->a_fin_acked = true;
            acked = m->size;
        }
        /* window from the newest ACK only (RFC 9293 SND.WL2): an older,
         * reordered one would move the right edge past what was offered */
        if (acked >= m->a_una) m->peer_wnd = (uint32_t)p.tcp.window << m->peer_ws;
        if (p.tcp.window == 0) m->zero_windows++;
        if (acked > m->a_una) {
            m->a_una = acked;
            m->a_last_progress = m->now;
            if (m->a_nxt < m->a_una) m->a_nxt = m->a_una;
        }
    }
    /* data, in order only */
    size_t off = (uint32_t)(p.tcp.seq - (m->s_iss + 1));
    bool need_ack = p.payload_len > 0 || (fl & UM_TCP_FIN);
    if (p.payload_len && off == m->b_got_n && !m->app_got_fin) {
        assert_true(m->b_got_n + p.payload_len <= m->size);
        memcpy(m->b_got + m->b_got_n, b + p.payload_off, p.payload_len);
        m->b_got_n += p.payload_len;
    }
    if ((fl & UM_TCP_FIN) && off + p.payload_len == m->b_got_n && m->b_got_n == m->size)
        m->app_got_fin = true;
    if (need_ack) app_emit(m, UM_TCP_ACK, m->a_iss + 1 + (uint32_t)m->a_nxt, NULL, 0, false);
}

/* ---- the run --------------------------------------------------------------- */

static void deliver_due(sim_t *m, pipe_t *p, bool to_stack)
{
    /* deliver every packet due now, in random order among those due */
    for (size_t guard = 0; guard < PIPE_MAX; guard++) {
        size_t pick = SIZE_MAX, due = 0;
        for (size_t i = 0; i < p->n; i++)
            if (p->q[i].at <= m->now &&
                (m->jitter_ms ? (due++ == 0 || rnd(m) % due == 0)
                              : (pick == SIZE_MAX || p->q[i].seq < p->q[pick].seq)))
                pick = i;
        if (pick == SIZE_MAX) return;
        inflight_t f = p->q[pick];
        p->q[pick] = p->q[--p->n];
        if (to_stack)
            um_tun_stack_input(m->s, f.b, f.n, m->now);
        else
            app_recv(m, f.b, f.n);
    }
}

static void upper_step(sim_t *m)
{
    if (!m->opened || m->reset) return;
    /* a slow consumer: now and then it stops granting credit for a while */
    if (m->now >= m->stall_until) {
        if (rnd(m) % 1000 == 0) {
            m->stall_until = m->now + 50 + rnd(m) % 200;
        } else if (m->owed_credit && !m->upper_got_fin) {
            um_ptcp_credit(m->t, m->id, m->owed_credit, m->now);
            m->owed_credit = 0;
        }
    }
    if (m->b_sent < m->size) {
        size_t want = m->size - m->b_sent;
        if (want > 16384) want = 16384;
        int r = um_ptcp_send(m->t, m->id, m->b_data + m->b_sent, want, m->now);
        assert_true(r >= 0);
        m->b_sent += (size_t)r;
    } else if (!m->upper_shut && m->upper_got_fin) {
        assert_int_equal(um_ptcp_shutdown(m->t, m->id, m->now), 0);
        m->upper_shut = true;
    }
}

static void run(uint8_t v, size_t size, unsigned loss_pct, unsigned jitter, uint32_t seed,
                bool want_stall)
{
    sim_t *m = calloc(1, sizeof(*m));
    m->v = v;
    m->size = size;
    m->rng = seed;
    m->loss_pct = loss_pct;
    m->jitter_ms = jitter;
    m->now = 1;
    m->a_iss = 0xfffff000u; /* wraps early */
    m->to_stack.q = calloc(PIPE_MAX, sizeof(inflight_t));
    m->to_app.q = calloc(PIPE_MAX, sizeof(inflight_t));
    m->a_data = malloc(size);
    m->a_got = malloc(size);
    m->b_data = malloc(size);
    m->b_got = malloc(size);
    randombytes_buf(m->a_data, size);
    randombytes_buf(m->b_data, size);

    um_tun_stack_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.tcp.max_flows = 8;
    um_ptcp_ops_t ops = {cb_output, cb_open, cb_data, cb_fin, cb_reset, NULL};
    um_tunudp_ops_t uops = {udp_out, NULL, NULL, NULL};
    m->s = um_tun_stack_new(&cfg, &ops, &uops, m);
    assert_non_null(m->s);
    m->t = um_tun_stack_tcp(m->s);
    const um_ptcp_stats_t *st = um_ptcp_stats(m->t);

    uint64_t limit = 600000; /* simulated ms */
    for (; m->now < limit; m->now++) {
        deliver_due(m, &m->to_stack, true);
        deliver_due(m, &m->to_app, false);
        app_send(m);
        upper_step(m);
        um_tun_stack_tick(m->s, m->now);
        assert_true(st->buffered <= cfg.tcp.max_bytes || cfg.tcp.max_bytes == 0);
        if (m->a_fin_acked && m->app_got_fin && m->upper_got_fin && um_ptcp_flow_count(m->t) == 0)
            break;
    }
    print_message("v%d %zu bytes each way, loss %u%%: %llu ms simulated, %llu segs in, %llu out, "
                  "%llu retransmits, %llu window drops, %llu ooo drops, %llu zero windows\n",
                  v, size, loss_pct, (unsigned long long)m->now, (unsigned long long)st->seg_in,
                  (unsigned long long)st->seg_out, (unsigned long long)st->retransmits,
                  (unsigned long long)st->drop_window, (unsigned long long)st->drop_ooo,
                  (unsigned long long)m->zero_windows);
    if (m->now >= limit)
        print_message("stuck: a_una %zu a_nxt %zu a_got %zu fin_sent %d fin_acked %d | b_sent %zu "
                      "b_got %zu app_fin %d | upper_fin %d shut %d state %s peer_wnd %u owed %zu\n",
                      m->a_una, m->a_nxt, m->a_got_n, m->a_fin_sent, m->a_fin_acked, m->b_sent,
                      m->b_got_n, m->app_got_fin, m->upper_got_fin, m->upper_shut,
                      um_ptcp_state_name(um_ptcp_state(m->t, m->id)), m->peer_wnd, m->owed_credit);
    assert_true(m->now < limit);
    assert_int_equal(m->a_got_n, size);
    assert_int_equal(m->b_got_n, size);
    uint8_t h1[32], h2[32];
    crypto_hash_sha256(h1, m->a_data, size);
    crypto_hash_sha256(h2, m->a_got, size);
    assert_memory_equal(h1, h2, 32);
    crypto_hash_sha256(h1, m->b_data, size);
    crypto_hash_sha256(h2, m->b_got, size);
    assert_memory_equal(h1, h2, 32);
    assert_true(m->upper_got_fin);
    /* the app never sent past the window we offered, so nothing it sent
     * was cut for lack of window except its own zero-window probes */
    assert_true(st->drop_window <= m->probes);
    /* the slow consumer really closed the window (backpressure exercised) */
    if (want_stall) assert_true(m->zero_windows > 0);
    assert_int_equal(st->buffered, 0);
    assert_int_equal(um_ptcp_flow_count(m->t), 0);

    um_tun_stack_free(m->s);
    free(m->to_stack.q);
    free(m->to_app.q);
    free(m->a_data);
    free(m->a_got);
    free(m->b_data);
    free(m->b_got);
    free(m);
}

static size_t mib(void)
{
    const char *s = getenv("UMBRA_SANITIZE");
#if defined(__SANITIZE_ADDRESS__)
    s = "1";
#endif
    return (s && *s && strcmp(s, "0") != 0) ? (2u << 20) : (4u << 20);
}

static void test_clean_path_v4(void **state)
{
    run(4, mib(), 0, 0, 1, false);
}

static void test_lossy_reordering_v4(void **state)
{
    run(4, mib(), 2, 4, 0x9e3779b9u, true);
}

static void test_lossy_reordering_v6(void **state)
{
    run(6, mib(), 3, 6, 0x2545f491u, true);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_path_v4),
        cmocka_unit_test(test_lossy_reordering_v4),
        cmocka_unit_test(test_lossy_reordering_v6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
