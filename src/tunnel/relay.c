#include "tunnel/relay.h"

#include <stdbool.h>
#include <stdlib.h>

#include "util/clock.h"

#define LINGER_MS 10000 /* bound on flushing queued bytes after both EOFs */

typedef struct {
    um_conn_t *c;
    bool eof_in;    /* this side said EOF */
    bool paused;    /* we stopped reading this side */
    uint64_t bytes; /* read from this side */
} side_t;

struct um_relay {
    uv_timer_t timer;
    side_t s[2];
    um_relay_open_cb open_cb;
    um_relay_end_cb end_cb;
    um_relay_first_cb first_cb;
    void *ud;
    uint64_t linger_until;
    bool started, ended, timer_on;
};

static void relay_freed(uv_handle_t *h)
{
    free(h->data);
}

static void end(um_relay_t *r)
{
    if (r->ended) return;
    r->ended = true;
    for (int i = 0; i < 2; i++)
        if (r->s[i].c) {
            um_conn_close(r->s[i].c);
            r->s[i].c = NULL;
        }
    if (r->end_cb) r->end_cb(r, r->s[0].bytes, r->s[1].bytes, r->ud);
    uv_close((uv_handle_t *)&r->timer, relay_freed);
}

static bool flushed(um_relay_t *r)
{
    for (int i = 0; i < 2; i++)
        if (r->s[i].c && um_conn_queued(r->s[i].c) > 0) return false;
    return true;
}

static void on_timer(uv_timer_t *h)
{
    um_relay_t *r = h->data;
    if (flushed(r) || um_now_ms() >= r->linger_until) end(r);
}

static void check_done(um_relay_t *r)
{
    if (!r->s[0].eof_in || !r->s[1].eof_in || r->ended) return;
    if (flushed(r)) {
        end(r);
        return;
    }
    if (!r->timer_on) {
        r->timer_on = true;
        r->linger_until = um_now_ms() + LINGER_MS;
        uv_timer_start(&r->timer, on_timer, 20, 20);
    }
}

static void on_open(um_relay_t *r, int i, int result)
{
    if (r->open_cb) r->open_cb(r, i, result, r->ud);
}

static void on_data(um_relay_t *r, int i, const uint8_t *p, size_t n)
{
    side_t *me = &r->s[i], *other = &r->s[1 - i];
    if (!r->started || r->ended || !other->c) return;
    bool first = me->bytes == 0;
    me->bytes += n;
    if (um_conn_write(other->c, p, n) != 0) {
        end(r);
        return;
    }
    if (!me->paused && um_conn_queued(other->c) > UM_CONN_HIGH_WATER) {
        me->paused = true;
        um_conn_read_stop(me->c);
    }
    if (first && r->first_cb) r->first_cb(r, i, r->ud); /* last: may end the relay */
}

static void on_eof(um_relay_t *r, int i)
{
    side_t *other = &r->s[1 - i];
    if (!r->started || r->ended) return;
    r->s[i].eof_in = true;
    if (other->c) um_conn_shutdown(other->c);
    check_done(r);
}

static void on_error(um_relay_t *r, int i, int err)
{
    (void)i;
    (void)err;
    if (r->started) end(r);
}

static void on_drain(um_relay_t *r, int i)
{
    side_t *other = &r->s[1 - i];
    if (!r->started || r->ended) return;
    if (other->paused) {
        other->paused = false;
        um_conn_read_start(other->c);
    }
    if (r->s[0].eof_in && r->s[1].eof_in) check_done(r);
}

#define SIDE(N)                                                                                    \
    static void open_##N(void *a, int res)                                                         \
    {                                                                                              \
        on_open(a, N, res);                                                                        \
    }                                                                                              \
    static void data_##N(void *a, const uint8_t *p, size_t n)                                      \
    {                                                                                              \
        on_data(a, N, p, n);                                                                       \
    }                                                                                              \
    static void eof_##N(void *a)                                                                   \
    {                                                                                              \
        on_eof(a, N);                                                                              \
    }                                                                                              \
    static void error_##N(void *a, int e)                                                          \
    {                                                                                              \
        on_error(a, N, e);                                                                         \
    }                                                                                              \
    static void drain_##N(void *a)                                                                 \
    {                                                                                              \
        on_drain(a, N);                                                                            \
    }
SIDE(0)
SIDE(1)

const um_conn_cbs_t um_relay_cbs_a = {open_0, data_0, eof_0, error_0, drain_0};
const um_conn_cbs_t um_relay_cbs_b = {open_1, data_1, eof_1, error_1, drain_1};

um_relay_t *um_relay_alloc(uv_loop_t *loop, um_relay_open_cb open_cb, um_relay_end_cb end_cb,
                           void *ud)
{
    um_relay_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open_cb = open_cb;
    r->end_cb = end_cb;
    r->ud = ud;
    return r;
}

void um_relay_start(um_relay_t *r, um_conn_t *a, um_conn_t *b)
{
    r->s[0].c = a;
    r->s[1].c = b;
    r->started = true;
    um_conn_read_start(a);
    um_conn_read_start(b);
}

void um_relay_abort(um_relay_t *r)
{
    end(r);
}

void um_relay_discard(um_relay_t *r)
{
    if (r->ended) return;
    r->ended = true;
    uv_close((uv_handle_t *)&r->timer, relay_freed);
}

void um_relay_set_first(um_relay_t *r, um_relay_first_cb cb)
{
    r->first_cb = cb;
}
