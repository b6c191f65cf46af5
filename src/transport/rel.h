/* The reliability layer (docs/PROTOCOL.md 12, docs/internals/rel.md): an
 * ordered, reliable byte pipe over a lossy datagram link, sans-I/O.
 *
 * The lower layer (dns today, udp later) owns conversation ids,
 * authentication and the clock; it feeds every packet of the peer to
 * um_rel_input and, at each send opportunity, asks um_rel_output for a
 * packet of at most `cap` bytes. Send opportunities may be pulled (a DNS
 * server can only answer a query) and of any size; a pushing lower layer
 * sends whenever um_rel_wants_output is true and runs um_rel_poll at
 * um_rel_next_timer. The packets are not authenticated here: a lower layer
 * that lets forged packets through lets them disturb (not inject into) the
 * stream, whose session records are authenticated above.
 *
 * Mechanisms: packet numbers (never reused, so every RTT sample is
 * unambiguous), stream offsets for data (a resend is re-cut to whatever
 * opportunity comes), a cumulative ack plus selective ack ranges, RFC 6298
 * RTO with exponential backoff, fast retransmit on SACK evidence (three
 * later packets acked at first; the threshold adapts when losses turn out
 * spurious, and their window reduction is undone), a NewReno window in
 * bytes (reduction 0.7), flow control by an advertised limit (data beyond
 * it is discarded), FIN as one virtual byte after the data, keepalive pings
 * and an idle timeout.
 *
 * Ownership: an um_rel_t is heap-allocated and owned by its creator
 * (um_rel_free). Every pointer argument is borrowed for the call; written
 * bytes are copied. Nothing here calls back, allocates per packet beyond
 * the bounded tables, or reads a clock. */
#ifndef UM_TRANSPORT_REL_H
#define UM_TRANSPORT_REL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct um_rel um_rel_t;

typedef struct {
    size_t snd_max, rcv_max; /* byte bounds of the send and receive buffers */
    uint32_t rto_min_ms, rto_max_ms;
    uint32_t idle_timeout_ms; /* no packet from the peer for this long: dead */
} um_rel_cfg_t;

/* Defaults a zero field of the cfg takes. */
#define UM_REL_SND_MAX_DEFAULT (256u << 10)
#define UM_REL_RCV_MAX_DEFAULT (256u << 10)
#define UM_REL_BUF_MAX         (1u << 30) /* larger bounds are refused (UM_EINVAL) */
#define UM_REL_RTO_MIN_DEFAULT 200
#define UM_REL_RTO_MAX_DEFAULT 10000
#define UM_REL_IDLE_DEFAULT    60000
#define UM_REL_RTO_INITIAL     1000 /* before the first RTT sample (RFC 6298 2.1) */

/* Sizes on the wire (docs/PROTOCOL.md 12). */
#define UM_REL_HDR_LEN      5  /* flags, packet number */
#define UM_REL_ACK_MIN_LEN  17 /* an ack block without extra ranges */
#define UM_REL_DATA_HDR_LEN 4  /* a data segment's offset */

/* cfg is copied; zero fields take the defaults above. UM_EINVAL for
 * rto_min > rto_max or a bound above UM_REL_BUF_MAX; UM_ENOMEM. */
int um_rel_new(const um_rel_cfg_t *cfg, uint64_t now_ms, um_rel_t **out);
void um_rel_free(um_rel_t *r); /* NULL is a no-op; wipes the buffers */

/* Copies all n bytes into the send buffer, or none: UM_ENOSPC when they
 * would pass snd_max, UM_EPIPE after um_rel_shutdown, UM_ETIMEDOUT dead. */
int um_rel_write(um_rel_t *r, const uint8_t *p, size_t n);
/* FIN after the queued bytes (idempotent). */
int um_rel_shutdown(um_rel_t *r);
size_t um_rel_queued(const um_rel_t *r); /* written, not yet acked */
size_t um_rel_space(const um_rel_t *r);  /* addition: what um_rel_write takes now */
/* Ordered bytes received: copies up to cap; *n = 0 and UM_EPIPE after the
 * peer's FIN (once all bytes before it were read); *n = 0 and 0: nothing yet. */
int um_rel_read(um_rel_t *r, uint8_t *out, size_t cap, size_t *n);
/* One packet from the peer (any size the lower layer delivered). UM_EPROTO:
 * garbage (does not parse, or contradicts what we sent or what the peer
 * said before), dropped, state unchanged. UM_ETIMEDOUT: already dead. */
int um_rel_input(um_rel_t *r, const uint8_t *pkt, size_t n, uint64_t now_ms);
/* A send opportunity of at most cap bytes: the packet goes to out[0..*n).
 * *n = 0: nothing worth sending (or cap too small for even an ack). */
int um_rel_output(um_rel_t *r, uint64_t now_ms, uint8_t *out, size_t cap, size_t *n);
/* Data (within the windows), an ack, a window update, a resend or a ping due. */
bool um_rel_wants_output(const um_rel_t *r, uint64_t now_ms);
/* Absolute ms of the next timer (RTO, ping, idle death); UINT64_MAX none. */
uint64_t um_rel_next_timer(const um_rel_t *r, uint64_t now_ms);
/* Runs due timers; UM_ETIMEDOUT once the peer has been silent too long. */
int um_rel_poll(um_rel_t *r, uint64_t now_ms);

/* Additions beyond the contract. */

/* Poll controller hint for a pulling lower layer (the DNS client): true
 * when the peer's latest packet said it had more to send. */
bool um_rel_peer_more(const um_rel_t *r);
/* How long to wait before the next idle poll: 0 when the peer has more
 * (or we wait for an ack of data in flight), else growing with the time
 * since the peer last sent data, from UM_REL_POLL_MIN_MS to
 * min(UM_REL_POLL_MAX_MS, idle_timeout / 4). */
#define UM_REL_POLL_MIN_MS 20
#define UM_REL_POLL_MAX_MS 1000
uint32_t um_rel_poll_interval(const um_rel_t *r, uint64_t now_ms);
/* Both FINs done: ours acked and the peer's received and read. */
bool um_rel_finished(const um_rel_t *r);
bool um_rel_dead(const um_rel_t *r);

typedef struct {
    uint64_t pkts_sent, pkts_recv, pkts_dropped; /* dropped: EPROTO inputs */
    uint64_t bytes_sent;                         /* packet bytes */
    uint64_t data_sent, data_resent;             /* stream bytes, first time and again */
    uint64_t data_delivered;                     /* stream bytes given to um_rel_read */
    uint64_t rto_fires, fast_resends;            /* loss events by cause */
    uint64_t spurious;                           /* losses declared, then acked after all */
    uint32_t reorder;                            /* packet reordering threshold in use */
    uint32_t srtt_ms, rttvar_ms, rto_ms;
    uint32_t cwnd, ssthresh, in_flight; /* bytes */
} um_rel_stats_t;
void um_rel_stats(const um_rel_t *r, um_rel_stats_t *st);

/* One packet taken apart (docs/PROTOCOL.md 12.1); pointers borrow pkt. */
#define UM_REL_VERSION    0x40 /* top three bits of the flags byte */
#define UM_REL_F_ACK      0x01
#define UM_REL_F_DATA     0x02
#define UM_REL_F_FIN      0x04
#define UM_REL_F_MORE     0x08
#define UM_REL_RANGES_MAX 255 /* extra ack ranges in one packet */
typedef struct {
    uint8_t flags;
    uint32_t pn;
    /* ack block (flags & UM_REL_F_ACK) */
    uint32_t cum, wnd, largest;
    uint16_t delay_ms, first;
    uint8_t n_ranges;
    uint16_t gap[UM_REL_RANGES_MAX], len[UM_REL_RANGES_MAX];
    /* data segment (flags & UM_REL_F_DATA) */
    uint32_t off;
    const uint8_t *data;
    size_t data_len;
} um_rel_pkt_t;
/* Pure parser: 0, or UM_EPROTO (bad version, reserved bit, F without D, an
 * empty packet, short ack block, trailing bytes, wnd above UM_REL_BUF_MAX). */
int um_rel_pkt_parse(const uint8_t *pkt, size_t n, um_rel_pkt_t *out);

#endif
