/* Racing a new session (docs/internals/racing.md) and the remembered dial
 * parameters (app/dialstate.h), for the client engine (app/client.c). */
#include <string.h>

#include "app/client_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* Racing (docs/CONFIG.md, race): a candidate that failed is dialed after
 * the others for DEMOTE_MIN_MS, doubling per consecutive failure up to
 * DEMOTE_MAX_MS. */
#define DEMOTE_MIN_MS 1000
#define DEMOTE_MAX_MS 60000

/* ---------------------------------------------------------------- racing
 * A new session (none yet, or the last one was dropped) is raced over the
 * candidates, every address of every [server] section (docs/CONFIG.md,
 * race): the best is dialed first, the next one race-stagger later (or at
 * once when one fails) until `race` are in flight; the first that
 * authenticates is kept and the others are cancelled. A continuation of a
 * session (c->t) dials only its own server, through c->conn. */

static uint32_t race_width(const cli_t *c)
{
    uint32_t w = c->cfg->race;
    return w < 1 ? 1 : w > UM_RACE_MAX ? UM_RACE_MAX : w;
}

static const char *tr_section(const um_peer_server_t *s)
{
    return s->transport[0] ? s->transport : "-";
}

/* Should candidate a be dialed before b? Not demoted before demoted (the
 * sooner its demotion ends, the sooner), then the remembered one, then by
 * weight, then by measured handshake time (measured before unknown), then
 * in config order. */
static bool better(const cli_t *c, size_t a, size_t b, uint64_t now)
{
    const cand_t *x = &c->cands[a], *y = &c->cands[b];
    bool dx = x->demoted_until > now, dy = y->demoted_until > now;
    if (dx != dy) return dy;
    if (dx && x->demoted_until != y->demoted_until) return x->demoted_until < y->demoted_until;
    if (c->remembered == (long)a || c->remembered == (long)b) return c->remembered == (long)a;
    uint32_t wx = c->cfg->servers[x->server].weight, wy = c->cfg->servers[y->server].weight;
    if (wx != wy) return wx > wy;
    if ((x->rtt_ms != 0) != (y->rtt_ms != 0)) return x->rtt_ms != 0;
    return x->rtt_ms < y->rtt_ms;
}

static void on_stagger(uv_timer_t *h);

static void arm_stagger(cli_t *c)
{
    uv_timer_stop(&c->stagger);
    if (c->racing && c->next_order < c->n_order)
        uv_timer_start(&c->stagger, on_stagger, c->cfg->race_stagger_ms, 0);
}

static void racer_cancel(racer_t *r)
{
    if (r->conn) um_connector_cancel(r->conn);
    if (r->rq) um_resolve_cancel(r->rq);
    r->conn = NULL;
    r->rq = NULL;
    r->busy = false;
}

void cli_race_cancel_all(cli_t *c)
{
    for (size_t i = 0; i < UM_RACE_MAX; i++)
        if (c->racers[i].busy) racer_cancel(&c->racers[i]);
    c->n_racing = 0;
    c->racing = false;
    uv_timer_stop(&c->stagger);
}

/* The racer's candidate becomes the current server (cur_server,
 * cli_start_handshake and the events read it there). */
static const um_peer_server_t *racer_select(cli_t *c, const racer_t *r)
{
    c->server = c->cands[r->cand].server;
    c->addr = c->cands[r->cand].addr;
    return cur_server(c);
}

static int race_handshake(cli_t *c, racer_t *r, const um_addr_t *ip)
{
    racer_select(c, r);
    r->sync_err = 0;
    c->dialing = r;
    cli_start_handshake(c, ip);
    c->dialing = NULL;
    if (r->sync_err) return r->sync_err;
    memcpy(r->cur, c->cur, sizeof(r->cur));
    r->budget = c->conn_budget;
    r->hop_slot = c->hop_slot;
    return 0;
}

/* A candidate failed: it is demoted (exponential backoff), its slot freed. */
static void race_failed(cli_t *c, racer_t *r, int err)
{
    cand_t *k = &c->cands[r->cand];
    k->fails++;
    uint64_t d = (uint64_t)DEMOTE_MIN_MS << (k->fails > 7 ? 6 : k->fails - 1);
    k->demoted_until = um_now_ms() + (d > DEMOTE_MAX_MS ? DEMOTE_MAX_MS : d);
    um_log_limited(&c->rl_connect, 1, 1000, UM_LOG_WARN, "cannot reach %s: %s", r->cur,
                   um_strerror(err));
    um_ev_begin(&c->ev, "error");
    um_ev_str(&c->ev, "what", "connect");
    um_ev_str(&c->ev, "server", c->cfg->servers[k->server].name);
    um_ev_str(&c->ev, "address", r->cur);
    um_ev_str(&c->ev, "reason", um_strerror(err));
    um_ev_end(&c->ev);
    r->busy = false;
    r->conn = NULL;
    r->rq = NULL;
    c->n_racing--;
}

static void on_race_resolved(void *arg, int status, const um_addr_t *addrs, size_t n);

/* Starts the next candidates in order until one is under way (those that
 * fail at once are passed over); the round ends when none is left. */
static void race_launch(cli_t *c)
{
    while (c->racing && c->next_order < c->n_order && c->n_racing < race_width(c)) {
        racer_t *r = NULL;
        for (size_t i = 0; i < UM_RACE_MAX && !r; i++)
            if (!c->racers[i].busy) r = &c->racers[i];
        if (!r) break;
        memset(r, 0, sizeof(*r));
        r->c = c;
        r->busy = true;
        r->cand = c->order[c->next_order++];
        c->n_racing++;
        const um_peer_server_t *s = racer_select(c, r);
        const um_addr_t *a = &s->addrs[c->addr];
        const um_transport_cfg_t *tr = um_config_transport(c->cfg, s->transport);
        um_addr_format(a, r->cur, sizeof(r->cur));
        r->t_start = um_now_ms();
        um_ev_begin(&c->ev, "dial");
        um_ev_str(&c->ev, "server", s->name);
        um_ev_str(&c->ev, "address", r->cur);
        um_ev_str(&c->ev, "transport", um_tr_type_name(tr ? tr->type : UM_TR_TCP));
        um_ev_str(&c->ev, "why",
                  c->remembered == (long)r->cand ? "remembered"
                  : c->attempt                   ? "retry"
                                                 : "race");
        um_ev_end(&c->ev);
        UM_DEBUG("dialing %s (%s)", r->cur, s->name);
        int err;
        if (a->type != UM_ADDR_DOMAIN) {
            err = race_handshake(c, r, a);
        } else {
            err = um_resolver_query(c->resolver, a->u.domain, a->port, on_race_resolved, r, &r->rq);
            if (err != 0) r->rq = NULL;
        }
        if (err == 0) {
            arm_stagger(c);
            return;
        }
        race_failed(c, r, err);
    }
    if (c->racing && c->n_racing == 0 && c->next_order >= c->n_order) {
        /* Every candidate failed: the next round after the backoff. */
        c->racing = false;
        uv_timer_stop(&c->stagger);
        c->attempt++;
        cli_schedule_retry(c);
    }
}

static void on_stagger(uv_timer_t *h)
{
    race_launch(h->data);
}

static void on_race_resolved(void *arg, int status, const um_addr_t *addrs, size_t n)
{
    racer_t *r = arg;
    cli_t *c = r->c;
    r->rq = NULL;
    int err = status != 0 ? status : n == 0 ? UM_ENOENT : 0;
    if (err == 0) err = race_handshake(c, r, &addrs[c->attempt % n]);
    if (err != 0) {
        UM_WARN("cannot resolve %s: %s", r->cur, um_strerror(err));
        race_failed(c, r, err);
        race_launch(c);
    }
}

void cli_on_race_connected(um_connector_t *cn, int status, um_sess_t *s, um_carrier_t *conn,
                           void *ud)
{
    racer_t *r = ud;
    cli_t *c = r->c;
    r->conn = NULL;
    if (status != 0) {
        race_failed(c, r, status);
        race_launch(c);
        return;
    }
    /* The first to authenticate: the others are closed, the session made. */
    cand_t *k = &c->cands[r->cand];
    r->busy = false;
    cli_race_cancel_all(c);
    racer_select(c, r);
    memcpy(c->cur, r->cur, sizeof(c->cur));
    c->t_start = r->t_start;
    c->conn_budget = r->budget;
    c->hop_slot = r->hop_slot;
    uint64_t ms = um_now_ms() - r->t_start;
    k->rtt_ms = ms == 0 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    k->fails = 0;
    k->demoted_until = 0;
    cli_on_connected(cn, 0, s, conn, c);
}

void cli_race_round(cli_t *c)
{
    uint64_t now = um_now_ms();
    c->n_order = c->next_order = 0;
    for (size_t i = 0; i < c->cfg->n_servers && i < UM_CFG_MAX_SERVERS; i++)
        for (size_t j = 0; j < c->cfg->servers[i].n_addrs && j < UM_CFG_MAX_ADDRS; j++) {
            if (um_bridge_is_bridge(c->cfg, i)) break; /* a bridge is never an exit */
            size_t k = i * UM_CFG_MAX_ADDRS + j, p = c->n_order++;
            c->cands[k].server = (uint16_t)i;
            c->cands[k].addr = (uint16_t)j;
            while (p > 0 && better(c, k, c->order[p - 1], now)) {
                c->order[p] = c->order[p - 1];
                p--;
            }
            c->order[p] = (uint16_t)k;
        }
    if (c->n_order == 0) return;
    c->racing = true;
    race_launch(c);
}

/* ---------------------------------------------------------------- remembered dial parameters */

/* Reads the state file; the remembered candidate, if it is still one of
 * ours (same name, key, address and transport) and young enough. */
void cli_state_init(cli_t *c)
{
    const um_config_t *cfg = c->cfg;
    char err[256];
    c->remembered = -1;
    if (!cfg->remember_ms) return;
    if (cfg->state_file[0]) {
        snprintf(c->state_path, sizeof(c->state_path), "%s", cfg->state_file);
    } else if (um_dialstate_default_path(c->state_path, sizeof(c->state_path)) != 0) {
        c->state_path[0] = 0;
        UM_DEBUG("no state file: neither XDG_STATE_HOME nor HOME is an absolute path");
        return;
    }
    int r = um_dialstate_load(c->state_path, &c->state, err, sizeof(err));
    if (r == UM_ENOENT) return;
    if (r != 0) {
        UM_WARN("state file %s: %s; ignored (rewritten at the next session)", c->state_path, err);
        memset(&c->state, 0, sizeof(c->state));
        return;
    }
    if (!c->state.has_remembered) return;
    const um_dial_rec_t *m = &c->state.remembered;
    uint64_t now_s = um_wall_ms() / 1000;
    if (m->at_s > now_s + 60 || (now_s > m->at_s && (now_s - m->at_s) * 1000 >= cfg->remember_ms)) {
        UM_DEBUG("remembered dial parameters of %s are too old", m->server);
        return;
    }
    char fp[UM_DIALSTATE_FP_LEN + 1], a[UM_ADDR_STRLEN];
    for (size_t i = 0; i < cfg->n_servers && i < UM_CFG_MAX_SERVERS; i++) {
        const um_peer_server_t *s = &cfg->servers[i];
        if (strcmp(s->name, m->server) != 0 || strcmp(tr_section(s), m->transport) != 0) continue;
        um_dialstate_key_fp(s->public_key, fp);
        if (strcmp(fp, m->key_fp) != 0) continue;
        for (size_t j = 0; j < s->n_addrs && j < UM_CFG_MAX_ADDRS; j++) {
            um_addr_format(&s->addrs[j], a, sizeof(a));
            if (strcmp(a, m->address) != 0) continue;
            c->remembered = (long)(i * UM_CFG_MAX_ADDRS + j);
            UM_INFO("remembered: server %s at %s (%llu s ago) is dialed first", s->name, a,
                    (unsigned long long)(now_s > m->at_s ? now_s - m->at_s : 0));
            return;
        }
    }
    UM_DEBUG("remembered server %s at %s is not in the config (or its key changed)", m->server,
             m->address);
}

/* A new session is up: remember how it was reached. */
void cli_remember_dial(cli_t *c)
{
    if (!c->state_path[0]) return;
    const um_peer_server_t *s = cur_server(c);
    size_t j = c->addr % s->n_addrs;
    um_dial_rec_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.server, sizeof(m.server), "%s", s->name);
    um_dialstate_key_fp(s->public_key, m.key_fp);
    um_addr_format(&s->addrs[j], m.address, sizeof(m.address));
    snprintf(m.transport, sizeof(m.transport), "%s", tr_section(s));
    m.at_s = um_wall_ms() / 1000;
    if (!um_dial_rec_valid(&m)) {
        UM_DEBUG("server %s: not remembered (its name has spaces or control characters)", s->name);
        return;
    }
    c->state.has_remembered = true;
    c->state.remembered = m;
    c->remembered = (long)((c->server % c->cfg->n_servers) * UM_CFG_MAX_ADDRS + j);
    char err[256];
    if (um_dialstate_save(c->state_path, &c->state, err, sizeof(err)) != 0)
        UM_WARN("state file %s: %s", c->state_path, err);
}
