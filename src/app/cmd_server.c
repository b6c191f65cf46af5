/* umbra server: run a server, or manage its config file.
 *   umbra server init -c server.conf --listen 0.0.0.0:443 [--public-host vps.example]
 *       [--transport tls --cover HOST:PORT [--sni NAME] [--fingerprint chromium|firefox]]
 *       [--ports LO-HI [--hop D]]
 *       [--transport dns --zone ZONE]
 *   umbra server add-client -c server.conf NAME
 *   umbra server -c server.conf [--allow CIDR]... [--check] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/config.h"
#include "app/dns_cfg.h"
#include "app/link.h"
#include "app/mgmt.h"
#include "app/run.h"
#include "crypto/keys.h"
#include "util/log.h"

const char um_usage_server[] =
    "usage: umbra server init -c FILE --listen ADDR [--public-host HOST]\n"
    "                         [--transport tls --cover HOST:PORT [--sni NAME]\n"
    "                          [--fingerprint chromium|firefox]]\n"
    "                         [--ports LO-HI [--hop D]]\n"
    "                         [--transport ws --ws-path /PATH --public-host FRONT[:PORT]]\n"
    "                         [--transport dns --zone ZONE]\n"
    "       umbra server add-client -c FILE NAME [--quota Q] [--expires DATE] [--qr | --no-qr]\n"
    "       umbra server -c FILE [--allow CIDR]... [--log-level LEVEL] [--metrics ADDR]\n"
    "                    [--check]\n"
    "  managing a running server (over its management socket):\n"
    "       umbra server clients [--json] [--socket PATH]\n"
    "       umbra server add-client NAME [--quota Q] [--expires DATE] [--qr | --no-qr]\n"
    "                               [--json] [--socket PATH]\n"
    "       umbra server remove-client NAME [--socket PATH]\n"
    "       umbra server kick SESSION|NAME [--socket PATH]\n"
    "       umbra server set-quota NAME QUOTA|off [--socket PATH]\n"
    "       umbra server set-expiry NAME DATE|never [--socket PATH]\n\n"
    "init        writes a new server config with a fresh private key (mode 0600);\n"
    "            refuses to overwrite an existing file.\n"
    "            --listen ADDR        address to accept clients on, e.g. 0.0.0.0:443\n"
    "            --public-host HOST   name or IP clients dial (goes into share links)\n"
    "            --transport tcp|tls  the carrier (default tcp); tls looks like a browser\n"
    "                                 visiting the cover site, and hands every connection\n"
    "                                 without a client key to that site\n"
    "            --cover HOST:PORT    tls: the real HTTPS site to look like and hand\n"
    "                                 probers to, e.g. www.example.com:443\n"
    "            --sni NAME           tls: the server name clients send (default: the\n"
    "                                 cover's host; required when it is an IP address)\n"
    "            --fingerprint F      tls: chromium (default) or firefox\n"
    "            --ports LO-HI        tcp: hop over this port range (the listen port is\n"
    "                                 then unused), e.g. 20000-40000\n"
    "            --hop D              tcp: slot length of the hopping (1s..1h, default 60s)\n"
    "            --transport ws       a WebSocket behind a front (nginx, a CDN) that\n"
    "                                 terminates TLS; listen on 127.0.0.1 with plain HTTP\n"
    "            --ws-path /PATH      ws: the secret path the front forwards here\n"
    "            --public-host FRONT[:PORT]  ws: the front clients dial (default port 443)\n"
    "            --zone ZONE          dns: the zone delegated to this server, which answers\n"
    "                                 for it on UDP and TCP at --listen (port 53), e.g.\n"
    "                                 --transport dns --zone t.example.com\n"
    "add-client  authorises a new client with a fresh key and prints its umbra://\n"
    "            link (and a QR code when standard output is a terminal). With -c FILE\n"
    "            it appends to the file (reload a running server with SIGHUP); without\n"
    "            -c (or with --socket) the running server adds it, writes its config\n"
    "            file and serves the new client at once.\n"
    "            --quota Q            payload bytes (both ways) the client may move, with\n"
    "                                 a k, m, g or t suffix, e.g. 10G; its sessions end\n"
    "                                 when it is used up (key quota)\n"
    "            --expires DATE       YYYY-MM-DD: served to the end of that day, UTC\n"
    "                                 (key expires)\n"
    "clients     lists the authorised clients: state (active, over-quota, expired),\n"
    "            live session ids, open streams, payload bytes in and out since the\n"
    "            server started, quota, expiry, last seen (UTC). --json: the raw answer.\n"
    "remove-client  removes the client from the config file and ends its sessions.\n"
    "kick        ends one session (by the id 'clients' shows) or every session of a\n"
    "            client (by name); the client may connect again.\n"
    "set-quota   sets (or with off removes) a client's quota; set-expiry likewise its\n"
    "            expiry date (never: none). Both are written into the config file.\n"
    "            --socket PATH        the server's management socket (default\n"
    "                                 $XDG_RUNTIME_DIR/umbra/umbra-server.sock, else\n"
    "                                 ${TMPDIR:-/tmp}/umbra-UID/umbra-server.sock; key\n"
    "                                 control in [server])\n"
    "(run)       runs the server.\n"
    "            -c, --config FILE    the server config (see docs/CONFIG.md)\n"
    "            --allow CIDR         also allow egress to CIDR (repeatable), e.g.\n"
    "                                 127.0.0.0/8 to reach services on this host\n"
    "            --log-level LEVEL    error, warn, info, debug or trace\n"
    "            --metrics ADDR       serve Prometheus metrics at http://ADDR/metrics,\n"
    "                                 e.g. 127.0.0.1:9477 (key metrics)\n"
    "            --check              validate the config and exit\n";

static int write_new_file(const char *path, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path,
                 errno == EEXIST ? "already exists; refusing to overwrite it" : strerror(errno));
        return errno == EEXIST ? -2 : -1;
    }
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* --transport dns: the zone, nothing else of the other transports. */
static int init_dns(const char *cover, const char *sni, const char *fingerprint, const char *ports,
                    const char *hop, const char *zone, char *out, size_t cap)
{
    const char *opt = cover         ? "--cover"
                      : sni         ? "--sni"
                      : fingerprint ? "--fingerprint"
                      : ports       ? "--ports"
                      : hop         ? "--hop"
                                    : NULL;
    if (opt) {
        um_cli_error("server init", "%s does not go with --transport dns", opt);
        return -1;
    }
    char z[UM_DOMAIN_MAX + 1];
    if (!zone) {
        um_cli_error("server init",
                     "--transport dns needs --zone ZONE, the DNS zone delegated to this server "
                     "(e.g. --zone t.example.com; see docs/dns-delegation.md)");
        return -1;
    }
    if (um_dns_zone_norm(zone, z, sizeof(z)) != 0) {
        um_cli_error("server init",
                     "--zone '%s': expected a DNS zone name of at most 200 characters, e.g. "
                     "t.example.com",
                     zone);
        return -1;
    }
    snprintf(out, cap,
             "transport = dns\n"
             "\n"
             "# Authoritative for zone on UDP and TCP at the listen address (usually port 53);\n"
             "# the parent zone delegates it here (docs/dns-delegation.md).\n"
             "[transport \"dns\"]\n"
             "type = dns\n"
             "zone = %s\n",
             z);
    return 0;
}

/* The transport options of init: nothing for tcp (the built-in default),
 * else "transport = tls" for [server] and a [transport "tls"] section, in
 * out. Returns 0, or -1 after printing the usage error. */
static int init_transport(const char *transport, const char *cover, const char *sni,
                          const char *fingerprint, const char *ports, const char *hop,
                          const char *zone, char *out, size_t cap)
{
    uint8_t type = UM_TR_TCP, fp = UM_TLS_FP_CHROMIUM;
    char why[160];
    out[0] = '\0';
    if (transport && um_tr_type_parse(transport, &type) != 0) {
        um_cli_error("server init", "--transport '%s': expected tcp, tls, ws or dns", transport);
        return -1;
    }
    if (zone && type != UM_TR_DNS) {
        um_cli_error("server init", "--zone goes with --transport dns");
        return -1;
    }
    if (type == UM_TR_DNS) return init_dns(cover, sni, fingerprint, ports, hop, zone, out, cap);
    if (hop && !ports) {
        um_cli_error("server init", "--hop goes with --ports LO-HI");
        return -1;
    }
    if (type != UM_TR_TLS) {
        const char *opt = cover ? "--cover" : sni ? "--sni" : fingerprint ? "--fingerprint" : NULL;
        if (opt) {
            um_cli_error("server init", "%s goes with --transport tls", opt);
            return -1;
        }
        if (!ports) return 0;
        uint16_t lo, hi;
        uint32_t ms = UM_HOP_DEFAULT_MS;
        if (um_parse_port_range(&lo, &hi, ports) != 0) {
            um_cli_error("server init",
                         "--ports '%s': expected a port range LO-HI, e.g. 20000-40000", ports);
            return -1;
        }
        if (hop &&
            (um_parse_duration_ms(&ms, hop) != 0 || ms < UM_HOP_MIN_MS || ms > UM_HOP_MAX_MS)) {
            um_cli_error("server init",
                         "--hop '%s': expected a slot length from 1s to 1h (suffix ms, s, m or h), "
                         "e.g. 60s",
                         hop);
            return -1;
        }
        char d[16];
        um_format_duration(d, sizeof(d), ms);
        snprintf(out, cap,
                 "transport = tcp\n"
                 "\n"
                 "# Port hopping: the port changes every hop (docs/PROTOCOL.md); the listen\n"
                 "# address's port is unused.\n"
                 "[transport \"tcp\"]\n"
                 "type = tcp\n"
                 "ports = %u-%u\n"
                 "hop = %s\n",
                 (unsigned)lo, (unsigned)hi, d);
        return 0;
    }
    if (ports) {
        um_cli_error("server init",
                     "--ports goes with the tcp transport (port hopping is tcp only)");
        return -1;
    }
    if (!cover) {
        um_cli_error("server init",
                     "--transport tls needs --cover HOST:PORT, the real HTTPS site that "
                     "connections without a client key are handed to (e.g. "
                     "--cover www.example.com:443)");
        return -1;
    }
    um_addr_t ca;
    if (um_addr_parse(&ca, cover, strlen(cover), 0, why, sizeof(why)) != 0) {
        um_cli_error("server init",
                     "--cover '%s': %s (expected HOST:PORT, e.g. "
                     "www.example.com:443)",
                     cover, why);
        return -1;
    }
    if (fingerprint && um_cfg_fp_parse(fingerprint, &fp) != 0) {
        um_cli_error("server init", "--fingerprint '%s': expected chromium or firefox",
                     fingerprint);
        return -1;
    }
    char name[UM_DOMAIN_MAX + 1];
    if (sni) {
        if (!um_sni_valid(sni, strlen(sni))) {
            um_cli_error("server init",
                         "--sni '%s': expected a DNS host name such as www.example.com", sni);
            return -1;
        }
        snprintf(name, sizeof(name), "%s", sni);
    } else if (ca.type != UM_ADDR_DOMAIN || !um_sni_valid(ca.u.domain, ca.domain_len)) {
        um_cli_error("server init",
                     "--cover '%s' is %s: give --sni NAME, the host name the cover site serves "
                     "(e.g. --sni www.example.com)",
                     cover, ca.type != UM_ADDR_DOMAIN ? "an IP address" : "not a DNS name");
        return -1;
    } else {
        snprintf(name, sizeof(name), "%s", ca.u.domain);
    }
    for (char *q = name; *q; q++)
        if (*q >= 'A' && *q <= 'Z') *q = (char)(*q - 'A' + 'a');
    snprintf(out, cap,
             "transport = tls\n"
             "\n"
             "# Clients send sni; a connection without a client key is handed to cover.\n"
             "[transport \"tls\"]\n"
             "type = tls\n"
             "cover = %s\n"
             "sni = %s\n"
             "fingerprint = %s\n",
             cover, name, um_cfg_fp_name(fp));
    return 0;
}

static int init_ws(const char *path, const char *front, bool other, char *out, size_t cap);

static int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},      {"listen", required_argument, NULL, 'l'},
        {"public-host", required_argument, NULL, 'p'}, {"transport", required_argument, NULL, 't'},
        {"cover", required_argument, NULL, 'C'},       {"sni", required_argument, NULL, 's'},
        {"fingerprint", required_argument, NULL, 'f'}, {"ports", required_argument, NULL, 'P'},
        {"hop", required_argument, NULL, 'H'},         {"ws-path", required_argument, NULL, 'W'},
        {"zone", required_argument, NULL, 'Z'},        {NULL, 0, NULL, 0},
    };
    const char *zone = NULL;
    const char *path = NULL, *listen = NULL, *host = NULL;
    const char *transport = NULL, *cover = NULL, *sni = NULL, *fingerprint = NULL;
    const char *ports = NULL, *hop = NULL, *ws_path = NULL;
    int c;
    char why[160];
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'l': listen = optarg; break;
        case 'p': host = optarg; break;
        case 't': transport = optarg; break;
        case 'C': cover = optarg; break;
        case 's': sni = optarg; break;
        case 'f': fingerprint = optarg; break;
        case 'P': ports = optarg; break;
        case 'H': hop = optarg; break;
        case 'W': ws_path = optarg; break;
        case 'Z': zone = optarg; break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (optind != argc || !path || !listen) {
        um_cli_error("server init", "needs -c FILE and --listen ADDR (see 'umbra help server')");
        return UM_EXIT_USAGE;
    }
    um_addr_t a;
    if (um_addr_parse(&a, listen, strlen(listen), 0, why, sizeof(why)) != 0 ||
        a.type == UM_ADDR_DOMAIN) {
        um_cli_error("server init", "--listen '%s': %s", listen,
                     a.type == UM_ADDR_DOMAIN ? "expected an IP address and port" : why);
        return UM_EXIT_USAGE;
    }
    char trtext[UM_DOMAIN_MAX * 2 + 512] = "";
    if (transport && strcmp(transport, "ws") == 0) {
        if (init_ws(ws_path, host, cover || sni || fingerprint || ports || hop || zone, trtext,
                    sizeof(trtext)) != 0)
            return UM_EXIT_USAGE;
        host = NULL; /* the front's name goes into the transport section */
    } else if (ws_path) {
        um_cli_error("server init", "--ws-path goes with --transport ws");
        return UM_EXIT_USAGE;
    }
    if (host && um_addr_parse_host(&a, host, strlen(host), why, sizeof(why)) != 0) {
        um_cli_error("server init", "--public-host '%s': %s", host, why);
        return UM_EXIT_USAGE;
    }
    if (!trtext[0] && init_transport(transport, cover, sni, fingerprint, ports, hop, zone, trtext,
                                     sizeof(trtext)) != 0)
        return UM_EXIT_USAGE;
    uint8_t priv[32];
    char key[UM_KEY_B64_LEN + 1];
    char text[2048];
    um_key_generate(priv);
    um_key_to_b64(key, priv);
    sodium_memzero(priv, sizeof(priv));
    snprintf(text, sizeof(text),
             "# umbra server configuration (docs/CONFIG.md). Keep this file private.\n"
             "[server]\n"
             "private-key = %s\n"
             "listen = %s\n"
             "%s%s%s"
             "%s"
             "\n# Authorised clients are added by: umbra server add-client -c %s NAME\n",
             key, listen, host ? "public-host = " : "", host ? host : "", host ? "\n" : "", trtext,
             path);
    sodium_memzero(key, sizeof(key));
    int r = write_new_file(path, text, why, sizeof(why));
    sodium_memzero(text, sizeof(text));
    if (r != 0) {
        um_cli_error("server init", "%s", why);
        return r == -2 ? UM_EXIT_CONFIG : UM_EXIT_RUNTIME;
    }
    fprintf(stderr, "umbra server init: wrote %s (mode 0600)\n", path);
    return UM_EXIT_OK;
}

/* --transport ws: the [transport "ws"] section, from --ws-path and
 * --public-host FRONT[:PORT] (the front clients dial: nginx or a CDN). */
static int init_ws(const char *path, const char *front, bool other, char *out, size_t cap)
{
    if (other) {
        um_cli_error("server init", "--cover, --sni, --fingerprint, --ports, --hop and --zone do "
                                    "not go with --transport ws");
        return -1;
    }
    if (!path || !um_ws_path_ok(path)) {
        um_cli_error("server init",
                     "--transport ws needs --ws-path /PATH, the secret URL path the front "
                     "forwards to this server (e.g. --ws-path /api/v2/stream)");
        return -1;
    }
    size_t n = front ? strlen(front) : 0;
    bool ok = n > 0 && n <= UM_WS_HOST_MAX;
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)front[i] <= ' ' || (unsigned char)front[i] >= 0x7f || front[i] == '/')
            ok = false;
    if (!ok) {
        um_cli_error("server init",
                     "--transport ws needs --public-host FRONT[:PORT], the front (nginx, a CDN) "
                     "clients dial (e.g. --public-host cdn.example.com or front.example:8443)");
        return -1;
    }
    snprintf(out, cap,
             "transport = ws\n"
             "\n"
             "# Behind a front that terminates TLS (docs/nginx-ws.conf): it forwards path\n"
             "# to listen; clients dial host over TLS.\n"
             "[transport \"ws\"]\n"
             "type = ws\n"
             "path = %s\n"
             "host = %s\n",
             path, front);
    return 0;
}

/* A ws server's link: the front (host, default port 443, or 80 with
 * tls = off) is the address clients dial; path, host, sni, tls. */
static int server_link_ws(um_link_t *l, const um_transport_cfg_t *t, char *err, size_t errlen)
{
    char why[128];
    um_addr_t a;
    if (!t->ws_host[0]) {
        snprintf(err, errlen,
                 "[transport \"%s\"]: a ws transport needs 'host' (the front "
                 "clients dial) for its links",
                 t->name);
        return -1;
    }
    uint16_t def = t->ws_tls_set && !t->ws_tls ? 80 : 443;
    if (um_addr_parse(&a, t->ws_host, strlen(t->ws_host), def, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "[transport \"%s\"]: host '%s': %s", t->name, t->ws_host, why);
        return -1;
    }
    l->addrs[0] = a;
    l->n_addrs = 1;
    snprintf(l->ws_path, sizeof(l->ws_path), "%s", t->ws_path);
    snprintf(l->ws_host, sizeof(l->ws_host), "%s", t->ws_host);
    snprintf(l->sni, sizeof(l->sni), "%s", t->sni);
    l->ws_notls = t->ws_tls_set && !t->ws_tls;
    return 0;
}

/* Builds the share link for a client of this server. */
static int server_link(const um_config_t *cfg, const uint8_t client_priv[32], const char *name,
                       char *out, size_t cap, char *err, size_t errlen)
{
    um_link_t l;
    memset(&l, 0, sizeof(l));
    snprintf(l.name, sizeof(l.name), "%s", name);
    if (um_key_public(l.server_public_key, cfg->private_key) != 0) {
        snprintf(err, errlen, "server private key is invalid");
        return -1;
    }
    memcpy(l.client_private_key, client_priv, 32);
    for (size_t i = 0; i < cfg->n_listen && l.n_addrs < UM_CFG_MAX_ADDRS; i++) {
        um_addr_t a = cfg->listen[i];
        if (cfg->public_host[0]) {
            char why[128];
            if (um_addr_parse_host(&a, cfg->public_host, strlen(cfg->public_host), why,
                                   sizeof(why)) != 0)
                continue;
            a.port = cfg->listen[i].port;
        } else {
            static const uint8_t zero[16];
            const um_transport_cfg_t *dt = um_config_transport(cfg, cfg->transport);
            if (dt && dt->type == UM_TR_DNS) {
                /* dns: clients reach the server through their resolver; the
                 * address only names it. */
            } else if ((a.type == UM_ADDR_IPV4 && memcmp(a.u.v4, zero, 4) == 0) ||
                       (a.type == UM_ADDR_IPV6 && memcmp(a.u.v6, zero, 16) == 0)) {
                snprintf(err, errlen,
                         "%s: listen address is a wildcard; add 'public-host = <name or IP "
                         "clients dial>' to [server]",
                         cfg->path);
                um_link_wipe(&l);
                return -1;
            }
        }
        bool dup = false;
        for (size_t j = 0; j < l.n_addrs; j++)
            if (um_addr_equal(&l.addrs[j], &a)) dup = true;
        if (!dup) l.addrs[l.n_addrs++] = a;
    }
    const um_transport_cfg_t *t = um_config_transport(cfg, cfg->transport);
    if (t) {
        l.transport = t->type;
        l.shape = t->shape;
        l.padding = t->padding;
        if (t->type == UM_TR_WS && server_link_ws(&l, t, err, errlen) != 0) {
            um_link_wipe(&l);
            return -1;
        }
        if (t->type == UM_TR_TLS) {
            snprintf(l.sni, sizeof(l.sni), "%s", t->sni);
            l.fingerprint = t->fingerprint;
        } else if (t->type == UM_TR_DNS) {
            snprintf(l.zone, sizeof(l.zone), "%s", t->zone);
            snprintf(l.resolver, sizeof(l.resolver), "%s", t->resolver);
        } else if (t->hop_lo) {
            l.hop_lo = t->hop_lo;
            l.hop_hi = t->hop_hi;
            l.hop_ms = t->hop_ms;
        }
    }
    int r = um_link_encode(&l, out, cap);
    um_link_wipe(&l);
    if (r != 0) snprintf(err, errlen, "link too long");
    return r;
}

static int cmd_add_client(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"qr", no_argument, NULL, 'q'},
        {"no-qr", no_argument, NULL, 'n'},         {"quota", required_argument, NULL, 'Q'},
        {"expires", required_argument, NULL, 'E'}, {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c, qr = isatty(STDOUT_FILENO);
    char extra[96] = ""; /* quota and expires lines */
    uint64_t quota;
    int64_t expires;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'q': qr = 1; break;
        case 'n': qr = 0; break;
        case 'Q':
        case 'E':
            if (c == 'Q' ? um_parse_quota(&quota, optarg) != 0
                         : um_parse_expiry(&expires, optarg) != 0) {
                um_cli_error("server add-client", "%s '%s': expected %s",
                             c == 'Q' ? "--quota" : "--expires", optarg,
                             c == 'Q' ? "bytes with a k, m, g or t suffix, e.g. 10G"
                                      : "a date YYYY-MM-DD");
                return UM_EXIT_USAGE;
            }
            snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%s = %s\n",
                     c == 'Q' ? "quota" : "expires", optarg);
            break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !path) {
        um_cli_error("server add-client", "needs -c FILE and one client NAME");
        return UM_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!um_name_valid(name)) {
        um_cli_error("server add-client", "name '%s': use 1 to 63 letters, digits, '-', '_' or '.'",
                     name);
        return UM_EXIT_USAGE;
    }
    um_config_t cfg;
    char err[UM_ERR_MAX];
    um_config_init(&cfg);
    if (um_config_load(&cfg, path, err, sizeof(err)) != 0) {
        um_cli_error("server add-client", "%s", err);
        um_config_free(&cfg);
        return UM_EXIT_CONFIG;
    }
    if (cfg.role != UM_ROLE_SERVER) {
        um_cli_error("server add-client", "%s is not a server config", path);
        um_config_free(&cfg);
        return UM_EXIT_CONFIG;
    }
    for (size_t i = 0; i < cfg.n_clients; i++)
        if (strcmp(cfg.clients[i].name, name) == 0) {
            um_cli_error("server add-client", "%s:%d: a client named '%s' exists already", path,
                         cfg.clients[i].line, name);
            um_config_free(&cfg);
            return UM_EXIT_CONFIG;
        }
    uint8_t priv[32], pub[32];
    char link[UM_LINK_MAX], key[UM_KEY_B64_LEN + 1];
    um_key_generate(priv);
    um_key_public(pub, priv);
    int r = server_link(&cfg, priv, name, link, sizeof(link), err, sizeof(err));
    sodium_memzero(priv, sizeof(priv));
    um_config_free(&cfg);
    if (r != 0) {
        um_cli_error("server add-client", "%s", err);
        return UM_EXIT_CONFIG;
    }
    um_key_to_b64(key, pub);
    FILE *f = fopen(path, "a");
    if (!f || fprintf(f, "\n[client \"%s\"]\npublic-key = %s\n%s", name, key, extra) < 0 ||
        fclose(f) != 0) {
        um_cli_error("server add-client", "%s: cannot append: %s", path, strerror(errno));
        sodium_memzero(link, sizeof(link));
        return UM_EXIT_RUNTIME;
    }
    fprintf(stderr,
            "umbra server add-client: added [client \"%s\"] to %s; send this link to the client "
            "over a private channel (it holds the client's key; reload a running server with "
            "SIGHUP):\n",
            name, path);
    printf("%s\n", link);
    if (qr) um_cli_print_qr(stdout, link);
    sodium_memzero(link, sizeof(link));
    return UM_EXIT_OK;
}

int um_cmd_server(int argc, char **argv)
{
    int mr = um_cmd_server_mgmt(argc, argv);
    if (mr >= 0) return mr;
    if (argc >= 2 && strcmp(argv[1], "init") == 0) return cmd_init(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "add-client") == 0) return cmd_add_client(argc - 1, argv + 1);
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"allow", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'v'}, {"check", no_argument, NULL, 'k'},
        {"metrics", required_argument, NULL, 'M'},   {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *level = NULL, *metrics = NULL;
    const char *allow[UM_CFG_MAX_ALLOW];
    size_t n_allow = 0;
    int c, check = 0;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'a':
            if (n_allow == UM_CFG_MAX_ALLOW) {
                um_cli_error("server", "at most %d --allow rules", UM_CFG_MAX_ALLOW);
                return UM_EXIT_USAGE;
            }
            allow[n_allow++] = optarg;
            break;
        case 'v': level = optarg; break;
        case 'k': check = 1; break;
        case 'M': metrics = optarg; break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        um_cli_error("server",
                     "unexpected argument '%s' (commands: init, add-client, clients, "
                     "remove-client, kick, set-quota, set-expiry)",
                     argv[optind]);
        return UM_EXIT_USAGE;
    }
    if (!path) {
        um_cli_error("server", "needs -c FILE (create one with 'umbra server init')");
        return UM_EXIT_USAGE;
    }
    um_log_level_t lv;
    if (level && um_log_level_parse(level, &lv) != 0) {
        um_cli_error("server", "--log-level '%s': expected error, warn, info, debug or trace",
                     level);
        return UM_EXIT_USAGE;
    }
    um_config_t cfg;
    char err[UM_ERR_MAX];
    um_config_init(&cfg);
    int rc = UM_EXIT_OK;
    if (um_config_load(&cfg, path, err, sizeof(err)) != 0) {
        um_cli_error("server", "%s", err);
        rc = UM_EXIT_CONFIG;
        goto out;
    }
    if (cfg.role != UM_ROLE_SERVER) {
        um_cli_error("server", "%s is a client config (it has [client]); use 'umbra client -c'",
                     path);
        rc = UM_EXIT_CONFIG;
        goto out;
    }
    for (size_t i = 0; i < n_allow; i++) {
        char why[128];
        if (cfg.n_allow == UM_CFG_MAX_ALLOW ||
            um_cidr_parse(&cfg.allow[cfg.n_allow], allow[i], strlen(allow[i]), why, sizeof(why))) {
            um_cli_error("server", "--allow '%s': %s", allow[i],
                         cfg.n_allow == UM_CFG_MAX_ALLOW ? "too many rules" : why);
            rc = UM_EXIT_USAGE;
            goto out;
        }
        cfg.n_allow++;
    }
    if (level) snprintf(cfg.log_level, sizeof(cfg.log_level), "%s", level);
    if (metrics) {
        char why[128];
        if (um_addr_parse(&cfg.metrics, metrics, strlen(metrics), 0, why, sizeof(why)) != 0 ||
            cfg.metrics.type == UM_ADDR_DOMAIN) {
            um_cli_error("server",
                         "--metrics '%s': expected an IP address and port, e.g. "
                         "127.0.0.1:9477",
                         metrics);
            rc = UM_EXIT_USAGE;
            goto out;
        }
        cfg.has_metrics = true;
    }
    if (check) {
        char a[UM_ADDR_STRLEN];
        printf("%s: valid server config: %zu listen address(es)", path, cfg.n_listen);
        um_addr_format(&cfg.listen[0], a, sizeof(a));
        printf(" (first %s), %zu authorised client(s), %zu egress allow rule(s)\n", a,
               cfg.n_clients, cfg.n_allow);
        goto out;
    }
    rc = um_run_server(&cfg);
out:
    um_config_free(&cfg);
    return rc;
}

int um_server_link(const um_config_t *cfg, const uint8_t client_priv[32], const char *name,
                   char *out, size_t cap, char *err, size_t errlen)
{
    return server_link(cfg, client_priv, name, out, cap, err, errlen);
}
