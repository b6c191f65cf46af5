/* Seeds of fuzz/fuzz_session_preauth.c, and their check.
 *
 *   preauth_seeds gen DIR DATA   writes the seed corpus to DIR: real first
 *                                flights of the fixed client key with the
 *                                fixture's timestamp (tcp: unshaped and every
 *                                shape; tls: chromium and firefox), whole,
 *                                in chunks and with bytes after them, and
 *                                what must not get in: truncated, stale,
 *                                other key, other SNI, flights of the other
 *                                transport, garbage, HTTP requests, and the
 *                                browser hellos in DATA (tests/data/tls).
 *   preauth_seeds check DIR      runs every file of DIR through the fixture:
 *                                a file named auth-* must establish, every
 *                                other file must not.
 *
 * Input layout and the fixed keys and clock: fuzz/preauth_fixture.h. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fuzz/preauth_fixture.h"

static const char *g_dir;
static int g_bad;

static void put(const char *name, uint8_t mode, uint8_t chunk, const uint8_t *p, size_t n)
{
    char path[4096];
    uint8_t *b = malloc(n + 2);
    if (!b) exit(1);
    b[0] = mode;
    b[1] = chunk;
    memcpy(b + 2, p, n);
    pa_outcome_t o;
    pa_run(b, n + 2, &o);
    if (getenv("PA_SEEDS_VERBOSE"))
        printf("%s: fed %zu kept %zu why %d\n", name, o.fed, o.kept, o.why);
    int want = strncmp(name, "auth-", 5) == 0;
    if (o.established != want) {
        fprintf(stderr, "%s: %s (why %d)\n", name, o.established ? "established" : "rejected",
                o.why);
        g_bad++;
    }
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n + 2, f) != n + 2 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    free(b);
}

/* A first flight of mode (tcp shape 0..3, or tls with fp), made as the
 * connector makes it. */
static size_t flight(unsigned mode, um_tls_fp_t fp, const char *sni, const uint8_t cpriv[32],
                     uint64_t ts, uint8_t *out, size_t cap)
{
    uint8_t spub[32], msg[UM_HS_MSG_MAX];
    size_t mn = 0, wn = 0;
    um_key_public(spub, pa_server_priv);
    pa_codec_t c;
    if (mode == PA_MODE_TLS) {
        if (um_codec_tls_init(&c.tls, fp, sni) != 0) exit(1);
    } else {
        pa_codec_server(&c, mode, spub); /* the client's codec has the same parameters */
    }
    const um_codec_ops_t *o = c.base.ops;
    um_codec_state_t st;
    memset(&st, 0, sizeof(st));
    um_hs_client_t hs;
    um_hs_client_opts_t ho = {.aes_hw = false};
    size_t n1 = o->msg1_len(&c.base, &st);
    uint8_t pro[UM_CODEC_PROLOGUE_MAX];
    size_t pn = um_codec_prologue(&c.base, &st, pro);
    if (um_hs_client_start(&hs, pro, pn, cpriv, spub, &ho, ts, n1, msg, sizeof(msg), &mn) != 0 ||
        o->seal_flight(&c.base, &st, msg, mn, out, cap, &wn) != 0)
        exit(1);
    um_hs_client_wipe(&hs);
    return wn;
}

static size_t load(const char *path, uint8_t *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(out, 1, cap, f);
    fclose(f);
    return n;
}

static void gen(const char *data)
{
    static const char *shape[] = {"none", "printable", "http", "tls"};
    uint8_t b[16384], t[16384], other[32];
    size_t n;
    memset(other, 0x33, 32);

    for (unsigned m = 0; m < 4; m++) {
        char name[128];
        n = flight(m, 0, NULL, pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "auth-tcp-%s-whole", shape[m]);
        put(name, (uint8_t)m, 0, b, n);
        n = flight(m, 0, NULL, pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "auth-tcp-%s-chunks", shape[m]);
        put(name, (uint8_t)m, 0x83, b, n); /* feeds of 1..64 bytes */
        n = flight(m, 0, NULL, pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "trunc-tcp-%s", shape[m]);
        put(name, (uint8_t)m, 0, b, n - 1);
        snprintf(name, sizeof(name), "trunc-tcp-%s-half", shape[m]);
        put(name, (uint8_t)m, 0xa7, b, n / 2);
    }
    n = flight(0, 0, NULL, pa_client_priv, PA_WALL_S, b, sizeof(b));
    put("auth-tcp-none-bytes", 0, 0x01, b, n); /* one byte a feed */
    n = flight(0, 0, NULL, pa_client_priv, PA_WALL_S, b, sizeof(b));
    randombytes_buf(b + n, 700); /* session records follow */
    put("auth-tcp-none-rest", 0, 0xc9, b, n + 700);
    n = flight(0, 0, NULL, pa_client_priv, PA_WALL_S - 1000, b, sizeof(b));
    put("stale-tcp-none", 0, 0, b, n);
    n = flight(2, 0, NULL, other, PA_WALL_S, b, sizeof(b));
    put("otherkey-tcp-http", 2, 0, b, n);
    n = flight(0, 0, NULL, pa_client_priv, PA_WALL_S, b, sizeof(b));
    put("tcpflight-in-tls", PA_MODE_TLS, 0, b, n);
    put("tcpflight-in-tcp-tls", 3, 0, b, n); /* unshaped flight, shaped server */

    static const char *fpn[] = {"chromium", "firefox"};
    for (unsigned fp = 0; fp <= UM_TLS_FP_MAX; fp++) {
        char name[128];
        n = flight(PA_MODE_TLS, fp, PA_SNI, pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "auth-tls-%s-whole", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n);
        n = flight(PA_MODE_TLS, fp, PA_SNI, pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "auth-tls-%s-chunks", fpn[fp]);
        put(name, PA_MODE_TLS, 0xb5, b, n); /* feeds of 1..300 bytes */
        n = flight(PA_MODE_TLS, fp, PA_SNI, pa_client_priv, PA_WALL_S, b, sizeof(b));
        randombytes_buf(b + n, 300);
        snprintf(name, sizeof(name), "auth-tls-%s-rest", fpn[fp]);
        put(name, PA_MODE_TLS, 0xd2, b, n + 300);
        snprintf(name, sizeof(name), "trunc-tls-%s", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n - 1);
        snprintf(name, sizeof(name), "trunc-tls-%s-header", fpn[fp]);
        put(name, PA_MODE_TLS, 0x42, b, 9);
        n = flight(PA_MODE_TLS, fp, "www.example.org", pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "othersni-tls-%s", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n);
        n = flight(PA_MODE_TLS, fp, "WWW.Example.COM", pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "auth-tls-%s-sni-case", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n);
        n = flight(PA_MODE_TLS, fp, PA_SNI, pa_client_priv, PA_WALL_S + 1000, b, sizeof(b));
        snprintf(name, sizeof(name), "skew-tls-%s", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n);
        n = flight(PA_MODE_TLS, fp, PA_SNI, other, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "otherkey-tls-%s", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n);
        n = flight(PA_MODE_TLS, fp, PA_SNI, pa_client_priv, PA_WALL_S, b, sizeof(b));
        snprintf(name, sizeof(name), "tlsflight-in-tcp-%s", fpn[fp]);
        put(name, 0, 0, b, n);
        /* A middlebox's change outside the slots (ALPN h2 -> h3): the hello
         * still parses and its slots are intact, but the transcript bound
         * into the handshake differs (PROTOCOL.md 8.2): no session. */
        n = flight(PA_MODE_TLS, fp, PA_SNI, pa_client_priv, PA_WALL_S, b, sizeof(b));
        for (size_t i = 0; i + 2 < n; i++)
            if (b[i] == 2 && b[i + 1] == 'h' && b[i + 2] == '2') {
                b[i + 2] = '3';
                break;
            }
        snprintf(name, sizeof(name), "tamper-tls-%s-alpn", fpn[fp]);
        put(name, PA_MODE_TLS, 0, b, n);
    }

    /* Not flights at all. */
    randombytes_buf(b, 3000);
    put("garbage-tcp-none", 0, 0, b, 3000);
    put("garbage-tcp-printable", 1, 0x65, b, 3000);
    put("garbage-tls", PA_MODE_TLS, 0x31, b, 3000);
    memset(b, 0, 5000);
    put("zeros-tcp-tls", 3, 0xf0, b, 5000);
    put("zeros-tls", PA_MODE_TLS, 0, b, 5000);
    static const char get[] =
        "GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.14.1\r\n"
        "Accept: */*\r\n\r\n";
    for (unsigned m = 0; m < PA_MODES; m++) {
        char name[64];
        snprintf(name, sizeof(name), "http-get-%u", m);
        put(name, (uint8_t)m, m ? 0x63 : 0, (const uint8_t *)get, sizeof(get) - 1);
    }

    /* Real browsers' hellos: the cover's, never ours. */
    static const char *br[] = {"chromium-156-a", "chromium-156-longsni", "firefox-153-a",
                               "firefox-153-retry"};
    for (size_t i = 0; i < sizeof(br) / sizeof(br[0]); i++) {
        char path[4096], name[128];
        snprintf(path, sizeof(path), "%s/%s.bin", data, br[i]);
        if ((n = load(path, t, sizeof(t))) == 0) {
            perror(path);
            exit(1);
        }
        snprintf(name, sizeof(name), "browser-%s-tls", br[i]);
        put(name, PA_MODE_TLS, i ? 0x94 : 0, t, n);
        snprintf(name, sizeof(name), "browser-%s-tcp-none", br[i]);
        put(name, 0, 0, t, n);
        if (i) continue;
        /* The same hello claiming 7000 bytes, which do follow: longer than
         * the tls codec keeps (flight_max), so the full buffer decides. */
        t[3] = 7004 >> 8, t[4] = 7004 & 0xff, t[6] = 0, t[7] = 7000 >> 8, t[8] = 7000 & 0xff;
        memset(t + n, 0, 7600 - n);
        put("long-hello-tls", PA_MODE_TLS, 0xc0, t, 7600);
        put("long-hello-tls-whole", PA_MODE_TLS, 0, t, 7600);
    }
}

static void check(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int files = 0;
    uint8_t *b = malloc(1 << 20);
    if (!d || !b) {
        perror(g_dir);
        exit(1);
    }
    while ((e = readdir(d))) {
        char path[4096];
        if (e->d_name[0] == '.' || strstr(e->d_name, ".md")) continue;
        snprintf(path, sizeof(path), "%s/%s", g_dir, e->d_name);
        size_t n = load(path, b, 1 << 20);
        pa_outcome_t o;
        pa_run(b, n, &o);
        int want = strncmp(e->d_name, "auth-", 5) == 0;
        if (o.established != want) {
            printf("not ok: %s %s (why %d)\n", e->d_name,
                   o.established ? "established" : "rejected", o.why);
            g_bad++;
        }
        files++;
    }
    closedir(d);
    free(b);
    printf("%d file(s) checked, %d wrong\n", files, g_bad);
}

int main(int argc, char **argv)
{
    if (um_crypto_init() != 0) return 1;
    if (argc == 4 && strcmp(argv[1], "gen") == 0) {
        g_dir = argv[2];
        gen(argv[3]);
    } else if (argc == 3 && strcmp(argv[1], "check") == 0) {
        g_dir = argv[2];
        check();
    } else {
        fprintf(stderr, "usage: preauth_seeds gen DIR DATA | check DIR\n");
        return 2;
    }
    return g_bad ? 1 : 0;
}
