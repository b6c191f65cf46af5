#include "session/session.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

#define ACK_FIELDS  9  /* type, ack */
#define DATA_FIELDS 10 /* offset, length */

struct um_sess {
    um_rec_dir_t tx, rx;
    um_sess_cfg_t cfg;
    uint8_t sid[UM_SID_LEN];
    int alg;
    int err;
    unsigned events;
    um_buf_t txq; /* plaintext from tx_acked to tx_queued */
    um_buf_t rxq; /* delivered, not yet read */
    um_buf_t inb; /* a partial record (or a few) from the wire */
    uint64_t tx_acked, tx_sent, tx_queued, rx_next, ack_sent;
    uint64_t tx_high;           /* the most ever sealed (tx_sent rewinds on resumption) */
    uint32_t moves;             /* resuming handshakes started (client) */
    uint64_t key_bytes, key_ms; /* bytes sealed under the current tx key; when it began */
    bool ack_pending;           /* an ACK record must go out */
    uint64_t unacked_since;     /* when rx_next first passed ack_sent (0: it has not) */
    uint64_t guard_left;        /* data bytes still to go in guarded records */
    uint64_t last_data_ms;      /* when the last DATA record was sealed (0: never) */
    uint8_t rnd[256];           /* random bytes for padding lengths, refilled in bulk */
    size_t rnd_used;
    uint8_t body[UM_REC_BODY_MAX]; /* record body scratch (plaintext) */
};

/* Acknowledgements are delayed (like TCP's): one goes out once this much has
 * arrived unacknowledged, or ACK_DELAY_MS after the first unacknowledged byte,
 * and every DATA record carries one anyway. The peer keeps up to tx_max
 * unacknowledged bytes, far above this, so it never stalls on us. */
#define ACK_EVERY    (64u * 1024u)
#define ACK_DELAY_MS 20u

static uint64_t now_ms(const um_sess_t *s)
{
    return s->cfg.now_ms ? s->cfg.now_ms() : um_now_ms();
}

static int die(um_sess_t *s, int r)
{
    if (!s->err) {
        s->err = r;
        s->events |= UM_SESS_EV_ERROR;
        /* The keys are useless now: wipe them at once. */
        um_rec_close(&s->tx);
        um_rec_close(&s->rx);
    }
    return s->err;
}

static int install_keys(um_sess_t *s, const um_sess_keys_t *k)
{
    int r;
    if ((r = um_rec_init(&s->tx, k->alg, 1, k->k_send, s->cfg.ctr_limit)) != 0) return r;
    if ((r = um_rec_init(&s->rx, k->alg, 0, k->k_recv, s->cfg.ctr_limit)) != 0) {
        um_rec_close(&s->tx);
        return r;
    }
    s->key_bytes = 0;
    s->key_ms = now_ms(s);
    return 0;
}

um_sess_t *um_sess_new(const um_sess_keys_t *keys, const um_sess_cfg_t *cfg)
{
    if (!keys || (keys->alg != UM_AEAD_CHACHA20_POLY1305 && keys->alg != UM_AEAD_AES256_GCM))
        return NULL;
    um_sess_t *s = calloc(1, sizeof(*s));
    if (s) s->rnd_used = sizeof(s->rnd); /* the pool is filled on first use */
    if (!s) return NULL;
    if (cfg) s->cfg = *cfg;
    if (!s->cfg.tx_max) s->cfg.tx_max = 4u << 20;
    if (!s->cfg.rx_max) s->cfg.rx_max = 1u << 20;
    if (s->cfg.rx_max < UM_SESS_DATA_MAX) s->cfg.rx_max = UM_SESS_DATA_MAX;
    if (!s->cfg.rekey_bytes) s->cfg.rekey_bytes = UINT64_C(1) << 30;
    if (!s->cfg.rekey_ms) s->cfg.rekey_ms = 10 * 60 * 1000;
    s->alg = keys->alg;
    memcpy(s->sid, keys->sid, UM_SID_LEN);
    um_buf_init(&s->txq, s->cfg.tx_max);
    um_buf_init(&s->rxq, s->cfg.rx_max);
    um_buf_init(&s->inb, UM_REC_WIRE_MAX);
    if (install_keys(s, keys) != 0) {
        free(s);
        return NULL;
    }
    s->events = UM_SESS_EV_ESTABLISHED;
    return s;
}

void um_sess_free(um_sess_t *s)
{
    if (!s) return;
    um_rec_close(&s->tx);
    um_rec_close(&s->rx);
    um_buf_wipe(&s->txq);
    um_buf_wipe(&s->rxq);
    um_buf_wipe(&s->inb);
    sodium_memzero(s, sizeof(*s));
    free(s);
}

int um_sess_write(um_sess_t *s, const uint8_t *p, size_t n)
{
    if (!s || (!p && n)) return UM_EINVAL;
    if (s->err) return s->err;
    size_t space = um_buf_space(&s->txq);
    if (n > space) n = space;
    if (n > (size_t)INT32_MAX) n = INT32_MAX;
    if (n == 0) return UM_ENOSPC;
    int r = um_buf_append(&s->txq, p, n);
    if (r) return r;
    s->tx_queued += n;
    return (int)n;
}

/* Applies one opened record body. `inplace`: a DATA record's data is not in
 * b but already at the read queue's tail (reserved, not committed), where
 * open_one decrypted it. */
static int apply(um_sess_t *s, const uint8_t *b, size_t n, bool inplace)
{
    if (n < ACK_FIELDS) return UM_EPROTO;
    uint8_t type = b[0];
    uint64_t ack = um_ld64(b + 1);
    if (type != UM_REC_T_DATA && type != UM_REC_T_ACK && type != UM_REC_T_REKEY) return UM_EPROTO;
    /* After a resumption tx_sent starts again below what was sealed before
     * (tx_high); the peer may acknowledge up to that. */
    if (ack < s->tx_acked || ack > s->tx_high) return UM_EPROTO;
    if (ack > s->tx_acked) {
        um_buf_consume(&s->txq, (size_t)(ack - s->tx_acked));
        s->tx_acked = ack;
        if (s->tx_sent < ack) s->tx_sent = ack;
        s->events |= UM_SESS_EV_ACKED;
    }
    if (type == UM_REC_T_DATA) {
        if (n < ACK_FIELDS + DATA_FIELDS) return UM_EPROTO;
        uint64_t off = um_ld64(b + ACK_FIELDS);
        size_t dlen = ((size_t)b[ACK_FIELDS + 8] << 8) | b[ACK_FIELDS + 9];
        if (dlen == 0 || dlen > UM_SESS_DATA_MAX || ACK_FIELDS + DATA_FIELDS + dlen > n)
            return UM_EPROTO;
        if (off > s->rx_next || off + dlen < off) return UM_EPROTO; /* a gap: never */
        if (off + dlen > s->rx_next) {
            size_t skip = (size_t)(s->rx_next - off);
            if (inplace) {
                uint8_t *q = s->rxq.data + s->rxq.tail;      /* open_one reserved dlen here */
                if (skip) memmove(q, q + skip, dlen - skip); /* a resent overlap: rare */
                um_buf_commit(&s->rxq, dlen - skip);
            } else {
                int r = um_buf_append(&s->rxq, b + ACK_FIELDS + DATA_FIELDS + skip, dlen - skip);
                if (r) return r;
            }
            s->rx_next += dlen - skip;
            if (s->rx_next - s->ack_sent >= ACK_EVERY)
                s->ack_pending = true;
            else if (!s->unacked_since)
                s->unacked_since = now_ms(s) | 1;
            s->events |= UM_SESS_EV_READABLE;
        }
    } else if (type == UM_REC_T_REKEY) {
        int r = um_rec_ratchet(&s->rx);
        if (r) return r;
        s->events |= UM_SESS_EV_REKEY_RX;
    }
    return 0;
}

/* Opens the record at p[0] (n bytes available) and applies it; *used is its
 * wire size. A DATA record's data is decrypted straight into the read queue
 * (no copy from a scratch body): the fields first, into s->body, then the
 * data where it will be read, then the padding after the fields. The
 * queue has room (um_sess_feed checks), and what was decrypted there is
 * committed only once the tag is good, wiped otherwise. UM_EAGAIN: the
 * record is not whole yet. */
static int open_one(um_sess_t *s, const uint8_t *p, size_t n, size_t *used)
{
    size_t bl = 0, c = 0;
    int r = um_rec_open_start(&s->rx, p, n, &bl);
    if (r) return r;
    const uint8_t *ct = p + UM_REC_HDR_WIRE;
    size_t fields = ACK_FIELDS + DATA_FIELDS, dlen = 0;
    uint8_t *q = NULL;
    if (bl >= fields && (r = um_rec_open_body(&s->rx, ct, fields, s->body)) == 0) {
        dlen = ((size_t)s->body[ACK_FIELDS + 8] << 8) | s->body[ACK_FIELDS + 9];
        /* Only a DATA record whose lengths add up goes in place; anything
         * else is opened whole into s->body and judged by apply(). */
        if (s->body[0] == UM_REC_T_DATA && dlen > 0 && dlen <= UM_SESS_DATA_MAX &&
            dlen <= bl - fields)
            q = um_buf_reserve(&s->rxq, dlen);
        if (q && s->rxq.tail + dlen > s->rxq.dirty)
            s->rxq.dirty = s->rxq.tail + dlen; /* it will hold plaintext: wiped on release */
        if (q && (r = um_rec_open_body(&s->rx, ct + fields, dlen, q)) == 0)
            r = um_rec_open_body(&s->rx, ct + fields + dlen, bl - fields - dlen, s->body + fields);
        else if (!q)
            r = um_rec_open_body(&s->rx, ct + fields, bl - fields, s->body + fields);
    } else if (bl < fields) {
        r = um_rec_open_body(&s->rx, ct, bl, s->body);
    }
    if (r == 0) r = um_rec_open_finish(&s->rx, p, &c);
    if (r) {
        if (q) sodium_memzero(q, dlen);
        sodium_memzero(s->body, bl);
        return r;
    }
    *used = c;
    if (q) {
        /* apply() reads only the fields of s->body (bl is the body's
         * length, for its checks); the data is at the queue's tail. */
        r = apply(s, s->body, bl, true);
        if (r == 0) return 0;
        sodium_memzero(q, dlen);
        return r;
    }
    return apply(s, s->body, bl, false);
}

int um_sess_feed(um_sess_t *s, const uint8_t *wire, size_t n, size_t *consumed)
{
    size_t used = 0, c = 0;
    int r = 0;
    if (!s || (!wire && n) || !consumed) return UM_EINVAL;
    *consumed = 0;
    if (s->err) return s->err;
    /* Bounded: each pass consumes a record or input, or stops. */
    for (;;) {
        if (um_buf_space(&s->rxq) < UM_SESS_DATA_MAX) break;
        const uint8_t *p;
        size_t avail;
        if (um_buf_len(&s->inb)) {
            size_t take = UM_REC_WIRE_MAX - um_buf_len(&s->inb);
            if (take > n - used) take = n - used;
            if (take && (r = um_buf_append(&s->inb, wire + used, take)) != 0) break;
            used += take;
            avail = um_buf_peek(&s->inb, &p);
            r = open_one(s, p, avail, &c);
            if (r == UM_EAGAIN) {
                r = 0;
                break;
            }
            if (r) break;
            um_buf_consume(&s->inb, c);
        } else {
            if (used == n) break;
            p = wire + used;
            avail = n - used;
            r = open_one(s, p, avail, &c);
            if (r == UM_EAGAIN) {
                if ((r = um_buf_append(&s->inb, p, avail)) != 0) break;
                used = n;
                break;
            }
            if (r) break;
            used += c;
        }
    }
    *consumed = used;
    return r ? die(s, r) : 0;
}

size_t um_sess_read(um_sess_t *s, uint8_t *out, size_t cap)
{
    return s ? um_buf_read(&s->rxq, out, cap) : 0;
}

size_t um_sess_peek(const um_sess_t *s, const uint8_t **p)
{
    if (!s) return 0;
    return um_buf_peek(&s->rxq, p);
}

void um_sess_consume(um_sess_t *s, size_t n)
{
    if (s && n <= um_buf_len(&s->rxq)) um_buf_consume(&s->rxq, n);
}

uint8_t *um_sess_write_reserve(um_sess_t *s, size_t want, size_t *room)
{
    *room = 0;
    if (!s || s->err) return NULL;
    size_t space = um_buf_space(&s->txq);
    if (space > want) space = want;
    if (space == 0) return NULL;
    uint8_t *p = um_buf_reserve(&s->txq, space);
    if (p) *room = space;
    return p;
}

void um_sess_write_commit(um_sess_t *s, size_t n)
{
    um_buf_commit(&s->txq, n);
    s->tx_queued += n;
}

size_t um_sess_readable(const um_sess_t *s)
{
    return s ? um_buf_len(&s->rxq) : 0;
}

/* 16 random bits from the pool (one getrandom per 128 draws, not per record).
 * The modulo bias is below 2^-8 for max <= 255 and does not matter: padding
 * lengths are not secrets, they only need to vary. */
static uint32_t rand16(um_sess_t *s)
{
    if (s->rnd_used + 2 > sizeof(s->rnd)) {
        randombytes_buf(s->rnd, sizeof(s->rnd));
        s->rnd_used = 0;
    }
    uint32_t v = ((uint32_t)s->rnd[s->rnd_used] << 8) | s->rnd[s->rnd_used + 1];
    s->rnd_used += 2;
    return v;
}

static size_t pad_for(um_sess_t *s, size_t body, bool guarded)
{
    size_t room = UM_REC_BODY_MAX - body, pad = 0;
    if (guarded) {
        size_t wire = body + UM_REC_OVERHEAD;
        size_t lo = wire > UM_SESS_GUARD_MIN ? wire : UM_SESS_GUARD_MIN;
        pad = lo - wire + rand16(s) % (UM_SESS_GUARD_SPREAD + 1u);
        return pad > room ? room : pad;
    }
    switch (s->cfg.pad.mode) {
    case UM_PAD_RANDOM: pad = s->cfg.pad.max ? rand16(s) % (s->cfg.pad.max + 1u) : 0; break;
    case UM_PAD_BLOCK: {
        size_t blk = s->cfg.pad.block < 64 ? 64 : s->cfg.pad.block;
        size_t wire = body + UM_REC_OVERHEAD;
        pad = (blk - wire % blk) % blk;
        break;
    }
    default: break;
    }
    return pad > room ? room : pad;
}

/* Seals one record of the given type, at most `room` bytes on the wire
 * (room >= RECORD_MIN, and >= UM_SESS_FILLER_MIN for a DATA record); DATA
 * takes up to UM_SESS_DATA_MAX unsent bytes. */
#define DATA_RECORD_MIN (UM_REC_OVERHEAD + ACK_FIELDS + DATA_FIELDS + 1)
static int emit(um_sess_t *s, uint8_t type, size_t room, uint8_t *out, size_t *outn)
{
    size_t n = ACK_FIELDS, dlen = 0;
    bool guarded = false;
    const uint8_t *data = NULL; /* DATA: sealed where it lies in txq, not copied */
    s->body[0] = type;
    um_st64(s->body + 1, s->rx_next);
    if (type == UM_REC_T_DATA) {
        const uint8_t *q;
        um_buf_peek(&s->txq, &q);
        size_t at = (size_t)(s->tx_sent - s->tx_acked);
        dlen = (size_t)(s->tx_queued - s->tx_sent);
        if (dlen > UM_SESS_DATA_MAX) dlen = UM_SESS_DATA_MAX;
        if (dlen > room - (DATA_RECORD_MIN - 1)) dlen = room - (DATA_RECORD_MIN - 1);
        um_st64(s->body + n, s->tx_sent);
        s->body[n + 8] = (uint8_t)(dlen >> 8);
        s->body[n + 9] = (uint8_t)dlen;
        n += DATA_FIELDS;
        data = q + at;
        if (s->cfg.pad.guard_bytes) {
            uint64_t now = now_ms(s);
            if (!s->last_data_ms || now - s->last_data_ms >= s->cfg.pad.guard_idle_ms)
                if (s->guard_left < s->cfg.pad.guard_bytes) s->guard_left = s->cfg.pad.guard_bytes;
            s->last_data_ms = now ? now : 1;
        }
        if (s->guard_left) {
            guarded = true;
            s->guard_left -= dlen < s->guard_left ? dlen : s->guard_left;
        }
    }
    /* The body is the fields, the data, the padding: three pieces. */
    size_t fields = n;
    n += dlen;
    size_t pad = pad_for(s, n, guarded);
    if (pad > room - UM_REC_OVERHEAD - n) pad = room - UM_REC_OVERHEAD - n;
    memset(s->body + fields, 0, pad);
    um_aead_part_t parts[3] = {{s->body, fields}, {data, dlen}, {s->body + fields, pad}};
    int r = um_rec_sealv(&s->tx, parts, 3, out, UM_REC_WIRE_MAX, outn);
    if (r) return r;
    s->tx_sent += dlen;
    if (s->tx_sent > s->tx_high) s->tx_high = s->tx_sent;
    s->ack_sent = s->rx_next;
    s->ack_pending = false;
    s->unacked_since = 0;
    s->key_bytes += *outn;
    return 0;
}

int um_sess_pull_filler(um_sess_t *s, size_t wire_len, uint8_t *out, size_t cap, size_t *outn)
{
    if (!s || !out || !outn) return UM_EINVAL;
    *outn = 0;
    if (s->err) return s->err;
    if (wire_len < UM_SESS_FILLER_MIN || wire_len > UM_REC_WIRE_MAX) return UM_EINVAL;
    if (cap < wire_len) return UM_ENOSPC;
    size_t n = wire_len - UM_REC_OVERHEAD;
    memset(s->body, 0, n);
    s->body[0] = UM_REC_T_ACK;
    um_st64(s->body + 1, s->rx_next);
    int r = um_rec_seal(&s->tx, s->body, n, out, cap, outn);
    if (r) return die(s, r);
    s->ack_sent = s->rx_next;
    s->ack_pending = false;
    s->unacked_since = 0;
    s->key_bytes += *outn;
    return 0;
}

/* A delayed acknowledgement whose time has come. */
static bool ack_due(const um_sess_t *s)
{
    return s->ack_pending ||
           (s->unacked_since && now_ms(s) - (s->unacked_since & ~(uint64_t)1) >= ACK_DELAY_MS);
}

bool um_sess_want_pull(const um_sess_t *s)
{
    return s && !s->err && (s->tx_queued > s->tx_sent || ack_due(s));
}

int um_sess_pull_limit(um_sess_t *s, uint8_t *out, size_t cap, size_t limit, size_t *outn)
{
    size_t total = 0, rn = 0;
    int r = 0;
    if (!s || !out || !outn) return UM_EINVAL;
    *outn = 0;
    if (s->err) return s->err;
    if (limit > cap) limit = cap;
    /* Each record needs room for a whole one of its kind: a full-size record
     * without a limit, a smaller DATA record (or an ACK) under one. */
    for (;;) {
        size_t left = limit - total;
        /* Bound by the buffer, not the limit: whole-size room or stop. */
        if (left == cap - total && left < UM_REC_WIRE_MAX) break;
        size_t room = left < UM_REC_WIRE_MAX ? left : UM_REC_WIRE_MAX;
        if (room < DATA_RECORD_MIN || !um_sess_want_pull(s)) break;
        if (s->key_bytes >= s->cfg.rekey_bytes || now_ms(s) - s->key_ms >= s->cfg.rekey_ms) {
            /* REKEY is the last record under this key; the next one uses
             * the ratcheted key. No round trip, so traffic never stalls. */
            if ((r = emit(s, UM_REC_T_REKEY, room, out + total, &rn)) != 0) break;
            total += rn;
            if ((r = um_rec_ratchet(&s->tx)) != 0) break;
            s->key_bytes = 0;
            s->key_ms = now_ms(s);
            s->events |= UM_SESS_EV_REKEY_TX;
            continue;
        }
        uint8_t type = s->tx_queued > s->tx_sent ? UM_REC_T_DATA : UM_REC_T_ACK;
        if ((r = emit(s, type, room, out + total, &rn)) != 0) break;
        total += rn;
    }
    *outn = total;
    return r ? die(s, r) : 0;
}

int um_sess_pull(um_sess_t *s, uint8_t *out, size_t cap, size_t *outn)
{
    return um_sess_pull_limit(s, out, cap, cap, outn);
}

unsigned um_sess_events(um_sess_t *s)
{
    if (!s) return 0;
    unsigned e = s->events;
    s->events = 0;
    return e;
}

int um_sess_error(const um_sess_t *s)
{
    return s ? s->err : UM_EINVAL;
}

void um_sess_guard(um_sess_t *s, uint32_t bytes)
{
    if (s && s->cfg.pad.guard_bytes && s->guard_left < bytes) s->guard_left = bytes;
}

void um_sess_set_padding(um_sess_t *s, const um_pad_policy_t *pad)
{
    if (s && pad) s->cfg.pad = *pad;
}

const uint8_t *um_sess_id(const um_sess_t *s)
{
    return s->sid;
}

int um_sess_alg(const um_sess_t *s)
{
    return s->alg;
}

void um_sess_offsets(const um_sess_t *s, um_sess_offsets_t *o)
{
    o->tx_acked = s->tx_acked;
    o->tx_sent = s->tx_sent;
    o->tx_high = s->tx_high;
    o->tx_queued = s->tx_queued;
    o->rx_next = s->rx_next;
    o->tx_epoch = s->tx.epoch;
    o->rx_epoch = s->rx.epoch;
}

int um_sess_resume(um_sess_t *s, const um_sess_keys_t *keys, uint64_t peer_rx)
{
    if (!s || !keys || keys->alg != s->alg) return UM_EINVAL;
    if (s->err) return s->err;
    if (peer_rx > s->tx_high) return UM_EINVAL;
    /* An offset below what the peer acknowledged: it wrote it before those
     * acks (make-before-break: it kept reading the old connection), and it
     * has everything up to its acks. */
    if (peer_rx < s->tx_acked) peer_rx = s->tx_acked;
    um_rec_close(&s->tx);
    um_rec_close(&s->rx);
    int r = install_keys(s, keys);
    if (r) return die(s, r);
    um_buf_consume(&s->txq, (size_t)(peer_rx - s->tx_acked));
    s->tx_acked = peer_rx;
    s->tx_sent = peer_rx;
    um_buf_clear(&s->inb);
    s->ack_pending = true;
    s->events |= UM_SESS_EV_ACKED; /* room in the send queue, perhaps */
    return 0;
}

bool um_sess_resumable(const um_sess_t *s, uint64_t peer_rx)
{
    return s && !s->err && peer_rx <= s->tx_high;
}

uint32_t um_sess_take_move(um_sess_t *s)
{
    return ++s->moves;
}

size_t um_sess_tx_max(const um_sess_t *s)
{
    return s->txq.max;
}

void um_sess_set_tx_max(um_sess_t *s, size_t max)
{
    if (!s || !max) return;
    size_t len = um_buf_len(&s->txq);
    s->txq.max = max > len ? max : len;
}
