/* HTTP proxy listener: CONNECT tunnels, and absolute-form requests relayed
 * one at a time with a keep-alive client connection. Each request gets a new
 * upstream stream ("Connection: close" to the origin); the response's framing
 * says where it ends, so the client connection stays in step. */
#include <stdlib.h>
#include <string.h>

#include "proxy/server_int.h"
#include "util/err.h"
#include "util/log.h"

enum { H_HEAD, H_OPENING, H_BODY, H_WAIT, H_TUNNEL };
enum { R_HEAD, R_BODY, R_DONE };

static void h_process(pc_t *c);

static void h_error(pc_t *c, int status, const char *why)
{
    char out[512];
    size_t n = um_http_error_build(out, sizeof(out), status, why, false);
    pc_finish(c, out, n);
}

static int status_for(int result)
{
    switch (result) {
    case UM_CONN_NOT_ALLOWED: return 403;
    case UM_CONN_TIMED_OUT: return 504;
    default: return 502;
    }
}

static void resp_complete(pc_t *c)
{
    um_proxy_t *px = c->px;
    c->r_state = R_DONE;
    if (c->up) um_conn_close(c->up);
    c->up = NULL;
    c->up_paused = false;
    um_buf_clear(&c->resp);
    if (!(c->resp_keep && c->req_body_done && !c->client_eof)) {
        pc_finish(c, NULL, 0);
        return;
    }
    /* Next request on the same connection. */
    c->h_state = H_HEAD;
    c->phase = PC_HANDSHAKE;
    pc_timer(c, px->o.idle_timeout_ms);
    if (um_buf_len(&c->in))
        h_process(c);
    else
        pc_read_start(c);
}

static void resp_body(pc_t *c, const uint8_t *p, size_t n)
{
    size_t used;
    int rc = um_http_body_feed(&c->resp_body, p, n, &used);
    if (rc < 0) {
        pc_close(c); /* the origin broke the framing: cut the client off too */
        return;
    }
    if (used) pc_up_data(c, p, used);
    if (c->phase == PC_CLOSED) return;
    if (rc == 1) resp_complete(c);
}

/* Response head bytes are collected in c->resp until complete. */
static void resp_head(pc_t *c)
{
    /* Every round consumes a whole head from the bounded buffer, so this ends;
     * a fixed round limit would strand interim (1xx) heads already read. */
    while (c->r_state == R_HEAD && c->phase != PC_CLOSED) {
        const uint8_t *p;
        size_t n = um_buf_peek(&c->resp, &p);
        um_http_response_t res;
        int rc = um_http_response_parse(p, n, c->req_is_head, &res);
        if (rc == UM_EAGAIN) return;
        if (rc != 0) {
            if (!c->sent_any)
                h_error(c, 502, "malformed response from the origin");
            else
                pc_close(c);
            return;
        }
        uint8_t *out = malloc(UM_HTTP_RESPONSE_REWRITE_CAP(res.head_len, res.nheaders));
        if (!out) {
            pc_close(c);
            return;
        }
        if (res.status == 101) {
            /* Switching protocols: from here on a plain two-way relay. */
            int w = pc_write(c, p, n);
            free(out);
            if (w != 0) return;
            um_buf_clear(&c->resp);
            c->h_state = H_TUNNEL;
            pc_relay(c);
            return;
        }
        bool final = res.status >= 200;
        if (final)
            c->resp_keep = c->req_keep && res.framing != UM_HTTP_BODY_EOF && !c->client_eof &&
                           !res.close_after;
        size_t cap = UM_HTTP_RESPONSE_REWRITE_CAP(res.head_len, res.nheaders);
        size_t k = um_http_response_rewrite(&res, p, c->resp_keep, out, cap);
        size_t head = res.head_len;
        if (!final) {
            int w = k ? pc_write(c, out, k) : UM_ENOSPC;
            free(out);
            if (w != 0) {
                if (c->phase != PC_CLOSED) pc_close(c);
                return;
            }
            c->sent_any = true;
            um_buf_consume(&c->resp, head);
            continue;
        }
        um_http_body_init(&c->resp_body, res.framing, res.content_length);
        c->r_state = R_BODY;
        /* The body bytes that came with the head leave with it, in one write
         * (one syscall, one segment for the application to read). */
        size_t rest = n - head, used = 0;
        int b = 0;
        if (k && rest && !um_http_body_done(&c->resp_body)) {
            uint8_t *o2 = realloc(out, cap + rest);
            if (!o2) {
                free(out);
                pc_close(c);
                return;
            }
            out = o2;
            b = um_http_body_feed(&c->resp_body, p + head, rest, &used);
            if (b < 0) used = 0; /* the head goes out, then the connection is cut */
            memcpy(out + k, p + head, used);
        }
        int w = k ? pc_write(c, out, k + used) : UM_ENOSPC;
        free(out);
        if (w != 0 || b < 0) {
            /* b < 0: the origin broke the framing: cut the client off too */
            if (c->phase != PC_CLOSED) pc_close(c);
            return;
        }
        c->sent_any = true;
        um_buf_clear(&c->resp);
        if (um_http_body_done(&c->resp_body) || b == 1) {
            resp_complete(c);
            return;
        }
        if (c->down_pending > UM_CONN_HIGH_WATER && c->up && !c->up_paused) {
            c->up_paused = true;
            um_conn_read_stop(c->up);
        }
        return;
    }
}

static void h_on_open(void *arg, int result)
{
    pc_t *c = arg;
    if (pc_fo_result(c, result)) { /* a CONNECT answered 200 already */
        if (result == UM_CONN_OK) pc_relay(c);
        return;
    }
    if (result != UM_CONN_OK) {
        c->px->st.open_failed++;
        h_error(c, status_for(result), um_conn_result_str(result));
        return;
    }
    if (c->h_state == H_TUNNEL) {
        char ok[64];
        size_t n = um_http_connect_ok_build(ok, sizeof(ok));
        if (pc_write(c, ok, n) != 0) return;
        pc_relay(c);
        return;
    }
    c->phase = PC_HTTP;
    pc_timer(c, 0);
    c->r_state = R_HEAD;
    c->sent_any = false;
    if (c->req_body_done) {
        c->h_state = H_WAIT;
    } else {
        c->h_state = H_BODY;
        pc_read_start(c);
    }
}

static void h_on_data(void *arg, const uint8_t *p, size_t n)
{
    pc_t *c = arg;
    if (c->h_state == H_TUNNEL) {
        pc_up_data(c, p, n);
        return;
    }
    if (c->r_state == R_BODY) {
        resp_body(c, p, n);
        return;
    }
    if (c->r_state != R_HEAD) return; /* after the response: ignore */
    /* Take what fits; a head longer than the buffer is refused, and what
     * follows a complete head goes on as body. */
    while (n && c->r_state == R_HEAD && c->h_state != H_TUNNEL && c->phase != PC_CLOSED) {
        size_t take = n < um_buf_space(&c->resp) ? n : um_buf_space(&c->resp);
        if (take == 0) { /* a single head fills the buffer */
            if (!c->sent_any)
                h_error(c, 502, "response head too large");
            else
                pc_close(c);
            return;
        }
        if (um_buf_append(&c->resp, p, take) != 0) {
            pc_close(c);
            return;
        }
        resp_head(c); /* consumes every complete head (1xx ones included) */
        p += take;
        n -= take;
    }
    if (n && c->phase != PC_CLOSED && (c->r_state == R_BODY || c->h_state == H_TUNNEL))
        h_on_data(c, p, n);
}

static void h_on_eof(void *arg)
{
    pc_t *c = arg;
    if (c->h_state == H_TUNNEL) {
        pc_up_eof(c);
        return;
    }
    if (c->r_state == R_BODY && c->resp_body.framing == UM_HTTP_BODY_EOF) {
        c->resp_keep = false;
        resp_complete(c);
    } else if (c->r_state == R_DONE) {
        return;
    } else if (!c->sent_any) {
        h_error(c, 502, "the origin closed without a response");
    } else {
        pc_close(c); /* truncated: the client must see it */
    }
}

static void h_on_error(void *arg, int err)
{
    pc_t *c = arg;
    if (c->h_state != H_TUNNEL && !c->sent_any)
        h_error(c, 502, "connection to the origin failed");
    else
        pc_abort(c);
}

static void h_on_drain(void *arg)
{
    pc_t *c = arg;
    if (c->h_state == H_BODY || c->h_state == H_TUNNEL) pc_read_start(c);
}

static const um_conn_cbs_t h_cbs = {h_on_open, h_on_data, h_on_eof, h_on_error, h_on_drain};

static void req_body(pc_t *c, const uint8_t *p, size_t n)
{
    size_t used;
    int rc = um_http_body_feed(&c->req_body, p, n, &used);
    if (rc < 0) {
        pc_close(c);
        return;
    }
    if (used && pc_up_write(c, p, used) != 0) return;
    if (rc == 1) {
        c->req_body_done = true;
        c->h_state = H_WAIT;
        pc_read_stop(c);
        if (n > used && um_buf_append(&c->in, p + used, n - used) != 0) pc_close(c);
    }
}

static void h_process(pc_t *c)
{
    um_proxy_t *px = c->px;
    um_http_request_t *r = c->req;
    const uint8_t *p;
    size_t n = um_buf_peek(&c->in, &p);
    int rc = um_http_request_parse(p, n, r);
    if (rc == UM_EAGAIN) {
        pc_read_start(c);
        return;
    }
    if (rc != 0) {
        c->px->st.handshake_failed++;
        h_error(c, r->status, r->why);
        return;
    }
    /* The SOCKS5 credentials guard this port too (RFC 9110 11.7.1). */
    if (px->user && !um_http_proxy_auth_ok(r, px->user, px->pass)) {
        c->px->st.handshake_failed++;
        h_error(c, 407, "proxy authentication required");
        return;
    }
    /* Reading stays on unless a request body is still to come: bytes that
     * arrive before the verdict are kept in c->in (a CONNECT's for the
     * tunnel, pipelined requests after a complete one) and stop reading
     * then, so no read is stopped and started again (two epoll_ctl) around
     * every request. */
    c->req_keep = r->keep_alive;
    c->req_is_head = r->is_head;
    c->phase = PC_OPENING;
    pc_timer(c, 0);
    if (r->is_connect) {
        um_buf_consume(&c->in, r->head_len);
        n = um_buf_peek(&c->in, &p);
        c->h_state = H_TUNNEL;
        c->req_body_done = true;
        int v = px->o.fast_open ? um_conn_verdict(px->o.conn, &r->dst) : UM_CONN_OK;
        if (v != UM_CONN_OK) { /* refused here and now: the truthful status */
            px->st.open_failed++;
            h_error(c, status_for(v), um_conn_result_str(v));
            return;
        }
        if (px->o.fast_open) {
            char ok[64];
            size_t k = um_http_connect_ok_build(ok, sizeof(ok));
            if (pc_write(c, ok, k) != 0) return;
            pc_fo_start(c, &r->dst, &h_cbs);
            return;
        }
        rc = um_conn_open(px->o.conn, &r->dst, p, n, &h_cbs, c, &c->up);
        um_buf_clear(&c->in);
    } else {
        size_t cap = r->head_len + 600 + n;
        uint8_t *early = malloc(cap);
        if (!early) {
            pc_close(c);
            return;
        }
        size_t k = um_http_request_rewrite(r, early, cap);
        if (k == 0) {
            free(early);
            h_error(c, 400, "request head too large");
            return;
        }
        um_http_body_init(&c->req_body, r->framing, r->content_length);
        size_t used = 0;
        int b = um_http_body_feed(&c->req_body, p + r->head_len, n - r->head_len, &used);
        if (b < 0) {
            free(early);
            h_error(c, 400, "malformed chunked body");
            return;
        }
        memcpy(early + k, p + r->head_len, used);
        c->req_body_done = b == 1;
        if (!c->req_body_done) pc_read_stop(c); /* the rest of the body goes on after on_open */
        um_buf_consume(&c->in, r->head_len + used);
        c->h_state = H_OPENING;
        rc = um_conn_open(px->o.conn, &r->dst, early, k + used, &h_cbs, c, &c->up);
        free(early);
    }
    if (rc != 0) {
        c->up = NULL;
        h_error(c, 502, "cannot open a stream");
    }
}

static void h_start(pc_t *c)
{
    c->h_state = H_HEAD;
    c->req = malloc(sizeof(*c->req));
    if (!c->req) pc_close(c);
}

static void h_client_data(pc_t *c, const uint8_t *p, size_t n)
{
    if (c->h_state == H_TUNNEL && c->phase == PC_RELAY) {
        pc_relay_client_data(c, p, n);
        return;
    }
    if (c->h_state == H_BODY) {
        req_body(c, p, n);
        return;
    }
    if (um_buf_append(&c->in, p, n) != 0) {
        if (c->h_state == H_HEAD)
            h_error(c, 400, "request head too large");
        else
            pc_close(c);
        return;
    }
    if (c->h_state == H_HEAD)
        h_process(c);
    else
        pc_read_stop(c); /* pipelined: keep for later */
}

static void h_client_eof(pc_t *c)
{
    if (c->h_state == H_TUNNEL && c->phase == PC_RELAY) {
        pc_relay_client_eof(c);
        return;
    }
    if (c->h_state == H_HEAD || c->h_state == H_BODY) pc_close(c);
    /* H_OPENING / H_WAIT: the response still goes out, then we close. */
}

const pc_kind_t um_pc_http = {h_start, h_client_data, h_client_eof, &h_cbs};
