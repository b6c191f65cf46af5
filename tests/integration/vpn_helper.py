#!/usr/bin/python3
"""Small servers and probes for the vpn_*.sh tests (Debian's python3, stdlib only).

  dns ADDR PORT READY LOG NAME IP   UDP DNS responder: A record NAME -> IP, NXDOMAIN for
                                    other names, empty answer for other types; logs the
                                    source address of every query to LOG
  udpecho ADDR PORT READY           UDP echo
  tcplisten ADDR PORT READY         TCP: says "hello\\n" to every connection, closes
  udp HOST PORT                     datagrams of several sizes, each echoed and checked
  dnsq SERVER NAME                  one A query straight to SERVER:53, prints the answer
  tcpcheck HOST PORT SECS           connects, expects "hello"
  tunfd NAME CIDR ROUTE CMD...      as Android's VpnService: opens TUN device NAME, gives it
                                    CIDR, brings it up, routes ROUTE into it (with `ip`), then
                                    runs CMD with "{fd}" replaced by the descriptor
Each server writes READY once it is bound."""
import os
import socket
import struct
import sys
import time


def ready(path):
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def qname(msg, off):
    labels = []
    for _ in range(64):
        if off >= len(msg):
            raise ValueError("truncated")
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n & 0xC0:
            raise ValueError("no compression in questions")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    raise ValueError("too many labels")


def dns(addr, port, rdy, log, name, ip):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    ready(rdy)
    name = name.lower().rstrip(".")
    while True:
        msg, src = s.recvfrom(2048)
        with open(log, "a") as f:
            f.write("%s\n" % src[0])
        try:
            if len(msg) < 12:
                continue
            qid, flags, qd = struct.unpack("!HHH", msg[:6])
            if qd != 1:
                continue
            q, off = qname(msg, 12)
            qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
            question = msg[12:off + 4]
        except (ValueError, struct.error):
            continue
        rd = flags & 0x0100
        if q != name:
            hdr = struct.pack("!HHHHHH", qid, 0x8180 | rd | 3, 1, 0, 0, 0)
            s.sendto(hdr + question, src)
            continue
        an = b""
        if qtype == 1:
            an = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        hdr = struct.pack("!HHHHHH", qid, 0x8580 | rd, 1, 1 if an else 0, 0, 0)
        s.sendto(hdr + question + an, src)


def udpecho(addr, port, rdy):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    ready(rdy)
    while True:
        msg, src = s.recvfrom(65536)
        s.sendto(msg, src)


def tcplisten(addr, port, rdy):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(64)
    ready(rdy)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"hello\n")
        except OSError:
            pass
        c.close()


def udp(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((host, int(port)))
    sizes = [1, 100, 512, 1200, 1400, 1]
    got = 0
    for n in sizes:
        data = os.urandom(n)
        for _ in range(4):
            s.send(data)
            try:
                if s.recv(65536) == data:
                    got += 1
                    break
            except socket.timeout:
                continue
    print("%d/%d datagrams echoed (sizes %s)" % (got, len(sizes), sizes))
    return 0 if got == len(sizes) else 1


def dnsq(server, name):
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    s.settimeout(2)
    qid = int.from_bytes(os.urandom(2), "big")
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    msg = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)
    for _ in range(3):
        s.sendto(msg, (server, 53))
        try:
            r, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        if len(r) < 12 or struct.unpack("!H", r[:2])[0] != qid:
            continue
        an = struct.unpack("!H", r[6:8])[0]
        if (r[3] & 0xF) != 0 or an < 1 or len(r) < 4:
            print("no answer (rcode %d)" % (r[3] & 0xF))
            return 1
        print(socket.inet_ntoa(r[-4:]))
        return 0
    print("timeout")
    return 1


def tcpcheck(host, port, secs):
    end = time.time() + float(secs)
    err = None
    while time.time() < end:
        try:
            c = socket.create_connection((host, int(port)), timeout=2)
            c.settimeout(2)
            if c.recv(16).startswith(b"hello"):
                print("connected to %s:%s" % (host, port))
                return 0
        except OSError as e:
            err = e
        time.sleep(0.1)
    print("cannot reach %s:%s: %s" % (host, port, err))
    return 1


def tunfd(name, cidr, route, *cmd):
    import fcntl
    import subprocess
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH", name.encode(), 0x0001 | 0x1000)  # IFF_TUN | IFF_NO_PI
    fcntl.ioctl(fd, 0x400454CA, ifr)  # TUNSETIFF
    for c in (["ip", "addr", "add", cidr, "dev", name], ["ip", "link", "set", name, "up"],
              ["ip", "route", "add", route, "dev", name]):
        subprocess.run(c, check=True)
    os.set_inheritable(fd, True)
    args = [x.replace("{fd}", str(fd)) for x in cmd]
    os.execvp(args[0], args)


def main(a):
    cmd = a[1] if len(a) > 1 else ""
    if cmd == "dns":
        return dns(*a[2:8])
    if cmd == "udpecho":
        return udpecho(*a[2:5])
    if cmd == "tcplisten":
        return tcplisten(*a[2:5])
    if cmd == "udp":
        return udp(*a[2:4])
    if cmd == "dnsq":
        return dnsq(*a[2:4])
    if cmd == "tcpcheck":
        return tcpcheck(*a[2:5])
    if cmd == "tunfd":
        return tunfd(*a[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
