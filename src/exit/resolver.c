/* c-ares driven by libuv: c-ares tells us (sock_state_cb) which sockets to
 * watch; a uv_poll per socket and one timer feed ares_process_fd. Results are
 * queued and delivered from a check handle (right after the loop's poll
 * phase: an answer read from a DNS socket, or a query made from an I/O
 * callback, is delivered in the same turn) or a zero timer (a query made
 * before the poll phase: the timer keeps the poll from blocking), whichever
 * runs first, so no callback ever runs inside um_resolver_query (c-ares may
 * answer /etc/hosts lookups synchronously). */
#include "exit/resolver.h"

#include <ares.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

typedef struct sockpoll {
    uv_poll_t poll;
    ares_socket_t fd;
    um_resolver_t *r;
    struct sockpoll *next;
} sockpoll_t;

struct um_resolve {
    um_resolver_t *r;
    um_resolve_cb cb;
    void *arg;
    uint16_t port;
    bool cancelled;
    bool in_ares; /* c-ares still holds a pointer to us */
    bool queued;  /* on the delivery list */
    int status;
    size_t n;
    um_addr_t addrs[UM_RESOLVE_MAX_ADDRS];
    um_resolve_t *next; /* delivery list */
    uint64_t t0_ns;     /* a name query's start (uv_hrtime; 0: a literal) */
};

struct um_resolver {
    uv_loop_t *loop;
    ares_channel ch;
    bool ch_ok;
    bool closing;
    uv_timer_t timer;   /* c-ares timeouts */
    uv_timer_t deliver; /* deferred callbacks */
    uv_check_t dcheck;  /* ... or these, whichever runs first */
    int handles;        /* open uv handles, the resolver included as 1 */
    sockpoll_t *polls;
    um_resolve_t *done_head, *done_tail;
    um_resolver_lat_t lat; /* answered name queries (um_resolver_latency) */
};

static void on_timer(uv_timer_t *t);
static void on_deliver(uv_timer_t *t);
static void on_deliver_check(uv_check_t *c);

static void unref(um_resolver_t *r)
{
    if (--r->handles == 0) free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void on_poll_closed(uv_handle_t *h)
{
    sockpoll_t *sp = h->data;
    um_resolver_t *r = sp->r;
    free(sp);
    unref(r);
}

static void rearm(um_resolver_t *r)
{
    if (r->closing) return;
    struct timeval tv, *tvp = ares_timeout(r->ch, NULL, &tv);
    if (!tvp) {
        uv_timer_stop(&r->timer);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000;
    uv_timer_start(&r->timer, on_timer, ms ? ms : 1, 0);
}

static void on_timer(uv_timer_t *t)
{
    um_resolver_t *r = t->data;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sockpoll_t *sp = h->data;
    um_resolver_t *r = sp->r;
    ares_socket_t rd = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;
    if (status < 0 || (events & UV_READABLE)) rd = sp->fd;
    if (status < 0 || (events & UV_WRITABLE)) wr = sp->fd;
    ares_process_fd(r->ch, rd, wr);
    rearm(r);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    um_resolver_t *r = data;
    sockpoll_t **pp = &r->polls, *sp = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->fd == fd) {
            sp = *pp;
            break;
        }
    if (readable || writable) {
        if (!sp) {
            if (r->closing) return;
            sp = calloc(1, sizeof(*sp));
            if (!sp) return; /* the query will time out */
            if (uv_poll_init_socket(r->loop, &sp->poll, fd) != 0) {
                free(sp);
                return;
            }
            sp->fd = fd;
            sp->r = r;
            sp->poll.data = sp;
            sp->next = r->polls;
            r->polls = sp;
            r->handles++;
        }
        uv_poll_start(&sp->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                      on_poll);
    } else if (sp) {
        *pp = sp->next;
        uv_poll_stop(&sp->poll);
        uv_close((uv_handle_t *)&sp->poll, on_poll_closed);
    }
}

static void enqueue(um_resolve_t *q)
{
    um_resolver_t *r = q->r;
    q->queued = true;
    q->next = NULL;
    if (r->done_tail)
        r->done_tail->next = q;
    else
        r->done_head = q;
    r->done_tail = q;
    if (!r->closing) {
        uv_timer_start(&r->deliver, on_deliver, 0, 0);
        uv_check_start(&r->dcheck, on_deliver_check);
    }
}

static void deliver(um_resolver_t *r);

static void on_deliver(uv_timer_t *t)
{
    deliver(t->data);
}

static void on_deliver_check(uv_check_t *c)
{
    deliver(c->data);
}

static void deliver(um_resolver_t *r)
{
    uv_timer_stop(&r->deliver);
    uv_check_stop(&r->dcheck);
    /* Deliver only what is queued now; callbacks may start new queries. */
    um_resolve_t *q = r->done_head, *last = r->done_tail;
    r->done_head = r->done_tail = NULL;
    while (q) {
        um_resolve_t *next = q == last ? NULL : q->next;
        if (q->t0_ns) {
            uint64_t us = (uv_hrtime() - q->t0_ns) / 1000;
            size_t b = 0;
            while (b < UM_RESOLVE_LAT_BUCKETS && us > um_resolve_lat_us[b])
                b++;
            r->lat.count[b]++;
            r->lat.sum_us += us;
        }
        if (!q->cancelled) q->cb(q->arg, q->status, q->addrs, q->n);
        free(q);
        q = next;
    }
}

static void add_addr(um_resolve_t *q, const um_addr_t *a)
{
    for (size_t i = 0; i < q->n; i++)
        if (um_addr_equal(&q->addrs[i], a)) return;
    if (q->n < UM_RESOLVE_MAX_ADDRS) q->addrs[q->n++] = *a;
}

static void on_ares(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    um_resolve_t *q = arg;
    q->in_ares = false;
    if (status == ARES_SUCCESS && res) {
        for (struct ares_addrinfo_node *nd = res->nodes; nd; nd = nd->ai_next) {
            um_addr_t a;
            if (!nd->ai_addr || um_addr_from_sockaddr(&a, nd->ai_addr) != 0) continue;
            a.port = q->port;
            add_addr(q, &a);
        }
        q->status = q->n ? 0 : UM_ENOENT;
    } else if (status == ARES_ENOTFOUND || status == ARES_ENODATA || status == ARES_ENONAME) {
        q->status = UM_ENOENT;
    } else if (status == ARES_ETIMEOUT) {
        q->status = UM_ETIMEDOUT;
    } else {
        q->status = UM_EIO;
    }
    if (res) ares_freeaddrinfo(res);
    if (q->r->closing || q->cancelled) {
        free(q);
        return;
    }
    enqueue(q);
}

int um_resolver_new(uv_loop_t *loop, uint32_t timeout_ms, um_resolver_t **out)
{
    um_resolver_t *r = calloc(1, sizeof(*r));
    if (!r) return UM_ENOMEM;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        free(r);
        return UM_EIO;
    }
    if (!timeout_ms) timeout_ms = 5000;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = r;
    o.timeout = (int)(timeout_ms / 2 ? timeout_ms / 2 : 1);
    o.tries = 2;
    o.lookups = (char *)"fb"; /* /etc/hosts, then DNS */
    int rc = ares_init_options(&r->ch, &o,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                   ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS) {
        UM_WARN("resolver: c-ares init failed: %s", ares_strerror(rc));
        ares_library_cleanup();
        free(r);
        return UM_EIO;
    }
    r->ch_ok = true;
    r->loop = loop;
    uv_timer_init(loop, &r->timer);
    uv_timer_init(loop, &r->deliver);
    uv_check_init(loop, &r->dcheck);
    r->timer.data = r->deliver.data = r->dcheck.data = r;
    r->handles = 4;
    *out = r;
    return 0;
}

void um_resolver_free(um_resolver_t *r)
{
    if (!r) return;
    r->closing = true;
    /* Pending queries get ARES_EDESTRUCTION (freed in on_ares); c-ares closes
     * its sockets, which closes our polls through sock_state. */
    ares_destroy(r->ch);
    ares_library_cleanup();
    for (um_resolve_t *q = r->done_head, *next; q; q = next) {
        next = q->next;
        free(q);
    }
    r->done_head = r->done_tail = NULL;
    while (r->polls) {
        sockpoll_t *sp = r->polls;
        r->polls = sp->next;
        uv_close((uv_handle_t *)&sp->poll, on_poll_closed);
    }
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->deliver, on_handle_closed);
    uv_close((uv_handle_t *)&r->dcheck, on_handle_closed);
    unref(r);
}

int um_resolver_query(um_resolver_t *r, const char *name, uint16_t port, um_resolve_cb cb,
                      void *arg, um_resolve_t **out)
{
    if (!r || !name || !cb || r->closing) return UM_EINVAL;
    size_t len = strlen(name);
    um_addr_t lit;
    if (len == 0 || len > UM_DOMAIN_MAX + 1 || um_addr_parse_host(&lit, name, len, NULL, 0) != 0)
        return UM_EINVAL;
    um_resolve_t *q = calloc(1, sizeof(*q));
    if (!q) return UM_ENOMEM;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->port = port;
    if (out) *out = q;
    if (lit.type != UM_ADDR_DOMAIN) {
        lit.port = port;
        q->addrs[0] = lit;
        q->n = 1;
        enqueue(q);
        return 0;
    }
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    q->in_ares = true;
    q->t0_ns = uv_hrtime();
    ares_getaddrinfo(r->ch, lit.u.domain, NULL, &hints, on_ares, q);
    rearm(r);
    return 0;
}

void um_resolve_cancel(um_resolve_t *q)
{
    if (!q) return;
    q->cancelled = true; /* freed by on_ares or on_deliver */
}

const uint64_t um_resolve_lat_us[UM_RESOLVE_LAT_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};

void um_resolver_latency(const um_resolver_t *r, um_resolver_lat_t *out)
{
    *out = r->lat;
}
