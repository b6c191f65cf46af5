/* VPN mode: TUN device <-> packet core <-> tunnel streams (see vpn.h; the
 * files are listed in vpn_int.h). This file: start and stop, the device
 * output and its bounded write queue, and the loop glue. */
#include <stdlib.h>
#include <string.h>

#include "app/vpn_int.h"
#include "util/clock.h"
#include "util/err.h"

/* ------------------------------------------------------------ device output */

static void update_poll(um_vpn_t *v);

void vpn_output(void *ctx, const uint8_t *p, size_t n)
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
        if (f->tcp_alive && v->stack) um_ptcp_abort(vpn_ptcp(v), f->id);
        f->tcp_alive = false;
        if (f->conn) um_conn_close(f->conn);
        f->conn = NULL;
        v->tcp[i] = NULL;
        um_buf_free(&f->left);
        free(f);
    }
    v->linger = NULL;
    for (uint32_t i = 0; v->udp && i < v->udp_cap; i++)
        if (v->udp[i]) vpn_uflow_free(v, v->udp[i]);
    vpn_del_routes(v);
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
    v->stack = um_tun_stack_new(&sc, &vpn_tcp_ops, &vpn_udp_ops, v);
    if (!v->tcp || !v->udp || !v->rbuf || !v->stack) {
        e = UM_ENOMEM;
        goto fail;
    }
    if (!adopted && (e = vpn_setup_device(v)) != 0) goto fail;
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

const char *um_vpn_direct_device(const um_vpn_t *v)
{
    return v->direct_dev;
}
