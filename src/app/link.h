/* umbra:// share links: everything a client needs for one server.
 *
 *   umbra://<server-public-key>@<address>[,<address>...]?k=<client-private-key>
 *          [&t=tcp|tls][&sni=<name>][&fp=chromium|firefox]
 *          [&shape=none|printable|http|tls][&ports=LO-HI[&hop=D]][&pad=random|none]
 *          [&rot=MIN[-MAX]|off][&rta=MIN[-MAX]|off][&o=<operator-key>]
 *          [&l=<list-url>...][&via=<bridge link>][&v=1]#<name>
 *
 * sni (required with t=tls) and fp go with t=tls only; shape, ports and hop
 * with t=tcp only (hop needs ports). rot and rta are the rotate and
 * rotate-after keys of [server "name"]. o= (the operator's Ed25519 public
 * key, 43 characters base64url) and l= (a signed server list's URL,
 * percent-encoded, up to UM_CFG_MAX_LIST_URLS times) are the operator-key and
 * list-url keys (docs/PROTOCOL.md, "Signed server lists"). via is a bridge in
 * front of this server (docs/CONFIG.md `via`): a percent-encoded link of its
 * own, without k= (the client's key is the same) and without via=,
 * addresses by IP.
 *
 * Keys are 43-character URL-safe base64 without padding. The full grammar is
 * in docs/CONFIG.md. The link holds the client's private key: treat it as a
 * secret, and never print it unless asked. */
#ifndef UM_APP_LINK_H
#define UM_APP_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/config.h"

#define UM_LINK_MAX     2048
#define UM_LINK_VIA_MAX 1024

typedef struct {
    char name[UM_NAME_MAX + 1]; /* may be empty */
    uint8_t server_public_key[32];
    uint8_t client_private_key[32]; /* secret */
    um_addr_t addrs[UM_CFG_MAX_ADDRS];
    size_t n_addrs;
    uint8_t transport;           /* um_tr_type_t */
    uint8_t shape;               /* um_shape_t */
    uint8_t padding;             /* um_cfg_pad_t */
    char sni[UM_DOMAIN_MAX + 1]; /* t=tls: lower case, um_sni_valid; "" for tcp */
    uint8_t fingerprint;         /* t=tls: um_tls_fp_t */
    uint16_t hop_lo, hop_hi;     /* t=tcp: ports=LO-HI, 0 = no hopping */
    uint32_t hop_ms;             /* hop=D; UM_HOP_DEFAULT_MS when ports is given alone */
    /* rot= and rta=; *_set when the parameter is present (0-0 = off) */
    uint32_t rotate_min, rotate_max;
    uint32_t rotate_after_min_ms, rotate_after_max_ms;
    bool rotate_set, rotate_after_set;
    /* via=: the bridge's link, percent-decoded and checked ("" = none) */
    char via[UM_LINK_VIA_MAX + 1];
    /* o= and l= */
    uint8_t operator_key[32];
    bool has_operator_key;
    char list_urls[UM_CFG_MAX_LIST_URLS][UM_LIST_URL_MAX + 1];
    size_t n_list_urls;
    /* ws: t=ws&path=/P&host=H[:PORT] (+ sni=, tls=0) */
    char ws_path[UM_WS_PATH_MAX + 1];
    char ws_host[UM_WS_HOST_MAX + 1];
    bool ws_notls; /* tls=0: plain HTTP to the front */
    bool ws_tls_set;
    /* dns: zone= (t=dns: required, normalised) and resolver= ("" = not set) */
    char zone[UM_DOMAIN_MAX + 1];
    char resolver[64 + 1];
} um_link_t;

/* Decodes n bytes of s. On error returns UM_EINVAL and writes a reason that
 * names the position and the part (never the secret) into err. */
int um_link_decode(um_link_t *l, const char *s, size_t n, char *err, size_t errlen);
/* The same for a link without k= (an entry of a signed server list): k= is
 * refused, client_private_key stays zero. */
int um_link_decode_public(um_link_t *l, const char *s, size_t n, char *err, size_t errlen);
/* Canonical encoding into out (NUL-terminated); UM_ENOSPC when too small,
 * UM_EINVAL for t=tls without a valid sni, or ports, hop, rot or rta values
 * the decoder would refuse. */
int um_link_encode(const um_link_t *l, char *out, size_t cap);
/* Wipes the secret. */
void um_link_wipe(um_link_t *l);

/* A [server] entry from a link's server (not its name): key, addresses,
 * rotation, operator key and list URLs; weight 1; the transport section
 * named `transport`. */
void um_peer_server_from_link(um_peer_server_t *s, const um_link_t *l, const char *transport);
/* Fills a client config (already um_config_init'ed) with the server and key
 * of a link: one [server "<name or link>"] section and its transport (and,
 * with via=, the bridge's [server] section and transport after them, which
 * the first names in its via). */
void um_config_from_link(um_config_t *c, const um_link_t *l);
/* Several links, one client (issue 12): the first fills c as
 * um_config_from_link; each later one adds a [server] section named by its
 * #name, else by its first address ("-2", "-3" appended when taken), with
 * its own transport "link-N". The links must carry the same client key.
 * 0, or UM_EINVAL / UM_ENOSPC / UM_ENOMEM with the reason in err. */
int um_config_add_link(um_config_t *c, const um_link_t *l, char *err, size_t errlen);

#endif
