/* The umbra command line: one binary, a table of subcommands (main.c), each
 * a um_cmd_<name>(argc, argv) returning one of the exit codes below. */
#ifndef UM_APP_CLI_H
#define UM_APP_CLI_H

#include <stdio.h>

enum {
    UM_EXIT_OK = 0,
    UM_EXIT_USAGE = 1,   /* bad command line */
    UM_EXIT_CONFIG = 2,  /* bad configuration, key or link */
    UM_EXIT_RUNTIME = 3, /* failed while running */
};

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage; /* full help text */
} um_cmd_t;

int um_cmd_genkey(int argc, char **argv);
int um_cmd_pubkey(int argc, char **argv);
int um_cmd_server(int argc, char **argv);
/* The management subcommands of 'umbra server' (cmd_mgmt.c): an exit code,
 * or -1 when argv is not one of them. */
int um_cmd_server_mgmt(int argc, char **argv);
int um_cmd_client(int argc, char **argv);
int um_cmd_link(int argc, char **argv);
int um_cmd_status(int argc, char **argv);
int um_cmd_list(int argc, char **argv);
/* umbra genkey --sign, umbra pubkey --sign (src/app/cmd_list.c) */
int um_cmd_genkey_sign(void);
int um_cmd_pubkey_sign(void);

extern const char um_usage_genkey[], um_usage_pubkey[], um_usage_server[], um_usage_client[],
    um_usage_link[], um_usage_status[], um_usage_list[];

/* One line "umbra <cmd>: message" on stderr. */
void um_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a QR code of text to f with Unicode half blocks. 0 or -1. */
int um_cli_print_qr(FILE *f, const char *text);

#endif
