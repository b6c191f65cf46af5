/* Signed server lists (docs/PROTOCOL.md, "Signed server lists"): an
 * operator's list of servers, signed with its Ed25519 key, that clients
 * fetch through the tunnel or from URLs and merge into their candidates.
 *
 *   umbra-server-list 1
 *   version 7
 *   expires 2027-01-31T00:00:00Z
 *   server umbra://<server-public-key>@<address>[,...][?<parameters>][#<name>]
 *   ...
 *   operator <operator public key: 43 characters base64url>
 *   signature <86 characters base64url: Ed25519 over every byte before this line>
 *
 * Every line ends with LF. The parser is pure and bounded (64 KiB, 256
 * servers); the verifier decides in the order malformed, unknown operator,
 * bad signature, expired, older version. */
#ifndef UM_APP_SRVLIST_H
#define UM_APP_SRVLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/config.h"
#include "app/link.h"

#define UM_SRVLIST_MAX_BYTES   65536
#define UM_SRVLIST_MAX_SERVERS 256
#define UM_SRVLIST_TAG         "umbra-server-list 1"
#define UM_SIGN_KEY_B64_LEN    43 /* an Ed25519 seed or public key, base64url */

typedef enum {
    UM_SRVLIST_OK = 0,
    UM_SRVLIST_MALFORMED,
    UM_SRVLIST_UNKNOWN_OPERATOR,
    UM_SRVLIST_BAD_SIGNATURE,
    UM_SRVLIST_EXPIRED,
    UM_SRVLIST_OLDER,
} um_srvlist_status_t;

typedef struct {
    uint64_t version;
    int64_t expires;       /* Unix seconds */
    char expires_text[21]; /* as written: YYYY-MM-DDTHH:MM:SSZ */
    um_link_t *servers;    /* n_servers entries; owned, um_srvlist_free */
    size_t n_servers;
    bool has_signature; /* operator and signature lines present */
    uint8_t operator_key[32];
    uint8_t signature[64];
    size_t signed_len; /* bytes the signature covers: all before its line */
} um_srvlist_t;

/* Parses n bytes. signed_: the full signed form (operator and signature
 * lines required); otherwise the unsigned text 'umbra list sign' reads
 * (those lines refused). Checks no signature. On error returns UM_EINVAL
 * (UM_ENOMEM) with "line N: ..." in err; l is then empty. Free l with
 * um_srvlist_free either way. */
int um_srvlist_parse(um_srvlist_t *l, const uint8_t *p, size_t n, bool signed_, char *err,
                     size_t errlen);
void um_srvlist_free(um_srvlist_t *l);

/* Does the signature of a parsed signed list (p, n: the bytes parsed)
 * verify under pub? */
bool um_srvlist_sig_ok(const um_srvlist_t *l, const uint8_t *p, size_t n, const uint8_t pub[32]);

/* Everything a client checks, in order: parses (signed form), the operator
 * line is `trusted` (NULL: no key is trusted), the signature verifies, the
 * list has not expired at `now` (Unix seconds), its version is not below
 * min_version. Returns the first failure; err gets a detail line. On
 * UM_SRVLIST_OK l holds the list (free it with um_srvlist_free always). */
um_srvlist_status_t um_srvlist_check(um_srvlist_t *l, const uint8_t *p, size_t n,
                                     const uint8_t *trusted, uint64_t min_version, int64_t now,
                                     char *err, size_t errlen);
/* The reason an event names: "malformed", "unknown operator", "bad
 * signature", "expired", "older version" ("" for OK). */
const char *um_srvlist_reason(um_srvlist_status_t st);

/* Signs the unsigned text body (n bytes; a missing final LF is added) with
 * the operator's Ed25519 seed: *out (caller frees) gets the signed list of
 * *outn bytes. UM_EINVAL with "line N: ..." in err when body does not parse. */
int um_srvlist_sign(const uint8_t *body, size_t n, const uint8_t seed[32], uint8_t **out,
                    size_t *outn, char *err, size_t errlen);
/* The public key of a seed. */
void um_sign_public(uint8_t pub[32], const uint8_t seed[32]);

/* Parses an RFC 3339 UTC time of the form YYYY-MM-DDTHH:MM:SSZ (exactly 20
 * characters) into Unix seconds. 0 or UM_EINVAL. */
int um_srvlist_parse_time(int64_t *out, const char *s, size_t n);

/* Adds the servers of a verified list to a client config: each whose public
 * key no [server] has yet becomes a [server] section (named by its link's
 * #name when free, else "list-N") with a transport of its link's parameters
 * (an equal existing one is shared), and the list's operator key when its
 * link names none. Within UM_CFG_MAX_SERVERS and UM_CFG_MAX_TRANSPORTS:
 * returns 0, or UM_ENOSPC when some did not fit; *added counts the new. */
int um_srvlist_merge(um_config_t *c, const um_srvlist_t *l, size_t *added);

#endif
