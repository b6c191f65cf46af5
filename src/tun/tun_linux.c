/* TUN device on Linux (see tundev.h): /dev/net/tun with TUNSETIFF, interface
 * settings with SIOC*IF* ioctls, addresses with rtnetlink (RFC 3549; see
 * rtnetlink(7)). No external programs are run. */
#include "tun/tundev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tun/netlink.h"
#include "util/err.h"

/* An ioctl on a throwaway datagram socket (interface ioctls need one). */
static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return um_nl_errno(errno);
    int r = ioctl(s, req, ifr) < 0 ? um_nl_errno(errno) : 0;
    close(s);
    return r;
}

static int learn(um_tundev_t *d, const char *name)
{
    memset(d->name, 0, sizeof(d->name));
    strncpy(d->name, name, sizeof(d->name) - 1);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, d->name,
           sizeof(ifr.ifr_name) < sizeof(d->name) ? sizeof(ifr.ifr_name) : sizeof(d->name));
    int r = if_ioctl(SIOCGIFINDEX, &ifr);
    if (r) return r;
    d->ifindex = ifr.ifr_ifindex;
    return 0;
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return um_nl_errno(errno);
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return um_nl_errno(errno);
    return 0;
}

int um_tundev_open(um_tundev_t *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->fd = -1;
    if (name && strlen(name) >= IFNAMSIZ) return UM_EINVAL;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return um_nl_errno(errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (name && *name) memcpy(ifr.ifr_name, name, strlen(name));
    int r = 0;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) r = um_nl_errno(errno);
    if (!r) {
        char got[IFNAMSIZ + 1];
        memcpy(got, ifr.ifr_name, IFNAMSIZ);
        got[IFNAMSIZ] = 0;
        d->fd = fd;
        r = learn(d, got);
    }
    if (r) {
        close(fd);
        d->fd = -1;
    }
    return r;
}

int um_tundev_adopt(um_tundev_t *d, int fd)
{
    memset(d, 0, sizeof(*d));
    d->fd = -1;
    if (fd < 0) return UM_EINVAL;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(fd, TUNGETIFF, &ifr) < 0) return UM_EINVAL; /* not a tun/tap descriptor */
    char got[IFNAMSIZ + 1];
    memcpy(got, ifr.ifr_name, IFNAMSIZ);
    got[IFNAMSIZ] = 0;
    if (!(ifr.ifr_flags & IFF_TUN) || !(ifr.ifr_flags & IFF_NO_PI)) return UM_EINVAL;
    int r;
    if ((r = learn(d, got)) != 0) return r;
    if ((r = set_nonblock_cloexec(fd)) != 0) return r;
    d->fd = fd;
    return 0;
}

void um_tundev_close(um_tundev_t *d)
{
    if (d->fd >= 0) close(d->fd);
    d->fd = -1;
}

static void fill_ifr(const um_tundev_t *d, struct ifreq *ifr)
{
    memset(ifr, 0, sizeof(*ifr));
    memcpy(ifr->ifr_name, d->name, strnlen(d->name, IFNAMSIZ - 1));
}

int um_tundev_set_mtu(um_tundev_t *d, unsigned mtu)
{
    if (d->fd < 0 || mtu < 68 || mtu > 65535) return UM_EINVAL;
    struct ifreq ifr;
    fill_ifr(d, &ifr);
    ifr.ifr_mtu = (int)mtu;
    return if_ioctl(SIOCSIFMTU, &ifr);
}

int um_tundev_get_mtu(um_tundev_t *d, unsigned *mtu)
{
    if (d->fd < 0) return UM_EINVAL;
    struct ifreq ifr;
    fill_ifr(d, &ifr);
    int r = if_ioctl(SIOCGIFMTU, &ifr);
    if (!r) *mtu = (unsigned)ifr.ifr_mtu;
    return r;
}

int um_tundev_up(um_tundev_t *d)
{
    if (d->fd < 0) return UM_EINVAL;
    struct ifreq ifr;
    fill_ifr(d, &ifr);
    int r = if_ioctl(SIOCGIFFLAGS, &ifr);
    if (r) return r;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return if_ioctl(SIOCSIFFLAGS, &ifr);
}

int um_tundev_add_addr(um_tundev_t *d, const um_addr_t *ip, unsigned prefix_len)
{
    if (d->fd < 0 || !ip) return UM_EINVAL;
    bool v4 = ip->type == UM_ADDR_IPV4;
    if (!v4 && ip->type != UM_ADDR_IPV6) return UM_EINVAL;
    if (prefix_len > (v4 ? 32u : 128u)) return UM_EINVAL;
    union {
        struct nlmsghdr h;
        char buf[256];
    } req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.h.nlmsg_type = RTM_NEWADDR;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    struct ifaddrmsg *ifa = NLMSG_DATA(&req.h);
    ifa->ifa_family = v4 ? AF_INET : AF_INET6;
    ifa->ifa_prefixlen = (unsigned char)prefix_len;
    ifa->ifa_index = (unsigned)d->ifindex;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_flags = v4 ? 0 : IFA_F_NODAD;
    size_t alen = v4 ? 4 : 16;
    um_nl_add_attr(&req.h, sizeof(req), IFA_LOCAL, ip->u.v6, alen);
    um_nl_add_attr(&req.h, sizeof(req), IFA_ADDRESS, ip->u.v6, alen);
    return um_nl_talk(&req.h, 0, NULL, NULL);
}

ssize_t um_tundev_read(um_tundev_t *d, uint8_t *buf, size_t cap)
{
    if (d->fd < 0) return UM_EINVAL;
    for (;;) {
        ssize_t n = read(d->fd, buf, cap);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? UM_EAGAIN : um_nl_errno(errno);
    }
}

int um_tundev_write(um_tundev_t *d, const uint8_t *p, size_t n)
{
    if (d->fd < 0) return UM_EINVAL;
    for (;;) {
        ssize_t w = write(d->fd, p, n);
        if (w >= 0) return (size_t)w == n ? 0 : UM_EIO;
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? UM_EAGAIN : um_nl_errno(errno);
    }
}
