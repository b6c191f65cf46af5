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

const char um_usage_status[] =
    "usage: umbra status [--socket PATH]\n\n"
    "Shows the state of a running client (sessions, RTT, byte counts), read from its\n"
    "local control socket.\n"
    "  --socket PATH   control socket (default $XDG_RUNTIME_DIR/umbra.sock, or\n"
    "                  /tmp/umbra-<uid>.sock)\n";

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
        um_control_default_path(def, sizeof(def));
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
    char buf[4096];
    ssize_t n;
    /* The client answers every connection with its report and closes. */
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
    return UM_EXIT_OK;
}
