#include "transport/dns_server.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "transport/dns_car.h"
#include "transport/dns_msg.h"
#include "transport/dns_wire.h"
#include "transport/tcp.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define BUCKETS   256
#define CACHE     4 /* answers kept per conversation for repeated queries */
#define SWEEP_MS  1000
#define REPLY_MAX (UM_DNSM_EDNS + 64)

typedef struct conv conv_t;
struct conv {
    um_dns_server_t *s;
    conv_t *next;
    uint32_t id;
    um_dns_car_t *car;
    uint64_t last_ms;
    struct {
        uint32_t nonce;
        uint16_t len;
        bool used;
        uint8_t p[UM_DNSM_EDNS];
    } cache[CACHE];
    unsigned ci;
};

typedef struct tconn tconn_t;
struct tconn {
    um_dns_server_t *s;
    tconn_t *next, *prev;
    um_tcp_t *t;
    uint64_t last_ms;
    struct sockaddr_storage peer;
    size_t have;
    uint8_t in[2 + 65535];
};

struct um_dns_server {
    uv_loop_t *loop;
    um_dnsw_t w;
    um_dns_server_cfg_t cfg;
    um_dns_server_conv_cb cb;
    void *ud;
    uv_udp_t udp;
    uv_timer_t sweep;
    um_tcp_listener_t *tl;
    tconn_t *tconns;
    conv_t *tab[BUCKETS];
    um_dns_server_stats_t st;
    int live; /* handles not yet closed */
    bool closing;
    um_ratelimit_t rl;
    uint8_t rbuf[65536];
    uint8_t reply[2 + 65535];
};

static unsigned bucket(uint32_t id)
{
    return (id * 2654435761u) >> 24;
}

static conv_t *find(um_dns_server_t *s, uint32_t id)
{
    for (conv_t *c = s->tab[bucket(id)]; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void unlink_conv(conv_t *c)
{
    conv_t **pp = &c->s->tab[bucket(c->id)];
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    c->s->st.convs--;
}

/* The layer above closed the conversation's carrier. */
static void conv_closed(void *ud)
{
    conv_t *c = ud;
    unlink_conv(c);
    um_dns_car_release(c->car);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

/* We drop the conversation (idle, or the server closes); its holder sees
 * the stream end. */
static void conv_drop(conv_t *c)
{
    unlink_conv(c);
    um_dns_car_fail(c->car, UM_ETIMEDOUT);
    um_dns_car_release(c->car);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

static conv_t *conv_open(um_dns_server_t *s, uint32_t id, const struct sockaddr *peer)
{
    if (s->st.convs >= s->cfg.max_convs) {
        s->st.convs_refused++;
        return NULL;
    }
    conv_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->s = s;
    c->id = id;
    um_dns_car_link_t l = {.want_output = NULL, .closed = conv_closed, .ud = c};
    if (um_dns_car_new(s->loop, &s->cfg.rel, &l, &c->car) != 0) {
        free(c);
        return NULL;
    }
    unsigned b = bucket(id);
    c->next = s->tab[b];
    s->tab[b] = c;
    s->st.convs++;
    s->st.convs_opened++;
    /* The holder may close it at once (conv_closed): look it up again. */
    s->cb(s->ud, um_dns_car_base(c->car), peer);
    return find(s, id);
}

static int reply(const um_dnsm_query_t *q, const um_dnsm_reply_t *r, size_t limit, uint8_t *out,
                 size_t cap, size_t *outn)
{
    return um_dnsm_reply_build(q, r, limit, out, cap, outn);
}

static int tunnel(um_dns_server_t *s, const um_dnsm_query_t *q, uint32_t id, uint32_t nonce,
                  uint8_t flags, const uint8_t *pay, size_t pn, size_t limit,
                  const struct sockaddr *peer, uint8_t *out, size_t cap, size_t *outn)
{
    um_dnsm_reply_t r = {.aa = true, .zone = s->w.zone, .zone_len = s->w.zone_len};
    conv_t *c = find(s, id);
    if (!c && (flags & UM_DNSW_FLAG_NEW)) c = conv_open(s, id, peer);
    if (!c) {
        /* Not a conversation we know (we restarted, or it ended): the name
         * does not exist, as for any other. */
        s->st.nxdomain++;
        r.rcode = UM_DNSM_NXDOMAIN;
        r.soa_auth = true;
        return reply(q, &r, limit, out, cap, outn);
    }
    c->last_ms = um_now_ms();
    for (unsigned i = 0; i < CACHE; i++)
        if (c->cache[i].used && c->cache[i].nonce == nonce) {
            /* The resolver asked again: the same answer, so what it carried
             * is not lost if the first one was. */
            s->st.dup++;
            r.txt = c->cache[i].p;
            r.txt_n = c->cache[i].len;
            return reply(q, &r, limit, out, cap, outn);
        }
    if (pn) (void)um_dns_car_input(c->car, pay, pn);
    size_t tcap = um_dnsm_txt_cap(q, q->udp_size < limit ? q->udp_size : limit);
    if (tcap > UM_DNSM_EDNS) tcap = UM_DNSM_EDNS;
    if (tcap < UM_DNSW_DOWN_HDR) return UM_EMSGSIZE;
    uint8_t *slot = c->cache[c->ci].p;
    size_t on = 0, sn = 0;
    (void)um_dns_car_output(c->car, slot + UM_DNSW_DOWN_HDR, tcap - UM_DNSW_DOWN_HDR, &on);
    if (on) s->st.answered_data++;
    um_dnsw_down_seal(&s->w, id, nonce, slot + UM_DNSW_DOWN_HDR, on, slot, tcap, &sn);
    c->cache[c->ci].nonce = nonce;
    c->cache[c->ci].len = (uint16_t)sn;
    c->cache[c->ci].used = true;
    c->ci = (c->ci + 1) % CACHE;
    r.txt = slot;
    r.txt_n = sn;
    return reply(q, &r, limit, out, cap, outn);
}

int um_dns_server_handle(um_dns_server_t *s, const uint8_t *p, size_t n, size_t limit,
                         const struct sockaddr *peer, uint8_t *out, size_t cap, size_t *outn)
{
    um_dnsm_query_t q;
    um_dnsm_reply_t r = {.aa = true, .zone = s->w.zone, .zone_len = s->w.zone_len};
    *outn = 0;
    s->st.queries++;
    int pr = um_dnsm_query_parse(p, n, &q);
    if (pr == UM_EINVAL) {
        s->st.dropped++;
        return 0;
    }
    if (pr != 0) {
        s->st.formerr++;
        r.rcode = UM_DNSM_FORMERR;
        r.aa = false;
        return reply(&q, &r, limit, out, cap, outn);
    }
    if (q.opcode != 0) {
        r.rcode = UM_DNSM_NOTIMP;
        r.aa = false;
        return reply(&q, &r, limit, out, cap, outn);
    }
    uint32_t id = 0, nonce = 0;
    uint8_t fl = 0, pay[256];
    size_t pn = 0;
    um_dnsw_kind_t k = um_dnsw_up_decode(&s->w, q.qname, q.qname_len, &id, &nonce, &fl, pay, &pn);
    if (k == UM_DNSW_OTHER || (q.qclass != 1 && q.qclass != 255)) {
        s->st.refused++;
        r.rcode = UM_DNSM_REFUSED;
        r.aa = false;
        return reply(&q, &r, limit, out, cap, outn);
    }
    if (k == UM_DNSW_APEX) {
        if (q.qtype == UM_DNSM_TYPE_SOA || q.qtype == UM_DNSM_TYPE_NS ||
            q.qtype == UM_DNSM_TYPE_ANY)
            r.apex_answer = true;
        else
            r.soa_auth = true; /* NODATA */
        return reply(&q, &r, limit, out, cap, outn);
    }
    if (k == UM_DNSW_JUNK) {
        s->st.nxdomain++;
        r.rcode = UM_DNSM_NXDOMAIN;
        r.soa_auth = true;
        return reply(&q, &r, limit, out, cap, outn);
    }
    s->st.tunnel++;
    if (q.qtype != UM_DNSM_TYPE_TXT) {
        r.soa_auth = true; /* NODATA: only TXT exists at tunnel names */
        return reply(&q, &r, limit, out, cap, outn);
    }
    return tunnel(s, &q, id, nonce, fl, pay, pn, limit, peer, out, cap, outn);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    um_dns_server_t *s = h->data;
    (void)sz;
    *b = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                     unsigned flags)
{
    um_dns_server_t *s = u->data;
    (void)b;
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL) || s->closing) return;
    size_t on = 0;
    if (um_dns_server_handle(s, s->rbuf, (size_t)nread, UM_DNSM_EDNS, addr, s->reply,
                             sizeof(s->reply), &on) != 0 ||
        on == 0)
        return;
    uv_buf_t ob = uv_buf_init((char *)s->reply, (unsigned)on);
    /* Lossy by nature: a reply the socket cannot take now is dropped, and
     * the resolver asks again. */
    int r = uv_udp_try_send(&s->udp, &ob, 1, addr);
    if (r < 0) um_log_limited(&s->rl, 5, 1000, UM_LOG_DEBUG, "dns: send: %s", uv_strerror(r));
}

/* ---- TCP (RFC 7766: two-byte length before each message) ---- */

static void tconn_end(tconn_t *c)
{
    um_dns_server_t *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->tconns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->st.tcp_conns--;
    um_tcp_close(c->t);
    free(c);
}

static void tconn_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    tconn_t *c = ud;
    um_dns_server_t *s = c->s;
    (void)t;
    if (status < 0) {
        tconn_end(c);
        return;
    }
    c->last_ms = um_now_ms();
    while (n) {
        size_t take = sizeof(c->in) - c->have;
        if (take > n) take = n;
        memcpy(c->in + c->have, p, take);
        c->have += take;
        p += take;
        n -= take;
        for (;;) {
            if (c->have < 2) break;
            size_t ml = (size_t)c->in[0] << 8 | c->in[1];
            if (c->have < 2 + ml) break;
            size_t on = 0;
            if (um_dns_server_handle(s, c->in + 2, ml, UM_DNSM_TCP_MAX, (struct sockaddr *)&c->peer,
                                     s->reply + 2, sizeof(s->reply) - 2, &on) == 0 &&
                on) {
                s->reply[0] = (uint8_t)(on >> 8);
                s->reply[1] = (uint8_t)on;
                if (um_tcp_write(c->t, s->reply, on + 2) != 0) {
                    tconn_end(c);
                    return;
                }
            }
            memmove(c->in, c->in + 2 + ml, c->have - 2 - ml);
            c->have -= 2 + ml;
        }
    }
}

static void on_accept(um_tcp_listener_t *l, um_tcp_t *t, void *ud)
{
    um_dns_server_t *s = ud;
    (void)l;
    if (s->closing || s->st.tcp_conns >= UM_DNS_SRV_TCP_MAX) {
        um_tcp_close(t);
        return;
    }
    tconn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        um_tcp_close(t);
        return;
    }
    c->s = s;
    c->t = t;
    c->last_ms = um_now_ms();
    int sl = sizeof(c->peer);
    uv_tcp_getpeername(um_tcp_handle(t), (struct sockaddr *)&c->peer, &sl);
    c->next = s->tconns;
    if (s->tconns) s->tconns->prev = c;
    s->tconns = c;
    s->st.tcp_conns++;
    um_tcp_set_wq_max(t, 1u << 20);
    um_tcp_set_read_cb(t, tconn_read, c);
    if (um_tcp_read_start(t) != 0) tconn_end(c);
}

/* ---- lifetime ---- */

static void on_sweep(uv_timer_t *tm)
{
    um_dns_server_t *s = tm->data;
    uint64_t now = um_now_ms();
    for (unsigned b = 0; b < BUCKETS; b++) {
        conv_t *c = s->tab[b];
        while (c) {
            conv_t *nx = c->next;
            if (now - c->last_ms > UM_DNS_CONV_IDLE_MS) conv_drop(c);
            c = nx;
        }
    }
    for (tconn_t *c = s->tconns, *nx; c; c = nx) {
        nx = c->next;
        if (now - c->last_ms > UM_DNS_SRV_TCP_IDLE_MS) tconn_end(c);
    }
}

static void handle_closed(uv_handle_t *h)
{
    um_dns_server_t *s = h->data;
    if (--s->live == 0) {
        um_dnsw_wipe(&s->w);
        free(s);
    }
}

int um_dns_server_new(uv_loop_t *loop, const struct sockaddr *listen,
                      const um_dns_server_cfg_t *cfg, um_dns_server_conv_cb cb, void *ud,
                      um_dns_server_t **out)
{
    if (!loop || !listen || !cfg || !cfg->zone || !cb || !out) return UM_EINVAL;
    um_dns_server_t *s = calloc(1, sizeof(*s));
    if (!s) return UM_ENOMEM;
    int r = um_dnsw_init(&s->w, cfg->server_pub, cfg->zone);
    if (r != 0) {
        free(s);
        return r;
    }
    s->loop = loop;
    s->cfg = *cfg;
    s->cfg.zone = NULL;
    if (!s->cfg.max_convs) s->cfg.max_convs = UM_DNS_SRV_CONVS_DEFAULT;
    s->cb = cb;
    s->ud = ud;
    uv_udp_init(loop, &s->udp);
    s->udp.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->live = 2;
    if ((r = uv_udp_bind(&s->udp, listen, 0)) != 0 ||
        (r = uv_udp_recv_start(&s->udp, udp_alloc, udp_recv)) != 0) {
        r = r == UV_EADDRINUSE ? UM_EEXIST : r == UV_EACCES ? UM_EACCES : UM_EIO;
        goto fail;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    /* TCP on the port UDP got (the same when the caller named one). */
    memset(&ss, 0, sizeof(ss));
    uv_udp_getsockname(&s->udp, (struct sockaddr *)&ss, &sl);
    if ((r = um_tcp_listen(loop, (struct sockaddr *)&ss, 0, on_accept, s, &s->tl)) != 0) goto fail;
    uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    *out = s;
    return 0;
fail:
    s->closing = true;
    uv_close((uv_handle_t *)&s->udp, handle_closed);
    uv_close((uv_handle_t *)&s->sweep, handle_closed);
    return r;
}

int um_dns_server_port(const um_dns_server_t *s)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_udp_getsockname(&s->udp, (struct sockaddr *)&ss, &sl) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void um_dns_server_stats(const um_dns_server_t *s, um_dns_server_stats_t *st)
{
    *st = s->st;
}

void um_dns_server_close(um_dns_server_t *s)
{
    if (!s || s->closing) return;
    s->closing = true;
    for (unsigned b = 0; b < BUCKETS; b++)
        while (s->tab[b])
            conv_drop(s->tab[b]);
    while (s->tconns)
        tconn_end(s->tconns);
    um_tcp_listener_close(s->tl);
    s->tl = NULL;
    uv_close((uv_handle_t *)&s->udp, handle_closed);
    uv_close((uv_handle_t *)&s->sweep, handle_closed);
}
