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
#include <stdlib.h>
#include <string.h>

#include "app/vpn_int.h"
#include "util/clock.h"
#include "util/err.h"

static void on_sweep(uv_timer_t *h);

/* ------------------------------------------------------------ TCP flows */

um_ptcp_t *vpn_ptcp(um_vpn_t *v)
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
        um_ptcp_abort(vpn_ptcp(v), f->id);
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
    if (um_ptcp_credit(vpn_ptcp(v), f->id, add, um_now_ms()) == 0) {
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
        int r = um_ptcp_send(vpn_ptcp(v), f->id, p, n, now);
        v->dirty = true;
        if (r <= 0) break;
        um_buf_consume(&f->left, (size_t)r);
    }
    if (f->tcp_alive && um_buf_len(&f->left) == 0) {
        if (f->eof_wanted && !f->tcp_shut) {
            f->tcp_shut = true;
            um_ptcp_shutdown(vpn_ptcp(v), f->id, now);
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
    if (um_ptcp_accept(vpn_ptcp(v), f->id, f->granted, um_now_ms()) != 0) {
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
        int r = um_ptcp_send(vpn_ptcp(v), f->id, p, n, um_now_ms());
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

void vpn_uflow_free(um_vpn_t *v, uflow_t *f)
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
        vpn_uflow_free(v, f);
    } else if (r != 0) {
        v->st.udp_drop++;
    }
}

static void u_on_close(void *ctx, uint32_t id)
{
    um_vpn_t *v = ctx;
    uflow_t *f = uflow_get(v, id);
    if (f) vpn_uflow_free(v, f);
}

const um_ptcp_ops_t vpn_tcp_ops = {
    .output = vpn_output,
    .on_open = t_on_open,
    .on_data = t_on_data,
    .on_fin = t_on_fin,
    .on_reset = t_on_reset,
    .on_writable = t_on_writable,
};

const um_tunudp_ops_t vpn_udp_ops = {
    .output = vpn_output,
    .on_open = u_on_open,
    .on_datagram = u_on_datagram,
    .on_close = u_on_close,
};

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
