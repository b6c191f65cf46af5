#include "app/bridge.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "app/client_ws.h"
#include "transport/codec_tls.h"
#include "tunnel/conn_carrier.h"
#include "tunnel/tunnel.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define B_WAIT_MS     10000 /* how long a stream waits for the bridge's session */
#define B_MAX_WAITING 64
#define B_HS_TIMEOUT  10000
#define B_BACKOFF_MIN 100
#define B_BACKOFF_MAX 2000

struct um_bridge {
    uv_loop_t *loop;
    const um_config_t *cfg;
    size_t idx;
    um_events_t *ev;
    um_hub_t *hub;
    um_tunnel_t *t;
    um_tunnel_t *old; /* draining after a GOAWAY */
    um_connector_t *conn;
    um_codec_tls_t tls; /* the tls transport's codec (the connector borrows it) */
    um_codec_ws_t ws;   /* the ws transport's */
    um_connector_dialer_t dialer;
    uv_timer_t retry;
    bool retry_on, stopping;
    uint32_t attempt;
    size_t addr;
    size_t pending; /* dials waiting for their stream */
    char cur[UM_ADDR_STRLEN];
};

/* One dial: a stream through the bridge to an exit. */
typedef struct {
    um_bridge_t *b;
    um_connector_dial_cb cb;
    void *arg;
    um_carrier_t *car;
} bdial_t;

static void connect_bridge(um_bridge_t *b);

static size_t n_live; /* bridges not yet released (the loop is single-threaded) */

size_t um_bridge_live(void)
{
    return n_live;
}

static const um_peer_server_t *srv(const um_bridge_t *b)
{
    return &b->cfg->servers[b->idx];
}

bool um_bridge_is_bridge(const um_config_t *cfg, size_t i)
{
    for (size_t k = 0; k < cfg->n_servers; k++)
        if (k != i && cfg->servers[k].via[0] &&
            strcmp(cfg->servers[k].via, cfg->servers[i].name) == 0)
            return true;
    return false;
}

int um_bridge_of(const um_config_t *cfg, size_t i)
{
    const char *via = cfg->servers[i].via;
    if (!via[0]) return -1;
    for (size_t k = 0; k < cfg->n_servers; k++)
        if (k != i && strcmp(cfg->servers[k].name, via) == 0) return (int)k;
    return -1;
}

bool um_bridge_up(const um_bridge_t *b)
{
    return b && b->t;
}

static void on_retry(uv_timer_t *h)
{
    um_bridge_t *b = h->data;
    b->retry_on = false;
    connect_bridge(b);
}

/* A session is wanted while some dial waits for it. */
static void demand(um_bridge_t *b)
{
    if (b->stopping || b->t || b->conn || b->retry_on || b->pending == 0) return;
    uint64_t d = 0;
    if (b->attempt > 0) {
        uint64_t step = (uint64_t)B_BACKOFF_MIN << (b->attempt > 10 ? 10 : b->attempt - 1);
        if (step > B_BACKOFF_MAX) step = B_BACKOFF_MAX;
        d = step / 2 + randombytes_uniform((uint32_t)(step / 2 + 1));
    }
    b->retry_on = true;
    uv_timer_start(&b->retry, on_retry, d, 0);
}

static void ev_bridge(um_bridge_t *b, const char *what, const char *reason)
{
    if (!b->ev) return;
    um_ev_begin(b->ev, what);
    um_ev_str(b->ev, "server", srv(b)->name);
    um_ev_str(b->ev, "address", b->cur);
    if (reason) um_ev_str(b->ev, "reason", reason);
    um_ev_end(b->ev);
}

static void finish_free(um_bridge_t *b);

static void on_down(um_tunnel_t *t, int err, void *ud)
{
    um_bridge_t *b = ud;
    if (b->t != t) {
        if (b->old == t) b->old = NULL; /* the one that drained after a GOAWAY */
        if (b->stopping && !b->t && !b->old) finish_free(b);
        return;
    }
    b->t = NULL;
    um_hub_set_tunnel(b->hub, NULL);
    if (b->stopping) {
        if (!b->old) finish_free(b);
        return;
    }
    const char *why = err == UM_EPIPE ? "closed" : um_strerror(err);
    UM_WARN("session to bridge %s down: %s", b->cur, why);
    ev_bridge(b, "bridge_down", why);
    demand(b);
}

static void on_goaway(um_tunnel_t *t, void *ud)
{
    um_bridge_t *b = ud;
    if (b->t != t) return;
    UM_INFO("bridge %s is going away; opening a new session", b->cur);
    b->t = NULL;
    um_hub_set_tunnel(b->hub, NULL);
    if (b->old) um_tunnel_close(b->old, false, 0); /* at most one drains */
    b->old = t;
    um_tunnel_close(t, true, 30000);
    demand(b);
}

static const um_tunnel_cbs_t bridge_cbs = {.on_goaway = on_goaway, .on_down = on_down};

static void on_connected(um_connector_t *cn, int status, um_sess_t *s, um_carrier_t *car, void *ud)
{
    um_bridge_t *b = ud;
    (void)cn;
    b->conn = NULL;
    if (status != 0) {
        UM_WARN("cannot reach bridge %s: %s", b->cur, um_strerror(status));
        ev_bridge(b, "error", um_strerror(status));
        b->attempt++;
        b->addr++;
        demand(b);
        return;
    }
    um_mux_config_t mc;
    um_mux_config_default(&mc);
    mc.ping_interval_ms = b->cfg->keepalive_s * 1000;
    mc.stream_timeout_ms = b->cfg->stream_timeout_s * 1000;
    um_tunnel_t *t;
    if (um_tunnel_new(b->loop, s, car, UM_MUX_CLIENT, &mc, &bridge_cbs, b, &t) != 0) {
        um_sess_free(s);
        um_carrier_close(car);
        b->attempt++;
        demand(b);
        return;
    }
    b->attempt = 0;
    b->t = t;
    UM_INFO("session up to bridge %s (%s)", b->cur, srv(b)->name);
    ev_bridge(b, "bridge_up", NULL);
    um_hub_set_tunnel(b->hub, t);
}

static void connect_bridge(um_bridge_t *b)
{
    if (b->stopping || b->t || b->conn || b->pending == 0) return;
    const um_peer_server_t *s = srv(b);
    const um_addr_t *a = &s->addrs[b->addr % s->n_addrs];
    um_addr_format(a, b->cur, sizeof(b->cur));
    if (a->type == UM_ADDR_DOMAIN) {
        /* validated away (docs/CONFIG.md `via`): a bridge is named by IP */
        UM_ERR("bridge \"%s\": address %s is not an IP address", s->name, b->cur);
        return;
    }
    um_connector_cfg_t cc;
    memset(&cc, 0, sizeof(cc));
    memcpy(cc.client_priv, b->cfg->private_key, 32);
    memcpy(cc.server_pub, s->public_key, 32);
    cc.offer_aes = -1;
    cc.timeout_ms = B_HS_TIMEOUT;
    cc.sess.tx_max = UM_TUNNEL_SESS_TX_MAX;
    const um_transport_cfg_t *tr = um_config_transport(b->cfg, s->transport);
    if (tr) cc.shape = tr->shape;
    if (tr && tr->padding == UM_CFG_PAD_RANDOM) {
        cc.sess.pad.mode = UM_PAD_RANDOM;
        cc.sess.pad.max = UM_PAD_RANDOM_MAX;
    }
    if (tr && tr->type == UM_TR_TLS) {
        if (um_codec_tls_init(&b->tls, (um_tls_fp_t)tr->fingerprint, tr->sni) != 0) {
            sodium_memzero(cc.client_priv, sizeof(cc.client_priv));
            UM_ERR("bridge \"%s\": transport '%s': bad sni or fingerprint", s->name, tr->name);
            return;
        }
        cc.codec = &b->tls.base;
        cc.sess.pad.guard_bytes = UM_TLS_GUARD_BYTES;
        cc.sess.pad.guard_idle_ms = UM_TLS_GUARD_IDLE_MS;
    }
    if (tr && tr->type == UM_TR_WS && cli_ws_setup(b->loop, tr, a, &b->ws, &cc) != 0) {
        sodium_memzero(cc.client_priv, sizeof(cc.client_priv));
        return;
    }
    if (b->cfg->upstream.kind != UM_UPSTREAM_NONE) cc.upstream = &b->cfg->upstream;
    struct sockaddr_storage ss;
    socklen_t len;
    um_addr_to_sockaddr(a, &ss, &len);
    int r = um_connector_start(b->loop, (struct sockaddr *)&ss, &cc, on_connected, b, &b->conn);
    sodium_memzero(cc.client_priv, sizeof(cc.client_priv));
    if (r != 0) {
        b->conn = NULL;
        b->attempt++;
        b->addr++;
        demand(b);
    }
}

/* ---- the dialer ---- */

static void d_opened(void *arg, int status, um_carrier_t *car)
{
    bdial_t *d = arg;
    um_bridge_t *b = d->b;
    b->pending--;
    d->car = NULL;
    um_connector_dial_cb cb = d->cb;
    void *cbarg = d->arg;
    free(d);
    cb(cbarg, status, car);
}

static int d_start(void *ctx, const um_addr_t *dst, um_connector_dial_cb cb, void *arg,
                   void **handle)
{
    um_bridge_t *b = ctx;
    if (b->stopping) return UM_EPIPE;
    bdial_t *d = calloc(1, sizeof(*d));
    if (!d) return UM_ENOMEM;
    d->b = b;
    d->cb = cb;
    d->arg = arg;
    int r = um_conn_carrier_open(um_hub_connector(b->hub), dst, d_opened, d, &d->car);
    if (r != 0) {
        free(d);
        return r;
    }
    b->pending++;
    *handle = d;
    connect_bridge(b); /* or the hub's wait callback, on the next turn */
    return 0;
}

static void d_cancel(void *handle)
{
    bdial_t *d = handle;
    d->b->pending--;
    um_carrier_close(d->car);
    free(d);
}

static void on_wait(void *ud)
{
    demand(ud);
}

int um_bridge_new(uv_loop_t *loop, const um_config_t *cfg, size_t index, um_events_t *ev,
                  um_bridge_t **out)
{
    if (!loop || !cfg || index >= cfg->n_servers || !out) return UM_EINVAL;
    um_bridge_t *b = calloc(1, sizeof(*b));
    if (!b) return UM_ENOMEM;
    b->loop = loop;
    b->cfg = cfg;
    b->idx = index;
    b->ev = ev;
    int r = um_hub_new(loop, B_WAIT_MS, B_MAX_WAITING, &b->hub);
    if (r != 0) {
        free(b);
        return r;
    }
    um_hub_set_wait_cb(b->hub, on_wait, b);
    uv_timer_init(loop, &b->retry);
    b->retry.data = b;
    b->dialer.start = d_start;
    b->dialer.cancel = d_cancel;
    b->dialer.ctx = b;
    n_live++;
    *out = b;
    return 0;
}

const um_connector_dialer_t *um_bridge_dialer(um_bridge_t *b)
{
    return &b->dialer;
}

static void retry_closed(uv_handle_t *h)
{
    n_live--;
    free(h->data);
}

static void finish_free(um_bridge_t *b)
{
    um_hub_free(b->hub);
    b->hub = NULL;
    uv_close((uv_handle_t *)&b->retry, retry_closed);
}

void um_bridge_free(um_bridge_t *b)
{
    if (!b || b->stopping) return;
    b->stopping = true;
    uv_timer_stop(&b->retry);
    if (b->conn) um_connector_cancel(b->conn);
    b->conn = NULL;
    if (b->old) um_tunnel_close(b->old, false, 0);
    if (b->t) um_tunnel_close(b->t, false, 0);
    if (!b->t && !b->old) finish_free(b); /* else the last on_down does */
}
