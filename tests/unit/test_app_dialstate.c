/* The client's state file (app/dialstate.h): parse, format, errors that name
 * the line, and the file: 0600, atomic, directories made 0700, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/dialstate.h"
#include "util/err.h"

#define FP   "00112233445566778899aabbccddeeff"
#define GOOD "umbra-state 1\nremembered vps " FP " 192.0.2.7:443 web 1700000000\n"

static void test_parse_good(void **state)
{
    (void)state;
    um_dialstate_t st;
    char err[256];
    const char *t = "# comment\n\n  umbra-state   1\r\n\t# another\nremembered vps " FP
                    "   192.0.2.7:443 web 1700000000";
    assert_int_equal(um_dialstate_parse(&st, t, strlen(t), err, sizeof(err)), 0);
    assert_true(st.has_remembered);
    assert_string_equal(st.remembered.server, "vps");
    assert_string_equal(st.remembered.key_fp, FP);
    assert_string_equal(st.remembered.address, "192.0.2.7:443");
    assert_string_equal(st.remembered.transport, "web");
    assert_true(st.remembered.at_s == 1700000000ull);
    const char *e = "umbra-state 1\n";
    assert_int_equal(um_dialstate_parse(&st, e, strlen(e), err, sizeof(err)), 0);
    assert_false(st.has_remembered);
}

static void test_roundtrip(void **state)
{
    (void)state;
    const char *addrs[] = {"192.0.2.7:443", "[2001:db8::1]:8443", "vps.example.com:1"};
    for (size_t i = 0; i < 3; i++) {
        um_dialstate_t a, b;
        char text[2048], err[256];
        size_t n;
        memset(&a, 0, sizeof(a));
        a.has_remembered = true;
        snprintf(a.remembered.server, sizeof(a.remembered.server), "s-%zu", i);
        uint8_t pub[32];
        randombytes_buf(pub, sizeof(pub));
        um_dialstate_key_fp(pub, a.remembered.key_fp);
        assert_int_equal(strlen(a.remembered.key_fp), UM_DIALSTATE_FP_LEN);
        snprintf(a.remembered.address, sizeof(a.remembered.address), "%s", addrs[i]);
        snprintf(a.remembered.transport, sizeof(a.remembered.transport), "-");
        a.remembered.at_s = 1234567890ull + i;
        assert_true(um_dial_rec_valid(&a.remembered));
        assert_int_equal(um_dialstate_format(&a, text, sizeof(text), &n), 0);
        assert_int_equal(n, strlen(text));
        assert_int_equal(um_dialstate_parse(&b, text, n, err, sizeof(err)), 0);
        assert_memory_equal(&a.remembered, &b.remembered, sizeof(a.remembered));
    }
}

/* Each bad file: the error, which names its line. */
static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"", "line 1: no 'umbra-state 1' line"},
        {"# only a comment\n", "line 1: no 'umbra-state 1' line"},
        {"umbra-state 2\n", "line 1: unknown version '2' (expected 1)"},
        {"umbra-state\n", "line 1: expected 'umbra-state 1'"},
        {"remembered vps " FP " 192.0.2.7:443 - 1\n", "line 1: expected 'umbra-state 1'"},
        {"umbra-state 1\nfoo bar\n", "line 2: unknown entry 'foo'"},
        {"umbra-state 1\n\nremembered vps " FP " 192.0.2.7:443 -\n",
         "line 3: expected 'remembered SERVER KEYFP ADDRESS TRANSPORT SECONDS'"},
        {"umbra-state 1\nremembered vps 0011 192.0.2.7:443 - 1\n",
         "line 2: expected a key fingerprint of 32 hex digits"},
        {"umbra-state 1\nremembered vps " FP " 192.0.2.7 - 1\n",
         "line 2: bad address '192.0.2.7' (expected host:port)"},
        {"umbra-state 1\nremembered vps " FP " 192.0.2.7:0 - 1\n",
         "line 2: bad address '192.0.2.7:0' (expected host:port)"},
        {"umbra-state 1\nremembered vps " FP " 192.0.2.7:443 - 12x\n",
         "line 2: bad time '12x' (expected Unix seconds)"},
        {"umbra-state 1\nremembered vps " FP " 192.0.2.7:443 - 1234567890123\n",
         "line 2: bad time '1234567890123' (expected Unix seconds)"},
        {GOOD "remembered vps " FP " 192.0.2.7:443 web 1\n", "line 3: a second 'remembered' entry"},
        {"umbra-state 1\nremembered v\x01s " FP " 192.0.2.7:443 - 1\n",
         "line 2: control or non-ASCII characters"},
        {"umbra-state 1\na b c d e f g h i\n", "line 2: too many fields"},
        {"umbra-state 1\nremembered "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa " FP
         " 192.0.2.7:443 - 1\n",
         "line 2: server name longer than 63 characters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        um_dialstate_t st;
        char err[256] = "";
        assert_int_equal(
            um_dialstate_parse(&st, cases[i].text, strlen(cases[i].text), err, sizeof(err)),
            UM_EINVAL);
        assert_string_equal(err, cases[i].err);
        assert_false(st.has_remembered);
    }
    /* A NUL byte, and a line or a file over the bounds. */
    um_dialstate_t st;
    char err[256];
    const char nul[] = "umbra-state 1\nremembered vps\0 x";
    assert_int_equal(um_dialstate_parse(&st, nul, sizeof(nul) - 1, err, sizeof(err)), UM_EINVAL);
    assert_string_equal(err, "line 2: control or non-ASCII characters");
    char *big = malloc(UM_DIALSTATE_MAX + 2);
    assert_non_null(big);
    memset(big, '#', UM_DIALSTATE_MAX + 1);
    assert_int_equal(um_dialstate_parse(&st, big, 2000, err, sizeof(err)), UM_EINVAL);
    assert_string_equal(err, "line 1: longer than 1024 characters");
    assert_int_equal(um_dialstate_parse(&st, big, UM_DIALSTATE_MAX + 1, err, sizeof(err)),
                     UM_EINVAL);
    assert_string_equal(err, "longer than 65536 bytes");
    free(big);
}

static void test_format_refuses_bad_fields(void **state)
{
    (void)state;
    um_dialstate_t st;
    char text[2048];
    size_t n;
    memset(&st, 0, sizeof(st));
    st.has_remembered = true;
    snprintf(st.remembered.server, sizeof(st.remembered.server), "has space");
    snprintf(st.remembered.key_fp, sizeof(st.remembered.key_fp), FP);
    snprintf(st.remembered.address, sizeof(st.remembered.address), "192.0.2.7:443");
    snprintf(st.remembered.transport, sizeof(st.remembered.transport), "-");
    assert_int_equal(um_dialstate_format(&st, text, sizeof(text), &n), UM_EINVAL);
    snprintf(st.remembered.server, sizeof(st.remembered.server), "ok");
    snprintf(st.remembered.address, sizeof(st.remembered.address), "192.000.2.7:443");
    assert_int_equal(um_dialstate_format(&st, text, sizeof(text), &n),
                     UM_EINVAL); /* not canonical */
    snprintf(st.remembered.address, sizeof(st.remembered.address), "192.0.2.7:443");
    assert_int_equal(um_dialstate_format(&st, text, 20, &n), UM_ENOSPC);
    assert_int_equal(um_dialstate_format(&st, text, sizeof(text), &n), 0);
}

static void test_file(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/umbra-dialstate-XXXXXX", path[512], dir[512], err[256];
    assert_non_null(mkdtemp(tmpl));
    snprintf(path, sizeof(path), "%s/a/b/state", tmpl);
    um_dialstate_t st, got;
    assert_int_equal(um_dialstate_load(path, &got, err, sizeof(err)), UM_ENOENT);
    assert_int_equal(um_dialstate_parse(&st, GOOD, strlen(GOOD), err, sizeof(err)), 0);
    mode_t old = umask(0);
    assert_int_equal(um_dialstate_save(path, &st, err, sizeof(err)), 0);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/a/b", tmpl);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(um_dialstate_load(path, &got, err, sizeof(err)), 0);
    assert_memory_equal(&st.remembered, &got.remembered, sizeof(st.remembered));
    /* Rewritten in place: still one file in the directory (no temporary left). */
    st.remembered.at_s = 42;
    assert_int_equal(um_dialstate_save(path, &st, err, sizeof(err)), 0);
    assert_int_equal(um_dialstate_load(path, &got, err, sizeof(err)), 0);
    assert_true(got.remembered.at_s == 42);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    /* A bad file: the parser's error; an oversized one is not read whole. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("umbra-state 1\nbogus\n", f);
    fclose(f);
    assert_int_equal(um_dialstate_load(path, &got, err, sizeof(err)), UM_EINVAL);
    assert_string_equal(err, "line 2: unknown entry 'bogus'");
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < UM_DIALSTATE_MAX / 8 + 1; i++)
        fputs("#comment\n", f);
    fclose(f);
    assert_int_equal(um_dialstate_load(path, &got, err, sizeof(err)), UM_EINVAL);
    assert_string_equal(err, "longer than 65536 bytes");
    /* A directory is not a state file. */
    assert_int_equal(um_dialstate_load(dir, &got, err, sizeof(err)), UM_EINVAL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
}

static void test_default_path(void **state)
{
    (void)state;
    char p[256];
    setenv("XDG_STATE_HOME", "/x/state", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(um_dialstate_default_path(p, sizeof(p)), 0);
    assert_string_equal(p, "/x/state/umbra/state");
    setenv("XDG_STATE_HOME", "relative", 1);
    assert_int_equal(um_dialstate_default_path(p, sizeof(p)), 0);
    assert_string_equal(p, "/home/u/.local/state/umbra/state");
    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    assert_int_equal(um_dialstate_default_path(p, sizeof(p)), UM_ENOENT);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(um_dialstate_default_path(p, 10), UM_ENOSPC);
}

static void test_key_fp(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    char fa[UM_DIALSTATE_FP_LEN + 1], fb[UM_DIALSTATE_FP_LEN + 1];
    b[31] = 1;
    um_dialstate_key_fp(a, fa);
    um_dialstate_key_fp(b, fb);
    assert_string_not_equal(fa, fb);
    um_dialstate_key_fp(a, fb);
    assert_string_equal(fa, fb);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good), cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_parse_bad),  cmocka_unit_test(test_format_refuses_bad_fields),
        cmocka_unit_test(test_file),       cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_key_fp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
