/* Receive-queue measurement and bound of a TCP socket: see sockq.h. */
#include "transport/sockq.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

#ifdef __linux__
/* linux/tcp.h, not netinet/tcp.h: glibc's struct tcp_info stops before
 * tcpi_min_rtt. The two headers do not mix, hence a file of its own. */
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int um_sockq_info(int fd, um_sockq_info_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    memset(out, 0, sizeof(*out));
    if (fd < 0) return UM_EINVAL;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -errno;
    if (len < offsetof(struct tcp_info, tcpi_min_rtt) + sizeof(ti.tcpi_min_rtt)) return UM_EINVAL;
    out->bytes_received = ti.tcpi_bytes_received;
    out->min_rtt_us = ti.tcpi_min_rtt == ~0u ? 0 : ti.tcpi_min_rtt;
    int q = 0;
    if (ioctl(fd, SIOCINQ, &q) == 0 && q > 0) out->queued = (uint32_t)q;
    return 0;
}

int um_sockq_set_rcvbuf(int fd, size_t bytes)
{
    if (fd < 0) return UM_EINVAL;
    /* The kernel keeps twice what it is given (room for its bookkeeping). */
    size_t half = bytes / 2;
    int v = half > (size_t)(1u << 30) ? (1 << 30) : (int)half;
    return setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0 ? 0 : -errno;
}

size_t um_sockq_rcvbuf_max(void)
{
    static size_t max;
    static int read_once;
    if (!read_once) {
        read_once = 1;
        FILE *f = fopen("/proc/sys/net/core/rmem_max", "r");
        unsigned long v = 0;
        if (f) {
            if (fscanf(f, "%lu", &v) != 1) v = 0;
            fclose(f);
        }
        max = (size_t)v * 2;
    }
    return max;
}
#else
int um_sockq_info(int fd, um_sockq_info_t *out)
{
    (void)fd;
    memset(out, 0, sizeof(*out));
    return UM_EINVAL;
}

int um_sockq_set_rcvbuf(int fd, size_t bytes)
{
    (void)fd;
    (void)bytes;
    return UM_EINVAL;
}

size_t um_sockq_rcvbuf_max(void)
{
    return 0;
}
#endif
