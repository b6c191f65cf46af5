/* The ws listener's own TLS (docs/CONFIG.md, "Transport ws"; PROTOCOL.md
 * 11.5): when the listener is exposed directly rather than behind a front,
 * the transport's cert-file and key-file make a server TLS context that the
 * acceptor layers over every connection. */
#include <stdio.h>
#include <sys/stat.h>

#include "app/server_int.h"

/* f relative to the config's directory (as private-key-file). */
static void resolve(const char *cfg_path, const char *f, char *out, size_t cap)
{
    const char *slash = strrchr(cfg_path, '/');
    if (f[0] != '/' && slash)
        snprintf(out, cap, "%.*s/%s", (int)(slash - cfg_path), cfg_path, f);
    else
        snprintf(out, cap, "%s", f);
}

int srv_ws_tls_load(const um_config_t *cfg, const um_transport_cfg_t *tr, um_ossl_ctx_t **out)
{
    char cert[2 * UM_PATH_MAX], key[2 * UM_PATH_MAX], why[160];
    resolve(cfg->path, tr->cert_file, cert, sizeof(cert));
    resolve(cfg->path, tr->key_file, key, sizeof(key));
    struct stat st;
    if (stat(key, &st) != 0) {
        um_cli_error("server", "%s:%d: key 'key-file': '%s': no such file", cfg->path,
                     tr->cert_line, key);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        fprintf(stderr, "umbra: warning: %s is readable by group or others (chmod 600 it)\n", key);
    why[0] = '\0';
    if (um_ossl_server_ctx_new(cert, key, out, why, sizeof(why)) != 0) {
        um_cli_error("server", "%s:%d: transport '%s': %s (cert-file %s, key-file %s)", cfg->path,
                     tr->cert_line, tr->name, why[0] ? why : "cannot set up TLS", cert, key);
        return -1;
    }
    return 0;
}
