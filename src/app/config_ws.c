/* The keys of a ws transport that go together (docs/CONFIG.md, "Transport
 * ws"), checked by um_config_validate. */
#include <stdio.h>

#include "app/config.h"
#include "app/config_int.h"
#include "util/err.h"

int um_config_check_ws(const um_config_t *c, const um_transport_cfg_t *t, char *err, size_t errlen)
{
    const char *f = c->path;
    if (t->type != UM_TR_WS) {
        const char *k = t->ws_path[0]     ? "path"
                        : t->ws_host[0]   ? "host"
                        : t->ws_tls_set   ? "tls"
                        : t->ca_file[0]   ? "ca-file"
                        : t->cert_file[0] ? "cert-file"
                        : t->key_file[0]  ? "key-file"
                        : t->n_ws_headers ? "header"
                                          : NULL;
        if (!k) return 0;
        snprintf(err, errlen, "%s:%d: [transport \"%s\"]: key '%s' goes with type = ws", f, t->line,
                 t->name, k);
        return UM_EINVAL;
    }
    if (!t->ws_path[0]) {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: missing key 'path' (the secret URL path the front "
                 "forwards, e.g. path = /api/v2/stream)",
                 f, t->line, t->name);
        return UM_EINVAL;
    }
    if (!t->cert_file[0] != !t->key_file[0]) {
        snprintf(err, errlen,
                 "%s:%d: [transport \"%s\"]: key '%s' needs key '%s' (the listener's own TLS: "
                 "the certificate chain and its private key)",
                 f, t->cert_line, t->name, t->cert_file[0] ? "cert-file" : "key-file",
                 t->cert_file[0] ? "key-file" : "cert-file");
        return UM_EINVAL;
    }
    if (t->shape || t->hop_lo || t->has_cover) {
        snprintf(err, errlen, "%s:%d: [transport \"%s\"]: key '%s' is not for a ws transport", f,
                 t->shape ? t->shape_line : t->line, t->name,
                 t->shape    ? "shape"
                 : t->hop_lo ? "ports"
                             : "cover");
        return UM_EINVAL;
    }
    return 0;
}
