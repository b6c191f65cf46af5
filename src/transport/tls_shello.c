#include "transport/tls_shello.h"

#include <string.h>

#include "transport/tls_record.h"
#include "util/err.h"

#define HS_SERVER_HELLO        2
#define EXT_SUPPORTED_VERSIONS 0x002b
#define EXT_KEY_SHARE          0x0033

/* RFC 8446 4.1.3: the random of a HelloRetryRequest. */
static const uint8_t hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

int um_tls_sh_parse(const uint8_t *p, size_t n, um_tls_sh_t *sh)
{
    uint8_t type = 0;
    size_t rl = 0;
    memset(sh, 0, sizeof(*sh));
    /* Decide as early as the bytes allow. */
    if (n >= 1 && p[0] != UM_TLS_CT_HANDSHAKE) return UM_EPROTO;
    if (n >= 2 && p[1] != 3) return UM_EPROTO;
    if (n >= 6 && p[5] != HS_SERVER_HELLO) return UM_EPROTO;
    int r = um_tls_rec_header(p, n, &type, &rl);
    if (r) return r;
    if (rl > UM_TLS_SH_MAX - UM_TLS_REC_HDR || rl < 4) return UM_EPROTO;
    if (n < UM_TLS_REC_HDR + rl) return UM_EAGAIN;
    const uint8_t *h = p + UM_TLS_REC_HDR;
    size_t hl = ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (hl + 4 != rl) return UM_EPROTO; /* one ServerHello, alone in its record */
    const uint8_t *q = h + 4, *end = h + rl;
    if (end - q < 2 + 32 + 1 || ld16(q) != 0x0303) return UM_EPROTO;
    sh->random = q + 2;
    sh->off_random = (size_t)(sh->random - p);
    if (memcmp(sh->random, hrr_random, 32) == 0) return UM_EPROTO;
    q += 34;
    sh->sid_len = *q++;
    if (sh->sid_len > 32 || (size_t)(end - q) < sh->sid_len + 2 + 1 + 2) return UM_EPROTO;
    sh->sid = q;
    sh->off_sid = (size_t)(q - p);
    q += sh->sid_len;
    sh->cipher = ld16(q);
    q += 2;
    if (*q++ != 0) return UM_EPROTO; /* compression */
    size_t el = ld16(q);
    q += 2;
    if ((size_t)(end - q) != el) return UM_EPROTO;
    while (q < end) {
        if (end - q < 4) return UM_EPROTO;
        uint16_t et = ld16(q);
        size_t len = ld16(q + 2);
        q += 4;
        if ((size_t)(end - q) < len) return UM_EPROTO;
        if (et == EXT_SUPPORTED_VERSIONS) {
            if (len != 2 || sh->version) return UM_EPROTO;
            sh->version = ld16(q);
        } else if (et == EXT_KEY_SHARE) {
            if (len < 4 || sh->share) return UM_EPROTO;
            sh->group = ld16(q);
            sh->share_len = ld16(q + 2);
            if (sh->share_len + 4 != len || sh->share_len == 0) return UM_EPROTO;
            sh->share = q + 4;
            sh->off_share = (size_t)(sh->share - p);
        }
        q += len;
    }
    if (sh->version != 0x0304 || !sh->share) return UM_EPROTO;
    sh->len = UM_TLS_REC_HDR + rl;
    return 0;
}

const uint8_t *um_tls_share_x25519(uint16_t group, const uint8_t *share, size_t len)
{
    if (group == UM_TLS_GROUP_X25519 && len == 32) return share;
    if (group == UM_TLS_GROUP_X25519MLKEM768 && len == UM_TLS_MLKEM768_CT_LEN + 32)
        return share + UM_TLS_MLKEM768_CT_LEN;
    return NULL;
}

int um_tls_cover_learn(const uint8_t *p, size_t n, um_tls_cover_t *cv)
{
    um_tls_sh_t sh;
    memset(cv, 0, sizeof(*cv));
    if (um_tls_sh_parse(p, n, &sh) != 0) return UM_EPROTO;
    if (sh.sid_len != 32 || !um_tls_share_x25519(sh.group, sh.share, sh.share_len))
        return UM_EPROTO;
    memcpy(cv->sh, p, sh.len);
    cv->sh_len = sh.len;
    cv->off_random = sh.off_random;
    cv->off_sid = sh.off_sid;
    cv->sid_len = sh.sid_len;
    cv->off_share = sh.off_share;
    cv->share_len = sh.share_len;
    cv->cipher = sh.cipher;
    cv->group = sh.group;
    size_t at = sh.len;
    while (n - at >= UM_TLS_REC_HDR) {
        uint8_t type = 0;
        size_t len = 0;
        if (um_tls_rec_header(p + at, n - at, &type, &len) != 0) return UM_EPROTO;
        if (n - at - UM_TLS_REC_HDR < len) break; /* a partial record: not counted */
        if (type == UM_TLS_CT_CCS) {
            if (cv->ccs || cv->n_rec || len != 1 || p[at + UM_TLS_REC_HDR] != 1) return UM_EPROTO;
            cv->ccs = 1;
        } else if (type == UM_TLS_CT_APPDATA) {
            if (cv->n_rec < UM_TLS_COVER_RECS) cv->rec[cv->n_rec++] = (uint16_t)len;
        } else {
            return UM_EPROTO;
        }
        at += UM_TLS_REC_HDR + len;
    }
    return cv->n_rec ? 0 : UM_EPROTO;
}

void um_tls_cover_default(um_tls_cover_t *cv)
{
    /* ServerHello: TLS_AES_128_GCM_SHA256, supported_versions then key_share
     * (x25519), as OpenSSL 3 writes it. */
    static const uint8_t head[] = {
        0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03,
    };
    static const uint8_t mid[] = {0x13, 0x01, 0x00, 0x00, 0x2e, 0x00, 0x2b, 0x00, 0x02, 0x03,
                                  0x04, 0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20};
    memset(cv, 0, sizeof(*cv));
    size_t w = 0;
    memcpy(cv->sh + w, head, sizeof(head));
    w += sizeof(head);
    cv->off_random = w;
    w += 32;
    cv->sh[w++] = 32;
    cv->off_sid = w;
    cv->sid_len = 32;
    w += 32;
    memcpy(cv->sh + w, mid, sizeof(mid));
    w += sizeof(mid);
    cv->off_share = w;
    cv->share_len = 32;
    w += 32;
    cv->sh_len = w;
    cv->cipher = 0x1301;
    cv->group = UM_TLS_GROUP_X25519;
    cv->ccs = 1;
    /* EncryptedExtensions (ALPN h2), Certificate (one self-signed P-256
     * certificate), CertificateVerify (ECDSA), Finished:
     * what nginx 1.22 with OpenSSL 3.0 sent Chromium 156 (tests/data/tls). */
    static const uint16_t recs[] = {36, 418, 96, 53};
    memcpy(cv->rec, recs, sizeof(recs));
    cv->n_rec = sizeof(recs) / sizeof(recs[0]);
}

int um_tls_cover_server_hello(const um_tls_cover_t *cv, const uint8_t random[32],
                              const uint8_t *sid, const uint8_t x25519[32], const uint8_t *mlkem_ct,
                              uint8_t *out, size_t cap, size_t *outn)
{
    if (!cv->sh_len || cap < cv->sh_len) return UM_ENOSPC;
    int hybrid = cv->group == UM_TLS_GROUP_X25519MLKEM768;
    if (hybrid && !mlkem_ct) return UM_EINVAL;
    memcpy(out, cv->sh, cv->sh_len);
    memcpy(out + cv->off_random, random, 32);
    memcpy(out + cv->off_sid, sid, cv->sid_len);
    if (hybrid) {
        memcpy(out + cv->off_share, mlkem_ct, UM_TLS_MLKEM768_CT_LEN);
        memcpy(out + cv->off_share + UM_TLS_MLKEM768_CT_LEN, x25519, 32);
    } else {
        memcpy(out + cv->off_share, x25519, 32);
    }
    *outn = cv->sh_len;
    return 0;
}
