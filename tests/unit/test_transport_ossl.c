/* The ws transport's TLS client carrier (src/transport/ossl.c) against an
 * OpenSSL server in memory, with a certificate made here:
 *   - with the certificate's CA as ca-file and the right name: the
 *     handshake completes, bytes written before it arrive after it, data
 *     flows both ways intact (1 MiB each, in pieces), ALPN is http/1.1;
 *   - another name, or the system store (which does not know this CA): a
 *     read error, and the server never sees application data;
 *   - the ClientHello carries the SNI and offers http/1.1 only;
 *   - shutdown sends close_notify, then ends the inner carrier; the server's
 *     close_notify is the orderly end (UM_EPIPE);
 *   - server mode (the ws listener's own TLS) against the client carrier:
 *     nothing is sent before the ClientHello, the handshake completes in
 *     pieces, bytes the client wrote early arrive, 1 MiB each way intact,
 *     close_notify both ways; plain HTTP gets a read error (at most an alert); a
 *     key that is not the certificate's, or a missing file, is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "mem_pipe.h"
#include "transport/ossl.h"
#include "util/err.h"

static char ca_path[64], key_path[64];
static EVP_PKEY *key;
static X509 *cert;

static void make_cert(void)
{
    key = EVP_EC_gen("P-256");
    assert_non_null(key);
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *nm = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"front.test", -1, -1,
                               0);
    X509_set_issuer_name(cert, nm);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:front.test");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    snprintf(ca_path, sizeof(ca_path), "/tmp/umbra-ossl-ca-%d.pem", (int)getpid());
    FILE *f = fopen(ca_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, cert);
    fclose(f);
    snprintf(key_path, sizeof(key_path), "/tmp/umbra-ossl-key-%d.pem", (int)getpid());
    f = fopen(key_path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)s;
    (void)arg;
    static const unsigned char mine[] = "\x08http/1.1";
    unsigned char *o = NULL;
    if (SSL_select_next_proto(&o, outlen, mine, sizeof(mine) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb;
    uint8_t *got;
    size_t got_n;
    int closed_notify;
} srv_t;

static void srv_init(srv_t *s)
{
    memset(s, 0, sizeof(*s));
    s->ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(s->ctx, cert);
    SSL_CTX_use_PrivateKey(s->ctx, key);
    SSL_CTX_set_alpn_select_cb(s->ctx, alpn_cb, NULL);
    s->ssl = SSL_new(s->ctx);
    s->rb = BIO_new(BIO_s_mem());
    s->wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(s->rb, -1);
    SSL_set_bio(s->ssl, s->rb, s->wb);
    SSL_set_accept_state(s->ssl);
    s->got = malloc(4u << 20);
}

static void srv_free(srv_t *s)
{
    SSL_free(s->ssl);
    SSL_CTX_free(s->ctx);
    free(s->got);
}

/* Client bytes (queued on end a) into the server; its answer back to the
 * client carrier as one inner read. */
static void step(srv_t *s, mp_end_t *a)
{
    if (a->qn) {
        BIO_write(s->rb, a->q, (int)a->qn);
        a->qn = 0;
    }
    if (!SSL_is_init_finished(s->ssl)) SSL_do_handshake(s->ssl);
    int r;
    while ((r = SSL_read(s->ssl, s->got + s->got_n, 65536)) > 0)
        s->got_n += (size_t)r;
    if (SSL_get_error(s->ssl, r) == SSL_ERROR_ZERO_RETURN) s->closed_notify = 1;
    ERR_clear_error();
    char *p = NULL;
    long n = BIO_get_mem_data(s->wb, &p);
    if (n > 0 && a->rd) {
        uint8_t *tmp = malloc((size_t)n);
        memcpy(tmp, p, (size_t)n);
        (void)BIO_reset(s->wb);
        a->rd(&a->base, tmp, (size_t)n, 0, a->ud);
        free(tmp);
    } else {
        (void)BIO_reset(s->wb);
    }
}

typedef struct {
    uint8_t *buf;
    size_t len;
    int err, eof;
} sink_t;

static void rd(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)c;
    sink_t *k = ud;
    if (status == UM_EPIPE) {
        k->eof = 1;
    } else if (status < 0) {
        k->err = status;
    } else {
        memcpy(k->buf + k->len, p, n);
        k->len += n;
    }
}

static um_carrier_t *client(mp_end_t *a, mp_end_t *b, um_ossl_ctx_t *x, const char *name, sink_t *k)
{
    mp_pair(a, b);
    um_ossl_client_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.ctx = x;
    snprintf(cfg.sni, sizeof(cfg.sni), "front.test");
    snprintf(cfg.name, sizeof(cfg.name), "%s", name);
    um_carrier_t *c = NULL;
    assert_int_equal(um_ossl_client_new(&a->base, &cfg, &c), 0);
    memset(k, 0, sizeof(*k));
    k->buf = malloc(4u << 20);
    um_carrier_set_cbs(c, rd, NULL, k);
    return c;
}

static void t_handshake_and_data(void **st)
{
    (void)st;
    um_ossl_ctx_t *x = NULL;
    assert_int_equal(um_ossl_ctx_new(ca_path, &x), 0);
    mp_end_t a, b;
    sink_t k;
    um_carrier_t *c = client(&a, &b, x, "front.test", &k);
    assert_true(a.qn > 0); /* the ClientHello, at once */
    assert_int_equal(um_carrier_write(c, (const uint8_t *)"hello", 5), 0);
    srv_t s;
    srv_init(&s);
    for (int i = 0; i < 6; i++)
        step(&s, &a);
    assert_int_equal(k.err, 0);
    assert_true(SSL_is_init_finished(s.ssl));
    const unsigned char *al = NULL;
    unsigned aln = 0;
    SSL_get0_alpn_selected(s.ssl, &al, &aln);
    assert_int_equal(aln, 8);
    assert_int_equal(s.got_n, 5);
    assert_memory_equal(s.got, "hello", 5);
    /* 1 MiB each way. */
    size_t big = 1u << 20;
    uint8_t *data = malloc(big);
    randombytes_buf(data, big);
    for (size_t off = 0; off < big; off += 50000)
        assert_int_equal(um_carrier_write(c, data + off, big - off < 50000 ? big - off : 50000), 0);
    step(&s, &a);
    assert_int_equal(s.got_n, 5 + big);
    assert_memory_equal(s.got + 5, data, big);
    for (size_t off = 0; off < big;) {
        int w = SSL_write(s.ssl, data + off, (int)(big - off < 30000 ? big - off : 30000));
        assert_true(w > 0);
        off += (size_t)w;
        step(&s, &a);
    }
    assert_int_equal(k.len, big);
    assert_memory_equal(k.buf, data, big);
    /* Orderly ends both ways. */
    assert_int_equal(um_carrier_shutdown(c), 0);
    assert_int_equal(a.shut, 1);
    step(&s, &a);
    assert_int_equal(s.closed_notify, 1);
    SSL_shutdown(s.ssl);
    step(&s, &a);
    assert_int_equal(k.eof, 1);
    um_carrier_close(c);
    srv_free(&s);
    free(data);
    free(k.buf);
    mp_free(&a);
    mp_free(&b);
    um_ossl_ctx_unref(x);
}

static void refused(const char *ca, const char *name)
{
    um_ossl_ctx_t *x = NULL;
    assert_int_equal(um_ossl_ctx_new(ca, &x), 0);
    mp_end_t a, b;
    sink_t k;
    um_carrier_t *c = client(&a, &b, x, name, &k);
    assert_int_equal(um_carrier_write(c, (const uint8_t *)"secret", 6), 0);
    srv_t s;
    srv_init(&s);
    for (int i = 0; i < 6 && !k.err; i++)
        step(&s, &a);
    assert_int_equal(k.err, UM_EPROTO);
    step(&s, &a);
    assert_int_equal(s.got_n, 0); /* nothing was sent to an unverified server */
    um_carrier_close(c);
    srv_free(&s);
    free(k.buf);
    mp_free(&a);
    mp_free(&b);
    um_ossl_ctx_unref(x);
}

static void t_wrong_name(void **st)
{
    (void)st;
    refused(ca_path, "other.test");
}

static void t_system_store(void **st)
{
    (void)st;
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    refused(NULL, "front.test");
    /* SSL_CERT_FILE names the store OpenSSL's default paths load. */
    setenv("SSL_CERT_FILE", ca_path, 1);
    um_ossl_ctx_t *x = NULL;
    assert_int_equal(um_ossl_ctx_new(NULL, &x), 0);
    mp_end_t a, b;
    sink_t k;
    um_carrier_t *c = client(&a, &b, x, "front.test", &k);
    srv_t s;
    srv_init(&s);
    for (int i = 0; i < 6; i++)
        step(&s, &a);
    assert_int_equal(k.err, 0);
    assert_true(SSL_is_init_finished(s.ssl));
    unsetenv("SSL_CERT_FILE");
    um_carrier_close(c);
    srv_free(&s);
    free(k.buf);
    mp_free(&a);
    mp_free(&b);
    um_ossl_ctx_unref(x);
}

static void t_hello(void **st)
{
    (void)st;
    um_ossl_ctx_t *x = NULL;
    assert_int_equal(um_ossl_ctx_new(NULL, &x), 0);
    uint8_t h[4096];
    size_t n = 0;
    assert_int_equal(um_ossl_client_hello(x, "front.test", h, sizeof(h), &n), 0);
    assert_true(n > 100 && h[0] == 0x16 && h[5] == 0x01);
    assert_non_null(memmem(h, n, "front.test", 10));
    assert_non_null(memmem(h, n, "\x00\x09\x08http/1.1", 11)); /* ALPN: http/1.1 alone */
    assert_null(memmem(h, n, "\x02h2", 3));
    assert_int_equal(um_ossl_ctx_new("/nonexistent/ca.pem", &x) == UM_EINVAL, 1);
    um_ossl_ctx_unref(x);
}

/* Both ends pumped until neither has bytes queued (bounded). */
static void pump_both(mp_end_t *a, mp_end_t *b)
{
    for (int i = 0; i < 200 && (a->qn || b->qn || (a->shut && !a->peer_eof_sent) ||
                                (b->shut && !b->peer_eof_sent));
         i++) {
        mp_pump(a, 1000, SIZE_MAX);
        mp_pump(b, 1000, SIZE_MAX);
    }
}

static void t_server_mode(void **st)
{
    (void)st;
    um_ossl_ctx_t *sx = NULL, *cx = NULL;
    char why[160] = "";
    assert_int_equal(um_ossl_server_ctx_new(ca_path, key_path, &sx, why, sizeof(why)), 0);
    assert_int_equal(um_ossl_ctx_new(ca_path, &cx), 0);
    mp_end_t a, b;
    mp_pair(&a, &b);
    um_carrier_t *srv = NULL, *cli = NULL;
    um_ossl_client_cfg_t ccfg;
    memset(&ccfg, 0, sizeof(ccfg));
    ccfg.ctx = sx;
    assert_int_equal(um_ossl_client_new(&a.base, &ccfg, &cli), UM_EINVAL); /* a server context */
    assert_int_equal(um_ossl_server_new(&b.base, cx, &srv), UM_EINVAL);    /* a client context */
    assert_int_equal(um_ossl_server_new(&b.base, sx, &srv), 0);
    assert_int_equal(b.qn, 0); /* a server speaks second */
    sink_t ks, kc;
    memset(&ks, 0, sizeof(ks));
    ks.buf = malloc(4u << 20);
    um_carrier_set_cbs(srv, rd, NULL, &ks);
    ccfg.ctx = cx;
    snprintf(ccfg.sni, sizeof(ccfg.sni), "front.test");
    assert_int_equal(um_ossl_client_new(&a.base, &ccfg, &cli), 0);
    memset(&kc, 0, sizeof(kc));
    kc.buf = malloc(4u << 20);
    um_carrier_set_cbs(cli, rd, NULL, &kc);
    assert_int_equal(um_carrier_write(cli, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18), 0);
    pump_both(&a, &b);
    assert_int_equal(kc.err, 0);
    assert_int_equal(ks.err, 0);
    assert_int_equal(ks.len, 18);
    assert_memory_equal(ks.buf, "GET / HTTP/1.1\r\n\r\n", 18);
    size_t big = 1u << 20;
    uint8_t *data = malloc(big);
    randombytes_buf(data, big);
    for (size_t off = 0; off < big; off += 40000) {
        size_t m = big - off < 40000 ? big - off : 40000;
        assert_int_equal(um_carrier_write(srv, data + off, m), 0);
        assert_int_equal(um_carrier_write(cli, data + off, m), 0);
        pump_both(&a, &b);
    }
    assert_int_equal(kc.len, big);
    assert_memory_equal(kc.buf, data, big);
    assert_int_equal(ks.len, 18 + big);
    assert_memory_equal(ks.buf + 18, data, big);
    assert_int_equal(um_carrier_shutdown(srv), 0);
    pump_both(&a, &b);
    assert_int_equal(kc.eof, 1);
    assert_int_equal(b.shut, 1);
    assert_int_equal(um_carrier_shutdown(cli), 0);
    pump_both(&a, &b);
    assert_int_equal(ks.eof, 1);
    um_carrier_close(cli);
    um_carrier_close(srv);
    mp_free(&a);
    mp_free(&b);

    /* Plain HTTP to the TLS listener: an alert, then a read error. */
    mp_pair(&a, &b);
    assert_int_equal(um_ossl_server_new(&b.base, sx, &srv), 0);
    free(ks.buf);
    memset(&ks, 0, sizeof(ks));
    ks.buf = kc.buf;
    um_carrier_set_cbs(srv, rd, NULL, &ks);
    b.rd(&b.base, (const uint8_t *)"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, 0, b.ud);
    assert_int_equal(ks.err, UM_EPROTO);
    assert_int_equal(ks.len, 0);
    assert_true(b.qn == 0 || b.q[0] == 0x15); /* at most an alert, never an HTTP answer */
    um_carrier_close(srv);
    mp_free(&a);
    mp_free(&b);

    /* A key that is not the certificate's; files that are not there. */
    char other[64];
    snprintf(other, sizeof(other), "/tmp/umbra-ossl-key2-%d.pem", (int)getpid());
    EVP_PKEY *k2 = EVP_EC_gen("P-256");
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k2, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    um_ossl_ctx_t *bad = NULL;
    why[0] = '\0';
    assert_int_equal(um_ossl_server_ctx_new(ca_path, other, &bad, why, sizeof(why)), UM_EINVAL);
    assert_non_null(strstr(why, "not the key"));
    assert_int_equal(um_ossl_server_ctx_new("/nonexistent/c.pem", key_path, &bad, why, sizeof(why)),
                     UM_EINVAL);
    assert_non_null(strstr(why, "cert-file"));
    assert_int_equal(um_ossl_server_ctx_new(ca_path, "/nonexistent/k.pem", &bad, why, sizeof(why)),
                     UM_EINVAL);
    assert_non_null(strstr(why, "key-file"));
    unlink(other);
    EVP_PKEY_free(k2);
    free(data);
    free(kc.buf);
    um_ossl_ctx_unref(sx);
    um_ossl_ctx_unref(cx);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    make_cert();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_handshake_and_data), cmocka_unit_test(t_wrong_name),
        cmocka_unit_test(t_system_store),       cmocka_unit_test(t_hello),
        cmocka_unit_test(t_server_mode),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(ca_path);
    unlink(key_path);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}
