/* JA4, the TLS client fingerprint of FoxIO (technical_details/JA4.md in
 * github.com/FoxIO-LLC/ja4), computed from a parsed ClientHello:
 *
 *   t13d1516h2_8daaf6152771_e5627efa2ab1
 *   a: t (TLS over TCP), version ("13": highest supported_versions entry, else
 *      legacy_version), d/i (SNI extension present or not), cipher count,
 *      extension count (both two digits, capped at 99), first and last
 *      character of the first ALPN value ("00" without one; hex nibbles when
 *      either is not alphanumeric)
 *   b: first 12 hex of SHA-256 of the ciphers as 4-hex, sorted, comma-joined
 *   c: the same of the sorted extensions without SNI (0000) and ALPN (0010),
 *      then "_" and the signature algorithms in wire order (no "_" when none)
 * GREASE values are dropped everywhere (and a GREASE ALPN value is skipped);
 * an empty list hashes to "000000000000". Used by the tests to compare umbra's
 * hellos with the browsers'; pure. */
#ifndef UM_TRANSPORT_JA4_H
#define UM_TRANSPORT_JA4_H

#include <stddef.h>

#include "transport/tls_hello.h"

#define UM_JA4_LEN 36 /* characters, without the NUL */

/* Writes the JA4 of h (borrowed) to out as a NUL-terminated string.
 * UM_EINVAL for NULL arguments. */
int um_ja4(const um_tls_hello_t *h, char out[UM_JA4_LEN + 1]);

/* Writes JA4_r, the unhashed form ("t13d1516h2_002f,0035,..._0005,..._0403,...")
 * to out[0..cap) NUL-terminated. UM_ENOSPC when it does not fit. */
int um_ja4_raw(const um_tls_hello_t *h, char *out, size_t cap);

#endif
