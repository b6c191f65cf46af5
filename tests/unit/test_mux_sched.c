/* The send scheduler (src/mux/send.c, docs/internals/mux.md "Scheduler"):
 *  - a new stream beside a bulk stream whose send buffer is full: its OPEN
 *    leaves in the next record, and its first young_bytes (256 KiB) leave
 *    before any more of the bulk stream's queued bytes; once it has sent
 *    them it shares the pipe with the bulk stream half and half (the bulk
 *    stream itself is past its own first 256 KiB). Both ways:
 *    a client's upload and a server's download;
 *  - 8 equal bulk streams get equal shares of the pipe, each in runs of one
 *    quantum (64 KiB, four records) rather than record by record;
 *  - a stream long past its young bytes that has a small request to send
 *    (at most one record queued when it becomes sendable) sends it in the
 *    next record beside a bulk stream, every time;
 *  - a stream past its young bytes reports tx_full past 64 KiB queued (its
 *    writer stops reading its source), a young one with twice as much
 *    queued does not.
 * The frames are decoded from the sender's records, in wire order. */
#include "test_mux_pair.h"

enum { REC = 16384, BULK_Q = 384 * 1024, YOUNG = 256 * 1024 };

/* The default deficit round-robin quantum (mux.c). */
static uint64_t quantum(void)
{
    um_mux_config_t c;
    um_mux_config_default(&c);
    return c.quantum;
}

static void accept_all(um_mux_t *m)
{
    um_mux_event_t ev;
    while (um_mux_poll(m, &ev)) {
        assert_int_not_equal(ev.type, UM_MUX_EV_ERROR);
        if (ev.type == UM_MUX_EV_OPENED) assert_int_equal(um_mux_stream_accept(m, ev.id, 0), 0);
    }
}

static size_t drain_all(um_mux_t *m, const uint32_t *ids, size_t nids)
{
    size_t total = 0;
    for (size_t i = 0; i < nids; i++) {
        const uint8_t *q;
        size_t n;
        while (um_mux_stream_peek(m, ids[i], &q, &n) == 0 && n) {
            assert_int_equal(um_mux_stream_consume(m, ids[i], n), 0);
            total += n;
        }
    }
    return total;
}

/* Tops the stream's send buffer up from a pattern; returns bytes accepted. */
static size_t top_up(um_mux_t *m, uint32_t id, size_t want)
{
    static uint8_t pat[65536];
    size_t total = 0, acc;
    while (total < want) {
        size_t n = want - total < sizeof(pat) ? want - total : sizeof(pat);
        assert_int_equal(um_mux_stream_write(m, id, pat, n, &acc), 0);
        total += acc;
        if (acc < n) break;
    }
    return total;
}

/* The frames of the sender's records, in wire order. */
typedef struct {
    uint8_t buf[4 * REC];
    size_t len;
} wire_t;

typedef void (*frame_fn)(const um_mux_frame_t *f, void *arg);

static void wire_add(wire_t *w, const uint8_t *p, size_t n, frame_fn fn, void *arg)
{
    assert_true(n <= sizeof(w->buf) - w->len);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    size_t off = 0, total;
    while (um_mux_frame_peek(w->buf + off, w->len - off, &total) == 0 && total <= w->len - off) {
        um_mux_frame_t f;
        size_t used;
        assert_int_equal(um_mux_frame_decode(w->buf + off, w->len - off, &f, &used), 0);
        fn(&f, arg);
        off += used;
    }
    memmove(w->buf, w->buf + off, w->len - off);
    w->len -= off;
}

/* One record from snd to rcv; the receiver reads everything and answers
 * (grants, OPEN_RESULTs) at once, so windows never hold the sender back. */
static size_t step(pair_t *p, int snd, wire_t *w, const uint32_t *ids, size_t nids, frame_fn fn,
                   void *arg)
{
    size_t n = um_mux_pull(p->m[snd], p->buf, REC);
    if (n) {
        wire_add(w, p->buf, n, fn, arg);
        assert_int_equal(um_mux_feed(p->m[1 - snd], p->buf, n), 0);
    }
    accept_all(p->m[1 - snd]);
    drain_all(p->m[1 - snd], ids, nids);
    pair_move(p, 1 - snd, SIZE_MAX / 2);
    accept_all(p->m[snd]);
    return n;
}

/* ---- a new stream beside a bulk stream ------------------------------------ */

typedef struct {
    uint32_t bulk, young;
    int young_open;                   /* OPEN of the young stream seen (client side) */
    size_t young_open_rec;            /* record index of that OPEN */
    size_t young_first_rec;           /* record of its first payload byte (SIZE_MAX: none) */
    size_t rec;                       /* records seen so far */
    uint64_t bulk_b, young_b;         /* payload bytes seen */
    uint64_t bulk_before;             /* bulk bytes before the young stream had sent YOUNG */
    uint64_t bulk_after, young_after; /* once it had */
} beside_t;

static void on_beside(const um_mux_frame_t *f, void *arg)
{
    beside_t *b = arg;
    if (f->id == b->young && f->type == UM_MUX_OPEN && !b->young_open) {
        b->young_open = 1;
        b->young_open_rec = b->rec;
    }
    if (f->type != UM_MUX_DATA && f->type != UM_MUX_OPEN) return;
    if (f->id == b->young) {
        if (f->data_len && b->young_first_rec == SIZE_MAX) b->young_first_rec = b->rec;
        if (b->young_b >= YOUNG) b->young_after += f->data_len;
        b->young_b += f->data_len;
    } else if (f->id == b->bulk) {
        if (b->young_b < YOUNG)
            b->bulk_before += f->data_len;
        else
            b->bulk_after += f->data_len;
        b->bulk_b += f->data_len;
    }
}

/* side 0: the client uploads on both streams; side 1: the server sends on
 * both (a download beside a small response). */
static void beside_bulk(int side)
{
    pair_t p;
    pair_init(&p, NULL, NULL, 31 + (uint64_t)side);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    beside_t b;
    memset(&b, 0, sizeof(b));
    b.young_first_rec = SIZE_MAX;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &b.bulk), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    accept_all(p.m[0]);
    uint32_t ids[2] = {b.bulk, 0};
    static wire_t w;
    memset(&w, 0, sizeof(w));

    /* The bulk stream is under way with its send buffer full. */
    assert_int_equal(top_up(p.m[side], b.bulk, BULK_Q), BULK_Q);
    for (int i = 0; i < 24; i++) { /* past its own first YOUNG bytes */
        assert_true(step(&p, side, &w, ids, 1, on_beside, &b) > 0);
        top_up(p.m[side], b.bulk, BULK_Q);
    }
    assert_true(b.bulk_b > YOUNG);

    /* The new stream: opened by the client; for a download the server
     * accepts it and sends on it. */
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &b.young), 0);
    ids[1] = b.young;
    size_t want = 1024 * 1024, queued = 0;
    if (side == 1) {
        /* the OPEN reaches the server (the client sends nothing else) */
        pair_move(&p, 0, SIZE_MAX / 2);
        accept_all(p.m[1]);
    }
    b.rec = 0;
    b.bulk_b = b.young_b = b.bulk_before = 0;
    for (int i = 0; i < 4096 && (b.young_b < want || b.young_after < 256 * 1024); i++) {
        if (queued < want) queued += top_up(p.m[side], b.young, want - queued);
        top_up(p.m[side], b.bulk, BULK_Q);
        size_t n = step(&p, side, &w, ids, 2, on_beside, &b);
        assert_true(n > 0);
        b.rec++;
        if (b.young_after >= 256 * 1024) break;
    }
    print_message("side %d: open in record %zu, first byte in record %zu; bulk bytes before the "
                  "new stream had sent %d: %llu; after: new %llu, bulk %llu\n",
                  side, b.young_open_rec, b.young_first_rec, YOUNG,
                  (unsigned long long)b.bulk_before, (unsigned long long)b.young_after,
                  (unsigned long long)b.bulk_after);
    if (side == 0) {
        assert_true(b.young_open);
        assert_int_equal(b.young_open_rec, 0); /* the next record carries the OPEN */
    }
    assert_int_equal(b.young_first_rec, 0); /* and the first bytes */
    /* Its first 256 KiB went before any more of the bulk stream's queue. */
    assert_int_equal(b.bulk_before, 0);
    /* Then it is a bulk stream like the other: half and half (DRR). */
    assert_true(b.young_after >= 256 * 1024);
    assert_true(b.bulk_after + 2 * quantum() >= b.young_after);
    assert_true(b.young_after + 2 * quantum() >= b.bulk_after);
    pair_free(&p);
}

static void test_young_upload(void **state)
{
    (void)state;
    beside_bulk(0);
}

static void test_young_download(void **state)
{
    (void)state;
    beside_bulk(1);
}

/* ---- fairness between equal bulk streams ---------------------------------- */

enum { NB = 8 };

typedef struct {
    uint32_t id[NB];
    uint64_t got[NB];
} fair_t;

static void on_fair(const um_mux_frame_t *f, void *arg)
{
    fair_t *fa = arg;
    if (f->type != UM_MUX_DATA && f->type != UM_MUX_OPEN) return;
    for (int i = 0; i < NB; i++)
        if (fa->id[i] == f->id) fa->got[i] += f->data_len;
}

static void fair_run(int side)
{
    const uint64_t per = (sanitized() ? 2ull : 8ull) << 20; /* bytes per stream measured */
    pair_t p;
    pair_init(&p, NULL, NULL, 41 + (uint64_t)side);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    fair_t fa;
    memset(&fa, 0, sizeof(fa));
    for (int i = 0; i < NB; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &fa.id[i]), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    accept_all(p.m[0]);
    static wire_t w;
    memset(&w, 0, sizeof(w));
    uint64_t total = 0;
    for (long i = 0; i < 100000 && total < per * NB; i++) {
        for (int k = 0; k < NB; k++)
            top_up(p.m[side], fa.id[k], BULK_Q);
        size_t n = step(&p, side, &w, fa.id, NB, on_fair, &fa);
        assert_true(n > 0);
        total = 0;
        for (int k = 0; k < NB; k++)
            total += fa.got[k];
        /* at every point, no stream is more than two quanta ahead of another */
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int k = 0; k < NB; k++) {
            if (fa.got[k] < lo) lo = fa.got[k];
            if (fa.got[k] > hi) hi = fa.got[k];
        }
        if (hi - lo > 2 * quantum())
            fail_msg("record %ld: shares %llu..%llu", i, (unsigned long long)lo,
                     (unsigned long long)hi);
    }
    assert_true(total >= per * NB);
    pair_free(&p);
}

static void test_fair_upload(void **state)
{
    (void)state;
    fair_run(0);
}

static void test_fair_download(void **state)
{
    (void)state;
    fair_run(1);
}

/* ---- runs of one quantum ------------------------------------------------- */

/* 8 bulk streams with full queues: the payload on the wire comes in runs
 * of one stream's bytes; once every stream is past its young bytes (a
 * stream that reaches them leaves the young ring mid-run), every run
 * carries about one quantum (frames are charged header included, so a
 * little less), none a single record. */
typedef struct {
    uint32_t cur;   /* stream of the current run (0: none) */
    uint64_t run;   /* its payload bytes so far */
    uint64_t total; /* payload bytes seen */
    uint64_t runs, small, least;
} runs_t;

static void on_runs(const um_mux_frame_t *f, void *arg)
{
    runs_t *r = arg;
    if ((f->type != UM_MUX_DATA && f->type != UM_MUX_OPEN) || f->data_len == 0) return;
    if (f->id != r->cur) {
        /* counted from one round after the young phase (the first runs may
         * have started mid-quantum) */
        bool counted = r->cur && r->total - r->run > (uint64_t)NB * (YOUNG + quantum());
        if (counted) {
            if (r->run < r->least) r->least = r->run;
            if (r->run < quantum() - 8 * UM_MUX_HDR) r->small++;
            r->runs++;
        }
        r->cur = f->id;
        r->run = 0;
    }
    r->run += f->data_len;
    r->total += f->data_len;
}

static void test_bulk_runs(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 43);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    uint32_t ids[NB];
    for (int i = 0; i < NB; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &ids[i]), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    accept_all(p.m[0]);
    static wire_t w;
    memset(&w, 0, sizeof(w));
    runs_t r = {.least = UINT64_MAX};
    for (int i = 0; i < 4000 && r.runs < 100; i++) {
        for (int k = 0; k < NB; k++)
            top_up(p.m[1], ids[k], BULK_Q);
        assert_true(step(&p, 1, &w, ids, NB, on_runs, &r) > 0);
    }
    print_message("%llu runs, least %llu bytes, %llu shorter than a quantum\n",
                  (unsigned long long)r.runs, (unsigned long long)r.least,
                  (unsigned long long)r.small);
    assert_true(r.runs >= 100);
    assert_int_equal(r.small, 0);
    assert_true(r.least >= 3 * REC); /* more than three records in a row, every time */
    pair_free(&p);
}

/* ---- a sparse stream beside a bulk one ----------------------------------- */

static void push(pair_t *p, uint32_t id, const uint32_t *ids, size_t nids, uint64_t n);

typedef struct {
    uint32_t id;
    uint64_t got; /* its payload bytes seen */
} sparse_t;

static void on_sparse(const um_mux_frame_t *f, void *arg)
{
    sparse_t *sp = arg;
    if ((f->type == UM_MUX_DATA || f->type == UM_MUX_OPEN) && f->id == sp->id)
        sp->got += f->data_len;
}

static void test_sparse_beside_bulk(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 61);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    uint32_t ids[2]; /* bulk, then the sparse one */
    for (int i = 0; i < 2; i++)
        assert_int_equal(um_mux_stream_open(p.m[0], &d, &ids[i]), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    accept_all(p.m[0]);
    push(&p, ids[1], ids, 2, 1024 * 1024); /* long past its young bytes */
    pair_settle(&p);
    drain_all(p.m[1], ids, 2);
    static wire_t w;
    memset(&w, 0, sizeof(w));
    sparse_t sp = {.id = ids[1]};
    static const uint8_t req[1024];
    int next = 0, n_req = 0;
    for (int i = 0; i < 4000 && n_req < 200; i++) {
        top_up(p.m[0], ids[0], BULK_Q);
        /* once the bulk stream is past its own young bytes (till then both
         * are young, equal), a request now and then, whatever phase the
         * bulk stream's turn is in */
        if (i >= 2 * YOUNG / REC && i % 7 == 0) {
            size_t acc;
            assert_int_equal(um_mux_stream_write(p.m[0], ids[1], req, sizeof(req), &acc), 0);
            assert_int_equal(acc, sizeof(req));
            uint64_t before = sp.got;
            assert_true(step(&p, 0, &w, ids, 2, on_sparse, &sp) > 0);
            n_req++;
            if (sp.got == before + sizeof(req)) next++;
            continue;
        }
        assert_true(step(&p, 0, &w, ids, 2, on_sparse, &sp) > 0);
    }
    print_message("%d of %d requests in the next record\n", next, n_req);
    assert_int_equal(n_req, 200);
    assert_int_equal(next, n_req);
    pair_free(&p);
}

/* ---- the bulk queue bound ------------------------------------------------ */

/* Sends n bytes on id from the client, read by the server as they come. */
static void push(pair_t *p, uint32_t id, const uint32_t *ids, size_t nids, uint64_t n)
{
    for (uint64_t sent = 0; sent < n;) {
        sent += top_up(p->m[0], id, 64 * 1024);
        pair_move(p, 0, SIZE_MAX / 2);
        drain_all(p->m[1], ids, nids);
        pair_move(p, 1, SIZE_MAX / 2);
    }
}

static int tx_full(um_mux_t *m, uint32_t id, size_t *queued)
{
    um_mux_stream_info_t in;
    assert_int_equal(um_mux_stream_info(m, id, &in), 0);
    assert_true(in.tx_credit >= 160 * 1024); /* the window is not what stops it */
    if (queued) *queued = in.tx_buffered;
    return in.tx_full;
}

static void test_bulk_queue(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 51);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    uint32_t ids[2];
    size_t q;
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &ids[0]), 0);
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &ids[1]), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    accept_all(p.m[0]);
    /* Young, the stream queues up to its window as before. */
    assert_int_equal(top_up(p.m[0], ids[0], 128 * 1024), 128 * 1024);
    assert_false(tx_full(p.m[0], ids[0], &q));
    assert_int_equal(q, 128 * 1024);
    push(&p, ids[0], ids, 2, 512 * 1024); /* past its young bytes */
    drain_all(p.m[1], ids, 2);
    pair_settle(&p);
    /* Past them: full beyond 64 KiB queued, whatever its window. */
    assert_int_equal(top_up(p.m[0], ids[0], 64 * 1024), 64 * 1024);
    assert_false(tx_full(p.m[0], ids[0], &q)); /* 64 KiB queued: at the bound */
    assert_int_equal(q, 64 * 1024);
    assert_int_equal(top_up(p.m[0], ids[0], 1), 1);
    assert_true(tx_full(p.m[0], ids[0], NULL)); /* past it */
    /* The young stream with twice as much queued is not. */
    assert_int_equal(top_up(p.m[0], ids[1], 128 * 1024), 128 * 1024);
    assert_false(tx_full(p.m[0], ids[1], NULL));
    pair_free(&p);
}

/* Alone on the session, a stream past its young bytes is not bound by the
 * bulk queue (nobody waits behind it): it queues up to its window. */
static void test_bulk_queue_alone(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 52);
    p.rechunk = 0;
    um_addr_t d = test_dest();
    uint32_t ids[1];
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &ids[0]), 0);
    pair_settle(&p);
    accept_all(p.m[1]);
    pair_settle(&p);
    accept_all(p.m[0]);
    push(&p, ids[0], ids, 1, 512 * 1024); /* past its young bytes */
    drain_all(p.m[1], ids, 1);
    pair_settle(&p);
    assert_int_equal(top_up(p.m[0], ids[0], 128 * 1024), 128 * 1024);
    assert_false(tx_full(p.m[0], ids[0], NULL));
    pair_free(&p);
}

/* um_mux_want_pull_urgent: true while a stream we opened has its OPEN to
 * send (beside a bulk stream with bytes queued), false once the OPEN has
 * been pulled, and false for the peer's accept (OPEN_RESULT) or bulk bytes
 * alone: the tunnel's early pass (outbound_urgent) is for new streams. */
static void test_urgent_open(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, NULL, NULL, 1);
    um_addr_t d = test_dest();
    uint32_t bulk, fresh;
    assert_false(um_mux_want_pull_urgent(p.m[0]));
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &bulk), 0);
    assert_true(um_mux_want_pull_urgent(p.m[0]));
    pair_settle(&p);
    assert_false(um_mux_want_pull_urgent(p.m[0]));
    accept_all(p.m[1]);
    assert_false(um_mux_want_pull_urgent(p.m[1])); /* an OPEN_RESULT is not urgent */
    pair_settle(&p);
    accept_all(p.m[0]);
    assert_true(top_up(p.m[0], bulk, 128 * 1024) > 0);
    assert_true(um_mux_want_pull(p.m[0]));
    assert_false(um_mux_want_pull_urgent(p.m[0])); /* bulk bytes alone */
    assert_int_equal(um_mux_stream_open(p.m[0], &d, &fresh), 0);
    assert_true(um_mux_want_pull_urgent(p.m[0]));
    /* The bulk stream is young too (it has sent nothing yet): the young
     * ring may serve it first; the OPEN leaves within its bytes. */
    uint8_t rec[16384];
    int pulls = 0;
    while (um_mux_want_pull_urgent(p.m[0]) && pulls < 16) {
        size_t n = um_mux_pull(p.m[0], rec, sizeof(rec));
        assert_true(n > 0);
        assert_int_equal(um_mux_feed(p.m[1], rec, n), 0);
        pulls++;
    }
    assert_false(um_mux_want_pull_urgent(p.m[0]));
    assert_true(pulls >= 1 && pulls <= 9); /* 128 KiB of the bulk at most ahead of it */
    pair_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_young_upload), cmocka_unit_test(test_young_download),
        cmocka_unit_test(test_fair_upload),  cmocka_unit_test(test_fair_download),
        cmocka_unit_test(test_bulk_queue),   cmocka_unit_test(test_bulk_queue_alone),
        cmocka_unit_test(test_bulk_runs),    cmocka_unit_test(test_sparse_beside_bulk),
        cmocka_unit_test(test_urgent_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
