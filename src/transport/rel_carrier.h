/* A reliable carrier over a datagram link (docs/internals/rel.md): the
 * reliability layer (rel.h) driven by a uv timer, presented as an
 * um_carrier_t (stream semantics, carrier.h) to the session above.
 *
 * The link (dns server: one conversation; dns client: the query machine;
 * later udp) is not owned: it hands every packet of the peer to
 * um_rel_carrier_input and pulls packets with um_rel_carrier_output at each
 * send opportunity. When rel has something to send (new data, an ack, a
 * resend) the carrier calls link->want_output, deferred to the loop (never
 * from inside a carrier call); a pushing link then calls
 * um_rel_carrier_output until *n = 0, a pulling one makes an opportunity when
 * it can. um_rel_carrier_detach_link: the link goes away (no more
 * want_output; the stream ends with UM_ETIMEDOUT unless already finished).
 *
 * Ownership: um_rel_carrier_new allocates; close() through the carrier ops
 * frees it (the timer's memory in its close callback), and no callback runs
 * after close returns. Read callbacks are deferred to the loop; their bytes
 * are borrowed for the call. */
#ifndef UM_TRANSPORT_REL_CARRIER_H
#define UM_TRANSPORT_REL_CARRIER_H

#include <stdbool.h>
#include <uv.h>

#include "transport/carrier.h"
#include "transport/rel.h"

typedef struct um_rel_carrier um_rel_carrier_t;
typedef struct {
    void (*want_output)(void *ud);
    void *ud;
} um_rel_link_t; /* rel has something to send: the link makes a send opportunity when it can */

extern const um_carrier_ops_t um_rel_carrier_ops;

/* cfg and link are copied (link->ud borrowed until detach or close). */
int um_rel_carrier_new(uv_loop_t *loop, const um_rel_cfg_t *cfg, const um_rel_link_t *link,
                       um_rel_carrier_t **out);
um_carrier_t *um_rel_carrier_base(um_rel_carrier_t *rc); /* close() via the carrier frees rc */
/* A packet of the peer (borrowed). UM_EPROTO: dropped; UM_EPIPE: closed. */
int um_rel_carrier_input(um_rel_carrier_t *rc, const uint8_t *pkt, size_t n);
/* A send opportunity of at most cap bytes; *n = 0: nothing to send. */
int um_rel_carrier_output(um_rel_carrier_t *rc, uint8_t *out, size_t cap, size_t *n);
bool um_rel_carrier_wants_output(const um_rel_carrier_t *rc);
void um_rel_carrier_detach_link(um_rel_carrier_t *rc); /* the link is going away */

/* Additions beyond the contract. */
um_rel_t *um_rel_carrier_rel(um_rel_carrier_t *rc); /* borrowed: stats, poll hints */
/* The link learns that the carrier's owner closed it: cb(ud) runs once,
 * inside close() (the only callback that does), so the link can drop its
 * pointer before the memory goes; after it, no um_rel_carrier_* call. */
void um_rel_carrier_on_close(um_rel_carrier_t *rc, void (*cb)(void *ud), void *ud);

#endif
