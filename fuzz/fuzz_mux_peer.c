/* The whole mux fed arbitrary bytes as a peer, with pulls, ticks and the
 * application's calls in between. The input is a script: each step starts
 * with an opcode byte. Whatever happens, nothing crashes, leaks or grows
 * without bound, and after a fatal error only the GOAWAY comes out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mux/mux.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    um_mux_config_t c;
    um_mux_config_default(&c);
    c.max_streams = 16;
    c.max_pending_opens = 4;
    c.max_assocs = 4;
    c.record_size = 64 + (size_t)(data[0] & 0x3f) * 64;
    c.ping_interval_ms = 50;
    c.ping_timeout_ms = 500;
    um_mux_t *m = um_mux_new(data[0] & 0x80 ? UM_MUX_CLIENT : UM_MUX_SERVER, &c);
    if (!m) abort();
    uint8_t out[8192], tmp[512];
    memset(tmp, 'a', sizeof(tmp));
    uint64_t now = 1;
    uint32_t last_id = 1, assoc = 0;
    size_t off = 1;
    um_addr_t d;
    memset(&d, 0, sizeof(d));
    d.type = UM_ADDR_IPV4;
    d.u.v4[0] = 127;
    d.u.v4[3] = 1;
    d.port = 80;
    for (int step = 0; step < 4096 && off < size; step++) {
        uint8_t op = data[off++];
        size_t arg = op >> 3;
        switch (op & 7) {
        case 0:
        case 1:
        case 2: { /* feed the next bytes */
            size_t n = arg * 7 + 1;
            if (n > size - off) n = size - off;
            int r = um_mux_feed(m, data + off, n);
            if (r != 0 && r != um_mux_error(m)) abort();
            off += n;
            break;
        }
        case 3: { /* pull */
            size_t n = um_mux_pull(m, out, sizeof(out));
            if (n > c.record_size) abort();
            break;
        }
        case 4:
            now += arg * 10;
            um_mux_tick(m, now);
            break;
        case 5: { /* application reacts to events */
            um_mux_event_t ev;
            for (int i = 0; i < 64 && um_mux_poll(m, &ev); i++) {
                size_t got;
                switch (ev.type) {
                case UM_MUX_EV_OPENED:
                    um_mux_stream_accept(m, ev.id, arg & 1 ? UM_MUX_OK : UM_MUX_ERR_REFUSED);
                    last_id = ev.id;
                    break;
                case UM_MUX_EV_READABLE:
                    while (um_mux_stream_read(m, ev.id, out, sizeof(out), &got) == 0) {
                    }
                    last_id = ev.id;
                    break;
                case UM_MUX_EV_DGRAM:
                    if (ev.len && !ev.data) abort();
                    assoc = ev.id;
                    break;
                default: break;
                }
            }
            break;
        }
        case 6: { /* application writes, shuts down, resets */
            size_t acc;
            switch (arg & 3) {
            case 0: um_mux_stream_write(m, last_id, tmp, arg * 16, &acc); break;
            case 1: um_mux_stream_shutdown(m, last_id); break;
            case 2: um_mux_stream_reset(m, last_id, UM_MUX_RST_CANCEL); break;
            default: um_mux_stream_open(m, &d, &last_id); break;
            }
            break;
        }
        default: /* datagrams and go-away */
            switch (arg & 3) {
            case 0: um_mux_assoc_open(m, &assoc); break;
            case 1: um_mux_dgram_send(m, assoc, &d, tmp, arg * 8); break;
            case 2: um_mux_assoc_close(m, assoc); break;
            default: um_mux_goaway(m, UM_MUX_GOAWAY_NORMAL); break;
            }
            break;
        }
    }
    if (um_mux_error(m)) { /* only the final frames, then silence */
        for (int i = 0; i < 1000 && um_mux_pull(m, out, sizeof(out)) > 0; i++) {
        }
        if (um_mux_pull(m, out, sizeof(out)) != 0) abort();
    }
    um_mux_free(m);
    return 0;
}
