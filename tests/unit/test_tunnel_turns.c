/* What one turn of the event loop does with a carrier that has more bytes
 * waiting than the tunnel takes per turn (src/tunnel/tunnel.c, on_car_read
 * and on_idle):
 *   - the per-turn read bound (RD_ITER_MAX, 256 KiB): one turn reads at
 *     most about that much from the carrier, then the loop turns (its other
 *     handles run) before reading resumes, and no byte is lost by the pause;
 *   - the deferred pump: the records of all the reads of one turn reach the
 *     streams after the last of those reads, in one pump pass, never one
 *     pass (stream delivery) per read.
 *
 * Two tunnels over loopback TCP on two loops run by one thread: the server's
 * loop runs alone first, so megabytes of DATA wait in the client's socket
 * before the client's loop turns at all; then the client's loop runs turn by
 * turn. A carrier wrapped by the test logs every read the tunnel gets, a
 * prepare handle marks each turn (and reads what the socket still holds
 * with FIONREAD), and the stream's on_data logs each delivery. No timing is
 * measured: only the order and the sizes of what happened in each turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "transport/tcp.h"
#include "tunnel/tunnel.h"
#include "util/clock.h"
#include "util/err.h"

/* RD_ITER_MAX (tunnel_int.h, private to src/tunnel/: change both together).
 * The bound is checked after each read, so a turn reads at most the bound
 * plus one read; with no bound a turn reads until the session's 1 MiB read
 * queue is full (or libuv's 32 reads of 64 KiB). Several reads per turn
 * need the bound above one carrier read (64 KiB, transport/tcp.c RBUF). */
#define TURN_BOUND (256u << 10)
/* Bytes waiting in the client's socket before its loop turns: three turns'
 * worth. The server sends that much unacknowledged (its resend buffer starts
 * at UM_TUNNEL_SESS_TX_START, 2 MiB) into the client's receive buffer. */
#define PREFILL (3 * TURN_BOUND)
#define BULK    (3u << 20) /* what the server sends in each test */
#define WARM    (8u << 20) /* a transfer before, to open the windows */
#define CHUNK   (64u << 10)

enum { EV_TURN, EV_READ, EV_DATA, EV_WRITE, EV_MARK };
#define MAXEV 200000
static struct {
    int type;
    size_t n; /* bytes read or delivered; EV_TURN: bytes in the socket */
} evs[MAXEV];
static int n_evs;
static bool logging;

static void log_ev(int type, size_t n)
{
    if (!logging || n_evs >= MAXEV) return;
    evs[n_evs].type = type;
    evs[n_evs].n = n;
    n_evs++;
}

/* ---- a carrier that logs the reads of the carrier it wraps ---- */

typedef struct {
    um_carrier_t base;
    um_carrier_t *in;
    um_carrier_read_cb rd;
    um_carrier_drain_cb dr;
    void *ud;
} wrap_t;

static um_carrier_ops_t wrap_ops;

static void w_read(um_carrier_t *c, const uint8_t *p, size_t n, int status, void *ud)
{
    wrap_t *w = ud;
    (void)c;
    if (status == 0) log_ev(EV_READ, n);
    w->rd(&w->base, p, n, status, w->ud);
}

static void w_drain(um_carrier_t *c, void *ud)
{
    wrap_t *w = ud;
    (void)c;
    w->dr(&w->base, w->ud);
}

static void w_set_cbs(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud)
{
    wrap_t *w = (wrap_t *)c;
    w->rd = rd;
    w->dr = dr;
    w->ud = ud;
    w->in->ops->set_cbs(w->in, w_read, w_drain, w);
}

static int w_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    log_ev(EV_WRITE, n);
    return um_carrier_write(((wrap_t *)c)->in, p, n);
}
static int w_writev(um_carrier_t *c, const um_carrier_iov_t *iov, size_t n)
{
    um_carrier_t *in = ((wrap_t *)c)->in;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += iov[i].n;
    log_ev(EV_WRITE, len);
    return in->ops->writev(in, iov, n);
}
static size_t w_queued(const um_carrier_t *c)
{
    return um_carrier_queued(((const wrap_t *)c)->in);
}
static void w_set_wq_max(um_carrier_t *c, size_t max)
{
    um_carrier_set_wq_max(((wrap_t *)c)->in, max);
}
static int w_read_start(um_carrier_t *c)
{
    return um_carrier_read_start(((wrap_t *)c)->in);
}
static int w_read_stop(um_carrier_t *c)
{
    return um_carrier_read_stop(((wrap_t *)c)->in);
}
static int w_shutdown(um_carrier_t *c)
{
    return um_carrier_shutdown(((wrap_t *)c)->in);
}
static void w_close(um_carrier_t *c)
{
    um_carrier_close(((wrap_t *)c)->in);
}
static int w_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
    return um_carrier_absorb(((wrap_t *)c)->in, p, n, out, outn);
}

/* The wrapped carrier shows its socket (test_rcv_queue_bounded only). */
static bool wrap_sock;
static int w_sock(const um_carrier_t *c)
{
    return um_carrier_sock(((const wrap_t *)c)->in);
}

static um_carrier_t *wrap(wrap_t *w, um_carrier_t *in)
{
    memset(w, 0, sizeof(*w));
    wrap_ops = *in->ops; /* name, flags, record hint */
    wrap_ops.set_cbs = w_set_cbs;
    wrap_ops.write = w_write;
    wrap_ops.writev = in->ops->writev ? w_writev : NULL;
    wrap_ops.queued = w_queued;
    wrap_ops.set_wq_max = w_set_wq_max;
    wrap_ops.read_start = w_read_start;
    wrap_ops.read_stop = w_read_stop;
    wrap_ops.shutdown = w_shutdown;
    wrap_ops.close = w_close;
    wrap_ops.absorb = w_absorb;
    /* No socket: the client's receive buffer stays unbounded, so megabytes
     * can wait in its socket while its loop stands (PREFILL). */
    wrap_ops.sock = wrap_sock ? w_sock : NULL;
    w->base.ops = &wrap_ops;
    w->in = in;
    return &w->base;
}

/* ---- the fixture ---- */

typedef struct {
    uv_loop_t lc, ls; /* client's loop, server's loop */
    um_tcp_listener_t *l;
    um_tcp_t *ctcp, *stcp;
    int connected;
    wrap_t cw;
    um_tunnel_t *ct, *st;
    um_hub_t *hub;
    um_conn_t *cc, *sc;   /* the stream, client and server side */
    um_conn_t *cc2, *sc2; /* a second one (test_open_before_deliveries) */
    size_t cgot;
    int cdown, sdown, errors;
    uv_prepare_t turn;
    int cfd;
} fx_t;

static fx_t *g_fx;

static void on_accept(um_tcp_listener_t *l, um_tcp_t *conn, void *ud)
{
    fx_t *fx = ud;
    (void)l;
    fx->ctcp = conn;
    fx->connected++;
}

static void on_connect(um_tcp_t *t, int status, void *ud)
{
    (void)t;
    assert_int_equal(status, 0);
    ((fx_t *)ud)->connected++;
}

static void c_data(void *arg, const uint8_t *p, size_t n)
{
    fx_t *fx = arg;
    (void)p;
    fx->cgot += n;
    log_ev(EV_DATA, n);
}
static void c_open(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, UM_CONN_OK);
}
static void s_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
}
static void any_eof(void *arg)
{
    (void)arg;
}
static void any_error(void *arg, int err)
{
    (void)err;
    ((fx_t *)arg)->errors++;
}
static void any_drain(void *arg)
{
    (void)arg;
}
static const um_conn_cbs_t ccbs = {c_open, c_data, any_eof, any_error, any_drain};
static const um_conn_cbs_t scbs = {NULL, s_data, any_eof, any_error, any_drain};

static void srv_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud)
{
    fx_t *fx = ud;
    (void)dst;
    assert_null(fx->sc2);
    assert_int_equal(um_tunnel_accept(t, id, &scbs, fx, fx->sc ? &fx->sc2 : &fx->sc), 0);
}
static void c_down(um_tunnel_t *t, int err, void *ud)
{
    (void)t;
    (void)err;
    ((fx_t *)ud)->cdown++;
}
static void s_down(um_tunnel_t *t, int err, void *ud)
{
    (void)t;
    (void)err;
    ((fx_t *)ud)->sdown++;
}
static const um_tunnel_cbs_t ctcbs = {.on_down = c_down};
static const um_tunnel_cbs_t stcbs = {.on_opened = srv_opened, .on_down = s_down};

/* The listening socket of port (um_tcp_listener_t does not show its
 * descriptor): the one of ours that accepts and is bound to it. */
static int listener_fd(int port)
{
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        int acc = 0;
        socklen_t vl = sizeof(acc);
        if (getsockname(fd, (struct sockaddr *)&a, &al) != 0 || a.sin_family != AF_INET) continue;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &vl) != 0 || !acc) continue;
        if (ntohs(a.sin_port) == port) return fd;
    }
    fail_msg("no listening socket on port %d", port);
    return -1;
}

static void on_turn(uv_prepare_t *h)
{
    fx_t *fx = h->data;
    int pending = 0;
    if (ioctl(fx->cfd, FIONREAD, &pending) != 0) pending = 0;
    log_ev(EV_TURN, (size_t)pending);
}

static size_t socket_pending(fx_t *fx)
{
    int pending = 0;
    assert_int_equal(ioctl(fx->cfd, FIONREAD, &pending), 0);
    return (size_t)pending;
}

static void both_once(fx_t *fx)
{
    uv_run(&fx->lc, UV_RUN_NOWAIT);
    uv_run(&fx->ls, UV_RUN_NOWAIT);
}

static void mkkeys(um_sess_keys_t *a, um_sess_keys_t *b)
{
    memset(a, 0, sizeof(*a));
    randombytes_buf(a->k_send, 32);
    randombytes_buf(a->k_recv, 32);
    randombytes_buf(a->sid, UM_SID_LEN);
    a->alg = UM_AEAD_CHACHA20_POLY1305;
    a->initiator = 1;
    *b = *a;
    memcpy(b->k_send, a->k_recv, 32);
    memcpy(b->k_recv, a->k_send, 32);
    b->initiator = 0;
}

static void fx_up(fx_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    g_fx = fx;
    assert_int_equal(uv_loop_init(&fx->lc), 0);
    assert_int_equal(uv_loop_init(&fx->ls), 0);
    /* The client's end is the accepted one: its receive buffer is set on
     * the listening socket before the handshake (the window scale and clamp
     * are fixed then), so the socket can hold megabytes while the client's
     * loop stands. The tunnel's role does not depend on who dialled. */
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(um_tcp_listen(&fx->lc, (struct sockaddr *)&sa, 4, on_accept, fx, &fx->l), 0);
    int lfd = listener_fd(um_tcp_listener_port(fx->l));
    int rcv = 8 << 20;
    assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), 0);
    uv_ip4_addr("127.0.0.1", um_tcp_listener_port(fx->l), &sa);
    assert_int_equal(um_tcp_connect(&fx->ls, (struct sockaddr *)&sa, on_connect, fx, &fx->stcp), 0);
    uint64_t end = um_now_ms() + 10000;
    while (fx->connected < 2 && um_now_ms() < end)
        both_once(fx);
    assert_int_equal(fx->connected, 2);
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)um_tcp_handle(fx->ctcp), &fd), 0);
    fx->cfd = fd;

    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb);
    um_sess_t *a = um_sess_new(&ka, NULL), *b = um_sess_new(&kb, NULL);
    sodium_memzero(&ka, sizeof(ka));
    sodium_memzero(&kb, sizeof(kb));
    assert_non_null(a);
    assert_non_null(b);
    /* The client grants the whole bulk up front: the server's sending is
     * then bounded by its resend buffer, not by window updates. */
    um_mux_config_t mc;
    um_mux_config_default(&mc);
    mc.stream_window_init = mc.stream_window_max = 8u << 20;
    mc.session_window_init = mc.session_window_max = 16u << 20;
    assert_int_equal(um_tunnel_new(&fx->lc, a, wrap(&fx->cw, um_tcp_carrier(fx->ctcp)),
                                   UM_MUX_CLIENT, &mc, &ctcbs, fx, &fx->ct),
                     0);
    assert_int_equal(um_tunnel_new(&fx->ls, b, um_tcp_carrier(fx->stcp), UM_MUX_SERVER, NULL,
                                   &stcbs, fx, &fx->st),
                     0);
    assert_int_equal(um_hub_new(&fx->lc, 10000, 16, &fx->hub), 0);
    um_hub_set_tunnel(fx->hub, fx->ct);
    assert_int_equal(uv_prepare_init(&fx->lc, &fx->turn), 0);
    fx->turn.data = fx;

    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 80;
    assert_int_equal(um_conn_open(um_hub_connector(fx->hub), &d, NULL, 0, &ccbs, fx, &fx->cc), 0);
    end = um_now_ms() + 10000;
    while (!fx->sc && um_now_ms() < end)
        both_once(fx);
    assert_non_null(fx->sc);
    for (int i = 0; i < 200; i++) /* the OPEN_RESULT reaches the client */
        both_once(fx);
    /* A bulk transfer first, with both loops running: the sender's
     * congestion window and the mux windows open, so that later the
     * server's kernel sends the client's socket a megabyte while the
     * client's loop stands. */
    static uint8_t chunk[1u << 20];
    memset(chunk, 0x3c, sizeof(chunk));
    size_t put = 0;
    end = um_now_ms() + 30000;
    while (fx->cgot < WARM && um_now_ms() < end) {
        if (put < WARM && um_conn_queued(fx->sc) < sizeof(chunk)) {
            assert_int_equal(um_conn_write(fx->sc, chunk, sizeof(chunk)), 0);
            put += sizeof(chunk);
        }
        both_once(fx);
    }
    assert_int_equal(fx->cgot, WARM);
    fx->cgot = 0;
}

static void fx_down(fx_t *fx)
{
    logging = false;
    uv_close((uv_handle_t *)&fx->turn, NULL);
    um_conn_close(fx->cc2);
    um_conn_close(fx->sc2);
    um_conn_close(fx->cc);
    um_conn_close(fx->sc);
    um_tunnel_close(fx->ct, false, 0);
    um_tunnel_close(fx->st, false, 0);
    uint64_t end = um_now_ms() + 10000;
    while ((!fx->cdown || !fx->sdown) && um_now_ms() < end)
        both_once(fx);
    assert_int_equal(fx->cdown, 1);
    assert_int_equal(fx->sdown, 1);
    um_hub_free(fx->hub);
    um_tcp_listener_close(fx->l);
    uv_run(&fx->lc, UV_RUN_DEFAULT);
    uv_run(&fx->ls, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->lc), 0);
    assert_int_equal(uv_loop_close(&fx->ls), 0);
}

/* The server writes, a chunk whenever its stream has less than two queued
 * (as the relay writes, on drain), and only the server's loop runs, until
 * the client's socket holds PREFILL bytes (at most 20 s: the kernel sends
 * more as its delayed ACKs open the congestion window). Returns what the
 * socket holds and adds what was written to *put. */
static size_t prefill(fx_t *fx, size_t *put)
{
    static uint8_t chunk[CHUNK];
    memset(chunk, 0xa5, sizeof(chunk));
    size_t now = 0;
    uint64_t end = um_now_ms() + 20000;
    while (now < PREFILL && um_now_ms() < end) {
        if (*put < BULK && um_conn_queued(fx->sc) < 2 * CHUNK) {
            assert_int_equal(um_conn_write(fx->sc, chunk, sizeof(chunk)), 0);
            *put += sizeof(chunk);
        }
        uv_run(&fx->ls, UV_RUN_NOWAIT);
        now = socket_pending(fx);
        uv_sleep(1);
    }
    return now;
}

/* The client's loop, turn by turn, until its socket is empty and nothing
 * more comes for a while (bounded in turns and time). */
static void drain_client(fx_t *fx)
{
    n_evs = 0;
    logging = true;
    assert_int_equal(uv_prepare_start(&fx->turn, on_turn), 0);
    int quiet = 0;
    uint64_t end = um_now_ms() + 20000;
    for (int i = 0; i < 20000 && quiet < 50 && um_now_ms() < end; i++) {
        size_t before = fx->cgot;
        uv_run(&fx->lc, UV_RUN_NOWAIT);
        quiet = fx->cgot == before && socket_pending(fx) == 0 ? quiet + 1 : 0;
    }
    logging = false;
    uv_prepare_stop(&fx->turn);
}

typedef struct {
    size_t bytes, reads, pending_at_start;
    bool read_after_data; /* a read came after a delivery in the same turn */
    size_t data_events;
} turn_t;

/* Splits the log into turns (from one EV_TURN to the next). */
static int turns_of(turn_t *t, int max)
{
    int n = -1;
    bool seen_data = false;
    for (int i = 0; i < n_evs; i++) {
        if (evs[i].type == EV_TURN) {
            if (n + 1 >= max) break;
            n++;
            memset(&t[n], 0, sizeof(t[n]));
            t[n].pending_at_start = evs[i].n;
            seen_data = false;
            continue;
        }
        if (n < 0) continue;
        if (evs[i].type == EV_READ) {
            t[n].bytes += evs[i].n;
            t[n].reads++;
            if (seen_data) t[n].read_after_data = true;
        } else if (evs[i].type == EV_DATA) {
            t[n].data_events++;
            seen_data = true;
        }
    }
    return n + 1;
}

static turn_t turns[20000];

/* The rest of BULK with both loops running: every byte reaches the client,
 * in order of arrival (reading resumed after each pause). */
static void finish(fx_t *fx, size_t put)
{
    static uint8_t chunk[CHUNK];
    memset(chunk, 0xa5, sizeof(chunk));
    uint64_t end = um_now_ms() + 30000;
    while (fx->cgot < BULK && um_now_ms() < end) {
        if (put < BULK && um_conn_queued(fx->sc) < 2 * CHUNK) {
            assert_int_equal(um_conn_write(fx->sc, chunk, sizeof(chunk)), 0);
            put += sizeof(chunk);
        }
        both_once(fx);
    }
    assert_int_equal(fx->cgot, BULK);
    assert_int_equal(fx->errors, 0);
}

/* One turn reads at most about the bound while megabytes wait; the loop
 * turns in between (its other handles run: here the prepare handle); no byte
 * is lost by the pauses. */
static void test_read_bound_per_turn(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx);
    size_t put = 0;
    size_t pending = prefill(&fx, &put);
    print_message("client socket holds %zu bytes before its loop turns\n", pending);
    assert_true(pending >= PREFILL);
    drain_client(&fx);
    int nt = turns_of(turns, 20000);
    size_t total = 0, most = 0, read_max = 0;
    int paused_with_more = 0, reading_turns = 0;
    for (int i = 0; i < n_evs; i++)
        if (evs[i].type == EV_READ && evs[i].n > read_max) read_max = evs[i].n;
    for (int i = 0; i < nt; i++) {
        total += turns[i].bytes;
        if (turns[i].bytes > most) most = turns[i].bytes;
        if (turns[i].bytes) reading_turns++;
        /* Reading stopped for the turn while the socket still had bytes. */
        if (turns[i].bytes && i + 1 < nt && turns[i + 1].pending_at_start > 0) paused_with_more++;
    }
    print_message("%d turns, %d of them read; largest read %zu, most in one turn %zu, total %zu\n",
                  nt, reading_turns, read_max, most, total);
    assert_true(total >= pending);
    assert_true(read_max > 0);
    /* The bound is checked after each read: a turn ends with the read that
     * crossed it. Reading with no bound takes all that waits (1 MiB here). */
    assert_true(most <= TURN_BOUND + read_max);
    assert_true(most >= TURN_BOUND); /* the bound, not the socket, ended those turns */
    assert_true(paused_with_more >= 2);
    finish(&fx, put);
    fx_down(&fx);
}

/* Several reads in one turn, then the deliveries: no stream sees data
 * between two reads of the same turn (the pump ran once, after them). */
static void test_pump_after_reads(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx);
    size_t put = 0;
    size_t pending = prefill(&fx, &put);
    assert_true(pending >= PREFILL);
    drain_client(&fx);
    int nt = turns_of(turns, 20000);
    int multi = 0, interleaved = 0, delivered = 0;
    for (int i = 0; i < nt; i++) {
        if (turns[i].reads >= 2) multi++;
        if (turns[i].read_after_data) interleaved++;
        if (turns[i].reads >= 2 && turns[i].data_events) delivered++;
    }
    print_message("%d turns, %d with several reads (%d of them then delivered), %d with a read "
                  "after a delivery\n",
                  nt, multi, delivered, interleaved);
    assert_true(multi >= 2); /* the case under test did happen */
    assert_true(delivered >= 2);
    assert_int_equal(interleaved, 0);
    finish(&fx, put);
    fx_down(&fx);
}

/* The carrier's receive buffer (tunnel.c: size_rcvq): the bytes the kernel
 * queues in the client's socket, ahead of any new stream's first bytes,
 * are bounded by about the floor on loopback, however much the server has
 * to send. The socket's buffer is 8 MiB here (fx_up; autotuned it grows to
 * 32 MiB) and the server may have its 2 MiB resend buffer in flight: with
 * no bound the socket fills with that (2 MiB) while the client's loop
 * stands. Both ends' sockets are bounded (the server's queue matters for
 * uploads); the bound is set when the tunnel starts (the sockets are
 * empty), or at a tick. */
#define RCV_BOUND (1u << 20) /* twice UM_TUNNEL_RCV_FLOOR: loopback's product is far below */
static int sock_rcvbuf(int fd)
{
    int v = 0;
    socklen_t l = sizeof(v);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l), 0);
    return v;
}

static void test_rcv_queue_bounded(void **state)
{
    (void)state;
    fx_t fx;
    wrap_sock = true;
    fx_up(&fx);
    wrap_sock = false;
    uv_os_fd_t sfd;
    assert_int_equal(uv_fileno((uv_handle_t *)um_tcp_handle(fx.stcp), &sfd), 0);
    uint64_t end = um_now_ms() + 20000;
    while ((sock_rcvbuf(fx.cfd) > (int)RCV_BOUND || sock_rcvbuf(sfd) > (int)RCV_BOUND) &&
           um_now_ms() < end) {
        both_once(&fx);
        uv_sleep(1);
    }
    int cb = sock_rcvbuf(fx.cfd), sb = sock_rcvbuf(sfd);
    print_message("receive buffers: client %d, server %d\n", cb, sb);
    assert_true(cb > 0 && cb <= (int)RCV_BOUND);
    assert_true(sb > 0 && sb <= (int)RCV_BOUND);

    /* Only the server's loop runs, writing the bulk, until the client's
     * socket stops filling (200 quiet passes) or holds more than twice
     * the bound. */
    static uint8_t chunk[CHUNK];
    memset(chunk, 0xa5, sizeof(chunk));
    size_t put = 0, most = 0;
    int quiet = 0;
    end = um_now_ms() + 20000;
    while (quiet < 200 && most <= 2 * RCV_BOUND && um_now_ms() < end) {
        if (put < BULK && um_conn_queued(fx.sc) < 2 * CHUNK) {
            assert_int_equal(um_conn_write(fx.sc, chunk, sizeof(chunk)), 0);
            put += sizeof(chunk);
        }
        uv_run(&fx.ls, UV_RUN_NOWAIT);
        size_t now = socket_pending(&fx);
        quiet = now > most ? 0 : quiet + 1;
        if (now > most) most = now;
        uv_sleep(1);
    }
    print_message("client socket holds at most %zu bytes while its loop stands (%zu written)\n",
                  most, put);
    assert_true(most > 0);
    assert_true(most <= RCV_BOUND);
    finish(&fx, put);
    fx_down(&fx);
}

/* A new stream's OPEN beside a download (tunnel.c: pump, outbound_urgent):
 * one turn reads the carrier (the download's records wait on the ready list
 * for the pump), a new stream is opened (as the SOCKS5 handshake of a new
 * connection does, from the same turn), and in the next turn the pump
 * writes the OPEN to the carrier before it delivers the download's bytes to
 * its stream. Before, the deliveries (up to four 64 KiB writes to the
 * application's socket) came first. Only the order of the events of that
 * turn is looked at. */
static void c2_open(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, UM_CONN_OK);
}
static void c2_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
}
static const um_conn_cbs_t c2cbs = {c2_open, c2_data, any_eof, any_error, any_drain};

static void test_open_before_deliveries(void **state)
{
    (void)state;
    fx_t fx;
    fx_up(&fx);
    size_t put = 0;
    size_t pending = prefill(&fx, &put);
    assert_true(pending >= PREFILL);
    n_evs = 0;
    logging = true;
    uv_run(&fx.lc, UV_RUN_NOWAIT); /* reads the carrier; the pump is due next turn */
    int reads = 0;
    for (int i = 0; i < n_evs; i++)
        if (evs[i].type == EV_READ) reads++;
    assert_true(reads > 0);
    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 81;
    static const uint8_t req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(
        um_conn_open(um_hub_connector(fx.hub), &d, req, sizeof(req) - 1, &c2cbs, &fx, &fx.cc2), 0);
    int mark = n_evs;
    log_ev(EV_MARK, 0);
    uv_run(&fx.lc, UV_RUN_NOWAIT); /* the pump: the OPEN, and the deliveries */
    logging = false;
    int first_write = -1, first_data = -1;
    for (int i = mark; i < n_evs; i++) {
        if (evs[i].type == EV_WRITE && first_write < 0) first_write = i;
        if (evs[i].type == EV_DATA && first_data < 0) first_data = i;
    }
    print_message("turn after the open: first carrier write at event %d, first delivery at %d\n",
                  first_write - mark, first_data - mark);
    assert_true(first_data > mark); /* the case under test: deliveries were due */
    assert_true(first_write > mark);
    assert_true(first_write < first_data);
    um_tunnel_stats_t st;
    um_tunnel_stats(fx.ct, &st);
    assert_true(st.urgent_writes >= 1);
    /* The OPEN reached the server: it accepts the second stream. */
    uint64_t end = um_now_ms() + 20000;
    while (!fx.sc2 && um_now_ms() < end)
        both_once(&fx);
    assert_non_null(fx.sc2);
    finish(&fx, put);
    fx_down(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_bound_per_turn),
        cmocka_unit_test(test_pump_after_reads),
        cmocka_unit_test(test_rcv_queue_bounded),
        cmocka_unit_test(test_open_before_deliveries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
