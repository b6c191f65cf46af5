/* The reliability layer (docs/PROTOCOL.md 12, docs/internals/rel.md).
 *
 * Sender: the send buffer holds the stream from snd_una (the peer's
 * cumulative ack) to snd_end; [snd_una, snd_nxt) has been sent at least
 * once. Every ack-eliciting packet in flight has a record (packet number,
 * send time, the one stream range it carried); an ack removes records,
 * loss detection moves their ranges to `rexmit`, which output() drains
 * before new data, re-cut to whatever opportunity comes.
 *
 * Receiver: a ring of rcv_max bytes holds offsets [rcv_read, rcv_read +
 * rcv_max): read-ready bytes up to rcv_nxt, then out-of-order ranges (`have`).
 * A packet whose data could not be kept whole (window, table bound) is not
 * acked by packet number, so the sender resends what was dropped.
 *
 * Every input is parsed and checked against the state before anything
 * changes, so a packet refused with UM_EPROTO leaves no trace. */
#include "transport/rel.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

#define MSS         1200u /* congestion window unit (bytes) */
#define CWND_INIT   (10u * MSS)
#define CWND_MIN    (4u * MSS)
#define PEER_WND0   4096u /* what a peer accepts before its first ack (rcv_max >= this) */
#define SENT_MAX    4096u /* records of packets in flight */
#define REXMIT_MAX  4096u /* pending resend ranges (merged beyond) */
#define HAVE_MAX    64u   /* out-of-order ranges kept by the receiver */
#define RXPN_MAX    32u   /* packet number ranges remembered for acks */
#define PKT_THRESH  3u    /* fast retransmit: acked this many packets later (at first) */
#define REORDER_MAX 64u   /* the threshold grows with each loss found spurious, up to this */
#define LOST_RING   128u  /* packet numbers declared lost, remembered to find spurious losses */
#define BETA_PCT    70u   /* window kept on a loss (CUBIC beta, RFC 9438) */
#define PN_JUMP_MAX (1u << 20) /* a packet number further ahead than this is garbage */
#define NONE        UINT64_MAX

typedef struct {
    uint64_t lo, hi; /* [lo, hi) */
} range_t;

typedef struct {
    uint64_t pn, t;
    uint64_t off; /* stream range [off, off + len); the FIN is one byte at fin_off */
    uint32_t len, size;
    bool ping; /* no stream range (len 0) */
} sent_t;

struct um_rel {
    um_rel_cfg_t cfg;
    bool dead;

    /* send side */
    uint8_t *sbuf; /* ring of snd_max bytes (from the first write): offset o at o % snd_max */
    uint64_t snd_una, snd_nxt, snd_end, fin_off, peer_limit;
    bool fin_acked;
    sent_t *sent;
    size_t n_sent, sent_cap;
    range_t *rexmit;
    size_t n_rexmit, rexmit_cap;
    uint64_t next_pn, largest_acked, recovery_pn;
    bool any_acked;
    uint64_t lost_pn[LOST_RING];    /* NONE: free */
    uint32_t lost_depth[LOST_RING]; /* largest acked - pn when it was declared lost */
    size_t lost_at;
    uint32_t reorder; /* packet threshold in use */
    uint32_t undo_cwnd, undo_ssthresh;
    uint64_t undo_pn; /* the loss that caused the last reduction */
    uint32_t cwnd, ssthresh, in_flight;
    uint32_t srtt, rttvar, latest_rtt, rto, backoff;
    bool have_rtt;
    uint64_t rto_at, last_elicit_tx;

    /* receive side */
    uint8_t *rbuf; /* ring of rcv_max bytes, allocated with the first data */
    uint64_t rcv_read, rcv_nxt, rcv_fin, adv_limit;
    range_t have[HAVE_MAX];
    size_t n_have;
    range_t rxpn[RXPN_MAX]; /* packet numbers received, highest first, [lo, hi] inclusive */
    size_t n_rxpn;
    uint64_t largest_rx_t, last_rx, last_data_rx;
    bool ack_pending, peer_more;

    um_rel_stats_t st;
};

/* ---- wire ---------------------------------------------------------------- */

int um_rel_pkt_parse(const uint8_t *p, size_t n, um_rel_pkt_t *o)
{
    memset(o, 0, sizeof(*o));
    if (n < UM_REL_HDR_LEN) return UM_EPROTO;
    uint8_t f = p[0];
    if ((f & 0xe0) != UM_REL_VERSION || (f & 0x10)) return UM_EPROTO;
    if ((f & UM_REL_F_FIN) && !(f & UM_REL_F_DATA)) return UM_EPROTO;
    if (!(f & (UM_REL_F_ACK | UM_REL_F_DATA))) return UM_EPROTO;
    o->flags = f;
    o->pn = um_ld32(p + 1);
    size_t at = UM_REL_HDR_LEN;
    if (f & UM_REL_F_ACK) {
        if (n - at < UM_REL_ACK_MIN_LEN) return UM_EPROTO;
        o->cum = um_ld32(p + at);
        o->wnd = um_ld32(p + at + 4);
        o->largest = um_ld32(p + at + 8);
        o->delay_ms = um_ld16(p + at + 12);
        o->first = um_ld16(p + at + 14);
        o->n_ranges = p[at + 16];
        at += UM_REL_ACK_MIN_LEN;
        if (o->wnd > UM_REL_BUF_MAX) return UM_EPROTO;
        if ((n - at) / 4 < o->n_ranges) return UM_EPROTO;
        for (unsigned i = 0; i < o->n_ranges; i++, at += 4) {
            o->gap[i] = um_ld16(p + at);
            o->len[i] = um_ld16(p + at + 2);
        }
    }
    if (f & UM_REL_F_DATA) {
        if (n - at < UM_REL_DATA_HDR_LEN) return UM_EPROTO;
        o->off = um_ld32(p + at);
        at += UM_REL_DATA_HDR_LEN;
        o->data = p + at;
        o->data_len = n - at;
        at = n;
    }
    return at == n ? 0 : UM_EPROTO;
}

/* The 64-bit value nearest `near` whose low 32 bits are v; false below 0. */
static bool unwrap(uint64_t near, uint32_t v, uint64_t *out)
{
    int64_t d = (int32_t)(v - (uint32_t)near);
    if (d < 0 && (uint64_t)-d > near) return false;
    *out = near + (uint64_t)d;
    return true;
}

/* ---- small range tables -------------------------------------------------- */

/* Adds [lo, hi) to an ascending, merged table; beyond max the two nearest
 * neighbours merge (covering the gap: more is resent, nothing is lost). */
static int ranges_add(range_t **tab, size_t *n, size_t *cap, size_t max, uint64_t lo, uint64_t hi)
{
    if (lo >= hi) return 0;
    range_t *t = *tab;
    size_t i = 0;
    while (i < *n && t[i].hi < lo)
        i++;
    if (i < *n && t[i].lo <= hi) { /* overlaps or touches: merge forward */
        if (lo < t[i].lo) t[i].lo = lo;
        if (hi > t[i].hi) t[i].hi = hi;
        size_t j = i + 1;
        while (j < *n && t[j].lo <= t[i].hi) {
            if (t[j].hi > t[i].hi) t[i].hi = t[j].hi;
            j++;
        }
        memmove(t + i + 1, t + j, (*n - j) * sizeof(*t));
        *n -= j - i - 1;
        return 0;
    }
    if (*n == *cap) {
        if (*n >= max) { /* merge into the neighbour */
            if (i == *n) i--;
            if (lo < t[i].lo) t[i].lo = lo;
            if (hi > t[i].hi) t[i].hi = hi;
            return 0;
        }
        size_t nc = *cap ? *cap * 2 : 16;
        range_t *q = realloc(t, nc * sizeof(*t));
        if (!q) return UM_ENOMEM;
        *tab = t = q;
        *cap = nc;
    }
    memmove(t + i + 1, t + i, (*n - i) * sizeof(*t));
    t[i] = (range_t){lo, hi};
    (*n)++;
    return 0;
}

/* Removes [lo, hi) from an ascending table (a split may need one more slot:
 * when there is none, the upper part stays, which only resends more). */
static void ranges_sub(range_t *t, size_t *n, size_t cap, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < *n && lo < hi;) {
        range_t *r = &t[i];
        if (r->hi <= lo) {
            i++;
            continue;
        }
        if (r->lo >= hi) break;
        if (lo <= r->lo && hi >= r->hi) { /* whole */
            memmove(r, r + 1, (*n - i - 1) * sizeof(*t));
            (*n)--;
            continue;
        }
        if (lo <= r->lo) { /* head */
            r->lo = hi;
            break;
        }
        if (hi >= r->hi) { /* tail */
            r->hi = lo;
            i++;
            continue;
        }
        if (*n < cap) { /* middle: split */
            memmove(r + 2, r + 1, (*n - i - 1) * sizeof(*t));
            r[1] = (range_t){hi, r->hi};
            r->hi = lo;
            (*n)++;
        }
        break;
    }
}

/* ---- lifecycle ------------------------------------------------------------ */

int um_rel_new(const um_rel_cfg_t *cfg, uint64_t now_ms, um_rel_t **out)
{
    *out = NULL;
    um_rel_cfg_t c = *cfg;
    if (!c.snd_max) c.snd_max = UM_REL_SND_MAX_DEFAULT;
    if (!c.rcv_max) c.rcv_max = UM_REL_RCV_MAX_DEFAULT;
    if (!c.rto_min_ms) c.rto_min_ms = UM_REL_RTO_MIN_DEFAULT;
    if (!c.rto_max_ms) c.rto_max_ms = UM_REL_RTO_MAX_DEFAULT;
    if (!c.idle_timeout_ms) c.idle_timeout_ms = UM_REL_IDLE_DEFAULT;
    if (c.snd_max > UM_REL_BUF_MAX || c.rcv_max > UM_REL_BUF_MAX || c.rcv_max < PEER_WND0 ||
        c.rto_min_ms > c.rto_max_ms)
        return UM_EINVAL;
    um_rel_t *r = calloc(1, sizeof(*r));
    if (!r) return UM_ENOMEM;
    r->cfg = c;
    r->fin_off = NONE;
    r->rcv_fin = NONE;
    r->peer_limit = PEER_WND0;
    r->cwnd = CWND_INIT;
    r->ssthresh = UINT32_MAX;
    r->rto = UM_REL_RTO_INITIAL < c.rto_min_ms   ? c.rto_min_ms
             : UM_REL_RTO_INITIAL > c.rto_max_ms ? c.rto_max_ms
                                                 : UM_REL_RTO_INITIAL;
    r->rto_at = NONE;
    r->recovery_pn = NONE;
    r->reorder = PKT_THRESH;
    r->undo_pn = NONE;
    for (size_t i = 0; i < LOST_RING; i++)
        r->lost_pn[i] = NONE;
    r->last_rx = r->last_data_rx = r->last_elicit_tx = now_ms;
    r->adv_limit = c.rcv_max;
    *out = r;
    return 0;
}

void um_rel_free(um_rel_t *r)
{
    if (!r) return;
    if (r->sbuf) sodium_memzero(r->sbuf, r->cfg.snd_max);
    free(r->sbuf);
    if (r->rbuf) sodium_memzero(r->rbuf, r->cfg.rcv_max);
    free(r->rbuf);
    free(r->sent);
    free(r->rexmit);
    free(r);
}

/* ---- application side ---------------------------------------------------- */

static void ring_put(uint8_t *ring, size_t size, uint64_t off, const uint8_t *p, size_t n)
{
    size_t at = (size_t)(off % size), first = size - at < n ? size - at : n;
    memcpy(ring + at, p, first);
    memcpy(ring, p + first, n - first);
}

static void ring_get(const uint8_t *ring, size_t size, uint64_t off, uint8_t *p, size_t n)
{
    size_t at = (size_t)(off % size), first = size - at < n ? size - at : n;
    memcpy(p, ring + at, first);
    memcpy(p + first, ring, n - first);
}

int um_rel_write(um_rel_t *r, const uint8_t *p, size_t n)
{
    if (r->dead) return UM_ETIMEDOUT;
    if (r->fin_off != NONE) return UM_EPIPE;
    if (n > r->cfg.snd_max - um_rel_queued(r)) return UM_ENOSPC;
    if (!n) return 0;
    if (!r->sbuf && !(r->sbuf = malloc(r->cfg.snd_max))) return UM_ENOMEM;
    ring_put(r->sbuf, r->cfg.snd_max, r->snd_end, p, n);
    r->snd_end += n;
    return 0;
}

int um_rel_shutdown(um_rel_t *r)
{
    if (r->dead) return UM_ETIMEDOUT;
    if (r->fin_off == NONE) r->fin_off = r->snd_end;
    return 0;
}

size_t um_rel_queued(const um_rel_t *r)
{
    /* snd_una passes snd_end by one once the FIN is acked */
    return r->snd_una >= r->snd_end ? 0 : (size_t)(r->snd_end - r->snd_una);
}

size_t um_rel_space(const um_rel_t *r)
{
    return r->dead || r->fin_off != NONE ? 0 : r->cfg.snd_max - um_rel_queued(r);
}

static uint64_t rcv_limit(const um_rel_t *r)
{
    return r->rcv_read + r->cfg.rcv_max;
}

int um_rel_read(um_rel_t *r, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    uint64_t ready = r->rcv_nxt - r->rcv_read;
    if (ready == 0) {
        if (r->rcv_fin != NONE && r->rcv_read == r->rcv_fin) return UM_EPIPE;
        return r->dead ? UM_ETIMEDOUT : 0;
    }
    size_t k = ready < cap ? (size_t)ready : cap;
    ring_get(r->rbuf, r->cfg.rcv_max, r->rcv_read, out, k);
    r->rcv_read += k;
    r->st.data_delivered += k;
    *n = k;
    return 0;
}

/* ---- timers and congestion ------------------------------------------------ */

static uint32_t keepalive_ms(const um_rel_t *r)
{
    return r->cfg.idle_timeout_ms / 3 ? r->cfg.idle_timeout_ms / 3 : 1;
}

static uint32_t cur_rto(const um_rel_t *r)
{
    uint64_t v = (uint64_t)r->rto << (r->backoff < 16 ? r->backoff : 16);
    return v > r->cfg.rto_max_ms ? r->cfg.rto_max_ms : (uint32_t)v;
}

static void rtt_sample(um_rel_t *r, uint32_t rtt)
{
    if (rtt == 0) rtt = 1;
    r->latest_rtt = rtt;
    if (!r->have_rtt) { /* RFC 6298 2.2 */
        r->srtt = rtt;
        r->rttvar = rtt / 2;
        r->have_rtt = true;
    } else { /* 2.3: beta 1/4, alpha 1/8 */
        uint32_t d = r->srtt > rtt ? r->srtt - rtt : rtt - r->srtt;
        r->rttvar = (3 * r->rttvar + d) / 4;
        r->srtt = (7 * r->srtt + rtt) / 8;
    }
    uint64_t rto = (uint64_t)r->srtt + (4 * r->rttvar > 1 ? 4 * r->rttvar : 1);
    if (rto < r->cfg.rto_min_ms) rto = r->cfg.rto_min_ms;
    if (rto > r->cfg.rto_max_ms) rto = r->cfg.rto_max_ms;
    r->rto = (uint32_t)rto;
}

static uint32_t cwnd_cap(const um_rel_t *r)
{
    uint64_t c = 2 * (uint64_t)r->cfg.snd_max + 64 * MSS;
    return c > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)c;
}

/* A loss of packet pn: one window reduction per flight (NewReno). */
static void congestion_event(um_rel_t *r, uint64_t pn)
{
    if (r->recovery_pn != NONE && pn <= r->recovery_pn) return;
    r->undo_cwnd = r->cwnd;
    r->undo_ssthresh = r->ssthresh;
    r->undo_pn = pn;
    uint32_t c = (uint32_t)((uint64_t)r->cwnd * BETA_PCT / 100);
    r->ssthresh = c > CWND_MIN ? c : CWND_MIN;
    r->cwnd = r->ssthresh;
    r->recovery_pn = r->next_pn ? r->next_pn - 1 : 0;
}

static void grow(um_rel_t *r, const sent_t *s)
{
    if (r->recovery_pn != NONE && s->pn <= r->recovery_pn) return;
    uint64_t c = r->cwnd;
    if (c < r->ssthresh)
        c += s->size;
    else
        c += (uint64_t)MSS * s->size / c ? (uint64_t)MSS * s->size / c : 1;
    r->cwnd = c > cwnd_cap(r) ? cwnd_cap(r) : (uint32_t)c;
}

/* A record's packet is lost: its stream range (the FIN byte included in
 * len) is to be sent again. */
static int lose(um_rel_t *r, const sent_t *s)
{
    r->in_flight -= s->size;
    if (s->ping) return 0;
    uint64_t lo = s->off < r->snd_una ? r->snd_una : s->off, hi = s->off + s->len;
    return ranges_add(&r->rexmit, &r->n_rexmit, &r->rexmit_cap, REXMIT_MAX, lo, hi);
}

int um_rel_poll(um_rel_t *r, uint64_t now)
{
    if (r->dead) return UM_ETIMEDOUT;
    if (now >= r->last_rx && now - r->last_rx >= r->cfg.idle_timeout_ms) {
        r->dead = true;
        return UM_ETIMEDOUT;
    }
    if (r->rto_at != NONE && now >= r->rto_at) {
        r->rto_at = NONE;
        if (r->n_sent) { /* RFC 6298 5.4-5.6, RFC 5681 3.1 */
            r->st.rto_fires++;
            uint32_t flight = r->in_flight;
            for (size_t i = 0; i < r->n_sent; i++) {
                int e = lose(r, &r->sent[i]);
                if (e) return e;
            }
            r->n_sent = 0;
            r->in_flight = 0;
            uint32_t th = (uint32_t)((uint64_t)flight * BETA_PCT / 100);
            r->ssthresh = th > CWND_MIN ? th : CWND_MIN;
            r->cwnd = CWND_MIN;
            r->recovery_pn = r->next_pn ? r->next_pn - 1 : 0;
            if (r->backoff < 16) r->backoff++;
        }
    }
    return 0;
}

/* ---- output --------------------------------------------------------------- */

static bool fin_unsent(const um_rel_t *r)
{
    return r->fin_off != NONE && r->snd_nxt <= r->fin_off;
}

/* Something to send in a data segment now (windows permitting). */
static bool data_ready(const um_rel_t *r)
{
    if (r->n_sent >= SENT_MAX || r->in_flight >= r->cwnd) return false;
    if (r->n_rexmit) return true;
    if (r->snd_nxt < r->snd_end && r->snd_nxt < r->peer_limit) return true;
    return fin_unsent(r) && r->snd_nxt == r->snd_end;
}

static bool ping_due(const um_rel_t *r, uint64_t now)
{
    if (r->n_sent) return false;
    uint32_t ka = keepalive_ms(r);
    if (now >= r->last_rx + ka && now >= r->last_elicit_tx + ka) return true;
    /* persist: the peer's window is shut and no packet is out to reopen it */
    return r->snd_nxt < r->snd_end && r->snd_nxt >= r->peer_limit &&
           now >= r->last_elicit_tx + cur_rto(r);
}

static bool wnd_update_due(const um_rel_t *r)
{
    if (!r->st.pkts_recv) return false;
    uint64_t lim = rcv_limit(r);
    return lim > r->adv_limit && lim - r->adv_limit >= r->cfg.rcv_max / 4;
}

bool um_rel_wants_output(const um_rel_t *r, uint64_t now_ms)
{
    if (r->dead) return false;
    bool ack = r->n_rxpn > 0 && (r->ack_pending || wnd_update_due(r));
    return ack || data_ready(r) || ping_due(r, now_ms);
}

uint64_t um_rel_next_timer(const um_rel_t *r, uint64_t now_ms)
{
    /* Only deadlines still ahead: what is due now shows in wants_output,
     * so a pulling link that cannot send yet does not spin a timer. */
    if (r->dead) return NONE;
    uint64_t t = r->last_rx + r->cfg.idle_timeout_ms;
    if (r->rto_at < t) t = r->rto_at;
    if (!r->n_sent) {
        uint32_t ka = keepalive_ms(r);
        uint64_t k = (r->last_rx > r->last_elicit_tx ? r->last_rx : r->last_elicit_tx) + ka;
        if (k > now_ms && k < t) t = k;
        if (r->snd_nxt < r->snd_end && r->snd_nxt >= r->peer_limit) {
            uint64_t p = r->last_elicit_tx + cur_rto(r);
            if (p > now_ms && p < t) t = p;
        }
    }
    return t < now_ms ? now_ms : t;
}

/* Writes the ack block (at most max_ranges extra ranges) into out;
 * returns its length. */
static size_t put_ack(um_rel_t *r, uint64_t now, uint8_t *out, size_t max_ranges)
{
    uint64_t cum = r->rcv_nxt + (r->rcv_fin != NONE && r->rcv_nxt == r->rcv_fin);
    uint64_t lim = rcv_limit(r);
    um_st32(out, (uint32_t)cum);
    um_st32(out + 4, (uint32_t)(lim - r->rcv_nxt));
    uint64_t dl = now - r->largest_rx_t, first = r->rxpn[0].hi - r->rxpn[0].lo;
    um_st32(out + 8, (uint32_t)r->rxpn[0].hi);
    um_st16(out + 12, dl > 0xffff ? 0xffff : (uint16_t)dl);
    um_st16(out + 14, first > 0xffff ? 0xffff : (uint16_t)first);
    size_t at = UM_REL_ACK_MIN_LEN, k = 0;
    if (max_ranges > UM_REL_RANGES_MAX) max_ranges = UM_REL_RANGES_MAX;
    uint64_t low = r->rxpn[0].lo;
    for (size_t i = 1; i < r->n_rxpn && first <= 0xffff && k < max_ranges; i++) {
        uint64_t gap = low - r->rxpn[i].hi - 2, len = r->rxpn[i].hi - r->rxpn[i].lo;
        if (gap > 0xffff || len > 0xffff) break;
        um_st16(out + at, (uint16_t)gap);
        um_st16(out + at + 2, (uint16_t)len);
        at += 4;
        k++;
        low = r->rxpn[i].lo;
    }
    out[16] = (uint8_t)k;
    r->adv_limit = lim;
    r->ack_pending = false;
    return at;
}

/* The next segment to send, [lo, hi) with the FIN byte counted; false when
 * there is none. */
static bool next_segment(const um_rel_t *r, uint64_t *lo, uint64_t *hi, bool *resend)
{
    *resend = false;
    if (r->n_rexmit) {
        *lo = r->rexmit[0].lo;
        *hi = r->rexmit[0].hi;
        *resend = true;
        return true;
    }
    *lo = r->snd_nxt;
    *hi = r->snd_end < r->peer_limit ? r->snd_end : r->peer_limit;
    if (*hi < *lo) *hi = *lo;
    if (fin_unsent(r) && *hi == r->snd_end) *hi = r->fin_off + 1;
    return *hi > *lo;
}

/* Room a data packet keeps for data before an ack is piggybacked on it. */
#define PIGGY_MIN 64u

int um_rel_output(um_rel_t *r, uint64_t now, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (r->dead) return UM_ETIMEDOUT;
    const size_t H = UM_REL_HDR_LEN, A = UM_REL_ACK_MIN_LEN, D = UM_REL_DATA_HDR_LEN;
    if (cap < H + D) return 0;
    bool has_rx = r->n_rxpn > 0, ack_fits = cap >= H + A;
    bool want_ack = has_rx && ack_fits && (r->ack_pending || wnd_update_due(r));
    uint64_t lo = 0, hi = 0;
    bool resend = false;
    bool data = data_ready(r) && next_segment(r, &lo, &hi, &resend);
    bool ping = !data && ping_due(r, now);
    if (data || ping) {
        /* a segment needs its header and, unless it is a ping or the FIN
         * alone, one byte; when that does not fit, the ack goes alone */
        bool empty_ok = ping || lo == r->fin_off;
        if (cap < H + D + (want_ack ? A : 0) + (empty_ok ? 0 : 1)) data = ping = false;
        if (!want_ack && has_rx && data && cap >= H + A + D + PIGGY_MIN) want_ack = true;
    }
    if (!want_ack && !data && !ping) return 0;
    if ((data || ping) && r->n_sent == r->sent_cap) {
        size_t nc = r->sent_cap ? r->sent_cap * 2 : 32;
        sent_t *q = realloc(r->sent, nc * sizeof(*q));
        if (!q) return UM_ENOMEM;
        r->sent = q;
        r->sent_cap = nc;
    }

    uint8_t flags = UM_REL_VERSION;
    size_t at = H;
    if (want_ack) {
        flags |= UM_REL_F_ACK;
        size_t spare = cap - H - A - ((data || ping) ? D : 0);
        if (data) spare = spare > PIGGY_MIN ? spare - PIGGY_MIN : 0;
        at += put_ack(r, now, out + at, spare / 4);
    }
    sent_t s = {.pn = r->next_pn, .t = now};
    if (data || ping) {
        flags |= UM_REL_F_DATA;
        size_t dcap = cap - at - D;
        if (ping) {
            lo = hi = r->fin_off != NONE && r->fin_off < r->snd_una ? r->fin_off : r->snd_una;
            s.ping = true;
        }
        uint64_t dhi = r->fin_off != NONE && hi > r->fin_off ? r->fin_off : hi;
        if (dhi - lo > dcap) hi = dhi = lo + dcap;
        size_t len = (size_t)(dhi - lo);
        if (hi > dhi) flags |= UM_REL_F_FIN;
        um_st32(out + at, (uint32_t)lo);
        at += D;
        if (len) ring_get(r->sbuf, r->cfg.snd_max, lo, out + at, len);
        at += len;
        s.off = lo;
        s.len = (uint32_t)(hi - lo);
        if (resend) {
            ranges_sub(r->rexmit, &r->n_rexmit, r->rexmit_cap, lo, hi);
            r->st.data_resent += len;
        } else if (!ping) {
            r->snd_nxt = hi;
            r->st.data_sent += len;
        }
        s.size = (uint32_t)at;
        r->sent[r->n_sent++] = s;
        r->in_flight += s.size;
        r->last_elicit_tx = now;
        if (r->rto_at == NONE) r->rto_at = now + cur_rto(r);
    }
    if (r->n_rexmit || r->snd_nxt < r->snd_end || fin_unsent(r)) flags |= UM_REL_F_MORE;
    out[0] = flags;
    um_st32(out + 1, (uint32_t)r->next_pn);
    r->next_pn++;
    r->st.pkts_sent++;
    r->st.bytes_sent += at;
    *n = at;
    return 0;
}

/* ---- input ---------------------------------------------------------------- */

/* Records packet number pn as received (highest ranges kept). */
static void rxpn_add(um_rel_t *r, uint64_t pn)
{
    range_t *t = r->rxpn;
    size_t i = 0;
    while (i < r->n_rxpn && t[i].lo > pn + 1)
        i++; /* first range not wholly above */
    if (i < r->n_rxpn && pn >= t[i].lo && pn <= t[i].hi) return;
    if (i < r->n_rxpn && pn + 1 == t[i].lo) { /* extends range i downwards (it is above) */
        t[i].lo = pn;
        if (i + 1 < r->n_rxpn && t[i + 1].hi + 1 == pn) {
            t[i].lo = t[i + 1].lo;
            memmove(t + i + 1, t + i + 2, (r->n_rxpn - i - 2) * sizeof(*t));
            r->n_rxpn--;
        }
        return;
    }
    if (i < r->n_rxpn && t[i].hi + 1 == pn) { /* extends range i upwards */
        t[i].hi = pn; /* range i-1 starts above pn + 1 (the loop): no merge */
        return;
    }
    if (r->n_rxpn == RXPN_MAX) {
        if (i == RXPN_MAX) return; /* older than all we remember */
        r->n_rxpn--;               /* forget the oldest */
    }
    memmove(t + i + 1, t + i, (r->n_rxpn - i) * sizeof(*t));
    t[i] = (range_t){pn, pn};
    r->n_rxpn++;
}

typedef struct {
    uint64_t lo, hi; /* inclusive */
} pnr_t;

/* Applies a checked ack block: ranges[0..nr) descending, C the cumulative
 * offset (unwrapped), L the largest packet number acked. */
static int on_ack(um_rel_t *r, const um_rel_pkt_t *k, const pnr_t *rg, size_t nr, uint64_t C,
                  uint64_t now)
{
    uint64_t L = rg[0].hi;
    bool newly = false;
    if (!r->any_acked || L > r->largest_acked) r->largest_acked = L;
    r->any_acked = true;
    if (C > r->snd_una) {
        r->snd_una = C;
        if (r->fin_off != NONE && C == r->fin_off + 1) r->fin_acked = true;
        ranges_sub(r->rexmit, &r->n_rexmit, r->rexmit_cap, 0, C);
        newly = true;
    }
    if (C + k->wnd > r->peer_limit) r->peer_limit = C + k->wnd;
    size_t w = 0, j = nr;
    for (size_t i = 0; i < r->n_sent; i++) {
        sent_t *s = &r->sent[i];
        while (j > 0 && rg[j - 1].hi < s->pn)
            j--;
        bool acked = j > 0 && rg[j - 1].lo <= s->pn;
        bool covered = !s->ping && s->off + s->len <= r->snd_una;
        if (acked || covered) {
            r->in_flight -= s->size;
            grow(r, s);
            if (!s->ping)
                ranges_sub(r->rexmit, &r->n_rexmit, r->rexmit_cap, s->off, s->off + s->len);
            if (acked && s->pn == L) {
                uint64_t rtt = now - s->t;
                if (rtt > k->delay_ms) rtt -= k->delay_ms;
                rtt_sample(r, rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt);
            }
            newly = true;
        } else {
            r->sent[w++] = *s;
        }
    }
    r->n_sent = w;
    /* A packet declared lost and acked after all was only late (reordered,
     * or its ack waited for a query): widen the reordering window, and undo
     * the window reduction it caused (as Eifel, RFC 3522). */
    for (size_t i = 0; i < LOST_RING; i++) {
        uint64_t pn = r->lost_pn[i];
        if (pn == NONE || pn > L) continue;
        bool acked = false;
        for (size_t q = 0; q < nr && !acked; q++)
            acked = rg[q].lo <= pn && pn <= rg[q].hi;
        if (!acked) continue;
        r->lost_pn[i] = NONE;
        r->st.spurious++;
        /* the packet came at least (largest acked then - pn) places late */
        uint64_t depth = r->lost_depth[i] + 1;
        if (depth <= r->reorder) depth = r->reorder + 1;
        r->reorder = depth > REORDER_MAX ? REORDER_MAX : (uint32_t)depth;
        if (pn == r->undo_pn) {
            if (r->undo_cwnd > r->cwnd) r->cwnd = r->undo_cwnd;
            r->ssthresh = r->undo_ssthresh;
            r->undo_pn = NONE;
        }
    }
    /* loss: acked `reorder` packets later, or sent (8 + reorder - 3)/8 of an
     * RTT before one acked (9/8 at first, as RFC 9002) */
    uint64_t late =
        r->have_rtt ? (uint64_t)(r->srtt > r->latest_rtt ? r->srtt : r->latest_rtt) *
                          (9 + (r->reorder - PKT_THRESH < 16 ? r->reorder - PKT_THRESH : 16)) / 8
                    : NONE;
    w = 0;
    for (size_t i = 0; i < r->n_sent; i++) {
        sent_t *s = &r->sent[i];
        bool lost = s->pn < r->largest_acked &&
                    (s->pn + r->reorder <= r->largest_acked || (late != NONE && now - s->t > late));
        if (lost) {
            int e = lose(r, s);
            if (e) return e;
            uint64_t d = r->largest_acked - s->pn;
            r->lost_depth[r->lost_at % LOST_RING] = d > REORDER_MAX ? REORDER_MAX : (uint32_t)d;
            r->lost_pn[r->lost_at++ % LOST_RING] = s->pn;
            congestion_event(r, s->pn);
            if (!s->ping) r->st.fast_resends++;
        } else {
            r->sent[w++] = *s;
        }
    }
    r->n_sent = w;
    if (newly) {
        r->backoff = 0;
        r->rto_at = r->n_sent ? now + cur_rto(r) : NONE;
    }
    return 0;
}

/* Would [a, b) (above rcv_nxt) fit the out-of-order table? */
static bool have_fits(const um_rel_t *r, uint64_t a, uint64_t b)
{
    if (a <= r->rcv_nxt || r->n_have < HAVE_MAX) return true;
    for (size_t i = 0; i < r->n_have; i++)
        if (r->have[i].lo <= b && r->have[i].hi >= a) return true;
    return false;
}

int um_rel_input(um_rel_t *r, const uint8_t *pkt, size_t n, uint64_t now)
{
    if (r->dead) return UM_ETIMEDOUT;
    um_rel_pkt_t k;
    pnr_t rg[UM_REL_RANGES_MAX + 1];
    size_t nr = 0;
    uint64_t pn, C = 0, O = 0, E = 0;
    int e = um_rel_pkt_parse(pkt, n, &k);
    if (e) goto bad;
    e = UM_EPROTO;
    uint64_t near = r->n_rxpn ? r->rxpn[0].hi : 0;
    if (!unwrap(near, k.pn, &pn) || (pn > near && pn - near > PN_JUMP_MAX)) goto bad;
    if (k.flags & UM_REL_F_ACK) {
        uint64_t L;
        if (r->next_pn == 0 || !unwrap(r->next_pn - 1, k.largest, &L) || L >= r->next_pn) goto bad;
        if (k.first > L) goto bad;
        rg[nr++] = (pnr_t){L - k.first, L};
        for (unsigned i = 0; i < k.n_ranges; i++) {
            uint64_t low = rg[nr - 1].lo;
            if (low < (uint64_t)k.gap[i] + 2 || low - k.gap[i] - 2 < k.len[i]) goto bad;
            uint64_t h = low - k.gap[i] - 2;
            rg[nr++] = (pnr_t){h - k.len[i], h};
        }
        if (!unwrap(r->snd_una, k.cum, &C) || C > r->snd_nxt) goto bad;
    }
    uint64_t keep_lo = 0, keep_hi = 0;
    bool whole = true, fin = false;
    if (k.flags & UM_REL_F_DATA) {
        if (!unwrap(r->rcv_nxt, k.off, &O)) goto bad;
        E = O + k.data_len;
        fin = k.flags & UM_REL_F_FIN;
        uint64_t top = r->n_have ? r->have[r->n_have - 1].hi : r->rcv_nxt;
        if (r->rcv_fin != NONE && (E > r->rcv_fin || (fin && E != r->rcv_fin))) goto bad;
        if (fin && E < top) goto bad;
        uint64_t lim = rcv_limit(r);
        keep_lo = O > r->rcv_nxt ? O : r->rcv_nxt;
        keep_hi = E < lim ? E : lim;
        whole = E <= lim;
        if (keep_hi > keep_lo && !have_fits(r, keep_lo, keep_hi)) keep_hi = keep_lo, whole = false;
        if (keep_hi > keep_lo && !r->rbuf) {
            r->rbuf = malloc(r->cfg.rcv_max);
            if (!r->rbuf) return UM_ENOMEM;
        }
    }

    /* checked: apply */
    r->st.pkts_recv++;
    r->last_rx = now;
    bool newest = !r->n_rxpn || pn > r->rxpn[0].hi;
    if (newest) r->peer_more = k.flags & UM_REL_F_MORE;
    if (k.flags & UM_REL_F_DATA) {
        r->ack_pending = true;
        if (k.data_len) r->last_data_rx = now;
        if (keep_hi > keep_lo) {
            ring_put(r->rbuf, r->cfg.rcv_max, keep_lo, k.data + (keep_lo - O),
                     (size_t)(keep_hi - keep_lo));
            range_t *hp = r->have;
            size_t hc = HAVE_MAX;
            (void)ranges_add(&hp, &r->n_have, &hc, HAVE_MAX, keep_lo, keep_hi);
            while (r->n_have && r->have[0].lo <= r->rcv_nxt) {
                if (r->have[0].hi > r->rcv_nxt) r->rcv_nxt = r->have[0].hi;
                memmove(r->have, r->have + 1, (r->n_have - 1) * sizeof(range_t));
                r->n_have--;
            }
        }
        if (fin && whole) r->rcv_fin = E;
    }
    if (whole) {
        if (newest) r->largest_rx_t = now;
        rxpn_add(r, pn);
    }
    if (k.flags & UM_REL_F_ACK) return on_ack(r, &k, rg, nr, C, now);
    return 0;
bad:
    r->st.pkts_dropped++;
    return e;
}

/* ---- hints and stats ------------------------------------------------------ */

bool um_rel_peer_more(const um_rel_t *r)
{
    return r->peer_more;
}

uint32_t um_rel_poll_interval(const um_rel_t *r, uint64_t now_ms)
{
    uint32_t hi = r->cfg.idle_timeout_ms / 4 < UM_REL_POLL_MAX_MS ? r->cfg.idle_timeout_ms / 4
                                                                  : UM_REL_POLL_MAX_MS;
    if (hi < UM_REL_POLL_MIN_MS) hi = UM_REL_POLL_MIN_MS;
    if (r->dead) return hi;
    if (r->peer_more) return 0;
    if (r->n_sent) return UM_REL_POLL_MIN_MS;
    uint64_t idle = now_ms > r->last_data_rx ? (now_ms - r->last_data_rx) / 2 : 0;
    return idle < UM_REL_POLL_MIN_MS ? UM_REL_POLL_MIN_MS : idle > hi ? hi : (uint32_t)idle;
}

bool um_rel_finished(const um_rel_t *r)
{
    return r->fin_acked && r->rcv_fin != NONE && r->rcv_read == r->rcv_fin;
}

bool um_rel_dead(const um_rel_t *r)
{
    return r->dead;
}

void um_rel_stats(const um_rel_t *r, um_rel_stats_t *st)
{
    *st = r->st;
    st->srtt_ms = r->srtt;
    st->rttvar_ms = r->rttvar;
    st->rto_ms = cur_rto(r);
    st->cwnd = r->cwnd;
    st->ssthresh = r->ssthresh;
    st->in_flight = r->in_flight;
    st->reorder = r->reorder;
}
