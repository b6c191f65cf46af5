/* The ws transport's TLS ClientHello (src/transport/ossl.c), for JA4
 * measurements (bench/RESULTS-ws.md, tests/integration/tunnel_ws.sh):
 *   ws_hello_tool SNI OUT   writes the first TLS record umbra's OpenSSL
 *                           client sends for SNI to OUT
 * Exit status 0, or 1 with a message on stderr. */
#include <stdio.h>

#include "transport/ossl.h"
#include "util/err.h"

int main(int argc, char **argv)
{
    if (argc != 3) return fprintf(stderr, "usage: ws_hello_tool SNI OUT\n"), 1;
    um_ossl_ctx_t *x = NULL;
    uint8_t h[16384];
    size_t n = 0;
    int r = um_ossl_ctx_new(NULL, &x);
    if (r == 0) r = um_ossl_client_hello(x, argv[1], h, sizeof(h), &n);
    um_ossl_ctx_unref(x);
    if (r) return fprintf(stderr, "ws_hello_tool: %s\n", um_strerror(r)), 1;
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(h, 1, n, f) != n || fclose(f) != 0)
        return fprintf(stderr, "ws_hello_tool: cannot write %s\n", argv[2]), 1;
    return 0;
}
