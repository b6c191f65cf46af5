/* Streams: the stream table, the memory account, flow control (windows and
 * grants) and the stream API. Part of the multiplexer (mux_int.h). */
#include "mux/mux_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/memtrim.h"

/* ---- stream table ------------------------------------------------------ */

stream_t *mux_find(const um_mux_t *m, uint32_t id)
{
    if (!m->buckets) return NULL;
    stream_t *s = m->buckets[(id >> 1) & (m->nbuckets - 1)];
    while (s && s->id != id)
        s = s->hnext;
    return s;
}

int mux_table_grow(um_mux_t *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : HASH_INIT;
    stream_t **b = calloc(nb, sizeof(*b));
    if (!b) return UM_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        stream_t *s = m->buckets[i];
        while (s) {
            stream_t *next = s->hnext;
            size_t k = (s->id >> 1) & (nb - 1);
            s->hnext = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

static void active_insert(um_mux_t *m, stream_t *s, bool young);

/* A stream joins the young ring while it has sent less than young_bytes,
 * or when it becomes sendable with at most one record queued (a sparse
 * stream: a request on a long-lived connection, a keystroke; it gets one
 * turn there, see drr() in send.c), else the bulk ring; the datagram queue
 * is always on the bulk ring. */
void mux_active_add(um_mux_t *m, stream_t *s)
{
    if (s->flags & S_ACTIVE) return;
    bool young = !(s->flags & S_DGRAM) &&
                 (s->sent < m->cfg.young_bytes || um_buf_len(&s->tx) <= m->cfg.record_size);
    active_insert(m, s, young);
}

/* A young stream that has had its turn goes to the back of the bulk ring. */
void mux_active_demote(um_mux_t *m, stream_t *s)
{
    mux_active_remove(m, s);
    active_insert(m, s, false);
}

static void active_insert(um_mux_t *m, stream_t *s, bool young)
{
    if (s->flags & S_ACTIVE) return;
    s->flags |= S_ACTIVE;
    stream_t **head = young ? &m->young : &m->active;
    if (young)
        s->flags |= S_YOUNG;
    else
        s->flags &= ~(uint32_t)S_YOUNG;
    if (!*head) {
        s->anext = s->aprev = s;
        *head = s;
    } else { /* insert at the tail = before the head */
        s->anext = *head;
        s->aprev = (*head)->aprev;
        s->aprev->anext = s;
        (*head)->aprev = s;
    }
    if (young)
        m->nyoung++;
    else
        m->nactive++;
}

void mux_active_remove(um_mux_t *m, stream_t *s)
{
    if (!(s->flags & S_ACTIVE)) return;
    s->flags &= ~(uint32_t)S_ACTIVE;
    bool young = (s->flags & S_YOUNG) != 0;
    stream_t **head = young ? &m->young : &m->active;
    if (s->anext == s) {
        *head = NULL;
    } else {
        s->aprev->anext = s->anext;
        s->anext->aprev = s->aprev;
        if (*head == s) *head = s->anext;
    }
    s->anext = s->aprev = NULL;
    s->deficit = 0;
    if (young)
        m->nyoung--;
    else
        m->nactive--;
}

void mux_wu_add(um_mux_t *m, stream_t *s)
{
    if (s->flags & S_IN_WU) return;
    s->flags |= S_IN_WU;
    s->wprev = NULL;
    s->wnext = m->wu_head;
    if (m->wu_head) m->wu_head->wprev = s;
    m->wu_head = s;
}

void mux_wu_remove(um_mux_t *m, stream_t *s)
{
    if (!(s->flags & S_IN_WU)) return;
    s->flags &= ~(uint32_t)S_IN_WU;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        m->wu_head = s->wnext;
    if (s->wnext) s->wnext->wprev = s->wprev;
    s->wnext = s->wprev = NULL;
}

/* ---- memory budget ----------------------------------------------------- */

/* What a stream commits the process to hold: the receive credit the peer
 * may still use plus what it sent and nobody read (or the storage holding
 * it, when larger), and the storage of what we queued to send. */
static uint64_t stream_cost(const stream_t *s)
{
    uint64_t rx = um_buf_len(&s->rx);
    if (!(s->flags & S_FIN_RECV)) rx += s->rx_credit;
    if (s->rx.cap > rx) rx = s->rx.cap;
    uint64_t tx = s->tx.cap > um_buf_len(&s->tx) ? s->tx.cap : um_buf_len(&s->tx);
    return rx + tx;
}

/* Brings the stream's charge to the account in line with its cost. */
void mux_acct_sync(um_mux_t *m, stream_t *s)
{
    if (!m->cfg.mem) return;
    uint64_t c = stream_cost(s);
    if (c > UINT32_MAX) c = UINT32_MAX;
    if (c > s->charged)
        um_memacct_charge(m->cfg.mem, c - s->charged);
    else if (c < s->charged)
        um_memacct_release(m->cfg.mem, s->charged - c);
    s->charged = (uint32_t)c;
}

bool mux_acct_fits(const um_mux_t *m, uint64_t n)
{
    return !m->cfg.mem || um_memacct_fits(m->cfg.mem, n);
}

stream_t *mux_stream_new(um_mux_t *m, uint32_t id, uint32_t flags)
{
    if (m->nstreams >= m->nbuckets && mux_table_grow(m) != 0) return NULL;
    stream_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->id = id;
    s->flags = flags;
    s->tx_credit = UM_MUX_INIT_WINDOW;
    s->rx_credit = UM_MUX_INIT_WINDOW;
    s->rx_win = m->cfg.stream_window_init;
    s->rx_epoch = m->now + 1;
    s->progress = m->now;
    um_buf_init(&s->rx, m->cfg.stream_window_max);
    um_buf_init(&s->tx, m->cfg.send_buf_max);
    size_t k = (id >> 1) & (m->nbuckets - 1);
    s->hnext = m->buckets[k];
    m->buckets[k] = s;
    m->nstreams++;
    return s;
}

void mux_stream_free(um_mux_t *m, stream_t *s)
{
    stream_t **pp = &m->buckets[(s->id >> 1) & (m->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) *pp = s->hnext;
    mux_active_remove(m, s);
    mux_wu_remove(m, s);
    if (!(s->flags & (S_LOCAL | S_ESTABLISHED))) m->npending--;
    if (m->cfg.mem && s->charged) um_memacct_release(m->cfg.mem, s->charged);
    m->tx_queued -= um_buf_len(&s->tx);
    um_memtrim_note(s->rx.cap + s->tx.cap, m->now);
    um_buf_free(&s->rx);
    um_buf_free(&s->tx);
    free(s->dest);
    free(s);
    m->nstreams--;
}

/* ---- flow control ------------------------------------------------------ */

/* Receiver-side auto-tuning: a window used up within two RTTs is too small
 * for the path, so it doubles (up to max). Returns the growth to grant. */
static uint32_t autotune(um_mux_t *m, uint32_t *win, uint64_t *epoch, uint32_t max)
{
    uint64_t rtt = m->has_rtt ? m->srtt : DEFAULT_RTT_MS;
    if (rtt == 0) rtt = 1;
    uint32_t grow = 0;
    if (*epoch && m->now + 1 - *epoch < 2 * rtt && *win < max) {
        grow = mux_min32(*win, max - *win);
        *win += grow;
    }
    *epoch = m->now + 1;
    return grow;
}

/* n bytes of the session's receive budget are free again. */
void mux_session_consumed(um_mux_t *m, size_t n)
{
    m->rx_unacked += (uint32_t)n;
    if (m->rx_unacked < m->rx_win / 2) return;
    uint32_t grant =
        m->rx_unacked + autotune(m, &m->rx_win, &m->rx_epoch, m->cfg.session_window_max);
    m->rx_unacked = 0;
    m->rx_credit += grant;
    m->rx_announce += grant;
}

/* The app read n bytes of stream s. The session's share was given back
 * when the bytes arrived (see on_data): a stream's buffer is bounded by its
 * own window, so readers that stop never hold the session window. */
void mux_stream_grant(um_mux_t *m, stream_t *s)
{
    if ((s->flags & S_FIN_RECV) || s->rx_unacked < s->rx_win / 2) return;
    uint32_t win = s->rx_win;
    uint64_t epoch = s->rx_epoch;
    uint32_t grow = autotune(m, &s->rx_win, &s->rx_epoch, m->cfg.stream_window_max);
    if (grow && !mux_acct_fits(m, (uint64_t)s->rx_unacked + grow)) {
        s->rx_win = win; /* over the share: the window stops growing */
        grow = 0;
    }
    if (!mux_acct_fits(m, s->rx_unacked)) {
        /* The client holds its share already: the peer gets no new credit
         * for this stream until some is freed (retried at every tick). */
        s->rx_epoch = epoch;
        if (!(s->flags & S_WITHHELD)) m->st.grants_withheld++;
        s->flags |= S_WITHHELD;
        return;
    }
    s->flags &= ~(uint32_t)S_WITHHELD;
    uint32_t grant = s->rx_unacked + grow;
    s->rx_unacked = 0;
    s->rx_credit += grant;
    s->rx_announce += grant;
    if (!(s->flags & S_OPEN_PENDING)) mux_wu_add(m, s);
    mux_acct_sync(m, s);
}

static void stream_consumed(um_mux_t *m, stream_t *s, size_t n)
{
    s->progress = m->now;
    if (!(s->flags & S_FIN_RECV)) s->rx_unacked += (uint32_t)n; /* else the peer sends no more */
    mux_acct_sync(m, s);
    mux_stream_grant(m, s);
}

/* ---- receiving --------------------------------------------------------- */

void mux_maybe_free(um_mux_t *m, stream_t *s)
{
    uint32_t done = S_FIN_SENT | S_FIN_RECV | S_EOF_READ;
    if ((s->flags & done) == done && um_buf_len(&s->rx) == 0) mux_stream_free(m, s);
}

bool mux_stream_can_send(const stream_t *s)
{
    if (s->flags & S_DGRAM) return um_buf_len(&s->tx) > 0;
    if (s->flags & S_OPEN_PENDING) return true;
    if (!(s->flags & (S_LOCAL | S_ESTABLISHED))) return false; /* not accepted yet */
    if (um_buf_len(&s->tx) > 0) return s->tx_credit > 0;
    return (s->flags & (S_FIN_QUEUED | S_FIN_SENT)) == S_FIN_QUEUED;
}

/* ---- stream API -------------------------------------------------------- */

static int get(um_mux_t *m, uint32_t id, stream_t **out)
{
    if (m->err) return m->err;
    *out = mux_find(m, id);
    return *out ? 0 : UM_ENOENT;
}

bool mux_addr_ok(const um_addr_t *a)
{
    return a && um_mux_addr_size(a) > 0 && a->port != 0 &&
           (a->type != UM_ADDR_DOMAIN ||
            (a->domain_len > 0 && um_domain_valid(a->u.domain, a->domain_len)));
}

int um_mux_stream_open(um_mux_t *m, const um_addr_t *dest, uint32_t *id)
{
    if (m->err) return m->err;
    if (!mux_addr_ok(dest) || !id) return UM_EINVAL;
    if (m->goaway_sent || m->goaway_recv) return UM_EPIPE;
    if (m->nstreams >= m->cfg.max_streams || m->next_id > UINT32_MAX - 2) return UM_ELIMIT;
    um_addr_t *d = malloc(sizeof(*d));
    if (!d) return UM_ENOMEM;
    *d = *dest;
    stream_t *s = mux_stream_new(m, m->next_id, S_LOCAL | S_OPEN_PENDING);
    if (!s) {
        free(d);
        return UM_ENOMEM;
    }
    s->dest = d;
    m->next_id += 2;
    mux_active_add(m, s);
    *id = s->id;
    return 0;
}

int um_mux_stream_accept(um_mux_t *m, uint32_t id, uint8_t code)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    if ((s->flags & (S_LOCAL | S_ESTABLISHED)) || !um_mux_result_str(code)) return UM_EINVAL;
    um_mux_frame_t f = {.type = UM_MUX_OPEN_RESULT, .id = id, .code = code};
    if (mux_ctl_frame(m, &f, false) != 0)
        return mux_fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    if (code != UM_MUX_OK) {
        mux_stream_free(m, s);
        return 0;
    }
    s->flags |= S_ESTABLISHED;
    m->npending--;
    if (s->rx_win > UM_MUX_INIT_WINDOW) {
        uint32_t extra = s->rx_win - UM_MUX_INIT_WINDOW;
        if (mux_acct_fits(m, extra)) {
            s->rx_credit += extra;
            s->rx_announce += extra;
            if (!(s->flags & S_FIN_RECV)) mux_wu_add(m, s);
            mux_acct_sync(m, s);
        } else {
            s->rx_win = UM_MUX_INIT_WINDOW; /* over the share: the protocol's minimum */
        }
    }
    if (mux_stream_can_send(s)) mux_active_add(m, s);
    return 0;
}

int um_mux_stream_write(um_mux_t *m, uint32_t id, const void *p, size_t n, size_t *accepted)
{
    stream_t *s;
    *accepted = 0;
    int r = get(m, id, &s);
    if (r) return r;
    if (s->flags & S_FIN_QUEUED) return UM_EPIPE;
    if (n && !p) return UM_EINVAL;
    size_t k = um_buf_space(&s->tx);
    if (k > n) k = n;
    if (k && (r = um_buf_append(&s->tx, p, k)) != 0) return r;
    m->tx_queued += k;
    if (k < n) s->flags |= S_WANT_WRITABLE;
    *accepted = k;
    if (k) mux_acct_sync(m, s);
    if (k && mux_stream_can_send(s)) mux_active_add(m, s);
    return 0;
}

int um_mux_stream_peek(um_mux_t *m, uint32_t id, const uint8_t **p, size_t *n)
{
    stream_t *s;
    *n = 0;
    int r = get(m, id, &s);
    if (r) return r;
    *n = um_buf_peek(&s->rx, p);
    if (*n) return 0;
    if (!(s->flags & S_FIN_RECV)) return UM_EAGAIN;
    s->flags |= S_EOF_READ;
    mux_maybe_free(m, s);
    return UM_EPIPE;
}

int um_mux_stream_consume(um_mux_t *m, uint32_t id, size_t n)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    if (n > um_buf_len(&s->rx)) return UM_EINVAL;
    um_buf_consume(&s->rx, n);
    stream_consumed(m, s, n);
    return 0;
}

int um_mux_stream_read(um_mux_t *m, uint32_t id, void *out, size_t cap, size_t *got)
{
    const uint8_t *p;
    size_t n;
    *got = 0;
    int r = um_mux_stream_peek(m, id, &p, &n);
    if (r) return r;
    if (n > cap) n = cap;
    if (n == 0) return UM_EAGAIN;
    memcpy(out, p, n);
    *got = n;
    return um_mux_stream_consume(m, id, n);
}

int um_mux_stream_shutdown(um_mux_t *m, uint32_t id)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    if (s->flags & S_FIN_QUEUED) return 0;
    s->flags |= S_FIN_QUEUED;
    if (mux_stream_can_send(s)) mux_active_add(m, s);
    return 0;
}

int um_mux_stream_reset(um_mux_t *m, uint32_t id, uint8_t code)
{
    stream_t *s;
    int r = get(m, id, &s);
    if (r) return r;
    bool both_fin = (s->flags & (S_FIN_SENT | S_FIN_RECV)) == (S_FIN_SENT | S_FIN_RECV);
    if (!(s->flags & S_OPEN_PENDING) && !both_fin) {
        um_mux_frame_t f = {.type = UM_MUX_RST, .id = id, .code = code};
        if (mux_ctl_frame(m, &f, false) != 0)
            return mux_fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    }
    mux_stream_free(m, s);
    return 0;
}

void um_mux_stream_set_ud(um_mux_t *m, uint32_t id, void *ud)
{
    stream_t *s = mux_find(m, id);
    if (s) s->ud = ud;
}

void *um_mux_stream_get_ud(const um_mux_t *m, uint32_t id)
{
    const stream_t *s = mux_find(m, id);
    return s ? s->ud : NULL;
}

int um_mux_stream_info(const um_mux_t *m, uint32_t id, um_mux_stream_info_t *info)
{
    const stream_t *s = mux_find(m, id);
    if (!s) return UM_ENOENT;
    info->rx_buffered = um_buf_len(&s->rx);
    info->tx_buffered = um_buf_len(&s->tx);
    info->rx_window = s->rx_win;
    info->tx_credit = s->tx_credit < m->tx_credit ? s->tx_credit : m->tx_credit;
    size_t txq = um_buf_len(&s->tx);
    info->tx_full = txq > (uint64_t)s->tx_credit + TX_SLACK ||
                    (txq >= TX_SLACK && m->cfg.mem && !um_memacct_fits(m->cfg.mem, 0)) ||
                    (m->cfg.bulk_queue && m->nstreams > 1 && s->sent >= m->cfg.young_bytes &&
                     txq > m->cfg.bulk_queue) ||
                    (txq > 0 && m->cfg.send_total_max && m->tx_queued > m->cfg.send_total_max);
    info->fin_received = (s->flags & S_FIN_RECV) != 0;
    info->fin_sent = (s->flags & S_FIN_SENT) != 0;
    info->local_opened = (s->flags & S_LOCAL) != 0;
    info->established = (s->flags & S_ESTABLISHED) != 0;
    info->rx_storage = s->rx.cap;
    info->tx_storage = s->tx.cap;
    return 0;
}

size_t um_mux_stream_count(const um_mux_t *m)
{
    return m->nstreams;
}

size_t um_mux_sending_count(const um_mux_t *m)
{
    return m->nactive + m->nyoung; /* both rings */
}
