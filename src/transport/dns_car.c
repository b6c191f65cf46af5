#include "transport/dns_car.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct um_dns_car {
    um_carrier_t base;
    um_rel_carrier_t *rc; /* NULL once closed from above */
    um_dns_car_link_t link;
    bool linked; /* the link holds us */
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
    int fail;     /* error to deliver (0: none) */
    bool reading; /* the layer above wants reads */
    uv_timer_t fail_timer;
    bool timer_live;
};

static void maybe_free(um_dns_car_t *d);

static void timer_closed(uv_handle_t *h)
{
    um_dns_car_t *d = h->data;
    d->timer_live = false;
    maybe_free(d);
}

static void maybe_free(um_dns_car_t *d)
{
    if (d->rc || d->linked) return;
    if (d->timer_live) {
        if (!uv_is_closing((uv_handle_t *)&d->fail_timer))
            uv_close((uv_handle_t *)&d->fail_timer, timer_closed);
        return;
    }
    free(d);
}

static void in_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    um_dns_car_t *d = ud;
    (void)c;
    if (d->fail) return; /* the stream ended already */
    if (d->rd) d->rd(&d->base, p, n, status, d->ud);
}

static void in_drain(um_carrier_t *c, void *ud)
{
    um_dns_car_t *d = ud;
    (void)c;
    if (d->dr) d->dr(&d->base, d->ud);
}

static void in_want(void *ud)
{
    um_dns_car_t *d = ud;
    if (d->linked && d->link.want_output) d->link.want_output(d->link.ud);
}

static void on_fail(uv_timer_t *t)
{
    um_dns_car_t *d = t->data;
    if (d->rc && d->rd && d->reading) d->rd(&d->base, NULL, 0, d->fail, d->ud);
}

static um_carrier_t *inner(um_dns_car_t *d)
{
    return um_rel_carrier_base(d->rc);
}

static void o_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    d->rd = rd;
    d->dr = dr;
    d->ud = ud;
}

static int o_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    if (d->fail) return d->fail;
    return um_carrier_write(inner(d), p, n);
}

static int o_writev(um_carrier_t *c, const um_carrier_iov_t *iov, size_t n_iov)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    if (d->fail) return d->fail;
    um_carrier_t *in = inner(d);
    if (in->ops->writev) return in->ops->writev(in, iov, n_iov);
    /* Joined here: rel copies anyway. */
    size_t tot = 0;
    for (size_t i = 0; i < n_iov; i++)
        tot += iov[i].n;
    uint8_t *b = malloc(tot ? tot : 1);
    if (!b) return UM_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n_iov; i++) {
        memcpy(b + o, iov[i].p, iov[i].n);
        o += iov[i].n;
    }
    int r = um_carrier_write(in, b, tot);
    free(b);
    return r;
}

static size_t o_queued(const um_carrier_t *c)
{
    const um_dns_car_t *d = (const um_dns_car_t *)c;
    return um_carrier_queued(um_rel_carrier_base(d->rc));
}

static void o_set_wq_max(um_carrier_t *c, size_t max)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    um_carrier_set_wq_max(inner(d), max);
}

static int o_read_start(um_carrier_t *c)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    d->reading = true;
    if (d->fail) uv_timer_start(&d->fail_timer, on_fail, 0, 0);
    return um_carrier_read_start(inner(d));
}

static int o_read_stop(um_carrier_t *c)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    d->reading = false;
    return um_carrier_read_stop(inner(d));
}

static int o_shutdown(um_carrier_t *c)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    return um_carrier_shutdown(inner(d));
}

static void o_close(um_carrier_t *c)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    um_carrier_t *in = inner(d);
    d->rc = NULL;
    d->rd = NULL;
    d->dr = NULL;
    uv_timer_stop(&d->fail_timer);
    um_carrier_close(in);
    if (d->linked && d->link.closed) d->link.closed(d->link.ud);
    maybe_free(d);
}

static int o_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    um_dns_car_t *d = (um_dns_car_t *)c;
    return um_carrier_absorb(inner(d), p, n, out, outn);
}

static const um_carrier_ops_t dns_car_ops = {
    .name = "dns",
    .flags = UM_CARRIER_RELIABLE,
    .record_hint = 900,
    .set_cbs = o_set_cbs,
    .write = o_write,
    .queued = o_queued,
    .set_wq_max = o_set_wq_max,
    .read_start = o_read_start,
    .read_stop = o_read_stop,
    .shutdown = o_shutdown,
    .close = o_close,
    .absorb = o_absorb,
    .writev = o_writev,
};

int um_dns_car_new(uv_loop_t *loop, const um_rel_cfg_t *cfg, const um_dns_car_link_t *link,
                   um_dns_car_t **out)
{
    um_dns_car_t *d = calloc(1, sizeof(*d));
    if (!d) return UM_ENOMEM;
    d->base.ops = &dns_car_ops;
    d->link = *link;
    d->linked = true;
    um_rel_link_t rl = {.want_output = in_want, .ud = d};
    int r = um_rel_carrier_new(loop, cfg, &rl, &d->rc);
    if (r != 0) {
        free(d);
        return r;
    }
    um_carrier_set_cbs(um_rel_carrier_base(d->rc), in_read, in_drain, d);
    uv_timer_init(loop, &d->fail_timer);
    d->fail_timer.data = d;
    d->timer_live = true;
    *out = d;
    return 0;
}

um_carrier_t *um_dns_car_base(um_dns_car_t *d)
{
    return &d->base;
}

bool um_dns_car_open(const um_dns_car_t *d)
{
    return d->rc != NULL;
}

int um_dns_car_input(um_dns_car_t *d, const uint8_t *p, size_t n)
{
    if (!d->rc || d->fail) return UM_EPIPE;
    return um_rel_carrier_input(d->rc, p, n);
}

int um_dns_car_output(um_dns_car_t *d, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (!d->rc || d->fail) return 0;
    return um_rel_carrier_output(d->rc, out, cap, n);
}

bool um_dns_car_wants_output(const um_dns_car_t *d)
{
    return d->rc && !d->fail && um_rel_carrier_wants_output(d->rc);
}

um_rel_t *um_dns_car_rel(um_dns_car_t *d)
{
    return d->rc ? um_rel_carrier_rel(d->rc) : NULL;
}

void um_dns_car_fail(um_dns_car_t *d, int err)
{
    if (!d->rc || d->fail) return;
    d->fail = err ? err : UM_EPIPE;
    if (d->reading) uv_timer_start(&d->fail_timer, on_fail, 0, 0);
}

void um_dns_car_release(um_dns_car_t *d)
{
    if (!d) return;
    d->linked = false;
    if (d->rc) um_rel_carrier_detach_link(d->rc);
    maybe_free(d);
}
