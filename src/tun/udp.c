/* UDP flows to datagram associations (see udp.h). */
#include "tun/udp.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

typedef struct {
    uint8_t version;
    uint8_t pad;
    uint16_t sport, dport;
    uint8_t src[16], dst[16];
} ukey_t;

typedef struct {
    uint32_t id; /* 0 = free */
    uint16_t gen;
    uint32_t hnext;
    uint64_t last_act;
    ukey_t key;
} uflow_t;

struct um_tunudp {
    um_tunudp_config_t cfg;
    um_tunudp_ops_t ops;
    void *ctx;
    uflow_t *flows;
    uint32_t *buckets, nbuckets;
    uint32_t *freelist, nfree, nflows;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    uint8_t *pkt;
    size_t pkt_cap;
    um_tunudp_stats_t st;
};

static uint32_t hash(const um_tunudp_t *u, const ukey_t *k)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const uint8_t *)k, sizeof(*k), u->hkey);
    uint32_t v;
    memcpy(&v, h, sizeof(v));
    return v & (u->nbuckets - 1);
}

static uflow_t *by_id(const um_tunudp_t *u, uint32_t id)
{
    uint32_t slot = id & 0xffff;
    if (!id || slot >= u->cfg.max_flows) return NULL;
    uflow_t *f = &u->flows[slot];
    return f->id == id ? f : NULL;
}

static void release(um_tunudp_t *u, uflow_t *f)
{
    uint32_t slot = (uint32_t)(f - u->flows);
    uint32_t *pp = &u->buckets[hash(u, &f->key)];
    for (uint32_t steps = 0; *pp && steps <= u->cfg.max_flows; steps++) {
        if (*pp == slot + 1) {
            *pp = f->hnext;
            break;
        }
        pp = &u->flows[*pp - 1].hnext;
    }
    f->id = 0;
    u->freelist[u->nfree++] = slot;
    u->nflows--;
    u->st.flows_active = u->nflows;
}

static void expire(um_tunudp_t *u, uflow_t *f)
{
    uint32_t id = f->id;
    release(u, f);
    if (u->ops.on_close) u->ops.on_close(u->ctx, id);
}

static uint32_t timeout_of(const um_tunudp_t *u, const uflow_t *f)
{
    return f->key.dport == 53 ? u->cfg.dns_timeout_ms : u->cfg.idle_timeout_ms;
}

int um_tunudp_input(um_tunudp_t *u, const um_ip_pkt_t *pkt, const uint8_t *p, uint64_t now)
{
    if (!u || !pkt || !p || pkt->proto != UM_IPPROTO_UDP) return UM_EINVAL;
    ukey_t k;
    memset(&k, 0, sizeof(k));
    k.version = pkt->version;
    k.sport = pkt->sport;
    k.dport = pkt->dport;
    size_t alen = pkt->version == 4 ? 4 : 16;
    memcpy(k.src, pkt->src, alen);
    memcpy(k.dst, pkt->dst, alen);
    uint32_t b = hash(u, &k);
    uflow_t *f = NULL;
    uint32_t i = u->buckets[b];
    for (uint32_t steps = 0; i && steps <= u->cfg.max_flows; steps++) {
        if (memcmp(&u->flows[i - 1].key, &k, sizeof(k)) == 0) {
            f = &u->flows[i - 1];
            break;
        }
        i = u->flows[i - 1].hnext;
    }
    u->st.dgram_in++;
    if (!f) {
        if (!u->nfree) { /* evict the least recently used, as a NAT does */
            uflow_t *old = NULL;
            for (uint32_t j = 0; j < u->cfg.max_flows; j++)
                if (u->flows[j].id && (!old || u->flows[j].last_act < old->last_act))
                    old = &u->flows[j];
            if (!old) return UM_ENOSPC;
            u->st.flows_evicted++;
            expire(u, old);
            if (!u->nfree) return UM_ENOSPC; /* on_close may not refill it, but be safe */
            b = hash(u, &k);
        }
        uint32_t slot = u->freelist[--u->nfree];
        f = &u->flows[slot];
        uint16_t gen = (uint16_t)(f->gen + 1);
        if (!gen) gen = 1;
        f->gen = gen;
        f->id = (uint32_t)gen << 16 | slot;
        f->key = k;
        f->last_act = now;
        f->hnext = u->buckets[b];
        u->buckets[b] = slot + 1;
        u->nflows++;
        u->st.flows_active = u->nflows;

        um_addr_t src, dst;
        memset(&src, 0, sizeof(src));
        memset(&dst, 0, sizeof(dst));
        src.type = dst.type = pkt->version == 4 ? UM_ADDR_IPV4 : UM_ADDR_IPV6;
        memcpy(src.u.v6, k.src, alen);
        memcpy(dst.u.v6, k.dst, alen);
        src.port = k.sport;
        dst.port = k.dport;
        uint32_t id = f->id;
        int r = u->ops.on_open ? u->ops.on_open(u->ctx, id, &src, &dst) : UM_EACCES;
        if (f->id != id) return r < 0 ? UM_EACCES : 0; /* closed inside on_open */
        if (r < 0) {
            release(u, f);
            u->st.flows_refused++;
            u->st.drop_refused++;
            return UM_EACCES;
        }
        u->st.flows_opened++;
    }
    f->last_act = now;
    u->st.bytes_in += pkt->payload_len;
    if (u->ops.on_datagram)
        u->ops.on_datagram(u->ctx, f->id, p + pkt->payload_off, pkt->payload_len);
    return 0;
}

int um_tunudp_reply(um_tunudp_t *u, uint32_t id, const uint8_t *p, size_t n, uint64_t now)
{
    uflow_t *f = u ? by_id(u, id) : NULL;
    if (!f) return UM_ENOENT;
    if (n && !p) return UM_EINVAL;
    um_ip_pkt_t h;
    memset(&h, 0, sizeof(h));
    h.version = f->key.version;
    h.proto = UM_IPPROTO_UDP;
    h.ttl = 64;
    memcpy(h.src, f->key.dst, 16);
    memcpy(h.dst, f->key.src, 16);
    h.sport = f->key.dport;
    h.dport = f->key.sport;
    h.tcp.wscale = UM_TCP_WSCALE_NONE;
    int len = um_ip_build(&h, p, n, u->pkt, u->pkt_cap);
    if (len < 0) {
        u->st.drop_reply_size++;
        return len;
    }
    f->last_act = now;
    u->st.dgram_out++;
    u->st.bytes_out += n;
    u->ops.output(u->ctx, u->pkt, (size_t)len);
    return 0;
}

int um_tunudp_close(um_tunudp_t *u, uint32_t id)
{
    uflow_t *f = u ? by_id(u, id) : NULL;
    if (!f) return UM_ENOENT;
    release(u, f);
    return 0;
}

void um_tunudp_tick(um_tunudp_t *u, uint64_t now)
{
    for (uint32_t i = 0; u && i < u->cfg.max_flows; i++) {
        uflow_t *f = &u->flows[i];
        if (f->id && now > f->last_act && now - f->last_act >= timeout_of(u, f)) {
            u->st.flows_expired++;
            expire(u, f);
        }
    }
}

uint64_t um_tunudp_next_timer(const um_tunudp_t *u)
{
    uint64_t m = UINT64_MAX;
    for (uint32_t i = 0; u && i < u->cfg.max_flows; i++) {
        const uflow_t *f = &u->flows[i];
        if (f->id && f->last_act + timeout_of(u, f) < m) m = f->last_act + timeout_of(u, f);
    }
    return m;
}

uint32_t um_tunudp_flow_count(const um_tunudp_t *u)
{
    return u ? u->nflows : 0;
}

const um_tunudp_stats_t *um_tunudp_stats(const um_tunudp_t *u)
{
    return &u->st;
}

um_tunudp_t *um_tunudp_new(const um_tunudp_config_t *cfg, const um_tunudp_ops_t *ops, void *ctx)
{
    if (!ops || !ops->output) return NULL;
    um_tunudp_config_t c;
    if (cfg)
        c = *cfg;
    else
        memset(&c, 0, sizeof(c));
    if (!c.max_flows) c.max_flows = 512;
    if (!c.idle_timeout_ms) c.idle_timeout_ms = 60000;
    if (!c.dns_timeout_ms) c.dns_timeout_ms = 10000;
    if (!c.mtu) c.mtu = 1500;
    if (c.max_flows > 65535 || c.mtu < 1280) return NULL;
    um_tunudp_t *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    u->cfg = c;
    u->ops = *ops;
    u->ctx = ctx;
    u->nbuckets = 16;
    while (u->nbuckets < c.max_flows * 2)
        u->nbuckets <<= 1;
    u->flows = calloc(c.max_flows, sizeof(*u->flows));
    u->buckets = calloc(u->nbuckets, sizeof(*u->buckets));
    u->freelist = calloc(c.max_flows, sizeof(*u->freelist));
    u->pkt_cap = c.mtu;
    u->pkt = malloc(u->pkt_cap);
    if (!u->flows || !u->buckets || !u->freelist || !u->pkt) {
        um_tunudp_free(u);
        return NULL;
    }
    for (uint32_t i = 0; i < c.max_flows; i++)
        u->freelist[i] = c.max_flows - 1 - i;
    u->nfree = c.max_flows;
    randombytes_buf(u->hkey, sizeof(u->hkey));
    return u;
}

void um_tunudp_free(um_tunudp_t *u)
{
    if (!u) return;
    free(u->flows);
    free(u->buckets);
    free(u->freelist);
    free(u->pkt);
    free(u);
}
