#include "app/cli.h"

#include <qrencode.h>
#include <stdarg.h>
#include <stdio.h>

void um_cli_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "umbra %s: %s\n", cmd, msg);
}

int um_cli_print_qr(FILE *f, const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (!qr) return -1;
    int w = qr->width, margin = 2;
    /* Two modules per character cell: upper and lower half blocks. Dark
     * modules print as spaces on a light background for scanner contrast. */
    for (int y = -margin; y < w + margin; y += 2) {
        for (int x = -margin; x < w + margin; x++) {
            int top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
            int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w && (qr->data[(y + 1) * w + x] & 1);
            fputs(top && bot ? " "
                  : top      ? "\xe2\x96\x84"
                  : bot      ? "\xe2\x96\x80"
                             : "\xe2\x96\x88",
                  f);
        }
        fputc('\n', f);
    }
    QRcode_free(qr);
    return 0;
}
