/* The TUN device: open and configure one through the kernel's own interfaces
 * (the /dev/net/tun ioctls, SIOC*IF* ioctls, rtnetlink), or adopt one a
 * parent process opened (as Android's VpnService hands over a descriptor).
 * Works in whatever network namespace the process runs in. Packets are raw
 * IP (IFF_TUN | IFF_NO_PI): exactly what um_tun_stack_input() takes.
 *
 * OS-specific: tun_linux.c implements this header. Routing is not done here;
 * the app layer owns routes and their restoration. */
#ifndef UM_TUN_TUNDEV_H
#define UM_TUN_TUNDEV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/addr.h"

#define UM_TUNDEV_NAME_MAX 16 /* IFNAMSIZ */

typedef struct {
    int fd; /* non-blocking, close-on-exec; -1 when closed */
    int ifindex;
    char name[UM_TUNDEV_NAME_MAX];
} um_tundev_t;

/* Creates (or attaches to) a TUN interface. name NULL or "" lets the kernel
 * choose ("tun%d"). UM_EACCES without CAP_NET_ADMIN, UM_ENOENT without
 * /dev/net/tun, UM_EINVAL for a name that does not fit. On failure d->fd is
 * -1. Caller closes with um_tundev_close(). */
int um_tundev_open(um_tundev_t *d, const char *name);
/* Takes ownership of fd, a TUN descriptor opened elsewhere: checks with
 * TUNGETIFF that it is a TUN device (not TAP) without a packet-information
 * prefix, makes it non-blocking and close-on-exec, and learns its name and
 * index. On failure fd is left open and otherwise untouched (still the
 * caller's). */
int um_tundev_adopt(um_tundev_t *d, int fd);
/* Closes the descriptor (a device this process created goes away with it).
 * Safe on a closed or zeroed-then-failed device. */
void um_tundev_close(um_tundev_t *d);

int um_tundev_set_mtu(um_tundev_t *d, unsigned mtu);
int um_tundev_get_mtu(um_tundev_t *d, unsigned *mtu);
/* Brings the interface up (IFF_UP). */
int um_tundev_up(um_tundev_t *d);
/* Adds ip/prefix_len to the interface (rtnetlink RTM_NEWADDR; IPv6
 * addresses skip duplicate address detection: nothing else is on a TUN
 * link). UM_EEXIST when it is already there. */
int um_tundev_add_addr(um_tundev_t *d, const um_addr_t *ip, unsigned prefix_len);

/* One packet: bytes read, UM_EAGAIN when none is waiting, or a negative
 * errno-style code. cap must be at least the MTU: the kernel truncates a
 * longer packet silently. */
ssize_t um_tundev_read(um_tundev_t *d, uint8_t *buf, size_t cap);
/* One packet (borrowed): 0, UM_EAGAIN (queue full: drop or retry), or an
 * error code. */
int um_tundev_write(um_tundev_t *d, const uint8_t *p, size_t n);

#endif
