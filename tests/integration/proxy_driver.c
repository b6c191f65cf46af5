/* Test driver for tests/integration/proxy_*.sh: runs the SOCKS5, HTTP and -L
 * listeners of src/proxy over the direct connector of src/exit on loopback,
 * writes the bound ports to a file, and on SIGTERM closes everything and
 * checks that the loop ends with no handle left (exit 3 otherwise).
 *
 *   proxy_driver PORTFILE [--allow CIDR]... [--user U --pass P]
 *                [-L bind:port:host:port]... [--max-conns N]
 *
 * Built by the script itself from the layer libraries (C programs under
 * tests/integration are not part of the CMake build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "exit/direct.h"
#include "exit/policy.h"
#include "proxy/server.h"
#include "util/log.h"

#define MAX_PROXIES 8

static um_proxy_t *proxies[MAX_PROXIES];
static size_t nproxies;
static um_direct_t *direct;
static uv_signal_t sigterm, sigint;

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    for (size_t i = 0; i < nproxies; i++)
        um_proxy_free(proxies[i]);
    nproxies = 0;
    um_direct_free(direct);
    direct = NULL;
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

static int add(uv_loop_t *loop, um_proxy_kind_t kind, const um_addr_t *b, const um_proxy_opts_t *o,
               FILE *pf, const char *label)
{
    um_proxy_t *px;
    if (um_proxy_new(loop, kind, b, o, &px) != 0) return -1;
    um_addr_t la;
    um_proxy_local_addr(px, &la);
    fprintf(pf, "%s %u\n", label, la.port);
    proxies[nproxies++] = px;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: proxy_driver PORTFILE [options]\n");
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    um_policy_t pol;
    um_policy_init(&pol);
    um_proxy_opts_t o;
    memset(&o, 0, sizeof(o));
    const char *fwd[4];
    size_t nfwd = 0;
    char err[128];
    um_log_set_level(getenv("DRIVER_DEBUG") ? UM_LOG_DEBUG : UM_LOG_WARN);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--allow") && i + 1 < argc) {
            if (um_policy_allow_str(&pol, argv[++i], err, sizeof(err)) != 0) {
                fprintf(stderr, "driver: --allow %s: %s\n", argv[i], err);
                return 2;
            }
        } else if (!strcmp(argv[i], "--user") && i + 1 < argc) {
            o.user = argv[++i];
        } else if (!strcmp(argv[i], "--pass") && i + 1 < argc) {
            o.pass = argv[++i];
        } else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc) {
            o.max_conns = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-L") && i + 1 < argc && nfwd < 4) {
            fwd[nfwd++] = argv[++i];
        } else {
            fprintf(stderr, "driver: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (um_direct_new(loop, &pol, 3000, &direct) != 0) return 1;
    o.conn = um_direct_connector(direct);
    o.handshake_timeout_ms = 3000;
    o.idle_timeout_ms = 5000;
    FILE *pf = fopen(argv[1], "w");
    if (!pf) return 1;
    um_addr_t any; /* 127.0.0.1, port 0: the kernel picks */
    um_addr_parse_host(&any, "127.0.0.1", 9, NULL, 0);
    if (add(loop, UM_PROXY_SOCKS5, &any, &o, pf, "socks") != 0 ||
        add(loop, UM_PROXY_HTTP, &any, &o, pf, "http") != 0)
        return 1;
    for (size_t i = 0; i < nfwd; i++) {
        um_addr_t l;
        um_proxy_opts_t fo = o;
        if (um_forward_spec_parse(fwd[i], &l, &fo.forward_dst, err, sizeof(err)) != 0) {
            fprintf(stderr, "driver: -L %s: %s\n", fwd[i], err);
            return 2;
        }
        if (add(loop, UM_PROXY_FORWARD, &l, &fo, pf, "fwd") != 0) return 1;
    }
    fprintf(pf, "ready\n");
    fclose(pf);
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    um_policy_close(&pol);
    int rc = uv_loop_close(loop);
    if (rc != 0) {
        fprintf(stderr, "driver: loop not clean at exit: %s\n", uv_strerror(rc));
        uv_print_all_handles(loop, stderr);
        return 3;
    }
    return 0;
}
