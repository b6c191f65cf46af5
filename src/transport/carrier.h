/* A carrier: one connection of some transport, as the layers above the
 * transport see it (docs/internals/transport.md). The tunnel, the connector,
 * the acceptor's splice and the relay use nothing else, so a transport is
 * added by writing one ops table (and one first-flight codec, codec.h)
 * without touching anything above src/session/.
 *
 * Every carrier object begins with `um_carrier_t` (its ops pointer), so
 *
 *     um_carrier_t *c = ...;  c->ops->write(c, p, n);
 *
 * works for any transport, and the inline wrappers below keep call sites
 * short. Semantics are those of a stream socket:
 *
 *   - reads are delivered to the read callback (bytes borrowed for the call);
 *     status UM_EPIPE is the peer's orderly end, another negative value an
 *     error; nothing is delivered while reading is stopped;
 *   - write copies the bytes, or refuses them whole with UM_ENOSPC when the
 *     queue would pass its bound (set_wq_max): that is the backpressure
 *     signal; the drain callback fires once the queue has fallen to a quarter
 *     of the bound after a refusal or after the queue passed half of it;
 *   - shutdown sends the transport's orderly end after the queued bytes;
 *   - close releases everything; no callback runs after it returns;
 *   - absorb takes bytes that were read from the wire on the carrier's
 *     behalf (those that followed a first flight in the same read) and
 *     returns the stream bytes they carry, as a read would have delivered
 *     them (identity for tcp; TLS records taken apart for tls). Synchronous:
 *     no callback runs.
 *
 * A carrier over an unreliable transport (datagram flag) is wrapped by the
 * reliability layer before a session sees it; the session always gets a
 * reliable, ordered pipe. */
#ifndef UM_TRANSPORT_CARRIER_H
#define UM_TRANSPORT_CARRIER_H

#include <stddef.h>
#include <stdint.h>

typedef struct um_carrier um_carrier_t;

typedef void (*um_carrier_read_cb)(um_carrier_t *c, const uint8_t *p, size_t n, int status,
                                   void *ud);
typedef void (*um_carrier_drain_cb)(um_carrier_t *c, void *ud);

/* One piece of a gathered write (writev). */
typedef struct {
    const uint8_t *p;
    size_t n;
} um_carrier_iov_t;

enum {
    UM_CARRIER_RELIABLE = 1u << 0, /* ordered, reliable byte stream (tcp, tls, ws) */
    UM_CARRIER_DATAGRAM = 1u << 1, /* message oriented, lossy (dns, udp) */
};

typedef struct {
    const char *name;   /* "tcp", "tls", ... (logs, events, stats) */
    unsigned flags;     /* UM_CARRIER_* */
    size_t record_hint; /* preferred size of one write (records are sized to it) */
    void (*set_cbs)(um_carrier_t *c, um_carrier_read_cb rd, um_carrier_drain_cb dr, void *ud);
    int (*write)(um_carrier_t *c, const uint8_t *p, size_t n);
    size_t (*queued)(const um_carrier_t *c);
    void (*set_wq_max)(um_carrier_t *c, size_t max);
    int (*read_start)(um_carrier_t *c);
    int (*read_stop)(um_carrier_t *c);
    int (*shutdown)(um_carrier_t *c);
    void (*close)(um_carrier_t *c);
    /* out must hold n bytes (stream bytes are never more than wire bytes). */
    int (*absorb)(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out, size_t *outn);
    /* Optional (NULL: not offered): write the pieces' bytes in order, as one
     * write of their concatenation would (same copy, refusal and drain
     * rules), without joining them first. A layered carrier (tls) writes its
     * record headers and the caller's payload this way, with no copy. */
    int (*writev)(um_carrier_t *c, const um_carrier_iov_t *iov, size_t n_iov);
    /* Optional (NULL: none): the OS socket of the TCP connection under the
     * carrier, or -1; a layered carrier (tls, ws) answers for its inner one.
     * For socket options only (the tunnel's receive-window clamp): nobody
     * reads or writes it but the carrier. */
    int (*sock)(const um_carrier_t *c);
} um_carrier_ops_t;

struct um_carrier {
    const um_carrier_ops_t *ops;
};

static inline void um_carrier_set_cbs(um_carrier_t *c, um_carrier_read_cb rd,
                                      um_carrier_drain_cb dr, void *ud)
{
    c->ops->set_cbs(c, rd, dr, ud);
}
static inline int um_carrier_write(um_carrier_t *c, const uint8_t *p, size_t n)
{
    return c->ops->write(c, p, n);
}
static inline size_t um_carrier_queued(const um_carrier_t *c)
{
    return c->ops->queued(c);
}
static inline void um_carrier_set_wq_max(um_carrier_t *c, size_t max)
{
    c->ops->set_wq_max(c, max);
}
static inline int um_carrier_read_start(um_carrier_t *c)
{
    return c->ops->read_start(c);
}
static inline int um_carrier_read_stop(um_carrier_t *c)
{
    return c->ops->read_stop(c);
}
static inline int um_carrier_shutdown(um_carrier_t *c)
{
    return c->ops->shutdown(c);
}
static inline void um_carrier_close(um_carrier_t *c) /* NULL is a no-op */
{
    if (c) c->ops->close(c);
}
static inline int um_carrier_absorb(um_carrier_t *c, const uint8_t *p, size_t n, uint8_t *out,
                                    size_t *outn)
{
    *outn = 0;
    return n ? c->ops->absorb(c, p, n, out, outn) : 0;
}
static inline int um_carrier_sock(const um_carrier_t *c)
{
    return c->ops->sock ? c->ops->sock(c) : -1;
}
static inline const char *um_carrier_name(const um_carrier_t *c)
{
    return c->ops->name;
}

#endif
