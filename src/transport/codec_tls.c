#include "transport/codec_tls.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "transport/tls_carrier.h"
#include "transport/tls_record.h"
#include "util/err.h"

/* The smallest filler record (UM_SESS_FILLER_MIN of the session layer, which
 * checks that the two agree). */
#define FILLER_MIN    27
#define NOISE_E       32
#define MSG2_MIN_REST 19 /* payload of at least 3 bytes and its tag */

static const uint8_t ccs_record[6] = {UM_TLS_CT_CCS, 3, 3, 0, 1, 1};

typedef struct {
    uint8_t sid[32];
    uint8_t fp;
} srv_state_t;

typedef struct {
    uint8_t sid[32];
    uint16_t cipher;
    um_tls_deframer_t rx; /* where the server's record stream stands */
} cli_state_t;

_Static_assert(sizeof(srv_state_t) <= UM_CODEC_STATE_MAX, "codec state");
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

static size_t tls_msg1_len(const um_codec_t *c)
{
    /* e in the key share; the rest in random, session id and ECH payload. */
    return NOISE_E + 64 + um_tls_fp_ech_len(tls_of(c)->fp, NULL, NULL);
}

static int tls_seal_flight(const um_codec_t *c, um_codec_state_t *st, const uint8_t *msg1, size_t n,
                           uint8_t *out, size_t cap, size_t *outn)
{
    const um_codec_tls_t *t = tls_of(c);
    cli_state_t *cs = (cli_state_t *)st->b;
    if (n < NOISE_E + 64 || !um_tls_fp_ech_len_ok(t->fp, n - NOISE_E - 64)) return UM_EINVAL;
    um_tls_slots_t sl;
    memcpy(sl.random, msg1 + NOISE_E, 32);
    memcpy(sl.session_id, msg1 + NOISE_E + 32, 32);
    um_tls_grease_ech_enc(t->fp, sl.ech_enc);
    sl.ech_payload = msg1 + NOISE_E + 64;
    sl.ech_payload_len = n - NOISE_E - 64;
    memcpy(cs->sid, sl.session_id, 32);
    int r = um_tls_hello_build(t->fp, t->sni, msg1, &sl, NULL, NULL, out, cap, outn);
    sodium_memzero(&sl, sizeof(sl));
    return r;
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
