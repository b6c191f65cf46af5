/* umbra status: ask a running client over its local control socket. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/control.h"

#define REPORT_READ_MAX (1u << 20) /* a client's report is a few KiB */

const char um_usage_status[] =
    "usage: umbra status [--socket PATH]\n\n"
    "Shows the state of a running client (sessions, RTT, byte counts), read from its\n"
    "local control socket.\n"
    "  --socket PATH   control socket (default $XDG_RUNTIME_DIR/umbra/umbra.sock, or\n"
    "                  ${TMPDIR:-/tmp}/umbra-<uid>/umbra.sock)\n"
    "Only a socket served by our own user is read, and control characters in the\n"
    "report are shown as '?'.\n";

int um_cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    char def[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 's') return UM_EXIT_USAGE;
        path = optarg;
    }
    if (optind != argc) {
        um_cli_error("status", "unexpected argument '%s'", argv[optind]);
        return UM_EXIT_USAGE;
    }
    if (!path) {
        char why[256];
        if (um_control_default_path(def, sizeof(def), false, why, sizeof(why)) != 0) {
            um_cli_error("status", "no running client: %s", why);
            return UM_EXIT_RUNTIME;
        }
        path = def;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        um_cli_error("status", "--socket '%s': path too long", path);
        return UM_EXIT_USAGE;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        um_cli_error("status", "no running client at %s (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        return UM_EXIT_RUNTIME;
    }
    unsigned uid;
    if (um_control_peer_ok(fd, &uid) != 0) {
        um_cli_error("status", "%s is served by uid %u, not by us (uid %u): not reading it", path,
                     uid, (unsigned)getuid());
        close(fd);
        return UM_EXIT_RUNTIME;
    }
    /* The client answers every connection with its report and closes. A
     * UTF-8 sequence split across reads is kept for the next round. */
    char buf[4096 + 4], clean[sizeof(buf)];
    size_t have = 0, total = 0;
    ssize_t n;
    while (total < REPORT_READ_MAX && (n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
        have += (size_t)n;
        total += (size_t)n;
        size_t keep = 0;
        while (keep < 3 && keep < have && (buf[have - 1 - keep] & 0xc0) == 0x80)
            keep++;
        if (keep < have && (unsigned char)buf[have - 1 - keep] >= 0xc0)
            keep++; /* an unfinished sequence at the end: its lead byte too */
        else
            keep = 0;
        fwrite(clean, 1, um_control_sanitize(clean, buf, have - keep), stdout);
        memmove(buf, buf + have - keep, keep);
        have = keep;
    }
    fwrite(clean, 1, um_control_sanitize(clean, buf, have), stdout);
    close(fd);
    return UM_EXIT_OK;
}
