/* A tunnel: one established session (over one TCP connection) carrying one
 * multiplexer, plus the libuv glue that pumps bytes between them:
 *
 *   carrier ──feed──► session ──read──► mux ──events──► streams (um_conn_t)
 *   carrier ◄─write── session ◄─write── mux ◄──pull──── streams
 *
 * The carrier is the transport's connection (transport/carrier.h): TCP, or
 * TLS records over TCP, or whatever a transport provides.
 *
 * Streams of the mux are offered to the rest of the program as um_conn_t
 * (src/proxy/conn.h), so the proxies on the client and the egress relay on
 * the server use the same interface as the direct connector.
 *
 * Every callback runs from a libuv callback (carrier read, timer, idle), never
 * from inside a call the user made: um_tunnel_close(t, false) and
 * um_hub_set_tunnel() return before any stream callback or on_down runs
 * (they follow on a later turn of the loop). Ownership: um_tunnel_new takes
 * ownership of the session and the TCP connection; the tunnel frees itself
 * after on_down has returned, so the loop must run until on_down. */
#ifndef UM_TUNNEL_TUNNEL_H
#define UM_TUNNEL_TUNNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mux/mux.h"
#include "proxy/conn.h"
#include "session/session.h"
#include "transport/carrier.h"
#include "util/addr.h"

typedef struct um_tunnel um_tunnel_t;

/* Unacknowledged bytes a session may have in flight: it bounds throughput to
 * this much per round trip (16 MiB: 530 Mbit/s at 250 ms). */
#define UM_TUNNEL_SESS_TX_MAX (16u << 20)
/* ... of which a tunnel starts with this much, and grows towards the session's
 * configured bound when the measured bandwidth-delay product asks for it
 * (tunnel.c: size_resend) */
#define UM_TUNNEL_SESS_TX_START (2u << 20)
/* The least receive buffer of a carrier's socket on a short path (tunnel.c:
 * size_rcvq): what loopback needs at full speed with both ends busy on the
 * CPU. */
#ifndef UM_TUNNEL_RCV_FLOOR
#define UM_TUNNEL_RCV_FLOOR (512u << 10)
#endif

typedef struct {
    /* Server: the peer opened stream `id` to `dst`. Answer with
     * um_tunnel_accept() (now or later) or um_tunnel_refuse(). */
    void (*on_opened)(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud);
    /* Server: a datagram on association `assoc` for `dst`. */
    void (*on_dgram)(um_tunnel_t *t, uint32_t assoc, const um_addr_t *dst, const uint8_t *p,
                     size_t n, void *ud);
    void (*on_assoc_closed)(um_tunnel_t *t, uint32_t assoc, void *ud);
    /* A keepalive answer: smoothed RTT in ms. */
    void (*on_rtt)(um_tunnel_t *t, uint32_t rtt_ms, void *ud);
    /* The peer sent GOAWAY: open streams finish, new ones belong elsewhere. */
    void (*on_goaway)(um_tunnel_t *t, void *ud);
    /* The tunnel is over (err: why; UM_EPIPE for an orderly end). Streams have
     * already been told. The tunnel is freed after this returns. */
    void (*on_down)(um_tunnel_t *t, int err, void *ud);
    /* Resumption (um_tunnel_set_resumable): the carrier broke (err: why) and
     * is closed; the session, the mux and every stream wait. The owner
     * attaches the next carrier (um_tunnel_attach) or gives up
     * (um_tunnel_close). NULL: a broken carrier ends the tunnel. */
    void (*on_detached)(um_tunnel_t *t, int err, void *ud);
    /* The carrier has carried its soft mark (spent false: time to bring the
     * next one) or its whole budget (spent true: nothing more is sent on it
     * until the next one comes); see um_tunnel_set_budget. */
    void (*on_budget)(um_tunnel_t *t, bool spent, void *ud);
} um_tunnel_cbs_t;

typedef struct {
    uint64_t bytes_in, bytes_out; /* wire bytes on the TCP connection */
    uint64_t streams_opened;
    size_t streams_open;
    /* stream and datagram payload bytes: traffic, keepalives (PING/PONG)
     * and other control frames left out */
    uint64_t payload_in, payload_out;
    /* timing profile (um_tunnel_set_timing): flushes held back by a jitter
     * delay, padding-only records sent over a silence */
    uint64_t timing_delays, timing_fillers;
    /* carriers: broken ones let go (detaches), attached after the first
     * (attaches), of which replaced a live one (rotations) */
    uint64_t detaches, attaches, rotations;
    uint64_t streams_failed; /* streams still open when the tunnel went down (reset) */
    uint64_t streams_early;  /* peer-opened streams whose OPEN carried early data */
    /* The receive buffer set on the carrier's socket (0: none: the kernel
     * autotunes it, a long path or a carrier without a TCP socket) */
    uint64_t rcv_buf;
    /* Records sent ahead of a turn's deliveries to streams (new streams'
     * OPENs, control frames: tunnel.c, outbound_urgent) */
    uint64_t urgent_writes;
} um_tunnel_stats_t;

/* The timing profile of a transport (config key `timing`, docs/CONFIG.md).
 * NONE: records leave as soon as the pump has them. JITTER: a flush that
 * starts a burst (none for burst_gap_ms, nothing queued on the carrier)
 * waits a random 0..delay_max_ms first, so the gap between an application's
 * write and its record is not exact; flushes inside a burst (bulk) are not
 * delayed, so a transfer pays the delay at most once per burst. And when
 * this side has written nothing for a random idle_min_ms..idle_max_ms (drawn
 * again after each one), it sends one padding-only record the size of a
 * small HTTP/2 frame (a PING, a WINDOW_UPDATE) in TLS 1.3. Fillers are
 * ordinary session records (PROTOCOL.md 4.2): the peer needs nothing. */
enum { UM_TUNNEL_TIMING_NONE = 0, UM_TUNNEL_TIMING_JITTER = 1 };
typedef struct {
    int profile; /* UM_TUNNEL_TIMING_* */
    uint32_t delay_max_ms;
    uint32_t burst_gap_ms;
    uint32_t idle_min_ms, idle_max_ms;
} um_tunnel_timing_t;

#define UM_TUNNEL_JITTER_MAX_MS 5
#define UM_TUNNEL_JITTER_GAP_MS 50
#define UM_TUNNEL_IDLE_MIN_MS   2000
#define UM_TUNNEL_IDLE_MAX_MS   10000

/* cbs is borrowed for the tunnel's lifetime. mcfg may be NULL (defaults). */
int um_tunnel_new(uv_loop_t *loop, um_sess_t *sess, um_carrier_t *car, um_mux_role_t role,
                  const um_mux_config_t *mcfg, const um_tunnel_cbs_t *cbs, void *ud,
                  um_tunnel_t **out);
/* Graceful: GOAWAY, let open streams finish, then close (bounded by
 * drain_ms). Not graceful: the connection closes now and no byte moves
 * after; the streams' on_error/on_open and on_down follow on a later turn
 * of the loop, never inside this call. um_tunnel_is_down() is true at once. */
void um_tunnel_close(um_tunnel_t *t, bool graceful, uint32_t drain_ms);
/* Not graceful, telling the peer why: GOAWAY `code` (one of
 * UM_MUX_GOAWAY_ENDS_NOW, mux/frame.h) instead of CLOSED. */
void um_tunnel_close_code(um_tunnel_t *t, uint8_t code);
/* The code of the GOAWAY the peer sent (-1: none yet). */
int um_tunnel_goaway_code(const um_tunnel_t *t);
/* Resumption (PROTOCOL.md 3.6): a broken carrier detaches instead of ending
 * the tunnel (needs cbs->on_detached). stall_ms: a carrier that delivered
 * nothing for this long while this side waits for an acknowledgement counts
 * as broken (0: only errors and EOF do). The mux's own keepalive timeout
 * should then be off (ping_timeout_ms 0). */
void um_tunnel_set_resumable(um_tunnel_t *t, uint32_t stall_ms);
/* The current carrier may carry `budget` wire bytes both ways (0: no bound),
 * of which `wire` (its handshake) are spent; on_budget(false) once it has
 * carried `soft` (0: never). */
void um_tunnel_set_budget(um_tunnel_t *t, uint64_t budget, uint64_t soft, uint64_t wire);
/* Moves the tunnel onto a new carrier whose handshake resumed this tunnel's
 * session (um_sess_resume done): the old carrier, if any, is closed (what
 * it had in flight is resent by the session), `rest` are stream bytes that
 * followed the handshake (copied; at most 64 KiB), `wire` the bytes the
 * handshake carried, `budget` and `soft` as um_tunnel_set_budget. Takes the
 * carrier on success; on failure (the tunnel is down or closing, rest too
 * long) the caller still owns it. */
int um_tunnel_attach(um_tunnel_t *t, um_carrier_t *car, const uint8_t *rest, size_t n,
                     uint64_t wire, uint64_t budget, uint64_t soft);
/* Lets the carrier go without telling on_detached (the owner knows: its
 * session has keys the old connection cannot follow). */
void um_tunnel_detach(um_tunnel_t *t);
bool um_tunnel_attached(const um_tunnel_t *t);
uint64_t um_tunnel_carrier_bytes(const um_tunnel_t *t); /* on the current carrier */
um_sess_t *um_tunnel_session(um_tunnel_t *t);           /* borrowed */
uint32_t um_tunnel_rtt(const um_tunnel_t *t);
void um_tunnel_stats(const um_tunnel_t *t, um_tunnel_stats_t *st);
bool um_tunnel_is_down(const um_tunnel_t *t);

/* The defaults of a profile (the UM_TUNNEL_JITTER_* / IDLE_* bounds). */
void um_tunnel_timing_default(um_tunnel_timing_t *tm, int profile);
/* Sets the tunnel's timing profile (copied; NONE until called). Bounds are
 * clamped: delay_max_ms <= 1000, 1 <= idle_min_ms <= idle_max_ms. */
void um_tunnel_set_timing(um_tunnel_t *t, const um_tunnel_timing_t *tm);

/* Server: wrap the peer-opened stream `id` as a um_conn_t and answer it
 * "connected"; cbs/arg as for um_conn_open() (on_open is not called). */
int um_tunnel_accept(um_tunnel_t *t, uint32_t id, const um_conn_cbs_t *cbs, void *arg,
                     um_conn_t **out);
/* Server: answer the peer-opened stream `id` with a failure (um_conn_result_t). */
void um_tunnel_refuse(um_tunnel_t *t, uint32_t id, int result);
/* The pump now, not from the idle handle on the loop's next turn: what the
 * streams wrote goes onto the carrier (sealed) and what the mux holds for
 * them is delivered, here. The one exception to "never from inside a call
 * the user made": stream callbacks may run inside it, so call it only where
 * nothing the caller still uses can be freed by them (e.g. as the last
 * thing a libuv callback of the caller's does). No-op inside the pump. */
void um_tunnel_flush(um_tunnel_t *t);
/* Server: send a datagram back on association `assoc`, from `src`. */
int um_tunnel_dgram_send(um_tunnel_t *t, uint32_t assoc, const um_addr_t *src, const uint8_t *p,
                         size_t n);

/* Client: open streams and associations over whichever tunnel is current.
 * A hub outlives tunnels: opens made while no tunnel is up wait (bounded in
 * time and count) for the next one; streams of a tunnel that goes down get
 * on_error. The hub's um_conn_provider_t is what the proxies use. */
typedef struct um_hub um_hub_t;

int um_hub_new(uv_loop_t *loop, uint32_t wait_ms, uint32_t max_waiting, um_hub_t **out);
/* Every stream must have been closed first. */
void um_hub_free(um_hub_t *h);
/* The tunnel new opens go to (NULL: none). Waiting opens start on it; one
 * that cannot start hears on_open(failure) on a later turn of the loop. */
void um_hub_set_tunnel(um_hub_t *h, um_tunnel_t *t);
um_conn_provider_t um_hub_connector(um_hub_t *h);
/* cb runs (deferred) whenever an open has to wait for a tunnel. */
void um_hub_set_wait_cb(um_hub_t *h, void (*cb)(void *ud), void *ud);

/* Test hook: while on, every allocation of the tunnel layer itself fails
 * (tests/unit/test_tunnel_streams.c). */
void um_tunnel_test_fail_alloc(bool on);

/* Mapping between the mux's open results and um_conn_result_t. */
int um_tunnel_result_to_conn(int mux_code);
uint8_t um_tunnel_result_to_mux(int conn_result);

#endif
