/* Internal to src/proxy: one accepted client connection and the relay. */
#ifndef UM_PROXY_SERVER_INT_H
#define UM_PROXY_SERVER_INT_H

#include <stdbool.h>

#include "proxy/http.h"
#include "proxy/server.h"
#include "util/buf.h"
#include "util/rdshare.h"

#define PC_READ_BUF   (64u * 1024u)
#define PC_READ_MIN   (4u * 1024u)    /* a read's share when thousands read at once */
#define PC_READ_ROUND (1024u * 1024u) /* bytes one round of reads may bring in */
#define PC_IN_MAX     (UM_HTTP_HEAD_MAX + 64u * 1024u)
/* Fast open: after the early reply, how long to wait for the client's first
 * bytes before opening without them (a client whose server speaks first). */
#define PC_FO_WAIT_MS 20u
/* TCP_DEFER_ACCEPT of the SOCKS5 and HTTP listeners (seconds). */
#define PC_DEFER_ACCEPT_S 1

typedef struct pc pc_t;

/* What a kind does with client bytes before (or instead of) the raw relay. */
typedef struct {
    void (*start)(pc_t *c);
    void (*client_data)(pc_t *c, const uint8_t *p, size_t n);
    void (*client_eof)(pc_t *c);
    const um_conn_cbs_t *up_cbs;
} pc_kind_t;

struct um_proxy {
    uv_loop_t *loop;
    um_proxy_kind_t kind;
    const pc_kind_t *k;
    uv_tcp_t listener;
    um_proxy_opts_t o;
    char *user, *pass;
    pc_t *conns;
    size_t active;
    bool closing;
    int refs; /* listener + live connections + 1 */
    um_proxy_stats_t st;
    /* The read buffer of every client connection of this listener (TCP):
     * each handler copies what a read gives it, and reads run one at a time,
     * so an idle connection holds none. Allocated on the first read. A
     * read's size is a share among the connections reading now (rdshare.h). */
    uint8_t *rbuf;
    um_rdshare_t rshare;
    bool nodelay_inherited; /* accepted sockets get TCP_NODELAY from the listener */
    bool defer_accept;      /* TCP_DEFER_ACCEPT: a connection comes with its first bytes */
};

enum { PC_HANDSHAKE, PC_OPENING, PC_RELAY, PC_HTTP, PC_DRAIN, PC_CLOSED };
/* Fast open: the reply went back; FO_WAIT: waiting (PC_FO_WAIT_MS at most)
 * for the client's first bytes to open with; FO_OPENING: opened, verdict not
 * known yet (client bytes go to the stream if it takes them, else wait). */
enum { FO_NONE, FO_WAIT, FO_OPENING };

struct pc {
    um_proxy_t *px;
    pc_t *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles;
    int phase;
    um_conn_t *up;
    um_buf_t in;         /* client bytes not consumed yet */
    uint8_t *rbuf;       /* UDP associations' datagrams (TCP reads use px->rbuf) */
    uint64_t rstamp;     /* rdshare: the last period this connection read in */
    size_t down_pending; /* bytes queued to the client */
    bool reading;        /* client reads on */
    bool up_paused;      /* we stopped the upstream because the client is slow */
    bool client_eof, up_eof, shut_sent, shut_done;
    bool close_after_flush;

    /* Fast open (docs/internals/proxy.md) */
    int fo;                      /* FO_NONE, FO_WAIT, FO_OPENING */
    um_addr_t fo_dst;            /* FO_WAIT: where the stream goes */
    const um_conn_cbs_t *fo_cbs; /* FO_WAIT: its callbacks */

    /* SOCKS5 */
    int s5_state;
    bool udp_open;
    uv_udp_t udp;
    um_assoc_t *assoc;
    bool udp_peer_known;
    struct sockaddr_storage udp_peer;
    um_addr_t ctl_peer; /* TCP peer of the association */
    uint16_t udp_port_hint;

    /* HTTP */
    int h_state;
    um_http_request_t *req; /* heap: large */
    bool req_keep, req_is_head, req_body_done, resp_keep, sent_any;
    um_http_body_t req_body, resp_body;
    um_buf_t resp; /* response head being assembled */
    int r_state;
};

extern const pc_kind_t um_pc_socks5, um_pc_http, um_pc_forward;

void pc_close(pc_t *c);
/* As pc_close, but the client's TCP connection is reset (RST): what the
 * kernel still queued for it is dropped. For upstream errors. */
void pc_abort(pc_t *c);
/* Queues bytes to the client (copied). UM_E* on failure (then closes). */
int pc_write(pc_t *c, const void *p, size_t n);
/* Sends the bytes, half-closes, drains input for a moment, closes. */
void pc_finish(pc_t *c, const void *p, size_t n);
void pc_read_start(pc_t *c);
void pc_read_stop(pc_t *c);
void pc_timer(pc_t *c, uint32_t ms);
/* Enters the two-way relay; bytes already in c->in go upstream first. */
void pc_relay(pc_t *c);
/* Forward bytes from the client to upstream with backpressure. */
int pc_up_write(pc_t *c, const uint8_t *p, size_t n);
/* Upstream callbacks of the raw relay (shared). */
void pc_up_data(pc_t *c, const uint8_t *p, size_t n);
void pc_up_eof(pc_t *c);
void pc_up_drain(pc_t *c);
void pc_relay_client_data(pc_t *c, const uint8_t *p, size_t n);
void pc_relay_client_eof(pc_t *c);
/* Fast open: the kind has sent its success reply; open a stream to dst with
 * the client's first bytes (what c->in holds, or the next read, or nothing
 * after PC_FO_WAIT_MS). The stream's on_open must call pc_fo_result first. */
void pc_fo_start(pc_t *c, const um_addr_t *dst, const um_conn_cbs_t *cbs);
/* In on_open: true if the connection was a fast open (then: a failure has
 * reset the client connection and the caller returns; success: the caller
 * enters the relay). */
bool pc_fo_result(pc_t *c, int result);

#endif
