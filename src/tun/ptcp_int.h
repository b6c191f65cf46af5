/* Private to src/tun: the partial TCP stack state shared by ptcp.c (table,
 * timers, upper-layer calls, lifecycle), ptcp_out.c (sending, retransmission,
 * RTT and congestion window) and ptcp_in.c (the receive path). See ptcp.h and
 * docs/internals/tun.md. */
#ifndef UM_TUN_PTCP_INT_H
#define UM_TUN_PTCP_INT_H

#include "tun/ptcp.h"

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/log.h"

#define MAX_CREDIT   (1u << 30) /* largest window RFC 7323 allows */
#define MAX_WSCALE   14
#define PERSIST_MIN  200
#define DEFAULT_MSS4 536
#define DEFAULT_MSS6 1220

typedef struct ooo_seg {
    struct ooo_seg *next;
    uint32_t seq;
    uint32_t len;
    bool fin;
    uint8_t data[];
} ooo_seg_t;

/* The 5-tuple as the app sees it: src = app, dst = remote. Zero-padded so it
 * can be hashed and compared as bytes. */
typedef struct {
    uint8_t version;
    uint8_t pad;
    uint16_t sport, dport;
    uint8_t src[16], dst[16];
} flow_key_t;

typedef struct {
    uint32_t id; /* 0 = free slot */
    uint16_t gen;
    uint8_t state;
    bool attached; /* the upper layer still knows the id */
    bool got_fin;  /* on_fin delivered */
    bool shut;     /* upper called shutdown */
    bool fin_sent;
    bool want_writable;
    bool rtt_on;
    uint8_t snd_ws, rcv_ws;
    uint16_t mss;
    uint32_t hnext; /* hash chain: slot + 1, 0 = end */
    flow_key_t key;

    /* send side (upper -> app) */
    uint32_t iss, snd_una, snd_nxt, snd_max, buf_seq;
    uint32_t snd_wnd, snd_wl1, snd_wl2;
    uint32_t cwnd, ssthresh; /* RFC 5681, so an RTO does not resend a whole window at once */
    um_buf_t sndbuf;         /* bytes from buf_seq on: unacknowledged, then unsent */

    /* receive side (app -> upper) */
    uint32_t irs, rcv_nxt, rcv_adv;
    size_t credit;
    ooo_seg_t *ooo;
    size_t ooo_bytes;
    uint32_t ack_pending;

    /* timers: absolute ms, 0 = off */
    uint64_t rto_at, delack_at, persist_at, close_at, last_act;
    uint32_t rto_ms, srtt8, rttvar4, retries, dupacks, persist_ms;
    uint32_t rtt_seq;
    uint64_t rtt_start;
} flow_t;

struct um_ptcp {
    um_ptcp_config_t cfg;
    um_ptcp_ops_t ops;
    void *ctx;
    flow_t *flows; /* cfg.max_flows slots */
    uint32_t *buckets;
    uint32_t nbuckets; /* power of two */
    uint32_t *freelist;
    uint32_t nfree;
    uint32_t nflows;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    uint8_t *pkt; /* scratch for one outgoing packet */
    size_t pkt_cap;
    um_ptcp_stats_t st;
    um_ratelimit_t rl;
};

/* ptcp.c */
void ptcp_key_from_pkt(flow_key_t *k, const um_ip_pkt_t *pkt);
flow_t *ptcp_lookup(um_ptcp_t *t, const flow_key_t *k);
bool ptcp_alive(const flow_t *f, uint32_t id);
flow_t *ptcp_flow_alloc(um_ptcp_t *t, const flow_key_t *k);
void ptcp_flow_release(um_ptcp_t *t, flow_t *f);
void ptcp_kill_flow(um_ptcp_t *t, flow_t *f, int err, bool rst);
void ptcp_maybe_detach(flow_t *f);

/* ptcp_out.c */
void ptcp_rst_for(um_ptcp_t *t, const um_ip_pkt_t *in);
void ptcp_send_seg(um_ptcp_t *t, flow_t *f, uint32_t seq, uint8_t flags, const uint8_t *data,
                   size_t len);
void ptcp_send_ack(um_ptcp_t *t, flow_t *f);
void ptcp_try_send(um_ptcp_t *t, flow_t *f, uint64_t now, bool force_one);
void ptcp_retransmit_one(um_ptcp_t *t, flow_t *f);
void ptcp_rto_reset(um_ptcp_t *t, flow_t *f);
void ptcp_rtt_sample(um_ptcp_t *t, flow_t *f, uint64_t now);
void ptcp_grow(flow_t *f, uint32_t acked);
void ptcp_loss(flow_t *f, bool timeout);

#endif
