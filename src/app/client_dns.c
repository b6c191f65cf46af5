/* The client's dns transport: a connector dialer (session/connector.h)
 * whose "connection" is a new conversation with the server through the
 * resolver (transport/dns_client.h). The connector then sends the first
 * flight over it as over TCP, and resumption works the same way: a broken
 * conversation is replaced by a new one that continues the session. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "app/client_int.h"
#include "app/dns_cfg.h"
#include "transport/dns_client.h"
#include "util/err.h"
#include "util/log.h"

struct cli_dns {
    um_connector_dialer_t dialer;
    uv_loop_t *loop;
    um_dns_client_cfg_t cfg; /* of the next dial */
    char zone[UM_DOMAIN_MAX + 1];
};

typedef struct {
    uv_timer_t tm;
    um_connector_dial_cb cb;
    void *arg;
    um_carrier_t *car;
} dial_t;

static void dial_closed(uv_handle_t *h)
{
    dial_t *d = h->data;
    um_carrier_close(d->car); /* cancelled before it fired */
    free(d);
}

static void dial_fire(uv_timer_t *t)
{
    dial_t *d = t->data;
    um_carrier_t *car = d->car;
    d->car = NULL;
    uv_close((uv_handle_t *)&d->tm, dial_closed);
    d->cb(d->arg, 0, car);
}

static int d_start(void *ctx, const um_addr_t *dst, um_connector_dial_cb cb, void *arg,
                   void **handle)
{
    struct cli_dns *x = ctx;
    (void)dst; /* the resolver is dialled, never the server */
    dial_t *d = calloc(1, sizeof(*d));
    if (!d) return UM_ENOMEM;
    x->cfg.zone = x->zone;
    int r = um_dns_client_new(x->loop, &x->cfg, &d->car);
    if (r != 0) {
        free(d);
        return r;
    }
    d->cb = cb;
    d->arg = arg;
    uv_timer_init(x->loop, &d->tm);
    d->tm.data = d;
    uv_timer_start(&d->tm, dial_fire, 0, 0); /* the callback on a later turn */
    *handle = d;
    return 0;
}

static void d_cancel(void *handle)
{
    dial_t *d = handle;
    uv_timer_stop(&d->tm);
    uv_close((uv_handle_t *)&d->tm, dial_closed);
}

const um_connector_dialer_t *cli_dns_dialer(cli_t *c, const um_transport_cfg_t *tr,
                                            const uint8_t server_pub[32], int *err)
{
    *err = 0;
    if (!c->dns) {
        c->dns = calloc(1, sizeof(*c->dns));
        if (!c->dns) {
            *err = UM_ENOMEM;
            return NULL;
        }
        c->dns->dialer.start = d_start;
        c->dns->dialer.cancel = d_cancel;
        c->dns->dialer.ctx = c->dns;
        c->dns->loop = c->loop;
    }
    struct cli_dns *x = c->dns;
    memset(&x->cfg, 0, sizeof(x->cfg));
    memcpy(x->cfg.server_pub, server_pub, 32);
    snprintf(x->zone, sizeof(x->zone), "%s", tr->zone);
    int r = tr->resolver[0] ? um_dns_resolver_parse(tr->resolver, &x->cfg.resolver, &x->cfg.dot)
                            : um_dns_resolver_default(NULL, &x->cfg.resolver);
    if (r != 0) {
        UM_ERR("transport '%s': %s", tr->name,
               tr->resolver[0] ? "bad resolver"
                               : "no 'resolver' set and no nameserver in /etc/resolv.conf");
        *err = r;
        return NULL;
    }
    return &x->dialer;
}

void cli_dns_free(cli_t *c)
{
    free(c->dns);
    c->dns = NULL;
}
