/* Direct connector: streams are TCP connections from this host (dial.c),
 * associations are UDP sockets (one per family, opened on first use). */
#include "exit/direct.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "exit/dial.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rdshare.h"
#include "util/uvread.h"
#include "util/uvwrite.h"
#include "util/log.h"

#define READ_BUF         (64u * 1024u)
#define UDP_QUEUE_MAX    (1u << 20) /* bytes waiting in the kernel send path */
#define UDP_RESOLVE_MAX  16         /* names being resolved per association */
#define UDP_PEERS_MAX    64         /* destinations whose replies we pass back */
#define UDP_DATAGRAM_MAX 65535

#define READ_MIN   (4u * 1024u)    /* a read's share when thousands read at once */
#define READ_ROUND (1024u * 1024u) /* bytes one round of reads may bring in (rdshare.h) */

/* Dial budgets (audit: a name with 16 black-holed addresses held 16
 * descriptors per stream for 10 s). One dial keeps at most DIAL_ATTEMPTS
 * attempts in flight; a client at most CLIENT_DIALS dials and CLIENT_SOCKETS
 * attempts; the whole connector GLOBAL_DIALS dials and GLOBAL_SOCKETS
 * attempts, the latter also at most a quarter of the descriptor limit. */
#define DIAL_ATTEMPTS  4
#define CLIENT_DIALS   256
#define CLIENT_SOCKETS 256
#define GLOBAL_DIALS   4096
#define GLOBAL_SOCKETS 4096

struct um_direct {
    uv_loop_t *loop;
    um_resolver_t *resolver; /* owned by the root, borrowed by clients */
    um_dialer_t dialer;
    um_direct_t *root;     /* NULL for the root itself */
    um_dial_quota_t quota; /* global for the root, the client's otherwise */
    int refs;              /* clients: sessions sharing this one */
    int clients;           /* root: clients still open */
    char device[16];       /* SO_BINDTODEVICE ("" = none) */
    /* root: the one read buffer of every connection. on_data copies what
     * it is given (um_conn_t's contract), and the loop runs one read
     * callback at a time, so no connection holds a buffer of its own: an
     * idle or paused connection costs its structs only. Allocated on the
     * first read, freed with the root. Each read's size is a share of
     * READ_ROUND among the connections reading now (rdshare). */
    uint8_t *rbuf;
    um_rdshare_t rshare;
};

typedef struct dconn dconn_t;
typedef struct dassoc dassoc_t;

static const um_conn_ops_t conn_ops;
static const um_assoc_ops_t assoc_ops;

struct dconn {
    um_conn_t base; /* first: a dconn_t is a um_conn_t */
    um_direct_t *d;
    const um_conn_cbs_t *cbs;
    void *arg;
    um_dial_t *dial;
    uv_tcp_t *tcp;
    uint8_t *early;
    size_t early_n;
    uint64_t rstamp; /* rdshare: the last period this connection read in */
    size_t queued;
    um_uvread_t rd; /* read_stop is a soft pause (util/uvread.h) */
    bool above;
    bool reading; /* the user wants data */
    bool closed;
    bool failed;
};

static void conn_closed_cb(uv_handle_t *h)
{
    dconn_t *c = h->data;
    free(c->tcp);
    free(c);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    dconn_t *c = h->data;
    um_direct_t *r = c->d->root ? c->d->root : c->d;
    if (um_uvread_refuse(&c->rd)) { /* paused: nothing is read, the fd stays armed */
        *b = uv_buf_init(NULL, 0);
        return;
    }
    if (!r->rbuf) r->rbuf = malloc(READ_BUF);
    b->base = (char *)r->rbuf;
    b->len = r->rbuf ? um_rdshare_next(&r->rshare, &c->rstamp, um_now_ms(), READ_ROUND, READ_MIN,
                                       READ_BUF)
                     : 0;
}

static void conn_fail(dconn_t *c, int err)
{
    if (c->failed || c->closed) return;
    c->failed = true;
    um_uvread_halt(&c->rd, (uv_stream_t *)c->tcp);
    c->cbs->on_error(c->arg, err);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    dconn_t *c = s->data;
    if (c->closed) return;
    if (nread > 0) {
        c->cbs->on_data(c->arg, (const uint8_t *)b->base, (size_t)nread);
    } else if (nread == UV_ENOBUFS && um_uvread_enobufs(&c->rd, s)) {
        return; /* a read refused while paused */
    } else if (nread == UV_EOF) {
        um_uvread_halt(&c->rd, s);
        c->cbs->on_eof(c->arg);
    } else if (nread < 0) {
        conn_fail(c, UM_EPIPE);
    }
}

static void conn_written(void *ud, size_t n, int status)
{
    dconn_t *c = ud;
    c->queued -= n;
    if (c->closed) return;
    if (status < 0) {
        conn_fail(c, UM_EPIPE);
        return;
    }
    if (c->above && c->queued <= UM_CONN_LOW_WATER) {
        c->above = false;
        c->cbs->on_drain(c->arg);
    }
}

static int conn_queue(dconn_t *c, const uint8_t *p, size_t n)
{
    if (n == 0) return 0;
    size_t q = 0;
    int rc = um_uv_write_some((uv_stream_t *)c->tcp, p, n, conn_written, c, &q);
    if (rc != 0) return rc == UM_ENOMEM ? rc : UM_EPIPE;
    c->queued += q;
    if (c->queued > UM_CONN_HIGH_WATER) c->above = true;
    return 0;
}

static void on_dialed(void *arg, int result, uv_tcp_t *tcp)
{
    dconn_t *c = arg;
    c->dial = NULL;
    if (result != UM_CONN_OK) {
        c->failed = true;
        c->cbs->on_open(c->arg, result);
        return;
    }
    c->tcp = tcp;
    tcp->data = c;
    if (c->early_n && conn_queue(c, c->early, c->early_n) != 0) {
        free(c->early);
        c->early = NULL;
        c->failed = true;
        c->cbs->on_open(c->arg, UM_CONN_GENERAL_FAILURE);
        return;
    }
    free(c->early);
    c->early = NULL;
    if (c->reading) um_uvread_start(&c->rd, (uv_stream_t *)tcp, conn_alloc, conn_read);
    c->cbs->on_open(c->arg, UM_CONN_OK);
}

static int d_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                  const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    um_direct_t *d = ctx;
    if (!d || !dst || !cbs || !out || (n && !early)) return UM_EINVAL;
    dconn_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    c->base.ops = &conn_ops;
    c->d = d;
    c->cbs = cbs;
    c->arg = arg;
    c->reading = true;
    if (n) {
        c->early = malloc(n);
        if (!c->early) {
            free(c);
            return UM_ENOMEM;
        }
        memcpy(c->early, early, n);
        c->early_n = n;
    }
    int rc = um_dial_start(&d->dialer, dst, on_dialed, c, &c->dial);
    if (rc != 0) {
        free(c->early);
        free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static int d_write(um_conn_t *uc, const uint8_t *p, size_t n)
{
    dconn_t *c = (dconn_t *)uc;
    if (c->closed || c->failed) return UM_EPIPE;
    if (!c->tcp) return UM_EAGAIN;
    if (n == 0) return 0;
    return conn_queue(c, p, n);
}

static size_t d_queued(um_conn_t *uc)
{
    dconn_t *c = (dconn_t *)uc;
    return c->queued;
}

static int d_read_start(um_conn_t *uc)
{
    dconn_t *c = (dconn_t *)uc;
    c->reading = true;
    if (c->tcp && !c->failed && !c->closed)
        return um_uvread_start(&c->rd, (uv_stream_t *)c->tcp, conn_alloc, conn_read) == 0
                   ? 0
                   : UM_EPIPE;
    return 0;
}

static int d_read_stop(um_conn_t *uc)
{
    dconn_t *c = (dconn_t *)uc;
    c->reading = false;
    if (c->tcp) um_uvread_pause(&c->rd); /* a stop and a start within a turn cost no syscall */
    return 0;
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
    free(req);
}

static int d_shutdown(um_conn_t *uc)
{
    dconn_t *c = (dconn_t *)uc;
    if (c->closed || c->failed) return UM_EPIPE;
    if (!c->tcp) return UM_EAGAIN;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req) return UM_ENOMEM;
    if (uv_shutdown(req, (uv_stream_t *)c->tcp, shutdown_done) != 0) {
        free(req);
        return UM_EPIPE;
    }
    return 0;
}

static void d_close(um_conn_t *uc)
{
    dconn_t *c = (dconn_t *)uc;
    if (!c || c->closed) return;
    c->closed = true;
    if (c->dial) um_dial_cancel(c->dial);
    c->dial = NULL;
    free(c->early);
    c->early = NULL;
    if (c->tcp) {
        uv_close((uv_handle_t *)c->tcp, conn_closed_cb);
        return;
    }
    free(c);
}

/* --- UDP associations ---------------------------------------------------- */

typedef struct pending_udp pending_udp_t;

struct dassoc {
    um_assoc_t base; /* first */
    um_direct_t *d;
    um_assoc_recv_cb cb;
    void *arg;
    uv_udp_t udp[2]; /* [0] IPv4, [1] IPv6 */
    bool open[2];
    int refs;
    bool closed;
    uint8_t *rbuf;
    pending_udp_t *pending[UDP_RESOLVE_MAX];
    um_addr_t peers[UDP_PEERS_MAX]; /* replies accepted only from these */
    size_t npeers, peer_next;
};

struct pending_udp {
    dassoc_t *a;
    um_resolve_t *q;
    size_t slot;
    size_t n;
    uint8_t data[];
};

typedef struct {
    uv_udp_send_t req;
    uint8_t data[];
} udp_send_t;

static void assoc_unref(dassoc_t *a)
{
    if (--a->refs == 0) {
        free(a->rbuf);
        free(a);
    }
}

static void udp_closed(uv_handle_t *h)
{
    assoc_unref(h->data);
}

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    dassoc_t *a = h->data;
    if (!a->rbuf) a->rbuf = malloc(UDP_DATAGRAM_MAX);
    b->base = (char *)a->rbuf;
    b->len = a->rbuf ? UDP_DATAGRAM_MAX : 0;
}

static void unmap(um_addr_t *x)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (x->type == UM_ADDR_IPV6 && memcmp(x->u.v6, mapped, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, x->u.v6 + 12, 4);
        x->type = UM_ADDR_IPV4;
        memcpy(x->u.v4, v4, 4);
    }
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *sa,
                     unsigned flags)
{
    dassoc_t *a = h->data;
    if (a->closed || nread < 0 || !sa) return;
    if (flags & UV_UDP_PARTIAL) return;
    um_addr_t src;
    if (um_addr_from_sockaddr(&src, sa) != 0) return;
    unmap(&src);
    bool known = false;
    for (size_t i = 0; i < a->npeers && !known; i++)
        known = um_addr_equal(&a->peers[i], &src);
    if (!known) return; /* address- and port-restricted, like most NATs */
    a->cb(a->arg, &src, (const uint8_t *)b->base, (size_t)nread);
}

static int d_assoc_open(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out)
{
    um_direct_t *d = ctx;
    if (!d || !cb || !out) return UM_EINVAL;
    dassoc_t *a = calloc(1, sizeof(*a));
    if (!a) return UM_ENOMEM;
    a->base.ops = &assoc_ops;
    a->d = d;
    a->cb = cb;
    a->arg = arg;
    a->refs = 1;
    *out = &a->base;
    return 0;
}

static int family_socket(dassoc_t *a, int fam)
{
    if (a->open[fam]) return 0;
    uv_udp_t *u = &a->udp[fam];
    if (uv_udp_init(a->d->loop, u) != 0) return UM_EIO;
    u->data = a;
    a->open[fam] = true;
    a->refs++;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (fam == 0) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
    } else {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
    }
    if (uv_udp_bind(u, (const struct sockaddr *)&ss, fam ? UV_UDP_IPV6ONLY : 0) != 0 ||
        (a->d->device[0] && um_dial_bind_device((uv_handle_t *)u, a->d->device) != 0) ||
        uv_udp_recv_start(u, udp_alloc, udp_recv) != 0)
        return UM_EIO;
    return 0;
}

static void udp_sent(uv_udp_send_t *req, int status)
{
    free(req);
}

static int send_ip(dassoc_t *a, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    if (um_policy_check(a->d->dialer.policy, dst, NULL) != 0) return UM_EACCES;
    int fam = dst->type == UM_ADDR_IPV6;
    int rc = family_socket(a, fam);
    if (rc != 0) return rc;
    if (uv_udp_get_send_queue_size(&a->udp[fam]) > UDP_QUEUE_MAX) return UM_ENOSPC;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (um_addr_to_sockaddr(dst, &ss, &sl) != 0) return UM_EINVAL;
    bool known = false;
    for (size_t i = 0; i < a->npeers && !known; i++)
        known = um_addr_equal(&a->peers[i], dst);
    if (!known) {
        a->peers[a->peer_next] = *dst;
        a->peer_next = (a->peer_next + 1) % UDP_PEERS_MAX;
        if (a->npeers < UDP_PEERS_MAX) a->npeers++;
    }
    udp_send_t *s = malloc(sizeof(*s) + n);
    if (!s) return UM_ENOMEM;
    if (n) memcpy(s->data, p, n); /* an empty datagram may come with p == NULL */
    uv_buf_t b = uv_buf_init((char *)s->data, (unsigned)n);
    if (uv_udp_send(&s->req, &a->udp[fam], &b, 1, (const struct sockaddr *)&ss, udp_sent) != 0) {
        free(s);
        return UM_EIO;
    }
    return 0;
}

static void udp_resolved(void *arg, int status, const um_addr_t *addrs, size_t n)
{
    pending_udp_t *pu = arg;
    dassoc_t *a = pu->a;
    a->pending[pu->slot] = NULL;
    for (size_t i = 0; status == 0 && i < n; i++)
        if (um_policy_check(a->d->dialer.policy, &addrs[i], NULL) == 0) {
            send_ip(a, &addrs[i], pu->data, pu->n);
            break;
        }
    free(pu);
    assoc_unref(a);
}

static int d_assoc_send(um_assoc_t *ua, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    dassoc_t *a = (dassoc_t *)ua;
    if (!a || a->closed || !dst || (n && !p) || n > UDP_DATAGRAM_MAX || dst->port == 0)
        return UM_EINVAL;
    if (dst->type != UM_ADDR_DOMAIN) return send_ip(a, dst, p, n);
    size_t slot = 0;
    while (slot < UDP_RESOLVE_MAX && a->pending[slot])
        slot++;
    if (slot == UDP_RESOLVE_MAX) return UM_ENOSPC;
    pending_udp_t *pu = malloc(sizeof(*pu) + n);
    if (!pu) return UM_ENOMEM;
    pu->a = a;
    pu->slot = slot;
    pu->n = n;
    if (n) memcpy(pu->data, p, n);
    char host[UM_DOMAIN_MAX + 1];
    memcpy(host, dst->u.domain, dst->domain_len);
    host[dst->domain_len] = '\0';
    int rc = um_resolver_query(a->d->resolver, host, dst->port, udp_resolved, pu, &pu->q);
    if (rc != 0) {
        free(pu);
        return rc;
    }
    a->pending[slot] = pu;
    a->refs++;
    return 0;
}

static void d_assoc_close(um_assoc_t *ua)
{
    dassoc_t *a = (dassoc_t *)ua;
    if (!a || a->closed) return;
    a->closed = true;
    for (size_t i = 0; i < UDP_RESOLVE_MAX; i++)
        if (a->pending[i]) {
            um_resolve_cancel(a->pending[i]->q);
            free(a->pending[i]);
            a->pending[i] = NULL;
            a->refs--;
        }
    for (int f = 0; f < 2; f++)
        if (a->open[f]) uv_close((uv_handle_t *)&a->udp[f], udp_closed);
    assoc_unref(a);
}

static const um_conn_ops_t conn_ops = {
    .name = "direct",
    .write = d_write,
    .queued = d_queued,
    .read_start = d_read_start,
    .read_stop = d_read_stop,
    .shutdown = d_shutdown,
    .close = d_close,
};

static const um_assoc_ops_t assoc_ops = {
    .send = d_assoc_send,
    .close = d_assoc_close,
};

static const um_connector_ops_t direct_ops = {
    .name = "direct",
    .open = d_open,
    .assoc_open = d_assoc_open,
};

static uint32_t global_sockets(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return GLOBAL_SOCKETS;
    uint64_t q = (uint64_t)rl.rlim_cur / 4;
    UM_DEBUG("egress: descriptor limit %llu; at most %llu connection attempts in flight",
             (unsigned long long)rl.rlim_cur,
             (unsigned long long)(q < GLOBAL_SOCKETS ? (q ? q : 1) : GLOBAL_SOCKETS));
    return q < GLOBAL_SOCKETS ? (q ? (uint32_t)q : 1) : GLOBAL_SOCKETS;
}

int um_direct_new(uv_loop_t *loop, const um_policy_t *policy, uint32_t connect_timeout_ms,
                  um_direct_t **out)
{
    um_direct_t *d = calloc(1, sizeof(*d));
    if (!d) return UM_ENOMEM;
    d->refs = 1;
    d->quota.max_dials = GLOBAL_DIALS;
    d->quota.max_sockets = global_sockets();
    int rc = um_resolver_new(loop, connect_timeout_ms ? connect_timeout_ms / 2 : 0, &d->resolver);
    if (rc != 0) {
        free(d);
        return rc;
    }
    d->loop = loop;
    d->dialer.loop = loop;
    d->dialer.resolver = d->resolver;
    d->dialer.policy = policy;
    d->dialer.timeout_ms = connect_timeout_ms;
    d->dialer.max_attempts = DIAL_ATTEMPTS;
    d->dialer.quota[0] = &d->quota;
    *out = d;
    return 0;
}

int um_direct_client_new(um_direct_t *root, um_direct_t **out)
{
    if (!root || root->root || !out) return UM_EINVAL;
    um_direct_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    *c = *root;
    c->root = root;
    c->rbuf = NULL; /* the root's serves every connection */
    c->refs = 1;
    c->clients = 0;
    c->quota = (um_dial_quota_t){.max_dials = CLIENT_DIALS, .max_sockets = CLIENT_SOCKETS};
    c->dialer.quota[0] = &root->quota;
    c->dialer.quota[1] = &c->quota;
    root->clients++;
    *out = c;
    return 0;
}

um_direct_t *um_direct_ref(um_direct_t *d)
{
    if (d) d->refs++;
    return d;
}

void um_direct_free(um_direct_t *d)
{
    if (!d || --d->refs > 0) return;
    if (d->root) {
        d->root->clients--;
        free(d);
        return;
    }
    if (d->clients) UM_WARN("egress: connector freed with %d client(s) open", d->clients);
    um_resolver_free(d->resolver);
    free(d->rbuf);
    free(d);
}

void um_direct_quota(const um_direct_t *d, um_dial_quota_t *out)
{
    *out = d->quota;
}

void um_direct_set_device(um_direct_t *d, const char *ifname)
{
    snprintf(d->device, sizeof(d->device), "%s", ifname ? ifname : "");
    d->dialer.bind_device = d->device;
}

um_conn_provider_t um_direct_connector(um_direct_t *d)
{
    um_conn_provider_t c = {&direct_ops, d};
    return c;
}

struct um_resolver *um_direct_resolver(um_direct_t *d)
{
    return d->resolver;
}
