#!/usr/bin/python3
"""Helpers of the egress checks in tunnel_udp.sh and egress_*.sh (Debian's
python3, standard library only; every socket on loopback or in the test's
own namespace, every wait bounded). Builds on tunnel_helper.py.

  egress_helper.py udp0 SOCKS UDP4          SOCKS5 UDP ASSOCIATE: zero-length datagrams to
                                            127.0.0.1:UDP4 and localhost:UDP4, each echoed
                                            as "echo:", then an ordinary one echoed
  egress_helper.py hold SOCKS HOST PORT N SECS   N SOCKS5 CONNECTs to HOST:PORT held open
                                            (no reply expected) for SECS, then closed
  egress_helper.py tcpsink PORTFILE ADDR    TCP listener on ADDR:0 that answers "hello\\n"
Exit status 0 means the check passed; on failure the reason is printed.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tunnel_helper as th  # noqa: E402


def relay_of(rep):
    if rep[3] == 1:
        host = socket.inet_ntoa(rep[4:8])
        port = struct.unpack(">H", rep[8:10])[0]
    elif rep[3] == 4:
        host = socket.inet_ntop(socket.AF_INET6, rep[4:20])
        port = struct.unpack(">H", rep[20:22])[0]
    else:
        raise AssertionError("relay address type %d" % rep[3])
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return host, port


def echo_once(u, relay, dgram, want, tries=3):
    for _ in range(tries):
        u.sendto(dgram, relay)
        try:
            while True:
                d, _ = u.recvfrom(65535)
                if d[:3] == b"\x00\x00\x00" and d.endswith(want):
                    return True
        except socket.timeout:
            pass
    return False


def udp0(socks, udp4):
    s, rep = th.socks_open(socks, 3, "0.0.0.0", 0)
    if rep[1] != 0:
        print("UDP ASSOCIATE reply code %#x" % rep[1])
        return 1
    relay = relay_of(rep)
    fam = socket.AF_INET6 if ":" in relay[0] else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1" if fam == socket.AF_INET else "::1", 0))
    u.settimeout(2)
    for host in ("127.0.0.1", "localhost"):
        hdr = b"\x00\x00\x00" + th.addr_bytes(host, udp4)
        # the header alone: a datagram with no payload
        if not echo_once(u, relay, hdr, b"echo:"):
            print("no echo for a zero-length datagram to %s:%d" % (host, udp4))
            return 1
    msg = os.urandom(100)
    hdr = b"\x00\x00\x00" + th.addr_bytes("127.0.0.1", udp4)
    if not echo_once(u, relay, hdr + msg, b"echo:" + msg):
        print("no echo for an ordinary datagram after the empty ones")
        return 1
    s.close()
    print("zero-length datagrams echoed (literal and name), then 100 bytes")
    return 0


def hold(socks, host, port, n, secs):
    """N CONNECT requests whose replies may never come; held for SECS."""
    conns = []
    for _ in range(n):
        c = th.conn(socks, 10)
        c.sendall(b"\x05\x01\x00")
        if th.recv_exact(c, 2) != b"\x05\x00":
            print("greeting refused")
            return 1
        c.sendall(b"\x05\x01\x00" + th.addr_bytes(host, port))
        conns.append(c)
    time.sleep(secs)
    for c in conns:
        c.close()
    print("%d connects held %.1f s" % (n, secs))
    return 0


def tcpsink(portfile, addr):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, 0))
    ls.listen(64)
    th.write_portfile(portfile, "tcp %d\n" % ls.getsockname()[1])
    while True:
        c, _ = ls.accept()
        try:
            c.sendall(b"hello\n")
        except OSError:
            pass
        c.close()


def main(a):
    cmd = a[1]
    if cmd == "udp0":
        return udp0(int(a[2]), int(a[3]))
    if cmd == "hold":
        return hold(int(a[2]), a[3], int(a[4]), int(a[5]), float(a[6]))
    if cmd == "tcpsink":
        tcpsink(a[2], a[3])
        return 0
    print("unknown command " + cmd)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (AssertionError, EOFError, OSError) as e:
        print("%s: %s" % (type(e).__name__, e))
        sys.exit(1)
