#include "transport/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/err.h"
#include "util/uvread.h"
#include "util/uvwrite.h"

/* Read buffers are not part of a connection: a read borrows the loop
 * thread's buffer for the duration of the read callback (reads of one thread
 * never overlap), so an idle connection pins no read buffer. A read that
 * starts while that buffer is lent out (a nested loop) gets a heap one. */
#define RBUF 65536
static _Thread_local uint8_t tl_rbuf[RBUF];
static _Thread_local int tl_rbuf_busy;

static unsigned fail_allocs; /* test hook: um_tcp_test_fail_alloc() */

struct um_tcp {
    um_carrier_t base; /* first: a um_tcp_t is a carrier (um_tcp_carrier) */
    um_carrier_read_cb c_rd;
    um_carrier_drain_cb c_dr;
    void *c_ud;
    uv_tcp_t h;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    um_tcp_read_cb read_cb;
    void *read_ud;
    um_tcp_event_cb drain_cb, conn_cb;
    void *drain_ud, *conn_ud;
    size_t wq, wq_max;
    int want_drain, closing, shut;
    um_uvread_t rd; /* read_stop is a soft pause (util/uvread.h) */
};

/* Unsent bytes the kernel may hold for a connection (TCP_NOTSENT_LOWAT).
 * Without a bound it holds up to the whole send buffer (4 MiB auto-tuned):
 * a stream's bytes queued behind a bulk transfer wait for all of it. With
 * it, the bytes wait in our queue instead, where the tunnel decides what
 * goes next (the mux's round-robin), and a small response overtakes the
 * bulk. What is in flight (sent, not acknowledged) is not affected, so a
 * long fat path still fills. */
static void tcp_tune(um_tcp_t *t)
{
    uv_os_fd_t fd;
    int v = UM_TCP_NOTSENT_LOWAT;
    uv_tcp_nodelay(&t->h, 1);
    if (uv_fileno((uv_handle_t *)&t->h, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v));
}

struct um_tcp_listener {
    uv_tcp_t h;
    uv_tcp_t spare; /* takes a connection we cannot serve, to close it */
    um_tcp_accept_cb cb;
    void *ud;
    int paused;     /* leave new connections in the kernel's backlog */
    int pending;    /* libuv holds one accepted connection for us */
    int spare_busy; /* the spare handle is closing */
    int closing;
};

void um_tcp_test_fail_alloc(unsigned n)
{
    fail_allocs = n;
}

static um_tcp_t *tcp_new(uv_loop_t *loop)
{
    if (fail_allocs) {
        fail_allocs--;
        return NULL;
    }
    um_tcp_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    if (uv_tcp_init(loop, &t->h) != 0) {
        free(t);
        return NULL;
    }
    t->h.data = t;
    t->base.ops = &um_tcp_carrier_ops;
    t->wq_max = UM_TCP_WQ_MAX_DEFAULT;
    return t;
}

static void free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void take_pending(um_tcp_listener_t *l);

static void spare_closed(uv_handle_t *h)
{
    um_tcp_listener_t *l = h->data;
    l->spare_busy = 0;
    if (l->closing) {
        free(l);
        return;
    }
    if (l->pending && !l->paused) take_pending(l);
}

static void listener_closed(uv_handle_t *h)
{
    um_tcp_listener_t *l = h->data;
    if (!l->spare_busy) free(l); /* else spare_closed frees it */
}

/* libuv has accepted a connection and holds it until uv_accept(); libuv
 * polls the listener again only after uv_accept(). So every path either
 * hands the connection on, or accepts it into the spare handle and closes
 * it, or leaves it pending (the listener then rests until resumed, with
 * further connections waiting in the kernel's backlog). */
static void take_pending(um_tcp_listener_t *l)
{
    l->pending = 0;
    um_tcp_t *t = tcp_new(l->h.loop);
    if (!t) {
        if (l->spare_busy) {
            l->pending = 1; /* retried from spare_closed() */
            return;
        }
        if (uv_tcp_init(l->h.loop, &l->spare) != 0) {
            l->pending = 1;
            return;
        }
        l->spare.data = l;
        l->spare_busy = 1;
        (void)uv_accept((uv_stream_t *)&l->h, (uv_stream_t *)&l->spare);
        uv_close((uv_handle_t *)&l->spare, spare_closed);
        return;
    }
    if (uv_accept((uv_stream_t *)&l->h, (uv_stream_t *)&t->h) != 0) {
        uv_close((uv_handle_t *)&t->h, free_cb);
        return;
    }
    tcp_tune(t);
    l->cb(l, t, l->ud);
}

static void on_conn(uv_stream_t *srv, int status)
{
    um_tcp_listener_t *l = srv->data;
    if (status < 0 || l->closing) return;
    l->pending = 1;
    if (!l->paused) take_pending(l);
}

void um_tcp_listener_pause(um_tcp_listener_t *l)
{
    if (l) l->paused = 1;
}

void um_tcp_listener_resume(um_tcp_listener_t *l)
{
    if (!l || l->closing || !l->paused) return;
    l->paused = 0;
    if (l->pending && !l->spare_busy) take_pending(l);
}

int um_tcp_listen(uv_loop_t *loop, const struct sockaddr *sa, int backlog, um_tcp_accept_cb cb,
                  void *ud, um_tcp_listener_t **out)
{
    int r;
    if (!loop || !sa || !cb || !out) return UM_EINVAL;
    um_tcp_listener_t *l = calloc(1, sizeof(*l));
    if (!l) return UM_ENOMEM;
    if ((r = uv_tcp_init(loop, &l->h)) != 0) {
        free(l);
        return r;
    }
    l->h.data = l;
    l->spare.data = l;
    l->cb = cb;
    l->ud = ud;
    /* An IPv6 listener takes IPv6 only, so 0.0.0.0:P and [::]:P can both be
     * listed (as most servers expect). */
    unsigned flags = sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    if ((r = uv_tcp_bind(&l->h, sa, flags)) != 0 ||
        (r = uv_listen((uv_stream_t *)&l->h, backlog > 0 ? backlog : UM_TCP_BACKLOG, on_conn)) !=
            0) {
        uv_close((uv_handle_t *)&l->h, listener_closed);
        return r;
    }
    *out = l;
    return 0;
}

int um_tcp_listener_port(const um_tcp_listener_t *l)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&l->h, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void um_tcp_listener_close(um_tcp_listener_t *l)
{
    if (!l || l->closing) return;
    l->closing = 1;
    uv_close((uv_handle_t *)&l->h, listener_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    um_tcp_t *t = req->data;
    if (t->closing) return;
    if (status == 0) tcp_tune(t);
    if (t->conn_cb) t->conn_cb(t, status, t->conn_ud);
}

int um_tcp_connect(uv_loop_t *loop, const struct sockaddr *sa, um_tcp_event_cb cb, void *ud,
                   um_tcp_t **out)
{
    if (!loop || !sa || !cb || !out) return UM_EINVAL;
    um_tcp_t *t = tcp_new(loop);
    if (!t) return UM_ENOMEM;
    t->conn_cb = cb;
    t->conn_ud = ud;
    t->creq.data = t;
    int r = uv_tcp_connect(&t->creq, &t->h, sa, on_connect);
    if (r) {
        uv_close((uv_handle_t *)&t->h, free_cb);
        return r;
    }
    *out = t;
    return 0;
}

void um_tcp_set_read_cb(um_tcp_t *t, um_tcp_read_cb cb, void *ud)
{
    t->read_cb = cb;
    t->read_ud = ud;
}

void um_tcp_set_drain_cb(um_tcp_t *t, um_tcp_event_cb cb, void *ud)
{
    t->drain_cb = cb;
    t->drain_ud = ud;
}

void um_tcp_set_wq_max(um_tcp_t *t, size_t max)
{
    t->wq_max = max ? max : UM_TCP_WQ_MAX_DEFAULT;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    um_tcp_t *t = h->data;
    (void)hint;
    if (um_uvread_refuse(&t->rd)) { /* paused: nothing is read, the fd stays armed */
        *b = uv_buf_init(NULL, 0);
        return;
    }
    if (!tl_rbuf_busy) {
        tl_rbuf_busy = 1;
        b->base = (char *)tl_rbuf;
    } else {
        b->base = malloc(RBUF); /* NULL: libuv reports UV_ENOBUFS */
    }
    b->len = b->base ? RBUF : 0;
}

static void rbuf_release(const uv_buf_t *b)
{
    if (!b || !b->base) return;
    if ((uint8_t *)b->base == tl_rbuf)
        tl_rbuf_busy = 0;
    else
        free(b->base);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    um_tcp_t *t = s->data;
    if (t->closing || n == 0) {
        rbuf_release(b);
        return;
    }
    if (n == UV_ENOBUFS && um_uvread_enobufs(&t->rd, s)) return; /* a refused read */
    if (n < 0) {
        rbuf_release(b);
        um_uvread_halt(&t->rd, s);
        if (t->read_cb) t->read_cb(t, NULL, 0, n == UV_EOF ? UM_EPIPE : (int)n, t->read_ud);
        return;
    }
    if (t->read_cb) t->read_cb(t, (const uint8_t *)b->base, (size_t)n, 0, t->read_ud);
    rbuf_release(b);
}

int um_tcp_read_start(um_tcp_t *t)
{
    if (t->closing) return UM_EPIPE;
    return um_uvread_start(&t->rd, (uv_stream_t *)&t->h, alloc_cb, read_cb);
}

/* A soft pause (util/uvread.h): a stop and a start within a turn of the
 * loop (the tunnel's per-turn read bound, a feeder's high water) cost no
 * system call; a pause that lasts until the loop finds the socket readable
 * again stops the reads for real then. */
int um_tcp_read_stop(um_tcp_t *t)
{
    um_uvread_pause(&t->rd);
    return 0;
}

static void written(void *ud, size_t n, int status)
{
    um_tcp_t *t = ud;
    (void)status;
    t->wq -= n;
    if (t->closing) return;
    if (t->want_drain && t->wq <= t->wq_max / 4) {
        t->want_drain = 0;
        if (t->drain_cb) t->drain_cb(t, 0, t->drain_ud);
    }
}

int um_tcp_write(um_tcp_t *t, const uint8_t *p, size_t n)
{
    if (!t || (!p && n)) return UM_EINVAL;
    if (t->closing || t->shut) return UM_EPIPE;
    if (n == 0) return 0;
    if (n > t->wq_max - (t->wq < t->wq_max ? t->wq : t->wq_max) || t->wq >= t->wq_max) {
        t->want_drain = 1;
        return UM_ENOSPC;
    }
    if (t->wq == 0) {
        /* Nothing queued: try the socket first; only what it does not take
         * now is copied and queued. */
        uv_buf_t b0 = uv_buf_init((char *)p, (unsigned)n);
        int w0 = uv_try_write((uv_stream_t *)&t->h, &b0, 1);
        if (w0 == (int)n) return 0;
        if (w0 > 0) {
            p += w0;
            n -= (size_t)w0;
        } else if (w0 != UV_EAGAIN) {
            return w0;
        }
    }
    int r = um_uv_write_copy((uv_stream_t *)&t->h, p, n, written, t);
    if (r) return r;
    t->wq += n;
    if (t->wq > t->wq_max / 2) t->want_drain = 1;
    return 0;
}

int um_tcp_writev(um_tcp_t *t, const um_carrier_iov_t *iov, size_t n_iov)
{
    if (!t || (!iov && n_iov) || n_iov > UM_TCP_IOV_MAX) return UM_EINVAL;
    if (t->closing || t->shut) return UM_EPIPE;
    size_t n = 0;
    for (size_t i = 0; i < n_iov; i++) {
        if (!iov[i].p && iov[i].n) return UM_EINVAL;
        n += iov[i].n;
    }
    if (n == 0) return 0;
    if (n > t->wq_max - (t->wq < t->wq_max ? t->wq : t->wq_max) || t->wq >= t->wq_max) {
        t->want_drain = 1;
        return UM_ENOSPC;
    }
    size_t skip = 0; /* bytes the socket took at once */
    uv_buf_t b0[UM_TCP_IOV_MAX];
    unsigned nb = 0;
    for (size_t i = 0; i < n_iov; i++)
        if (iov[i].n) b0[nb++] = uv_buf_init((char *)iov[i].p, (unsigned)iov[i].n);
    if (t->wq == 0) {
        int w0 = uv_try_write((uv_stream_t *)&t->h, b0, nb);
        if (w0 == (int)n) return 0;
        if (w0 > 0)
            skip = (size_t)w0;
        else if (w0 != UV_EAGAIN)
            return w0;
    }
    size_t left = n - skip;
    int r = um_uv_write_gather((uv_stream_t *)&t->h, b0, nb, skip, written, t);
    if (r) return r;
    t->wq += left;
    if (t->wq > t->wq_max / 2) t->want_drain = 1;
    return 0;
}

size_t um_tcp_write_queued(const um_tcp_t *t)
{
    return t->wq;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {}

int um_tcp_shutdown(um_tcp_t *t)
{
    if (t->closing) return UM_EPIPE;
    if (t->shut) return 0;
    t->shut = 1;
    return uv_shutdown(&t->sreq, (uv_stream_t *)&t->h, shutdown_cb);
}

void um_tcp_close(um_tcp_t *t)
{
    if (!t || t->closing) return;
    t->closing = 1;
    t->read_cb = NULL;
    t->drain_cb = NULL;
    t->conn_cb = NULL;
    uv_close((uv_handle_t *)&t->h, free_cb);
}

uv_tcp_t *um_tcp_handle(um_tcp_t *t)
{
    return &t->h;
}

/* ---- the carrier interface (transport/carrier.h) ---- */

static um_tcp_t *tcp_of(um_carrier_t *c)
{
    return (um_tcp_t *)c;
}

static void c_read(um_tcp_t *t, const uint8_t *p, size_t n, int status, void *ud)
{
    (void)ud;
    if (t->c_rd) t->c_rd(&t->base, p, n, status, t->c_ud);
}

static void c_drain(um_tcp_t *t, int status, void *ud)
{
    (void)status;
    (void)ud;
    if (t->c_dr) t->c_dr(&t->base, t->c_ud);
}

static void c_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    um_tcp_t *t = tcp_of(c);
    t->c_rd = rd;
    t->c_dr = dr;
    t->c_ud = ud;
    um_tcp_set_read_cb(t, rd ? c_read : NULL, NULL);
    um_tcp_set_drain_cb(t, dr ? c_drain : NULL, NULL);
}

static int c_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    return um_tcp_write(tcp_of(c), p, n);
}

static int c_writev(um_carrier_t *c, const um_carrier_iov_t *iov, size_t n_iov)
{
    return um_tcp_writev(tcp_of(c), iov, n_iov);
}

static size_t c_queued(const um_carrier_t *c)
{
    return um_tcp_write_queued((const um_tcp_t *)c);
}

static void c_set_wq_max(um_carrier_t *c, size_t max)
{
    um_tcp_set_wq_max(tcp_of(c), max);
}

static int c_read_start(um_carrier_t *c)
{
    return um_tcp_read_start(tcp_of(c));
}

static int c_read_stop(um_carrier_t *c)
{
    return um_tcp_read_stop(tcp_of(c));
}

static int c_shutdown(um_carrier_t *c)
{
    return um_tcp_shutdown(tcp_of(c));
}

static void c_close(um_carrier_t *c)
{
    um_tcp_close(tcp_of(c));
}

static int c_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    (void)c;
    memcpy(out, p, n); /* TCP bytes are stream bytes */
    *outn = n;
    return 0;
}

static int c_sock(const um_carrier_t *c)
{
    uv_os_fd_t fd;
    const um_tcp_t *t = (const um_tcp_t *)c;
    if (t->closing || uv_fileno((const uv_handle_t *)&t->h, &fd) != 0) return -1;
    return fd;
}

const um_carrier_ops_t um_tcp_carrier_ops = {
    .name = "tcp",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 16466, /* one full session record */
    .set_cbs = c_set_cbs,
    .write = c_write,
    .queued = c_queued,
    .set_wq_max = c_set_wq_max,
    .read_start = c_read_start,
    .read_stop = c_read_stop,
    .shutdown = c_shutdown,
    .close = c_close,
    .absorb = c_absorb,
    .writev = c_writev,
    .sock = c_sock,
};

um_carrier_t *um_tcp_carrier(um_tcp_t *t)
{
    return t ? &t->base : NULL;
}

um_tcp_t *um_tcp_from_carrier(um_carrier_t *c)
{
    return c && c->ops == &um_tcp_carrier_ops ? (um_tcp_t *)c : NULL;
}
