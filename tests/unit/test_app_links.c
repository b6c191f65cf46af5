/* Several share links for one client (um_config_add_link): one [server]
 * section each, with its own transport, names from #name or the address,
 * and one client key for all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "app/config.h"
#include "app/link.h"
#include "util/err.h"

static void mk(um_link_t *l, const uint8_t ckey[32], const char *addr, const char *name,
               uint8_t transport)
{
    char err[128];
    memset(l, 0, sizeof(*l));
    randombytes_buf(l->server_public_key, 32);
    memcpy(l->client_private_key, ckey, 32);
    assert_int_equal(um_addr_parse(&l->addrs[0], addr, strlen(addr), 0, err, sizeof(err)), 0);
    l->n_addrs = 1;
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->transport = transport;
    if (transport == UM_TR_TLS) snprintf(l->sni, sizeof(l->sni), "www.example.com");
}

static void test_add_links(void **state)
{
    (void)state;
    uint8_t ck[32];
    randombytes_buf(ck, sizeof(ck));
    um_config_t c;
    um_link_t a, b, d, e;
    char err[256];
    um_config_init(&c);
    mk(&a, ck, "192.0.2.1:443", "first", UM_TR_TCP);
    mk(&b, ck, "[2001:db8::1]:8443", "", UM_TR_TLS);
    mk(&d, ck, "192.0.2.3:443", "first", UM_TR_TCP);
    assert_int_equal(um_config_add_link(&c, &a, err, sizeof(err)), 0);
    assert_int_equal(um_config_add_link(&c, &b, err, sizeof(err)), 0);
    assert_int_equal(um_config_add_link(&c, &d, err, sizeof(err)), 0);
    assert_int_equal(c.n_servers, 3);
    assert_int_equal(c.n_transports, 3);
    assert_string_equal(c.servers[0].name, "first");
    assert_string_equal(c.servers[1].name, "2001-db8-1-8443");
    assert_string_equal(c.servers[2].name, "first-2");
    assert_memory_equal(c.servers[1].public_key, b.server_public_key, 32);
    assert_true(um_addr_equal(&c.servers[1].addrs[0], &b.addrs[0]));
    /* each its own transport, as its link says */
    const um_transport_cfg_t *t0 = um_config_transport(&c, c.servers[0].transport),
                             *t1 = um_config_transport(&c, c.servers[1].transport);
    assert_non_null(t0);
    assert_non_null(t1);
    assert_int_equal(t0->type, UM_TR_TCP);
    assert_int_equal(t1->type, UM_TR_TLS);
    assert_string_equal(t1->sni, "www.example.com");
    assert_string_not_equal(c.servers[0].transport, c.servers[1].transport);
    /* tls rotation defaults apply to the tls one only */
    assert_int_equal(c.servers[0].rotate_after_min_ms, 0);
    assert_int_equal(c.servers[1].rotate_after_min_ms, UM_TLS_ROTATE_AFTER_MIN);
    assert_int_equal(um_config_validate(&c, err, sizeof(err)), 0);
    /* another client key: refused, nothing added */
    uint8_t other[32];
    randombytes_buf(other, sizeof(other));
    mk(&e, other, "192.0.2.9:443", "x", UM_TR_TCP);
    assert_int_equal(um_config_add_link(&c, &e, err, sizeof(err)), UM_EINVAL);
    assert_non_null(strstr(err, "another client key"));
    assert_int_equal(c.n_servers, 3);
    um_config_free(&c);
}

static void test_add_links_bounded(void **state)
{
    (void)state;
    uint8_t ck[32];
    randombytes_buf(ck, sizeof(ck));
    um_config_t c;
    um_link_t l;
    char err[256];
    um_config_init(&c);
    size_t n = 0;
    int r = 0;
    for (int i = 0; i < 100 && r == 0; i++) {
        char a[32];
        snprintf(a, sizeof(a), "192.0.2.%d:443", i + 1);
        mk(&l, ck, a, "", UM_TR_TCP);
        r = um_config_add_link(&c, &l, err, sizeof(err));
        if (r == 0) n++;
    }
    assert_int_equal(r, UM_ENOSPC);
    assert_int_equal(n, UM_CFG_MAX_TRANSPORTS);
    assert_string_equal(c.servers[1].name, "192.0.2.2-443");
    um_config_free(&c);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_links),
        cmocka_unit_test(test_add_links_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
