/* The receive path of the partial TCP stack: ACK processing, in-order and
 * out-of-order data, FIN, new flows from SYNs and um_ptcp_input. Part of ptcp
 * (ptcp_int.h). */
#include "tun/ptcp_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* ---- receive path --------------------------------------------------------- */

/* Returns false when the flow was freed. */
static bool on_ack(um_ptcp_t *t, flow_t *f, const um_ip_pkt_t *pkt, uint64_t now)
{
    uint32_t ack = pkt->tcp.ack, seq = pkt->tcp.seq;
    if (um_seq_lt(f->snd_max, ack)) { /* acks what we never sent */
        ptcp_send_ack(t, f);
        t->st.drop_bad++;
        return true;
    }
    uint32_t wnd = (uint32_t)pkt->tcp.window << f->snd_ws;
    if (um_seq_lt(f->snd_una, ack)) {
        uint32_t acked = ack - f->snd_una;
        size_t buflen = um_buf_len(&f->sndbuf);
        if (um_seq_lt(f->buf_seq, ack)) {
            size_t n = ack - f->buf_seq;
            if (n > buflen) n = buflen;
            um_buf_consume(&f->sndbuf, n);
            f->buf_seq += (uint32_t)n;
            t->st.buffered -= n;
        }
        f->snd_una = ack;
        if (um_seq_lt(f->snd_nxt, ack)) f->snd_nxt = ack;
        if (f->rtt_on && um_seq_le(f->rtt_seq, ack)) {
            f->rtt_on = false;
            ptcp_rtt_sample(t, f, now);
        }
        /* New data acknowledged: the path works, so drop the backoff (as
         * Linux does) rather than wait for a sample that Karn's rule keeps
         * from coming while everything in flight is a retransmission. */
        if (f->retries) ptcp_rto_reset(t, f);
        ptcp_grow(f, acked);
        f->retries = 0;
        f->dupacks = 0;
        f->rto_at = f->snd_una == f->snd_nxt ? 0 : now + f->rto_ms;
    } else if (ack == f->snd_una && pkt->payload_len == 0 && f->snd_una != f->snd_max &&
               wnd == f->snd_wnd && !(pkt->tcp.flags & UM_TCP_FIN)) {
        if (++f->dupacks == 3) { /* fast retransmit (RFC 5681 3.2, simplified) */
            f->rtt_on = false;
            ptcp_loss(f, false);
            ptcp_retransmit_one(t, f);
        }
    }
    if (um_seq_lt(f->snd_wl1, seq) || (f->snd_wl1 == seq && um_seq_le(f->snd_wl2, ack))) {
        f->snd_wnd = wnd;
        f->snd_wl1 = seq;
        f->snd_wl2 = ack;
    }
    /* our FIN acknowledged? */
    if (f->fin_sent && f->snd_una == f->snd_max &&
        f->snd_una == f->buf_seq + (uint32_t)um_buf_len(&f->sndbuf) + 1) {
        switch (f->state) {
        case UM_PTCP_FIN_WAIT_1: f->state = UM_PTCP_FIN_WAIT_2; break;
        case UM_PTCP_CLOSING:
            f->state = UM_PTCP_TIME_WAIT;
            f->close_at = now + t->cfg.time_wait_ms;
            break;
        case UM_PTCP_LAST_ACK: ptcp_kill_flow(t, f, 0, false); return false;
        default: break;
        }
    }
    return true;
}

/* Delivers bytes to the upper layer. Returns false when the flow was freed. */
static bool deliver(um_ptcp_t *t, flow_t *f, const uint8_t *p, size_t n)
{
    if (n == 0) return true;
    f->rcv_nxt += (uint32_t)n;
    f->credit -= n;
    t->st.bytes_in += n;
    uint32_t id = f->id;
    if (f->attached && t->ops.on_data) t->ops.on_data(t->ctx, id, p, n);
    return ptcp_alive(f, id);
}

static bool got_fin(um_ptcp_t *t, flow_t *f, uint64_t now)
{
    f->rcv_nxt++;
    f->got_fin = true;
    switch (f->state) {
    case UM_PTCP_SYN_RCVD:
    case UM_PTCP_ESTABLISHED: f->state = UM_PTCP_CLOSE_WAIT; break;
    case UM_PTCP_FIN_WAIT_1: f->state = UM_PTCP_CLOSING; break;
    case UM_PTCP_FIN_WAIT_2:
        f->state = UM_PTCP_TIME_WAIT;
        f->close_at = now + t->cfg.time_wait_ms;
        break;
    default: break;
    }
    ptcp_send_ack(t, f);
    uint32_t id = f->id;
    bool tell = f->attached;
    ptcp_maybe_detach(f);
    if (tell && t->ops.on_fin) t->ops.on_fin(t->ctx, id);
    return ptcp_alive(f, id);
}

static void ooo_store(um_ptcp_t *t, flow_t *f, uint32_t seq, const uint8_t *p, size_t n, bool fin)
{
    if (n > t->cfg.ooo_max - f->ooo_bytes || n > t->cfg.max_bytes - t->st.buffered) {
        t->st.drop_ooo++;
        return;
    }
    ooo_seg_t **pp = &f->ooo;
    for (unsigned guard = 0; *pp && guard < (1u << 20); guard++) {
        if ((*pp)->seq == seq && (*pp)->len >= n && ((*pp)->fin || !fin)) {
            t->st.drop_ooo++; /* duplicate */
            return;
        }
        if (um_seq_lt(seq, (*pp)->seq)) break;
        pp = &(*pp)->next;
    }
    ooo_seg_t *s = malloc(sizeof(*s) + n);
    if (!s) {
        t->st.drop_ooo++;
        return;
    }
    s->seq = seq;
    s->len = (uint32_t)n;
    s->fin = fin;
    if (n) memcpy(s->data, p, n);
    s->next = *pp;
    *pp = s;
    f->ooo_bytes += n;
    t->st.buffered += n;
}

/* In-order delivery of the segments the hole-filler made contiguous.
 * Returns false when the flow was freed; *fin set when a FIN is now next. */
static bool ooo_drain(um_ptcp_t *t, flow_t *f, bool *fin)
{
    for (unsigned guard = 0; f->ooo && guard < (1u << 20); guard++) {
        ooo_seg_t *s = f->ooo;
        if (um_seq_lt(f->rcv_nxt, s->seq)) break;
        f->ooo = s->next;
        f->ooo_bytes -= s->len;
        t->st.buffered -= s->len;
        uint32_t skip = f->rcv_nxt - s->seq;
        bool ok = true;
        if (skip < s->len || (skip == s->len && s->fin)) {
            size_t n = s->len - skip;
            if (n > f->credit) n = f->credit;
            ok = deliver(t, f, s->data + skip, n);
            if (ok && s->fin && skip + n == s->len) *fin = true;
        }
        free(s);
        if (!ok) return false;
        if (*fin) break;
    }
    return true;
}

/* Returns false when the flow was freed. */
static bool on_data(um_ptcp_t *t, flow_t *f, const um_ip_pkt_t *pkt, const uint8_t *p, uint64_t now)
{
    uint32_t seq = pkt->tcp.seq;
    const uint8_t *data = p + pkt->payload_off;
    size_t len = pkt->payload_len;
    bool fin = (pkt->tcp.flags & UM_TCP_FIN) != 0;
    if (len == 0 && !fin) return true;

    switch (f->state) {
    case UM_PTCP_SYN_RCVD:
    case UM_PTCP_ESTABLISHED:
    case UM_PTCP_FIN_WAIT_1:
    case UM_PTCP_FIN_WAIT_2: break;
    default: /* the app already sent FIN: anything more is a duplicate */
        ptcp_send_ack(t, f);
        return true;
    }
    /* trim what we already have */
    if (um_seq_lt(seq, f->rcv_nxt)) {
        uint32_t d = f->rcv_nxt - seq;
        if (d > len || (d == len && !fin)) {
            ptcp_send_ack(t, f); /* duplicate: tell the app where we are */
            return true;
        }
        data += d;
        len -= d;
        seq = f->rcv_nxt;
    }
    /* trim to the window, which is the upper layer's credit */
    uint32_t off = seq - f->rcv_nxt;
    size_t wnd = f->credit;
    if (off > wnd || (off == wnd && len > 0)) {
        t->st.drop_window++;
        ptcp_send_ack(t, f);
        return true;
    }
    if (len > wnd - off) {
        len = wnd - off;
        fin = false;
        t->st.drop_window++;
    }
    if (off > 0) {
        ooo_store(t, f, seq, data, len, fin);
        ptcp_send_ack(t, f); /* duplicate ACK: the app retransmits the hole */
        return true;
    }
    uint32_t id = f->id;
    if (!deliver(t, f, data, len)) return false;
    bool had_ooo = f->ooo != NULL;
    if (!fin && had_ooo && !ooo_drain(t, f, &fin)) return false;
    if (fin) return got_fin(t, f, now);
    if (!ptcp_alive(f, id)) return false;
    f->ack_pending++;
    if (t->cfg.delack_ms == 0 || f->ack_pending >= 2 || had_ooo)
        ptcp_send_ack(t, f);
    else if (!f->delack_at)
        f->delack_at = now + t->cfg.delack_ms;
    return true;
}

static int new_flow(um_ptcp_t *t, const um_ip_pkt_t *pkt, const flow_key_t *k, uint64_t now)
{
    const um_tcp_hdr_t *th = &pkt->tcp;
    if (th->flags & (UM_TCP_RST | UM_TCP_FIN | UM_TCP_ACK)) {
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    if (t->nflows >= t->cfg.max_flows) { /* reuse a TIME_WAIT slot if any */
        for (uint32_t i = 0; i < t->cfg.max_flows; i++) {
            if (t->flows[i].id && t->flows[i].state == UM_PTCP_TIME_WAIT) {
                ptcp_flow_release(t, &t->flows[i]);
                break;
            }
        }
    }
    flow_t *f = t->nflows < t->cfg.max_flows ? ptcp_flow_alloc(t, k) : NULL;
    if (!f) {
        t->st.flows_full++;
        um_log_limited(&t->rl, 5, 1000, UM_LOG_DEBUG, "ptcp: flow table full, RST");
        ptcp_rst_for(t, pkt);
        return UM_ELIMIT;
    }
    f->state = UM_PTCP_SYN_PENDING;
    f->attached = true;
    f->irs = th->seq;
    f->rcv_nxt = th->seq + 1;
    randombytes_buf(&f->iss, sizeof(f->iss));
    f->snd_una = f->snd_nxt = f->snd_max = f->iss;
    f->buf_seq = f->iss + 1;
    size_t iph = pkt->version == 4 ? UM_IPV4_HDR : UM_IPV6_HDR;
    uint32_t ours = (uint32_t)(t->cfg.mtu - iph - UM_TCP_HDR);
    uint32_t theirs = th->mss ? th->mss : (pkt->version == 4 ? DEFAULT_MSS4 : DEFAULT_MSS6);
    if (theirs < 64) theirs = 64;
    f->mss = (uint16_t)(theirs < ours ? theirs : ours);
    if (th->wscale != UM_TCP_WSCALE_NONE) {
        f->snd_ws = th->wscale > MAX_WSCALE ? MAX_WSCALE : th->wscale;
        f->rcv_ws = t->cfg.wscale;
    }
    f->snd_wnd = th->window; /* never scaled in a SYN */
    f->snd_wl1 = th->seq;
    f->rto_ms = t->cfg.rto_init_ms;
    f->cwnd = 10u * f->mss; /* RFC 6928 initial window */
    f->ssthresh = UINT32_MAX;
    f->close_at = now + t->cfg.open_timeout_ms;
    f->last_act = now;
    t->st.flows_opened++;

    um_addr_t src, dst;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    src.type = dst.type = pkt->version == 4 ? UM_ADDR_IPV4 : UM_ADDR_IPV6;
    memcpy(src.u.v6, k->src, iph == UM_IPV4_HDR ? 4 : 16);
    memcpy(dst.u.v6, k->dst, iph == UM_IPV4_HDR ? 4 : 16);
    src.port = k->sport;
    dst.port = k->dport;
    uint32_t id = f->id;
    int r = t->ops.on_open ? t->ops.on_open(t->ctx, id, &src, &dst) : UM_EACCES;
    if (!ptcp_alive(f, id)) return 0; /* aborted from inside on_open */
    if (r < 0) {
        t->st.flows_refused++;
        f->attached = false;
        ptcp_kill_flow(t, f, r, true);
    }
    return 0;
}

int um_ptcp_input(um_ptcp_t *t, const um_ip_pkt_t *pkt, const uint8_t *p, uint64_t now)
{
    if (!t || !pkt || !p || pkt->proto != UM_IPPROTO_TCP) return UM_EINVAL;
    t->st.seg_in++;
    const um_tcp_hdr_t *th = &pkt->tcp;
    uint8_t fl = th->flags;
    flow_key_t k;
    ptcp_key_from_pkt(&k, pkt);
    flow_t *f = ptcp_lookup(t, &k);

    if (f && f->state == UM_PTCP_TIME_WAIT && (fl & UM_TCP_SYN) && !(fl & UM_TCP_ACK) &&
        um_seq_lt(f->rcv_nxt, th->seq)) {
        ptcp_flow_release(t, f); /* new incarnation of the same 4-tuple (RFC 6191 style) */
        f = NULL;
    }
    if (!f) {
        if ((fl & UM_TCP_SYN) && !(fl & (UM_TCP_ACK | UM_TCP_RST)))
            return new_flow(t, pkt, &k, now);
        t->st.drop_nomatch++;
        ptcp_rst_for(t, pkt);
        return UM_ENOENT;
    }
    if ((fl & UM_TCP_SYN) && (fl & (UM_TCP_RST | UM_TCP_FIN))) {
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    f->last_act = now;

    if (f->state == UM_PTCP_SYN_PENDING) {
        if ((fl & UM_TCP_RST) && th->seq == f->rcv_nxt) {
            t->st.rst_in++;
            ptcp_kill_flow(t, f, UM_EPIPE, false);
            return 0;
        }
        if ((fl & UM_TCP_SYN) && th->seq == f->irs) return 0; /* retransmitted SYN */
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    if (fl & UM_TCP_RST) {
        size_t w = f->credit > 0 ? f->credit : 1;
        if (um_seq_le(f->rcv_nxt, th->seq) && (size_t)(th->seq - f->rcv_nxt) < w) {
            t->st.rst_in++;
            ptcp_kill_flow(t, f, UM_EPIPE, false);
            return 0;
        }
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    if (fl & UM_TCP_SYN) {
        if (f->state == UM_PTCP_SYN_RCVD && th->seq == f->irs) {
            ptcp_send_seg(t, f, f->iss, UM_TCP_SYN | UM_TCP_ACK, NULL,
                          0); /* our SYN-ACK was lost */
            return 0;
        }
        ptcp_send_ack(t, f); /* challenge ACK (RFC 5961 4.2) */
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    if (!(fl & UM_TCP_ACK)) {
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    uint32_t id = f->id;
    if (f->state == UM_PTCP_SYN_RCVD) {
        if (th->ack != f->iss + 1) {
            ptcp_rst_for(t, pkt);
            t->st.drop_bad++;
            return UM_EPROTO;
        }
        f->state = UM_PTCP_ESTABLISHED;
        f->snd_una = f->snd_nxt = f->snd_max = f->iss + 1;
        f->rto_at = 0;
        f->retries = 0;
        if (f->rtt_on) {
            f->rtt_on = false;
            ptcp_rtt_sample(t, f, now);
        }
        f->snd_wnd = (uint32_t)th->window << f->snd_ws;
        f->snd_wl1 = th->seq;
        f->snd_wl2 = th->ack; /* a FIN asked for meanwhile goes out in try_send */
    }
    if (!on_ack(t, f, pkt, now)) return 0;
    if (!on_data(t, f, pkt, p, now)) return 0;
    if (!ptcp_alive(f, id)) return 0;
    ptcp_try_send(t, f, now, false);
    if (f->want_writable && um_ptcp_send_space(t, id) > 0) {
        f->want_writable = false;
        if (t->ops.on_writable) t->ops.on_writable(t->ctx, id);
    }
    return 0;
}
