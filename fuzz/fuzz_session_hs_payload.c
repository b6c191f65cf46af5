/* The handshake payload parsers (docs/PROTOCOL.md 3.2, 3.3): um_hs_p1_parse
 * (RESUME, BUDGET) and um_hs_p2_parse (RESUMED with and without the offset)
 * on arbitrary bytes. Input: n1 (1 byte) || payload 1 (n1 bytes, or what is
 * left) || payload 2 (the rest).
 *
 * Properties, besides never crashing:
 *   - a parsed payload is re-encoded from its fields; the encoding is a
 *     prefix of the input (parsing is positional, the rest is padding) and
 *     re-parses equal, with or without padding after it; one byte shorter
 *     than the fields need is malformed;
 *   - what the parsers accept goes through the real handshake (the client
 *     writes payload 1 from the parsed fields, the server answers with a
 *     resume hook that returns payload 2's fields, in a message 2 of payload
 *     2's length), and both ends read back exactly those fields. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "session/handshake.h"
#include "session/keyset.h"
#include "util/bytes.h"
#include "util/err.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static size_t p1_encode(const um_hs_p1_t *f, uint8_t *out)
{
    size_t at = UM_HS_P1_MIN;
    out[0] = UM_HS_VERSION;
    out[UM_HS_P1_OFF_FLAGS] = f->flags;
    um_st64(out + UM_HS_P1_OFF_TS, f->timestamp);
    if (f->flags & UM_HS_F_RESUME) {
        memcpy(out + at, f->sid, UM_SID_LEN);
        um_st64(out + at + UM_SID_LEN, f->resume_offset);
        um_st32(out + at + UM_SID_LEN + 8, f->resume_move);
        at += UM_HS_P1_RESUME_LEN;
    }
    if (f->flags & UM_HS_F_BUDGET) {
        um_st32(out + at, f->budget);
        at += 4;
    }
    return at;
}

static size_t p2_encode(const um_hs_p2_t *f, uint8_t *out)
{
    out[0] = UM_HS_VERSION;
    out[1] = f->alg;
    out[2] = f->resumed ? UM_HS_F2_RESUMED : 0;
    if (!f->has_peer_rx) return UM_HS_P2_MIN;
    um_st64(out + UM_HS_P2_MIN, f->peer_rx);
    return UM_HS_P2_MIN + 8;
}

static bool p1_equal(const um_hs_p1_t *a, const um_hs_p1_t *b)
{
    return a->flags == b->flags && a->timestamp == b->timestamp && a->resume == b->resume &&
           memcmp(a->sid, b->sid, UM_SID_LEN) == 0 && a->resume_offset == b->resume_offset &&
           a->resume_move == b->resume_move && a->budget == b->budget;
}

static bool p2_equal(const um_hs_p2_t *a, const um_hs_p2_t *b)
{
    return a->alg == b->alg && a->resumed == b->resumed && a->has_peer_rx == b->has_peer_rx &&
           a->peer_rx == b->peer_rx;
}

static void check_p1(const uint8_t *p, size_t n, um_hs_p1_t *f)
{
    uint8_t enc[64 + 32];
    um_hs_p1_t g;
    if (um_hs_p1_parse(p, n, f) != 0) return;
    CHECK(f->resume == !!(f->flags & UM_HS_F_RESUME));
    CHECK((f->flags & UM_HS_F_BUDGET) || f->budget == 0);
    size_t len = p1_encode(f, enc);
    CHECK(len <= n && memcmp(enc, p, len) == 0);
    CHECK(um_hs_p1_parse(enc, len, &g) == 0 && p1_equal(f, &g));
    CHECK(um_hs_p1_parse(enc, len - 1, &g) == UM_EPROTO);
    memset(enc + len, 0, 32);
    CHECK(um_hs_p1_parse(enc, len + 32, &g) == 0 && p1_equal(f, &g));
}

static void check_p2(const uint8_t *p, size_t n, um_hs_p2_t *f)
{
    uint8_t enc[UM_HS_P2_MIN + 8 + 32];
    um_hs_p2_t g;
    if (um_hs_p2_parse(p, n, f) != 0) return;
    CHECK(f->alg == UM_AEAD_CHACHA20_POLY1305 || f->alg == UM_AEAD_AES256_GCM);
    CHECK(f->has_peer_rx == (f->resumed && n >= UM_HS_P2_MIN + 8));
    CHECK(f->has_peer_rx || f->peer_rx == 0);
    size_t len = p2_encode(f, enc);
    CHECK(len <= n && memcmp(enc, p, 2) == 0 && (enc[2] & 1) == (p[2] & 1));
    CHECK(memcmp(enc + UM_HS_P2_MIN, p + UM_HS_P2_MIN, len - UM_HS_P2_MIN) == 0);
    CHECK(um_hs_p2_parse(enc, len, &g) == 0 && p2_equal(f, &g));
    /* Padding after the offset (or after a reply that is not RESUMED)
     * changes nothing; a RESUMED reply cut before the end of its offset says
     * RESUMED alone. (Padding right after RESUMED would be read as offset 0:
     * the offset's place is fixed, 3.3.) */
    memset(enc + len, 0, 32);
    if (f->has_peer_rx || !f->resumed)
        CHECK(um_hs_p2_parse(enc, len + 32, &g) == 0 && p2_equal(f, &g));
    if (f->has_peer_rx) {
        CHECK(um_hs_p2_parse(enc, len - 1, &g) == 0 && g.resumed && !g.has_peer_rx);
    }
    CHECK(um_hs_p2_parse(enc, UM_HS_P2_MIN - 1, &g) == UM_EPROTO);
}

/* The server's resume hook answers with payload 2's fields. */
typedef struct {
    const um_hs_p2_t *p2;
    const um_hs_p1_t *p1;
    int asked;
} hook_t;

static int hook(void *ud, const uint8_t client[32], const uint8_t sid[UM_SID_LEN],
                uint64_t client_rx, uint32_t move, uint64_t now_s, uint64_t *server_rx)
{
    hook_t *h = ud;
    (void)client;
    (void)now_s;
    h->asked++;
    CHECK(memcmp(sid, h->p1->sid, UM_SID_LEN) == 0 && client_rx == h->p1->resume_offset &&
          move == h->p1->resume_move);
    *server_rx = h->p2->peer_rx;
    return h->p2->resumed ? UM_HS_RESUME_YES : UM_HS_RESUME_NO;
}

static void through_handshake(const um_hs_p1_t *f1, size_t n1, const um_hs_p2_t *f2, size_t n2)
{
    static uint8_t ci[32], cp[32], si[32], sp[32];
    static int init;
    static const uint8_t pro[] = UM_HS_PROLOGUE_TCP;
    uint8_t m1[UM_HS_MSG_MAX], m2[UM_HS_MSG_MAX];
    size_t m1n = 0, m2n = 0;
    um_hs_client_t c;
    um_hs_server_t srv;
    um_sess_keys_t ck, sk;
    if (!init) {
        um_crypto_init();
        memset(ci, 0x41, 32);
        memset(si, 0x42, 32);
        crypto_scalarmult_base(cp, ci);
        crypto_scalarmult_base(sp, si);
        init = 1;
    }
    uint64_t ts = f1->timestamp % (UINT64_C(1) << 40);
    um_hs_client_opts_t o = {.aes_hw = f1->flags & UM_HS_F_AES,
                             .resume_sid = f1->resume ? f1->sid : NULL,
                             .resume_offset = f1->resume_offset,
                             .resume_move = f1->resume_move,
                             .budget = f1->budget};
    size_t len1 = UM_NOISE_MSG1_OVERHEAD + n1, len2 = UM_NOISE_MSG2_OVERHEAD + n2;
    if (len1 > UM_HS_MSG_MAX) len1 = UM_HS_MSG_MAX;
    if (len2 > UM_HS_MSG_MAX) len2 = UM_HS_MSG_MAX;
    CHECK(um_hs_client_start(&c, pro, sizeof(pro) - 1, ci, sp, &o, ts, len1, m1, sizeof(m1),
                             &m1n) == 0);
    CHECK(m1n == len1);
    um_keyset_t *ks = um_keyset_new();
    CHECK(ks && um_keyset_add(ks, cp) == 0);
    CHECK(um_hs_server_init(&srv, si, ks, 0, 16) == 0);
    um_keyset_unref(ks);
    srv.aes_hw = f2->alg == UM_AEAD_AES256_GCM;
    hook_t h = {.p2 = f2, .p1 = f1};
    srv.resume = hook;
    srv.resume_ud = &h;
    CHECK(um_hs_server_respond(&srv, pro, sizeof(pro) - 1, m1, m1n, ts, len2, m2, sizeof(m2), &m2n,
                               &sk) == 0);
    CHECK(m2n == len2);
    CHECK(um_hs_client_finish(&c, m2, m2n, &ck) == 0);
    /* The server read payload 1's fields. */
    CHECK(sk.timestamp == ts && sk.budget == f1->budget);
    CHECK(sk.resume_requested == f1->resume && h.asked == f1->resume);
    if (f1->resume)
        CHECK(memcmp(sk.resume_sid, f1->sid, UM_SID_LEN) == 0 &&
              sk.resume_offset == f1->resume_offset && sk.resume_move == f1->resume_move);
    /* The client read payload 2's: RESUMED only when asked and granted, the
     * offset when the reply has room for it. */
    bool resumed = f1->resume && f2->resumed;
    CHECK(ck.resumed == resumed && sk.resumed == resumed);
    CHECK(ck.resume_has_peer_rx == (resumed && len2 - UM_NOISE_MSG2_OVERHEAD >= UM_HS_P2_MIN + 8));
    if (ck.resume_has_peer_rx) CHECK(ck.resume_peer_rx == f2->peer_rx);
    CHECK(ck.alg == sk.alg);
    CHECK(ck.alg == ((f1->flags & UM_HS_F_AES) && srv.aes_hw ? UM_AEAD_AES256_GCM
                                                             : UM_AEAD_CHACHA20_POLY1305));
    CHECK(memcmp(ck.sid, sk.sid, UM_SID_LEN) == 0);
    um_sess_keys_wipe(&ck);
    um_sess_keys_wipe(&sk);
    um_hs_server_close(&srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    if (n == 0) return 0;
    size_t n1 = p[0];
    if (n1 > n - 1) n1 = n - 1;
    const uint8_t *a = p + 1, *b = p + 1 + n1;
    size_t n2 = n - 1 - n1;
    um_hs_p1_t f1;
    um_hs_p2_t f2;
    check_p1(a, n1, &f1);
    check_p2(b, n2, &f2);
    /* Also the whole input as either payload. */
    um_hs_p1_t g1;
    um_hs_p2_t g2;
    check_p1(p, n, &g1);
    check_p2(p, n, &g2);
    if (um_hs_p1_parse(a, n1, &f1) == 0 && um_hs_p2_parse(b, n2, &f2) == 0)
        through_handshake(&f1, n1, &f2, n2);
    return 0;
}
