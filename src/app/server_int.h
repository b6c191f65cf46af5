/* Internal to the server engine (src/app/server*.c): its state and the
 * calls between its files.
 *   server.c         the sessions (admission, resumption, down), their
 *                    streams relayed to destinations and datagram
 *                    associations: the tunnel callbacks
 *   server_listen.c  the listeners (fixed or port hopping), the tls
 *                    transport's cover probe, signals (reload, shutdown),
 *                    the sweep, um_run_server */
#ifndef UM_APP_SERVER_INT_H
#define UM_APP_SERVER_INT_H

#include <netdb.h>
#include <sys/resource.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/cli.h"
#include "app/config.h"
#include "app/listserve.h"
#include "tunnel/relay.h"
#include "app/run.h"
#include "tunnel/tunnel.h"
#include "crypto/keys.h"
#include "exit/direct.h"
#include "exit/hostaddr.h"
#include "exit/policy.h"
#include "session/acceptor.h"
#include "session/keyset.h"
#include "transport/codec_tls.h"
#include "transport/hop.h"
#include "transport/tls_probe.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define DRAIN_MS        5000
#define SWEEP_MS        1000
#define ASSOC_IDLE_MS   120000
#define MAX_ASSOCS      256
#define DIAL_TIMEOUT_MS 10000

typedef struct srv srv_t;
typedef struct srv_sess srv_sess_t;

typedef struct srv_relay {
    srv_sess_t *ss;
    um_relay_t *r;
    uint32_t id;
    um_conn_t *d; /* the destination side while dialing */
    bool active;
    um_addr_t dst;
    struct srv_relay *prev, *next;
} srv_relay_t;

typedef struct srv_assoc {
    srv_sess_t *ss;
    uint32_t id;
    um_assoc_t *d;
    uint64_t last_ms;
    struct srv_assoc *next;
} srv_assoc_t;

struct srv_sess {
    srv_t *srv;
    um_tunnel_t *t;
    uint8_t client_key[32];
    char name[UM_NAME_MAX + 1];
    char fp[9];
    um_direct_t *egress; /* this client's connector (shared by its sessions) */
    um_memacct_t *mem;   /* this client's memory account (shared by its sessions) */
    srv_relay_t *relays;
    srv_assoc_t *assocs;
    size_t n_assocs;
    uint64_t idle_since, last_bytes;
    um_resumable_t res;      /* listed in the gate while the session may be continued */
    uint64_t detached_since; /* its connection broke at (0: it has one) */
    uint64_t resumptions;
    srv_sess_t *prev, *next;
    /* mgmt (server_mgmt.c): the id 'umbra server kick' names, the payload
     * bytes already moved into the client's account */
    uint64_t id;
    uint64_t acct_in, acct_out;
};

/* mgmt: one client key's bytes (payload, both ways, since the server
 * started) and when it last moved any (Unix time; 0: never). */
typedef struct {
    uint8_t key[32];
    uint64_t in, out;
    int64_t last_seen;
} srv_acct_t;

struct srv {
    uv_loop_t *loop;
    um_config_t cfg; /* the running config (reloaded on SIGHUP) */
    char path[UM_PATH_MAX];
    /* The acceptors: one per listen address, or with port hopping one per
     * live port of each listen host (hop_port/hop_host say which). */
    um_acceptor_t *acc[UM_CFG_MAX_LISTEN * 3];
    size_t n_acc;
    /* Port hopping (docs/PROTOCOL.md 2.3), when the transport has ports:
     * the key, the range, the slot length, the slot the listeners are for,
     * the acceptor config to open new ones with (server_priv wiped: the
     * shared gate holds the key), and the timer of the slot boundaries. */
    bool hop;
    uint8_t hop_key[32];
    uint16_t hop_lo, hop_hi;
    uint32_t hop_ms;
    uint64_t hop_slot;
    uint16_t hop_port[UM_CFG_MAX_LISTEN * 3];
    uint8_t hop_host[UM_CFG_MAX_LISTEN * 3]; /* index into cfg.listen */
    um_acceptor_cfg_t hop_ac;
    uv_timer_t hop_timer;
    um_gate_t *gate; /* admission state shared by every acceptor */
    um_keyset_t *keys;
    um_policy_t policy;
    um_hostaddr_t *hostaddr; /* keeps the host's own addresses in policy */
    um_direct_t *direct;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sweep;
    srv_sess_t *sessions;
    size_t n_sessions;
    bool stopping;
    uint64_t stop_deadline;
    um_tunnel_cbs_t tcbs;
    /* The tls transport: its codec (cover profiles learned from the cover
     * at start and every COVER_REFRESH_MS), the cover's address. */
    um_codec_tls_t *tls;
    um_codec_ws_t *ws; /* ws: its codec */
    struct sockaddr_storage cover;
    uv_timer_t cover_timer;
    um_tls_probe_t *probe[UM_TLS_FP_MAX + 1];
    struct cover_ctx {
        srv_t *s;
        int fp;
    } probe_ctx[UM_TLS_FP_MAX + 1];
    bool learned[UM_TLS_FP_MAX + 1]; /* a profile came from the cover (else the default) */
    um_membudget_t mem;              /* buffered stream bytes, every client together */
    /* mgmt (server_mgmt.c, server_metrics.c): the management socket, the
     * accounts (sorted by key), the accounting timer, session ids, the
     * metrics endpoint and its counters */
    struct um_control *ctl;
    srv_acct_t *acct;
    size_t n_acct, cap_acct;
    uv_timer_t acct_timer;
    uint64_t next_sess_id;
    struct um_metrics *metrics;
    um_acceptor_stats_t acc_retired; /* of acceptors closed by port hopping */
    uint64_t m_quota_ends, m_expiry_ends, m_refused, m_refused_policy, m_sessions_total;
    uint64_t m_sessions_refused;
    uint64_t m_streams_done; /* streams opened by sessions that have ended */
    um_ratelimit_t rl_ends;  /* "over quota, closing": a refused client retries */
    /* dns: the authoritative servers of the zone (one per listen address);
     * their acceptor is in acc[] */
    struct um_dns_server *dns[UM_CFG_MAX_LISTEN];
    size_t n_dns;
    /* ws2: the ws listener's own TLS (cert-file, key-file), when set */
    um_ossl_ctx_t *ws_tls;
};

#define COVER_REFRESH_MS (3600u * 1000u)

/* server_dns.c */
int srv_dns_listen(srv_t *s, const um_acceptor_cfg_t *ac, const um_transport_cfg_t *tr);
void srv_dns_close(srv_t *s);

/* server.c */
const um_peer_client_t *srv_find_client(const srv_t *s, const uint8_t key[32]);
um_keyset_t *srv_build_keys(const um_config_t *cfg);
void srv_assoc_free(srv_sess_t *ss, srv_assoc_t *a);
void srv_on_opened(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, void *ud);
void srv_on_dgram(um_tunnel_t *t, uint32_t id, const um_addr_t *dst, const uint8_t *p, size_t n,
                  void *ud);
void srv_on_assoc_closed(um_tunnel_t *t, uint32_t id, void *ud);
void srv_on_down(um_tunnel_t *t, int err, void *ud);
void srv_on_detached(um_tunnel_t *t, int err, void *ud);
void srv_on_session(um_acceptor_t *acc, um_sess_t *sess, um_carrier_t *conn,
                    const uint8_t client_static[32], const um_accept_info_t *info, void *ud);

/* server_listen.c */
void srv_maybe_finish(srv_t *s);
/* SIGHUP's reload: the clients from the config file. 0, or -1 (err says). */
int srv_reload(srv_t *s, char *err, size_t errlen);

/* server_mgmt.c: starts the management socket (cfg.server_control) and the
 * accounting; stop after the sessions are gone. session_up gives the
 * session its id and ends it (false) when its client is over quota or
 * expired; session_down accounts its last bytes. */
void srv_mgmt_start(srv_t *s);
void srv_mgmt_stop(srv_t *s);
bool srv_mgmt_session_up(srv_sess_t *ss);
void srv_mgmt_session_down(srv_sess_t *ss);
/* Every session's bytes into the accounts; a client key's account (NULL:
 * none yet). */
void srv_mgmt_account_all(srv_t *s);
const srv_acct_t *srv_mgmt_account(srv_t *s, const uint8_t key[32]);
/* server_metrics.c: the metrics endpoint (cfg.metrics), when set. 0, or -1
 * after saying why. */
int srv_metrics_start(srv_t *s);
void srv_metrics_stop(srv_t *s);
/* An acceptor about to close: its counters are kept. */
void srv_metrics_retire(srv_t *s, um_acceptor_t *a);
/* server_ws.c: the ws listener's TLS context from the transport's
 * cert-file and key-file (relative to the config's directory); a key file
 * readable by group or others is warned about. 0, or -1 after saying why. */
int srv_ws_tls_load(const um_config_t *cfg, const um_transport_cfg_t *tr, um_ossl_ctx_t **out);

#endif
