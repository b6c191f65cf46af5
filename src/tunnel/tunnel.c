/* Tunnel core: session + mux over one carrier (detached, attached again
 * on resumption), the pump between them, the timing profile, and the
 * tunnel's own API. Streams as um_conn_t are in conn.c, the hub in hub.c.
 * See tunnel.h for the picture and the rules. */
#include "tunnel/tunnel_int.h"

/* Allocation failure on demand, for the unit tests (um_tunnel_test_fail_alloc). */
static bool fail_alloc;

void um_tunnel_test_fail_alloc(bool on)
{
    fail_alloc = on;
}

void *tn_t_calloc(size_t n, size_t size)
{
    return fail_alloc ? NULL : calloc(n, size);
}

/* ---- result codes ---- */

int um_tunnel_result_to_conn(int mux_code)
{
    switch (mux_code) {
    case UM_MUX_OK: return UM_CONN_OK;
    case UM_MUX_ERR_NOT_ALLOWED: return UM_CONN_NOT_ALLOWED;
    case UM_MUX_ERR_NET_UNREACH: return UM_CONN_NET_UNREACHABLE;
    case UM_MUX_ERR_HOST_UNREACH: return UM_CONN_HOST_UNREACHABLE;
    case UM_MUX_ERR_REFUSED: return UM_CONN_REFUSED;
    case UM_MUX_ERR_TIMEDOUT: return UM_CONN_TIMED_OUT;
    case UM_MUX_ERR_HOST_NOT_FOUND: return UM_CONN_HOST_NOT_FOUND;
    default: return UM_CONN_GENERAL_FAILURE;
    }
}

uint8_t um_tunnel_result_to_mux(int r)
{
    switch (r) {
    case UM_CONN_OK: return UM_MUX_OK;
    case UM_CONN_NOT_ALLOWED: return UM_MUX_ERR_NOT_ALLOWED;
    case UM_CONN_NET_UNREACHABLE: return UM_MUX_ERR_NET_UNREACH;
    case UM_CONN_HOST_UNREACHABLE: return UM_MUX_ERR_HOST_UNREACH;
    case UM_CONN_REFUSED: return UM_MUX_ERR_REFUSED;
    case UM_CONN_TIMED_OUT: return UM_MUX_ERR_TIMEDOUT;
    case UM_CONN_HOST_NOT_FOUND: return UM_MUX_ERR_HOST_NOT_FOUND;
    default: return UM_MUX_ERR_GENERAL;
    }
}

/* ---- the pump ---- */

static void handle_event(um_tunnel_t *t, const um_mux_event_t *ev)
{
    struct tconn *c;
    switch (ev->type) {
    case UM_MUX_EV_OPENED:
        if (t->cbs->on_opened)
            t->cbs->on_opened(t, ev->id, &ev->addr, t->ud);
        else
            um_mux_stream_accept(t->mux, ev->id, UM_MUX_ERR_NOT_ALLOWED);
        break;
    case UM_MUX_EV_OPEN_RESULT:
        c = tn_lookup(t, ev);
        if (!c) break;
        if (ev->last) c->mux_gone = true;
        if (ev->code == UM_MUX_OK) {
            c->state = C_OPEN;
            tn_flush_pend(t, c);
            if (!c->closed) {
                c->refs++;
                if (c->cbs->on_open) c->cbs->on_open(c->arg, UM_CONN_OK);
                if (!c->closed && c->t == t) tn_mark_ready(t, c);
                tn_conn_unref(c);
            }
        } else {
            tn_conn_fail(t, c, 1, um_tunnel_result_to_conn(ev->code), 0);
        }
        break;
    case UM_MUX_EV_READABLE:
    case UM_MUX_EV_FIN:
        c = tn_lookup(t, ev);
        if (c) tn_mark_ready(t, c);
        break;
    case UM_MUX_EV_WRITABLE:
        c = tn_lookup(t, ev);
        if (c) tn_flush_pend(t, c);
        break;
    case UM_MUX_EV_RESET:
        c = tn_lookup(t, ev);
        if (!c) break;
        c->mux_gone = true;
        if (c->closed) /* the user closed it while this event was queued */
            tn_conn_gone(t, c);
        else
            tn_conn_fail(t, c, c->state == C_OPENING, UM_CONN_REFUSED, UM_EPIPE);
        break;
    case UM_MUX_EV_DGRAM:
        if (t->cbs->on_dgram) {
            t->cbs->on_dgram(t, ev->id, &ev->addr, ev->data, ev->len, t->ud);
        } else {
            for (struct tassoc *a = t->assocs; a; a = a->next)
                if (a->id == ev->id && a->cb) {
                    a->cb(a->arg, &ev->addr, ev->data, ev->len);
                    break;
                }
        }
        break;
    case UM_MUX_EV_ASSOC_CLOSED:
        if (t->cbs->on_assoc_closed) t->cbs->on_assoc_closed(t, ev->id, t->ud);
        break;
    case UM_MUX_EV_PONG:
        if (t->cbs->on_rtt) t->cbs->on_rtt(t, um_mux_rtt_ms(t->mux), t->ud);
        break;
    case UM_MUX_EV_GOAWAY:
        /* Either way the session is not to be resumed: when its connection
         * ends, the tunnel ends. A CLOSED one is no drain: the connection
         * ends right after it, and on_down says so. */
        t->goaway_in = true;
        t->goaway_code_in = ev->code;
        if (t->hub && t->hub->t == t) t->hub->t = NULL; /* new opens wait for the next one */
        if (!UM_MUX_GOAWAY_ENDS_NOW(ev->code) && t->cbs->on_goaway) t->cbs->on_goaway(t, t->ud);
        break;
    case UM_MUX_EV_ERROR:
        if (!t->fatal) t->fatal = ev->code ? ev->code : UM_EPROTO;
        break;
    }
}

/* The drain signal: streams that went above high water hear when they are
 * back at low water. Only the flagged streams are looked at. */
static void check_drain(um_tunnel_t *t)
{
    struct tconn **pp = &t->high;
    while (*pp && !t->down) {
        struct tconn *c = *pp;
        if (c->closed || tn_conn_queued(c) > UM_CONN_LOW_WATER) {
            pp = &c->hinext;
            continue;
        }
        *pp = c->hinext;
        c->above_high = false;
        c->refs++;
        if (c->cbs->on_drain) c->cbs->on_drain(c->arg);
        tn_conn_unref(c);
        pp = &t->high; /* the callback may have changed the list */
    }
}

/* Moves mux frames straight into the session's send queue (no copy between),
 * at most `limit` bytes. Returns how many. */
static size_t fill_session(um_tunnel_t *t, size_t limit)
{
    size_t filled = 0;
    while (filled < limit && um_mux_want_pull(t->mux)) {
        size_t room = 0;
        uint8_t *p = um_sess_write_reserve(t->sess, MUX_OUT_CAP, &room);
        if (!p) break; /* until acknowledgements free room */
        size_t n = um_mux_pull(t->mux, p, room);
        um_sess_write_commit(t->sess, n);
        if (!n) break;
        filled += n;
    }
    return filled;
}

/* ---- the timing profile (tunnel.h) ---- */

static void on_jitter(uv_timer_t *h);

/* Jitter: true when this flush is held back (its timer releases it). Only a
 * flush that starts a burst is: inside one (a record left less than
 * burst_gap_ms ago, or the carrier still has bytes queued) nothing waits. */
static bool jitter_hold(um_tunnel_t *t)
{
    if (t->tm.profile != UM_TUNNEL_TIMING_JITTER || t->jit_go) return false;
    if (t->jit_armed) return true;
    if (!um_mux_want_pull(t->mux) && !um_sess_want_pull(t->sess)) return false;
    if (!t->car || um_carrier_queued(t->car) > 0) return false;
    if (um_now_ms() - t->last_tx_ms < t->tm.burst_gap_ms) return false;
    uint32_t d = randombytes_uniform(t->tm.delay_max_ms + 1);
    if (d == 0) return false;
    t->jit_armed = true;
    t->st.timing_delays++;
    uv_timer_start(&t->jtimer, on_jitter, d, 0);
    return true;
}

static void pump(um_tunnel_t *t);

static void on_jitter(uv_timer_t *h)
{
    um_tunnel_t *t = h->data;
    t->jit_armed = false;
    if (t->down) return;
    t->jit_go = true; /* this pump's flushes go now */
    pump(t);
    t->jit_go = false;
}

static uint32_t idle_gap(const um_tunnel_timing_t *tm)
{
    return tm->idle_min_ms + randombytes_uniform(tm->idle_max_ms - tm->idle_min_ms + 1);
}

/* Sizes of small HTTP/2 frames as TLS 1.3 record payloads (frame, content
 * type byte, 16-byte tag): SETTINGS ack (9), WINDOW_UPDATE (13), PING (17),
 * PING ack, and a small HEADERS/DATA frame of a few dozen bytes. */
static size_t filler_size(void)
{
    static const uint16_t sizes[] = {26, 30, 34, 34, 34, 30};
    uint32_t i = randombytes_uniform(sizeof(sizes) / sizeof(sizes[0]) + 1);
    size_t n = i < sizeof(sizes) / sizeof(sizes[0]) ? sizes[i] : 40 + randombytes_uniform(60);
    return n < UM_SESS_FILLER_MIN ? UM_SESS_FILLER_MIN : n;
}

/* The silence timer: a filler once this side has written nothing for
 * idle_gap_ms; otherwise it sleeps until that point. */
static void on_filler(uv_timer_t *h)
{
    um_tunnel_t *t = h->data;
    if (t->down) return;
    uint64_t now = um_now_ms(), quiet = now - t->last_tx_ms;
    if (quiet < t->idle_gap_ms) {
        uv_timer_start(&t->ftimer, on_filler, t->idle_gap_ms - quiet, 0);
        return;
    }
    size_t fsize = filler_size();
    if (!t->finishing && !t->fatal && t->car && um_carrier_queued(t->car) == 0 &&
        !um_sess_want_pull(t->sess) && !t->budget_hit &&
        (!t->car_budget || t->car_bytes + fsize <= t->car_budget)) {
        size_t n = 0;
        if (um_sess_pull_filler(t->sess, fsize, t->out, OUT_CAP, &n) == 0 && n &&
            um_carrier_write(t->car, t->out, n) == 0) {
            t->st.bytes_out += n;
            t->car_bytes += n;
            t->st.timing_fillers++;
        }
    }
    t->last_tx_ms = now;
    t->idle_gap_ms = idle_gap(&t->tm);
    uv_timer_start(&t->ftimer, on_filler, t->idle_gap_ms, 0);
}

void um_tunnel_timing_default(um_tunnel_timing_t *tm, int profile)
{
    memset(tm, 0, sizeof(*tm));
    tm->profile = profile;
    tm->delay_max_ms = UM_TUNNEL_JITTER_MAX_MS;
    tm->burst_gap_ms = UM_TUNNEL_JITTER_GAP_MS;
    tm->idle_min_ms = UM_TUNNEL_IDLE_MIN_MS;
    tm->idle_max_ms = UM_TUNNEL_IDLE_MAX_MS;
}

void um_tunnel_set_timing(um_tunnel_t *t, const um_tunnel_timing_t *tm)
{
    if (t->down) return;
    t->tm = *tm;
    if (t->tm.delay_max_ms > 1000) t->tm.delay_max_ms = 1000;
    if (t->tm.idle_min_ms < 1) t->tm.idle_min_ms = 1;
    if (t->tm.idle_max_ms < t->tm.idle_min_ms) t->tm.idle_max_ms = t->tm.idle_min_ms;
    uv_timer_stop(&t->ftimer);
    if (t->tm.profile != UM_TUNNEL_TIMING_JITTER) {
        uv_timer_stop(&t->jtimer);
        t->jit_armed = false;
        tn_schedule(t); /* a held flush goes now */
        return;
    }
    t->idle_gap_ms = idle_gap(&t->tm);
    uv_timer_start(&t->ftimer, on_filler, t->idle_gap_ms, 0);
}

/* mux → session → TCP, in batches: up to 64 KiB of frames become a few
 * records that leave in one write. */
static void detach(um_tunnel_t *t, int err);

/* The owner hears once when the carrier has carried its soft mark. */
static void check_soft(um_tunnel_t *t)
{
    if (t->car_soft && !t->soft_told && t->car_bytes >= t->car_soft) {
        t->soft_told = true;
        t->note_budget = true;
        tn_schedule(t);
    }
}

/* The outn sealed bytes in t->out to the carrier, counted; a write error
 * detaches a resumable tunnel (or is fatal). Negative on that error. */
static int car_out(um_tunnel_t *t, size_t outn)
{
    int r = um_carrier_write(t->car, t->out, outn);
    if (r < 0) {
        if (t->resumable && !t->goaway_in)
            detach(t, r);
        else
            t->fatal = r;
        return r;
    }
    t->st.bytes_out += outn;
    t->car_bytes += outn;
    check_soft(t);
    return 0;
}

/* Records from the session (fed by the mux) to the carrier. True when it
 * moved anything: pulling from the mux frees send-buffer room, which may have
 * queued writable events the pump must deliver in its next round. */
static bool outbound(um_tunnel_t *t)
{
    bool moved = false;
    if (!t->car || t->budget_hit) return false; /* detached, or waiting for the next carrier */
    if (jitter_hold(t)) return false;           /* on_jitter pumps again */
    for (int round = 0; round < 64 && !t->down && t->car; round++) {
        if (um_carrier_queued(t->car) >= TCP_HIGH) return moved; /* the drain callback resumes */
        size_t filled = fill_session(t, MUX_OUT_CAP);
        if (filled) moved = true;
        if (!um_sess_want_pull(t->sess)) return moved;
        size_t outn = 0, limit = OUT_CAP;
        if (t->car_budget) {
            uint64_t left = t->car_budget > t->car_bytes ? t->car_budget - t->car_bytes : 0;
            if (left < limit) limit = (size_t)left;
        }
        int r = um_sess_pull_limit(t->sess, t->out, OUT_CAP, limit, &outn);
        if (r < 0) {
            t->fatal = r;
            return moved;
        }
        if (!outn && limit < OUT_CAP) {
            /* The carrier's budget is spent: what is left waits for the
             * next one, and the owner hears it (from the idle handle). */
            t->budget_hit = true;
            t->note_budget = true;
            tn_schedule(t);
            return moved;
        }
        if (outn) {
            if (car_out(t, outn) < 0) return moved;
            moved = true;
            if (t->tm.profile != UM_TUNNEL_TIMING_NONE) t->last_tx_ms = um_now_ms();
        }
        if (!outn && !filled) return moved;
    }
    tn_schedule(t); /* more to do: next loop iteration */
    return moved;
}

/* One record of what the mux holds first (a new stream's OPEN and first
 * bytes, when one is due: um_mux_want_pull_urgent) to the carrier, from the
 * pump before it hands the turn's received bulk to the streams: the OPEN
 * then leaves without waiting for the four 64 KiB writes of a download's
 * delivery. Only where nothing else decides when bytes leave: no
 * timing profile, no carrier budget (outbound() keeps those rules), the
 * carrier's queue below its mark. The same calls as outbound()'s, from the
 * same place (the pump, after the mux's events): no callback of the user
 * runs inside. True when it wrote. */
static bool outbound_urgent(um_tunnel_t *t)
{
    if (!t->car || t->budget_hit || t->car_budget || t->tm.profile != UM_TUNNEL_TIMING_NONE)
        return false;
    if (um_carrier_queued(t->car) >= TCP_HIGH) return false;
    fill_session(t, 1); /* one pull: at most one record of frames */
    size_t outn = 0;
    int r = um_sess_pull(t->sess, t->out, OUT_CAP, &outn);
    if (r < 0) {
        t->fatal = r;
        return false;
    }
    if (!outn) return false;
    if (car_out(t, outn) < 0) return false;
    t->st.urgent_writes++;
    return true;
}

static void feed_hold(um_tunnel_t *t)
{
    if (!t->hold_len) return;
    size_t used = 0;
    int r = um_sess_feed(t->sess, t->hold, t->hold_len, &used);
    if (r < 0) {
        t->fatal = r;
        return;
    }
    memmove(t->hold, t->hold + used, t->hold_len - used);
    t->hold_len -= used;
    if (t->hold_len == 0 && !t->finishing && t->car) um_carrier_read_start(t->car);
}

static void pump(um_tunnel_t *t)
{
    if (t->down || t->in_pump) return;
    t->in_pump = true;
    bool progress = false;
    for (int round = 0; round < 8 && !t->down && !t->fatal; round++) {
        progress = false;
        /* Plaintext from the session into the mux, without a copy between. */
        for (int i = 0; i < 64; i++) {
            const uint8_t *p;
            size_t n = um_sess_peek(t->sess, &p);
            if (!n) break;
            progress = true;
            int r = um_mux_feed(t->mux, p, n);
            um_sess_consume(t->sess, n);
            if (r < 0 && !t->fatal) t->fatal = r;
        }
        feed_hold(t);
        um_mux_event_t ev;
        for (int i = 0; i < 4096 && um_mux_poll(t->mux, &ev); i++) {
            progress = true;
            handle_event(t, &ev);
            if (t->down) goto out;
        }
        if (t->ready && um_mux_want_pull_urgent(t->mux) && outbound_urgent(t)) progress = true;
        if (t->down || t->fatal) break;
        while (t->ready && !t->down) {
            struct tconn *c = t->ready;
            t->ready = c->rnext;
            c->ready = false;
            progress = true;
            tn_deliver(t, c);
        }
        if (t->down) goto out;
        if (outbound(t)) progress = true;
        tn_ack_clock(t);
        if (t->high) check_drain(t);
        if (!progress && um_sess_readable(t->sess) == 0) break;
    }
    /* Work left after the last round (the round bound was reached while
     * things still moved) goes on in the next loop iteration. */
    if (!t->down && (um_sess_readable(t->sess) || t->ready || progress)) tn_schedule(t);
    if (t->fatal && !t->down) {
        /* Send what the mux queued (its GOAWAY), then end. */
        if (t->mux) {
            fill_session(t, MUX_OUT_CAP);
            size_t outn = 0;
            if (t->car && um_sess_pull(t->sess, t->out, OUT_CAP, &outn) == 0 && outn)
                um_carrier_write(t->car, t->out, outn);
        }
        tn_die(t, t->fatal);
    } else if (!t->down && t->graceful && !t->finishing && um_mux_done(t->mux) &&
               !um_sess_want_pull(t->sess)) {
        if (!t->car) {
            tn_die(t, UM_EPIPE); /* nothing left to say, and nowhere to say it */
        } else {
            t->finishing = true;
            um_carrier_shutdown(t->car); /* FIN after the queued records; tn_die on EOF or timer */
        }
    }
out:
    t->in_pump = false;
}

static void on_idle(uv_idle_t *h)
{
    um_tunnel_t *t = h->data;
    uv_idle_stop(h);
    t->idle_on = false;
    if (t->down) {
        tn_finish(t);
        return;
    }
    t->rd_iter = 0;
    if (t->rd_paused) {
        t->rd_paused = false;
        if (!t->hold_len && !t->finishing && t->car) um_carrier_read_start(t->car);
    }
    /* The owner's notes, here and not where they arose (that may be inside
     * one of its own calls). */
    if (t->note_detached) {
        int err = t->note_detached;
        t->note_detached = 0;
        if (t->cbs->on_detached) t->cbs->on_detached(t, err, t->ud);
        if (t->down) return;
    }
    if (t->note_budget && t->car) {
        t->note_budget = false;
        if (t->cbs->on_budget) t->cbs->on_budget(t, t->budget_hit, t->ud);
        if (t->down) return;
    }
    pump(t);
}

void tn_schedule(um_tunnel_t *t)
{
    if (t->down || t->idle_on) return;
    t->idle_on = true;
    uv_idle_start(&t->idle, on_idle);
}

/* The records of this read into the mux, and its events handled, in the
 * turn they were read: an OPEN reaches the owner (on_opened: the server's
 * dial starts) now, not after the loop's next turn. Stream deliveries and
 * the carrier's writes stay with the pump (the idle handle), so the records
 * of several reads still reach each stream together. From the carrier's
 * read callback only, which no call of the tunnel's user runs inside; the
 * pump's guard keeps it out of a pump in progress. */
static void feed_mux(um_tunnel_t *t)
{
    if (t->down || t->in_pump || !t->mux) return;
    t->in_pump = true;
    for (int i = 0; i < 64 && !t->fatal; i++) {
        const uint8_t *p;
        size_t n = um_sess_peek(t->sess, &p);
        if (!n) break;
        int r = um_mux_feed(t->mux, p, n);
        um_sess_consume(t->sess, n);
        if (r < 0) t->fatal = r;
    }
    um_mux_event_t ev;
    for (int i = 0; i < 4096 && !t->down && um_mux_poll(t->mux, &ev); i++)
        handle_event(t, &ev);
    t->in_pump = false;
}

static void on_car_read(um_carrier_t *car, const uint8_t *p, size_t n, int status, void *ud)
{
    um_tunnel_t *t = ud;
    if (t->down) return;
    if (status != 0) {
        /* Records of earlier reads may still wait for the pump (it runs from
         * the idle handle): they reach the mux before the end does, as the
         * peer sent them. Those already in the mux (feed_mux) wait on the
         * ready list for that pump. */
        if (um_sess_readable(t->sess) || t->ready || t->idle_on) {
            pump(t);
            if (t->down) return;
        }
        if (t->finishing) {
            tn_die(t, UM_EPIPE);
            return;
        }
        if (t->resumable && !t->graceful && !t->goaway_in) {
            /* The connection broke, not the session: the owner brings the
             * next connection, or gives up (um_tunnel_close). */
            detach(t, status);
            return;
        }
        /* The streams still open now are lost with the connection (the
         * mux may reset them before tn_finish() would count them). */
        for (struct tconn *c = t->conns; c; c = c->lnext)
            if (!c->closed) t->st.streams_failed++;
        t->lost_counted = true;
        int r = um_mux_feed_eof(t->mux);
        t->fatal = r ? r : UM_EPIPE;
        pump(t);
        if (!t->down) tn_die(t, t->fatal);
        return;
    }
    t->st.bytes_in += n;
    t->car_bytes += n;
    check_soft(t);
    t->last_rx_ms = um_now_ms();
    size_t used = 0;
    int r = t->hold_len ? 0 : um_sess_feed(t->sess, p, n, &used);
    if (r < 0) {
        t->fatal = r;
    } else if (used < n) {
        /* The session's read queue is full: keep the rest (behind anything
         * already held), stop reading until the pump has fed it. */
        if (n - used > SCRATCH_CAP - t->hold_len) {
            t->fatal = UM_ENOSPC; /* cannot happen: reads stop while bytes are held */
        } else {
            memcpy(t->hold + t->hold_len, p + used, n - used);
            t->hold_len += n - used;
            um_carrier_read_stop(car);
        }
    }
    /* A bounded share of each loop iteration: past RD_ITER_MAX bytes read
     * since the last idle turn, reading pauses until the next one, so the
     * other connections of this loop (a new SOCKS5 client, a small
     * response's socket) are served between two bulk bursts instead of after
     * libuv's 32 reads of 64 KiB. */
    t->rd_iter += n;
    if (t->rd_iter >= RD_ITER_MAX && !t->hold_len && !t->rd_paused && t->car) {
        um_carrier_read_stop(car);
        t->rd_paused = true;
    }
    /* The pump runs from the idle handle, once the loop has delivered every
     * read of this iteration: records from several reads reach each stream
     * together, so the streams' bytes leave in a few large writes instead of
     * one small write per stream per read (8 parallel downloads: 40k writes
     * of 13 KB for 512 MB at the client before, see bench/peers.sh). */
    if (t->fatal) {
        pump(t);
    } else {
        feed_mux(t);
        if (t->fatal && !t->down)
            pump(t);
        else
            tn_schedule(t);
    }
}

static void on_car_drain(um_carrier_t *car, void *ud)
{
    (void)car;
    pump(ud);
}

static void on_timer(uv_timer_t *h)
{
    um_tunnel_t *t = h->data;
    if (t->down) return;
    uint64_t now = um_now_ms();
    if (t->finishing && now >= t->drain_deadline) {
        tn_die(t, UM_EPIPE);
        return;
    }
    if (t->graceful && !t->finishing && now >= t->drain_deadline) {
        tn_die(t, UM_ETIMEDOUT);
        return;
    }
    if (!t->car) return; /* detached: time stands still for the mux until the next carrier */
    if (t->resumable && t->stall_ms && !t->finishing && !t->goaway_in &&
        now - t->last_rx_ms >= t->stall_ms) {
        /* Nothing has come for stall_ms while the peer owes us an
         * acknowledgement: a frozen or silently dropped connection. */
        um_sess_offsets_t o;
        um_sess_offsets(t->sess, &o);
        if (o.tx_sent > o.tx_acked || o.tx_queued > o.tx_sent) {
            detach(t, UM_ETIMEDOUT);
            return;
        }
    }
    int r = um_mux_tick(t->mux, now);
    if (r == UM_ETIMEDOUT) {
        tn_die(t, UM_ETIMEDOUT);
        return;
    }
    tn_size_resend(t, now);
    tn_size_rcvq(t, now);
    pump(t);
}

/* The carrier is gone; the session, the mux and the streams stay. */
static void detach(um_tunnel_t *t, int err)
{
    if (t->down || !t->car) return;
    um_carrier_close(t->car);
    t->car = NULL;
    t->hold_len = 0; /* bytes of the old connection: the peer resends them */
    t->budget_hit = false;
    t->note_budget = false;
    t->note_detached = err ? err : UM_EPIPE;
    t->st.detaches++;
    uv_timer_stop(&t->jtimer);
    t->jit_armed = false;
    tn_schedule(t);
}

static void on_handle_closed(uv_handle_t *h)
{
    um_tunnel_t *t = h->data;
    if (--t->handles > 0) return;
    free(t->out);
    free(t->hold);
    free(t);
}

/* The tunnel is over. Nothing is told here: tn_die() may run inside a user's
 * call (um_tunnel_close), so the streams' callbacks and on_down run from
 * the idle handle, on the next turn of the loop (tn_finish()). The connection
 * is closed now, so no byte moves after this. */
void tn_die(um_tunnel_t *t, int err)
{
    if (t->down) return;
    t->down = true;
    t->down_err = err;
    if (t->hub && t->hub->t == t) t->hub->t = NULL;
    if (t->car) um_carrier_close(t->car);
    t->car = NULL;
    uv_timer_stop(&t->timer);
    uv_timer_stop(&t->jtimer);
    uv_timer_stop(&t->ftimer);
    if (!t->idle_on) {
        t->idle_on = true;
        uv_idle_start(&t->idle, on_idle);
    }
}

/* Every stream learns its fate, then the owner; then the tunnel goes. No
 * allocation here (it cannot fail half-way): streams are taken off the
 * list one by one, and a callback may close any of them. */
void tn_finish(um_tunnel_t *t)
{
    while (t->conns) {
        struct tconn *c = t->conns;
        if (c->closed) {
            tn_conn_gone(t, c);
        } else {
            if (!t->lost_counted) t->st.streams_failed++;
            tn_conn_fail(t, c, c->state == C_OPENING, UM_CONN_GENERAL_FAILURE, UM_EPIPE);
        }
    }
    for (struct tassoc *a = t->assocs; a; a = a->next)
        a->t = NULL;
    t->assocs = NULL;
    if (t->cbs->on_down) t->cbs->on_down(t, t->down_err, t->ud);
    /* Streams a callback closed after they were failed are already off the
     * list; nothing can add one to a tunnel that is down. */
    um_mux_free(t->mux);
    t->mux = NULL;
    um_sess_free(t->sess);
    t->sess = NULL;
    uv_close((uv_handle_t *)&t->idle, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
    uv_close((uv_handle_t *)&t->jtimer, on_handle_closed);
    uv_close((uv_handle_t *)&t->ftimer, on_handle_closed);
}

int um_tunnel_new(uv_loop_t *loop, um_sess_t *sess, um_carrier_t *car, um_mux_role_t role,
                  const um_mux_config_t *mcfg, const um_tunnel_cbs_t *cbs, void *ud,
                  um_tunnel_t **out)
{
    um_tunnel_t *t = tn_t_calloc(1, sizeof(*t));
    if (!t) return UM_ENOMEM;
    t->loop = loop;
    t->cbs = cbs;
    t->ud = ud;
    t->out = malloc(OUT_CAP);
    t->hold = malloc(SCRATCH_CAP);
    t->mux = um_mux_new(role, mcfg);
    if (!t->out || !t->hold || !t->mux) {
        um_mux_free(t->mux);
        free(t->out);
        free(t->hold);
        free(t);
        return UM_ENOMEM;
    }
    t->sess = sess;
    t->car = car;
    t->tx_ceiling = um_sess_tx_max(sess);
    t->rtt_min = UINT64_MAX;
    if (t->tx_ceiling > UM_TUNNEL_SESS_TX_START) um_sess_set_tx_max(sess, UM_TUNNEL_SESS_TX_START);
    uv_idle_init(loop, &t->idle);
    uv_timer_init(loop, &t->timer);
    uv_timer_init(loop, &t->jtimer);
    uv_timer_init(loop, &t->ftimer);
    t->idle.data = t->timer.data = t->jtimer.data = t->ftimer.data = t;
    t->handles = 4;
    t->last_tx_ms = t->last_rx_ms = um_now_ms();
    um_carrier_set_wq_max(car, TCP_WQ_MAX);
    um_carrier_set_cbs(car, on_car_read, on_car_drain, t);
    um_carrier_read_start(car);
    tn_size_rcvq(t, um_now_ms());
    uv_timer_start(&t->timer, on_timer, TICK_MS, TICK_MS);
    um_mux_tick(t->mux, um_now_ms());
    tn_schedule(t); /* the session may already hold bytes that came with the handshake */
    *out = t;
    return 0;
}

void um_tunnel_close(um_tunnel_t *t, bool graceful, uint32_t drain_ms)
{
    if (t->down) return;
    if (!graceful) {
        um_tunnel_close_code(t, UM_MUX_GOAWAY_CLOSED);
        return;
    }
    if (t->graceful) return;
    t->graceful = true;
    t->drain_deadline = um_now_ms() + drain_ms;
    if (t->hub && t->hub->t == t) t->hub->t = NULL;
    um_mux_goaway(t->mux, UM_MUX_GOAWAY_NORMAL);
    tn_schedule(t);
}

int um_tunnel_goaway_code(const um_tunnel_t *t)
{
    return t->goaway_in ? t->goaway_code_in : -1;
}

void um_tunnel_close_code(um_tunnel_t *t, uint8_t code)
{
    if (t->down) return;
    /* Tell the peer the session ends (so it does not try to resume it):
     * best effort, the GOAWAY leaves now if the connection has room. */
    if (t->car && !t->fatal && um_mux_goaway(t->mux, code) == 0) {
        fill_session(t, MUX_OUT_CAP);
        size_t outn = 0;
        if (um_sess_pull(t->sess, t->out, OUT_CAP, &outn) == 0 && outn)
            um_carrier_write(t->car, t->out, outn);
    }
    tn_die(t, UM_EPIPE);
}

void um_tunnel_set_resumable(um_tunnel_t *t, uint32_t stall_ms)
{
    t->resumable = t->cbs->on_detached != NULL;
    t->stall_ms = stall_ms;
}

void um_tunnel_set_budget(um_tunnel_t *t, uint64_t budget, uint64_t soft, uint64_t wire)
{
    t->car_budget = budget;
    t->car_soft = soft;
    t->soft_told = false;
    t->car_bytes += wire;
    check_soft(t);
}

int um_tunnel_attach(um_tunnel_t *t, um_carrier_t *car, const uint8_t *rest, size_t n,
                     uint64_t wire, uint64_t budget, uint64_t soft)
{
    if (t->down || t->graceful || !car) return UM_EINVAL;
    if (n > SCRATCH_CAP) return UM_EMSGSIZE;
    if (t->car) {
        um_carrier_close(t->car); /* make-before-break: the new one is ready */
        t->st.rotations++;
    }
    t->note_detached = 0; /* a detach not yet told is moot now */
    t->car = car;
    t->hold_len = 0;                 /* bytes of the old connection: the peer resends them */
    if (n) memcpy(t->hold, rest, n); /* rest may be NULL when n is 0 (client.c) */
    t->hold_len = n;
    t->car_bytes = wire;
    t->car_budget = budget;
    t->car_soft = soft;
    t->soft_told = false;
    t->budget_hit = t->note_budget = false;
    t->last_rx_ms = t->last_tx_ms = um_now_ms();
    t->st.attaches++;
    check_soft(t);
    um_carrier_set_wq_max(car, TCP_WQ_MAX);
    um_carrier_set_cbs(car, on_car_read, on_car_drain, t);
    t->rd_iter = 0;
    t->rd_paused = false;
    t->rtt_probe_t = 0; /* offsets restart with the resumption */
    t->bdp_t0 = 0;
    t->rq_t0 = 0; /* a new socket: its queue is bounded afresh */
    t->rq_buf = 0;
    t->st.rcv_buf = 0;
    tn_size_rcvq(t, um_now_ms());
    if (!t->hold_len) um_carrier_read_start(car);
    um_mux_touch(t->mux, um_now_ms());
    tn_schedule(t);
    return 0;
}

void um_tunnel_detach(um_tunnel_t *t)
{
    detach(t, UM_EPIPE);
    t->note_detached = 0; /* the owner knows */
}

bool um_tunnel_attached(const um_tunnel_t *t)
{
    return t->car != NULL;
}

uint64_t um_tunnel_carrier_bytes(const um_tunnel_t *t)
{
    return t->car ? t->car_bytes : 0;
}

um_sess_t *um_tunnel_session(um_tunnel_t *t)
{
    return t->sess;
}

uint32_t um_tunnel_rtt(const um_tunnel_t *t)
{
    return t->mux ? um_mux_rtt_ms(t->mux) : 0;
}

void um_tunnel_stats(const um_tunnel_t *t, um_tunnel_stats_t *st)
{
    *st = t->st;
    st->streams_open = t->n_conns;
    if (t->mux) {
        um_mux_stats_t ms;
        um_mux_get_stats(t->mux, &ms);
        st->payload_in = ms.payload_in;
        st->payload_out = ms.payload_out;
        st->streams_early = ms.opens_early_in;
    }
}

bool um_tunnel_is_down(const um_tunnel_t *t)
{
    return t->down;
}

void um_tunnel_flush(um_tunnel_t *t)
{
    if (t && !t->down) pump(t);
}
