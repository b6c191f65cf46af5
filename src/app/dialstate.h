/* Remembered dial parameters (docs/CONFIG.md, "State file"): which server,
 * address and transport made the last session, so that the next start
 * tries them first. A small text file, written atomically:
 *
 *   # umbra client state (docs/CONFIG.md)
 *   umbra-state 1
 *   remembered SERVER KEYFP ADDRESS TRANSPORT UNIXSECONDS
 *
 * KEYFP is um_dialstate_key_fp() of the server's public key, so that a
 * server whose key changed (or a renamed one) does not match. TRANSPORT is
 * the [transport] section's name, "-" for the built-in tcp.
 *
 * The parser and the serializer are pure; load and save do the file I/O. */
#ifndef UM_APP_DIALSTATE_H
#define UM_APP_DIALSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/config.h"
#include "util/addr.h"

#define UM_DIALSTATE_MAX    (64 * 1024) /* bytes of a state file, at most */
#define UM_DIALSTATE_FP_LEN 32          /* hex characters of a key fingerprint */

typedef struct {
    char server[UM_NAME_MAX + 1];
    char key_fp[UM_DIALSTATE_FP_LEN + 1];
    char address[UM_ADDR_STRLEN]; /* as configured (host:port), not as resolved */
    char transport[UM_NAME_MAX + 1];
    uint64_t at_s; /* when the session came up, Unix seconds */
} um_dial_rec_t;

typedef struct {
    bool has_remembered;
    um_dial_rec_t remembered;
} um_dialstate_t;

/* Parses n bytes of text (need not be NUL-terminated). 0, or UM_EINVAL with
 * "line N: reason" in err (st is then cleared). Pure. */
int um_dialstate_parse(um_dialstate_t *st, const char *text, size_t n, char *err, size_t errlen);
/* Writes the file's text into out (NUL-terminated); *outn its length.
 * 0, UM_EINVAL (a field that would not parse back), or UM_ENOSPC. Pure. */
int um_dialstate_format(const um_dialstate_t *st, char *out, size_t cap, size_t *outn);
/* Is rec a field set that um_dialstate_format can write (and parse back)? */
bool um_dial_rec_valid(const um_dial_rec_t *rec);

/* The fingerprint of a server's public key: hex of BLAKE2b-128. */
void um_dialstate_key_fp(const uint8_t pub[32], char out[UM_DIALSTATE_FP_LEN + 1]);

/* The default path: $XDG_STATE_HOME/umbra/state, else
 * $HOME/.local/state/umbra/state. 0, or UM_ENOENT (neither is set to an
 * absolute path) / UM_ENOSPC. */
int um_dialstate_default_path(char *out, size_t cap);
/* Reads and parses path (at most UM_DIALSTATE_MAX bytes). 0; UM_ENOENT when
 * there is no file; else an error with the reason in err. */
int um_dialstate_load(const char *path, um_dialstate_t *st, char *err, size_t errlen);
/* Writes st to path atomically: a temporary file (0600) in the same
 * directory, fsync, rename. Missing directories are created 0700. 0, or an
 * error with the reason in err. */
int um_dialstate_save(const char *path, const um_dialstate_t *st, char *err, size_t errlen);

#endif
