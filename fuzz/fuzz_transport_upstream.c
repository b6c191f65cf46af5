/* The upstream proxy client (transport/upstream.h) on arbitrary bytes.
 * Input: byte 0 picks the kind, credentials and target; byte 1 a cut; the
 * rest is what the proxy sends, fed in two pieces as a reader would (the
 * caller keeps what was not used). Properties:
 *   - every answer is done, need more, or one of the documented errors, with
 *     a printable reason, and used never passes the bytes given;
 *   - feeding everything at once and feeding it in pieces agree on the
 *     verdict and on where the proxy's reply ends;
 *   - the bytes left after "done" are exactly those the proxy sent after its
 *     reply (none are taken from the server's side);
 *   - the URL parser on the same bytes never accepts what it cannot format,
 *     and format -> parse gives back the same proxy. */
#include <stdint.h>
#include <string.h>

#include "transport/upstream.h"
#include "util/err.h"

typedef struct {
    int r;
    size_t consumed; /* proxy bytes used in all */
    int steps;
} run_t;

static int ok_code(int r)
{
    return r == 0 || r == UM_EAGAIN || r == UM_EPROTO || r == UM_EAUTH || r == UM_EACCES ||
           r == UM_ENOSPC;
}

static run_t run(const um_upstream_cfg_t *cfg, const um_addr_t *t, const uint8_t *p, size_t n,
                 size_t cut)
{
    um_upstream_t u;
    uint8_t out[UM_UPSTREAM_OUT_MAX];
    size_t on = 0;
    run_t res = {UM_EAGAIN, 0, 0};
    if (um_upstream_start(&u, cfg, t, out, sizeof(out), &on) != 0 || on == 0) __builtin_trap();
    size_t have = 0; /* bytes delivered so far */
    for (int piece = 0; piece < 2 && res.r == UM_EAGAIN; piece++) {
        have = piece == 0 ? cut : n;
        for (int k = 0; k < 16; k++) {
            size_t used = 0;
            int r = um_upstream_input(&u, p + res.consumed, have - res.consumed, &used, out,
                                      sizeof(out), &on);
            if (!ok_code(r) || used > have - res.consumed || on > sizeof(out)) __builtin_trap();
            const char *why = um_upstream_reason(&u);
            for (const char *q = why; *q; q++)
                if (*q < 0x20 || *q > 0x7e) __builtin_trap();
            res.consumed += used;
            res.steps++;
            res.r = r;
            if (r != UM_EAGAIN || used == 0) break;
        }
    }
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t sel = data[0];
    um_upstream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.kind = (sel & 1) ? UM_UPSTREAM_HTTP : UM_UPSTREAM_SOCKS5;
    if (sel & 2) {
        memcpy(cfg.user, "user", 5);
        memcpy(cfg.pass, "secret:pw", 10);
    }
    um_addr_t t;
    memset(&t, 0, sizeof(t));
    t.port = 443;
    if (sel & 4) {
        t.type = UM_ADDR_IPV6;
        t.u.v6[15] = 1;
    } else if (sel & 8) {
        t.type = UM_ADDR_DOMAIN;
        memcpy(t.u.domain, "exit.example", 13);
        t.domain_len = 12;
    } else {
        t.type = UM_ADDR_IPV4;
        t.u.v4[0] = 10;
        t.u.v4[3] = 1;
    }
    const uint8_t *p = data + 2;
    size_t n = size - 2, cut = n ? data[1] % (n + 1) : 0;
    run_t whole = run(&cfg, &t, p, n, n);
    run_t split = run(&cfg, &t, p, n, cut);
    if (whole.r != split.r) __builtin_trap();
    if (whole.r == 0 && whole.consumed != split.consumed) __builtin_trap();
    if (whole.r == 0 && whole.consumed > n) __builtin_trap();

    /* The URL parser on the same bytes. */
    um_upstream_cfg_t pc, back;
    char why[160], txt[UM_ADDR_STRLEN + 16];
    if (um_upstream_parse(&pc, (const char *)data, size, why, sizeof(why)) == 0) {
        if (pc.kind != UM_UPSTREAM_SOCKS5 && pc.kind != UM_UPSTREAM_HTTP) __builtin_trap();
        if (pc.proxy.type == UM_ADDR_DOMAIN) __builtin_trap();
        if ((pc.user[0] != 0) != (pc.pass[0] != 0)) __builtin_trap();
        size_t k = um_upstream_format(&pc, txt, sizeof(txt));
        if (um_upstream_parse(&back, txt, k, why, sizeof(why)) != 0) __builtin_trap();
        if (back.kind != pc.kind || memcmp(&back.proxy, &pc.proxy, sizeof(pc.proxy)) != 0)
            __builtin_trap();
        if (back.user[0]) __builtin_trap(); /* format never shows credentials */
    }
    um_upstream_cfg_wipe(&pc);
    return 0;
}
