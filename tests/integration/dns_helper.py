#!/usr/bin/env python3
"""DNS probes for the dns transport's tests, written from RFC 1035/6891/7766.

  dns_helper.py query HOST PORT NAME TYPE [tcp] [noedns]
      one query; prints "rcode=N aa=0|1 tc=0|1 an=N ns=N ar=N types=T,T edns=0|1 size=N"
      (types: the answer section's RR types) or "noreply"
  dns_helper.py tcforward LISTEN_IP PORT SERVER_IP SERVER_PORT
      a resolver stand-in that answers every UDP query with TC set (header and
      question only) and forwards every TCP query to the server over TCP: the
      client's truncation path (RFC 7766) end to end
  dns_helper.py garbage HOST PORT
      sends malformed messages (random bytes, a header alone, a pointer loop,
      a truncated question) and prints one line per reply: "formerr", "rcode=N" or
      "noreply"
"""
import os
import random
import socket
import struct
import sys

TYPES = {"A": 1, "NS": 2, "SOA": 6, "TXT": 16, "AAAA": 28, "ANY": 255}


def name(n):
    out = b""
    for l in n.strip(".").split("."):
        if l:
            out += bytes([len(l)]) + l.encode()
    return out + b"\0"


def build(qid, n, t, edns):
    m = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    m += name(n) + struct.pack(">HH", t, 1)
    if edns:
        m += b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return m


def skip_name(m, o):
    while True:
        l = m[o]
        if l == 0:
            return o + 1
        if l & 0xC0 == 0xC0:
            return o + 2
        o += 1 + l


def parse(m):
    qid, fl, qd, an, ns, ar = struct.unpack(">HHHHHH", m[:12])
    o = 12
    for _ in range(qd):
        o = skip_name(m, o) + 4
    types = []
    edns = 0
    for i in range(an + ns + ar):
        o = skip_name(m, o)
        t, _c, _ttl, rdl = struct.unpack(">HHIH", m[o:o + 10])
        o += 10 + rdl
        if i < an:
            types.append(str(t))
        if t == 41:
            edns = 1
    return "rcode=%d aa=%d tc=%d an=%d ns=%d ar=%d types=%s edns=%d size=%d" % (
        fl & 15, (fl >> 10) & 1, (fl >> 9) & 1, an, ns, ar, ",".join(types) or "-", edns, len(m))


def exchange(host, port, msg, tcp, timeout=3.0):
    if tcp:
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(struct.pack(">H", len(msg)) + msg)
        b = b""
        while len(b) < 2 or len(b) < 2 + struct.unpack(">H", b[:2])[0]:
            d = s.recv(65536)
            if not d:
                return None
            b += d
        s.close()
        return b[2:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(msg, (host, port))
    try:
        d, _ = s.recvfrom(65536)
        return d
    except socket.timeout:
        return None


def tcforward(lip, lport, sip, sport):
    import select
    import threading
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((lip, lport))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((lip, lport))
    t.listen(16)

    def conn(c):
        up = socket.create_connection((sip, sport), timeout=10)
        try:
            while True:
                r, _, _ = select.select([c, up], [], [], 30)
                if not r:
                    return
                for s_ in r:
                    d = s_.recv(65536)
                    if not d:
                        return
                    (up if s_ is c else c).sendall(d)
        except OSError:
            return
        finally:
            c.close()
            up.close()

    def accept():
        while True:
            c, _ = t.accept()
            threading.Thread(target=conn, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    while True:
        m, peer = u.recvfrom(65536)
        if len(m) < 12:
            continue
        o = skip_name(m, 12) + 4
        h = bytearray(m[:12])
        h[2] = (h[2] | 0x80 | 0x02) & 0xFF  # QR, TC (RD kept)
        h[3] = 0x80  # RA
        h[6:12] = b"\0\0\0\0\0\0"
        u.sendto(bytes(h) + m[12:o], peer)


def main(a):
    if a[1] == "tcforward":
        tcforward(a[2], int(a[3]), a[4], int(a[5]))
        return 0
    if a[1] == "query":
        host, port, n, t = a[2], int(a[3]), a[4], TYPES[a[5]]
        tcp = "tcp" in a[6:]
        edns = "noedns" not in a[6:]
        r = exchange(host, port, build(random.randrange(65536), n, t, edns), tcp)
        print(parse(r) if r else "noreply")
        return 0
    if a[1] == "garbage":
        host, port = a[2], int(a[3])
        msgs = [os.urandom(40), struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0),
                struct.pack(">HHHHHH", 8, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x10\x00\x01",
                build(9, "x.t.umbra.test", 16, True)[:20], b"\x01"]
        for m in msgs:
            r = exchange(host, port, m, False, 1.0)
            if not r:
                print("noreply")
            else:
                print("formerr" if (r[3] & 15) == 1 else "rcode=%d" % (r[3] & 15))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
