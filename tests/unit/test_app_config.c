/* Config parser: valid files, and a table of mistakes that must each be
 * reported with the file, the line and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/config.h"
#include "crypto/keys.h"
#include "util/err.h"

#define PRIV "qDTKbMVMMD6TD3m38UNYqAMiXCLzq3gebmSdFzi6Oh8="
#define PUB1 "f3TIzWR2EStlQ7EU2DsJoUM9ljEJpN+h1n2hJcF1fT0="
#define PUB2 "7Zlb6/JjeDRbmkyeVOGX4Hy+Xz8OeC44gI3YzFNkhRM="

static int parse(um_config_t *c, const char *text, char *err)
{
    um_config_init(c);
    int r = um_config_parse(c, "t.conf", text, strlen(text), err, UM_ERR_MAX);
    if (r == 0) r = um_config_validate(c, err, UM_ERR_MAX);
    return r;
}

static void test_server_ok(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "[server]\n"
                       "private-key = " PRIV "\n"
                       "  listen = 0.0.0.0:443\n"
                       "listen = [::]:8443 ; inline comment\n"
                       "public-host = vps.example\n"
                       "allow = 127.0.0.0/8\n"
                       "allow = ::1/128\n"
                       "clock-skew = 60\r\n"
                       "fallback = 127.0.0.1:8080\n"
                       "transport = main\n"
                       "\n"
                       "[transport \"main\"]\n"
                       "type = tcp\n"
                       "shape = http\n"
                       "padding = none\n"
                       "[client \"laptop\"]\n"
                       "public-key = " PUB1 "\n"
                       "[client \"phone\"]\n"
                       "public-key = " PUB2 "\n"
                       "max-streams = 100\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    assert_int_equal(parse(&c, text, err), 0);
    assert_int_equal(c.role, UM_ROLE_SERVER);
    assert_true(c.has_private_key);
    assert_int_equal(c.n_listen, 2);
    assert_int_equal(c.listen[0].port, 443);
    assert_int_equal(c.listen[1].type, UM_ADDR_IPV6);
    assert_int_equal(c.n_allow, 2);
    assert_int_equal(c.clock_skew_s, 60);
    assert_true(c.has_fallback);
    assert_int_equal(c.n_clients, 2);
    assert_string_equal(c.clients[1].name, "phone");
    assert_int_equal(c.clients[1].max_streams, 100);
    assert_int_equal(c.clients[1].line, 19);
    const um_transport_cfg_t *t = um_config_transport(&c, "main");
    assert_non_null(t);
    assert_int_equal(t->shape, UM_SHAPE_HTTP);
    assert_int_equal(t->padding, UM_CFG_PAD_NONE);
    uint8_t k[32];
    assert_int_equal(um_key_from_b64(k, PUB2, strlen(PUB2)), 0);
    assert_memory_equal(c.clients[1].public_key, k, 32);
    um_config_free(&c);
    assert_null(c.clients);
}

static void test_tls_ok(void **state)
{
    (void)state;
    const char *text = "[server]\n"
                       "private-key = " PRIV "\n"
                       "listen = 0.0.0.0:443\n"
                       "transport = web\n"
                       "[transport \"web\"]\n"
                       "type = tls\n"
                       "cover = 127.0.0.1:8443\n"
                       "sni = WWW.Example.COM\n"
                       "fingerprint = firefox\n"
                       "timing = jitter\n"
                       "padding = none\n"
                       "[transport \"named\"]\n"
                       "type = tls\n"
                       "cover = cover.example:443\n"
                       "[transport \"plain\"]\n"
                       "type = tcp\n"
                       "shape = tls\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    if (parse(&c, text, err) != 0) fail_msg("%s", err);
    const um_transport_cfg_t *t = um_config_transport(&c, "web");
    assert_non_null(t);
    assert_int_equal(t->type, UM_TR_TLS);
    assert_true(t->has_cover);
    assert_int_equal(t->cover.type, UM_ADDR_IPV4);
    assert_int_equal(t->cover.port, 8443);
    assert_string_equal(t->sni, "www.example.com"); /* lower case, as browsers send it */
    assert_int_equal(t->fingerprint, UM_TLS_FP_FIREFOX);
    assert_int_equal(t->timing, UM_CFG_TIMING_JITTER);
    assert_int_equal(t->padding, UM_CFG_PAD_NONE);
    assert_int_equal(t->shape, UM_SHAPE_NONE);
    /* Defaults: sni from a named cover, chromium, no timing. */
    t = um_config_transport(&c, "named");
    assert_non_null(t);
    assert_string_equal(t->sni, "cover.example");
    assert_int_equal(t->cover.type, UM_ADDR_DOMAIN);
    assert_int_equal(t->cover.port, 443);
    assert_int_equal(t->fingerprint, UM_TLS_FP_CHROMIUM);
    assert_int_equal(t->timing, UM_CFG_TIMING_NONE);
    /* The tls shape of the tcp transport is still a shape. */
    t = um_config_transport(&c, "plain");
    assert_int_equal(t->type, UM_TR_TCP);
    assert_int_equal(t->shape, UM_SHAPE_TLS);
    assert_string_equal(t->sni, "");
    um_config_free(&c);

    /* A client's tls transport: sni alone is enough. */
    text = "[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = v.example:443\n"
           "public-key = " PUB1 "\ntransport = t\n[transport \"t\"]\ntype = tls\n"
           "sni = v.example\n";
    if (parse(&c, text, err) != 0) fail_msg("%s", err);
    t = um_config_transport(&c, "t");
    assert_int_equal(t->type, UM_TR_TLS);
    assert_false(t->has_cover);
    assert_string_equal(t->sni, "v.example");
    um_config_free(&c);
}

static void test_ws_ok(void **state)
{
    (void)state;
    const char *text = "[client]\n"
                       "private-key = " PRIV "\n"
                       "[server \"f\"]\n"
                       "address = 192.0.2.1:8443\n"
                       "public-key = " PUB1 "\n"
                       "transport = w\n"
                       "[transport \"w\"]\n"
                       "type = ws\n"
                       "path = /api/v2/stream\n"
                       "host = front.example:8443\n"
                       "sni = CDN.example\n"
                       "ca-file = /etc/umbra/front-ca.pem\n"
                       "header = X-Client: web\n"
                       "header = Origin: https://www.example.com\n"
                       "[transport \"plain\"]\n"
                       "tls = off\n"
                       "type = ws\n"
                       "path = /p\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    if (parse(&c, text, err) != 0) fail_msg("%s", err);
    const um_transport_cfg_t *w = um_config_transport(&c, "w"),
                             *p = um_config_transport(&c, "plain");
    assert_non_null(w);
    assert_int_equal(w->type, UM_TR_WS);
    assert_string_equal(w->ws_path, "/api/v2/stream");
    assert_string_equal(w->ws_host, "front.example:8443");
    assert_string_equal(w->sni, "cdn.example");
    assert_string_equal(w->ca_file, "/etc/umbra/front-ca.pem");
    assert_true(w->ws_tls); /* the default */
    assert_non_null(p);
    assert_false(p->ws_tls); /* set before type, kept */
    assert_int_equal(w->n_ws_headers, 2);
    assert_string_equal(w->ws_headers[0], "X-Client: web");
    assert_string_equal(w->ws_headers[1], "Origin: https://www.example.com");
    assert_int_equal(p->n_ws_headers, 0);
    assert_string_equal(um_tr_type_name(UM_TR_WS), "ws");
    um_config_free(&c);
}

static void test_sni_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a",         "example.com",  "www.Example.com",      "x-y.z9",
        "1.example", "example.123a", "xn--bcher-kva.example"};
    static const char *const nope[] = {"",        ".",     "a.",    ".a",  "a..b",    "-a.b",
                                       "a-.b",    "a.b-",  "a_b.c", "a b", "1.2.3.4", "10",
                                       "a.b.c.9", "[::1]", "::1",   "a/b", "a:443",   "\xc3\xa9.x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!um_sni_valid(good[i], strlen(good[i]))) fail_msg("rejected '%s'", good[i]);
    for (size_t i = 0; i < sizeof(nope) / sizeof(nope[0]); i++)
        if (um_sni_valid(nope[i], strlen(nope[i]))) fail_msg("accepted '%s'", nope[i]);
    char name[300];
    memset(name, 'a', 63);
    memcpy(name + 63, ".b", 3);
    assert_true(um_sni_valid(name, strlen(name)));
    name[63] = 'a'; /* a 64-character label */
    assert_false(um_sni_valid(name, 64));
    /* 253 characters in all: fine; 254: too long. */
    for (size_t i = 0; i < 253; i++)
        name[i] = (i % 2) ? '.' : 'a';
    name[253] = '\0';
    assert_true(um_sni_valid(name, 253));
    name[253] = 'a';
    name[254] = '\0';
    assert_false(um_sni_valid(name, 254));
}

static void test_client_ok(void **state)
{
    (void)state;
    const char *text = "[client]\n"
                       "private-key = " PRIV "\n"
                       "socks = 127.0.0.1:1080\n"
                       "http = [::1]:8118\n"
                       "forward = 2222:host.example:22\n"
                       "forward = 127.0.0.2:5353:[2001:db8::1]:53\n"
                       "events = -\n"
                       "[server \"vps\"]\n"
                       "address = vps.example:443\n"
                       "address = 192.0.2.1:443\n"
                       "public-key = " PUB1 "\n"
                       "weight = 3\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    assert_int_equal(parse(&c, text, err), 0);
    assert_int_equal(c.role, UM_ROLE_CLIENT);
    assert_true(c.has_socks);
    assert_true(c.has_http);
    assert_int_equal(c.n_forwards, 2);
    assert_int_equal(c.forwards[0].listen.port, 2222);
    assert_int_equal(c.forwards[0].target.type, UM_ADDR_DOMAIN);
    assert_int_equal(c.forwards[1].target.type, UM_ADDR_IPV6);
    assert_int_equal(c.forwards[1].target.port, 53);
    assert_int_equal(c.n_servers, 1);
    assert_int_equal(c.servers[0].n_addrs, 2);
    assert_int_equal(c.servers[0].weight, 3);
    um_config_free(&c);
}

/* Each bad file must fail, and the message must contain every fragment. */
static const struct {
    const char *text;
    const char *want[3];
} bad[] = {
    {"[server]\nprivate-key = " PRIV "\nlisen = 1.2.3.4:5\n", {"t.conf:3:", "unknown key 'lisen'"}},
    {"[server]\nlisten = 1.2.3.4:99999\n", {"t.conf:2:", "key 'listen'", "'1.2.3.4:99999'"}},
    {"[server]\nlisten = host.example:443\n", {"t.conf:2:", "key 'listen'", "IP address"}},
    {"[server]\nlisten = 1.2.3.4:443\n", {"t.conf:1:", "missing key 'private-key'"}},
    {"[server]\nprivate-key = " PRIV "\n", {"t.conf:1:", "missing key 'listen'"}},
    {"[server]\nprivate-key = notakey\nlisten = 1.2.3.4:1\n",
     {"t.conf:2:", "key 'private-key'", "value not shown"}},
    {"[server]\nprivate-key = " PRIV "\nprivate-key = " PRIV "\n",
     {"t.conf:3:", "duplicate key 'private-key'"}},
    {"[server]\nprivate-key = " PRIV "\nprivate-key-file = k\n",
     {"t.conf:3:", "already given at line 2"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client \"a b\"]\n",
     {"t.conf:4:", "may use only letters"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client laptop]\n",
     {"t.conf:4:", "name must be quoted"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client \"a/b\"]\n",
     {"t.conf:4:", "'a/b'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client \"x\"]\n",
     {"t.conf:4:", "[client \"x\"]", "missing key 'public-key'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client \"x\"]\npublic-key = " PUB1
     "\n[client \"x\"]\n",
     {"t.conf:6:", "duplicate section", "line 4"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client \"x\"]\npublic-key = " PUB1
     "\n[client \"y\"]\npublic-key = " PUB1 "\n",
     {"t.conf:6:", "same public-key"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client \"x\"]\npublic-key = abc\n",
     {"t.conf:5:", "key 'public-key'", "'abc'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nclock-skew = 0\n",
     {"t.conf:4:", "key 'clock-skew'", "from 1 to 3600"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nclock-skew = 12x\n",
     {"t.conf:4:", "'12x'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nallow = 10.0.0.0/40\n",
     {"t.conf:4:", "key 'allow'", "above 32"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nlisten = 1.2.3.4:1\n"
     "transport = nope\n",
     {"t.conf:5:", "no [transport \"nope\"]"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nclock-skew = 5\nclock-skew = 6\n",
     {"t.conf:5:", "duplicate key 'clock-skew'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\n[server \"v\"]\n",
     {"t.conf:5:", "duplicate section [server \"v\"]", "line 3"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\n[transport \"t\"]\n",
     {"t.conf:5:", "duplicate section [transport \"t\"]", "line 4"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[bogus]\n",
     {"t.conf:4:", "unknown section [bogus]"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport]\n",
     {"t.conf:4:", "needs a name"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\ntype = quic\n",
     {"t.conf:5:", "key 'type'", "expected tcp, tls, ws or dns"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = quic\n",
     {"t.conf:6:", "key 'type'", "'quic'"}},
    /* ws (docs/CONFIG.md, "Transport ws") */
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\n",
     {"t.conf:5:", "missing key 'path'"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\npath = nope\n",
     {"t.conf:7:", "key 'path'", "'nope'"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\npath = /a b\n",
     {"t.conf:7:", "key 'path'"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\npath = /x\ntls = maybe\n",
     {"t.conf:8:", "key 'tls'", "on or off"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\npath = /x\nhost = a/b\n",
     {"t.conf:8:", "key 'host'"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\npath = /x\nshape = http\n",
     {"t.conf:8:", "not for a ws transport"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tcp\npath = /x\n",
     {"t.conf:5:", "key 'path' goes with type = ws"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = a.example:443\nca-file = /x.pem\n",
     {"t.conf:5:", "key 'ca-file' goes with type = ws"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= ws\npath = /x\ncert-file = /c.pem\n",
     {"t.conf:8:", "key 'cert-file' needs key 'key-file'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= ws\npath = /x\nkey-file = /k.pem\n",
     {"t.conf:8:", "key 'key-file' needs key 'cert-file'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= ws\npath = /x\nheader = Host: evil.example\n",
     {"t.conf:8:", "key 'header'", "sets this field itself"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= ws\npath = /x\nheader = Sec-WebSocket-Protocol: x\n",
     {"t.conf:8:", "key 'header'", "sets this field itself"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= ws\npath = /x\nheader = Bad Name: x\n",
     {"t.conf:8:", "key 'header'", "not an HTTP token"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= ws\npath = /x\nheader = NoColon\n",
     {"t.conf:8:", "key 'header'", "no field name"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = ws\npath = /x\nheader = A: "
     "1\nheader = A: 2\nheader = A: 3\nheader = A: 4\nheader = A: 5\n"
     "header = A: 6\nheader = A: 7\nheader = A: 8\nheader = A: 9\n",
     {"t.conf:16:", "at most 8 extra header fields"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tcp\nheader = X: y\n",
     {"t.conf:5:", "key 'header' goes with type = ws"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tcp\ncert-file = /c.pem\nkey-file = /k.pem\n",
     {"t.conf:5:", "key 'cert-file' goes with type = ws"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = www.example.com\n",
     {"t.conf:7:", "key 'cover'", "'www.example.com'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = www.example.com:99999\n",
     {"t.conf:7:", "key 'cover'", "host:port"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\ncover = a..b:443\n",
     {"t.conf:7:", "key 'cover'", "'a..b:443'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = not_a_name\n",
     {"t.conf:8:", "key 'sni'", "DNS host name"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = -bad.example\n",
     {"t.conf:8:", "key 'sni'", "'-bad.example'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = bad-.example\n",
     {"t.conf:8:", "key 'sni'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = .example.com\n",
     {"t.conf:8:", "key 'sni'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = example.com.\n",
     {"t.conf:8:", "key 'sni'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = a..example\n",
     {"t.conf:8:", "key 'sni'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = 192.0.2.1\n",
     {"t.conf:8:", "key 'sni'", "'192.0.2.1'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype "
     "= tls\ncover = 127.0.0.1:8443\nsni = "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n",
     {"t.conf:8:", "key 'sni'"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\ncover = "
     "127.0.0.1:8443\nsni = example.com\nfingerprint = safari\n",
     {"t.conf:9:", "key 'fingerprint'", "chromium or firefox"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\ncover = "
     "127.0.0.1:8443\nsni = example.com\ntiming = random\n",
     {"t.conf:9:", "key 'timing'", "none or jitter"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\ncover = "
     "127.0.0.1:8443\nsni = example.com\nshape = http\n",
     {"t.conf:9:", "key 'shape'", "tcp transport"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\ntransport = t\n[transport "
     "\"t\"]\nshape = tls\ntype = tls\ncover = a.example:443\n",
     {"t.conf:6:", "key 'shape'", "tcp transport"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\ncover = 127.0.0.1:8443\n",
     {"t.conf:7:", "key 'sni' required when 'cover' is an IP address"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\ncover = [::1]:8443\n",
     {"t.conf:7:", "key 'sni' required when 'cover' is an IP address"}},
    {"[server]\nprivate-key = " PRIV
     "\nlisten = 1.2.3.4:1\ntransport = t\n[transport \"t\"]\ntype = tls\nsni = example.com\n",
     {"t.conf:5:", "[transport \"t\"]", "missing key 'cover'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\npublic-key = " PUB1
     "\ntransport = t\n[transport \"t\"]\ntype = tls\n",
     {"t.conf:7:", "[transport \"t\"]", "missing key 'sni'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nshape = weird\n",
     {"t.conf:5:", "key 'shape'", "'weird'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[client]\n",
     {"t.conf:4:", "either a server config"}},
    {"[server\nlisten = 1.2.3.4:1\n", {"t.conf:1:", "malformed section header"}},
    {"listen = 1.2.3.4:1\n", {"t.conf:1:", "outside any section"}},
    {"[server]\nthis line has no equals sign\n", {"t.conf:2:", "expected 'key = value'"}},
    {"# nothing\n", {"no [server] or [client] section"}},
    {"[client]\nprivate-key = " PRIV "\n", {"at least one [server \"name\"]"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\npublic-key = " PUB1 "\n",
     {"t.conf:3:", "missing key 'address'"}},
    {"[client]\nprivate-key = " PRIV "\nforward = 2222:host\n", {"t.conf:3:", "key 'forward'"}},
    {"[client]\nprivate-key = " PRIV "\nsocks = localhost:1080\n",
     {"t.conf:3:", "key 'socks'", "IP address"}},
    {"[client]\nprivate-key = " PRIV "\nsocks-user = u\n[server \"v\"]\naddress = a.b:1\n"
     "public-key = " PUB1 "\n",
     {"socks-user and socks-password go together"}},
    {"[client]\nprivate-key = " PRIV "\nlog-level = loud\n", {"t.conf:3:", "key 'log-level'"}},
    {"[client]\nprivate-key = " PRIV "\ntun = maybe\n", {"t.conf:3:", "key 'tun'", "on or off"}},
    {"[client]\nprivate-key = " PRIV "\ntun-name = this-name-is-too-long\n",
     {"t.conf:3:", "key 'tun-name'"}},
    {"[client]\nprivate-key = " PRIV "\ntun-address = 10.0.0.1\n",
     {"t.conf:3:", "key 'tun-address'", "with its prefix"}},
    {"[client]\nprivate-key = " PRIV "\ntun-address = fd00::1/64\n",
     {"t.conf:3:", "key 'tun-address'", "IPv4"}},
    {"[client]\nprivate-key = " PRIV "\ntun-address6 = 10.0.0.1/24\n",
     {"t.conf:3:", "key 'tun-address6'"}},
    {"[client]\nprivate-key = " PRIV "\ntun-mtu = 500\n", {"t.conf:3:", "key 'tun-mtu'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = 12q\n",
     {"t.conf:5:", "key 'rotate'", "'12q'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = 1k\n",
     {"t.conf:5:", "key 'rotate'", "from 4k to 1024m"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = 16k-12k\n",
     {"t.conf:5:", "key 'rotate'", "'16k-12k'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = 2000m\n",
     {"t.conf:5:", "key 'rotate'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = 12k-\n",
     {"t.conf:5:", "key 'rotate'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = -12k\n",
     {"t.conf:5:", "key 'rotate'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate = 12K\n",
     {"t.conf:5:", "key 'rotate'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate-after = 30x\n",
     {"t.conf:5:", "key 'rotate-after'", "'30x'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate-after = 500ms\n",
     {"t.conf:5:", "key 'rotate-after'", "from 1s to 24h"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate-after = 5m-30s\n",
     {"t.conf:5:", "key 'rotate-after'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nrotate-after = 25h\n",
     {"t.conf:5:", "key 'rotate-after'"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nmax-connections = 1\n",
     {"t.conf:5:", "key 'max-connections'", "from 2 to 64"}},
    {"[client]\nprivate-key = " PRIV "\n[server \"v\"]\naddress = a.b:1\nmax-connections = 65\n",
     {"t.conf:5:", "key 'max-connections'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nports = 40000\n",
     {"t.conf:5:", "key 'ports'", "'40000'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nports = 0-100\n",
     {"t.conf:5:", "key 'ports'", "LO-HI"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nports = 400-300\n",
     {"t.conf:5:", "key 'ports'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nports = 1-65536\n",
     {"t.conf:5:", "key 'ports'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nports = "
     "20000-40000\nhop = 500ms\n",
     {"t.conf:6:", "key 'hop'", "from 1s to 1h"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nports = "
     "20000-40000\nhop = 2h\n",
     {"t.conf:6:", "key 'hop'", "'2h'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\nhop = 10s\n",
     {"t.conf:5:", "key 'hop'", "no 'ports'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\n[transport \"t\"]\ntype = tls\n"
     "cover = www.example.com:443\nports = 20000-40000\n",
     {"t.conf:7:", "key 'ports'", "tcp transport"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nresume-grace = 2h\n",
     {"t.conf:4:", "key 'resume-grace'", "'2h'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nresume-grace = soon\n",
     {"t.conf:4:", "key 'resume-grace'"}},
    {"[server]\nprivate-key = " PRIV "\nlisten = 1.2.3.4:1\nresumable-per-client = 0\n",
     {"t.conf:4:", "key 'resumable-per-client'", "from 1 to 1024"}},
    {"[client]\nprivate-key = " PRIV "\nevents = "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "a"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "a"
     "aaaaaaaaaaaaaaaaaaaaaaaaa\n",
     {"t.conf:3:", "longer than"}},
};

/* upstream and via: parsed, and mistakes named by file, line and key; a
 * password is never quoted. */
static void test_upstream_via_keys(void **state)
{
    (void)state;
    const char *text = "[client]\n"
                       "private-key = " PRIV "\n"
                       "upstream = socks5://me:s3cr%40t@10.0.0.1:1080\n"
                       "[server \"bridge\"]\n"
                       "address = 192.0.2.1:443\n"
                       "public-key = " PUB1 "\n"
                       "[server \"exit\"]\n"
                       "address = exit.example:443\n"
                       "public-key = " PUB2 "\n"
                       "via = bridge\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    assert_int_equal(parse(&c, text, err), 0);
    assert_int_equal(c.upstream.kind, UM_UPSTREAM_SOCKS5);
    assert_string_equal(c.upstream.pass, "s3cr@t");
    assert_int_equal(c.upstream.proxy.port, 1080);
    assert_string_equal(c.servers[1].via, "bridge");
    um_config_free(&c);
    assert_string_equal(c.upstream.pass, ""); /* wiped */

    static const struct {
        const char *text, *want[3];
    } tab[] = {
        {"[client]\nprivate-key = " PRIV "\nupstream = ftp://u:hunter2@1.2.3.4:21\n",
         {"t.conf:3:", "key 'upstream'", "socks5://"}},
        {"[client]\nprivate-key = " PRIV "\nupstream = http://u:hunter2@proxy.example:3128\n",
         {"t.conf:3:", "key 'upstream'", "IP address"}},
        {"[client]\nprivate-key = " PRIV "\n[server \"e\"]\naddress = 1.2.3.4:1\npublic-key = " PUB1
         "\nvia = nobody\n",
         {"t.conf:6:", "key 'via'", "no such [server]"}},
        {"[client]\nprivate-key = " PRIV "\n[server \"e\"]\naddress = 1.2.3.4:1\npublic-key = " PUB1
         "\nvia = e\n",
         {"t.conf:6:", "its own bridge"}},
        {"[client]\nprivate-key = " PRIV
         "\n[server \"b\"]\naddress = b.example:1\npublic-key = " PUB1
         "\n[server \"e\"]\naddress = 1.2.3.4:1\npublic-key = " PUB2 "\nvia = b\n",
         {"t.conf:9:", "key 'via'", "IP address"}},
        {"[client]\nprivate-key = " PRIV "\n[server \"b\"]\naddress = 1.2.3.5:1\npublic-key = " PUB1
         "\nvia = e\n[server \"e\"]\naddress = 1.2.3.4:1\npublic-key = " PUB2 "\nvia = b\n",
         {"key 'via'", "one bridge per exit"}},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        err[0] = 0;
        if (parse(&c, tab[i].text, err) == 0) fail_msg("case %zu accepted", i);
        for (int k = 0; k < 3 && tab[i].want[k]; k++)
            if (!strstr(err, tab[i].want[k]))
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err, tab[i].want[k]);
        assert_null(strstr(err, "hunter2"));
        um_config_free(&c);
    }
}

static void test_bad_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        um_config_t c;
        char err[UM_ERR_MAX] = "";
        int r = parse(&c, bad[i].text, err);
        if (r == 0) fail_msg("case %zu: accepted:\n%s", i, bad[i].text);
        for (int k = 0; k < 3 && bad[i].want[k]; k++)
            if (!strstr(err, bad[i].want[k]))
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err, bad[i].want[k]);
        /* No secret in any message. */
        assert_null(strstr(err, PRIV));
        um_config_free(&c);
    }
}

static void test_client_tun_keys(void **state)
{
    (void)state;
    const char *text = "[client]\n"
                       "private-key = " PRIV "\n"
                       "tun = on\n"
                       "tun-name = umbra0\n"
                       "tun-address = 10.9.8.7/24\n"
                       "tun-address6 = none\n"
                       "tun-mtu = 9000\n"
                       "tun-dns = off\n"
                       "control = /run/umbra.sock\n"
                       "[server \"v\"]\n"
                       "address = 192.0.2.1:443\n"
                       "public-key = " PUB1 "\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    assert_int_equal(parse(&c, text, err), 0);
    assert_true(c.tun);
    assert_string_equal(c.tun_name, "umbra0");
    /* An interface address keeps its host part (unlike an allow rule). */
    assert_int_equal(c.tun_addr4.bits, 24);
    assert_int_equal(c.tun_addr4.addr[3], 7);
    assert_false(c.has_tun_addr6);
    assert_int_equal(c.tun_mtu, 9000);
    assert_false(c.tun_dns);
    assert_true(c.tun_routes);
    assert_string_equal(c.control, "/run/umbra.sock");
    um_config_free(&c);
    /* Defaults. */
    um_config_init(&c);
    assert_int_equal(c.tun_addr4.addr[3], 1);
    assert_int_equal(c.tun_addr4.bits, 30);
    assert_true(c.has_tun_addr6);
    um_config_free(&c);
}

static void test_nul_byte(void **state)
{
    (void)state;
    const char text[] = "[server]\nlisten = 1.2\0.3.4:1\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    um_config_init(&c);
    assert_int_not_equal(um_config_parse(&c, "t.conf", text, sizeof(text) - 1, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "t.conf:2:"));
    assert_non_null(strstr(err, "NUL"));
    um_config_free(&c);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/umbra-cfg-XXXXXX", conf[128], key[128], err[UM_ERR_MAX] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/s.conf", dir);
    snprintf(key, sizeof(key), "%s/s.key", dir);
    write_file(key, PRIV "\n", 0600);
    /* Relative private-key-file is resolved against the config's directory. */
    write_file(conf, "[server]\nprivate-key-file = s.key\nlisten = 127.0.0.1:1\n", 0600);
    um_config_t c;
    um_config_init(&c);
    assert_int_equal(um_config_load(&c, conf, err, sizeof(err)), 0);
    uint8_t k[32];
    assert_int_equal(um_key_from_b64(k, PRIV, strlen(PRIV)), 0);
    assert_memory_equal(c.private_key, k, 32);
    um_config_free(&c);
    /* A missing key file names the config line and the file. */
    write_file(conf, "[server]\nlisten = 127.0.0.1:1\nprivate-key-file = nope.key\n", 0600);
    um_config_init(&c);
    assert_int_not_equal(um_config_load(&c, conf, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "s.conf:3: key 'private-key-file'"));
    assert_non_null(strstr(err, "nope.key"));
    um_config_free(&c);
    /* A key file with garbage. */
    write_file(key, "garbage\n", 0600);
    write_file(conf, "[server]\nprivate-key-file = s.key\nlisten = 127.0.0.1:1\n", 0600);
    um_config_init(&c);
    assert_int_not_equal(um_config_load(&c, conf, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "does not hold"));
    um_config_free(&c);
    /* A missing config file. */
    um_config_init(&c);
    snprintf(conf, sizeof(conf), "%s/absent.conf", dir);
    assert_int_not_equal(um_config_load(&c, conf, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "absent.conf: cannot open"));
    um_config_free(&c);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_forward_parse(void **state)
{
    (void)state;
    um_forward_t f;
    char err[160];
    assert_int_equal(um_parse_forward(&f, "2222:host:22", err, sizeof(err)), 0);
    assert_int_equal(f.listen.type, UM_ADDR_IPV4);
    assert_int_equal(f.listen.u.v4[0], 127);
    assert_int_equal(um_parse_forward(&f, "[::1]:80:[2001:db8::1]:8080", err, sizeof(err)), 0);
    assert_int_equal(f.listen.type, UM_ADDR_IPV6);
    assert_int_equal(f.target.port, 8080);
    const char *badf[] = {"",        "22",        "host:22",         ":host:22", "99999:h:1",
                          "a:b:c:d", "1:[::1:80", "localhost:1:h:1", "1:h:0"};
    for (size_t i = 0; i < sizeof(badf) / sizeof(badf[0]); i++)
        if (um_parse_forward(&f, badf[i], err, sizeof(err)) == 0)
            fail_msg("accepted '%s'", badf[i]);
}

/* Byte counts, durations and their ranges: the value parsers themselves,
 * and that the canonical text reads back to the same value. */
static void test_value_parsers(void **state)
{
    (void)state;
    uint32_t v, a, b;
    assert_int_equal(um_parse_size(&v, "0"), 0);
    assert_int_equal(v, 0);
    assert_int_equal(um_parse_size(&v, "1000"), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(um_parse_size(&v, "16k"), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(um_parse_size(&v, "3m"), 0);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(um_parse_size(&v, "4095m"), 0);
    assert_int_equal(v, 4095u << 20);
    const char *bad_sizes[] = {"",   "k",     "16K",         "16kb", "16 k",
                               "-1", "4096m", "99999999999", "1.5k", "0x10"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
        if (um_parse_size(&v, bad_sizes[i]) == 0) fail_msg("size '%s' accepted", bad_sizes[i]);
    assert_int_equal(um_parse_duration_ms(&v, "30"), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(um_parse_duration_ms(&v, "250ms"), 0);
    assert_int_equal(v, 250);
    assert_int_equal(um_parse_duration_ms(&v, "30s"), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(um_parse_duration_ms(&v, "5m"), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(um_parse_duration_ms(&v, "2h"), 0);
    assert_int_equal(v, 7200000);
    const char *bad_durs[] = {"", "s", "5M", "5 s", "1d", "5min", "-5s", "2000h", "1.5s"};
    for (size_t i = 0; i < sizeof(bad_durs) / sizeof(bad_durs[0]); i++)
        if (um_parse_duration_ms(&v, bad_durs[i]) == 0)
            fail_msg("duration '%s' accepted", bad_durs[i]);
    assert_int_equal(um_parse_size_range(&a, &b, "12k-16k", 4096, 1u << 30), 0);
    assert_int_equal(a, 12288);
    assert_int_equal(b, 16384);
    assert_int_equal(um_parse_size_range(&a, &b, "16k", 4096, 1u << 30), 0);
    assert_int_equal(a, 16384);
    assert_int_equal(b, 16384);
    a = b = 7;
    assert_int_equal(um_parse_size_range(&a, &b, "off", 4096, 1u << 30), 0);
    assert_true(a == 0 && b == 0);
    a = b = 7;
    assert_int_equal(um_parse_size_range(&a, &b, "0", 4096, 1u << 30), 0);
    assert_true(a == 0 && b == 0);
    assert_int_not_equal(um_parse_size_range(&a, &b, "2k-16k", 4096, 1u << 30), 0);
    assert_int_not_equal(um_parse_size_range(&a, &b, "0-16k", 4096, 1u << 30), 0);
    assert_int_not_equal(um_parse_size_range(&a, &b, "12k-16k-20k", 4096, 1u << 30), 0);
    assert_int_not_equal(um_parse_size_range(&a, &b, "", 4096, 1u << 30), 0);
    assert_int_equal(um_parse_duration_range(&a, &b, "30s-5m", 1000, 86400000), 0);
    assert_int_equal(a, 30000);
    assert_int_equal(b, 300000);
    assert_int_equal(um_parse_duration_range(&a, &b, "1500ms-2", 1000, 86400000), 0);
    assert_true(a == 1500 && b == 2000);
    uint16_t lo, hi;
    assert_int_equal(um_parse_port_range(&lo, &hi, "20000-40000"), 0);
    assert_true(lo == 20000 && hi == 40000);
    assert_int_equal(um_parse_port_range(&lo, &hi, "443-443"), 0);
    assert_true(lo == 443 && hi == 443);
    assert_int_not_equal(um_parse_port_range(&lo, &hi, "443"), 0);
    assert_int_not_equal(um_parse_port_range(&lo, &hi, "-443"), 0);
    assert_int_not_equal(um_parse_port_range(&lo, &hi, "1-65536"), 0);
    /* Canonical forms. */
    char out[40];
    um_format_size(out, sizeof(out), 16384);
    assert_string_equal(out, "16k");
    um_format_size(out, sizeof(out), 1u << 20);
    assert_string_equal(out, "1m");
    um_format_size(out, sizeof(out), 5000);
    assert_string_equal(out, "5000");
    um_format_duration(out, sizeof(out), 60000);
    assert_string_equal(out, "1m");
    um_format_duration(out, sizeof(out), 90000);
    assert_string_equal(out, "90s");
    um_format_duration(out, sizeof(out), 1500);
    assert_string_equal(out, "1500ms");
    um_format_duration(out, sizeof(out), 7200000);
    assert_string_equal(out, "2h");
    um_format_size_range(out, sizeof(out), 12288, 16384);
    assert_string_equal(out, "12k-16k");
    um_format_size_range(out, sizeof(out), 16384, 16384);
    assert_string_equal(out, "16k");
    um_format_size_range(out, sizeof(out), 0, 0);
    assert_string_equal(out, "off");
    um_format_duration_range(out, sizeof(out), 30000, 300000);
    assert_string_equal(out, "30s-5m");
    /* Every value's canonical text reads back to it. */
    for (int i = 0; i < 2000; i++) {
        uint32_t x = randombytes_random() >> randombytes_uniform(32);
        if (i % 3 == 0) x &= ~1023u;
        if (i % 5 == 0) x &= ~((1u << 20) - 1);
        um_format_size(out, sizeof(out), x);
        assert_int_equal(um_parse_size(&v, out), 0);
        assert_int_equal(v, x);
        um_format_duration(out, sizeof(out), x);
        assert_int_equal(um_parse_duration_ms(&v, out), 0);
        assert_int_equal(v, x);
    }
}

/* rotate, rotate-after and max-connections in [server "name"], with the
 * transport's defaults (tls: rotate-after 5m-20m unless given). */
static void test_rotation_keys(void **state)
{
    (void)state;
    const char *text = "[client]\n"
                       "private-key = " PRIV "\n"
                       "[server \"plain\"]\n"
                       "address = a.example:443\n"
                       "public-key = " PUB1 "\n"
                       "[server \"rot\"]\n"
                       "address = a.example:443\n"
                       "public-key = " PUB1 "\n"
                       "rotate = 12k-16k\n"
                       "rotate-after = 30s-5m\n"
                       "max-connections = 3\n"
                       "[server \"web\"]\n"
                       "address = a.example:443\n"
                       "public-key = " PUB1 "\n"
                       "transport = tls\n"
                       "[server \"web-off\"]\n"
                       "address = a.example:443\n"
                       "public-key = " PUB1 "\n"
                       "transport = tls\n"
                       "rotate-after = off\n"
                       "rotate = 1m\n"
                       "[transport \"tls\"]\n"
                       "type = tls\n"
                       "sni = www.example.com\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    if (parse(&c, text, err) != 0) fail_msg("%s", err);
    const um_peer_server_t *s = &c.servers[0];
    assert_int_equal(s->rotate_min, 0);
    assert_int_equal(s->rotate_max, 0);
    assert_int_equal(s->rotate_after_min_ms, 0);
    assert_int_equal(s->rotate_after_max_ms, 0);
    assert_int_equal(s->max_connections, 6);
    assert_false(s->rotate_set);
    assert_false(s->rotate_after_set);
    s = &c.servers[1];
    assert_int_equal(s->rotate_min, 12 * 1024);
    assert_int_equal(s->rotate_max, 16 * 1024);
    assert_int_equal(s->rotate_after_min_ms, 30000);
    assert_int_equal(s->rotate_after_max_ms, 300000);
    assert_int_equal(s->max_connections, 3);
    assert_true(s->rotate_set && s->rotate_after_set);
    s = &c.servers[2];
    assert_int_equal(s->rotate_min, 0);
    assert_int_equal(s->rotate_after_min_ms, 5 * 60000);
    assert_int_equal(s->rotate_after_max_ms, 20 * 60000);
    assert_false(s->rotate_after_set);
    s = &c.servers[3];
    assert_int_equal(s->rotate_min, 1u << 20);
    assert_int_equal(s->rotate_max, 1u << 20);
    assert_int_equal(s->rotate_after_min_ms, 0);
    assert_int_equal(s->rotate_after_max_ms, 0);
    assert_true(s->rotate_after_set);
    um_config_free(&c);
}

/* ports and hop in a tcp transport; resume-grace and resumable-per-client
 * in [server], with their defaults. */
static void test_hop_and_resume_keys(void **state)
{
    (void)state;
    const char *text = "[server]\n"
                       "private-key = " PRIV "\n"
                       "listen = 0.0.0.0:443\n"
                       "transport = hop\n"
                       "resume-grace = 90s\n"
                       "resumable-per-client = 2\n"
                       "[transport \"hop\"]\n"
                       "ports = 20000-40000\n"
                       "[transport \"fast\"]\n"
                       "hop = 2s\n"
                       "ports = 1024-1100\n"
                       "[transport \"none\"]\n"
                       "type = tcp\n";
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    if (parse(&c, text, err) != 0) fail_msg("%s", err);
    assert_int_equal(c.resume_grace_ms, 90000);
    assert_int_equal(c.resumable_per_client, 2);
    const um_transport_cfg_t *t = um_config_transport(&c, "hop");
    assert_int_equal(t->hop_lo, 20000);
    assert_int_equal(t->hop_hi, 40000);
    assert_int_equal(t->hop_ms, 60000);
    t = um_config_transport(&c, "fast");
    assert_int_equal(t->hop_lo, 1024);
    assert_int_equal(t->hop_hi, 1100);
    assert_int_equal(t->hop_ms, 2000);
    t = um_config_transport(&c, "none");
    assert_int_equal(t->hop_lo, 0);
    assert_int_equal(t->hop_ms, 0);
    um_config_free(&c);
    /* Defaults, and resume-grace = 0 turns resumption off. */
    const char *text2 = "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:443\n";
    assert_int_equal(parse(&c, text2, err), 0);
    assert_int_equal(c.resume_grace_ms, 120000);
    assert_int_equal(c.resumable_per_client, 4);
    um_config_free(&c);
    const char *text3 =
        "[server]\nprivate-key = " PRIV "\nlisten = 0.0.0.0:443\nresume-grace = 0\n";
    assert_int_equal(parse(&c, text3, err), 0);
    assert_int_equal(c.resume_grace_ms, 0);
    um_config_free(&c);
}

/* Signed server lists: operator-key, list-url (repeatable), server-list. */
static void test_server_list_keys(void **state)
{
    (void)state;
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    const char *text = "[client]\n"
                       "private-key = " PRIV "\n"
                       "[server \"vps\"]\n"
                       "address = 192.0.2.1:443\n"
                       "public-key = " PUB1 "\n"
                       "operator-key = 7Zlb6_JjeDRbmkyeVOGX4Hy-Xz8OeC44gI3YzFNkhRM\n"
                       "list-url = https://lists.example/servers.list\n"
                       "list-url = http://192.0.2.9:8080/l\n";
    assert_int_equal(parse(&c, text, err), 0);
    assert_true(c.servers[0].has_operator_key);
    assert_int_equal(c.servers[0].operator_key[0], 0xed);
    assert_int_equal(c.servers[0].n_list_urls, 2);
    assert_string_equal(c.servers[0].list_urls[1], "http://192.0.2.9:8080/l");
    um_config_free(&c);
    static const struct {
        const char *key, *err;
    } wrong[] = {
        {"operator-key = " PUB2, "t.conf:6: key 'operator-key': '" PUB2
                                 "': expected a 43-character base64url Ed25519 public key (from "
                                 "'umbra pubkey --sign')"},
        {"list-url = ftp://x/y", "t.conf:6: key 'list-url': 'ftp://x/y': expected an http:// or "
                                 "https:// URL of at most 255 characters"},
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        char t[512];
        snprintf(t, sizeof(t),
                 "[client]\nprivate-key = " PRIV "\n[server \"vps\"]\naddress = 192.0.2.1:443\n"
                 "public-key = " PUB1 "\n%s\n",
                 wrong[i].key);
        assert_int_not_equal(parse(&c, t, err), 0);
        assert_string_equal(err, wrong[i].err);
        um_config_free(&c);
    }
    text = "[server]\nprivate-key = " PRIV "\nlisten = 127.0.0.1:443\nserver-list = s.list\n";
    assert_int_equal(parse(&c, text, err), 0);
    assert_string_equal(c.server_list, "s.list");
    um_config_free(&c);
}

/* Routing rules ([client], docs/CONFIG.md "Routing rules"). */
static void test_rules_keys(void **state)
{
    (void)state;
    const char *head = "[client]\n"
                       "private-key = " PRIV "\n";
    const char *tail = "[server \"v\"]\n"
                       "address = 192.0.2.1:443\n"
                       "public-key = " PUB1 "\n";
    char text[2048];
    snprintf(text, sizeof(text),
             "%srule = direct cidr:10.0.0.0/8\nrule = block domain:ads.example\n"
             "rules-file = r.txt\ngeoip-file = /usr/share/tor/geoip\ngeoip-file = g6\n"
             "default-route = direct\n%s",
             head, tail);
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    assert_int_equal(parse(&c, text, err), 0);
    assert_int_equal(c.n_rules, 2);
    assert_string_equal(c.rules[1], "block domain:ads.example");
    assert_int_equal(c.rule_lines[0], 3);
    assert_int_equal(c.n_rules_files, 1);
    assert_int_equal(c.n_geoip_files, 2);
    assert_int_equal(c.default_route, 1); /* direct */
    um_config_free(&c);
    static const struct {
        const char *keys, *want;
    } rbad[] = {
        {"rule = direct cidr:10.0.0.0/33\n", "t.conf:3: key 'rule': 'direct cidr:10.0.0.0/33': "},
        {"rule = allow domain:x.org\n", "t.conf:3: key 'rule': 'allow domain:x.org': expected "},
        {"default-route = sometimes\n", "t.conf:3: key 'default-route': 'sometimes'"},
        {"default-route = block\ndefault-route = tunnel\n", "t.conf:4: duplicate key"},
        {"rules-file =\n", "t.conf:3: key 'rules-file'"},
    };
    for (size_t i = 0; i < sizeof(rbad) / sizeof(rbad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s%s", head, rbad[i].keys, tail);
        err[0] = 0;
        assert_int_not_equal(parse(&c, text, err), 0);
        if (!strstr(err, rbad[i].want)) fail_msg("'%s': got '%s'", rbad[i].keys, err);
        um_config_free(&c);
    }
}

/* fo: fast-open in [client], on by default. */
static void test_fast_open_key(void **state)
{
    (void)state;
    um_config_t c;
    char err[UM_ERR_MAX] = "";
    static const char base[] = "[server \"vps\"]\naddress = 192.0.2.1:443\npublic-key = " PUB1
                               "\n[client]\nprivate-key = " PRIV "\n";
    assert_int_equal(parse(&c, base, err), 0);
    assert_true(c.fast_open);
    um_config_free(&c);
    char t[512];
    snprintf(t, sizeof(t), "%sfast-open = off\n", base);
    assert_int_equal(parse(&c, t, err), 0);
    assert_false(c.fast_open);
    um_config_free(&c);
    snprintf(t, sizeof(t), "%sfast-open = maybe\n", base);
    assert_int_not_equal(parse(&c, t, err), 0);
    assert_string_equal(err, "t.conf:6: key 'fast-open': 'maybe': expected on or off");
    um_config_free(&c);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_ok), cmocka_unit_test(test_client_ok),
        cmocka_unit_test(test_bad_table), cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_key_file), cmocka_unit_test(test_forward_parse),
        cmocka_unit_test(test_client_tun_keys), cmocka_unit_test(test_tls_ok),
        cmocka_unit_test(test_sni_valid), cmocka_unit_test(test_value_parsers),
        cmocka_unit_test(test_rotation_keys), cmocka_unit_test(test_hop_and_resume_keys),
        cmocka_unit_test(test_server_list_keys), cmocka_unit_test(test_ws_ok),
        /* clang-format off */
        cmocka_unit_test(test_upstream_via_keys),
        cmocka_unit_test(test_rules_keys),
        cmocka_unit_test(test_fast_open_key),
        /* clang-format on */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
