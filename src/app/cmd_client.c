/* umbra client: local SOCKS5/HTTP proxies and forwards over one session. */
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
#include "app/control.h"
#include "app/link.h"
#include "app/routing.h"
#include "app/run.h"
#include "proxy/rules.h"
#include "util/err.h"
#include "util/log.h"

const char um_usage_client[] =
    "usage: umbra client --link-file FILE|- [options]\n"
    "       umbra client -c FILE [options]\n\n"
    "  --link-file FILE|-   read the share link from 'umbra server add-client' from\n"
    "                       FILE (mode 0600), or '-' for standard input\n"
    "  --link LINK          the share link itself; other local users may glimpse it\n"
    "                       in ps before it is scrubbed, so prefer --link-file\n"
    "  -c, --config FILE    a client config (see docs/CONFIG.md)\n"
    "  --socks ADDR         SOCKS5 proxy address (default 127.0.0.1:1080)\n"
    "  --http ADDR          HTTP proxy address (default 127.0.0.1:8118)\n"
    "  -L [BIND:]PORT:HOST:HOSTPORT\n"
    "                       forward a local port to HOST:HOSTPORT through the tunnel\n"
    "                       (repeatable; BIND defaults to 127.0.0.1)\n"
    "  --tun                VPN mode: capture every application's traffic through a TUN\n"
    "                       device and route everything but the server through the tunnel\n"
    "                       (needs CAP_NET_ADMIN; proxies are only started when asked for)\n"
    "  --tun-name NAME      name of the TUN device (implies --tun; default: kernel's choice)\n"
    "  --tun-mtu N          MTU of the TUN device (1280..65535; see docs/CONFIG.md)\n"
    "  --tun-fd FD          VPN mode on a TUN descriptor a parent process opened and\n"
    "                       configured (address, routes), as Android's VpnService does\n"
    "  --rotate MIN[-MAX]   move the session to a new connection after a random\n"
    "                       MIN..MAX bytes on each (k/m suffixes, e.g. 12k-16k; off)\n"
    "  --rotate-after MIN[-MAX]\n"
    "                       ... and after a random MIN..MAX time (e.g. 30s-5m; off)\n"
    "  --max-connections N  connections to one server at once (2..64, default 6)\n"
    "  --upstream URL       reach the server through a proxy: socks5://[user:pass@]host:port\n"
    "                       or http://[user:pass@]host:port (HTTP CONNECT)\n"
    "  --events FILE|-      write JSON-line events to FILE, or '-' for standard output\n"
    "  --control PATH|off   control socket read by 'umbra status' (default\n"
    "                       $XDG_RUNTIME_DIR/umbra/umbra.sock or\n"
    "                       ${TMPDIR:-/tmp}/umbra-<uid>/umbra.sock, in a 0700 directory)\n"
    "  --metrics ADDR       serve Prometheus metrics at http://ADDR/metrics, e.g.\n"
    "                       127.0.0.1:9478 (key metrics)\n"
    "  --state-file PATH    remembered dial parameters (default\n"
    "                       $XDG_STATE_HOME/umbra/state or ~/.local/state/umbra/state)\n"
    "  --rule 'ACTION MATCH'\n"
    "                       routing rule (repeatable, before the config's): ACTION tunnel,\n"
    "                       direct or block; MATCH cidr:PREFIX, domain:NAME (and its\n"
    "                       subdomains), keyword:WORD, port:N[-M] or geoip:CC\n"
    "  --rules-file PATH    more rules, one a line (repeatable; reloaded on SIGHUP)\n"
    "  --geoip-file PATH    GeoIP table for geoip:CC (Tor geoip/geoip6 text or MaxMind\n"
    "                       .mmdb; repeatable; reloaded on SIGHUP)\n"
    "  --default-route ACTION\n"
    "                       what no rule matches: tunnel (default), direct or block\n"
    "  --fast-open on|off   reply to SOCKS5 and HTTP CONNECT at once and send the\n"
    "                       application's first bytes with the open (default on)\n"
    "  --log-level LEVEL    error, warn, info, debug or trace\n"
    "  --check              validate the options and config, print a summary, exit\n"
    "Proxies listen on loopback unless an address says otherwise.\n";

static int set_addr(const char *opt, const char *v, um_addr_t *a, bool *has)
{
    char why[128];
    if (um_addr_parse(a, v, strlen(v), 0, why, sizeof(why)) != 0 || a->type == UM_ADDR_DOMAIN) {
        um_cli_error("client", "%s '%s': %s", opt, v,
                     a->type == UM_ADDR_DOMAIN ? "expected an IP address and port" : why);
        return -1;
    }
    *has = true;
    return 0;
}

#define LINKS_MAX (8 * (UM_LINK_MAX + 1)) /* a link file's bytes */
/* Reads a share link from path ('-': standard input) into out, NUL-terminated,
 * surrounding white space removed. Warns when the file is readable by group or
 * others. 0, or -1 after printing why. */
static int read_link_file(const char *path, char *out, size_t cap)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        um_cli_error("client", "--link-file '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (!is_stdin && fstat(fd, &st) == 0) {
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
            um_cli_error("client", "--link-file '%s': not a regular file", path);
            close(fd);
            return -1;
        }
        if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)))
            fprintf(stderr, "umbra: warning: %s is readable by group or others (chmod 600 it)\n",
                    path);
    }
    size_t n = 0;
    int r = 0;
    for (;;) {
        if (n == cap - 1) { /* one more byte: is there more than fits? */
            char extra;
            ssize_t k = read(fd, &extra, 1);
            if (k > 0 && extra != '\n' && extra != '\r' && extra != ' ' && extra != '\t') {
                um_cli_error("client", "--link-file '%s': longer than %zu bytes", path, cap - 1);
                r = -1;
            }
            break;
        }
        ssize_t k = read(fd, out + n, cap - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            um_cli_error("client", "--link-file '%s': %s", path, strerror(errno));
            r = -1;
            break;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    if (!is_stdin) close(fd);
    out[n] = 0;
    if (r != 0) {
        sodium_memzero(out, cap);
        return -1;
    }
    size_t a = 0;
    while (a < n && strchr(" \t\r\n", out[a]))
        a++;
    while (n > a && strchr(" \t\r\n", out[n - 1]))
        n--;
    memmove(out, out + a, n - a);
    sodium_memzero(out + (n - a), cap - (n - a));
    if (n == a) {
        um_cli_error("client", "--link-file '%s': empty", path);
        return -1;
    }
    return 0;
}

/* The links of s, one per line (empty lines and '#' lines skipped), into
 * cfg: one [server] section each (um_config_add_link). 0, or -1 after
 * printing why. */
static int add_links(um_config_t *cfg, const char *opt, const char *s)
{
    char err[UM_ERR_MAX];
    size_t nth = 0;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        const char *p = s;
        s += len + (e ? 1 : 0);
        while (len > 0 && strchr(" \t\r", p[0])) {
            p++;
            len--;
        }
        while (len > 0 && strchr(" \t\r", p[len - 1]))
            len--;
        if (len == 0 || p[0] == '#') continue;
        nth++;
        um_link_t l;
        int r = len > UM_LINK_MAX ? UM_EINVAL : um_link_decode(&l, p, len, err, sizeof(err));
        if (len > UM_LINK_MAX) snprintf(err, sizeof(err), "longer than %d bytes", UM_LINK_MAX);
        char where[32] = "";
        if (nth > 1) snprintf(where, sizeof(where), "link %zu: ", nth);
        if (r != 0) {
            um_cli_error("client", "%s: %sbad link: %s", opt, where, err);
            return -1;
        }
        r = um_config_add_link(cfg, &l, err, sizeof(err));
        um_link_wipe(&l);
        if (r != 0) {
            um_cli_error("client", "%s: %s%s", opt, where, err);
            return -1;
        }
    }
    if (nth == 0) {
        um_cli_error("client", "%s: no link in it", opt);
        return -1;
    }
    return 0;
}

/* Loopback: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104. */
static bool is_loopback(const um_addr_t *a)
{
    static const uint8_t one[16] = {[15] = 1}, mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (a->type == UM_ADDR_IPV4) return a->u.v4[0] == 127;
    return a->type == UM_ADDR_IPV6 && (memcmp(a->u.v6, one, 16) == 0 ||
                                       (memcmp(a->u.v6, mapped, 12) == 0 && a->u.v6[12] == 127));
}

static bool is_wildcard(const um_addr_t *a)
{
    static const uint8_t zero[16];
    return (a->type == UM_ADDR_IPV4 && memcmp(a->u.v4, zero, 4) == 0) ||
           (a->type == UM_ADDR_IPV6 && memcmp(a->u.v6, zero, 16) == 0);
}

/* A proxy on a wildcard or other non-loopback address serves whoever can
 * reach it: say so, and louder when no password guards it. */
static void warn_exposed(const char *what, const um_addr_t *a, bool has_creds)
{
    if (is_loopback(a)) return;
    char s[UM_ADDR_STRLEN];
    um_addr_format(a, s, sizeof(s));
    if (is_wildcard(a))
        fprintf(stderr,
                "umbra: warning: the %s listens on %s: every address of this host, "
                "reachable from its networks\n",
                what, s);
    if (!has_creds)
        fprintf(stderr, "umbra: warning: the %s on %s is not on loopback and %s\n", what, s,
                strcmp(what, "forward") == 0
                    ? "has no password: anyone who reaches it uses the tunnel"
                    : "has no password: set socks-user and socks-password (they guard the SOCKS5 "
                      "and HTTP proxies) or anyone who reaches it uses the tunnel");
}

/* --rotate, --rotate-after and --max-connections (each may be NULL): they
 * override every server's keys. 0, or -1 after printing why. */
static int apply_rotation(um_config_t *cfg, const char *rotate, const char *after,
                          const char *max_conns)
{
    uint32_t bmin = 0, bmax = 0, tmin = 0, tmax = 0, mc = 0;
    if (rotate &&
        um_parse_size_range(&bmin, &bmax, rotate, UM_ROTATE_BYTES_MIN, UM_ROTATE_BYTES_MAX) != 0) {
        um_cli_error("client",
                     "--rotate '%s': expected bytes per connection MIN[-MAX] from 4k to 1024m "
                     "(suffix k or m), e.g. 12k-16k, or off",
                     rotate);
        return -1;
    }
    if (after && um_parse_duration_range(&tmin, &tmax, after, UM_ROTATE_AFTER_MIN_MS,
                                         UM_ROTATE_AFTER_MAX_MS) != 0) {
        um_cli_error("client",
                     "--rotate-after '%s': expected a time per connection MIN[-MAX] from 1s to 24h "
                     "(suffix ms, s, m or h), e.g. 30s-5m, or off",
                     after);
        return -1;
    }
    if (max_conns &&
        um_parse_u32(&mc, max_conns, UM_MAX_CONNECTIONS_MIN, UM_MAX_CONNECTIONS_MAX) != 0) {
        um_cli_error("client", "--max-connections '%s': expected a number from %u to %u", max_conns,
                     UM_MAX_CONNECTIONS_MIN, UM_MAX_CONNECTIONS_MAX);
        return -1;
    }
    for (size_t i = 0; i < cfg->n_servers; i++) {
        um_peer_server_t *s = &cfg->servers[i];
        if (rotate) {
            s->rotate_min = bmin;
            s->rotate_max = bmax;
            s->rotate_set = true;
        }
        if (after) {
            s->rotate_after_min_ms = tmin;
            s->rotate_after_max_ms = tmax;
            s->rotate_after_set = true;
        }
        if (max_conns) s->max_connections = mc;
    }
    return 0;
}

/* --rule (before the config's rule lines), --rules-file and --geoip-file
 * (after the config's), --default-route. 0, or -1 after printing why. */
static int apply_rules(um_config_t *cfg, const char *const *rules, size_t n_rules,
                       const char *const *rfiles, size_t n_rfiles, const char *const *gfiles,
                       size_t n_gfiles, const char *def)
{
    char why[160];
    if (cfg->n_rules + n_rules > UM_CFG_MAX_RULES) {
        um_cli_error("client", "at most %d rules from --rule and rule lines (use a rules-file)",
                     UM_CFG_MAX_RULES);
        return -1;
    }
    for (size_t i = 0; i < n_rules; i++) {
        um_rule_t r;
        if (um_rule_parse(&r, rules[i], strlen(rules[i]), why, sizeof(why)) != 0 ||
            strlen(rules[i]) > UM_CFG_RULE_TEXT_MAX) {
            um_cli_error("client", "--rule '%s': %s", rules[i],
                         strlen(rules[i]) > UM_CFG_RULE_TEXT_MAX ? "too long" : why);
            return -1;
        }
    }
    memmove(cfg->rules + n_rules, cfg->rules, cfg->n_rules * sizeof(cfg->rules[0]));
    memmove(cfg->rule_lines + n_rules, cfg->rule_lines, cfg->n_rules * sizeof(int));
    for (size_t i = 0; i < n_rules; i++) {
        snprintf(cfg->rules[i], sizeof(cfg->rules[i]), "%s", rules[i]);
        cfg->rule_lines[i] = 0;
    }
    cfg->n_rules += n_rules;
    for (size_t i = 0; i < n_rfiles + n_gfiles; i++) {
        bool rf = i < n_rfiles;
        const char *f = rf ? rfiles[i] : gfiles[i - n_rfiles];
        size_t *n = rf ? &cfg->n_rules_files : &cfg->n_geoip_files;
        if (*n == (rf ? UM_CFG_MAX_RULES_FILES : UM_CFG_MAX_GEOIP_FILES) || !*f ||
            strlen(f) >= UM_PATH_MAX) {
            um_cli_error("client", "--%s '%s': too many files or a bad name",
                         rf ? "rules-file" : "geoip-file", f);
            return -1;
        }
        snprintf(rf ? cfg->rules_files[(*n)++] : cfg->geoip_files[(*n)++], UM_PATH_MAX, "%s", f);
    }
    if (def && um_rule_action_parse(def, strlen(def), &cfg->default_route) != 0) {
        um_cli_error("client", "--default-route '%s': expected tunnel, direct or block", def);
        return -1;
    }
    return 0;
}

int um_cmd_client(int argc, char **argv)
{
    static const struct option opts[] = {
        {"link", required_argument, NULL, 'k'},
        {"link-file", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},
        {"socks", required_argument, NULL, 's'},
        {"http", required_argument, NULL, 'h'},
        {"events", required_argument, NULL, 'e'},
        {"log-level", required_argument, NULL, 'v'},
        {"check", no_argument, NULL, 'K'},
        {"control", required_argument, NULL, 'C'},
        {"tun", no_argument, NULL, 'T'},
        {"tun-name", required_argument, NULL, 'N'},
        {"tun-fd", required_argument, NULL, 'F'},
        {"tun-mtu", required_argument, NULL, 'M'},
        {"rotate", required_argument, NULL, 'R'},
        {"rotate-after", required_argument, NULL, 'A'},
        {"max-connections", required_argument, NULL, 'X'},
        {"upstream", required_argument, NULL, 'U'},
        {"state-file", required_argument, NULL, 'S'},
        {"rule", required_argument, NULL, 'r'},
        {"rules-file", required_argument, NULL, 'f'},
        {"geoip-file", required_argument, NULL, 'g'},
        {"default-route", required_argument, NULL, 'D'},
        {"metrics", required_argument, NULL, 'P'},
        {"fast-open", required_argument, NULL, 1500},
        {NULL, 0, NULL, 0},
    };
    const char *metrics = NULL;
    const char *link_file = NULL, *path = NULL, *socks = NULL, *http = NULL, *events = NULL,
               *level = NULL, *control = NULL, *tun_name = NULL, *tun_fd = NULL, *tun_mtu = NULL,
               *rotate = NULL, *rotate_after = NULL, *max_conns = NULL, *upstream = NULL;
    const char *state_file = NULL, *default_route = NULL;
    const char *fast_open = NULL;
    const char *fwd[UM_CFG_MAX_FORWARDS];
    const char *rules[UM_CFG_MAX_RULES], *rules_files[UM_CFG_MAX_RULES_FILES],
        *geoip_files[UM_CFG_MAX_GEOIP_FILES];
    size_t n_rules = 0, n_rules_files = 0, n_geoip_files = 0;
    size_t n_fwd = 0;
    int c, check = 0, tun = 0, n_link = 0, n_files = 0;
    bool link_long = false;
    /* The link holds the client's private key: keep a copy, and scrub the
     * argument in place so /proc/PID/cmdline (ps) stops showing it. */
    char link[LINKS_MAX + 1], up_arg[1024]; /* the links, one per line (--link may repeat) */
    link[0] = 0;
    while ((c = getopt_long(argc, argv, "c:L:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': {
            size_t len = strlen(optarg), used = strlen(link);
            if (len > UM_LINK_MAX || used + 1 + len >= sizeof(link))
                link_long = true;
            else
                snprintf(link + used, sizeof(link) - used, "%s%s", used ? "\n" : "", optarg);
            sodium_memzero(optarg, len);
            n_link++;
            break;
        }
        case 'l':
            n_files += link_file != NULL;
            link_file = optarg;
            n_link++;
            break;
        case 'c': path = optarg; break;
        case 's': socks = optarg; break;
        case 'h': http = optarg; break;
        case 'e': events = optarg; break;
        case 'v': level = optarg; break;
        case 'K': check = 1; break;
        case 'T': tun = 1; break;
        case 'N': tun_name = optarg; break;
        case 'F': tun_fd = optarg; break;
        case 'M': tun_mtu = optarg; break;
        case 'C': control = optarg; break;
        case 'R': rotate = optarg; break;
        case 'A': rotate_after = optarg; break;
        case 'X': max_conns = optarg; break;
        case 'U': /* may hold a password: keep a copy, scrub the argument (as --link) */
            snprintf(up_arg, sizeof(up_arg), "%s", optarg);
            sodium_memzero(optarg, strlen(optarg));
            upstream = up_arg;
            break;
        case 'S': state_file = optarg; break;
        case 'D': default_route = optarg; break;
        case 'r':
        case 'f':
        case 'g': {
            const char **v = c == 'r' ? rules : c == 'f' ? rules_files : geoip_files;
            size_t *k = c == 'r' ? &n_rules : c == 'f' ? &n_rules_files : &n_geoip_files;
            size_t max = c == 'r'   ? UM_CFG_MAX_RULES
                         : c == 'f' ? UM_CFG_MAX_RULES_FILES
                                    : UM_CFG_MAX_GEOIP_FILES;
            if (*k == max) {
                um_cli_error("client", "at most %zu --%s", max,
                             c == 'r'   ? "rule"
                             : c == 'f' ? "rules-file"
                                        : "geoip-file");
                return UM_EXIT_USAGE;
            }
            v[(*k)++] = optarg;
            break;
        }
        case 'P': metrics = optarg; break;
        case 1500: fast_open = optarg; break;
        case 'L':
            if (n_fwd == UM_CFG_MAX_FORWARDS) {
                um_cli_error("client", "at most %d -L forwards", UM_CFG_MAX_FORWARDS);
                return UM_EXIT_USAGE;
            }
            fwd[n_fwd++] = optarg;
            break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        um_cli_error("client", "unexpected argument '%s'", argv[optind]);
        return UM_EXIT_USAGE;
    }
    if ((n_link != 0) == (path != NULL) || n_files > 0 || (link_file && n_link > 1)) {
        sodium_memzero(link, sizeof(link));
        um_cli_error("client",
                     "needs exactly one of --link-file FILE, --link LINK (may repeat) or -c FILE");
        return UM_EXIT_USAGE;
    }
    um_log_level_t lv;
    if (level && um_log_level_parse(level, &lv) != 0) {
        sodium_memzero(link, sizeof(link));
        um_cli_error("client", "--log-level '%s': expected error, warn, info, debug or trace",
                     level);
        return UM_EXIT_USAGE;
    }
    um_config_t cfg;
    char err[UM_ERR_MAX];
    int rc = UM_EXIT_OK;
    um_config_init(&cfg);
    if (path) {
        if (um_config_load(&cfg, path, err, sizeof(err)) != 0) {
            um_cli_error("client", "%s", err);
            rc = UM_EXIT_CONFIG;
            goto out;
        }
        if (cfg.role != UM_ROLE_CLIENT) {
            um_cli_error("client", "%s is a server config (it has [server]); use 'umbra server -c'",
                         path);
            rc = UM_EXIT_CONFIG;
            goto out;
        }
    } else {
        if (link_file && read_link_file(link_file, link, sizeof(link)) != 0) {
            rc = UM_EXIT_CONFIG;
            goto out;
        }
        if (link_long) {
            um_cli_error("client", "--link: bad link: longer than %d bytes", UM_LINK_MAX);
            rc = UM_EXIT_CONFIG;
            goto out;
        }
        const char *opt = link_file ? "--link-file" : "--link";
        snprintf(cfg.path, sizeof(cfg.path), "%s", opt);
        if (add_links(&cfg, opt, link) != 0) {
            rc = UM_EXIT_CONFIG;
            goto out;
        }
    }
    sodium_memzero(link, sizeof(link));
    if ((socks && set_addr("--socks", socks, &cfg.socks, &cfg.has_socks)) ||
        (http && set_addr("--http", http, &cfg.http, &cfg.has_http)) ||
        (metrics && set_addr("--metrics", metrics, &cfg.metrics, &cfg.has_metrics))) {
        rc = UM_EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < n_fwd; i++) {
        if (cfg.n_forwards == UM_CFG_MAX_FORWARDS ||
            um_parse_forward(&cfg.forwards[cfg.n_forwards], fwd[i], err, sizeof(err)) != 0) {
            um_cli_error("client", "-L '%s': %s", fwd[i],
                         cfg.n_forwards == UM_CFG_MAX_FORWARDS ? "too many forwards" : err);
            rc = UM_EXIT_USAGE;
            goto out;
        }
        cfg.n_forwards++;
    }
    if (tun_name && !um_tun_name_valid(tun_name)) {
        um_cli_error("client", "--tun-name '%s': expected 1 to 15 letters, digits, '-', '_' or '.'",
                     tun_name);
        rc = UM_EXIT_USAGE;
        goto out;
    }
    if (tun_fd) {
        uint32_t fd;
        if (um_parse_u32(&fd, tun_fd, 0, 1u << 20) != 0) {
            um_cli_error("client", "--tun-fd '%s': expected a file descriptor number", tun_fd);
            rc = UM_EXIT_USAGE;
            goto out;
        }
        cfg.tun_fd = (int)fd;
    }
    if (tun_name) snprintf(cfg.tun_name, sizeof(cfg.tun_name), "%s", tun_name);
    if (tun_mtu && um_parse_u32(&cfg.tun_mtu, tun_mtu, 1280, 65535) != 0) {
        um_cli_error("client", "--tun-mtu '%s': expected a number from 1280 to 65535", tun_mtu);
        rc = UM_EXIT_USAGE;
        goto out;
    }
    if (tun || tun_name || tun_fd) cfg.tun = true;
    if (apply_rotation(&cfg, rotate, rotate_after, max_conns) != 0) {
        rc = UM_EXIT_USAGE;
        goto out;
    }
    if (upstream &&
        um_upstream_parse(&cfg.upstream, upstream, strlen(upstream), err, sizeof(err)) != 0) {
        um_cli_error("client", "--upstream: %s", err); /* not quoted: it may hold a password */
        rc = UM_EXIT_USAGE;
        goto out;
    }
    if (events) snprintf(cfg.events, sizeof(cfg.events), "%s", events);
    if (control) {
        if (!*control || strlen(control) >= UM_CONTROL_PATH_MAX) {
            um_cli_error("client",
                         "--control: expected a socket path (under %d characters) or 'off'",
                         UM_CONTROL_PATH_MAX);
            rc = UM_EXIT_USAGE;
            goto out;
        }
        snprintf(cfg.control, sizeof(cfg.control), "%s", control);
    }
    if (state_file) {
        if (!*state_file || strlen(state_file) >= sizeof(cfg.state_file)) {
            um_cli_error("client", "--state-file: expected a file name (under %d characters)",
                         UM_PATH_MAX);
            rc = UM_EXIT_USAGE;
            goto out;
        }
        snprintf(cfg.state_file, sizeof(cfg.state_file), "%s", state_file);
    }
    if (fast_open) {
        if (!strcmp(fast_open, "on") || !strcmp(fast_open, "off")) {
            cfg.fast_open = !strcmp(fast_open, "on");
        } else {
            um_cli_error("client", "--fast-open '%s': expected on or off", fast_open);
            rc = UM_EXIT_USAGE;
            goto out;
        }
    }
    if (level) snprintf(cfg.log_level, sizeof(cfg.log_level), "%s", level);
    if (apply_rules(&cfg, rules, n_rules, rules_files, n_rules_files, geoip_files, n_geoip_files,
                    default_route) != 0) {
        rc = UM_EXIT_USAGE;
        goto out;
    }
    if (um_routing_wanted(&cfg)) { /* every rules and GeoIP file read once, errors named */
        um_rules_t *rs = NULL;
        if (um_routing_build(&cfg, &rs, err, sizeof(err)) != 0) {
            um_cli_error("client", "%s", err);
            rc = UM_EXIT_CONFIG;
            goto out;
        }
        if (check)
            printf("routing: %zu rule(s), default %s\n", um_rules_count(rs),
                   um_rule_action_name(um_rules_default(rs)));
        um_rules_free(rs);
    }
    /* Defaults when nothing is asked for: both proxies on loopback (not in
     * VPN mode, which needs no proxy). */
    if (!cfg.tun && !cfg.has_socks && !cfg.has_http && cfg.n_forwards == 0) {
        um_addr_parse(&cfg.socks, "127.0.0.1:1080", 14, 0, NULL, 0);
        um_addr_parse(&cfg.http, "127.0.0.1:8118", 14, 0, NULL, 0);
        cfg.has_socks = cfg.has_http = true;
    }
    bool creds = cfg.socks_user[0] != 0;
    if (cfg.has_socks) warn_exposed("SOCKS5 proxy", &cfg.socks, creds);
    if (cfg.has_http) warn_exposed("HTTP proxy", &cfg.http, creds);
    for (size_t i = 0; i < cfg.n_forwards; i++)
        warn_exposed("forward", &cfg.forwards[i].listen, false);
    if (check) {
        char a[UM_ADDR_STRLEN];
        printf("%s: valid client config: %zu server(s)", cfg.path, cfg.n_servers);
        if (cfg.has_socks) {
            um_addr_format(&cfg.socks, a, sizeof(a));
            printf(", socks %s", a);
        }
        if (cfg.has_http) {
            um_addr_format(&cfg.http, a, sizeof(a));
            printf(", http %s", a);
        }
        printf(", %zu forward(s)", cfg.n_forwards);
        if (cfg.tun) {
            char a4[64];
            um_cidr_format(&cfg.tun_addr4, a4, sizeof(a4));
            if (cfg.tun_fd >= 0)
                printf(", tun fd %d", cfg.tun_fd);
            else
                printf(", tun %s %s mtu %u", cfg.tun_name[0] ? cfg.tun_name : "(auto)", a4,
                       (unsigned)cfg.tun_mtu);
        }
        printf("\n");
        for (size_t i = 0; i < cfg.n_servers; i++) {
            const um_peer_server_t *s = &cfg.servers[i];
            const um_transport_cfg_t *t = um_config_transport(&cfg, s->transport);
            char rb[40], rt[40];
            um_format_size_range(rb, sizeof(rb), s->rotate_min, s->rotate_max);
            um_format_duration_range(rt, sizeof(rt), s->rotate_after_min_ms,
                                     s->rotate_after_max_ms);
            printf("server %s: rotate %s, rotate-after %s, max-connections %u", s->name, rb, rt,
                   (unsigned)s->max_connections);
            if (t && t->hop_lo) {
                char d[16];
                um_format_duration(d, sizeof(d), t->hop_ms);
                printf(", ports %u-%u hop %s", (unsigned)t->hop_lo, (unsigned)t->hop_hi, d);
            }
            printf("\n");
        }
        goto out;
    }
    rc = um_run_client(&cfg);
out:
    sodium_memzero(link, sizeof(link));
    sodium_memzero(up_arg, sizeof(up_arg));
    um_config_free(&cfg);
    return rc;
}
