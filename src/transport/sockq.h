/* The kernel's queue of received bytes under a carrier (TCP sockets only):
 * what the tunnel measures once a tick to bound it (um_tunnel_rcvbuf_size,
 * tunnel/sizing.h) and the bound itself (SO_RCVBUF). A few system calls a
 * tick per carrier, never per byte. Linux; elsewhere every call answers
 * UM_EINVAL and nothing is bounded. */
#ifndef UM_TRANSPORT_SOCKQ_H
#define UM_TRANSPORT_SOCKQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t bytes_received; /* payload bytes received over the connection's life */
    uint32_t min_rtt_us;     /* the least round trip seen (0: not measured yet) */
    uint32_t queued;         /* bytes received, not yet read by us (ss's Recv-Q) */
} um_sockq_info_t;

/* 0 and *out filled, or a negative UM_E* (not a TCP socket, an old kernel
 * without tcpi_min_rtt: UM_EINVAL; a failed call: -errno). */
int um_sockq_info(int fd, um_sockq_info_t *out);
/* The most memory the kernel may hold for bytes received and not yet read
 * (the socket's sk_rcvbuf: the window it offers is its free space). The
 * kernel's receive-buffer autotuning is off for the socket from then on.
 * 0 or -errno (UM_EINVAL off Linux). */
int um_sockq_set_rcvbuf(int fd, size_t bytes);
/* The most um_sockq_set_rcvbuf may set (twice net.core.rmem_max; read once,
 * 0 when it cannot be read: then nothing is bounded). */
size_t um_sockq_rcvbuf_max(void);

#endif
