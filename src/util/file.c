#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int um_file_read(const char *path, size_t max, char **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return UM_ENOENT;
    }
    char *t = NULL;
    size_t len = 0, cap = 0;
    int r = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                snprintf(err, errlen, "%s: larger than %zu MiB", path, max >> 20);
                r = UM_EINVAL;
                break;
            }
            size_t nc = cap ? cap * 2 : 65536;
            if (nc > max) nc = max;
            char *x = realloc(t, nc);
            if (!x) {
                snprintf(err, errlen, "%s: out of memory", path);
                r = UM_ENOMEM;
                break;
            }
            t = x;
            cap = nc;
        }
        size_t got = fread(t + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp)) {
                snprintf(err, errlen, "%s: read error", path);
                r = UM_EIO;
            }
            break;
        }
    }
    fclose(fp);
    if (r != 0) {
        free(t);
        return r;
    }
    *out = t;
    *n = len;
    return 0;
}
