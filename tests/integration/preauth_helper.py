#!/usr/bin/env python3
"""Helpers of the preauth_*.sh and fallback_*.sh integration tests (loopback only).

  tap PORTFILE UPSTREAM FLIGHT   forwarder on a free port (written to PORTFILE):
                                 every connection is relayed to 127.0.0.1:UPSTREAM;
                                 the client's bytes before the server's first byte
                                 (its first flight) are saved to FLIGHT
  replay PORT FILE SECS          sends FILE, prints the bytes received before the
                                 close or SECS
  hold PORT N SECS               opens N connections, keeps them SECS, prints how
                                 many were closed or reset by the server meanwhile,
                                 then closes them all
  flood PORT N                   N connect-and-close calls
  rawsink PORTFILE OUT           HTTP server that appends every raw request byte
                                 to OUT (one request per connection) and answers 200
  bigreq PORT SIZE OUT           sends a GET with many headers, SIZE bytes in all
                                 (the exact bytes also go to OUT); prints the status
  slowget PORT PATH DELAY OUT    GET PATH, waits DELAY s before reading, then reads
                                 in small slow chunks; body to OUT
  gets PORT N SECS               N sequential ordinary GET /small?r=RANDOM; prints the
                                 slowest answer in ms and how many took > SECS
"""
import os
import selectors
import socket
import sys
import threading
import time


def portfile(path, port):
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(path + ".tmp", path)


def tap(pf, upstream, flight):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    portfile(pf, ls.getsockname()[1])
    saved = [False]

    def relay(c):
        u = socket.create_connection(("127.0.0.1", upstream))
        first = bytearray()
        seen_reply = False
        sel = selectors.DefaultSelector()
        sel.register(c, selectors.EVENT_READ, u)
        sel.register(u, selectors.EVENT_READ, c)
        open_ = 2
        while open_:
            for k, _ in sel.select():
                src, dst = k.fileobj, k.data
                try:
                    d = src.recv(65536)
                except OSError:
                    d = b""
                if src is u and d and not seen_reply:
                    seen_reply = True
                    if not saved[0] and first:
                        saved[0] = True
                        with open(flight + ".tmp", "wb") as f:
                            f.write(first)
                        os.rename(flight + ".tmp", flight)
                if src is c and not seen_reply:
                    first += d
                if not d:
                    sel.unregister(src)
                    open_ -= 1
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                try:
                    dst.sendall(d)
                except OSError:
                    open_ = 0
        c.close()
        u.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=relay, args=(c,), daemon=True).start()


def replay(port, path, secs):
    data = open(path, "rb").read()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(0.2)
    got = 0
    end = time.time() + secs
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        got += len(d)
    print(got)


def hold(port, n, secs):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    end = time.time() + secs
    ended = set()
    while time.time() < end:
        time.sleep(0.1)
        for i, s in enumerate(socks):
            if i in ended:
                continue
            try:
                d = s.recv(1)
                ended.add(i)  # EOF or a byte: both are a reaction
            except BlockingIOError:
                pass
            except OSError:
                ended.add(i)
    for s in socks:
        s.close()
    print(len(ended))


def flood(port, n):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.close()


def rawsink(pf, out):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    portfile(pf, ls.getsockname()[1])
    while True:
        c, _ = ls.accept()
        c.settimeout(10)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
        except OSError:
            pass
        with open(out, "ab") as f:
            f.write(buf)
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        except OSError:
            pass
        c.close()


def bigreq(port, size, out):
    head = b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    i = 0
    while len(head) < size - 64:
        head += b"X-Filler-%04d: %s\r\n" % (i, b"v" * 80)
        i += 1
    pad = size - len(head) - len(b"X-Last: \r\n\r\n")
    head += b"X-Last: " + b"w" * pad + b"\r\n\r\n"
    assert len(head) == size
    open(out, "wb").write(head)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    s.settimeout(20)
    resp = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            resp += d
    except OSError:
        pass
    print(resp.split(b"\r\n", 1)[0].decode(errors="replace"))


def slowget(port, path, delay, out):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
    time.sleep(delay)
    s.settimeout(30)
    resp = bytearray()
    n = 0
    try:
        while True:
            d = s.recv(8192)
            if not d:
                break
            resp += d
            n += 1
            if n % 64 == 0:
                time.sleep(0.01)  # a slow reader, but one that ends
    except OSError:
        pass
    body = bytes(resp).split(b"\r\n\r\n", 1)
    open(out, "wb").write(body[1] if len(body) == 2 else b"")


def gets(port, n, secs):
    worst = 0.0
    late = 0
    for _ in range(n):
        t0 = time.time()
        s = socket.create_connection(("127.0.0.1", port))
        # A varied query in the first 18 bytes: what the server's parser sees
        # differs from one request to the next, as with real browsers.
        q = os.urandom(4).hex().encode()
        s.sendall(b"GET /small?r=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n" % q)
        s.settimeout(secs * 3 + 60)
        got = b""
        try:
            while b"small-ok" not in got:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except OSError:
            pass
        dt = time.time() - t0
        if b"small-ok" not in got or dt > secs:
            late += 1
        worst = max(worst, dt)
        s.close()
    print("%d %d" % (int(worst * 1000), late))


def main(a):
    cmd = a[0]
    if cmd == "tap":
        tap(a[1], int(a[2]), a[3])
    elif cmd == "replay":
        replay(int(a[1]), a[2], float(a[3]))
    elif cmd == "hold":
        hold(int(a[1]), int(a[2]), float(a[3]))
    elif cmd == "flood":
        flood(int(a[1]), int(a[2]))
    elif cmd == "rawsink":
        rawsink(a[1], a[2])
    elif cmd == "bigreq":
        bigreq(int(a[1]), int(a[2]), a[3])
    elif cmd == "slowget":
        slowget(int(a[1]), a[2], float(a[3]), a[4])
    elif cmd == "gets":
        gets(int(a[1]), int(a[2]), float(a[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
