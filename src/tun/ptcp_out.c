/* The sending side of the partial TCP stack: building and emitting segments,
 * RSTs for stray packets, the advertised window, the send loop, retransmission,
 * the RTT estimate and RTO (RFC 6298) and the congestion window (RFC 5681).
 * Part of ptcp (ptcp_int.h). */
#include "tun/ptcp_int.h"

#include <string.h>

#include "util/err.h"

/* ---- output --------------------------------------------------------------- */

static void emit(um_ptcp_t *t, const um_ip_pkt_t *h, const uint8_t *data, size_t len)
{
    int n = um_ip_build(h, data, len, t->pkt, t->pkt_cap);
    if (n < 0) {
        um_log_limited(&t->rl, 5, 1000, UM_LOG_DEBUG, "ptcp: build failed: %s", um_strerror(n));
        return;
    }
    t->st.seg_out++;
    if (h->tcp.flags & UM_TCP_RST) t->st.rst_out++;
    t->ops.output(t->ctx, t->pkt, (size_t)n);
}

/* RST for a segment that has no flow (RFC 9293 3.10.7.1). */
void ptcp_rst_for(um_ptcp_t *t, const um_ip_pkt_t *in)
{
    if (in->tcp.flags & UM_TCP_RST) return;
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = in->version;
    h.proto = UM_IPPROTO_TCP;
    h.ttl = 64;
    memcpy(h.src, in->dst, 16);
    memcpy(h.dst, in->src, 16);
    h.sport = in->dport;
    h.dport = in->sport;
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    if (in->tcp.flags & UM_TCP_ACK) {
        h.tcp.seq = in->tcp.ack;
        h.tcp.flags = UM_TCP_RST;
    } else {
        uint32_t seglen = (uint32_t)in->payload_len + !!(in->tcp.flags & UM_TCP_SYN) +
                          !!(in->tcp.flags & UM_TCP_FIN);
        h.tcp.ack = in->tcp.seq + seglen;
        h.tcp.flags = UM_TCP_RST | UM_TCP_ACK;
    }
    emit(t, &h, NULL, 0);
}

static uint16_t adv_window(flow_t *f, bool syn)
{
    size_t w = f->credit;
    size_t cap = syn ? 65535u : (size_t)65535u << f->rcv_ws;
    if (w > cap) w = cap;
    uint16_t raw = (uint16_t)(syn ? w : w >> f->rcv_ws);
    uint32_t edge = f->rcv_nxt + (syn ? raw : (uint32_t)raw << f->rcv_ws);
    if (um_seq_lt(f->rcv_adv, edge) || f->rcv_adv == 0) f->rcv_adv = edge;
    return raw;
}

void ptcp_send_seg(um_ptcp_t *t, flow_t *f, uint32_t seq, uint8_t flags, const uint8_t *data,
                   size_t len)
{
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = f->key.version;
    h.proto = UM_IPPROTO_TCP;
    h.ttl = 64;
    memcpy(h.src, f->key.dst, 16);
    memcpy(h.dst, f->key.src, 16);
    h.sport = f->key.dport;
    h.dport = f->key.sport;
    h.tcp.seq = seq;
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    bool syn = (flags & UM_TCP_SYN) != 0;
    if (!(flags & UM_TCP_RST) || (flags & UM_TCP_ACK)) {
        flags |= UM_TCP_ACK;
        h.tcp.ack = f->rcv_nxt;
        h.tcp.window = adv_window(f, syn);
        f->ack_pending = 0;
        f->delack_at = 0;
    }
    h.tcp.flags = flags;
    if (syn) {
        size_t iph = f->key.version == 4 ? UM_IPV4_HDR : UM_IPV6_HDR;
        h.tcp.mss = (uint16_t)(t->cfg.mtu - iph - UM_TCP_HDR);
        if (f->rcv_ws || f->snd_ws) h.tcp.wscale = f->rcv_ws;
    }
    emit(t, &h, data, len);
}

void ptcp_send_ack(um_ptcp_t *t, flow_t *f)
{
    ptcp_send_seg(t, f, f->snd_nxt, UM_TCP_ACK, NULL, 0);
}

static void arm_rto(um_ptcp_t *t, flow_t *f, uint64_t now)
{
    if (!f->rto_at) f->rto_at = now + f->rto_ms;
}

/* Sends what the app's window allows: new data, a retransmission after
 * snd_nxt was pulled back, and the FIN once every byte went out. With
 * force_one, at least one segment goes out even into a closed window (RTO). */
void ptcp_try_send(um_ptcp_t *t, flow_t *f, uint64_t now, bool force_one)
{
    switch (f->state) {
    case UM_PTCP_ESTABLISHED:
    case UM_PTCP_CLOSE_WAIT:
    case UM_PTCP_FIN_WAIT_1:
    case UM_PTCP_LAST_ACK:
    case UM_PTCP_CLOSING: break;
    default: return;
    }
    const uint8_t *buf;
    size_t buflen = um_buf_peek(&f->sndbuf, &buf);
    uint32_t fin_seq = f->buf_seq + (uint32_t)buflen;
    uint32_t edge = f->snd_una + (f->snd_wnd < f->cwnd ? f->snd_wnd : f->cwnd);
    for (unsigned guard = 0; guard < 1u << 16; guard++) {
        size_t off = f->snd_nxt - f->buf_seq;
        bool need_fin = f->shut && f->snd_nxt == fin_seq;
        if (off >= buflen && !need_fin) break;
        size_t len = 0;
        if (off < buflen) {
            int64_t room = (int64_t)(int32_t)(edge - f->snd_nxt);
            if (room <= 0) {
                if (!force_one) break;
                room = 1;
            }
            len = buflen - off;
            if (len > f->mss) len = f->mss;
            if ((int64_t)len > room) len = (size_t)room;
        }
        uint8_t flags = UM_TCP_ACK;
        if (f->shut && off + len == buflen) flags |= UM_TCP_FIN;
        if (len && off + len == buflen) flags |= UM_TCP_PSH;
        uint32_t seq = f->snd_nxt;
        bool retx = um_seq_lt(seq, f->snd_max);
        ptcp_send_seg(t, f, seq, flags, len ? buf + off : NULL, len);
        force_one = false;
        f->snd_nxt += (uint32_t)len + ((flags & UM_TCP_FIN) ? 1 : 0);
        if (retx) t->st.retransmits++;
        if (um_seq_lt(f->snd_max, f->snd_nxt)) {
            if (!f->rtt_on && !retx) {
                f->rtt_on = true;
                f->rtt_seq = f->snd_nxt;
                f->rtt_start = now;
            }
            f->snd_max = f->snd_nxt;
        }
        t->st.bytes_out += retx ? 0 : len;
        if (flags & UM_TCP_FIN) {
            if (!f->fin_sent) {
                f->fin_sent = true;
                if (f->state == UM_PTCP_ESTABLISHED) f->state = UM_PTCP_FIN_WAIT_1;
                if (f->state == UM_PTCP_CLOSE_WAIT) f->state = UM_PTCP_LAST_ACK;
            }
            break;
        }
        arm_rto(t, f, now);
    }
    if (f->snd_nxt != f->snd_una) arm_rto(t, f, now);
    /* Zero window with data waiting and nothing in flight: probe. */
    if (f->snd_wnd == 0 && f->snd_nxt == f->snd_una && (size_t)(f->snd_nxt - f->buf_seq) < buflen) {
        if (!f->persist_at) {
            if (!f->persist_ms) f->persist_ms = f->rto_ms < PERSIST_MIN ? PERSIST_MIN : f->rto_ms;
            f->persist_at = now + f->persist_ms;
        }
    } else {
        f->persist_at = 0;
        f->persist_ms = 0;
    }
}

/* Resends the first unacknowledged segment (fast retransmit). */
void ptcp_retransmit_one(um_ptcp_t *t, flow_t *f)
{
    const uint8_t *buf;
    size_t buflen = um_buf_peek(&f->sndbuf, &buf);
    size_t off = f->snd_una - f->buf_seq;
    size_t len = 0;
    uint8_t flags = UM_TCP_ACK;
    if (off < buflen) {
        size_t inflight = f->snd_max - f->snd_una;
        len = buflen - off;
        if (len > f->mss) len = f->mss;
        if (len > inflight) len = inflight;
        if (len == 0) return;
    }
    if (f->fin_sent && off + len == buflen) flags |= UM_TCP_FIN;
    if (len == 0 && !(flags & UM_TCP_FIN)) return;
    t->st.retransmits++;
    ptcp_send_seg(t, f, f->snd_una, flags, len ? buf + off : NULL, len);
}

/* ---- RTT, RTO, congestion window ------------------------------------------ */

/* RTO from the estimates (RFC 6298 2.3), or the initial value before the
 * first sample; also clears an exponential backoff. */
void ptcp_rto_reset(um_ptcp_t *t, flow_t *f)
{
    if (!f->srtt8) {
        f->rto_ms = t->cfg.rto_init_ms;
        return;
    }
    uint32_t rto = (f->srtt8 >> 3) + (f->rttvar4 > 1 ? f->rttvar4 : 1);
    if (rto < t->cfg.rto_min_ms) rto = t->cfg.rto_min_ms;
    if (rto > t->cfg.rto_max_ms) rto = t->cfg.rto_max_ms;
    f->rto_ms = rto;
}

void ptcp_rtt_sample(um_ptcp_t *t, flow_t *f, uint64_t now)
{
    /* The caller's clock may be read before the moment a segment was stamped
     * (one "now" for a batch of packets): such a sample counts as 0, and no
     * sample counts as more than a minute, so the sums below cannot overflow. */
    uint64_t d = now > f->rtt_start ? now - f->rtt_start : 0;
    uint32_t r = d > 60000 ? 60000 : (uint32_t)d;
    if (f->srtt8 == 0) {
        f->srtt8 = r * 8 + 1; /* +1: remember that we have a sample */
        f->rttvar4 = r * 2;
    } else {
        int64_t delta = (int64_t)r - (int64_t)(f->srtt8 >> 3);
        f->srtt8 = (uint32_t)((int64_t)f->srtt8 + delta);
        uint32_t ad = (uint32_t)(delta < 0 ? -delta : delta);
        f->rttvar4 = f->rttvar4 - (f->rttvar4 >> 2) + ad;
    }
    ptcp_rto_reset(t, f);
}

/* Congestion window (RFC 5681): slow start below ssthresh, then about one
 * MSS per round trip. */
void ptcp_grow(flow_t *f, uint32_t acked)
{
    uint32_t inc = f->cwnd < f->ssthresh ? (acked < f->mss ? acked : f->mss)
                                         : (uint32_t)((uint64_t)f->mss * f->mss / f->cwnd);
    if (inc == 0) inc = 1;
    f->cwnd = f->cwnd > UINT32_MAX / 2 ? f->cwnd : f->cwnd + inc;
}

void ptcp_loss(flow_t *f, bool timeout)
{
    uint32_t inflight = f->snd_max - f->snd_una;
    f->ssthresh = inflight / 2 > 2u * f->mss ? inflight / 2 : 2u * f->mss;
    f->cwnd = timeout ? f->mss : f->ssthresh;
}
