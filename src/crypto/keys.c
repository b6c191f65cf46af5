#include "crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/b64.h"
#include "util/err.h"

int um_crypto_init(void)
{
    return sodium_init() < 0 ? UM_EIO : 0;
}

void um_key_generate(uint8_t priv[UM_KEY_LEN])
{
    randombytes_buf(priv, UM_KEY_LEN);
    /* Clamp as RFC 7748 does, so the stored key is canonical. */
    priv[0] &= 248;
    priv[31] &= 127;
    priv[31] |= 64;
}

int um_key_public(uint8_t pub[UM_KEY_LEN], const uint8_t priv[UM_KEY_LEN])
{
    return crypto_scalarmult_base(pub, priv) == 0 ? 0 : UM_EINVAL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int um_key_from_b64(uint8_t key[UM_KEY_LEN], const char *s, size_t n)
{
    while (n && is_space(*s)) {
        s++;
        n--;
    }
    while (n && is_space(s[n - 1]))
        n--;
    if (n != UM_KEY_B64_LEN) return UM_EINVAL;
    return um_b64_decode_key(key, s, n, UM_B64_STD);
}

void um_key_to_b64(char out[UM_KEY_B64_LEN + 1], const uint8_t key[UM_KEY_LEN])
{
    um_b64_encode(out, UM_KEY_B64_LEN + 1, key, UM_KEY_LEN, UM_B64_STD);
}

int um_key_load_file(uint8_t key[UM_KEY_LEN], const char *path, int *loose_perms)
{
    char text[128];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? UM_ENOENT : UM_EIO;
    if (fstat(fd, &st) == 0 && loose_perms) *loose_perms = (st.st_mode & 077) != 0;
    ssize_t n = read(fd, text, sizeof(text));
    close(fd);
    int r = n < 0 ? UM_EIO : um_key_from_b64(key, text, (size_t)n);
    sodium_memzero(text, sizeof(text));
    return r;
}
