/* Partial TCP stack: terminates app flows locally (see ptcp.h and
 * docs/internals/tun.md). RFC 9293 (TCP), RFC 6298 (RTO), RFC 7323 (window
 * scale), RFC 5681 (fast retransmit on three duplicate ACKs).
 *
 * This file: configuration, the flow table, the end of a flow, the timers, the
 * upper-layer calls and the lifecycle. The rest: ptcp_out.c (building and
 * sending segments, retransmission, RTT and congestion window), ptcp_in.c
 * (the receive path: ACKs, data, reassembly, new flows, um_ptcp_input). The
 * shared state is in ptcp_int.h. */
#include "tun/ptcp_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

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

void ptcp_key_from_pkt(flow_key_t *k, const um_ip_pkt_t *pkt)
{
    memset(k, 0, sizeof(*k));
    k->version = pkt->version;
    k->sport = pkt->sport;
    k->dport = pkt->dport;
    size_t alen = pkt->version == 4 ? 4 : 16;
    memcpy(k->src, pkt->src, alen);
    memcpy(k->dst, pkt->dst, alen);
}

flow_t *ptcp_lookup(um_ptcp_t *t, const flow_key_t *k)
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

bool ptcp_alive(const flow_t *f, uint32_t id)
{
    return f->id == id;
}

flow_t *ptcp_flow_alloc(um_ptcp_t *t, const flow_key_t *k)
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

void ptcp_flow_release(um_ptcp_t *t, flow_t *f)
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

/* ---- flow end ------------------------------------------------------------- */

/* Frees the flow, optionally RSTs the app, and tells the upper layer (after
 * the free, so a call back with the id gets UM_ENOENT). */
void ptcp_kill_flow(um_ptcp_t *t, flow_t *f, int err, bool rst)
{
    /* snd_max: what the app expects next if everything arrived (an RST
     * whose sequence number is not exactly that draws a challenge ACK, and
     * the RST we send for that ACK then carries the exact number) */
    if (rst) ptcp_send_seg(t, f, f->snd_max, UM_TCP_RST | UM_TCP_ACK, NULL, 0);
    uint32_t id = f->id;
    bool tell = f->attached;
    ptcp_flow_release(t, f);
    if (tell && t->ops.on_reset) t->ops.on_reset(t->ctx, id, err);
}

void ptcp_maybe_detach(flow_t *f)
{
    if (f->got_fin && f->shut) f->attached = false;
}

/* ---- timers --------------------------------------------------------------- */

static void flow_timers(um_ptcp_t *t, flow_t *f, uint64_t now)
{
    uint32_t id = f->id;
    if (f->close_at && now >= f->close_at) {
        if (f->state == UM_PTCP_SYN_PENDING) {
            ptcp_kill_flow(t, f, UM_ETIMEDOUT, true);
            return;
        }
        if (f->state == UM_PTCP_TIME_WAIT) {
            ptcp_flow_release(t, f);
            return;
        }
        f->close_at = 0;
    }
    if (now > f->last_act && now - f->last_act >= t->cfg.idle_timeout_ms &&
        f->state != UM_PTCP_TIME_WAIT) {
        ptcp_kill_flow(t, f, UM_ETIMEDOUT, true);
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
        ptcp_try_send(t, f, now, false);
    }
    if (f->rto_at && now >= f->rto_at) {
        if (++f->retries > t->cfg.max_retries) {
            ptcp_kill_flow(t, f, UM_ETIMEDOUT, true);
            return;
        }
        f->rto_ms = f->rto_ms * 2 > t->cfg.rto_max_ms ? t->cfg.rto_max_ms : f->rto_ms * 2;
        f->rto_at = now + f->rto_ms;
        f->rtt_on = false; /* Karn: no sample from a retransmitted segment */
        if (f->state == UM_PTCP_SYN_RCVD) {
            t->st.retransmits++;
            ptcp_send_seg(t, f, f->iss, UM_TCP_SYN | UM_TCP_ACK, NULL, 0);
        } else {
            ptcp_loss(f, true);
            f->snd_nxt = f->snd_una; /* go back: resend from the first unacked byte */
            ptcp_try_send(t, f, now, true);
        }
    }
    if (!ptcp_alive(f, id)) return;
    if (f->persist_at && now >= f->persist_at) {
        /* zero-window probe: an old sequence number makes the app answer
         * with its current window (as Linux does) */
        ptcp_send_seg(t, f, f->snd_una - 1, UM_TCP_ACK, NULL, 0);
        f->persist_ms =
            f->persist_ms * 2 > t->cfg.rto_max_ms ? t->cfg.rto_max_ms : f->persist_ms * 2;
        f->persist_at = now + f->persist_ms;
    }
    if (f->delack_at && now >= f->delack_at) ptcp_send_ack(t, f);
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
    ptcp_send_seg(t, f, f->iss, UM_TCP_SYN | UM_TCP_ACK, NULL, 0);
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
    ptcp_try_send(t, f, now, false);
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
        ptcp_send_ack(t, f);
    return 0;
}

int um_ptcp_shutdown(um_ptcp_t *t, uint32_t id, uint64_t now)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    if (f->state == UM_PTCP_SYN_PENDING) return UM_EINVAL;
    if (f->shut) return 0;
    f->shut = true;
    ptcp_maybe_detach(f);
    ptcp_try_send(t, f, now, false);
    return 0;
}

int um_ptcp_abort(um_ptcp_t *t, uint32_t id)
{
    flow_t *f = t ? by_id(t, id) : NULL;
    if (!f || !f->attached) return UM_ENOENT;
    f->attached = false;
    if (f->state == UM_PTCP_SYN_PENDING) t->st.flows_refused++;
    ptcp_kill_flow(t, f, 0, true);
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
            if (t->flows[i].id) ptcp_flow_release(t, &t->flows[i]);
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
