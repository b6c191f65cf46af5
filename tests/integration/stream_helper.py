#!/usr/bin/python3
"""Stream helpers of tunnel_restart.sh and tunnel_stuck.sh (Debian's python3,
standard library only; every socket on loopback, every wait bounded).

  stream_helper.py slowread SOCKS HOST PORT PATH RATE SECS OUT
        SOCKS5 CONNECT, GET PATH, read at RATE bytes/s with a small receive
        buffer (so the kernel holds little the reader has not seen). Writes
        "up" to OUT once the first byte arrived, then at the end one line
        "end KIND BYTES" (KIND: reset, eof, timeout) and exits 0.
  stream_helper.py stuckget SOCKS HOST PORT PATH N SECS
        N SOCKS5 CONNECTs, each sends GET PATH and never reads (small receive
        buffers); prints "ready" when all are open, holds them SECS seconds.
  stream_helper.py stuckput SOCKS HOST PORT N SECS
        N SOCKS5 CONNECTs to HOST:PORT, each writes without end (non-blocking,
        until the socket takes no more); prints "ready", holds them SECS s.
  stream_helper.py stuckmany SOCKS HOST PORT PATH N SECS
        Like stuckget (PATH "-": like stuckput, writing until the socket
        takes no more), but a CONNECT the proxy refuses is counted, not an
        error: prints "ready OPENED REFUSED", holds the open ones SECS s.
  stream_helper.py blackhole PORTFILE SECS
        TCP listener on 127.0.0.1 that accepts and never reads (small receive
        buffers); writes its port to PORTFILE; runs SECS seconds.
"""
import os
import socket
import struct
import sys
import time

SMALL_BUF = 16384


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += d
    return b


def socks_connect(socks, host, port, rcvbuf=0, timeout=20):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", socks))
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        raise AssertionError("SOCKS5 greeting refused")
    h = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", port))
    head = recv_exact(s, 4)
    if head[1] != 0:
        raise AssertionError("SOCKS5 CONNECT answered %d" % head[1])
    atyp = head[3]
    if atyp == 1:
        recv_exact(s, 6)
    elif atyp == 4:
        recv_exact(s, 18)
    else:
        recv_exact(s, recv_exact(s, 1)[0] + 2)
    return s


def get_request(host, port, path):
    return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
            % (path, host, port)).encode()


def slowread(socks, host, port, path, rate, secs, out):
    s = socks_connect(socks, host, port, rcvbuf=SMALL_BUF)
    s.sendall(get_request(host, port, path))
    s.settimeout(1.0)
    got = 0
    kind = "timeout"
    start = time.monotonic()
    end = start + secs
    while time.monotonic() < end:
        try:
            d = s.recv(min(SMALL_BUF, max(1, rate // 20)))
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            kind = "reset"
            break
        if not d:
            kind = "eof"
            break
        if got == 0:
            with open(out, "a") as f:
                f.write("up\n")
        got += len(d)
        # Stay at RATE bytes/s on average.
        ahead = got / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(min(ahead, 1.0))
    with open(out, "a") as f:
        f.write("end %s %d\n" % (kind, got))
    return 0


def hold(socks_list, secs):
    print("ready", flush=True)
    time.sleep(secs)
    for s in socks_list:
        s.close()
    return 0


def stuckget(socks, host, port, path, n, secs):
    ss = []
    for _ in range(n):
        s = socks_connect(socks, host, port, rcvbuf=SMALL_BUF)
        s.sendall(get_request(host, port, path))
        ss.append(s)
    return hold(ss, secs)


def stuckput(socks, host, port, n, secs):
    ss = []
    chunk = os.urandom(65536)
    for _ in range(n):
        s = socks_connect(socks, host, port)
        s.setblocking(False)
        ss.append(s)
    # Write until no socket takes more for a while (bounded in time).
    end = time.monotonic() + min(secs, 20)
    quiet = 0
    while time.monotonic() < end and quiet < 10:
        moved = 0
        for s in ss:
            try:
                moved += s.send(chunk)
            except BlockingIOError:
                pass
        quiet = 0 if moved else quiet + 1
        time.sleep(0.05)
    return hold(ss, secs)


def stuckmany(socks, host, port, path, n, secs):
    ss = []
    refused = 0
    chunk = os.urandom(65536)
    for _ in range(n):
        try:
            s = socks_connect(socks, host, port, rcvbuf=SMALL_BUF)
        except (AssertionError, EOFError, OSError):
            refused += 1
            continue
        if path != "-":
            s.sendall(get_request(host, port, path))
        ss.append(s)
    if path == "-":
        for s in ss:
            s.setblocking(False)
        end = time.monotonic() + min(secs, 20)
        quiet = 0
        while time.monotonic() < end and quiet < 10:
            moved = 0
            for s in ss:
                try:
                    moved += s.send(chunk)
                except (BlockingIOError, OSError):
                    pass
            quiet = 0 if moved else quiet + 1
            time.sleep(0.05)
    print("ready %d %d" % (len(ss), refused), flush=True)
    time.sleep(secs)
    for s in ss:
        s.close()
    return 0


def blackhole(portfile, secs):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUF)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    ls.settimeout(0.5)
    held = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            c, _ = ls.accept()
            held.append(c)
        except socket.timeout:
            pass
    return 0


def main(a):
    cmd = a[0] if a else ""
    if cmd == "slowread":
        return slowread(int(a[1]), a[2], int(a[3]), a[4], int(a[5]), float(a[6]), a[7])
    if cmd == "stuckget":
        return stuckget(int(a[1]), a[2], int(a[3]), a[4], int(a[5]), float(a[6]))
    if cmd == "stuckput":
        return stuckput(int(a[1]), a[2], int(a[3]), int(a[4]), float(a[5]))
    if cmd == "stuckmany":
        return stuckmany(int(a[1]), a[2], int(a[3]), a[4], int(a[5]), float(a[6]))
    if cmd == "blackhole":
        return blackhole(a[1], float(a[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
