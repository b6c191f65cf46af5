#include "session/handshake.h"

#include <sodium.h>
#include <string.h>

#include "crypto/aead.h"
#include "util/bytes.h"
#include "util/err.h"

void um_sess_keys_wipe(um_sess_keys_t *k)
{
    if (k) sodium_memzero(k, sizeof(*k));
}

/* sid = BLAKE2b-128(key = h, "umbra/1 session id"). */
static void derive(const um_noise_split_t *sp, um_sess_keys_t *k, int initiator)
{
    static const char label[] = "umbra/1 session id";
    memcpy(k->k_send, sp->k_send, 32);
    memcpy(k->k_recv, sp->k_recv, 32);
    crypto_generichash_blake2b(k->sid, UM_SID_LEN, (const uint8_t *)label, sizeof(label) - 1, sp->h,
                               64);
    k->initiator = initiator;
}

int um_hs_p1_parse(const uint8_t *p, size_t n, um_hs_p1_t *out)
{
    if (!p || !out) return UM_EINVAL;
    memset(out, 0, sizeof(*out));
    if (n < UM_HS_P1_MIN || p[0] != UM_HS_VERSION) return UM_EPROTO;
    size_t at = UM_HS_P1_MIN;
    out->flags = p[UM_HS_P1_OFF_FLAGS];
    out->timestamp = um_ld64(p + UM_HS_P1_OFF_TS);
    if (out->flags & UM_HS_F_RESUME) {
        if (n - at < UM_HS_P1_RESUME_LEN) return UM_EPROTO;
        out->resume = true;
        memcpy(out->sid, p + at, UM_SID_LEN);
        out->resume_offset = um_ld64(p + at + UM_SID_LEN);
        out->resume_move = um_ld32(p + at + UM_SID_LEN + 8);
        at += UM_HS_P1_RESUME_LEN;
    }
    if (out->flags & UM_HS_F_BUDGET) {
        if (n - at < 4) return UM_EPROTO;
        out->budget = um_ld32(p + at);
    }
    return 0;
}

int um_hs_p2_parse(const uint8_t *p, size_t n, um_hs_p2_t *out)
{
    if (!p || !out) return UM_EINVAL;
    memset(out, 0, sizeof(*out));
    if (n < UM_HS_P2_MIN || p[0] != UM_HS_VERSION ||
        (p[1] != UM_AEAD_CHACHA20_POLY1305 && p[1] != UM_AEAD_AES256_GCM))
        return UM_EPROTO;
    out->alg = p[1];
    if (p[2] & UM_HS_F2_RESUMED) {
        out->resumed = true;
        if (n >= UM_HS_P2_MIN + 8) {
            out->has_peer_rx = true;
            out->peer_rx = um_ld64(p + UM_HS_P2_MIN);
        }
    }
    return 0;
}

int um_hs_server_init(um_hs_server_t *srv, const uint8_t s_priv[32], um_keyset_t *keys,
                      uint32_t skew_s, size_t replay_entries)
{
    if (!srv || !s_priv) return UM_EINVAL;
    memset(srv, 0, sizeof(*srv));
    memcpy(srv->s_priv, s_priv, 32);
    if (crypto_scalarmult_base(srv->s_pub, srv->s_priv) != 0) {
        sodium_memzero(srv, sizeof(*srv));
        return UM_EINVAL;
    }
    int r = um_replay_init(&srv->replay, replay_entries ? replay_entries : 65536);
    if (r) {
        sodium_memzero(srv, sizeof(*srv));
        return r;
    }
    srv->keys = um_keyset_ref(keys);
    srv->skew_s = skew_s ? skew_s : UM_HS_SKEW_DEFAULT;
    srv->aes_hw = um_cpu_has_aes();
    return 0;
}

void um_hs_server_set_keys(um_hs_server_t *srv, um_keyset_t *keys)
{
    um_keyset_t *old = srv->keys;
    srv->keys = um_keyset_ref(keys);
    um_keyset_unref(old);
}

void um_hs_server_close(um_hs_server_t *srv)
{
    if (!srv) return;
    um_keyset_unref(srv->keys);
    um_replay_free(&srv->replay);
    sodium_memzero(srv, sizeof(*srv));
}

int um_hs_server_respond(um_hs_server_t *srv, const uint8_t *prologue, size_t prolen,
                         const uint8_t *msg1, size_t n, uint64_t now_s, size_t reply_len,
                         uint8_t *reply, size_t cap, size_t *replyn, um_sess_keys_t *keys)
{
    um_noise_hs_t hs;
    um_noise_split_t sp;
    uint8_t pl[UM_HS_MSG_MAX];
    uint8_t p2[UM_HS_MSG_MAX];
    size_t pn = 0, p2n;
    int r;

    if (!srv || !msg1 || !reply || !replyn || !keys) return UM_EINVAL;
    memset(keys, 0, sizeof(*keys));
    if (n < UM_HS_MSG1_MIN || n > UM_HS_MSG_MAX) return UM_EPROTO;
    if (reply_len < UM_HS_MSG2_MIN) reply_len = UM_HS_MSG2_MIN;
    if (reply_len > UM_HS_MSG_MAX || cap < reply_len) return UM_ENOSPC;

    if ((r = um_noise_init_responder_kp(&hs, prologue, prolen, srv->s_priv, srv->s_pub)) != 0)
        return r;
    /* -> e, es, s, ss, payload (wipes hs itself on failure) */
    if ((r = um_noise_read_msg1(&hs, msg1, n, pl, sizeof(pl), &pn)) != 0) goto out;
    if (!um_keyset_contains(srv->keys, hs.rs)) {
        r = UM_EACCES;
        goto out;
    }
    um_hs_p1_t p1;
    if ((r = um_hs_p1_parse(pl, pn, &p1)) != 0) goto out;
    uint8_t flags = p1.flags;
    uint64_t ts = p1.timestamp;
    if (ts + srv->skew_s < now_s || ts > now_s + srv->skew_s) {
        r = UM_EREPLAY;
        goto out;
    }
    uint64_t server_rx = 0;
    if (p1.resume) {
        keys->resume_requested = 1;
        memcpy(keys->resume_sid, p1.sid, UM_SID_LEN);
        keys->resume_offset = p1.resume_offset;
        keys->resume_move = p1.resume_move;
        int v = srv->resume ? srv->resume(srv->resume_ud, hs.rs, p1.sid, p1.resume_offset,
                                          p1.resume_move, now_s, &server_rx)
                            : UM_HS_RESUME_NO;
        if (v == UM_HS_RESUME_STALE) {
            r = UM_EREPLAY;
            goto out;
        }
        keys->resumed = v == UM_HS_RESUME_YES;
    }
    keys->budget = p1.budget;
    /* A flight that continues a session adds none: the quota counts sessions
     * being made, not the moves of one (rotation makes many). */
    bool quota = srv->quota && !keys->resumed;
    if (quota && !srv->quota(srv->quota_ud, hs.rs, now_s, false)) {
        r = UM_ELIMIT;
        goto out;
    }
    /* Last check, so only authenticated, in-window flights fill the filter.
     * A flight that resumes is not entered: its move number, above every
     * earlier one of its session, already makes a replay of it stale, so
     * rotating sessions (thousands of moves) cannot fill the filter. */
    if (!keys->resumed && (r = um_replay_check(&srv->replay, hs.re, ts + srv->skew_s, now_s)) != 0)
        goto out;
    if (quota) (void)srv->quota(srv->quota_ud, hs.rs, now_s, true);

    keys->alg =
        (srv->aes_hw && (flags & UM_HS_F_AES)) ? UM_AEAD_AES256_GCM : UM_AEAD_CHACHA20_POLY1305;
    keys->timestamp = ts;
    memcpy(keys->peer_static, hs.rs, 32);
    p2n = reply_len - UM_NOISE_MSG2_OVERHEAD;
    memset(p2, 0, p2n);
    p2[0] = UM_HS_VERSION;
    p2[1] = (uint8_t)keys->alg;
    if (keys->resumed) {
        /* A payload too short for the offset (a transport imitating a tiny
         * first record) says RESUMED alone: the client then resends from the
         * last offset we acknowledged. */
        p2[2] = UM_HS_F2_RESUMED;
        if (p2n >= UM_HS_P2_MIN + 8) um_st64(p2 + UM_HS_P2_MIN, server_rx);
    }
    /* <- e, ee, se, payload */
    if ((r = um_noise_write_msg2(&hs, p2, p2n, reply, cap, replyn)) != 0) goto out;
    if ((r = um_noise_split(&hs, &sp)) != 0) goto out;
    derive(&sp, keys, 0);
out:
    um_noise_hs_wipe(&hs);
    sodium_memzero(&sp, sizeof(sp));
    sodium_memzero(pl, pn < sizeof(pl) ? pn : sizeof(pl));
    if (r) um_sess_keys_wipe(keys);
    return r;
}

int um_hs_client_start(um_hs_client_t *c, const uint8_t *prologue, size_t prolen,
                       const uint8_t c_priv[32], const uint8_t server_pub[32],
                       const um_hs_client_opts_t *opts, uint64_t now_s, size_t msg_len,
                       uint8_t *out, size_t cap, size_t *outn)
{
    uint8_t pl[UM_HS_MSG_MAX];
    size_t min = UM_HS_MSG1_MIN;
    int r;

    if (!c || !c_priv || !server_pub || !out || !outn) return UM_EINVAL;
    if (opts && opts->resume_sid) min += UM_HS_P1_RESUME_LEN;
    if (opts && opts->budget) min += 4;
    if (msg_len < min) msg_len = min;
    if (msg_len > UM_HS_MSG_MAX || cap < msg_len) return UM_ENOSPC;
    memset(c, 0, sizeof(*c));
    memcpy(c->server_pub, server_pub, 32);
    if ((r = um_noise_init_initiator(&c->nz, prologue, prolen, c_priv, server_pub)) != 0) return r;
    size_t pn = msg_len - UM_NOISE_MSG1_OVERHEAD;
    memset(pl, 0, pn);
    pl[0] = UM_HS_VERSION;
    pl[UM_HS_P1_OFF_FLAGS] = (uint8_t)((opts && opts->aes_hw ? UM_HS_F_AES : 0) |
                                       (opts && opts->resume_sid ? UM_HS_F_RESUME : 0) |
                                       (opts && opts->budget ? UM_HS_F_BUDGET : 0));
    um_st64(pl + UM_HS_P1_OFF_TS, now_s);
    size_t at = UM_HS_P1_MIN;
    if (opts && opts->resume_sid) {
        memcpy(pl + at, opts->resume_sid, UM_SID_LEN);
        um_st64(pl + at + UM_SID_LEN, opts->resume_offset);
        um_st32(pl + at + UM_SID_LEN + 8, opts->resume_move);
        at += UM_HS_P1_RESUME_LEN;
    }
    if (opts && opts->budget) um_st32(pl + at, opts->budget);
    r = um_noise_write_msg1(&c->nz, pl, pn, out, cap, outn);
    sodium_memzero(pl, pn);
    if (r) {
        um_hs_client_wipe(c);
        return r;
    }
    c->started = 1;
    return 0;
}

int um_hs_client_finish(um_hs_client_t *c, const uint8_t *msg2, size_t n, um_sess_keys_t *keys)
{
    uint8_t pl[UM_HS_MSG_MAX];
    um_noise_split_t sp;
    size_t pn = 0;
    int r;

    if (!c || !msg2 || !keys) return UM_EINVAL;
    memset(keys, 0, sizeof(*keys));
    memset(&sp, 0, sizeof(sp));
    if (!c->started) return UM_EINVAL;
    if (n < UM_HS_MSG2_MIN || n > UM_HS_MSG_MAX) {
        r = UM_EPROTO;
        goto out;
    }
    /* <- e, ee, se, payload */
    if ((r = um_noise_read_msg2(&c->nz, msg2, n, pl, sizeof(pl), &pn)) != 0) goto out;
    um_hs_p2_t p2;
    if ((r = um_hs_p2_parse(pl, pn, &p2)) != 0) goto out;
    keys->alg = p2.alg;
    keys->resumed = p2.resumed;
    keys->resume_peer_rx = p2.peer_rx;
    keys->resume_has_peer_rx = p2.has_peer_rx;
    memcpy(keys->peer_static, c->server_pub, 32);
    if ((r = um_noise_split(&c->nz, &sp)) != 0) goto out;
    derive(&sp, keys, 1);
out:
    sodium_memzero(&sp, sizeof(sp));
    sodium_memzero(pl, pn < sizeof(pl) ? pn : sizeof(pl));
    um_hs_client_wipe(c);
    if (r) um_sess_keys_wipe(keys);
    return r;
}

void um_hs_client_wipe(um_hs_client_t *c)
{
    if (c) sodium_memzero(c, sizeof(*c));
}
