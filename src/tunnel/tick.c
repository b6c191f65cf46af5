/* The tunnel's measurements of its path, from the pump and the tick
 * (tunnel.c): the ack clock, the resend buffer and the carrier's receive
 * buffer sized from the bandwidth-delay product (the pure sizing is in
 * sizing.c). */
#include "tunnel/tunnel_int.h"

#include "transport/sockq.h"
#include "tunnel/sizing.h"

/* The ack clock: the time from sealing an offset to its acknowledgement,
 * one probe out at a time; the least of a tick sizes the resend buffer. It
 * needs no PING (the mux pings only every keepalive interval), and includes
 * the peer's ack delay (small during a transfer: an ack every 64 KiB). */
void tn_ack_clock(um_tunnel_t *t)
{
    um_sess_offsets_t o;
    um_sess_offsets(t->sess, &o);
    uint64_t now = um_now_ms();
    if (t->rtt_probe_t && o.tx_acked >= t->rtt_probe_off) {
        uint64_t s = now - t->rtt_probe_t;
        if (s < t->rtt_min) t->rtt_min = s;
        t->rtt_probe_t = 0;
    }
    if (!t->rtt_probe_t && o.tx_sent > o.tx_acked) {
        t->rtt_probe_t = now;
        t->rtt_probe_off = o.tx_sent;
    }
}

/* The resend buffer (the session's bound on unacknowledged plus queued
 * bytes) follows the bandwidth-delay product measured over the last tick
 * (um_tunnel_resend_size, sizing.h), between UM_TUNNEL_SESS_TX_START and
 * the session's configured bound: a short path (loopback, a LAN) stays at
 * the start size, and so does the memory it pins (um_buf storage grows only
 * as bytes are queued); a long fat one doubles it per tick until the path,
 * not the buffer, is the limit. */
void tn_size_resend(um_tunnel_t *t, uint64_t now)
{
    um_sess_offsets_t o;
    um_sess_offsets(t->sess, &o);
    uint64_t rtt = t->rtt_min != UINT64_MAX ? t->rtt_min : um_mux_rtt_ms(t->mux);
    t->rtt_min = UINT64_MAX;
    if (t->bdp_t0 && now > t->bdp_t0 && o.tx_acked >= t->bdp_acked0 && rtt != UINT64_MAX) {
        uint64_t acked = o.tx_acked - t->bdp_acked0;
        size_t cur = um_sess_tx_max(t->sess);
        size_t want = um_tunnel_resend_size(cur, UM_TUNNEL_SESS_TX_START, t->tx_ceiling, acked, rtt,
                                            now - t->bdp_t0);
        if (want != cur) {
            um_sess_set_tx_max(t->sess, want);
            UM_DEBUG(
                "tunnel: resend buffer %llu KiB (%llu KiB acknowledged in %llu ms, rtt %llu ms)",
                (unsigned long long)(want >> 10), (unsigned long long)(acked >> 10),
                (unsigned long long)(now - t->bdp_t0), (unsigned long long)rtt);
        }
    }
    t->bdp_t0 = now;
    t->bdp_acked0 = o.tx_acked;
}

/* The bytes the kernel may queue for us on the carrier's socket follow the
 * path's bandwidth-delay product (um_tunnel_rcvbuf_size, sizing.h): without
 * a bound, receive-buffer autotuning lets a bulk stream's bytes fill
 * megabytes of the socket (1-2 MB on loopback), and a new stream's first
 * bytes wait behind all of them. Run when a carrier is attached and once a
 * tick: TCP_INFO and SIOCINQ, and SO_RCVBUF when the bound must change. The
 * first bound is set only while the socket holds less than half of it
 * (lowering the buffer under queued bytes would make the kernel drop what
 * arrives); after that it only grows. A carrier without a TCP socket under
 * it (dns, rel) is not bounded. */
void tn_size_rcvq(um_tunnel_t *t, uint64_t now)
{
    int fd = t->car ? um_carrier_sock(t->car) : -1;
    um_sockq_info_t qi;
    if (fd < 0 || um_sockq_info(fd, &qi) != 0) return;
    uint64_t got = 0, dt = 0;
    if (t->rq_t0 && now > t->rq_t0 && qi.bytes_received >= t->rq_bytes0) {
        got = qi.bytes_received - t->rq_bytes0;
        dt = (now - t->rq_t0) * 1000;
    }
    size_t want = um_tunnel_rcvbuf_size(t->rq_buf, UM_TUNNEL_RCV_FLOOR, um_sockq_rcvbuf_max(), got,
                                        qi.min_rtt_us, dt);
    if (want > t->rq_buf && (t->rq_buf || qi.queued <= want / 2) &&
        um_sockq_set_rcvbuf(fd, want) == 0) {
        UM_DEBUG("tunnel: carrier receive buffer %llu KiB (%llu KiB in %llu ms, min rtt %u us)",
                 (unsigned long long)(want >> 10), (unsigned long long)(got >> 10),
                 (unsigned long long)(dt / 1000), qi.min_rtt_us);
        t->rq_buf = want;
        t->st.rcv_buf = want;
    }
    t->rq_t0 = now;
    t->rq_bytes0 = qi.bytes_received;
}
