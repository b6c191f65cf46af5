/* The server engine's listeners (fixed, or port hopping), the tls
 * transport's cover probe, signals (SIGHUP reload, SIGTERM/SIGINT drain
 * and exit), the sweep, and um_run_server; see server_int.h. */
#include "app/server_int.h"

#include "app/notify.h"

/* ---- signals, sweeping, shutdown ---- */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void srv_maybe_finish(srv_t *s)
{
    if (!s->stopping || s->n_sessions > 0) return;
    UM_INFO("all sessions closed; exiting");
    uv_stop(s->loop);
}

/* ---- the tls transport's cover profile ---- */

static void cover_learned(int status, const um_tls_cover_t *cv, void *ud);

static void cover_probe(srv_t *s)
{
    for (int fp = 0; fp <= UM_TLS_FP_MAX; fp++) {
        if (s->probe[fp]) continue;
        s->probe_ctx[fp].s = s;
        s->probe_ctx[fp].fp = fp;
        if (um_tls_probe_start(s->loop, (struct sockaddr *)&s->cover, s->tls->sni, (um_tls_fp_t)fp,
                               5000, cover_learned, &s->probe_ctx[fp], &s->probe[fp]) != 0)
            s->probe[fp] = NULL;
    }
}

static void cover_learned(int status, const um_tls_cover_t *cv, void *ud)
{
    struct cover_ctx *cc = ud;
    srv_t *s = cc->s;
    int fp = cc->fp;
    s->probe[fp] = NULL;
    if (status != 0) {
        UM_WARN("cover for %s: no TLS 1.3 flight learned (%s); answering with the %s profile",
                um_tls_fp_name((um_tls_fp_t)fp), um_strerror(status),
                s->learned[fp] ? "last learned" : "default");
        return;
    }
    um_codec_tls_set_cover(s->tls, (um_tls_fp_t)fp, cv);
    s->learned[fp] = true;
    char recs[64] = "";
    for (size_t i = 0, w = 0; i < cv->n_rec && w < sizeof(recs) - 8; i++)
        w += (size_t)snprintf(recs + w, sizeof(recs) - w, "%s%u", i ? " " : "", cv->rec[i]);
    UM_INFO("cover profile for %s: ServerHello %zu bytes, group %04x, cipher %04x, records %s",
            um_tls_fp_name((um_tls_fp_t)fp), cv->sh_len, cv->group, cv->cipher, recs);
}

static void on_cover_timer(uv_timer_t *t)
{
    cover_probe(t->data);
}

/* ---- port hopping: the listeners of slots s-1, s and s+1 ---- */

static bool hop_wanted(const srv_t *s, uint64_t slot, uint16_t port)
{
    for (int d = -1; d <= 1; d++)
        if (um_hop_port(s->hop_key, slot + (uint64_t)(int64_t)d, s->hop_lo, s->hop_hi) == port)
            return true;
    return false;
}

/* A listen address whose host an earlier one has already (its port aside). */
static bool hop_host_dup(const srv_t *s, size_t h)
{
    for (size_t j = 0; j < h; j++) {
        um_addr_t a = s->cfg.listen[j], b = s->cfg.listen[h];
        a.port = b.port = 0;
        if (um_addr_equal(&a, &b)) return true;
    }
    return false;
}

/* Makes the listeners those of slot-1..slot+1 on every listen host: closes
 * the others (connections they accepted are untouched) and opens the
 * missing ones; a port that cannot be bound is logged and tried again at
 * the next slot. Returns how many listeners are open. */
static size_t hop_sync(srv_t *s, uint64_t slot)
{
    char a[UM_ADDR_STRLEN];
    s->hop_slot = slot;
    for (size_t i = 0; i < s->n_acc;) {
        if (hop_wanted(s, slot, s->hop_port[i])) {
            i++;
            continue;
        }
        UM_DEBUG("hop slot %llu: closing port %u", (unsigned long long)slot,
                 (unsigned)s->hop_port[i]);
        srv_metrics_retire(s, s->acc[i]);
        um_acceptor_close(s->acc[i]);
        s->n_acc--;
        s->acc[i] = s->acc[s->n_acc];
        s->hop_port[i] = s->hop_port[s->n_acc];
        s->hop_host[i] = s->hop_host[s->n_acc];
    }
    for (size_t h = 0; h < s->cfg.n_listen; h++) {
        if (hop_host_dup(s, h)) continue;
        for (int d = -1; d <= 1; d++) {
            uint16_t port =
                um_hop_port(s->hop_key, slot + (uint64_t)(int64_t)d, s->hop_lo, s->hop_hi);
            bool open = false;
            for (size_t i = 0; i < s->n_acc; i++)
                if (s->hop_host[i] == h && s->hop_port[i] == port) open = true;
            if (open || s->n_acc == sizeof(s->acc) / sizeof(s->acc[0])) continue;
            um_addr_t la = s->cfg.listen[h];
            la.port = port;
            struct sockaddr_storage ss;
            socklen_t len;
            um_addr_to_sockaddr(&la, &ss, &len);
            um_addr_format(&la, a, sizeof(a));
            int r = um_acceptor_new(s->loop, (struct sockaddr *)&ss, &s->hop_ac, srv_on_session, s,
                                    &s->acc[s->n_acc]);
            if (r != 0) {
                UM_WARN("port hopping: cannot listen on %s: %s; skipped this slot", a,
                        um_strerror(r));
                continue;
            }
            s->hop_port[s->n_acc] = port;
            s->hop_host[s->n_acc] = (uint8_t)h;
            s->n_acc++;
            UM_DEBUG("hop slot %llu: listening on %s", (unsigned long long)slot, a);
        }
    }
    return s->n_acc;
}

/* At each slot boundary (by the wall clock: both ends count slots from the
 * Unix epoch), a few ms late so the new slot has begun. */
static void on_hop_timer(uv_timer_t *t);

static void hop_arm(srv_t *s)
{
    uint64_t now = um_wall_ms();
    uv_timer_start(&s->hop_timer, on_hop_timer, s->hop_ms - now % s->hop_ms + 5, 0);
}

static void on_hop_timer(uv_timer_t *t)
{
    srv_t *s = t->data;
    if (s->stopping) return;
    uint64_t slot = um_hop_slot(um_wall_ms(), s->hop_ms);
    if (slot != s->hop_slot && hop_sync(s, slot) == 0)
        UM_WARN("port hopping: no port of slot %llu could be bound; trying again next slot",
                (unsigned long long)slot);
    hop_arm(s);
}

static void stop(srv_t *s)
{
    if (s->stopping) {
        UM_WARN("second signal: exiting now");
        uv_stop(s->loop);
        return;
    }
    s->stopping = true;
    um_notify_stopping();
    s->stop_deadline = um_now_ms() + DRAIN_MS + 1000;
    UM_INFO("stopping: no new sessions; %zu session(s) draining (up to %d ms)", s->n_sessions,
            DRAIN_MS);
    for (size_t i = 0; i < s->n_acc; i++)
        um_acceptor_close(s->acc[i]);
    s->n_acc = 0;
    srv_dns_close(s);
    if (s->hop) uv_timer_stop(&s->hop_timer);
    for (srv_sess_t *ss = s->sessions, *nx; ss; ss = nx) {
        nx = ss->next;
        um_tunnel_close(ss->t, true, DRAIN_MS);
    }
    srv_maybe_finish(s);
}

static void reload(srv_t *s)
{
    char err[UM_ERR_MAX];
    srv_reload(s, err, sizeof(err));
}

int srv_reload(srv_t *s, char *err, size_t errlen)
{
    um_config_t nc;
    err[0] = '\0';
    um_config_init(&nc);
    int r = um_config_load(&nc, s->path, err, errlen);
    if (r != 0 || nc.role != UM_ROLE_SERVER) {
        /* A file that loads but holds a client config leaves err untouched. */
        if (r == 0) snprintf(err, errlen, "not a server config");
        UM_ERR("reload failed, keeping the current clients: %s", err);
        um_config_free(&nc);
        return -1;
    }
    um_keyset_t *ks = srv_build_keys(&nc);
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        UM_ERR("reload failed: out of memory");
        um_config_free(&nc);
        return -1;
    }
    for (size_t i = 0; i < s->n_acc; i++)
        um_acceptor_set_keys(s->acc[i], ks);
    um_keyset_unref(s->keys);
    s->keys = ks;
    /* Only the client list (and per-client limits) change on reload. */
    um_peer_client_t *old = s->cfg.clients;
    s->cfg.clients = nc.clients;
    s->cfg.n_clients = nc.n_clients;
    s->cfg.cap_clients = nc.cap_clients;
    nc.clients = old;
    um_config_free(&nc);
    /* Sessions of keys no longer listed end now: a removed key is revoked. */
    size_t closed = 0;
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next)
        if (!srv_find_client(s, ss->client_key) && !um_tunnel_is_down(ss->t)) {
            UM_INFO("session of %s (%s): key removed, closing", ss->name, ss->fp);
            /* srv_on_down unlinks it later */
            um_tunnel_close_code(ss->t, UM_MUX_GOAWAY_REVOKED);
            closed++;
        }
    UM_INFO("reloaded %s: %zu authorised client(s); %zu session(s) kept, %zu closed", s->path,
            s->cfg.n_clients, s->n_sessions - closed, closed);
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_t *s = h->data;
    if (signum == SIGHUP) {
        um_notify_reloading();
        reload(s);
        um_notify_ready("serving %zu authorised client(s)", s->cfg.n_clients);
    } else {
        stop(s);
    }
}

static void on_sweep(uv_timer_t *h)
{
    srv_t *s = h->data;
    uint64_t now = um_now_ms();
    if (s->stopping && now >= s->stop_deadline) {
        UM_WARN("drain time is over; exiting");
        uv_stop(s->loop);
        return;
    }
    for (srv_sess_t *ss = s->sessions, *nx; ss; ss = nx) {
        nx = ss->next;
        for (srv_assoc_t *a = ss->assocs, *an; a; a = an) {
            an = a->next;
            if (now - a->last_ms > ASSOC_IDLE_MS) srv_assoc_free(ss, a);
        }
        if (ss->detached_since && !um_tunnel_is_down(ss->t) &&
            now - ss->detached_since > s->cfg.resume_grace_ms) {
            UM_INFO("session of %s (%s): no resumption within %u ms; closing", ss->name, ss->fp,
                    s->cfg.resume_grace_ms);
            um_tunnel_close(ss->t, false, 0);
            continue;
        }
        um_tunnel_stats_t st;
        um_tunnel_stats(ss->t, &st);
        /* Payload only: keepalives (PING/PONG) are not traffic, or a session
         * would never be idle. */
        uint64_t bytes = st.payload_in + st.payload_out;
        if (st.streams_open > 0 || ss->n_assocs > 0 || bytes != ss->last_bytes) {
            ss->idle_since = now;
            ss->last_bytes = bytes;
        } else if (now - ss->idle_since > (uint64_t)s->cfg.idle_timeout_s * 1000) {
            UM_INFO("session of %s idle for %u s: closing", ss->name, s->cfg.idle_timeout_s);
            um_tunnel_close(ss->t, true, DRAIN_MS);
            ss->idle_since = now;
        }
    }
}

static int resolve_fallback(const um_addr_t *a, struct sockaddr_storage *ss)
{
    socklen_t len;
    if (a->type != UM_ADDR_DOMAIN) return um_addr_to_sockaddr(a, ss, &len);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", a->port);
    if (getaddrinfo(a->u.domain, port, &hints, &res) != 0 || !res) return UM_ENOENT;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int um_run_server(const um_config_t *cfg)
{
    srv_t *s = calloc(1, sizeof(*s));
    int rc = UM_EXIT_RUNTIME;
    char a[UM_ADDR_STRLEN];
    if (!s) return UM_EXIT_RUNTIME;
    um_log_level_t lv = UM_LOG_INFO;
    um_log_level_parse(cfg->log_level, &lv);
    um_log_set_level(lv);
    s->loop = uv_default_loop();
    s->cfg = *cfg;
    /* Own copy of the client list, so SIGHUP can replace it. */
    s->cfg.clients = NULL;
    s->cfg.n_clients = s->cfg.cap_clients = 0;
    if (cfg->n_clients) {
        s->cfg.clients = malloc(cfg->n_clients * sizeof(*cfg->clients));
        if (!s->cfg.clients) goto out;
        memcpy(s->cfg.clients, cfg->clients, cfg->n_clients * sizeof(*cfg->clients));
        s->cfg.n_clients = s->cfg.cap_clients = cfg->n_clients;
    }
    snprintf(s->path, sizeof(s->path), "%s", cfg->path);
    /* A client's share never drops below 16 MiB (nor above the budget);
     * 1 MiB each is kept for clients that arrive while the budget is full. */
    um_membudget_init(&s->mem, (uint64_t)cfg->memory_budget_mib << 20, 16u << 20, 1u << 20);
    s->tcbs = (um_tunnel_cbs_t){.on_opened = srv_on_opened,
                                .on_detached = srv_on_detached,
                                .on_dgram = srv_on_dgram,
                                .on_assoc_closed = srv_on_assoc_closed,
                                .on_down = srv_on_down};
    um_policy_init(&s->policy);
    for (size_t i = 0; i < cfg->n_allow; i++)
        um_policy_allow(&s->policy, &cfg->allow[i]);
    if (um_hostaddr_new(s->loop, &s->policy, &s->hostaddr) != 0) {
        um_cli_error("server", "cannot read this host's addresses (egress policy)");
        goto out;
    }
    if (um_direct_new(s->loop, &s->policy, DIAL_TIMEOUT_MS, &s->direct) != 0) {
        um_cli_error("server", "cannot start the resolver");
        goto out;
    }
    s->keys = srv_build_keys(cfg);
    if (!s->keys) goto out;
    um_acceptor_cfg_t ac;
    memset(&ac, 0, sizeof(ac));
    memcpy(ac.server_priv, cfg->private_key, 32);
    ac.keys = s->keys;
    ac.skew_s = cfg->clock_skew_s;
    ac.replay_entries = cfg->replay_cache;
    ac.probe_min_ms = cfg->probe_delay_min_ms;
    ac.probe_max_ms = cfg->probe_delay_max_ms;
    if (cfg->has_fallback) {
        if (resolve_fallback(&cfg->fallback, &ac.fallback) != 0) {
            um_addr_format(&cfg->fallback, a, sizeof(a));
            um_cli_error("server", "%s: fallback '%s': cannot resolve", cfg->path, a);
            rc = UM_EXIT_CONFIG;
            goto out;
        }
        ac.has_fallback = 1;
    }
    const um_transport_cfg_t *tr = um_config_transport(cfg, cfg->transport);
    if (tr) ac.shape = tr->shape;
    ac.sess.tx_max = UM_TUNNEL_SESS_TX_MAX;
    if (tr && tr->padding == UM_CFG_PAD_RANDOM) {
        ac.sess.pad.mode = UM_PAD_RANDOM;
        ac.sess.pad.max = UM_PAD_RANDOM_MAX;
    }
    if (tr && tr->type == UM_TR_TLS) {
        /* Everything that does not authenticate goes to the cover. */
        if (resolve_fallback(&tr->cover, &s->cover) != 0) {
            um_addr_format(&tr->cover, a, sizeof(a));
            um_cli_error("server", "%s:%d: key 'cover': '%s': cannot resolve", cfg->path,
                         tr->cover_line ? tr->cover_line : tr->line, a);
            rc = UM_EXIT_CONFIG;
            goto out;
        }
        if (cfg->has_fallback)
            UM_WARN("transport 'tls': connections that do not authenticate go to the cover; "
                    "'fallback' is not used");
        memcpy(&ac.fallback, &s->cover, sizeof(s->cover));
        ac.has_fallback = 1;
        s->tls = calloc(1, sizeof(*s->tls));
        if (!s->tls || um_codec_tls_init(s->tls, (um_tls_fp_t)tr->fingerprint, tr->sni) != 0) {
            um_cli_error("server", "%s: transport '%s': cannot set up tls", cfg->path, tr->name);
            goto out;
        }
        ac.codec = &s->tls->base;
        ac.sess.pad.guard_bytes = UM_TLS_GUARD_BYTES;
        ac.sess.pad.guard_idle_ms = UM_TLS_GUARD_IDLE_MS;
    }
    if (tr && tr->type == UM_TR_WS) {
        /* Plain HTTP behind the front; a request that is not ours gets a
         * 404 (or the fallback, when one is set). */
        s->ws = calloc(1, sizeof(*s->ws));
        if (!s->ws ||
            um_codec_ws_init(s->ws, tr->ws_path, "", UM_HS_MSG1_MIN, UM_HS_MSG2_RESUME_MIN) != 0) {
            um_cli_error("server", "%s: transport '%s': cannot set up ws", cfg->path, tr->name);
            goto out;
        }
        ac.codec = &s->ws->base;
        if (tr->cert_file[0]) {
            if (srv_ws_tls_load(cfg, tr, &s->ws_tls) != 0) {
                rc = UM_EXIT_CONFIG;
                goto out;
            }
            ac.tls = s->ws_tls;
        }
    }
    um_gate_cfg_t gc = {.max_preauth = cfg->max_preauth,
                        .per_source = cfg->preauth_per_source,
                        .v4_prefix = (uint8_t)cfg->preauth_prefix_v4,
                        .v6_prefix = (uint8_t)cfg->preauth_prefix_v6,
                        .key_hs_per_min = cfg->client_handshakes_per_min};
    /* Every held pre-auth connection costs a descriptor (two when spliced to
     * the fallback): stay well inside the descriptor limit. */
    struct rlimit nofile;
    uint64_t held = 4ull * (cfg->max_preauth ? cfg->max_preauth : 1024);
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        nofile.rlim_cur > 512 && (nofile.rlim_cur - 256) / 2 < held)
        held = (nofile.rlim_cur - 256) / 2;
    gc.max_held = (uint32_t)held;
    if (um_gate_new(ac.server_priv, ac.keys, ac.skew_s, ac.replay_entries, ac.disable_aes, &gc,
                    &s->gate) != 0) {
        um_cli_error("server", "out of memory");
        sodium_memzero(ac.server_priv, sizeof(ac.server_priv));
        goto out;
    }
    ac.gate = s->gate;
    if (tr && tr->hop_lo && tr->type == UM_TR_TCP) {
        /* Port hopping: the listen addresses give the hosts; the ports come
         * from the slots. */
        uint8_t pub[32];
        um_key_public(pub, cfg->private_key);
        um_hop_key(pub, s->hop_key);
        s->hop = true;
        s->hop_lo = tr->hop_lo;
        s->hop_hi = tr->hop_hi;
        s->hop_ms = tr->hop_ms ? tr->hop_ms : UM_HOP_DEFAULT_MS;
        s->hop_ac = ac;
        sodium_memzero(s->hop_ac.server_priv, sizeof(s->hop_ac.server_priv));
        if (hop_sync(s, um_hop_slot(um_wall_ms(), s->hop_ms)) == 0) {
            um_cli_error("server", "port hopping: cannot listen on any port of %u-%u",
                         (unsigned)s->hop_lo, (unsigned)s->hop_hi);
            sodium_memzero(ac.server_priv, sizeof(ac.server_priv));
            goto out;
        }
        char d[16];
        um_format_duration(d, sizeof(d), s->hop_ms);
        for (size_t i = 0; i < cfg->n_listen; i++) {
            if (hop_host_dup(s, i)) continue;
            um_addr_t h = cfg->listen[i];
            h.port = 0;
            um_addr_format(&h, a, sizeof(a));
            char *colon = strrchr(a, ':');
            if (colon) *colon = '\0'; /* the host alone */
            UM_INFO("listening on %s, ports %u-%u hopping every %s (tcp transport)", a,
                    (unsigned)s->hop_lo, (unsigned)s->hop_hi, d);
        }
        uv_timer_init(s->loop, &s->hop_timer);
        s->hop_timer.data = s;
        hop_arm(s);
    }
    if (tr && tr->type == UM_TR_DNS && srv_dns_listen(s, &ac, tr) != 0) {
        sodium_memzero(ac.server_priv, sizeof(ac.server_priv));
        goto out;
    }
    for (size_t i = 0; !s->hop && !s->n_dns && i < cfg->n_listen; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        um_addr_to_sockaddr(&cfg->listen[i], &ss, &len);
        um_addr_format(&cfg->listen[i], a, sizeof(a));
        int r = um_acceptor_new(s->loop, (struct sockaddr *)&ss, &ac, srv_on_session, s,
                                &s->acc[s->n_acc]);
        if (r != 0) {
            um_cli_error("server", "cannot listen on %s: %s", a, um_strerror(r));
            sodium_memzero(ac.server_priv, sizeof(ac.server_priv));
            goto out;
        }
        s->n_acc++;
        UM_INFO("listening on %s (%s transport)", a,
                s->tls      ? "tls"
                : s->ws_tls ? "ws, with its own TLS"
                : s->ws     ? "ws"
                            : "tcp");
    }
    if (s->tls) {
        um_addr_format(&tr->cover, a, sizeof(a));
        UM_INFO("tls: cover %s, sni %s; learning the cover's answers", a, s->tls->sni);
        uv_timer_init(s->loop, &s->cover_timer);
        s->cover_timer.data = s;
        uv_timer_start(&s->cover_timer, on_cover_timer, 0, COVER_REFRESH_MS);
    }
    sodium_memzero(ac.server_priv, sizeof(ac.server_priv));
    uv_signal_init(s->loop, &s->sig_term);
    uv_signal_init(s->loop, &s->sig_int);
    uv_signal_init(s->loop, &s->sig_hup);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
    uv_timer_init(s->loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    srv_mgmt_start(s);
    if (srv_metrics_start(s) != 0) {
        rc = UM_EXIT_CONFIG;
        goto out;
    }
    char fp[9];
    uint8_t pub[32];
    um_key_public(pub, cfg->private_key);
    um_log_fingerprint(pub, fp);
    UM_INFO("umbra %s server up: key %s, %zu authorised client(s), %zu egress allow rule(s)",
            UMBRA_VERSION, fp, cfg->n_clients, cfg->n_allow);
    um_listserve_check(cfg->server_list);
    um_notify_ready("serving %zu authorised client(s)", cfg->n_clients);
    uv_run(s->loop, UV_RUN_DEFAULT);
    rc = UM_EXIT_OK;
out:
    /* Tear down whatever is left, then let libuv run the close callbacks. */
    for (size_t i = 0; i < s->n_acc; i++)
        um_acceptor_close(s->acc[i]);
    srv_dns_close(s);
    /* on_down comes on a later turn of the loop (tunnel.h): close them all,
     * then turn the loop until every one has gone (bounded). */
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next)
        um_tunnel_close(ss->t, false, 0);
    for (int i = 0; s->sessions && i < 1000; i++)
        uv_run(s->loop, UV_RUN_NOWAIT);
    srv_mgmt_stop(s);
    srv_metrics_stop(s);
    um_direct_free(s->direct);
    um_hostaddr_free(s->hostaddr);
    for (int i = 0; i <= UM_TLS_FP_MAX; i++)
        um_tls_probe_cancel(s->probe[i]);
    uv_walk(s->loop, close_walk, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_loop_close(s->loop);
    um_gate_unref(s->gate);
    um_keyset_unref(s->keys);
    um_policy_close(&s->policy);
    free(s->tls);
    free(s->ws);
    um_ossl_ctx_unref(s->ws_tls);
    sodium_memzero(s->hop_key, sizeof(s->hop_key));
    sodium_memzero(s->cfg.private_key, sizeof(s->cfg.private_key));
    free(s->cfg.clients);
    free(s);
    return rc;
}
