/* SOCKS5 listener: RFC 1928 CONNECT and UDP ASSOCIATE, RFC 1929 user/password. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/server_int.h"
#include "proxy/socks5.h"
#include "util/err.h"
#include "util/log.h"

#define UDP_SEND_QUEUE_MAX (1u << 20)

enum { S_GREETING, S_AUTH, S_REQUEST, S_CONNECTING, S_RELAY, S_UDP };

static um_ratelimit_t rl_bad;

static void reply_fail(pc_t *c, uint8_t rep)
{
    uint8_t out[UM_SOCKS5_MSG_MAX];
    size_t n = um_socks5_reply_build(out, sizeof(out), rep, NULL);
    c->px->st.handshake_failed++;
    pc_finish(c, out, n);
}

static void s5_on_open(void *arg, int result)
{
    pc_t *c = arg;
    uint8_t out[UM_SOCKS5_MSG_MAX];
    uint8_t rep = um_socks5_rep_from_result(result);
    if (pc_fo_result(c, result)) {
        if (result != UM_CONN_OK) return; /* reset by pc_fo_result */
        c->s5_state = S_RELAY;
        pc_relay(c);
        return;
    }
    if (result != UM_CONN_OK) {
        c->px->st.open_failed++;
        reply_fail(c, rep);
        return;
    }
    size_t n = um_socks5_reply_build(out, sizeof(out), rep, NULL);
    if (pc_write(c, out, n) != 0) return;
    c->s5_state = S_RELAY;
    pc_relay(c);
}

static void s5_on_data(void *arg, const uint8_t *p, size_t n)
{
    pc_up_data(arg, p, n);
}
static void s5_on_eof(void *arg)
{
    pc_up_eof(arg);
}
static void s5_on_error(void *arg, int err)
{
    (void)err;
    pc_abort(arg);
}
static void s5_on_drain(void *arg)
{
    pc_up_drain(arg);
}

static const um_conn_cbs_t s5_cbs = {s5_on_open, s5_on_data, s5_on_eof, s5_on_error, s5_on_drain};

/* --- UDP ASSOCIATE -------------------------------------------------------- */

typedef struct {
    uv_udp_send_t req;
    uint8_t data[];
} usend_t;

static void udp_sent(uv_udp_send_t *req, int status)
{
    free(req);
}

static void unmap(um_addr_t *x)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (x->type == UM_ADDR_IPV6 && memcmp(x->u.v6, mapped, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, x->u.v6 + 12, 4);
        x->type = UM_ADDR_IPV4;
        memcpy(x->u.v4, v4, 4);
    }
}

/* A datagram from the far side: header + payload to the client. */
static void assoc_recv(void *arg, const um_addr_t *src, const uint8_t *p, size_t n)
{
    pc_t *c = arg;
    if (c->phase == PC_CLOSED || !c->udp_peer_known) return;
    if (uv_udp_get_send_queue_size(&c->udp) > UDP_SEND_QUEUE_MAX) return;
    usend_t *s = malloc(sizeof(*s) + UM_SOCKS5_UDP_HDR_MAX + n);
    if (!s) return;
    size_t h = um_socks5_udp_build(s->data, UM_SOCKS5_UDP_HDR_MAX, src);
    if (!h) {
        free(s);
        return;
    }
    memcpy(s->data + h, p, n);
    uv_buf_t b = uv_buf_init((char *)s->data, (unsigned)(h + n));
    if (uv_udp_send(&s->req, &c->udp, &b, 1, (const struct sockaddr *)&c->udp_peer, udp_sent) != 0)
        free(s);
}

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    pc_t *c = h->data;
    if (!c->rbuf) c->rbuf = malloc(PC_READ_BUF);
    b->base = (char *)c->rbuf;
    b->len = c->rbuf ? PC_READ_BUF : 0;
}

/* A datagram from the client: check its source, strip the header, send. */
static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *sa,
                     unsigned flags)
{
    pc_t *c = u->data;
    if (c->phase == PC_CLOSED || nread <= 0 || !sa || (flags & UV_UDP_PARTIAL)) return;
    um_addr_t src;
    if (um_addr_from_sockaddr(&src, sa) != 0) return;
    unmap(&src);
    um_addr_t peer_ip = src, ctl_ip = c->ctl_peer;
    peer_ip.port = ctl_ip.port = 0;
    if (!um_addr_equal(&peer_ip, &ctl_ip)) return; /* only the client's host may use it */
    if (c->udp_port_hint && src.port != c->udp_port_hint) return;
    if (c->udp_peer_known) {
        um_addr_t known;
        um_addr_from_sockaddr(&known, (const struct sockaddr *)&c->udp_peer);
        unmap(&known);
        if (!um_addr_equal(&known, &src)) return;
    } else {
        memset(&c->udp_peer, 0, sizeof(c->udp_peer));
        memcpy(&c->udp_peer, sa,
               sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        c->udp_peer_known = true;
    }
    size_t hl;
    um_addr_t dst;
    if (um_socks5_udp_parse((const uint8_t *)b->base, (size_t)nread, &hl, &dst) != 0) {
        um_log_limited(&rl_bad, 3, 10000, UM_LOG_DEBUG, "socks5: dropped a malformed datagram");
        return;
    }
    c->px->st.bytes_up += (uint64_t)nread - hl;
    um_assoc_send(c->assoc, &dst, (const uint8_t *)b->base + hl, (size_t)nread - hl);
}

static void udp_associate(pc_t *c, const um_socks5_request_t *req)
{
    um_proxy_t *px = c->px;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    um_addr_t local;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        um_addr_from_sockaddr(&local, (struct sockaddr *)&ss) != 0) {
        reply_fail(c, UM_SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        um_addr_from_sockaddr(&c->ctl_peer, (struct sockaddr *)&ss) != 0) {
        reply_fail(c, UM_SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    unmap(&c->ctl_peer);
    c->udp_port_hint = req->dst.type != UM_ADDR_DOMAIN ? req->dst.port : 0;
    local.port = 0;
    if (uv_udp_init(px->loop, &c->udp) != 0) {
        reply_fail(c, UM_SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    c->udp.data = c;
    c->udp_open = true;
    socklen_t sl;
    if (um_addr_to_sockaddr(&local, &ss, &sl) != 0 ||
        uv_udp_bind(&c->udp, (struct sockaddr *)&ss, 0) != 0 ||
        um_assoc_open(px->o.conn, assoc_recv, c, &c->assoc) != 0) {
        c->assoc = NULL;
        reply_fail(c, UM_SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    len = sizeof(ss);
    um_addr_t bnd;
    if (uv_udp_getsockname(&c->udp, (struct sockaddr *)&ss, &len) != 0 ||
        um_addr_from_sockaddr(&bnd, (struct sockaddr *)&ss) != 0 ||
        uv_udp_recv_start(&c->udp, udp_alloc, udp_recv) != 0) {
        reply_fail(c, UM_SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    uint8_t out[UM_SOCKS5_MSG_MAX];
    size_t n = um_socks5_reply_build(out, sizeof(out), UM_SOCKS5_REP_SUCCEEDED, &bnd);
    if (pc_write(c, out, n) != 0) return;
    c->s5_state = S_UDP;
    c->phase = PC_RELAY;
    pc_timer(c, 0);
    um_buf_clear(&c->in);
}

/* --- handshake -------------------------------------------------------------- */

static bool check_userpass(const um_proxy_t *px, const um_socks5_userpass_t *up)
{
    size_t ul = strlen(px->user), pl = strlen(px->pass);
    /* Lengths are not secret; the bytes are compared in constant time. */
    bool ok = ul == up->ulen && pl == up->plen;
    if (ok) ok = sodium_memcmp(px->user, up->user, ul) == 0;
    if (ok) ok = sodium_memcmp(px->pass, up->pass, pl) == 0;
    return ok;
}

static void s5_process(pc_t *c)
{
    um_proxy_t *px = c->px;
    uint8_t out[UM_SOCKS5_MSG_MAX];
    for (int guard = 0; guard < 4 && c->phase == PC_HANDSHAKE; guard++) {
        const uint8_t *p;
        size_t n = um_buf_peek(&c->in, &p), used = 0;
        int rc;
        switch (c->s5_state) {
        case S_GREETING: {
            um_socks5_greeting_t g;
            rc = um_socks5_greeting_parse(p, n, &used, &g);
            if (rc == UM_EAGAIN) return;
            if (rc != 0) {
                size_t k = um_socks5_method_reply(out, sizeof(out), UM_SOCKS5_AUTH_NO_ACCEPTABLE);
                c->px->st.handshake_failed++;
                pc_finish(c, out, k);
                return;
            }
            um_buf_consume(&c->in, used);
            uint8_t m = um_socks5_method_choose(&g, px->user != NULL);
            size_t k = um_socks5_method_reply(out, sizeof(out), m);
            if (m == UM_SOCKS5_AUTH_NO_ACCEPTABLE) {
                c->px->st.handshake_failed++;
                pc_finish(c, out, k);
                return;
            }
            if (pc_write(c, out, k) != 0) return;
            c->s5_state = m == UM_SOCKS5_AUTH_USERPASS ? S_AUTH : S_REQUEST;
            break;
        }
        case S_AUTH: {
            um_socks5_userpass_t up;
            rc = um_socks5_userpass_parse(p, n, &used, &up);
            if (rc == UM_EAGAIN) return;
            bool ok = rc == 0 && check_userpass(px, &up);
            sodium_memzero(&up, sizeof(up));
            um_buf_consume(&c->in, used);
            size_t k = um_socks5_userpass_reply(out, sizeof(out), ok);
            if (!ok) {
                um_log_limited(&rl_bad, 3, 10000, UM_LOG_INFO, "socks5: authentication failed");
                c->px->st.handshake_failed++;
                pc_finish(c, out, k);
                return;
            }
            if (pc_write(c, out, k) != 0) return;
            c->s5_state = S_REQUEST;
            break;
        }
        case S_REQUEST: {
            um_socks5_request_t req;
            uint8_t rep;
            rc = um_socks5_request_parse(p, n, &used, &req, &rep);
            if (rc == UM_EAGAIN) return;
            if (rc != 0) {
                reply_fail(c, rep);
                return;
            }
            um_buf_consume(&c->in, used);
            if (req.cmd == UM_SOCKS5_CMD_UDP_ASSOCIATE) {
                udp_associate(c, &req);
                return;
            }
            c->s5_state = S_CONNECTING;
            int v = px->o.fast_open ? um_conn_verdict(px->o.conn, &req.dst) : UM_CONN_OK;
            if (v != UM_CONN_OK) { /* refused here and now: the truthful code */
                px->st.open_failed++;
                reply_fail(c, um_socks5_rep_from_result(v));
                return;
            }
            if (px->o.fast_open) {
                /* Succeeded, at once; BND.ADDR 0.0.0.0:0 (clients ignore it). */
                size_t k = um_socks5_reply_build(out, sizeof(out), UM_SOCKS5_REP_SUCCEEDED, NULL);
                if (pc_write(c, out, k) != 0) return;
                pc_fo_start(c, &req.dst, &s5_cbs);
                return;
            }
            c->phase = PC_OPENING;
            pc_read_stop(c);
            n = um_buf_peek(&c->in, &p);
            rc = um_conn_open(px->o.conn, &req.dst, p, n, &s5_cbs, c, &c->up);
            if (rc != 0) {
                c->up = NULL;
                reply_fail(c, UM_SOCKS5_REP_GENERAL_FAILURE);
                return;
            }
            um_buf_clear(&c->in);
            return;
        }
        default: return;
        }
    }
}

static void s5_start(pc_t *c)
{
    c->s5_state = S_GREETING;
}

static void s5_client_data(pc_t *c, const uint8_t *p, size_t n)
{
    if (c->s5_state == S_RELAY) {
        pc_relay_client_data(c, p, n);
        return;
    }
    if (c->s5_state == S_UDP) return; /* the control connection carries nothing */
    if (um_buf_append(&c->in, p, n) != 0) {
        pc_close(c);
        return;
    }
    if (c->s5_state == S_CONNECTING) {
        /* Data before our reply: keep it (bounded) for the stream. */
        pc_read_stop(c);
        return;
    }
    s5_process(c);
}

static void s5_client_eof(pc_t *c)
{
    if (c->s5_state == S_RELAY) {
        pc_relay_client_eof(c);
        return;
    }
    /* A handshake cut short, or the end of a UDP association. */
    if (c->s5_state != S_CONNECTING) pc_close(c);
}

const pc_kind_t um_pc_socks5 = {s5_start, s5_client_data, s5_client_eof, &s5_cbs};
