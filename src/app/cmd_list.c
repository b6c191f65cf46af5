/* umbra list sign | show, umbra genkey --sign, umbra pubkey --sign: an
 * operator's signed server lists (docs/PROTOCOL.md section 10). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/srvlist.h"
#include "util/b64.h"
#include "util/err.h"

const char um_usage_list[] =
    "usage: umbra list sign -k|--key KEYFILE [-o|--output OUT] IN\n"
    "       umbra list show [--key OPERATOR-KEY] FILE\n\n"
    "Signed server lists (docs/PROTOCOL.md section 10): the servers of an operator,\n"
    "signed with its Ed25519 key, that clients fetch and merge into their candidates.\n\n"
    "sign   reads the unsigned text IN ('-': standard input):\n"
    "         umbra-server-list 1\n"
    "         version 8\n"
    "         expires 2027-01-31T00:00:00Z\n"
    "         server umbra://<server-public-key>@host:port[?t=tls&sni=...]#name\n"
    "       checks it and writes it signed to OUT (default: standard output).\n"
    "       KEYFILE holds the signing key (umbra genkey --sign) and must be mode 0600.\n"
    "show   prints the version, expiry and servers of a signed list, and whether its\n"
    "       signature verifies: under --key (the operator-key clients trust) when\n"
    "       given, else only under the key the list names (then it says so).\n"
    "       Exit 0 only when the list is signed correctly and not expired.\n";

/* Reads up to cap bytes of a file ('-': standard input). Returns the length,
 * or -1 (err set), -2 when larger than cap. Caller frees *out. */
static long read_all(const char *path, size_t cap, uint8_t **out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return -1;
    uint8_t *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
    int bad = !buf || ferror(f);
    if (f != stdin) fclose(f);
    if (bad) {
        free(buf);
        errno = buf ? EIO : ENOMEM;
        return -1;
    }
    if (n > cap) {
        free(buf);
        return -2;
    }
    *out = buf;
    return (long)n;
}

/* A signing key (seed) as 43 characters base64url, white space around. */
static int seed_from_text(uint8_t seed[32], const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (n != UM_SIGN_KEY_B64_LEN) return UM_EINVAL;
    return um_b64_decode_key(seed, s, n, UM_B64_URL);
}

int um_cmd_genkey_sign(void)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        fprintf(stderr, "umbra genkey: warning: writing a signing key to a file readable by "
                        "group or others (run 'umask 077' first, or chmod 600 the file)\n");
    uint8_t seed[32];
    char text[48];
    randombytes_buf(seed, sizeof(seed));
    um_b64_encode(text, sizeof(text), seed, sizeof(seed), UM_B64_URL);
    sodium_memzero(seed, sizeof(seed));
    int ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
    sodium_memzero(text, sizeof(text));
    if (!ok) {
        um_cli_error("genkey", "cannot write to standard output");
        return UM_EXIT_RUNTIME;
    }
    return UM_EXIT_OK;
}

int um_cmd_pubkey_sign(void)
{
    char in[256];
    size_t n = fread(in, 1, sizeof(in), stdin);
    uint8_t seed[32], pub[32];
    int r = n < sizeof(in) ? seed_from_text(seed, in, n) : -1;
    sodium_memzero(in, sizeof(in));
    if (r != 0) {
        um_cli_error("pubkey", "standard input is not a signing key (expected the 43 "
                               "characters printed by 'umbra genkey --sign')");
        return UM_EXIT_CONFIG;
    }
    um_sign_public(pub, seed);
    sodium_memzero(seed, sizeof(seed));
    char text[48];
    um_b64_encode(text, sizeof(text), pub, sizeof(pub), UM_B64_URL);
    printf("%s\n", text);
    return fflush(stdout) == 0 ? UM_EXIT_OK : UM_EXIT_RUNTIME;
}

/* The signing key of KEYFILE, which only its owner may read. */
static int load_seed(uint8_t seed[32], const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        um_cli_error("list", "-k '%s': %s", path, strerror(errno));
        return UM_EXIT_CONFIG;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
        close(fd);
        um_cli_error("list",
                     "-k '%s': the signing key is readable by group or others; refusing it "
                     "(chmod 600 it, and consider it compromised if others could read it)",
                     path);
        return UM_EXIT_CONFIG;
    }
    char text[128];
    ssize_t n = read(fd, text, sizeof(text));
    close(fd);
    int r = n > 0 && (size_t)n < sizeof(text) ? seed_from_text(seed, text, (size_t)n) : UM_EINVAL;
    sodium_memzero(text, sizeof(text));
    if (r != 0) {
        um_cli_error("list",
                     "-k '%s': not a signing key (expected the 43 characters of 'umbra genkey "
                     "--sign')",
                     path);
        return UM_EXIT_CONFIG;
    }
    return UM_EXIT_OK;
}

static int list_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    const char *keyfile = NULL, *outpath = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "k:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keyfile = optarg; break;
        case 'o': outpath = optarg; break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (!keyfile || optind != argc - 1) {
        um_cli_error("list",
                     "sign: expected -k KEYFILE and one input file (see 'umbra help list')");
        return UM_EXIT_USAGE;
    }
    const char *in = argv[optind];
    uint8_t *body = NULL, *out = NULL, seed[32];
    long n = read_all(in, UM_SRVLIST_MAX_BYTES, &body);
    if (n == -2) {
        um_cli_error("list", "%s: larger than %d bytes", in, UM_SRVLIST_MAX_BYTES);
        return UM_EXIT_CONFIG;
    }
    if (n < 0) {
        um_cli_error("list", "%s: cannot read: %s", in, strerror(errno));
        return UM_EXIT_CONFIG;
    }
    int rc = load_seed(seed, keyfile);
    if (rc != UM_EXIT_OK) {
        free(body);
        return rc;
    }
    char err[512];
    size_t on = 0;
    int r = um_srvlist_sign(body, (size_t)n, seed, &out, &on, err, sizeof(err));
    sodium_memzero(seed, sizeof(seed));
    free(body);
    if (r != 0) {
        /* "line N: ..." as "IN:N: ..." */
        um_cli_error("list", "%s:%s", strcmp(in, "-") ? in : "(stdin)",
                     strncmp(err, "line ", 5) == 0 ? err + 5 : " cannot sign");
        return UM_EXIT_CONFIG;
    }
    FILE *f = outpath ? fopen(outpath, "wb") : stdout;
    if (!f) {
        um_cli_error("list", "-o '%s': %s", outpath, strerror(errno));
        free(out);
        return UM_EXIT_RUNTIME;
    }
    bool ok = fwrite(out, 1, on, f) == on;
    ok = (f == stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    free(out);
    if (!ok) {
        um_cli_error("list", "cannot write %s", outpath ? outpath : "standard output");
        return UM_EXIT_RUNTIME;
    }
    return UM_EXIT_OK;
}

static int list_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    const char *keytext = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keytext = optarg; break;
        default: return UM_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        um_cli_error("list", "show: expected one list file (see 'umbra help list')");
        return UM_EXIT_USAGE;
    }
    uint8_t trusted[32];
    if (keytext && (strlen(keytext) != UM_SIGN_KEY_B64_LEN ||
                    um_b64_decode_key(trusted, keytext, strlen(keytext), UM_B64_URL) != 0)) {
        um_cli_error("list", "--key '%s': expected a 43-character base64url operator key", keytext);
        return UM_EXIT_USAGE;
    }
    const char *path = argv[optind];
    uint8_t *p = NULL;
    long n = read_all(path, UM_SRVLIST_MAX_BYTES, &p);
    if (n == -2 || n < 0) {
        um_cli_error("list", "%s: %s", path,
                     n == -2 ? "larger than 65536 bytes (malformed)" : strerror(errno));
        return UM_EXIT_CONFIG;
    }
    um_srvlist_t l;
    char err[512];
    if (um_srvlist_parse(&l, p, (size_t)n, true, err, sizeof(err)) != 0) {
        um_cli_error("list", "%s: malformed: %s", path, err);
        free(p);
        return UM_EXIT_CONFIG;
    }
    char op[48], addr[UM_ADDR_STRLEN], key[48];
    um_b64_encode(op, sizeof(op), l.operator_key, 32, UM_B64_URL);
    int64_t now = (int64_t)time(NULL);
    printf("version:    %llu\n", (unsigned long long)l.version);
    printf("expires:    %s%s\n", l.expires_text, l.expires <= now ? " (expired)" : "");
    printf("operator:   %s\n", op);
    printf("servers:    %zu\n", l.n_servers);
    for (size_t i = 0; i < l.n_servers; i++) {
        const um_link_t *k = &l.servers[i];
        um_b64_encode(key, sizeof(key), k->server_public_key, 32, UM_B64_URL);
        printf("  server %s%s%s key %s %s", k->name[0] ? "\"" : "", k->name[0] ? k->name : "-",
               k->name[0] ? "\"" : "", key,
               k->transport == UM_TR_TLS  ? "tls"
               : k->transport == UM_TR_WS ? ""
                                          : "tcp");
        if (k->transport == UM_TR_TLS) printf(" sni=%s", k->sni);
        if (k->transport == UM_TR_WS) printf("ws path=%s host=%s", k->ws_path, k->ws_host);
        for (size_t a = 0; a < k->n_addrs; a++) {
            um_addr_format(&k->addrs[a], addr, sizeof(addr));
            printf("%s%s", a ? "," : " ", addr);
        }
        printf("\n");
    }
    int rc = UM_EXIT_OK;
    if (keytext) {
        um_srvlist_t v;
        um_srvlist_status_t st =
            um_srvlist_check(&v, p, (size_t)n, trusted, 0, now, err, sizeof(err));
        um_srvlist_free(&v);
        if (st == UM_SRVLIST_OK)
            printf("signature:  good (operator key given with --key)\n");
        else
            printf("signature:  %s: %s\n",
                   st == UM_SRVLIST_EXPIRED ? "good, but expired" : um_srvlist_reason(st), err);
        if (st != UM_SRVLIST_OK) rc = UM_EXIT_CONFIG;
    } else if (um_srvlist_sig_ok(&l, p, (size_t)n, l.operator_key)) {
        printf("signature:  good under the operator key the list names (not checked against a "
               "trusted key: give --key)\n");
        if (l.expires <= now) rc = UM_EXIT_CONFIG;
    } else {
        printf("signature:  bad signature\n");
        rc = UM_EXIT_CONFIG;
    }
    um_srvlist_free(&l);
    free(p);
    return rc;
}

int um_cmd_list(int argc, char **argv)
{
    if (argc < 2) {
        um_cli_error("list", "expected 'sign' or 'show' (see 'umbra help list')");
        return UM_EXIT_USAGE;
    }
    optind = 1;
    if (strcmp(argv[1], "sign") == 0) return list_sign(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0) return list_show(argc - 1, argv + 1);
    um_cli_error("list", "unknown subcommand '%s' (expected sign or show)", argv[1]);
    return UM_EXIT_USAGE;
}
