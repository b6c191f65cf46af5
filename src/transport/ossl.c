#include "transport/ossl.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define SCRATCH   (64u << 10) /* plaintext of one inner read (taken in pieces beyond) */
#define EARLY_MAX (256u << 10)
#define PEND_MAX  (64u << 20) /* ciphertext the inner carrier refused (bounded by wq_max) */

/* A current Chromium's offer, in its order, as far as OpenSSL 3.0 takes it. */
static const char ciphers13[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const char ciphers12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:"
                                "AES256-GCM-SHA384:AES128-SHA:AES256-SHA";
static const char groups[] = "X25519:P-256:P-384";
static const char sigalgs[] = "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256:rsa_pkcs1_sha256:"
                              "ecdsa_secp384r1_sha384:rsa_pss_rsae_sha384:rsa_pkcs1_sha384:"
                              "rsa_pss_rsae_sha512:rsa_pkcs1_sha512";
static const unsigned char alpn[] = "\x08http/1.1";

struct um_ossl_ctx {
    SSL_CTX *ctx;
    int refs;
    int server; /* um_ossl_server_ctx_new */
};

int um_ossl_ctx_new(const char *ca_file, um_ossl_ctx_t **out)
{
    um_ossl_ctx_t *x = calloc(1, sizeof(*x));
    if (!x) return UM_ENOMEM;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int ok = ctx != NULL;
    ok = ok && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    ok = ok && SSL_CTX_set_ciphersuites(ctx, ciphers13);
    ok = ok && SSL_CTX_set_cipher_list(ctx, ciphers12);
    ok = ok && SSL_CTX_set1_groups_list(ctx, groups);
    ok = ok && SSL_CTX_set1_sigalgs_list(ctx, sigalgs);
    ok = ok && SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) == 0;
    if (ok) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_ENCRYPT_THEN_MAC | SSL_OP_NO_COMPRESSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        /* Chromium asks for SCTs; permissive: their absence fails nothing. */
        SSL_CTX_enable_ct(ctx, SSL_CT_VALIDATION_PERMISSIVE);
        if (ca_file && ca_file[0])
            ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL) == 1;
        else
            ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
        if (!ok && ca_file && ca_file[0]) UM_ERR("tls: ca-file %s does not load", ca_file);
    }
    if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        free(x);
        return UM_EINVAL;
    }
    x->ctx = ctx;
    x->refs = 1;
    *out = x;
    return 0;
}

void um_ossl_ctx_ref(um_ossl_ctx_t *x)
{
    x->refs++;
}

void um_ossl_ctx_unref(um_ossl_ctx_t *x)
{
    if (!x || --x->refs > 0) return;
    SSL_CTX_free(x->ctx);
    free(x);
}

/* Server: http/1.1 when the client offers it; any other offer (h2 alone)
 * gets no ALPN answer, as a server without HTTP/2 gives. */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)s;
    (void)arg;
    unsigned char *o = NULL;
    if (SSL_select_next_proto(&o, outlen, alpn, sizeof(alpn) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

int um_ossl_server_ctx_new(const char *cert_file, const char *key_file, um_ossl_ctx_t **out,
                           char *err, size_t errlen)
{
    if (!cert_file || !cert_file[0] || !key_file || !key_file[0] || !out) return UM_EINVAL;
    um_ossl_ctx_t *x = calloc(1, sizeof(*x));
    if (!x) return UM_ENOMEM;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *what = "cannot set up TLS";
    int ok = ctx != NULL;
    ok = ok && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    ok = ok && SSL_CTX_set_cipher_list(ctx, ciphers12);
    ok = ok && SSL_CTX_set1_groups_list(ctx, groups);
    if (ok) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        /* The key first: a certificate that does not match it then shows
         * as that, not as a key that does not load. */
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
            what = "key-file: does not hold a PEM private key";
            ok = 0;
        } else if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
            what = "cert-file: does not hold a PEM certificate chain";
            ok = 0;
        } else if (SSL_CTX_check_private_key(ctx) != 1) {
            what = "key-file: not the key of the certificate in cert-file";
            ok = 0;
        }
    }
    if (!ok) {
        if (err) snprintf(err, errlen, "%s", what);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        free(x);
        return UM_EINVAL;
    }
    x->ctx = ctx;
    x->refs = 1;
    x->server = 1;
    *out = x;
    return 0;
}

static bool is_ip(const char *s)
{
    uint8_t b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static SSL *new_ssl(um_ossl_ctx_t *x, const char *sni, const char *name)
{
    SSL *ssl = SSL_new(x->ctx);
    if (!ssl) return NULL;
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    if (!rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(ssl);
        return NULL;
    }
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    int ok = 1;
    if (sni && sni[0] && !is_ip(sni)) ok = SSL_set_tlsext_host_name(ssl, sni) == 1;
    SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);
    if (ok && name && name[0]) {
        if (is_ip(name))
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
        else
            ok = SSL_set1_host(ssl, name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

typedef struct {
    um_carrier_t base;
    um_carrier_t *inner;
    SSL *ssl;
    BIO *rb, *wb;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    int hs_done, failed;
    int server;     /* the accepting side (um_ossl_server_new) */
    um_buf_t early; /* plaintext written before the handshake finished */
    um_buf_t pend;  /* ciphertext the inner carrier refused, in order */
    size_t wq_max;
    int shut_pending, shut_done;
    int in_cb, dead;
    uint8_t *scratch;
} ossl_t;

static ossl_t *of(um_carrier_t *c)
{
    return (ossl_t *)c;
}

static void release(ossl_t *t)
{
    SSL_free(t->ssl);
    um_buf_wipe(&t->early);
    um_buf_wipe(&t->pend);
    sodium_memzero(t->scratch, SCRATCH);
    free(t->scratch);
    free(t);
}

/* Moves what OpenSSL wrote to the inner carrier (or behind what it refused). */
static int flush(ossl_t *t)
{
    char *p = NULL;
    long n = BIO_get_mem_data(t->wb, &p);
    int r = 0;
    if (um_buf_len(&t->pend)) {
        const uint8_t *q;
        size_t qn = um_buf_peek(&t->pend, &q);
        r = um_carrier_write(t->inner, q, qn);
        if (r == 0) um_buf_clear(&t->pend);
        if (r && r != UM_ENOSPC) return r;
    }
    if (n > 0) {
        r = um_buf_len(&t->pend) ? UM_ENOSPC : um_carrier_write(t->inner, (uint8_t *)p, (size_t)n);
        if (r == UM_ENOSPC) r = um_buf_append(&t->pend, p, (size_t)n) ? UM_ENOMEM : 0;
        (void)BIO_reset(t->wb);
        if (r) return r;
    }
    if (t->shut_pending && !t->shut_done && !um_buf_len(&t->pend)) {
        t->shut_done = 1;
        return um_carrier_shutdown(t->inner);
    }
    return 0;
}

static void log_failure(ossl_t *t)
{
    long v = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    char why[256];
    if (v != X509_V_OK)
        snprintf(why, sizeof(why), "certificate: %s", X509_verify_cert_error_string(v));
    else if (e)
        ERR_error_string_n(e, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "handshake failed");
    ERR_clear_error();
    if (t->server)
        UM_DEBUG("tls from a client: %s", why); /* a prober's, as often as not */
    else
        UM_WARN("tls to the front: %s", why);
}

static int write_plain(ossl_t *t, const uint8_t *p, size_t n)
{
    while (n) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = SSL_write(t->ssl, p, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return UM_EPROTO;
        }
        p += w;
        n -= (size_t)w;
    }
    return flush(t);
}

/* Drives the handshake; 1 when it has just finished. */
static int handshake(ossl_t *t)
{
    int r = SSL_do_handshake(t->ssl);
    int fr = flush(t);
    if (fr) return fr;
    if (r == 1) {
        const unsigned char *a = NULL;
        unsigned an = 0;
        SSL_get0_alpn_selected(t->ssl, &a, &an);
        if (!t->server && an && (an != 8 || memcmp(a, "http/1.1", 8) != 0)) {
            UM_WARN("tls to the front: it chose ALPN '%.*s', not http/1.1", (int)an, a);
            return UM_EPROTO;
        }
        t->hs_done = 1;
        const uint8_t *q;
        size_t qn = um_buf_peek(&t->early, &q);
        int w = qn ? write_plain(t, q, qn) : 0;
        um_buf_wipe(&t->early);
        return w ? w : 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    log_failure(t);
    return UM_EPROTO;
}

/* Takes ciphertext p[0..n) in and the plaintext it completes out (at most
 * cap). 1 when the peer sent its close_notify. */
static int take(ossl_t *t, const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *outn)
{
    *outn = 0;
    if (n && BIO_write(t->rb, p, (int)n) != (int)n) return UM_ENOMEM;
    if (!t->hs_done) {
        int h = handshake(t);
        if (h < 0) return h;
        if (!t->hs_done) return 0;
    }
    while (*outn < cap) {
        int r = SSL_read(t->ssl, out + *outn, (int)(cap - *outn));
        if (r > 0) {
            *outn += (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        int fr = flush(t); /* key updates, alerts */
        if (fr) return fr;
        if (e == SSL_ERROR_WANT_READ) return 0;
        if (e == SSL_ERROR_ZERO_RETURN) return 1;
        log_failure(t);
        return UM_EPROTO;
    }
    return 0;
}

static int deliver(ossl_t *t, const uint8_t *p, size_t n, int status)
{
    t->in_cb = 1;
    t->rd(&t->base, p, n, status, t->ud);
    t->in_cb = 0;
    if (t->dead) {
        release(t);
        return 0;
    }
    return 1;
}

static void inner_read(um_carrier_t *ic, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)ic;
    ossl_t *t = ud;
    if (!t->rd) return;
    if (status < 0) {
        deliver(t, NULL, 0, t->hs_done ? status : UM_EPROTO);
        return;
    }
    while (n && t->rd) {
        size_t piece = n < SCRATCH ? n : SCRATCH, got = 0;
        /* Plaintext of a piece and of a record begun before it fits the
         * scratch; a record begun before is at most 16 KiB + 256. */
        int r = take(t, p, piece, t->scratch, SCRATCH, &got);
        p += piece;
        n -= piece;
        if (got && !deliver(t, t->scratch, got, 0)) return;
        sodium_memzero(t->scratch, got);
        if (r != 0 && t->rd) {
            deliver(t, NULL, 0, r == 1 ? UM_EPIPE : r);
            return;
        }
    }
}

static void inner_drain(um_carrier_t *ic, void *ud)
{
    (void)ic;
    ossl_t *t = ud;
    if (flush(t) != 0) return;
    if (t->dr && !um_buf_len(&t->pend)) t->dr(&t->base, t->ud);
}

static void o_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    ossl_t *t = of(c);
    t->rd = rd;
    t->dr = dr;
    t->ud = ud;
    /* Reads drive the handshake: they run whether or not a reader is set. */
    um_carrier_set_cbs(t->inner, inner_read, inner_drain, t);
}

static size_t o_queued(const um_carrier_t *c)
{
    const ossl_t *t = (const ossl_t *)c;
    return um_buf_len(&t->early) + um_buf_len(&t->pend) + um_carrier_queued(t->inner);
}

static int o_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    ossl_t *t = of(c);
    if (n == 0) return 0;
    if (t->shut_pending) return UM_EPIPE;
    if (!t->hs_done) return um_buf_append(&t->early, p, n) ? UM_ENOSPC : 0;
    size_t held = um_buf_len(&t->pend), iq = um_carrier_queued(t->inner);
    if ((held || iq > t->wq_max / 2) && held + iq + n > t->wq_max) return UM_ENOSPC;
    return write_plain(t, p, n);
}

static void o_set_wq_max(um_carrier_t *c, size_t max)
{
    ossl_t *t = of(c);
    t->wq_max = max;
    um_carrier_set_wq_max(t->inner, max);
}

static int o_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(of(c)->inner);
}

static int o_read_stop(um_carrier_t *c)
{
    ossl_t *t = of(c);
    /* The handshake needs the server's answers. */
    return t->hs_done ? um_carrier_read_stop(t->inner) : 0;
}

static int o_shutdown(um_carrier_t *c)
{
    ossl_t *t = of(c);
    if (t->shut_pending) return 0;
    t->shut_pending = 1;
    if (t->hs_done) {
        SSL_shutdown(t->ssl); /* close_notify */
        ERR_clear_error();
    }
    return flush(t);
}

static void o_close(um_carrier_t *c)
{
    ossl_t *t = of(c);
    um_carrier_set_cbs(t->inner, NULL, NULL, NULL);
    um_carrier_close(t->inner);
    t->inner = NULL;
    t->rd = NULL;
    t->dr = NULL;
    t->dead = 1;
    if (!t->in_cb) release(t);
}

static int o_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    int r = take(of(c), p, n, out, n, outn);
    return r < 0 ? r : 0;
}

static int o_sock(const um_carrier_t *c)
{
    return um_carrier_sock(((const ossl_t *)c)->inner);
}

const um_carrier_ops_t um_ossl_carrier_ops = {
    .name = "tls",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16384,
    .set_cbs = o_set_cbs,
    .write = o_write,
    .queued = o_queued,
    .set_wq_max = o_set_wq_max,
    .read_start = o_read_start,
    .read_stop = o_read_stop,
    .shutdown = o_shutdown,
    .close = o_close,
    .absorb = o_absorb,
    .sock = o_sock,
};

/* The carrier around ssl (taken, also on failure) over inner (taken on
 * success only). */
static int start(um_carrier_t *inner, SSL *ssl, int server, um_carrier_t **out)
{
    ossl_t *t = calloc(1, sizeof(*t));
    if (t) t->scratch = malloc(SCRATCH);
    if (!t || !t->scratch) {
        SSL_free(ssl);
        if (t) free(t);
        return UM_ENOMEM;
    }
    t->ssl = ssl;
    t->server = server;
    t->base.ops = &um_ossl_carrier_ops;
    t->rb = SSL_get_rbio(t->ssl);
    t->wb = SSL_get_wbio(t->ssl);
    t->inner = inner;
    t->wq_max = 4u << 20;
    um_buf_init(&t->early, EARLY_MAX);
    um_buf_init(&t->pend, PEND_MAX);
    um_carrier_set_cbs(inner, inner_read, inner_drain, t);
    int r = server ? 0 : handshake(t); /* the ClientHello; a server waits for it */
    if (r < 0 || um_carrier_read_start(inner) != 0) {
        t->inner = NULL; /* the caller still owns inner on failure */
        um_carrier_set_cbs(inner, NULL, NULL, NULL);
        release(t);
        return r < 0 ? r : UM_EIO;
    }
    *out = &t->base;
    return 0;
}

int um_ossl_client_new(um_carrier_t *inner, const um_ossl_client_cfg_t *cfg, um_carrier_t **out)
{
    if (!inner || !cfg || !cfg->ctx || cfg->ctx->server || !out) return UM_EINVAL;
    SSL *ssl = new_ssl(cfg->ctx, cfg->sni, cfg->name[0] ? cfg->name : cfg->sni);
    if (!ssl) {
        ERR_clear_error();
        return UM_ENOMEM;
    }
    return start(inner, ssl, 0, out);
}

int um_ossl_server_new(um_carrier_t *inner, um_ossl_ctx_t *x, um_carrier_t **out)
{
    if (!inner || !x || !x->server || !out) return UM_EINVAL;
    SSL *ssl = SSL_new(x->ctx);
    BIO *rb = ssl ? BIO_new(BIO_s_mem()) : NULL, *wb = ssl ? BIO_new(BIO_s_mem()) : NULL;
    if (!rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(ssl);
        ERR_clear_error();
        return UM_ENOMEM;
    }
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb);
    SSL_set_accept_state(ssl);
    return start(inner, ssl, 1, out);
}

int um_ossl_client_hello(um_ossl_ctx_t *x, const char *sni, uint8_t *out, size_t cap, size_t *outn)
{
    SSL *ssl = new_ssl(x, sni, sni);
    if (!ssl) return UM_ENOMEM;
    SSL_do_handshake(ssl);
    ERR_clear_error();
    char *p = NULL;
    long n = BIO_get_mem_data(SSL_get_wbio(ssl), &p);
    int r = n <= 0 ? UM_EIO : (size_t)n > cap ? UM_ENOSPC : 0;
    if (r == 0) {
        memcpy(out, p, (size_t)n);
        *outn = (size_t)n;
    }
    SSL_free(ssl);
    return r;
}
