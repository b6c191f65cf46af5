/* Mux streams seen as um_conn_t (and datagram associations as
 * um_assoc_t): their lifetime, delivery towards the user, and the
 * operations the user calls. See tunnel.h for the rules. */
#include "tunnel/tunnel_int.h"

static const um_conn_ops_t conn_ops;

/* ---- conn lifetime ---- */

void tn_conn_unref(struct tconn *c)
{
    if (--c->refs > 0) return;
    um_buf_free(&c->pend);
    free(c);
}

struct tconn *tn_conn_new(const um_conn_cbs_t *cbs, void *arg)
{
    struct tconn *c = tn_t_calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->base.ops = &conn_ops;
    c->cbs = cbs;
    c->arg = arg;
    c->refs = 1; /* the user's */
    c->reading = true;
    um_buf_init(&c->pend, PEND_MAX);
    return c;
}

/* ---- the tunnel's streams ----
 * No table of its own: the mux keeps each stream's tconn as its user
 * pointer, and events carry it. The list is for tn_die() and the stats. */

struct tconn *tn_lookup(const um_tunnel_t *t, const um_mux_event_t *ev)
{
    struct tconn *c = ev->ud;
    return c && c->listed && c->t == t && c->id == ev->id ? c : NULL;
}

void tn_list_add(um_tunnel_t *t, struct tconn *c)
{
    c->lprev = NULL;
    c->lnext = t->conns;
    if (t->conns) t->conns->lprev = c;
    t->conns = c;
    t->n_conns++;
    c->listed = true;
    c->refs++;
    um_mux_stream_set_ud(t->mux, c->id, c);
}

static void list_del(um_tunnel_t *t, struct tconn *c)
{
    if (!c->listed) return;
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        t->conns = c->lnext;
    if (c->lnext) c->lnext->lprev = c->lprev;
    c->lprev = c->lnext = NULL;
    if (t->mux && !c->mux_gone) um_mux_stream_set_ud(t->mux, c->id, NULL);
    /* Drop it from the ready list too. */
    for (struct tconn **pp = &t->ready; *pp; pp = &(*pp)->rnext)
        if (*pp == c) {
            *pp = c->rnext;
            break;
        }
    c->ready = false;
    if (c->above_high) {
        for (struct tconn **pp = &t->high; *pp; pp = &(*pp)->hinext)
            if (*pp == c) {
                *pp = c->hinext;
                break;
            }
        c->above_high = false;
    }
    c->listed = false;
    t->n_conns--;
    tn_conn_unref(c);
}

void tn_mark_ready(um_tunnel_t *t, struct tconn *c)
{
    if (c->ready || !c->listed) return;
    c->ready = true;
    c->rnext = t->ready;
    t->ready = c;
    tn_schedule(t);
}

/* ---- streams: data towards the user ---- */

/* Bytes written and not yet sent. A stream the mux calls full (the peer's
 * window is closed, or the client's memory share is used up) reports itself
 * above high water, so feeders stop reading their source now rather than
 * queue up to high water; on_drain follows once it can send again.
 *
 * So does a stream past its share of TX_SHARE when several streams have
 * bytes to send: the mux sends them in turn, so a deep queue per stream
 * buys nothing but memory, and cache misses. Without a share, 8 downloads
 * kept ~300 KiB each above the mux (a feeder reads up to 32 x 64 KiB per
 * loop turn until high water), 8 queues cycling through 6 MiB of storage:
 * the copies into and out of them took 21% of the server's CPU against
 * 9% with one download. */
#define TX_SHARE     (256u * 1024u) /* what all sending streams hold above the mux */
#define TX_SHARE_MIN (32u * 1024u)
size_t tn_conn_queued(struct tconn *c)
{
    size_t q = um_buf_len(&c->pend);
    um_mux_stream_info_t info;
    if (c->t && (c->state == C_OPEN || c->state == C_OPENING) &&
        um_mux_stream_info(c->t->mux, c->id, &info) == 0) {
        q += info.tx_buffered;
        if (info.tx_full && q <= UM_CONN_HIGH_WATER) q = UM_CONN_HIGH_WATER + 1;
        size_t n = um_mux_sending_count(c->t->mux);
        if (n > 1 && q <= UM_CONN_HIGH_WATER) {
            size_t share = TX_SHARE / n < TX_SHARE_MIN ? TX_SHARE_MIN : TX_SHARE / n;
            if (q > share) q = UM_CONN_HIGH_WATER + 1;
        }
    }
    return q;
}

/* Hands received bytes to the user while it reads, within a budget. */
void tn_deliver(um_tunnel_t *t, struct tconn *c)
{
    size_t budget = DELIVER_BUDGET;
    c->refs++;
    while (!c->closed && c->t == t && c->state == C_OPEN && c->reading && budget > 0) {
        const uint8_t *p;
        size_t n;
        int r = um_mux_stream_peek(t->mux, c->id, &p, &n);
        if (r == UM_EAGAIN) break;
        if (r == UM_EPIPE) {
            /* The final read: the mux may have forgotten the stream. */
            um_mux_stream_info_t in;
            if (um_mux_stream_info(t->mux, c->id, &in) != 0) c->mux_gone = true;
            if (!c->eof_delivered) {
                c->eof_delivered = true;
                if (c->cbs->on_eof) c->cbs->on_eof(c->arg);
            }
            break;
        }
        if (r < 0 || n == 0) break;
        if (n > budget) n = budget;
        if (n > DELIVER_CHUNK) n = DELIVER_CHUNK; /* so a feeder that pauses holds little */
        if (c->cbs->on_data) c->cbs->on_data(c->arg, p, n);
        if (c->t == t && c->listed) um_mux_stream_consume(t->mux, c->id, n);
        budget -= n;
    }
    if (budget == 0 && !c->closed && c->t == t) tn_mark_ready(t, c);
    tn_conn_unref(c);
}

/* Moves bytes the mux refused earlier into it; sends a deferred FIN. */
void tn_flush_pend(um_tunnel_t *t, struct tconn *c)
{
    if ((c->state != C_OPEN && c->state != C_OPENING) || c->t != t) return;
    while (um_buf_len(&c->pend) > 0) {
        const uint8_t *p;
        size_t n = um_buf_peek(&c->pend, &p), acc = 0;
        if (um_mux_stream_write(t->mux, c->id, p, n, &acc) != 0 || acc == 0) break;
        um_buf_consume(&c->pend, acc);
    }
    if (um_buf_len(&c->pend) == 0) um_buf_free(&c->pend); /* an idle stream holds none */
    if (c->shut_wanted && !c->shut_sent && um_buf_len(&c->pend) == 0 && c->state == C_OPEN) {
        c->shut_sent = true;
        um_mux_stream_shutdown(t->mux, c->id);
    }
    tn_schedule(t);
}

/* A stream leaves the tunnel's view (reset, refused, or the user is done
 * with it and it has nothing left to send). */
void tn_conn_gone(um_tunnel_t *t, struct tconn *c)
{
    c->state = C_DEAD;
    c->t = NULL;
    list_del(t, c); /* may drop the last reference: c is not touched after */
}

void tn_conn_fail(um_tunnel_t *t, struct tconn *c, int was_opening, int result, int err)
{
    c->refs++;
    tn_conn_gone(t, c);
    if (!c->closed) {
        if (was_opening) {
            if (c->cbs->on_open) c->cbs->on_open(c->arg, result);
        } else if (c->cbs->on_error) {
            c->cbs->on_error(c->arg, err);
        }
    }
    tn_conn_unref(c);
}

/* ---- the conn operations (client opens through a hub; server accepts) ---- */

static int op_write(um_conn_t *uc, const uint8_t *p, size_t n)
{
    struct tconn *c = (struct tconn *)uc;
    if (c->closed || c->state == C_DEAD) return UM_EPIPE;
    if (c->shut_wanted) return UM_EPIPE;
    if (c->state == C_WAITING) {
        /* No tunnel yet: kept with the early data (bounded), sent with the OPEN. */
        if (um_buf_len(&c->pend) + n > UM_CONN_HIGH_WATER) return UM_EAGAIN;
        return um_buf_append(&c->pend, p, n) == 0 ? 0 : UM_ENOSPC;
    }
    if (!c->t) return UM_EAGAIN;
    /* C_OPENING too: DATA may follow the OPEN before its result, within the
     * stream's initial window (PROTOCOL.md 6.5); the mux holds the rest. */
    um_tunnel_t *t = c->t;
    if (t->down) return UM_EPIPE;
    size_t acc = 0;
    if (um_buf_len(&c->pend) == 0) {
        int r = um_mux_stream_write(t->mux, c->id, p, n, &acc);
        if (r != 0 && r != UM_EAGAIN && r != UM_ENOSPC) return r;
    }
    if (acc < n && um_buf_append(&c->pend, p + acc, n - acc) != 0) return UM_ENOSPC;
    if (!c->above_high && tn_conn_queued(c) > UM_CONN_HIGH_WATER) {
        c->above_high = true;
        c->hinext = t->high;
        t->high = c;
    }
    tn_schedule(t);
    return 0;
}

static size_t op_queued(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    return tn_conn_queued(c);
}

static int op_read_start(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    c->reading = true;
    if (c->t && !c->t->down && c->state == C_OPEN) tn_mark_ready(c->t, c);
    return 0;
}

static int op_read_stop(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    c->reading = false;
    return 0;
}

static int op_shutdown(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    if (c->state == C_DEAD || c->closed) return UM_EPIPE;
    c->shut_wanted = true;
    if (c->t && !c->t->down && c->state == C_OPEN) tn_flush_pend(c->t, c);
    return 0;
}

static void op_close(um_conn_t *uc)
{
    struct tconn *c = (struct tconn *)uc;
    if (c->closed) return;
    c->closed = true;
    um_hub_t *h = c->hub;
    if (c->state == C_WAITING && h) {
        /* Unlink from the waiting list. */
        for (struct tconn **pp = &h->wait_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->wnext)
            if (*pp == c) {
                *pp = c->wnext;
                if (h->wait_tail == c) h->wait_tail = prev;
                h->n_wait--;
                c->refs--; /* the list's reference; the user's is dropped below */
                break;
            }
    } else if (c->t && c->listed) {
        um_tunnel_t *t = c->t;
        /* A stream the user finished in both directions keeps nothing to send
         * once its FIN is out; otherwise closing is an abort. */
        int r = 0;
        if (!c->mux_gone && !(c->shut_sent && c->eof_delivered && um_buf_len(&c->pend) == 0))
            r = um_mux_stream_reset(t->mux, c->id, UM_MUX_RST_CANCEL);
        tn_schedule(t);
        c->state = C_DEAD;
        /* UM_ENOENT: the mux ended the stream and its last event, which
         * names c, is still queued; c stays listed until it is handled. And
         * a tunnel that is down lets tn_finish() unlist it. */
        if (r != UM_ENOENT && !t->down)
            tn_conn_gone(t, c); /* the user's reference keeps c alive here */
    }
    c->state = C_DEAD;
    tn_conn_unref(c);
}

/* Datagram associations (client). */
static int op_assoc_send(um_assoc_t *ua, const um_addr_t *dst, const uint8_t *p, size_t n)
{
    struct tassoc *a = (struct tassoc *)ua;
    if (!a->t || a->t->down) return UM_EPIPE;
    int r = um_mux_dgram_send(a->t->mux, a->id, dst, p, n);
    tn_schedule(a->t);
    return r;
}

static void op_assoc_close(um_assoc_t *ua)
{
    struct tassoc *a = (struct tassoc *)ua;
    um_tunnel_t *t = a->t;
    if (t && !t->down) {
        um_mux_assoc_close(t->mux, a->id);
        for (struct tassoc **pp = &t->assocs; *pp; pp = &(*pp)->next)
            if (*pp == a) {
                *pp = a->next;
                break;
            }
        tn_schedule(t);
    }
    free(a);
}

static const um_conn_ops_t conn_ops = {
    .name = "tunnel",
    .write = op_write,
    .queued = op_queued,
    .read_start = op_read_start,
    .read_stop = op_read_stop,
    .shutdown = op_shutdown,
    .close = op_close,
};

const um_assoc_ops_t tn_assoc_ops = {
    .send = op_assoc_send,
    .close = op_assoc_close,
};

/* ---- opening and accepting streams, datagrams ---- */

int um_tunnel_accept(um_tunnel_t *t, uint32_t id, const um_conn_cbs_t *cbs, void *arg,
                     um_conn_t **out)
{
    if (t->down) return UM_EPIPE;
    struct tconn *c = tn_conn_new(cbs, arg);
    if (!c) return UM_ENOMEM;
    c->t = t;
    c->id = id;
    c->state = C_OPEN;
    um_sess_guard(t->sess, OPEN_GUARD); /* what a new stream carries first is padded */
    int r = um_mux_stream_accept(t->mux, id, UM_MUX_OK);
    if (r != 0) {
        um_mux_stream_reset(t->mux, id, UM_MUX_RST_INTERNAL);
        tn_conn_unref(c);
        return r;
    }
    tn_list_add(t, c);
    t->st.streams_opened++;
    tn_mark_ready(t, c); /* early data may be waiting */
    *out = &c->base;
    return 0;
}

void um_tunnel_refuse(um_tunnel_t *t, uint32_t id, int result)
{
    if (t->down) return;
    um_mux_stream_accept(t->mux, id, um_tunnel_result_to_mux(result));
    tn_schedule(t);
}

int um_tunnel_dgram_send(um_tunnel_t *t, uint32_t assoc, const um_addr_t *src, const uint8_t *p,
                         size_t n)
{
    if (t->down) return UM_EPIPE;
    int r = um_mux_dgram_send(t->mux, assoc, src, p, n);
    tn_schedule(t);
    return r;
}

int tn_start_open(um_tunnel_t *t, struct tconn *c)
{
    uint32_t id;
    int r = um_mux_stream_open(t->mux, &c->dst, &id);
    if (r != 0) return r;
    um_sess_guard(t->sess, OPEN_GUARD); /* what a new stream carries first is padded */
    c->id = id;
    c->t = t;
    c->state = C_OPENING;
    tn_list_add(t, c);
    t->st.streams_opened++;
    /* Early data rides with the OPEN (0-RTT): the mux takes it before the
     * result comes back. */
    while (um_buf_len(&c->pend) > 0) {
        const uint8_t *p;
        size_t n = um_buf_peek(&c->pend, &p), acc = 0;
        if (um_mux_stream_write(t->mux, id, p, n, &acc) != 0 || acc == 0) break;
        um_buf_consume(&c->pend, acc);
    }
    if (um_buf_len(&c->pend) == 0) um_buf_free(&c->pend); /* the early data is in the mux */
    tn_schedule(t);
    return 0;
}
