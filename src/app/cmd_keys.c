/* umbra genkey / umbra pubkey */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/cli.h"
#include "crypto/keys.h"

const char um_usage_genkey[] =
    "usage: umbra genkey [--sign]\n\n"
    "Prints a new X25519 private key in base64 on standard output. Store it in a\n"
    "file only you can read:  umask 077; umbra genkey > private.key\n"
    "A warning is printed when standard output is a file others can read.\n"
    "  --sign   an operator's signing key instead (Ed25519 seed, 43 characters\n"
    "           base64url) for 'umbra list sign'\n";

const char um_usage_pubkey[] = "usage: umbra pubkey [--sign] < private.key\n\n"
                               "Reads a base64 private key on standard input and prints its public "
                               "key.\n  umbra genkey | tee private.key | umbra pubkey\n"
                               "  --sign   the key is an operator's signing key (umbra genkey "
                               "--sign);\n           prints its operator-key (o= in links)\n";

int um_cmd_genkey(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--sign") == 0) return um_cmd_genkey_sign();
    if (argc > 1) {
        um_cli_error("genkey", "takes no arguments");
        return UM_EXIT_USAGE;
    }
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        fprintf(stderr, "umbra genkey: warning: writing a private key to a file readable by "
                        "group or others (run 'umask 077' first, or chmod 600 the file)\n");
    uint8_t priv[UM_KEY_LEN];
    char text[UM_KEY_B64_LEN + 1];
    um_key_generate(priv);
    um_key_to_b64(text, priv);
    sodium_memzero(priv, sizeof(priv));
    int ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
    sodium_memzero(text, sizeof(text));
    if (!ok) {
        um_cli_error("genkey", "cannot write to standard output");
        return UM_EXIT_RUNTIME;
    }
    return UM_EXIT_OK;
}

int um_cmd_pubkey(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--sign") == 0) return um_cmd_pubkey_sign();
    if (argc > 1) {
        um_cli_error("pubkey", "takes no arguments (the private key comes on standard input)");
        return UM_EXIT_USAGE;
    }
    char in[256];
    size_t n = fread(in, 1, sizeof(in), stdin);
    uint8_t priv[UM_KEY_LEN], pub[UM_KEY_LEN];
    int r = n < sizeof(in) ? um_key_from_b64(priv, in, n) : -1;
    sodium_memzero(in, sizeof(in));
    if (r == 0) r = um_key_public(pub, priv);
    sodium_memzero(priv, sizeof(priv));
    if (r != 0) {
        um_cli_error("pubkey", "standard input is not a base64 X25519 private key (expected the "
                               "44 characters printed by 'umbra genkey')");
        return UM_EXIT_CONFIG;
    }
    char text[UM_KEY_B64_LEN + 1];
    um_key_to_b64(text, pub);
    printf("%s\n", text);
    return fflush(stdout) == 0 ? UM_EXIT_OK : UM_EXIT_RUNTIME;
}
