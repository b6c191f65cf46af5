/* umbra server clients | add-client | remove-client | kick | set-quota |
 * set-expiry: ask a running server over its management socket
 * (docs/internals/management.md). add-client with -c FILE (and no
 * --socket) edits the file instead, as it always did (cmd_server.c). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/control.h"
#include "app/mgmt.h"

#define ANSWER_MAX (64u << 20)

static const char *const mgmt_cmds[] = {"clients", "add-client", "remove-client",
                                        "kick",    "set-quota",  "set-expiry"};

/* Sends one request, returns the parsed answer (NULL after saying why). */
static json_t *ask(const char *cmd, const char *path, json_t *req)
{
    char def[UM_CONTROL_PATH_MAX], why[256];
    if (!path) {
        if (um_control_default_path_named(def, sizeof(def), "umbra-server.sock", false, why,
                                          sizeof(why)) != 0) {
            um_cli_error(cmd, "no running server: %s (or give --socket PATH)", why);
            return NULL;
        }
        path = def;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        um_cli_error(cmd, "--socket '%s': path too long", path);
        return NULL;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        um_cli_error(cmd, "no running server at %s (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    unsigned uid;
    if (um_control_peer_ok(fd, &uid) != 0 && uid != 0) {
        um_cli_error(cmd, "%s is served by uid %u, not by us (uid %u): not asking it", path, uid,
                     (unsigned)getuid());
        close(fd);
        return NULL;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    size_t tn = text ? strlen(text) : 0;
    bool sent = text && write(fd, text, tn) == (ssize_t)tn && write(fd, "\n", 1) == 1;
    free(text);
    if (!sent) {
        um_cli_error(cmd, "cannot send the request to %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 65536, have = 0;
    char *buf = malloc(cap);
    ssize_t n = 0;
    while (buf && (n = read(fd, buf + have, cap - have)) > 0) {
        have += (size_t)n;
        if (have == cap && cap < ANSWER_MAX) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        } else if (have == cap) {
            break;
        }
    }
    close(fd);
    json_error_t je;
    json_t *ans = buf ? json_loadb(buf, have, 0, &je) : NULL;
    if (buf) sodium_memzero(buf, have); /* an answer may hold a new client's link */
    free(buf);
    if (!ans || !json_is_object(ans)) {
        um_cli_error(cmd, "no answer from the server at %s", path);
        json_decref(ans);
        return NULL;
    }
    if (!json_is_true(json_object_get(ans, "ok"))) {
        const char *e = json_string_value(json_object_get(ans, "error"));
        char clean[512];
        size_t cn = e ? strlen(e) : 0;
        if (cn >= sizeof(clean)) cn = sizeof(clean) - 1;
        cn = um_control_sanitize(clean, e ? e : "", cn);
        clean[cn] = '\0';
        um_cli_error(cmd, "%s", e ? clean : "refused");
        json_decref(ans);
        return NULL;
    }
    return ans;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void print_clients(json_t *ans)
{
    json_t *arr = json_object_get(ans, "clients");
    size_t i;
    json_t *c;
    printf("%-20s %-10s %-12s %7s %14s %14s %8s %-10s %s\n", "CLIENT", "STATE", "SESSIONS",
           "STREAMS", "BYTES-IN", "BYTES-OUT", "QUOTA", "EXPIRES", "LAST-SEEN");
    json_array_foreach(arr, i, c)
    {
        char ids[64] = "";
        size_t w = 0, j;
        json_t *s;
        json_array_foreach(json_object_get(c, "sessions"), j, s)
        {
            if (w < sizeof(ids) - 24)
                w += (size_t)snprintf(ids + w, sizeof(ids) - w, "%s%lld", w ? "," : "",
                                      (long long)json_integer_value(json_object_get(s, "id")));
        }
        printf("%-20s %-10s %-12s %7lld %14lld %14lld %8s %-10s %s\n", jstr(c, "name"),
               jstr(c, "state"), w ? ids : "-",
               (long long)json_integer_value(json_object_get(c, "streams")),
               (long long)json_integer_value(json_object_get(c, "bytes_in")),
               (long long)json_integer_value(json_object_get(c, "bytes_out")),
               jstr(c, "quota_text"), jstr(c, "expires"), jstr(c, "last_seen"));
    }
}

/* Whether argv (after "server") is a management subcommand for us. */
static bool is_ours(int argc, char **argv)
{
    if (argc < 2) return false;
    size_t i = 0;
    while (i < sizeof(mgmt_cmds) / sizeof(mgmt_cmds[0]) && strcmp(argv[1], mgmt_cmds[i]) != 0)
        i++;
    if (i == sizeof(mgmt_cmds) / sizeof(mgmt_cmds[0])) return false;
    if (strcmp(argv[1], "add-client") != 0) return true;
    /* add-client -c FILE without --socket: the file edit of cmd_server.c */
    bool file = false, sock = false;
    for (int k = 2; k < argc; k++) {
        if (!strcmp(argv[k], "-c") || !strncmp(argv[k], "--config", 8) ||
            !strncmp(argv[k], "-c", 2))
            file = true;
        if (!strncmp(argv[k], "--socket", 8)) sock = true;
    }
    return sock || !file;
}

int um_cmd_server_mgmt(int argc, char **argv)
{
    if (!is_ours(argc, argv)) return -1;
    const char *sub = argv[1];
    char cmd[48];
    snprintf(cmd, sizeof(cmd), "server %s", sub);
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"quota", required_argument, NULL, 'q'},
        {"expires", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {"qr", no_argument, NULL, 'Q'},
        {"no-qr", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *quota = NULL, *expires = NULL;
    int c, json = 0, qr = isatty(STDOUT_FILENO);
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'q': quota = optarg; break;
        case 'e': expires = optarg; break;
        case 'j': json = 1; break;
        case 'Q': qr = 1; break;
        case 'N': qr = 0; break;
        default: return UM_EXIT_USAGE;
        }
    }
    int want = !strcmp(sub, "clients")                                   ? 0
               : !strcmp(sub, "set-quota") || !strcmp(sub, "set-expiry") ? 2
                                                                         : 1;
    if (argc - optind != want) {
        um_cli_error(cmd, "expected %s (see 'umbra help server')",
                     want == 0   ? "no argument"
                     : want == 2 ? (!strcmp(sub, "set-quota") ? "NAME QUOTA" : "NAME DATE")
                     : !strcmp(sub, "kick") ? "a SESSION id or a client NAME"
                                            : "a client NAME");
        return UM_EXIT_USAGE;
    }
    if ((quota || expires) && strcmp(sub, "add-client") != 0) {
        um_cli_error(cmd, "--quota and --expires go with add-client (else set-quota, set-expiry)");
        return UM_EXIT_USAGE;
    }
    json_t *req = json_object();
    json_object_set_new(req, "cmd", json_string(sub));
    const char *arg = want ? argv[optind] : NULL;
    if (arg && !strcmp(sub, "kick") && arg[0] >= '1' && arg[0] <= '9' &&
        strspn(arg, "0123456789") == strlen(arg) && strlen(arg) < 16)
        json_object_set_new(req, "session", json_integer(strtoll(arg, NULL, 10)));
    else if (arg)
        json_object_set_new(req, "name", json_string(arg));
    if (want == 2)
        json_object_set_new(req, !strcmp(sub, "set-quota") ? "quota" : "expires",
                            json_string(argv[optind + 1]));
    if (quota) json_object_set_new(req, "quota", json_string(quota));
    if (expires) json_object_set_new(req, "expires", json_string(expires));
    /* Checked here too, so a mistake is told before any socket is asked. */
    char *text = json_dumps(req, JSON_COMPACT);
    um_mgmt_req_t rq;
    char why[256];
    int bad = !text || um_mgmt_parse(text, strlen(text), &rq, why, sizeof(why)) != 0;
    free(text);
    if (bad) {
        um_cli_error(cmd, "%s", why);
        json_decref(req);
        return UM_EXIT_USAGE;
    }
    json_t *ans = ask(cmd, path, req);
    json_decref(req);
    if (!ans) return UM_EXIT_RUNTIME;
    if (json) {
        char *out = json_dumps(ans, JSON_INDENT(2));
        if (out) printf("%s\n", out);
        if (out) sodium_memzero(out, strlen(out));
        free(out);
    } else if (!strcmp(sub, "clients")) {
        print_clients(ans);
    } else if (!strcmp(sub, "add-client")) {
        const char *link = jstr(ans, "link");
        fprintf(stderr,
                "umbra server add-client: added [client \"%s\"] to the running server and its "
                "config; send this link to the client over a private channel (it holds the "
                "client's key):\n",
                arg);
        printf("%s\n", link);
        if (qr) um_cli_print_qr(stdout, link);
    } else if (!strcmp(sub, "kick")) {
        json_t *ids = json_object_get(ans, "kicked");
        fprintf(stderr, "umbra server kick: ended %zu session(s)\n", json_array_size(ids));
    } else {
        fprintf(stderr, "umbra %s: done (config written, server reloaded)\n", cmd);
    }
    json_decref(ans);
    return UM_EXIT_OK;
}
