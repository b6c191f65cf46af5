/* um_config_validate: the checks that need the whole file parsed (keys
 * that go together, references between sections), and the defaults that
 * follow from other keys (sni from the cover). config.c parses. */
#include "app/config.h"
#include "app/config_int.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

/* The keys of a tls transport that go together (docs/CONFIG.md). Every
 * section is checked, used or not, so a mistake shows before it matters. */
static int check_tls(const um_config_t *c, const um_transport_cfg_t *t, char *err, size_t errlen)
{
    const char *f = c->path;
    if (t->type != UM_TR_TLS) return 0;
    if (t->shape != UM_SHAPE_NONE) {
        snprintf(err, errlen,
                 "%s:%d: key 'shape': '%s': shaping is for the tcp transport; a tls transport is "
                 "TLS already (remove the key or set type = tcp)",
                 f, t->shape_line ? t->shape_line : t->line, um_shape_name(t->shape));
        return UM_EINVAL;
    }
    if (c->role == UM_ROLE_SERVER && !t->has_cover) {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: missing key 'cover' (the website unauthenticated "
                 "connections are handed to, e.g. cover = www.example.com:443)",
                 f, t->line, t->name);
        return UM_EINVAL;
    }
    if (t->sni[0]) return 0;
    if (!t->has_cover) {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: missing key 'sni' (the cover site's name, e.g. "
                 "sni = www.example.com)",
                 f, t->line, t->name);
    } else if (t->cover.type != UM_ADDR_DOMAIN) {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: key 'sni' required when 'cover' is an IP address "
                 "(the name the cover site serves, e.g. sni = www.example.com)",
                 f, t->cover_line ? t->cover_line : t->line, t->name);
    } else {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: key 'sni' required: the cover's host '%s' is not a "
                 "DNS name an SNI can carry",
                 f, t->cover_line ? t->cover_line : t->line, t->name, t->cover.u.domain);
    }
    return UM_EINVAL;
}

/* A dns transport needs its zone; zone and resolver are dns keys. */
static int check_dns(const um_config_t *c, const um_transport_cfg_t *t, char *err, size_t errlen)
{
    if (t->type != UM_TR_DNS) {
        int l = t->zone_line ? t->zone_line : t->resolver_line;
        if (!l) return 0;
        snprintf(err, errlen, "%s:%d: key '%s' is for the dns transport (set type = dns)", c->path,
                 l, t->zone_line ? "zone" : "resolver");
        return UM_EINVAL;
    }
    if (!t->zone[0]) {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: missing key 'zone' (the DNS zone delegated to the "
                 "server, e.g. zone = t.example.com)",
                 c->path, t->line, t->name);
        return UM_EINVAL;
    }
    if (t->shape != UM_SHAPE_NONE || t->hop_lo) {
        snprintf(err, errlen, "%s:%d: key '%s' is for the tcp transport, not dns", c->path,
                 t->shape != UM_SHAPE_NONE ? t->shape_line : t->ports_line,
                 t->shape != UM_SHAPE_NONE ? "shape" : "ports");
        return UM_EINVAL;
    }
    return 0;
}

/* Port hopping is for the tcp transport, and 'hop' needs 'ports'. */
static int check_hop(const um_config_t *c, const um_transport_cfg_t *t, char *err, size_t errlen)
{
    if (t->hop_lo && t->type != UM_TR_TCP) {
        snprintf(err, errlen,
                 "%s:%d: key 'ports': port hopping is for the tcp transport (remove the key or "
                 "set type = tcp)",
                 c->path, t->ports_line);
        return UM_EINVAL;
    }
    if (t->hop_line && !t->hop_lo) {
        snprintf(err, errlen,
                 "%s:%d: key 'hop': [transport \"%s\"] has no 'ports' to hop over (e.g. ports = "
                 "20000-40000)",
                 c->path, t->hop_line, t->name);
        return UM_EINVAL;
    }
    return 0;
}

/* via = NAME names another [server] section, which has no via itself (one
 * bridge in front of an exit) and is reached by IP address. */
static int validate_via(const um_config_t *c, const um_peer_server_t *s, char *err, size_t errlen)
{
    if (!s->via[0]) return 0;
    const um_peer_server_t *b = NULL;
    for (size_t k = 0; k < c->n_servers; k++)
        if (strcmp(c->servers[k].name, s->via) == 0) b = &c->servers[k];
    const char *why = !b          ? "no such [server] section"
                      : b == s    ? "a server cannot be its own bridge"
                      : b->via[0] ? "the bridge has a via itself (one bridge per exit)"
                                  : NULL;
    for (size_t i = 0; b && !why && i < b->n_addrs; i++)
        if (b->addrs[i].type == UM_ADDR_DOMAIN) why = "the bridge's address must be an IP address";
    if (!why) return 0;
    snprintf(err, errlen, "%s:%d: [server \"%s\"]: key 'via': '%s': %s", c->path,
             s->via_line ? s->via_line : s->line, s->name, s->via, why);
    return UM_EINVAL;
}

int um_config_validate(const um_config_t *c, char *err, size_t errlen)
{
    const char *f = c->path;
    if (!c->has_private_key && !c->private_key_file[0]) {
        snprintf(err, errlen, "%s:%d: [%s]: missing key 'private-key' (or 'private-key-file')", f,
                 c->role_line, c->role == UM_ROLE_SERVER ? "server" : "client");
        return UM_EINVAL;
    }
    for (size_t i = 0; i < c->n_transports; i++)
        if (check_tls(c, &c->transports[i], err, errlen) != 0 ||
            check_hop(c, &c->transports[i], err, errlen) != 0 ||
            um_config_check_ws(c, &c->transports[i], err, errlen) != 0 ||
            check_dns(c, &c->transports[i], err, errlen) != 0)
            return UM_EINVAL;
    if (c->role == UM_ROLE_SERVER) {
        if (c->n_listen == 0) {
            snprintf(err, errlen,
                     "%s:%d: [server]: missing key 'listen' (e.g. listen = 0.0.0.0:443)", f,
                     c->role_line);
            return UM_EINVAL;
        }
        if (c->transport[0] && !um_config_transport(c, c->transport)) {
            snprintf(err, errlen, "%s:%d: key 'transport': no [transport \"%s\"] section", f,
                     c->transport_line, c->transport);
            return UM_EINVAL;
        }
        if (c->probe_delay_min_ms > c->probe_delay_max_ms) {
            snprintf(err, errlen,
                     "%s:%d: [server]: probe-delay-min (%u) is above probe-delay-max (%u)", f,
                     c->role_line, c->probe_delay_min_ms, c->probe_delay_max_ms);
            return UM_EINVAL;
        }
        for (size_t i = 0; i < c->n_clients; i++) {
            if (!c->clients[i].has_public_key) {
                snprintf(err, errlen, "%s:%d: [client \"%s\"]: missing key 'public-key'", f,
                         c->clients[i].line, c->clients[i].name);
                return UM_EINVAL;
            }
            for (size_t j = 0; j < i; j++)
                if (sodium_memcmp(c->clients[i].public_key, c->clients[j].public_key, 32) == 0) {
                    snprintf(err, errlen,
                             "%s:%d: [client \"%s\"]: same public-key as [client \"%s\"] (line %d)",
                             f, c->clients[i].line, c->clients[i].name, c->clients[j].name,
                             c->clients[j].line);
                    return UM_EINVAL;
                }
        }
    } else {
        if (c->n_servers == 0) {
            snprintf(err, errlen,
                     "%s: a client config needs at least one [server \"name\"] section", f);
            return UM_EINVAL;
        }
        for (size_t i = 0; i < c->n_servers; i++) {
            const um_peer_server_t *s = &c->servers[i];
            if (s->n_addrs == 0 || !s->has_public_key) {
                snprintf(err, errlen, "%s:%d: [server \"%s\"]: missing key '%s'", f, s->line,
                         s->name, s->n_addrs == 0 ? "address" : "public-key");
                return UM_EINVAL;
            }
            if (s->transport[0] && !um_config_transport(c, s->transport)) {
                snprintf(err, errlen, "%s:%d: [server \"%s\"]: no [transport \"%s\"] section", f,
                         s->line, s->name, s->transport);
                return UM_EINVAL;
            }
            if (validate_via(c, s, err, errlen) != 0) return UM_EINVAL;
        }
        if ((c->socks_user[0] != 0) != (c->socks_pass[0] != 0)) {
            snprintf(err, errlen, "%s:%d: [client]: socks-user and socks-password go together", f,
                     c->role_line);
            return UM_EINVAL;
        }
    }
    return 0;
}

/* ---- defaults that follow from other keys (applied by um_config_parse) ---- */

/* A tls transport without 'sni' uses the cover's host name, when it is one
 * an SNI can carry (um_config_validate reports the other cases). */
void um_cfg_default_sni(um_transport_cfg_t *t)
{
    if (t->type != UM_TR_TLS || t->sni[0] || !t->has_cover || t->cover.type != UM_ADDR_DOMAIN ||
        !um_sni_valid(t->cover.u.domain, t->cover.domain_len))
        return;
    for (size_t i = 0; i <= t->cover.domain_len; i++) {
        char ch = t->cover.u.domain[i];
        t->sni[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
}

void um_config_rotation_defaults(um_config_t *c)
{
    for (size_t i = 0; i < c->n_servers; i++) {
        um_peer_server_t *s = &c->servers[i];
        const um_transport_cfg_t *t = um_config_transport(c, s->transport);
        if (s->rotate_after_set || !t) continue;
        if (t->type == UM_TR_TLS) {
            s->rotate_after_min_ms = UM_TLS_ROTATE_AFTER_MIN;
            s->rotate_after_max_ms = UM_TLS_ROTATE_AFTER_MAX;
        } else {
            s->rotate_after_min_ms = s->rotate_after_max_ms = 0;
        }
    }
}
