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

#include "util/err.h"

static int errno_code(int e)
{
    switch (e) {
    case EPERM:
    case EACCES: return UM_EACCES;
    case ENOENT:
    case ENODEV: return UM_ENOENT;
    case EEXIST: return UM_EEXIST;
    case EAGAIN: return UM_EAGAIN;
    case EINVAL: return UM_EINVAL;
    default: return -e;
    }
}

/* An ioctl on a throwaway datagram socket (interface ioctls need one). */
static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno_code(errno);
    int r = ioctl(s, req, ifr) < 0 ? errno_code(errno) : 0;
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
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return errno_code(errno);
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return errno_code(errno);
    return 0;
}

int um_tundev_open(um_tundev_t *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->fd = -1;
    if (name && strlen(name) >= IFNAMSIZ) return UM_EINVAL;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (name && *name) memcpy(ifr.ifr_name, name, strlen(name));
    int r = 0;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) r = errno_code(errno);
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

static void add_attr(struct nlmsghdr *nh, size_t cap, unsigned short type, const void *data,
                     size_t len)
{
    size_t off = NLMSG_ALIGN(nh->nlmsg_len);
    struct rtattr *rta = (struct rtattr *)((char *)nh + off);
    if (off + RTA_SPACE(len) > cap) return; /* cannot happen with our fixed sizes */
    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    nh->nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
}

/* Sends one request and waits for its acknowledgement. */
static int nl_request(struct nlmsghdr *nh)
{
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) return errno_code(errno);
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    int r = 0;
    nh->nlmsg_seq = 1;
    if (sendto(s, nh, nh->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = errno_code(errno);
        goto out;
    }
    /* The answer to a request with NLM_F_ACK is one NLMSG_ERROR message. */
    union {
        struct nlmsghdr h;
        char buf[4096];
    } resp;
    for (int tries = 0; tries < 16; tries++) {
        ssize_t n = recv(s, resp.buf, sizeof(resp.buf), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            r = errno_code(errno);
            goto out;
        }
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = &resp.h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != nh->nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
                    r = UM_EPROTO;
                    goto out;
                }
                const struct nlmsgerr *e = NLMSG_DATA(h);
                r = e->error ? errno_code(-e->error) : 0;
                goto out;
            }
        }
    }
    r = UM_EPROTO;
out:
    close(s);
    return r;
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
    add_attr(&req.h, sizeof(req), IFA_LOCAL, ip->u.v6, alen);
    add_attr(&req.h, sizeof(req), IFA_ADDRESS, ip->u.v6, alen);
    return nl_request(&req.h);
}

ssize_t um_tundev_read(um_tundev_t *d, uint8_t *buf, size_t cap)
{
    if (d->fd < 0) return UM_EINVAL;
    for (;;) {
        ssize_t n = read(d->fd, buf, cap);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? UM_EAGAIN : errno_code(errno);
    }
}

int um_tundev_write(um_tundev_t *d, const uint8_t *p, size_t n)
{
    if (d->fd < 0) return UM_EINVAL;
    for (;;) {
        ssize_t w = write(d->fd, p, n);
        if (w >= 0) return (size_t)w == n ? 0 : UM_EIO;
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? UM_EAGAIN : errno_code(errno);
    }
}
