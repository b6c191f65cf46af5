/* The routing connector (see router.h). Tunnel and direct opens go straight
 * to the chosen provider, whose stream the caller then drives itself (the
 * router adds nothing to the data path); a refusal is a small stream of our
 * own that reports UM_CONN_NOT_ALLOWED on a later loop turn. */
#include "proxy/router.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dnsmap.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

struct um_router {
    uv_loop_t *loop;
    um_conn_provider_t tunnel, direct;
    um_rules_t *rules;
    um_router_stats_t st;
    um_ratelimit_t rl;
    um_dnsmap_t *names; /* addresses' names from DNS answers seen; made on first use */
    bool refuse_direct;
};

/* ---- refused streams ---- */

typedef struct {
    um_conn_t base; /* first */
    uv_timer_t timer;
    const um_conn_cbs_t *cbs;
    void *arg;
    bool fired, closed;
} refused_t;

static void refused_freed(uv_handle_t *h)
{
    free(h->data);
}

static void refused_fire(uv_timer_t *t)
{
    refused_t *c = t->data;
    c->fired = true;
    if (!c->closed) c->cbs->on_open(c->arg, UM_CONN_NOT_ALLOWED);
}

static int rf_write(um_conn_t *c, const uint8_t *p, size_t n)
{
    return ((refused_t *)c)->fired ? UM_EPIPE : UM_EAGAIN;
}

static size_t rf_queued(um_conn_t *c)
{
    return 0;
}

static int rf_nop(um_conn_t *c)
{
    return 0;
}

static int rf_shutdown(um_conn_t *c)
{
    return UM_EPIPE;
}

static void rf_close(um_conn_t *uc)
{
    refused_t *c = (refused_t *)uc;
    if (c->closed) return;
    c->closed = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, refused_freed);
}

static const um_conn_ops_t refused_ops = {
    .name = "block",
    .write = rf_write,
    .queued = rf_queued,
    .read_start = rf_nop,
    .read_stop = rf_nop,
    .shutdown = rf_shutdown,
    .close = rf_close,
};

static int refuse(um_router_t *r, const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    refused_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    c->base.ops = &refused_ops;
    c->cbs = cbs;
    c->arg = arg;
    if (uv_timer_init(r->loop, &c->timer) != 0) {
        free(c);
        return UM_EIO;
    }
    c->timer.data = c;
    uv_timer_start(&c->timer, refused_fire, 0, 0);
    *out = &c->base;
    return 0;
}

/* name (UM_DOMAIN_MAX + 1 bytes): the learnt name of an IP destination,
 * "" when none. */
static uint8_t decide(um_router_t *r, const um_addr_t *dst, char *name)
{
    size_t idx, nl = 0;
    uint8_t a;
    name[0] = 0;
    if (!r->rules) return UM_RULE_TUNNEL;
    if (dst->type != UM_ADDR_DOMAIN &&
        um_dnsmap_get(r->names, dst, um_now_ms(), name, UM_DOMAIN_MAX + 1, &nl)) {
        r->st.named++;
        a = um_rules_match_named(r->rules, dst, name, nl, &idx);
    } else {
        a = um_rules_match(r->rules, dst, &idx);
    }
    if (a == UM_RULE_DIRECT && r->refuse_direct) a = UM_RULE_BLOCK;
    if (um_log_get_level() >= UM_LOG_DEBUG) {
        char s[UM_ADDR_STRLEN];
        um_addr_format(dst, s, sizeof(s));
        if (idx == UM_RULE_NONE)
            UM_DEBUG("route %s%s%s: %s (default)", s, nl ? " = " : "", nl ? name : "",
                     um_rule_action_name(a));
        else
            UM_DEBUG("route %s%s%s: %s (rule %zu)", s, nl ? " = " : "", nl ? name : "",
                     um_rule_action_name(a), idx + 1);
    }
    return a;
}

static int r_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                  const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    um_router_t *r = ctx;
    if (!r || !dst || !cbs || !out) return UM_EINVAL;
    char name[UM_DOMAIN_MAX + 1];
    uint8_t a = decide(r, dst, name);
    r->st.opens[a]++;
    if (a == UM_RULE_BLOCK) {
        char s[UM_ADDR_STRLEN];
        um_addr_format(dst, s, sizeof(s));
        um_log_limited(&r->rl, 10, 1000, UM_LOG_INFO, "route %s%s%s%s: blocked by a rule", s,
                       name[0] ? " (" : "", name, name[0] ? ")" : "");
        return refuse(r, cbs, arg, out);
    }
    return um_conn_open(a == UM_RULE_DIRECT ? r->direct : r->tunnel, dst, early, n, cbs, arg, out);
}

/* Fast open asks before its early reply: a block is known now. */
static int r_verdict(void *ctx, const um_addr_t *dst)
{
    um_router_t *r = ctx;
    if (!r || !dst) return UM_CONN_OK;
    char name[UM_DOMAIN_MAX + 1];
    if (decide(r, dst, name) != UM_RULE_BLOCK) return UM_CONN_OK;
    r->st.opens[UM_RULE_BLOCK]++;
    char s[UM_ADDR_STRLEN];
    um_addr_format(dst, s, sizeof(s));
    um_log_limited(&r->rl, 10, 1000, UM_LOG_INFO, "route %s%s%s%s: blocked by a rule", s,
                   name[0] ? " (" : "", name, name[0] ? ")" : "");
    return UM_CONN_NOT_ALLOWED;
}

/* ---- associations ---- */

typedef struct {
    um_assoc_t base; /* first */
    um_router_t *r;
    um_assoc_recv_cb cb;
    void *arg;
    um_assoc_t *sub[2]; /* [0] tunnel, [1] direct; opened on first use */
} rassoc_t;

static void sub_recv(void *arg, const um_addr_t *src, const uint8_t *p, size_t n)
{
    rassoc_t *a = arg;
    if (src->port == 53) { /* a DNS answer: learn the names of its addresses */
        if (!a->r->names && um_dnsmap_new(&a->r->names) != 0) a->r->names = NULL;
        if (a->r->names && um_dnsmap_learn(a->r->names, p, n, um_now_ms()) > 0) a->r->st.learnt++;
    }
    a->cb(a->arg, src, p, n);
}

static int ra_send(um_assoc_t *ua, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    rassoc_t *a = (rassoc_t *)ua;
    char name[UM_DOMAIN_MAX + 1];
    uint8_t act = decide(a->r, dst, name);
    a->r->st.datagrams[act]++;
    if (act == UM_RULE_BLOCK) return UM_EACCES;
    int k = act == UM_RULE_DIRECT;
    if (!a->sub[k]) {
        int rc = um_assoc_open(k ? a->r->direct : a->r->tunnel, sub_recv, a, &a->sub[k]);
        if (rc != 0) {
            a->sub[k] = NULL;
            return rc;
        }
    }
    return um_assoc_send(a->sub[k], dst, p, n);
}

static void ra_close(um_assoc_t *ua)
{
    rassoc_t *a = (rassoc_t *)ua;
    um_assoc_close(a->sub[0]);
    um_assoc_close(a->sub[1]);
    free(a);
}

static const um_assoc_ops_t rassoc_ops = {.send = ra_send, .close = ra_close};

static int r_assoc_open(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out)
{
    um_router_t *r = ctx;
    if (!r || !cb || !out) return UM_EINVAL;
    rassoc_t *a = calloc(1, sizeof(*a));
    if (!a) return UM_ENOMEM;
    a->base.ops = &rassoc_ops;
    a->r = r;
    a->cb = cb;
    a->arg = arg;
    *out = &a->base;
    return 0;
}

static const um_connector_ops_t router_ops = {
    .name = "router",
    .open = r_open,
    .assoc_open = r_assoc_open,
    .verdict = r_verdict,
};

int um_router_new(uv_loop_t *loop, um_conn_provider_t tunnel, um_conn_provider_t direct,
                  um_rules_t *rules, um_router_t **out)
{
    um_router_t *r = calloc(1, sizeof(*r));
    if (!r) {
        um_rules_free(rules);
        return UM_ENOMEM;
    }
    r->loop = loop;
    r->tunnel = tunnel;
    r->direct = direct;
    r->rules = rules;
    *out = r;
    return 0;
}

void um_router_free(um_router_t *r)
{
    if (!r) return;
    um_rules_free(r->rules);
    um_dnsmap_free(r->names);
    free(r);
}

void um_router_set_rules(um_router_t *r, um_rules_t *rules)
{
    um_rules_free(r->rules);
    r->rules = rules;
}

const um_rules_t *um_router_rules(const um_router_t *r)
{
    return r->rules;
}

void um_router_refuse_direct(um_router_t *r, bool refuse)
{
    r->refuse_direct = refuse;
}

void um_router_stats(const um_router_t *r, um_router_stats_t *out)
{
    *out = r->st;
}

um_conn_provider_t um_router_connector(um_router_t *r)
{
    um_conn_provider_t p = {&router_ops, r};
    return p;
}
