/* The host's addresses for the egress policy: getifaddrs(3) (every
 * interface, running or not, loopback included), re-read on change. */
#include "exit/hostaddr.h"

#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>

#include "exit/hostaddr_os.h"
#include "util/err.h"
#include "util/log.h"

#define POLL_FALLBACK_MS 30000

struct um_hostaddr {
    um_policy_t *policy;
    int fd;
    bool polling; /* the uv_poll is initialised */
    uv_poll_t poll;
    uv_timer_t timer;
    int handles;
};

static void unref(um_hostaddr_t *h)
{
    if (--h->handles == 0) free(h);
}

static void on_closed(uv_handle_t *hd)
{
    um_hostaddr_t *h = hd->data;
    if (hd == (uv_handle_t *)&h->poll) um_hostaddr_os_close(h->fd);
    unref(h);
}

int um_hostaddr_refresh(um_hostaddr_t *h)
{
    /* getifaddrs rather than uv_interface_addresses, which skips interfaces
     * that are not running: an address on an interface with no carrier is
     * still local, and a connection to it still lands here. */
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) return UM_EIO;
    size_t n = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        n++;
    um_addr_t *v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v) {
        freeifaddrs(ifs);
        return UM_ENOMEM;
    }
    size_t k = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr &&
            (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6) &&
            um_addr_from_sockaddr(&v[k], i->ifa_addr) == 0)
            k++;
    freeifaddrs(ifs);
    int rc = um_policy_set_host(h->policy, v, k);
    free(v);
    if (rc == 0) UM_DEBUG("egress: %zu address(es) of this host refused", h->policy->n_host);
    return rc;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    um_hostaddr_t *h = p->data;
    (void)events;
    if (status < 0 || um_hostaddr_os_drain(h->fd)) um_hostaddr_refresh(h);
}

static void on_timer(uv_timer_t *t)
{
    um_hostaddr_refresh(t->data);
}

int um_hostaddr_new(uv_loop_t *loop, um_policy_t *policy, um_hostaddr_t **out)
{
    if (!loop || !policy || !out) return UM_EINVAL;
    um_hostaddr_t *h = calloc(1, sizeof(*h));
    if (!h) return UM_ENOMEM;
    h->policy = policy;
    h->fd = um_hostaddr_os_open();
    /* Subscribe first, then read: a change in between is not missed. */
    int rc = um_hostaddr_refresh(h);
    if (rc != 0) {
        um_hostaddr_os_close(h->fd);
        free(h);
        return rc;
    }
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->handles = 1;
    if (h->fd >= 0 && uv_poll_init(loop, &h->poll, h->fd) == 0) {
        h->polling = true;
        h->poll.data = h;
        h->handles++;
        uv_poll_start(&h->poll, UV_READABLE, on_poll);
    } else {
        UM_DEBUG("egress: no address-change notification; re-reading every %d s",
                 POLL_FALLBACK_MS / 1000);
        uv_timer_start(&h->timer, on_timer, POLL_FALLBACK_MS, POLL_FALLBACK_MS);
    }
    *out = h;
    return 0;
}

void um_hostaddr_free(um_hostaddr_t *h)
{
    if (!h) return;
    if (h->polling)
        uv_close((uv_handle_t *)&h->poll, on_closed);
    else
        um_hostaddr_os_close(h->fd);
    uv_close((uv_handle_t *)&h->timer, on_closed);
}
