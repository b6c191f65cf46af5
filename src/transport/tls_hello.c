/* ClientHello parser (RFC 8446 sections 4.1.2 and 5.1; ECH from
 * draft-ietf-tls-esni section 5; GREASE from RFC 8701). Pure: see
 * tls_hello.h. */
#include "transport/tls_hello.h"

#include <stddef.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

#define REC_HDR         5
#define REC_MAX         16384 /* TLSPlaintext.length limit */
#define HS_CLIENT_HELLO 1

/* A bounds-checked reader over h->msg. Any short read sets bad and returns
 * zeros, so a parse step can run to its end and be checked once. */
typedef struct {
    const uint8_t *p;
    size_t off, end;
    int bad;
} rd_t;

static int rd_need(rd_t *r, size_t k)
{
    if (r->bad || r->end - r->off < k) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

static unsigned rd_u8(rd_t *r)
{
    if (!rd_need(r, 1)) return 0;
    return r->p[r->off++];
}

static unsigned rd_u16(rd_t *r)
{
    if (!rd_need(r, 2)) return 0;
    unsigned v = um_ld16(r->p + r->off);
    r->off += 2;
    return v;
}

/* Takes k bytes as a span. */
static um_tls_span_t rd_span(rd_t *r, size_t k)
{
    um_tls_span_t s = {0, 0};
    if (!rd_need(r, k)) return s;
    s.off = (uint16_t)r->off;
    s.len = (uint16_t)k;
    r->off += k;
    return s;
}

/* A sub-reader over the next k bytes. */
static rd_t rd_sub(rd_t *r, size_t k)
{
    rd_t s = {r->p, r->off, r->off, 1};
    if (!rd_need(r, k)) return s;
    s.end = r->off + k;
    s.bad = 0;
    r->off += k;
    return s;
}

static int rd_done(const rd_t *r)
{
    return !r->bad && r->off == r->end;
}

/* A uint16 list with a len16 (or len8) prefix that fills the extension
 * exactly, non-empty. */
static int ext_u16_list(rd_t e, int len8, um_tls_span_t *out, unsigned *grease, unsigned flag)
{
    size_t k = len8 ? rd_u8(&e) : rd_u16(&e);
    *out = rd_span(&e, k);
    if (!rd_done(&e) || k == 0 || k % 2) return UM_EPROTO;
    for (size_t i = 0; i < k; i += 2)
        if (um_tls_is_grease(um_ld16(e.p + out->off + i))) *grease |= flag;
    return 0;
}

static int ext_sni(um_tls_hello_t *h, rd_t e)
{
    size_t k = rd_u16(&e);
    rd_t l = rd_sub(&e, k);
    if (!rd_done(&e) || k == 0) return UM_EPROTO;
    while (!l.bad && l.off < l.end) {
        unsigned type = rd_u8(&l);
        size_t nl = rd_u16(&l);
        um_tls_span_t name = rd_span(&l, nl);
        if (l.bad || nl == 0) return UM_EPROTO;
        if (type == 0 && !h->has_sni) {
            if (nl > UM_TLS_SNI_MAX) return UM_EPROTO;
            h->has_sni = 1;
            h->sni = name;
        }
    }
    return rd_done(&l) ? 0 : UM_EPROTO;
}

static int ext_alpn(um_tls_hello_t *h, rd_t e)
{
    size_t k = rd_u16(&e);
    h->alpn = rd_span(&e, k);
    if (!rd_done(&e) || k == 0) return UM_EPROTO;
    rd_t l = {h->msg, h->alpn.off, (size_t)h->alpn.off + k, 0};
    while (!l.bad && l.off < l.end) {
        size_t nl = rd_u8(&l);
        um_tls_span_t name = rd_span(&l, nl);
        if (l.bad || nl == 0) return UM_EPROTO;
        if (nl == 2 && um_tls_is_grease(um_ld16(h->msg + name.off)))
            h->grease |= UM_TLS_GREASE_ALPN;
    }
    return rd_done(&l) ? 0 : UM_EPROTO;
}

static int ext_key_share(um_tls_hello_t *h, rd_t e)
{
    size_t k = rd_u16(&e);
    rd_t l = rd_sub(&e, k);
    if (!rd_done(&e)) return UM_EPROTO;
    while (!l.bad && l.off < l.end) {
        if (h->n_keyshare == UM_TLS_KEYSHARE_MAX) return UM_EPROTO;
        um_tls_keyshare_t *ks = &h->keyshare[h->n_keyshare++];
        ks->group = (uint16_t)rd_u16(&l);
        size_t kl = rd_u16(&l);
        ks->key = rd_span(&l, kl);
        if (l.bad || kl == 0) return UM_EPROTO;
        if (um_tls_is_grease(ks->group)) h->grease |= UM_TLS_GREASE_KEYSHARE;
    }
    return rd_done(&l) ? 0 : UM_EPROTO;
}

static int ext_ech(um_tls_hello_t *h, rd_t e)
{
    h->has_ech = 1;
    h->ech_type = (uint8_t)rd_u8(&e);
    if (h->ech_type == 1) return rd_done(&e) ? 0 : UM_EPROTO; /* inner: type only */
    if (h->ech_type != 0) return UM_EPROTO;
    h->ech_kdf = (uint16_t)rd_u16(&e);
    h->ech_aead = (uint16_t)rd_u16(&e);
    h->ech_config_id = (uint8_t)rd_u8(&e);
    h->ech_enc = rd_span(&e, rd_u16(&e));
    size_t pl = rd_u16(&e);
    h->ech_payload = rd_span(&e, pl);
    return rd_done(&e) && pl > 0 ? 0 : UM_EPROTO;
}

static int ext_decode(um_tls_hello_t *h, const um_tls_ext_t *x)
{
    rd_t e = {h->msg, x->data.off, (size_t)x->data.off + x->data.len, 0};
    switch (x->type) {
    case UM_TLS_EXT_SNI: return ext_sni(h, e);
    case UM_TLS_EXT_ALPN: return ext_alpn(h, e);
    case UM_TLS_EXT_GROUPS: return ext_u16_list(e, 0, &h->groups, &h->grease, UM_TLS_GREASE_GROUP);
    case UM_TLS_EXT_SIGALGS:
        return ext_u16_list(e, 0, &h->sigalgs, &h->grease, UM_TLS_GREASE_SIGALG);
    case UM_TLS_EXT_VERSIONS:
        return ext_u16_list(e, 1, &h->versions, &h->grease, UM_TLS_GREASE_VERSION);
    case UM_TLS_EXT_EC_POINT_FORMATS: {
        size_t k = rd_u8(&e);
        h->point_formats = rd_span(&e, k);
        return rd_done(&e) && k > 0 ? 0 : UM_EPROTO;
    }
    case UM_TLS_EXT_KEY_SHARE: return ext_key_share(h, e);
    case UM_TLS_EXT_ECH: return ext_ech(h, e);
    default: return 0;
    }
}

/* The ClientHello body, h->msg[4..msg_len). */
static int parse_body(um_tls_hello_t *h)
{
    rd_t r = {h->msg, 4, h->msg_len, 0};
    h->legacy_version = (uint16_t)rd_u16(&r);
    um_tls_span_t rnd = rd_span(&r, 32);
    size_t sl = rd_u8(&r);
    um_tls_span_t sid = rd_span(&r, sl);
    if (r.bad || sl > 32) return UM_EPROTO;
    memcpy(h->random, h->msg + rnd.off, 32);
    h->session_id_len = (uint8_t)sl;
    memcpy(h->session_id, h->msg + sid.off, sl);

    size_t cl = rd_u16(&r);
    h->ciphers = rd_span(&r, cl);
    size_t ml = rd_u8(&r);
    h->compression = rd_span(&r, ml);
    if (r.bad || cl == 0 || cl % 2 || ml == 0) return UM_EPROTO;
    for (size_t i = 0; i < cl; i += 2)
        if (um_tls_is_grease(um_ld16(h->msg + h->ciphers.off + i)))
            h->grease |= UM_TLS_GREASE_CIPHER;
    if (r.off == r.end) return 0; /* no extensions (before TLS 1.2 this was allowed) */

    size_t el = rd_u16(&r);
    rd_t l = rd_sub(&r, el);
    if (!rd_done(&r)) return UM_EPROTO;
    while (!l.bad && l.off < l.end) {
        if (h->n_ext == UM_TLS_EXT_MAX) return UM_EPROTO;
        um_tls_ext_t *x = &h->ext[h->n_ext];
        x->type = (uint16_t)rd_u16(&l);
        x->data = rd_span(&l, rd_u16(&l));
        if (l.bad) return UM_EPROTO;
        for (unsigned i = 0; i < h->n_ext; i++)
            if (h->ext[i].type == x->type) return UM_EPROTO; /* RFC 8446 4.2 */
        h->n_ext++;
        if (um_tls_is_grease(x->type)) h->grease |= UM_TLS_GREASE_EXT;
        int rc = ext_decode(h, x);
        if (rc != 0) return rc;
    }
    return rd_done(&l) ? 0 : UM_EPROTO;
}

const um_tls_ext_t *um_tls_hello_ext(const um_tls_hello_t *h, uint16_t type)
{
    if (!h) return NULL;
    for (unsigned i = 0; i < h->n_ext; i++)
        if (h->ext[i].type == type) return &h->ext[i];
    return NULL;
}

/* Appends record payload bytes q[0..k) to the message being reassembled;
 * checks the handshake header as soon as it is whole. */
static int append(um_tls_hello_t *h, size_t *have, size_t *need, const uint8_t *q, size_t k)
{
    while (k > 0) {
        size_t lim = *need ? *need : 4;
        if (*have >= lim) return UM_EPROTO; /* bytes past the end of the message */
        size_t c = lim - *have < k ? lim - *have : k;
        memcpy(h->msg + *have, q, c);
        *have += c;
        q += c;
        k -= c;
        if (*need == 0 && *have == 4) {
            if (h->msg[0] != HS_CLIENT_HELLO) return UM_EPROTO;
            size_t body = (size_t)h->msg[1] << 16 | (size_t)h->msg[2] << 8 | h->msg[3];
            if (body + 4 > UM_TLS_HELLO_MAX || body < 2 + 32 + 1 + 2 + 2 + 1) return UM_EPROTO;
            *need = body + 4;
        }
    }
    return 0;
}

int um_tls_hello_parse(const uint8_t *p, size_t n, um_tls_hello_t *out)
{
    if (!p || !out) return UM_EINVAL;
    memset(out, 0, offsetof(um_tls_hello_t, msg));
    size_t off = 0, have = 0, need = 0;
    while (off < n) {
        size_t avail = n - off;
        const uint8_t *rh = p + off;
        /* Judge each header byte as soon as it is there. */
        if (rh[0] != 22) return UM_EPROTO;
        if (avail >= 2 && rh[1] != 3) return UM_EPROTO;
        if (avail >= 3 && rh[2] > 4) return UM_EPROTO;
        if (avail < REC_HDR) return UM_EAGAIN;
        size_t rl = um_ld16(rh + 3);
        if (rl == 0 || rl > REC_MAX) return UM_EPROTO;
        if (out->n_records == 0) out->record_version = um_ld16(rh + 1);
        out->n_records++;
        size_t got = avail - REC_HDR < rl ? avail - REC_HDR : rl;
        int rc = append(out, &have, &need, rh + REC_HDR, got);
        if (rc != 0) return rc;
        if (got < rl) return UM_EAGAIN;
        off += REC_HDR + rl;
        if (need && have == need) {
            out->consumed = off;
            out->msg_len = (uint16_t)have;
            return parse_body(out);
        }
    }
    return UM_EAGAIN;
}
