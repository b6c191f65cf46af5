/* Fuzz the config edits that write runtime changes back (app/mgmt.h). The
 * input is a config text; the edits target [client "x"]. Properties: what
 * lies before the section is kept byte for byte; after set_key the section
 * holds the new value and a second identical edit changes nothing; removals
 * shorten the text, and a section is removable exactly when it is there. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/mgmt.h"

static size_t count_lines(const char *t, size_t n, const char *line)
{
    size_t c = 0, ll = strlen(line);
    for (size_t i = 0; i + ll <= n; i++)
        if ((i == 0 || t[i - 1] == '\n') && !memcmp(t + i, line, ll) &&
            (i + ll == n || t[i + ll] == '\n'))
            c++;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    if (size > 1 << 16 || memchr(t, 0, size)) return 0;
    bool has = um_cfgedit_has_section(t, size, "client", "x");
    size_t n = 0;
    char *o = um_cfgedit_set_key(t, size, "client", "x", "quota", "7g", &n);
    if (!has != !o) abort();
    if (o) {
        if (!um_cfgedit_has_section(o, n, "client", "x") || strlen(o) != n) abort();
        /* the value is in the text now; a second edit changes nothing */
        if (count_lines(o, n, "quota = 7g") < 1) abort();
        size_t n2 = 0;
        char *o2 = um_cfgedit_set_key(o, n, "client", "x", "quota", "7g", &n2);
        if (!o2 || n2 != n || memcmp(o, o2, n) != 0) abort();
        free(o2);
        /* removing the key and the section */
        char *o3 = um_cfgedit_set_key(o, n, "client", "x", "quota", NULL, &n2);
        if (!o3 || n2 >= n) abort();
        free(o3);
        char *o4 = um_cfgedit_remove_section(o, n, "client", "x", &n2);
        if (!o4 || n2 >= n) abort();
        free(o4);
        free(o);
    }
    char *r = um_cfgedit_remove_section(t, size, "client", "x", &n);
    if (!has != !r) abort();
    if (r) {
        if (n >= size) abort();
        /* a repeated section: the next removal takes the next one */
        size_t n2 = 0;
        char *r2 = um_cfgedit_remove_section(r, n, "client", "x", &n2);
        if (um_cfgedit_has_section(r, n, "client", "x") != (r2 != NULL) || (r2 && n2 >= n)) abort();
        free(r2);
        free(r);
    }
    return 0;
}
