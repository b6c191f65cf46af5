#include "app/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/err.h"

#define REPORT_MAX 4096

struct um_control {
    uv_pipe_t pipe;
    um_control_report_cb cb;
    void *ud;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

typedef struct {
    uv_pipe_t pipe;
    uv_write_t req;
    char buf[REPORT_MAX];
} peer_t;

void um_control_default_path(char *out, size_t cap)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && *rt)
        snprintf(out, cap, "%s/umbra.sock", rt);
    else
        snprintf(out, cap, "/tmp/umbra-%u.sock", (unsigned)getuid());
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
    if (uv_accept(server, (uv_stream_t *)&p->pipe) != 0) {
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
    free(h->data);
}

int um_control_start(uv_loop_t *loop, const char *path, um_control_report_cb cb, void *ud,
                     um_control_t **out)
{
    um_control_t *c = calloc(1, sizeof(*c));
    if (!c) return UM_ENOMEM;
    if (strlen(path) >= sizeof(c->path)) {
        free(c);
        return UM_EINVAL;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->cb = cb;
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
        r = uv_listen((uv_stream_t *)&c->pipe, 16, on_conn);
    }
    if (r != 0) {
        c->path[0] = '\0';
        uv_close((uv_handle_t *)&c->pipe, ctl_closed);
        return r == UV_EADDRINUSE ? UM_EEXIST : UM_EIO;
    }
    *out = c;
    return 0;
}

void um_control_stop(um_control_t *c)
{
    if (!c) return;
    if (c->path[0]) unlink(c->path);
    uv_close((uv_handle_t *)&c->pipe, ctl_closed);
}
