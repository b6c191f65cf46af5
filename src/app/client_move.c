/* Moving a session to a new connection, for the client engine
 * (app/client.c): resumption after a break, rotation on a byte or time
 * budget, port hopping (docs/PROTOCOL.md 3.6, 3.7, 2.3;
 * docs/internals/resumption.md). */
#include <sodium.h>
#include <string.h>

#include "app/client_int.h"
#include "transport/hop.h"
#include "util/clock.h"
#include "util/log.h"

/* A value in [lo, hi] (hi < lo: lo). */
static uint32_t draw(uint32_t lo, uint32_t hi)
{
    return hi > lo ? lo + randombytes_uniform(hi - lo + 1) : lo;
}

/* Port hopping (PROTOCOL.md 2.3): the port of the current slot, or the
 * address's own port without hopping. */
static const um_transport_cfg_t *cur_transport(const cli_t *c)
{
    return um_config_transport(c->cfg, cur_server(c)->transport);
}

uint16_t cli_dial_port(cli_t *c, uint16_t port)
{
    const um_transport_cfg_t *tr = cur_transport(c);
    if (!tr || !tr->hop_lo) return port;
    uint8_t key[32];
    um_hop_key(cur_server(c)->public_key, key);
    c->hop_slot = um_hop_slot(um_wall_ms(), tr->hop_ms);
    uint16_t p = um_hop_port(key, c->hop_slot, tr->hop_lo, tr->hop_hi);
    sodium_memzero(key, sizeof(key));
    return p;
}

static void on_hop_timer(uv_timer_t *h);

/* Wakes at the next slot boundary (plus a little, so the server's clock
 * has turned too when ours is a bit ahead). */
void cli_arm_hop(cli_t *c)
{
    const um_transport_cfg_t *tr = cur_transport(c);
    uv_timer_stop(&c->hop_timer);
    if (!tr || !tr->hop_lo || !c->t) return;
    uint64_t now = um_wall_ms(), next = (um_hop_slot(now, tr->hop_ms) + 1) * tr->hop_ms;
    uv_timer_start(&c->hop_timer, on_hop_timer, next - now + 20, 0);
}

static void on_hop_timer(uv_timer_t *h)
{
    cli_t *c = h->data;
    const um_transport_cfg_t *tr = cur_transport(c);
    if (!c->t || !tr || !tr->hop_lo) return;
    if (um_hop_slot(um_wall_ms(), tr->hop_ms) != c->hop_slot && !c->detached_at && !c->conn) {
        c->move = "hop";
        cli_on_demand(c);
    }
    cli_arm_hop(c);
}

static void on_rotate_timer(uv_timer_t *h)
{
    cli_t *c = h->data;
    if (!c->t || c->detached_at || c->conn || c->move) return;
    c->move = "time";
    cli_on_demand(c);
}

/* The time budget of the connection just attached. */
void cli_arm_rotation(cli_t *c)
{
    const um_peer_server_t *s = cur_server(c);
    uv_timer_stop(&c->rot_timer);
    if (s->rotate_after_min_ms)
        uv_timer_start(&c->rot_timer, on_rotate_timer,
                       draw(s->rotate_after_min_ms, s->rotate_after_max_ms), 0);
}

uint32_t cli_next_budget(const cli_t *c)
{
    const um_peer_server_t *s = cur_server(c);
    return s->rotate_min ? draw(s->rotate_min, s->rotate_max) : 0;
}

static void ev_move(cli_t *c, const char *what, const char *reason, uint64_t count)
{
    um_ev_begin(&c->ev, what);
    um_ev_str(&c->ev, "server", cur_server(c)->name);
    um_ev_str(&c->ev, "address", c->cur);
    um_ev_str(&c->ev, "reason", reason);
    um_ev_int(&c->ev, strcmp(what, "session_rotated") == 0 ? "rotations" : "resumptions",
              (int64_t)count);
    um_ev_end(&c->ev);
}

/* The connector continued the session: move the tunnel onto it. */
void cli_resumed(cli_t *c, um_connector_t *cn, um_carrier_t *car)
{
    const uint8_t *rest;
    size_t rn = um_connector_rest(cn, &rest);
    uint32_t budget = c->conn_budget;
    bool planned = c->detached_at == 0 && c->conn_why;
    if (um_tunnel_attach(c->t, car, rest, rn, um_connector_wire(cn), budget, budget / 2) != 0) {
        um_carrier_close(car);
        um_tunnel_close(c->t, false, 0); /* on_down: a new session follows */
        return;
    }
    c->attempt = 0;
    if (planned) {
        c->rotations++;
        snprintf(c->last_rotate, sizeof(c->last_rotate), "%s", c->conn_why);
        UM_DEBUG("session moved to a new connection to %s (%s)", c->cur, c->conn_why);
        ev_move(c, "session_rotated", c->conn_why, c->rotations);
    } else {
        c->resumptions++;
        snprintf(c->last_resume, sizeof(c->last_resume), "%s",
                 c->detach_why[0] ? c->detach_why : "connection lost");
        UM_INFO("session resumed on a new connection to %s after %llu ms", c->cur,
                (unsigned long long)(um_now_ms() - c->detached_at));
        ev_move(c, "session_resumed", c->last_resume, c->resumptions);
    }
    c->detached_at = 0;
    cli_arm_rotation(c);
    cli_arm_hop(c);
}
