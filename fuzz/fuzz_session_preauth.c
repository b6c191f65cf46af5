/* The acceptor's whole pre-auth path: the pure core (session/preauth.h) with
 * a real gate and the tcp (every shape) or tls codec, over arbitrary bytes
 * fed in chunks of sizes taken from the input. Checks (preauth_fixture.h):
 * no crash or UB; a verdict never goes back to MORE; the bytes kept are
 * exactly the bytes taken, never more than the codec's flight_max, and only a
 * full buffer refuses bytes, so a REJECT can be spliced with nothing lost;
 * ESTABLISHED only for the fixed client's key, with a reply that the
 * client side of the codec opens (tls: the cover's ServerHello, CCS and
 * record lengths), and the same flight again on the same gate is a replay.
 * Seeds: fuzz/corpus/fuzz_session_preauth/README.md. */
#include <stdint.h>
#include <stdlib.h>

#include "preauth_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    static int ready;
    if (!ready) {
        PA_CHECK(um_crypto_init() == 0);
        ready = 1;
    }
    pa_outcome_t o;
    pa_run(p, n, &o);
    return 0;
}
