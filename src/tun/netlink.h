/* A minimal rtnetlink client shared by the TUN device (addresses) and the
 * routes: build a request with attributes, send it, wait (bounded) for the
 * kernel's answer. Linux only; blocking, used at start-up and shutdown. */
#ifndef UM_TUN_NETLINK_H
#define UM_TUN_NETLINK_H

#include <linux/netlink.h>
#include <stddef.h>

/* errno → UM_E* (EPERM/EACCES → UM_EACCES, ENOENT/ENODEV/ESRCH → UM_ENOENT,
 * EEXIST → UM_EEXIST, EAGAIN, EINVAL; else -errno). */
int um_nl_errno(int e);
/* Appends attribute (type, data[len]) to the message in a buffer of cap bytes.
 * UM_ENOSPC (nothing appended) when it does not fit. */
int um_nl_add_attr(struct nlmsghdr *nh, size_t cap, unsigned short type, const void *data,
                   size_t len);
/* Sends nh and waits up to 2 s for its answer. An NLMSG_ERROR answer gives 0
 * (an acknowledgement) or its error; a message of type want (when want != 0)
 * is handed to on_msg, whose result is returned. */
int um_nl_talk(struct nlmsghdr *nh, unsigned short want,
               int (*on_msg)(const struct nlmsghdr *h, void *arg), void *arg);

#endif
