/* Helper of tests/integration/tls_fingerprint.sh: umbra's ClientHello code on
 * files, independent of the umbra binary.
 *   tls_hello_tool ja4 FILE                 JA4 of the hello in FILE
 *   tls_hello_tool order FILE               extension types in wire order,
 *                                           GREASE written as "grease"
 *   tls_hello_tool build FP SNI OUT [LEN]   a hello of fingerprint FP
 *                                           (chromium|firefox) with random slots
 *                                           and ECH payload length LEN (default:
 *                                           drawn as the browser draws) to OUT
 * Exit status 0, or 1 with a message on stderr. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ja4.h"
#include "transport/tls_hello.h"
#include "util/err.h"

static um_tls_hello_t *load(const char *path)
{
    uint8_t buf[32768];
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    um_tls_hello_t *h = malloc(sizeof(*h));
    if (!h) return NULL;
    int rc = um_tls_hello_parse(buf, n, h);
    if (rc != 0) {
        fprintf(stderr, "%s: not a ClientHello (%s)\n", path, um_strerror(rc));
        free(h);
        return NULL;
    }
    return h;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) return 1;
    if (argc == 3 && strcmp(argv[1], "ja4") == 0) {
        um_tls_hello_t *h = load(argv[2]);
        char ja4[UM_JA4_LEN + 1];
        if (!h || um_ja4(h, ja4) != 0) return 1;
        printf("%s\n", ja4);
        free(h);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "order") == 0) {
        um_tls_hello_t *h = load(argv[2]);
        if (!h) return 1;
        for (unsigned i = 0; i < h->n_ext; i++) {
            if (um_tls_is_grease(h->ext[i].type))
                printf("%sgrease", i ? "," : "");
            else
                printf("%s%04x", i ? "," : "", h->ext[i].type);
        }
        printf("\n");
        free(h);
        return 0;
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "build") == 0) {
        um_tls_fp_t fp;
        if (strcmp(argv[2], "chromium") == 0)
            fp = UM_TLS_FP_CHROMIUM;
        else if (strcmp(argv[2], "firefox") == 0)
            fp = UM_TLS_FP_FIREFOX;
        else
            return fprintf(stderr, "unknown fingerprint %s\n", argv[2]), 1;
        um_tls_slots_t s;
        uint8_t x[32], payload[256], out[UM_TLS_BUILD_MAX];
        randombytes_buf(&s, sizeof s);
        randombytes_buf(x, sizeof x);
        s.ech_payload_len = argc == 6 ? (size_t)atoi(argv[5]) : um_tls_fp_ech_len(fp, NULL, NULL);
        if (s.ech_payload_len > sizeof payload) return 1;
        randombytes_buf(payload, s.ech_payload_len);
        s.ech_payload = payload;
        size_t n = 0;
        int rc = um_tls_hello_build(fp, argv[3], x, &s, NULL, NULL, out, sizeof out, &n);
        if (rc != 0) return fprintf(stderr, "build: %s\n", um_strerror(rc)), 1;
        FILE *f = fopen(argv[4], "wb");
        if (!f || fwrite(out, 1, n, f) != n || fclose(f) != 0) return 1;
        return 0;
    }
    fprintf(stderr, "usage: tls_hello_tool ja4|order FILE | build FP SNI OUT [LEN]\n");
    return 1;
}
