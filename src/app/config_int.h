/* Internal to the config parser (config.c, config_values.c, config_check.c); not part of
 * the app's interface in config.h. */
#ifndef UM_APP_CONFIG_INT_H
#define UM_APP_CONFIG_INT_H

#include <stddef.h>

#include "app/config.h"

/* An interface address with its prefix, host bits kept ("10.233.0.1/30"),
 * unlike a policy prefix. 0 or UM_EINVAL with the reason in why (which may
 * be NULL with whylen 0). Pure. */
int um_cfg_ifaddr_parse(um_cidr_t *cd, const char *v, char *why, size_t whylen);

/* A tls transport without 'sni' takes its cover's host name
 * (config_check.c; um_config_parse applies it). */
void um_cfg_default_sni(um_transport_cfg_t *t);

/* The keys of a ws transport that go together (config_ws.c). */
int um_config_check_ws(const um_config_t *c, const um_transport_cfg_t *t, char *err, size_t errlen);

/* One key of a [transport "name"] section into t (config_keys.c): 0,
 * or UM_EINVAL with the reason (without file and line) in msg. line is the
 * key's line, kept for the cross-checks of um_config_validate. */
int um_cfg_transport_key(um_transport_cfg_t *t, const char *name, const char *v, int line,
                         char *msg, size_t msglen);
/* One of [client]'s rule, default-route, rules-file, geoip-file keys into c
 * (config_keys.c), the same way. */
int um_cfg_rules_key(um_config_t *c, const char *name, const char *v, int line, char *msg,
                     size_t msglen);

#endif
