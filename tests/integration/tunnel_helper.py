#!/usr/bin/python3
"""Helpers of the tunnel_*.sh integration tests (Debian's python3, standard
library only; every socket on loopback, every wait bounded).

  tunnel_helper.py sink PORTFILE                 HTTP/1.1 server: POST -> sha256 hex of the body
  tunnel_helper.py udpecho PORTFILE              UDP echo on 127.0.0.1 and ::1 ("udp4 P\\nudp6 P")
  tunnel_helper.py wait-event FILE EVENT N SECS  wait until FILE holds N JSON lines {"event": EVENT}
  tunnel_helper.py count-event FILE EVENT        print how many such lines FILE holds
  tunnel_helper.py udp SOCKS UDP4 UDP6           SOCKS5 UDP ASSOCIATE: datagrams of several sizes
  tunnel_helper.py socks-code SOCKS HOST PORT    raw SOCKS5 CONNECT; prints the reply code
  tunnel_helper.py http-status HTTP MODE HOST PORT   raw HTTP proxy request (MODE get|connect);
                                                 prints the status code
  tunnel_helper.py probe PORT NBYTES SECS        raw connection to a server: send NBYTES random
                                                 bytes, wait up to SECS; prints
                                                 "bytes=B closed_ms=T" (T=-1: still open)
  tunnel_helper.py corpus SOCKS HTTP SECS DIR... replay fuzz corpora; each connection must end
                                                 (reply or close) within SECS
  tunnel_helper.py seq SOCKS HOST PORT PATH COUNT SECS   COUNT sequential SOCKS5 CONNECT + GET,
                                                 each checked; stops at SECS
Exit status 0 means the check passed; on failure the reason is printed.
"""
import hashlib
import http.server
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time


def write_portfile(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


# ---------------------------------------------------------------- servers

class Sink(http.server.BaseHTTPRequestHandler):
    """Reads the whole request body, answers with its sha256 and length."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    if not d:
                        raise EOFError("body cut short")
                    h.update(d)
                    n += len(d)
                    left -= len(d)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    raise EOFError("body cut short")
                h.update(d)
                n += len(d)
                left -= len(d)
        self._reply(h.hexdigest().encode())

    do_PUT = do_POST


class TServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def sink(portfile):
    srv = TServer(("127.0.0.1", 0), Sink)
    write_portfile(portfile, "sink %d\n" % srv.server_address[1])
    srv.serve_forever()


def udpecho(portfile):
    # The same port on 127.0.0.1 and ::1, so that "localhost" reaches an
    # echo server whichever address the tunnel's resolver picks.
    for _ in range(50):
        socks = []
        u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u4.bind(("127.0.0.1", 0))
        socks.append(u4)
        port = u4.getsockname()[1]
        try:
            u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            u6.bind(("::1", port))
            socks.append(u6)
            break
        except OSError:
            u4.close()
    else:
        raise SystemExit("no UDP port free on both 127.0.0.1 and ::1")
    text = "udp4 %d\nudp6 %d\n" % (port, port)

    def echo(s):
        while True:
            d, a = s.recvfrom(65535)
            s.sendto(b"echo:" + d, a)

    for s in socks:
        threading.Thread(target=echo, args=(s,), daemon=True).start()
    write_portfile(portfile, text)
    while True:
        time.sleep(3600)


# ---------------------------------------------------------------- events

def count_events(path, event):
    n = 0
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    if json.loads(line).get("event") == event:
                        n += 1
                except (ValueError, AttributeError):
                    pass
    except FileNotFoundError:
        pass
    return n


def wait_event(path, event, want, secs):
    end = time.time() + secs
    while time.time() < end:
        if count_events(path, event) >= want:
            return 0
        time.sleep(0.05)
    print("no %d x %s in %s after %.1f s" % (want, event, path, secs))
    return 1


# ---------------------------------------------------------------- raw clients

def conn(port, timeout=10, host="127.0.0.1"):
    return socket.create_connection((host, port), timeout=timeout)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("closed after %d of %d bytes: %r" % (len(b), n, b))
        b += d
    return b


def read_to_close(s, limit=1 << 20):
    out = b""
    while len(out) < limit:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return out
        if not d:
            return out
        out += d
    return out


def addr_bytes(host, port):
    """SOCKS5 ATYP + address + port for an IP literal or a name."""
    try:
        return b"\x01" + socket.inet_pton(socket.AF_INET, host) + struct.pack(">H", port)
    except OSError:
        pass
    try:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)
    except OSError:
        pass
    h = host.encode()
    return b"\x03" + bytes([len(h)]) + h + struct.pack(">H", port)


def socks_open(socks, cmd, host, port, timeout=10):
    """Greeting + request; returns (socket, full reply)."""
    s = conn(socks, timeout)
    s.sendall(b"\x05\x01\x00")
    g = recv_exact(s, 2)
    if g != b"\x05\x00":
        raise AssertionError("greeting reply %r" % g)
    s.sendall(b"\x05" + bytes([cmd]) + b"\x00" + addr_bytes(host, port))
    head = recv_exact(s, 4)
    atyp = head[3]
    if atyp == 1:
        rest = recv_exact(s, 6)
    elif atyp == 4:
        rest = recv_exact(s, 18)
    elif atyp == 3:
        ln = recv_exact(s, 1)
        rest = ln + recv_exact(s, ln[0] + 2)
    else:
        raise AssertionError("reply with ATYP %#x: %r" % (atyp, head))
    return s, head + rest


def socks_code(socks, host, port):
    s, rep = socks_open(socks, 1, host, port)
    s.close()
    print("%d" % rep[1])
    return 0


def http_status(http, mode, host, port):
    s = conn(http, 15)
    hp = ("[%s]:%d" % (host, port)) if ":" in host else ("%s:%d" % (host, port))
    if mode == "connect":
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp)).encode())
    else:
        s.sendall(("GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (hp, hp)).encode())
    r = b""
    while b"\r\n" not in r:
        d = s.recv(4096)
        if not d:
            break
        r += d
    s.close()
    parts = r.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        print("no status line: %r" % r[:100])
        return 1
    print(parts[1].decode())
    return 0


def udp(socks, udp4, udp6):
    """UDP ASSOCIATE, then datagrams of several sizes to the echo servers,
    each checked byte for byte (a lost datagram is resent at most twice)."""
    s, rep = socks_open(socks, 3, "0.0.0.0", 0)
    if rep[1] != 0:
        print("UDP ASSOCIATE reply code %#x" % rep[1])
        return 1
    if rep[3] == 1:
        rhost = socket.inet_ntoa(rep[4:8])
        rport = struct.unpack(">H", rep[8:10])[0]
    elif rep[3] == 4:
        rhost = socket.inet_ntop(socket.AF_INET6, rep[4:20])
        rport = struct.unpack(">H", rep[20:22])[0]
    else:
        print("relay address type %d" % rep[3])
        return 1
    if rhost in ("0.0.0.0", "::"):
        rhost = "127.0.0.1"
    fam = socket.AF_INET6 if ":" in rhost else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1" if fam == socket.AF_INET else "::1", 0))
    u.settimeout(2)
    relay = (rhost, rport)
    sizes = [1, 2, 16, 100, 512, 1000, 1200, 1400]
    sent = resent = 0
    targets = [("127.0.0.1", udp4), ("localhost", udp4)]
    if udp6:
        targets.append(("::1", udp6))
    for host, port in targets:
        hdr = b"\x00\x00\x00" + addr_bytes(host, port)
        for size in sizes:
            for rep_i in range(3):
                msg = os.urandom(size)
                ok = False
                for attempt in range(3):
                    u.sendto(hdr + msg, relay)
                    sent += 1
                    try:
                        while True:
                            d, _ = u.recvfrom(65535)
                            if d.endswith(b"echo:" + msg):
                                ok = True
                                break
                    except socket.timeout:
                        resent += 1
                    if ok:
                        break
                if not ok:
                    print("no echo for %d bytes to %s:%d (%d datagrams sent)"
                          % (size, host, port, sent))
                    return 1
                # the reply's header names the echo server: ATYP 1 or 4 with its address
                if d[:3] != b"\x00\x00\x00" or d[3] not in (1, 4):
                    print("bad reply header %r" % d[:22])
                    return 1
    # A refused destination (outside the allow rule) gets no answer.
    bad = b"\x00\x00\x00" + addr_bytes("127.0.0.2", udp4)
    u.sendto(bad + b"refused", relay)
    u.settimeout(1)
    try:
        d, _ = u.recvfrom(65535)
        print("unexpected datagram from a refused destination: %r" % d[:40])
        return 1
    except socket.timeout:
        pass
    s.close()
    print("%d datagrams echoed (sizes %s, to %s), %d resent"
          % (sent - resent, sizes, ",".join(h for h, _ in targets), resent))
    return 0


def probe(port, nbytes, secs):
    """What a prober sees: bytes sent back (must be 0) and when the server
    closed (ms after connect)."""
    s = conn(port, secs)
    t0 = time.time()
    if nbytes:
        try:
            s.sendall(os.urandom(nbytes))
        except OSError:
            pass
    got = 0
    closed = -1
    s.settimeout(0.05)
    while time.time() - t0 < secs:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            d = b""
        if not d:
            closed = int((time.time() - t0) * 1000)
            break
        got += len(d)
    s.close()
    print("bytes=%d closed_ms=%d" % (got, closed))
    return 0


CORPUS_MAX = 400


def corpus(socks, http, secs, dirs):
    """Each corpus file is sent on a fresh connection (then our write side
    is shut); the proxy must answer with something that looks like its own
    protocol's reply, or close, within secs."""
    n = 0
    fails = []
    outcomes = {}
    for d in dirs:
        is_socks = "socks5" in os.path.basename(d.rstrip("/"))
        port = socks if is_socks else http
        files = sorted(f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))
        if len(files) > CORPUS_MAX:
            print("  %s: %d files, replaying every %d-th" % (d, len(files), len(files) // CORPUS_MAX + 1))
            files = files[::len(files) // CORPUS_MAX + 1]
        for f in files:
            p = os.path.join(d, f)
            data = open(p, "rb").read()
            n += 1
            t0 = time.time()
            try:
                s = conn(port, secs)
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                s.settimeout(secs)
                r = read_to_close(s)
                s.close()
            except socket.timeout:
                fails.append("%s: no close within %d s" % (f, secs))
                continue
            except OSError as e:
                fails.append("%s: %s" % (f, e))
                continue
            if not r:
                kind = "close"
            elif is_socks and r[0] == 5:
                kind = "socks5 reply"
            elif not is_socks and r.startswith(b"HTTP/1.1 ") and r[9:12].isdigit():
                kind = "HTTP " + r[9:12].decode()
            else:
                fails.append("%s: unexpected reply %r" % (f, r[:40]))
                continue
            outcomes[kind] = outcomes.get(kind, 0) + 1
            ms = (time.time() - t0) * 1000
            if ms > 2000:
                print("  %s: %s after %.0f ms" % (f, kind, ms))
    for x in fails:
        print("FAIL " + x)
    print("replayed %d files: %s" % (n, ", ".join("%s %d" % kv for kv in sorted(outcomes.items()))))
    return 1 if fails or n == 0 else 0


def seq(socks, host, port, path, count, secs):
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()
    t0 = time.time()
    for i in range(count):
        if time.time() - t0 > secs:
            print("only %d of %d connections in %d s" % (i, count, secs))
            return 1
        s, rep = socks_open(socks, 1, host, port)
        if rep[1] != 0:
            print("connection %d: reply %#x" % (i, rep[1]))
            return 1
        s.sendall(req)
        r = read_to_close(s)
        s.close()
        if not (r.startswith(b"HTTP/1.1 200") and r.endswith(b"small-ok\n")):
            print("connection %d: bad response %r" % (i, r[:80]))
            return 1
    print("%d connections in %.1f s" % (count, time.time() - t0))
    return 0


def main(a):
    cmd = a[1]
    if cmd == "sink":
        sink(a[2])
    elif cmd == "udpecho":
        udpecho(a[2])
    elif cmd == "wait-event":
        return wait_event(a[2], a[3], int(a[4]), float(a[5]))
    elif cmd == "count-event":
        print(count_events(a[2], a[3]))
        return 0
    elif cmd == "udp":
        return udp(int(a[2]), int(a[3]), int(a[4]))
    elif cmd == "socks-code":
        return socks_code(int(a[2]), a[3], int(a[4]))
    elif cmd == "http-status":
        return http_status(int(a[2]), a[3], a[4], int(a[5]))
    elif cmd == "probe":
        return probe(int(a[2]), int(a[3]), float(a[4]))
    elif cmd == "corpus":
        return corpus(int(a[2]), int(a[3]), float(a[4]), a[5:])
    elif cmd == "seq":
        return seq(int(a[2]), a[3], int(a[4]), a[5], int(a[6]), float(a[7]))
    else:
        print("unknown command " + cmd)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (AssertionError, EOFError, OSError) as e:
        print("%s: %s" % (type(e).__name__, e))
        sys.exit(1)
