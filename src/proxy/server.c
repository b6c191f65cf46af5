/* Listeners and the per-connection machinery shared by SOCKS5, HTTP and
 * forwards: accept, bounded handshake time, relay with backpressure,
 * half-close, and a gentle close (flush, FIN, drain input for a moment). */
#include "proxy/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/server_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/uvwrite.h"
#include "util/log.h"

#define PROXY_BACKLOG 256 /* a browser opens dozens of connections at once */

#define DRAIN_MS 1000

static um_ratelimit_t rl_accept;

static void px_unref(um_proxy_t *px)
{
    if (--px->refs == 0) {
        free(px->user);
        free(px->pass);
        free(px->rbuf);
        free(px);
    }
}

static void pc_handle_closed(uv_handle_t *h)
{
    pc_t *c = h->data;
    if (--c->handles > 0) return;
    um_proxy_t *px = c->px;
    um_buf_free(&c->in);
    um_buf_free(&c->resp);
    free(c->req);
    free(c->rbuf);
    free(c);
    px_unref(px);
}

static void pc_close_how(pc_t *c, bool reset);

void pc_close(pc_t *c)
{
    pc_close_how(c, false);
}

void pc_abort(pc_t *c)
{
    pc_close_how(c, true);
}

static void pc_close_how(pc_t *c, bool reset)
{
    if (c->phase == PC_CLOSED) return;
    c->phase = PC_CLOSED;
    um_proxy_t *px = c->px;
    if (c->prev)
        c->prev->next = c->next;
    else
        px->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    px->active--;
    if (c->up) um_conn_close(c->up);
    c->up = NULL;
    if (c->assoc) um_assoc_close(c->assoc);
    c->assoc = NULL;
    if (c->udp_open) {
        c->handles++;
        uv_close((uv_handle_t *)&c->udp, pc_handle_closed);
    }
    /* An abort resets the connection, so the application learns now, not
     * after reading what the kernel still holds for it. */
    if (!reset || uv_tcp_close_reset(&c->tcp, pc_handle_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, pc_handle_closed);
    uv_close((uv_handle_t *)&c->timer, pc_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    pc_t *c = t->data;
    if (c->phase == PC_HANDSHAKE || c->phase == PC_OPENING) c->px->st.handshake_failed++;
    if (c->fo != FO_NONE)
        pc_abort(c); /* told "connected" already: a reset, as for a failed open */
    else
        pc_close(c);
}

void pc_timer(pc_t *c, uint32_t ms)
{
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void pc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    pc_t *c = h->data;
    um_proxy_t *px = c->px;
    if (!px->rbuf) px->rbuf = malloc(PC_READ_BUF);
    b->base = (char *)px->rbuf;
    b->len = px->rbuf ? um_rdshare_next(&px->rshare, &c->rstamp, um_now_ms(), PC_READ_ROUND,
                                        PC_READ_MIN, PC_READ_BUF)
                      : 0;
}

static void fo_client_data(pc_t *c, const uint8_t *p, size_t n);
static void fo_open(pc_t *c);

static void pc_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    pc_t *c = s->data;
    if (c->phase == PC_CLOSED) return;
    if (c->phase == PC_DRAIN) {
        if (nread < 0) pc_close(c);
        return; /* discard */
    }
    if (nread > 0) {
        c->px->st.bytes_up += (uint64_t)nread;
        if (c->fo != FO_NONE)
            fo_client_data(c, (const uint8_t *)b->base, (size_t)nread);
        else
            c->px->k->client_data(c, (const uint8_t *)b->base, (size_t)nread);
    } else if (nread == UV_EOF) {
        pc_read_stop(c);
        c->client_eof = true;
        if (c->fo == FO_WAIT)
            fo_open(c); /* nothing more is coming: open with what we have */
        else if (c->fo == FO_NONE)
            c->px->k->client_eof(c);
        /* FO_OPENING: the relay sees client_eof once the stream is open */
    } else if (nread < 0) {
        pc_close(c);
    }
}

/* A listener that defers accepts (listener_opts) hands over a connection
 * with its first bytes: they are read now, in the accept's turn, not after a
 * poll that would only say they are there (beside a bulk transfer, a whole
 * loop turn of its reads and writes). What libuv's read would do: the same
 * buffer and callback; EAGAIN or an error is left to libuv's read. */
static void pc_read_first(pc_t *c)
{
    uv_os_fd_t fd;
    if (!c->reading || c->phase == PC_CLOSED || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return;
    uv_buf_t b;
    pc_alloc((uv_handle_t *)&c->tcp, PC_READ_BUF, &b);
    if (!b.len) return;
    ssize_t n;
    do
        n = recv(fd, b.base, b.len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        pc_on_read((uv_stream_t *)&c->tcp, n, &b);
    else if (n == 0)
        pc_on_read((uv_stream_t *)&c->tcp, UV_EOF, &b);
}

void pc_read_start(pc_t *c)
{
    if (c->reading || c->client_eof || c->phase == PC_CLOSED) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, pc_alloc, pc_on_read) == 0) c->reading = true;
}

void pc_read_stop(pc_t *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_drain_timer(uv_timer_t *t)
{
    pc_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    pc_t *c = req->data;
    free(req);
    if (c->phase == PC_CLOSED) return;
    c->shut_done = true;
    if (status < 0) {
        pc_close(c);
        return;
    }
    if (c->close_after_flush) {
        /* Read and discard what the client still sends, so that closing does
         * not turn into a RST that destroys the reply, but not for long. */
        c->phase = PC_DRAIN;
        c->reading = false;
        if (c->client_eof || uv_read_start((uv_stream_t *)&c->tcp, pc_alloc, pc_on_read) != 0) {
            pc_close(c);
            return;
        }
        uv_timer_start(&c->timer, on_drain_timer, DRAIN_MS, 0);
        return;
    }
    if (c->client_eof && c->up_eof) pc_close(c);
}

static void pc_shutdown(pc_t *c)
{
    if (c->shut_sent) {
        if (c->shut_done && c->close_after_flush) pc_close(c);
        return;
    }
    c->shut_sent = true;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req) {
        pc_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        pc_close(c);
    }
}

static void pc_written(void *ud, size_t n, int status)
{
    pc_t *c = ud;
    c->down_pending -= n;
    if (c->phase == PC_CLOSED) return;
    if (status < 0) {
        pc_close(c);
        return;
    }
    if (c->up_paused && c->down_pending <= UM_CONN_LOW_WATER && c->up) {
        c->up_paused = false;
        um_conn_read_start(c->up);
    }
}

int pc_write(pc_t *c, const void *p, size_t n)
{
    if (c->phase == PC_CLOSED || c->shut_sent) return UM_EPIPE;
    if (n == 0) return 0;
    size_t q = 0;
    int r = um_uv_write_some((uv_stream_t *)&c->tcp, p, n, pc_written, c, &q);
    if (r != 0) {
        pc_close(c);
        return r == UM_ENOMEM ? r : UM_EPIPE;
    }
    c->down_pending += q;
    c->px->st.bytes_down += n;
    return 0;
}

void pc_finish(pc_t *c, const void *p, size_t n)
{
    if (c->phase == PC_CLOSED) return;
    if (c->up) um_conn_close(c->up);
    c->up = NULL;
    if (n && pc_write(c, p, n) != 0) return;
    pc_read_stop(c);
    c->close_after_flush = true;
    pc_shutdown(c);
}

int pc_up_write(pc_t *c, const uint8_t *p, size_t n)
{
    int rc = um_conn_write(c->up, p, n);
    if (rc != 0) {
        pc_close(c);
        return rc;
    }
    if (um_conn_queued(c->up) > UM_CONN_HIGH_WATER) pc_read_stop(c);
    return 0;
}

void pc_relay_client_data(pc_t *c, const uint8_t *p, size_t n)
{
    pc_up_write(c, p, n);
}

void pc_relay_client_eof(pc_t *c)
{
    if (c->up) um_conn_shutdown(c->up);
    if (c->up_eof && c->shut_done) pc_close(c);
}

void pc_up_data(pc_t *c, const uint8_t *p, size_t n)
{
    if (pc_write(c, p, n) != 0) return;
    if (c->down_pending > UM_CONN_HIGH_WATER && c->up && !c->up_paused) {
        c->up_paused = true;
        um_conn_read_stop(c->up);
    }
}

void pc_up_eof(pc_t *c)
{
    c->up_eof = true;
    if (c->client_eof && !c->shut_sent && c->down_pending == 0) {
        /* Both ways ended and libuv holds nothing for the client: close()
         * sends the FIN after what the kernel holds, as shutdown() would
         * (the client's EOF was read, so no unread input turns it into a
         * RST), without the shutdown call and the turn its callback waits. */
        pc_close(c);
        return;
    }
    pc_shutdown(c); /* FIN to the client after what is queued */
}

void pc_up_drain(pc_t *c)
{
    if (c->phase == PC_RELAY || c->phase == PC_HTTP ||
        (c->fo == FO_OPENING && um_buf_len(&c->in) == 0))
        pc_read_start(c);
}

/* --- fast open -------------------------------------------------------------- */

/* Opens the stream with what the client sent so far as early data. */
static void fo_open(pc_t *c)
{
    if (c->fo != FO_WAIT || c->phase == PC_CLOSED) return;
    um_proxy_t *px = c->px;
    const uint8_t *p;
    size_t n = um_buf_peek(&c->in, &p);
    c->fo = FO_OPENING;
    /* The opening is bounded like a handshake (the provider bounds it too). */
    pc_timer(c, px->o.handshake_timeout_ms);
    if (n) px->st.fo_early++;
    int rc = um_conn_open(px->o.conn, &c->fo_dst, p, n, c->fo_cbs, c, &c->up);
    um_buf_clear(&c->in);
    if (rc != 0) {
        c->up = NULL;
        px->st.open_failed++;
        px->st.fo_failed++;
        pc_abort(c);
        return;
    }
    if (c->client_eof) return;
    pc_read_start(c);
}

static void fo_wait_timer(uv_timer_t *t)
{
    fo_open(t->data);
}

/* Client bytes after the early reply, before the verdict. */
static void fo_client_data(pc_t *c, const uint8_t *p, size_t n)
{
    if (c->fo == FO_WAIT) {
        if (um_buf_append(&c->in, p, n) != 0) {
            pc_abort(c);
            return;
        }
        fo_open(c);
        return;
    }
    /* FO_OPENING: a provider that takes writes before on_open (the tunnel:
     * DATA within the stream's initial window) gets them now; another one
     * refuses with UM_EAGAIN, and they wait here, reading paused. */
    if (um_buf_len(&c->in) == 0 && c->up) {
        int rc = um_conn_write(c->up, p, n);
        if (rc == 0) {
            if (um_conn_queued(c->up) > UM_CONN_HIGH_WATER) pc_read_stop(c);
            return;
        }
        if (rc != UM_EAGAIN) {
            pc_abort(c);
            return;
        }
    }
    if (um_buf_append(&c->in, p, n) != 0) {
        pc_abort(c);
        return;
    }
    pc_read_stop(c);
}

void pc_fo_start(pc_t *c, const um_addr_t *dst, const um_conn_cbs_t *cbs)
{
    if (c->phase == PC_CLOSED) return;
    c->px->st.fo_replies++;
    c->phase = PC_OPENING;
    c->fo = FO_WAIT;
    c->fo_dst = *dst;
    c->fo_cbs = cbs;
    if (um_buf_len(&c->in) || c->client_eof) {
        fo_open(c); /* the first bytes are here already (or none will come) */
        return;
    }
    uv_timer_start(&c->timer, fo_wait_timer, PC_FO_WAIT_MS, 0);
    pc_read_start(c);
}

bool pc_fo_result(pc_t *c, int result)
{
    if (c->fo == FO_NONE) return false;
    c->fo = FO_NONE;
    if (result != UM_CONN_OK) {
        /* The client was told "connected" already: reset its connection, so
         * the application learns now (ECONNRESET) rather than at a timeout. */
        UM_DEBUG("proxy: fast open: the stream failed after the reply (%s): reset",
                 um_conn_result_str(result));
        c->px->st.open_failed++;
        c->px->st.fo_failed++;
        pc_abort(c);
    }
    return true;
}

void pc_relay(pc_t *c)
{
    c->phase = PC_RELAY;
    pc_timer(c, 0);
    const uint8_t *p;
    size_t n = um_buf_peek(&c->in, &p);
    if (n) {
        if (pc_up_write(c, p, n) != 0) return;
        um_buf_clear(&c->in);
    }
    um_buf_free(&c->in);
    if (c->client_eof) {
        pc_relay_client_eof(c);
        return;
    }
    if (um_conn_queued(c->up) <= UM_CONN_HIGH_WATER) pc_read_start(c);
}

/* --- upstream callbacks of the raw relay ---------------------------------- */

static void r_on_open(void *arg, int result)
{
    pc_t *c = arg;
    if (result != UM_CONN_OK) {
        c->px->st.open_failed++;
        pc_close(c);
        return;
    }
    pc_relay(c);
}

static void r_on_data(void *arg, const uint8_t *p, size_t n)
{
    pc_up_data(arg, p, n);
}

static void r_on_eof(void *arg)
{
    pc_t *c = arg;
    pc_up_eof(c);
}

static void r_on_error(void *arg, int err)
{
    (void)err;
    pc_abort(arg);
}

static void r_on_drain(void *arg)
{
    pc_up_drain(arg);
}

static const um_conn_cbs_t relay_cbs = {r_on_open, r_on_data, r_on_eof, r_on_error, r_on_drain};

/* --- forward (-L) ----------------------------------------------------------- */

static void fwd_start(pc_t *c)
{
    um_proxy_t *px = c->px;
    c->phase = PC_OPENING;
    int rc = um_conn_open(px->o.conn, &px->o.forward_dst, NULL, 0, &relay_cbs, c, &c->up);
    if (rc != 0) {
        c->up = NULL;
        pc_close(c);
    }
}

static void fwd_data(pc_t *c, const uint8_t *p, size_t n)
{
    if (c->phase == PC_RELAY) {
        pc_relay_client_data(c, p, n);
        return;
    }
    /* Before the stream is open: keep (bounded), then stop reading. */
    if (um_buf_append(&c->in, p, n) != 0)
        pc_close(c);
    else if (um_buf_len(&c->in) >= PC_READ_BUF)
        pc_read_stop(c);
}

static void fwd_eof(pc_t *c)
{
    if (c->phase == PC_RELAY) pc_relay_client_eof(c);
}

const pc_kind_t um_pc_forward = {fwd_start, fwd_data, fwd_eof, &relay_cbs};

/* --- listener --------------------------------------------------------------- */

/* At the connection limit, the oldest connection that has not completed a
 * request (a SOCKS5 or HTTP handshake, or HTTP keep-alive between requests)
 * makes room for the new one: idle connections, however many, cannot lock the
 * proxy's users out, and an application whose handshake was cut short retries
 * at once. Connections carrying a stream are never evicted. */
static void evict_oldest_handshake(um_proxy_t *px)
{
    pc_t *victim = NULL;
    for (pc_t *o = px->conns; o; o = o->next) /* newest first */
        if (o->phase == PC_HANDSHAKE) victim = o;
    if (!victim) return;
    px->st.handshake_failed++;
    um_log_limited(&rl_accept, 3, 10000, UM_LOG_WARN,
                   "proxy: %zu connections open, closing the oldest idle one for a new one",
                   px->active);
    pc_close(victim);
}

static void on_connection(uv_stream_t *server, int status)
{
    um_proxy_t *px = server->data;
    if (status < 0 || px->closing) return;
    pc_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    if (uv_tcp_init(px->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->handles = 1;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        px->refs++;
        c->px = px;
        c->phase = PC_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, pc_handle_closed);
        return;
    }
    c->px = px;
    px->refs++;
    if (px->active >= px->o.max_conns) evict_oldest_handshake(px);
    if (px->active >= px->o.max_conns) {
        px->st.refused_limit++;
        um_log_limited(&rl_accept, 3, 10000, UM_LOG_WARN,
                       "proxy: %zu connections open, refusing a new one", px->active);
        c->phase = PC_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, pc_handle_closed);
        return;
    }
    uv_timer_init(px->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    px->st.accepted++;
    px->active++;
    c->next = px->conns;
    if (px->conns) px->conns->prev = c;
    px->conns = c;
    if (!px->nodelay_inherited) uv_tcp_nodelay(&c->tcp, 1);
    um_buf_init(&c->in, PC_IN_MAX);
    um_buf_init(&c->resp, UM_HTTP_HEAD_MAX);
    c->phase = PC_HANDSHAKE;
    pc_timer(c, px->o.handshake_timeout_ms);
    pc_read_start(c);
    px->k->start(c);
    if (px->defer_accept) pc_read_first(c);
}

/* Socket options of the listener that spare every accepted connection a
 * syscall or a wake-up (docs/internals/proxy.md, "The accept path"). */
static void listener_opts(um_proxy_t *px)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&px->listener, &fd) != 0) return;
#ifdef __linux__
    /* Linux copies TCP_NODELAY from the listener into each accepted socket. */
    int one = 1;
    px->nodelay_inherited = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
#endif
#ifdef TCP_DEFER_ACCEPT
    /* SOCKS5 and HTTP clients speak first: the kernel hands over a connection
     * once its first bytes are there, so the accept and the greeting (or the
     * request head) come in one wake-up, not two. A client that connects and
     * sends nothing is handed over after about PC_DEFER_ACCEPT_S seconds
     * anyway. Not for forwards: their protocol may have the server speak
     * first. */
    if (px->kind == UM_PROXY_SOCKS5 || px->kind == UM_PROXY_HTTP) {
        int secs = PC_DEFER_ACCEPT_S;
        px->defer_accept = setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) == 0;
    }
#endif
}

static void on_listener_closed(uv_handle_t *h)
{
    px_unref(h->data);
}

int um_proxy_new(uv_loop_t *loop, um_proxy_kind_t kind, const um_addr_t *bind,
                 const um_proxy_opts_t *opts, um_proxy_t **out)
{
    if (!loop || !bind || !opts || !opts->conn.ops || !out) return UM_EINVAL;
    if ((opts->user == NULL) != (opts->pass == NULL)) return UM_EINVAL;
    if (opts->user && (strlen(opts->user) - 1 > 254 || strlen(opts->pass) - 1 > 254))
        return UM_EINVAL;
    const pc_kind_t *k = kind == UM_PROXY_SOCKS5    ? &um_pc_socks5
                         : kind == UM_PROXY_HTTP    ? &um_pc_http
                         : kind == UM_PROXY_FORWARD ? &um_pc_forward
                                                    : NULL;
    if (!k) return UM_EINVAL;
    if (kind == UM_PROXY_FORWARD && opts->forward_dst.port == 0) return UM_EINVAL;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (um_addr_to_sockaddr(bind, &ss, &sl) != 0) return UM_EINVAL;
    um_proxy_t *px = calloc(1, sizeof(*px));
    if (!px) return UM_ENOMEM;
    px->loop = loop;
    px->kind = kind;
    px->k = k;
    px->o = *opts;
    if (!px->o.handshake_timeout_ms) px->o.handshake_timeout_ms = 10000;
    if (!px->o.idle_timeout_ms) px->o.idle_timeout_ms = 60000;
    if (!px->o.max_conns) px->o.max_conns = 1024;
    if (opts->user) {
        px->user = strdup(opts->user);
        px->pass = strdup(opts->pass);
        if (!px->user || !px->pass) {
            free(px->user);
            free(px->pass);
            free(px);
            return UM_ENOMEM;
        }
    }
    px->o.user = px->user;
    px->o.pass = px->pass;
    uv_tcp_init(loop, &px->listener);
    px->listener.data = px;
    px->refs = 2; /* ourselves + the listener handle */
    /* IPv6 only on an IPv6 address, so 0.0.0.0:P and [::]:P can coexist. */
    int rc = uv_tcp_bind(&px->listener, (const struct sockaddr *)&ss,
                         ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0) listener_opts(px);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&px->listener, PROXY_BACKLOG, on_connection);
    if (rc != 0) {
        char a[UM_ADDR_STRLEN];
        um_addr_format(bind, a, sizeof(a));
        UM_ERR("proxy: cannot listen on %s: %s", a, uv_strerror(rc));
        px->closing = true;
        uv_close((uv_handle_t *)&px->listener, on_listener_closed);
        px_unref(px);
        return rc == UV_EADDRINUSE ? UM_EEXIST : UM_EIO;
    }
    *out = px;
    return 0;
}

void um_proxy_free(um_proxy_t *px)
{
    if (!px || px->closing) return;
    px->closing = true;
    while (px->conns)
        pc_close(px->conns);
    uv_close((uv_handle_t *)&px->listener, on_listener_closed);
    px_unref(px);
}

int um_proxy_local_addr(const um_proxy_t *px, um_addr_t *out)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&px->listener, (struct sockaddr *)&ss, &len) != 0) return UM_EIO;
    return um_addr_from_sockaddr(out, (struct sockaddr *)&ss);
}

size_t um_proxy_active(const um_proxy_t *px)
{
    return px->active;
}

void um_proxy_stats(const um_proxy_t *px, um_proxy_stats_t *out)
{
    *out = px->st;
}

/* Splits at the top-level colons, treating [..] as one piece. */
static int split(const char *s, const char *parts[4], size_t lens[4], size_t *np)
{
    size_t n = 0, i = 0, start = 0, len = strlen(s);
    int depth = 0;
    for (i = 0; i <= len; i++) {
        char ch = i < len ? s[i] : ':';
        if (ch == '[') depth++;
        if (ch == ']') depth--;
        if (ch == ':' && depth == 0) {
            if (n == 4) return UM_EINVAL;
            parts[n] = s + start;
            lens[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    *np = n;
    return depth == 0 ? 0 : UM_EINVAL;
}

int um_forward_spec_parse(const char *s, um_addr_t *listen, um_addr_t *dst, char *err,
                          size_t errlen)
{
    const char *p[4];
    size_t l[4], n;
    char tmp[UM_ADDR_STRLEN + 8];
    if (!s || split(s, p, l, &n) != 0 || (n != 3 && n != 4)) {
        if (err) snprintf(err, errlen, "expected [bind:]port:host:hostport");
        return UM_EINVAL;
    }
    size_t o = n == 4 ? 1 : 0;
    if (n == 4)
        snprintf(tmp, sizeof(tmp), "%.*s:%.*s", (int)l[0], p[0], (int)l[1], p[1]);
    else
        snprintf(tmp, sizeof(tmp), "127.0.0.1:%.*s", (int)l[0], p[0]);
    if (um_addr_parse(listen, tmp, strlen(tmp), 0, err, errlen) != 0) return UM_EINVAL;
    if (listen->type == UM_ADDR_DOMAIN) {
        if (!(listen->domain_len == 9 && memcmp(listen->u.domain, "localhost", 9) == 0)) {
            if (err) snprintf(err, errlen, "bind address must be an IP address");
            return UM_EINVAL;
        }
        uint16_t port = listen->port;
        memset(listen, 0, sizeof(*listen));
        listen->type = UM_ADDR_IPV4;
        listen->u.v4[0] = 127;
        listen->u.v4[3] = 1;
        listen->port = port;
    }
    snprintf(tmp, sizeof(tmp), "%.*s:%.*s", (int)l[o + 1], p[o + 1], (int)l[o + 2], p[o + 2]);
    return um_addr_parse(dst, tmp, strlen(tmp), 0, err, errlen) == 0 ? 0 : UM_EINVAL;
}
