/* The dns transport's config values (docs/CONFIG.md, "Transport dns"):
 * zone and resolver keys with their errors, a link with t=dns&zone=&resolver=
 * round trip (percent-encoded resolver) and its errors, the default
 * resolver from a resolv.conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "app/dns_cfg.h"
#include "app/link.h"
#include "util/err.h"

#define PRIV "qDTKbMVMMD6TD3m38UNYqAMiXCLzq3gebmSdFzi6Oh8="
#define SPUB "7Zlb6_JjeDRbmkyeVOGX4Hy-Xz8OeC44gI3YzFNkhRM"
#define CKEY "wMef0tDhAISkLnRzp_2SXKAGpRSgQuepdvX4Y6kKIGA"

static int parse(um_config_t *c, const char *text, char *err)
{
    um_config_init(c);
    int r = um_config_parse(c, "t.conf", text, strlen(text), err, UM_ERR_MAX);
    if (r == 0) r = um_config_validate(c, err, UM_ERR_MAX);
    return r;
}

static void t_config(void **state)
{
    (void)state;
    um_config_t c;
    char err[UM_ERR_MAX];
    assert_int_equal(parse(&c,
                           "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:53\ntransport = d\n"
                           "[transport \"d\"]\ntype = dns\nzone = T.Example.COM.\n",
                           err),
                     0);
    const um_transport_cfg_t *t = um_config_transport(&c, "d");
    assert_non_null(t);
    assert_int_equal(t->type, UM_TR_DNS);
    assert_string_equal(t->zone, "t.example.com");
    um_config_free(&c);
    assert_int_not_equal(parse(&c,
                               "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:53\n"
                               "[transport \"d\"]\ntype = dns\n",
                               err),
                         0);
    assert_non_null(strstr(err, "missing key 'zone'"));
    um_config_free(&c);
    assert_int_not_equal(parse(&c,
                               "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:53\n"
                               "[transport \"d\"]\ntype = tcp\nzone = t.example.com\n",
                               err),
                         0);
    assert_non_null(strstr(err, "t.conf:6: key 'zone' is for the dns transport"));
    um_config_free(&c);
    assert_int_not_equal(parse(&c,
                               "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:53\n"
                               "[transport \"d\"]\ntype = dns\nzone = t.example.com\n"
                               "resolver = dns.example:53\n",
                               err),
                         0);
    assert_non_null(strstr(err, "key 'resolver': 'dns.example:53'"));
    um_config_free(&c);
    assert_int_not_equal(parse(&c,
                               "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:53\n"
                               "[transport \"d\"]\ntype = dns\nzone = bad..zone\n",
                               err),
                         0);
    assert_non_null(strstr(err, "key 'zone': 'bad..zone'"));
    um_config_free(&c);
    assert_int_not_equal(parse(&c,
                               "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:53\n"
                               "[transport \"d\"]\ntype = udp\n",
                               err),
                         0);
    assert_non_null(strstr(err, "expected tcp, tls, ws or dns"));
    um_config_free(&c);
}

static void t_resolver(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    bool dot;
    assert_int_equal(um_dns_resolver_parse("192.0.2.53", &ss, &dot), 0);
    assert_false(dot);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 53);
    assert_int_equal(um_dns_resolver_parse("tls://192.0.2.53", &ss, &dot), 0);
    assert_true(dot);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 853);
    assert_int_equal(um_dns_resolver_parse("[2001:db8::1]:5353", &ss, &dot), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 5353);
    assert_int_equal(um_dns_resolver_parse("2001:db8::1", &ss, &dot), 0);
    assert_int_equal(um_dns_resolver_parse("192.0.2.53:0", &ss, &dot), UM_EINVAL);
    assert_int_equal(um_dns_resolver_parse("192.0.2.53:x", &ss, &dot), UM_EINVAL);
    assert_int_equal(um_dns_resolver_parse("resolver.example", &ss, &dot), UM_EINVAL);
    char path[] = "/tmp/umbra-resolv-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *rc = "# comment\nsearch example\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\n";
    assert_int_equal(write(fd, rc, strlen(rc)), (ssize_t)strlen(rc));
    close(fd);
    assert_int_equal(um_dns_resolver_default(path, &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    unlink(path);
}

static void t_link(void **state)
{
    (void)state;
    um_link_t l;
    char err[256], out[UM_LINK_MAX + 1];
    const char *s = "umbra://" SPUB "@192.0.2.7:53?k=" CKEY
                    "&t=dns&zone=t.example.com&resolver=tls%3A%2F%2F192.0.2.53%3A853#lap";
    assert_int_equal(um_link_decode(&l, s, strlen(s), err, sizeof(err)), 0);
    assert_int_equal(l.transport, UM_TR_DNS);
    assert_string_equal(l.zone, "t.example.com");
    assert_string_equal(l.resolver, "tls://192.0.2.53:853");
    assert_int_equal(um_link_encode(&l, out, sizeof(out)), 0);
    assert_string_equal(out, s); /* canonical */
    um_config_t c;
    um_config_init(&c);
    um_config_from_link(&c, &l);
    assert_int_equal(c.transports[0].type, UM_TR_DNS);
    assert_string_equal(c.transports[0].zone, "t.example.com");
    assert_string_equal(c.transports[0].resolver, "tls://192.0.2.53:853");
    um_config_free(&c);
    um_link_wipe(&l);
    const char *nozone = "umbra://" SPUB "@192.0.2.7:53?k=" CKEY "&t=dns";
    assert_int_not_equal(um_link_decode(&l, nozone, strlen(nozone), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "t=dns needs parameter 'zone'"));
    assert_null(strstr(err, CKEY));
    const char *tcpzone = "umbra://" SPUB "@192.0.2.7:53?k=" CKEY "&zone=t.example.com";
    assert_int_not_equal(um_link_decode(&l, tcpzone, strlen(tcpzone), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "parameter 'zone' needs t=dns"));
    const char *badres =
        "umbra://" SPUB "@192.0.2.7:53?k=" CKEY "&t=dns&zone=t.example.com&resolver=x";
    assert_int_not_equal(um_link_decode(&l, badres, strlen(badres), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "resolver 'x'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_config),
        cmocka_unit_test(t_resolver),
        cmocka_unit_test(t_link),
    };
    if (sodium_init() < 0) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
