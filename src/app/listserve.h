/* Serving and fetching signed server lists through the tunnel
 * (docs/PROTOCOL.md 10.3): the reserved destination list.umbra.internal:1. */
#ifndef UM_APP_LISTSERVE_H
#define UM_APP_LISTSERVE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tunnel/tunnel.h"
#include "util/addr.h"

#define UM_LIST_HOST "list.umbra.internal"
#define UM_LIST_PORT 1

/* Is dst the reserved list destination? */
bool um_list_dst_is(const um_addr_t *dst);
/* The reserved list destination. */
void um_list_dst(um_addr_t *dst);

/* Server: a stream opened to `dst`. When dst is the reserved destination,
 * answers it (the bytes of the file at `path`, then FIN; refused when path
 * is "" or the file cannot be read or is larger than 64 KiB) and returns
 * true; else returns false and does nothing (the caller dials). */
bool um_listserve_opened(uv_loop_t *loop, const char *path, um_tunnel_t *t, uint32_t id,
                         const um_addr_t *dst);
/* Server, at start: logs what the list file holds (a warning when it does
 * not parse or has expired). */
void um_listserve_check(const char *path);

#endif
