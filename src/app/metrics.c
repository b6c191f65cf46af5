/* The metrics endpoint: exposition text helpers and the HTTP/1.1 responder
 * (app/metrics.h). */
#include "app/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "util/err.h"

/* ---- exposition text ---- */

void um_mtext_printf(um_mtext_t *t, const char *fmt, ...)
{
    if (t->oom) return;
    for (;;) {
        size_t room = t->cap - t->n;
        va_list ap;
        va_start(ap, fmt);
        int w = room ? vsnprintf(t->p + t->n, room, fmt, ap) : -1;
        va_end(ap);
        if (w >= 0 && (size_t)w < room) {
            t->n += (size_t)w;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (w >= 0 && cap - t->n <= (size_t)w)
            cap *= 2;
        char *np = cap <= (64u << 20) ? realloc(t->p, cap) : NULL;
        if (!np) {
            t->oom = true;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

void um_mtext_family(um_mtext_t *t, const char *name, const char *type, const char *help)
{
    um_mtext_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void num(um_mtext_t *t, double v)
{
    /* whole numbers exactly (no libm: an integer round trip tells) */
    if (v >= 0 && v < 9e15 && (double)(uint64_t)v == v)
        um_mtext_printf(t, " %llu\n", (unsigned long long)v);
    else
        um_mtext_printf(t, " %.9g\n", v);
}

void um_mtext_sample(um_mtext_t *t, const char *name, const char *label, const char *value,
                     double v)
{
    um_mtext_printf(t, "%s", name);
    if (label) {
        um_mtext_printf(t, "{%s=\"", label);
        for (const char *c = value; *c; c++) {
            if (*c == '\\' || *c == '"')
                um_mtext_printf(t, "\\%c", *c);
            else if (*c == '\n')
                um_mtext_printf(t, "\\n");
            else
                um_mtext_printf(t, "%c", *c);
        }
        um_mtext_printf(t, "\"}");
    }
    num(t, v);
}

void um_mtext_free(um_mtext_t *t)
{
    free(t->p);
    memset(t, 0, sizeof(*t));
}

void um_mtext_hist(um_mtext_t *t, const char *name, const char *help, const double *bounds,
                   const uint64_t *counts, size_t nb, double sum)
{
    um_mtext_family(t, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += counts[i];
        if (i < nb)
            um_mtext_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                            (unsigned long long)cum);
        else
            um_mtext_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    um_mtext_printf(t, "%s_sum %.9g\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
}

void um_mtext_loop(um_mtext_t *t, uv_loop_t *loop)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        um_mtext_family(t, "umbra_cpu_seconds_total", "counter",
                        "CPU time of the event loop's thread, by mode.");
        um_mtext_sample(t, "umbra_cpu_seconds_total", "mode", "user",
                        (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6);
        um_mtext_sample(t, "umbra_cpu_seconds_total", "mode", "system",
                        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    }
    um_mtext_family(t, "umbra_loop_idle_seconds_total", "counter",
                    "Time the event loop spent waiting for events.");
    um_mtext_sample(t, "umbra_loop_idle_seconds_total", NULL, NULL,
                    (double)uv_metrics_idle_time(loop) / 1e9);
}

/* ---- requests ---- */

int um_metrics_route(const char *req, size_t n)
{
    /* The header is complete at its empty line. */
    size_t end = 0;
    for (size_t i = 0; i + 1 < n && !end; i++) {
        if (req[i] == '\n' && req[i + 1] == '\n') end = i;
        if (i + 3 < n && !memcmp(req + i, "\r\n\r\n", 4)) end = i;
    }
    if (!end) return 0;
    const char *le = memchr(req, '\n', end + 2);
    size_t ll = (size_t)(le - req);
    if (ll && req[ll - 1] == '\r') ll--;
    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(req, ' ', ll);
    if (!sp1 || sp1 == req) return 400;
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', ll - (size_t)(tgt - req));
    if (!sp2 || sp2 == tgt) return 400;
    size_t vl = ll - (size_t)(sp2 + 1 - req);
    if (vl != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        return 400;
    for (const char *c = req; c < req + ll; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f) return 400;
    size_t tl = (size_t)(sp2 - tgt);
    size_t pl = tl;
    const char *q = memchr(tgt, '?', tl);
    if (q) pl = (size_t)(q - tgt);
    if ((size_t)(sp1 - req) == 3 && !memcmp(req, "GET", 3) && pl == 8 &&
        !memcmp(tgt, "/metrics", 8))
        return 200;
    return 404;
}

/* ---- the responder ---- */

struct um_metrics {
    uv_tcp_t tcp;
    um_metrics_render_cb cb;
    void *ud;
    size_t n_conns;
    bool closed;
};

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    um_metrics_t *m;
    int handles;
    bool answered;
    size_t have;
    char head[256];
    um_mtext_t body;
    char buf[UM_METRICS_REQ_MAX];
} mconn_t;

static void m_free(um_metrics_t *m)
{
    if (m->closed && m->n_conns == 0) free(m);
}

static void conn_closed(uv_handle_t *h)
{
    mconn_t *c = h->data;
    if (--c->handles > 0) return;
    c->m->n_conns--;
    m_free(c->m);
    um_mtext_free(&c->body);
    free(c);
}

static void conn_close(mconn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void conn_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void conn_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void answer(mconn_t *c, int code)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (code == 200) {
        c->m->cb(&c->body, c->m->ud);
        if (c->body.oom) {
            um_mtext_free(&c->body);
            code = 500;
        }
    }
    if (code != 200) {
        um_mtext_free(&c->body);
        um_mtext_printf(&c->body, "%s\n",
                        code == 404   ? "not found (the metrics are at GET /metrics)"
                        : code == 400 ? "bad request"
                        : code == 431 ? "request header too large"
                                      : "out of memory");
        if (c->body.oom) {
            conn_close(c);
            return;
        }
    }
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 400 ? "Bad Request"
                         : code == 431 ? "Request Header Fields Too Large"
                                       : "Internal Server Error";
    int hn = snprintf(c->head, sizeof(c->head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      code, reason,
                      code == 200 ? "text/plain; version=0.0.4; charset=utf-8"
                                  : "text/plain; charset=utf-8",
                      c->body.n);
    uv_buf_t b[2] = {uv_buf_init(c->head, (unsigned)hn),
                     uv_buf_init(c->body.p, (unsigned)c->body.n)};
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, b, 2, conn_written) != 0) conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    mconn_t *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->buf + c->have, (unsigned)(sizeof(c->buf) - c->have));
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    mconn_t *c = st->data;
    (void)b;
    if (c->answered) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->have += (size_t)nread;
    int code = um_metrics_route(c->buf, c->have);
    if (code)
        answer(c, code);
    else if (c->have == sizeof(c->buf))
        answer(c, 431);
}

static void on_conn(uv_stream_t *server, int status)
{
    um_metrics_t *m = server->data;
    if (status < 0) return;
    mconn_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->m = m;
    m->n_conns++;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || m->n_conns > UM_METRICS_CONNS_MAX) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, conn_timeout, UM_METRICS_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0) conn_close(c);
}

static void lst_closed(uv_handle_t *h)
{
    um_metrics_t *m = h->data;
    m->closed = true;
    m_free(m);
}

int um_metrics_start(uv_loop_t *loop, const um_addr_t *addr, um_metrics_render_cb cb, void *ud,
                     um_metrics_t **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (um_addr_to_sockaddr(addr, &ss, &len) != 0) return UM_EINVAL;
    um_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return UM_ENOMEM;
    m->cb = cb;
    m->ud = ud;
    uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    uv_tcp_init(loop, &m->tcp);
    m->tcp.data = m;
    int r = uv_tcp_bind(&m->tcp, (struct sockaddr *)&ss, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&m->tcp, 64, on_conn);
    if (r != 0) {
        uv_close((uv_handle_t *)&m->tcp, lst_closed);
        return r == UV_EADDRINUSE ? UM_EEXIST : r == UV_EACCES ? UM_EACCES : UM_EIO;
    }
    *out = m;
    return 0;
}

void um_metrics_stop(um_metrics_t *m)
{
    if (!m) return;
    if (!uv_is_closing((uv_handle_t *)&m->tcp)) uv_close((uv_handle_t *)&m->tcp, lst_closed);
}
