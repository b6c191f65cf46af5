#include "session/preauth.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

void um_preauth_init(um_preauth_t *pa, const um_codec_t *codec, um_gate_t *gate)
{
    memset(pa, 0, sizeof(*pa));
    pa->codec = codec;
    pa->gate = gate;
    um_buf_init(&pa->buf, codec->flight_max);
}

void um_preauth_free(um_preauth_t *pa)
{
    um_buf_wipe(&pa->buf);
    sodium_memzero(&pa->st, sizeof(pa->st));
}

size_t um_preauth_bytes(const um_preauth_t *pa, const uint8_t **p)
{
    return um_buf_peek(&pa->buf, p);
}

static um_pa_verdict_t reject(um_preauth_t *pa, um_pa_result_t *res, int why)
{
    pa->done = 1;
    res->why = why;
    return UM_PA_REJECT;
}

static int filler(void *ud, size_t size, uint8_t *out, size_t cap, size_t *outn)
{
    return um_sess_pull_filler(ud, size, out, cap, outn);
}

um_pa_verdict_t um_preauth_feed(um_preauth_t *pa, const uint8_t *p, size_t n, size_t *taken,
                                uint64_t now_ms, uint64_t wall_s, const um_sess_cfg_t *scfg,
                                um_pa_result_t *res)
{
    const um_codec_ops_t *o = pa->codec->ops;
    uint8_t msg[UM_HS_MSG_MAX], reply[UM_HS_MSG_MAX];
    size_t mn = 0, used = 0, rn = 0;
    um_sess_keys_t keys;

    memset(res, 0, sizeof(*res));
    size_t room = um_buf_space(&pa->buf), take = n < room ? n : room;
    if (take && um_buf_append(&pa->buf, p, take) != 0) take = 0;
    *taken = take;
    if (pa->done) return UM_PA_REJECT;
    if (take < n) return reject(pa, res, UM_EMSGSIZE); /* longer than any flight */
    const uint8_t *q;
    size_t qn = um_buf_peek(&pa->buf, &q);
    if (qn == 0) return UM_PA_MORE;
    int r = o->open_flight(pa->codec, &pa->st, q, qn, msg, sizeof(msg), &mn, &used);
    if (r == UM_EAGAIN) return qn >= pa->buf.max ? reject(pa, res, UM_EPROTO) : UM_PA_MORE;
    if (r) return reject(pa, res, UM_EPROTO);
    if (!um_gate_take_handshake(pa->gate, now_ms)) {
        sodium_memzero(msg, mn);
        return reject(pa, res, UM_EAGAIN);
    }
    size_t want = o->msg2_len(pa->codec, &pa->st);
    uint8_t pro[UM_CODEC_PROLOGUE_MAX];
    size_t pn = um_codec_prologue(pa->codec, &pa->st, pro);
    r = um_hs_server_respond(um_gate_hs(pa->gate), pro, pn, msg, mn, wall_s, want, reply,
                             sizeof(reply), &rn, &keys);
    sodium_memzero(msg, mn);
    if (r) return reject(pa, res, r);
    pa->done = 1;
    um_resumable_t *e = NULL;
    um_sess_t *s = NULL;
    if (keys.resumed) {
        /* The handshake found it and nothing ran since: it is still there. */
        e = um_gate_find_resumable(pa->gate, keys.resume_sid, keys.peer_static);
        r = e ? um_sess_resume(e->sess, &keys, keys.resume_offset) : UM_ENOENT;
        if (r == 0) {
            s = e->sess;
            um_gate_resumed(e, keys.resume_move, keys.timestamp);
        }
    } else {
        s = um_sess_new(&keys, scfg);
        r = s ? 0 : UM_ENOMEM;
    }
    if (r == 0)
        r = o->seal_reply(pa->codec, &pa->st, reply, rn, filler, s, res->reply, sizeof(res->reply),
                          &res->reply_len);
    sodium_memzero(reply, rn);
    memcpy(res->client, keys.peer_static, 32);
    res->budget = keys.budget;
    um_sess_keys_wipe(&keys);
    if (r) {
        /* A local failure after authentication: nothing to show a prober;
         * the glue just closes. (A resumed session whose reply could not be
         * sealed has new keys its client never learns: its connection then
         * breaks, and the client tries again.) */
        if (!e) um_sess_free(s);
        res->why = r;
        sodium_memzero(res->client, 32);
        return UM_PA_REJECT;
    }
    if (e)
        res->resumed = e;
    else
        res->sess = s;
    res->flight_len = used;
    res->rest = q + used;
    res->rest_len = qn - used;
    return UM_PA_ESTABLISHED;
}

um_pa_verdict_t um_preauth_end(um_preauth_t *pa, um_pa_result_t *res)
{
    memset(res, 0, sizeof(*res));
    if (pa->done) return UM_PA_REJECT;
    return reject(pa, res, UM_EPIPE);
}
