/* VPN mode: device setup (see vpn_int.h): MTU, addresses, link up, the
 * routes into the tunnel with the server pins outside it and, with tun_dns,
 * host routes for the resolvers; and removing the routes again. */
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app/vpn_int.h"
#include "util/err.h"

/* ------------------------------------------------------------ routes */

static int add_route(um_vpn_t *v, const um_route_t *r, bool required)
{
    char b[128];
    int e = um_route_add(r);
    if (e == UM_EEXIST) {
        /* Someone else's (a leftover of a killed client, or the admin's): keep it. */
        UM_INFO("route %s already present; left as it is", um_route_format(r, b, sizeof(b)));
        return 0;
    }
    if (e != 0) {
        if (required)
            UM_ERR("cannot add route %s: %s", um_route_format(r, b, sizeof(b)), um_strerror(e));
        else
            UM_WARN("cannot add route %s: %s", um_route_format(r, b, sizeof(b)), um_strerror(e));
        return required ? e : 0;
    }
    UM_DEBUG("route added: %s", um_route_format(r, b, sizeof(b)));
    if (v->n_routes < MAX_ROUTES) v->routes[v->n_routes++] = *r;
    return 0;
}

void vpn_del_routes(um_vpn_t *v)
{
    char b[128];
    while (v->n_routes > 0) {
        um_route_t *r = &v->routes[--v->n_routes];
        int e = um_route_del(r);
        /* The /1 routes vanish with the device: ENOENT/ESRCH is fine. */
        if (e != 0 && e != UM_ENOENT && e != -ENODEV)
            UM_WARN("cannot remove route %s: %s", um_route_format(r, b, sizeof(b)), um_strerror(e));
        else
            UM_DEBUG("route removed: %s", um_route_format(r, b, sizeof(b)));
    }
}

static bool is_ip(const um_addr_t *a)
{
    return a->type == UM_ADDR_IPV4 || a->type == UM_ADDR_IPV6;
}

/* A host route for ip through the route that reaches it now, so that the
 * session itself never enters the TUN. */
static int pin_server(um_vpn_t *v, const um_addr_t *ip)
{
    um_route_t cur, r;
    char b[128];
    um_addr_t a = *ip;
    a.port = 0;
    int e = um_route_get(&a, &cur);
    if (e != 0) {
        UM_WARN(
            "no route to server address %s (%s): its host route is not pinned",
            um_route_format(&(um_route_t){.dst = a, .prefix = a.type == UM_ADDR_IPV4 ? 32 : 128}, b,
                            sizeof(b)),
            um_strerror(e));
        return 0;
    }
    if (cur.type != RTN_UNICAST || cur.oif == v->dev.ifindex) return 0; /* local, or ours */
    memset(&r, 0, sizeof(r));
    r.dst = a;
    r.prefix = a.type == UM_ADDR_IPV4 ? 32 : 128;
    r.gw = cur.gw;
    r.has_gw = cur.has_gw;
    r.oif = cur.oif;
    return add_route(v, &r, true);
}

/* Resolves every server address given by name (once, before any route
 * changes: afterwards the resolver itself would be behind the TUN). */
static int pin_servers(um_vpn_t *v)
{
    const um_config_t *cfg = v->cfg;
    for (size_t i = 0; i < cfg->n_servers; i++)
        for (size_t j = 0; j < cfg->servers[i].n_addrs; j++) {
            const um_addr_t *a = &cfg->servers[i].addrs[j];
            if (is_ip(a)) {
                int e = pin_server(v, a);
                if (e) return e;
                continue;
            }
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof(hints));
            hints.ai_socktype = SOCK_STREAM;
            if (getaddrinfo(a->u.domain, NULL, &hints, &res) != 0 || !res) {
                UM_WARN("cannot resolve server %s: its address is not pinned outside the TUN",
                        a->u.domain);
                continue;
            }
            int k = 0;
            for (struct addrinfo *ai = res; ai && k < 8; ai = ai->ai_next, k++) {
                um_addr_t ip;
                if (um_addr_from_sockaddr(&ip, ai->ai_addr) != 0) continue;
                int e = pin_server(v, &ip);
                if (e) {
                    freeaddrinfo(res);
                    return e;
                }
            }
            freeaddrinfo(res);
        }
    return 0;
}

static void set_cidr_addr(um_addr_t *a, const um_cidr_t *c)
{
    memset(a, 0, sizeof(*a));
    a->type = c->family;
    memcpy(a->u.v6, c->addr, c->family == UM_ADDR_IPV4 ? 4 : 16);
}

static bool is_server_ip(const um_vpn_t *v, const um_addr_t *ip)
{
    for (size_t i = 0; i < v->cfg->n_servers; i++)
        for (size_t j = 0; j < v->cfg->servers[i].n_addrs; j++) {
            const um_addr_t *a = &v->cfg->servers[i].addrs[j];
            if (a->type == ip->type &&
                !memcmp(a->u.v6, ip->u.v6, ip->type == UM_ADDR_IPV4 ? 4 : 16))
                return true;
        }
    return false;
}

/* The resolvers of /etc/resolv.conf get host routes through the TUN: one on
 * the local network (a more specific, connected route) would otherwise be
 * asked directly, and the names would leak there. */
static int route_resolvers(um_vpn_t *v, bool have6)
{
    FILE *fp = fopen("/etc/resolv.conf", "re");
    if (!fp) return 0;
    char line[256];
    int n = 0;
    while (n < 8 && fgets(line, sizeof(line), fp)) {
        char ipstr[INET6_ADDRSTRLEN + 1];
        if (sscanf(line, " nameserver %46s", ipstr) != 1) continue;
        char *pct = strchr(ipstr, '%');
        if (pct) *pct = 0;
        um_addr_t ip;
        memset(&ip, 0, sizeof(ip));
        if (inet_pton(AF_INET, ipstr, ip.u.v4) == 1)
            ip.type = UM_ADDR_IPV4;
        else if (inet_pton(AF_INET6, ipstr, ip.u.v6) == 1)
            ip.type = UM_ADDR_IPV6;
        else
            continue;
        if (ip.type == UM_ADDR_IPV6 && !have6) continue;
        um_route_t cur;
        if (um_route_get(&ip, &cur) == 0 && cur.type != RTN_UNICAST) continue; /* loopback */
        if (is_server_ip(v, &ip)) continue;
        um_route_t r;
        memset(&r, 0, sizeof(r));
        r.dst = ip;
        r.prefix = ip.type == UM_ADDR_IPV4 ? 32 : 128;
        r.oif = v->dev.ifindex;
        add_route(v, &r, false);
        n++;
        UM_INFO("resolver %s routed through the tunnel", ipstr);
    }
    fclose(fp);
    return 0;
}

/* Before the halves go in: the interface of the route to a documentation
 * address (198.51.100.1: the default route's), else of a server's. */
static void find_direct_dev(um_vpn_t *v)
{
    um_route_t cur;
    um_addr_t a;
    memset(&a, 0, sizeof(a));
    a.type = UM_ADDR_IPV4;
    inet_pton(AF_INET, "198.51.100.1", a.u.v4);
    int oif = 0;
    if (um_route_get(&a, &cur) == 0 && cur.type == RTN_UNICAST && cur.oif != v->dev.ifindex)
        oif = cur.oif;
    for (size_t i = 0; !oif && i < v->cfg->n_servers; i++)
        for (size_t j = 0; !oif && j < v->cfg->servers[i].n_addrs; j++) {
            a = v->cfg->servers[i].addrs[j];
            a.port = 0;
            if (is_ip(&a) && um_route_get(&a, &cur) == 0 && cur.type == RTN_UNICAST &&
                cur.oif != v->dev.ifindex)
                oif = cur.oif;
        }
    char name[IF_NAMESIZE];
    if (oif && if_indextoname((unsigned)oif, name))
        snprintf(v->direct_dev, sizeof(v->direct_dev), "%s", name);
}

int vpn_setup_device(um_vpn_t *v)
{
    const um_config_t *cfg = v->cfg;
    char b[128];
    int e;
    if ((e = um_tundev_set_mtu(&v->dev, cfg->tun_mtu)) != 0) {
        UM_ERR("tun %s: cannot set MTU %u: %s", v->dev.name, (unsigned)cfg->tun_mtu,
               um_strerror(e));
        return e;
    }
    um_addr_t a4, a6;
    set_cidr_addr(&a4, &cfg->tun_addr4);
    if ((e = um_tundev_add_addr(&v->dev, &a4, cfg->tun_addr4.bits)) != 0 && e != UM_EEXIST) {
        UM_ERR("tun %s: cannot add address %s: %s", v->dev.name,
               um_cidr_format(&cfg->tun_addr4, b, sizeof(b)) ? b : "?", um_strerror(e));
        return e;
    }
    bool have6 = false;
    if (cfg->has_tun_addr6) {
        set_cidr_addr(&a6, &cfg->tun_addr6);
        e = um_tundev_add_addr(&v->dev, &a6, cfg->tun_addr6.bits);
        if (e != 0 && e != UM_EEXIST)
            UM_WARN("tun %s: no IPv6 (%s): IPv6 traffic is not captured", v->dev.name,
                    um_strerror(e));
        else
            have6 = true;
    }
    if ((e = um_tundev_up(&v->dev)) != 0) {
        UM_ERR("tun %s: cannot bring it up: %s", v->dev.name, um_strerror(e));
        return e;
    }
    if (!cfg->tun_routes) return 0;
    /* 1. The servers stay on the routes that reach them now. */
    if ((e = pin_servers(v)) != 0) return e;
    /* 2. Resolvers on the local network go through the tunnel too. */
    if (cfg->tun_dns) route_resolvers(v, have6);
    /* Routing rules: the interface direct traffic leaves through. */
    find_direct_dev(v);
    /* 3. Everything else: two halves, more specific than any default route,
     * removed by the kernel with the device if we die. */
    static const char *const halves4[] = {"0.0.0.0", "128.0.0.0"};
    static const char *const halves6[] = {"::", "8000::"};
    for (int i = 0; i < 2; i++) {
        um_route_t r;
        memset(&r, 0, sizeof(r));
        r.dst.type = UM_ADDR_IPV4;
        inet_pton(AF_INET, halves4[i], r.dst.u.v4);
        r.prefix = 1;
        r.oif = v->dev.ifindex;
        if ((e = add_route(v, &r, true)) != 0) return e;
    }
    for (int i = 0; have6 && i < 2; i++) {
        um_route_t r;
        memset(&r, 0, sizeof(r));
        r.dst.type = UM_ADDR_IPV6;
        inet_pton(AF_INET6, halves6[i], r.dst.u.v6);
        r.prefix = 1;
        r.oif = v->dev.ifindex;
        add_route(v, &r, false);
    }
    return 0;
}
