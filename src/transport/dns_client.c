#include "transport/dns_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "transport/dns_car.h"
#include "transport/dns_msg.h"
#include "transport/dns_wire.h"
#include "transport/tcp.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define TICK_MS      10
#define QMAX         (UM_DNSW_NAME_MAX + 64)
#define STREAM_QUEUE (256u << 10) /* bytes waiting for the TCP/TLS stream to come up */

typedef struct {
    bool used, tcp;
    uint16_t id;
    uint32_t nonce;
    uint64_t sent_ms;
    uint16_t qn, nl; /* the query, and its name's length (the name starts at 12) */
    uint8_t q[QMAX];
} pend_t;

typedef struct {
    um_tcp_t *t;
    bool up, connecting;
    SSL *ssl; /* DoT only */
    bool hs_done;
    um_buf_t out; /* framed queries waiting for the stream (plaintext) */
    size_t have;  /* bytes of a framed answer so far */
    uint8_t in[2 + 65535];
} stream_t;

typedef struct {
    uv_loop_t *loop;
    um_dnsw_t w;
    um_dns_car_t *car;
    struct sockaddr_storage resolver;
    bool dot, edns, established, closing;
    bool peer_more;     /* the last answer carried data and the server said it has more */
    uint32_t empty_run; /* answers in a row without data: a window of them ends the burst */
    uint32_t conv, nonce, inflight, n_pend;
    uint32_t win; /* burst target: inflight, grown toward UM_DNS_CLI_INFLIGHT_MAX in bulk */
    unsigned nx;
    uint64_t last_data_ms, next_poll_ms;
    uv_udp_t udp;
    uv_timer_t tick;
    int live;
    SSL_CTX *ctx;
    stream_t st;
    pend_t pend[UM_DNS_CLI_INFLIGHT_MAX];
    um_dns_client_stats_t stats;
    um_ratelimit_t rl;
    uint8_t rbuf[65536];
} cli_t;

static void pump(cli_t *c);
static void stream_send(cli_t *c, pend_t *q);

/* ---- teardown ---- */

static void handle_closed(uv_handle_t *h)
{
    cli_t *c = h->data;
    if (--c->live == 0) {
        um_buf_wipe(&c->st.out);
        if (c->ctx) SSL_CTX_free(c->ctx);
        um_dnsw_wipe(&c->w);
        free(c);
    }
}

static void stream_reset(cli_t *c)
{
    stream_t *s = &c->st;
    um_tcp_close(s->t);
    s->t = NULL;
    if (s->ssl) SSL_free(s->ssl);
    s->ssl = NULL;
    s->up = s->connecting = s->hs_done = false;
    s->have = 0;
    um_buf_wipe(&s->out);
    um_buf_init(&s->out, STREAM_QUEUE);
    for (unsigned i = 0; i < UM_DNS_CLI_INFLIGHT_MAX; i++)
        if (c->pend[i].used && c->pend[i].tcp) {
            c->pend[i].used = false; /* rel sends again what they carried */
            c->n_pend--;
        }
}

/* The layer above closed the carrier: the conversation ends. */
static void on_closed(void *ud)
{
    cli_t *c = ud;
    c->closing = true;
    UM_DEBUG("dns: conversation %08x done: %llu queries, %llu answers (%llu with data), %llu "
             "timeouts, %llu duplicates, %llu over tcp",
             c->conv, (unsigned long long)c->stats.queries, (unsigned long long)c->stats.answers,
             (unsigned long long)c->stats.data_answers, (unsigned long long)c->stats.timeouts,
             (unsigned long long)c->stats.dups, (unsigned long long)c->stats.tcp_retries);
    um_dns_car_release(c->car);
    c->car = NULL;
    stream_reset(c);
    uv_close((uv_handle_t *)&c->udp, handle_closed);
    uv_close((uv_handle_t *)&c->tick, handle_closed);
}

static void on_want(void *ud)
{
    cli_t *c = ud;
    if (!c->closing) pump(c);
}

/* ---- answers ---- */

static void fail(cli_t *c, int err)
{
    um_dns_car_fail(c->car, err);
}

static void on_answer(cli_t *c, const uint8_t *p, size_t n)
{
    um_dnsm_answer_t a;
    uint8_t txt[4096], pay[4096];
    size_t tn = 0, pn = 0;
    int r = um_dnsm_answer_parse(p, n, &a, txt, sizeof(txt), &tn);
    if (r != 0 && r != UM_EMSGSIZE) {
        c->stats.bad++;
        return;
    }
    pend_t *q = NULL;
    for (unsigned i = 0; i < UM_DNS_CLI_INFLIGHT_MAX; i++)
        if (c->pend[i].used && c->pend[i].id == a.id) q = &c->pend[i];
    /* The question must be ours too (the name, in any case). */
    if (!q) {
        c->stats.dups++; /* answered already (the resolver asked twice), or timed out */
        return;
    }
    if (!um_dnsm_name_eq(a.qname, a.qname_len, q->q + 12, q->nl)) {
        c->stats.bad++;
        return;
    }
    if (a.tc && !q->tcp) {
        /* Does not fit in UDP: the same question over TCP (RFC 7766). */
        c->stats.tcp_retries++;
        stream_send(c, q);
        return;
    }
    uint32_t nonce = q->nonce;
    q->used = false;
    c->n_pend--;
    c->stats.answers++;
    if ((a.rcode == UM_DNSM_FORMERR || a.rcode == UM_DNSM_NOTIMP) && c->edns) {
        UM_DEBUG("dns: the resolver refuses EDNS0 (rcode %u): plain queries from now",
                 (unsigned)a.rcode);
        c->edns = false;
    } else if (a.rcode == UM_DNSM_NXDOMAIN) {
        c->stats.nxdomain++;
        if (++c->nx >= UM_DNS_CLI_NX_RESET) {
            UM_DEBUG("dns: the server does not know conversation %08x", c->conv);
            fail(c, UM_EPIPE);
            return;
        }
    } else if (a.rcode == UM_DNSM_NOERROR && a.n_txt && r == 0) {
        if (um_dnsw_down_open(&c->w, c->conv, nonce, txt, tn, pay, sizeof(pay), &pn) != 0) {
            c->stats.bad++;
        } else {
            c->established = true;
            c->nx = 0;
            c->peer_more = false; /* an empty answer: the server had nothing more */
            c->empty_run = pn ? 0 : c->empty_run + 1;
            if (pn) {
                c->stats.data_answers++;
                c->last_data_ms = um_now_ms();
                (void)um_dns_car_input(c->car, pay, pn);
                um_rel_t *rel = um_dns_car_rel(c->car);
                c->peer_more = rel && um_rel_peer_more(rel);
                /* A server with more to send: one more query in flight per full answer
                 * (the window doubles per round trip), so a long resolver path is not
                 * bound by inflight x answer / RTT. */
                if (c->peer_more && c->win < UM_DNS_CLI_INFLIGHT_MAX) c->win++;
            } else if (c->win > c->inflight) {
                c->win--; /* the server ran dry: back toward the base window */
            }
        }
    } else if (a.rcode == UM_DNSM_SERVFAIL) {
        c->stats.servfail++;
    }
    pump(c);
}

/* ---- the stream (TCP, or TLS over it) ---- */

static int stream_flush_tls(cli_t *c)
{
    stream_t *s = &c->st;
    BIO *wb = SSL_get_wbio(s->ssl);
    char b[16384];
    int n;
    while ((n = BIO_read(wb, b, sizeof(b))) > 0)
        if (um_tcp_write(s->t, (uint8_t *)b, (size_t)n) != 0) return UM_EIO;
    return 0;
}

static int stream_write_plain(cli_t *c, const uint8_t *p, size_t n)
{
    stream_t *s = &c->st;
    if (!s->ssl) return um_tcp_write(s->t, p, n);
    while (n) {
        int w = SSL_write(s->ssl, p, (int)(n > 16384 ? 16384 : n));
        if (w <= 0) return UM_EIO;
        p += w;
        n -= (size_t)w;
    }
    return stream_flush_tls(c);
}

static void stream_push(cli_t *c)
{
    stream_t *s = &c->st;
    if (!s->up || (s->ssl && !s->hs_done)) return;
    const uint8_t *p;
    size_t n = um_buf_peek(&s->out, &p);
    if (!n) return;
    if (stream_write_plain(c, p, n) != 0) {
        stream_reset(c);
        return;
    }
    um_buf_consume(&s->out, n);
}

static void stream_plain_in(cli_t *c, const uint8_t *p, size_t n)
{
    stream_t *s = &c->st;
    while (n && !c->closing) {
        size_t take = sizeof(s->in) - s->have;
        if (take > n) take = n;
        memcpy(s->in + s->have, p, take);
        s->have += take;
        p += take;
        n -= take;
        while (s->have >= 2) {
            size_t ml = (size_t)s->in[0] << 8 | s->in[1];
            if (s->have < 2 + ml) break;
            uint8_t m[65535];
            memcpy(m, s->in + 2, ml);
            memmove(s->in, s->in + 2 + ml, s->have - 2 - ml);
            s->have -= 2 + ml;
            on_answer(c, m, ml);
            if (c->closing || !s->t) return;
        }
    }
}

static void stream_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    cli_t *c = ud;
    stream_t *s = &c->st;
    (void)t;
    if (status < 0) {
        stream_reset(c);
        return;
    }
    if (!s->ssl) {
        stream_plain_in(c, p, n);
        return;
    }
    BIO_write(SSL_get_rbio(s->ssl), p, (int)n);
    if (!s->hs_done) {
        int r = SSL_do_handshake(s->ssl);
        if (r == 1) {
            s->hs_done = true;
        } else if (SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_READ) {
            um_log_limited(&c->rl, 5, 1000, UM_LOG_DEBUG,
                           "dns: tls handshake with the resolver "
                           "failed");
            stream_reset(c);
            return;
        }
        if (stream_flush_tls(c) != 0) {
            stream_reset(c);
            return;
        }
        if (!s->hs_done) return;
        stream_push(c);
    }
    uint8_t b[16384];
    int r;
    while (s->ssl && (r = SSL_read(s->ssl, b, sizeof(b))) > 0) {
        stream_plain_in(c, b, (size_t)r);
        if (c->closing) return;
    }
}

static void stream_connected(um_tcp_t *t, int status, void *ud)
{
    cli_t *c = ud;
    stream_t *s = &c->st;
    (void)t;
    s->connecting = false;
    if (status < 0) {
        um_log_limited(&c->rl, 5, 1000, UM_LOG_DEBUG, "dns: connect to the resolver: %s",
                       um_strerror(status));
        stream_reset(c);
        return;
    }
    s->up = true;
    um_tcp_set_read_cb(s->t, stream_read, c);
    um_tcp_read_start(s->t);
    if (s->ssl) {
        SSL_do_handshake(s->ssl);
        if (stream_flush_tls(c) != 0) {
            stream_reset(c);
            return;
        }
    }
    stream_push(c);
}

static int stream_open(cli_t *c)
{
    stream_t *s = &c->st;
    if (s->t) return 0;
    if (c->dot) {
        s->ssl = SSL_new(c->ctx);
        if (!s->ssl) return UM_ENOMEM;
        BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
        if (!rb || !wb) {
            BIO_free(rb);
            BIO_free(wb);
            SSL_free(s->ssl);
            s->ssl = NULL;
            return UM_ENOMEM;
        }
        SSL_set_bio(s->ssl, rb, wb);
        SSL_set_connect_state(s->ssl);
    }
    s->connecting = true;
    int r = um_tcp_connect(c->loop, (struct sockaddr *)&c->resolver, stream_connected, c, &s->t);
    if (r != 0) {
        s->t = NULL;
        stream_reset(c);
    }
    return r;
}

static void stream_send(cli_t *c, pend_t *q)
{
    uint8_t f[2 + QMAX];
    f[0] = (uint8_t)(q->qn >> 8);
    f[1] = (uint8_t)q->qn;
    memcpy(f + 2, q->q, q->qn);
    q->tcp = true;
    q->sent_ms = um_now_ms();
    if (stream_open(c) != 0 || um_buf_append(&c->st.out, f, 2u + q->qn) != 0) {
        q->used = false;
        c->n_pend--;
        return;
    }
    stream_push(c);
}

/* ---- queries ---- */

static pend_t *slot(cli_t *c)
{
    for (unsigned i = 0; i < UM_DNS_CLI_INFLIGHT_MAX; i++)
        if (!c->pend[i].used) return &c->pend[i];
    return NULL;
}

static uint16_t fresh_id(cli_t *c)
{
    for (;;) {
        uint16_t id = (uint16_t)randombytes_uniform(65536);
        bool dup = false;
        for (unsigned i = 0; i < UM_DNS_CLI_INFLIGHT_MAX; i++)
            if (c->pend[i].used && c->pend[i].id == id) dup = true;
        if (!dup) return id;
    }
}

static int send_query(cli_t *c, pend_t *q, const uint8_t *pay, size_t pn)
{
    uint8_t name[UM_DNSW_NAME_MAX];
    size_t nl = 0, qn = 0;
    q->nonce = c->nonce++;
    q->id = fresh_id(c);
    int r = um_dnsw_up_encode(&c->w, c->conv, q->nonce, c->established ? 0 : UM_DNSW_FLAG_NEW, pay,
                              pn, name, &nl);
    if (r == 0)
        r = um_dnsm_query_build(q->id, name, nl, UM_DNSM_TYPE_TXT, c->edns, q->q, sizeof(q->q),
                                &qn);
    if (r != 0) return r;
    q->qn = (uint16_t)qn;
    q->nl = (uint16_t)nl;
    q->used = true;
    q->tcp = false;
    q->sent_ms = um_now_ms();
    c->n_pend++;
    c->stats.queries++;
    if (c->dot) {
        stream_send(c, q); /* frees the slot itself on failure */
        return 0;
    }
    uv_buf_t b = uv_buf_init((char *)q->q, (unsigned)qn);
    r = uv_udp_try_send(&c->udp, &b, 1, (struct sockaddr *)&c->resolver);
    if (r < 0) um_log_limited(&c->rl, 5, 1000, UM_LOG_DEBUG, "dns: send: %s", uv_strerror(r));
    return 0; /* lost or not, it counts as in flight: the timeout frees it */
}

static void pump(cli_t *c)
{
    if (c->closing || !c->car || !um_dns_car_open(c->car)) return;
    uint64_t now = um_now_ms();
    um_rel_t *rel = um_dns_car_rel(c->car);
    bool busy = um_dns_car_wants_output(c->car) || c->empty_run < c->inflight || c->peer_more ||
                !c->established;
    uint32_t target = busy ? c->win : 1;
    size_t cap = um_dnsw_up_cap(&c->w);
    while (c->n_pend < target) {
        if (!busy && now < c->next_poll_ms) break;
        pend_t *q = slot(c);
        if (!q) break;
        uint8_t pay[256];
        size_t pn = 0;
        (void)um_dns_car_output(c->car, pay, cap, &pn);
        if (send_query(c, q, pay, pn) != 0) break;
        if (!busy) {
            uint32_t iv = rel ? um_rel_poll_interval(rel, now) : 100;
            c->next_poll_ms = now + (iv ? iv : TICK_MS);
        }
        busy = busy || um_dns_car_wants_output(c->car);
    }
}

static void on_tick(uv_timer_t *t)
{
    cli_t *c = t->data;
    uint64_t now = um_now_ms();
    for (unsigned i = 0; i < UM_DNS_CLI_INFLIGHT_MAX; i++) {
        pend_t *q = &c->pend[i];
        if (q->used && now - q->sent_ms > UM_DNS_CLI_QUERY_TIMEOUT_MS) {
            q->used = false;
            c->n_pend--;
            c->stats.timeouts++;
            /* a lost query: the resolver or the path may be saturated */
            c->win = c->win / 2 > c->inflight ? c->win / 2 : c->inflight;
        }
    }
    pump(c);
}

static void udp_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    cli_t *c = h->data;
    (void)sz;
    *b = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family) return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                     unsigned flags)
{
    cli_t *c = u->data;
    (void)b;
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL) || c->closing) return;
    if (!same_addr(addr, &c->resolver)) return; /* only the resolver answers */
    on_answer(c, c->rbuf, (size_t)nread);
}

int um_dns_client_new(uv_loop_t *loop, const um_dns_client_cfg_t *cfg, um_carrier_t **out)
{
    if (!loop || !cfg || !cfg->zone || !out) return UM_EINVAL;
    cli_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    int r = um_dnsw_init(&c->w, cfg->server_pub, cfg->zone);
    if (r != 0) {
        free(c);
        return r;
    }
    c->loop = loop;
    c->resolver = cfg->resolver;
    c->dot = cfg->dot;
    c->edns = true;
    c->inflight = cfg->inflight ? cfg->inflight : UM_DNS_CLI_INFLIGHT_DEFAULT;
    if (c->inflight > UM_DNS_CLI_INFLIGHT_MAX) c->inflight = UM_DNS_CLI_INFLIGHT_MAX;
    c->win = c->inflight;
    randombytes_buf(&c->conv, sizeof(c->conv));
    randombytes_buf(&c->nonce, sizeof(c->nonce));
    um_buf_init(&c->st.out, STREAM_QUEUE);
    if (c->dot) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx) {
            free(c);
            return UM_ENOMEM;
        }
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }
    um_dns_car_link_t l = {.want_output = on_want, .closed = on_closed, .ud = c};
    if ((r = um_dns_car_new(loop, &cfg->rel, &l, &c->car)) != 0) {
        if (c->ctx) SSL_CTX_free(c->ctx);
        free(c);
        return r;
    }
    uv_udp_init(loop, &c->udp);
    c->udp.data = c;
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    c->live = 2;
    struct sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    any.ss_family = cfg->resolver.ss_family;
    if (!c->dot && ((r = uv_udp_bind(&c->udp, (struct sockaddr *)&any, 0)) != 0 ||
                    (r = uv_udp_recv_start(&c->udp, udp_alloc, udp_recv)) != 0)) {
        um_carrier_t *car = um_dns_car_base(c->car);
        um_carrier_close(car); /* on_closed tears the rest down */
        return UM_EIO;
    }
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    *out = um_dns_car_base(c->car);
    pump(c);
    return 0;
}
