/* The memory budget (src/mux/budget.c) and how the mux keeps to it: shares
 * per client, the server-wide limit, grants withheld over the share (and
 * given once bytes are read), opens refused with RST 0x07, no byte lost, the
 * send side reporting full while the peer's window is closed. */
#include "test_mux_pair.h"

#include "mux/budget.h"

#define MIB (1024u * 1024u)

static void test_shares(void **state)
{
    (void)state;
    um_membudget_t b;
    um_membudget_init(&b, 64 * MIB, 16 * MIB, 0);
    um_memacct_t *x = um_memacct_new(&b, 0), *y = um_memacct_new(&b, 0), *z = um_memacct_new(&b, 0);
    um_memacct_t *capped = um_memacct_new(&b, 4 * MIB);
    assert_non_null(x);
    assert_non_null(capped);
    assert_int_equal(um_memacct_share(x), 64 * MIB); /* nobody active: the whole budget */
    um_memacct_attach(x);
    assert_int_equal(b.active, 1);
    um_memacct_attach(x); /* a second session of the same client */
    assert_int_equal(b.active, 1);
    assert_int_equal(um_memacct_share(x), 64 * MIB);
    um_memacct_attach(y);
    assert_int_equal(um_memacct_share(x), 32 * MIB);
    um_memacct_attach(z);
    um_memacct_attach(capped);
    assert_int_equal(um_memacct_share(x), 16 * MIB); /* 64/4 */
    assert_int_equal(um_memacct_share(capped), 4 * MIB);

    assert_true(um_memacct_fits(x, 16 * MIB));
    assert_false(um_memacct_fits(x, 16 * MIB + 1));
    um_memacct_charge(x, 10 * MIB);
    assert_true(um_memacct_fits(x, 6 * MIB));
    assert_false(um_memacct_fits(x, 6 * MIB + 1));
    assert_int_equal(b.used, 10 * MIB);
    assert_false(um_memacct_fits(capped, 4 * MIB + 1));

    /* The server-wide limit holds even when shares add up to more (floor). */
    um_membudget_t small;
    um_membudget_init(&small, 20 * MIB, 16 * MIB, 1 * MIB);
    um_memacct_t *p = um_memacct_new(&small, 0), *q = um_memacct_new(&small, 0);
    um_memacct_attach(p);
    um_memacct_attach(q);
    assert_int_equal(um_memacct_share(p), 16 * MIB); /* floor, above 20/2 */
    um_memacct_charge(p, 16 * MIB);
    assert_false(um_memacct_fits(p, 1));
    assert_true(um_memacct_fits(q, 4 * MIB));
    assert_false(um_memacct_fits(q, 4 * MIB + 1)); /* the server's limit */
    um_memacct_charge(q, 4 * MIB);
    assert_false(um_memacct_fits(q, 1)); /* full, and q holds more than the reserve */
    um_memacct_t *late = um_memacct_new(&small, 0);
    um_memacct_attach(late);
    assert_true(um_memacct_fits(late, 1 * MIB)); /* the reserve: a newcomer still moves */
    assert_false(um_memacct_fits(late, 1 * MIB + 1));
    um_memacct_detach(late);
    um_memacct_unref(late);
    um_memacct_release(q, 4 * MIB);
    um_memacct_release(p, 16 * MIB);
    assert_int_equal(small.used, 0);
    um_memacct_detach(p);
    um_memacct_detach(q);
    assert_int_equal(small.active, 0);
    um_memacct_unref(p);
    um_memacct_unref(q);

    um_memacct_release(x, 10 * MIB);
    assert_int_equal(b.used, 0);
    um_memacct_detach(x);
    assert_int_equal(b.active, 4); /* x has a second user */
    um_memacct_detach(x);
    um_memacct_detach(y);
    um_memacct_detach(z);
    um_memacct_detach(capped);
    assert_int_equal(b.active, 0);
    um_memacct_unref(x);
    um_memacct_unref(y);
    um_memacct_unref(z);
    um_memacct_unref(capped);
}

static size_t drain_events(um_mux_t *m, int *resets_overloaded)
{
    um_mux_event_t ev;
    size_t n = 0;
    while (um_mux_poll(m, &ev)) {
        n++;
        if (ev.type == UM_MUX_EV_RESET && ev.code == UM_MUX_RST_OVERLOADED && resets_overloaded)
            (*resets_overloaded)++;
    }
    return n;
}

/* A client uploads on many streams to a server that does not read: the
 * server's account never passes its share, streams past it are refused with
 * RST 0x07, the windows do not grow; once the server reads, the withheld
 * credit follows and every byte arrives. */
static void test_mux_keeps_to_share(void **state)
{
    (void)state;
    enum { N = 96 };
    const uint64_t cap = 4 * MIB; /* the budget; this client's share while alone */
    um_membudget_t b;
    um_membudget_init(&b, cap, 0, 0);
    um_memacct_t *acct = um_memacct_new(&b, 0);
    um_mux_config_t sc;
    um_mux_config_default(&sc);
    sc.max_pending_opens = N;
    sc.mem = acct;
    pair_t p;
    pair_init(&p, NULL, &sc, 11);
    um_memacct_unref(acct); /* the mux holds its own reference */
    assert_int_equal(b.active, 1);
    um_addr_t d = test_dest();
    uint32_t id[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &id[i]), 0);
    pair_settle(&p);
    um_mux_event_t ev;
    size_t accepted = 0;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED) {
            assert_int_equal(um_mux_stream_accept(p.m[1], ev.id, UM_MUX_OK), 0);
            accepted++;
        }
    pair_settle(&p);
    int refused = 0;
    drain_events(p.m[0], &refused);
    /* 4 MiB / 64 KiB initial windows: at most 64 fit, each accepted one
     * gets its 256 KiB window only while the share allows. */
    assert_true(accepted >= 2 && accepted < N);
    assert_int_equal((size_t)refused, N - accepted);
    um_mux_stats_t st;
    um_mux_get_stats(p.m[1], &st);
    assert_int_equal(st.opens_over_budget, (uint64_t)refused);

    static uint8_t blob[65536];
    memset(blob, 'u', sizeof(blob));
    uint64_t sent[N] = {0}, got[N] = {0};
    uint64_t t = 1, peak = 0;
    for (int round = 0; round < 300; round++, t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        for (int i = 0; i < N; i++) {
            size_t acc = 0;
            if (um_mux_stream_write(p.m[0], id[i], blob, sizeof(blob), &acc) == 0) sent[i] += acc;
        }
        pair_settle(&p);
        drain_events(p.m[0], NULL);
        drain_events(p.m[1], NULL);
        if (acct->used > peak) peak = acct->used;
    }
    assert_true(peak <= cap);
    uint64_t sum_sent = 0;
    for (int i = 0; i < N; i++) {
        um_mux_stream_info_t in;
        if (um_mux_stream_info(p.m[1], id[i], &in) != 0) continue;
        assert_true(in.rx_window <= 256 * 1024); /* never grew */
        sum_sent += sent[i];
    }
    assert_true(sum_sent > 0);

    /* A second client becomes active: this one's share halves, so it is
     * over it. The server reads, the client stops writing: every byte
     * written to an accepted stream arrives, though grants are withheld
     * (and given at the ticks once reading brought it under its share). */
    um_memacct_t *other = um_memacct_new(&b, 0);
    um_memacct_attach(other);
    assert_int_equal(um_memacct_share(acct), cap / 2);
    for (int i = 0; i < N; i++)
        um_mux_stream_shutdown(p.m[0], id[i]);
    static uint8_t out[65536];
    for (int round = 0; round < 2000; round++, t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        bool any = false;
        for (int i = 0; i < N; i++) {
            size_t n = 0;
            int r;
            while ((r = um_mux_stream_read(p.m[1], id[i], out, sizeof(out), &n)) == 0) {
                got[i] += n;
                any = true;
            }
            if (r == UM_EPIPE) um_mux_stream_shutdown(p.m[1], id[i]); /* frees it, once out */
        }
        pair_settle(&p);
        drain_events(p.m[0], NULL);
        drain_events(p.m[1], NULL);
        if (acct->used > peak) peak = acct->used;
        if (!any && um_mux_stream_count(p.m[1]) == 0) break;
    }
    assert_true(peak <= cap);
    um_mux_get_stats(p.m[1], &st);
    assert_true(st.grants_withheld > 0);
    for (int i = 0; i < N; i++)
        if (got[i]) assert_int_equal(got[i], sent[i]);
    assert_int_equal(um_mux_stream_count(p.m[1]), 0);
    assert_int_equal(acct->used, 0);
    um_memacct_detach(other);
    um_memacct_unref(other);
    pair_free(&p);
    assert_int_equal(b.used, 0);
    assert_int_equal(b.active, 0);
}

/* The send side: while the peer's window is closed a stream says it is full
 * once it holds more than a little beyond the window. */
static void test_tx_full_when_window_closed(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 5);
    um_addr_t d = test_dest();
    uint32_t id;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &id), 0);
    pair_settle(&p);
    um_mux_event_t ev;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED) um_mux_stream_accept(p.m[1], ev.id, UM_MUX_OK);
    pair_settle(&p);
    static uint8_t blob[16384];
    memset(blob, 'd', sizeof(blob));
    um_mux_stream_info_t in;
    /* The client never reads: write from the server until it says full. */
    int writes = 0;
    for (; writes < 1000; writes++) {
        assert_int_equal(um_mux_stream_info(p.m[1], id, &in), 0);
        if (in.tx_full) break;
        size_t acc;
        assert_int_equal(um_mux_stream_write(p.m[1], id, blob, sizeof(blob), &acc), 0);
        pair_settle(&p);
    }
    assert_true(in.tx_full);
    assert_int_equal(in.tx_credit, 0);
    assert_true(in.tx_buffered <= 16384 + sizeof(blob));
    /* The client reads: the window opens and the stream is not full. */
    static uint8_t out[65536];
    size_t n;
    while (um_mux_stream_read(p.m[0], id, out, sizeof(out), &n) == 0)
        ;
    pair_settle(&p);
    assert_int_equal(um_mux_stream_info(p.m[1], id, &in), 0);
    assert_false(in.tx_full);
    pair_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shares),
        cmocka_unit_test(test_mux_keeps_to_share),
        cmocka_unit_test(test_tx_full_when_window_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
