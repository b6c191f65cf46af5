/* A real TLS client (OpenSSL), or server (um_ossl_server_new), as a carrier layered over another
 * (TCP, a connection through an upstream proxy, a bridge's stream): what the `ws` transport dials a
 * front (nginx, a CDN edge) with (docs/PROTOCOL.md 11.1).
 *
 * Memory BIOs: the inner carrier moves the TLS records, OpenSSL never sees
 * a socket. The handshake starts at once (the ClientHello is written on
 * um_ossl_client_new); writes made before it completes wait (bounded) and
 * go out right after it; a handshake or verification failure is a read
 * error (UM_EPROTO, logged with OpenSSL's reason). Each inner read gives at
 * most one read callback (the plaintext of that read).
 *
 * The hello follows a current Chromium as far as OpenSSL's API reaches:
 * cipher, group and signature algorithm order, ALPN http/1.1, SNI, OCSP
 * and SCT requests, no encrypt-then-mac; what OpenSSL cannot send (GREASE,
 * ECH, X25519MLKEM768 on OpenSSL 3.0, certificate compression, extension
 * order) differs, and its JA4 is measured (bench/RESULTS-ws.md). */
#ifndef UM_TRANSPORT_OSSL_H
#define UM_TRANSPORT_OSSL_H

#include "transport/carrier.h"

#define UM_OSSL_NAME_MAX 261

typedef struct um_ossl_ctx um_ossl_ctx_t; /* an SSL_CTX, reference counted */

/* ca_file NULL or "": the system store (OpenSSL's default paths, which
 * honour SSL_CERT_FILE and SSL_CERT_DIR). UM_EINVAL when the file does not
 * load. */
int um_ossl_ctx_new(const char *ca_file, um_ossl_ctx_t **out);
void um_ossl_ctx_ref(um_ossl_ctx_t *x);
void um_ossl_ctx_unref(um_ossl_ctx_t *x); /* NULL is a no-op */

typedef struct {
    um_ossl_ctx_t *ctx;              /* NULL: no TLS */
    char sni[UM_OSSL_NAME_MAX + 1];  /* sent unless "" or an IP address */
    char name[UM_OSSL_NAME_MAX + 1]; /* the certificate must be for this (host or IP) */
} um_ossl_client_cfg_t;

extern const um_carrier_ops_t um_ossl_carrier_ops;

/* Takes ownership of inner; the cfg is used during the call only. */
int um_ossl_client_new(um_carrier_t *inner, const um_ossl_client_cfg_t *cfg, um_carrier_t **out);

/* Server mode (docs/PROTOCOL.md 11.5): the ws listener's own TLS, when it
 * is exposed directly rather than behind a front. cert_file: a PEM chain
 * (the leaf first), key_file: its PEM private key. UM_EINVAL when either
 * does not load or they do not match (err, when given, says which). The
 * server offers TLS 1.2 and 1.3 and answers ALPN http/1.1 when offered. */
int um_ossl_server_ctx_new(const char *cert_file, const char *key_file, um_ossl_ctx_t **out,
                           char *err, size_t errlen);
/* The accepting side over inner (taken on success): nothing is written
 * until the ClientHello arrives; reads drive the handshake, then deliver
 * plaintext as the client side does. A handshake failure is a read error
 * (UM_EPROTO, after OpenSSL's alert went out). x must be a server context. */
int um_ossl_server_new(um_carrier_t *inner, um_ossl_ctx_t *x, um_carrier_t **out);

/* The ClientHello this context sends for sni (tests, the JA4 measurement):
 * the first TLS record's bytes, into out. */
int um_ossl_client_hello(um_ossl_ctx_t *x, const char *sni, uint8_t *out, size_t cap, size_t *outn);

#endif
