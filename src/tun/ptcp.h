/* um_ptcp_t: a partial TCP stack that terminates, locally, every TCP flow an
 * application opens through the TUN device, and hands its byte stream to the
 * layer above (one mux stream per flow). Sans-I/O: packets come in through
 * um_ptcp_input(), packets go out through ops->output(), time comes in as a
 * number (um_ptcp_tick()). No sockets, no clocks, no allocation per packet
 * beyond the bounded buffers below.
 *
 * Flow life, as the upper layer sees it (see docs/internals/tun.md):
 *   SYN from app ─► on_open(id, src, dst)
 *       return < 0 ─► RST to the app (refused); the id is never used again
 *       return 0   ─► "pending": nothing is sent until the upper layer calls
 *                     um_ptcp_accept(id, credit) (SYN-ACK goes out) or
 *                     um_ptcp_abort(id) (RST: the app sees "connection refused").
 *                     Retransmitted SYNs meanwhile are absorbed; after
 *                     cfg.open_timeout_ms the flow is reset (on_reset).
 *   data from app ─► on_data(id, bytes) in order; never more than the credit
 *                     the upper layer granted (um_ptcp_accept, um_ptcp_credit):
 *                     the advertised receive window IS that credit, so a slow
 *                     stream closes the app's window instead of dropping data.
 *   FIN from app  ─► on_fin(id) (half-close: the upper layer may still send)
 *   RST from app, retransmission give-up, idle timeout ─► on_reset(id, err)
 *   um_ptcp_send(id, p, n) queues bytes for the app (returns how many were
 *                     taken; on_writable(id) fires once when a short send can
 *                     continue); um_ptcp_shutdown(id) sends FIN after them;
 *                     um_ptcp_abort(id) sends RST and forgets the flow.
 * An id stays valid for the upper layer until it got on_reset, or called
 * um_ptcp_abort, or has both received on_fin and called um_ptcp_shutdown;
 * after that no callback names it and calls with it return UM_ENOENT.
 *
 * The on_* callbacks run only from inside um_ptcp_input() and um_ptcp_tick();
 * the upper layer's own calls (accept, send, credit, shutdown, abort) never
 * invoke them, only ops->output. Callbacks may call back into this API for
 * any flow; the stack re-checks a flow's id after every callback.
 *
 * Limits: cfg.max_flows flows; cfg.max_bytes buffered bytes in total (send
 * queues plus out-of-order segments), cfg.sndbuf per flow send queue,
 * cfg.ooo_max per flow out-of-order bytes. A SYN beyond max_flows gets RST. */
#ifndef UM_TUN_PTCP_H
#define UM_TUN_PTCP_H

#include <stddef.h>
#include <stdint.h>

#include "tun/ip.h"
#include "util/addr.h"

typedef struct um_ptcp um_ptcp_t;

typedef struct {
    uint32_t max_flows;       /* table bound (default 1024, at most 65535) */
    size_t max_bytes;         /* all buffered bytes, all flows (default 64 MiB) */
    size_t sndbuf;            /* per flow queue upper -> app (default 256 KiB) */
    size_t ooo_max;           /* per flow out-of-order bytes (default 64 KiB) */
    uint16_t mtu;             /* of the TUN device (default 1500; 1280..65535) */
    uint8_t wscale;           /* our window-scale shift (0 means the default 7; max 14) */
    uint32_t rto_init_ms;     /* default 1000 */
    uint32_t rto_min_ms;      /* default 200 */
    uint32_t rto_max_ms;      /* default 60000 */
    uint32_t max_retries;     /* RTO expiries in a row before reset (default 8) */
    uint32_t delack_ms;       /* 0 (default): ACK each data segment at once; N: ACK every
                                 second segment, or after N ms */
    uint32_t open_timeout_ms; /* pending open without accept/abort (default 30000) */
    uint32_t idle_timeout_ms; /* no segment either way (default 7200000) */
    uint32_t time_wait_ms;    /* TIME_WAIT linger (default 2000) */
} um_ptcp_config_t;

/* Fills defaults for every zero field. */
void um_ptcp_config_defaults(um_ptcp_config_t *cfg);

typedef struct {
    /* One IP packet for the TUN device; p borrowed for the call. */
    void (*output)(void *ctx, const uint8_t *p, size_t n);
    /* A new flow from src to dst (IP addresses with ports). 0 = pending
     * (call um_ptcp_accept or um_ptcp_abort later, possibly from inside this
     * callback), < 0 = refuse (RST). */
    int (*on_open)(void *ctx, uint32_t id, const um_addr_t *src, const um_addr_t *dst);
    /* In-order bytes from the app; p borrowed for the call. n never exceeds
     * the credit left. */
    void (*on_data)(void *ctx, uint32_t id, const uint8_t *p, size_t n);
    void (*on_fin)(void *ctx, uint32_t id);
    /* The flow is gone: UM_EPIPE (RST from the app), UM_ETIMEDOUT (no ACK
     * after max_retries, open or idle timeout). */
    void (*on_reset)(void *ctx, uint32_t id, int err);
    /* The send queue has room again after a short um_ptcp_send(). Optional. */
    void (*on_writable)(void *ctx, uint32_t id);
} um_ptcp_ops_t;

typedef struct {
    uint64_t flows_opened, flows_refused, flows_full, flows_active;
    uint64_t seg_in, seg_out, retransmits, rst_in, rst_out;
    uint64_t drop_nomatch, drop_window, drop_ooo, drop_bad;
    uint64_t bytes_in, bytes_out; /* payload bytes app->upper, upper->app */
    size_t buffered;              /* bytes held now (bounded by max_bytes) */
} um_ptcp_stats_t;

/* cfg copied (NULL = defaults); ops copied, ctx borrowed. NULL on bad
 * config or no memory. Caller frees with um_ptcp_free(). */
um_ptcp_t *um_ptcp_new(const um_ptcp_config_t *cfg, const um_ptcp_ops_t *ops, void *ctx);
/* Frees every flow silently (no packets, no callbacks). NULL is a no-op. */
void um_ptcp_free(um_ptcp_t *t);

/* One parsed TCP packet (um_ip_parse() == UM_IP_OK, proto TCP) and its bytes
 * (borrowed). Returns 0, or a negative code when the packet was dropped
 * (counted in the stats): UM_ENOENT no flow, UM_EPROTO not acceptable. */
int um_ptcp_input(um_ptcp_t *t, const um_ip_pkt_t *pkt, const uint8_t *p, uint64_t now_ms);
/* Runs every timer due at now_ms (retransmission, delayed ACK, zero-window
 * probe, timeouts). Call at least every um_ptcp_next_timer() ms. */
void um_ptcp_tick(um_ptcp_t *t, uint64_t now_ms);
/* The earliest pending deadline (absolute ms), or UINT64_MAX when none. */
uint64_t um_ptcp_next_timer(const um_ptcp_t *t);

/* Completes a pending open: SYN-ACK goes out, and the app may send up to
 * credit bytes before the next um_ptcp_credit(). UM_ENOENT, UM_EINVAL (not
 * pending). */
int um_ptcp_accept(um_ptcp_t *t, uint32_t id, size_t credit, uint64_t now_ms);
/* Copies up to n bytes (borrowed) into the flow's send queue and transmits
 * what the app's window allows. Returns the count taken (0 when full: wait
 * for on_writable), UM_ENOENT, UM_EPIPE after shutdown. */
int um_ptcp_send(um_ptcp_t *t, uint32_t id, const uint8_t *p, size_t n, uint64_t now_ms);
/* Bytes um_ptcp_send would take now. */
size_t um_ptcp_send_space(const um_ptcp_t *t, uint32_t id);
/* The upper layer can take n more bytes: opens the app's window. */
int um_ptcp_credit(um_ptcp_t *t, uint32_t id, size_t n, uint64_t now_ms);
/* FIN after the queued bytes (half-close). Idempotent. */
int um_ptcp_shutdown(um_ptcp_t *t, uint32_t id, uint64_t now_ms);
/* RST to the app and forget the flow at once (no callback). */
int um_ptcp_abort(um_ptcp_t *t, uint32_t id);

const um_ptcp_stats_t *um_ptcp_stats(const um_ptcp_t *t);

/* TCP states, exposed for tests and status. */
typedef enum {
    UM_PTCP_CLOSED = 0,
    UM_PTCP_SYN_PENDING, /* SYN received, waiting for the upper layer */
    UM_PTCP_SYN_RCVD,    /* SYN-ACK sent */
    UM_PTCP_ESTABLISHED,
    UM_PTCP_CLOSE_WAIT,
    UM_PTCP_LAST_ACK,
    UM_PTCP_FIN_WAIT_1,
    UM_PTCP_FIN_WAIT_2,
    UM_PTCP_CLOSING,
    UM_PTCP_TIME_WAIT,
} um_ptcp_state_t;

/* State of a flow (UM_PTCP_CLOSED when the id is unknown). */
um_ptcp_state_t um_ptcp_state(const um_ptcp_t *t, uint32_t id);
const char *um_ptcp_state_name(um_ptcp_state_t s);
uint32_t um_ptcp_flow_count(const um_ptcp_t *t);

#endif
