/* The receiving side: frame reassembly (um_mux_feed) and the handler of each
 * frame type. Part of the multiplexer (mux_int.h). */
#include "mux/mux_int.h"

#include <string.h>

#include "util/err.h"

/* ---- receiving --------------------------------------------------------- */

static int rst_refuse(um_mux_t *m, uint32_t id, uint8_t code)
{
    um_mux_frame_t f = {.type = UM_MUX_RST, .id = id, .code = code};
    m->st.opens_refused++;
    if (mux_ctl_frame(m, &f, true) != 0)
        return mux_fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT,
                        "peer opens streams faster than it reads");
    return 0;
}

static int readable(um_mux_t *m, stream_t *s)
{
    if (s->flags & S_EV_READABLE) return 0;
    if (!mux_ev_push(m, UM_MUX_EV_READABLE, s->id, 0, 0)) return mux_nomem(m);
    s->flags |= S_EV_READABLE;
    return 0;
}

static int on_open(um_mux_t *m, const um_mux_frame_t *f)
{
    if (mux_own_id(m, f->id) || f->id <= m->peer_max_id)
        return mux_proto(m, "OPEN with a bad stream id");
    if (f->data_len > m->rx_credit || f->data_len > UM_MUX_INIT_WINDOW) return mux_flow_err(m);
    m->rx_credit -= (uint32_t)f->data_len;
    m->peer_max_id = f->id;
    if (m->goaway_sent || m->nstreams >= m->cfg.max_streams ||
        m->npending >= m->cfg.max_pending_opens) {
        mux_session_consumed(m, f->data_len);
        return rst_refuse(m, f->id, m->goaway_sent ? UM_MUX_RST_GOING_AWAY : UM_MUX_RST_REFUSED);
    }
    if (!mux_acct_fits(m, UM_MUX_INIT_WINDOW)) { /* its initial window would pass the share */
        mux_session_consumed(m, f->data_len);
        m->st.opens_over_budget++;
        return rst_refuse(m, f->id, UM_MUX_RST_OVERLOADED);
    }
    stream_t *s = mux_stream_new(m, f->id, 0);
    if (!s) return mux_nomem(m);
    m->npending++;
    if (f->data_len) m->st.opens_early_in++;
    s->rx_credit -= (uint32_t)f->data_len;
    if (f->data_len && um_buf_append(&s->rx, f->data, f->data_len) != 0) return mux_nomem(m);
    mux_session_consumed(m, f->data_len); /* buffered: the stream's window bounds it now */
    if (f->flags & UM_MUX_FLAG_FIN) s->flags |= S_FIN_RECV;
    mux_acct_sync(m, s);
    um_mux_event_t *ev = mux_ev_push(m, UM_MUX_EV_OPENED, f->id, 0, 0);
    if (!ev) return mux_nomem(m);
    ev->addr = f->addr;
    ev->fin = (f->flags & UM_MUX_FLAG_FIN) != 0;
    return f->data_len ? readable(m, s) : 0;
}

static int on_data(um_mux_t *m, const um_mux_frame_t *f)
{
    if (f->data_len > m->rx_credit) return mux_flow_err(m);
    m->rx_credit -= (uint32_t)f->data_len;
    stream_t *s = mux_find(m, f->id);
    if (!s) {
        if (!mux_id_seen(m, f->id)) return mux_proto(m, "DATA on a stream never opened");
        mux_session_consumed(m, f->data_len); /* late data of a reset stream */
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_FIN_RECV) return mux_proto(m, "DATA after FIN");
    if ((s->flags & S_LOCAL) && !(s->flags & S_ESTABLISHED))
        return mux_proto(m, "DATA before OPEN_RESULT");
    if (f->data_len > s->rx_credit) return mux_flow_err(m);
    s->rx_credit -= (uint32_t)f->data_len;
    int r = um_buf_append(&s->rx, f->data, f->data_len);
    if (r == UM_ENOSPC) return mux_flow_err(m);
    if (r) return mux_nomem(m);
    mux_session_consumed(m, f->data_len); /* buffered: the stream's window bounds it now */
    mux_acct_sync(m, s);
    return readable(m, s);
}

static int on_open_result(um_mux_t *m, const um_mux_frame_t *f)
{
    stream_t *s = mux_find(m, f->id);
    if (!s) {
        if (mux_own_id(m, f->id) && mux_id_seen(m, f->id)) {
            m->st.frames_ignored++; /* we reset it before the answer came */
            return 0;
        }
        return mux_proto(m, "OPEN_RESULT for a stream never opened");
    }
    if (!(s->flags & S_LOCAL) || (s->flags & (S_OPEN_PENDING | S_ESTABLISHED)))
        return mux_proto(m, "unexpected OPEN_RESULT");
    if (f->code == UM_MUX_OK ? !mux_ev_push(m, UM_MUX_EV_OPEN_RESULT, s->id, f->code, 0)
                             : !mux_ev_push_last(m, s, UM_MUX_EV_OPEN_RESULT, f->code))
        return mux_nomem(m);
    if (f->code == UM_MUX_OK) {
        s->flags |= S_ESTABLISHED;
        return 0;
    }
    mux_stream_free(m, s);
    return 0;
}

static int on_fin(um_mux_t *m, const um_mux_frame_t *f)
{
    stream_t *s = mux_find(m, f->id);
    if (!s) {
        if (!mux_id_seen(m, f->id)) return mux_proto(m, "FIN on a stream never opened");
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_FIN_RECV) return mux_proto(m, "second FIN");
    if ((s->flags & S_LOCAL) && !(s->flags & S_ESTABLISHED))
        return mux_proto(m, "FIN before OPEN_RESULT");
    s->flags |= S_FIN_RECV;
    mux_wu_remove(m, s);
    mux_acct_sync(m, s); /* its unused credit is not a commitment any more */
    if (!mux_ev_push(m, UM_MUX_EV_FIN, s->id, 0, 0)) return mux_nomem(m);
    return 0;
}

static int on_rst(um_mux_t *m, const um_mux_frame_t *f)
{
    stream_t *s = mux_find(m, f->id);
    if (!s) {
        if (!mux_id_seen(m, f->id)) return mux_proto(m, "RST on a stream never opened");
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_OPEN_PENDING) return mux_proto(m, "RST before OPEN");
    if (!mux_ev_push_last(m, s, UM_MUX_EV_RESET, f->code)) return mux_nomem(m);
    mux_stream_free(m, s);
    return 0;
}

static int on_window(um_mux_t *m, const um_mux_frame_t *f)
{
    if (f->id == 0) {
        if ((uint64_t)m->tx_credit + f->value > UM_MUX_WINDOW_LIMIT) return mux_flow_err(m);
        m->tx_credit += f->value;
        return 0;
    }
    stream_t *s = mux_find(m, f->id);
    if (!s) {
        if (!mux_id_seen(m, f->id)) return mux_proto(m, "WINDOW_UPDATE for a stream never opened");
        m->st.frames_ignored++;
        return 0;
    }
    if (s->flags & S_OPEN_PENDING) return mux_proto(m, "WINDOW_UPDATE before OPEN");
    if ((uint64_t)s->tx_credit + f->value > UM_MUX_WINDOW_LIMIT) return mux_flow_err(m);
    s->tx_credit += f->value;
    if (mux_stream_can_send(s)) mux_active_add(m, s);
    return 0;
}

static int on_pong(um_mux_t *m, const um_mux_frame_t *f)
{
    if (!m->ping_out || f->value != m->ping_id) {
        m->st.frames_ignored++;
        mux_dbg(m, "PONG that answers no PING", f->value);
        return 0;
    }
    m->ping_out = false;
    uint64_t rtt = m->now >= f->ts ? m->now - f->ts : 0;
    if (rtt > UINT32_MAX) rtt = UINT32_MAX;
    if (!m->has_rtt)
        m->srtt = (uint32_t)rtt;
    else
        m->srtt = (uint32_t)(((uint64_t)m->srtt * 7 + rtt) / 8);
    m->has_rtt = true;
    um_mux_event_t *ev = mux_ev_push(m, UM_MUX_EV_PONG, 0, 0, 0);
    if (!ev) return mux_nomem(m);
    ev->value = (uint32_t)rtt;
    return 0;
}

static int on_goaway(um_mux_t *m, const um_mux_frame_t *f)
{
    if (f->value != 0 && !mux_own_id(m, f->value))
        return mux_proto(m, "GOAWAY names a peer stream");
    if (!m->goaway_recv || f->value < m->goaway_last_recv) m->goaway_last_recv = f->value;
    m->goaway_recv = true;
    um_mux_event_t *ev = mux_ev_push(m, UM_MUX_EV_GOAWAY, 0, f->code, 0);
    if (!ev) return mux_nomem(m);
    ev->value = f->value;
    /* Our streams above the last id were never processed: reset them here. */
    for (size_t i = 0; i < m->nbuckets; i++) {
        stream_t *s = m->buckets[i];
        while (s) {
            stream_t *next = s->hnext;
            if ((s->flags & S_LOCAL) && s->id > m->goaway_last_recv) {
                if (!mux_ev_push_last(m, s, UM_MUX_EV_RESET, UM_MUX_RST_GOING_AWAY))
                    return mux_nomem(m);
                mux_stream_free(m, s);
            }
            s = next;
        }
    }
    return 0;
}

static int handle(um_mux_t *m, const um_mux_frame_t *f)
{
    m->st.frames_in++;
    switch (f->type) {
    case UM_MUX_DATA: m->st.payload_in += f->data_len; return on_data(m, f);
    case UM_MUX_OPEN: m->st.payload_in += f->data_len; return on_open(m, f);
    case UM_MUX_OPEN_RESULT: return on_open_result(m, f);
    case UM_MUX_FIN: return on_fin(m, f);
    case UM_MUX_RST: return on_rst(m, f);
    case UM_MUX_WINDOW: return on_window(m, f);
    case UM_MUX_PING: {
        um_mux_frame_t p = *f;
        p.type = UM_MUX_PONG;
        if (mux_ctl_frame(m, &p, true) != 0) {
            m->st.pongs_dropped++;
            mux_dbg(m, "PONG dropped: control queue full", f->value);
        }
        return 0;
    }
    case UM_MUX_PONG: return on_pong(m, f);
    case UM_MUX_GOAWAY: return on_goaway(m, f);
    case UM_MUX_PADDING: return 0;
    case UM_MUX_DATAGRAM: return mux_on_datagram(m, f);
    case UM_MUX_ASSOC_CLOSE: return mux_on_assoc_close(m, f);
    default:
        m->st.frames_ignored++;
        mux_dbg(m, "ignorable frame type skipped", f->type);
        return 0;
    }
}

static int handle_bytes(um_mux_t *m, const uint8_t *p, size_t n)
{
    um_mux_frame_t f;
    size_t used;
    if (um_mux_frame_decode(p, n, &f, &used) != 0 || used != n)
        return mux_proto(m, "malformed frame");
    return handle(m, &f);
}

int um_mux_feed(um_mux_t *m, const uint8_t *p, size_t n)
{
    if (m->err) return m->err;
    if (n && !p) return UM_EINVAL;
    m->last_rx = m->now;
    m->st.bytes_in += n;
    while (n > 0 && !m->err) {
        if (m->part_len > 0) {
            if (m->part_len < UM_MUX_HDR) {
                size_t k = UM_MUX_HDR - m->part_len;
                if (k > n) k = n;
                memcpy(m->part + m->part_len, p, k);
                m->part_len += k;
                p += k;
                n -= k;
                if (m->part_len < UM_MUX_HDR) break;
                if (um_mux_frame_peek(m->part, m->part_len, &m->part_need) != 0)
                    return mux_proto(m, "bad frame header");
            }
            size_t k = m->part_need - m->part_len;
            if (k > n) k = n;
            memcpy(m->part + m->part_len, p, k);
            m->part_len += k;
            p += k;
            n -= k;
            if (m->part_len == m->part_need) {
                m->part_len = 0;
                handle_bytes(m, m->part, m->part_need);
            }
            continue;
        }
        um_mux_frame_t f;
        size_t used;
        int r = um_mux_frame_decode(p, n, &f, &used);
        if (r == UM_EAGAIN) { /* n < one frame <= HDR + FRAME_MAX: keep it */
            memcpy(m->part, p, n);
            m->part_len = n;
            if (n >= UM_MUX_HDR) um_mux_frame_peek(p, n, &m->part_need);
            break;
        }
        if (r) return mux_proto(m, "malformed frame");
        handle(m, &f);
        p += used;
        n -= used;
    }
    return m->err;
}

int um_mux_feed_eof(um_mux_t *m)
{
    if (m->err) return m->err;
    if (m->part_len) return mux_proto(m, "pipe closed inside a frame");
    return mux_fail(m, UM_EPIPE, UM_MUX_GOAWAY_NORMAL, "pipe closed");
}
