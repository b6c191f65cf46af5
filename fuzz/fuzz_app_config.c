/* Fuzz the config parser (libinih + our line and key handling): any bytes
 * must give 0 or an error message naming the file, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    um_config_t c;
    char err[UM_ERR_MAX];
    um_config_init(&c);
    err[0] = '\0';
    int r = um_config_parse(&c, "f.conf", (const char *)data, size, err, sizeof(err));
    if (r == 0) r = um_config_validate(&c, err, sizeof(err));
    if (r != 0 && strncmp(err, "f.conf", 6) != 0) abort(); /* every error names the file */
    um_config_free(&c);
    return 0;
}
