/* Records and the session pipe: round trips with both ciphers, tampering and
 * truncation, padding, rekeying under traffic (bytes and time), nonce counter
 * exhaustion, offsets/acks and the bounded unacknowledged buffer, resumption
 * groundwork (resend from the peer's offset, duplicates dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "crypto/record.h"
#include "session/session.h"
#include "util/err.h"

static uint64_t fake_ms;
static uint64_t fake_clock(void)
{
    return fake_ms;
}

static void mkkeys(um_sess_keys_t *a, um_sess_keys_t *b, int alg)
{
    memset(a, 0, sizeof(*a));
    randombytes_buf(a->k_send, 32);
    randombytes_buf(a->k_recv, 32);
    randombytes_buf(a->sid, UM_SID_LEN);
    a->alg = alg;
    a->initiator = 1;
    *b = *a;
    memcpy(b->k_send, a->k_recv, 32);
    memcpy(b->k_recv, a->k_send, 32);
    b->initiator = 0;
}

/* Moves everything a has to send into b; returns wire bytes moved. */
static size_t pump(um_sess_t *a, um_sess_t *b)
{
    static uint8_t wire[4 * UM_REC_WIRE_MAX]; /* test-only */
    size_t n, used, total = 0;
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(um_sess_pull(a, wire, sizeof(wire), &n), 0);
        if (!n) break;
        assert_int_equal(um_sess_feed(b, wire, n, &used), 0);
        assert_int_equal(used, n);
        total += n;
    }
    return total;
}

static void test_record_roundtrip(void **st)
{
    int algs[2] = {UM_AEAD_CHACHA20_POLY1305, UM_AEAD_AES256_GCM};
    uint8_t key[32], body[UM_REC_BODY_MAX], out[UM_REC_BODY_MAX], wire[UM_REC_WIRE_MAX];
    randombytes_buf(key, 32);
    randombytes_buf(body, sizeof(body));
    for (int a = 0; a < 2; a++) {
        um_rec_dir_t tx, rx;
        size_t wn, bn, used;
        assert_int_equal(um_rec_init(&tx, algs[a], 1, key, 0), 0);
        assert_int_equal(um_rec_init(&rx, algs[a], 0, key, 0), 0);
        size_t sizes[] = {1, 2, 100, 1500, UM_REC_BODY_MAX};
        for (size_t s = 0; s < 5; s++) {
            assert_int_equal(um_rec_seal(&tx, body, sizes[s], wire, sizeof(wire), &wn), 0);
            assert_int_equal(wn, sizes[s] + UM_REC_OVERHEAD);
            /* every strict prefix: need more */
            for (size_t k = 0; k < wn; k += (k < 40 ? 1 : 97))
                assert_int_equal(um_rec_open(&rx, wire, k, out, sizeof(out), &bn, &used),
                                 UM_EAGAIN);
            assert_int_equal(um_rec_open(&rx, wire, wn, out, sizeof(out), &bn, &used), 0);
            assert_int_equal(bn, sizes[s]);
            assert_int_equal(used, wn);
            assert_memory_equal(out, body, bn);
        }
        /* Tamper: header, body, tag; each is fatal. */
        size_t at[] = {0, 1, 2, 60, 100 + UM_REC_OVERHEAD - 1};
        for (size_t t = 0; t < 5; t++) {
            um_rec_dir_t tx2, rx2;
            assert_int_equal(um_rec_init(&tx2, algs[a], 1, key, 0), 0);
            assert_int_equal(um_rec_init(&rx2, algs[a], 0, key, 0), 0);
            assert_int_equal(um_rec_seal(&tx2, body, 100, wire, sizeof(wire), &wn), 0);
            wire[at[t]] ^= 0x20;
            int r = um_rec_open(&rx2, wire, wn, out, sizeof(out), &bn, &used);
            assert_true(r == UM_EAUTH || r == UM_EPROTO || r == UM_EAGAIN);
            if (at[t] >= UM_REC_HDR_WIRE) assert_int_equal(r, UM_EAUTH);
            um_rec_close(&tx2);
            um_rec_close(&rx2);
        }
        /* Wrong key or wrong cipher: refused. */
        um_rec_dir_t rx3;
        uint8_t k2[32];
        randombytes_buf(k2, 32);
        assert_int_equal(um_rec_init(&rx3, algs[a], 0, k2, 0), 0);
        assert_int_equal(um_rec_seal(&tx, body, 10, wire, sizeof(wire), &wn), 0);
        /* The length unmasks to garbage (refused, or waits for more), or the
         * tag fails: never a body. */
        int r3 = um_rec_open(&rx3, wire, wn, out, sizeof(out), &bn, &used);
        assert_true(r3 == UM_EAUTH || r3 == UM_EPROTO || r3 == UM_EAGAIN);
        um_rec_close(&rx3);
        assert_int_equal(um_rec_init(&rx3, algs[1 - a], 0, key, 0), 0);
        rx3.ctr = tx.ctr - 1;
        assert_int_equal(um_rec_open(&rx3, wire, wn, out, sizeof(out), &bn, &used), UM_EAUTH);
        um_rec_close(&rx3);
        /* A replayed record (same counter already used) fails on the receiver. */
        assert_int_equal(um_rec_open(&rx, wire, wn, out, sizeof(out), &bn, &used), 0);
        r3 = um_rec_open(&rx, wire, wn, out, sizeof(out), &bn, &used);
        assert_true(r3 == UM_EAUTH || r3 == UM_EPROTO || r3 == UM_EAGAIN);
        um_rec_close(&tx);
        um_rec_close(&rx);
        assert_true(sodium_is_zero(tx.key, 32));
    }
}

/* The staged open (um_rec_open_start/body/finish), which the session uses to
 * decrypt DATA straight into its read queue: a body opened in pieces cut
 * anywhere (across the 64-byte ChaCha and 16-byte GCM blocks) gives the
 * bytes um_rec_open gives, for both ciphers; a flipped tag bit fails in
 * finish with UM_EAUTH and the counter does not move (the same record,
 * intact, still opens). */
static void test_record_open_staged(void **st)
{
    int algs[2] = {UM_AEAD_CHACHA20_POLY1305, UM_AEAD_AES256_GCM};
    uint8_t key[32], body[UM_REC_BODY_MAX], out[UM_REC_BODY_MAX], wire[UM_REC_WIRE_MAX];
    (void)st;
    randombytes_buf(key, 32);
    randombytes_buf(body, sizeof(body));
    size_t cuts[] = {0, 1, 15, 16, 17, 19, 63, 64, 65, 1000, UM_REC_BODY_MAX - 1};
    for (int a = 0; a < 2; a++) {
        um_rec_dir_t tx, rx;
        size_t wn, bl, used;
        assert_int_equal(um_rec_init(&tx, algs[a], 1, key, 0), 0);
        assert_int_equal(um_rec_init(&rx, algs[a], 0, key, 0), 0);
        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
            for (size_t j = i; j < sizeof(cuts) / sizeof(cuts[0]); j++) {
                size_t n = UM_REC_BODY_MAX;
                assert_int_equal(um_rec_seal(&tx, body, n, wire, sizeof(wire), &wn), 0);
                assert_int_equal(um_rec_open_start(&rx, wire, wn - 1, &bl), UM_EAGAIN);
                assert_int_equal(um_rec_open_start(&rx, wire, wn, &bl), 0);
                assert_int_equal(bl, n);
                const uint8_t *c = wire + UM_REC_HDR_WIRE;
                memset(out, 0, sizeof(out));
                assert_int_equal(um_rec_open_body(&rx, c, cuts[i], out), 0);
                assert_int_equal(
                    um_rec_open_body(&rx, c + cuts[i], cuts[j] - cuts[i], out + cuts[i]), 0);
                assert_int_equal(um_rec_open_body(&rx, c + cuts[j], n - cuts[j], out + cuts[j]), 0);
                if (i == j && (i & 1)) {
                    wire[wn - 1] ^= 0x80; /* the tag */
                    assert_int_equal(um_rec_open_finish(&rx, wire, &used), UM_EAUTH);
                    wire[wn - 1] ^= 0x80;
                    assert_int_equal(um_rec_open(&rx, wire, wn, out, sizeof(out), &bl, &used), 0);
                } else {
                    assert_int_equal(um_rec_open_finish(&rx, wire, &used), 0);
                }
                assert_int_equal(used, wn);
                assert_memory_equal(out, body, n);
            }
        um_rec_close(&tx);
        um_rec_close(&rx);
    }
}

/* Filler records: exactly the size asked for, no data, accepted by the peer
 * in the middle of a data stream (they carry an ack like any record). */
/* um_rec_sealv seals a body given in pieces (the session's DATA records:
 * fields, data in the send queue, padding) to the very bytes um_rec_seal
 * gives for the concatenation, for both ciphers and pieces of every size
 * (empty, 1 byte, across the 64-byte ChaCha and 16-byte GCM blocks). */
static void test_record_sealv(void **st)
{
    (void)st;
    static const int algs[2] = {UM_AEAD_CHACHA20_POLY1305, UM_AEAD_AES256_GCM};
    uint8_t key[32], body[3000], w1[3100], w2[3100];
    randombytes_buf(key, sizeof(key));
    randombytes_buf(body, sizeof(body));
    for (int a = 0; a < 2; a++) {
        um_rec_dir_t t1, t2, rx;
        assert_int_equal(um_rec_init(&t1, algs[a], 1, key, 0), 0);
        assert_int_equal(um_rec_init(&t2, algs[a], 1, key, 0), 0);
        assert_int_equal(um_rec_init(&rx, algs[a], 0, key, 0), 0);
        for (int i = 0; i < 200; i++) {
            size_t n = 1 + randombytes_uniform(sizeof(body)), c1 = 0, c2 = 0;
            size_t x = randombytes_uniform((uint32_t)n + 1);
            size_t y = x + randombytes_uniform((uint32_t)(n - x) + 1);
            if (i == 0) x = y = 0;
            if (i == 1) x = y = n;
            um_aead_part_t parts[4] = {
                {body, x}, {body + x, 0}, {body + x, y - x}, {body + y, n - y}};
            size_t n1 = 0, n2 = 0, bn = 0;
            assert_int_equal(um_rec_seal(&t1, body, n, w1, sizeof(w1), &n1), 0);
            assert_int_equal(um_rec_sealv(&t2, parts, 4, w2, sizeof(w2), &n2), 0);
            assert_int_equal(n1, n2);
            assert_memory_equal(w1, w2, n1);
            uint8_t out[UM_REC_BODY_MAX];
            assert_int_equal(um_rec_open(&rx, w2, n2, out, sizeof(out), &bn, &c2), 0);
            assert_int_equal(bn, n);
            assert_memory_equal(out, body, n);
            (void)c1;
        }
        um_aead_part_t none = {body, 0};
        size_t nz = 0;
        assert_int_equal(um_rec_sealv(&t2, &none, 1, w2, sizeof(w2), &nz), UM_EINVAL);
        um_rec_close(&t1);
        um_rec_close(&t2);
        um_rec_close(&rx);
    }
}

static void test_filler_records(void **st)
{
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_t *A = um_sess_new(&ka, NULL), *B = um_sess_new(&kb, NULL);
    assert_non_null(A);
    assert_non_null(B);
    uint8_t wire[UM_REC_WIRE_MAX];
    size_t wn = 0, used = 0;
    assert_int_equal(um_sess_pull_filler(A, UM_SESS_FILLER_MIN - 1, wire, sizeof(wire), &wn),
                     UM_EINVAL);
    assert_int_equal(um_sess_pull_filler(A, UM_REC_WIRE_MAX + 1, wire, sizeof(wire), &wn),
                     UM_EINVAL);
    assert_int_equal(um_sess_pull_filler(A, 100, wire, 99, &wn), UM_ENOSPC);
    assert_int_equal(um_sess_write(A, (const uint8_t *)"abc", 3), 3);
    size_t sizes[] = {UM_SESS_FILLER_MIN, 53, 281, 4096, UM_REC_WIRE_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(um_sess_pull_filler(A, sizes[i], wire, sizeof(wire), &wn), 0);
        assert_int_equal(wn, sizes[i]);
        assert_int_equal(um_sess_feed(B, wire, wn, &used), 0);
        assert_int_equal(used, wn);
        assert_int_equal(um_sess_readable(B), 0);
    }
    pump(A, B); /* the data queued before the fillers still arrives */
    uint8_t tmp[8];
    assert_int_equal(um_sess_read(B, tmp, sizeof(tmp)), 3);
    assert_memory_equal(tmp, "abc", 3);
    um_sess_free(A);
    um_sess_free(B);
}

static void test_session_roundtrip_both(void **st)
{
    int algs[2] = {UM_AEAD_CHACHA20_POLY1305, UM_AEAD_AES256_GCM};
    size_t N = 300000;
    uint8_t *src = malloc(N), *dst = malloc(N);
    randombytes_buf(src, N);
    for (int a = 0; a < 2; a++) {
        um_sess_keys_t ka, kb;
        mkkeys(&ka, &kb, algs[a]);
        um_sess_t *A = um_sess_new(&ka, NULL), *B = um_sess_new(&kb, NULL);
        assert_non_null(A);
        assert_non_null(B);
        assert_int_equal(um_sess_alg(A), algs[a]);
        assert_memory_equal(um_sess_id(A), um_sess_id(B), UM_SID_LEN);
        assert_true(um_sess_events(A) & UM_SESS_EV_ESTABLISHED);
        size_t off = 0, got = 0;
        while (got < N) {
            if (off < N) {
                int w = um_sess_write(A, src + off, N - off < 7777 ? N - off : 7777);
                assert_true(w > 0);
                off += (size_t)w;
            }
            pump(A, B);
            got += um_sess_read(B, dst + got, N - got);
            pump(B, A); /* acks */
        }
        assert_memory_equal(src, dst, N);
        /* The last acknowledgement is delayed (at most ACK_DELAY_MS, 20 ms). */
        um_sess_offsets_t o;
        for (int i = 0; i < 100; i++) {
            pump(B, A);
            um_sess_offsets(A, &o);
            if (o.tx_acked == N) break;
            usleep(2000);
        }
        um_sess_offsets(A, &o);
        assert_int_equal(o.tx_acked, N);
        assert_int_equal(o.tx_sent, N);
        um_sess_offsets(B, &o);
        assert_int_equal(o.rx_next, N);
        /* Both directions at once. */
        assert_int_equal(um_sess_write(B, (const uint8_t *)"pong", 4), 4);
        assert_int_equal(um_sess_write(A, (const uint8_t *)"ping", 4), 4);
        pump(A, B);
        pump(B, A);
        uint8_t tmp[8];
        assert_int_equal(um_sess_read(A, tmp, 8), 4);
        assert_memory_equal(tmp, "pong", 4);
        assert_int_equal(um_sess_read(B, tmp, 8), 4);
        assert_memory_equal(tmp, "ping", 4);
        um_sess_free(A);
        um_sess_free(B);
    }
    free(src);
    free(dst);
}

static void test_session_tamper_truncate(void **st)
{
    um_sess_keys_t ka, kb;
    uint8_t wire[UM_REC_WIRE_MAX * 2], bad[UM_REC_WIRE_MAX * 2];
    size_t n, used;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_t *A = um_sess_new(&ka, NULL);
    assert_int_equal(um_sess_write(A, (const uint8_t *)"secret data", 11), 11);
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    assert_true(n > 0);
    for (size_t k = 0; k < n; k++) {
        um_sess_t *B = um_sess_new(&kb, NULL);
        memcpy(bad, wire, n);
        bad[k] ^= 0x01;
        int r = um_sess_feed(B, bad, n, &used);
        if (k < UM_REC_HDR_WIRE) {
            assert_true(r == UM_EAUTH || r == UM_EPROTO || r == 0);
            /* a header that opens to a bigger length just waits: never data */
        } else {
            assert_int_equal(r, UM_EAUTH);
            assert_int_equal(um_sess_error(B), UM_EAUTH);
            assert_true(um_sess_events(B) & UM_SESS_EV_ERROR);
            assert_int_equal(um_sess_write(B, (const uint8_t *)"x", 1), UM_EAUTH);
        }
        assert_int_equal(um_sess_readable(B), 0);
        um_sess_free(B);
    }
    /* Truncated: bytes are held, nothing delivered, then the rest completes. */
    um_sess_t *B = um_sess_new(&kb, NULL);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(um_sess_feed(B, wire + k, 1, &used), 0);
        assert_int_equal(used, 1);
        assert_int_equal(um_sess_readable(B), k + 1 == n ? 11 : 0);
    }
    um_sess_free(B);
    /* Records from the other direction's key are refused (reflection). */
    B = um_sess_new(&kb, NULL);
    um_sess_t *A2 = um_sess_new(&kb, NULL);
    assert_int_equal(um_sess_write(A2, (const uint8_t *)"x", 1), 1);
    assert_int_equal(um_sess_pull(A2, wire, sizeof(wire), &n), 0);
    int rr = um_sess_feed(B, wire, n, &used);
    assert_true(rr == UM_EAUTH || rr == UM_EPROTO || (rr == 0 && um_sess_readable(B) == 0));
    um_sess_free(A2);
    um_sess_free(B);
    um_sess_free(A);
}

/* Burst guard: the first bytes after idleness, and after um_sess_guard(),
 * go in records of random sizes in [max(size, 1024), +1024]; the rest and
 * the time between bursts keep their own sizes. The data arrives intact. */
static uint64_t g_fake_ms = 1000;
static uint64_t fake_now(void)
{
    return g_fake_ms;
}

static void test_burst_guard(void **st)
{
    um_sess_keys_t ka, kb;
    uint8_t wire[UM_REC_WIRE_MAX * 2], out[256];
    size_t n, used;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_cfg_t cfg = {.now_ms = fake_now,
                         .pad = {.mode = UM_PAD_NONE, .guard_bytes = 1000, .guard_idle_ms = 200}};
    um_sess_t *A = um_sess_new(&ka, &cfg), *B = um_sess_new(&kb, NULL);
    size_t sizes[64], ns = 0;
    int guarded = 0, plain = 0;
    for (int burst = 0; burst < 3; burst++) {
        g_fake_ms += 1000; /* idle: a new burst */
        for (int i = 0; i < 20; i++) {
            assert_int_equal(
                um_sess_write(A,
                              (const uint8_t *)"012345678901234567890123456789012345678901234567890"
                                               "1234567890123456789012345678901234567890123456789",
                              100),
                100);
            assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
            /* 100 data bytes: 2 + 9 + 10 + 100 + 16 = 137 bytes unguarded */
            if (i < 10) { /* 10 x 100 bytes = the 1000 guarded */
                assert_true(n >= UM_SESS_GUARD_MIN &&
                            n <= UM_SESS_GUARD_MIN + UM_SESS_GUARD_SPREAD);
                if (ns < 64) sizes[ns++] = n;
                guarded++;
            } else {
                assert_int_equal(n, 137);
                plain++;
            }
            g_fake_ms += 1; /* within the burst */
            assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
            assert_int_equal(um_sess_read(B, out, sizeof(out)), 100);
            assert_memory_equal(out, "0123456789", 10);
        }
    }
    assert_int_equal(guarded, 30);
    assert_int_equal(plain, 30);
    /* the guarded sizes vary */
    size_t distinct = 0;
    for (size_t i = 0; i < ns; i++) {
        size_t j = 0;
        while (j < i && sizes[j] != sizes[i])
            j++;
        distinct += j == i;
    }
    assert_true(distinct >= 20);
    /* An explicit guard (a stream opened) without idleness. */
    g_fake_ms += 1;
    um_sess_guard(A, 300);
    assert_int_equal(um_sess_write(A, (const uint8_t *)"abc", 3), 3);
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    assert_true(n >= UM_SESS_GUARD_MIN);
    assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
    assert_int_equal(um_sess_read(B, out, sizeof(out)), 3);
    um_sess_free(A);
    /* Without a guard in the policy, um_sess_guard does nothing. */
    um_sess_cfg_t noguard = {.pad = {.mode = UM_PAD_NONE}};
    A = um_sess_new(&ka, &noguard);
    um_sess_guard(A, 300);
    assert_int_equal(um_sess_write(A, (const uint8_t *)"abc", 3), 3);
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    assert_int_equal(n, 2 + 9 + 10 + 3 + 16);
    um_sess_free(A);
    um_sess_free(B);
}

static void test_padding(void **st)
{
    um_sess_keys_t ka, kb;
    uint8_t wire[UM_REC_WIRE_MAX * 2], out[64];
    size_t n, used;
    mkkeys(&ka, &kb, UM_AEAD_AES256_GCM);
    um_sess_t *A = um_sess_new(&ka, NULL), *B = um_sess_new(&kb, NULL);
    /* none: exact size */
    assert_int_equal(um_sess_write(A, (const uint8_t *)"abc", 3), 3);
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    size_t base = n;
    assert_int_equal(base, UM_REC_OVERHEAD + 9 + 10 + 3);
    assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
    /* block: multiples of 512 */
    um_pad_policy_t p = {.mode = UM_PAD_BLOCK, .block = 512};
    um_sess_set_padding(A, &p);
    assert_int_equal(um_sess_write(A, (const uint8_t *)"def", 3), 3);
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    assert_int_equal(n, 512);
    assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
    /* random: sizes vary, data intact */
    p.mode = UM_PAD_RANDOM;
    p.max = 1000;
    um_sess_set_padding(A, &p);
    size_t mn = SIZE_MAX, mx = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(um_sess_write(A, (const uint8_t *)"g", 1), 1);
        assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
        if (n < mn) mn = n;
        if (n > mx) mx = n;
        assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
    }
    assert_true(mx - mn > 300);
    assert_true(mx <= base - 2 + 1000);
    assert_int_equal(um_sess_read(B, out, sizeof(out)), 56);
    assert_memory_equal(out, "abcdefg", 7);
    um_sess_free(A);
    um_sess_free(B);
}

static void test_rekey_under_traffic(void **st)
{
    um_sess_keys_t ka, kb;
    um_sess_cfg_t cfg = {.rekey_bytes = 50000, .now_ms = fake_clock};
    size_t N = 1 << 20;
    uint8_t *src = malloc(N), *dst = malloc(N);
    randombytes_buf(src, N);
    fake_ms = 1000;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_t *A = um_sess_new(&ka, &cfg), *B = um_sess_new(&kb, &cfg);
    size_t off = 0, got = 0;
    unsigned ea = 0, eb = 0;
    while (got < N) {
        if (off < N) {
            int w = um_sess_write(A, src + off, N - off);
            if (w > 0) off += (size_t)w;
        }
        pump(A, B);
        got += um_sess_read(B, dst + got, N - got);
        pump(B, A);
        ea |= um_sess_events(A);
        eb |= um_sess_events(B);
    }
    assert_memory_equal(src, dst, N);
    um_sess_offsets_t oa, ob;
    um_sess_offsets(A, &oa);
    um_sess_offsets(B, &ob);
    assert_true(oa.tx_epoch >= 12); /* 1 MiB at one rekey per >= 50000 bytes */
    assert_int_equal(oa.tx_epoch, ob.rx_epoch);
    assert_true(ea & UM_SESS_EV_REKEY_TX);
    assert_true(eb & UM_SESS_EV_REKEY_RX);
    /* Time budget: B has sent only acks; after 10 min it rekeys. */
    uint32_t before = ob.tx_epoch;
    fake_ms += 10 * 60 * 1000;
    assert_int_equal(um_sess_write(B, (const uint8_t *)"t", 1), 1);
    pump(B, A);
    um_sess_offsets(B, &ob);
    um_sess_offsets(A, &oa);
    assert_int_equal(ob.tx_epoch, before + 1);
    assert_int_equal(oa.rx_epoch, before + 1);
    uint8_t c;
    assert_int_equal(um_sess_read(A, &c, 1), 1);
    assert_int_equal(c, 't');
    /* A record under an old key after a rekey is refused. */
    um_sess_free(A);
    um_sess_free(B);
    free(src);
    free(dst);
}

static void test_counter_exhaustion(void **st)
{
    um_sess_keys_t ka, kb;
    um_sess_cfg_t cfg = {.ctr_limit = 10}; /* 10 records per direction */
    mkkeys(&ka, &kb, UM_AEAD_AES256_GCM);
    um_sess_t *A = um_sess_new(&ka, &cfg), *B = um_sess_new(&kb, &cfg);
    uint8_t wire[UM_REC_WIRE_MAX * 2];
    size_t n, used;
    int r = 0, i;
    for (i = 0; i < 20; i++) {
        assert_true(um_sess_write(A, (const uint8_t *)"z", 1) == 1 || i >= 10);
        r = um_sess_pull(A, wire, sizeof(wire), &n);
        if (r) break;
        assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
    }
    assert_int_equal(i, 10);
    assert_int_equal(r, UM_ERANGE);
    assert_true(um_sess_events(A) & UM_SESS_EV_ERROR);
    assert_int_equal(um_sess_write(A, (const uint8_t *)"z", 1), UM_ERANGE);
    assert_int_equal(um_sess_readable(B), 10);
    um_sess_free(A);
    um_sess_free(B);
}

static void test_acks_bounded_resume(void **st)
{
    um_sess_keys_t ka, kb;
    um_sess_cfg_t cfg = {.tx_max = 100000};
    uint8_t buf[40000], wire[8 * UM_REC_WIRE_MAX];
    size_t n, used;
    randombytes_buf(buf, sizeof(buf));
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_t *A = um_sess_new(&ka, &cfg), *B = um_sess_new(&kb, &cfg);
    /* Without acks the writer is bounded at tx_max. */
    assert_int_equal(um_sess_write(A, buf, 40000), 40000);
    assert_int_equal(um_sess_write(A, buf, 40000), 40000);
    assert_int_equal(um_sess_write(A, buf, 40000), 20000);
    assert_int_equal(um_sess_write(A, buf, 1), UM_ENOSPC);
    /* Send 80000 and lose the wire (a broken connection). */
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    um_sess_offsets_t o;
    um_sess_offsets(A, &o);
    assert_int_equal(o.tx_sent, 100000);
    assert_int_equal(o.tx_acked, 0);
    assert_int_equal(um_sess_write(A, buf, 1), UM_ENOSPC); /* still held for resend */
    /* Deliver only the first records to B (32768 bytes), then "reconnect". */
    size_t part = 2 * (UM_REC_OVERHEAD + 19 + 16384);
    assert_int_equal(um_sess_feed(B, wire, part, &used), 0);
    um_sess_offsets(B, &o);
    assert_int_equal(o.rx_next, 32768);
    /* Fresh keys from a new handshake that named the session; A resends from
     * B's offset; B's ack of 32768 frees the buffer. */
    um_sess_keys_t ka2, kb2;
    mkkeys(&ka2, &kb2, UM_AEAD_CHACHA20_POLY1305);
    assert_int_equal(um_sess_resume(A, &ka2, 32768), 0);
    assert_int_equal(um_sess_resume(B, &kb2, 0), 0);
    assert_int_equal(um_sess_resume(A, &ka2, 99999999), UM_EINVAL);
    um_sess_offsets(A, &o);
    assert_int_equal(o.tx_acked, 32768);
    assert_int_equal(um_sess_write(A, buf, 40000), 32768);
    pump(A, B);
    pump(B, A);
    um_sess_offsets(A, &o);
    assert_int_equal(o.tx_acked, 132768);
    um_sess_offsets(B, &o);
    assert_int_equal(o.rx_next, 132768);
    assert_int_equal(um_sess_readable(B), 132768 > (1u << 20) ? 0 : 132768);
    /* Duplicate data (an old offset) is dropped, not delivered twice. */
    uint8_t *all = malloc(132768);
    assert_int_equal(um_sess_read(B, all, 132768), 132768);
    assert_memory_equal(all, buf, 40000);
    assert_memory_equal(all + 80000, buf, 20000);
    assert_memory_equal(all + 100000, buf, 32768);
    free(all);
    /* An ack beyond what was sent is a protocol error. */
    um_sess_free(A);
    um_sess_free(B);
}

/* The read queue is bounded: feed stops consuming when it is full. */
static void test_rx_backpressure(void **st)
{
    um_sess_keys_t ka, kb;
    um_sess_cfg_t cfg = {.rx_max = 40000};
    static uint8_t buf[100000], wire[8 * UM_REC_WIRE_MAX];
    size_t n, used;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_t *A = um_sess_new(&ka, NULL), *B = um_sess_new(&kb, &cfg);
    assert_int_equal(um_sess_write(A, buf, 100000), 100000);
    assert_int_equal(um_sess_pull(A, wire, sizeof(wire), &n), 0);
    assert_int_equal(um_sess_feed(B, wire, n, &used), 0);
    assert_true(used < n);
    assert_true(um_sess_readable(B) <= 40000);
    size_t off = used, total = um_sess_read(B, buf, sizeof(buf));
    while (off < n) {
        assert_int_equal(um_sess_feed(B, wire + off, n - off, &used), 0);
        off += used;
        total += um_sess_read(B, buf, sizeof(buf));
    }
    assert_int_equal(total, 100000);
    um_sess_free(A);
    um_sess_free(B);
}

/* Acknowledgements are delayed: none for a little data until 20 ms have
 * passed, one at once after 64 KiB, and every DATA record carries one. */
static void test_delayed_ack(void **st)
{
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_cfg_t cfg = {.now_ms = fake_clock};
    fake_ms = 1000;
    um_sess_t *A = um_sess_new(&ka, &cfg), *B = um_sess_new(&kb, &cfg);
    assert_non_null(A);
    assert_non_null(B);
    static uint8_t buf[128 * 1024];
    um_sess_offsets_t o;
    /* 1 KiB: B holds its acknowledgement until the delay is over. */
    assert_int_equal(um_sess_write(A, buf, 1024), 1024);
    pump(A, B);
    assert_false(um_sess_want_pull(B));
    fake_ms += 19;
    assert_false(um_sess_want_pull(B));
    fake_ms += 1;
    assert_true(um_sess_want_pull(B));
    pump(B, A);
    um_sess_offsets(A, &o);
    assert_int_equal(o.tx_acked, 1024);
    /* 64 KiB at once: acknowledged without waiting. */
    assert_int_equal(um_sess_write(A, buf, 64 * 1024), 64 * 1024);
    pump(A, B);
    assert_true(um_sess_want_pull(B));
    pump(B, A);
    um_sess_offsets(A, &o);
    assert_int_equal(o.tx_acked, 1024 + 64 * 1024);
    /* Data from B carries the acknowledgement of what B received. */
    assert_int_equal(um_sess_write(A, buf, 100), 100);
    pump(A, B);
    assert_int_equal(um_sess_write(B, buf, 10), 10);
    pump(B, A);
    um_sess_offsets(A, &o);
    assert_int_equal(o.tx_acked, 1024 + 64 * 1024 + 100);
    assert_false(um_sess_want_pull(B));
    um_sess_free(A);
    um_sess_free(B);
}

/* fo: the resend bound can be changed at run time (the tunnel sizes it from
 * the bandwidth-delay product): writes stop at the new bound, a bound below
 * what is queued keeps the queue (never drops bytes), 0 is ignored. */
static void test_set_tx_max(void **st)
{
    (void)st;
    um_sess_keys_t ka, kb;
    mkkeys(&ka, &kb, UM_AEAD_CHACHA20_POLY1305);
    um_sess_cfg_t cfg = {.tx_max = 64 * 1024};
    um_sess_t *A = um_sess_new(&ka, &cfg);
    assert_non_null(A);
    static uint8_t blob[200 * 1024];
    assert_int_equal(um_sess_tx_max(A), 64 * 1024);
    assert_int_equal(um_sess_write(A, blob, sizeof(blob)), 64 * 1024);
    assert_int_equal(um_sess_write(A, blob, 1), UM_ENOSPC);
    um_sess_set_tx_max(A, 128 * 1024);
    assert_int_equal(um_sess_tx_max(A), 128 * 1024);
    assert_int_equal(um_sess_write(A, blob, sizeof(blob)), 64 * 1024);
    um_sess_set_tx_max(A, 16 * 1024); /* below what is queued: the queue stays */
    assert_int_equal(um_sess_tx_max(A), 128 * 1024);
    assert_int_equal(um_sess_write(A, blob, 1), UM_ENOSPC);
    um_sess_set_tx_max(A, 0);
    assert_int_equal(um_sess_tx_max(A), 128 * 1024);
    um_sess_free(A);
    (void)kb;
}

int main(void)
{
    if (um_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_sealv),
        cmocka_unit_test(test_session_roundtrip_both),
        cmocka_unit_test(test_filler_records),
        cmocka_unit_test(test_burst_guard),
        cmocka_unit_test(test_session_tamper_truncate),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_rekey_under_traffic),
        cmocka_unit_test(test_counter_exhaustion),
        cmocka_unit_test(test_acks_bounded_resume),
        cmocka_unit_test(test_rx_backpressure),
        cmocka_unit_test(test_delayed_ack),
        cmocka_unit_test(test_set_tx_max),
        cmocka_unit_test(test_record_open_staged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
