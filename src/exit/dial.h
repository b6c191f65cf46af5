/* Outgoing TCP connections for the egress: resolve (src/exit/resolver.h),
 * check every address against the egress policy, then connect with happy
 * eyeballs (RFC 8305 style): families interleaved starting with IPv6, a new
 * attempt every 250 ms or as soon as one fails, the first success wins and the
 * others are cancelled; an overall timeout. */
#ifndef UM_EXIT_DIAL_H
#define UM_EXIT_DIAL_H

#include <stdint.h>
#include <uv.h>

#include "exit/policy.h"
#include "exit/resolver.h"
#include "proxy/conn.h" /* um_conn_result_t: the result codes are the tunnel's */
#include "util/addr.h"

/* A budget shared by many dials (the whole server, or one client): dials in
 * progress, and connection attempts in flight, each one a descriptor that a
 * black-holed address holds until the dial's timeout. */
typedef struct {
    uint32_t max_dials;      /* 0: no cap */
    uint32_t max_sockets;    /* 0: no cap */
    uint32_t dials, sockets; /* in use (maintained by the dials) */
} um_dial_quota_t;

typedef struct {
    uv_loop_t *loop;
    um_resolver_t *resolver;   /* borrowed */
    const um_policy_t *policy; /* borrowed; NULL refuses every non-public address */
    uint32_t timeout_ms;       /* whole dial, resolution included (0: 10000) */
    uint32_t stagger_ms;       /* 0: 250 */
    uint32_t max_attempts;     /* attempts of one dial in flight at once (0: 4) */
    um_dial_quota_t *quota[2]; /* borrowed, may be NULL: e.g. global and per client */
    const char *bind_device;   /* borrowed; non-empty: SO_BINDTODEVICE every socket */
} um_dialer_t;

/* SO_BINDTODEVICE on a libuv TCP or UDP handle's socket (it must exist:
 * uv_tcp_init_ex / after bind). 0 or UM_EIO. */
int um_dial_bind_device(uv_handle_t *h, const char *ifname);

typedef struct um_dial um_dial_t;

/* result: a um_conn_result_t. On UM_CONN_OK, tcp is a connected handle that
 * the callee now owns (heap-allocated; release it with um_dial_tcp_close);
 * its `data` field is free for the owner. Otherwise tcp is NULL. Never
 * called from inside um_dial_start. */
typedef void (*um_dial_cb)(void *arg, int result, uv_tcp_t *tcp);

/* dst: IP or domain with port (copied). *out (optional) is valid until the
 * callback or um_dial_cancel. Returns 0 or UM_EINVAL/UM_ENOMEM, or UM_EAGAIN
 * when a quota has no dial left (no callback then). An attempt that a quota
 * has no socket for waits (retried every stagger interval) until the
 * timeout. The quotas must outlive the dial until its callback or cancel. */
int um_dial_start(const um_dialer_t *d, const um_addr_t *dst, um_dial_cb cb, void *arg,
                  um_dial_t **out);
/* The callback will not be called. */
void um_dial_cancel(um_dial_t *dial);
/* uv_close + free for a handle returned by a dial. */
void um_dial_tcp_close(uv_tcp_t *tcp);

/* uv error code of a failed connect to a um_conn_result_t. */
int um_dial_result_from_uv(int uverr);

#endif
