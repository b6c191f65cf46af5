/* Configuration parser: libinih does the INI syntax; this file does the
 * meaning. Line numbers come from our own reader (Debian's libinih does not
 * pass them to the handler): it counts lines as it hands them to inih, and
 * it sees every section header first, so sections without keys still count.
 * Values (sizes, durations, names, forwards) are parsed in config_values.c,
 * the transport and routing-rule keys in config_keys.c, the whole-file
 * checks in config_check.c.
 * See config.h for the format and docs/CONFIG.md for every key. */
#include "app/config.h"
#include "app/config_int.h"
#include "app/control.h"
#include "app/mgmt.h"

#include <errno.h>
#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "crypto/keys.h"
#include "proxy/rules.h"
#include "util/b64.h"
#include "util/err.h"
#include "util/log.h"

#define LINE_MAX_CHARS 190 /* below libinih's 200-byte line buffer */

typedef enum {
    SEC_NONE,
    SEC_SERVER,
    SEC_CLIENT,
    SEC_PEER_SERVER,
    SEC_PEER_CLIENT,
    SEC_TRANSPORT
} sec_t;

/* Keys that may appear more than once in a section. */
static const char *const repeatable[] = {"listen",     "allow",      "address",
                                         "forward",    "list-url",   "rule",
                                         "rules-file", "geoip-file", "header"};

typedef struct {
    um_config_t *c;
    const char *text;
    size_t n, pos;
    int line;
    sec_t sec;
    size_t sec_index;
    char seen[32][24]; /* keys seen in the current section, for duplicates */
    size_t n_seen;
    char err[UM_ERR_MAX];
    int err_line;
} parser_t;

void um_config_init(um_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->log_level, sizeof(c->log_level), "info");
    c->clock_skew_s = 120;
    c->replay_cache = 65536;
    c->probe_delay_min_ms = 15000;
    c->probe_delay_max_ms = 45000;
    c->max_sessions_per_client = 8;
    c->max_streams = 1024;
    c->idle_timeout_s = 300;
    c->memory_budget_mib = 256;
    c->keepalive_s = 15;
    c->stream_timeout_s = 60;
    c->resume_grace_ms = UM_RESUME_GRACE_DEF_MS;
    c->resumable_per_client = UM_RESUMABLE_DEF;
    c->fast_open = true;
    um_cfg_ifaddr_parse(&c->tun_addr4, "10.233.0.1/30", NULL, 0);
    um_cfg_ifaddr_parse(&c->tun_addr6, "fd75:6d62:7261::1/64", NULL, 0);
    c->has_tun_addr6 = true;
    c->tun_mtu = 9000; /* flows end at the local stack: no path MTU applies (docs/CONFIG.md) */
    c->tun_dns = true;
    c->tun_routes = true;
    c->tun_fd = -1;
    c->race = UM_RACE_DEF;
    c->race_stagger_ms = UM_RACE_STAGGER_DEF_MS;
    c->remember_ms = UM_REMEMBER_DEF_MS;
}

void um_config_free(um_config_t *c)
{
    sodium_memzero(c->private_key, sizeof(c->private_key));
    sodium_memzero(c->socks_pass, sizeof(c->socks_pass));
    um_upstream_cfg_wipe(&c->upstream);
    free(c->clients);
    c->clients = NULL;
    c->n_clients = c->cap_clients = 0;
}

static void perr(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(parser_t *p, const char *fmt, ...)
{
    if (p->err_line) return; /* keep the first error */
    va_list ap;
    va_start(ap, fmt);
    char msg[UM_ERR_MAX - 64];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, sizeof(p->err), "%s:%d: %s", p->c->path, p->line, msg);
    p->err_line = p->line;
}

/* ---- sections ---- */

static int find_transport(const um_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_transports; i++)
        if (strcmp(c->transports[i].name, name) == 0) return (int)i;
    return -1;
}

const um_transport_cfg_t *um_config_transport(const um_config_t *c, const char *name)
{
    static const um_transport_cfg_t builtin = {.name = "tcp"};
    if (!name || !*name || strcmp(name, "tcp") == 0) {
        int i = name && *name ? find_transport(c, name) : -1;
        return i >= 0 ? &c->transports[i] : &builtin;
    }
    int i = find_transport(c, name);
    return i >= 0 ? &c->transports[i] : NULL;
}

static bool set_role(parser_t *p, um_role_t role)
{
    um_config_t *c = p->c;
    if (c->role != UM_ROLE_NONE && c->role != role) {
        perr(p,
             "a file is either a server config ([server], [client \"name\"]) or a client "
             "config ([client], [server \"name\"]), not both (see line %d)",
             c->role_line);
        return false;
    }
    if (c->role == UM_ROLE_NONE) {
        c->role = role;
        c->role_line = p->line;
    }
    return true;
}

/* Checks a new [kind "name"] against the n entries of an array (stride bytes
 * each, the name and the line at the given offsets) and against the limit. */
static bool check_new_section(parser_t *p, const char *kind, const char *name, const void *arr,
                              size_t n, size_t stride, size_t name_off, size_t line_off, size_t max)
{
    for (size_t k = 0; k < n; k++) {
        const char *e = (const char *)arr + k * stride;
        if (strcmp(e + name_off, name) == 0) {
            int line;
            memcpy(&line, e + line_off, sizeof(line));
            perr(p, "duplicate section [%s \"%s\"] (first at line %d)", kind, name, line);
            return false;
        }
    }
    if (n >= max) {
        perr(p, "too many [%s] sections (at most %zu)", kind, max);
        return false;
    }
    return true;
}

/* Parses the text between '[' and ']'. */
static void on_section(parser_t *p, const char *s, size_t n)
{
    char word[16], name[UM_NAME_MAX + 2];
    size_t i = 0, w = 0;
    um_config_t *c = p->c;
    p->n_seen = 0;
    p->sec = SEC_NONE;
    while (i < n && s[i] != ' ' && s[i] != '\t' && w < sizeof(word) - 1)
        word[w++] = s[i++];
    word[w] = '\0';
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    bool named = i < n;
    name[0] = '\0';
    if (named) {
        size_t len = n - i;
        if (len < 2 || s[i] != '"' || s[n - 1] != '"' || len - 2 > UM_NAME_MAX) {
            perr(p,
                 "section [%.*s]: a name must be quoted, e.g. [client \"laptop\"], and at most "
                 "63 characters",
                 (int)n, s);
            return;
        }
        memcpy(name, s + i + 1, len - 2);
        name[len - 2] = '\0';
        if (!um_name_valid(name)) {
            perr(p, "section [%.*s]: name '%s' may use only letters, digits, '-', '_' and '.'",
                 (int)n, s, name);
            return;
        }
    }
    if (strcmp(word, "server") == 0 && !named) {
        if (!set_role(p, UM_ROLE_SERVER)) return;
        p->sec = SEC_SERVER;
    } else if (strcmp(word, "client") == 0 && !named) {
        if (!set_role(p, UM_ROLE_CLIENT)) return;
        p->sec = SEC_CLIENT;
    } else if (strcmp(word, "client") == 0) {
        if (!set_role(p, UM_ROLE_SERVER) ||
            !check_new_section(p, "client", name, c->clients, c->n_clients, sizeof(*c->clients),
                               offsetof(um_peer_client_t, name), offsetof(um_peer_client_t, line),
                               UM_CFG_MAX_CLIENTS))
            return;
        if (c->n_clients == c->cap_clients) {
            size_t cap = c->cap_clients ? c->cap_clients * 2 : 16;
            um_peer_client_t *nc = realloc(c->clients, cap * sizeof(*nc));
            if (!nc) {
                perr(p, "out of memory");
                return;
            }
            c->clients = nc;
            c->cap_clients = cap;
        }
        um_peer_client_t *pc = &c->clients[c->n_clients];
        memset(pc, 0, sizeof(*pc));
        snprintf(pc->name, sizeof(pc->name), "%s", name);
        pc->line = p->line;
        p->sec_index = c->n_clients++;
        p->sec = SEC_PEER_CLIENT;
    } else if (strcmp(word, "server") == 0) {
        if (!set_role(p, UM_ROLE_CLIENT) ||
            !check_new_section(p, "server", name, c->servers, c->n_servers, sizeof(*c->servers),
                               offsetof(um_peer_server_t, name), offsetof(um_peer_server_t, line),
                               UM_CFG_MAX_SERVERS))
            return;
        um_peer_server_t *ps = &c->servers[c->n_servers];
        memset(ps, 0, sizeof(*ps));
        snprintf(ps->name, sizeof(ps->name), "%s", name);
        ps->weight = 1;
        ps->max_connections = UM_MAX_CONNECTIONS_DEF;
        ps->line = p->line;
        p->sec_index = c->n_servers++;
        p->sec = SEC_PEER_SERVER;
    } else if (strcmp(word, "transport") == 0 && named) {
        if (!check_new_section(p, "transport", name, c->transports, c->n_transports,
                               sizeof(*c->transports), offsetof(um_transport_cfg_t, name),
                               offsetof(um_transport_cfg_t, line), UM_CFG_MAX_TRANSPORTS))
            return;
        um_transport_cfg_t *t = &c->transports[c->n_transports];
        memset(t, 0, sizeof(*t));
        snprintf(t->name, sizeof(t->name), "%s", name);
        t->line = p->line;
        p->sec_index = c->n_transports++;
        p->sec = SEC_TRANSPORT;
    } else if (strcmp(word, "transport") == 0) {
        perr(p, "section [transport] needs a name, e.g. [transport \"main\"]");
    } else {
        perr(p,
             "unknown section [%.*s] (expected [server], [client], [server \"name\"], "
             "[client \"name\"] or [transport \"name\"])",
             (int)n, s);
    }
}

/* ---- keys ---- */

static bool key_is(const char *name, const char *k)
{
    return strcmp(name, k) == 0;
}

static bool parse_addr_key(parser_t *p, const char *key, const char *v, um_addr_t *out,
                           bool ip_only)
{
    char why[128];
    if (um_addr_parse(out, v, strlen(v), 0, why, sizeof(why)) != 0) {
        perr(p, "key '%s': '%s': %s (expected host:port, e.g. 127.0.0.1:1080 or [::1]:443)", key, v,
             why);
        return false;
    }
    if (ip_only && out->type == UM_ADDR_DOMAIN) {
        perr(p, "key '%s': '%s': expected an IP address and port to listen on", key, v);
        return false;
    }
    return true;
}

static bool parse_num_key(parser_t *p, const char *key, const char *v, uint32_t *out, uint32_t min,
                          uint32_t max)
{
    if (um_parse_u32(out, v, min, max) != 0) {
        perr(p, "key '%s': '%s': expected a whole number from %u to %u", key, v, min, max);
        return false;
    }
    return true;
}

static bool parse_key_key(parser_t *p, const char *key, const char *v, uint8_t out[32], bool secret)
{
    if (um_key_from_b64(out, v, strlen(v)) != 0) {
        if (secret)
            perr(p,
                 "key '%s': expected a 44-character base64 X25519 key (from 'umbra genkey'); "
                 "value not shown",
                 key);
        else
            perr(p, "key '%s': '%s': expected a 44-character base64 X25519 public key", key, v);
        return false;
    }
    return true;
}

static bool own_key(parser_t *p, const char *name, const char *v)
{
    um_config_t *c = p->c;
    if (key_is(name, "private-key") || key_is(name, "private-key-file")) {
        if (c->has_private_key || c->private_key_file[0]) {
            perr(p,
                 "key '%s': the private key is already given at line %d (use either "
                 "private-key or private-key-file)",
                 name, c->private_key_line);
            return true;
        }
        c->private_key_line = p->line;
        if (key_is(name, "private-key")) {
            if (parse_key_key(p, name, v, c->private_key, true)) c->has_private_key = true;
        } else if (!*v || strlen(v) >= sizeof(c->private_key_file)) {
            perr(p, "key 'private-key-file': expected a file name");
        } else {
            snprintf(c->private_key_file, sizeof(c->private_key_file), "%s", v);
        }
        return true;
    }
    if (key_is(name, "log-level")) {
        um_log_level_t lv;
        if (um_log_level_parse(v, &lv) != 0)
            perr(p, "key 'log-level': '%s': expected error, warn, info, debug or trace", v);
        else
            snprintf(c->log_level, sizeof(c->log_level), "%s", v);
        return true;
    }
    if (key_is(name, "stream-timeout")) {
        parse_num_key(p, name, v, &c->stream_timeout_s, 0, 86400);
        return true;
    }
    return false;
}

static void key_server(parser_t *p, const char *name, const char *v)
{
    um_config_t *c = p->c;
    char why[128];
    if (own_key(p, name, v)) return;
    if (key_is(name, "listen")) {
        if (c->n_listen == UM_CFG_MAX_LISTEN) {
            perr(p, "key 'listen': at most %d listen addresses", UM_CFG_MAX_LISTEN);
            return;
        }
        if (parse_addr_key(p, name, v, &c->listen[c->n_listen], true)) c->n_listen++;
    } else if (key_is(name, "public-host")) {
        um_addr_t a;
        if (um_addr_parse_host(&a, v, strlen(v), why, sizeof(why)) != 0)
            perr(p, "key 'public-host': '%s': %s (expected the host name or IP clients dial)", v,
                 why);
        else
            snprintf(c->public_host, sizeof(c->public_host), "%s", v);
    } else if (key_is(name, "transport")) {
        if (!um_name_valid(v))
            perr(p, "key 'transport': '%s': expected the name of a [transport] section", v);
        else {
            snprintf(c->transport, sizeof(c->transport), "%s", v);
            c->transport_line = p->line;
        }
    } else if (key_is(name, "fallback")) {
        if (parse_addr_key(p, name, v, &c->fallback, false)) c->has_fallback = true;
    } else if (key_is(name, "clock-skew")) {
        parse_num_key(p, name, v, &c->clock_skew_s, 1, 3600);
    } else if (key_is(name, "replay-cache")) {
        parse_num_key(p, name, v, &c->replay_cache, 1024, 16777216);
    } else if (key_is(name, "probe-delay-min")) {
        parse_num_key(p, name, v, &c->probe_delay_min_ms, 0, 600000);
    } else if (key_is(name, "probe-delay-max")) {
        parse_num_key(p, name, v, &c->probe_delay_max_ms, 1, 600000);
    } else if (key_is(name, "max-preauth")) {
        parse_num_key(p, name, v, &c->max_preauth, 16, 1048576);
    } else if (key_is(name, "preauth-per-source")) {
        parse_num_key(p, name, v, &c->preauth_per_source, 1, 1048576);
    } else if (key_is(name, "preauth-prefix-v4")) {
        parse_num_key(p, name, v, &c->preauth_prefix_v4, 1, 32);
    } else if (key_is(name, "preauth-prefix-v6")) {
        parse_num_key(p, name, v, &c->preauth_prefix_v6, 1, 128);
    } else if (key_is(name, "client-handshakes-per-minute")) {
        parse_num_key(p, name, v, &c->client_handshakes_per_min, 1, 1000000);
    } else if (key_is(name, "allow")) {
        if (c->n_allow == UM_CFG_MAX_ALLOW) {
            perr(p, "key 'allow': at most %d allow rules", UM_CFG_MAX_ALLOW);
            return;
        }
        if (um_cidr_parse(&c->allow[c->n_allow], v, strlen(v), why, sizeof(why)) != 0)
            perr(p, "key 'allow': '%s': %s", v, why);
        else
            c->n_allow++;
    } else if (key_is(name, "max-sessions-per-client")) {
        parse_num_key(p, name, v, &c->max_sessions_per_client, 1, 65535);
    } else if (key_is(name, "max-streams")) {
        parse_num_key(p, name, v, &c->max_streams, 1, 1000000);
    } else if (key_is(name, "idle-timeout")) {
        parse_num_key(p, name, v, &c->idle_timeout_s, 1, 86400 * 7);
    } else if (key_is(name, "memory-budget")) {
        parse_num_key(p, name, v, &c->memory_budget_mib, 8, 1048576);
    } else if (key_is(name, "client-memory")) {
        parse_num_key(p, name, v, &c->client_memory_mib, 0, 1048576);
    } else if (key_is(name, "resume-grace")) {
        uint32_t ms;
        if (um_parse_duration_ms(&ms, v) != 0 || ms > UM_RESUME_GRACE_MAX_MS)
            perr(p,
                 "key 'resume-grace': '%s': expected a duration from 0 (resumption off) to 1h, "
                 "e.g. 120s (suffix ms, s, m or h; a plain number is seconds)",
                 v);
        else
            c->resume_grace_ms = ms;
    } else if (key_is(name, "resumable-per-client")) {
        parse_num_key(p, name, v, &c->resumable_per_client, 1, 1024);
    } else if (key_is(name, "server-list")) {
        if (!*v || strlen(v) >= sizeof(c->server_list))
            perr(p, "key 'server-list': expected a file name (a list signed by 'umbra list sign')");
        else
            snprintf(c->server_list, sizeof(c->server_list), "%s", v);
    } else if (key_is(name, "control")) {
        if (!*v || strlen(v) >= UM_CONTROL_PATH_MAX)
            perr(p, "key 'control': expected a socket path (under %d characters) or 'off'",
                 UM_CONTROL_PATH_MAX);
        else
            snprintf(c->server_control, sizeof(c->server_control), "%s", v);
    } else if (key_is(name, "metrics")) {
        if (parse_addr_key(p, name, v, &c->metrics, true)) c->has_metrics = true;
    } else {
        perr(p, "unknown key '%s' in [server]", name);
    }
}

/* rule, rules-file, geoip-file, default-route (docs/CONFIG.md, "Routing rules") */
static void key_rules(parser_t *p, const char *name, const char *v)
{
    char msg[UM_ERR_MAX - 64];
    if (um_cfg_rules_key(p->c, name, v, p->line, msg, sizeof(msg)) != 0) perr(p, "%s", msg);
}

static void key_client(parser_t *p, const char *name, const char *v)
{
    um_config_t *c = p->c;
    char why[160];
    if (own_key(p, name, v)) return;
    if (key_is(name, "socks")) {
        if (parse_addr_key(p, name, v, &c->socks, true)) c->has_socks = true;
    } else if (key_is(name, "http")) {
        if (parse_addr_key(p, name, v, &c->http, true)) c->has_http = true;
    } else if (key_is(name, "socks-user") || key_is(name, "socks-password")) {
        bool user = key_is(name, "socks-user");
        size_t n = strlen(v);
        if (n == 0 || n > 255)
            perr(p, "key '%s': expected 1 to 255 characters", name);
        else
            snprintf(user ? c->socks_user : c->socks_pass, 256, "%s", v);
    } else if (key_is(name, "forward")) {
        if (c->n_forwards == UM_CFG_MAX_FORWARDS) {
            perr(p, "key 'forward': at most %d forwards", UM_CFG_MAX_FORWARDS);
            return;
        }
        if (um_parse_forward(&c->forwards[c->n_forwards], v, why, sizeof(why)) != 0)
            perr(p, "key 'forward': '%s': %s", v, why);
        else
            c->n_forwards++;
    } else if (key_is(name, "events")) {
        if (!*v || strlen(v) >= sizeof(c->events))
            perr(p, "key 'events': expected a file name or '-' for standard output");
        else
            snprintf(c->events, sizeof(c->events), "%s", v);
    } else if (key_is(name, "control")) {
        if (!*v || strlen(v) >= UM_CONTROL_PATH_MAX)
            perr(p, "key 'control': expected a socket path (under %d characters) or 'off'",
                 UM_CONTROL_PATH_MAX);
        else
            snprintf(c->control, sizeof(c->control), "%s", v);
    } else if (key_is(name, "keepalive")) {
        parse_num_key(p, name, v, &c->keepalive_s, 1, 3600);
    } else if (key_is(name, "race")) {
        parse_num_key(p, name, v, &c->race, 1, UM_RACE_MAX);
    } else if (key_is(name, "race-stagger") || key_is(name, "remember")) {
        bool st = key_is(name, "race-stagger");
        uint32_t ms;
        if (um_parse_duration_ms(&ms, v) != 0 ||
            ms > (st ? UM_RACE_STAGGER_MAX_MS : UM_REMEMBER_MAX_MS))
            perr(p,
                 "key '%s': '%s': expected a duration from 0 to %s, e.g. %s (suffix ms, s, m or "
                 "h; a plain number is seconds)",
                 name, v, st ? "10s" : "720h", st ? "250ms" : "24h");
        else if (st)
            c->race_stagger_ms = ms;
        else
            c->remember_ms = ms;
    } else if (key_is(name, "state-file")) {
        if (!*v || strlen(v) >= sizeof(c->state_file))
            perr(p, "key 'state-file': expected a file name (under %d characters)", UM_PATH_MAX);
        else
            snprintf(c->state_file, sizeof(c->state_file), "%s", v);
    } else if (key_is(name, "tun") || key_is(name, "tun-dns") || key_is(name, "tun-routes")) {
        bool on = !strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true");
        if (!on && strcmp(v, "off") && strcmp(v, "no") && strcmp(v, "false"))
            perr(p, "key '%s': '%s': expected on or off", name, v);
        else if (key_is(name, "tun"))
            c->tun = on;
        else if (key_is(name, "tun-dns"))
            c->tun_dns = on;
        else
            c->tun_routes = on;
    } else if (key_is(name, "fast-open")) {
        bool on = !strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true");
        if (!on && strcmp(v, "off") && strcmp(v, "no") && strcmp(v, "false"))
            perr(p, "key 'fast-open': '%s': expected on or off", v);
        else
            c->fast_open = on;
    } else if (key_is(name, "tun-name")) {
        if (um_tun_name_valid(v))
            snprintf(c->tun_name, sizeof(c->tun_name), "%s", v);
        else
            perr(p,
                 "key 'tun-name': '%s': expected an interface name of 1 to 15 letters, "
                 "digits, '-', '_' or '.'",
                 v);
    } else if (key_is(name, "tun-address") || key_is(name, "tun-address6")) {
        bool six = key_is(name, "tun-address6");
        um_cidr_t cd;
        if (six && !strcmp(v, "none")) {
            c->has_tun_addr6 = false;
        } else if (um_cfg_ifaddr_parse(&cd, v, why, sizeof(why)) != 0 ||
                   cd.family != (six ? UM_ADDR_IPV6 : UM_ADDR_IPV4) || cd.bits > (six ? 126 : 30) ||
                   cd.bits < 8) {
            perr(p, "key '%s': '%s': expected an %s address with its prefix, like %s", name, v,
                 six ? "IPv6" : "IPv4", six ? "fd75:6d62:7261::1/64 (or none)" : "10.233.0.1/30");
        } else if (six) {
            c->tun_addr6 = cd;
            c->has_tun_addr6 = true;
        } else {
            c->tun_addr4 = cd;
        }
    } else if (key_is(name, "tun-mtu")) {
        parse_num_key(p, name, v, &c->tun_mtu, 1280, 65535);
    } else if (key_is(name, "rule") || key_is(name, "rules-file") || key_is(name, "geoip-file") ||
               key_is(name, "default-route")) {
        key_rules(p, name, v);
    } else if (key_is(name, "upstream")) {
        /* The value may hold a password: never quoted. */
        if (um_upstream_parse(&c->upstream, v, strlen(v), why, sizeof(why)) != 0)
            perr(p, "key 'upstream': %s", why);
    } else if (key_is(name, "metrics")) {
        if (parse_addr_key(p, name, v, &c->metrics, true)) c->has_metrics = true;
    } else {
        perr(p, "unknown key '%s' in [client]", name);
    }
}

static void key_peer_client(parser_t *p, const char *name, const char *v)
{
    um_peer_client_t *pc = &p->c->clients[p->sec_index];
    if (key_is(name, "public-key")) {
        if (parse_key_key(p, name, v, pc->public_key, false)) pc->has_public_key = true;
    } else if (key_is(name, "max-sessions")) {
        parse_num_key(p, name, v, &pc->max_sessions, 1, 65535);
    } else if (key_is(name, "max-streams")) {
        parse_num_key(p, name, v, &pc->max_streams, 1, 1000000);
    } else if (key_is(name, "quota")) {
        if (um_parse_quota(&pc->quota, v) != 0)
            perr(p,
                 "key 'quota': '%s': expected bytes with an optional k, m, g or t suffix (e.g. "
                 "10G), or off",
                 v);
    } else if (key_is(name, "expires")) {
        if (um_parse_expiry(&pc->expires, v) != 0)
            perr(p,
                 "key 'expires': '%s': expected a date YYYY-MM-DD (served to its end, UTC), or "
                 "never",
                 v);
    } else {
        perr(p, "unknown key '%s' in [client \"%s\"]", name, pc->name);
    }
}

static void key_peer_server(parser_t *p, const char *name, const char *v)
{
    um_peer_server_t *ps = &p->c->servers[p->sec_index];
    if (key_is(name, "address")) {
        if (ps->n_addrs == UM_CFG_MAX_ADDRS) {
            perr(p, "key 'address': at most %d addresses per server", UM_CFG_MAX_ADDRS);
            return;
        }
        if (parse_addr_key(p, name, v, &ps->addrs[ps->n_addrs], false)) ps->n_addrs++;
    } else if (key_is(name, "public-key")) {
        if (parse_key_key(p, name, v, ps->public_key, false)) ps->has_public_key = true;
    } else if (key_is(name, "transport")) {
        if (!um_name_valid(v))
            perr(p, "key 'transport': '%s': expected the name of a [transport] section", v);
        else
            snprintf(ps->transport, sizeof(ps->transport), "%s", v);
    } else if (key_is(name, "weight")) {
        parse_num_key(p, name, v, &ps->weight, 1, 1000);
    } else if (key_is(name, "rotate")) {
        if (um_parse_size_range(&ps->rotate_min, &ps->rotate_max, v, UM_ROTATE_BYTES_MIN,
                                UM_ROTATE_BYTES_MAX) != 0)
            perr(p,
                 "key 'rotate': '%s': expected bytes per connection MIN[-MAX] from 4k to 1024m "
                 "(suffix k or m), e.g. 12k-16k, or off",
                 v);
        else
            ps->rotate_set = true;
    } else if (key_is(name, "rotate-after")) {
        if (um_parse_duration_range(&ps->rotate_after_min_ms, &ps->rotate_after_max_ms, v,
                                    UM_ROTATE_AFTER_MIN_MS, UM_ROTATE_AFTER_MAX_MS) != 0)
            perr(p,
                 "key 'rotate-after': '%s': expected a time per connection MIN[-MAX] from 1s to "
                 "24h (suffix ms, s, m or h), e.g. 30s-5m, or off",
                 v);
        else
            ps->rotate_after_set = true;
    } else if (key_is(name, "max-connections")) {
        parse_num_key(p, name, v, &ps->max_connections, UM_MAX_CONNECTIONS_MIN,
                      UM_MAX_CONNECTIONS_MAX);
    } else if (key_is(name, "via")) {
        if (!um_name_valid(v)) {
            perr(p, "key 'via': '%s': expected the name of a [server] section (the bridge)", v);
        } else {
            snprintf(ps->via, sizeof(ps->via), "%s", v);
            ps->via_line = p->line;
        }
    } else if (key_is(name, "operator-key")) {
        if (um_b64_decode_key(ps->operator_key, v, strlen(v), UM_B64_URL) != 0 || strlen(v) != 43)
            perr(p,
                 "key 'operator-key': '%s': expected a 43-character base64url Ed25519 public key "
                 "(from 'umbra pubkey --sign')",
                 v);
        else
            ps->has_operator_key = true;
    } else if (key_is(name, "list-url")) {
        size_t n = strlen(v);
        bool ok = (n > 7 && strncasecmp(v, "http://", 7) == 0) ||
                  (n > 8 && strncasecmp(v, "https://", 8) == 0);
        for (size_t i = 0; ok && i < n; i++)
            if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f) ok = false;
        if (ps->n_list_urls == UM_CFG_MAX_LIST_URLS)
            perr(p, "key 'list-url': at most %d list URLs per server", UM_CFG_MAX_LIST_URLS);
        else if (!ok || n > UM_LIST_URL_MAX)
            perr(p,
                 "key 'list-url': '%.80s': expected an http:// or https:// URL of at most %d "
                 "characters",
                 v, UM_LIST_URL_MAX);
        else
            snprintf(ps->list_urls[ps->n_list_urls++], UM_LIST_URL_MAX + 1, "%s", v);
    } else {
        perr(p, "unknown key '%s' in [server \"%s\"]", name, ps->name);
    }
}

static void key_transport(parser_t *p, const char *name, const char *v)
{
    char msg[UM_ERR_MAX - 64];
    if (um_cfg_transport_key(&p->c->transports[p->sec_index], name, v, p->line, msg, sizeof(msg)) !=
        0)
        perr(p, "%s", msg);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parser_t *p = user;
    (void)section;
    if (p->err_line) return 1;
    bool rep = false;
    for (size_t i = 0; i < sizeof(repeatable) / sizeof(repeatable[0]); i++)
        if (strcmp(name, repeatable[i]) == 0) rep = true;
    if (!rep && p->sec != SEC_NONE) {
        for (size_t i = 0; i < p->n_seen; i++)
            if (strcmp(p->seen[i], name) == 0) {
                perr(p, "duplicate key '%s' in this section", name);
                return 1;
            }
        if (p->n_seen < 32 && strlen(name) < sizeof(p->seen[0]))
            snprintf(p->seen[p->n_seen++], sizeof(p->seen[0]), "%s", name);
    }
    switch (p->sec) {
    case SEC_NONE: perr(p, "key '%s' outside any section", name); break;
    case SEC_SERVER: key_server(p, name, value); break;
    case SEC_CLIENT: key_client(p, name, value); break;
    case SEC_PEER_CLIENT: key_peer_client(p, name, value); break;
    case SEC_PEER_SERVER: key_peer_server(p, name, value); break;
    case SEC_TRANSPORT: key_transport(p, name, value); break;
    }
    return 1; /* our own errors are recorded in p; inih's line count is not needed */
}

/* libinih reader: hands out one line at a time, counts lines, strips leading
 * white space (so no line is ever a continuation line) and sees section
 * headers before inih does. A section whose header is invalid leaves
 * p->sec at SEC_NONE, so its keys are reported too only if nothing failed. */
static char *reader(char *str, int num, void *stream)
{
    parser_t *p = stream;
    if (p->pos >= p->n || p->err_line) return NULL;
    size_t start = p->pos, end = start;
    while (end < p->n && p->text[end] != '\n')
        end++;
    p->pos = end < p->n ? end + 1 : end;
    p->line++;
    size_t b = start, e = end;
    while (b < e && (p->text[b] == ' ' || p->text[b] == '\t'))
        b++;
    if (e > b && p->text[e - 1] == '\r') e--;
    if (memchr(p->text + start, '\0', end - start)) {
        perr(p, "NUL byte in line");
        return NULL;
    }
    if (e - b > LINE_MAX_CHARS || (int)(e - b) + 2 > num) {
        perr(p, "line longer than %d characters", LINE_MAX_CHARS);
        return NULL;
    }
    if (e > b && p->text[b] == '[') {
        const char *close = memchr(p->text + b, ']', e - b);
        size_t after = close ? (size_t)(p->text + e - close - 1) : 0;
        const char *rest = close ? close + 1 : NULL;
        while (rest && after && (*rest == ' ' || *rest == '\t')) {
            rest++;
            after--;
        }
        if (!close || (after && *rest != ';' && *rest != '#')) {
            perr(p, "malformed section header (expected [name] or [name \"label\"])");
            return NULL;
        }
        on_section(p, p->text + b + 1, (size_t)(close - p->text - b - 1));
        if (p->err_line) return NULL;
    }
    memcpy(str, p->text + b, e - b);
    str[e - b] = '\n';
    str[e - b + 1] = '\0';
    return str;
}

int um_config_parse(um_config_t *c, const char *path, const char *text, size_t n, char *err,
                    size_t errlen)
{
    parser_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "%s: out of memory", path);
        return UM_ENOMEM;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    p->c = c;
    p->text = text;
    p->n = n;
    int r = ini_parse_stream(reader, p, handler, p);
    int ret = 0;
    if (p->err_line) {
        snprintf(err, errlen, "%s", p->err);
        ret = UM_EINVAL;
    } else if (r > 0) {
        snprintf(err, errlen, "%s:%d: expected 'key = value', a [section] header or a comment",
                 path, r);
        ret = UM_EINVAL;
    } else if (r < 0) {
        snprintf(err, errlen, "%s: could not parse (out of memory)", path);
        ret = UM_ENOMEM;
    } else if (c->role == UM_ROLE_NONE) {
        snprintf(err, errlen, "%s: no [server] or [client] section", path);
        ret = UM_EINVAL;
    } else {
        for (size_t i = 0; i < c->n_transports; i++)
            um_cfg_default_sni(&c->transports[i]);
        um_config_rotation_defaults(c);
    }
    free(p);
    return ret;
}

int um_config_load(um_config_t *c, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return UM_ENOENT;
    }
    char *text = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= (64u << 20)) {
                snprintf(err, errlen, "%s: file larger than 64 MiB", path);
                r = UM_EINVAL;
                break;
            }
            cap = cap ? cap * 2 : 4096;
            char *t = realloc(text, cap);
            if (!t) {
                r = UM_ENOMEM;
                snprintf(err, errlen, "%s: out of memory", path);
                break;
            }
            text = t;
        }
        size_t got = fread(text + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp)) {
                snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
                r = UM_EIO;
            }
            break;
        }
    }
    struct stat st;
    bool loose_file = fstat(fileno(fp), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO));
    fclose(fp);
    if (r == 0) r = um_config_parse(c, path, text, n, err, errlen);
    /* An inline private-key is as secret as a key file (checked below). */
    if (r == 0 && loose_file && c->has_private_key && !c->private_key_file[0])
        fprintf(stderr,
                "umbra: warning: %s holds a private key and is readable by group or others "
                "(chmod 600 it)\n",
                path);
    if (text) sodium_memzero(text, cap);
    free(text);
    if (r == 0 && c->private_key_file[0]) {
        char full[UM_PATH_MAX * 2];
        const char *kf = c->private_key_file;
        const char *slash = strrchr(path, '/');
        if (kf[0] != '/' && slash)
            snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - path), path, kf);
        else
            snprintf(full, sizeof(full), "%s", kf);
        int loose = 0;
        int kr = um_key_load_file(c->private_key, full, &loose);
        if (kr != 0) {
            snprintf(err, errlen, "%s:%d: key 'private-key-file': '%s': %s", path,
                     c->private_key_line, full,
                     kr == UM_EINVAL   ? "does not hold a base64 X25519 private key"
                     : kr == UM_ENOENT ? "no such file"
                                       : "cannot read");
            return UM_EINVAL;
        }
        if (loose)
            fprintf(stderr, "umbra: warning: %s is readable by group or others (chmod 600 it)\n",
                    full);
        c->has_private_key = true;
    }
    if (r == 0 && c->server_list[0] && c->server_list[0] != '/' && strrchr(path, '/')) {
        /* Relative to the config's directory, as private-key-file. */
        char full[UM_PATH_MAX * 2];
        snprintf(full, sizeof(full), "%.*s/%s", (int)(strrchr(path, '/') - path), path,
                 c->server_list);
        if (strlen(full) >= sizeof(c->server_list)) {
            snprintf(err, errlen, "%s: key 'server-list': path too long", path);
            return UM_EINVAL;
        }
        snprintf(c->server_list, sizeof(c->server_list), "%s", full);
    }
    /* rules-file and geoip-file: relative to the config's directory too. */
    for (size_t i = 0; r == 0 && i < c->n_rules_files + c->n_geoip_files; i++) {
        char *f = i < c->n_rules_files ? c->rules_files[i] : c->geoip_files[i - c->n_rules_files];
        if (f[0] == '/' || !strrchr(path, '/')) continue;
        char full[UM_PATH_MAX * 2];
        snprintf(full, sizeof(full), "%.*s/%s", (int)(strrchr(path, '/') - path), path, f);
        if (strlen(full) >= UM_PATH_MAX) {
            snprintf(err, errlen, "%s: key '%s': path too long", path,
                     i < c->n_rules_files ? "rules-file" : "geoip-file");
            return UM_EINVAL;
        }
        snprintf(f, UM_PATH_MAX, "%s", full);
    }
    if (r == 0) r = um_config_validate(c, err, errlen);
    return r;
}
