#include "transport/tls_record.h"

#include <string.h>

#include "util/err.h"

int um_tls_rec_header(const uint8_t *p, size_t n, uint8_t *type, size_t *len)
{
    if (n < UM_TLS_REC_HDR) return UM_EAGAIN;
    uint8_t t = p[0];
    if (t < UM_TLS_CT_CCS || t > UM_TLS_CT_APPDATA) return UM_EPROTO;
    if (p[1] != 3 || p[2] < 1 || p[2] > 3) return UM_EPROTO;
    size_t l = ((size_t)p[3] << 8) | p[4];
    if (l == 0 || l > UM_TLS_REC_PAYLOAD_MAX) return UM_EPROTO;
    *type = t;
    *len = l;
    return 0;
}

void um_tls_rec_put_header(uint8_t out[UM_TLS_REC_HDR], uint8_t type, size_t len)
{
    out[0] = type;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

size_t um_tls_rec_framed_len(size_t n)
{
    return n + UM_TLS_REC_HDR * ((n + UM_TLS_REC_FULL - 1) / UM_TLS_REC_FULL);
}

int um_tls_rec_frame(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *outn)
{
    size_t need = um_tls_rec_framed_len(n), w = 0;
    if (cap < need) return UM_ENOSPC;
    while (n) {
        size_t take = n < UM_TLS_REC_FULL ? n : UM_TLS_REC_FULL;
        um_tls_rec_put_header(out + w, UM_TLS_CT_APPDATA, take);
        /* memmove: framing in place from the back is the caller's business */
        memmove(out + w + UM_TLS_REC_HDR, p, take);
        w += UM_TLS_REC_HDR + take;
        p += take;
        n -= take;
    }
    *outn = w;
    return 0;
}

void um_tls_deframer_init(um_tls_deframer_t *d, int allow_ccs)
{
    memset(d, 0, sizeof(*d));
    d->ccs_ok = allow_ccs;
}

int um_tls_deframe(um_tls_deframer_t *d, const uint8_t **p, size_t *n, const uint8_t **span,
                   size_t *spann)
{
    if (d->err) return d->err;
    while (*n) {
        if (d->in_ccs) { /* its one byte must be 01; it is no stream byte */
            if (**p != 1) return d->err = UM_EPROTO;
            (*p)++;
            (*n)--;
            d->in_ccs = 0;
            continue;
        }
        if (d->left) {
            size_t take = *n < d->left ? *n : d->left;
            *span = *p;
            *spann = take;
            *p += take;
            *n -= take;
            d->left -= take;
            return 1;
        }
        size_t want = UM_TLS_REC_HDR - d->hdr_have;
        size_t take = *n < want ? *n : want;
        memcpy(d->hdr + d->hdr_have, *p, take);
        d->hdr_have += take;
        *p += take;
        *n -= take;
        if (d->hdr_have < UM_TLS_REC_HDR) return 0;
        uint8_t type = 0;
        size_t len = 0;
        d->hdr_have = 0;
        if (um_tls_rec_header(d->hdr, UM_TLS_REC_HDR, &type, &len) != 0) return d->err = UM_EPROTO;
        if (type == UM_TLS_CT_CCS && d->ccs_ok && len == 1) {
            d->ccs_ok = 0;
            d->in_ccs = 1;
            continue;
        }
        if (type != UM_TLS_CT_APPDATA) return d->err = UM_EPROTO;
        d->ccs_ok = 0;
        d->left = len;
    }
    return 0;
}
