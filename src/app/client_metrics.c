/* The client's metrics (metrics = ADDR in [client], --metrics ADDR) and the
 * reasons a server gives for ending a session (docs/PROTOCOL.md 6.8). See
 * client_int.h. */
#include <string.h>

#include "app/cli.h"
#include "app/client_int.h"
#include "app/metrics.h"
#include "mux/frame.h"
#include "util/err.h"
#include "util/log.h"

const char *cli_server_end_reason(const um_tunnel_t *t)
{
    switch (um_tunnel_goaway_code(t)) {
    case UM_MUX_GOAWAY_QUOTA: return "quota exceeded (the server ended the session)";
    case UM_MUX_GOAWAY_EXPIRED: return "access expired (the server ended the session)";
    case UM_MUX_GOAWAY_REVOKED: return "client removed (the server ended the session)";
    case UM_MUX_GOAWAY_KICKED: return "kicked (the server's operator ended the session)";
    default: return NULL;
    }
}

void cli_metrics_session_down(cli_t *c, const um_tunnel_stats_t *st)
{
    c->m_in += st->bytes_in;
    c->m_out += st->bytes_out;
    c->m_pin += st->payload_in;
    c->m_pout += st->payload_out;
}

static void two(um_mtext_t *t, const char *name, const char *help, uint64_t in, uint64_t out)
{
    um_mtext_family(t, name, "counter", help);
    um_mtext_sample(t, name, "direction", "in", (double)in);
    um_mtext_sample(t, name, "direction", "out", (double)out);
}

static void render(um_mtext_t *t, void *ud)
{
    cli_t *c = ud;
    um_tunnel_stats_t st;
    memset(&st, 0, sizeof(st));
    if (c->t) um_tunnel_stats(c->t, &st);
    two(t, "umbra_client_wire_bytes_total",
        "Bytes on the connections to the server (sessions that ended and the current one).",
        c->m_in + st.bytes_in, c->m_out + st.bytes_out);
    two(t, "umbra_client_bytes_total", "Payload bytes of streams and datagrams through the tunnel.",
        c->m_pin + st.payload_in, c->m_pout + st.payload_out);
    um_mtext_family(t, "umbra_client_session_up", "gauge", "1 while a session is up.");
    um_mtext_sample(t, "umbra_client_session_up", NULL, NULL, c->t && !c->detached_at ? 1 : 0);
    um_mtext_family(t, "umbra_client_rtt_seconds", "gauge",
                    "Smoothed round-trip time of the current session's keepalives.");
    um_mtext_sample(t, "umbra_client_rtt_seconds", NULL, NULL,
                    c->t ? um_tunnel_rtt(c->t) / 1000.0 : 0);
    um_mtext_family(t, "umbra_client_streams", "gauge", "Streams open now.");
    um_mtext_sample(t, "umbra_client_streams", NULL, NULL, (double)st.streams_open);
    um_mtext_family(t, "umbra_client_sessions_total", "counter", "Sessions established.");
    um_mtext_sample(t, "umbra_client_sessions_total", NULL, NULL, (double)c->sessions_up);
    um_mtext_family(t, "umbra_client_reconnects_total", "counter",
                    "Sessions established after the first one.");
    um_mtext_sample(t, "umbra_client_reconnects_total", NULL, NULL,
                    c->sessions_up ? (double)(c->sessions_up - 1) : 0);
    um_mtext_family(t, "umbra_client_resumptions_total", "counter",
                    "Sessions continued on a new connection.");
    um_mtext_sample(t, "umbra_client_resumptions_total", NULL, NULL, (double)c->resumptions);
    um_mtext_family(t, "umbra_client_rotations_total", "counter",
                    "Planned moves of the session to a new connection.");
    um_mtext_sample(t, "umbra_client_rotations_total", NULL, NULL, (double)c->rotations);
    um_mtext_loop(t, c->loop);
}

int cli_metrics_start(cli_t *c)
{
    if (!c->cfg->has_metrics) return 0;
    char a[UM_ADDR_STRLEN];
    um_addr_format(&c->cfg->metrics, a, sizeof(a));
    int r = um_metrics_start(c->loop, &c->cfg->metrics, render, c, &c->metrics);
    if (r != 0) {
        um_cli_error("client", "metrics: cannot listen on %s: %s", a, um_strerror(r));
        return -1;
    }
    UM_INFO("metrics on http://%s/metrics", a);
    return 0;
}

void cli_metrics_stop(cli_t *c)
{
    um_metrics_stop(c->metrics);
    c->metrics = NULL;
}
