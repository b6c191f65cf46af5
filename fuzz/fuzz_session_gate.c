/* The pre-auth classifiers of session/gate.h on arbitrary bytes:
 *   - um_gate_not_flight is monotone: once bytes cannot be a flight, no
 *     longer input that starts with them can be one (the acceptor decides
 *     on a growing buffer);
 *   - um_src_key is total, and its result depends only on the prefix bits;
 *   - the source budget table stays consistent under a sequence of admits
 *     and releases taken from the input (all released: nothing parsing). */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "session/gate.h"
#include "session/keyset.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    bool prev = false;
    size_t step = n > 64 ? n / 64 : 1;
    for (size_t k = 0; k <= n; k += step) {
        bool v = um_gate_not_flight(p, k);
        if (prev && !v) __builtin_trap();
        prev = v;
    }
    if (um_gate_not_flight(p, n) != um_gate_not_flight(p, n)) __builtin_trap();

    if (n >= 18) {
        struct sockaddr_in6 a6;
        uint8_t k1[UM_SRC_KEY_LEN], k2[UM_SRC_KEY_LEN];
        memset(&a6, 0, sizeof(a6));
        a6.sin6_family = AF_INET6;
        memcpy(&a6.sin6_addr, p + 2, 16);
        uint8_t v4 = p[0] % 33, v6 = p[1] % 129;
        if (um_src_key((struct sockaddr *)&a6, v4, v6, k1) != 0) __builtin_trap();
        /* flip a bit past the prefix: the same key */
        unsigned bit = v6 + (p[1] % 7);
        if (bit < 128 && k1[0] == 6) {
            ((uint8_t *)&a6.sin6_addr)[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
            if (um_src_key((struct sockaddr *)&a6, v4, v6, k2) != 0) __builtin_trap();
            if (memcmp(k1, k2, sizeof(k1)) != 0) __builtin_trap();
        }
    }

    static um_gate_t *g;
    if (!g) {
        uint8_t priv[32] = {1};
        um_keyset_t *ks = um_keyset_new();
        um_gate_cfg_t gc = {.max_preauth = 16, .per_source = 3};
        if (!ks || um_gate_new(priv, ks, 0, 1024, false, &gc, &g) != 0) __builtin_trap();
        um_keyset_unref(ks);
    }
    uint8_t keys[64][UM_SRC_KEY_LEN];
    bool parse[64];
    size_t m = n < 64 ? n : 64;
    for (size_t i = 0; i < m; i++) {
        memset(keys[i], 0, UM_SRC_KEY_LEN);
        keys[i][0] = 4;
        keys[i][1] = p[i] & 7; /* few sources: collisions and limits */
        parse[i] = um_gate_admit(g, keys[i]);
    }
    for (size_t i = m; i-- > 0;) {
        if (parse[i]) um_gate_release_parse(g, keys[i]);
        um_gate_release_held(g);
    }
    um_gate_stats_t st;
    um_gate_stats(g, &st);
    if (st.parsing != 0 || st.held != 0) __builtin_trap();
    return 0;
}
