/* umbra: one binary, dispatching through a table of subcommands. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "app/cli.h"
#include "crypto/keys.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const char usage_version[] = "usage: umbra version\n\nPrints the version of umbra.\n";
static const char usage_help[] = "usage: umbra help [command]\n\nShows help for a command.\n";

static const um_cmd_t commands[] = {
    {"genkey", um_cmd_genkey, "print a new private key", um_usage_genkey},
    {"pubkey", um_cmd_pubkey, "read a private key on stdin, print its public key", um_usage_pubkey},
    {"server", um_cmd_server, "run a server, or manage it (init, add-client, clients, kick, ...)",
     um_usage_server},
    {"client", um_cmd_client, "run a client with local SOCKS5/HTTP proxies", um_usage_client},
    {"link", um_cmd_link, "show what an umbra:// share link holds", um_usage_link},
    {"status", um_cmd_status, "show the state of a running client", um_usage_status},
    {"list", um_cmd_list, "sign or show a signed server list (sign, show)", um_usage_list},
    {"version", cmd_version, "print the version", usage_version},
    {"help", cmd_help, "show help for a command", usage_help},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void overview(FILE *f)
{
    fprintf(f, "usage: umbra <command> [options]\n\n"
               "umbra is a censorship-resistant tunnel: a server outside the censored network,\n"
               "a client with local SOCKS5 and HTTP proxies, one encrypted multiplexed session.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'umbra help <command>' or 'umbra <command> --help' (-h) for details;\n"
               "'umbra --version' prints the version.\n"
               "exit codes: 0 ok, 1 usage, 2 configuration, 3 runtime.\n");
}

static const um_cmd_t *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        um_cli_error("version", "takes no arguments");
        return UM_EXIT_USAGE;
    }
    printf("umbra %s\n", UMBRA_VERSION);
    return UM_EXIT_OK;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        overview(stdout);
        return UM_EXIT_OK;
    }
    if (argc > 2) {
        um_cli_error("help", "takes at most one command name");
        return UM_EXIT_USAGE;
    }
    const um_cmd_t *c = find(argv[1]);
    if (!c) {
        um_cli_error("help", "unknown command '%s'", argv[1]);
        return UM_EXIT_USAGE;
    }
    fputs(c->usage, stdout);
    return UM_EXIT_OK;
}

/* Every stream and pre-auth connection is a descriptor, and the usual soft
 * limit of 1024 is far below what the hard limit allows: raise it, so that
 * one client's dials cannot starve the others (the dial budgets in
 * src/exit/direct.c are sized from the result, logged there at debug). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl); /* failure keeps the old limit: not fatal */
}

int main(int argc, char **argv)
{
    raise_nofile();
    /* A peer that closes first must give an error return, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (um_crypto_init() != 0) {
        fprintf(stderr, "umbra: cannot initialise libsodium\n");
        return UM_EXIT_RUNTIME;
    }
    if (argc < 2) {
        overview(stderr);
        return UM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        overview(stdout);
        return UM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) return cmd_version(1, argv + 1);
    const um_cmd_t *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "umbra: unknown command '%s' (try 'umbra help')\n", argv[1]);
        return UM_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return UM_EXIT_OK;
        }
    }
    optind = 1; /* each command parses its own argv with getopt_long */
    return c->run(argc - 1, argv + 1);
}
