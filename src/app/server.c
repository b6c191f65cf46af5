/* The server engine behind 'umbra server': acceptors on every listen
 * address, one tunnel per authenticated session, streams relayed to their
 * destinations through the direct connector (egress policy, async resolver,
 * happy eyeballs), datagram associations relayed through UDP sockets.
 * SIGTERM/SIGINT: stop accepting, let streams drain (bounded), exit.
 * SIGHUP: reload the authorised clients without dropping sessions. */
#include "app/server_int.h"

const um_peer_client_t *srv_find_client(const srv_t *s, const uint8_t key[32])
{
    for (size_t i = 0; i < s->cfg.n_clients; i++)
        if (sodium_memcmp(s->cfg.clients[i].public_key, key, 32) == 0) return &s->cfg.clients[i];
    return NULL;
}

um_keyset_t *srv_build_keys(const um_config_t *cfg)
{
    um_keyset_t *ks = um_keyset_new();
    if (!ks) return NULL;
    for (size_t i = 0; i < cfg->n_clients; i++)
        if (um_keyset_add(ks, cfg->clients[i].public_key) != 0) {
            um_keyset_unref(ks);
            return NULL;
        }
    return ks;
}

/* ---- streams ---- */

static void relay_unlink(srv_relay_t *sr)
{
    srv_sess_t *ss = sr->ss;
    if (sr->prev)
        sr->prev->next = sr->next;
    else
        ss->relays = sr->next;
    if (sr->next) sr->next->prev = sr->prev;
    free(sr);
}

static void relay_end(um_relay_t *r, uint64_t up, uint64_t down, void *ud)
{
    (void)r;
    srv_relay_t *sr = ud;
    char a[UM_ADDR_STRLEN];
    if (um_log_get_level() >= UM_LOG_DEBUG) {
        um_addr_format(&sr->dst, a, sizeof(a));
        UM_DEBUG("stream %u of %s to %s closed: %llu bytes up, %llu down", sr->id, sr->ss->name, a,
                 (unsigned long long)up, (unsigned long long)down);
    }
    relay_unlink(sr);
}

static void dial_done(um_relay_t *r, int side, int result, void *ud)
{
    srv_relay_t *sr = ud;
    srv_sess_t *ss = sr->ss;
    (void)side;
    if (result == UM_CONN_OK) {
        um_conn_t *m = NULL;
        if (um_tunnel_accept(ss->t, sr->id, &um_relay_cbs_a, r, &m) == 0) {
            um_tunnel_t *t = ss->t;
            sr->active = true;
            um_relay_start(r, m, sr->d);
            sr->d = NULL;
            /* The early data to the destination and OPEN_RESULT onto the
             * carrier in this turn (the connect's callback, which runs
             * nothing after us), not from the tunnel's next idle turn. */
            um_tunnel_flush(t);
            return;
        }
        result = UM_CONN_GENERAL_FAILURE;
    }
    if (um_log_get_level() >= UM_LOG_DEBUG) {
        char a[UM_ADDR_STRLEN];
        um_addr_format(&sr->dst, a, sizeof(a));
        UM_DEBUG("stream %u of %s to %s: %s", sr->id, ss->name, a, um_conn_result_str(result));
    }
    if (result == UM_CONN_NOT_ALLOWED) ss->srv->m_refused_policy++;
    ss->srv->m_refused++;
    um_tunnel_refuse(ss->t, sr->id, result);
    um_conn_close(sr->d);
    um_relay_discard(r);
    relay_unlink(sr);
}

/* The destination's first bytes (a response's head) onto the carrier in the
 * turn they were read, ahead of the tunnel's next idle turn; later reads
 * are batched by the pump as before. */
static void relay_first(um_relay_t *r, int side, void *ud)
{
    srv_relay_t *sr = ud;
    (void)r;
    if (side == 1) um_tunnel_flush(sr->ss->t);
}

void srv_on_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
{
    srv_sess_t *ss = ud;
    srv_t *s = ss->srv;
    /* list.umbra.internal:1 is answered here, never dialed. */
    if (um_listserve_opened(s->loop, s->cfg.server_list, t, id, dst)) return;
    srv_relay_t *sr = calloc(1, sizeof(*sr));
    um_relay_t *r = sr ? um_relay_alloc(s->loop, dial_done, relay_end, sr) : NULL;
    if (!r) {
        free(sr);
        um_tunnel_refuse(t, id, UM_CONN_GENERAL_FAILURE);
        return;
    }
    sr->ss = ss;
    sr->r = r;
    um_relay_set_first(r, relay_first);
    sr->id = id;
    sr->dst = *dst;
    int rc =
        um_conn_open(um_direct_connector(ss->egress), dst, NULL, 0, &um_relay_cbs_b, r, &sr->d);
    if (rc != 0) {
        um_relay_discard(r);
        free(sr);
        um_tunnel_refuse(t, id, UM_CONN_GENERAL_FAILURE);
        return;
    }
    sr->next = ss->relays;
    if (ss->relays) ss->relays->prev = sr;
    ss->relays = sr;
}

/* ---- datagrams ---- */

static void assoc_recv(void *arg, const um_addr_t *src, const uint8_t *p, size_t n)
{
    srv_assoc_t *a = arg;
    a->last_ms = um_now_ms();
    um_tunnel_dgram_send(a->ss->t, a->id, src, p, n);
}

void srv_assoc_free(srv_sess_t *ss, srv_assoc_t *a)
{
    for (srv_assoc_t **pp = &ss->assocs; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    um_assoc_close(a->d);
    ss->n_assocs--;
    free(a);
}

void srv_on_dgram(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, const uint8_t *p, size_t n,
                  void *ud)
{
    srv_sess_t *ss = ud;
    (void)t;
    srv_assoc_t *a = ss->assocs;
    while (a && a->id != id)
        a = a->next;
    if (!a) {
        if (ss->n_assocs >= MAX_ASSOCS) return;
        a = calloc(1, sizeof(*a));
        if (!a) return;
        a->ss = ss;
        a->id = id;
        if (um_assoc_open(um_direct_connector(ss->egress), assoc_recv, a, &a->d) != 0) {
            free(a);
            return;
        }
        a->next = ss->assocs;
        ss->assocs = a;
        ss->n_assocs++;
    }
    a->last_ms = um_now_ms();
    um_assoc_send(a->d, dst, p, n); /* dropped when refused: that is UDP */
}

void srv_on_assoc_closed(um_tunnel_t *t, uint32_t id, void *ud)
{
    srv_sess_t *ss = ud;
    (void)t;
    for (srv_assoc_t *a = ss->assocs; a; a = a->next)
        if (a->id == id) {
            srv_assoc_free(ss, a);
            return;
        }
}

/* ---- sessions ---- */

void srv_on_down(um_tunnel_t *t, int err, void *ud)
{
    srv_sess_t *ss = ud;
    srv_t *s = ss->srv;
    um_tunnel_stats_t st;
    um_tunnel_stats(t, &st);
    srv_mgmt_session_down(ss);
    UM_INFO("session of %s (%s) down: %s; %llu bytes in, %llu out, %llu streams (%llu with "
            "early data)",
            ss->name, ss->fp, err == UM_EPIPE ? "closed" : um_strerror(err),
            (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
            (unsigned long long)st.streams_opened, (unsigned long long)st.streams_early);
    /* Streams still dialing have no tunnel to answer to any more. */
    while (ss->relays) {
        srv_relay_t *sr = ss->relays;
        if (sr->active) {
            um_relay_abort(sr->r); /* unlinks itself through relay_end */
            continue;
        }
        um_conn_close(sr->d);
        um_relay_discard(sr->r);
        relay_unlink(sr);
    }
    while (ss->assocs)
        srv_assoc_free(ss, ss->assocs);
    um_gate_del_resumable(s->gate, &ss->res);
    sodium_memzero(&ss->res, sizeof(ss->res));
    um_direct_free(ss->egress);
    um_memacct_unref(ss->mem); /* the mux keeps its own reference until it is freed */
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        s->sessions = ss->next;
    if (ss->next) ss->next->prev = ss->prev;
    s->n_sessions--;
    sodium_memzero(ss->client_key, sizeof(ss->client_key));
    free(ss);
    srv_maybe_finish(s);
}

/* The session's connection broke: it waits resume-grace for its client.
 * At most resumable-per-client of one client wait at once: the one waiting
 * longest goes. */
void srv_on_detached(um_tunnel_t *t, int err, void *ud)
{
    srv_sess_t *ss = ud;
    srv_t *s = ss->srv;
    (void)t;
    ss->detached_since = um_now_ms();
    UM_DEBUG("session of %s (%s): connection lost (%s); waiting %u ms for the client", ss->name,
             ss->fp, um_strerror(err), s->cfg.resume_grace_ms);
    size_t waiting = 0;
    srv_sess_t *oldest = NULL;
    for (srv_sess_t *o = s->sessions; o; o = o->next)
        if (o->detached_since && !um_tunnel_is_down(o->t) &&
            sodium_memcmp(o->client_key, ss->client_key, 32) == 0) {
            waiting++;
            if (!oldest || o->detached_since < oldest->detached_since) oldest = o;
        }
    if (waiting > s->cfg.resumable_per_client && oldest) {
        UM_INFO("session of %s (%s): too many waiting to resume; dropping the oldest", ss->name,
                ss->fp);
        um_tunnel_close(oldest->t, false, 0);
    }
}

/* A flight continued this session (session/gate.h): move it onto the new
 * connection. */
static void on_resumed(um_resumable_t *e, um_carrier_t *car, const uint8_t *rest, size_t n,
                       uint32_t budget, size_t wire)
{
    srv_sess_t *ss = (srv_sess_t *)((char *)e - offsetof(srv_sess_t, res));
    bool was = ss->detached_since == 0;
    if (!car) {
        um_tunnel_detach(ss->t);
        if (!ss->detached_since) ss->detached_since = um_now_ms();
        return;
    }
    int r = um_tunnel_attach(ss->t, car, rest, n, wire, budget, 0);
    if (r != 0) {
        /* The session has keys its old connection cannot follow: over. */
        um_carrier_close(car);
        um_tunnel_close(ss->t, false, 0);
        return;
    }
    ss->detached_since = 0;
    ss->resumptions++;
    UM_DEBUG("session of %s (%s) %s (%llu so far)", ss->name, ss->fp,
             was ? "moved to a new connection" : "resumed", (unsigned long long)ss->resumptions);
}

void srv_on_session(um_acceptor_t *acc, um_sess_t *sess, um_carrier_t *conn,
                    const uint8_t client_static[32], const um_accept_info_t *info, void *ud)
{
    srv_t *s = ud;
    (void)acc;
    const um_peer_client_t *pc = srv_find_client(s, client_static);
    bool resumable = s->cfg.resume_grace_ms > 0;
    char fp[9];
    um_log_fingerprint(client_static, fp);
    uint32_t max_sessions =
        pc && pc->max_sessions ? pc->max_sessions : s->cfg.max_sessions_per_client;
    size_t have = 0;
    srv_sess_t *sib = NULL;
    for (srv_sess_t *o = s->sessions; o; o = o->next)
        if (sodium_memcmp(o->client_key, client_static, 32) == 0) {
            have++;
            sib = o;
        }
    if (!s->stopping && have >= max_sessions) {
        /* A session waiting for a client that came back with a new one is
         * the first to go. */
        srv_sess_t *oldest = NULL;
        for (srv_sess_t *o = s->sessions; o; o = o->next)
            if (o->detached_since && !um_tunnel_is_down(o->t) &&
                sodium_memcmp(o->client_key, client_static, 32) == 0 &&
                (!oldest || o->detached_since < oldest->detached_since))
                oldest = o;
        if (oldest) {
            um_tunnel_close(oldest->t, false, 0);
            have--;
        }
    }
    if (s->stopping || have >= max_sessions) {
        UM_WARN("session of %s (%s) refused: %s", pc ? pc->name : "?", fp,
                s->stopping ? "shutting down" : "too many sessions for this client");
        s->m_sessions_refused++;
        um_sess_free(sess);
        um_carrier_close(conn);
        return;
    }
    srv_sess_t *ss = calloc(1, sizeof(*ss));
    if (ss && sib) ss->egress = um_direct_ref(sib->egress);
    if (ss && !sib && um_direct_client_new(s->direct, &ss->egress) != 0) {
        free(ss);
        ss = NULL;
    }
    if (ss) {
        ss->mem =
            sib ? sib->mem : um_memacct_new(&s->mem, (uint64_t)s->cfg.client_memory_mib << 20);
        if (sib)
            um_memacct_ref(ss->mem);
        else if (!ss->mem) {
            um_direct_free(ss->egress);
            free(ss);
            ss = NULL;
        }
    }
    if (!ss) {
        um_sess_free(sess);
        um_carrier_close(conn);
        return;
    }
    ss->srv = s;
    memcpy(ss->client_key, client_static, 32);
    snprintf(ss->name, sizeof(ss->name), "%s", pc ? pc->name : "(removed client)");
    memcpy(ss->fp, fp, sizeof(fp));
    ss->idle_since = um_now_ms();
    um_mux_config_t mc;
    um_mux_config_default(&mc);
    mc.max_streams = pc && pc->max_streams ? pc->max_streams : s->cfg.max_streams;
    mc.max_pending_opens = mc.max_streams; /* a browser opens many at once; dials are async */
    mc.ping_interval_ms = 15000;
    /* Resumable: a silent connection is let go by the tunnel (stall), and
     * the session waits for the next; the mux never times out itself. */
    mc.ping_timeout_ms = resumable ? 0 : 60000;
    mc.stream_timeout_ms = s->cfg.stream_timeout_s * 1000;
    mc.mem = ss->mem;
    if (um_tunnel_new(s->loop, sess, conn, UM_MUX_SERVER, &mc, &s->tcbs, ss, &ss->t) != 0) {
        um_sess_free(sess);
        um_carrier_close(conn);
        um_direct_free(ss->egress);
        um_memacct_unref(ss->mem);
        free(ss);
        return;
    }
    const um_transport_cfg_t *tr = um_config_transport(&s->cfg, s->cfg.transport);
    if (tr && tr->timing == UM_CFG_TIMING_JITTER) {
        um_tunnel_timing_t tm;
        um_tunnel_timing_default(&tm, UM_TUNNEL_TIMING_JITTER);
        um_tunnel_set_timing(ss->t, &tm);
    }
    um_tunnel_set_budget(ss->t, info->budget, 0, info->wire);
    if (resumable) {
        um_tunnel_set_resumable(ss->t, 60000);
        memcpy(ss->res.sid, um_sess_id(sess), UM_SID_LEN);
        memcpy(ss->res.client, client_static, 32);
        ss->res.sess = sess;
        ss->res.attach = on_resumed;
        um_gate_add_resumable(s->gate, &ss->res);
    }
    ss->next = s->sessions;
    if (s->sessions) s->sessions->prev = ss;
    s->sessions = ss;
    s->n_sessions++;
    s->m_sessions_total++;
    UM_INFO("session %llu of %s (%s) up", (unsigned long long)(s->next_sess_id + 1), ss->name, fp);
    srv_mgmt_session_up(ss); /* over quota or expired: it ends at once, saying why */
}
