/* A relay joins two streams (um_conn_t of any implementation) and copies
 * bytes both ways with backpressure: a side stops being read while the other
 * side's queue is above UM_CONN_HIGH_WATER and resumes on its drain signal.
 * Half-close travels across; an error on either side ends both.
 *
 * Ownership: the relay takes both conns (it closes them) and frees itself
 * when both directions are done; on_end is called once, just before. */
#ifndef UM_TUNNEL_RELAY_H
#define UM_TUNNEL_RELAY_H

#include <stdint.h>
#include <uv.h>

#include "proxy/conn.h"

typedef struct um_relay um_relay_t;
/* A side's on_open (for streams opened with um_relay_cbs_*): result. */
typedef void (*um_relay_open_cb)(um_relay_t *r, int side, int result, void *ud);
typedef void (*um_relay_end_cb)(um_relay_t *r, uint64_t a_to_b, uint64_t b_to_a, void *ud);

/* Streams joined by a relay are opened (or accepted) with these callbacks
 * and the relay as their arg: um_relay_alloc() first, open the streams, then
 * um_relay_start() once both are open. */
extern const um_conn_cbs_t um_relay_cbs_a, um_relay_cbs_b;

um_relay_t *um_relay_alloc(uv_loop_t *loop, um_relay_open_cb open_cb, um_relay_end_cb end_cb,
                           void *ud);
/* Both sides open: start copying (each stream through its own ops). */
void um_relay_start(um_relay_t *r, um_conn_t *a, um_conn_t *b);
/* Ends the relay now (both streams closed), e.g. on shutdown. */
void um_relay_abort(um_relay_t *r);
/* Frees a relay that was never started (its streams closed by the caller). */
void um_relay_discard(um_relay_t *r);
/* cb runs once per side, right after the side's first bytes were written to
 * the other side (from inside that side's on_data, as its last step), e.g.
 * to push a stream's first response bytes out in the turn they were read
 * (um_tunnel_flush). The relay may end inside cb: cb must not use it after. */
typedef void (*um_relay_first_cb)(um_relay_t *r, int side, void *ud);
void um_relay_set_first(um_relay_t *r, um_relay_first_cb cb);

#endif
