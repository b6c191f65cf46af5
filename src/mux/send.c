/* The sending side: control frames, window updates and the deficit
 * round-robin scheduler behind um_mux_pull (young streams first). Part of the multiplexer
 * (mux_int.h). */
#include "mux/mux_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- sending ----------------------------------------------------------- */

static void tx_drained(um_mux_t *m, stream_t *s)
{
    if ((s->flags & S_WANT_WRITABLE) && um_buf_len(&s->tx) <= m->cfg.send_buf_max / 2) {
        s->flags &= ~(uint32_t)S_WANT_WRITABLE;
        if (!(s->flags & S_EV_WRITABLE) && mux_ev_push(m, UM_MUX_EV_WRITABLE, s->id, 0, 0))
            s->flags |= S_EV_WRITABLE;
    }
}

/* Copies what fits of a frame encoded in m->stage and keeps the rest for the
 * next pulls (frames may span records; nothing else goes in between). */
static size_t stage_out(um_mux_t *m, size_t total, uint8_t *out, size_t room)
{
    size_t k = total < room ? total : room;
    memcpy(out, m->stage, k);
    m->stage_len = total;
    m->stage_off = k;
    if (k == total) m->stage_len = m->stage_off = 0;
    return k;
}

/* Writes at most one frame of s into out (room bytes). Returns the bytes
 * written, 0 when s has nothing it may send into that room now. A frame that
 * cannot be cut (OPEN, DATAGRAM) and does not fit goes out over several pulls
 * when it starts a record (may_split), else waits for the next record. */
static size_t emit_one(um_mux_t *m, stream_t *s, uint8_t *out, size_t room, bool may_split)
{
    um_mux_frame_t f;
    size_t w = 0;
    if (s->flags & S_DGRAM) {
        const uint8_t *p;
        size_t n = um_buf_peek(&s->tx, &p), total;
        if (n == 0 || um_mux_frame_peek(p, n, &total) != 0) return 0;
        if (total > room && !may_split) return 0;
        if (total <= room)
            memcpy(out, p, total);
        else
            memcpy(m->stage, p, total);
        um_buf_consume(&s->tx, total);
        m->st.payload_out += total; /* approximately: address included */
        return total <= room ? total : stage_out(m, total, out, room);
    }
    memset(&f, 0, sizeof(f));
    f.id = s->id;
    const uint8_t *p;
    size_t avail = um_buf_peek(&s->tx, &p);
    size_t fixed = UM_MUX_HDR;
    bool staged = false;
    if (s->flags & S_OPEN_PENDING) {
        f.type = UM_MUX_OPEN;
        f.addr = *s->dest;
        fixed += um_mux_addr_size(s->dest);
        if (room < fixed) {
            if (!may_split) return 0;
            staged = true;
        }
    } else if (avail > 0 && s->tx_credit > 0 && m->tx_credit > 0) {
        f.type = UM_MUX_DATA;
        if (room < fixed + 1) return 0;
    } else if (avail == 0 && (s->flags & (S_FIN_QUEUED | S_FIN_SENT)) == S_FIN_QUEUED) {
        if (room < UM_MUX_HDR) return 0;
        f.type = UM_MUX_FIN;
        um_mux_frame_encode(&f, out, room, &w);
        s->flags |= S_FIN_SENT;
        return w;
    } else {
        return 0;
    }
    size_t n = avail;
    if (n > s->tx_credit) n = s->tx_credit;
    if (n > m->tx_credit) n = m->tx_credit;
    if (staged)
        n = 0;
    else if (n > room - fixed)
        n = room - fixed;
    if (n > m->cfg.max_frame - (fixed - UM_MUX_HDR)) n = m->cfg.max_frame - (fixed - UM_MUX_HDR);
    f.data = p;
    f.data_len = n;
    if (f.type == UM_MUX_OPEN && n == avail && (s->flags & S_FIN_QUEUED)) {
        f.flags = UM_MUX_FLAG_FIN;
        s->flags |= S_FIN_SENT;
    }
    if (staged) {
        if (um_mux_frame_encode(&f, m->stage, UM_MUX_HDR + UM_MUX_FRAME_MAX, &w) != 0) return 0;
    } else if (um_mux_frame_encode(&f, out, room, &w) != 0) {
        return 0;
    }
    if (f.type == UM_MUX_OPEN) {
        s->flags &= ~(uint32_t)S_OPEN_PENDING;
        free(s->dest);
        s->dest = NULL;
        if (s->rx_win > UM_MUX_INIT_WINDOW) { /* our initial grant, now that the peer knows s */
            uint32_t extra = s->rx_win - UM_MUX_INIT_WINDOW;
            if (mux_acct_fits(m, extra)) {
                s->rx_credit += extra;
                s->rx_announce += extra;
            } else {
                s->rx_win = UM_MUX_INIT_WINDOW; /* over the share: the protocol's minimum */
            }
        }
        if (s->rx_announce) mux_wu_add(m, s);
    }
    s->tx_credit -= (uint32_t)n;
    m->tx_credit -= (uint32_t)n;
    m->st.payload_out += n;
    s->sent += n;
    if (n) s->progress = m->now;
    um_buf_consume(&s->tx, n);
    m->tx_queued -= n;
    /* Under send pressure (streams together hold half of send_total_max) an
     * emptied stream waits its turn to refill: its storage goes back now
     * rather than at the tick, so a thousand waiting streams hold none. */
    if (um_buf_len(&s->tx) == 0 && m->cfg.send_total_max &&
        m->tx_queued > m->cfg.send_total_max / 2)
        um_buf_free(&s->tx);
    mux_acct_sync(m, s);
    tx_drained(m, s);
    return staged ? stage_out(m, w, out, room) : w;
}

static size_t emit_window(um_mux_t *m, uint32_t id, uint32_t *announce, uint8_t *out, size_t room)
{
    size_t w = 0, total = 0;
    while (*announce && room - total >= UM_MUX_HDR + 4) {
        uint32_t v = *announce > UM_MUX_WINDOW_LIMIT ? UM_MUX_WINDOW_LIMIT : *announce;
        um_mux_frame_t f = {.type = UM_MUX_WINDOW, .id = id, .value = v};
        um_mux_frame_encode(&f, out + total, room - total, &w);
        total += w;
        *announce -= v;
        m->st.frames_out++;
    }
    return total;
}

/* Deficit round-robin over one ring (young or bulk) of streams with
 * something to send, from out + w up to cap. Returns the new w. A young
 * stream that has sent young_bytes moves to the back of the bulk ring. */
static size_t drr(um_mux_t *m, bool young, uint8_t *out, size_t w, size_t cap)
{
    stream_t **head = young ? &m->young : &m->active;
    size_t *count = young ? &m->nyoung : &m->nactive;
    size_t skips = 0, guard = 0;
    while (*head && cap > w && guard++ < 100000) {
        stream_t *s = *head;
        if (s->deficit == 0) s->deficit = m->cfg.quantum;
        bool sent = false;
        for (;;) {
            size_t n = emit_one(m, s, out + w, cap - w, w == 0);
            if (n == 0) break;
            w += n;
            sent = true;
            m->st.frames_out++;
            s->deficit = n >= s->deficit ? 0 : s->deficit - (uint32_t)n;
            if (s->deficit == 0) break;
        }
        if (!mux_stream_can_send(s)) {
            mux_active_remove(m, s);
            if (!(s->flags & S_DGRAM)) mux_maybe_free(m, s);
            skips = 0;
            continue;
        }
        if (young && s->sent >= m->cfg.young_bytes) {
            /* grown up (or a sparse stream's one turn is over, and it
             * still has bytes): to the bulk ring */
            mux_active_demote(m, s);
            skips = 0;
            continue;
        }
        if (sent) skips = 0;
        if (s->deficit == 0) { /* quantum used up: to the back */
            *head = s->anext;
            continue;
        }
        if (m->tx_credit == 0 && um_buf_len(&s->tx) > 0 &&
            !(s->flags & (S_DGRAM | S_OPEN_PENDING))) {
            /* blocked by the session window only: let the others try */
            *head = s->anext;
            if (++skips >= *count) break;
            continue;
        }
        break; /* no room left for s's next frame */
    }
    return w;
}

size_t um_mux_pull(um_mux_t *m, uint8_t *out, size_t cap)
{
    if (cap > m->cfg.record_size) cap = m->cfg.record_size;
    size_t w = 0;
    if (m->stage_len) { /* the rest of a frame cut at the end of the last record */
        w = m->stage_len - m->stage_off;
        if (w > cap) w = cap;
        memcpy(out, m->stage + m->stage_off, w);
        m->stage_off += w;
        if (m->stage_off < m->stage_len) goto out;
        m->stage_len = m->stage_off = 0;
    }
    w += um_buf_read(&m->ctl, out + w, cap - w);
    if (um_buf_len(&m->ctl) > 0 || m->err) goto out;

    w += emit_window(m, 0, &m->rx_announce, out + w, cap - w);
    while (m->wu_head && cap - w >= UM_MUX_HDR + 4) {
        stream_t *s = m->wu_head;
        w += emit_window(m, s->id, &s->rx_announce, out + w, cap - w);
        if (s->rx_announce == 0) mux_wu_remove(m, s);
    }

    /* The young ring first, then the bulk ring. */
    w = drr(m, true, out, w, cap);
    if (cap > w) w = drr(m, false, out, w, cap);
out:
    m->st.bytes_out += w;
    return w;
}

bool um_mux_want_pull_urgent(const um_mux_t *m)
{
    if (m->err || m->stage_len) return false; /* a cut frame's rest goes first anyway */
    /* The young ring holds the few streams that have sent less than
     * young_bytes; a look at a bounded number of them is enough. */
    const stream_t *s = m->young;
    for (size_t i = 0; s && i < m->nyoung && i < 16; i++, s = s->anext)
        if (s->flags & S_OPEN_PENDING) return true;
    return false;
}

bool um_mux_want_pull(const um_mux_t *m)
{
    if (um_buf_len(&m->ctl) || m->stage_len) return true;
    if (m->err) return false;
    return m->rx_announce || m->wu_head || m->active || m->young;
}
