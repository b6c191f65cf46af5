/* The carrier of one dns conversation (docs/PROTOCOL.md section 13): the
 * reliability layer's carrier (rel_carrier.h) seen through a thin wrapper
 * that tells the conversation's owner when the layer above closes it, and
 * lets the owner end the stream with an error of its own (the server no
 * longer knows the conversation). Shared by the dns server and client.
 *
 * Ownership: two holders, the layer above (through the carrier: close())
 * and the link (um_dns_car_release); the memory goes when both are done.
 * After close() the link's calls are no-ops and input is dropped. */
#ifndef UM_TRANSPORT_DNS_CAR_H
#define UM_TRANSPORT_DNS_CAR_H

#include <stdbool.h>
#include <uv.h>

#include "transport/carrier.h"
#include "transport/rel.h"
#include "transport/rel_carrier.h"

typedef struct um_dns_car um_dns_car_t;

/* want_output(ud): rel has something to send; closed(ud): the layer above
 * closed the carrier (called from inside close(), after which the link may
 * release). */
typedef struct {
    void (*want_output)(void *ud);
    void (*closed)(void *ud);
    void *ud;
} um_dns_car_link_t;

int um_dns_car_new(uv_loop_t *loop, const um_rel_cfg_t *cfg, const um_dns_car_link_t *link,
                   um_dns_car_t **out);
um_carrier_t *um_dns_car_base(um_dns_car_t *d);
bool um_dns_car_open(const um_dns_car_t *d); /* not yet closed from above */
int um_dns_car_input(um_dns_car_t *d, const uint8_t *p, size_t n);
int um_dns_car_output(um_dns_car_t *d, uint8_t *out, size_t cap, size_t *n);
bool um_dns_car_wants_output(const um_dns_car_t *d);
um_rel_t *um_dns_car_rel(um_dns_car_t *d); /* NULL once closed */
/* Ends the stream for the layer above with err (delivered on a later turn
 * of the loop); input is dropped from then on. */
void um_dns_car_fail(um_dns_car_t *d, int err);
/* The link lets go (no more link callbacks); frees once closed from above. */
void um_dns_car_release(um_dns_car_t *d);

#endif
