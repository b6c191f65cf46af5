/* The resumption state machine at the session level (docs/PROTOCOL.md 3.6,
 * 3.7, 4.4), pure: a client session A and a server session B joined by
 * in-memory wires the test controls (drop, cut mid-record, delay, deliver
 * from the old connection after the new one exists), new keys from the real
 * handshake (um_hs_client_start with RESUME, um_hs_server_respond with the
 * gate's resume hook and registry, um_hs_client_finish), then
 * um_sess_resume on both ends with the offsets the handshake carried, as the
 * pre-auth core and the connector do. Every order of break, reconnect, ack
 * and delayed-ack timeout; two resumptions before any data moved; the short
 * reply; offsets outside [tx_acked, tx_high]; replay; unknown session or
 * another client's key; the per-key quota; a randomised run; and
 * um_sess_pull_limit (connection budgets). Both directions always carry
 * data, and at the end each side has read exactly what the other wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/record.h"
#include "session/gate.h"
#include "session/handshake.h"
#include "session/session.h"
#include "util/bytes.h"
#include "util/err.h"

#define PRO     ((const uint8_t *)UM_HS_PROLOGUE_TCP)
#define PRO_LEN (sizeof(UM_HS_PROLOGUE_TCP) - 1)
#define NOW     1700000000ull
#define FULL    UM_HS_MSG2_RESUME_MIN /* a reply with room for the server's offset */
#define SHORT   UM_HS_MSG2_MIN        /* RESUMED alone: resend from tx_acked */

static uint8_t ci[32], cp[32], c2i[32], c2p[32], si[32];

static uint64_t fake_ms = 1000;
static uint64_t fake_clock(void)
{
    return fake_ms;
}

/* Bytes in flight in one direction of one connection. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} wire_t;

typedef struct {
    wire_t up, down; /* client to server, server to client */
} conn_t;

static void wire_put(wire_t *w, const uint8_t *p, size_t n)
{
    if (w->n + n > w->cap) {
        size_t c = w->cap ? w->cap : 65536;
        while (c < w->n + n)
            c *= 2;
        w->p = realloc(w->p, c);
        assert_non_null(w->p);
        w->cap = c;
    }
    memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void wire_take(wire_t *w, size_t k)
{
    if (!k) return;
    memmove(w->p, w->p + k, w->n - k);
    w->n -= k;
}

static void conn_drop(conn_t *c)
{
    c->up.n = c->down.n = 0;
}

static void conn_free(conn_t *c)
{
    free(c->up.p);
    free(c->down.p);
    memset(c, 0, sizeof(*c));
}

/* One end: its session and the two byte streams it writes and reads. Byte i
 * of a stream is pat(seed, i), so loss, duplication and reordering all show
 * as a mismatch at a known offset. */
typedef struct {
    um_sess_t *s;
    uint8_t seed, pseed; /* its stream's and its peer's */
    uint64_t wrote, got;
} end_t;

static uint8_t pat(uint8_t seed, uint64_t off)
{
    uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull + seed * 0x632BE59BD9B4E019ull;
    x ^= x >> 31;
    x *= 0xD6E8FEB86659FD93ull;
    return (uint8_t)(x >> 40);
}

/* Writes up to n bytes of the stream (backpressure may take fewer). */
static size_t put(end_t *e, size_t n)
{
    uint8_t buf[4096];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
        for (size_t i = 0; i < k; i++)
            buf[i] = pat(e->seed, e->wrote + i);
        int r = um_sess_write(e->s, buf, k);
        if (r == UM_ENOSPC) break;
        assert_true(r > 0);
        e->wrote += (size_t)r;
        done += (size_t)r;
        if ((size_t)r < k) break;
    }
    return done;
}

/* Reads everything received and checks it against the peer's stream. */
static void get(end_t *e)
{
    uint8_t buf[16384];
    for (int i = 0; i < 1000; i++) {
        size_t n = um_sess_read(e->s, buf, sizeof(buf));
        if (!n) return;
        for (size_t j = 0; j < n; j++)
            if (buf[j] != pat(e->pseed, e->got + j))
                fail_msg("stream byte %llu: got %02x, want %02x", (unsigned long long)(e->got + j),
                         buf[j], pat(e->pseed, e->got + j));
        e->got += n;
    }
}

/* Everything e has to send onto w; returns wire bytes. */
static size_t pull(end_t *e, wire_t *w)
{
    static uint8_t buf[4 * UM_REC_WIRE_MAX];
    size_t n, total = 0;
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(um_sess_pull(e->s, buf, sizeof(buf), &n), 0);
        if (!n) break;
        wire_put(w, buf, n);
        total += n;
    }
    return total;
}

/* Feeds up to max bytes from the front of w into e (any cut, mid-record
 * included), reading as it goes. */
static size_t deliver(wire_t *w, end_t *e, size_t max)
{
    size_t k = max < w->n ? max : w->n, done = 0;
    for (int i = 0; done < k && i < 100000; i++) {
        size_t used = 0;
        assert_int_equal(um_sess_feed(e->s, w->p + done, k - done, &used), 0);
        done += used;
        get(e);
    }
    assert_int_equal(done, k);
    wire_take(w, done);
    get(e);
    return done;
}

/* Runs a connection until nothing moves, the delayed acks included (the fake
 * clock moves on when the wires are idle). */
static void settle(conn_t *c, end_t *a, end_t *b)
{
    int idle = 0;
    for (int i = 0; i < 10000 && idle < 2; i++) {
        size_t m = pull(a, &c->up) + pull(b, &c->down);
        m += deliver(&c->up, b, SIZE_MAX) + deliver(&c->down, a, SIZE_MAX);
        if (m) {
            idle = 0;
        } else {
            idle++;
            fake_ms += 25;
        }
    }
    assert_int_equal(idle, 2);
}

static void offsets(const end_t *e, um_sess_offsets_t *o)
{
    um_sess_offsets(e->s, o);
}

/* Both streams complete and intact, everything acknowledged. */
static void check_done(const end_t *a, const end_t *b)
{
    um_sess_offsets_t oa, ob;
    assert_int_equal(um_sess_error(a->s), 0);
    assert_int_equal(um_sess_error(b->s), 0);
    assert_true(a->wrote > 0 && b->wrote > 0); /* both directions carried data */
    assert_int_equal(a->got, b->wrote);
    assert_int_equal(b->got, a->wrote);
    offsets(a, &oa);
    offsets(b, &ob);
    assert_int_equal(oa.tx_queued, a->wrote);
    assert_int_equal(ob.tx_queued, b->wrote);
    assert_int_equal(oa.tx_acked, a->wrote);
    assert_int_equal(ob.tx_acked, b->wrote);
    assert_int_equal(oa.rx_next, b->wrote);
    assert_int_equal(ob.rx_next, a->wrote);
}

/* A client, the server's gate (authorised keys, replay filter, quota and the
 * resumable registry) and the session pair between them. */
typedef struct {
    um_gate_t *g;
    end_t a, b;
    um_resumable_t ent; /* b, listed for resumption */
    conn_t c;           /* the current connection */
    um_sess_cfg_t cfg;
} pair_t;

static um_gate_t *mkgate(uint32_t key_hs_per_min)
{
    um_keyset_t *ks = um_keyset_new();
    assert_int_equal(um_keyset_add(ks, cp), 0);
    assert_int_equal(um_keyset_add(ks, c2p), 0);
    um_gate_cfg_t gc = {.key_hs_per_min = key_hs_per_min};
    um_gate_t *g = NULL;
    assert_int_equal(um_gate_new(si, ks, 0, 0, true, &gc, &g), 0);
    um_keyset_unref(ks);
    return g;
}

/* A new session handshake of client key cpriv: 0 and both keys, or the
 * server's refusal. */
static int handshake_new(um_gate_t *g, const uint8_t *cpriv, um_sess_keys_t *ck, um_sess_keys_t *sk)
{
    um_hs_client_t hs;
    uint8_t m1[UM_HS_MSG_MAX], m2[UM_HS_MSG_MAX];
    size_t m1n, m2n;
    um_hs_client_opts_t o = {0};
    assert_int_equal(um_hs_client_start(&hs, PRO, PRO_LEN, cpriv, um_gate_hs(g)->s_pub, &o, NOW, 0,
                                        m1, sizeof(m1), &m1n),
                     0);
    int r = um_hs_server_respond(um_gate_hs(g), PRO, PRO_LEN, m1, m1n, NOW, FULL, m2, sizeof(m2),
                                 &m2n, sk);
    if (r) {
        um_hs_client_wipe(&hs);
        return r;
    }
    assert_int_equal(um_hs_client_finish(&hs, m2, m2n, ck), 0);
    assert_false(ck->resumed);
    assert_false(sk->resumed);
    return 0;
}

static void pair_open_g(pair_t *p, um_gate_t *g, size_t tx_max)
{
    um_sess_keys_t ck, sk;
    memset(p, 0, sizeof(*p));
    p->g = g;
    p->cfg.now_ms = fake_clock;
    p->cfg.tx_max = tx_max;
    assert_int_equal(handshake_new(g, ci, &ck, &sk), 0);
    p->a.s = um_sess_new(&ck, &p->cfg);
    p->b.s = um_sess_new(&sk, &p->cfg);
    assert_non_null(p->a.s);
    assert_non_null(p->b.s);
    assert_memory_equal(um_sess_id(p->a.s), um_sess_id(p->b.s), UM_SID_LEN);
    um_sess_keys_wipe(&ck);
    um_sess_keys_wipe(&sk);
    p->a.seed = p->b.pseed = 0x11;
    p->b.seed = p->a.pseed = 0xa7;
    (void)um_sess_events(p->a.s);
    (void)um_sess_events(p->b.s);
    /* The server's owner lists its session while it may be continued. */
    memcpy(p->ent.sid, um_sess_id(p->b.s), UM_SID_LEN);
    memcpy(p->ent.client, cp, 32);
    p->ent.sess = p->b.s;
    um_gate_add_resumable(g, &p->ent);
}

static void pair_open(pair_t *p, size_t tx_max)
{
    pair_open_g(p, mkgate(0), tx_max);
}

static void pair_close(pair_t *p)
{
    um_gate_del_resumable(p->g, &p->ent);
    um_sess_free(p->a.s);
    um_sess_free(p->b.s);
    um_gate_unref(p->g);
    conn_free(&p->c);
}

/* One resumption handshake, in the three steps whose order matters. */
typedef struct {
    um_hs_client_t hs;
    uint8_t m1[UM_HS_MSG_MAX], m2[UM_HS_MSG_MAX];
    size_t m1n, m2n;
    uint64_t offer; /* the client's received offset in message 1 */
    um_sess_keys_t ck, sk;
} rs_t;

static void rs_start_as(rs_t *x, const uint8_t *cpriv, const uint8_t *sid, uint64_t offer,
                        uint32_t budget)
{
    /* Move numbers only grow (PROTOCOL.md 3.6); one counter for every
     * session of the test is enough for that. */
    static uint32_t moves;
    um_hs_client_opts_t o = {
        .resume_sid = sid, .resume_offset = offer, .resume_move = ++moves, .budget = budget};
    uint8_t spub[32];
    memset(x, 0, sizeof(*x));
    x->offer = offer;
    crypto_scalarmult_base(spub, si);
    assert_int_equal(um_hs_client_start(&x->hs, PRO, PRO_LEN, cpriv, spub, &o, NOW, 0, x->m1,
                                        sizeof(x->m1), &x->m1n),
                     0);
}

/* The client writes message 1 naming its session with its rx offset now. */
static void rs_start(rs_t *x, pair_t *p)
{
    um_sess_offsets_t o;
    offsets(&p->a, &o);
    rs_start_as(x, ci, um_sess_id(p->a.s), o.rx_next, 0);
}

/* The server reads message 1 and, on RESUMED, resumes the listed session at
 * once, as the pre-auth core does (from then on it ignores the old wire). */
static int rs_respond(rs_t *x, pair_t *p, size_t reply_len)
{
    int r = um_hs_server_respond(um_gate_hs(p->g), PRO, PRO_LEN, x->m1, x->m1n, NOW, reply_len,
                                 x->m2, sizeof(x->m2), &x->m2n, &x->sk);
    if (r == 0 && x->sk.resumed) {
        um_resumable_t *e = um_gate_find_resumable(p->g, x->sk.resume_sid, x->sk.peer_static);
        assert_non_null(e);
        assert_int_equal(x->sk.resume_offset, x->offer);
        assert_int_equal(um_sess_resume(e->sess, &x->sk, x->sk.resume_offset), 0);
        um_gate_resumed(e, x->sk.resume_move, x->sk.timestamp);
    }
    return r;
}

/* The client reads message 2 and, on RESUMED, resumes as the connector does:
 * from the server's offset or, in a reply too short to carry it, from what
 * the server acknowledged. Returns whether the session continued. */
static bool rs_finish(rs_t *x, um_sess_t *s)
{
    assert_int_equal(um_hs_client_finish(&x->hs, x->m2, x->m2n, &x->ck), 0);
    if (!x->ck.resumed) return false;
    um_sess_offsets_t o;
    um_sess_offsets(s, &o);
    uint64_t peer = x->ck.resume_has_peer_rx ? x->ck.resume_peer_rx : o.tx_acked;
    assert_true(um_sess_resumable(s, peer));
    assert_int_equal(um_sess_resume(s, &x->ck, peer), 0);
    return true;
}

static void rs_wipe(rs_t *x)
{
    um_sess_keys_wipe(&x->ck);
    um_sess_keys_wipe(&x->sk);
    um_hs_client_wipe(&x->hs);
}

/* Break then reconnect at once: the old connection's bytes are gone. */
static void reconnect(pair_t *p, size_t reply_len)
{
    rs_t x;
    conn_drop(&p->c);
    rs_start(&x, p);
    assert_int_equal(rs_respond(&x, p, reply_len), 0);
    assert_true(x.sk.resumed);
    assert_true(rs_finish(&x, p->a.s));
    assert_int_equal(x.ck.resume_has_peer_rx, reply_len >= FULL);
    rs_wipe(&x);
}

static int setup(void **st)
{
    (void)st;
    um_crypto_init();
    um_key_generate(ci);
    um_key_public(cp, ci);
    um_key_generate(c2i);
    um_key_public(c2p, c2i);
    um_key_generate(si);
    return 0;
}

/* Break before anything was acknowledged: everything sealed on the old
 * connection is lost; both sides resend from offset 0. */
static void test_break_before_any_ack(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    for (int v = 0; v < 2; v++) {
        size_t reply = v ? SHORT : FULL;
        pair_open(&p, 0);
        put(&p.a, 50000);
        put(&p.b, 30000);
        pull(&p.a, &p.c.up);
        pull(&p.b, &p.c.down);
        offsets(&p.a, &o);
        assert_int_equal(o.tx_sent, 50000);
        assert_int_equal(o.tx_high, 50000);
        reconnect(&p, reply);
        offsets(&p.a, &o);
        assert_int_equal(o.tx_sent, 0); /* rewound to the server's offset */
        assert_int_equal(o.tx_high, 50000);
        offsets(&p.b, &o);
        assert_int_equal(o.tx_sent, 0);
        assert_int_equal(o.tx_high, 30000);
        put(&p.a, 7000);
        put(&p.b, 9000);
        settle(&p.c, &p.a, &p.b);
        check_done(&p.a, &p.b);
        pair_close(&p);
    }
}

/* Break after some acknowledgements: resend from the peer's offset, which is
 * above what was acknowledged (the acks of the last bytes were lost). */
static void test_break_after_some_acks(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    for (int v = 0; v < 2; v++) {
        pair_open(&p, 0);
        put(&p.a, 100000);
        put(&p.b, 60000);
        settle(&p.c, &p.a, &p.b); /* all of it arrives and is acknowledged */
        put(&p.a, 40000);
        put(&p.b, 25000);
        pull(&p.a, &p.c.up);
        pull(&p.b, &p.c.down);
        deliver(&p.c.up, &p.b, 20000); /* some arrive, unacknowledged */
        deliver(&p.c.down, &p.a, 9000);
        offsets(&p.a, &o);
        assert_int_equal(o.tx_acked, 100000);
        reconnect(&p, v ? SHORT : FULL);
        offsets(&p.a, &o);
        /* The full reply resends from what B has; the short one from the
         * last ack (the peer then drops what it has). */
        if (v == 0) {
            assert_true(o.tx_sent > 100000 && o.tx_sent < 140000);
            assert_int_equal(o.tx_acked, o.tx_sent);
        } else {
            assert_int_equal(o.tx_sent, 100000);
        }
        offsets(&p.b, &o);
        assert_int_equal(o.tx_sent, p.a.got); /* B resends from what A has */
        put(&p.a, 3000);
        put(&p.b, 3000);
        settle(&p.c, &p.a, &p.b);
        check_done(&p.a, &p.b);
        pair_close(&p);
    }
}

/* Break mid-record: a partial record sits in the receiver's input on both
 * ends; it is dropped, and the first record under the new keys opens. */
static void test_break_mid_record(void **st)
{
    pair_t p;
    pair_open(&p, 0);
    put(&p.a, 70000);
    put(&p.b, 50000);
    pull(&p.a, &p.c.up);
    pull(&p.b, &p.c.down);
    /* Two whole records and half of the third; and a cut in a header. */
    size_t rec = UM_REC_OVERHEAD + 19 + UM_SESS_DATA_MAX;
    deliver(&p.c.up, &p.b, 2 * rec + rec / 2);
    deliver(&p.c.down, &p.a, rec + 1);
    um_sess_offsets_t o;
    offsets(&p.b, &o);
    assert_int_equal(o.rx_next, 2 * UM_SESS_DATA_MAX);
    offsets(&p.a, &o);
    assert_int_equal(o.rx_next, UM_SESS_DATA_MAX);
    reconnect(&p, FULL);
    put(&p.a, 5000);
    put(&p.b, 5000);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* Break while B owes a delayed ack that the fake clock made due: the ack is
 * not lost, it goes out first on the new connection, under the new keys. */
static void test_break_with_ack_due(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    for (int v = 0; v < 3; v++) {
        pair_open(&p, 0);
        put(&p.a, 30000);
        put(&p.b, 1000);
        pull(&p.a, &p.c.up);
        pull(&p.b, &p.c.down);
        deliver(&p.c.up, &p.b, SIZE_MAX);
        deliver(&p.c.down, &p.a, SIZE_MAX);
        assert_false(um_sess_want_pull(p.b.s)); /* the ack waits for its timer */
        if (v == 0) {
            fake_ms += 25; /* due, not yet sent: the break comes first */
            assert_true(um_sess_want_pull(p.b.s));
        } else if (v == 1) {
            fake_ms += 25; /* due and sent, but on the old wire: lost */
            assert_true(pull(&p.b, &p.c.down) > 0);
        } else {
            fake_ms += 5; /* the timer is running across the switch */
        }
        reconnect(&p, v == 1 ? SHORT : FULL);
        /* Right after the switch both owe an ACK on the new connection. */
        assert_true(um_sess_want_pull(p.a.s));
        assert_true(um_sess_want_pull(p.b.s));
        assert_true(pull(&p.b, &p.c.down) > 0);
        deliver(&p.c.down, &p.a, SIZE_MAX);
        offsets(&p.a, &o);
        assert_int_equal(o.tx_acked, 30000);
        assert_int_equal(o.tx_sent, 30000); /* nothing to resend */
        assert_false(um_sess_want_pull(p.b.s));
        put(&p.a, 100);
        put(&p.b, 100);
        settle(&p.c, &p.a, &p.b);
        check_done(&p.a, &p.b);
        pair_close(&p);
    }
}

/* More data written while detached (before the new connection), and more
 * written between message 1 and message 2. */
static void test_reconnect_after_more_writes(void **st)
{
    pair_t p;
    pair_open(&p, 0);
    put(&p.a, 20000);
    put(&p.b, 20000);
    settle(&p.c, &p.a, &p.b);
    put(&p.a, 10000);
    put(&p.b, 10000);
    pull(&p.a, &p.c.up);
    pull(&p.b, &p.c.down);
    conn_drop(&p.c); /* broken */
    /* Detached: the application keeps writing; nothing is sent. */
    put(&p.a, 33333);
    put(&p.b, 44444);
    rs_t x;
    rs_start(&x, &p);
    put(&p.a, 1111);
    put(&p.b, 2222);
    assert_int_equal(rs_respond(&x, &p, FULL), 0);
    put(&p.a, 555);
    put(&p.b, 666);
    pull(&p.b, &p.c.down); /* B already sends on the new connection */
    assert_true(rs_finish(&x, p.a.s));
    rs_wipe(&x);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* Make-before-break: the client writes message 1 with its rx offset, then
 * records still arrive on the OLD connection (in both directions) before
 * message 2 and the switch. Whatever crossed is either received or sent
 * again, never lost, never duplicated. */
static void test_make_before_break(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    for (int v = 0; v < 4; v++) {
        conn_t old = {0};
        pair_open(&p, 0);
        put(&p.a, 40000);
        put(&p.b, 40000);
        settle(&p.c, &p.a, &p.b);
        put(&p.a, 60000);
        put(&p.b, 60000);
        pull(&p.a, &old.up);
        pull(&p.b, &old.down);
        deliver(&old.down, &p.a, 10000);
        rs_t x;
        rs_start(&x, &p); /* offers 40000 + what arrived so far */
        /* Still on the old wire: A reads more of B's data, and writes more
         * that B reads before it reads message 1 (v 1, 3). */
        deliver(&old.down, &p.a, v & 1 ? 20000 : 5);
        put(&p.a, 7000);
        pull(&p.a, &old.up);
        if (v & 1) deliver(&old.up, &p.b, 30000);
        offsets(&p.b, &o);
        uint64_t b_rx = o.rx_next;
        assert_int_equal(rs_respond(&x, &p, v & 2 ? SHORT : FULL), 0);
        assert_true(x.sk.resumed);
        offsets(&p.b, &o);
        assert_int_equal(o.tx_sent, x.offer); /* B resends what A had not at message 1 */
        /* B switched: it writes on the new connection only. What B sealed
         * on the old one before the switch may still reach A. */
        put(&p.b, 3000);
        pull(&p.b, &p.c.down);
        deliver(&old.down, &p.a, 12345);
        offsets(&p.a, &o);
        assert_true(o.rx_next > x.offer);
        assert_true(rs_finish(&x, p.a.s));
        if (v & 2) {
            assert_false(x.ck.resume_has_peer_rx);
        } else {
            assert_int_equal(x.ck.resume_peer_rx, b_rx);
            offsets(&p.a, &o);
            assert_int_equal(o.tx_sent, b_rx);
        }
        rs_wipe(&x);
        /* A's old-wire records after the switch are not B's to read. */
        conn_free(&old);
        settle(&p.c, &p.a, &p.b);
        check_done(&p.a, &p.b);
        pair_close(&p);
    }
}

/* The peer's ack of bytes it received on the old wire arrives after the
 * switch: above tx_sent (rewound by a short reply) but within tx_high, it is
 * accepted and nothing is resent twice. */
static void test_ack_after_switch(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    pair_open(&p, 0);
    put(&p.a, 40000);
    put(&p.b, 500);
    pull(&p.a, &p.c.up);
    pull(&p.b, &p.c.down);
    deliver(&p.c.up, &p.b, SIZE_MAX); /* all arrive; the acks are lost */
    deliver(&p.c.down, &p.a, SIZE_MAX);
    reconnect(&p, SHORT);
    offsets(&p.a, &o);
    assert_int_equal(o.tx_acked, 0);
    assert_int_equal(o.tx_sent, 0);
    assert_int_equal(o.tx_high, 40000);
    pull(&p.b, &p.c.down); /* B's first record: ack 40000 */
    deliver(&p.c.down, &p.a, SIZE_MAX);
    offsets(&p.a, &o);
    assert_int_equal(o.tx_acked, 40000);
    assert_int_equal(o.tx_sent, 40000); /* not sent again */
    assert_int_equal(um_sess_error(p.a.s), 0);
    put(&p.a, 1000);
    put(&p.b, 1000);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* An ack above tx_high is a protocol error (forged with the new keys, since
 * a real peer never sends one); one equal to tx_high is fine. */
static void test_ack_above_tx_high(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    for (int v = 0; v < 2; v++) {
        pair_open(&p, 0);
        put(&p.a, 40000);
        put(&p.b, 500);
        pull(&p.a, &p.c.up);
        pull(&p.b, &p.c.down);
        deliver(&p.c.up, &p.b, SIZE_MAX);
        rs_t x;
        conn_drop(&p.c);
        rs_start(&x, &p);
        assert_int_equal(rs_respond(&x, &p, SHORT), 0);
        assert_true(rs_finish(&x, p.a.s));
        offsets(&p.a, &o);
        assert_int_equal(o.tx_sent, 0);
        assert_int_equal(o.tx_high, 40000);
        um_rec_dir_t fx;
        uint8_t body[9], w[64];
        size_t wn, used;
        assert_int_equal(um_rec_init(&fx, x.sk.alg, 1, x.sk.k_send, 0), 0);
        body[0] = UM_REC_T_ACK;
        um_st64(body + 1, v == 0 ? 40000 : 40001);
        assert_int_equal(um_rec_seal(&fx, body, sizeof(body), w, sizeof(w), &wn), 0);
        int r = um_sess_feed(p.a.s, w, wn, &used);
        if (v == 0) {
            assert_int_equal(r, 0);
            offsets(&p.a, &o);
            assert_int_equal(o.tx_acked, 40000);
            /* ... and an ack going backwards is an error too. */
            um_st64(body + 1, 39999);
            assert_int_equal(um_rec_seal(&fx, body, sizeof(body), w, sizeof(w), &wn), 0);
            assert_int_equal(um_sess_feed(p.a.s, w, wn, &used), UM_EPROTO);
        } else {
            assert_int_equal(r, UM_EPROTO);
        }
        assert_int_equal(um_sess_error(p.a.s), UM_EPROTO);
        um_rec_close(&fx);
        rs_wipe(&x);
        pair_close(&p);
    }
}

/* Two resumptions in a row before any data moved: the first (short reply)
 * rewinds A's tx_sent to its last ack; the second names B's real offset,
 * above A's tx_sent. Symmetrically, B resumed from A's offer at message 1,
 * and A received more on the old wire after it: the second offer is above
 * B's tx_sent. Both must resume (tx_high exists for this). */
static void test_two_resumptions(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    conn_t old = {0};
    pair_open(&p, 0);
    put(&p.a, 30000);
    put(&p.b, 20000);
    pull(&p.a, &old.up);
    pull(&p.b, &old.down);
    deliver(&old.up, &p.b, SIZE_MAX); /* B has all 30000, unacknowledged */
    deliver(&old.down, &p.a, 8000);
    rs_t x;
    rs_start(&x, &p);
    deliver(&old.down, &p.a, SIZE_MAX); /* make-before-break: A has 20000 */
    assert_int_equal(rs_respond(&x, &p, SHORT), 0);
    assert_true(rs_finish(&x, p.a.s));
    rs_wipe(&x);
    conn_free(&old);
    offsets(&p.a, &o);
    assert_int_equal(o.tx_sent, 0);
    assert_int_equal(o.tx_high, 30000);
    assert_int_equal(o.rx_next, 20000);
    offsets(&p.b, &o);
    uint64_t b_sent = o.tx_sent;
    assert_true(b_sent < 20000);
    assert_int_equal(o.tx_high, 20000);
    /* The new connection breaks before anything crossed it. */
    assert_true(um_sess_resumable(p.a.s, 30000));
    assert_true(um_sess_resumable(p.b.s, 20000));
    reconnect(&p, FULL);
    offsets(&p.a, &o);
    assert_int_equal(o.tx_sent, 30000);
    assert_int_equal(o.tx_acked, 30000);
    offsets(&p.b, &o);
    assert_int_equal(o.tx_sent, 20000);
    assert_int_equal(o.tx_acked, 20000);
    put(&p.a, 4000);
    put(&p.b, 4000);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* Offsets outside [tx_acked, tx_high] are refused: at the session level
 * (um_sess_resumable false, um_sess_resume UM_EINVAL) and in the handshake
 * (the gate's hook says no: RESUMED clear, a new session). */
static void test_offsets_outside_range(void **st)
{
    pair_t p;
    um_sess_offsets_t o, o2;
    um_sess_keys_t k;
    memset(&k, 0, sizeof(k));
    randombytes_buf(k.k_send, 32);
    randombytes_buf(k.k_recv, 32);
    pair_open(&p, 0);
    k.alg = um_sess_alg(p.a.s);
    put(&p.a, 50000);
    put(&p.b, 50000);
    settle(&p.c, &p.a, &p.b);
    put(&p.a, 10000);
    put(&p.b, 10000);
    pull(&p.a, &p.c.up);
    pull(&p.b, &p.c.down);
    offsets(&p.a, &o);
    assert_int_equal(o.tx_acked, 50000);
    assert_int_equal(o.tx_high, 60000);
    /* Below tx_acked is an offer written before later acks (make-before-
     * break): resumable, from tx_acked. Above tx_high: never. */
    assert_true(um_sess_resumable(p.a.s, 49999));
    assert_true(um_sess_resumable(p.a.s, 0));
    assert_false(um_sess_resumable(p.a.s, 60001));
    assert_true(um_sess_resumable(p.a.s, 50000));
    assert_true(um_sess_resumable(p.a.s, 60000));
    assert_int_equal(um_sess_resume(p.a.s, &k, 60001), UM_EINVAL);
    offsets(&p.a, &o2);
    assert_memory_equal(&o, &o2, sizeof(o)); /* untouched */
    /* Through the handshake: a client offer above what B ever sent. */
    uint64_t bad[1] = {60001};
    for (int i = 0; i < 1; i++) {
        rs_t x;
        offsets(&p.b, &o);
        rs_start_as(&x, ci, um_sess_id(p.a.s), bad[i], 0);
        assert_int_equal(rs_respond(&x, &p, FULL), 0);
        assert_true(x.sk.resume_requested);
        assert_false(x.sk.resumed);
        assert_false(rs_finish(&x, p.a.s));
        /* A new session: its own id from this handshake. */
        assert_memory_not_equal(x.ck.sid, um_sess_id(p.a.s), UM_SID_LEN);
        assert_memory_equal(x.ck.sid, x.sk.sid, UM_SID_LEN);
        offsets(&p.b, &o2);
        assert_memory_equal(&o, &o2, sizeof(o));
        rs_wipe(&x);
    }
    /* The old session still resumes with a valid offer. */
    reconnect(&p, FULL);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* Make-before-break: the client writes message 1 with its rx, then keeps
 * reading the old wire and acknowledges more on it; the server sees those
 * acks before message 1, so the offer is below its tx_acked. It resumes
 * from its tx_acked, and nothing is lost or doubled. (A bound of
 * [tx_acked, tx_high] refused this and lost the session: found by the
 * rotation bench.) */
static void test_offer_below_acked(void **st)
{
    pair_t p;
    um_sess_offsets_t o;
    pair_open(&p, 0);
    put(&p.a, 20000);
    put(&p.b, 60000);
    pull(&p.a, &p.c.up);
    pull(&p.b, &p.c.down);
    deliver(&p.c.down, &p.a, 20000);
    rs_t x;
    rs_start(&x, &p);                     /* offers what A has now */
    deliver(&p.c.down, &p.a, p.c.down.n); /* the rest still arrives on the old wire */
    put(&p.a, 5000);                      /* A's DATA carries its ack of all of it */
    pull(&p.a, &p.c.up);
    deliver(&p.c.up, &p.b, p.c.up.n);
    offsets(&p.b, &o);
    assert_true(o.tx_acked > x.offer);
    conn_drop(&p.c);
    assert_int_equal(rs_respond(&x, &p, FULL), 0);
    assert_true(x.sk.resumed);
    assert_true(rs_finish(&x, p.a.s));
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* The session ended after a resumption: a replay of the resuming flight
 * (which never entered the replay filter) is refused by the session's
 * tombstone, not taken for a new session, and so is a fresh flight naming
 * it while its last move is in the timestamp window. A session never
 * resumed leaves no tombstone. */
static void test_replay_after_end(void **st)
{
    pair_t p;
    pair_open(&p, 0);
    put(&p.a, 5000);
    put(&p.b, 5000);
    settle(&p.c, &p.a, &p.b);
    conn_drop(&p.c);
    rs_t x;
    rs_start(&x, &p);
    assert_int_equal(rs_respond(&x, &p, FULL), 0);
    assert_true(rs_finish(&x, p.a.s));
    um_gate_del_resumable(p.g, &p.ent); /* the server's session ends */
    um_sess_keys_t sk;
    uint8_t m2[UM_HS_MSG_MAX];
    size_t m2n = 0;
    assert_int_equal(um_hs_server_respond(um_gate_hs(p.g), PRO, PRO_LEN, x.m1, x.m1n, NOW, FULL, m2,
                                          sizeof(m2), &m2n, &sk),
                     UM_EREPLAY);
    rs_wipe(&x);
    /* A new flight naming the ended session: refused too while its last
     * move is in the window (a client cannot tell it from a replay). */
    rs_t y;
    rs_start(&y, &p);
    assert_int_equal(rs_respond(&y, &p, FULL), UM_EREPLAY);
    um_hs_client_wipe(&y.hs);
    rs_wipe(&y);
    /* A session that was never resumed: a flight naming it after its end
     * is a new session (it went through the replay filter). */
    pair_t q;
    pair_open(&q, 0);
    um_gate_del_resumable(q.g, &q.ent);
    rs_t z;
    rs_start(&z, &q);
    assert_int_equal(rs_respond(&z, &q, FULL), 0);
    assert_false(z.sk.resumed);
    assert_false(rs_finish(&z, q.a.s));
    rs_wipe(&z);
    pair_close(&q);
    pair_close(&p);
}

/* A resumption message 1 replayed (after it succeeded, or after its reply
 * was lost) gets UM_EREPLAY and touches nothing. */
static void test_replay_refused(void **st)
{
    pair_t p;
    um_sess_offsets_t o, o2;
    pair_open(&p, 0);
    put(&p.a, 20000);
    put(&p.b, 20000);
    pull(&p.a, &p.c.up);
    pull(&p.b, &p.c.down);
    deliver(&p.c.up, &p.b, 10000);
    conn_drop(&p.c);
    rs_t x, y;
    rs_start(&x, &p);
    assert_int_equal(rs_respond(&x, &p, FULL), 0);
    assert_true(rs_finish(&x, p.a.s));
    offsets(&p.b, &o);
    memcpy(&y, &x, sizeof(y));
    um_sess_keys_t sk;
    uint8_t m2[UM_HS_MSG_MAX];
    size_t m2n = 0;
    assert_int_equal(um_hs_server_respond(um_gate_hs(p.g), PRO, PRO_LEN, y.m1, y.m1n, NOW, FULL, m2,
                                          sizeof(m2), &m2n, &sk),
                     UM_EREPLAY);
    assert_true(sodium_is_zero((const uint8_t *)&sk, sizeof(sk)));
    offsets(&p.b, &o2);
    assert_memory_equal(&o, &o2, sizeof(o));
    rs_wipe(&x);
    rs_wipe(&y);
    put(&p.a, 100);
    put(&p.b, 100);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* An unknown session id, another client's key naming our session, and a
 * session the server no longer lists: not resumed (RESUMED clear on both
 * sides, a new session), and the listed session is untouched. */
static void test_not_resumed(void **st)
{
    pair_t p;
    um_sess_offsets_t o, o2;
    pair_open(&p, 0);
    put(&p.a, 20000);
    put(&p.b, 20000);
    settle(&p.c, &p.a, &p.b);
    offsets(&p.b, &o);
    uint8_t unknown[UM_SID_LEN];
    randombytes_buf(unknown, sizeof(unknown));
    for (int i = 0; i < 3; i++) {
        rs_t x;
        if (i == 2) um_gate_del_resumable(p.g, &p.ent);
        rs_start_as(&x, i == 1 ? c2i : ci, i == 0 ? unknown : um_sess_id(p.a.s), 20000, 0);
        assert_int_equal(rs_respond(&x, &p, FULL), 0);
        assert_true(x.sk.resume_requested);
        assert_false(x.sk.resumed);
        assert_false(rs_finish(&x, p.a.s));
        assert_false(x.ck.resume_has_peer_rx);
        assert_memory_not_equal(x.ck.sid, um_sess_id(p.a.s), UM_SID_LEN);
        /* It works as a session of its own. */
        end_t na = {.seed = 1, .pseed = 2}, nb = {.seed = 2, .pseed = 1};
        conn_t nc = {0};
        na.s = um_sess_new(&x.ck, &p.cfg);
        nb.s = um_sess_new(&x.sk, &p.cfg);
        put(&na, 3000);
        put(&nb, 3000);
        settle(&nc, &na, &nb);
        check_done(&na, &nb);
        um_sess_free(na.s);
        um_sess_free(nb.s);
        conn_free(&nc);
        offsets(&p.b, &o2);
        assert_memory_equal(&o, &o2, sizeof(o));
        rs_wipe(&x);
    }
    assert_null(um_gate_find_resumable(p.g, um_sess_id(p.a.s), cp));
    um_gate_add_resumable(p.g, &p.ent);
    assert_non_null(um_gate_find_resumable(p.g, um_sess_id(p.a.s), cp));
    assert_null(um_gate_find_resumable(p.g, um_sess_id(p.a.s), c2p));
    reconnect(&p, FULL);
    put(&p.a, 10);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

/* The per-key handshake quota counts new sessions, not resumptions: with a
 * quota of 3 a minute, 40 resumptions pass (data moving between them) while
 * the third new session after them is refused; a flight that names a
 * session it cannot continue is charged like a new one. */
static void test_quota_not_charged(void **st)
{
    pair_t p;
    um_sess_keys_t ck, sk;
    um_gate_stats_t gs;
    pair_open_g(&p, mkgate(3), 0); /* takes 1 of 3 */
    for (int i = 0; i < 40; i++) {
        put(&p.a, 1000 + i);
        put(&p.b, 2000 + i);
        pull(&p.a, &p.c.up);
        pull(&p.b, &p.c.down);
        deliver(&p.c.up, &p.b, 700 * (size_t)i);
        deliver(&p.c.down, &p.a, 900 * (size_t)i);
        reconnect(&p, i & 1 ? SHORT : FULL);
    }
    um_gate_stats(p.g, &gs);
    assert_int_equal(gs.quota_refused, 0);
    assert_int_equal(handshake_new(p.g, ci, &ck, &sk), 0);
    /* A resumption the server cannot continue is a new session: charged. */
    rs_t x;
    uint8_t unknown[UM_SID_LEN];
    randombytes_buf(unknown, sizeof(unknown));
    rs_start_as(&x, ci, unknown, 0, 0);
    assert_int_equal(rs_respond(&x, &p, FULL), 0);
    assert_false(x.sk.resumed);
    rs_wipe(&x);
    assert_int_equal(handshake_new(p.g, ci, &ck, &sk), UM_ELIMIT);
    rs_start_as(&x, ci, unknown, 0, 0);
    assert_int_equal(rs_respond(&x, &p, FULL), UM_ELIMIT);
    rs_wipe(&x);
    /* Another key has its own quota; and resumptions still pass. */
    assert_int_equal(handshake_new(p.g, c2i, &ck, &sk), 0);
    um_gate_stats(p.g, &gs);
    assert_int_equal(gs.quota_refused, 2);
    for (int i = 0; i < 10; i++)
        reconnect(&p, FULL);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    um_sess_keys_wipe(&ck);
    um_sess_keys_wipe(&sk);
    pair_close(&p);
}

/* xorshift64*: the randomised test must be reproducible from its seed. */
static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}
static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

/* Random writes, random partial deliveries (records cut anywhere), random
 * clock steps, random breaks and random resumption points (immediate,
 * make-before-break with old-wire traffic between message 1 and the switch,
 * short or full replies, several in a row). */
static void test_random(void **st)
{
    uint64_t seed = 0x5eed0011ull;
    const char *env = getenv("UMBRA_RESUME_SEED");
    if (env) seed = strtoull(env, NULL, 0);
    print_message("test_random: seed 0x%llx (UMBRA_RESUME_SEED=...)\n", (unsigned long long)seed);
    rng = (seed * 0x9E3779B97F4A7C15ull) | 1;
    pair_t p;
    pair_open(&p, 64 * 1024); /* small: the writers hit backpressure */
    unsigned resumes = 0, short_replies = 0, mbb = 0, cuts = 0;
    bool dead = false;
    for (int it = 0; it < 300; it++) {
        switch (rnd_below(8)) {
        case 0: put(&p.a, rnd_below(30000)); break;
        case 1: put(&p.b, rnd_below(30000)); break;
        case 2:
            /* On a broken connection, sealed and lost. */
            pull(&p.a, &p.c.up);
            pull(&p.b, &p.c.down);
            if (dead) conn_drop(&p.c);
            break;
        case 3:
            if (!dead) deliver(&p.c.up, &p.b, rnd_below(3 * UM_REC_WIRE_MAX));
            break;
        case 4:
            if (!dead) deliver(&p.c.down, &p.a, rnd_below(3 * UM_REC_WIRE_MAX));
            break;
        case 5: fake_ms += rnd_below(40); break;
        case 6:
            /* Cut: what was in flight is gone, nothing crosses any more. */
            conn_drop(&p.c);
            dead = true;
            cuts++;
            break;
        default: {
            /* Resume; the current connection becomes the old one. */
            conn_t old = p.c;
            memset(&p.c, 0, sizeof(p.c));
            rs_t x;
            size_t reply = rnd_below(3) == 0 ? SHORT : FULL;
            bool make_before_break = !dead && rnd_below(2);
            rs_start(&x, &p);
            if (make_before_break) {
                mbb++;
                put(&p.a, rnd_below(5000));
                put(&p.b, rnd_below(5000));
                pull(&p.a, &old.up);
                pull(&p.b, &old.down);
                deliver(&old.up, &p.b, rnd_below(2 * UM_REC_WIRE_MAX));
                deliver(&old.down, &p.a, rnd_below(2 * UM_REC_WIRE_MAX));
            }
            assert_int_equal(rs_respond(&x, &p, reply), 0);
            assert_true(x.sk.resumed);
            if (make_before_break) deliver(&old.down, &p.a, rnd_below(2 * UM_REC_WIRE_MAX));
            if (rnd_below(2)) pull(&p.b, &p.c.down);
            assert_true(rs_finish(&x, p.a.s));
            rs_wipe(&x);
            conn_free(&old);
            dead = false;
            resumes++;
            short_replies += reply == SHORT;
            break;
        }
        }
        assert_int_equal(um_sess_error(p.a.s), 0);
        assert_int_equal(um_sess_error(p.b.s), 0);
    }
    put(&p.a, 1);
    put(&p.b, 1);
    reconnect(&p, FULL); /* whatever the last state */
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    print_message("test_random: %u resumptions (%u short, %u make-before-break), %u cuts, %llu "
                  "and %llu bytes\n",
                  resumes, short_replies, mbb, cuts, (unsigned long long)p.a.wrote,
                  (unsigned long long)p.b.wrote);
    assert_true(resumes > 10);
    pair_close(&p);
}

/* um_sess_pull_limit: never more than the limit, DATA records shrink to fit,
 * nothing below UM_SESS_RECORD_MIN, every padding policy, and all bytes
 * still arrive in order. */
static void test_pull_limit(void **st)
{
    static uint8_t out[4 * UM_REC_WIRE_MAX];
    pair_t p;
    size_t n, used;
    pair_open(&p, 0);
    put(&p.a, 300000);
    put(&p.b, 300000);
    size_t limits[] = {0,
                       1,
                       UM_SESS_RECORD_MIN - 1,
                       UM_SESS_RECORD_MIN,
                       UM_SESS_RECORD_MIN + 1,
                       100,
                       1000,
                       UM_REC_OVERHEAD + 19 + UM_SESS_DATA_MAX,
                       UM_REC_WIRE_MAX,
                       2 * UM_REC_WIRE_MAX + 7};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        um_sess_offsets_t o0, o1;
        offsets(&p.a, &o0);
        assert_int_equal(um_sess_pull_limit(p.a.s, out, sizeof(out), limits[i], &n), 0);
        assert_true(n <= limits[i]);
        offsets(&p.a, &o1);
        if (limits[i] < UM_SESS_RECORD_MIN) {
            assert_int_equal(n, 0);
            assert_true(um_sess_want_pull(p.a.s)); /* it waits, with data pending */
            continue;
        }
        /* Filled to within one smallest record of the limit. */
        assert_true(n > limits[i] - UM_SESS_RECORD_MIN);
        assert_true(o1.tx_sent > o0.tx_sent);
        if (limits[i] <= UM_REC_OVERHEAD + 19 + UM_SESS_DATA_MAX) {
            /* One DATA record of exactly the limit. */
            assert_int_equal(n, limits[i]);
            assert_int_equal(o1.tx_sent - o0.tx_sent, limits[i] - (UM_SESS_RECORD_MIN - 1));
        }
        assert_int_equal(um_sess_feed(p.b.s, out, n, &used), 0);
        assert_int_equal(used, n);
        get(&p.b);
    }
    /* Random padding, block padding and the burst guard all shrink to the
     * limit; random limits until both streams have crossed. */
    um_pad_policy_t pols[] = {
        {.mode = UM_PAD_NONE},
        {.mode = UM_PAD_RANDOM, .max = 255},
        {.mode = UM_PAD_BLOCK, .block = 1024},
        {.mode = UM_PAD_NONE, .guard_bytes = 4096, .guard_idle_ms = 1},
    };
    rng = 0x1234567ull;
    size_t min_out = SIZE_MAX, records = 0;
    for (int i = 0; i < 100000 && (p.a.got < p.b.wrote || p.b.got < p.a.wrote); i++) {
        end_t *from = i & 1 ? &p.b : &p.a, *to = i & 1 ? &p.a : &p.b;
        um_sess_set_padding(from->s, &pols[rnd_below(4)]);
        size_t lim = rnd_below(3) ? rnd_below(3000) : rnd_below(3 * UM_REC_WIRE_MAX);
        fake_ms += rnd_below(3);
        assert_int_equal(um_sess_pull_limit(from->s, out, sizeof(out), lim, &n), 0);
        assert_true(n <= lim);
        if (lim < UM_SESS_RECORD_MIN) assert_int_equal(n, 0);
        if (n) {
            if (n < min_out) min_out = n;
            records++;
        }
        size_t at = 0;
        while (at < n) {
            assert_int_equal(um_sess_feed(to->s, out + at, n - at, &used), 0);
            at += used;
            get(to);
        }
    }
    get(&p.a);
    get(&p.b);
    print_message("test_pull_limit: %zu pulls with output, smallest %zu bytes\n", records, min_out);
    assert_true(records > 40);
    assert_true(min_out >= UM_SESS_FILLER_MIN);
    settle(&p.c, &p.a, &p.b);
    check_done(&p.a, &p.b);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_break_before_any_ack),
        cmocka_unit_test(test_break_after_some_acks),
        cmocka_unit_test(test_break_mid_record),
        cmocka_unit_test(test_break_with_ack_due),
        cmocka_unit_test(test_reconnect_after_more_writes),
        cmocka_unit_test(test_make_before_break),
        cmocka_unit_test(test_ack_after_switch),
        cmocka_unit_test(test_ack_above_tx_high),
        cmocka_unit_test(test_two_resumptions),
        cmocka_unit_test(test_offsets_outside_range),
        cmocka_unit_test(test_offer_below_acked),
        cmocka_unit_test(test_replay_after_end),
        cmocka_unit_test(test_replay_refused),
        cmocka_unit_test(test_not_resumed),
        cmocka_unit_test(test_quota_not_charged),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_pull_limit),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
