/* Keys parsed without the parser's state (docs/CONFIG.md): those of a
 * [transport "name"] section and the routing-rule keys of [client]. One
 * key's value into the config, or the reason it is refused (config.c adds
 * the file and line). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "app/config.h"
#include "app/config_int.h"
#include "app/dns_cfg.h"
#include "proxy/rules.h"
#include "util/err.h"

static bool key_is(const char *name, const char *k)
{
    return strcmp(name, k) == 0;
}

static int fail(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return UM_EINVAL;
}

int um_cfg_transport_key(um_transport_cfg_t *t, const char *name, const char *v, int line,
                         char *msg, size_t msglen)
{
    char why[128];
    if (key_is(name, "type")) {
        if (um_tr_type_parse(v, &t->type) == 0) {
            if (t->type == UM_TR_WS && !t->ws_tls_set) t->ws_tls = true;
            t->ws_line = line;
            return 0;
        }
        t->type = UM_TR_TCP;
        return fail(msg, msglen, "key 'type': '%s': expected tcp, tls, ws or dns", v);
    } else if (key_is(name, "path")) {
        if (!um_ws_path_ok(v))
            return fail(msg, msglen,
                        "key 'path': '%s': expected a URL path: '/' then at most %d printable "
                        "characters without spaces, e.g. /api/v2/stream",
                        v, UM_WS_PATH_MAX - 1);
        else
            snprintf(t->ws_path, sizeof(t->ws_path), "%s", v);
    } else if (key_is(name, "host")) {
        size_t n = strlen(v);
        bool ok = n > 0 && n <= UM_WS_HOST_MAX;
        for (size_t i = 0; ok && i < n; i++)
            if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f || v[i] == '/')
                ok = false;
        if (!ok)
            return fail(msg, msglen,
                        "key 'host': '%s': expected a host name with an optional port, e.g. "
                        "cdn.example.com or front.example.com:8443",
                        v);
        else
            snprintf(t->ws_host, sizeof(t->ws_host), "%s", v);
    } else if (key_is(name, "tls")) {
        if (!strcmp(v, "on"))
            t->ws_tls = true;
        else if (!strcmp(v, "off"))
            t->ws_tls = false;
        else
            return fail(msg, msglen, "key 'tls': '%s': expected on or off", v);
        t->ws_tls_set = true;
    } else if (key_is(name, "ca-file")) {
        if (!v[0] || strlen(v) > UM_CA_FILE_MAX)
            return fail(msg, msglen,
                        "key 'ca-file': expected the path of a PEM file of at most %d characters",
                        UM_CA_FILE_MAX);
        else
            snprintf(t->ca_file, sizeof(t->ca_file), "%s", v);
    } else if (key_is(name, "cert-file") || key_is(name, "key-file")) {
        bool cert = key_is(name, "cert-file");
        if (!v[0] || strlen(v) > UM_CA_FILE_MAX) {
            return fail(msg, msglen,
                        "key '%s': expected the path of a PEM file of at most %d characters", name,
                        UM_CA_FILE_MAX);
            return 0;
        }
        snprintf(cert ? t->cert_file : t->key_file, UM_CA_FILE_MAX + 1, "%s", v);
        t->cert_line = line;
    } else if (key_is(name, "header")) {
        char hw[96];
        if (t->n_ws_headers == UM_WS_XHDR_MAX)
            return fail(msg, msglen, "key 'header': at most %d extra header fields per transport",
                        UM_WS_XHDR_MAX);
        else if (um_ws_xhdr_check(v, hw, sizeof(hw)) != 0)
            return fail(msg, msglen,
                        "key 'header': '%.80s': %s (expected Name: value, e.g. header = Origin: "
                        "https://www.example.com)",
                        v, hw);
        else
            snprintf(t->ws_headers[t->n_ws_headers++], UM_WS_XHDR_LEN + 1, "%s", v);
    } else if (key_is(name, "shape")) {
        if (um_shape_parse(v, &t->shape) != 0)
            return fail(msg, msglen, "key 'shape': '%s': expected none, printable, http or tls", v);
        t->shape_line = line;
    } else if (key_is(name, "padding")) {
        if (um_cfg_pad_parse(v, &t->padding) != 0)
            return fail(msg, msglen, "key 'padding': '%s': expected random or none", v);
    } else if (key_is(name, "cover")) {
        if (um_addr_parse(&t->cover, v, strlen(v), 0, why, sizeof(why)) != 0)
            return fail(msg, msglen,
                        "key 'cover': '%s': %s (expected the cover site's host:port, e.g. "
                        "www.example.com:443 or 127.0.0.1:8443)",
                        v, why);
        else
            t->has_cover = true;
        t->cover_line = line;
    } else if (key_is(name, "sni")) {
        size_t n = strlen(v);
        if (!um_sni_valid(v, n)) {
            return fail(
                msg, msglen,
                "key 'sni': '%s': expected a DNS host name (labels of letters, digits and '-', "
                "dot-separated, at most 253 characters), e.g. www.example.com",
                v);
            return 0;
        }
        /* Browsers send the host name in lower case; so do we. */
        for (size_t i = 0; i <= n; i++)
            t->sni[i] = (v[i] >= 'A' && v[i] <= 'Z') ? (char)(v[i] - 'A' + 'a') : v[i];
    } else if (key_is(name, "fingerprint")) {
        if (um_cfg_fp_parse(v, &t->fingerprint) != 0)
            return fail(msg, msglen, "key 'fingerprint': '%s': expected chromium or firefox", v);
    } else if (key_is(name, "timing")) {
        if (um_cfg_timing_parse(v, &t->timing) != 0)
            return fail(msg, msglen, "key 'timing': '%s': expected none or jitter", v);
    } else if (key_is(name, "ports")) {
        t->ports_line = line;
        if (um_parse_port_range(&t->hop_lo, &t->hop_hi, v) != 0)
            return fail(msg, msglen,
                        "key 'ports': '%s': expected a port range LO-HI, e.g. 20000-40000", v);
        else if (!t->hop_ms)
            t->hop_ms = UM_HOP_DEFAULT_MS;
    } else if (key_is(name, "hop")) {
        t->hop_line = line;
        uint32_t ms;
        if (um_parse_duration_ms(&ms, v) != 0 || ms < UM_HOP_MIN_MS || ms > UM_HOP_MAX_MS)
            return fail(
                msg, msglen,
                "key 'hop': '%s': expected a slot length from 1s to 1h (suffix ms, s, m or h), "
                "e.g. 60s",
                v);
        else
            t->hop_ms = ms;
    } else if (key_is(name, "zone")) {
        t->zone_line = line;
        if (um_dns_zone_norm(v, t->zone, sizeof(t->zone)) != 0)
            return fail(
                msg, msglen,
                "key 'zone': '%s': expected the DNS zone the server is authoritative for (a "
                "host name of at most 200 characters), e.g. t.example.com",
                v);
    } else if (key_is(name, "resolver")) {
        t->resolver_line = line;
        if (um_dns_resolver_parse(v, NULL, NULL) != 0)
            return fail(msg, msglen,
                        "key 'resolver': '%s': expected a resolver's IP address and port, e.g. "
                        "192.0.2.53:53, or tls://192.0.2.53:853 for DNS over TLS",
                        v);
        else
            snprintf(t->resolver, sizeof(t->resolver), "%s", v);
    } else {
        return fail(msg, msglen, "unknown key '%s' in [transport \"%s\"]", name, t->name);
    }
    return 0;
}

int um_cfg_rules_key(um_config_t *c, const char *name, const char *v, int line, char *msg,
                     size_t msglen)
{
    char why[160];
    if (key_is(name, "rule")) {
        um_rule_t r;
        if (c->n_rules == UM_CFG_MAX_RULES)
            return fail(msg, msglen, "key 'rule': at most %d rule lines (put more in a rules-file)",
                        UM_CFG_MAX_RULES);
        if (um_rule_parse(&r, v, strlen(v), why, sizeof(why)) != 0)
            return fail(msg, msglen, "key 'rule': '%s': %s", v, why);
        snprintf(c->rules[c->n_rules], sizeof(c->rules[0]), "%s", v);
        c->rule_lines[c->n_rules++] = line;
    } else if (key_is(name, "default-route")) {
        if (um_rule_action_parse(v, strlen(v), &c->default_route) != 0)
            return fail(msg, msglen, "key 'default-route': '%s': expected tunnel, direct or block",
                        v);
    } else {
        bool rf = key_is(name, "rules-file");
        size_t *n = rf ? &c->n_rules_files : &c->n_geoip_files;
        if (*n == (rf ? UM_CFG_MAX_RULES_FILES : UM_CFG_MAX_GEOIP_FILES))
            return fail(msg, msglen, "key '%s': at most %d files", name,
                        rf ? UM_CFG_MAX_RULES_FILES : UM_CFG_MAX_GEOIP_FILES);
        if (!*v || strlen(v) >= UM_PATH_MAX)
            return fail(msg, msglen, "key '%s': expected a file name (under %d characters)", name,
                        UM_PATH_MAX);
        snprintf(rf ? c->rules_files[(*n)++] : c->geoip_files[(*n)++], UM_PATH_MAX, "%s", v);
    }
    return 0;
}
