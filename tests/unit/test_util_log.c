/* Logging: level names, level filtering, the line format, the rate limiter
 * (burst, suppression, the "N suppressed" report when the window reopens),
 * and key fingerprints (8 characters, stable, not the key itself).
 * Output is captured with um_log_set_stream() on an open_memstream(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} cap_t;

static cap_t g_cap;

static int setup(void **state)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* Each test gets a fresh capture stream and the default level. */
static int cap_open(void **state)
{
    g_cap.buf = NULL;
    g_cap.len = 0;
    g_cap.f = open_memstream(&g_cap.buf, &g_cap.len);
    if (!g_cap.f) return -1;
    um_log_set_stream(g_cap.f);
    um_log_set_level(UM_LOG_INFO);
    return 0;
}

static int cap_close(void **state)
{
    um_log_set_stream(NULL);
    um_log_set_level(UM_LOG_INFO);
    if (g_cap.f) fclose(g_cap.f);
    free(g_cap.buf);
    memset(&g_cap, 0, sizeof(g_cap));
    return 0;
}

/* Captured text so far (NUL-terminated; borrowed until the next log call). */
static const char *cap_text(void)
{
    fflush(g_cap.f);
    return g_cap.buf ? g_cap.buf : "";
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n;
}

static size_t count_substr(const char *s, const char *sub)
{
    size_t n = 0, l = strlen(sub);
    for (const char *p = strstr(s, sub); p; p = strstr(p + l, sub))
        n++;
    return n;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- levels ---- */

static void test_level_parse(void **state)
{
    static const struct {
        const char *s;
        um_log_level_t l;
    } good[] = {
        {"error", UM_LOG_ERROR}, {"warn", UM_LOG_WARN},   {"info", UM_LOG_INFO},
        {"debug", UM_LOG_DEBUG}, {"trace", UM_LOG_TRACE},
    };
    for (size_t i = 0; i < N(good); i++) {
        um_log_level_t l = (um_log_level_t)99;
        assert_int_equal(um_log_level_parse(good[i].s, &l), 0);
        assert_int_equal(l, good[i].l);
    }
    static const char *const bad[] = {"",  "err", "warning", "inf", "info ", " info",  "debugx",
                                      "5", "2",   "none",    "all", "trac",  "errors", "info\n"};
    for (size_t i = 0; i < N(bad); i++) {
        um_log_level_t l = UM_LOG_DEBUG;
        if (um_log_level_parse(bad[i], &l) != UM_EINVAL) fail_msg("level '%s' accepted", bad[i]);
        assert_int_equal(l, UM_LOG_DEBUG); /* untouched */
    }
}

static void test_level_filter(void **state)
{
    um_log_set_level(UM_LOG_WARN);
    assert_int_equal(um_log_get_level(), UM_LOG_WARN);
    UM_ERR("e-%d", 1);
    UM_WARN("w-%d", 2);
    UM_INFO("i-%d", 3);
    UM_DEBUG("d-%d", 4);
    um_log(UM_LOG_TRACE, "t-%d", 5);
    const char *t = cap_text();
    assert_int_equal(count_lines(t), 2);
    assert_non_null(strstr(t, "e-1"));
    assert_non_null(strstr(t, "w-2"));
    assert_null(strstr(t, "i-3"));
    assert_null(strstr(t, "d-4"));
    assert_null(strstr(t, "t-5"));

    um_log_set_level(UM_LOG_TRACE);
    UM_DEBUG("d-%d", 6);
    um_log(UM_LOG_TRACE, "t-%d", 7);
    t = cap_text();
    assert_int_equal(count_lines(t), 4);
    assert_non_null(strstr(t, "d-6"));
    assert_non_null(strstr(t, "t-7"));

    um_log_set_level(UM_LOG_ERROR);
    UM_WARN("w-%d", 8);
    UM_ERR("e-%d", 9);
    t = cap_text();
    assert_int_equal(count_lines(t), 5);
    assert_null(strstr(t, "w-8"));
    assert_non_null(strstr(t, "e-9"));
}

/* "TIME LEVEL message": ISO 8601 UTC with milliseconds, the level name. */
static void test_line_format(void **state)
{
    um_log_set_level(UM_LOG_TRACE);
    UM_ERR("hello %s %d", "world", 42);
    UM_WARN("w");
    UM_INFO("i");
    UM_DEBUG("d");
    um_log(UM_LOG_TRACE, "t");
    const char *t = cap_text();
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "error hello world 42\n"
                             "[0-9T:.-]+Z warn  w\n"
                             "[0-9T:.-]+Z info  i\n"
                             "[0-9T:.-]+Z debug d\n"
                             "[0-9T:.-]+Z trace t\n$",
                             REG_EXTENDED),
                     0);
    int m = regexec(&re, t, 0, NULL, 0);
    regfree(&re);
    if (m != 0) fail_msg("unexpected log text:\n%s", t);

    /* the time is UTC whatever the local zone: log under a +05:30 zone and
     * compare with the UTC clock */
    um_log_set_stream(NULL);
    fclose(g_cap.f);
    free(g_cap.buf);
    g_cap.buf = NULL;
    g_cap.f = open_memstream(&g_cap.buf, &g_cap.len);
    assert_non_null(g_cap.f);
    um_log_set_stream(g_cap.f);
    const char *oldtz = getenv("TZ");
    char saved[64] = "";
    if (oldtz) snprintf(saved, sizeof(saved), "%s", oldtz);
    setenv("TZ", "IST-5:30", 1);
    tzset();
    time_t before = time(NULL);
    UM_INFO("when");
    time_t after = time(NULL);
    if (oldtz)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    t = cap_text();
    assert_int_equal(sscanf(t, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t logged = timegm(&tm);
    if (logged < before - 1 || logged > after + 1)
        fail_msg("logged time %s is not UTC now (%lld..%lld)", t, (long long)before,
                 (long long)after);
}

/* A very long message stays one line (truncated, not split). */
static void test_long_message_one_line(void **state)
{
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'q', 4999);
    big[4999] = '\0';
    UM_INFO("%s", big);
    UM_INFO("next");
    const char *t = cap_text();
    assert_int_equal(count_lines(t), 2);
    const char *nl = strchr(t, '\n');
    assert_non_null(nl);
    assert_true(nl - t > 900);
    assert_true(nl - t < 1100);
    assert_non_null(strstr(nl + 1, "next"));
    free(big);
}

/* ---- rate limiter ---- */

static unsigned interval_ms(void)
{
    /* generous, so that a slow (sanitized) machine still fits a burst in one window */
    return getenv("UMBRA_SANITIZE") && getenv("UMBRA_SANITIZE")[0] == '1' ? 600 : 300;
}

static void test_ratelimit_suppresses_and_reports(void **state)
{
    um_ratelimit_t rl;
    memset(&rl, 0, sizeof(rl));
    unsigned iv = interval_ms();
    uint64_t t0 = um_now_ms();
    for (int i = 0; i < 10; i++)
        um_log_limited(&rl, 3, iv, UM_LOG_INFO, "drop packet %d", i);
    uint64_t t1 = um_now_ms();
    if (t1 - t0 >= iv) skip(); /* the machine stalled for a whole window */
    const char *t = cap_text();
    assert_int_equal(count_lines(t), 3);
    assert_non_null(strstr(t, "drop packet 0\n"));
    assert_non_null(strstr(t, "drop packet 1\n"));
    assert_non_null(strstr(t, "drop packet 2\n"));
    assert_null(strstr(t, "drop packet 3"));
    assert_null(strstr(t, "suppressed"));
    assert_int_equal(rl.count, 3);
    assert_int_equal(rl.suppressed, 7);

    sleep_ms(iv + 50);
    um_log_limited(&rl, 3, iv, UM_LOG_INFO, "drop packet %d", 10);
    t = cap_text();
    assert_int_equal(count_lines(t), 5);
    assert_int_equal(count_substr(t, "(7 similar messages suppressed)"), 1);
    /* the report comes before the first message of the new window, at the same level */
    const char *rep = strstr(t, "(7 similar messages suppressed)");
    const char *next = strstr(t, "drop packet 10\n");
    assert_non_null(next);
    assert_true(rep < next);
    assert_non_null(strstr(t, "Z info  (7 similar messages suppressed)\n"));
    assert_int_equal(rl.suppressed, 0);
    assert_int_equal(rl.count, 1);

    /* the new window has its own burst */
    um_log_limited(&rl, 3, iv, UM_LOG_INFO, "drop packet %d", 11);
    um_log_limited(&rl, 3, iv, UM_LOG_INFO, "drop packet %d", 12);
    um_log_limited(&rl, 3, iv, UM_LOG_INFO, "drop packet %d", 13);
    t = cap_text();
    assert_int_equal(count_lines(t), 7);
    assert_null(strstr(t, "drop packet 13"));
    assert_int_equal(rl.suppressed, 1);
}

static void test_ratelimit_no_report_when_nothing_dropped(void **state)
{
    um_ratelimit_t rl;
    memset(&rl, 0, sizeof(rl));
    unsigned iv = interval_ms();
    um_log_limited(&rl, 5, iv, UM_LOG_WARN, "a");
    um_log_limited(&rl, 5, iv, UM_LOG_WARN, "b");
    sleep_ms(iv + 50);
    um_log_limited(&rl, 5, iv, UM_LOG_WARN, "c");
    const char *t = cap_text();
    assert_int_equal(count_lines(t), 3);
    assert_null(strstr(t, "suppressed"));
}

static void test_ratelimit_independent_and_filtered(void **state)
{
    um_ratelimit_t a, b, d;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&d, 0, sizeof(d));
    unsigned iv = 60000; /* never reopens during this test */
    for (int i = 0; i < 5; i++) {
        um_log_limited(&a, 2, iv, UM_LOG_INFO, "A%d", i);
        um_log_limited(&b, 1, iv, UM_LOG_INFO, "B%d", i);
        /* below the level: neither printed nor counted */
        um_log_limited(&d, 1, iv, UM_LOG_DEBUG, "D%d", i);
    }
    const char *t = cap_text();
    assert_int_equal(count_lines(t), 3);
    assert_non_null(strstr(t, "A0\n"));
    assert_non_null(strstr(t, "A1\n"));
    assert_non_null(strstr(t, "B0\n"));
    assert_null(strstr(t, "A2"));
    assert_null(strstr(t, "B1"));
    assert_null(strstr(t, "D0"));
    assert_int_equal(a.suppressed, 3);
    assert_int_equal(b.suppressed, 4);
    assert_int_equal(d.suppressed, 0);
    assert_int_equal(d.count, 0);

    /* burst 0: everything suppressed */
    um_ratelimit_t z;
    memset(&z, 0, sizeof(z));
    um_log_limited(&z, 0, iv, UM_LOG_ERROR, "Z");
    assert_int_equal(count_lines(cap_text()), 3);
    assert_int_equal(z.suppressed, 1);
}

/* ---- fingerprints ---- */

static void test_fingerprint(void **state)
{
    /* Known answers: first 8 chars of URL-safe base64 of BLAKE2b-128(key),
     * computed independently with Python's hashlib. */
    static const struct {
        uint8_t fill; /* 0 = zeros, 1 = 0..31, 2 = 0xff */
        const char *fp;
    } kat[] = {{0, "_w8iSS9E"}, {1, "85osrVhB"}, {2, "Deoypd68"}};
    for (size_t i = 0; i < N(kat); i++) {
        uint8_t key[32];
        for (int j = 0; j < 32; j++)
            key[j] = kat[i].fill == 0 ? 0 : kat[i].fill == 1 ? (uint8_t)j : 0xff;
        char fp[9];
        memset(fp, 'x', sizeof(fp));
        um_log_fingerprint(key, fp);
        assert_int_equal(fp[8], '\0');
        assert_string_equal(fp, kat[i].fp);
    }

    /* random keys: 8 URL-safe characters, stable, distinct, and not the key's own text */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char prev[9] = "";
    for (int rep = 0; rep < 200; rep++) {
        uint8_t key[32];
        randombytes_buf(key, sizeof(key));
        char a[9], b[9], kb64[64];
        um_log_fingerprint(key, a);
        um_log_fingerprint(key, b);
        assert_string_equal(a, b);
        assert_int_equal(strlen(a), 8);
        assert_int_equal(strspn(a, alphabet), 8);
        assert_string_not_equal(a, prev);
        memcpy(prev, a, 9);
        sodium_bin2base64(kb64, sizeof(kb64), key, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        assert_memory_not_equal(a, kb64, 8);
        sodium_bin2base64(kb64, sizeof(kb64), key, 32, sodium_base64_VARIANT_ORIGINAL);
        assert_memory_not_equal(a, kb64, 8);
        /* one flipped bit changes it */
        key[rep % 32] ^= (uint8_t)(1u << (rep % 8));
        um_log_fingerprint(key, b);
        assert_string_not_equal(a, b);
    }
    /* fingerprinting writes nothing to the log */
    assert_int_equal(strlen(cap_text()), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_parse, cap_open, cap_close),
        cmocka_unit_test_setup_teardown(test_level_filter, cap_open, cap_close),
        cmocka_unit_test_setup_teardown(test_line_format, cap_open, cap_close),
        cmocka_unit_test_setup_teardown(test_long_message_one_line, cap_open, cap_close),
        cmocka_unit_test_setup_teardown(test_ratelimit_suppresses_and_reports, cap_open, cap_close),
        cmocka_unit_test_setup_teardown(test_ratelimit_no_report_when_nothing_dropped, cap_open,
                                        cap_close),
        cmocka_unit_test_setup_teardown(test_ratelimit_independent_and_filtered, cap_open,
                                        cap_close),
        cmocka_unit_test_setup_teardown(test_fingerprint, cap_open, cap_close),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
