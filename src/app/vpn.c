/* VPN mode: TUN device <-> packet core <-> tunnel streams (see vpn.h).
 *
 * TCP flow <-> stream mapping (ptcp.h has the flow life):
 *   ptcp on_open   -> um_conn_open(dst); the flow stays pending (no SYN-ACK) until
 *                     the stream's on_open: OK -> um_ptcp_accept(credit),
 *                     failure -> um_ptcp_abort (the app sees "refused").
 *   ptcp on_data   -> um_conn_write (credit guarantees the stream takes it)
 *   stream on_data -> um_ptcp_send; what does not fit waits in a small
 *                     per-flow buffer and the stream is paused (read_stop)
 *                     until ptcp's on_writable.
 *   FIN/EOF        -> shutdown on the other side; RST/error -> abort/close.
 * Credit (the receive window the app sees) follows the stream's queue:
 * credit outstanding + queued() <= CREDIT_LIMIT (2 x high water). After
 * every delivery the credit is topped up to that limit; a queue that grows
 * above high water has its on_drain armed, which tops it up again at low
 * water, so the window can never stay shut while the stream is draining. */
#include "app/vpn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tun/route.h"
#include "tun/stack.h"
#include "tun/tundev.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define CREDIT_LIMIT  (2u * UM_CONN_HIGH_WATER)
#define CREDIT_MIN    (16u * 1024u) /* top up in steps of at least this */
#define LEFTOVER_MAX  (256u * 1024u)
#define READ_BATCH    64         /* packets per readable callback */
#define WQ_MAX_PKTS   2048       /* packets waiting for the device */
#define WQ_MAX_BYTES  (4u << 20) /* and their bytes */
#define LINGER_MS     30000      /* a finished stream flushing its queue */
#define SWEEP_MS      100
#define MAX_ROUTES    (UM_CFG_MAX_SERVERS * UM_CFG_MAX_ADDRS * 4 + 16)
#define MAX_TCP_FLOWS 4096
#define MAX_UDP_FLOWS 1024

typedef struct tflow {
    um_vpn_t *v;
    uint32_t id; /* ptcp id */
    um_conn_t *conn;
    size_t granted; /* credit ptcp still holds for the app */
    um_buf_t left;  /* stream bytes ptcp could not take yet */
    bool tcp_alive; /* the ptcp id is valid */
    bool opening, app_fin, eof_wanted, tcp_shut, paused, lingering;
    uint64_t linger_deadline;
    struct tflow *lnext;
} tflow_t;

typedef struct uflow {
    um_vpn_t *v;
    uint32_t id;
    um_assoc_t *a;
    um_addr_t dst;
} uflow_t;

typedef struct wpkt {
    struct wpkt *next;
    size_t n;
    uint8_t p[];
} wpkt_t;

struct um_vpn {
    uv_loop_t *loop;
    const um_config_t *cfg;
    um_conn_provider_t prov;
    um_tundev_t dev;
    um_tun_stack_t *stack;
    unsigned mtu;
    uint8_t *rbuf;
    uv_poll_t poll;
    uv_timer_t timer, sweep;
    uv_prepare_t prep;
    int handles; /* open libuv handles */
    bool polling, stopping, dirty, sweeping;
    int poll_events;
    tflow_t **tcp; /* by slot (id & 0xffff) */
    uflow_t **udp;
    uint32_t tcp_cap, udp_cap;
    tflow_t *linger;
    wpkt_t *wq_head, *wq_tail;
    size_t wq_pkts, wq_bytes;
    um_route_t routes[MAX_ROUTES]; /* the routes we added, in order */
    size_t n_routes;
    um_vpn_stats_t st;
    um_ratelimit_t rl;
};

/* ------------------------------------------------------------ device output */

static void update_poll(um_vpn_t *v);
static void on_sweep(uv_timer_t *h);

static void output(void *ctx, const uint8_t *p, size_t n)
{
    um_vpn_t *v = ctx;
    if (v->dev.fd < 0) return;
    if (!v->wq_head) {
        int r = um_tundev_write(&v->dev, p, n);
        if (r == 0) {
            v->st.pkts_out++;
            v->st.bytes_out += n;
            return;
        }
        if (r != UM_EAGAIN) {
            v->st.drop_out++;
            um_log_limited(&v->rl, 1, 1000, UM_LOG_DEBUG, "tun write: %s", um_strerror(r));
            return;
        }
    }
    /* The device is full: queue (bounded), or drop as a router would. */
    if (v->wq_pkts >= WQ_MAX_PKTS || v->wq_bytes + n > WQ_MAX_BYTES) {
        v->st.drop_out++;
        return;
    }
    wpkt_t *w = malloc(sizeof(*w) + n);
    if (!w) {
        v->st.drop_out++;
        return;
    }
    w->next = NULL;
    w->n = n;
    memcpy(w->p, p, n);
    if (v->wq_tail)
        v->wq_tail->next = w;
    else
        v->wq_head = w;
    v->wq_tail = w;
    v->wq_pkts++;
    v->wq_bytes += n;
    update_poll(v);
}

static void flush_wq(um_vpn_t *v)
{
    while (v->wq_head) {
        wpkt_t *w = v->wq_head;
        int r = um_tundev_write(&v->dev, w->p, w->n);
        if (r == UM_EAGAIN) break;
        if (r == 0) {
            v->st.pkts_out++;
            v->st.bytes_out += w->n;
        } else {
            v->st.drop_out++;
        }
        v->wq_head = w->next;
        if (!v->wq_head) v->wq_tail = NULL;
        v->wq_pkts--;
        v->wq_bytes -= w->n;
        free(w);
    }
    update_poll(v);
}

static void free_wq(um_vpn_t *v)
{
    while (v->wq_head) {
        wpkt_t *w = v->wq_head;
        v->wq_head = w->next;
        free(w);
    }
    v->wq_tail = NULL;
    v->wq_pkts = v->wq_bytes = 0;
}

/* ------------------------------------------------------------ TCP flows */

static um_ptcp_t *ptcp(um_vpn_t *v)
{
    return um_tun_stack_tcp(v->stack);
}

static tflow_t *tflow_get(um_vpn_t *v, uint32_t id)
{
    tflow_t *f = v->tcp[(id & 0xffff) % v->tcp_cap];
    return f && f->id == id ? f : NULL;
}

static void tflow_unlink(um_vpn_t *v, tflow_t *f)
{
    size_t s = (f->id & 0xffff) % v->tcp_cap;
    if (v->tcp[s] == f) v->tcp[s] = NULL;
    for (tflow_t **pp = &v->linger; *pp; pp = &(*pp)->lnext)
        if (*pp == f) {
            *pp = f->lnext;
            break;
        }
}

/* Frees the flow once both sides are gone. */
static void tflow_maybe_free(tflow_t *f)
{
    if (f->tcp_alive || f->conn) return;
    um_vpn_t *v = f->v;
    tflow_unlink(v, f);
    um_buf_free(&f->left);
    free(f);
    if (v->st.tcp_active) v->st.tcp_active--;
}

/* Ends the flow now on both sides: RST to the app, stream closed. */
static void tflow_kill(tflow_t *f)
{
    um_vpn_t *v = f->v;
    if (f->tcp_alive) {
        um_ptcp_abort(ptcp(v), f->id);
        f->tcp_alive = false;
        v->dirty = true;
    }
    if (f->conn) {
        um_conn_close(f->conn);
        f->conn = NULL;
    }
    tflow_maybe_free(f);
}

/* The ptcp id is gone (detached after FIN both ways, or reset). A stream
 * whose both directions are finished flushes its queue before closing. */
static void tcp_side_gone(tflow_t *f, bool clean)
{
    um_vpn_t *v = f->v;
    f->tcp_alive = false;
    if (f->conn && clean && um_conn_queued(f->conn) > 0 && !v->stopping) {
        f->lingering = true;
        f->linger_deadline = um_now_ms() + LINGER_MS;
        f->lnext = v->linger;
        v->linger = f;
        if (!v->sweeping) {
            v->sweeping = true;
            uv_timer_start(&v->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        }
        return;
    }
    if (f->conn) {
        um_conn_close(f->conn);
        f->conn = NULL;
    }
    tflow_maybe_free(f);
}

static void topup(tflow_t *f)
{
    um_vpn_t *v = f->v;
    if (!f->tcp_alive || !f->conn || f->opening || f->app_fin) return;
    size_t q = um_conn_queued(f->conn);
    size_t room = q >= CREDIT_LIMIT ? 0 : CREDIT_LIMIT - q;
    if (room <= f->granted) return;
    size_t add = room - f->granted;
    if (add < CREDIT_MIN && f->granted >= CREDIT_MIN) return;
    if (um_ptcp_credit(ptcp(v), f->id, add, um_now_ms()) == 0) {
        f->granted += add;
        v->dirty = true;
    }
}

/* Moves held stream bytes into ptcp; a FIN the stream asked for follows them. */
static void push_left(tflow_t *f)
{
    um_vpn_t *v = f->v;
    uint64_t now = um_now_ms();
    while (f->tcp_alive && um_buf_len(&f->left) > 0) {
        const uint8_t *p;
        size_t n = um_buf_peek(&f->left, &p);
        int r = um_ptcp_send(ptcp(v), f->id, p, n, now);
        v->dirty = true;
        if (r <= 0) break;
        um_buf_consume(&f->left, (size_t)r);
    }
    if (f->tcp_alive && um_buf_len(&f->left) == 0) {
        if (f->eof_wanted && !f->tcp_shut) {
            f->tcp_shut = true;
            um_ptcp_shutdown(ptcp(v), f->id, now);
            v->dirty = true;
            /* FIN both ways: ptcp forgets the id now. */
            if (f->app_fin) tcp_side_gone(f, true);
            return;
        }
        if (f->paused && f->conn && !f->eof_wanted) {
            f->paused = false;
            um_conn_read_start(f->conn);
        }
    }
}

static void c_on_open(void *arg, int result)
{
    tflow_t *f = arg;
    um_vpn_t *v = f->v;
    f->opening = false;
    if (result != UM_CONN_OK) {
        um_log_limited(&v->rl, 1, 1000, UM_LOG_DEBUG, "vpn: open refused: %s",
                       um_conn_result_str(result));
        tflow_kill(f);
        return;
    }
    if (!f->tcp_alive) {
        tflow_kill(f);
        return;
    }
    f->granted = CREDIT_LIMIT;
    if (um_ptcp_accept(ptcp(v), f->id, f->granted, um_now_ms()) != 0) {
        f->tcp_alive = false; /* gone meanwhile */
        tflow_kill(f);
        return;
    }
    v->dirty = true;
}

static void c_on_data(void *arg, const uint8_t *p, size_t n)
{
    tflow_t *f = arg;
    um_vpn_t *v = f->v;
    if (!f->tcp_alive) return;
    if (um_buf_len(&f->left) == 0) {
        int r = um_ptcp_send(ptcp(v), f->id, p, n, um_now_ms());
        v->dirty = true;
        if (r < 0) {
            tflow_kill(f);
            return;
        }
        p += r;
        n -= (size_t)r;
    }
    if (n > 0) {
        if (um_buf_append(&f->left, p, n) != 0) {
            um_log_limited(&v->rl, 1, 1000, UM_LOG_DEBUG, "vpn: flow buffer full, reset");
            tflow_kill(f);
            return;
        }
        if (!f->paused) {
            f->paused = true;
            um_conn_read_stop(f->conn);
        }
    }
}

static void c_on_eof(void *arg)
{
    tflow_t *f = arg;
    f->eof_wanted = true;
    push_left(f);
}

static void c_on_error(void *arg, int err)
{
    tflow_t *f = arg;
    um_log_limited(&f->v->rl, 1, 1000, UM_LOG_DEBUG, "vpn: stream error: %s", um_strerror(err));
    tflow_kill(f);
}

static void c_on_drain(void *arg)
{
    topup(arg);
}

static const um_conn_cbs_t conn_cbs = {
    .on_open = c_on_open,
    .on_data = c_on_data,
    .on_eof = c_on_eof,
    .on_error = c_on_error,
    .on_drain = c_on_drain,
};

static int t_on_open(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst)
{
    um_vpn_t *v = ctx;
    (void)src;
    if (v->stopping) return UM_EPIPE;
    size_t s = (id & 0xffff) % v->tcp_cap;
    if (v->tcp[s]) { /* cannot happen: ptcp slots are unique */
        v->st.tcp_refused++;
        return UM_ENOSPC;
    }
    tflow_t *f = calloc(1, sizeof(*f));
    if (!f) return UM_ENOMEM;
    f->v = v;
    f->id = id;
    f->opening = true;
    f->tcp_alive = true;
    um_buf_init(&f->left, LEFTOVER_MAX);
    int r = um_conn_open(v->prov, dst, NULL, 0, &conn_cbs, f, &f->conn);
    if (r != 0) {
        um_buf_free(&f->left);
        free(f);
        v->st.tcp_refused++;
        um_log_limited(&v->rl, 1, 1000, UM_LOG_DEBUG, "vpn: cannot open a stream: %s",
                       um_strerror(r));
        return r;
    }
    v->tcp[s] = f;
    v->st.tcp_opened++;
    v->st.tcp_active++;
    return 0;
}

static void t_on_data(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    um_vpn_t *v = ctx;
    tflow_t *f = tflow_get(v, id);
    if (!f || !f->conn) return;
    f->granted = f->granted > n ? f->granted - n : 0;
    int r = um_conn_write(f->conn, p, n);
    if (r != 0) {
        tflow_kill(f);
        return;
    }
    topup(f);
}

static void t_on_fin(void *ctx, uint32_t id)
{
    um_vpn_t *v = ctx;
    tflow_t *f = tflow_get(v, id);
    if (!f) return;
    f->app_fin = true;
    if (f->conn) um_conn_shutdown(f->conn);
    if (f->tcp_shut) tcp_side_gone(f, true); /* FIN both ways: detached */
}

static void t_on_reset(void *ctx, uint32_t id, int err)
{
    um_vpn_t *v = ctx;
    tflow_t *f = tflow_get(v, id);
    (void)err;
    if (!f) return;
    f->tcp_alive = false;
    tcp_side_gone(f, false);
}

static void t_on_writable(void *ctx, uint32_t id)
{
    um_vpn_t *v = ctx;
    tflow_t *f = tflow_get(v, id);
    if (f) push_left(f);
}

/* ------------------------------------------------------------ UDP flows */

static uflow_t *uflow_get(um_vpn_t *v, uint32_t id)
{
    uflow_t *f = v->udp[(id & 0xffff) % v->udp_cap];
    return f && f->id == id ? f : NULL;
}

static void uflow_free(um_vpn_t *v, uflow_t *f)
{
    size_t s = (f->id & 0xffff) % v->udp_cap;
    if (v->udp[s] == f) v->udp[s] = NULL;
    if (f->a) um_assoc_close(f->a);
    free(f);
    if (v->st.udp_active) v->st.udp_active--;
}

static bool same_ip_port(const um_addr_t *a, const um_addr_t *b)
{
    if (a->type != b->type || a->port != b->port) return false;
    return memcmp(a->u.v6, b->u.v6, a->type == UM_ADDR_IPV4 ? 4 : 16) == 0;
}

static void a_on_recv(void *arg, const um_addr_t *src, const uint8_t *p, size_t n)
{
    uflow_t *f = arg;
    um_vpn_t *v = f->v;
    /* The reply is built from the flow's 5-tuple: only its peer may answer. */
    if (!same_ip_port(src, &f->dst) ||
        um_tunudp_reply(um_tun_stack_udp(v->stack), f->id, p, n, um_now_ms()) != 0) {
        v->st.udp_drop++;
        return;
    }
    v->dirty = true;
}

static int u_on_open(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst)
{
    um_vpn_t *v = ctx;
    (void)src;
    size_t s = (id & 0xffff) % v->udp_cap;
    if (v->stopping || v->udp[s]) return UM_EPIPE;
    uflow_t *f = calloc(1, sizeof(*f));
    if (!f) return UM_ENOMEM;
    f->v = v;
    f->id = id;
    f->dst = *dst;
    /* No session up: refused (dropped); the next datagram asks again. */
    int r = um_assoc_open(v->prov, a_on_recv, f, &f->a);
    if (r != 0) {
        free(f);
        v->st.udp_refused++;
        return r;
    }
    v->udp[s] = f;
    v->st.udp_opened++;
    v->st.udp_active++;
    return 0;
}

static void u_on_datagram(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
    um_vpn_t *v = ctx;
    uflow_t *f = uflow_get(v, id);
    if (!f) return;
    int r = um_assoc_send(f->a, &f->dst, p, n);
    if (r == UM_EPIPE) {
        /* The session carrying the association is gone: forget the flow,
         * the next datagram opens one on the new session. */
        v->st.udp_drop++;
        um_tunudp_close(um_tun_stack_udp(v->stack), id);
        uflow_free(v, f);
    } else if (r != 0) {
        v->st.udp_drop++;
    }
}

static void u_on_close(void *ctx, uint32_t id)
{
    um_vpn_t *v = ctx;
    uflow_t *f = uflow_get(v, id);
    if (f) uflow_free(v, f);
}

static const um_ptcp_ops_t tcp_ops = {
    .output = output,
    .on_open = t_on_open,
    .on_data = t_on_data,
    .on_fin = t_on_fin,
    .on_reset = t_on_reset,
    .on_writable = t_on_writable,
};

static const um_tunudp_ops_t udp_ops = {
    .output = output,
    .on_open = u_on_open,
    .on_datagram = u_on_datagram,
    .on_close = u_on_close,
};

/* ------------------------------------------------------------ loop glue */

static void on_poll(uv_poll_t *h, int status, int events)
{
    um_vpn_t *v = h->data;
    if (v->stopping) return;
    if (status < 0) {
        um_log_limited(&v->rl, 1, 1000, UM_LOG_WARN, "tun poll: %s", uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) flush_wq(v);
    if (!(events & UV_READABLE)) return;
    uint64_t now = um_now_ms();
    for (int i = 0; i < READ_BATCH && !v->stopping; i++) {
        ssize_t n = um_tundev_read(&v->dev, v->rbuf, v->mtu);
        if (n == UM_EAGAIN) break;
        if (n < 0) {
            um_log_limited(&v->rl, 1, 1000, UM_LOG_WARN, "tun read: %s", um_strerror((int)n));
            break;
        }
        v->st.pkts_in++;
        v->st.bytes_in += (uint64_t)n;
        if (um_tun_stack_input(v->stack, v->rbuf, (size_t)n, now) != 0) v->st.drop_in++;
    }
    v->dirty = true;
}

static void update_poll(um_vpn_t *v)
{
    if (!v->polling || v->stopping) return;
    int ev = UV_READABLE | (v->wq_head ? UV_WRITABLE : 0);
    if (ev == v->poll_events) return;
    v->poll_events = ev;
    uv_poll_start(&v->poll, ev, on_poll);
}

static void on_timer(uv_timer_t *h)
{
    um_vpn_t *v = h->data;
    if (v->stopping) return;
    um_tun_stack_tick(v->stack, um_now_ms());
    v->dirty = true;
}

/* Before the loop blocks: arm the timer for the core's next deadline. */
static void on_prepare(uv_prepare_t *h)
{
    um_vpn_t *v = h->data;
    if (v->stopping || !v->dirty) return;
    v->dirty = false;
    uint64_t next = um_tun_stack_next_timer(v->stack), now = um_now_ms();
    if (next == UINT64_MAX) {
        uv_timer_stop(&v->timer);
        return;
    }
    uv_timer_start(&v->timer, on_timer, next > now ? next - now : 0, 0);
}

/* Finished streams flushing their last bytes. */
static void on_sweep(uv_timer_t *h)
{
    um_vpn_t *v = h->data;
    uint64_t now = um_now_ms();
    tflow_t *l = v->linger;
    v->linger = NULL;
    while (l) {
        tflow_t *f = l;
        l = f->lnext;
        f->lnext = NULL;
        if (f->conn && um_conn_queued(f->conn) > 0 && now < f->linger_deadline) {
            f->lnext = v->linger;
            v->linger = f;
            continue;
        }
        f->lingering = false;
        if (f->conn) {
            um_conn_close(f->conn);
            f->conn = NULL;
        }
        tflow_maybe_free(f);
    }
    if (!v->linger) {
        v->sweeping = false;
        uv_timer_stop(&v->sweep);
    }
}

/* ------------------------------------------------------------ routes */

static int add_route(um_vpn_t *v, const um_route_t *r, bool required)
{
    char b[128];
    int e = um_route_add(r);
    if (e == UM_EEXIST) {
        /* Someone else's (a leftover of a killed client, or the admin's): keep it. */
        UM_INFO("route %s already present; left as it is", um_route_format(r, b, sizeof(b)));
        return 0;
    }
    if (e != 0) {
        if (required)
            UM_ERR("cannot add route %s: %s", um_route_format(r, b, sizeof(b)), um_strerror(e));
        else
            UM_WARN("cannot add route %s: %s", um_route_format(r, b, sizeof(b)), um_strerror(e));
        return required ? e : 0;
    }
    UM_DEBUG("route added: %s", um_route_format(r, b, sizeof(b)));
    if (v->n_routes < MAX_ROUTES) v->routes[v->n_routes++] = *r;
    return 0;
}

static void del_routes(um_vpn_t *v)
{
    char b[128];
    while (v->n_routes > 0) {
        um_route_t *r = &v->routes[--v->n_routes];
        int e = um_route_del(r);
        /* The /1 routes vanish with the device: ENOENT/ESRCH is fine. */
        if (e != 0 && e != UM_ENOENT && e != -ENODEV)
            UM_WARN("cannot remove route %s: %s", um_route_format(r, b, sizeof(b)), um_strerror(e));
        else
            UM_DEBUG("route removed: %s", um_route_format(r, b, sizeof(b)));
    }
}

static bool is_ip(const um_addr_t *a)
{
    return a->type == UM_ADDR_IPV4 || a->type == UM_ADDR_IPV6;
}

/* A host route for ip through the route that reaches it now, so that the
 * session itself never enters the TUN. */
static int pin_server(um_vpn_t *v, const um_addr_t *ip)
{
    um_route_t cur, r;
    char b[128];
    um_addr_t a = *ip;
    a.port = 0;
    int e = um_route_get(&a, &cur);
    if (e != 0) {
        UM_WARN(
            "no route to server address %s (%s): its host route is not pinned",
            um_route_format(&(um_route_t){.dst = a, .prefix = a.type == UM_ADDR_IPV4 ? 32 : 128}, b,
                            sizeof(b)),
            um_strerror(e));
        return 0;
    }
    if (cur.type != RTN_UNICAST || cur.oif == v->dev.ifindex) return 0; /* local, or ours */
    memset(&r, 0, sizeof(r));
    r.dst = a;
    r.prefix = a.type == UM_ADDR_IPV4 ? 32 : 128;
    r.gw = cur.gw;
    r.has_gw = cur.has_gw;
    r.oif = cur.oif;
    return add_route(v, &r, true);
}

/* Resolves every server address given by name (once, before any route
 * changes: afterwards the resolver itself would be behind the TUN). */
static int pin_servers(um_vpn_t *v)
{
    const um_config_t *cfg = v->cfg;
    for (size_t i = 0; i < cfg->n_servers; i++)
        for (size_t j = 0; j < cfg->servers[i].n_addrs; j++) {
            const um_addr_t *a = &cfg->servers[i].addrs[j];
            if (is_ip(a)) {
                int e = pin_server(v, a);
                if (e) return e;
                continue;
            }
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof(hints));
            hints.ai_socktype = SOCK_STREAM;
            if (getaddrinfo(a->u.domain, NULL, &hints, &res) != 0 || !res) {
                UM_WARN("cannot resolve server %s: its address is not pinned outside the TUN",
                        a->u.domain);
                continue;
            }
            int k = 0;
            for (struct addrinfo *ai = res; ai && k < 8; ai = ai->ai_next, k++) {
                um_addr_t ip;
                if (um_addr_from_sockaddr(&ip, ai->ai_addr) != 0) continue;
                int e = pin_server(v, &ip);
                if (e) {
                    freeaddrinfo(res);
                    return e;
                }
            }
            freeaddrinfo(res);
        }
    return 0;
}

static void set_cidr_addr(um_addr_t *a, const um_cidr_t *c)
{
    memset(a, 0, sizeof(*a));
    a->type = c->family;
    memcpy(a->u.v6, c->addr, c->family == UM_ADDR_IPV4 ? 4 : 16);
}

static bool is_server_ip(const um_vpn_t *v, const um_addr_t *ip)
{
    for (size_t i = 0; i < v->cfg->n_servers; i++)
        for (size_t j = 0; j < v->cfg->servers[i].n_addrs; j++) {
            const um_addr_t *a = &v->cfg->servers[i].addrs[j];
            if (a->type == ip->type &&
                !memcmp(a->u.v6, ip->u.v6, ip->type == UM_ADDR_IPV4 ? 4 : 16))
                return true;
        }
    return false;
}

/* The resolvers of /etc/resolv.conf get host routes through the TUN: one on
 * the local network (a more specific, connected route) would otherwise be
 * asked directly, and the names would leak there. */
static int route_resolvers(um_vpn_t *v, bool have6)
{
    FILE *fp = fopen("/etc/resolv.conf", "re");
    if (!fp) return 0;
    char line[256];
    int n = 0;
    while (n < 8 && fgets(line, sizeof(line), fp)) {
        char ipstr[INET6_ADDRSTRLEN + 1];
        if (sscanf(line, " nameserver %46s", ipstr) != 1) continue;
        char *pct = strchr(ipstr, '%');
        if (pct) *pct = 0;
        um_addr_t ip;
        memset(&ip, 0, sizeof(ip));
        if (inet_pton(AF_INET, ipstr, ip.u.v4) == 1)
            ip.type = UM_ADDR_IPV4;
        else if (inet_pton(AF_INET6, ipstr, ip.u.v6) == 1)
            ip.type = UM_ADDR_IPV6;
        else
            continue;
        if (ip.type == UM_ADDR_IPV6 && !have6) continue;
        um_route_t cur;
        if (um_route_get(&ip, &cur) == 0 && cur.type != RTN_UNICAST) continue; /* loopback */
        if (is_server_ip(v, &ip)) continue;
        um_route_t r;
        memset(&r, 0, sizeof(r));
        r.dst = ip;
        r.prefix = ip.type == UM_ADDR_IPV4 ? 32 : 128;
        r.oif = v->dev.ifindex;
        add_route(v, &r, false);
        n++;
        UM_INFO("resolver %s routed through the tunnel", ipstr);
    }
    fclose(fp);
    return 0;
}

static int setup_device(um_vpn_t *v)
{
    const um_config_t *cfg = v->cfg;
    char b[128];
    int e;
    if ((e = um_tundev_set_mtu(&v->dev, cfg->tun_mtu)) != 0) {
        UM_ERR("tun %s: cannot set MTU %u: %s", v->dev.name, (unsigned)cfg->tun_mtu,
               um_strerror(e));
        return e;
    }
    um_addr_t a4, a6;
    set_cidr_addr(&a4, &cfg->tun_addr4);
    if ((e = um_tundev_add_addr(&v->dev, &a4, cfg->tun_addr4.bits)) != 0 && e != UM_EEXIST) {
        UM_ERR("tun %s: cannot add address %s: %s", v->dev.name,
               um_cidr_format(&cfg->tun_addr4, b, sizeof(b)) ? b : "?", um_strerror(e));
        return e;
    }
    bool have6 = false;
    if (cfg->has_tun_addr6) {
        set_cidr_addr(&a6, &cfg->tun_addr6);
        e = um_tundev_add_addr(&v->dev, &a6, cfg->tun_addr6.bits);
        if (e != 0 && e != UM_EEXIST)
            UM_WARN("tun %s: no IPv6 (%s): IPv6 traffic is not captured", v->dev.name,
                    um_strerror(e));
        else
            have6 = true;
    }
    if ((e = um_tundev_up(&v->dev)) != 0) {
        UM_ERR("tun %s: cannot bring it up: %s", v->dev.name, um_strerror(e));
        return e;
    }
    if (!cfg->tun_routes) return 0;
    /* 1. The servers stay on the routes that reach them now. */
    if ((e = pin_servers(v)) != 0) return e;
    /* 2. Resolvers on the local network go through the tunnel too. */
    if (cfg->tun_dns) route_resolvers(v, have6);
    /* 3. Everything else: two halves, more specific than any default route,
     * removed by the kernel with the device if we die. */
    static const char *const halves4[] = {"0.0.0.0", "128.0.0.0"};
    static const char *const halves6[] = {"::", "8000::"};
    for (int i = 0; i < 2; i++) {
        um_route_t r;
        memset(&r, 0, sizeof(r));
        r.dst.type = UM_ADDR_IPV4;
        inet_pton(AF_INET, halves4[i], r.dst.u.v4);
        r.prefix = 1;
        r.oif = v->dev.ifindex;
        if ((e = add_route(v, &r, true)) != 0) return e;
    }
    for (int i = 0; have6 && i < 2; i++) {
        um_route_t r;
        memset(&r, 0, sizeof(r));
        r.dst.type = UM_ADDR_IPV6;
        inet_pton(AF_INET6, halves6[i], r.dst.u.v6);
        r.prefix = 1;
        r.oif = v->dev.ifindex;
        add_route(v, &r, false);
    }
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

static void on_closed(uv_handle_t *h)
{
    um_vpn_t *v = h->data;
    if (h == (uv_handle_t *)&v->poll) um_tundev_close(&v->dev);
    if (--v->handles > 0) return;
    free(v->tcp);
    free(v->udp);
    free(v->rbuf);
    free(v);
}

static void teardown(um_vpn_t *v)
{
    v->stopping = true;
    /* Streams and associations first (no callbacks come after close). */
    for (uint32_t i = 0; v->tcp && i < v->tcp_cap; i++) {
        tflow_t *f = v->tcp[i];
        if (!f) continue;
        if (f->tcp_alive && v->stack) um_ptcp_abort(ptcp(v), f->id);
        f->tcp_alive = false;
        if (f->conn) um_conn_close(f->conn);
        f->conn = NULL;
        v->tcp[i] = NULL;
        um_buf_free(&f->left);
        free(f);
    }
    v->linger = NULL;
    for (uint32_t i = 0; v->udp && i < v->udp_cap; i++)
        if (v->udp[i]) uflow_free(v, v->udp[i]);
    del_routes(v);
    um_tun_stack_free(v->stack);
    v->stack = NULL;
    free_wq(v);
}

void um_vpn_stop(um_vpn_t *v)
{
    if (!v || v->stopping) return;
    um_vpn_stats_t st;
    um_vpn_stats(v, &st);
    teardown(v);
    UM_INFO("vpn on %s stopped: %llu packets in, %llu out, %llu dropped in, %llu dropped out, "
            "%llu TCP flows, %llu UDP flows",
            v->dev.name, (unsigned long long)st.pkts_in, (unsigned long long)st.pkts_out,
            (unsigned long long)st.drop_in, (unsigned long long)st.drop_out,
            (unsigned long long)st.tcp_opened, (unsigned long long)st.udp_opened);
    uv_close((uv_handle_t *)&v->poll, on_closed);
    uv_close((uv_handle_t *)&v->timer, on_closed);
    uv_close((uv_handle_t *)&v->sweep, on_closed);
    uv_close((uv_handle_t *)&v->prep, on_closed);
}

int um_vpn_start(uv_loop_t *loop, const um_config_t *cfg, um_conn_provider_t prov, um_vpn_t **out)
{
    if (!loop || !cfg || !prov.ops || !out) return UM_EINVAL;
    um_vpn_t *v = calloc(1, sizeof(*v));
    if (!v) return UM_ENOMEM;
    v->loop = loop;
    v->cfg = cfg;
    v->prov = prov;
    v->dev.fd = -1;
    int e;
    bool adopted = cfg->tun_fd >= 0;
    if (adopted) {
        e = um_tundev_adopt(&v->dev, cfg->tun_fd);
        if (e) UM_ERR("--tun-fd %d: not a usable TUN descriptor: %s", cfg->tun_fd, um_strerror(e));
    } else {
        e = um_tundev_open(&v->dev, cfg->tun_name[0] ? cfg->tun_name : NULL);
        if (e)
            UM_ERR("cannot open a TUN device%s%s: %s%s", cfg->tun_name[0] ? " " : "", cfg->tun_name,
                   um_strerror(e),
                   e == UM_EACCES   ? " (VPN mode needs CAP_NET_ADMIN)"
                   : e == UM_ENOENT ? " (no /dev/net/tun)"
                                    : "");
    }
    if (e) {
        free(v);
        return e;
    }
    unsigned mtu = cfg->tun_mtu;
    if (adopted && um_tundev_get_mtu(&v->dev, &mtu) != 0) mtu = 1500;
    if (mtu < 1280) mtu = 1280;
    v->mtu = mtu;
    um_tun_stack_config_t sc;
    memset(&sc, 0, sizeof(sc));
    sc.tcp.mtu = (uint16_t)mtu;
    sc.tcp.max_flows = MAX_TCP_FLOWS;
    sc.udp.max_flows = MAX_UDP_FLOWS;
    sc.udp.mtu = (uint16_t)mtu;
    sc.icmp_echo = true;
    v->tcp_cap = MAX_TCP_FLOWS;
    v->udp_cap = MAX_UDP_FLOWS;
    v->tcp = calloc(v->tcp_cap, sizeof(*v->tcp));
    v->udp = calloc(v->udp_cap, sizeof(*v->udp));
    v->rbuf = malloc(mtu);
    v->stack = um_tun_stack_new(&sc, &tcp_ops, &udp_ops, v);
    if (!v->tcp || !v->udp || !v->rbuf || !v->stack) {
        e = UM_ENOMEM;
        goto fail;
    }
    if (!adopted && (e = setup_device(v)) != 0) goto fail;
    uv_poll_init(loop, &v->poll, v->dev.fd);
    uv_timer_init(loop, &v->timer);
    uv_timer_init(loop, &v->sweep);
    uv_prepare_init(loop, &v->prep);
    v->poll.data = v->timer.data = v->sweep.data = v->prep.data = v;
    v->handles = 4;
    v->polling = true;
    update_poll(v);
    uv_prepare_start(&v->prep, on_prepare);
    UM_INFO("vpn on %s (MTU %u)%s: %zu route(s) added", v->dev.name, mtu,
            adopted ? ", descriptor handed over" : "", v->n_routes);
    *out = v;
    return 0;
fail:
    teardown(v);
    um_tundev_close(&v->dev);
    free(v->tcp);
    free(v->udp);
    free(v->rbuf);
    free(v);
    return e;
}

void um_vpn_stats(const um_vpn_t *v, um_vpn_stats_t *st)
{
    *st = v->st;
}

const char *um_vpn_ifname(const um_vpn_t *v)
{
    return v ? v->dev.name : "";
}
