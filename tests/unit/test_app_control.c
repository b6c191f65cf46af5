/* The control socket's local safety: the private directory of the default
 * path (made 0700, refused when someone else made it or it is a symlink or
 * open to others), the peer-credential check, and the sanitiser that keeps a
 * report from driving the terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/control.h"
#include "util/err.h"

static size_t san(const char *in, size_t n, char *out)
{
    size_t k = um_control_sanitize(out, in, n);
    out[k] = 0;
    return k;
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[256];
    /* Plain text, newlines and tabs pass; UTF-8 passes. */
    const char *ok =
        "session 1: vps 127.0.0.1:443 rtt 3 ms\n\tbytes \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n";
    assert_int_equal(san(ok, strlen(ok), out), strlen(ok));
    assert_string_equal(out, ok);
    /* ESC sequences, CR, BEL, backspace, DEL, NUL: each byte a '?'. */
    const char bad[] = "a\x1b]0;pwned\x07\x1b[2Jb\rc\bd\x7f"
                       "e";
    san(bad, sizeof(bad) - 1, out);
    assert_string_equal(out, "a?]0;pwned??[2Jb?c?d?e");
    assert_int_equal(san("x\0y", 3, out), 3);
    assert_memory_equal(out, "x?y", 3);
    /* C1 controls: raw (0x9b is CSI on 8-bit terminals) and as UTF-8 (U+009B). */
    san("\x9b"
        "31m",
        4, out);
    assert_string_equal(out, "?31m");
    san("\xc2\x9b"
        "31m",
        5, out);
    assert_string_equal(out, "??31m");
    /* U+00A0 is not a control. */
    san("\xc2\xa0", 2, out);
    assert_string_equal(out, "\xc2\xa0");
    /* Broken UTF-8: truncated, overlong, surrogate, beyond U+10FFFF. */
    san("\xe2\x82", 2, out);
    assert_string_equal(out, "??");
    san("\xc0\x9b", 2, out);
    assert_string_equal(out, "??");
    san("\xe0\x82\x9b", 3, out);
    assert_string_equal(out, "???");
    san("\xed\xa0\x80", 3, out);
    assert_string_equal(out, "???");
    san("\xf4\x90\x80\x80", 4, out);
    assert_string_equal(out, "????");
    /* Every single byte: never a control character out, never longer. */
    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        assert_int_equal(um_control_sanitize(out, &in, 1), 1);
        unsigned char o = (unsigned char)out[0];
        assert_false((o < 0x20 && o != '\n' && o != '\t') || (o >= 0x7f && o <= 0x9f));
    }
}

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/umbra-test-control.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    chmod(tmpdir, 01777);
    setenv("TMPDIR", tmpdir, 1);
    unsetenv("XDG_RUNTIME_DIR");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_default_path(void **state)
{
    (void)state;
    char path[108], why[256], dir[300], want[320];
    snprintf(dir, sizeof(dir), "%s/umbra-%u", tmpdir, (unsigned)getuid());
    snprintf(want, sizeof(want), "%s/umbra.sock", dir);
    /* Missing and not to be created (umbra status). */
    assert_int_equal(um_control_default_path(path, sizeof(path), false, why, sizeof(why)),
                     UM_ENOENT);
    /* Created 0700 by the client. */
    assert_int_equal(um_control_default_path(path, sizeof(path), true, why, sizeof(why)), 0);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(lstat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(um_control_default_path(path, sizeof(path), false, why, sizeof(why)), 0);
    /* Open to others: refused, for status and client alike. */
    chmod(dir, 0755);
    assert_int_equal(um_control_default_path(path, sizeof(path), true, why, sizeof(why)),
                     UM_EACCES);
    assert_non_null(strstr(why, "mode 755"));
    rmdir(dir);
    /* A symlink (to a directory of ours, even): refused. */
    char real[320];
    snprintf(real, sizeof(real), "%s/elsewhere", tmpdir);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, dir), 0);
    assert_int_equal(um_control_default_path(path, sizeof(path), true, why, sizeof(why)),
                     UM_EACCES);
    assert_non_null(strstr(why, "not a directory"));
    unlink(dir);
    /* Owned by someone else (only root can make that here). */
    if (getuid() == 0) {
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(chown(dir, 65534, 65534), 0);
        assert_int_equal(um_control_default_path(path, sizeof(path), true, why, sizeof(why)),
                         UM_EACCES);
        assert_non_null(strstr(why, "belongs to uid 65534"));
        rmdir(dir);
    }
    /* XDG_RUNTIME_DIR of ours with 0700: <it>/umbra/umbra.sock. */
    char xdg[320];
    snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
    assert_int_equal(mkdir(xdg, 0700), 0);
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    assert_int_equal(um_control_default_path(path, sizeof(path), true, why, sizeof(why)), 0);
    snprintf(want, sizeof(want), "%s/umbra/umbra.sock", xdg);
    assert_string_equal(path, want);
    /* An XDG_RUNTIME_DIR open to others is not used: the TMPDIR fallback is. */
    chmod(xdg, 0777);
    assert_int_equal(um_control_default_path(path, sizeof(path), true, why, sizeof(why)), 0);
    snprintf(want, sizeof(want), "%s/umbra.sock", dir);
    assert_string_equal(path, want);
    unsetenv("XDG_RUNTIME_DIR");
}

static void test_peer(void **state)
{
    (void)state;
    int sv[2];
    unsigned uid = 12345;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(um_control_peer_ok(sv[0], &uid), 0);
    assert_int_equal(uid, (unsigned)getuid());
    close(sv[0]);
    close(sv[1]);
    /* Not a socket: refused. */
    assert_int_equal(um_control_peer_ok(1000, &uid), UM_EACCES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test_setup_teardown(test_default_path, setup, teardown),
        cmocka_unit_test(test_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
