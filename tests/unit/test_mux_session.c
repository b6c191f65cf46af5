/* Mux semantics: half-close and reset in every order (table-driven), 0-RTT
 * open, open results, datagrams with and without loss of the association,
 * limits, go-away, keepalive and RTT, and hostile input (truncated,
 * oversized, garbage, unknown types, window overrun). */
#include "test_mux_pair.h"

#include "proxy/conn.h"

#include <stdio.h>

/* ---- half-close and reset table -------------------------------------- */

typedef struct {
    char data[2][64]; /* bytes read by side i */
    size_t len[2];
    int eof[2], rst[2], result[2], opened;
} record_t;

static void drain(pair_t *p, record_t *rec, int accept)
{
    um_mux_event_t ev;
    for (int side = 0; side < 2; side++)
        while (um_mux_poll(p->m[side], &ev)) {
            switch (ev.type) {
            case UM_MUX_EV_OPENED:
                rec->opened++;
                if (accept) assert_int_equal(um_mux_stream_accept(p->m[side], ev.id, UM_MUX_OK), 0);
                break;
            case UM_MUX_EV_RESET: rec->rst[side]++; break;
            case UM_MUX_EV_OPEN_RESULT: rec->result[side] = ev.code + 100; break;
            case UM_MUX_EV_ERROR: fail_msg("session error %d on side %d", ev.code, side); break;
            default: break;
            }
        }
}

static void read_side(pair_t *p, record_t *rec, int side, uint32_t id)
{
    for (int i = 0; i < 100; i++) {
        size_t got;
        int r = um_mux_stream_read(p->m[side], id, rec->data[side] + rec->len[side],
                                   sizeof(rec->data[side]) - 1 - rec->len[side], &got);
        if (r == 0) {
            rec->len[side] += got;
            continue;
        }
        if (r == UM_EPIPE)
            rec->eof[side] = 1;
        else
            assert_true(r == UM_EAGAIN || r == UM_ENOENT);
        return;
    }
}

static void pump(pair_t *p, record_t *rec, int accept, int server_first)
{
    for (int i = 0; i < 10; i++) {
        if (server_first) pair_move(p, 1, SIZE_MAX / 2);
        pair_settle(p);
        drain(p, rec, accept);
        if (!um_mux_want_pull(p->m[0]) && !um_mux_want_pull(p->m[1])) return;
    }
}

typedef struct {
    const char *name;
    int setup; /* 0: established first; 1: ops start before the OPEN is sent; 2: never accepted */
    const char *ops;
    const char *want_data[2];
    int want_eof[2];
    int want_rst[2];
} hc_row_t;

static const hc_row_t hc_rows[] = {
    {"fin/fin", 0, "cw cf P sw sf", {"resp", "req"}, {1, 1}, {0, 0}},
    {"server fin first", 0, "sw sf P cw cf", {"resp", "req"}, {1, 1}, {0, 0}},
    {"simultaneous fin", 0, "cw sw cf sf", {"resp", "req"}, {1, 1}, {0, 0}},
    {"fin, read, then more data", 0, "cf P sr sw P cr sw sf", {"respresp", ""}, {1, 1}, {0, 0}},
    {"0-rtt data+fin in OPEN", 1, "cw cf P sw sf", {"resp", "req"}, {1, 1}, {0, 0}},
    {"client fin, server reset", 0, "cw cf P sr srst", {"", "req"}, {0, 1}, {1, 0}},
    {"server fin, client reset", 0, "sw sf P cr crst", {"resp", ""}, {1, 0}, {0, 1}},
    {"client reset before send", 0, "cw crst", {"", ""}, {0, 0}, {0, 1}},
    {"client reset while server writes", 0, "cw P crst sw", {"", ""}, {0, 0}, {0, 1}},
    {"reset crosses data (server pumps first)", 0, "cw P crst sw S", {"", ""}, {0, 0}, {0, 1}},
    {"both reset at once", 0, "crst srst", {"", ""}, {0, 0}, {0, 0}},
    {"reset after both fin", 0, "cf sf P crst", {"", ""}, {0, 1}, {0, 0}},
    {"reset after half-close, data discarded", 0, "cf P sw P srst", {"", ""}, {0, 0}, {1, 0}},
    {"reset before OPEN is sent", 1, "cw crst", {"", ""}, {0, 0}, {0, 0}},
    {"reset before accept", 2, "cw P crst", {"", ""}, {0, 0}, {0, 1}},
};

static void run_hc_row(const hc_row_t *row)
{
    pair_t p;
    record_t rec;
    memset(&rec, 0, sizeof(rec));
    pair_init(&p, NULL, NULL, 42);
    um_addr_t d = test_dest();
    uint32_t id;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &id), 0);
    int accept = row->setup != 2;
    if (row->setup != 1) pump(&p, &rec, accept, 0);
    char ops[128];
    snprintf(ops, sizeof(ops), "%s", row->ops);
    for (char *save = NULL, *t = strtok_r(ops, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        int r = 0;
        if (!strcmp(t, "cw"))
            write_all(p.m[0], id, "req", 3);
        else if (!strcmp(t, "sw"))
            write_all(p.m[1], id, "resp", 4);
        else if (!strcmp(t, "cf"))
            r = um_mux_stream_shutdown(p.m[0], id);
        else if (!strcmp(t, "sf"))
            r = um_mux_stream_shutdown(p.m[1], id);
        else if (!strcmp(t, "crst"))
            r = um_mux_stream_reset(p.m[0], id, UM_MUX_RST_CANCEL);
        else if (!strcmp(t, "srst"))
            r = um_mux_stream_reset(p.m[1], id, UM_MUX_RST_CANCEL);
        else if (!strcmp(t, "cr"))
            read_side(&p, &rec, 0, id);
        else if (!strcmp(t, "sr"))
            read_side(&p, &rec, 1, id);
        else if (!strcmp(t, "P"))
            pump(&p, &rec, accept, 0);
        else if (!strcmp(t, "S"))
            pump(&p, &rec, accept, 1);
        else
            fail_msg("bad op %s", t);
        if (r) fail_msg("%s: op %s failed: %d", row->name, t, r);
    }
    pump(&p, &rec, accept, 0);
    read_side(&p, &rec, 0, id);
    read_side(&p, &rec, 1, id);
    pump(&p, &rec, accept, 0);
    for (int s = 0; s < 2; s++) {
        rec.data[s][rec.len[s]] = '\0';
        if (strcmp(rec.data[s], row->want_data[s]) || rec.eof[s] != row->want_eof[s] ||
            rec.rst[s] != row->want_rst[s])
            fail_msg("%s: side %d read '%s' eof %d rst %d; want '%s' eof %d rst %d", row->name, s,
                     rec.data[s], rec.eof[s], rec.rst[s], row->want_data[s], row->want_eof[s],
                     row->want_rst[s]);
    }
    /* nothing left behind on either side, the session still healthy */
    if (um_mux_stream_count(p.m[0]) || um_mux_stream_count(p.m[1]))
        fail_msg("%s: streams left: client %zu server %zu", row->name, um_mux_stream_count(p.m[0]),
                 um_mux_stream_count(p.m[1]));
    assert_int_equal(um_mux_error(p.m[0]), 0);
    assert_int_equal(um_mux_error(p.m[1]), 0);
    assert_int_equal(p.feed_err[0] | p.feed_err[1], 0);
    pair_free(&p);
}

static void test_halfclose_reset_table(void **state)
{
    for (size_t i = 0; i < sizeof(hc_rows) / sizeof(hc_rows[0]); i++)
        run_hc_row(&hc_rows[i]);
}

/* ---- opens --------------------------------------------------------------- */

static void test_zero_rtt_open_carries_data(void **state)
{
    um_mux_t *c = um_mux_new(UM_MUX_CLIENT, NULL);
    um_addr_t d = test_dest();
    uint32_t id;
    uint8_t buf[16384];
    assert_int_equal(um_mux_stream_open(c, &d, &id), 0);
    assert_int_equal(id, 1);
    write_all(c, id, "GET / HTTP/1.1\r\n\r\n", 18);
    size_t n = um_mux_pull(c, buf, sizeof(buf));
    /* skip the session window grant, then the OPEN carries the bytes */
    um_mux_frame_t f;
    size_t used, off = 0;
    int seen_open = 0;
    while (off < n) {
        assert_int_equal(um_mux_frame_decode(buf + off, n - off, &f, &used), 0);
        if (f.type == UM_MUX_OPEN) {
            seen_open = 1;
            assert_int_equal(f.data_len, 18);
            assert_memory_equal(f.data, "GET / HTTP/1.1\r\n\r\n", 18);
            assert_true(um_addr_equal(&f.addr, &d));
        }
        assert_int_not_equal(f.type, UM_MUX_DATA);
        off += used;
    }
    assert_true(seen_open);
    um_mux_free(c);
}

/* The relays above the mux (tunnel/conn.c) read a destination 64 KiB at a
 * time and pause only once a stream holds more than UM_CONN_HIGH_WATER; the
 * default send buffer must take the read that crosses that mark whole, or
 * its tail is copied into the tunnel's pending buffer and copied again
 * later (8 parallel downloads: 6% of the server's CPU). */
static void test_send_buffer_takes_a_read_above_high_water(void **state)
{
    (void)state;
    um_mux_t *c = um_mux_new(UM_MUX_CLIENT, NULL);
    um_addr_t d = test_dest();
    uint32_t id;
    static uint8_t chunk[64 * 1024];
    assert_int_equal(um_mux_stream_open(c, &d, &id), 0);
    size_t queued = 0, acc = 0;
    while (queued <= UM_CONN_HIGH_WATER) { /* nothing pulled: all of it stays queued */
        assert_int_equal(um_mux_stream_write(c, id, chunk, sizeof(chunk), &acc), 0);
        assert_int_equal(acc, sizeof(chunk));
        queued += acc;
    }
    um_mux_free(c);
}

static void test_open_refused(void **state)
{
    pair_t p;
    pair_init(&p, NULL, NULL, 7);
    um_addr_t d = test_dest();
    uint32_t id;
    um_mux_event_t ev;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &id), 0);
    write_all(p.m[0], id, "hello", 5);
    pair_settle(&p);
    assert_true(pair_expect(&p, 1, UM_MUX_EV_OPENED, &ev));
    assert_int_equal(ev.id, id);
    assert_true(um_addr_equal(&ev.addr, &d));
    assert_int_equal(um_mux_stream_accept(p.m[1], id, UM_MUX_ERR_HOST_NOT_FOUND), 0);
    assert_int_equal(um_mux_stream_count(p.m[1]), 0);
    pair_settle(&p);
    assert_true(pair_expect(&p, 0, UM_MUX_EV_OPEN_RESULT, &ev));
    assert_int_equal(ev.code, UM_MUX_ERR_HOST_NOT_FOUND);
    assert_int_equal(um_mux_result_socks5((uint8_t)ev.code), 4);
    assert_int_equal(um_mux_stream_count(p.m[0]), 0);
    size_t acc;
    assert_int_equal(um_mux_stream_write(p.m[0], id, "x", 1, &acc), UM_ENOENT);
    pair_free(&p);
}

/* ---- datagrams ------------------------------------------------------------ */

static void test_datagrams(void **state)
{
    pair_t p;
    um_mux_config_t sc;
    um_mux_config_default(&sc);
    sc.max_assocs = 2;
    pair_init(&p, NULL, &sc, 9);
    um_addr_t dns;
    memset(&dns, 0, sizeof(dns));
    dns.type = UM_ADDR_IPV4;
    dns.u.v4[0] = 127;
    dns.u.v4[3] = 53;
    dns.port = 53;
    uint32_t a;
    um_mux_event_t ev;
    assert_int_equal(um_mux_assoc_open(p.m[0], &a), 0);
    assert_int_equal(um_mux_dgram_send(p.m[0], a, &dns, "q1", 2), 0);
    assert_int_equal(um_mux_dgram_send(p.m[0], a, &dns, NULL, 0), 0);
    uint8_t big[UM_MUX_FRAME_MAX];
    memset(big, 0xab, sizeof(big));
    assert_int_equal(um_mux_dgram_send(p.m[0], a, &dns, big, UM_MUX_FRAME_MAX - 7), 0);
    assert_int_equal(um_mux_dgram_send(p.m[0], a, &dns, big, UM_MUX_FRAME_MAX - 6), UM_EMSGSIZE);
    pair_settle(&p);
    assert_true(pair_expect(&p, 1, UM_MUX_EV_DGRAM, &ev));
    assert_int_equal(ev.id, a);
    assert_int_equal(ev.len, 2);
    assert_memory_equal(ev.data, "q1", 2);
    assert_true(um_addr_equal(&ev.addr, &dns));
    assert_true(pair_expect(&p, 1, UM_MUX_EV_DGRAM, &ev));
    assert_int_equal(ev.len, 0);
    assert_true(pair_expect(&p, 1, UM_MUX_EV_DGRAM, &ev));
    assert_int_equal(ev.len, UM_MUX_FRAME_MAX - 7);
    assert_memory_equal(ev.data, big, ev.len);
    /* the server answers on the same association */
    assert_int_equal(um_mux_dgram_send(p.m[1], a, &dns, "r1", 2), 0);
    pair_settle(&p);
    assert_true(pair_expect(&p, 0, UM_MUX_EV_DGRAM, &ev));
    assert_memory_equal(ev.data, "r1", 2);

    /* loss of the association: the server closes it while a datagram is in flight */
    assert_int_equal(um_mux_dgram_send(p.m[0], a, &dns, "late", 4), 0);
    assert_int_equal(um_mux_assoc_close(p.m[1], a), 0);
    assert_int_equal(um_mux_dgram_send(p.m[1], a, &dns, "x", 1), UM_EPIPE);
    pair_settle(&p);
    assert_false(pair_expect(&p, 1, UM_MUX_EV_DGRAM, NULL)); /* dropped, counted */
    um_mux_stats_t st;
    um_mux_get_stats(p.m[1], &st);
    assert_int_equal(st.dgram_dropped_in, 1);
    assert_true(pair_expect(&p, 0, UM_MUX_EV_ASSOC_CLOSED, &ev));
    assert_int_equal(ev.id, a);
    assert_int_equal(um_mux_dgram_send(p.m[0], a, &dns, "y", 1), UM_EPIPE);

    /* a new association works; the server's limit of 2 refuses the third */
    uint32_t b, c, e;
    assert_int_equal(um_mux_assoc_open(p.m[0], &b), 0);
    assert_int_equal(um_mux_assoc_open(p.m[0], &c), 0);
    assert_int_equal(um_mux_assoc_open(p.m[0], &e), 0);
    assert_int_equal(um_mux_dgram_send(p.m[0], b, &dns, "b", 1), 0);
    assert_int_equal(um_mux_dgram_send(p.m[0], c, &dns, "c", 1), 0);
    assert_int_equal(um_mux_dgram_send(p.m[0], e, &dns, "e", 1), 0);
    pair_settle(&p);
    int got = 0;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_DGRAM) got++;
    assert_int_equal(got, 2);
    assert_true(pair_expect(&p, 0, UM_MUX_EV_ASSOC_CLOSED, &ev));
    assert_int_equal(ev.id, e);

    /* streams are untouched by all of this */
    um_addr_t d = test_dest();
    uint32_t id;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &id), 0);
    write_all(p.m[0], id, "ok", 2);
    pair_settle(&p);
    assert_true(pair_expect(&p, 1, UM_MUX_EV_OPENED, &ev));
    assert_int_equal(um_mux_error(p.m[0]) | um_mux_error(p.m[1]), 0);
    pair_free(&p);
}

static void test_dgram_queue_full(void **state)
{
    um_mux_config_t cc;
    um_mux_config_default(&cc);
    cc.dgram_queue_max = 4096;
    um_mux_t *c = um_mux_new(UM_MUX_CLIENT, &cc);
    um_addr_t d = test_dest();
    uint32_t a;
    uint8_t pl[1000] = {0}, out[65536];
    assert_int_equal(um_mux_assoc_open(c, &a), 0);
    int ok = 0, r;
    while ((r = um_mux_dgram_send(c, a, &d, pl, sizeof(pl))) == 0)
        ok++;
    assert_int_equal(r, UM_ENOSPC);
    assert_true(ok >= 3 && ok <= 4);
    um_mux_stats_t st;
    um_mux_get_stats(c, &st);
    assert_int_equal(st.dgram_dropped_out, 1);
    while (um_mux_pull(c, out, sizeof(out)) > 0) {
    }
    assert_int_equal(um_mux_dgram_send(c, a, &d, pl, sizeof(pl)), 0);
    um_mux_free(c);
}

/* ---- limits, go-away ------------------------------------------------------ */

static void test_limits(void **state)
{
    pair_t p;
    um_mux_config_t cc, sc;
    um_mux_config_default(&cc);
    um_mux_config_default(&sc);
    cc.max_streams = 7;
    sc.max_streams = 4;
    sc.max_pending_opens = 2;
    pair_init(&p, &cc, &sc, 11);
    um_addr_t d = test_dest();
    uint32_t id[8];
    um_mux_event_t ev;
    for (int i = 0; i < 4; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &id[i]), 0);
    pair_settle(&p);
    int opened = 0, reset = 0;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED) opened++;
    assert_int_equal(opened, 2); /* pending-open limit */
    while (um_mux_poll(p.m[0], &ev))
        if (ev.type == UM_MUX_EV_RESET) {
            assert_int_equal(ev.code, UM_MUX_RST_REFUSED);
            assert_true(ev.id == id[2] || ev.id == id[3]);
            reset++;
        }
    assert_int_equal(reset, 2);
    assert_int_equal(um_mux_stream_accept(p.m[1], id[0], UM_MUX_OK), 0);
    assert_int_equal(um_mux_stream_accept(p.m[1], id[1], UM_MUX_OK), 0);
    for (int i = 4; i < 7; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &id[i]), 0);
    /* the client's own limit: 2 live + 3 new = 5 of 7; two more allowed */
    uint32_t x;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &x), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &x), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &x), UM_ELIMIT);
    pair_settle(&p);
    opened = reset = 0;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED) opened++;
    while (um_mux_poll(p.m[0], &ev))
        if (ev.type == UM_MUX_EV_RESET) reset++;
    assert_int_equal(opened, 2); /* server max_streams: 2 + 2 */
    assert_int_equal(reset, 3);
    assert_int_equal(um_mux_stream_count(p.m[1]), 4);
    um_mux_stats_t st;
    um_mux_get_stats(p.m[1], &st);
    assert_int_equal(st.opens_refused, 5);
    assert_int_equal(um_mux_error(p.m[0]) | um_mux_error(p.m[1]), 0);
    pair_free(&p);
}

static void test_goaway(void **state)
{
    pair_t p;
    pair_init(&p, NULL, NULL, 13);
    um_addr_t d = test_dest();
    uint32_t a, b, c;
    um_mux_event_t ev;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &a), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &b), 0);
    pair_settle(&p);
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED) um_mux_stream_accept(p.m[1], ev.id, UM_MUX_OK);
    pair_settle(&p);
    /* C is opened while the server's GOAWAY is on its way */
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &c), 0);
    write_all(p.m[0], c, "lost", 4);
    assert_int_equal(um_mux_goaway(p.m[1], UM_MUX_GOAWAY_NORMAL), 0);
    pair_settle(&p);
    int got_goaway = 0, c_reset = 0;
    while (um_mux_poll(p.m[0], &ev)) {
        if (ev.type == UM_MUX_EV_GOAWAY) {
            got_goaway = 1;
            assert_int_equal(ev.value, b);
        }
        if (ev.type == UM_MUX_EV_RESET) {
            assert_int_equal(ev.id, c);
            assert_int_equal(ev.code, UM_MUX_RST_GOING_AWAY);
            c_reset = 1;
        }
    }
    assert_true(got_goaway && c_reset);
    assert_false(pair_expect(&p, 1, UM_MUX_EV_OPENED, NULL));
    uint32_t x;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &x), UM_EPIPE);
    assert_false(um_mux_done(p.m[0]));
    /* open streams finish normally */
    uint32_t ids[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        write_all(p.m[0], ids[i], "bye", 3);
        write_all(p.m[1], ids[i], "ok", 2);
        um_mux_stream_shutdown(p.m[0], ids[i]);
        um_mux_stream_shutdown(p.m[1], ids[i]);
    }
    pair_settle(&p);
    for (int i = 0; i < 2; i++) {
        char buf[8];
        size_t got;
        assert_int_equal(um_mux_stream_read(p.m[1], ids[i], buf, sizeof(buf), &got), 0);
        assert_int_equal(got, 3);
        assert_int_equal(um_mux_stream_read(p.m[1], ids[i], buf, sizeof(buf), &got), UM_EPIPE);
        assert_int_equal(um_mux_stream_read(p.m[0], ids[i], buf, sizeof(buf), &got), 0);
        assert_int_equal(got, 2);
        assert_int_equal(um_mux_stream_read(p.m[0], ids[i], buf, sizeof(buf), &got), UM_EPIPE);
    }
    pair_settle(&p);
    assert_true(um_mux_done(p.m[0]));
    assert_true(um_mux_done(p.m[1]));
    assert_int_equal(um_mux_error(p.m[0]) | um_mux_error(p.m[1]), 0);
    pair_free(&p);
}

/* ---- keepalive ------------------------------------------------------------ */

static void test_keepalive_rtt_and_timeout(void **state)
{
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.ping_interval_ms = 1000;
    c.ping_timeout_ms = 3000;
    pair_t p;
    pair_init(&p, &c, &c, 17);
    p.rechunk = 0;
    uint64_t t = 1000000;
    um_mux_event_t ev;
    /* alive: 100 s of simulated time with the pipe working, no timeout */
    for (int i = 0; i < 1000; i++, t += 100) {
        assert_int_equal(um_mux_tick(p.m[0], t), 0);
        assert_int_equal(um_mux_tick(p.m[1], t), 0);
        pair_settle(&p);
    }
    assert_true(pair_expect(&p, 0, UM_MUX_EV_PONG, &ev));
    /* a 40 ms round trip: PING out at t, answered at t + 20, PONG in at t + 40 */
    t += 1000;
    assert_int_equal(um_mux_tick(p.m[0], t), 0);
    pair_move(&p, 0, SIZE_MAX / 2);
    um_mux_tick(p.m[1], t + 20);
    size_t n = um_mux_pull(p.m[1], p.buf, p.bufcap);
    assert_true(n > 0);
    um_mux_tick(p.m[0], t + 40);
    assert_int_equal(um_mux_feed(p.m[0], p.buf, n), 0);
    int sample = -1;
    while (um_mux_poll(p.m[0], &ev))
        if (ev.type == UM_MUX_EV_PONG) sample = (int)ev.value;
    assert_int_equal(sample, 40);
    assert_true(um_mux_rtt_ms(p.m[0]) <= 40);
    /* the server dies: nothing arrives any more. Detected within the timeout. */
    uint64_t last = t + 40;
    int r = 0;
    for (t = last; t <= last + 3000 && r == 0; t += 10) {
        r = um_mux_tick(p.m[0], t);
        uint8_t out[256];
        if (r == 0) um_mux_pull(p.m[0], out, sizeof(out)); /* pings go nowhere */
    }
    assert_int_equal(r, UM_ETIMEDOUT);
    assert_true(t - 10 - last >= 3000 && t - 10 - last <= 3000);
    assert_true(pair_expect(&p, 0, UM_MUX_EV_ERROR, &ev));
    assert_int_equal(ev.code, UM_ETIMEDOUT);
    uint8_t out[64];
    um_mux_frame_t f;
    size_t used;
    n = um_mux_pull(p.m[0], out, sizeof(out));
    assert_int_equal(um_mux_frame_decode(out, n, &f, &used), 0);
    assert_int_equal(f.type, UM_MUX_GOAWAY);
    assert_int_equal(f.code, UM_MUX_GOAWAY_TIMEOUT);
    pair_free(&p);
}

/* ---- hostile input -------------------------------------------------------- */

static size_t enc(uint8_t *out, const um_mux_frame_t *f)
{
    size_t w;
    assert_int_equal(um_mux_frame_encode(f, out, UM_MUX_HDR + UM_MUX_FRAME_MAX, &w), 0);
    return w;
}

/* Feeds bytes in 1..7-byte pieces; returns the first error. */
static int feed_slowly(um_mux_t *m, const uint8_t *p, size_t n)
{
    size_t off = 0, k = 1;
    while (off < n) {
        size_t c = k < n - off ? k : n - off;
        int r = um_mux_feed(m, p + off, c);
        if (r) return r;
        off += c;
        k = k % 7 + 1;
    }
    return 0;
}

static void expect_goaway(um_mux_t *m, uint8_t code)
{
    uint8_t out[64];
    um_mux_frame_t f;
    size_t used;
    um_mux_event_t ev;
    size_t n = um_mux_pull(m, out, sizeof(out));
    assert_int_equal(um_mux_frame_decode(out, n, &f, &used), 0);
    assert_int_equal(f.type, UM_MUX_GOAWAY);
    assert_int_equal(f.code, code);
    assert_int_equal(used, n);
    assert_int_equal(um_mux_pull(m, out, sizeof(out)), 0);
    int err = 0;
    while (um_mux_poll(m, &ev))
        if (ev.type == UM_MUX_EV_ERROR) err = 1;
    assert_true(err);
}

static void test_truncated_and_eof(void **state)
{
    uint8_t buf[UM_MUX_HDR + UM_MUX_FRAME_MAX];
    um_addr_t d = test_dest();
    um_mux_frame_t o = {
        .type = UM_MUX_OPEN, .id = 1, .addr = d, .data = (const uint8_t *)"abc", .data_len = 3};
    size_t n = enc(buf, &o);
    for (size_t cut = 1; cut < n; cut++) {
        um_mux_t *s = um_mux_new(UM_MUX_SERVER, NULL);
        assert_int_equal(feed_slowly(s, buf, cut), 0);
        assert_int_equal(um_mux_feed_eof(s), UM_EPROTO);
        assert_int_equal(um_mux_feed(s, buf, 1), UM_EPROTO);
        expect_goaway(s, UM_MUX_GOAWAY_PROTOCOL);
        um_mux_free(s);
    }
    um_mux_t *s = um_mux_new(UM_MUX_SERVER, NULL);
    assert_int_equal(um_mux_feed(s, buf, n), 0);
    assert_int_equal(um_mux_feed_eof(s), UM_EPIPE);
    assert_int_equal(um_mux_stream_count(s), 0);
    um_mux_free(s);
}

static void test_oversized_and_bad_frames(void **state)
{
    const uint8_t oversized[] = {0x00, 0x00, 0x40, 0x01, 0, 0, 0, 1};
    const uint8_t unknown[] = {0x0c, 0x00, 0x00, 0x00, 0, 0, 0, 0};
    const uint8_t open_even[] = {0x01, 0, 0, 7, 0, 0, 0, 2, 1, 127, 0, 0, 1, 0, 80};
    const uint8_t data_unopened[] = {0x00, 0, 0, 1, 0, 0, 0, 9, 'x'};
    const uint8_t open_twice[] = {0x01, 0, 0, 7, 0, 0, 0, 1, 1, 127, 0, 0, 1, 0, 80,
                                  0x01, 0, 0, 7, 0, 0, 0, 1, 1, 127, 0, 0, 1, 0, 80};
    const uint8_t goaway_bad[] = {0x08, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    const struct {
        const uint8_t *p;
        size_t n;
    } t[] = {{oversized, sizeof(oversized)},   {unknown, sizeof(unknown)},
             {open_even, sizeof(open_even)},   {data_unopened, sizeof(data_unopened)},
             {open_twice, sizeof(open_twice)}, {goaway_bad, sizeof(goaway_bad)}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        um_mux_t *s = um_mux_new(UM_MUX_SERVER, NULL);
        int r = feed_slowly(s, t[i].p, t[i].n);
        if (r != UM_EPROTO) fail_msg("case %zu: feed returned %d", i, r);
        expect_goaway(s, UM_MUX_GOAWAY_PROTOCOL);
        um_mux_free(s);
    }
}

static void test_ignorable_type_is_skipped(void **state)
{
    um_mux_t *s = um_mux_new(UM_MUX_SERVER, NULL);
    uint8_t buf[256];
    um_mux_frame_t x = {
        .type = 0x9c, .flags = 3, .id = 77, .data = (const uint8_t *)"ext", .data_len = 3};
    um_mux_frame_t ping = {.type = UM_MUX_PING, .value = 5, .ts = 99};
    size_t n = enc(buf, &x);
    n += enc(buf + n, &ping);
    assert_int_equal(feed_slowly(s, buf, n), 0);
    um_mux_stats_t st;
    um_mux_get_stats(s, &st);
    assert_int_equal(st.frames_ignored, 1);
    uint8_t out[256];
    size_t k = um_mux_pull(s, out, sizeof(out)), used, off = 0;
    um_mux_frame_t f;
    int pong = 0;
    while (off < k) {
        assert_int_equal(um_mux_frame_decode(out + off, k - off, &f, &used), 0);
        if (f.type == UM_MUX_PONG && f.value == 5 && f.ts == 99) pong = 1;
        off += used;
    }
    assert_true(pong);
    um_mux_free(s);
}

static void test_window_overrun(void **state)
{
    uint8_t buf[UM_MUX_HDR + UM_MUX_FRAME_MAX], data[UM_MUX_FRAME_MAX];
    memset(data, 'z', sizeof(data));
    um_addr_t d = test_dest();
    /* stream window: 64 KiB before any grant */
    um_mux_t *s = um_mux_new(UM_MUX_SERVER, NULL);
    um_mux_frame_t o = {.type = UM_MUX_OPEN, .id = 1, .addr = d};
    assert_int_equal(um_mux_feed(s, buf, enc(buf, &o)), 0);
    um_mux_frame_t f = {.type = UM_MUX_DATA, .id = 1, .data = data, .data_len = 16384};
    for (int i = 0; i < 4; i++)
        assert_int_equal(um_mux_feed(s, buf, enc(buf, &f)), 0);
    f.data_len = 1;
    assert_int_equal(um_mux_feed(s, buf, enc(buf, &f)), UM_EPROTO);
    expect_goaway(s, UM_MUX_GOAWAY_FLOW_CONTROL);
    um_mux_free(s);

    /* Session window: buffered bytes are credited back to the session as
     * they arrive, so five streams that fill their 64 KiB windows (320 KiB)
     * without a read do not overrun a 256 KiB session window. */
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.session_window_init = UM_MUX_INIT_SESSION_WINDOW;
    s = um_mux_new(UM_MUX_SERVER, &c);
    size_t sent = 0;
    for (uint32_t id = 1; id <= 9; id += 2) {
        o.id = id;
        assert_int_equal(um_mux_feed(s, buf, enc(buf, &o)), 0);
        f.id = id;
        f.data_len = 16384;
        for (int i = 0; i < 4; i++) {
            assert_int_equal(um_mux_feed(s, buf, enc(buf, &f)), 0);
            sent += 16384;
        }
    }
    assert_true(sent > UM_MUX_INIT_SESSION_WINDOW);
    um_mux_free(s);
}

/* 16 streams whose reader never reads hold their own windows, not the
 * session's: a new stream still moves 1 MiB (audit item 1). Before the
 * session was credited on receipt, the 16 x 256 KiB held the 1 MiB session
 * window and the new stream got nothing. */
static void test_stuck_streams_do_not_starve_session(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 7);
    um_addr_t d = test_dest();
    static uint8_t blob[65536];
    memset(blob, 'b', sizeof(blob));
    uint32_t stuck[16], fresh;
    for (int i = 0; i < 16; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &stuck[i]), 0);
    pair_settle(&p);
    um_mux_event_t ev;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED)
            assert_int_equal(um_mux_stream_accept(p.m[1], ev.id, UM_MUX_OK), 0);
    /* The server writes to every stuck stream until nothing more moves. */
    uint64_t t = 1;
    for (int round = 0; round < 200; round++, t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        for (int i = 0; i < 16; i++) {
            size_t acc;
            um_mux_stream_write(p.m[1], stuck[i], blob, sizeof(blob), &acc);
        }
        pair_settle(&p);
    }
    size_t held = 0;
    for (int i = 0; i < 16; i++) {
        um_mux_stream_info_t in;
        assert_int_equal(um_mux_stream_info(p.m[0], stuck[i], &in), 0);
        assert_true(in.rx_buffered <= in.rx_window);
        held += in.rx_buffered;
    }
    assert_true(held >= 16u * 256 * 1024); /* every stuck window is full */
    /* A new stream: 1 MiB from the server must arrive whole. */
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &fresh), 0);
    pair_settle(&p);
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED)
            assert_int_equal(um_mux_stream_accept(p.m[1], ev.id, UM_MUX_OK), 0);
    size_t wrote = 0, got = 0;
    for (int round = 0; round < 2000 && got < (1u << 20); round++, t++) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        if (wrote < (1u << 20)) {
            size_t acc = 0, want = (1u << 20) - wrote;
            um_mux_stream_write(p.m[1], fresh, blob, want < sizeof(blob) ? want : sizeof(blob),
                                &acc);
            wrote += acc;
        }
        pair_settle(&p);
        static uint8_t rb[65536];
        size_t n;
        while (um_mux_stream_read(p.m[0], fresh, rb, sizeof(rb), &n) == 0)
            got += n;
    }
    assert_int_equal(got, 1u << 20);
    pair_free(&p);
}

/* A stream whose bytes wait without moving for stream_timeout_ms is reset
 * on both sides; one that is read stays. Both directions: a reader that
 * never reads (rx) and a peer that grants no window (tx). */
static void test_stream_progress_timeout(void **state)
{
    (void)state;
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.stream_timeout_ms = 5000;
    c.ping_interval_ms = 1000;
    pair_t p;
    pair_init(&p, &c, &c, 9);
    um_addr_t d = test_dest();
    uint32_t stuck, live, idle;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &stuck), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &live), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &idle), 0);
    pair_settle(&p);
    um_mux_event_t ev;
    while (um_mux_poll(p.m[1], &ev))
        if (ev.type == UM_MUX_EV_OPENED)
            assert_int_equal(um_mux_stream_accept(p.m[1], ev.id, UM_MUX_OK), 0);
    static uint8_t blob[16384];
    memset(blob, 'x', sizeof(blob));
    int reset_client = 0, reset_server = 0;
    for (uint64_t t = 1; t <= 20000; t += 100) {
        um_mux_tick(p.m[0], t);
        um_mux_tick(p.m[1], t);
        size_t acc, n;
        um_mux_stream_write(p.m[1], stuck, blob, sizeof(blob), &acc); /* never read */
        um_mux_stream_write(p.m[1], live, blob, 1024, &acc);          /* read below */
        pair_settle(&p);
        static uint8_t rb[65536];
        while (um_mux_stream_read(p.m[0], live, rb, sizeof(rb), &n) == 0) {
        }
        for (int side = 0; side < 2; side++)
            while (um_mux_poll(p.m[side], &ev))
                if (ev.type == UM_MUX_EV_RESET) {
                    assert_int_equal(ev.id, stuck);
                    if (side == 0) {
                        assert_int_equal(ev.code, UM_MUX_RST_STALLED); /* ours */
                        reset_client++;
                    } else {
                        reset_server++; /* the peer's RST */
                    }
                } else if (ev.type == UM_MUX_EV_ERROR) {
                    fail_msg("session error %d", ev.code);
                }
        if (t == 4000) assert_int_equal(reset_client, 0); /* not before the timeout */
    }
    assert_int_equal(reset_client, 1);
    assert_int_equal(reset_server, 1);
    um_mux_stream_info_t in;
    assert_int_equal(um_mux_stream_info(p.m[0], live, &in), 0);
    assert_int_equal(um_mux_stream_info(p.m[0], idle, &in), 0); /* nothing waiting: stays */
    assert_int_equal(um_mux_stream_info(p.m[0], stuck, &in), UM_ENOENT);
    um_mux_stats_t st;
    um_mux_get_stats(p.m[0], &st);
    assert_int_equal(st.streams_stalled, 1);
    pair_free(&p);
}

static void test_garbage(void **state)
{
    uint64_t rng = 12345;
    uint8_t buf[4096];
    int errors = 0, runs = 300;
    for (int i = 0; i < runs; i++) {
        um_mux_t *s = um_mux_new(i & 1 ? UM_MUX_SERVER : UM_MUX_CLIENT, NULL);
        size_t n = (size_t)rnd_range(&rng, 1, sizeof(buf));
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd(&rng);
        if (i % 3 == 0) buf[0] &= 0x0f; /* start on a plausible type */
        size_t off = 0;
        int r = 0;
        while (off < n && r == 0) {
            size_t k = (size_t)rnd_range(&rng, 1, 64);
            if (k > n - off) k = n - off;
            r = um_mux_feed(s, buf + off, k);
            off += k;
            uint8_t out[512];
            um_mux_pull(s, out, sizeof(out));
            um_mux_tick(s, off);
        }
        assert_true(r == 0 || r == UM_EPROTO || r == UM_ELIMIT);
        if (r == 0) r = um_mux_feed_eof(s);
        assert_true(r == UM_EPROTO || r == UM_EPIPE || r == UM_ELIMIT);
        if (r == UM_EPROTO) errors++;
        um_mux_free(s);
    }
    printf("garbage: %d of %d random inputs ended the session with UM_EPROTO\n", errors, runs);
    assert_true(errors > runs * 9 / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_halfclose_reset_table),
        cmocka_unit_test(test_zero_rtt_open_carries_data),
        cmocka_unit_test(test_open_refused),
        cmocka_unit_test(test_send_buffer_takes_a_read_above_high_water),
        cmocka_unit_test(test_datagrams),
        cmocka_unit_test(test_dgram_queue_full),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_goaway),
        cmocka_unit_test(test_keepalive_rtt_and_timeout),
        cmocka_unit_test(test_truncated_and_eof),
        cmocka_unit_test(test_oversized_and_bad_frames),
        cmocka_unit_test(test_ignorable_type_is_skipped),
        cmocka_unit_test(test_window_overrun),
        cmocka_unit_test(test_stuck_streams_do_not_starve_session),
        cmocka_unit_test(test_stream_progress_timeout),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
