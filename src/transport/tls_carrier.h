/* The `tls` transport's carrier (docs/PROTOCOL.md 8.5): a carrier layered
 * over another (TCP) whose stream is cut into TLS 1.3 application_data
 * records on the way out and taken apart on the way in.
 *
 * Ownership: um_tls_carrier_new takes ownership of `inner` (closing the TLS
 * carrier closes it); the deframer state is copied (it says where the peer's
 * record stream stands after the first flights). Each inner read becomes at
 * most one read callback, with the payload bytes of that read copied
 * together, so reads behave exactly as the inner carrier's. */
#ifndef UM_TRANSPORT_TLS_CARRIER_H
#define UM_TRANSPORT_TLS_CARRIER_H

#include "transport/carrier.h"
#include "transport/tls_record.h"

extern const um_carrier_ops_t um_tls_carrier_ops;

int um_tls_carrier_new(um_carrier_t *inner, const um_tls_deframer_t *rx, um_carrier_t **out);

#endif
