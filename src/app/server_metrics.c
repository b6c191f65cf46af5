/* The server's metrics (metrics = ADDR in [server], --metrics ADDR): what
 * GET /metrics answers, rendered at the moment of asking from the engine's
 * state (docs/CONFIG.md lists the families). See server_int.h. */
#include "app/metrics.h"
#include "app/server_int.h"

static void add_acc(um_acceptor_stats_t *sum, const um_acceptor_stats_t *a)
{
    sum->accepted += a->accepted;
    sum->established += a->established;
    sum->probes += a->probes;
    sum->fallbacks += a->fallbacks;
    sum->overload += a->overload;
    sum->resumed += a->resumed;
    sum->preauth += a->preauth;
}

void srv_metrics_retire(srv_t *s, um_acceptor_t *a)
{
    um_acceptor_stats_t st;
    um_acceptor_stats(a, &st);
    st.preauth = 0; /* a gauge: gone with it */
    add_acc(&s->acc_retired, &st);
}

static void counter(um_mtext_t *t, const char *name, const char *help, double v)
{
    um_mtext_family(t, name, "counter", help);
    um_mtext_sample(t, name, NULL, NULL, v);
}

static void gauge(um_mtext_t *t, const char *name, const char *help, double v)
{
    um_mtext_family(t, name, "gauge", help);
    um_mtext_sample(t, name, NULL, NULL, v);
}

static void render(um_mtext_t *t, void *ud)
{
    srv_t *s = ud;
    um_acceptor_stats_t acc = s->acc_retired;
    for (size_t i = 0; i < s->n_acc; i++) {
        um_acceptor_stats_t st;
        um_acceptor_stats(s->acc[i], &st);
        add_acc(&acc, &st);
    }
    um_gate_stats_t gs;
    memset(&gs, 0, sizeof(gs));
    if (s->gate) um_gate_stats(s->gate, &gs);
    /* Every session's bytes are in the accounts, but for what moved since
     * the last accounting tick: bring them up to date first. */
    uint64_t streams = 0, streams_total = 0;
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next) {
        um_tunnel_stats_t st;
        um_tunnel_stats(ss->t, &st);
        streams += st.streams_open;
        streams_total += st.streams_opened;
    }
    srv_mgmt_account_all(s);

    gauge(t, "umbra_sessions", "Sessions open now (detached ones waiting to resume included).",
          (double)s->n_sessions);
    counter(t, "umbra_sessions_total", "Sessions established.", (double)s->m_sessions_total);
    gauge(t, "umbra_streams", "Streams open now.", (double)streams);
    gauge(t, "umbra_clients", "Authorised clients.", (double)s->cfg.n_clients);
    gauge(t, "umbra_preauth_connections", "Connections not authenticated yet.",
          (double)acc.preauth);

    um_mtext_family(t, "umbra_client_bytes_total", "counter",
                    "Payload bytes of a client's streams and datagrams since the server started.");
    for (size_t i = 0; i < s->cfg.n_clients; i++) {
        const um_peer_client_t *pc = &s->cfg.clients[i];
        const srv_acct_t *a = srv_mgmt_account(s, pc->public_key);
        um_mtext_printf(t, "umbra_client_bytes_total{client=\"%s\",direction=\"in\"} %llu\n",
                        pc->name, (unsigned long long)(a ? a->in : 0));
        um_mtext_printf(t, "umbra_client_bytes_total{client=\"%s\",direction=\"out\"} %llu\n",
                        pc->name, (unsigned long long)(a ? a->out : 0));
    }
    um_mtext_family(t, "umbra_client_sessions", "gauge", "Sessions of a client open now.");
    for (size_t i = 0; i < s->cfg.n_clients; i++) {
        const um_peer_client_t *pc = &s->cfg.clients[i];
        size_t n = 0;
        for (srv_sess_t *ss = s->sessions; ss; ss = ss->next)
            n += memcmp(ss->client_key, pc->public_key, 32) == 0;
        um_mtext_sample(t, "umbra_client_sessions", "client", pc->name, (double)n);
    }

    um_mtext_family(t, "umbra_handshakes_total", "counter",
                    "Connections accepted, by outcome: established (a session, new or resumed), "
                    "probe (did not authenticate), overload (closed for lack of room), refused "
                    "(a client key over its handshake rate).");
    um_mtext_sample(t, "umbra_handshakes_total", "outcome", "established", (double)acc.established);
    um_mtext_sample(t, "umbra_handshakes_total", "outcome", "probe", (double)acc.probes);
    um_mtext_sample(t, "umbra_handshakes_total", "outcome", "overload", (double)acc.overload);
    um_mtext_sample(t, "umbra_handshakes_total", "outcome", "refused", (double)gs.quota_refused);
    counter(t, "umbra_connections_total", "TCP connections accepted.", (double)acc.accepted);

    um_mtext_family(t, "umbra_probe_reactions_total", "counter",
                    "How connections that did not authenticate were answered: silence (held, "
                    "then closed), fallback (spliced to the fallback site), cover (spliced to "
                    "the tls transport's cover site).");
    uint64_t spliced = acc.fallbacks, silent = acc.probes > spliced ? acc.probes - spliced : 0;
    um_mtext_sample(t, "umbra_probe_reactions_total", "reaction", "silence", (double)silent);
    um_mtext_sample(t, "umbra_probe_reactions_total", "reaction", "fallback",
                    s->tls ? 0.0 : (double)spliced);
    um_mtext_sample(t, "umbra_probe_reactions_total", "reaction", "cover",
                    s->tls ? (double)spliced : 0.0);

    counter(t, "umbra_resumptions_total", "Sessions continued on a new connection.",
            (double)acc.resumed);
    um_mtext_family(t, "umbra_egress_refusals_total", "counter",
                    "Streams refused at the exit, by reason: policy (the egress policy), "
                    "failure (resolution or connection failed).");
    um_mtext_sample(t, "umbra_egress_refusals_total", "reason", "policy",
                    (double)s->m_refused_policy);
    um_mtext_sample(t, "umbra_egress_refusals_total", "reason", "failure",
                    (double)(s->m_refused - s->m_refused_policy));
    um_mtext_family(t, "umbra_session_ends_total", "counter",
                    "Sessions ended by the server's management, by reason.");
    um_mtext_sample(t, "umbra_session_ends_total", "reason", "quota", (double)s->m_quota_ends);
    um_mtext_sample(t, "umbra_session_ends_total", "reason", "expired", (double)s->m_expiry_ends);
    counter(t, "umbra_sessions_refused_total", "Sessions refused (too many for the client).",
            (double)s->m_sessions_refused);
    counter(t, "umbra_streams_total", "Streams opened.",
            (double)(s->m_streams_done + streams_total));

    um_resolver_lat_t lat;
    memset(&lat, 0, sizeof(lat));
    um_resolver_t *r = s->direct ? um_direct_resolver(s->direct) : NULL;
    if (r) um_resolver_latency(r, &lat);
    double bounds[UM_RESOLVE_LAT_BUCKETS];
    for (size_t i = 0; i < UM_RESOLVE_LAT_BUCKETS; i++)
        bounds[i] = (double)um_resolve_lat_us[i] / 1e6;
    um_mtext_hist(t, "umbra_resolver_latency_seconds",
                  "Time from a destination name's query to its answer.", bounds, lat.count,
                  UM_RESOLVE_LAT_BUCKETS, (double)lat.sum_us / 1e6);
    um_mtext_loop(t, s->loop);
}

int srv_metrics_start(srv_t *s)
{
    if (!s->cfg.has_metrics) return 0;
    char a[UM_ADDR_STRLEN];
    um_addr_format(&s->cfg.metrics, a, sizeof(a));
    int r = um_metrics_start(s->loop, &s->cfg.metrics, render, s, &s->metrics);
    if (r != 0) {
        um_cli_error("server", "metrics: cannot listen on %s: %s", a, um_strerror(r));
        return -1;
    }
    UM_INFO("metrics on http://%s/metrics", a);
    return 0;
}

void srv_metrics_stop(srv_t *s)
{
    um_metrics_stop(s->metrics);
    s->metrics = NULL;
}
