/* libFuzzer target for src/util/addr.c: um_addr_parse (with and without a
 * default port), um_addr_parse_host and um_cidr_parse over arbitrary bytes.
 * Properties checked on every accepted input (abort on violation):
 *   - the parsed value is well-formed (type, port, domain rules, prefix bits,
 *     host bits clear);
 *   - format -> parse gives an equal value, and format is a fixed point
 *     (formatting the re-parsed value gives the same text);
 *   - IP addresses survive a sockaddr round trip; a prefix matches itself.
 * On refusal the reason must be a non-empty single line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"
#include "util/err.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static void check_reason(int r, const char *err)
{
    CHECK(r == UM_EINVAL);
    CHECK(err[0] != '\0');
    CHECK(strchr(err, '\n') == NULL);
}

static void check_addr(const um_addr_t *a, int need_port)
{
    char buf[UM_ADDR_STRLEN], buf2[UM_ADDR_STRLEN], err[128];
    CHECK(a->type == UM_ADDR_IPV4 || a->type == UM_ADDR_IPV6 || a->type == UM_ADDR_DOMAIN);
    if (need_port) CHECK(a->port != 0);
    if (a->type == UM_ADDR_DOMAIN) {
        CHECK(a->domain_len > 0 && a->domain_len <= UM_DOMAIN_MAX);
        CHECK(strlen(a->u.domain) == a->domain_len);
        CHECK(um_domain_valid(a->u.domain, a->domain_len));
        CHECK(a->u.domain[a->domain_len - 1] != '.');
    }
    if (!need_port) return;

    size_t w = um_addr_format(a, buf, sizeof(buf));
    CHECK(w > 0 && w < sizeof(buf) && strlen(buf) == w);
    um_addr_t b;
    err[0] = '\0';
    int r = um_addr_parse(&b, buf, w, 0, err, sizeof(err));
    CHECK(r == 0);
    CHECK(um_addr_equal(a, &b) && um_addr_equal(&b, a));
    size_t w2 = um_addr_format(&b, buf2, sizeof(buf2));
    CHECK(w2 == w && memcmp(buf, buf2, w) == 0);
    /* a default port never overrides an explicit one */
    CHECK(um_addr_parse(&b, buf, w, 1, NULL, 0) == 0 && um_addr_equal(a, &b));

    if (a->type != UM_ADDR_DOMAIN) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        CHECK(um_addr_to_sockaddr(a, &ss, &len) == 0 && len > 0);
        CHECK(um_addr_from_sockaddr(&b, (const struct sockaddr *)&ss) == 0);
        CHECK(um_addr_equal(a, &b));
    } else {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        CHECK(um_addr_to_sockaddr(a, &ss, &len) == UM_EINVAL);
    }
}

static void check_cidr(const um_cidr_t *c)
{
    unsigned max = c->family == UM_ADDR_IPV4 ? 32 : 128;
    CHECK(c->family == UM_ADDR_IPV4 || c->family == UM_ADDR_IPV6);
    CHECK(c->bits <= max);
    for (unsigned i = c->bits; i < 128; i++)
        CHECK((c->addr[i / 8] & (0x80u >> (i % 8))) == 0);

    char buf[64], buf2[64];
    size_t w = um_cidr_format(c, buf, sizeof(buf));
    CHECK(w > 0 && w < sizeof(buf) && strlen(buf) == w);
    um_cidr_t d;
    CHECK(um_cidr_parse(&d, buf, w, NULL, 0) == 0);
    CHECK(memcmp(c, &d, sizeof(d)) == 0);
    CHECK(um_cidr_format(&d, buf2, sizeof(buf2)) == w && memcmp(buf, buf2, w) == 0);

    um_addr_t a;
    memset(&a, 0, sizeof(a));
    a.type = c->family;
    memcpy(c->family == UM_ADDR_IPV4 ? a.u.v4 : a.u.v6, c->addr, max / 8);
    CHECK(um_cidr_match(c, &a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    um_addr_t a;
    um_cidr_t c;
    char err[128];
    int r;

    err[0] = '\0';
    r = um_addr_parse(&a, s, size, 0, err, sizeof(err));
    if (r == 0)
        check_addr(&a, 1);
    else
        check_reason(r, err);

    /* With a default port every input that parsed without one still parses
     * the same way, and a few more (those without ":port") are accepted. */
    um_addr_t a2;
    err[0] = '\0';
    int r2 = um_addr_parse(&a2, s, size, 443, err, sizeof(err));
    if (r2 == 0) {
        check_addr(&a2, 1);
        if (r == 0) CHECK(um_addr_equal(&a, &a2));
    } else {
        check_reason(r2, err);
        CHECK(r != 0);
    }

    err[0] = '\0';
    r = um_addr_parse_host(&a, s, size, err, sizeof(err));
    if (r == 0)
        check_addr(&a, 0);
    else
        check_reason(r, err);

    err[0] = '\0';
    r = um_cidr_parse(&c, s, size, err, sizeof(err));
    if (r == 0)
        check_cidr(&c);
    else
        check_reason(r, err);
    return 0;
}
