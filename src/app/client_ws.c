/* The client's side of a ws transport (docs/CONFIG.md, "Transport ws"): the
 * codec for one dial and the front's TLS (a context per ca-file, kept for
 * the life of the process: loading a CA store is not cheap). */
#include <stdio.h>
#include <string.h>

#include "app/client_ws.h"
#include "session/handshake.h"
#include "util/err.h"
#include "util/log.h"

#define CTX_CACHE 4

static struct {
    char ca_file[UM_CA_FILE_MAX + 1];
    um_ossl_ctx_t *ctx;
} cache[CTX_CACHE];

static um_ossl_ctx_t *ctx_for(const char *ca_file)
{
    for (int i = 0; i < CTX_CACHE; i++)
        if (cache[i].ctx && strcmp(cache[i].ca_file, ca_file) == 0) return cache[i].ctx;
    for (int i = 0; i < CTX_CACHE; i++) {
        if (cache[i].ctx) continue;
        if (um_ossl_ctx_new(ca_file, &cache[i].ctx) != 0) return NULL;
        snprintf(cache[i].ca_file, sizeof(cache[i].ca_file), "%s", ca_file);
        return cache[i].ctx;
    }
    return NULL;
}

/* The host part of host[:port] / [v6]:port. */
static void host_part(const char *hp, char *out, size_t cap)
{
    const char *end = hp + strlen(hp);
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (rb) {
            snprintf(out, cap, "%.*s", (int)(rb - hp - 1), hp + 1);
            return;
        }
    }
    const char *colon = strrchr(hp, ':');
    if (colon && strchr(hp, ':') == colon) end = colon; /* one colon: a port */
    snprintf(out, cap, "%.*s", (int)(end - hp), hp);
}

int cli_ws_setup(uv_loop_t *loop, const um_transport_cfg_t *tr, const um_addr_t *dst,
                 um_codec_ws_t *ws, um_connector_cfg_t *cc)
{
    char host[UM_WS_HOST_MAX + 1];
    if (tr->ws_host[0]) {
        snprintf(host, sizeof(host), "%s", tr->ws_host);
    } else {
        um_addr_format(dst, host, sizeof(host));
        if ((tr->ws_tls && dst->port == 443) || (!tr->ws_tls && dst->port == 80))
            host_part(host, host, sizeof(host));
    }
    if (um_codec_ws_init(ws, tr->ws_path, host, UM_HS_MSG1_MIN + UM_HS_P1_RESUME_LEN + 8,
                         UM_HS_MSG2_RESUME_MIN) != 0) {
        UM_ERR("transport '%s': bad path or host", tr->name);
        return UM_EINVAL;
    }
    ws->loop = loop;
    for (size_t i = 0; i < tr->n_ws_headers && i < UM_WS_XHDR_MAX; i++)
        snprintf(ws->xhdr[ws->n_xhdr++], sizeof(ws->xhdr[0]), "%s", tr->ws_headers[i]);
    cc->codec = &ws->base;
    if (!tr->ws_tls) return 0;
    cc->tls.ctx = ctx_for(tr->ca_file);
    if (!cc->tls.ctx) {
        UM_ERR("transport '%s': cannot set up TLS%s%s", tr->name,
               tr->ca_file[0] ? " with ca-file " : "", tr->ca_file);
        return UM_EINVAL;
    }
    if (tr->sni[0])
        snprintf(cc->tls.sni, sizeof(cc->tls.sni), "%s", tr->sni);
    else
        host_part(host, cc->tls.sni, sizeof(cc->tls.sni));
    snprintf(cc->tls.name, sizeof(cc->tls.name), "%s", cc->tls.sni);
    return 0;
}
