/* delaywire: a point-to-point wire with a fixed one-way delay between two
 * network namespaces, for bench/delay.sh (this kernel has no netem).
 *
 *   delaywire NS_A NS_B ONE_WAY_DELAY_MS [SECONDS]
 *
 * Creates a TUN device "dwire" inside each named namespace
 * (/run/netns/NAME, made by `ip netns add`), prints "ready" once both exist,
 * then carries every IP packet read from one device to the other after
 * ONE_WAY_DELAY_MS, in order. The rate limit is the caller's (tbf on each
 * device: its egress is the wire's ingress). A direction whose delay line is
 * full drops the packet, as a router's queue would. Ends after SECONDS (600
 * by default) or on SIGTERM/SIGINT. Bench tool only: not installed, no test
 * depends on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SLOTS   8192 /* packets in flight per direction: 200 Mbit/s x 25 ms is ~420 */
#define PKT_MAX 2048 /* MTU 1500 */

typedef struct {
    uint64_t due_us;
    uint16_t len;
    uint8_t data[PKT_MAX];
} slot_t;

typedef struct {
    slot_t *s;
    size_t head, n;
    uint64_t carried, dropped;
} line_t;

static volatile sig_atomic_t stop;

static void on_sig(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A TUN device named dwire in namespace ns; returns its fd. */
static int tun_in(const char *ns)
{
    char path[256];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int nfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nfd < 0 || setns(nfd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "delaywire: namespace %s: %s\n", ns, strerror(errno));
        exit(1);
    }
    close(nfd);
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "dwire");
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0) {
        fprintf(stderr, "delaywire: TUN in %s: %s\n", ns, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Reads every packet waiting on fd into the line, stamped due at now+delay. */
static void take(int fd, line_t *l, uint64_t delay_us)
{
    for (int i = 0; i < 256; i++) {
        slot_t tmp, *s = l->n < SLOTS ? &l->s[(l->head + l->n) % SLOTS] : &tmp;
        ssize_t r = read(fd, s->data, sizeof(s->data));
        if (r <= 0) return;
        if (s == &tmp) {
            l->dropped++;
            continue;
        }
        s->len = (uint16_t)r;
        s->due_us = now_us() + delay_us;
        l->n++;
    }
}

/* Writes every packet whose time has come; returns the next due time. */
static uint64_t give(int fd, line_t *l)
{
    uint64_t t = now_us();
    while (l->n) {
        slot_t *s = &l->s[l->head];
        if (s->due_us > t) return s->due_us;
        if (write(fd, s->data, s->len) < 0 && errno == EAGAIN) return t + 200; /* full: soon */
        l->carried++;
        l->head = (l->head + 1) % SLOTS;
        l->n--;
    }
    return UINT64_MAX;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: delaywire NS_A NS_B ONE_WAY_DELAY_MS [SECONDS]\n");
        return 2;
    }
    uint64_t delay_us = (uint64_t)strtoul(argv[3], NULL, 10) * 1000u;
    uint64_t end = now_us() + (uint64_t)(argc > 4 ? strtoul(argv[4], NULL, 10) : 600) * 1000000u;
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    int fa = tun_in(argv[1]), fb = tun_in(argv[2]);
    line_t ab = {calloc(SLOTS, sizeof(slot_t)), 0, 0, 0, 0};
    line_t ba = {calloc(SLOTS, sizeof(slot_t)), 0, 0, 0, 0};
    if (!ab.s || !ba.s) return 1;
    printf("ready\n");
    fflush(stdout);
    while (!stop && now_us() < end) {
        uint64_t next = give(fb, &ab), n2 = give(fa, &ba), t = now_us();
        if (n2 < next) next = n2;
        int ms = next == UINT64_MAX ? 100 : next > t ? (int)((next - t + 999) / 1000) : 0;
        if (ms > 100) ms = 100;
        struct pollfd p[2] = {{fa, POLLIN, 0}, {fb, POLLIN, 0}};
        if (poll(p, 2, ms) < 0 && errno != EINTR) break;
        if (p[0].revents & POLLIN) take(fa, &ab, delay_us);
        if (p[1].revents & POLLIN) take(fb, &ba, delay_us);
    }
    fprintf(stderr, "delaywire: carried %llu / %llu packets, dropped %llu / %llu (a->b / b->a)\n",
            (unsigned long long)ab.carried, (unsigned long long)ba.carried,
            (unsigned long long)ab.dropped, (unsigned long long)ba.dropped);
    free(ab.s);
    free(ba.s);
    return 0;
}
