/* The client's local control socket, read by 'umbra status': a Unix stream
 * socket (mode 0600) that answers every connection with a text report and
 * closes. The report is produced by a callback at the moment of asking. */
#ifndef UM_APP_CONTROL_H
#define UM_APP_CONTROL_H

#include <stddef.h>
#include <uv.h>

typedef struct um_control um_control_t;
/* Writes at most cap bytes of report into out; returns the length. */
typedef size_t (*um_control_report_cb)(char *out, size_t cap, void *ud);

/* The default path: $XDG_RUNTIME_DIR/umbra.sock, else /tmp/umbra-<uid>.sock. */
void um_control_default_path(char *out, size_t cap);
/* Listens on path. A stale socket file (nobody answering) is replaced; a
 * live one is left alone (UM_EEXIST). */
int um_control_start(uv_loop_t *loop, const char *path, um_control_report_cb cb, void *ud,
                     um_control_t **out);
/* Closes the listener, removes the socket file; memory freed on close. */
void um_control_stop(um_control_t *c);

#endif
