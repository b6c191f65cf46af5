/* Configuration files, in the spirit of WireGuard's:
 *
 *   server.conf                          client.conf
 *   [server]                             [client]
 *   private-key = <base64>               private-key-file = client.key
 *   listen = 0.0.0.0:443                 socks = 127.0.0.1:1080
 *   [client "laptop"]                    [server "vps"]
 *   public-key = <base64>                address = vps.example:443
 *   [transport "main"]                   public-key = <base64>
 *   type = tcp                           transport = web
 *   [transport "web"]                    [transport "web"]
 *   type = tls                           type = tls
 *   cover = www.example.com:443          sni = www.example.com
 *
 * A tls transport's sni defaults to the cover's host name (filled in by
 * um_config_parse); um_config_validate checks the keys that go together.
 *
 * A file is a server config (it has [server]) or a client config (it has
 * [client]), never both. Named [client "x"] sections in a server config are
 * the authorised clients; named [server "x"] sections in a client config are
 * the servers to use. Every key is documented in docs/CONFIG.md.
 *
 * Errors: every function that can fail writes one line into err, naming the
 * file, the line and the key, and saying what was expected; the bad value is
 * quoted unless it is (or may be) a secret. */
#ifndef UM_APP_CONFIG_H
#define UM_APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/shape.h"
#include "transport/codec_ws.h"
#include "transport/tls_hello.h"
#include "transport/upstream.h"
#include "util/addr.h"

#define UM_NAME_MAX           63
#define UM_CFG_MAX_LISTEN     8
#define UM_CFG_MAX_ADDRS      8
#define UM_CFG_MAX_ALLOW      64
#define UM_CFG_MAX_FORWARDS   32
#define UM_CFG_MAX_SERVERS    32
#define UM_CFG_MAX_TRANSPORTS 16
#define UM_CFG_MAX_CLIENTS    100000
#define UM_PATH_MAX           1024
#define UM_ERR_MAX            512
#define UM_CFG_MAX_LIST_URLS  4   /* list-url per [server "name"], l= per link */
#define UM_LIST_URL_MAX       255 /* characters of one list URL */

/* Limits of the rotation and hopping keys (docs/CONFIG.md). */
#define UM_ROTATE_BYTES_MIN     4096u               /* 4k */
#define UM_ROTATE_BYTES_MAX     (1024u << 20)       /* 1024m */
#define UM_ROTATE_AFTER_MIN_MS  1000u               /* 1s */
#define UM_ROTATE_AFTER_MAX_MS  (24u * 3600 * 1000) /* 24h */
#define UM_TLS_ROTATE_AFTER_MIN (5u * 60 * 1000)    /* the tls default, 5m-20m */
#define UM_TLS_ROTATE_AFTER_MAX (20u * 60 * 1000)
#define UM_MAX_CONNECTIONS_MIN  2u
#define UM_MAX_CONNECTIONS_MAX  64u
#define UM_MAX_CONNECTIONS_DEF  6u
#define UM_HOP_MIN_MS           1000u          /* 1s */
#define UM_HOP_MAX_MS           (3600u * 1000) /* 1h */
#define UM_HOP_DEFAULT_MS       60000u         /* 60s */
#define UM_RESUME_GRACE_MAX_MS  (3600u * 1000) /* 1h */
#define UM_RESUME_GRACE_DEF_MS  120000u
#define UM_RESUMABLE_DEF        4u
/* Racing and remembered dial parameters ([client], docs/CONFIG.md). */
#define UM_RACE_MAX            8u
#define UM_RACE_DEF            3u
#define UM_RACE_STAGGER_DEF_MS 250u
#define UM_RACE_STAGGER_MAX_MS 10000u
#define UM_REMEMBER_DEF_MS     (24u * 3600 * 1000)
#define UM_REMEMBER_MAX_MS     (30u * 24 * 3600 * 1000)
/* Routing rules ([client], docs/CONFIG.md "Routing rules"). */
#define UM_CFG_MAX_RULES       256 /* rule = lines and --rule options; more in rules-file */
#define UM_CFG_RULE_TEXT_MAX   191
#define UM_CFG_MAX_RULES_FILES 8
#define UM_CFG_MAX_GEOIP_FILES 8

#define UM_CA_FILE_MAX 255

typedef enum { UM_ROLE_NONE = 0, UM_ROLE_SERVER, UM_ROLE_CLIENT } um_role_t;

typedef enum { UM_TR_TCP = 0, UM_TR_TLS = 1, UM_TR_WS = 2, UM_TR_DNS = 3 } um_tr_type_t;
typedef enum { UM_CFG_PAD_RANDOM = 0, UM_CFG_PAD_NONE } um_cfg_pad_t;
typedef enum { UM_CFG_TIMING_NONE = 0, UM_CFG_TIMING_JITTER } um_cfg_timing_t;

/* Parameters of one transport: shared by [transport "x"] and share links. */
typedef struct {
    char name[UM_NAME_MAX + 1];
    uint8_t type;    /* um_tr_type_t */
    uint8_t shape;   /* um_shape_t (tcp only) */
    uint8_t padding; /* um_cfg_pad_t */
    int line;        /* where the section starts (0: built in) */
    /* tls (docs/CONFIG.md): the cover site (server side), the SNI the client
     * sends and the server accepts ("" = the cover's host name, filled in by
     * um_config_validate), whose browser hello to copy, the timing profile. */
    um_addr_t cover;
    bool has_cover;
    char sni[UM_DOMAIN_MAX + 1];
    uint8_t fingerprint; /* um_tls_fp_t */
    uint8_t timing;      /* um_cfg_timing_t */
    int shape_line;      /* lines of keys cross-checked by um_config_validate */
    int cover_line;
    /* tcp port hopping (docs/PROTOCOL.md, "Port hopping"): the port range,
     * 0 = no hopping, and the slot length (UM_HOP_DEFAULT_MS when ports is
     * set without hop). */
    uint16_t hop_lo, hop_hi;
    uint32_t hop_ms;
    int ports_line, hop_line;
    /* ws (docs/CONFIG.md) */
    char ws_path[UM_WS_PATH_MAX + 1]; /* the secret path ("" until set: required) */
    char ws_host[UM_WS_HOST_MAX + 1]; /* the Host field, host[:port] ("" = the address) */
    bool ws_tls;                      /* clients dial the front over TLS (default) */
    bool ws_tls_set;
    char ca_file[UM_CA_FILE_MAX + 1]; /* client: verify the front with this ("" = system) */
    int ws_line;
    /* dns (docs/CONFIG.md) */
    char zone[UM_DOMAIN_MAX + 1]; /* lower case, no trailing dot ("" = not set) */
    char resolver[64 + 1];        /* client: "IP[:PORT]" or "tls://IP[:PORT]"; "" = resolv.conf */
    int zone_line, resolver_line;
    /* server: the listener's own TLS (both or neither; "" = plain HTTP) */
    char cert_file[UM_CA_FILE_MAX + 1], key_file[UM_CA_FILE_MAX + 1];
    int cert_line;
    /* client: extra upgrade request fields, "Name: value" (um_ws_xhdr_check) */
    char ws_headers[UM_WS_XHDR_MAX][UM_WS_XHDR_LEN + 1];
    size_t n_ws_headers;
} um_transport_cfg_t;

/* An authorised client in a server config. */
typedef struct {
    char name[UM_NAME_MAX + 1];
    uint8_t public_key[32];
    bool has_public_key;
    uint32_t max_sessions; /* 0: the server's default */
    uint32_t max_streams;
    int line;
    /* mgmt (docs/CONFIG.md): payload bytes both ways before its sessions
     * end (0: no quota), and the first second it is no longer served
     * (Unix time; 0: never) */
    uint64_t quota;
    int64_t expires;
} um_peer_client_t;

/* A server in a client config. */
typedef struct {
    char name[UM_NAME_MAX + 1];
    um_addr_t addrs[UM_CFG_MAX_ADDRS];
    size_t n_addrs;
    uint8_t public_key[32];
    bool has_public_key;
    char transport[UM_NAME_MAX + 1]; /* "" = built-in tcp */
    uint32_t weight;
    /* Rotation (docs/CONFIG.md): a connection carries a random budget of
     * rotate_min..rotate_max bytes (0 = off) and lives a random
     * rotate_after_min_ms..rotate_after_max_ms (0 = off), then the session
     * moves on. *_set: given explicitly (config, link or command line), so
     * the transport's default (um_config_rotation_defaults) does not apply. */
    uint32_t rotate_min, rotate_max;
    uint32_t rotate_after_min_ms, rotate_after_max_ms;
    uint32_t max_connections; /* to this server at once, successors and draining ones included */
    bool rotate_set, rotate_after_set;
    int line;
    /* via = NAME: the [server "NAME"] this server's session rides through (a
     * bridge, src/app/bridge.h); "" = direct */
    char via[UM_NAME_MAX + 1];
    int via_line;
    /* Signed server lists (docs/PROTOCOL.md): operator-key (Ed25519 public
     * key the lists of this server's operator are signed with) and list-url. */
    uint8_t operator_key[32];
    bool has_operator_key;
    char list_urls[UM_CFG_MAX_LIST_URLS][UM_LIST_URL_MAX + 1];
    size_t n_list_urls;
} um_peer_server_t;

/* A -L style forward: listen locally, connect to target through the tunnel. */
typedef struct {
    um_addr_t listen;
    um_addr_t target;
} um_forward_t;

typedef struct {
    char path[UM_PATH_MAX]; /* file name used in messages */
    um_role_t role;
    int role_line;

    /* Own key ([server] or [client]): inline or from private-key-file. */
    uint8_t private_key[32]; /* secret: wiped by um_config_free */
    bool has_private_key;
    char private_key_file[UM_PATH_MAX]; /* resolved against the config's dir */
    int private_key_line;
    char log_level[8];

    /* [server] */
    um_addr_t listen[UM_CFG_MAX_LISTEN];
    size_t n_listen;
    char public_host[UM_DOMAIN_MAX + 1];
    char transport[UM_NAME_MAX + 1];
    int transport_line;
    um_addr_t fallback;
    bool has_fallback;
    uint32_t clock_skew_s;
    uint32_t replay_cache;
    uint32_t probe_delay_min_ms, probe_delay_max_ms;
    /* pre-auth admission (session/gate.h); 0 = the gate's default */
    uint32_t max_preauth, preauth_per_source, preauth_prefix_v4, preauth_prefix_v6;
    uint32_t client_handshakes_per_min;
    um_cidr_t allow[UM_CFG_MAX_ALLOW];
    size_t n_allow;
    uint32_t max_sessions_per_client;
    uint32_t max_streams;
    uint32_t idle_timeout_s;
    /* buffered stream bytes, MiB: all clients together, and one client's cap
     * (0: its share of the budget) */
    uint32_t memory_budget_mib, client_memory_mib;
    /* [server] and [client]: a stream whose bytes do not move for this long
     * is reset (0: never) */
    uint32_t stream_timeout_s;
    /* [server] resumption: how long a session whose connection broke waits
     * for its client (0 = resumption off), and how many sessions of one
     * client key may wait at once (the oldest is dropped). */
    uint32_t resume_grace_ms;
    uint32_t resumable_per_client;
    /* [server] server-list: a signed list file served through the tunnel
     * (resolved against the config's directory by um_config_load) */
    char server_list[UM_PATH_MAX];

    /* [client] */
    um_addr_t socks, http;
    bool has_socks, has_http;
    char socks_user[256], socks_pass[256]; /* socks_pass is a secret */
    um_forward_t forwards[UM_CFG_MAX_FORWARDS];
    size_t n_forwards;
    char events[UM_PATH_MAX];
    char control[UM_PATH_MAX]; /* "" = default path, "off" = none */
    uint32_t keepalive_s;
    /* [client] VPN mode (src/app/vpn.h, docs/CONFIG.md) */
    bool tun;                       /* tun = on */
    char tun_name[16];              /* tun-name ("" = kernel's choice) */
    um_cidr_t tun_addr4, tun_addr6; /* tun-address, tun-address6 */
    bool has_tun_addr6;             /* false with tun-address6 = none */
    uint32_t tun_mtu;               /* tun-mtu */
    bool tun_dns;                   /* tun-dns = on: resolvers routed through the TUN */
    bool tun_routes;                /* tun-routes = on: everything through the TUN */
    int tun_fd;                     /* --tun-fd (command line only); -1 = open a device */
    /* [client] upstream = socks5://... or http://... (kind NONE: direct);
     * its password is a secret */
    um_upstream_cfg_t upstream;
    /* [client] racing (race candidates at once, a new one every
     * race_stagger_ms) and remembered dial parameters (app/dialstate.h):
     * preferred for remember_ms (0 = off), kept in state_file ("" = the
     * default path). */
    uint32_t race, race_stagger_ms, remember_ms;
    char state_file[UM_PATH_MAX];

    /* Named sections. */
    um_peer_client_t *clients; /* owned array */
    size_t n_clients, cap_clients;
    um_peer_server_t servers[UM_CFG_MAX_SERVERS];
    size_t n_servers;
    um_transport_cfg_t transports[UM_CFG_MAX_TRANSPORTS];
    size_t n_transports;

    /* rules (docs/CONFIG.md, "Routing rules"): [client] rule = ACTION MATCH
     * lines in order (checked by the parser, compiled by app/routing.c),
     * rules-file and geoip-file (resolved against the config's directory by
     * um_config_load; read at start and on SIGHUP), default-route. */
    char rules[UM_CFG_MAX_RULES][UM_CFG_RULE_TEXT_MAX + 1];
    int rule_lines[UM_CFG_MAX_RULES]; /* 0: from the command line */
    size_t n_rules;
    char rules_files[UM_CFG_MAX_RULES_FILES][UM_PATH_MAX];
    size_t n_rules_files;
    char geoip_files[UM_CFG_MAX_GEOIP_FILES][UM_PATH_MAX];
    size_t n_geoip_files;
    uint8_t default_route; /* um_rule_action_t; tunnel unless set */
    /* mgmt (docs/CONFIG.md): [server] and [client] metrics = ADDR, the
     * Prometheus endpoint (has_metrics false: none); [server] control = the
     * management socket ("" = default path, "off" = none; [client] control
     * is above). */
    um_addr_t metrics;
    bool has_metrics;
    char server_control[UM_PATH_MAX];
    /* fo (docs/CONFIG.md) */
    bool fast_open; /* [client] fast-open = on: SOCKS5/CONNECT replies before the verdict */
} um_config_t;

/* Sets every default; role NONE. */
void um_config_init(um_config_t *c);
/* Wipes secrets and frees owned memory. Safe on an initialised config. */
void um_config_free(um_config_t *c);

/* Parses text (n bytes, need not be NUL-terminated) named `path` in messages.
 * Pure: touches no file (private-key-file is recorded, not read). On error
 * returns UM_EINVAL with the message in err; c must still be freed. */
int um_config_parse(um_config_t *c, const char *path, const char *text, size_t n, char *err,
                    size_t errlen);
/* Reads and parses a file, then loads private-key-file and validates. */
int um_config_load(um_config_t *c, const char *path, char *err, size_t errlen);
/* Cross-section checks (required keys, references, role). Called by load. */
int um_config_validate(const um_config_t *c, char *err, size_t errlen);

/* Value parsers shared with the command line. Each returns 0 or UM_EINVAL
 * with a reason (not quoting the input) in err. */
int um_parse_forward(um_forward_t *f, const char *s, char *err, size_t errlen);
int um_parse_u32(uint32_t *out, const char *s, uint32_t min, uint32_t max);
bool um_name_valid(const char *s);
/* A byte count: digits with an optional k or m suffix (1024-based), e.g.
 * "16k". 0, or UM_EINVAL (also above UINT32_MAX). */
int um_parse_size(uint32_t *out, const char *s);
/* A duration: digits with a suffix ms, s, m or h; plain digits are seconds.
 * Into milliseconds; 0, or UM_EINVAL (also above UINT32_MAX ms). */
int um_parse_duration_ms(uint32_t *out, const char *s);
/* "MIN[-MAX]" of byte counts (um_parse_size) or durations
 * (um_parse_duration_ms), each from lo to hi and MIN <= MAX; a single value
 * means MIN = MAX. "off" or "0" give 0-0 (off). 0, or UM_EINVAL. */
int um_parse_size_range(uint32_t *min, uint32_t *max, const char *s, uint32_t lo, uint32_t hi);
int um_parse_duration_range(uint32_t *min, uint32_t *max, const char *s, uint32_t lo, uint32_t hi);
/* A port range "LO-HI", 1 <= LO <= HI <= 65535. 0, or UM_EINVAL. */
int um_parse_port_range(uint16_t *lo, uint16_t *hi, const char *s);
/* Canonical text of a byte count ("16k", "1m", "1000"), a duration ("60s"
 * is "1m"; "1500ms") and of ranges ("12k-16k", a single value when MIN =
 * MAX, "off" for 0-0); what the parsers above read back. NUL-terminated,
 * truncated to cap. */
void um_format_size(char *out, size_t cap, uint32_t v);
void um_format_duration(char *out, size_t cap, uint32_t ms);
void um_format_size_range(char *out, size_t cap, uint32_t min, uint32_t max);
void um_format_duration_range(char *out, size_t cap, uint32_t min, uint32_t max);
/* The transport's rotation defaults (a tls transport: rotate-after 5m-20m)
 * for every [server "name"] whose rotate-after was not given explicitly.
 * Called by um_config_parse and um_config_from_link; call it again after
 * changing transports. */
void um_config_rotation_defaults(um_config_t *c);
/* A network interface name (tun-name, --tun-name): 1..15 of [A-Za-z0-9._-]. */
bool um_tun_name_valid(const char *s);
int um_shape_parse(const char *s, uint8_t *out);
int um_cfg_pad_parse(const char *s, uint8_t *out);
const char *um_shape_name(uint8_t shape);
const char *um_cfg_pad_name(uint8_t pad);
/* Transport types ("tcp", "tls"), fingerprints ("chromium", "firefox") and
 * timing profiles ("none", "jitter"): 0 or UM_EINVAL. */
int um_tr_type_parse(const char *s, uint8_t *out);
const char *um_tr_type_name(uint8_t type);
int um_cfg_fp_parse(const char *s, uint8_t *out);
const char *um_cfg_fp_name(uint8_t fp);
int um_cfg_timing_parse(const char *s, uint8_t *out);
const char *um_cfg_timing_name(uint8_t timing);
/* An SNI: a DNS host name of labels 1..63 of [A-Za-z0-9-] (no '-' at either
 * end of a label), dot-separated, at most 253 characters, no leading or
 * trailing dot, and not an IPv4 literal (RFC 6066 section 3). */
bool um_sni_valid(const char *s, size_t n);

const um_transport_cfg_t *um_config_transport(const um_config_t *c, const char *name);

#endif
