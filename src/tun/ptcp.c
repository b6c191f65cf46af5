/* Partial TCP stack: terminates app flows locally (see ptcp.h and
 * docs/internals/tun.md). RFC 9293 (TCP), RFC 6298 (RTO), RFC 7323 (window
 * scale), RFC 5681 (fast retransmit on three duplicate ACKs). */
#include "tun/ptcp.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_CREDIT   (1u << 30) /* largest window RFC 7323 allows */
#define MAX_WSCALE   14
#define PERSIST_MIN  200
#define DEFAULT_MSS4 536
#define DEFAULT_MSS6 1220

typedef struct ooo_seg {
    struct ooo_seg *next;
    uint32_t seq;
    uint32_t len;
    bool fin;
    uint8_t data[];
} ooo_seg_t;

/* The 5-tuple as the app sees it: src = app, dst = remote. Zero-padded so it
 * can be hashed and compared as bytes. */
typedef struct {
    uint8_t version;
    uint8_t pad;
    uint16_t sport, dport;
    uint8_t src[16], dst[16];
} flow_key_t;

typedef struct {
    uint32_t id; /* 0 = free slot */
    uint16_t gen;
    uint8_t state;
    bool attached; /* the upper layer still knows the id */
    bool got_fin;  /* on_fin delivered */
    bool shut;     /* upper called shutdown */
    bool fin_sent;
    bool want_writable;
    bool rtt_on;
    uint8_t snd_ws, rcv_ws;
    uint16_t mss;
    uint32_t hnext; /* hash chain: slot + 1, 0 = end */
    flow_key_t key;

    /* send side (upper -> app) */
    uint32_t iss, snd_una, snd_nxt, snd_max, buf_seq;
    uint32_t snd_wnd, snd_wl1, snd_wl2;
    uint32_t cwnd, ssthresh; /* RFC 5681, so an RTO does not resend a whole window at once */
    um_buf_t sndbuf;         /* bytes from buf_seq on: unacknowledged, then unsent */

    /* receive side (app -> upper) */
    uint32_t irs, rcv_nxt, rcv_adv;
    size_t credit;
    ooo_seg_t *ooo;
    size_t ooo_bytes;
    uint32_t ack_pending;

    /* timers: absolute ms, 0 = off */
    uint64_t rto_at, delack_at, persist_at, close_at, last_act;
    uint32_t rto_ms, srtt8, rttvar4, retries, dupacks, persist_ms;
    uint32_t rtt_seq;
    uint64_t rtt_start;
} flow_t;

struct um_ptcp {
    um_ptcp_config_t cfg;
    um_ptcp_ops_t ops;
    void *ctx;
    flow_t *flows; /* cfg.max_flows slots */
    uint32_t *buckets;
    uint32_t nbuckets; /* power of two */
    uint32_t *freelist;
    uint32_t nfree;
    uint32_t nflows;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    uint8_t *pkt; /* scratch for one outgoing packet */
    size_t pkt_cap;
    um_ptcp_stats_t st;
    um_ratelimit_t rl;
};

void um_ptcp_config_defaults(um_ptcp_config_t *c)
{
    if (!c->max_flows) c->max_flows = 1024;
    if (!c->max_bytes) c->max_bytes = 64u << 20;
    if (!c->sndbuf) c->sndbuf = 256u << 10;
    if (!c->ooo_max) c->ooo_max = 64u << 10;
    if (!c->mtu) c->mtu = 1500;
    if (!c->wscale) c->wscale = 7;
    if (!c->rto_init_ms) c->rto_init_ms = 1000;
    if (!c->rto_min_ms) c->rto_min_ms = 200;
    if (!c->rto_max_ms) c->rto_max_ms = 60000;
    if (!c->max_retries) c->max_retries = 8;
    if (!c->open_timeout_ms) c->open_timeout_ms = 30000;
    if (!c->idle_timeout_ms) c->idle_timeout_ms = 7200000;
    if (!c->time_wait_ms) c->time_wait_ms = 2000;
}

const char *um_ptcp_state_name(um_ptcp_state_t s)
{
    static const char *const names[] = {"CLOSED",     "SYN_PENDING", "SYN_RCVD",   "ESTABLISHED",
                                        "CLOSE_WAIT", "LAST_ACK",    "FIN_WAIT_1", "FIN_WAIT_2",
                                        "CLOSING",    "TIME_WAIT"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- table ---------------------------------------------------------------- */

static uint32_t key_hash(const um_ptcp_t *t, const flow_key_t *k)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const uint8_t *)k, sizeof(*k), t->hkey);
    uint32_t v;
    memcpy(&v, h, sizeof(v));
    return v & (t->nbuckets - 1);
}

static void key_from_pkt(flow_key_t *k, const um_ip_pkt_t *pkt)
{
    memset(k, 0, sizeof(*k));
    k->version = pkt->version;
    k->sport = pkt->sport;
    k->dport = pkt->dport;
    size_t alen = pkt->version == 4 ? 4 : 16;
    memcpy(k->src, pkt->src, alen);
    memcpy(k->dst, pkt->dst, alen);
}

static flow_t *lookup(um_ptcp_t *t, const flow_key_t *k)
{
    uint32_t i = t->buckets[key_hash(t, k)];
    for (uint32_t steps = 0; i && steps <= t->cfg.max_flows; steps++) {
        flow_t *f = &t->flows[i - 1];
        if (memcmp(&f->key, k, sizeof(*k)) == 0) return f;
        i = f->hnext;
    }
    return NULL;
}

static flow_t *by_id(const um_ptcp_t *t, uint32_t id)
{
    uint32_t slot = id & 0xffff;
    if (id == 0 || slot >= t->cfg.max_flows) return NULL;
    flow_t *f = &t->flows[slot];
    return f->id == id ? f : NULL;
}

static bool alive(const flow_t *f, uint32_t id)
{
    return f->id == id;
}

static flow_t *flow_alloc(um_ptcp_t *t, const flow_key_t *k)
{
    if (!t->nfree) return NULL;
    uint32_t slot = t->freelist[--t->nfree];
    flow_t *f = &t->flows[slot];
    uint16_t gen = (uint16_t)(f->gen + 1);
    if (gen == 0) gen = 1;
    memset(f, 0, sizeof(*f));
    f->gen = gen;
    f->id = (uint32_t)gen << 16 | slot;
    f->key = *k;
    um_buf_init(&f->sndbuf, t->cfg.sndbuf);
    uint32_t b = key_hash(t, k);
    f->hnext = t->buckets[b];
    t->buckets[b] = slot + 1;
    t->nflows++;
    t->st.flows_active = t->nflows;
    return f;
}

static void flow_release(um_ptcp_t *t, flow_t *f)
{
    uint32_t slot = (uint32_t)(f - t->flows);
    uint32_t *pp = &t->buckets[key_hash(t, &f->key)];
    for (uint32_t steps = 0; *pp && steps <= t->cfg.max_flows; steps++) {
        if (*pp == slot + 1) {
            *pp = f->hnext;
            break;
        }
        pp = &t->flows[*pp - 1].hnext;
    }
    t->st.buffered -= um_buf_len(&f->sndbuf) + f->ooo_bytes;
    um_buf_free(&f->sndbuf);
    for (ooo_seg_t *s = f->ooo, *nx; s; s = nx) {
        nx = s->next;
        free(s);
    }
    uint16_t gen = f->gen;
    memset(f, 0, sizeof(*f));
    f->gen = gen;
    t->freelist[t->nfree++] = slot;
    t->nflows--;
    t->st.flows_active = t->nflows;
}

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
static void rst_for(um_ptcp_t *t, const um_ip_pkt_t *in)
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

static void send_seg(um_ptcp_t *t, flow_t *f, uint32_t seq, uint8_t flags, const uint8_t *data,
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

static void send_ack(um_ptcp_t *t, flow_t *f)
{
    send_seg(t, f, f->snd_nxt, UM_TCP_ACK, NULL, 0);
}

static void arm_rto(um_ptcp_t *t, flow_t *f, uint64_t now)
{
    if (!f->rto_at) f->rto_at = now + f->rto_ms;
}

/* Sends what the app's window allows: new data, a retransmission after
 * snd_nxt was pulled back, and the FIN once every byte went out. With
 * force_one, at least one segment goes out even into a closed window (RTO). */
static void try_send(um_ptcp_t *t, flow_t *f, uint64_t now, bool force_one)
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
        send_seg(t, f, seq, flags, len ? buf + off : NULL, len);
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
static void retransmit_one(um_ptcp_t *t, flow_t *f)
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
    send_seg(t, f, f->snd_una, flags, len ? buf + off : NULL, len);
}

/* ---- flow end ------------------------------------------------------------- */

/* Frees the flow, optionally RSTs the app, and tells the upper layer (after
 * the free, so a call back with the id gets UM_ENOENT). */
static void kill_flow(um_ptcp_t *t, flow_t *f, int err, bool rst)
{
    /* snd_max: what the app expects next if everything arrived (an RST
     * whose sequence number is not exactly that draws a challenge ACK, and
     * the RST we send for that ACK then carries the exact number) */
    if (rst) send_seg(t, f, f->snd_max, UM_TCP_RST | UM_TCP_ACK, NULL, 0);
    uint32_t id = f->id;
    bool tell = f->attached;
    flow_release(t, f);
    if (tell && t->ops.on_reset) t->ops.on_reset(t->ctx, id, err);
}

static void maybe_detach(flow_t *f)
{
    if (f->got_fin && f->shut) f->attached = false;
}

/* ---- receive path --------------------------------------------------------- */

/* RTO from the estimates (RFC 6298 2.3), or the initial value before the
 * first sample; also clears an exponential backoff. */
static void rto_reset(um_ptcp_t *t, flow_t *f)
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

static void rtt_sample(um_ptcp_t *t, flow_t *f, uint64_t now)
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
    rto_reset(t, f);
}

/* Congestion window (RFC 5681): slow start below ssthresh, then about one
 * MSS per round trip. */
static void grow(flow_t *f, uint32_t acked)
{
    uint32_t inc = f->cwnd < f->ssthresh ? (acked < f->mss ? acked : f->mss)
                                         : (uint32_t)((uint64_t)f->mss * f->mss / f->cwnd);
    if (inc == 0) inc = 1;
    f->cwnd = f->cwnd > UINT32_MAX / 2 ? f->cwnd : f->cwnd + inc;
}

static void loss(flow_t *f, bool timeout)
{
    uint32_t inflight = f->snd_max - f->snd_una;
    f->ssthresh = inflight / 2 > 2u * f->mss ? inflight / 2 : 2u * f->mss;
    f->cwnd = timeout ? f->mss : f->ssthresh;
}

/* Returns false when the flow was freed. */
static bool on_ack(um_ptcp_t *t, flow_t *f, const um_ip_pkt_t *pkt, uint64_t now)
{
    uint32_t ack = pkt->tcp.ack, seq = pkt->tcp.seq;
    if (um_seq_lt(f->snd_max, ack)) { /* acks what we never sent */
        send_ack(t, f);
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
            rtt_sample(t, f, now);
        }
        /* New data acknowledged: the path works, so drop the backoff (as
         * Linux does) rather than wait for a sample that Karn's rule keeps
         * from coming while everything in flight is a retransmission. */
        if (f->retries) rto_reset(t, f);
        grow(f, acked);
        f->retries = 0;
        f->dupacks = 0;
        f->rto_at = f->snd_una == f->snd_nxt ? 0 : now + f->rto_ms;
    } else if (ack == f->snd_una && pkt->payload_len == 0 && f->snd_una != f->snd_max &&
               wnd == f->snd_wnd && !(pkt->tcp.flags & UM_TCP_FIN)) {
        if (++f->dupacks == 3) { /* fast retransmit (RFC 5681 3.2, simplified) */
            f->rtt_on = false;
            loss(f, false);
            retransmit_one(t, f);
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
        case UM_PTCP_LAST_ACK: kill_flow(t, f, 0, false); return false;
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
    return alive(f, id);
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
    send_ack(t, f);
    uint32_t id = f->id;
    bool tell = f->attached;
    maybe_detach(f);
    if (tell && t->ops.on_fin) t->ops.on_fin(t->ctx, id);
    return alive(f, id);
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
        send_ack(t, f);
        return true;
    }
    /* trim what we already have */
    if (um_seq_lt(seq, f->rcv_nxt)) {
        uint32_t d = f->rcv_nxt - seq;
        if (d > len || (d == len && !fin)) {
            send_ack(t, f); /* duplicate: tell the app where we are */
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
        send_ack(t, f);
        return true;
    }
    if (len > wnd - off) {
        len = wnd - off;
        fin = false;
        t->st.drop_window++;
    }
    if (off > 0) {
        ooo_store(t, f, seq, data, len, fin);
        send_ack(t, f); /* duplicate ACK: the app retransmits the hole */
        return true;
    }
    uint32_t id = f->id;
    if (!deliver(t, f, data, len)) return false;
    bool had_ooo = f->ooo != NULL;
    if (!fin && had_ooo && !ooo_drain(t, f, &fin)) return false;
    if (fin) return got_fin(t, f, now);
    if (!alive(f, id)) return false;
    f->ack_pending++;
    if (t->cfg.delack_ms == 0 || f->ack_pending >= 2 || had_ooo)
        send_ack(t, f);
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
                flow_release(t, &t->flows[i]);
                break;
            }
        }
    }
    flow_t *f = t->nflows < t->cfg.max_flows ? flow_alloc(t, k) : NULL;
    if (!f) {
        t->st.flows_full++;
        um_log_limited(&t->rl, 5, 1000, UM_LOG_DEBUG, "ptcp: flow table full, RST");
        rst_for(t, pkt);
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
    if (!alive(f, id)) return 0; /* aborted from inside on_open */
    if (r < 0) {
        t->st.flows_refused++;
        f->attached = false;
        kill_flow(t, f, r, true);
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
    key_from_pkt(&k, pkt);
    flow_t *f = lookup(t, &k);

    if (f && f->state == UM_PTCP_TIME_WAIT && (fl & UM_TCP_SYN) && !(fl & UM_TCP_ACK) &&
        um_seq_lt(f->rcv_nxt, th->seq)) {
        flow_release(t, f); /* new incarnation of the same 4-tuple (RFC 6191 style) */
        f = NULL;
    }
    if (!f) {
        if ((fl & UM_TCP_SYN) && !(fl & (UM_TCP_ACK | UM_TCP_RST)))
            return new_flow(t, pkt, &k, now);
        t->st.drop_nomatch++;
        rst_for(t, pkt);
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
            kill_flow(t, f, UM_EPIPE, false);
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
            kill_flow(t, f, UM_EPIPE, false);
            return 0;
        }
        t->st.drop_bad++;
        return UM_EPROTO;
    }
    if (fl & UM_TCP_SYN) {
        if (f->state == UM_PTCP_SYN_RCVD && th->seq == f->irs) {
            send_seg(t, f, f->iss, UM_TCP_SYN | UM_TCP_ACK, NULL, 0); /* our SYN-ACK was lost */
            return 0;
        }
        send_ack(t, f); /* challenge ACK (RFC 5961 4.2) */
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
            rst_for(t, pkt);
            t->st.drop_bad++;
            return UM_EPROTO;
        }
        f->state = UM_PTCP_ESTABLISHED;
        f->snd_una = f->snd_nxt = f->snd_max = f->iss + 1;
        f->rto_at = 0;
        f->retries = 0;
        if (f->rtt_on) {
            f->rtt_on = false;
            rtt_sample(t, f, now);
        }
        f->snd_wnd = (uint32_t)th->window << f->snd_ws;
        f->snd_wl1 = th->seq;
        f->snd_wl2 = th->ack; /* a FIN asked for meanwhile goes out in try_send */
    }
    if (!on_ack(t, f, pkt, now)) return 0;
    if (!on_data(t, f, pkt, p, now)) return 0;
    if (!alive(f, id)) return 0;
    try_send(t, f, now, false);
    if (f->want_writable && um_ptcp_send_space(t, id) > 0) {
        f->want_writable = false;
        if (t->ops.on_writable) t->ops.on_writable(t->ctx, id);
    }
    return 0;
}

/* ---- timers --------------------------------------------------------------- */

static void flow_timers(um_ptcp_t *t, flow_t *f, uint64_t now)
{
    uint32_t id = f->id;
    if (f->close_at && now >= f->close_at) {
        if (f->state == UM_PTCP_SYN_PENDING) {
            kill_flow(t, f, UM_ETIMEDOUT, true);
            return;
        }
        if (f->state == UM_PTCP_TIME_WAIT) {
            flow_release(t, f);
            return;
        }
        f->close_at = 0;
    }
    if (now > f->last_act && now - f->last_act >= t->cfg.idle_timeout_ms &&
        f->state != UM_PTCP_TIME_WAIT) {
        kill_flow(t, f, UM_ETIMEDOUT, true);
        return;
    }
    if (f->rto_at && now >= f->rto_at && f->snd_wnd == 0 && f->state != UM_PTCP_SYN_RCVD &&
        f->snd_una == f->buf_seq && !f->fin_sent) {
        /* The app shrank its window to zero under data in flight: resending
         * into it proves nothing. Take everything back and probe instead
         * (persist timer); a live app answers every probe, so this never
         * counts toward max_retries, and a dead one ends by idle timeout. */
        f->snd_nxt = f->snd_una;
        f->rto_at = 0;
        f->rtt_on = false;
        try_send(t, f, now, false);
    }
    if (f->rto_at && now >= f->rto_at) {
        if (++f->retries > t->cfg.max_retries) {
            kill_flow(t, f, UM_ETIMEDOUT, true);
            return;
        }
        f->rto_ms = f->rto_ms * 2 > t->cfg.rto_max_ms ? t->cfg.rto_max_ms : f->rto_ms * 2;
        f->rto_at = now + f->rto_ms;
        f->rtt_on = false; /* Karn: no sample from a retransmitted segment */
        if (f->state == UM_PTCP_SYN_RCVD) {
            t->st.retransmits++;
            send_seg(t, f, f->iss, UM_TCP_SYN | UM_TCP_ACK, NULL, 0);
        } else {
            loss(f, true);
            f->snd_nxt = f->snd_una; /* go back: resend from the first unacked byte */
            try_send(t, f, now, true);
        }
    }
    if (!alive(f, id)) return;
    if (f->persist_at && now >= f->persist_at) {
        /* zero-window probe: an old sequence number makes the app answer
         * with its current window (as Linux does) */
        send_seg(t, f, f->snd_una - 1, UM_TCP_ACK, NULL, 0);
        f->persist_ms =
            f->persist_ms * 2 > t->cfg.rto_max_ms ? t->cfg.rto_max_ms : f->persist_ms * 2;
        f->persist_at = now + f->persist_ms;
    }
    if (f->delack_at && now >= f->delack_at) send_ack(t, f);
}

void um_ptcp_tick(um_ptcp_t *t, uint64_t now)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->cfg.max_flows; i++)
        if (t->flows[i].id) flow_timers(t, &t->flows[i], now);
}

static uint64_t min_nz(uint64_t a, uint64_t b)
{
    if (!b) return a;
    return b < a ? b : a;
}

uint64_t um_ptcp_next_timer(const um_ptcp_t *t)
{
    uint64_t m = UINT64_MAX;
    for (uint32_t i = 0; t && i < t->cfg.max_flows; i++) {
        const flow_t *f = &t->flows[i];
        if (!f->id) continue;
        m = min_nz(m, f->close_at);
        m = min_nz(m, f->rto_at);
        m = min_nz(m, f->persist_at);
        m = min_nz(m, f->delack_at);
        if (f->state != UM_PTCP_TIME_WAIT) m = min_nz(m, f->last_act + t->cfg.idle_timeout_ms);
    }
    return m;
}

/* ---- upper-layer calls ---------------------------------------------------- */

int um_ptcp_accept(um_ptcp_t *t, uint32_t id, size_t credit, uint64_t now)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    if (f->state != UM_PTCP_SYN_PENDING) return UM_EINVAL;
    f->credit = credit > MAX_CREDIT ? MAX_CREDIT : credit;
    f->state = UM_PTCP_SYN_RCVD;
    f->close_at = 0;
    f->rcv_adv = 0;
    send_seg(t, f, f->iss, UM_TCP_SYN | UM_TCP_ACK, NULL, 0);
    f->snd_nxt = f->snd_max = f->iss + 1;
    f->rtt_on = true;
    f->rtt_seq = f->iss + 1;
    f->rtt_start = now;
    f->rto_at = now + f->rto_ms;
    return 0;
}

size_t um_ptcp_send_space(const um_ptcp_t *t, uint32_t id)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || f->shut) return 0;
    size_t a = um_buf_space(&f->sndbuf);
    size_t g = t->cfg.max_bytes - t->st.buffered;
    return a < g ? a : g;
}

int um_ptcp_send(um_ptcp_t *t, uint32_t id, const uint8_t *p, size_t n, uint64_t now)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    if (f->shut) return UM_EPIPE;
    if (n && !p) return UM_EINVAL;
    size_t take = um_ptcp_send_space(t, id);
    if (take > n) take = n;
    if (take > INT32_MAX) take = INT32_MAX;
    if (take < n) f->want_writable = true;
    if (take && um_buf_append(&f->sndbuf, p, take) != 0) {
        f->want_writable = true;
        return 0;
    }
    t->st.buffered += take;
    try_send(t, f, now, false);
    return (int)take;
}

int um_ptcp_credit(um_ptcp_t *t, uint32_t id, size_t n, uint64_t now)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    size_t before = f->credit;
    f->credit = n > MAX_CREDIT - before ? MAX_CREDIT : before + n;
    bool synced = f->state >= UM_PTCP_ESTABLISHED && f->state != UM_PTCP_CLOSE_WAIT &&
                  f->state != UM_PTCP_LAST_ACK && f->state != UM_PTCP_TIME_WAIT && !f->got_fin;
    if (!synced) return 0;
    /* Window update when the app would otherwise stall (receiver-side silly
     * window avoidance, RFC 9293 3.8.6.2.2): the window was under one MSS
     * and now is at least one, or it grew by two MSS. */
    int32_t adv = (int32_t)(f->rcv_adv - f->rcv_nxt);
    size_t old_wnd = adv > 0 ? (size_t)adv : 0;
    size_t cap = (size_t)65535u << f->rcv_ws;
    size_t new_wnd = f->credit > cap ? cap : f->credit;
    new_wnd &= ~(((size_t)1 << f->rcv_ws) - 1);
    if ((old_wnd < f->mss && new_wnd >= f->mss) || new_wnd >= old_wnd + 2u * f->mss ||
        (old_wnd == 0 && new_wnd > 0))
        send_ack(t, f);
    return 0;
}

int um_ptcp_shutdown(um_ptcp_t *t, uint32_t id, uint64_t now)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    if (f->state == UM_PTCP_SYN_PENDING) return UM_EINVAL;
    if (f->shut) return 0;
    f->shut = true;
    maybe_detach(f);
    try_send(t, f, now, false);
    return 0;
}

int um_ptcp_abort(um_ptcp_t *t, uint32_t id)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    f->attached = false;
    if (f->state == UM_PTCP_SYN_PENDING) t->st.flows_refused++;
    kill_flow(t, f, 0, true);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

um_ptcp_t *um_ptcp_new(const um_ptcp_config_t *cfg, const um_ptcp_ops_t *ops, void *ctx)
{
    if (!ops || !ops->output) return NULL;
    um_ptcp_config_t c;
    if (cfg)
        c = *cfg;
    else
        memset(&c, 0, sizeof(c));
    um_ptcp_config_defaults(&c);
    if (c.max_flows > 65535 || c.mtu < 1280 || c.wscale > MAX_WSCALE || c.sndbuf > INT32_MAX ||
        c.rto_min_ms > c.rto_max_ms)
        return NULL;
    um_ptcp_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->cfg = c;
    t->ops = *ops;
    t->ctx = ctx;
    t->nbuckets = 16;
    while (t->nbuckets < c.max_flows * 2)
        t->nbuckets <<= 1;
    t->flows = calloc(c.max_flows, sizeof(*t->flows));
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    t->freelist = calloc(c.max_flows, sizeof(*t->freelist));
    t->pkt_cap = (size_t)c.mtu + 64;
    t->pkt = malloc(t->pkt_cap);
    if (!t->flows || !t->buckets || !t->freelist || !t->pkt) {
        um_ptcp_free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < c.max_flows; i++)
        t->freelist[i] = c.max_flows - 1 - i;
    t->nfree = c.max_flows;
    randombytes_buf(t->hkey, sizeof(t->hkey));
    return t;
}

void um_ptcp_free(um_ptcp_t *t)
{
    if (!t) return;
    if (t->flows && t->freelist && t->buckets) {
        for (uint32_t i = 0; i < t->cfg.max_flows; i++)
            if (t->flows[i].id) flow_release(t, &t->flows[i]);
    }
    free(t->flows);
    free(t->buckets);
    free(t->freelist);
    free(t->pkt);
    free(t);
}

const um_ptcp_stats_t *um_ptcp_stats(const um_ptcp_t *t)
{
    return &t->st;
}

um_ptcp_state_t um_ptcp_state(const um_ptcp_t *t, uint32_t id)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    return f ? (um_ptcp_state_t)f->state : UM_PTCP_CLOSED;
}

uint32_t um_ptcp_flow_count(const um_ptcp_t *t)
{
    return t ? t->nflows : 0;
}
