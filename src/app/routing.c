/* The client's routing: config -> compiled rules -> router, and SIGHUP
 * reloads (see routing.h). */
#include "app/routing.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/notify.h"
#include "exit/direct.h"
#include "exit/policy.h"
#include "proxy/geoip.h"
#include "proxy/rules.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"

#define RULES_FILE_MAX (64u << 20)

struct um_routing {
    uv_loop_t *loop;
    const um_config_t *cfg;
    um_events_t *ev;
    um_policy_t policy; /* the direct connector's: everything (the user asked for direct) */
    um_direct_t *direct;
    um_router_t *router;
    uv_signal_t sig_hup;
    uint64_t reloads;
};

bool um_routing_wanted(const um_config_t *cfg)
{
    return cfg->n_rules || cfg->n_rules_files || cfg->default_route != UM_RULE_TUNNEL;
}

static int read_file(const char *path, char **out, size_t *n, char *err, size_t errlen)
{
    return um_file_read(path, RULES_FILE_MAX, out, n, err, errlen);
}

int um_routing_build(const um_config_t *cfg, um_rules_t **out, char *err, size_t errlen)
{
    um_rule_list_t l;
    um_rule_list_init(&l);
    um_geoip_t *geo = NULL;
    int r = 0;
    char why[160];
    for (size_t i = 0; r == 0 && i < cfg->n_rules; i++) {
        um_rule_t ru;
        if ((r = um_rule_parse(&ru, cfg->rules[i], strlen(cfg->rules[i]), why, sizeof(why))) != 0) {
            if (cfg->rule_lines[i])
                snprintf(err, errlen, "%s:%d: key 'rule': '%s': %s", cfg->path, cfg->rule_lines[i],
                         cfg->rules[i], why);
            else
                snprintf(err, errlen, "--rule '%s': %s", cfg->rules[i], why);
        } else if ((r = um_rule_list_add(&l, &ru)) != 0) {
            snprintf(err, errlen, "rules: out of memory");
        }
    }
    for (size_t i = 0; r == 0 && i < cfg->n_rules_files; i++) {
        char *text = NULL;
        size_t n = 0;
        if ((r = read_file(cfg->rules_files[i], &text, &n, err, errlen)) == 0)
            r = um_rules_file_parse(&l, cfg->rules_files[i], text ? text : "", n, err, errlen);
        free(text);
    }
    if (r == 0 && cfg->n_geoip_files) {
        if ((r = um_geoip_new(&geo)) != 0) snprintf(err, errlen, "geoip: out of memory");
        for (size_t i = 0; r == 0 && i < cfg->n_geoip_files; i++)
            r = um_geoip_load(geo, cfg->geoip_files[i], err, errlen);
        if (r == 0 && (r = um_geoip_finish(geo, why, sizeof(why))) != 0)
            snprintf(err, errlen, "%s: %s", cfg->geoip_files[0], why);
    }
    if (r == 0) {
        r = um_rules_compile(l.v, l.n, cfg->default_route, geo, out, why, sizeof(why));
        geo = NULL; /* taken */
        if (r != 0) snprintf(err, errlen, "rules: %s", why);
    }
    um_geoip_free(geo);
    um_rule_list_free(&l);
    return r;
}

static void describe(const um_rules_t *rs, const char *what)
{
    const um_geoip_t *g = um_rules_geoip(rs);
    UM_INFO("routing rules %s: %zu rule(s), default %s, GeoIP %zu range(s) + %zu MaxMind file(s)",
            what, um_rules_count(rs), um_rule_action_name(um_rules_default(rs)),
            g ? um_geoip_ranges(g) : 0, g ? um_geoip_mmdb_files(g) : 0);
}

int um_routing_reload(um_routing_t *rt)
{
    char err[UM_ERR_MAX];
    um_rules_t *rs = NULL;
    int r = um_routing_build(rt->cfg, &rs, err, sizeof(err));
    if (rt->ev) {
        um_ev_begin(rt->ev, "rules_reloaded");
        um_ev_str(rt->ev, "result", r == 0 ? "ok" : "error");
        if (r != 0) um_ev_str(rt->ev, "error", err);
        if (r == 0) um_ev_int(rt->ev, "rules", (int64_t)um_rules_count(rs));
        um_ev_end(rt->ev);
    }
    if (r != 0) {
        UM_WARN("routing rules not reloaded (the old ones stay): %s", err);
        return r;
    }
    rt->reloads++;
    describe(rs, "reloaded");
    um_router_set_rules(rt->router, rs);
    return 0;
}

static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    um_notify_reloading(); /* systemd: ExecReload sends SIGHUP (app/notify.h) */
    um_routing_reload(h->data);
    um_notify_ready(NULL);
}

int um_routing_new(uv_loop_t *loop, const um_config_t *cfg, um_conn_provider_t tunnel,
                   um_events_t *ev, um_routing_t **out, char *err, size_t errlen)
{
    um_routing_t *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return UM_ENOMEM;
    }
    rt->loop = loop;
    rt->cfg = cfg;
    rt->ev = ev;
    um_policy_init(&rt->policy);
    um_rules_t *rs = NULL;
    int r = um_routing_build(cfg, &rs, err, errlen);
    if (r == 0 && ((r = um_policy_allow_str(&rt->policy, "0.0.0.0/0", NULL, 0)) != 0 ||
                   (r = um_policy_allow_str(&rt->policy, "::/0", NULL, 0)) != 0))
        snprintf(err, errlen, "out of memory");
    if (r == 0 && (r = um_direct_new(loop, &rt->policy, 0, &rt->direct)) != 0)
        snprintf(err, errlen, "direct connector: %s", um_strerror(r));
    if (r == 0) {
        r = um_router_new(loop, tunnel, um_direct_connector(rt->direct), rs, &rt->router);
        rs = NULL;
        if (r != 0) snprintf(err, errlen, "out of memory");
    }
    if (r != 0) {
        um_rules_free(rs);
        um_direct_free(rt->direct);
        um_policy_close(&rt->policy);
        free(rt);
        return r;
    }
    describe(um_router_rules(rt->router), "loaded");
    uv_signal_init(loop, &rt->sig_hup);
    rt->sig_hup.data = rt;
    uv_signal_start(&rt->sig_hup, on_hup, SIGHUP);
    *out = rt;
    return 0;
}

void um_routing_bind_device(um_routing_t *rt, const char *ifname)
{
    um_direct_set_device(rt->direct, ifname);
    if (ifname && *ifname) UM_INFO("direct connections leave through %s", ifname);
}

void um_routing_vpn(um_routing_t *rt, const char *dev, bool own_routes)
{
    if (dev && *dev) {
        um_routing_bind_device(rt, dev);
    } else if (own_routes) {
        UM_WARN("routing rules: no interface outside the TUN found; what the rules send direct "
                "is refused (it would loop into the TUN)");
        um_router_refuse_direct(rt->router, true);
    }
}

um_conn_provider_t um_routing_connector(um_routing_t *rt)
{
    return um_router_connector(rt->router);
}

void um_routing_stats(const um_routing_t *rt, um_router_stats_t *out)
{
    um_router_stats(rt->router, out);
}

static void sig_closed(uv_handle_t *h)
{
    free(h->data);
}

void um_routing_free(um_routing_t *rt)
{
    if (!rt) return;
    um_router_free(rt->router);
    um_direct_free(rt->direct); /* closes its resolver's handles now, before any walk */
    um_policy_close(&rt->policy);
    uv_signal_stop(&rt->sig_hup);
    uv_close((uv_handle_t *)&rt->sig_hup, sig_closed);
}
