/* Internal to the client engine (src/app/client*.c): its state and the
 * calls between its files.
 *   client.c       the session lifecycle (connect, on_connected, on_down,
 *                  GOAWAY), the tunnel callbacks, bridges and upstream glue,
 *                  events and the status report, the proxies, um_run_client
 *   client_race.c  racing a new session over the candidates, demotion, the
 *                  remembered dial parameters (docs/internals/racing.md)
 *   client_move.c  moving a session to a new connection: resumption,
 *                  rotation (bytes, time), port hopping
 *                  (docs/internals/resumption.md) */
#ifndef UM_APP_CLIENT_INT_H
#define UM_APP_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "app/bridge.h"
#include "app/client_ws.h"
#include "app/config.h"
#include "app/control.h"
#include "app/dialstate.h"
#include "app/events.h"
#include "app/listfetch.h"
#include "app/routing.h"
#include "app/vpn.h"
#include "exit/resolver.h"
#include "proxy/server.h"
#include "session/connector.h"
#include "transport/codec_tls.h"
#include "tunnel/tunnel.h"
#include "util/log.h"

#define MAX_PROXIES (2 + UM_CFG_MAX_FORWARDS)
#define MAX_CANDS   (UM_CFG_MAX_SERVERS * UM_CFG_MAX_ADDRS)

/* A way to a new session: one address of one [server] section. */
typedef struct {
    uint16_t server, addr;
    uint32_t fails;         /* consecutive failures (0 after a success) */
    uint64_t demoted_until; /* monotonic ms */
    uint32_t rtt_ms;        /* handshake time of its last session; 0: none yet */
} cand_t;

struct cli;
/* One connection attempt of a race: resolving, then handshaking. */
typedef struct {
    struct cli *c;
    bool busy;
    size_t cand;
    um_connector_t *conn;
    um_resolve_t *rq;
    um_codec_tls_t tls; /* borrowed by conn */
    int sync_err;       /* start_handshake failed before a connector ran */
    char cur[UM_ADDR_STRLEN];
    uint64_t t_start, hop_slot;
    uint32_t budget;
    /* ws */
    um_codec_ws_t ws; /* borrowed by conn */
} racer_t;

typedef struct cli {
    uv_loop_t *loop;
    const um_config_t *cfg;
    um_events_t ev;
    um_hub_t *hub;
    um_tunnel_t *t;
    um_connector_t *conn;
    bool conn_resume;     /* conn continues t's session */
    const char *conn_why; /* ... as a planned move ("bytes", "time", "hop"); NULL after a break */
    uint32_t conn_budget; /* the budget conn announces */
    const char *move;     /* a planned move is wanted (its reason), none under way yet */
    uint64_t detached_at; /* t's connection broke at (0: t has one) */
    char detach_why[64];
    uint64_t resumptions, rotations;
    char last_resume[64], last_rotate[16];
    uv_timer_t rot_timer;  /* rotate-after */
    um_tunnel_t *replaced; /* an old session a new one replaced (session_lost told) */
    uv_timer_t hop_timer;  /* port hopping: the next slot boundary */
    uint64_t hop_slot;     /* the slot of the port the session's connection uses */
    um_codec_tls_t tls;    /* the codec of the tls transport (the connector borrows it) */
    um_resolver_t *resolver;
    um_resolve_t *rq; /* resolving the address of a continuation */
    um_proxy_t *px[MAX_PROXIES];
    um_vpn_t *vpn; /* VPN mode (--tun), else NULL */
    size_t n_px;
    uv_timer_t retry, stats;
    uv_signal_t sig_term, sig_int;
    uint32_t attempt;    /* consecutive failures */
    size_t server, addr; /* which server and address to try next */
    char cur[UM_ADDR_STRLEN];
    uint64_t t_start, up_since;
    bool stopping, retry_on;
    uint64_t sessions_up;
    um_control_t *ctl;
    char listening[512];
    um_ratelimit_t rl_connect; /* "cannot reach" lines: state must persist across calls */
    um_bridge_t *bridges[UM_CFG_MAX_SERVERS]; /* by server index, made on first use */
    um_config_t *mcfg;  /* cfg points here: a copy that server lists add servers to */
    um_listfetch_t *lf; /* signed server lists (src/app/listfetch.c) */
    /* Racing a new session (no session, or it was dropped): the round's
     * candidates in order, the next to start, the attempts in flight. */
    cand_t cands[MAX_CANDS];
    uint16_t order[MAX_CANDS];
    size_t n_order, next_order;
    racer_t racers[UM_RACE_MAX];
    size_t n_racing;
    bool racing;
    racer_t *dialing; /* start_handshake works for this racer */
    uv_timer_t stagger;
    /* Remembered dial parameters (app/dialstate.h). */
    char state_path[UM_PATH_MAX]; /* "" = none */
    um_dialstate_t state;
    long remembered; /* its candidate, -1: none */
    /* rules: routing (app/routing.h), NULL without rules; without it SIGHUP
     * (systemd's ExecReload) is still caught, so it never ends the client */
    um_routing_t *routing;
    uv_signal_t sig_hup;
    /* mgmt (client_metrics.c): the metrics endpoint, the bytes of sessions
     * that ended (wire and payload), sessions the server ended and why */
    struct um_metrics *metrics;
    uint64_t m_in, m_out, m_pin, m_pout;
    uint64_t m_server_ends;
    /* ws */
    um_codec_ws_t ws; /* the codec of the ws transport (the connector borrows it) */
    /* dns: the dialer of conversations through the resolver (client_dns.c) */
    struct cli_dns *dns;
} cli_t;

static inline const um_peer_server_t *cur_server(const cli_t *c)
{
    return &c->cfg->servers[c->server % c->cfg->n_servers];
}

/* client.c */
/* A request is waiting and nothing is under way: connect now. */
void cli_on_demand(cli_t *c);
/* The next connection attempt after the backoff step (c->attempt). */
void cli_schedule_retry(cli_t *c);
/* Dials ip for the current server (c->server, c->addr): a continuation of
 * the session (c->t), a racer's new session (c->dialing), or a new session. */
void cli_start_handshake(cli_t *c, const um_addr_t *ip);
/* The connector callback of a single connection (and of a race's winner). */
void cli_on_connected(um_connector_t *cn, int status, um_sess_t *s, um_carrier_t *conn, void *ud);

/* client_race.c */
/* Races a new session over every candidate (c->racing while under way). */
void cli_race_round(cli_t *c);
/* Cancels every racer and ends the round. */
void cli_race_cancel_all(cli_t *c);
/* The connector callback of a racer (ud: its racer_t). */
void cli_on_race_connected(um_connector_t *cn, int status, um_sess_t *s, um_carrier_t *conn,
                           void *ud);
/* Reads the state file: the remembered candidate (c->remembered). */
void cli_state_init(cli_t *c);
/* A new session is up: remember how it was reached. */
void cli_remember_dial(cli_t *c);

/* client_move.c */
/* The port to dial for an address's port (port hopping); sets c->hop_slot. */
uint16_t cli_dial_port(cli_t *c, uint16_t port);
/* The budget of the next connection to the current server (0: none). */
uint32_t cli_next_budget(const cli_t *c);
/* The time budget of the connection just attached. */
void cli_arm_rotation(cli_t *c);
/* The hop timer: wakes at the next slot boundary. */
void cli_arm_hop(cli_t *c);
/* The connector continued the session: move the tunnel onto it. */
void cli_resumed(cli_t *c, um_connector_t *cn, um_carrier_t *car);

/* client_metrics.c */
/* The metrics endpoint (cfg->metrics), when set. 0, or -1 after saying why. */
int cli_metrics_start(cli_t *c);
void cli_metrics_stop(cli_t *c);
/* A session is down: its bytes are kept. */
void cli_metrics_session_down(cli_t *c, const um_tunnel_stats_t *st);
/* Why the server ended the session (its GOAWAY code; mux/frame.h), NULL
 * when it gave none of the management reasons. */
const char *cli_server_end_reason(const um_tunnel_t *t);
/* client_dns.c */
const um_connector_dialer_t *cli_dns_dialer(cli_t *c, const um_transport_cfg_t *tr,
                                            const uint8_t server_pub[32], int *err);
void cli_dns_free(cli_t *c);

#endif
