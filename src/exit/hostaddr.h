/* The host's own addresses, kept current in an egress policy
 * (um_policy_set_host): read with getifaddrs(3) at start and again
 * whenever they change. On Linux an rtnetlink socket subscribed to
 * RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR, watched with uv_poll, says when;
 * where that socket cannot be opened, a re-read every 30 s. */
#ifndef UM_EXIT_HOSTADDR_H
#define UM_EXIT_HOSTADDR_H

#include <uv.h>

#include "exit/policy.h"

typedef struct um_hostaddr um_hostaddr_t;

/* policy is borrowed and must outlive the watcher. Fails (UM_EIO, UM_ENOMEM)
 * when the first read fails: the policy would not know the host. */
int um_hostaddr_new(uv_loop_t *loop, um_policy_t *policy, um_hostaddr_t **out);
/* Memory is released in the close callbacks. NULL is a no-op. */
void um_hostaddr_free(um_hostaddr_t *h);
/* Reads the addresses again now; 0 or an error (the old set then stays). */
int um_hostaddr_refresh(um_hostaddr_t *h);

#endif
