/* The hub: opens made through whichever tunnel is current, waiting
 * (bounded) while none is. See tunnel.h. */
#include "tunnel/tunnel_int.h"

static void hub_arm(um_hub_t *h);
static void hub_tick(uv_timer_t *tm);

static int op_open(void *ctx, const um_addr_t *dst, const uint8_t *early, size_t n,
                   const um_conn_cbs_t *cbs, void *arg, um_conn_t **out)
{
    um_hub_t *h = ctx;
    struct tconn *c = tn_conn_new(cbs, arg);
    if (!c) return UM_ENOMEM;
    c->hub = h;
    c->dst = *dst;
    if (n && um_buf_append(&c->pend, early, n) != 0) {
        tn_conn_unref(c);
        return UM_ENOMEM;
    }
    um_tunnel_t *t = h->t;
    if (t && !t->down && !t->goaway_in) {
        int r = tn_start_open(t, c);
        if (r == 0) {
            *out = &c->base;
            return 0;
        }
        if (r != UM_ELIMIT && r != UM_ENOSPC) {
            tn_conn_unref(c);
            return r;
        }
    }
    /* No usable tunnel: wait, within bounds, for the next one. */
    if (h->n_wait >= h->max_waiting) {
        tn_conn_unref(c);
        return UM_ENOSPC;
    }
    c->state = C_WAITING;
    c->deadline_ms = um_now_ms() + h->wait_ms;
    c->refs++; /* the waiting list's */
    if (h->wait_tail)
        h->wait_tail->wnext = c;
    else
        h->wait_head = c;
    h->wait_tail = c;
    h->n_wait++;
    h->wait_signal = true;
    hub_arm(h);
    uv_timer_start(&h->timer, hub_tick, 0, 100); /* tell the owner on the next turn */
    *out = &c->base;
    return 0;
}

static int op_assoc_open(void *ctx, um_assoc_recv_cb cb, void *arg, um_assoc_t **out)
{
    um_hub_t *h = ctx;
    um_tunnel_t *t = h->t;
    if (!t || t->down) return UM_EAGAIN;
    struct tassoc *a = tn_t_calloc(1, sizeof(*a));
    if (!a) return UM_ENOMEM;
    a->base.ops = &tn_assoc_ops;
    int r = um_mux_assoc_open(t->mux, &a->id);
    if (r != 0) {
        free(a);
        return r;
    }
    a->t = t;
    a->cb = cb;
    a->arg = arg;
    a->next = t->assocs;
    t->assocs = a;
    *out = &a->base;
    return 0;
}

static const um_connector_ops_t hub_ops = {
    .name = "tunnel",
    .open = op_open,
    .assoc_open = op_assoc_open,
};

/* ---- hub ---- */

static void hub_tick(uv_timer_t *tm)
{
    um_hub_t *h = tm->data;
    uint64_t now = um_now_ms();
    while (h->failed) {
        struct tconn *c = h->failed;
        h->failed = c->wnext;
        c->wnext = NULL;
        if (!c->closed && c->cbs->on_open) c->cbs->on_open(c->arg, UM_CONN_GENERAL_FAILURE);
        tn_conn_unref(c);
    }
    if (h->wait_signal) {
        h->wait_signal = false;
        if (h->wait_cb && h->wait_head) h->wait_cb(h->wait_ud);
    }
    struct tconn **pp = &h->wait_head, *prev = NULL;
    while (*pp) {
        struct tconn *c = *pp;
        if (now < c->deadline_ms) {
            prev = c;
            pp = &c->wnext;
            continue;
        }
        *pp = c->wnext;
        if (h->wait_tail == c) h->wait_tail = prev;
        h->n_wait--;
        c->state = C_DEAD;
        if (!c->closed && c->cbs->on_open) c->cbs->on_open(c->arg, UM_CONN_GENERAL_FAILURE);
        tn_conn_unref(c); /* the waiting list's reference */
    }
    if (!h->wait_head && h->timer_on) {
        uv_timer_stop(&h->timer);
        h->timer_on = false;
    }
}

static void hub_arm(um_hub_t *h)
{
    if (h->timer_on) return;
    h->timer_on = true;
    uv_timer_start(&h->timer, hub_tick, 100, 100);
}

int um_hub_new(uv_loop_t *loop, uint32_t wait_ms, uint32_t max_waiting, um_hub_t **out)
{
    um_hub_t *h = calloc(1, sizeof(*h));
    if (!h) return UM_ENOMEM;
    h->loop = loop;
    h->wait_ms = wait_ms;
    h->max_waiting = max_waiting;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    *out = h;
    return 0;
}

static void hub_closed(uv_handle_t *hd)
{
    free(hd->data);
}

void um_hub_free(um_hub_t *h)
{
    if (!h) return;
    while (h->wait_head) {
        struct tconn *c = h->wait_head;
        h->wait_head = c->wnext;
        tn_conn_unref(c);
    }
    while (h->failed) {
        struct tconn *c = h->failed;
        h->failed = c->wnext;
        tn_conn_unref(c);
    }
    uv_close((uv_handle_t *)&h->timer, hub_closed);
}

void um_hub_set_tunnel(um_hub_t *h, um_tunnel_t *t)
{
    h->t = t;
    if (!t) return;
    t->hub = h;
    /* Waiting opens start now, in order. */
    while (h->wait_head) {
        struct tconn *c = h->wait_head;
        h->wait_head = c->wnext;
        if (!h->wait_head) h->wait_tail = NULL;
        h->n_wait--;
        c->wnext = NULL;
        if (!c->closed && tn_start_open(t, c) != 0) {
            /* Told on the next tick, not inside this call; the list keeps
             * the waiting list's reference. */
            c->state = C_DEAD;
            c->wnext = h->failed;
            h->failed = c;
            continue;
        }
        tn_conn_unref(c); /* the waiting list's reference */
    }
    if (h->failed) {
        h->timer_on = true;
        uv_timer_start(&h->timer, hub_tick, 0, 100);
    }
}

void um_hub_set_wait_cb(um_hub_t *h, void (*cb)(void *ud), void *ud)
{
    h->wait_cb = cb;
    h->wait_ud = ud;
}

um_conn_provider_t um_hub_connector(um_hub_t *h)
{
    um_conn_provider_t c = {&hub_ops, h};
    return c;
}
