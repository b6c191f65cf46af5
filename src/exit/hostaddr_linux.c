/* rtnetlink (rtnetlink(7)): a socket bound to the IPv4 and IPv6 interface
 * address groups gets RTM_NEWADDR/RTM_DELADDR on every change. We only need
 * to know that something changed: the messages are read and dropped. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exit/hostaddr_os.h"
#include "util/err.h"

int um_hostaddr_os_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return UM_EIO;
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return UM_EIO;
    }
    return fd;
}

bool um_hostaddr_os_drain(int fd)
{
    char buf[8192];
    bool any = false;
    for (int i = 0; i < 64; i++) { /* bounded: the caller re-reads anyway */
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0) {
            any = true;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        /* ENOBUFS: notifications were lost, so assume a change. */
        if (r < 0 && errno == ENOBUFS) any = true;
        break;
    }
    return any;
}

void um_hostaddr_os_close(int fd)
{
    if (fd >= 0) close(fd);
}
