/* The server's side of list.umbra.internal:1: the list file's bytes, then
 * FIN (docs/PROTOCOL.md 10.3). */
#include "app/listserve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/srvlist.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define LINGER_MS 10000 /* bound on flushing after the client's EOF */
#define POLL_MS   50

static um_ratelimit_t rl_read; /* "cannot read" lines */

bool um_list_dst_is(const um_addr_t *dst)
{
    return dst->type == UM_ADDR_DOMAIN && dst->port == UM_LIST_PORT &&
           dst->domain_len == sizeof(UM_LIST_HOST) - 1 &&
           strncasecmp(dst->u.domain, UM_LIST_HOST, sizeof(UM_LIST_HOST) - 1) == 0;
}

void um_list_dst(um_addr_t *dst)
{
    memset(dst, 0, sizeof(*dst));
    dst->type = UM_ADDR_DOMAIN;
    dst->port = UM_LIST_PORT;
    dst->domain_len = sizeof(UM_LIST_HOST) - 1;
    memcpy(dst->u.domain, UM_LIST_HOST, sizeof(UM_LIST_HOST));
}

/* The file's bytes (caller frees), or NULL (why in *err). */
static uint8_t *read_list(const char *path, size_t *n, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = -errno;
        return NULL;
    }
    uint8_t *buf = malloc(UM_SRVLIST_MAX_BYTES + 1);
    size_t got = buf ? fread(buf, 1, UM_SRVLIST_MAX_BYTES + 1, f) : 0;
    bool bad = !buf || ferror(f) || got > UM_SRVLIST_MAX_BYTES;
    *err = !buf ? UM_ENOMEM : ferror(f) ? UM_EIO : UM_EMSGSIZE;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *n = got;
    return buf;
}

void um_listserve_check(const char *path)
{
    if (!path[0]) return;
    size_t n;
    int e;
    uint8_t *p = read_list(path, &n, &e);
    if (!p) {
        UM_WARN("server-list '%s': cannot read: %s", path, um_strerror(e));
        return;
    }
    um_srvlist_t l;
    char err[512];
    if (um_srvlist_parse(&l, p, n, true, err, sizeof(err)) != 0)
        UM_WARN("server-list '%s': malformed (%s); clients will refuse it", path, err);
    else if (!um_srvlist_sig_ok(&l, p, n, l.operator_key))
        UM_WARN("server-list '%s': bad signature; clients will refuse it", path);
    else if (l.expires <= (int64_t)time(NULL))
        UM_WARN("server-list '%s': expired at %s; clients will refuse it", path, l.expires_text);
    else
        UM_INFO("serving server list version %llu (%zu servers, expires %s)",
                (unsigned long long)l.version, l.n_servers, l.expires_text);
    um_srvlist_free(&l);
    free(p);
}

typedef struct {
    um_conn_t *c;
    uv_timer_t timer;
    uint64_t until;
    bool closing;
} lserve_t;

static void lserve_freed(uv_handle_t *h)
{
    free(h->data);
}

static void lserve_end(lserve_t *x)
{
    if (x->closing) return;
    x->closing = true;
    um_conn_close(x->c);
    x->c = NULL;
    uv_close((uv_handle_t *)&x->timer, lserve_freed);
}

static void on_poll(uv_timer_t *h)
{
    lserve_t *x = h->data;
    if (um_conn_queued(x->c) == 0 || um_now_ms() >= x->until) lserve_end(x);
}

static void ls_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg; /* what the client sends is ignored */
    (void)p;
    (void)n;
}

/* The client read our FIN and finished too: flush, then close. */
static void ls_eof(void *arg)
{
    lserve_t *x = arg;
    x->until = um_now_ms() + LINGER_MS;
    uv_timer_start(&x->timer, on_poll, 0, POLL_MS);
}

static void ls_error(void *arg, int err)
{
    (void)err;
    lserve_end(arg);
}

static void ls_drain(void *arg)
{
    (void)arg;
}

static const um_conn_cbs_t ls_cbs = {NULL, ls_data, ls_eof, ls_error, ls_drain};

bool um_listserve_opened(uv_loop_t *loop, const char *path, um_tunnel_t *t, uint32_t id,
                         const um_addr_t *dst)
{
    if (!um_list_dst_is(dst)) return false;
    size_t n = 0;
    int e = 0;
    uint8_t *p = path[0] ? read_list(path, &n, &e) : NULL;
    if (!p) {
        if (path[0])
            um_log_limited(&rl_read, 1, 60000, UM_LOG_WARN, "server-list '%s': cannot read: %s",
                           path, um_strerror(e));
        um_tunnel_refuse(t, id, UM_CONN_REFUSED);
        return true;
    }
    lserve_t *x = calloc(1, sizeof(*x));
    int r = x ? um_tunnel_accept(t, id, &ls_cbs, x, &x->c) : UM_ENOMEM;
    if (r != 0) {
        if (r == UM_ENOMEM) um_tunnel_refuse(t, id, UM_CONN_GENERAL_FAILURE);
        free(x);
        free(p);
        return true;
    }
    uv_timer_init(loop, &x->timer);
    x->timer.data = x;
    if (um_conn_write(x->c, p, n) != 0 || um_conn_shutdown(x->c) != 0) lserve_end(x);
    free(p);
    UM_DEBUG("served the server list (%zu bytes)", n);
    return true;
}
