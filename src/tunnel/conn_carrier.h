/* A carrier (transport/carrier.h) over a stream (proxy/conn.h): the byte
 * stream a bridge's tunnel gives a client becomes the connection its session
 * to the exit runs on (docs/PROTOCOL.md "Bridges"). The exit session's
 * records are the stream's bytes; the bridge sees only those.
 *
 * Semantics are the carrier's, with what a stream can offer:
 *   - writes are taken whole (the stream holds them, within its own bound,
 *     UM_ENOSPC beyond); the drain callback is the stream's on_drain, which
 *     follows once the stream was above UM_CONN_HIGH_WATER and is back at
 *     low water;
 *   - the stream's end (on_eof) is a read of status UM_EPIPE, delivered only
 *     while reading; an error (the bridge's tunnel went down, a reset) is
 *     delivered at once;
 *   - shutdown half-closes the stream, close resets it;
 *   - absorb is the identity. */
#ifndef UM_TUNNEL_CONN_CARRIER_H
#define UM_TUNNEL_CONN_CARRIER_H

#include "proxy/conn.h"
#include "transport/carrier.h"
#include "util/addr.h"

extern const um_carrier_ops_t um_conn_carrier_ops;

/* cb runs exactly once, on a later turn (from the stream's on_open): status
 * 0 and the carrier (the callee's to keep), or a negative UM_E* code (the
 * carrier is gone). um_carrier_close(*out) before cb cancels the open (cb
 * does not run). Returns 0, or an error (nothing to close, no callback). */
typedef void (*um_conn_carrier_open_cb)(void *arg, int status, um_carrier_t *car);
int um_conn_carrier_open(um_conn_provider_t prov, const um_addr_t *dst, um_conn_carrier_open_cb cb,
                         void *arg, um_carrier_t **out);

/* A um_conn_result_t as a UM_E* code (mirroring errno where one fits). */
int um_conn_result_to_err(int result);

#endif
