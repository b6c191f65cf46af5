/* Routes on Linux through rtnetlink (see route.h). No external programs. */
#include "tun/route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tun/netlink.h"
#include "util/err.h"

#define NL_BUF 8192

typedef union {
    struct nlmsghdr h;
    char buf[512];
} nl_req_t;

static size_t alen(const um_addr_t *a)
{
    return a->type == UM_ADDR_IPV4 ? 4 : 16;
}

/* Reads one rtmsg answer into out (for RTM_GETROUTE). */
static int parse_route(const struct nlmsghdr *h, void *arg)
{
    um_route_t *out = arg;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg))) return UM_EPROTO;
    const struct rtmsg *rtm = NLMSG_DATA(h);
    size_t want = rtm->rtm_family == AF_INET ? 4 : 16;
    out->type = rtm->rtm_type;
    out->table = rtm->rtm_table;
    int left = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(struct rtmsg)));
    for (const struct rtattr *a = RTM_RTA(rtm); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        size_t n = RTA_PAYLOAD(a);
        if (a->rta_type == RTA_GATEWAY && n == want) {
            memset(&out->gw, 0, sizeof(out->gw));
            out->gw.type = want == 4 ? UM_ADDR_IPV4 : UM_ADDR_IPV6;
            memcpy(out->gw.u.v6, RTA_DATA(a), n);
            out->has_gw = true;
        } else if (a->rta_type == RTA_OIF && n == sizeof(int)) {
            memcpy(&out->oif, RTA_DATA(a), sizeof(int));
        } else if (a->rta_type == RTA_TABLE && n == sizeof(uint32_t)) {
            uint32_t t;
            memcpy(&t, RTA_DATA(a), sizeof(t));
            out->table = t;
        }
    }
    return 0;
}

static bool ip_ok(const um_addr_t *a)
{
    return a && (a->type == UM_ADDR_IPV4 || a->type == UM_ADDR_IPV6);
}

int um_route_get(const um_addr_t *ip, um_route_t *out)
{
    if (!ip_ok(ip) || !out) return UM_EINVAL;
    nl_req_t req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    struct rtmsg *rtm = NLMSG_DATA(&req.h);
    rtm->rtm_family = ip->type == UM_ADDR_IPV4 ? AF_INET : AF_INET6;
    rtm->rtm_dst_len = (unsigned char)(alen(ip) * 8);
    um_nl_add_attr(&req.h, sizeof(req), RTA_DST, ip->u.v6, alen(ip));
    memset(out, 0, sizeof(*out));
    out->dst = *ip;
    out->dst.port = 0;
    out->prefix = (unsigned)alen(ip) * 8;
    int r = um_nl_talk(&req.h, RTM_NEWROUTE, parse_route, out);
    if (r == -ENETUNREACH || r == -EHOSTUNREACH) r = UM_ENOENT;
    return r;
}

static int route_msg(const um_route_t *r, int type, int flags)
{
    if (!r || !ip_ok(&r->dst) || r->prefix > alen(&r->dst) * 8) return UM_EINVAL;
    if (r->has_gw && r->gw.type != r->dst.type) return UM_EINVAL;
    if (!r->has_gw && r->oif <= 0) return UM_EINVAL;
    nl_req_t req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.h.nlmsg_type = (unsigned short)type;
    req.h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
    struct rtmsg *rtm = NLMSG_DATA(&req.h);
    rtm->rtm_family = r->dst.type == UM_ADDR_IPV4 ? AF_INET : AF_INET6;
    rtm->rtm_dst_len = (unsigned char)r->prefix;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = r->has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    rtm->rtm_type = RTN_UNICAST;
    if (type == RTM_DELROUTE) rtm->rtm_scope = RT_SCOPE_NOWHERE;
    uint32_t table = r->table ? r->table : RT_TABLE_MAIN;
    if (table > 255) {
        rtm->rtm_table = RT_TABLE_UNSPEC;
        um_nl_add_attr(&req.h, sizeof(req), RTA_TABLE, &table, sizeof(table));
    } else {
        rtm->rtm_table = (unsigned char)table;
    }
    um_nl_add_attr(&req.h, sizeof(req), RTA_DST, r->dst.u.v6, alen(&r->dst));
    if (r->has_gw) um_nl_add_attr(&req.h, sizeof(req), RTA_GATEWAY, r->gw.u.v6, alen(&r->gw));
    if (r->oif > 0) um_nl_add_attr(&req.h, sizeof(req), RTA_OIF, &r->oif, sizeof(r->oif));
    return um_nl_talk(&req.h, 0, NULL, NULL);
}

int um_route_add(const um_route_t *r)
{
    return route_msg(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
}

int um_route_del(const um_route_t *r)
{
    return route_msg(r, RTM_DELROUTE, 0);
}

static void ip_str(const um_addr_t *a, char *buf, size_t n)
{
    if (!inet_ntop(a->type == UM_ADDR_IPV4 ? AF_INET : AF_INET6, a->u.v6, buf, (socklen_t)n))
        snprintf(buf, n, "?");
}

const char *um_route_format(const um_route_t *r, char *buf, size_t n)
{
    char d[INET6_ADDRSTRLEN], g[INET6_ADDRSTRLEN];
    ip_str(&r->dst, d, sizeof(d));
    if (r->has_gw) ip_str(&r->gw, g, sizeof(g));
    snprintf(buf, n, "%s/%u%s%s dev #%d", d, r->prefix, r->has_gw ? " via " : "",
             r->has_gw ? g : "", r->oif);
    return buf;
}
