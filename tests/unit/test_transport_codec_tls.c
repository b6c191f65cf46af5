/* The `tls` first-flight codec (codec_tls.h) end to end, with stand-in
 * Noise messages (random bytes of the right lengths) and stand-in fillers:
 *   - the client's flight is a ClientHello that the hello parser accepts,
 *     whose X25519 share, random, session id and ECH payload are message 1;
 *   - the server opens it back to message 1, for both fingerprints; a hello
 *     for another SNI, and every strict prefix, does not open;
 *   - the server's reply is the cover's ServerHello (our share, the client's
 *     session id), CCS and application_data records of the cover's lengths
 *     (the learned nginx flight and a cover whose first record is longer
 *     than message 2 can fill);
 *   - the client opens it back to message 2 and, through the deframer state
 *     it hands over, the rest of the flight is exactly the fillers;
 *   - the client's finish is CCS and a 53-byte record, which the server's
 *     deframer (one CCS allowed) turns into the 53 filler bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_tls.h"
#include "transport/carrier.h"
#include "transport/tls_record.h"
#include "util/err.h"

static um_tls_cover_t g_nginx;

/* A filler is `size` bytes of a recognisable pattern, counted. */
typedef struct {
    size_t calls, bytes;
    uint8_t log[65536];
} fills_t;

static int fill(void *ud, size_t size, uint8_t *out, size_t cap, size_t *outn)
{
    fills_t *f = ud;
    if (size > cap) return UM_ENOSPC;
    for (size_t i = 0; i < size; i++)
        out[i] = (uint8_t)(0xa0 + (f->calls & 0x0f));
    memcpy(f->log + f->bytes, out, size);
    f->calls++;
    f->bytes += size;
    *outn = size;
    return 0;
}

/* An in-memory inner carrier: writes are collected, reads are injected. */
typedef struct {
    um_carrier_t base;
    um_carrier_read_cb rd;
    void *ud;
    uint8_t out[256];
    size_t out_n;
} mem_t;
static int g_mem_closed;
static void m_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    (void)dr;
    ((mem_t *)c)->rd = rd;
    ((mem_t *)c)->ud = ud;
}
static int m_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    mem_t *m = (mem_t *)c;
    if (n > sizeof(m->out) - m->out_n) return UM_ENOSPC;
    memcpy(m->out + m->out_n, p, n);
    m->out_n += n;
    return 0;
}
static size_t m_queued(const um_carrier_t *c)
{
    (void)c;
    return 0;
}
static void m_close(um_carrier_t *c)
{
    g_mem_closed = 1;
    free(c);
}
static const um_carrier_ops_t mem_ops = {
    .name = "mem", .set_cbs = m_set_cbs, .write = m_write, .queued = m_queued, .close = m_close};
static mem_t *mem_new(void)
{
    mem_t *m = calloc(1, sizeof(*m));
    m->base.ops = &mem_ops;
    g_mem_closed = 0;
    return m;
}
typedef struct {
    uint8_t buf[65536];
    size_t n;
    int status;
} reads_t;
static void on_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)c;
    reads_t *r = ud;
    if (status) {
        r->status = status;
        return;
    }
    memcpy(r->buf + r->n, p, n);
    r->n += n;
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) return -1;
    const char *src = getenv("UMBRA_SRC");
    char path[1024];
    uint8_t b[8192];
    snprintf(path, sizeof(path), "%s/tests/data/tls/nginx-tls13-flight.bin", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(b, 1, sizeof(b), f);
    fclose(f);
    return um_tls_cover_learn(b, n, &g_nginx) == 0 ? 0 : -1;
}

static void one(um_tls_fp_t fp, const um_tls_cover_t *cv)
{
    um_codec_tls_t cli, srv;
    assert_int_equal(um_codec_tls_init(&cli, fp, "www.example.com"), 0);
    assert_int_equal(um_codec_tls_init(&srv, UM_TLS_FP_CHROMIUM, "www.example.com"), 0);
    um_codec_tls_set_cover(&srv, fp, cv);
    const um_codec_ops_t *o = cli.base.ops;
    um_codec_state_t cs, ss;
    memset(&cs, 0, sizeof(cs));
    memset(&ss, 0, sizeof(ss));

    /* client flight */
    uint8_t m1[4096], got[4096], wire[16384];
    size_t n1 = o->msg1_len(&cli.base, &cs), wn = 0, gn = 0, used = 0;
    assert_true(n1 >= 32 + 64 + 144 && n1 <= 32 + 64 + 240);
    randombytes_buf(m1 + 32, n1 - 32);
    uint8_t sk[32];
    randombytes_buf(sk, 32);
    crypto_scalarmult_base(m1, sk);
    assert_int_equal(o->seal_flight(&cli.base, &cs, m1, n1, wire, sizeof(wire), &wn), 0);
    assert_true(wn <= cli.base.flight_max);
    um_tls_hello_t *h = malloc(sizeof(*h));
    assert_int_equal(um_tls_hello_parse(wire, wn, h), 0);
    assert_int_equal(h->consumed, wn);
    free(h);
    assert_int_equal(o->open_flight(&srv.base, &ss, wire, wn, got, sizeof(got), &gn, &used), 0);
    assert_int_equal(gn, n1);
    assert_int_equal(used, wn);
    assert_memory_equal(got, m1, n1);
    /* Both ends bind the same transcript of the hello into the handshake;
     * a hello changed outside the slots (ALPN h2 -> h3) still opens, to the
     * same message 1, but binds another transcript: its handshake fails. */
    uint8_t bc[64], bs[64];
    assert_int_equal(o->bind(&cli.base, &cs, bc, sizeof(bc)), 32);
    assert_int_equal(o->bind(&srv.base, &ss, bs, sizeof(bs)), 32);
    assert_memory_equal(bc, bs, 32);
    uint8_t *tw = malloc(wn);
    memcpy(tw, wire, wn);
    int changed = 0;
    for (size_t i = 0; i + 2 < wn && !changed; i++)
        if (tw[i] == 2 && tw[i + 1] == 'h' && tw[i + 2] == '2') tw[i + 2] = '3', changed = 1;
    assert_true(changed);
    um_codec_state_t ts;
    memset(&ts, 0, sizeof(ts));
    assert_int_equal(o->open_flight(&srv.base, &ts, tw, wn, got, sizeof(got), &gn, &used), 0);
    assert_memory_equal(got, m1, n1);
    assert_int_equal(o->bind(&srv.base, &ts, bs, sizeof(bs)), 32);
    assert_memory_not_equal(bc, bs, 32);
    free(tw);
    for (size_t cut = 0; cut < wn; cut += 1 + cut / 3)
        assert_int_equal(o->open_flight(&srv.base, &ss, wire, cut, got, sizeof(got), &gn, &used),
                         UM_EAGAIN);
    um_codec_tls_t other;
    um_codec_state_t os;
    memset(&os, 0, sizeof(os));
    assert_int_equal(um_codec_tls_init(&other, fp, "www.example.org"), 0);
    assert_int_equal(o->open_flight(&other.base, &os, wire, wn, got, sizeof(got), &gn, &used),
                     UM_EPROTO);
    /* a browser's own hello (no umbra slots in the built shape) is not ours */
    assert_int_equal(o->open_flight(&srv.base, &os, (const uint8_t *)"\x16\x03\x01\x00\x05hello",
                                    10, got, sizeof(got), &gn, &used),
                     UM_EPROTO);

    /* server reply */
    fills_t *fs = calloc(1, sizeof(*fs));
    size_t n2 = o->msg2_len(&srv.base, &ss);
    size_t m = um_tls_msg2_rest_len(cv->rec[0]);
    assert_int_equal(n2, 32 + m);
    uint8_t m2[2048];
    randombytes_buf(m2, n2);
    uint8_t rep[16384];
    size_t rn = 0;
    assert_int_equal(o->seal_reply(&srv.base, &ss, m2, n2, fill, fs, rep, sizeof(rep), &rn), 0);
    /* The record sequence: the cover's, exactly. */
    um_tls_sh_t sh;
    assert_int_equal(um_tls_sh_parse(rep, rn, &sh), 0);
    assert_int_equal(sh.len, cv->sh_len);
    assert_memory_equal(um_tls_share_x25519(sh.group, sh.share, sh.share_len), m2, 32);
    assert_memory_equal(sh.sid, m1 + 64, 32); /* the client's session id, echoed */
    size_t at = sh.len, k = 0;
    uint8_t t;
    size_t l;
    assert_int_equal(um_tls_rec_header(rep + at, rn - at, &t, &l), 0);
    assert_int_equal(t, UM_TLS_CT_CCS);
    at += 6;
    while (at < rn) {
        assert_int_equal(um_tls_rec_header(rep + at, rn - at, &t, &l), 0);
        assert_int_equal(t, UM_TLS_CT_APPDATA);
        assert_int_equal(l, cv->rec[k]);
        k++;
        at += 5 + l;
    }
    assert_int_equal(at, rn);
    assert_int_equal(k, cv->n_rec);
    assert_int_equal(fs->bytes, (size_t)(at - sh.len - 6 - 5 * k - m));

    /* client opens it; the rest of the flight is the fillers */
    assert_int_equal(o->open_reply(&cli.base, &cs, rep, rn, got, sizeof(got), &gn, &used), 0);
    assert_int_equal(gn, n2);
    assert_memory_equal(got, m2, n2);
    for (size_t cut = 0; cut < used; cut++)
        assert_int_equal(o->open_reply(&cli.base, &cs, rep, cut, got, sizeof(got), &gn, &used),
                         UM_EAGAIN);
    assert_int_equal(o->open_reply(&cli.base, &cs, rep, rn, got, sizeof(got), &gn, &used), 0);
    /* Through the carrier the client's wrap makes, the rest of the flight
     * (fed as one read, the way it arrives) is exactly the fillers. */
    mem_t *mc = mem_new();
    um_carrier_t *tc = NULL;
    assert_int_equal(o->wrap(&cli.base, &cs, 0, &mc->base, &tc), 0);
    reads_t rd = {0};
    um_carrier_set_cbs(tc, on_read, NULL, &rd);
    mc->rd(&mc->base, rep + used, rn - used, 0, mc->ud);
    assert_int_equal(rd.n, fs->bytes);
    assert_memory_equal(rd.buf, fs->log, fs->bytes);
    assert_int_equal(rd.status, 0);
    /* Writes go out as application_data records. */
    assert_int_equal(um_carrier_write(tc, (const uint8_t *)"abc", 3), 0);
    assert_int_equal(mc->out_n, 8);
    assert_memory_equal(mc->out,
                        "\x17\x03\x03\x00\x03"
                        "abc",
                        8);
    /* An alert from the peer is an error read, not stream bytes. */
    mc->rd(&mc->base, (const uint8_t *)"\x15\x03\x03\x00\x02\x02\x00", 7, 0, mc->ud);
    assert_int_equal(rd.status, UM_EPROTO);
    um_carrier_close(tc);
    assert_true(g_mem_closed);
    um_codec_state_t bad = cs;
    bad.b[0] ^= 1;
    assert_int_equal(o->open_reply(&cli.base, &bad, rep, rn, got, sizeof(got), &gn, &used),
                     UM_EPROTO);

    /* client finish */
    fills_t *fc = calloc(1, sizeof(*fc));
    uint8_t fin[256];
    size_t fn = 0;
    assert_int_equal(o->client_finish(&cli.base, &cs, fill, fc, fin, sizeof(fin), &fn), 0);
    assert_int_equal(fn, 6 + 5 + 53);
    assert_memory_equal(fin, "\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x35", 11);
    um_tls_deframer_t d;
    um_tls_deframer_init(&d, 1);
    const uint8_t *p = fin, *span;
    size_t n = fn, sn, tot = 0;
    while (um_tls_deframe(&d, &p, &n, &span, &sn) == 1)
        tot += sn;
    assert_int_equal(tot, 53);
    free(fs);
    free(fc);
}

static void test_roundtrip_nginx_cover(void **state)
{
    (void)state;
    for (int i = 0; i < 10; i++) {
        one(UM_TLS_FP_CHROMIUM, &g_nginx);
        one(UM_TLS_FP_FIREFOX, &g_nginx);
    }
}

static void test_long_first_record(void **state)
{
    (void)state;
    um_tls_cover_t cv = g_nginx;
    cv.rec[0] = 3000; /* a coalesced flight: message 2, then a filler */
    one(UM_TLS_FP_CHROMIUM, &cv);
    cv.rec[0] = UM_TLS_MSG2_REST_MAX + 10; /* the filler would be too short */
    assert_int_equal(um_tls_msg2_rest_len(cv.rec[0]), UM_TLS_MSG2_REST_MAX + 10 - 27);
    one(UM_TLS_FP_CHROMIUM, &cv);
    um_tls_cover_default(&cv);
    one(UM_TLS_FP_FIREFOX, &cv);
}

static void test_init(void **state)
{
    (void)state;
    um_codec_tls_t c;
    assert_int_equal(um_codec_tls_init(&c, UM_TLS_FP_CHROMIUM, ""), UM_EINVAL);
    assert_int_equal(um_codec_tls_init(&c, UM_TLS_FP_CHROMIUM, "bad name"), UM_EINVAL);
    assert_int_equal(um_codec_tls_init(&c, (um_tls_fp_t)7, "a.b"), UM_EINVAL);
    assert_int_equal(um_codec_tls_init(&c, UM_TLS_FP_FIREFOX, "a.b"), 0);
    assert_string_equal(c.base.ops->prologue, "umbra/1 tls");
    assert_int_equal(c.base.ops->unauth, UM_UNAUTH_COVER);
    /* a cover whose first record cannot carry message 2 is not taken */
    um_tls_cover_t cv = g_nginx;
    cv.rec[0] = 10;
    um_codec_tls_set_cover(&c, UM_TLS_FP_FIREFOX, &cv);
    assert_int_equal(c.cover[UM_TLS_FP_FIREFOX].rec[0], 36);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_roundtrip_nginx_cover),
        cmocka_unit_test(test_long_first_record),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
