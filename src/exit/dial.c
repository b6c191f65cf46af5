/* Happy eyeballs, RFC 8305 sections 4-5 (simplified: no resolution delay,
 * a fixed connection attempt delay). */
#include "exit/dial.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

typedef struct attempt {
    uv_connect_t req;
    uv_tcp_t *tcp;
    um_dial_t *dial;
    struct attempt *next;
} attempt_t;

struct um_dial {
    um_dialer_t cfg;
    um_addr_t dst;
    um_dial_cb cb;
    void *arg;
    um_resolve_t *query;
    um_addr_t addrs[UM_RESOLVE_MAX_ADDRS];
    size_t n, next_idx;
    attempt_t *attempts; /* live (not yet closed) attempts */
    uint32_t n_attempts; /* in flight, counted in the quotas' sockets */
    uv_timer_t stagger;
    uv_timer_t deadline;
    int refs; /* 1 for the dial itself + open handles + attempts */
    bool finished;
    bool starting;  /* inside um_dial_start: a failure is told from the loop */
    int result;     /* pending deferred result */
    int last_error; /* last connect error, um_conn_result_t */
};

static void dial_unref(um_dial_t *d)
{
    if (--d->refs == 0) free(d);
}

static void on_timer_closed(uv_handle_t *h)
{
    dial_unref(h->data);
}

static void on_attempt_closed(uv_handle_t *h)
{
    attempt_t *a = h->data;
    um_dial_t *d = a->dial;
    free(a->tcp);
    free(a);
    dial_unref(d);
}

static void tcp_free_cb(uv_handle_t *h)
{
    free(h);
}

void um_dial_tcp_close(uv_tcp_t *tcp)
{
    if (tcp && !uv_is_closing((uv_handle_t *)tcp)) uv_close((uv_handle_t *)tcp, tcp_free_cb);
}

int um_dial_result_from_uv(int e)
{
    switch (e) {
    case UV_ECONNREFUSED: return UM_CONN_REFUSED;
    case UV_ENETUNREACH: return UM_CONN_NET_UNREACHABLE;
    case UV_EHOSTUNREACH:
    case UV_EHOSTDOWN: return UM_CONN_HOST_UNREACHABLE;
    case UV_ETIMEDOUT: return UM_CONN_TIMED_OUT;
    default: return UM_CONN_GENERAL_FAILURE;
    }
}

/* The socket budget: uv_close releases the descriptor at once, so an
 * attempt gives its share back as soon as it is detached. */
static void sockets_add(um_dial_t *d, int k)
{
    d->n_attempts += (uint32_t)k;
    for (int i = 0; i < 2; i++)
        if (d->cfg.quota[i]) d->cfg.quota[i]->sockets += (uint32_t)k;
}

static bool sockets_left(const um_dial_t *d)
{
    for (int i = 0; i < 2; i++) {
        const um_dial_quota_t *q = d->cfg.quota[i];
        if (q && q->max_sockets && q->sockets >= q->max_sockets) return false;
    }
    return true;
}

static void detach_attempt(um_dial_t *d, attempt_t *a)
{
    for (attempt_t **pp = &d->attempts; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            sockets_add(d, -1);
            return;
        }
}

static void close_attempt(um_dial_t *d, attempt_t *a)
{
    detach_attempt(d, a);
    uv_close((uv_handle_t *)a->tcp, on_attempt_closed);
}

/* Ends the dial: stops the timers, closes losing attempts, releases the
 * dial's own reference. The callback is the caller's business. */
static void finish(um_dial_t *d)
{
    if (d->finished) return;
    d->finished = true;
    for (int i = 0; i < 2; i++)
        if (d->cfg.quota[i]) d->cfg.quota[i]->dials--;
    if (d->query) {
        um_resolve_cancel(d->query);
        d->query = NULL;
    }
    while (d->attempts)
        close_attempt(d, d->attempts);
    uv_close((uv_handle_t *)&d->stagger, on_timer_closed);
    uv_close((uv_handle_t *)&d->deadline, on_timer_closed);
    dial_unref(d);
}

static void on_deferred_fail(uv_timer_t *t);

static void fail(um_dial_t *d, int result)
{
    if (d->starting) {
        /* An IP literal is tried inside um_dial_start, whose caller must not
         * hear the result from inside its own call: the next timer phase
         * tells it (no attempt is in flight, so the stagger timer is free). */
        d->result = result;
        uv_timer_start(&d->stagger, on_deferred_fail, 0, 0);
        return;
    }
    um_dial_cb cb = d->cb;
    void *arg = d->arg;
    finish(d);
    cb(arg, result, NULL);
}

static void on_deferred_fail(uv_timer_t *t)
{
    um_dial_t *d = t->data;
    fail(d, d->result);
}

static void start_next(um_dial_t *d);

static void on_connect(uv_connect_t *req, int status)
{
    attempt_t *a = req->data;
    um_dial_t *d = a->dial;
    if (status == UV_ECANCELED || d->finished) return;
    if (status < 0) {
        d->last_error = um_dial_result_from_uv(status);
        close_attempt(d, a);
        /* A failure starts the next attempt at once (RFC 8305 section 5). */
        start_next(d);
        return;
    }
    /* The winner: hand its handle over, cancel the rest. */
    detach_attempt(d, a);
    uv_tcp_t *tcp = a->tcp;
    tcp->data = NULL;
    free(a);
    d->refs--; /* the attempt's reference; the dial's own one remains */
    uv_tcp_nodelay(tcp, 1);
    um_dial_cb cb = d->cb;
    void *arg = d->arg;
    finish(d);
    cb(arg, UM_CONN_OK, tcp);
}

static void on_stagger(uv_timer_t *t)
{
    start_next(t->data);
}

/* Starts attempts until one is in flight; fails when none are left. Past the
 * dial's own cap it waits for an attempt to end; without a socket in the
 * quotas it tries again after the stagger interval. */
static void start_next(um_dial_t *d)
{
    uint32_t stagger = d->cfg.stagger_ms ? d->cfg.stagger_ms : 250;
    uint32_t cap = d->cfg.max_attempts ? d->cfg.max_attempts : 4;
    while (d->next_idx < d->n) {
        if (d->n_attempts >= cap) return; /* on_connect calls us when one fails */
        if (!sockets_left(d)) {
            uv_timer_start(&d->stagger, on_stagger, stagger, 0);
            return;
        }
        const um_addr_t *dst = &d->addrs[d->next_idx++];
        struct sockaddr_storage ss;
        socklen_t sl;
        attempt_t *a = calloc(1, sizeof(*a));
        uv_tcp_t *tcp = calloc(1, sizeof(*tcp));
        bool dev = d->cfg.bind_device && d->cfg.bind_device[0];
        if (!a || !tcp || um_addr_to_sockaddr(dst, &ss, &sl) != 0 ||
            (dev ? uv_tcp_init_ex(d->cfg.loop, tcp, ss.ss_family)
                 : uv_tcp_init(d->cfg.loop, tcp)) != 0) {
            free(a);
            free(tcp);
            d->last_error = UM_CONN_GENERAL_FAILURE;
            continue;
        }
        a->tcp = tcp;
        a->dial = d;
        a->req.data = a;
        tcp->data = a;
        d->refs++;
        a->next = d->attempts;
        d->attempts = a;
        sockets_add(d, 1);
        int rc = dev && um_dial_bind_device((uv_handle_t *)tcp, d->cfg.bind_device) != 0
                     ? UV_EPERM
                     : uv_tcp_connect(&a->req, tcp, (const struct sockaddr *)&ss, on_connect);
        if (rc != 0) {
            d->last_error = um_dial_result_from_uv(rc);
            close_attempt(d, a);
            continue;
        }
        if (d->next_idx < d->n) uv_timer_start(&d->stagger, on_stagger, stagger, 0);
        return;
    }
    if (!d->attempts) fail(d, d->last_error ? d->last_error : UM_CONN_GENERAL_FAILURE);
}

/* Policy on every address, then IPv6 and IPv4 interleaved, IPv6 first. */
static void set_addrs(um_dial_t *d, const um_addr_t *in, size_t n, size_t *refused)
{
    um_addr_t v6[UM_RESOLVE_MAX_ADDRS], v4[UM_RESOLVE_MAX_ADDRS];
    size_t n6 = 0, n4 = 0;
    *refused = 0;
    for (size_t i = 0; i < n && i < UM_RESOLVE_MAX_ADDRS; i++) {
        um_ip_class_t cls;
        if (um_policy_check(d->cfg.policy, &in[i], &cls) != 0) {
            char s[UM_ADDR_STRLEN];
            um_addr_format(&in[i], s, sizeof(s));
            UM_DEBUG("egress: refused %s (%s)", s, um_ip_class_name(cls));
            (*refused)++;
            continue;
        }
        if (in[i].type == UM_ADDR_IPV6)
            v6[n6++] = in[i];
        else
            v4[n4++] = in[i];
    }
    d->n = 0;
    for (size_t i = 0; i < n6 || i < n4; i++) {
        if (i < n6) d->addrs[d->n++] = v6[i];
        if (i < n4) d->addrs[d->n++] = v4[i];
    }
}

static void on_resolved(void *arg, int status, const um_addr_t *addrs, size_t n)
{
    um_dial_t *d = arg;
    d->query = NULL;
    if (status != 0) {
        fail(d, status == UM_ENOENT      ? UM_CONN_HOST_NOT_FOUND
                : status == UM_ETIMEDOUT ? UM_CONN_TIMED_OUT
                                         : UM_CONN_GENERAL_FAILURE);
        return;
    }
    size_t refused;
    set_addrs(d, addrs, n, &refused);
    if (d->n == 0) {
        fail(d, refused ? UM_CONN_NOT_ALLOWED : UM_CONN_HOST_NOT_FOUND);
        return;
    }
    start_next(d);
}

static void on_deadline(uv_timer_t *t)
{
    fail(t->data, UM_CONN_TIMED_OUT);
}

int um_dial_start(const um_dialer_t *cfg, const um_addr_t *dst, um_dial_cb cb, void *arg,
                  um_dial_t **out)
{
    if (!cfg || !cfg->loop || !cfg->resolver || !dst || !cb || dst->port == 0) return UM_EINVAL;
    if (dst->type != UM_ADDR_IPV4 && dst->type != UM_ADDR_IPV6 && dst->type != UM_ADDR_DOMAIN)
        return UM_EINVAL;
    for (int i = 0; i < 2; i++) {
        const um_dial_quota_t *q = cfg->quota[i];
        if (q && q->max_dials && q->dials >= q->max_dials) return UM_EAGAIN;
    }
    um_dial_t *d = calloc(1, sizeof(*d));
    if (!d) return UM_ENOMEM;
    for (int i = 0; i < 2; i++)
        if (cfg->quota[i]) cfg->quota[i]->dials++;
    d->cfg = *cfg;
    d->dst = *dst;
    d->cb = cb;
    d->arg = arg;
    uv_timer_init(cfg->loop, &d->stagger);
    uv_timer_init(cfg->loop, &d->deadline);
    d->stagger.data = d->deadline.data = d;
    d->refs = 3;
    uv_timer_start(&d->deadline, on_deadline, cfg->timeout_ms ? cfg->timeout_ms : 10000, 0);
    /* An IP literal (also one sent as a name, as SOCKS5 clients that leave
     * resolution to the proxy do) needs no resolver: its connect starts
     * here, in the turn the stream was opened, instead of after the
     * resolver's delivery turn. A failure is still told from the loop. */
    char host[UM_DOMAIN_MAX + 1];
    um_addr_t lit = *dst;
    if (dst->type == UM_ADDR_DOMAIN &&
        (um_addr_parse_host(&lit, dst->u.domain, dst->domain_len, NULL, 0) != 0 ||
         lit.type == UM_ADDR_DOMAIN))
        lit.type = UM_ADDR_DOMAIN;
    if (lit.type != UM_ADDR_DOMAIN) {
        lit.port = dst->port;
        size_t refused;
        d->starting = true;
        set_addrs(d, &lit, 1, &refused);
        if (d->n == 0)
            fail(d, UM_CONN_NOT_ALLOWED);
        else
            start_next(d);
        d->starting = false;
        if (out) *out = d;
        return 0;
    }
    memcpy(host, dst->u.domain, dst->domain_len);
    host[dst->domain_len] = '\0';
    int rc = um_resolver_query(cfg->resolver, host, dst->port, on_resolved, d, &d->query);
    if (rc != 0) {
        d->cb = NULL;
        d->finished = true;
        for (int i = 0; i < 2; i++)
            if (cfg->quota[i]) cfg->quota[i]->dials--;
        uv_close((uv_handle_t *)&d->stagger, on_timer_closed);
        uv_close((uv_handle_t *)&d->deadline, on_timer_closed);
        dial_unref(d);
        return rc;
    }
    if (out) *out = d;
    return 0;
}

void um_dial_cancel(um_dial_t *d)
{
    if (d && !d->finished) finish(d);
}

int um_dial_bind_device(uv_handle_t *h, const char *ifname)
{
    uv_os_fd_t fd;
    if (uv_fileno(h, &fd) != 0) return UM_EIO;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) != 0) {
        UM_WARN("cannot bind a socket to %s: %s", ifname, strerror(errno));
        return UM_EIO;
    }
    return 0;
}
