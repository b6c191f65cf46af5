/* The client's local control socket, read by 'umbra status': a Unix stream
 * socket (mode 0600) that answers every connection with a text report and
 * closes. The report is produced by a callback at the moment of asking. */
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

/* The default path, <dir>/umbra.sock in a private directory: <dir> is
 * $XDG_RUNTIME_DIR/umbra when XDG_RUNTIME_DIR is a directory of ours with
 * mode 0700, else ${TMPDIR:-/tmp}/umbra-<uid>. With create, a missing <dir>
 * is made (0700). <dir> must be a real directory (not a symlink), owned by
 * us, closed to group and others: otherwise another user may have made it
 * and UM_EACCES is returned with the reason in why. UM_ENOENT when missing
 * (and not create), UM_ENOSPC when out is too small. */
int um_control_default_path(char *out, size_t cap, bool create, char *why, size_t whylen);
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
/* Closes the listener, removes the socket file; memory freed on close. */
void um_control_stop(um_control_t *c);

#endif
