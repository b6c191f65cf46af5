#include "transport/tls_probe.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_tls.h"
#include "transport/tcp.h"
#include "util/err.h"

#define ANSWER_MAX (16u << 10)
#define QUIET_MS   300

struct um_tls_probe {
    uv_loop_t *loop;
    um_tcp_t *t;
    uv_timer_t whole, quiet;
    int closing_handles;
    int done;
    um_tls_fp_t fp;
    char sni[UM_TLS_SNI_MAX + 1];
    um_tls_probe_cb cb;
    void *ud;
    uint8_t buf[ANSWER_MAX];
    size_t n;
};

static void handle_closed(uv_handle_t *h)
{
    um_tls_probe_t *p = h->data;
    if (--p->closing_handles == 0) free(p);
}

static void finish(um_tls_probe_t *p, int status)
{
    if (p->done) return;
    p->done = 1;
    um_tcp_close(p->t);
    p->t = NULL;
    um_tls_cover_t cv;
    if (status == 0 && um_tls_cover_learn(p->buf, p->n, &cv) != 0) status = UM_EPROTO;
    if (p->cb) p->cb(status, status == 0 ? &cv : NULL, p->ud);
    p->closing_handles = 2;
    uv_close((uv_handle_t *)&p->whole, handle_closed);
    uv_close((uv_handle_t *)&p->quiet, handle_closed);
}

static void on_whole(uv_timer_t *tm)
{
    um_tls_probe_t *p = tm->data;
    finish(p, p->n ? 0 : UM_ETIMEDOUT); /* a slow cover: learn what came */
}

static void on_quiet(uv_timer_t *tm)
{
    finish(tm->data, 0);
}

static void on_read(um_tcp_t *t, const uint8_t *b, size_t n, int status, void *ud)
{
    (void)t;
    um_tls_probe_t *p = ud;
    if (status < 0) {
        finish(p, p->n ? 0 : status);
        return;
    }
    size_t take = n < ANSWER_MAX - p->n ? n : ANSWER_MAX - p->n;
    memcpy(p->buf + p->n, b, take);
    p->n += take;
    if (p->n == ANSWER_MAX) {
        finish(p, 0);
        return;
    }
    uv_timer_start(&p->quiet, on_quiet, QUIET_MS, 0);
}

static void on_connect(um_tcp_t *t, int status, void *ud)
{
    um_tls_probe_t *p = ud;
    if (status < 0) {
        finish(p, status);
        return;
    }
    /* A hello exactly as a client's, but with random slots and a key nobody
     * keeps. */
    uint8_t sk[32], x[32], ech[256], hello[UM_TLS_BUILD_MAX];
    um_tls_slots_t sl;
    size_t hn = 0;
    randombytes_buf(sk, sizeof(sk));
    crypto_scalarmult_base(x, sk);
    sodium_memzero(sk, sizeof(sk));
    um_tls_grease_ech_enc(p->fp, sl.ech_enc);
    randombytes_buf(sl.random, sizeof(sl.random));
    randombytes_buf(sl.session_id, sizeof(sl.session_id));
    sl.ech_payload_len = um_tls_fp_ech_len(p->fp, NULL, NULL);
    randombytes_buf(ech, sizeof(ech));
    sl.ech_payload = ech;
    int r = um_tls_hello_build(p->fp, p->sni, x, &sl, NULL, NULL, hello, sizeof(hello), &hn);
    if (r == 0) r = um_tcp_write(t, hello, hn);
    if (r == 0) {
        um_tcp_set_read_cb(t, on_read, p);
        r = um_tcp_read_start(t);
    }
    if (r) finish(p, r);
}

int um_tls_probe_start(uv_loop_t *loop, const struct sockaddr *cover, const char *sni,
                       um_tls_fp_t fp, uint32_t timeout_ms, um_tls_probe_cb cb, void *ud,
                       um_tls_probe_t **out)
{
    if (!loop || !cover || !sni || !cb || fp > UM_TLS_FP_MAX || strlen(sni) > UM_TLS_SNI_MAX)
        return UM_EINVAL;
    um_tls_probe_t *p = calloc(1, sizeof(*p));
    if (!p) return UM_ENOMEM;
    p->loop = loop;
    p->fp = fp;
    memcpy(p->sni, sni, strlen(sni) + 1);
    p->cb = cb;
    p->ud = ud;
    int r = um_tcp_connect(loop, cover, on_connect, p, &p->t);
    if (r) {
        free(p);
        return r;
    }
    uv_timer_init(loop, &p->whole);
    uv_timer_init(loop, &p->quiet);
    p->whole.data = p->quiet.data = p;
    uv_timer_start(&p->whole, on_whole, timeout_ms ? timeout_ms : 5000, 0);
    if (out) *out = p;
    return 0;
}

void um_tls_probe_cancel(um_tls_probe_t *p)
{
    if (!p || p->done) return;
    p->cb = NULL;
    finish(p, UM_EPIPE);
}
