/* Interop: our Noise_IK_25519_ChaChaPoly_BLAKE2b against python3-dissononce in
 * both roles, then three plain Noise transport messages each way. The peer is
 * tests/interop/noise_peer.py run by /usr/bin/python3 over pipes. When
 * /usr/bin/python3 lacks dissononce the test prints why and passes; CI has it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "crypto/noise.h"

static const char PROLOGUE[] = "umbra/1 interop";

typedef struct {
    pid_t pid;
    FILE *to, *from;
} peer_t;

static int have_dissononce(void)
{
    return system("/usr/bin/python3 -c 'import dissononce' >/dev/null 2>&1") == 0;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

static void peer_start(peer_t *pp, const char *role, const uint8_t priv[32], const uint8_t *rs)
{
    int in[2], outp[2];
    char script[1024], privh[65], proh[2 * sizeof(PROLOGUE) + 1], rsh[65];
    const char *src = getenv("UMBRA_SRC");
    snprintf(script, sizeof(script), "%s/tests/interop/noise_peer.py", src ? src : ".");
    hex(privh, priv, 32);
    hex(proh, (const uint8_t *)PROLOGUE, sizeof(PROLOGUE) - 1);
    if (rs) hex(rsh, rs, 32);
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(outp), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[1]);
        close(outp[0]);
        execl("/usr/bin/python3", "python3", script, role, privh, proh, rs ? rsh : NULL,
              (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    pp->pid = pid;
    pp->to = fdopen(in[1], "w");
    pp->from = fdopen(outp[0], "r");
}

static void send_line(peer_t *pp, const char *tag, const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    hex(h, p, n);
    fprintf(pp->to, "%s %s\n", tag, h);
    fflush(pp->to);
    free(h);
}

/* Reads "TAG HEX"; returns the decoded length. */
static size_t recv_line(peer_t *pp, const char *tag, uint8_t *out, size_t cap)
{
    char line[8192];
    assert_non_null(fgets(line, sizeof(line), pp->from));
    size_t tl = strlen(tag);
    assert_memory_equal(line, tag, tl);
    assert_int_equal(line[tl], ' ');
    size_t binlen = 0;
    assert_int_equal(
        sodium_hex2bin(out, cap, line + tl + 1, strlen(line + tl + 1), "\n", &binlen, NULL), 0);
    return binlen;
}

static void peer_finish(peer_t *pp)
{
    int st = 0;
    fclose(pp->to);
    fclose(pp->from);
    assert_int_equal(waitpid(pp->pid, &st, 0), pp->pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Both directions of transport messages after the handshake. */
static void transport_round(peer_t *pp, const um_noise_split_t *sp)
{
    uint8_t buf[256], pt[256];
    for (uint64_t i = 0; i < 3; i++) {
        size_t n = recv_line(pp, "T", buf, sizeof(buf));
        assert_int_equal(um_noise_decrypt(sp->k_recv, i, NULL, 0, buf, n, pt), 0);
        char want[64];
        snprintf(want, sizeof(want), "python says %d", (int)i);
        assert_int_equal(n - 16, strlen(want));
        assert_memory_equal(pt, want, strlen(want));
    }
    for (uint64_t i = 0; i < 3; i++) {
        char msg[64];
        int ml = snprintf(msg, sizeof(msg), "umbra says %d", (int)i);
        assert_int_equal(um_noise_encrypt(sp->k_send, i, NULL, 0, (const uint8_t *)msg, ml, buf),
                         0);
        send_line(pp, "T", buf, ml + 16);
        size_t n = recv_line(pp, "D", pt, sizeof(pt));
        assert_int_equal(n, ml);
        assert_memory_equal(pt, msg, ml);
    }
    uint8_t h[64];
    assert_int_equal(recv_line(pp, "H", h, sizeof(h)), 64);
    assert_memory_equal(h, sp->h, 64);
}

static void test_we_initiate(void **st)
{
    uint8_t ci[32], cp[32], si[32], sp_[32], msg[512], pl[512];
    size_t n, pn;
    um_noise_hs_t hs;
    um_noise_split_t sp;
    peer_t pp;

    if (!have_dissononce()) {
        printf("SKIP-LIKE PASS: /usr/bin/python3 has no dissononce module\n");
        return;
    }
    um_key_generate(ci);
    um_key_generate(si);
    assert_int_equal(um_key_public(cp, ci), 0);
    assert_int_equal(um_key_public(sp_, si), 0);
    peer_start(&pp, "responder", si, NULL);
    assert_int_equal(
        um_noise_init_initiator(&hs, (const uint8_t *)PROLOGUE, sizeof(PROLOGUE) - 1, ci, sp_), 0);
    assert_int_equal(
        um_noise_write_msg1(&hs, (const uint8_t *)"c-initiator", 11, msg, sizeof(msg), &n), 0);
    send_line(&pp, "M1", msg, n);
    pn = recv_line(&pp, "P1", pl, sizeof(pl));
    assert_int_equal(pn, 11);
    assert_memory_equal(pl, "c-initiator", 11);
    assert_int_equal(recv_line(&pp, "RS", pl, sizeof(pl)), 32);
    assert_memory_equal(pl, cp, 32);
    n = recv_line(&pp, "M2", msg, sizeof(msg));
    assert_int_equal(um_noise_read_msg2(&hs, msg, n, pl, sizeof(pl), &pn), 0);
    assert_int_equal(pn, 20);
    assert_memory_equal(pl, "py-responder-payload", 20);
    assert_int_equal(um_noise_split(&hs, &sp), 0);
    transport_round(&pp, &sp);
    peer_finish(&pp);
}

static void test_we_respond(void **st)
{
    uint8_t ci[32], cp[32], si[32], sp_[32], msg[512], pl[512];
    size_t n, pn;
    um_noise_hs_t hs;
    um_noise_split_t sp;
    peer_t pp;

    if (!have_dissononce()) {
        printf("SKIP-LIKE PASS: /usr/bin/python3 has no dissononce module\n");
        return;
    }
    um_key_generate(ci);
    um_key_generate(si);
    assert_int_equal(um_key_public(cp, ci), 0);
    assert_int_equal(um_key_public(sp_, si), 0);
    peer_start(&pp, "initiator", ci, sp_);
    assert_int_equal(
        um_noise_init_responder(&hs, (const uint8_t *)PROLOGUE, sizeof(PROLOGUE) - 1, si), 0);
    n = recv_line(&pp, "M1", msg, sizeof(msg));
    assert_int_equal(um_noise_read_msg1(&hs, msg, n, pl, sizeof(pl), &pn), 0);
    assert_int_equal(pn, 20);
    assert_memory_equal(pl, "py-initiator-payload", 20);
    assert_memory_equal(hs.rs, cp, 32);
    assert_int_equal(
        um_noise_write_msg2(&hs, (const uint8_t *)"c-responder", 11, msg, sizeof(msg), &n), 0);
    send_line(&pp, "M2", msg, n);
    pn = recv_line(&pp, "P2", pl, sizeof(pl));
    assert_int_equal(pn, 11);
    assert_memory_equal(pl, "c-responder", 11);
    assert_int_equal(um_noise_split(&hs, &sp), 0);
    transport_round(&pp, &sp);
    peer_finish(&pp);
}

/* The interop must fail when our side is wrong: a different prologue on our
 * side makes dissononce reject message 1 (the peer exits non-zero). */
static void test_mismatch_detected(void **st)
{
    uint8_t ci[32], si[32], sp_[32], msg[512];
    size_t n;
    um_noise_hs_t hs;
    peer_t pp;
    int wst = 0;

    if (!have_dissononce()) return;
    um_key_generate(ci);
    um_key_generate(si);
    assert_int_equal(um_key_public(sp_, si), 0);
    peer_start(&pp, "responder", si, NULL);
    assert_int_equal(um_noise_init_initiator(&hs, (const uint8_t *)"umbra/1 other", 13, ci, sp_),
                     0);
    assert_int_equal(um_noise_write_msg1(&hs, NULL, 0, msg, sizeof(msg), &n), 0);
    send_line(&pp, "M1", msg, n);
    fclose(pp.to);
    char line[256];
    assert_null(fgets(line, sizeof(line), pp.from));
    fclose(pp.from);
    assert_int_equal(waitpid(pp.pid, &wst, 0), pp.pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) != 0);
    um_noise_hs_wipe(&hs);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (um_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_we_initiate),
        cmocka_unit_test(test_we_respond),
        cmocka_unit_test(test_mismatch_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
