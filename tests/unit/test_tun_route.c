/* Routes through rtnetlink (src/tun/route.h), in a private network namespace
 * this test creates (root only: CAP_NET_ADMIN + CAP_SYS_ADMIN; skipped
 * otherwise). A TUN device serves as the interface routes point at. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/rtnetlink.h>

#include "tun/route.h"
#include "tun/tundev.h"
#include "util/err.h"

static int g_skip;

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "skip: not root (needs CAP_NET_ADMIN and a network namespace)\n");
        g_skip = 1;
    } else if (access("/dev/net/tun", R_OK | W_OK) != 0) {
        fprintf(stderr, "skip: no /dev/net/tun\n");
        g_skip = 1;
    } else if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "skip: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        g_skip = 1;
    }
    return 0;
}

static um_addr_t ip(const char *s)
{
    um_addr_t a;
    char err[64];
    assert_int_equal(um_addr_parse_host(&a, s, strlen(s), err, sizeof(err)), 0);
    return a;
}

static void dev_up(um_tundev_t *d, const char *addr, unsigned prefix)
{
    assert_int_equal(um_tundev_open(d, NULL), 0);
    um_addr_t a = ip(addr);
    assert_int_equal(um_tundev_add_addr(d, &a, prefix), 0);
    assert_int_equal(um_tundev_up(d), 0);
}

static void test_get_add_del_v4(void **state)
{
    (void)state;
    if (g_skip) skip();
    um_tundev_t d;
    dev_up(&d, "10.77.0.1", 24);
    um_route_t r;
    um_addr_t far = ip("10.99.9.9");
    /* No default route in a fresh namespace. */
    assert_int_not_equal(um_route_get(&far, &r), 0);
    /* The connected prefix: through the device, no gateway. */
    um_addr_t near = ip("10.77.0.5");
    assert_int_equal(um_route_get(&near, &r), 0);
    assert_int_equal(r.oif, d.ifindex);
    assert_false(r.has_gw);
    assert_int_equal(r.type, RTN_UNICAST);
    /* A host route via a gateway, then as the kernel reports it. */
    um_route_t h = {
        .dst = far, .prefix = 32, .gw = ip("10.77.0.2"), .has_gw = true, .oif = d.ifindex};
    assert_int_equal(um_route_add(&h), 0);
    assert_int_equal(um_route_add(&h), UM_EEXIST);
    assert_int_equal(um_route_get(&far, &r), 0);
    assert_true(r.has_gw);
    assert_memory_equal(r.gw.u.v4, h.gw.u.v4, 4);
    assert_int_equal(r.oif, d.ifindex);
    /* Halves of the address space via the device (no gateway). */
    um_route_t half = {.dst = ip("0.0.0.0"), .prefix = 1, .oif = d.ifindex};
    assert_int_equal(um_route_add(&half), 0);
    um_addr_t other = ip("20.0.0.1");
    assert_int_equal(um_route_get(&other, &r), 0);
    assert_int_equal(r.oif, d.ifindex);
    um_addr_t upper = ip("200.0.0.1");
    assert_int_not_equal(um_route_get(&upper, &r), 0);
    char buf[128];
    assert_string_equal(um_route_format(&h, buf, sizeof(buf)), "10.99.9.9/32 via 10.77.0.2 dev #2");
    /* Delete: gone. */
    assert_int_equal(um_route_del(&h), 0);
    assert_int_equal(um_route_del(&half), 0);
    assert_int_not_equal(um_route_get(&far, &r), 0);
    assert_int_not_equal(um_route_get(&other, &r), 0);
    assert_int_not_equal(um_route_del(&h), 0);
    /* Routes through a device vanish with it (what SIGKILL relies on). */
    assert_int_equal(um_route_add(&half), 0);
    um_tundev_close(&d);
    usleep(100 * 1000);
    assert_int_not_equal(um_route_get(&other, &r), 0);
}

static void test_v6(void **state)
{
    (void)state;
    if (g_skip) skip();
    um_tundev_t d;
    dev_up(&d, "fd00:77::1", 64);
    um_route_t half = {.dst = ip("::"), .prefix = 1, .oif = d.ifindex};
    assert_int_equal(um_route_add(&half), 0);
    um_addr_t a = ip("2001:db8::1");
    um_route_t r;
    assert_int_equal(um_route_get(&a, &r), 0);
    assert_int_equal(r.oif, d.ifindex);
    um_route_t h = {.dst = ip("2001:db8::99"),
                    .prefix = 128,
                    .gw = ip("fd00:77::2"),
                    .has_gw = true,
                    .oif = d.ifindex};
    assert_int_equal(um_route_add(&h), 0);
    assert_int_equal(um_route_get(&h.dst, &r), 0);
    assert_true(r.has_gw);
    assert_memory_equal(r.gw.u.v6, h.gw.u.v6, 16);
    assert_int_equal(um_route_del(&h), 0);
    assert_int_equal(um_route_del(&half), 0);
    um_tundev_close(&d);
}

static void test_bad_args(void **state)
{
    (void)state;
    um_route_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(um_route_add(&r), UM_EINVAL); /* no family */
    r.dst = ip("10.0.0.0");
    r.prefix = 33;
    r.oif = 1;
    assert_int_equal(um_route_add(&r), UM_EINVAL);
    r.prefix = 8;
    r.oif = 0;
    assert_int_equal(um_route_add(&r), UM_EINVAL); /* neither gateway nor device */
    r.gw = ip("::1");
    r.has_gw = true;
    assert_int_equal(um_route_add(&r), UM_EINVAL); /* families differ */
    assert_int_equal(um_route_get(NULL, &r), UM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_get_add_del_v4),
        cmocka_unit_test(test_v6),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
