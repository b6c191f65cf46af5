/* Server management's pure parts: quota and expiry values, the control
 * socket's request validation, the config edits written back, the metrics
 * endpoint's request reader and exposition helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/metrics.h"
#include "app/mgmt.h"

static void test_quota(void **state)
{
    (void)state;
    uint64_t q;
    char t[32];
    assert_int_equal(um_parse_quota(&q, "10G"), 0);
    assert_true(q == 10ull << 30);
    um_format_quota(t, sizeof(t), q);
    assert_string_equal(t, "10g");
    assert_int_equal(um_parse_quota(&q, "1536m"), 0);
    um_format_quota(t, sizeof(t), q);
    assert_string_equal(t, "1536m");
    assert_int_equal(um_parse_quota(&q, "1000"), 0);
    assert_true(q == 1000);
    assert_int_equal(um_parse_quota(&q, "off"), 0);
    assert_true(q == 0);
    um_format_quota(t, sizeof(t), 0);
    assert_string_equal(t, "off");
    assert_int_equal(um_parse_quota(&q, "2T"), 0);
    assert_true(q == 2ull << 40);
    const char *bad[] = {"", "G", "1GB", "-1", "1.5g", "1 g", "9999999999999999999", "1048577t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_not_equal(um_parse_quota(&q, bad[i]), 0);
}

static void test_expiry(void **state)
{
    (void)state;
    int64_t e;
    char t[32];
    /* Served to the end of the day, UTC: the first second after it. */
    assert_int_equal(um_parse_expiry(&e, "2027-01-31"), 0);
    assert_true(e == 1801440000); /* 2027-02-01T00:00:00Z */
    um_format_expiry(t, sizeof(t), e);
    assert_string_equal(t, "2027-01-31");
    um_format_time(t, sizeof(t), e);
    assert_string_equal(t, "2027-02-01T00:00:00Z");
    assert_int_equal(um_parse_expiry(&e, "2024-02-29"), 0);
    um_format_expiry(t, sizeof(t), e);
    assert_string_equal(t, "2024-02-29");
    assert_int_equal(um_parse_expiry(&e, "1999-12-31"), 0);
    assert_true(e == 946684800);
    assert_int_equal(um_parse_expiry(&e, "never"), 0);
    assert_true(e == 0);
    const char *bad[] = {
        "2023-02-29", "2027-13-01", "2027-00-10", "2027-01-32",           "1969-12-31",
        "27-01-31",   "2027/01/31", "2027-1-31",  "2027-01-31T00:00:00Z", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_not_equal(um_parse_expiry(&e, bad[i]), 0);
}

static int parse(const char *s, um_mgmt_req_t *rq)
{
    char err[256];
    return um_mgmt_parse(s, strlen(s), rq, err, sizeof(err));
}

static void test_requests(void **state)
{
    (void)state;
    um_mgmt_req_t rq;
    assert_int_equal(parse("{\"cmd\":\"clients\"}", &rq), 0);
    assert_int_equal(rq.op, UM_MGMT_CLIENTS);
    assert_int_equal(parse("{\"cmd\":\"add-client\",\"name\":\"phone\",\"quota\":\"1G\","
                           "\"expires\":\"2027-01-31\"}",
                           &rq),
                     0);
    assert_int_equal(rq.op, UM_MGMT_ADD);
    assert_string_equal(rq.name, "phone");
    assert_true(rq.has_quota && rq.quota == 1ull << 30 && rq.has_expires);
    assert_int_equal(parse("{\"cmd\":\"kick\",\"session\":7}", &rq), 0);
    assert_true(rq.op == UM_MGMT_KICK && rq.session == 7 && !rq.name[0]);
    assert_int_equal(parse("{\"cmd\":\"set-quota\",\"name\":\"a\",\"quota\":1048576}", &rq), 0);
    assert_true(rq.quota == 1048576);
    const char *bad[] = {
        "",
        "[]",
        "{\"cmd\":\"clients\"} x",                             /* trailing bytes */
        "{\"cmd\":\"nope\"}",                                  /* unknown command */
        "{\"cmd\":1}",                                         /* not a string */
        "{\"cmd\":\"clients\",\"name\":\"a\"}",                /* member not for it */
        "{\"cmd\":\"clients\",\"cmd\":\"clients\"}",           /* duplicate */
        "{\"cmd\":\"remove-client\"}",                         /* name missing */
        "{\"cmd\":\"remove-client\",\"name\":\"a b\"}",        /* bad name */
        "{\"cmd\":\"remove-client\",\"name\":\"a\\u0000b\"}",  /* NUL in a name */
        "{\"cmd\":\"kick\"}",                                  /* no target */
        "{\"cmd\":\"kick\",\"name\":\"a\",\"session\":1}",     /* two targets */
        "{\"cmd\":\"kick\",\"session\":0}",                    /* no such id */
        "{\"cmd\":\"kick\",\"session\":\"1\"}",                /* not a number */
        "{\"cmd\":\"set-quota\",\"name\":\"a\"}",              /* value missing */
        "{\"cmd\":\"set-quota\",\"name\":\"a\",\"quota\":-1}", /* negative */
        "{\"cmd\":\"set-quota\",\"name\":\"a\",\"quota\":\"1x\"}",
        "{\"cmd\":\"set-expiry\",\"name\":\"a\",\"expires\":\"2027-02-30\"}",
        "{\"cmd\":\"set-expiry\",\"name\":\"a\"}",
        "{\"\":1,\"cmd\":\"clients\"}",             /* empty member name */
        "{\"cmd\":\"add-client\",\" name\":\"a\"}", /* found by fuzz_app_mgmt */
        "{\"cmd\":\"add-client\",\"name quota\":\"a\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        assert_int_not_equal(um_mgmt_parse(bad[i], strlen(bad[i]), &rq, err, sizeof(err)), 0);
        assert_true(err[0] != 0);
    }
    char big[UM_MGMT_REQ_MAX + 2], err[256];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"cmd\":\"clients\"}", 17);
    /* valid JSON, but longer than a request may be */
    assert_int_not_equal(um_mgmt_parse(big, sizeof(big), &rq, err, sizeof(err)), 0);
    assert_int_equal(um_mgmt_parse(big, 40, &rq, err, sizeof(err)), 0);
}

static const char conf[] = "# top comment\n"
                           "[server]\n"
                           "listen = 127.0.0.1:1\n"
                           "\n"
                           "[client \"a\"]\n"
                           "# a's note\n"
                           "public-key = AAA\n"
                           "quota = 1m\n"
                           "quota: 2m\n"
                           "\n"
                           "[client \"b\"]\n"
                           "public-key = BBB\n";

static void test_edits(void **state)
{
    (void)state;
    size_t n;
    char *o = um_cfgedit_set_key(conf, strlen(conf), "client", "a", "quota", "5g", &n);
    assert_non_null(o);
    assert_string_equal(o, "# top comment\n[server]\nlisten = 127.0.0.1:1\n\n[client \"a\"]\n"
                           "# a's note\npublic-key = AAA\nquota = 5g\n\n[client \"b\"]\n"
                           "public-key = BBB\n");
    free(o);
    o = um_cfgedit_set_key(conf, strlen(conf), "client", "b", "expires", "2027-01-31", &n);
    assert_non_null(o);
    assert_non_null(strstr(o, "[client \"b\"]\npublic-key = BBB\nexpires = 2027-01-31\n"));
    assert_int_equal(n, strlen(conf) + strlen("expires = 2027-01-31\n"));
    free(o);
    /* a key added after the last non-blank line of a section followed by one */
    o = um_cfgedit_set_key(conf, strlen(conf), "client", "a", "max-streams", "9", &n);
    assert_non_null(strstr(o, "quota: 2m\nmax-streams = 9\n\n[client \"b\"]"));
    free(o);
    o = um_cfgedit_set_key(conf, strlen(conf), "client", "a", "quota", NULL, &n);
    assert_non_null(o);
    assert_null(strstr(o, "quota"));
    free(o);
    o = um_cfgedit_remove_section(conf, strlen(conf), "client", "a", &n);
    assert_non_null(o);
    assert_string_equal(o, "# top comment\n[server]\nlisten = 127.0.0.1:1\n\n[client \"b\"]\n"
                           "public-key = BBB\n");
    free(o);
    assert_null(um_cfgedit_remove_section(conf, strlen(conf), "client", "c", &n));
    assert_int_equal(n, 0);
    assert_null(um_cfgedit_set_key(conf, strlen(conf), "client", "ab", "quota", "1", &n));
    assert_false(um_cfgedit_has_section(conf, strlen(conf), "server", "a"));
    /* the header on the last line, no newline */
    o = um_cfgedit_set_key("[client \"x\"]", 12, "client", "x", "quota", "1m", &n);
    assert_string_equal(o, "[client \"x\"]\nquota = 1m\n");
    free(o);
    static const char nonl[] = "[client\t\"x\"] ; c\nk = v";
    o = um_cfgedit_set_key(nonl, strlen(nonl), "client", "x", "quota", "1m", &n);
    assert_string_equal(o, "[client\t\"x\"] ; c\nk = v\nquota = 1m\n");
    free(o);
}

static void test_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/umbra-mgmt-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("old\n", f);
    fclose(f);
    chmod(path, 0644);
    assert_int_equal(um_cfgedit_write(path, "new\n", 4, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char buf[16] = "";
    f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "new\n");
    /* through a symlink: the link stays, its target is replaced */
    char link[80];
    snprintf(link, sizeof(link), "%s/l.conf", dir);
    assert_int_equal(symlink("s.conf", link), 0);
    assert_int_equal(um_cfgedit_write(link, "newer\n", 6, err, sizeof(err)), 0);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "newer\n");
    unlink(link);
    unlink(path);
    rmdir(dir);
    assert_int_not_equal(um_cfgedit_write("/nonexistent-dir/x.conf", "a", 1, err, sizeof(err)), 0);
}

static int route(const char *s)
{
    return um_metrics_route(s, strlen(s));
}

static void test_route(void **state)
{
    (void)state;
    assert_int_equal(route("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
    assert_int_equal(route("GET /metrics?x=1 HTTP/1.0\n\n"), 200);
    assert_int_equal(route("GET /metrics HTTP/1.1\r\nHost: a\r\n"), 0); /* not complete */
    assert_int_equal(route("GET / HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(route("POST /metrics HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(route("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(route("GET /metrics\r\n\r\n"), 400);
    assert_int_equal(route("GET /metrics HTTP/2.0\r\n\r\n"), 400);
    assert_int_equal(route("GET  /metrics HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(route("GET /me\x01trics HTTP/1.1\r\n\r\n"), 400);
}

static void test_text(void **state)
{
    (void)state;
    um_mtext_t t = {0};
    um_mtext_family(&t, "a_total", "counter", "Help.");
    um_mtext_sample(&t, "a_total", "client", "x\"y\\z\n", 3);
    um_mtext_sample(&t, "b", NULL, NULL, 0.5);
    static const double bounds[2] = {0.1, 1};
    static const uint64_t counts[3] = {1, 2, 3};
    um_mtext_hist(&t, "h_seconds", "H.", bounds, counts, 2, 4.5);
    assert_false(t.oom);
    assert_string_equal(t.p, "# HELP a_total Help.\n# TYPE a_total counter\n"
                             "a_total{client=\"x\\\"y\\\\z\\n\"} 3\nb 0.5\n"
                             "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                             "h_seconds_bucket{le=\"0.1\"} 1\nh_seconds_bucket{le=\"1\"} 3\n"
                             "h_seconds_bucket{le=\"+Inf\"} 6\nh_seconds_sum 4.5\n"
                             "h_seconds_count 6\n");
    um_mtext_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota),    cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_requests), cmocka_unit_test(test_edits),
        cmocka_unit_test(test_write),    cmocka_unit_test(test_route),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
