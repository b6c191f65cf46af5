/* Fetching, checking, keeping and merging signed server lists on the client
 * (docs/PROTOCOL.md 10.2, 10.3). Through the tunnel: one stream to
 * list.umbra.internal:1 at a time, read to its end within 64 KiB and 30 s.
 * From URLs: libcurl's easy interface (loaded on the first fetch, curl_dl.h)
 * on the libuv thread pool, one job per URL, bounded in size (64 KiB) and
 * time (30 s), aborted when the client stops. Every check and merge runs on
 * the loop thread. */
#include "app/listfetch.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/curl_dl.h"
#include "app/listserve.h"
#include "app/srvlist.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define EVERY_MS         (3u * 3600 * 1000) /* lists are fetched again this often */
#define TUNNEL_GAP_MS    60000u             /* at most one tunnel fetch a minute */
#define FETCH_TIMEOUT_MS 30000L
#define MAX_REDIRS       3L

typedef struct {
    uint8_t key[32];
    uint64_t version; /* the highest accepted */
    bool have;
} op_t;

typedef struct {
    uv_work_t req;
    um_listfetch_t *lf;
    const um_curl_t *curl;
    char url[UM_LIST_URL_MAX + 1];
    uint8_t key[32];
    uint8_t *buf;
    size_t n;
    bool too_big, ok;
    char why[CURL_ERROR_SIZE];
} job_t;

struct um_listfetch {
    uv_loop_t *loop;
    um_config_t *cfg;
    um_events_t *ev;
    um_conn_provider_t prov;
    um_listfetch_added_cb cb;
    void *ud;
    uv_timer_t every, timeout;
    int refs; /* the two timers and every job in flight */
    bool stopped;
    atomic_int abort;
    op_t ops[UM_CFG_MAX_SERVERS];
    size_t n_ops;
    /* the session and its fetch */
    bool up, up_has_key;
    uint8_t up_key[32];
    char up_name[UM_NAME_MAX + 1];
    uint64_t last_tunnel;
    um_conn_t *c;
    uint8_t *buf;
    size_t n;
    uint8_t key[32]; /* the key the fetch in flight is checked against */
    char dir[UM_PATH_MAX];
    bool warned_dir;
};

int um_state_dir(char *out, size_t cap)
{
    const char *x = getenv("XDG_STATE_HOME"), *h = getenv("HOME");
    int n;
    if (x && x[0] == '/')
        n = snprintf(out, cap, "%s/umbra", x);
    else if (h && h[0] == '/')
        n = snprintf(out, cap, "%s/.local/state/umbra", h);
    else
        return UM_ENOENT;
    return n > 0 && (size_t)n < cap ? 0 : UM_ENOSPC;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char tmp[UM_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -errno;
    return 0;
}

static void list_path(const um_listfetch_t *lf, const uint8_t key[32], char *out, size_t cap)
{
    char hex[17];
    sodium_bin2hex(hex, sizeof(hex), key, 8);
    snprintf(out, cap, "%s/list-%s", lf->dir, hex);
}

/* Atomically replaces the kept list of this operator (0600). */
static void persist(um_listfetch_t *lf, const uint8_t key[32], const uint8_t *p, size_t n)
{
    if (!lf->dir[0]) return;
    int r = make_dirs(lf->dir);
    char path[UM_PATH_MAX + 32], tmp[UM_PATH_MAX + 64];
    list_path(lf, key, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    int fd = r == 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
    bool ok = fd >= 0;
    if (ok) {
        size_t o = 0;
        while (ok && o < n) {
            ssize_t w = write(fd, p + o, n - o);
            if (w < 0 && errno == EINTR) continue;
            ok = w > 0;
            o += ok ? (size_t)w : 0;
        }
        ok = fsync(fd) == 0 && ok;
        ok = close(fd) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
        if (!ok) unlink(tmp);
    }
    if (!ok && !lf->warned_dir) {
        lf->warned_dir = true;
        UM_WARN("cannot keep the server list in %s: %s", lf->dir, um_strerror(r ? r : -errno));
    }
}

static op_t *find_op(um_listfetch_t *lf, const uint8_t key[32])
{
    for (size_t i = 0; i < lf->n_ops; i++)
        if (sodium_memcmp(lf->ops[i].key, key, 32) == 0) return &lf->ops[i];
    if (lf->n_ops == UM_CFG_MAX_SERVERS) return NULL;
    op_t *o = &lf->ops[lf->n_ops++];
    memset(o, 0, sizeof(*o));
    memcpy(o->key, key, 32);
    return o;
}

static void refused(um_listfetch_t *lf, const char *source, const char *reason, const char *detail)
{
    UM_WARN("server list from %s refused: %s%s%s", source, reason, detail[0] ? ": " : "", detail);
    um_ev_begin(lf->ev, "list_refused");
    um_ev_str(lf->ev, "source", source);
    um_ev_str(lf->ev, "reason", reason);
    if (detail[0]) um_ev_str(lf->ev, "detail", detail);
    um_ev_end(lf->ev);
}

/* Checks the bytes of a list from `source` against the operator `key`;
 * keeps and merges an accepted one. */
static void process(um_listfetch_t *lf, const char *source, const uint8_t key[32], const uint8_t *p,
                    size_t n)
{
    op_t *op = find_op(lf, key);
    if (!op) return;
    um_srvlist_t l;
    char err[512];
    um_srvlist_status_t st =
        um_srvlist_check(&l, p, n, key, op->version, (int64_t)time(NULL), err, sizeof(err));
    if (st != UM_SRVLIST_OK) {
        refused(lf, source, um_srvlist_reason(st), err);
        um_srvlist_free(&l);
        return;
    }
    bool newer = !op->have || l.version > op->version;
    op->version = l.version;
    op->have = true;
    if (newer && strcmp(source, "state") != 0) persist(lf, key, p, n);
    size_t added = 0;
    if (um_srvlist_merge(lf->cfg, &l, &added) != 0)
        UM_WARN("server list from %s: not every server fits (at most %d servers, %d transports)",
                source, UM_CFG_MAX_SERVERS, UM_CFG_MAX_TRANSPORTS);
    UM_INFO("server list version %llu from %s accepted: %zu server(s), %zu new, expires %s",
            (unsigned long long)l.version, source, l.n_servers, added, l.expires_text);
    um_ev_begin(lf->ev, "list_accepted");
    um_ev_str(lf->ev, "source", source);
    um_ev_int(lf->ev, "version", (int64_t)l.version);
    um_ev_int(lf->ev, "servers", (int64_t)l.n_servers);
    um_ev_str(lf->ev, "expires", l.expires_text);
    um_ev_int(lf->ev, "added", (int64_t)added);
    um_ev_end(lf->ev);
    um_srvlist_free(&l);
    if (added && lf->cb) lf->cb(lf->ud, added);
}

/* ---- through the tunnel ---- */

static void tunnel_end(um_listfetch_t *lf)
{
    um_conn_close(lf->c);
    lf->c = NULL;
    free(lf->buf);
    lf->buf = NULL;
    lf->n = 0;
    if (!lf->stopped) uv_timer_stop(&lf->timeout);
}

static void tunnel_fail(um_listfetch_t *lf, const char *why)
{
    char reason[128];
    snprintf(reason, sizeof(reason), "fetch failed: %s", why);
    tunnel_end(lf);
    refused(lf, "tunnel", reason, "");
}

static void t_open(void *arg, int result)
{
    um_listfetch_t *lf = arg;
    if (result != UM_CONN_OK) tunnel_fail(lf, um_conn_result_str(result));
}

static void t_data(void *arg, const uint8_t *p, size_t n)
{
    um_listfetch_t *lf = arg;
    if (n > UM_SRVLIST_MAX_BYTES - lf->n) {
        tunnel_end(lf);
        refused(lf, "tunnel", "malformed", "larger than 65536 bytes");
        return;
    }
    memcpy(lf->buf + lf->n, p, n);
    lf->n += n;
}

static void t_eof(void *arg)
{
    um_listfetch_t *lf = arg;
    uint8_t *buf = lf->buf, key[32];
    size_t n = lf->n;
    memcpy(key, lf->key, 32);
    lf->buf = NULL;
    tunnel_end(lf);
    process(lf, "tunnel", key, buf, n);
    free(buf);
}

static void t_error(void *arg, int err)
{
    um_listfetch_t *lf = arg;
    tunnel_fail(lf, um_strerror(err));
}

static void t_drain(void *arg)
{
    (void)arg;
}

static const um_conn_cbs_t tunnel_cbs = {t_open, t_data, t_eof, t_error, t_drain};

static void on_timeout(uv_timer_t *h)
{
    um_listfetch_t *lf = h->data;
    if (lf->c) tunnel_fail(lf, "timed out");
}

static void tunnel_fetch(um_listfetch_t *lf)
{
    if (lf->stopped || lf->c || !lf->up || !lf->up_has_key) return;
    lf->last_tunnel = um_now_ms();
    lf->buf = malloc(UM_SRVLIST_MAX_BYTES);
    if (!lf->buf) return;
    lf->n = 0;
    memcpy(lf->key, lf->up_key, 32);
    um_addr_t dst;
    um_list_dst(&dst);
    int r = um_conn_open(lf->prov, &dst, NULL, 0, &tunnel_cbs, lf, &lf->c);
    if (r != 0) {
        lf->c = NULL;
        tunnel_fail(lf, um_strerror(r));
        return;
    }
    uv_timer_start(&lf->timeout, on_timeout, FETCH_TIMEOUT_MS, 0);
    UM_DEBUG("asking %s for its server list", lf->up_name);
}

void um_listfetch_session(um_listfetch_t *lf, const um_peer_server_t *server)
{
    if (!lf || lf->stopped) return;
    lf->up = server != NULL;
    if (!server) return;
    lf->up_has_key = server->has_operator_key;
    memcpy(lf->up_key, server->operator_key, 32);
    snprintf(lf->up_name, sizeof(lf->up_name), "%s", server->name);
    if (!lf->last_tunnel || um_now_ms() - lf->last_tunnel >= TUNNEL_GAP_MS) tunnel_fetch(lf);
}

/* ---- from URLs ---- */

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    job_t *j = ud;
    size_t n = size * nmemb;
    if (n > UM_SRVLIST_MAX_BYTES - j->n) {
        j->too_big = true;
        return 0; /* aborts the transfer */
    }
    memcpy(j->buf + j->n, p, n);
    j->n += n;
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    job_t *j = ud;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return atomic_load(&j->lf->abort) ? 1 : 0;
}

/* On a thread of the pool: touches nothing but the job (and the abort flag). */
static void job_work(uv_work_t *req)
{
    job_t *j = req->data;
    char errbuf[CURL_ERROR_SIZE] = "";
    const um_curl_t *cu = j->curl;
    CURL *h = cu->easy_init();
    if (!h) {
        snprintf(j->why, sizeof(j->why), "cannot start libcurl");
        return;
    }
    cu->easy_setopt(h, CURLOPT_URL, j->url);
    cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    cu->easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRS);
    cu->easy_setopt(h, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
    cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    cu->easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)UM_SRVLIST_MAX_BYTES);
    cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    cu->easy_setopt(h, CURLOPT_WRITEDATA, j);
    cu->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    cu->easy_setopt(h, CURLOPT_XFERINFODATA, j);
    cu->easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    cu->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode r = cu->easy_perform(h);
    if (r == CURLE_FILESIZE_EXCEEDED) j->too_big = true;
    j->ok = r == CURLE_OK;
    if (!j->ok) snprintf(j->why, sizeof(j->why), "%s", errbuf[0] ? errbuf : cu->easy_strerror(r));
    cu->easy_cleanup(h);
}

static void maybe_free(um_listfetch_t *lf)
{
    if (!lf->stopped || lf->refs > 0) return;
    free(lf->buf);
    sodium_memzero(lf, sizeof(*lf));
    free(lf);
}

static void job_done(uv_work_t *req, int status)
{
    job_t *j = req->data;
    um_listfetch_t *lf = j->lf;
    lf->refs--;
    if (!lf->stopped && status == 0) {
        if (j->too_big)
            refused(lf, j->url, "malformed", "larger than 65536 bytes");
        else if (!j->ok) {
            char reason[CURL_ERROR_SIZE + 16];
            snprintf(reason, sizeof(reason), "fetch failed: %s", j->why);
            refused(lf, j->url, reason, "");
        } else
            process(lf, j->url, j->key, j->buf, j->n);
    }
    free(j->buf);
    free(j);
    maybe_free(lf);
}

static void url_fetch(um_listfetch_t *lf, const char *url, const uint8_t key[32])
{
    const um_curl_t *cu = um_curl_get();
    if (!cu) {
        refused(lf, url, "fetch failed: libcurl cannot be loaded", "");
        return;
    }
    job_t *j = calloc(1, sizeof(*j));
    if (j) j->buf = malloc(UM_SRVLIST_MAX_BYTES);
    if (!j || !j->buf) {
        if (j) free(j);
        return;
    }
    j->lf = lf;
    j->curl = cu;
    j->req.data = j;
    snprintf(j->url, sizeof(j->url), "%s", url);
    memcpy(j->key, key, 32);
    if (uv_queue_work(lf->loop, &j->req, job_work, job_done) != 0) {
        free(j->buf);
        free(j);
        return;
    }
    lf->refs++;
    UM_DEBUG("fetching the server list %s", url);
}

/* Every list-url of every server once (the same URL for the same operator
 * once). */
static void fetch_urls(um_listfetch_t *lf)
{
    const um_config_t *c = lf->cfg;
    for (size_t i = 0; i < c->n_servers; i++) {
        const um_peer_server_t *s = &c->servers[i];
        for (size_t u = 0; u < s->n_list_urls; u++) {
            if (!s->has_operator_key) {
                refused(lf, s->list_urls[u], "unknown operator",
                        "the server has list-url but no operator-key");
                continue;
            }
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                for (size_t v = 0; v < c->servers[k].n_list_urls && !seen; v++)
                    seen = c->servers[k].has_operator_key &&
                           !memcmp(c->servers[k].operator_key, s->operator_key, 32) &&
                           !strcmp(c->servers[k].list_urls[v], s->list_urls[u]);
            if (!seen) url_fetch(lf, s->list_urls[u], s->operator_key);
        }
    }
}

static void on_every(uv_timer_t *h)
{
    um_listfetch_t *lf = h->data;
    fetch_urls(lf);
    tunnel_fetch(lf);
}

/* The lists kept from earlier runs, one per operator key. */
static void load_kept(um_listfetch_t *lf)
{
    if (!lf->dir[0]) return;
    size_t n_servers = lf->cfg->n_servers; /* not those the lists add */
    for (size_t i = 0; i < n_servers; i++) {
        const um_peer_server_t *s = &lf->cfg->servers[i];
        if (!s->has_operator_key) continue;
        bool seen = false;
        for (size_t k = 0; k < lf->n_ops && !seen; k++)
            seen = !memcmp(lf->ops[k].key, s->operator_key, 32);
        if (seen) continue;
        uint8_t key[32];
        memcpy(key, s->operator_key, 32);
        find_op(lf, key);
        char path[UM_PATH_MAX + 32];
        list_path(lf, key, path, sizeof(path));
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        uint8_t *buf = malloc(UM_SRVLIST_MAX_BYTES + 1);
        size_t n = buf ? fread(buf, 1, UM_SRVLIST_MAX_BYTES + 1, f) : 0;
        fclose(f);
        if (buf && n <= UM_SRVLIST_MAX_BYTES) process(lf, "state", key, buf, n);
        free(buf);
    }
}

static void timer_closed(uv_handle_t *h)
{
    um_listfetch_t *lf = h->data;
    lf->refs--;
    maybe_free(lf);
}

int um_listfetch_new(uv_loop_t *loop, um_config_t *cfg, um_events_t *ev, um_conn_provider_t prov,
                     um_listfetch_added_cb cb, void *ud, um_listfetch_t **out)
{
    um_listfetch_t *lf = calloc(1, sizeof(*lf));
    if (!lf) return UM_ENOMEM;
    lf->loop = loop;
    lf->cfg = cfg;
    lf->ev = ev;
    lf->prov = prov;
    lf->cb = cb;
    lf->ud = ud;
    atomic_init(&lf->abort, 0);
    if (um_state_dir(lf->dir, sizeof(lf->dir)) != 0) {
        lf->dir[0] = '\0';
        UM_DEBUG("no state directory (neither XDG_STATE_HOME nor HOME): lists are not kept");
    }
    uv_timer_init(loop, &lf->every);
    uv_timer_init(loop, &lf->timeout);
    lf->every.data = lf->timeout.data = lf;
    lf->refs = 2;
    load_kept(lf);
    fetch_urls(lf);
    uv_timer_start(&lf->every, on_every, EVERY_MS, EVERY_MS);
    *out = lf;
    return 0;
}

void um_listfetch_free(um_listfetch_t *lf)
{
    if (!lf || lf->stopped) return;
    tunnel_end(lf);
    lf->stopped = true;
    atomic_store(&lf->abort, 1);
    uv_close((uv_handle_t *)&lf->every, timer_closed);
    uv_close((uv_handle_t *)&lf->timeout, timer_closed);
}
