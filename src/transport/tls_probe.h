/* Learning a cover site's server flight (docs/PROTOCOL.md 8.3): connect to
 * the cover, send it a ClientHello of fingerprint fp for `sni` (random
 * slots: nothing of umbra's), read what it answers until it falls silent,
 * and learn a um_tls_cover_t from it. The `tls` server does this at start-up
 * and then periodically, per fingerprint, so that its answers have the
 * sizes the cover's have today.
 *
 * Ownership: the callback runs once (status 0 with a profile borrowed for the
 * call, or an error); the probe frees itself after it returns. sni is
 * copied. um_tls_probe_cancel: no callback. */
#ifndef UM_TRANSPORT_TLS_PROBE_H
#define UM_TRANSPORT_TLS_PROBE_H

#include <sys/socket.h>
#include <uv.h>

#include "transport/tls_hello.h"
#include "transport/tls_shello.h"

typedef struct um_tls_probe um_tls_probe_t;
typedef void (*um_tls_probe_cb)(int status, const um_tls_cover_t *cv, void *ud);

/* timeout_ms: the whole exchange (0 = 5000); the answer is complete after
 * 300 ms without a byte, or at 16 KiB. */
int um_tls_probe_start(uv_loop_t *loop, const struct sockaddr *cover, const char *sni,
                       um_tls_fp_t fp, uint32_t timeout_ms, um_tls_probe_cb cb, void *ud,
                       um_tls_probe_t **out);
void um_tls_probe_cancel(um_tls_probe_t *p);

#endif
