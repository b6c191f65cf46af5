/* The server's dns transport (docs/PROTOCOL.md section 13): one dns
 * server (transport/dns_server.h) per listen address, authoritative for
 * the zone on UDP and TCP, and one acceptor without a listener that adopts
 * every conversation's carrier; from there a session runs as on tcp. */
#include <sodium.h>
#include <string.h>

#include "app/cli.h"
#include "app/server_int.h"
#include "crypto/keys.h"
#include "transport/dns_server.h"
#include "util/err.h"
#include "util/log.h"

static void on_conv(void *ud, um_carrier_t *car, const struct sockaddr *peer)
{
    um_acceptor_t *a = ud;
    (void)um_acceptor_adopt(a, car, peer); /* takes car, also on failure */
}

int srv_dns_listen(srv_t *s, const um_acceptor_cfg_t *ac, const um_transport_cfg_t *tr)
{
    char a[UM_ADDR_STRLEN];
    um_acceptor_t *acc;
    int r = um_acceptor_new(s->loop, NULL, ac, srv_on_session, s, &acc);
    if (r != 0) {
        um_cli_error("server", "dns: %s", um_strerror(r));
        return r;
    }
    s->acc[s->n_acc++] = acc;
    um_dns_server_cfg_t dc;
    memset(&dc, 0, sizeof(dc));
    dc.zone = tr->zone;
    um_key_public(dc.server_pub, s->cfg.private_key);
    for (size_t i = 0; i < s->cfg.n_listen && s->n_dns < UM_CFG_MAX_LISTEN; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        um_addr_to_sockaddr(&s->cfg.listen[i], &ss, &len);
        um_addr_format(&s->cfg.listen[i], a, sizeof(a));
        r = um_dns_server_new(s->loop, (struct sockaddr *)&ss, &dc, on_conv, acc,
                              &s->dns[s->n_dns]);
        if (r != 0) {
            um_cli_error("server", "cannot listen on %s (udp and tcp): %s", a, um_strerror(r));
            return r;
        }
        s->n_dns++;
        UM_INFO("listening on %s (dns transport, udp and tcp), authoritative for %s", a, tr->zone);
    }
    return 0;
}

void srv_dns_close(srv_t *s)
{
    for (size_t i = 0; i < s->n_dns; i++)
        um_dns_server_close(s->dns[i]);
    s->n_dns = 0;
}
