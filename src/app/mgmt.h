/* Server management (docs/internals/management.md): the values of the
 * per-client keys quota and expires, the requests of the server's control
 * socket (JSON through jansson, validated here: pure), and the edits of a
 * config file that write runtime changes back (app/cfgedit.c). */
#ifndef UM_APP_MGMT_H
#define UM_APP_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/config.h"

/* A byte quota: digits with an optional suffix k, m, g or t (1024-based,
 * either case), e.g. "10G"; "off", "none" or "0" give 0 (no quota). At most
 * 2^60. 0, or UM_EINVAL. */
int um_parse_quota(uint64_t *out, const char *s);
/* Canonical text ("10g", "1536m", "off" for 0), what um_parse_quota reads. */
void um_format_quota(char *out, size_t cap, uint64_t v);
/* An expiry date "YYYY-MM-DD" (years 1970..9999): the client is served up
 * to the end of that day, UTC; *out is the first second after it (Unix
 * time). "never" or "off" give 0. 0, or UM_EINVAL. */
int um_parse_expiry(int64_t *out, const char *s);
/* The date back ("2027-01-31"; "never" for 0). */
void um_format_expiry(char *out, size_t cap, int64_t t);
/* UTC "YYYY-MM-DDTHH:MM:SSZ" of a Unix time. */
void um_format_time(char *out, size_t cap, int64_t t);

typedef enum {
    UM_MGMT_CLIENTS = 0, /* list clients, sessions, counters */
    UM_MGMT_ADD,         /* name, quota?, expires? */
    UM_MGMT_REMOVE,      /* name */
    UM_MGMT_KICK,        /* session id, or name (every session of it) */
    UM_MGMT_SET_QUOTA,   /* name, quota */
    UM_MGMT_SET_EXPIRY,  /* name, expires */
} um_mgmt_op_t;

typedef struct {
    um_mgmt_op_t op;
    char name[UM_NAME_MAX + 1]; /* "" when not given */
    uint64_t session;           /* kick by id (0: by name) */
    bool has_quota, has_expires;
    uint64_t quota; /* 0: none */
    int64_t expires;
} um_mgmt_req_t;

/* Requests are shorter than this (the control socket reads at most this
 * much, newline included). */
#define UM_MGMT_REQ_MAX 4096

/* Parses and validates one request (a JSON object, n bytes, need not be
 * NUL-terminated): {"cmd":"clients"}, {"cmd":"add-client","name":N,
 * "quota":Q,"expires":D}, {"cmd":"remove-client","name":N},
 * {"cmd":"kick","session":ID} or {"cmd":"kick","name":N},
 * {"cmd":"set-quota","name":N,"quota":Q}, {"cmd":"set-expiry","name":N,
 * "expires":D}; Q is a string for um_parse_quota or a whole number of
 * bytes, D a string for um_parse_expiry. Unknown members are refused.
 * Pure; 0, or UM_EINVAL with the reason in err. */
int um_mgmt_parse(const char *text, size_t n, um_mgmt_req_t *req, char *err, size_t errlen);

/* Edits of a config file's text that keep every other line (comments and
 * unknown lines included) as it is. Each returns a new malloc'd,
 * NUL-terminated text and its length in *outn, or NULL (no memory, or the
 * section is missing: *outn is 0 then when missing). Pure. */
/* Removes the section [word "name"] (its header to the next header). */
char *um_cfgedit_remove_section(const char *text, size_t n, const char *word, const char *name,
                                size_t *outn);
/* Sets key = value in [word "name"]: replaces the key's first line there
 * (and drops its repeats), or adds the line after the section's last
 * non-blank line; value NULL removes the key. */
char *um_cfgedit_set_key(const char *text, size_t n, const char *word, const char *name,
                         const char *key, const char *value, size_t *outn);
/* True when [word "name"] exists in text. */
bool um_cfgedit_has_section(const char *text, size_t n, const char *word, const char *name);
/* Writes text to path atomically: a temporary file in the same directory
 * (mode 0600), fsync, rename over path, fsync of the directory. A symlink
 * is followed: the file it names is replaced. 0, or UM_EIO with the reason
 * in err. */
int um_cfgedit_write(const char *path, const char *text, size_t n, char *err, size_t errlen);

/* The share link of a new client of the server cfg (cmd_server.c). 0, or -1
 * with err set. */
int um_server_link(const um_config_t *cfg, const uint8_t client_priv[32], const char *name,
                   char *out, size_t cap, char *err, size_t errlen);

#endif
