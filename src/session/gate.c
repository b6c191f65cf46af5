#include "session/gate.h"

#include "transport/codec.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define MAX_WAITERS 32

typedef struct {
    uint8_t key[UM_SRC_KEY_LEN];
    uint32_t count; /* 0 = empty slot */
} src_slot_t;

typedef struct {
    uint8_t key[32];
    um_bucket_t b;
} quota_t;

typedef struct {
    void (*cb)(void *ud);
    void *ud;
} waiter_t;

#define RES_BUCKETS 256
#define TOMBS_MAX   65536 /* ended sessions remembered for the replay window */

typedef struct {
    uint8_t sid[UM_SID_LEN];
    uint64_t until_s;
} tomb_t;
struct um_gate {
    int refs;
    um_gate_cfg_t cfg;
    um_hs_server_t hs;
    um_bucket_t hs_bucket;
    /* Parse slots per source: open addressing, backward-shift deletion.
     * At most max_preauth keys live (each holds a slot), cap >= 2x that. */
    src_slot_t *src;
    size_t src_cap;
    uint8_t src_hkey[crypto_shorthash_KEYBYTES];
    /* Per-client-key buckets (only authenticated keys get here). */
    quota_t *q;
    size_t nq, capq;
    um_gate_node_t *ev_head, *ev_tail; /* evictable, oldest first */
    waiter_t waiters[MAX_WAITERS];
    size_t nwaiters;
    um_gate_stats_t st;
    um_resumable_t *res[RES_BUCKETS]; /* resumable sessions, by the first byte of their id */
    tomb_t *tombs;                    /* ended resumed sessions (unordered) */
    size_t ntombs, captombs;
    uint64_t tombs_full_until; /* no room for a tombstone: unknown resumptions refused until */
};

bool um_bucket_take(um_bucket_t *b, uint64_t now_ms, double rate_per_s, double burst, bool commit)
{
    if (!b->started) {
        b->started = 1;
        b->tokens = burst;
        b->t_ms = now_ms;
    }
    if (now_ms > b->t_ms) {
        b->tokens += (double)(now_ms - b->t_ms) * rate_per_s / 1000.0;
        b->t_ms = now_ms;
    }
    if (b->tokens > burst) b->tokens = burst;
    if (b->tokens < 1.0) return false;
    if (commit) b->tokens -= 1.0;
    return true;
}

static void mask_bits(uint8_t *a, size_t len, unsigned bits)
{
    for (size_t i = 0; i < len; i++) {
        unsigned lo = (unsigned)i * 8;
        if (bits >= lo + 8) continue;
        a[i] = bits <= lo ? 0 : (uint8_t)(a[i] & (0xffu << (8 - (bits - lo))));
    }
}

int um_src_key(const struct sockaddr *sa, uint8_t v4_prefix, uint8_t v6_prefix,
               uint8_t out[UM_SRC_KEY_LEN])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!sa || !out) return UM_EINVAL;
    memset(out, 0, UM_SRC_KEY_LEN);
    if (v4_prefix > 32 || v6_prefix > 128) return UM_EINVAL;
    if (sa->sa_family == AF_INET) {
        out[0] = 4;
        memcpy(out + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (memcmp(a, mapped, 12) == 0) {
            out[0] = 4;
            memcpy(out + 1, a + 12, 4);
        } else {
            out[0] = 6;
            memcpy(out + 1, a, 16);
            mask_bits(out + 1, 16, v6_prefix);
            return 0;
        }
    } else {
        return UM_EINVAL;
    }
    mask_bits(out + 1, 4, v4_prefix);
    return 0;
}

int um_gate_src_key(const um_gate_t *g, const struct sockaddr *sa, uint8_t out[UM_SRC_KEY_LEN])
{
    return um_src_key(sa, g->cfg.v4_prefix, g->cfg.v6_prefix, out);
}

static size_t src_home(const um_gate_t *g, const uint8_t *key)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, key, UM_SRC_KEY_LEN, g->src_hkey);
    memcpy(&v, h, sizeof(v));
    return (size_t)v & (g->src_cap - 1);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t src_find(const um_gate_t *g, const uint8_t *key)
{
    size_t j = src_home(g, key);
    while (g->src[j].count && memcmp(g->src[j].key, key, UM_SRC_KEY_LEN) != 0)
        j = (j + 1) & (g->src_cap - 1);
    return j;
}

static void src_delete(um_gate_t *g, size_t j)
{
    size_t m = g->src_cap - 1;
    memset(&g->src[j], 0, sizeof(g->src[j]));
    for (size_t k = (j + 1) & m; g->src[k].count; k = (k + 1) & m) {
        size_t h = src_home(g, g->src[k].key);
        /* k's entry may move to the hole j if j lies cyclically in [h, k). */
        if (((k - h) & m) >= ((k - j) & m)) {
            g->src[j] = g->src[k];
            memset(&g->src[k], 0, sizeof(g->src[k]));
            j = k;
        }
    }
}

static bool key_quota(void *ud, const uint8_t client[32], uint64_t now_s, bool commit)
{
    um_gate_t *g = ud;
    double rate = g->cfg.key_hs_per_min / 60.0, burst = g->cfg.key_hs_per_min;
    uint64_t now_ms = now_s * 1000;
    quota_t *q = NULL;
    for (size_t i = 0; i < g->nq; i++)
        if (sodium_memcmp(g->q[i].key, client, 32) == 0) {
            q = &g->q[i];
            break;
        }
    if (!q) {
        if (!commit) return true; /* a fresh bucket is full */
        if (g->nq == g->capq) {
            /* Drop buckets that have refilled: they equal fresh ones. */
            size_t w = 0;
            for (size_t i = 0; i < g->nq; i++) {
                um_bucket_t b = g->q[i].b;
                um_bucket_take(&b, now_ms, rate, burst, false);
                if (b.tokens < burst) g->q[w++] = g->q[i];
            }
            g->nq = w;
        }
        if (g->nq == g->capq) {
            size_t nc = g->capq ? g->capq * 2 : 16;
            quota_t *nq = realloc(g->q, nc * sizeof(*nq));
            if (!nq) return true; /* the flight is already in the filter */
            g->q = nq;
            g->capq = nc;
        }
        q = &g->q[g->nq++];
        memset(q, 0, sizeof(*q));
        memcpy(q->key, client, 32);
    }
    bool ok = um_bucket_take(&q->b, now_ms, rate, burst, commit);
    if (!ok) g->st.quota_refused++;
    return ok;
}

void um_gate_add_resumable(um_gate_t *g, um_resumable_t *e)
{
    if (!g || !e || e->linked) return;
    um_resumable_t **b = &g->res[e->sid[0]];
    e->next = *b;
    *b = e;
    e->linked = true;
}

static void tomb_add(um_gate_t *g, const uint8_t sid[UM_SID_LEN], uint64_t until_s, uint64_t now_s)
{
    if (g->ntombs == g->captombs) {
        size_t k = 0; /* sweep the expired first */
        for (size_t i = 0; i < g->ntombs; i++)
            if (g->tombs[i].until_s >= now_s) g->tombs[k++] = g->tombs[i];
        g->ntombs = k;
    }
    if (g->ntombs == g->captombs && g->captombs < TOMBS_MAX) {
        size_t cap = g->captombs ? 2 * g->captombs : 64;
        tomb_t *t = realloc(g->tombs, cap * sizeof(*t));
        if (t) {
            g->tombs = t;
            g->captombs = cap;
        }
    }
    if (g->ntombs == g->captombs) {
        /* Fail closed: until this one would have expired, a flight naming a
         * session we do not know is refused, not taken for a new session. */
        if (until_s > g->tombs_full_until) g->tombs_full_until = until_s;
        return;
    }
    memcpy(g->tombs[g->ntombs].sid, sid, UM_SID_LEN);
    g->tombs[g->ntombs++].until_s = until_s;
}

static bool tomb_has(const um_gate_t *g, const uint8_t sid[UM_SID_LEN], uint64_t now_s)
{
    if (now_s <= g->tombs_full_until) return true;
    bool hit = false;
    for (size_t i = 0; i < g->ntombs; i++)
        if (g->tombs[i].until_s >= now_s && sodium_memcmp(g->tombs[i].sid, sid, UM_SID_LEN) == 0)
            hit = true;
    return hit;
}

void um_gate_resumed(um_resumable_t *e, uint32_t move, uint64_t ts)
{
    e->last_move = move;
    e->last_ts = ts;
}

void um_gate_del_resumable(um_gate_t *g, um_resumable_t *e)
{
    if (!g || !e || !e->linked) return;
    if (e->last_move) tomb_add(g, e->sid, e->last_ts + g->hs.skew_s, e->last_ts);
    for (um_resumable_t **p = &g->res[e->sid[0]]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    e->next = NULL;
    e->linked = false;
}

um_resumable_t *um_gate_find_resumable(um_gate_t *g, const uint8_t sid[UM_SID_LEN],
                                       const uint8_t client[32])
{
    if (!g) return NULL;
    /* The bucket is chosen by one byte of the id (a timing side channel of
     * 8 bits of a 128-bit secret, to a client that already owns a key);
     * within it every comparison is constant time. */
    um_resumable_t *hit = NULL;
    for (um_resumable_t *e = g->res[sid[0]]; e; e = e->next)
        if (sodium_memcmp(e->sid, sid, UM_SID_LEN) == 0 &&
            sodium_memcmp(e->client, client, 32) == 0)
            hit = e;
    return hit;
}

static int resume_hook(void *ud, const uint8_t client[32], const uint8_t sid[UM_SID_LEN],
                       uint64_t client_rx, uint32_t move, uint64_t now_s, uint64_t *server_rx)
{
    um_gate_t *g = ud;
    um_resumable_t *e = um_gate_find_resumable(g, sid, client);
    if (!e) return tomb_has(g, sid, now_s) ? UM_HS_RESUME_STALE : UM_HS_RESUME_NO;
    if (move <= e->last_move) return UM_HS_RESUME_STALE;
    if (!um_sess_resumable(e->sess, client_rx)) return UM_HS_RESUME_NO;
    um_sess_offsets_t o;
    um_sess_offsets(e->sess, &o);
    *server_rx = o.rx_next;
    return UM_HS_RESUME_YES;
}

int um_gate_new(const uint8_t server_priv[32], um_keyset_t *keys, uint32_t skew_s,
                size_t replay_entries, bool disable_aes, const um_gate_cfg_t *cfg, um_gate_t **out)
{
    int r;
    if (!server_priv || !keys || !out) return UM_EINVAL;
    um_gate_t *g = calloc(1, sizeof(*g));
    if (!g) return UM_ENOMEM;
    if (cfg) g->cfg = *cfg;
    um_gate_cfg_t *c = &g->cfg;
    if (!c->max_preauth) c->max_preauth = 1024;
    if (!c->per_source) c->per_source = 64;
    if (c->per_source > c->max_preauth) c->per_source = c->max_preauth;
    if (!c->v4_prefix) c->v4_prefix = 32;
    if (!c->v6_prefix) c->v6_prefix = 64;
    if (!c->max_held) c->max_held = 4 * c->max_preauth;
    if (c->max_held < c->max_preauth) c->max_held = c->max_preauth;
    if (!c->hs_per_s) c->hs_per_s = 2000;
    if (!c->hs_burst) c->hs_burst = 256;
    if (!c->key_hs_per_min) c->key_hs_per_min = 60;
    if (c->v4_prefix > 32 || c->v6_prefix > 128) {
        free(g);
        return UM_EINVAL;
    }
    g->src_cap = 16;
    while (g->src_cap < 2 * (size_t)c->max_preauth)
        g->src_cap *= 2;
    g->src = calloc(g->src_cap, sizeof(*g->src));
    if (!g->src) {
        free(g);
        return UM_ENOMEM;
    }
    randombytes_buf(g->src_hkey, sizeof(g->src_hkey));
    if ((r = um_hs_server_init(&g->hs, server_priv, keys, skew_s, replay_entries)) != 0) {
        free(g->src);
        free(g);
        return r;
    }
    if (disable_aes) g->hs.aes_hw = false;
    g->hs.quota = key_quota;
    g->hs.quota_ud = g;
    g->hs.resume = resume_hook;
    g->hs.resume_ud = g;
    g->refs = 1;
    *out = g;
    return 0;
}

um_gate_t *um_gate_ref(um_gate_t *g)
{
    if (g) g->refs++;
    return g;
}

void um_gate_unref(um_gate_t *g)
{
    if (!g || --g->refs > 0) return;
    um_hs_server_close(&g->hs);
    free(g->src);
    if (g->tombs) sodium_memzero(g->tombs, g->captombs * sizeof(*g->tombs));
    free(g->tombs);
    if (g->q) sodium_memzero(g->q, g->capq * sizeof(*g->q));
    free(g->q);
    sodium_memzero(g, sizeof(*g));
    free(g);
}

um_hs_server_t *um_gate_hs(um_gate_t *g)
{
    return &g->hs;
}

void um_gate_set_keys(um_gate_t *g, um_keyset_t *keys)
{
    um_hs_server_set_keys(&g->hs, keys);
}

void um_gate_stats(const um_gate_t *g, um_gate_stats_t *st)
{
    *st = g->st;
}

bool um_gate_admit(um_gate_t *g, const uint8_t src[UM_SRC_KEY_LEN])
{
    g->st.held++;
    if (g->st.parsing >= g->cfg.max_preauth) {
        g->st.parse_refused_global++;
        return false;
    }
    size_t j = src_find(g, src);
    if (g->src[j].count >= g->cfg.per_source) {
        g->st.parse_refused_source++;
        return false;
    }
    if (!g->src[j].count) memcpy(g->src[j].key, src, UM_SRC_KEY_LEN);
    g->src[j].count++;
    g->st.parsing++;
    g->st.parse_granted++;
    return true;
}

void um_gate_release_parse(um_gate_t *g, const uint8_t src[UM_SRC_KEY_LEN])
{
    size_t j = src_find(g, src);
    if (!g->src[j].count) return; /* not ours: ignore */
    if (--g->src[j].count == 0) src_delete(g, j);
    g->st.parsing--;
}

void um_gate_release_held(um_gate_t *g)
{
    if (g->st.held) g->st.held--;
    /* Wake every waiter once; each resumes its listener (which may pause
     * again at once). Copied first: a callback may wait again. */
    if (g->st.held < g->cfg.max_held && g->nwaiters) {
        waiter_t w[MAX_WAITERS];
        size_t n = g->nwaiters;
        memcpy(w, g->waiters, n * sizeof(*w));
        g->nwaiters = 0;
        for (size_t i = 0; i < n; i++)
            w[i].cb(w[i].ud);
    }
}

bool um_gate_room(um_gate_t *g)
{
    while (g->st.held >= g->cfg.max_held && g->ev_head) {
        um_gate_node_t *n = g->ev_head;
        um_gate_unlink(g, n);
        g->st.evicted++;
        n->evict(n); /* releases the held connection */
    }
    if (g->st.held < g->cfg.max_held) return true;
    g->st.paused++;
    return false;
}

void um_gate_evictable(um_gate_t *g, um_gate_node_t *n)
{
    if (n->linked) return;
    n->linked = true;
    n->next = NULL;
    n->prev = g->ev_tail;
    if (g->ev_tail)
        g->ev_tail->next = n;
    else
        g->ev_head = n;
    g->ev_tail = n;
}

void um_gate_unlink(um_gate_t *g, um_gate_node_t *n)
{
    if (!n->linked) return;
    if (n->prev)
        n->prev->next = n->next;
    else
        g->ev_head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        g->ev_tail = n->prev;
    n->prev = n->next = NULL;
    n->linked = false;
}

int um_gate_wait(um_gate_t *g, void (*cb)(void *ud), void *ud)
{
    for (size_t i = 0; i < g->nwaiters; i++)
        if (g->waiters[i].ud == ud) return 0;
    if (g->nwaiters == MAX_WAITERS) return UM_ENOSPC;
    g->waiters[g->nwaiters].cb = cb;
    g->waiters[g->nwaiters].ud = ud;
    g->nwaiters++;
    return 0;
}

void um_gate_unwait(um_gate_t *g, void *ud)
{
    for (size_t i = 0; i < g->nwaiters; i++)
        if (g->waiters[i].ud == ud) {
            g->waiters[i] = g->waiters[--g->nwaiters];
            return;
        }
}

bool um_gate_take_handshake(um_gate_t *g, uint64_t now_ms)
{
    return um_bucket_take(&g->hs_bucket, now_ms, g->cfg.hs_per_s, g->cfg.hs_burst, true);
}

bool um_gate_not_flight(const uint8_t *p, size_t n)
{
    return um_tcp_not_flight(p, n);
}
