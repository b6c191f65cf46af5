#include "tun/netlink.h"

#include <errno.h>
#include <stdint.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/err.h"

int um_nl_errno(int e)
{
    switch (e) {
    case EPERM:
    case EACCES: return UM_EACCES;
    case ENOENT:
    case ENODEV:
    case ESRCH: return UM_ENOENT;
    case EEXIST: return UM_EEXIST;
    case EAGAIN: return UM_EAGAIN;
    case EINVAL: return UM_EINVAL;
    default: return -e;
    }
}

int um_nl_add_attr(struct nlmsghdr *nh, size_t cap, unsigned short type, const void *data,
                   size_t len)
{
    size_t off = NLMSG_ALIGN(nh->nlmsg_len);
    if (off + RTA_SPACE(len) > cap) return UM_ENOSPC;
    struct rtattr *rta = (struct rtattr *)((char *)nh + off);
    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    nh->nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
    return 0;
}

int um_nl_talk(struct nlmsghdr *nh, unsigned short want,
               int (*on_msg)(const struct nlmsghdr *h, void *arg), void *arg)
{
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) return um_nl_errno(errno);
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    int r = UM_EPROTO;
    nh->nlmsg_seq = 1;
    if (sendto(s, nh, nh->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = um_nl_errno(errno);
        goto out;
    }
    union {
        struct nlmsghdr h;
        char buf[8192];
    } resp;
    for (int tries = 0; tries < 16; tries++) {
        ssize_t n = recv(s, resp.buf, sizeof(resp.buf), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            r = um_nl_errno(errno);
            goto out;
        }
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = &resp.h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != nh->nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) goto out;
                const struct nlmsgerr *e = NLMSG_DATA(h);
                r = e->error ? um_nl_errno(-e->error) : 0;
                goto out;
            }
            if (want && h->nlmsg_type == want && on_msg) {
                r = on_msg(h, arg);
                goto out;
            }
        }
    }
out:
    close(s);
    return r;
}
