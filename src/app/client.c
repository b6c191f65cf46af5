/* The client engine behind 'umbra client': keeps one session up to a server
 * (reconnecting at once, then with backoff and jitter), and serves the local
 * SOCKS5 and HTTP proxies and -L forwards through it. Opens made while no
 * session is up wait, within a bound, for the next one; streams of a session
 * that dies are reset. Events go out as JSON lines (--events). Racing a new
 * session is in client_race.c, moving a session to a new connection
 * (resumption, rotation, hopping) in client_move.c, the shared state in
 * client_int.h. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "app/cli.h"
#include "app/client_int.h"
#include "app/notify.h"
#include "app/run.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define WAIT_MS        10000 /* how long a request waits for a session */
#define MAX_WAITING    4096
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define HS_TIMEOUT_MS  10000
#define RESOLVE_MS     5000
#define STATS_EVERY_MS 30000
/* Resumption (docs/PROTOCOL.md 3.6): how long the streams of a session whose
 * connection broke wait for a new one (the server's resume-grace defaults to
 * the same), the retry step meanwhile, and the silence after which a
 * connection that owes us an acknowledgement counts as broken. */
#define RESUME_WAIT_MS   120000
#define RESUME_RETRY_MAX 1000
#define STALL_MS         5000

static void connect_next(cli_t *c);
static void skip_bridges(cli_t *c);

/* Moves to the next address, and past the last one to the next server;
 * not while a session waits to resume (its server is the only one that can
 * continue it), for the first RESUME_STAY_MS. */
#define RESUME_STAY_MS 10000
static void advance(cli_t *c)
{
    const um_peer_server_t *s = cur_server(c);
    bool stay = c->t && (!c->detached_at || um_now_ms() - c->detached_at < RESUME_STAY_MS);
    if (++c->addr >= s->n_addrs && stay) {
        c->addr = 0;
    } else if (c->addr >= s->n_addrs) {
        c->addr = 0;
        c->server = (c->server + 1) % c->cfg->n_servers;
        skip_bridges(c);
    }
}

/* Bridges (a server another names in `via`) are not dialed as exits. */
static void skip_bridges(cli_t *c)
{
    for (size_t k = 0;
         k < c->cfg->n_servers && um_bridge_is_bridge(c->cfg, c->server % c->cfg->n_servers); k++)
        c->server = (c->server + 1) % c->cfg->n_servers;
}

/* The dialer of the current server's bridge (made on first use), or NULL
 * when it has none; *err on failure. */
static const um_connector_dialer_t *bridge_dialer(cli_t *c, int *err)
{
    int bi = um_bridge_of(c->cfg, c->server % c->cfg->n_servers);
    *err = 0;
    if (bi < 0) return NULL;
    if (!c->bridges[bi]) *err = um_bridge_new(c->loop, c->cfg, (size_t)bi, &c->ev, &c->bridges[bi]);
    return *err ? NULL : um_bridge_dialer(c->bridges[bi]);
}

static void on_retry(uv_timer_t *h)
{
    cli_t *c = h->data;
    c->retry_on = false;
    connect_next(c);
}

/* Is a connection wanted: no session, a session waiting for a new
 * connection, or a planned move? */
static bool want_conn(const cli_t *c)
{
    return !c->t || c->detached_at || c->move;
}

void cli_schedule_retry(cli_t *c)
{
    if (c->stopping || c->retry_on || c->conn || c->rq || c->racing || !want_conn(c)) return;
    uint64_t d = 0;
    if (c->attempt > 0) {
        /* Exponential, capped, with jitter in [50%, 100%] of the step; a
         * session waiting with its streams tries more often. */
        uint64_t cap = c->t ? RESUME_RETRY_MAX : BACKOFF_MAX_MS;
        uint64_t step = BACKOFF_MIN_MS << (c->attempt > 10 ? 10 : c->attempt - 1);
        if (step > cap) step = cap;
        d = step / 2 + randombytes_uniform((uint32_t)(step / 2 + 1));
    }
    c->retry_on = true;
    uv_timer_start(&c->retry, on_retry, d, 0);
}

/* A request is waiting and nothing is under way: try now, not at the end of
 * a backoff step (a restarted server is then found within one round trip). */
void cli_on_demand(cli_t *c)
{
    if (!want_conn(c) || c->conn || c->rq || c->racing || c->stopping) return;
    if (c->retry_on) {
        uv_timer_stop(&c->retry);
        c->retry_on = false;
    }
    connect_next(c);
}

static void on_goaway(um_tunnel_t *t, void *ud)
{
    cli_t *c = ud;
    if (c->t != t) return;
    /* Open the next session now; the old one's streams finish, then it closes. */
    UM_INFO("server %s is going away; opening a new session", c->cur);
    if (c->conn && c->conn_resume) {
        um_connector_cancel(c->conn);
        c->conn = NULL;
    }
    c->t = NULL;
    c->detached_at = 0;
    c->move = NULL;
    uv_timer_stop(&c->rot_timer);
    um_hub_set_tunnel(c->hub, NULL);
    um_tunnel_close(t, true, 30000);
    cli_on_demand(c);
}

static void on_down(um_tunnel_t *t, int err, void *ud)
{
    cli_t *c = ud;
    um_tunnel_stats_t st;
    um_tunnel_stats(t, &st);
    cli_metrics_session_down(c, &st);
    if (c->t != t) {
        /* An old session that was draining after a GOAWAY (or that a new
         * session replaced). Streams it still had are reset now: say so. */
        UM_DEBUG("previous session closed: %s", um_strerror(err));
        bool told = c->replaced == t;
        if (told) c->replaced = NULL;
        if (st.streams_failed > 0 && !c->stopping && !told) {
            um_ev_begin(&c->ev, "session_lost");
            um_ev_str(&c->ev, "server", cur_server(c)->name);
            um_ev_str(&c->ev, "reason", "server going away");
            um_ev_int(&c->ev, "streams_reset", (int64_t)st.streams_failed);
            um_ev_end(&c->ev);
        }
        return;
    }
    const char *why = err == UM_EPIPE ? "closed" : um_strerror(err);
    const char *server_why = cli_server_end_reason(t);
    if (server_why) why = server_why;
    if (c->conn && c->conn_resume) {
        um_connector_cancel(c->conn); /* it borrows this session */
        c->conn = NULL;
    }
    c->detached_at = 0;
    c->move = NULL;
    uv_timer_stop(&c->rot_timer);
    UM_WARN("session to %s down: %s", c->cur, why);
    um_notify_status("session to %s down: %s; reconnecting", c->cur, why);
    um_ev_begin(&c->ev, "session_down");
    um_ev_str(&c->ev, "address", c->cur);
    um_ev_str(&c->ev, "reason", why);
    um_ev_int(&c->ev, "bytes_in", (int64_t)st.bytes_in);
    um_ev_int(&c->ev, "bytes_out", (int64_t)st.bytes_out);
    um_ev_end(&c->ev);
    c->t = NULL;
    um_hub_set_tunnel(c->hub, NULL);
    um_listfetch_session(c->lf, NULL);
    /* Reconnect at once after a session that lived; back off after one the
     * server ended right away (limits, a restart loop). */
    if (um_now_ms() - c->up_since < 2000)
        c->attempt++;
    else
        c->attempt = 0;
    cli_schedule_retry(c);
}

/* The connection broke; the session and its streams wait for the next. */
static void on_detached(um_tunnel_t *t, int err, void *ud)
{
    cli_t *c = ud;
    if (c->t != t) return;
    c->detached_at = um_now_ms();
    snprintf(c->detach_why, sizeof(c->detach_why), "%s",
             err == UM_EPIPE ? "end of file" : um_strerror(err));
    uv_timer_stop(&c->rot_timer);
    UM_INFO("connection to %s lost (%s); resuming the session", c->cur, c->detach_why);
    /* A planned move under way carries on: it resumes the session. */
    if (c->conn && c->conn_resume) {
        c->conn_why = NULL;
        return;
    }
    c->move = NULL;
    c->attempt = 0;
    cli_on_demand(c);
}

/* The connection has carried its soft mark (bring the next one) or its
 * whole budget (nothing more goes on it until the next one comes). */
static void on_budget(um_tunnel_t *t, bool spent, void *ud)
{
    cli_t *c = ud;
    (void)spent;
    if (c->t != t || c->detached_at || c->conn) return;
    c->move = "bytes";
    cli_on_demand(c);
}

static const um_tunnel_cbs_t tunnel_cbs = {
    .on_goaway = on_goaway, .on_down = on_down, .on_detached = on_detached, .on_budget = on_budget};

void cli_on_connected(um_connector_t *cn, int status, um_sess_t *s, um_carrier_t *conn, void *ud)
{
    cli_t *c = ud;
    bool was_resume = c->conn_resume;
    const char *was_move = c->conn_why;
    c->conn = NULL;
    c->conn_resume = false;
    c->move = NULL;
    if (status != 0 && was_resume && um_connector_resumed(cn) && c->t && !c->detached_at) {
        /* The session took the new keys, the connection then failed: the
         * old connection cannot follow any more. */
        um_tunnel_detach(c->t);
        c->detached_at = um_now_ms();
        snprintf(c->detach_why, sizeof(c->detach_why), "%s", um_strerror(status));
    }
    if (status == 0 && was_resume && um_connector_resumed(cn)) {
        cli_resumed(c, cn, conn);
        return;
    }
    if (status != 0) {
        um_log_limited(&c->rl_connect, 1, 1000, UM_LOG_WARN, "cannot reach %s: %s", c->cur,
                       um_strerror(status));
        um_ev_begin(&c->ev, "error");
        um_ev_str(&c->ev, "what", "connect");
        um_ev_str(&c->ev, "address", c->cur);
        um_ev_str(&c->ev, "reason", um_strerror(status));
        um_ev_end(&c->ev);
        c->attempt++;
        if (c->t && !c->detached_at) c->move = was_move ? was_move : "bytes"; /* again, later */
        advance(c);
        cli_schedule_retry(c);
        return;
    }
    um_tunnel_t *old = c->t;
    if (old) {
        /* The server does not know the session any more (it restarted, or
         * the wait was over): the new session first, then the old streams
         * are reset. */
        UM_WARN("server %s could not resume the session; starting a new one", c->cur);
        um_ev_begin(&c->ev, "session_lost");
        um_ev_str(&c->ev, "server", cur_server(c)->name);
        um_ev_str(&c->ev, "reason", c->detached_at ? c->detach_why : "not resumed");
        um_ev_end(&c->ev);
        c->t = NULL;
        c->detached_at = 0;
    }
    um_mux_config_t mc;
    um_mux_config_default(&mc);
    mc.ping_interval_ms = c->cfg->keepalive_s * 1000;
    /* The tunnel lets a silent connection go (STALL_MS) and the session
     * resumes on the next: the mux itself never times out. */
    mc.ping_timeout_ms = 0;
    mc.stream_timeout_ms = c->cfg->stream_timeout_s * 1000;
    um_tunnel_t *t;
    if (um_tunnel_new(c->loop, s, conn, UM_MUX_CLIENT, &mc, &tunnel_cbs, c, &t) != 0) {
        um_sess_free(s);
        um_carrier_close(conn);
        if (old) um_tunnel_close(old, false, 0);
        c->attempt++;
        cli_schedule_retry(c);
        return;
    }
    um_tunnel_set_resumable(t, STALL_MS);
    um_tunnel_set_budget(t, c->conn_budget, c->conn_budget / 2, um_connector_wire(cn));
    const um_transport_cfg_t *tr = um_config_transport(c->cfg, cur_server(c)->transport);
    if (tr && tr->timing == UM_CFG_TIMING_JITTER) {
        um_tunnel_timing_t tm;
        um_tunnel_timing_default(&tm, UM_TUNNEL_TIMING_JITTER);
        um_tunnel_set_timing(t, &tm);
    }
    uint64_t ms = um_now_ms() - c->t_start;
    c->t = t;
    c->up_since = um_now_ms();
    c->sessions_up++;
    um_hub_set_tunnel(c->hub, t);
    if (old) {
        c->replaced = old;
        um_tunnel_close(old, false, 0); /* its streams are reset (on a later turn) */
    }
    cli_arm_rotation(c);
    cli_arm_hop(c);
    UM_INFO("session up to %s (%s) in %llu ms", c->cur, cur_server(c)->name,
            (unsigned long long)ms);
    um_notify_status("session up to %s (%s)", c->cur, cur_server(c)->name);
    um_ev_begin(&c->ev, "session_up");
    um_ev_str(&c->ev, "server", cur_server(c)->name);
    um_ev_str(&c->ev, "address", c->cur);
    um_ev_int(&c->ev, "rtt_ms", (int64_t)ms);
    um_ev_end(&c->ev);
    um_listfetch_session(c->lf, cur_server(c));
    cli_remember_dial(c);
}

/* Dials ip for the current server: a continuation of the session (c->t), a
 * racer's new session (c->dialing), or a new session. */
void cli_start_handshake(cli_t *c, const um_addr_t *ip)
{
    const um_peer_server_t *s = cur_server(c);
    um_connector_cfg_t cc;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&cc, 0, sizeof(cc));
    memcpy(cc.client_priv, c->cfg->private_key, 32);
    memcpy(cc.server_pub, s->public_key, 32);
    cc.offer_aes = -1;
    cc.timeout_ms = HS_TIMEOUT_MS;
    const um_transport_cfg_t *tr = um_config_transport(c->cfg, s->transport);
    if (tr) cc.shape = tr->shape;
    cc.sess.tx_max = UM_TUNNEL_SESS_TX_MAX;
    if (tr && tr->padding == UM_CFG_PAD_RANDOM) {
        cc.sess.pad.mode = UM_PAD_RANDOM;
        cc.sess.pad.max = UM_PAD_RANDOM_MAX;
    }
    um_codec_tls_t *tls = c->dialing ? &c->dialing->tls : &c->tls;
    if (tr && tr->type == UM_TR_TLS) {
        if (um_codec_tls_init(tls, (um_tls_fp_t)tr->fingerprint, tr->sni) != 0) {
            UM_ERR("server \"%s\": transport '%s': bad sni or fingerprint", s->name, tr->name);
            sodium_memzero(cc.client_priv, sizeof(cc.client_priv));
            if (c->dialing) {
                c->dialing->sync_err = UM_EINVAL;
                return;
            }
            c->attempt++;
            cli_schedule_retry(c);
            return;
        }
        cc.codec = &tls->base;
        cc.sess.pad.guard_bytes = UM_TLS_GUARD_BYTES;
        cc.sess.pad.guard_idle_ms = UM_TLS_GUARD_IDLE_MS;
    }
    /* ws: an empty host names the address as configured (a DNS name stays
     * a name in the Host field and the SNI, not the IP it resolved to). */
    const um_addr_t *named = s->n_addrs ? &s->addrs[c->addr % s->n_addrs] : ip;
    if (named->port != ip->port) named = ip;
    if (tr && tr->type == UM_TR_WS &&
        cli_ws_setup(c->loop, tr, named, c->dialing ? &c->dialing->ws : &c->ws, &cc) != 0) {
        sodium_memzero(cc.client_priv, sizeof(cc.client_priv));
        if (c->dialing) {
            c->dialing->sync_err = UM_EINVAL;
            return;
        }
        c->attempt++;
        cli_schedule_retry(c);
        return;
    }
    if (c->t) {
        /* Continue the session (after a break, or as a planned move). A
         * server that refuses the flight (its handshake rate) stays silent:
         * give up on it after a few round trips, not the full 10 s. */
        uint32_t rtt = um_tunnel_rtt(c->t);
        cc.timeout_ms = rtt < 500 ? 2000 + 8 * rtt : HS_TIMEOUT_MS;
        cc.resume = um_tunnel_session(c->t);
        c->conn_resume = true;
        c->conn_why = c->detached_at ? NULL : c->move;
    }
    cc.budget = c->conn_budget = cli_next_budget(c);
    if (c->cfg->upstream.kind != UM_UPSTREAM_NONE) cc.upstream = &c->cfg->upstream;
    int br = 0;
    cc.dialer = bridge_dialer(c, &br); /* the exit's session rides a stream of the bridge's */
    if (!br && tr && tr->type == UM_TR_DNS) cc.dialer = cli_dns_dialer(c, tr, s->public_key, &br);
    um_addr_t dst = *ip;
    dst.port = cli_dial_port(c, ip->port);
    um_addr_format(&dst, c->cur, sizeof(c->cur));
    um_addr_to_sockaddr(&dst, &ss, &len);
    int r;
    if (br)
        r = br;
    else if (c->dialing)
        r = um_connector_start(c->loop, (struct sockaddr *)&ss, &cc, cli_on_race_connected,
                               c->dialing, &c->dialing->conn);
    else
        r = um_connector_start(c->loop, (struct sockaddr *)&ss, &cc, cli_on_connected, c, &c->conn);
    sodium_memzero(cc.client_priv, sizeof(cc.client_priv));
    if (r != 0 && c->dialing) {
        c->dialing->conn = NULL;
        c->dialing->sync_err = r;
        return;
    }
    if (r != 0) {
        c->conn = NULL;
        c->conn_resume = false;
        c->move = NULL;
        c->attempt++;
        advance(c);
        cli_schedule_retry(c);
    }
}

static void on_resolved(void *arg, int status, const um_addr_t *addrs, size_t n)
{
    cli_t *c = arg;
    c->rq = NULL;
    if (status != 0 || n == 0) {
        UM_WARN("cannot resolve %s: %s", c->cur, um_strerror(status ? status : UM_ENOENT));
        c->attempt++;
        advance(c);
        cli_schedule_retry(c);
        return;
    }
    /* Alternate between the answers from one attempt to the next. */
    cli_start_handshake(c, &addrs[c->attempt % n]);
}

static void connect_next(cli_t *c)
{
    if (c->stopping || !want_conn(c) || c->conn || c->rq || c->racing) return;
    if (c->t && c->detached_at && um_now_ms() - c->detached_at > RESUME_WAIT_MS) {
        /* Waited long enough: the streams are reset; a new session follows
         * from on_down. */
        UM_WARN("no connection to %s for %u s; dropping the session", c->cur,
                RESUME_WAIT_MS / 1000);
        um_tunnel_close(c->t, false, 0);
        return;
    }
    if (!c->t) { /* a new session: race the candidates */
        cli_race_round(c);
        return;
    }
    const um_peer_server_t *s = cur_server(c);
    const um_addr_t *a = &s->addrs[c->addr % s->n_addrs];
    um_addr_format(a, c->cur, sizeof(c->cur));
    c->t_start = um_now_ms();
    if (a->type != UM_ADDR_DOMAIN) {
        cli_start_handshake(c, a);
        return;
    }
    if (um_resolver_query(c->resolver, a->u.domain, a->port, on_resolved, c, &c->rq) != 0) {
        c->rq = NULL;
        c->attempt++;
        advance(c);
        cli_schedule_retry(c);
    }
}

/* The hub tells us when an open has to wait. */
static void on_wait(void *ud)
{
    cli_on_demand(ud);
}

static void on_stats(uv_timer_t *h)
{
    cli_t *c = h->data;
    if (!c->t) return;
    um_tunnel_stats_t st;
    um_tunnel_stats(c->t, &st);
    um_ev_begin(&c->ev, "stats");
    um_ev_int(&c->ev, "bytes_in", (int64_t)st.bytes_in);
    um_ev_int(&c->ev, "bytes_out", (int64_t)st.bytes_out);
    um_ev_int(&c->ev, "streams_open", (int64_t)st.streams_open);
    um_ev_int(&c->ev, "rtt_ms", um_tunnel_rtt(c->t));
    um_ev_end(&c->ev);
}

/* The report 'umbra status' prints. */
static size_t report(char *out, size_t cap, void *ud)
{
    cli_t *c = ud;
    int n;
    if (c->t) {
        um_tunnel_stats_t st;
        um_tunnel_stats(c->t, &st);
        n = snprintf(out, cap,
                     "state:        %s\nserver:       %s (%s)\nuptime:       %llu s\n"
                     "rtt:          %u ms\nstreams open: %zu\nbytes in:     %llu\n"
                     "bytes out:    %llu\n",
                     c->detached_at ? "resuming" : "up", cur_server(c)->name, c->cur,
                     (unsigned long long)((um_now_ms() - c->up_since) / 1000), um_tunnel_rtt(c->t),
                     st.streams_open, (unsigned long long)st.bytes_in,
                     (unsigned long long)st.bytes_out);
    } else {
        n = snprintf(out, cap,
                     "state:        connecting (%u failed attempts)\nserver:       %s (%s)\n",
                     c->attempt, cur_server(c)->name, c->cur[0] ? c->cur : "-");
    }
    if (n < 0) return 0;
    size_t used = (size_t)n < cap ? (size_t)n : cap - 1;
    if (!c->t && c->racing) {
        int k = snprintf(out + used, cap - used,
                         "racing:       %zu of %zu candidates dialed, %zu in flight\n",
                         c->next_order, c->n_order, c->n_racing);
        if (k > 0) used += (size_t)k < cap - used ? (size_t)k : cap - used - 1;
    }
    n = snprintf(out + used, cap - used,
                 "sessions:     %llu since start\nresumptions:  %llu (last: %s)\n"
                 "rotations:    %llu (last: %s)\nlistening:   %s\n",
                 (unsigned long long)c->sessions_up, (unsigned long long)c->resumptions,
                 c->last_resume[0] ? c->last_resume : "-", (unsigned long long)c->rotations,
                 c->last_rotate[0] ? c->last_rotate : "-", c->listening);
    if (n > 0) used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
    if (c->routing && used + 1 < cap) {
        um_router_stats_t rs;
        um_routing_stats(c->routing, &rs);
        n = snprintf(out + used, cap - used,
                     "routing:      streams %llu tunnel, %llu direct, %llu blocked\n",
                     (unsigned long long)rs.opens[UM_RULE_TUNNEL],
                     (unsigned long long)rs.opens[UM_RULE_DIRECT],
                     (unsigned long long)rs.opens[UM_RULE_BLOCK]);
        if (n > 0) used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
    }
    return used;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    cli_t *c = h->data;
    (void)signum;
    if (c->stopping) return;
    c->stopping = true;
    UM_INFO("stopping");
    um_notify_stopping();
    uv_stop(c->loop);
}

/* SIGHUP without routing rules: nothing to reload, but not the default
 * disposition (which would end the client). */
static void on_hup_norules(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    UM_INFO("SIGHUP: no rules files to reload");
}

/* What the proxies, forwards and VPN mode open streams through: the router
 * when routing rules are configured, else the tunnel's hub. */
static um_conn_provider_t ingress_provider(cli_t *c)
{
    return c->routing ? um_routing_connector(c->routing) : um_hub_connector(c->hub);
}

static int start_proxy(cli_t *c, um_proxy_kind_t kind, const char *what, const um_addr_t *bind,
                       const um_addr_t *fwd_dst)
{
    um_proxy_opts_t o;
    char a[UM_ADDR_STRLEN], d[UM_ADDR_STRLEN];
    memset(&o, 0, sizeof(o));
    o.conn = ingress_provider(c);
    if (kind != UM_PROXY_FORWARD && c->cfg->socks_user[0]) { /* SOCKS5 and HTTP */
        o.user = c->cfg->socks_user;
        o.pass = c->cfg->socks_pass;
    }
    if (fwd_dst) o.forward_dst = *fwd_dst;
    o.fast_open = c->cfg->fast_open;
    um_addr_format(bind, a, sizeof(a));
    int r = um_proxy_new(c->loop, kind, bind, &o, &c->px[c->n_px]);
    if (r != 0) {
        um_cli_error("client", "cannot listen on %s for %s: %s", a, what, um_strerror(r));
        return r;
    }
    c->n_px++;
    um_addr_t got;
    if (um_proxy_local_addr(c->px[c->n_px - 1], &got) == 0) um_addr_format(&got, a, sizeof(a));
    if (fwd_dst) {
        um_addr_format(fwd_dst, d, sizeof(d));
        UM_INFO("forward %s -> %s", a, d);
    } else {
        UM_INFO("%s proxy on %s", what, a);
    }
    size_t ll = strlen(c->listening);
    snprintf(c->listening + ll, sizeof(c->listening) - ll, " %s %s%s%s", what, a,
             fwd_dst ? "->" : "", fwd_dst ? d : "");
    um_ev_begin(&c->ev, "listening");
    um_ev_str(&c->ev, "kind", what);
    um_ev_str(&c->ev, "address", a);
    if (fwd_dst) um_ev_str(&c->ev, "target", d);
    um_ev_end(&c->ev);
    return 0;
}

/* A signed server list added servers: dial them if nothing is up. */
static void on_list_added(void *ud, size_t added)
{
    cli_t *c = ud;
    UM_INFO("%zu server(s) added from a signed server list; %zu in all", added, c->cfg->n_servers);
    cli_on_demand(c);
}

int um_run_client(const um_config_t *cfg)
{
    cli_t *c = calloc(1, sizeof(*c));
    int rc = UM_EXIT_RUNTIME;
    if (!c) return UM_EXIT_RUNTIME;
    um_log_level_t lv = UM_LOG_INFO;
    um_log_level_parse(cfg->log_level, &lv);
    um_log_set_level(lv);
    c->loop = uv_default_loop();
    c->mcfg = malloc(sizeof(*c->mcfg));
    if (!c->mcfg) {
        free(c);
        return UM_EXIT_RUNTIME;
    }
    *c->mcfg = *cfg; /* a client config owns no memory but its sections: a flat copy */
    c->cfg = c->mcfg;
    if (um_events_open(&c->ev, cfg->events) != 0) {
        um_cli_error("client", "--events '%s': cannot open: %s", cfg->events, strerror(errno));
        sodium_memzero(c->mcfg, sizeof(*c->mcfg));
        free(c->mcfg);
        free(c);
        return UM_EXIT_CONFIG;
    }
    if (um_hub_new(c->loop, WAIT_MS, MAX_WAITING, &c->hub) != 0 ||
        um_resolver_new(c->loop, RESOLVE_MS, &c->resolver) != 0)
        goto out;
    um_hub_set_wait_cb(c->hub, on_wait, c);
    if (um_routing_wanted(cfg)) {
        char err[UM_ERR_MAX];
        if (um_routing_new(c->loop, c->cfg, um_hub_connector(c->hub), &c->ev, &c->routing, err,
                           sizeof(err)) != 0) {
            um_cli_error("client", "%s", err);
            goto out;
        }
    } else {
        uv_signal_init(c->loop, &c->sig_hup);
        uv_signal_start(&c->sig_hup, on_hup_norules, SIGHUP);
    }
    if (cfg->has_socks && start_proxy(c, UM_PROXY_SOCKS5, "socks5", &cfg->socks, NULL) != 0)
        goto out;
    if (cfg->has_http && start_proxy(c, UM_PROXY_HTTP, "http", &cfg->http, NULL) != 0) goto out;
    for (size_t i = 0; i < cfg->n_forwards; i++)
        if (start_proxy(c, UM_PROXY_FORWARD, "forward", &cfg->forwards[i].listen,
                        &cfg->forwards[i].target) != 0)
            goto out;
    /* VPN mode: device and routes, after the proxies, before the first connect. */
    if (cfg->tun && um_vpn_start(c->loop, cfg, ingress_provider(c), &c->vpn) != 0) {
        um_cli_error("client", "cannot start VPN mode (see the log above)");
        goto out;
    }
    if (c->vpn && c->routing)
        um_routing_vpn(c->routing, um_vpn_direct_device(c->vpn),
                       cfg->tun_routes && cfg->tun_fd < 0);
    uv_timer_init(c->loop, &c->retry);
    uv_timer_init(c->loop, &c->stats);
    uv_timer_init(c->loop, &c->rot_timer);
    uv_timer_init(c->loop, &c->hop_timer);
    uv_timer_init(c->loop, &c->stagger);
    c->retry.data = c->stats.data = c->rot_timer.data = c->hop_timer.data = c;
    c->stagger.data = c;
    uv_timer_start(&c->stats, on_stats, STATS_EVERY_MS, STATS_EVERY_MS);
    uv_signal_init(c->loop, &c->sig_term);
    uv_signal_init(c->loop, &c->sig_int);
    c->sig_term.data = c->sig_int.data = c;
    uv_signal_start(&c->sig_term, on_signal, SIGTERM);
    uv_signal_start(&c->sig_int, on_signal, SIGINT);
    if (strcmp(cfg->control, "off") != 0) {
        char path[UM_CONTROL_PATH_MAX], why[256] = "";
        int r = 0;
        if (cfg->control[0])
            snprintf(path, sizeof(path), "%s", cfg->control);
        else
            r = um_control_default_path(path, sizeof(path), true, why, sizeof(why));
        if (r == 0) r = um_control_start(c->loop, path, report, c, &c->ctl);
        if (!cfg->control[0] && r != 0 && r != UM_EEXIST && why[0])
            UM_WARN("no control socket: %s", why);
        else if (r == UM_EEXIST)
            UM_WARN("another umbra client answers on %s; this one has no control socket", path);
        else if (r != 0)
            UM_WARN("no control socket at %s: %s", path, um_strerror(r));
        else
            UM_DEBUG("control socket %s", path);
    }
    if (cli_metrics_start(c) != 0) {
        rc = UM_EXIT_CONFIG;
        goto out;
    }
    UM_INFO("umbra %s client: %zu server(s)", UMBRA_VERSION, cfg->n_servers);
    um_notify_ready("listening:%s; connecting", c->listening[0] ? c->listening : " (tun only)");
    skip_bridges(c);
    if (um_listfetch_new(c->loop, c->mcfg, &c->ev, um_hub_connector(c->hub), on_list_added, c,
                         &c->lf) != 0)
        goto out;
    cli_state_init(c);
    connect_next(c);
    uv_run(c->loop, UV_RUN_DEFAULT);
    rc = UM_EXIT_OK;
out:
    c->stopping = true;
    um_control_stop(c->ctl);
    cli_metrics_stop(c);
    for (size_t i = 0; i < c->n_px; i++)
        um_proxy_free(c->px[i]);
    um_vpn_stop(c->vpn); /* routes removed, flows reset, streams closed */
    c->vpn = NULL;
    if (c->conn) um_connector_cancel(c->conn);
    if (c->rq) um_resolve_cancel(c->rq);
    cli_race_cancel_all(c);
    if (c->t) um_tunnel_close(c->t, false, 0); /* on_down follows on a later turn */
    uv_run(c->loop, UV_RUN_NOWAIT);            /* close callbacks of the proxies' connections */
    for (int i = 0; c->t && i < 1000; i++)
        uv_run(c->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < UM_CFG_MAX_SERVERS; i++)
        um_bridge_free(c->bridges[i]); /* after the exits' streams are gone */
    for (int i = 0; um_bridge_live() > 0 && i < 1000; i++)
        uv_run(c->loop, UV_RUN_NOWAIT);
    um_listfetch_free(c->lf); /* before the hub it opens streams on */
    c->lf = NULL;
    um_routing_free(c->routing); /* the proxies' and VPN's streams are closed */
    c->routing = NULL;
    um_hub_free(c->hub);
    um_resolver_free(c->resolver);
    uv_walk(c->loop, close_walk, NULL);
    cli_dns_free(c);
    uv_run(c->loop, UV_RUN_DEFAULT);
    uv_loop_close(c->loop);
    um_events_close(&c->ev);
    sodium_memzero(c->mcfg, sizeof(*c->mcfg));
    free(c->mcfg);
    free(c);
    return rc;
}
