/* Datagram associations: the association table, DATAGRAM and ASSOC_CLOSE from
 * the peer, and the datagram API. Part of the multiplexer (mux_int.h). */
#include "mux/mux_int.h"

#include <string.h>

#include "util/err.h"

/* ---- receiving --------------------------------------------------------- */

static long assoc_find(const um_mux_t *m, uint32_t id)
{
    for (size_t i = 0; i < m->nassoc; i++)
        if (m->assoc[i] == id) return (long)i;
    return -1;
}

static void assoc_del(um_mux_t *m, size_t i)
{
    m->assoc[i] = m->assoc[--m->nassoc];
}

int mux_on_datagram(um_mux_t *m, const um_mux_frame_t *f)
{
    if (assoc_find(m, f->id) < 0) {
        if (mux_own_id(m, f->id)) {
            if (f->id >= m->next_assoc)
                return mux_proto(m, "DATAGRAM on an association never opened");
            m->st.dgram_dropped_in++;
            mux_dbg(m, "datagram on a closed association dropped", f->id);
            return 0;
        }
        if (f->id <= m->peer_assoc_max) {
            m->st.dgram_dropped_in++;
            mux_dbg(m, "datagram on a closed association dropped", f->id);
            return 0;
        }
        m->peer_assoc_max = f->id; /* the first datagram opens the association */
        if (m->nassoc >= m->cfg.max_assocs) {
            um_mux_frame_t c = {.type = UM_MUX_ASSOC_CLOSE, .id = f->id};
            m->st.dgram_dropped_in++;
            mux_dbg(m, "association refused: limit", f->id);
            mux_ctl_frame(m, &c, true); /* best effort: the datagram is lost anyway */
            return 0;
        }
        m->assoc[m->nassoc++] = f->id;
    }
    if (m->dg_rx_bytes + f->data_len > m->cfg.dgram_rx_max) {
        m->st.dgram_dropped_in++;
        mux_dbg(m, "datagram dropped: receive queue full", f->id);
        return 0;
    }
    um_mux_event_t *ev = mux_ev_push(m, UM_MUX_EV_DGRAM, f->id, 0, f->data_len);
    if (!ev) return mux_nomem(m);
    ev->addr = f->addr;
    if (f->data_len) memcpy((uint8_t *)ev->data, f->data, f->data_len);
    m->dg_rx_bytes += f->data_len;
    m->st.payload_in += f->data_len;
    return 0;
}

int mux_on_assoc_close(um_mux_t *m, const um_mux_frame_t *f)
{
    long i = assoc_find(m, f->id);
    if (i < 0) {
        if (mux_own_id(m, f->id) ? f->id >= m->next_assoc : false)
            return mux_proto(m, "ASSOC_CLOSE for an association never opened");
        if (!mux_own_id(m, f->id) && f->id > m->peer_assoc_max) m->peer_assoc_max = f->id;
        m->st.frames_ignored++;
        return 0;
    }
    assoc_del(m, (size_t)i);
    if (!mux_ev_push(m, UM_MUX_EV_ASSOC_CLOSED, f->id, 0, 0)) return mux_nomem(m);
    return 0;
}

/* ---- datagrams --------------------------------------------------------- */

int um_mux_assoc_open(um_mux_t *m, uint32_t *id)
{
    if (m->err) return m->err;
    if (m->nassoc >= m->cfg.max_assocs || m->next_assoc > UINT32_MAX - 2) return UM_ELIMIT;
    *id = m->next_assoc;
    m->next_assoc += 2;
    m->assoc[m->nassoc++] = *id;
    return 0;
}

int um_mux_assoc_close(um_mux_t *m, uint32_t id)
{
    if (m->err) return m->err;
    long i = assoc_find(m, id);
    if (i < 0) return UM_ENOENT;
    assoc_del(m, (size_t)i);
    um_mux_frame_t f = {.type = UM_MUX_ASSOC_CLOSE, .id = id};
    if (mux_ctl_frame(m, &f, false) != 0)
        return mux_fail(m, UM_ELIMIT, UM_MUX_GOAWAY_LIMIT, "control queue full");
    return 0;
}

int um_mux_dgram_send(um_mux_t *m, uint32_t id, const um_addr_t *addr, const void *p, size_t n)
{
    if (m->err) return m->err;
    if (!mux_addr_ok(addr) || (n && !p)) return UM_EINVAL;
    if (assoc_find(m, id) < 0)
        return (mux_own_id(m, id) ? id < m->next_assoc : id <= m->peer_assoc_max) ? UM_EPIPE
                                                                                  : UM_ENOENT;
    size_t len = um_mux_addr_size(addr) + n;
    if (len > m->cfg.max_frame) return UM_EMSGSIZE;
    uint8_t *q = um_buf_reserve(&m->dg.tx, UM_MUX_HDR + len);
    if (!q) {
        m->st.dgram_dropped_out++;
        return UM_ENOSPC;
    }
    um_mux_frame_t f = {.type = UM_MUX_DATAGRAM, .id = id, .addr = *addr, .data = p, .data_len = n};
    size_t w;
    int r = um_mux_frame_encode(&f, q, UM_MUX_HDR + len, &w);
    if (r) return r;
    um_buf_commit(&m->dg.tx, w);
    mux_active_add(m, &m->dg);
    return 0;
}
