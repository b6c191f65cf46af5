#include "transport/codec_tls.h"

#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/tls_carrier.h"
#include "transport/tls_record.h"
#include "util/err.h"

/* The smallest filler record (UM_SESS_FILLER_MIN of the session layer, which
 * checks that the two agree). */
#define FILLER_MIN     27
#define NOISE_E        32
#define MSG2_MIN_REST  19                   /* payload of at least 3 bytes and its tag */
#define UM_HS_ZERO_MAX (NOISE_E + 64 + 256) /* the longest message 1 a hello carries */

static const uint8_t ccs_record[6] = {UM_TLS_CT_CCS, 3, 3, 0, 1, 1};

typedef struct {
    uint8_t sid[32];
    uint8_t bind[32]; /* the hello's transcript hash (PROTOCOL.md 8.2) */
    uint8_t fp;
} srv_state_t;

typedef struct {
    uint8_t sid[32];
    uint8_t bind[32];
    uint8_t seed[32];    /* the builder's randomness: the same hello twice */
    uint8_t ech_enc[32]; /* the GREASE ECH enc of this hello */
    uint16_t ech_len;
    uint16_t cipher;
    um_tls_deframer_t rx; /* where the server's record stream stands */
} cli_state_t;

/* A deterministic random stream for the builder: ChaCha20 under `seed`, so
 * that the hello built around zeros (for the transcript hash) and the hello
 * built around message 1 differ in the slots only. */
typedef struct {
    const uint8_t *key;
    uint64_t block;
    uint8_t buf[1024];
    size_t used;
} seeded_t;

static void seeded_fill(void *ctx, uint8_t *out, size_t n)
{
    seeded_t *r = ctx;
    while (n) {
        if (r->used == sizeof(r->buf)) {
            uint8_t nonce[12] = {0};
            for (int i = 0; i < 8; i++)
                nonce[4 + i] = (uint8_t)(r->block >> (8 * i));
            r->block++;
            crypto_stream_chacha20_ietf(r->buf, sizeof(r->buf), nonce, r->key);
            r->used = 0;
        }
        size_t take = sizeof(r->buf) - r->used < n ? sizeof(r->buf) - r->used : n;
        memcpy(out, r->buf + r->used, take);
        r->used += take;
        out += take;
        n -= take;
    }
}

/* PROTOCOL.md 8.2: BLAKE2b-256 of the ClientHello handshake message with the
 * bytes that carry umbra's flight set to zero (random, legacy_session_id,
 * the X25519 share's key, the GREASE ECH payload, and the x25519 part of an
 * X25519MLKEM768 share that repeats the X25519 share's key). Everything else
 * a middlebox could change is bound into the handshake. */
static int transcript(const um_tls_hello_t *h, uint8_t out[32])
{
    static const size_t off_random = 6, off_sid = 39;
    uint8_t m[UM_TLS_HELLO_MAX];
    size_t n = h->msg_len;
    if (n > sizeof(m) || n < off_sid + 32 || h->session_id_len != 32 || !h->has_ech)
        return UM_EPROTO;
    memcpy(m, h->msg, n);
    memset(m + off_random, 0, 32);
    memset(m + off_sid, 0, 32);
    memset(m + h->ech_payload.off, 0, h->ech_payload.len);
    const um_tls_keyshare_t *x = NULL;
    for (unsigned i = 0; i < h->n_keyshare; i++)
        if (h->keyshare[i].group == UM_TLS_GROUP_X25519 && h->keyshare[i].key.len == 32)
            x = &h->keyshare[i];
    if (!x) return UM_EPROTO;
    for (unsigned i = 0; i < h->n_keyshare; i++) {
        const um_tls_keyshare_t *k = &h->keyshare[i];
        if (k->group == UM_TLS_GROUP_X25519MLKEM768 && k->key.len == UM_TLS_X25519MLKEM768_LEN &&
            memcmp(h->msg + k->key.off + UM_TLS_MLKEM768_EK_LEN, h->msg + x->key.off, 32) == 0)
            memset(m + k->key.off + UM_TLS_MLKEM768_EK_LEN, 0, 32);
    }
    memset(m + x->key.off, 0, 32);
    crypto_generichash(out, 32, m, n, NULL, 0);
    sodium_memzero(m, n);
    return 0;
}

_Static_assert(sizeof(srv_state_t) <= UM_CODEC_STATE_MAX, "codec state");
_Static_assert(offsetof(srv_state_t, bind) == offsetof(cli_state_t, bind), "bind offset");
_Static_assert(sizeof(cli_state_t) <= UM_CODEC_STATE_MAX, "codec state");

void um_tls_grease_ech_enc(um_tls_fp_t fp, uint8_t enc[32])
{
    if (fp == UM_TLS_FP_CHROMIUM) {
        /* Chromium's is a fresh X25519 public key (on the curve, top bit
         * clear): a random string would be told apart within a few hellos. */
        uint8_t sk[32];
        randombytes_buf(sk, sizeof(sk));
        crypto_scalarmult_base(enc, sk);
        sodium_memzero(sk, sizeof(sk));
    } else {
        randombytes_buf(enc, 32); /* Firefox's is 32 random bytes */
    }
}

static const um_codec_tls_t *tls_of(const um_codec_t *c)
{
    return (const um_codec_tls_t *)c;
}

size_t um_tls_msg2_rest_len(size_t rec0)
{
    if (rec0 < MSG2_MIN_REST) return 0;
    if (rec0 <= UM_TLS_MSG2_REST_MAX) return rec0;
    if (rec0 - UM_TLS_MSG2_REST_MAX >= FILLER_MIN) return UM_TLS_MSG2_REST_MAX;
    return rec0 - FILLER_MIN;
}

static int cover_ok(const um_tls_cover_t *cv)
{
    return cv->sh_len && cv->n_rec && um_tls_msg2_rest_len(cv->rec[0]) != 0;
}

/* ---- client ---- */

/* Builds this flight's hello around slots (NULL: zeros) with the state's
 * randomness. */
static int build(const um_codec_tls_t *t, const cli_state_t *cs, const uint8_t *msg1, uint8_t *out,
                 size_t cap, size_t *outn)
{
    static const uint8_t zero[UM_HS_ZERO_MAX];
    um_tls_slots_t sl;
    const uint8_t *m = msg1 ? msg1 : zero;
    memcpy(sl.random, m + NOISE_E, 32);
    memcpy(sl.session_id, m + NOISE_E + 32, 32);
    memcpy(sl.ech_enc, cs->ech_enc, 32);
    sl.ech_payload = m + NOISE_E + 64;
    sl.ech_payload_len = cs->ech_len;
    seeded_t r = {.key = cs->seed, .used = sizeof(r.buf)};
    int ret = um_tls_hello_build(t->fp, t->sni, m, &sl, seeded_fill, &r, out, cap, outn);
    sodium_memzero(&sl, sizeof(sl));
    sodium_memzero(&r, sizeof(r));
    return ret;
}

static size_t tls_msg1_len(const um_codec_t *c, um_codec_state_t *st)
{
    const um_codec_tls_t *t = tls_of(c);
    cli_state_t *cs = (cli_state_t *)st->b;
    uint8_t tmpl[UM_TLS_BUILD_MAX];
    size_t tn = 0;
    randombytes_buf(cs->seed, sizeof(cs->seed));
    um_tls_grease_ech_enc(t->fp, cs->ech_enc);
    cs->ech_len = (uint16_t)um_tls_fp_ech_len(t->fp, NULL, NULL);
    /* The transcript of this flight's hello, from the same hello built
     * around zeros: the handshake is bound to every other byte of it. */
    um_tls_hello_t *h = malloc(sizeof(*h));
    int r = h ? build(t, cs, NULL, tmpl, sizeof(tmpl), &tn) : UM_ENOMEM;
    if (r == 0) r = um_tls_hello_parse(tmpl, tn, h);
    if (r == 0) r = transcript(h, cs->bind);
    free(h);
    if (r) return 0; /* the handshake then refuses the length */
    /* e in the key share; the rest in random, session id and ECH payload. */
    return NOISE_E + 64 + cs->ech_len;
}

static size_t tls_bind(const um_codec_t *c, const um_codec_state_t *st, uint8_t *out, size_t cap)
{
    (void)c;
    /* The server's and the client's state both begin with sid, then bind. */
    const uint8_t *b = ((const srv_state_t *)st->b)->bind;
    if (cap < 32) return 0;
    memcpy(out, b, 32);
    return 32;
}

static int tls_seal_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg1, size_t n,
                           uint8_t *out, size_t cap, size_t *outn)
{
    const um_codec_tls_t *t = tls_of(c);
    cli_state_t *cs = (cli_state_t *)st->b;
    if (n != NOISE_E + 64 + (size_t)cs->ech_len || !um_tls_fp_ech_len_ok(t->fp, cs->ech_len))
        return UM_EINVAL; /* msg1_len first */
    memcpy(cs->sid, msg1 + NOISE_E + 32, 32);
    return build(t, cs, msg1, out, cap, outn);
}

static int tls_open_reply(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                          uint8_t *msg2, size_t cap, size_t *msgn, size_t *consumed)
{
    (void)c;
    cli_state_t *cs = (cli_state_t *)st->b;
    um_tls_sh_t sh;
    int r = um_tls_sh_parse(p, n, &sh);
    if (r) return r == UM_EAGAIN ? r : UM_EPROTO;
    const uint8_t *x = um_tls_share_x25519(sh.group, sh.share, sh.share_len);
    if (!x || sh.sid_len != 32 || sodium_memcmp(sh.sid, cs->sid, 32) != 0) return UM_EPROTO;
    size_t at = sh.len;
    uint8_t type = 0;
    size_t len = 0;
    if ((r = um_tls_rec_header(p + at, n - at, &type, &len)) != 0) return r;
    if (type == UM_TLS_CT_CCS) {
        if (len != 1) return UM_EPROTO;
        if (n - at < UM_TLS_REC_HDR + 1) return UM_EAGAIN;
        if (p[at + UM_TLS_REC_HDR] != 1) return UM_EPROTO;
        at += UM_TLS_REC_HDR + 1;
        if ((r = um_tls_rec_header(p + at, n - at, &type, &len)) != 0) return r;
    }
    if (type != UM_TLS_CT_APPDATA) return UM_EPROTO;
    size_t m = um_tls_msg2_rest_len(len);
    if (m == 0 || cap < NOISE_E + m) return UM_EPROTO;
    if (n - at - UM_TLS_REC_HDR < m) return UM_EAGAIN;
    memcpy(msg2, x, NOISE_E);
    memcpy(msg2 + NOISE_E, p + at + UM_TLS_REC_HDR, m);
    *msgn = NOISE_E + m;
    *consumed = at + UM_TLS_REC_HDR + m;
    cs->cipher = sh.cipher;
    um_tls_deframer_init(&cs->rx, 0);
    cs->rx.left = len - m; /* the filler that completes the first record */
    return 0;
}

static int filler_record(um_codec_filler_fn fill, void *ud, size_t len, int with_header,
                         uint8_t *out, size_t cap, size_t *w)
{
    size_t hn = with_header ? UM_TLS_REC_HDR : 0, fn = 0;
    if (cap - *w < hn + len) return UM_ENOSPC;
    if (with_header) um_tls_rec_put_header(out + *w, UM_TLS_CT_APPDATA, len);
    int r = fill(ud, len, out + *w + hn, cap - *w - hn, &fn);
    if (r == 0 && fn != len) r = UM_EPROTO;
    if (r == 0) *w += hn + len;
    return r;
}

static int tls_client_finish(const um_codec_t *c, um_codec_state_t *st, um_codec_filler_fn fill,
                             void *fill_ud, uint8_t *out, size_t cap, size_t *outn)
{
    (void)c;
    const cli_state_t *cs = (const cli_state_t *)st->b;
    size_t w = 0;
    if (!fill || cap < sizeof(ccs_record)) return UM_EINVAL;
    memcpy(out, ccs_record, sizeof(ccs_record));
    w = sizeof(ccs_record);
    /* Finished: verify_data of the suite's hash, handshake header, content
     * type and tag. */
    size_t fin = (cs->cipher == 0x1302 ? 48 : 32) + 4 + 1 + 16;
    int r = filler_record(fill, fill_ud, fin, 1, out, cap, &w);
    if (r == 0) *outn = w;
    return r;
}

/* ---- server ---- */

static int tls_open_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *p, size_t n,
                           uint8_t *msg1, size_t cap, size_t *msgn, size_t *consumed)
{
    const um_codec_tls_t *t = tls_of(c);
    srv_state_t *ss = (srv_state_t *)st->b;
    /* The parsed hello is large (it keeps the whole message): static would
     * not be reentrant, so it lives on the caller's stack frame here. */
    um_tls_hello_t h;
    int r = um_tls_hello_parse(p, n, &h);
    if (r) return r == UM_EAGAIN ? r : UM_EPROTO;
    if (!h.has_sni || h.sni.len != strlen(t->sni) ||
        strncasecmp((const char *)um_tls_at(&h, h.sni), t->sni, h.sni.len) != 0)
        return UM_EPROTO;
    um_tls_slots_t sl;
    uint8_t x[32];
    if (um_tls_hello_slots(&h, &sl, x) != 0) return UM_EPROTO;
    size_t need = NOISE_E + 64 + sl.ech_payload_len;
    if (cap < need) return UM_EPROTO;
    memcpy(msg1, x, 32);
    memcpy(msg1 + NOISE_E, sl.random, 32);
    memcpy(msg1 + NOISE_E + 32, sl.session_id, 32);
    memcpy(msg1 + NOISE_E + 64, sl.ech_payload, sl.ech_payload_len);
    memcpy(ss->sid, sl.session_id, 32);
    if (transcript(&h, ss->bind) != 0) {
        sodium_memzero(&h, sizeof(h));
        return UM_EPROTO;
    }
    ss->fp = um_tls_fp_ech_len_ok(UM_TLS_FP_FIREFOX, sl.ech_payload_len) ? UM_TLS_FP_FIREFOX
                                                                         : UM_TLS_FP_CHROMIUM;
    *msgn = need;
    *consumed = h.consumed;
    sodium_memzero(&h, sizeof(h));
    return 0;
}

static const um_tls_cover_t *cover_for(const um_codec_tls_t *t, const srv_state_t *ss)
{
    return &t->cover[ss->fp <= UM_TLS_FP_MAX ? ss->fp : 0];
}

static size_t tls_msg2_len(const um_codec_t *c, const um_codec_state_t *st)
{
    const um_tls_cover_t *cv = cover_for(tls_of(c), (const srv_state_t *)st->b);
    return NOISE_E + um_tls_msg2_rest_len(cv->rec[0]);
}

static int tls_seal_reply(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg2, size_t n,
                          um_codec_filler_fn fill, void *fill_ud, uint8_t *out, size_t cap,
                          size_t *outn)
{
    const srv_state_t *ss = (const srv_state_t *)st->b;
    const um_tls_cover_t *cv = cover_for(tls_of(c), ss);
    size_t m = um_tls_msg2_rest_len(cv->rec[0]), w = 0;
    if (!fill || m == 0 || n != NOISE_E + m) return UM_EINVAL;
    uint8_t rnd[32], ct[UM_TLS_MLKEM768_CT_LEN];
    randombytes_buf(rnd, sizeof(rnd));
    randombytes_buf(ct, sizeof(ct)); /* any 1088 bytes decode as a ciphertext */
    int r = um_tls_cover_server_hello(cv, rnd, ss->sid, msg2, ct, out, cap, &w);
    if (r) return r;
    if (cv->ccs) {
        if (cap - w < sizeof(ccs_record)) return UM_ENOSPC;
        memcpy(out + w, ccs_record, sizeof(ccs_record));
        w += sizeof(ccs_record);
    }
    if (cap - w < (size_t)UM_TLS_REC_HDR + cv->rec[0]) return UM_ENOSPC;
    um_tls_rec_put_header(out + w, UM_TLS_CT_APPDATA, cv->rec[0]);
    memcpy(out + w + UM_TLS_REC_HDR, msg2 + NOISE_E, m);
    w += UM_TLS_REC_HDR + m;
    if (cv->rec[0] > m && (r = filler_record(fill, fill_ud, cv->rec[0] - m, 0, out, cap, &w)))
        return r;
    for (size_t i = 1; i < cv->n_rec; i++) {
        if (cv->rec[i] < FILLER_MIN) continue; /* too short to carry a record */
        if ((r = filler_record(fill, fill_ud, cv->rec[i], 1, out, cap, &w)) != 0) return r;
    }
    *outn = w;
    return 0;
}

static int tls_wrap(const um_codec_t *c, const um_codec_state_t *st, int server_side,
                    um_carrier_t *inner, um_carrier_t **out)
{
    (void)c;
    um_tls_deframer_t rx;
    if (server_side)
        um_tls_deframer_init(&rx, 1); /* the client's CCS comes first */
    else
        rx = ((const cli_state_t *)st->b)->rx;
    return um_tls_carrier_new(inner, &rx, out);
}

const um_codec_ops_t um_codec_tls_ops = {
    .name = "tls",
    .prologue = "umbra/1 tls",
    .unauth = UM_UNAUTH_COVER,
    .msg1_len = tls_msg1_len,
    .seal_flight = tls_seal_flight,
    .open_reply = tls_open_reply,
    .open_flight = tls_open_flight,
    .msg2_len = tls_msg2_len,
    .seal_reply = tls_seal_reply,
    .bind = tls_bind,
    .client_finish = tls_client_finish,
    .wrap = tls_wrap,
};

int um_codec_tls_init(um_codec_tls_t *c, um_tls_fp_t fp, const char *sni)
{
    if (!c || fp > UM_TLS_FP_MAX || !um_tls_sni_ok(sni, NULL)) return UM_EINVAL;
    memset(c, 0, sizeof(*c));
    c->base.ops = &um_codec_tls_ops;
    c->base.flight_max = UM_TLS_BUILD_MAX + 4096; /* a browser's hello, with room */
    c->base.reply_max = UM_TLS_SH_MAX + 6 + UM_TLS_REC_HDR + UM_TLS_MSG2_REST_MAX;
    c->fp = fp;
    memcpy(c->sni, sni, strlen(sni) + 1);
    for (int i = 0; i <= UM_TLS_FP_MAX; i++)
        um_tls_cover_default(&c->cover[i]);
    return 0;
}

void um_codec_tls_set_cover(um_codec_tls_t *c, um_tls_fp_t fp, const um_tls_cover_t *cv)
{
    if (fp <= UM_TLS_FP_MAX && cover_ok(cv)) c->cover[fp] = *cv;
}
