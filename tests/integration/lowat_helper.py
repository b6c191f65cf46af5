#!/usr/bin/env python3
"""TCP_NOTSENT_LOWAT of another process's TCP connections, as the kernel
reports it (carrier_lowat.sh).

    lowat_helper.py PID local|remote PORT

Finds PID's established TCP sockets whose local (or remote) port is PORT
(/proc/PID/fd and /proc/PID/net/tcp{,6}), takes a duplicate of each with
pidfd_getfd(2) and prints one line per socket: "LADDR:LPORT RADDR:RPORT
VALUE" (getsockopt IPPROTO_TCP TCP_NOTSENT_LOWAT, 0 when unset). Exit 0
with at least one socket, 1 with none, 77 when pidfd_getfd is not allowed
here (the caller skips)."""
import ctypes
import errno
import os
import socket
import sys

TCP_NOTSENT_LOWAT = 25  # linux/tcp.h
SYS_PIDFD_GETFD = 438  # the same number on every architecture
ESTABLISHED = "01"


def hexaddr(s):
    ip, port = s.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # four host-order 32-bit words
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        addr = socket.inet_ntop(socket.AF_INET6, words)
    return addr, int(port, 16)


def connections(pid):
    """inode -> (local, remote) for PID's established TCP sockets."""
    out = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] != ESTABLISHED:
                        continue
                    out[parts[9]] = (hexaddr(parts[1]), hexaddr(parts[2]))
        except FileNotFoundError:
            pass
    return out


def main():
    pid, side, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    conns = connections(pid)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    found = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if not target.startswith("socket:["):
            continue
        inode = target[8:-1]
        if inode not in conns:
            continue
        local, remote = conns[inode]
        if (local if side == "local" else remote)[1] != port:
            continue
        dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(fd), 0)
        if dup < 0:
            e = ctypes.get_errno()
            if e in (errno.EPERM, errno.ENOSYS, errno.EACCES):
                print(f"pidfd_getfd: {os.strerror(e)}", file=sys.stderr)
                return 77
            continue  # the descriptor went away meanwhile
        s = socket.socket(fileno=dup)
        try:
            v = s.getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT)
        finally:
            s.close()
        print(f"{local[0]}:{local[1]} {remote[0]}:{remote[1]} {v}")
        found += 1
    os.close(pidfd)
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
