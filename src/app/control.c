#include "app/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "util/err.h"

#define CONTROL_BACKLOG 16 /* status readers are few and quick */

#define REPORT_MAX 4096

struct um_control {
    uv_pipe_t pipe;
    um_control_report_cb cb;
    um_control_request_cb rcb; /* set: the request mode (um_control_start_requests) */
    size_t n_peers;
    bool closed; /* freed when the last peer is gone too */
    void *ud;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

typedef struct {
    uv_pipe_t pipe;
    uv_write_t req;
    char buf[REPORT_MAX];
} peer_t;

/* 0 when path is a directory (not a symlink) owned by us with no access for
 * group or others; UM_ENOENT when missing; UM_EACCES (why says) otherwise. */
static int private_dir(const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return UM_ENOENT;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return UM_EACCES;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "%s is not a directory (a symlink or file someone made?)", path);
        return UM_EACCES;
    }
    if (st.st_uid != getuid()) {
        snprintf(why, whylen, "%s belongs to uid %u, not to us (uid %u)", path, (unsigned)st.st_uid,
                 (unsigned)getuid());
        return UM_EACCES;
    }
    if (st.st_mode & 077) {
        snprintf(why, whylen, "%s has mode %03o; it must be 0700", path,
                 (unsigned)(st.st_mode & 0777));
        return UM_EACCES;
    }
    return 0;
}

int um_control_default_path(char *out, size_t cap, bool create, char *why, size_t whylen)
{
    return um_control_default_path_named(out, cap, "umbra.sock", create, why, whylen);
}

int um_control_default_path_named(char *out, size_t cap, const char *file, bool create, char *why,
                                  size_t whylen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *rt = getenv("XDG_RUNTIME_DIR");
    int n;
    char tmp[8];
    if (rt && rt[0] == '/' && strlen(rt) < sizeof(dir) - 8 && private_dir(rt, tmp, 0) == 0) {
        n = snprintf(dir, sizeof(dir), "%s/umbra", rt);
    } else {
        const char *t = getenv("TMPDIR");
        if (!t || t[0] != '/') t = "/tmp";
        n = snprintf(dir, sizeof(dir), "%s/umbra-%u", t, (unsigned)getuid());
    }
    if (n < 0 || (size_t)n >= sizeof(dir) || (size_t)n + strlen(file) + 2 > cap) {
        snprintf(why, whylen, "control socket path too long");
        return UM_ENOSPC;
    }
    int r = private_dir(dir, why, whylen);
    if (r == UM_ENOENT && create) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
            return UM_EIO;
        }
        r = private_dir(dir, why, whylen); /* verified again: we may have lost a race */
    }
    if (r == UM_ENOENT) snprintf(why, whylen, "%s does not exist", dir);
    if (r != 0) return r;
    snprintf(out, cap, "%s/%s", dir, file);
    return 0;
}

int um_control_peer_ok(int fd, unsigned *peer_uid)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr)) {
        *peer_uid = (unsigned)-1;
        return UM_EACCES;
    }
    *peer_uid = (unsigned)cr.uid;
    return cr.uid == getuid() ? 0 : UM_EACCES;
}

size_t um_control_sanitize(char *out, const char *in, size_t n)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) { /* ASCII: C0 controls and DEL replaced */
            out[o++] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
            i++;
            continue;
        }
        /* UTF-8: copy a well-formed sequence that is not a C1 control
         * (U+0080..U+009F); anything else is one '?' per byte. */
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        bool good = len && i + len <= n;
        for (size_t k = 1; good && k < len; k++)
            good = (p[i + k] & 0xc0) == 0x80;
        if (good && len == 2 && c == 0xc2 && p[i + 1] <= 0x9f) good = false; /* C1 */
        if (good && len == 3 && c == 0xe0 && p[i + 1] < 0xa0) good = false;  /* overlong */
        if (good && len == 3 && c == 0xed && p[i + 1] >= 0xa0) good = false; /* surrogate */
        if (good && len == 4 && c == 0xf0 && p[i + 1] < 0x90) good = false;  /* overlong */
        if (good && len == 4 && c == 0xf4 && p[i + 1] >= 0x90) good = false; /* > U+10FFFF */
        if (!good) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, p + i, len);
        o += len;
        i += len;
    }
    return o;
}

static void peer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void peer_written(uv_write_t *req, int status)
{
    (void)status;
    peer_t *p = req->data;
    uv_close((uv_handle_t *)&p->pipe, peer_closed);
}

static void on_conn(uv_stream_t *server, int status)
{
    um_control_t *c = server->data;
    if (status < 0) return;
    peer_t *p = calloc(1, sizeof(*p));
    if (!p) return;
    uv_pipe_init(server->loop, &p->pipe, 0);
    p->pipe.data = p;
    uv_os_fd_t fd;
    unsigned uid;
    if (uv_accept(server, (uv_stream_t *)&p->pipe) != 0 ||
        uv_fileno((uv_handle_t *)&p->pipe, &fd) != 0 ||
        (um_control_peer_ok(fd, &uid) != 0 && uid != 0)) { /* ours, or root's */
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
        return;
    }
    /* The request line is not needed: every connection gets the report. */
    size_t n = c->cb(p->buf, sizeof(p->buf), c->ud);
    uv_buf_t b = uv_buf_init(p->buf, (unsigned)n);
    p->req.data = p;
    if (uv_write(&p->req, (uv_stream_t *)&p->pipe, &b, 1, peer_written) != 0)
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
}

/* ---- the request mode: one request line in, one answer out ---- */

typedef struct {
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t req;
    um_control_t *c;
    char *answer;
    size_t answer_n, have;
    int handles;
    bool answered;
    char buf[UM_CONTROL_REQ_MAX];
} rpeer_t;

static void rpeer_closed(uv_handle_t *h)
{
    rpeer_t *p = h->data;
    if (--p->handles > 0) return;
    if (--p->c->n_peers == 0 && p->c->closed) free(p->c);
    if (p->answer) {
        sodium_memzero(p->answer, p->answer_n); /* an answer may hold a new client's link */
        free(p->answer);
    }
    sodium_memzero(p->buf, sizeof(p->buf));
    free(p);
}

static void rpeer_close(rpeer_t *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->pipe)) uv_close((uv_handle_t *)&p->pipe, rpeer_closed);
    if (!uv_is_closing((uv_handle_t *)&p->timer)) uv_close((uv_handle_t *)&p->timer, rpeer_closed);
}

static void rpeer_written(uv_write_t *req, int status)
{
    (void)status;
    rpeer_close(req->data);
}

static void rpeer_timeout(uv_timer_t *t)
{
    rpeer_close(t->data);
}

static void rpeer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    rpeer_t *p = h->data;
    (void)hint;
    *b = uv_buf_init(p->buf + p->have, (unsigned)(sizeof(p->buf) - p->have));
}

static void rpeer_answer(rpeer_t *p, size_t n)
{
    p->answered = true;
    uv_read_stop((uv_stream_t *)&p->pipe);
    p->answer = p->c->rcb(p->buf, n, &p->answer_n, p->c->ud);
    if (!p->answer) {
        rpeer_close(p);
        return;
    }
    uv_buf_t b = uv_buf_init(p->answer, (unsigned)p->answer_n);
    p->req.data = p;
    if (uv_write(&p->req, (uv_stream_t *)&p->pipe, &b, 1, rpeer_written) != 0) rpeer_close(p);
}

static void rpeer_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    rpeer_t *p = st->data;
    (void)b;
    if (p->answered) return;
    if (nread < 0) {
        /* End of the request without a newline: what came is the request. */
        if (nread == UV_EOF && p->have)
            rpeer_answer(p, p->have);
        else
            rpeer_close(p);
        return;
    }
    const char *nl = memchr(p->buf + p->have, '\n', (size_t)nread);
    p->have += (size_t)nread;
    if (nl) {
        rpeer_answer(p, (size_t)(nl - p->buf));
        return;
    }
    if (p->have == sizeof(p->buf)) rpeer_answer(p, p->have); /* too long: the handler says so */
}

static void on_rconn(uv_stream_t *server, int status)
{
    um_control_t *c = server->data;
    if (status < 0) return;
    rpeer_t *p = calloc(1, sizeof(*p));
    if (!p) return;
    p->c = c;
    c->n_peers++;
    uv_pipe_init(server->loop, &p->pipe, 0);
    uv_timer_init(server->loop, &p->timer);
    p->pipe.data = p->timer.data = p;
    p->handles = 2;
    uv_os_fd_t fd;
    unsigned uid;
    if (uv_accept(server, (uv_stream_t *)&p->pipe) != 0 || c->n_peers > UM_CONTROL_PEERS_MAX ||
        uv_fileno((uv_handle_t *)&p->pipe, &fd) != 0 ||
        (um_control_peer_ok(fd, &uid) != 0 && uid != 0)) { /* ours, or root's */
        rpeer_close(p);
        return;
    }
    uv_timer_start(&p->timer, rpeer_timeout, UM_CONTROL_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&p->pipe, rpeer_alloc, rpeer_read) != 0) rpeer_close(p);
}

/* True when something answers on path. */
static int alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void ctl_closed(uv_handle_t *h)
{
    um_control_t *c = h->data;
    c->closed = true;
    if (c->n_peers == 0) free(c);
}

static int start(uv_loop_t *loop, const char *path, um_control_report_cb cb,
                 um_control_request_cb rcb, void *ud, um_control_t **out)
{
    um_control_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    if (strlen(path) >= sizeof(c->path)) {
        free(c);
        return UM_EINVAL;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->cb = cb;
    c->rcb = rcb;
    c->ud = ud;
    uv_pipe_init(loop, &c->pipe, 0);
    c->pipe.data = c;
    /* Created 0600: umask around bind, then chmod for good measure. */
    mode_t old = umask(077);
    int r = uv_pipe_bind(&c->pipe, path);
    if (r == UV_EADDRINUSE && !alive(path)) {
        unlink(path);
        r = uv_pipe_bind(&c->pipe, path);
    }
    umask(old);
    if (r == 0) {
        chmod(path, 0600);
        r = uv_listen((uv_stream_t *)&c->pipe, CONTROL_BACKLOG, rcb ? on_rconn : on_conn);
    }
    if (r != 0) {
        c->path[0] = '\0';
        uv_close((uv_handle_t *)&c->pipe, ctl_closed);
        return r == UV_EADDRINUSE ? UM_EEXIST : UM_EIO;
    }
    *out = c;
    return 0;
}

int um_control_start(uv_loop_t *loop, const char *path, um_control_report_cb cb, void *ud,
                     um_control_t **out)
{
    return start(loop, path, cb, NULL, ud, out);
}

int um_control_start_requests(uv_loop_t *loop, const char *path, um_control_request_cb cb, void *ud,
                              um_control_t **out)
{
    return start(loop, path, NULL, cb, ud, out);
}

void um_control_stop(um_control_t *c)
{
    if (!c) return;
    if (c->path[0]) unlink(c->path);
    uv_close((uv_handle_t *)&c->pipe, ctl_closed);
}
