/* DNS answers -> a bounded address-to-name cache (see dnsmap.h). */
#include "proxy/dnsmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define PTR_HOPS_MAX 16
#define TTL_MIN_S    60
#define TTL_MAX_S    3600

typedef struct {
    uint8_t type; /* 0: empty */
    uint8_t ip[16];
    uint8_t len;
    uint64_t expires_ms;
    char name[UM_DOMAIN_MAX + 1];
} slot_t;

struct um_dnsmap {
    slot_t s[UM_DNSMAP_SLOTS];
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Decodes the name at *off into out (lower case, dots), advancing *off past
 * it in the message. 0 or UM_EPROTO. */
static int read_name(const uint8_t *p, size_t n, size_t *off, char *out, size_t *len)
{
    size_t o = *off, used = 0;
    bool jumped = false;
    for (int hops = 0;;) {
        if (o >= n) return UM_EPROTO;
        uint8_t l = p[o];
        if (l == 0) {
            if (!jumped) *off = o + 1;
            break;
        }
        if ((l & 0xc0) == 0xc0) {
            if (o + 1 >= n || ++hops > PTR_HOPS_MAX) return UM_EPROTO;
            if (!jumped) *off = o + 2;
            jumped = true;
            o = (size_t)(l & 0x3f) << 8 | p[o + 1];
            continue;
        }
        if (l & 0xc0) return UM_EPROTO;
        if (o + 1 + l > n || used + l + (used ? 1 : 0) > UM_DOMAIN_MAX) return UM_EPROTO;
        if (used) out[used++] = '.';
        for (size_t i = 0; i < l; i++) {
            char c = (char)p[o + 1 + i];
            out[used++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        o += 1 + (size_t)l;
    }
    *len = used;
    return 0;
}

int um_dns_answers(const uint8_t *p, size_t n, um_dns_answer_cb cb, void *ud)
{
    if (n < 12) return UM_EPROTO;
    if (!(p[2] & 0x80) || (p[3] & 0x0f) != 0) return UM_EPROTO; /* a response, NOERROR */
    if (rd16(p + 4) != 1) return UM_EPROTO;
    size_t an = rd16(p + 6), off = 12;
    char q[UM_DOMAIN_MAX + 1], tmp[UM_DOMAIN_MAX + 1];
    size_t ql, tl;
    if (read_name(p, n, &off, q, &ql) != 0 || off + 4 > n || ql == 0) return UM_EPROTO;
    off += 4; /* qtype, qclass */
    int found = 0;
    for (size_t i = 0; i < an; i++) {
        if (read_name(p, n, &off, tmp, &tl) != 0 || off + 10 > n) return UM_EPROTO;
        uint16_t type = rd16(p + off), cls = rd16(p + off + 2);
        uint32_t ttl = (uint32_t)p[off + 4] << 24 | (uint32_t)p[off + 5] << 16 |
                       (uint32_t)p[off + 6] << 8 | p[off + 7];
        size_t rl = rd16(p + off + 8);
        off += 10;
        if (off + rl > n) return UM_EPROTO;
        if (cls == 1 && ((type == 1 && rl == 4) || (type == 28 && rl == 16))) {
            um_addr_t a;
            memset(&a, 0, sizeof(a));
            a.type = type == 1 ? UM_ADDR_IPV4 : UM_ADDR_IPV6;
            memcpy(type == 1 ? a.u.v4 : a.u.v6, p + off, rl);
            if (cb) cb(ud, q, ql, &a, ttl);
            found++;
        }
        off += rl;
    }
    return found;
}

int um_dnsmap_new(um_dnsmap_t **out)
{
    um_dnsmap_t *m = calloc(1, sizeof(*m));
    if (!m) return UM_ENOMEM;
    *out = m;
    return 0;
}

void um_dnsmap_free(um_dnsmap_t *m)
{
    free(m);
}

static void key_of(const um_addr_t *ip, uint8_t *type, uint8_t k[16])
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    memset(k, 0, 16);
    if (ip->type == UM_ADDR_IPV6 && memcmp(ip->u.v6, mapped, 12) == 0) {
        *type = UM_ADDR_IPV4;
        memcpy(k, ip->u.v6 + 12, 4);
    } else if (ip->type == UM_ADDR_IPV4) {
        *type = UM_ADDR_IPV4;
        memcpy(k, ip->u.v4, 4);
    } else {
        *type = UM_ADDR_IPV6;
        memcpy(k, ip->u.v6, 16);
    }
}

static size_t slot_of(uint8_t type, const uint8_t k[16])
{
    uint64_t h = 0xcbf29ce484222325ull ^ type;
    for (int i = 0; i < 16; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    return (size_t)(h ^ (h >> 29)) & (UM_DNSMAP_SLOTS - 1);
}

void um_dnsmap_put(um_dnsmap_t *m, const um_addr_t *ip, const char *name, size_t n, uint32_t ttl,
                   uint64_t now_ms)
{
    if (ip->type != UM_ADDR_IPV4 && ip->type != UM_ADDR_IPV6) return;
    if (n == 0 || n > UM_DOMAIN_MAX) return;
    uint8_t type, k[16];
    key_of(ip, &type, k);
    slot_t *s = &m->s[slot_of(type, k)];
    if (ttl < TTL_MIN_S) ttl = TTL_MIN_S;
    if (ttl > TTL_MAX_S) ttl = TTL_MAX_S;
    s->type = type;
    memcpy(s->ip, k, 16);
    for (size_t i = 0; i < n; i++) /* printable only: the name may reach a log line */
        s->name[i] = name[i] > 0x20 && name[i] < 0x7f ? name[i] : '?';
    s->name[n] = 0;
    s->len = (uint8_t)n;
    s->expires_ms = now_ms + (uint64_t)ttl * 1000;
}

typedef struct {
    um_dnsmap_t *m;
    uint64_t now;
} learn_t;

static void learn_one(void *ud, const char *name, size_t n, const um_addr_t *ip, uint32_t ttl)
{
    learn_t *l = ud;
    um_dnsmap_put(l->m, ip, name, n, ttl, l->now);
}

int um_dnsmap_learn(um_dnsmap_t *m, const uint8_t *p, size_t n, uint64_t now_ms)
{
    learn_t l = {m, now_ms};
    return um_dns_answers(p, n, learn_one, &l);
}

bool um_dnsmap_get(const um_dnsmap_t *m, const um_addr_t *ip, uint64_t now_ms, char *out,
                   size_t cap, size_t *n)
{
    if (!m || (ip->type != UM_ADDR_IPV4 && ip->type != UM_ADDR_IPV6)) return false;
    uint8_t type, k[16];
    key_of(ip, &type, k);
    const slot_t *s = &m->s[slot_of(type, k)];
    if (s->type != type || memcmp(s->ip, k, 16) != 0 || now_ms >= s->expires_ms) return false;
    if (cap <= s->len) return false;
    memcpy(out, s->name, s->len);
    out[s->len] = 0;
    *n = s->len;
    return true;
}
