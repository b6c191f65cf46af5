/* Egress policy: a table of addresses and their classes, allow rules, and the
 * embedded-IPv4 forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "exit/policy.h"
#include "util/err.h"

static um_addr_t ip(const char *s)
{
    um_addr_t a;
    assert_int_equal(um_addr_parse_host(&a, s, strlen(s), NULL, 0), 0);
    return a;
}

static void test_classify(void **state)
{
    static const struct {
        const char *ip;
        um_ip_class_t c;
    } t[] = {
        {"8.8.8.8", UM_IP_PUBLIC},
        {"1.1.1.1", UM_IP_PUBLIC},
        {"127.0.0.1", UM_IP_LOOPBACK},
        {"127.255.255.254", UM_IP_LOOPBACK},
        {"10.1.2.3", UM_IP_PRIVATE},
        {"172.16.0.1", UM_IP_PRIVATE},
        {"172.31.255.255", UM_IP_PRIVATE},
        {"172.32.0.1", UM_IP_PUBLIC},
        {"192.168.1.1", UM_IP_PRIVATE},
        {"169.254.1.1", UM_IP_LINKLOCAL},
        {"169.254.169.254", UM_IP_METADATA},
        {"100.100.100.200", UM_IP_METADATA},
        {"100.64.0.1", UM_IP_CGNAT},
        {"100.127.255.255", UM_IP_CGNAT},
        {"100.128.0.1", UM_IP_PUBLIC},
        {"224.0.0.1", UM_IP_MULTICAST},
        {"239.255.255.250", UM_IP_MULTICAST},
        {"0.0.0.0", UM_IP_UNSPECIFIED},
        {"0.1.2.3", UM_IP_UNSPECIFIED},
        {"255.255.255.255", UM_IP_BROADCAST},
        {"240.0.0.1", UM_IP_RESERVED},
        {"192.0.2.10", UM_IP_DOCUMENTATION},
        {"198.51.100.1", UM_IP_DOCUMENTATION},
        {"203.0.113.9", UM_IP_DOCUMENTATION},
        {"198.18.0.1", UM_IP_RESERVED},
        {"2606:4700:4700::1111", UM_IP_PUBLIC},
        {"::1", UM_IP_LOOPBACK},
        {"::", UM_IP_UNSPECIFIED},
        {"fe80::1", UM_IP_LINKLOCAL},
        {"fc00::1", UM_IP_ULA},
        {"fd12:3456::1", UM_IP_ULA},
        {"fd00:ec2::254", UM_IP_METADATA},
        {"ff02::1", UM_IP_MULTICAST},
        {"2001:db8::1", UM_IP_DOCUMENTATION},
        {"3fff::1", UM_IP_DOCUMENTATION},
        {"::ffff:127.0.0.1", UM_IP_LOOPBACK},
        {"::ffff:169.254.169.254", UM_IP_METADATA},
        {"::ffff:8.8.8.8", UM_IP_PUBLIC},
        {"64:ff9b::10.0.0.1", UM_IP_PRIVATE},
        {"64:ff9b::7f00:1", UM_IP_LOOPBACK},
        {"64:ff9b::8.8.8.8", UM_IP_PUBLIC},
        {"2002:7f00:1::1", UM_IP_LOOPBACK},
        {"2002:a9fe:a9fe::", UM_IP_METADATA},
        {"2002:808:808::1", UM_IP_PUBLIC},
        {"::127.0.0.1", UM_IP_LOOPBACK},
        {"::8.8.8.8", UM_IP_RESERVED},
        {"2001::1", UM_IP_RESERVED},
        {"4000::1", UM_IP_RESERVED},
        {"fec0::1", UM_IP_PRIVATE},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        um_addr_t a = ip(t[i].ip);
        um_ip_class_t c = um_policy_classify(&a);
        if (c != t[i].c)
            fail_msg("%s: got %s, want %s", t[i].ip, um_ip_class_name(c), um_ip_class_name(t[i].c));
    }
    um_addr_t d;
    assert_int_equal(um_addr_parse_host(&d, "example.com", 11, NULL, 0), 0);
    assert_int_equal(um_policy_classify(&d), UM_IP_NOT_IP);
}

static void test_allow(void **state)
{
    um_policy_t p;
    um_policy_init(&p);
    um_addr_t a1 = ip("127.0.0.1"), a2 = ip("127.0.0.2"), pub = ip("9.9.9.9"),
              m = ip("::ffff:127.0.0.1");
    um_addr_t n64 = ip("64:ff9b::7f00:1"), v6l = ip("::1"), dom;
    assert_int_equal(um_addr_parse_host(&dom, "localhost", 9, NULL, 0), 0);
    /* Default: only public. */
    assert_int_equal(um_policy_check(&p, &pub, NULL), 0);
    assert_int_equal(um_policy_check(&p, &a1, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(NULL, &a1, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &dom, NULL), UM_EACCES); /* names must be resolved first */
    char err[96];
    assert_int_equal(um_policy_allow_str(&p, "127.0.0.1/32", err, sizeof(err)), 0);
    um_ip_class_t c;
    assert_int_equal(um_policy_check(&p, &a1, &c), 0);
    assert_int_equal(c, UM_IP_LOOPBACK);
    assert_int_equal(um_policy_check(&p, &a2, &c), UM_EACCES);
    assert_int_equal(c, UM_IP_LOOPBACK);
    assert_int_equal(um_policy_check(&p, &m, NULL), 0);   /* mapped form of an allowed address */
    assert_int_equal(um_policy_check(&p, &n64, NULL), 0); /* NAT64 form of it */
    assert_int_equal(um_policy_check(&p, &v6l, NULL), UM_EACCES);
    assert_int_equal(um_policy_allow_str(&p, "::1", err, sizeof(err)), 0);
    assert_int_equal(um_policy_check(&p, &v6l, NULL), 0);
    assert_int_equal(um_policy_allow_str(&p, "nonsense", err, sizeof(err)), UM_EINVAL);
    /* Allowing all of IPv6 does not open IPv4 through its embedded forms. */
    assert_int_equal(um_policy_allow_str(&p, "::/0", err, sizeof(err)), 0);
    um_addr_t m2 = ip("::ffff:127.0.0.2"), n2 = ip("64:ff9b::7f00:2"), s2 = ip("2002:7f00:2::1");
    assert_int_equal(um_policy_check(&p, &m2, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &n2, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &s2, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &m, NULL), 0);
    um_addr_t ula = ip("fd00::1");
    assert_int_equal(um_policy_check(&p, &ula, NULL), 0);
    um_policy_close(&p);
}

/* The host's own addresses: refused though public, by every embedded form,
 * unless an allow rule covers them; the set is replaced, not appended. */
static void test_host(void **state)
{
    um_policy_t p;
    um_policy_init(&p);
    um_addr_t h4 = ip("9.9.9.9"), h6 = ip("2a00:1450::1"), other = ip("9.9.9.10");
    um_addr_t m = ip("::ffff:9.9.9.9"), n64 = ip("64:ff9b::909:909"), s64 = ip("2002:909:909::1");
    um_addr_t dom, lo = ip("127.0.0.1");
    assert_int_equal(um_addr_parse_host(&dom, "example.org", 9, NULL, 0), 0);
    assert_int_equal(um_policy_check(&p, &h4, NULL), 0); /* not known yet */
    um_addr_t set[] = {h4, h6, dom, lo};
    set[0].port = 443; /* ports play no part */
    assert_int_equal(um_policy_set_host(&p, set, 4), 0);
    assert_int_equal(p.n_host, 3); /* the name is skipped */
    um_ip_class_t c;
    assert_int_equal(um_policy_check(&p, &h4, &c), UM_EACCES);
    assert_int_equal(c, UM_IP_HOST);
    assert_string_equal(um_ip_class_name(c), "this host's own address");
    assert_int_equal(um_policy_check(&p, &h6, &c), UM_EACCES);
    assert_int_equal(c, UM_IP_HOST);
    assert_int_equal(um_policy_check(&p, &m, &c), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &n64, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &s64, NULL), UM_EACCES);
    assert_int_equal(um_policy_check(&p, &other, NULL), 0);
    assert_int_equal(um_policy_check(&p, &lo, &c), UM_EACCES);
    assert_int_equal(c, UM_IP_LOOPBACK); /* the more specific class is kept */
    assert_true(um_policy_is_host(&p, &h4));
    assert_false(um_policy_is_host(&p, &dom));
    assert_false(um_policy_is_host(NULL, &h4));
    assert_int_equal(um_policy_check(NULL, &h4, NULL), 0); /* no policy, no host set */
    /* A host address stored in mapped form matches its IPv4 address. */
    um_addr_t set2[] = {ip("::ffff:9.9.9.10")};
    assert_int_equal(um_policy_set_host(&p, set2, 1), 0);
    assert_int_equal(um_policy_check(&p, &other, &c), UM_EACCES);
    assert_int_equal(c, UM_IP_HOST);
    assert_int_equal(um_policy_check(&p, &h4, NULL), 0); /* replaced, no longer ours */
    /* An allow rule permits an own address, like any refused class. */
    assert_int_equal(um_policy_allow_str(&p, "9.9.9.10/32", NULL, 0), 0);
    assert_int_equal(um_policy_check(&p, &other, NULL), 0);
    assert_int_equal(um_policy_set_host(&p, NULL, 0), 0);
    assert_int_equal(p.n_host, 0);
    um_policy_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
