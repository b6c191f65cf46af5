/* Local control sockets: Unix stream sockets (mode 0600) served to our own
 * user (and root) only.
 *   The client's, read by 'umbra status': every connection is answered with
 *   a text report and closed; the report is produced by a callback at the
 *   moment of asking.
 *   The server's management socket (docs/internals/management.md): each
 *   connection carries one request line (up to UM_CONTROL_REQ_MAX bytes,
 *   ended by a newline or by the end of the stream) and gets one answer,
 *   then closes. */
#ifndef UM_APP_CONTROL_H
#define UM_APP_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Longest control socket path, terminator included: sizeof(sun_path) on
 * Linux (struct sockaddr_un). */
#define UM_CONTROL_PATH_MAX 108

typedef struct um_control um_control_t;
/* Writes at most cap bytes of report into out; returns the length. */
typedef size_t (*um_control_report_cb)(char *out, size_t cap, void *ud);
/* The request mode: answers req (n bytes, newline stripped; n is
 * UM_CONTROL_REQ_MAX when the request was longer) with a malloc'd text of
 * *outn bytes, wiped and freed once written; NULL closes unanswered. */
typedef char *(*um_control_request_cb)(const char *req, size_t n, size_t *outn, void *ud);

#define UM_CONTROL_REQ_MAX    4096
#define UM_CONTROL_PEERS_MAX  16    /* connections at once; more are closed */
#define UM_CONTROL_TIMEOUT_MS 10000 /* a connection's whole life */

/* The default path, <dir>/umbra.sock in a private directory: <dir> is
 * $XDG_RUNTIME_DIR/umbra when XDG_RUNTIME_DIR is a directory of ours with
 * mode 0700, else ${TMPDIR:-/tmp}/umbra-<uid>. With create, a missing <dir>
 * is made (0700). <dir> must be a real directory (not a symlink), owned by
 * us, closed to group and others: otherwise another user may have made it
 * and UM_EACCES is returned with the reason in why. UM_ENOENT when missing
 * (and not create), UM_ENOSPC when out is too small. */
int um_control_default_path(char *out, size_t cap, bool create, char *why, size_t whylen);
/* The same directory, another file name (the server's: "umbra-server.sock"). */
int um_control_default_path_named(char *out, size_t cap, const char *file, bool create, char *why,
                                  size_t whylen);
/* 0 when fd's peer (a connected Unix socket) runs as our uid; UM_EACCES with
 * *peer_uid set otherwise. */
int um_control_peer_ok(int fd, unsigned *peer_uid);
/* Copies n bytes of an untrusted report to out, replacing every control
 * character but newline and tab (C0, DEL, and C1 as raw bytes or as UTF-8)
 * by '?', so nothing read from a socket can drive the terminal. out must hold
 * n bytes; returns the length written (at most n). Pure. */
size_t um_control_sanitize(char *out, const char *in, size_t n);
/* Listens on path. A stale socket file (nobody answering) is replaced; a
 * live one is left alone (UM_EEXIST). Connections from other users are
 * closed unanswered. */
int um_control_start(uv_loop_t *loop, const char *path, um_control_report_cb cb, void *ud,
                     um_control_t **out);
/* The same, in the request mode. */
int um_control_start_requests(uv_loop_t *loop, const char *path, um_control_request_cb cb, void *ud,
                              um_control_t **out);
/* Closes the listener, removes the socket file; memory freed on close. */
void um_control_stop(um_control_t *c);

#endif
