/* umbra link: show what a share link holds, the secret hidden. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "app/cli.h"
#include "app/link.h"
#include "util/b64.h"
#include "crypto/keys.h"
#include "util/log.h"

const char um_usage_link[] =
    "usage: umbra link [--qr] [--show-secret] <umbra://link>\n\n"
    "Decodes an umbra:// share link and shows what it holds: server addresses,\n"
    "server public key, transport, name, and the client's public key. The client's\n"
    "private key stays hidden unless --show-secret is given.\n"
    "  --qr           also print the link as a QR code\n"
    "  --show-secret  print the client's private key too\n"
    "Links are made by 'umbra server add-client'.\n";

int um_cmd_link(int argc, char **argv)
{
    static const struct option opts[] = {
        {"qr", no_argument, NULL, 'q'},
        {"show-secret", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int qr = 0, secret = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'q': qr = 1; break;
        case 's': secret = 1; break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        um_cli_error("link", "expected one umbra:// link (see 'umbra help link')");
        return UM_EXIT_USAGE;
    }
    const char *s = argv[optind];
    um_link_t l;
    char err[384];
    if (um_link_decode(&l, s, strlen(s), err, sizeof(err)) != 0) {
        um_cli_error("link", "bad link: %s", err);
        return UM_EXIT_CONFIG;
    }
    char key[UM_KEY_B64_LEN + 1], addr[UM_ADDR_STRLEN];
    uint8_t pub[32];
    printf("name:              %s\n", l.name[0] ? l.name : "(none)");
    for (size_t i = 0; i < l.n_addrs; i++) {
        um_addr_format(&l.addrs[i], addr, sizeof(addr));
        printf("server address:    %s\n", addr);
    }
    um_key_to_b64(key, l.server_public_key);
    printf("server public key: %s\n", key);
    if (l.transport == UM_TR_WS)
        printf("transport:         ws (path %s, host %s%s%s, %s, padding %s)\n", l.ws_path,
               l.ws_host, l.sni[0] ? ", sni " : "", l.sni, l.ws_notls ? "plain http" : "tls",
               um_cfg_pad_name(l.padding));
    else if (l.transport == UM_TR_TLS)
        printf("transport:         tls (sni %s, fingerprint %s, padding %s)\n", l.sni,
               um_cfg_fp_name(l.fingerprint), um_cfg_pad_name(l.padding));
    else if (l.transport == UM_TR_DNS)
        printf("transport:         dns (zone %s, resolver %s, padding %s)\n", l.zone,
               l.resolver[0] ? l.resolver : "from /etc/resolv.conf", um_cfg_pad_name(l.padding));
    else
        printf("transport:         tcp (shape %s, padding %s)\n", um_shape_name(l.shape),
               um_cfg_pad_name(l.padding));
    if (l.hop_lo) {
        char d[16];
        um_format_duration(d, sizeof(d), l.hop_ms);
        printf("port hopping:      ports %u-%u, hop %s\n", (unsigned)l.hop_lo, (unsigned)l.hop_hi,
               d);
    }
    if (l.rotate_set || l.rotate_after_set) {
        char rb[40] = "(default)", rt[40] = "(default)";
        if (l.rotate_set) um_format_size_range(rb, sizeof(rb), l.rotate_min, l.rotate_max);
        if (l.rotate_after_set)
            um_format_duration_range(rt, sizeof(rt), l.rotate_after_min_ms, l.rotate_after_max_ms);
        printf("rotation:          rotate %s, rotate-after %s\n", rb, rt);
    }
    if (l.has_operator_key) {
        char ok[48];
        um_b64_encode(ok, sizeof(ok), l.operator_key, 32, UM_B64_URL);
        printf("operator key:      %s (signed server lists)\n", ok);
    }
    for (size_t i = 0; i < l.n_list_urls; i++)
        printf("server list url:   %s\n", l.list_urls[i]);
    if (um_key_public(pub, l.client_private_key) == 0) {
        um_key_to_b64(key, pub);
        printf("client public key: %s\n", key);
    }
    if (secret) {
        um_key_to_b64(key, l.client_private_key);
        printf("client private key: %s\n", key);
    } else {
        printf("client private key: (hidden; --show-secret prints it)\n");
    }
    memset(key, 0, sizeof(key));
    if (qr && um_cli_print_qr(stdout, s) != 0) {
        um_link_wipe(&l);
        um_cli_error("link", "cannot make a QR code of this link");
        return UM_EXIT_RUNTIME;
    }
    um_link_wipe(&l);
    return UM_EXIT_OK;
}
