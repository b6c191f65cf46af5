/* The pre-auth core (session/preauth.h) driven over one input, with the
 * properties it must keep. Shared by the fuzz target (fuzz_session_preauth.c)
 * and the seed generator (seeds_session_preauth.c), so that the generator's
 * flights are made for exactly the gate, codecs and clock the target uses.
 *
 * Input: byte 0 picks the codec (value % 5: tcp with shape 0..3, or tls),
 * byte 1 the chunking (0: one feed; otherwise feed sizes drawn from a small
 * PRNG seeded with it, up to a bound its top bits pick, zero-length feeds
 * when bit 4 is set), the rest are the wire bytes.
 *
 * Every run builds a fresh gate (fixed server key, one fixed client key, a
 * small replay filter), so a seed flight authenticates on every replay, and
 * uses a fixed wall clock that matches the seeds' timestamps. A violated
 * property traps. */
#ifndef UM_FUZZ_PREAUTH_FIXTURE_H
#define UM_FUZZ_PREAUTH_FIXTURE_H

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "session/gate.h"
#include "session/preauth.h"
#include "transport/codec_tls.h"
#include "transport/tls_record.h"
#include "transport/tls_shello.h"
#include "util/err.h"

#define PA_MODES      5 /* tcp shapes 0..3, tls */
#define PA_MODE_TLS   4
#define PA_SNI        "www.example.com"
#define PA_WALL_S     1767225600u /* 2026-01-01T00:00:00Z: the seeds' timestamp */
#define PA_NOW_MS     1000000u
#define PA_REPLAY     64 /* replay filter entries */
#define PA_FILLER_MIN 27 /* a filler record's least length (codec_tls.c) */

#define PA_CHECK(x)                                                                                \
    do {                                                                                           \
        if (!(x)) __builtin_trap();                                                                \
    } while (0)

static const uint8_t pa_server_priv[32] = {
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};
static const uint8_t pa_client_priv[32] = {
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};

/* The server's codec for a mode (either kind fits in the union). */
typedef union {
    um_codec_t base;
    um_codec_tcp_t tcp;
    um_codec_tls_t tls;
} pa_codec_t;

static inline void pa_codec_server(pa_codec_t *c, unsigned mode, const uint8_t server_pub[32])
{
    if (mode == PA_MODE_TLS)
        PA_CHECK(um_codec_tls_init(&c->tls, UM_TLS_FP_CHROMIUM, PA_SNI) == 0);
    else
        PA_CHECK(um_codec_tcp_init(&c->tcp, server_pub, (uint8_t)mode, UM_HS_MSG1_MIN,
                                   UM_HS_MSG2_MIN) == 0);
}

/* Feed sizes. */
typedef struct {
    uint32_t s;
    size_t max;
    int zeros;
    int whole;
} pa_chunks_t;

static inline void pa_chunks_init(pa_chunks_t *k, uint8_t b)
{
    static const size_t bound[8] = {1, 2, 5, 16, 64, 300, 1500, 5000};
    k->whole = b == 0;
    k->s = 0x9e3779b9u * (b | 0x100u);
    k->max = bound[b >> 5];
    k->zeros = (b & 0x10) != 0;
}

static inline size_t pa_chunk(pa_chunks_t *k, size_t left)
{
    if (k->whole) return left;
    k->s ^= k->s << 13;
    k->s ^= k->s >> 17;
    k->s ^= k->s << 5;
    size_t n = k->zeros ? k->s % (k->max + 1) : 1 + k->s % k->max;
    return n < left ? n : left;
}

static inline int pa_gate_new(um_gate_t **g)
{
    uint8_t cpub[32];
    um_keyset_t *ks = um_keyset_new();
    if (!ks) return UM_ENOMEM;
    um_key_public(cpub, pa_client_priv);
    int r = um_keyset_add(ks, cpub);
    if (r == 0) r = um_gate_new(pa_server_priv, ks, 0, PA_REPLAY, false, NULL, g);
    um_keyset_unref(ks);
    return r;
}

/* The reply of a tcp codec, opened as the client does. */
static inline void pa_check_tcp_reply(const pa_codec_t *c, const uint8_t *rep, size_t rn)
{
    uint8_t msg2[UM_HS_MSG_MAX];
    size_t mn = 0, used = 0;
    um_codec_state_t st;
    memset(&st, 0, sizeof(st));
    PA_CHECK(rn <= c->base.reply_max);
    PA_CHECK(c->base.ops->open_reply(&c->base, &st, rep, rn, msg2, sizeof(msg2), &mn, &used) == 0);
    PA_CHECK(used == rn && mn >= UM_HS_MSG2_MIN);
}

/* The reply of the tls codec: the default cover's ServerHello with the
 * hello's session id echoed, its CCS, then application_data records of the
 * cover's lengths; and the client side of the codec opens it. flight is the
 * authenticated hello. */
static inline void pa_check_tls_reply(const pa_codec_t *c, const uint8_t *flight, size_t fn,
                                      const uint8_t *rep, size_t rn)
{
    const um_codec_ops_t *o = c->base.ops;
    um_tls_cover_t cv;
    um_tls_cover_default(&cv);
    /* The hello's slots again (the core's state is its own). */
    uint8_t msg1[UM_HS_MSG_MAX], msg2[UM_HS_MSG_MAX], hello[UM_TLS_BUILD_MAX + 4096];
    size_t n1 = 0, used = 0, mn = 0, hn = 0;
    um_codec_state_t ss, cs;
    memset(&ss, 0, sizeof(ss));
    memset(&cs, 0, sizeof(cs));
    PA_CHECK(o->open_flight(&c->base, &ss, flight, fn, msg1, sizeof(msg1), &n1, &used) == 0);
    PA_CHECK(used == fn && n1 > 96);

    um_tls_sh_t sh;
    PA_CHECK(um_tls_sh_parse(rep, rn, &sh) == 0);
    PA_CHECK(sh.len == cv.sh_len && sh.cipher == cv.cipher && sh.group == cv.group);
    PA_CHECK(sh.sid_len == 32 && memcmp(sh.sid, msg1 + 64, 32) == 0);
    const uint8_t *x = um_tls_share_x25519(sh.group, sh.share, sh.share_len);
    PA_CHECK(x != NULL);
    size_t at = sh.len, k = 0, len = 0;
    uint8_t type = 0;
    PA_CHECK(cv.ccs && um_tls_rec_header(rep + at, rn - at, &type, &len) == 0);
    PA_CHECK(type == UM_TLS_CT_CCS && len == 1 && rep[at + UM_TLS_REC_HDR] == 1);
    at += UM_TLS_REC_HDR + 1;
    for (size_t i = 0; i < cv.n_rec; i++) {
        if (i > 0 && cv.rec[i] < PA_FILLER_MIN) continue; /* the codec skips these */
        PA_CHECK(um_tls_rec_header(rep + at, rn - at, &type, &len) == 0);
        PA_CHECK(type == UM_TLS_CT_APPDATA && len == cv.rec[i] && rn - at >= UM_TLS_REC_HDR + len);
        at += UM_TLS_REC_HDR + len;
        k++;
    }
    PA_CHECK(at == rn && k > 0);

    /* The client side: a client codec that sealed this message 1 (which
     * sets the session id it expects) opens the reply to message 2, whose
     * ephemeral is the ServerHello's share. */
    um_codec_tls_t cli;
    um_tls_fp_t fp =
        um_tls_fp_ech_len_ok(UM_TLS_FP_FIREFOX, n1 - 96) ? UM_TLS_FP_FIREFOX : UM_TLS_FP_CHROMIUM;
    PA_CHECK(um_codec_tls_init(&cli, fp, PA_SNI) == 0);
    /* msg1_len prepares the flight (and draws its ECH length): draw until
     * it is this message's length (one of four for Chromium). */
    int tries = 0;
    while (o->msg1_len(&cli.base, &cs) != n1)
        PA_CHECK(++tries < 256);
    PA_CHECK(o->seal_flight(&cli.base, &cs, msg1, n1, hello, sizeof(hello), &hn) == 0);
    PA_CHECK(o->open_reply(&cli.base, &cs, rep, rn, msg2, sizeof(msg2), &mn, &used) == 0);
    PA_CHECK(mn == 32 + um_tls_msg2_rest_len(cv.rec[0]) && used <= rn);
    PA_CHECK(memcmp(msg2, x, 32) == 0);
    sodium_memzero(&cs, sizeof(cs));
    sodium_memzero(&ss, sizeof(ss));
}

typedef struct {
    int established;
    int why; /* the REJECT reason */
    size_t fed, kept;
} pa_outcome_t;

/* Runs one input through the core; traps on a broken property. */
static inline void pa_run(const uint8_t *data, size_t size, pa_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    if (size < 2) return;
    unsigned mode = data[0] % PA_MODES;
    const uint8_t *p = data + 2;
    size_t n = size - 2;

    um_gate_t *g = NULL;
    PA_CHECK(pa_gate_new(&g) == 0);
    pa_codec_t c;
    pa_codec_server(&c, mode, um_gate_hs(g)->s_pub);
    um_sess_cfg_t scfg;
    memset(&scfg, 0, sizeof(scfg));

    um_preauth_t pa;
    um_pa_result_t *res = malloc(sizeof(*res));
    PA_CHECK(res != NULL);
    um_preauth_init(&pa, &c.base, g);
    pa_chunks_t k;
    pa_chunks_init(&k, data[1]);

    um_pa_verdict_t v = UM_PA_MORE;
    size_t off = 0, kept = 0, rounds = 0;
    const uint8_t *q;
    while (off < n && rounds++ < 4 * n + 16) {
        size_t m = pa_chunk(&k, n - off), taken = 99999;
        um_pa_verdict_t w =
            um_preauth_feed(&pa, p + off, m, &taken, PA_NOW_MS, PA_WALL_S, &scfg, res);
        PA_CHECK(taken <= m);
        PA_CHECK(v == UM_PA_MORE || w == UM_PA_REJECT); /* decided stays decided */
        PA_CHECK(taken == m || w == UM_PA_REJECT);      /* only a full buffer refuses */
        if (v == UM_PA_MORE && w == UM_PA_REJECT) out->why = res->why;
        /* Kept: exactly the bytes taken, in order, within the bound; the
         * bytes not taken are the tail of this feed (the glue's `more`). */
        kept += taken;
        size_t qn = um_preauth_bytes(&pa, &q);
        PA_CHECK(qn == kept && qn <= c.base.flight_max);
        PA_CHECK(qn == 0 || memcmp(q, p, qn) == 0);
        PA_CHECK(taken == m || qn == c.base.flight_max);
        off += m;
        v = w;
        if (w == UM_PA_ESTABLISHED) break;
    }
    if (v == UM_PA_MORE) {
        v = um_preauth_end(&pa, res);
        PA_CHECK(v == UM_PA_REJECT && res->why == UM_EPIPE);
        out->why = res->why;
    }
    out->fed = off;
    out->kept = um_preauth_bytes(&pa, &q);

    if (v == UM_PA_ESTABLISHED) {
        out->established = 1;
        uint8_t cpub[32];
        um_key_public(cpub, pa_client_priv);
        PA_CHECK(res->sess != NULL && memcmp(res->client, cpub, 32) == 0);
        PA_CHECK(res->reply_len > 0 && res->reply_len <= sizeof(res->reply));
        /* The rest is what followed the flight, in the core's buffer. */
        size_t qn = um_preauth_bytes(&pa, &q);
        PA_CHECK(res->rest >= q && res->rest + res->rest_len == q + qn);
        size_t used = (size_t)(res->rest - q);
        PA_CHECK(used > 0);
        if (mode == PA_MODE_TLS)
            pa_check_tls_reply(&c, q, used, res->reply, res->reply_len);
        else
            pa_check_tcp_reply(&c, res->reply, res->reply_len);
        um_sess_free(res->sess);

        /* Only a real flight gets in, and only once: the same flight again,
         * on the same gate, is a replay. */
        um_preauth_t pb;
        um_pa_result_t *rb = malloc(sizeof(*rb));
        size_t taken = 0;
        PA_CHECK(rb != NULL);
        um_preauth_init(&pb, &c.base, g);
        um_pa_verdict_t w =
            um_preauth_feed(&pb, q, used, &taken, PA_NOW_MS + 1, PA_WALL_S, &scfg, rb);
        PA_CHECK(w == UM_PA_REJECT && rb->why == UM_EREPLAY && rb->sess == NULL);
        um_preauth_free(&pb);
        free(rb);
    } else {
        /* A reject: nothing for the caller, and every byte fed is there for
         * the splice. */
        PA_CHECK(res->sess == NULL);
        PA_CHECK(um_preauth_end(&pa, res) == UM_PA_REJECT && res->sess == NULL);
        PA_CHECK(out->kept == (off < c.base.flight_max ? off : c.base.flight_max));
    }
    um_preauth_free(&pa);
    free(res);
    um_gate_unref(g);
}

#endif
