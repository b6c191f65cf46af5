/* The server engine behind 'umbra server': acceptors on every listen
 * address, one tunnel per authenticated session, streams relayed to their
 * destinations through the direct connector (egress policy, async resolver,
 * happy eyeballs), datagram associations relayed through UDP sockets.
 * SIGTERM/SIGINT: stop accepting, let streams drain (bounded), exit.
 * SIGHUP: reload the authorised clients without dropping sessions. */
#include <netdb.h>
#include <sys/resource.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/cli.h"
#include "app/config.h"
#include "app/listserve.h"
#include "tunnel/relay.h"
#include "app/run.h"
#include "tunnel/tunnel.h"
#include "crypto/keys.h"
#include "exit/direct.h"
#include "exit/hostaddr.h"
#include "exit/policy.h"
#include "session/acceptor.h"
#include "session/keyset.h"
#include "transport/codec_tls.h"
#include "transport/hop.h"
#include "transport/tls_probe.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define DRAIN_MS        5000
#define SWEEP_MS        1000
#define ASSOC_IDLE_MS   120000
#define MAX_ASSOCS      256
#define DIAL_TIMEOUT_MS 10000

typedef struct srv srv_t;
typedef struct srv_sess srv_sess_t;

typedef struct srv_relay {
    srv_sess_t *ss;
    um_relay_t *r;
    uint32_t id;
    um_conn_t *d; /* the destination side while dialing */
    bool active;
    um_addr_t dst;
    struct srv_relay *prev, *next;
} srv_relay_t;

typedef struct srv_assoc {
    srv_sess_t *ss;
    uint32_t id;
    um_assoc_t *d;
    uint64_t last_ms;
    struct srv_assoc *next;
} srv_assoc_t;

struct srv_sess {
    srv_t *srv;
    um_tunnel_t *t;
    uint8_t client_key[32];
    char name[UM_NAME_MAX + 1];
    char fp[9];
    um_direct_t *egress; /* this client's connector (shared by its sessions) */
    um_memacct_t *mem;   /* this client's memory account (shared by its sessions) */
    srv_relay_t *relays;
    srv_assoc_t *assocs;
    size_t n_assocs;
    uint64_t idle_since, last_bytes;
    um_resumable_t res;      /* listed in the gate while the session may be continued */
    uint64_t detached_since; /* its connection broke at (0: it has one) */
    uint64_t resumptions;
    srv_sess_t *prev, *next;
};

struct srv {
    uv_loop_t *loop;
    um_config_t cfg; /* the running config (reloaded on SIGHUP) */
    char path[UM_PATH_MAX];
    /* The acceptors: one per listen address, or with port hopping one per
     * live port of each listen host (hop_port/hop_host say which). */
    um_acceptor_t *acc[UM_CFG_MAX_LISTEN * 3];
    size_t n_acc;
    /* Port hopping (docs/PROTOCOL.md 2.3), when the transport has ports:
     * the key, the range, the slot length, the slot the listeners are for,
     * the acceptor config to open new ones with (server_priv wiped: the
     * shared gate holds the key), and the timer of the slot boundaries. */
    bool hop;
    uint8_t hop_key[32];
    uint16_t hop_lo, hop_hi;
    uint32_t hop_ms;
    uint64_t hop_slot;
    uint16_t hop_port[UM_CFG_MAX_LISTEN * 3];
    uint8_t hop_host[UM_CFG_MAX_LISTEN * 3]; /* index into cfg.listen */
    um_acceptor_cfg_t hop_ac;
    uv_timer_t hop_timer;
    um_gate_t *gate; /* admission state shared by every acceptor */
    um_keyset_t *keys;
    um_policy_t policy;
    um_hostaddr_t *hostaddr; /* keeps the host's own addresses in policy */
    um_direct_t *direct;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sweep;
    srv_sess_t *sessions;
    size_t n_sessions;
    bool stopping;
    uint64_t stop_deadline;
    um_tunnel_cbs_t tcbs;
    /* The tls transport: its codec (cover profiles learned from the cover
     * at start and every COVER_REFRESH_MS), the cover's address. */
    um_codec_tls_t *tls;
    struct sockaddr_storage cover;
    uv_timer_t cover_timer;
    um_tls_probe_t *probe[UM_TLS_FP_MAX + 1];
    struct cover_ctx {
        srv_t *s;
        int fp;
    } probe_ctx[UM_TLS_FP_MAX + 1];
    bool learned[UM_TLS_FP_MAX + 1]; /* a profile came from the cover (else the default) */
    um_membudget_t mem;              /* buffered stream bytes, every client together */
};

#define COVER_REFRESH_MS (3600u * 1000u)

static const um_peer_client_t *find_client(const srv_t *s, const uint8_t key[32])
{
    for (size_t i = 0; i < s->cfg.n_clients; i++)
        if (sodium_memcmp(s->cfg.clients[i].public_key, key, 32) == 0) return &s->cfg.clients[i];
    return NULL;
}

static um_keyset_t *build_keys(const um_config_t *cfg)
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
            sr->active = true;
            um_relay_start(r, m, sr->d);
            sr->d = NULL;
            return;
        }
        result = UM_CONN_GENERAL_FAILURE;
    }
    if (um_log_get_level() >= UM_LOG_DEBUG) {
        char a[UM_ADDR_STRLEN];
        um_addr_format(&sr->dst, a, sizeof(a));
        UM_DEBUG("stream %u of %s to %s: %s", sr->id, ss->name, a, um_conn_result_str(result));
    }
    um_tunnel_refuse(ss->t, sr->id, result);
    um_conn_close(sr->d);
    um_relay_discard(r);
    relay_unlink(sr);
}

static void on_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
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

static void assoc_free(srv_sess_t *ss, srv_assoc_t *a)
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

static void on_dgram(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, const uint8_t *p, size_t n,
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

static void on_assoc_closed(um_tunnel_t *t, uint32_t id, void *ud)
{
    srv_sess_t *ss = ud;
    (void)t;
    for (srv_assoc_t *a = ss->assocs; a; a = a->next)
        if (a->id == id) {
            assoc_free(ss, a);
            return;
        }
}

/* ---- sessions ---- */

static void maybe_finish(srv_t *s);

static void on_down(um_tunnel_t *t, int err, void *ud)
{
    srv_sess_t *ss = ud;
    srv_t *s = ss->srv;
    um_tunnel_stats_t st;
    um_tunnel_stats(t, &st);
    UM_INFO("session of %s (%s) down: %s; %llu bytes in, %llu out, %llu streams", ss->name, ss->fp,
            err == UM_EPIPE ? "closed" : um_strerror(err), (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out, (unsigned long long)st.streams_opened);
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
        assoc_free(ss, ss->assocs);
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
    maybe_finish(s);
}

/* The session's connection broke: it waits resume-grace for its client.
 * At most resumable-per-client of one client wait at once: the one waiting
 * longest goes. */
static void on_detached(um_tunnel_t *t, int err, void *ud)
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

static void on_session(um_acceptor_t *acc, um_sess_t *sess, um_carrier_t *conn,
                       const uint8_t client_static[32], const um_accept_info_t *info, void *ud)
{
    srv_t *s = ud;
    (void)acc;
    const um_peer_client_t *pc = find_client(s, client_static);
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
    UM_INFO("session of %s (%s) up", ss->name, fp);
}

/* ---- signals, sweeping, shutdown ---- */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void maybe_finish(srv_t *s)
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
            int r = um_acceptor_new(s->loop, (struct sockaddr *)&ss, &s->hop_ac, on_session, s,
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
    s->stop_deadline = um_now_ms() + DRAIN_MS + 1000;
    UM_INFO("stopping: no new sessions; %zu session(s) draining (up to %d ms)", s->n_sessions,
            DRAIN_MS);
    for (size_t i = 0; i < s->n_acc; i++)
        um_acceptor_close(s->acc[i]);
    s->n_acc = 0;
    if (s->hop) uv_timer_stop(&s->hop_timer);
    for (srv_sess_t *ss = s->sessions, *nx; ss; ss = nx) {
        nx = ss->next;
        um_tunnel_close(ss->t, true, DRAIN_MS);
    }
    maybe_finish(s);
}

static void reload(srv_t *s)
{
    um_config_t nc;
    char err[UM_ERR_MAX] = "";
    um_config_init(&nc);
    int r = um_config_load(&nc, s->path, err, sizeof(err));
    if (r != 0 || nc.role != UM_ROLE_SERVER) {
        /* A file that loads but holds a client config leaves err untouched. */
        UM_ERR("reload failed, keeping the current clients: %s",
               r != 0 ? err : "not a server config");
        um_config_free(&nc);
        return;
    }
    um_keyset_t *ks = build_keys(&nc);
    if (!ks) {
        UM_ERR("reload failed: out of memory");
        um_config_free(&nc);
        return;
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
        if (!find_client(s, ss->client_key) && !um_tunnel_is_down(ss->t)) {
            UM_INFO("session of %s (%s): key removed, closing", ss->name, ss->fp);
            um_tunnel_close(ss->t, false, 0); /* on_down unlinks it later */
            closed++;
        }
    UM_INFO("reloaded %s: %zu authorised client(s); %zu session(s) kept, %zu closed", s->path,
            s->cfg.n_clients, s->n_sessions - closed, closed);
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_t *s = h->data;
    if (signum == SIGHUP)
        reload(s);
    else
        stop(s);
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
            if (now - a->last_ms > ASSOC_IDLE_MS) assoc_free(ss, a);
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
    s->tcbs = (um_tunnel_cbs_t){.on_opened = on_opened,
                                .on_detached = on_detached,
                                .on_dgram = on_dgram,
                                .on_assoc_closed = on_assoc_closed,
                                .on_down = on_down};
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
    s->keys = build_keys(cfg);
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
    for (size_t i = 0; !s->hop && i < cfg->n_listen; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        um_addr_to_sockaddr(&cfg->listen[i], &ss, &len);
        um_addr_format(&cfg->listen[i], a, sizeof(a));
        int r =
            um_acceptor_new(s->loop, (struct sockaddr *)&ss, &ac, on_session, s, &s->acc[s->n_acc]);
        if (r != 0) {
            um_cli_error("server", "cannot listen on %s: %s", a, um_strerror(r));
            sodium_memzero(ac.server_priv, sizeof(ac.server_priv));
            goto out;
        }
        s->n_acc++;
        UM_INFO("listening on %s (%s transport)", a, s->tls ? "tls" : "tcp");
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
    char fp[9];
    uint8_t pub[32];
    um_key_public(pub, cfg->private_key);
    um_log_fingerprint(pub, fp);
    UM_INFO("umbra %s server up: key %s, %zu authorised client(s), %zu egress allow rule(s)",
            UMBRA_VERSION, fp, cfg->n_clients, cfg->n_allow);
    um_listserve_check(cfg->server_list);
    uv_run(s->loop, UV_RUN_DEFAULT);
    rc = UM_EXIT_OK;
out:
    /* Tear down whatever is left, then let libuv run the close callbacks. */
    for (size_t i = 0; i < s->n_acc; i++)
        um_acceptor_close(s->acc[i]);
    /* on_down comes on a later turn of the loop (tunnel.h): close them all,
     * then turn the loop until every one has gone (bounded). */
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next)
        um_tunnel_close(ss->t, false, 0);
    for (int i = 0; s->sessions && i < 1000; i++)
        uv_run(s->loop, UV_RUN_NOWAIT);
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
    sodium_memzero(s->hop_key, sizeof(s->hop_key));
    sodium_memzero(s->cfg.private_key, sizeof(s->cfg.private_key));
    free(s->cfg.clients);
    free(s);
    return rc;
}
