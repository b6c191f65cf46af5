#!/usr/bin/python3
"""Helpers for proxy_live.sh, loopback only.

  proxy_helper.py origin PORTFILE BLOBFILE   HTTP/1.1 origin + UDP echo; writes "http P\nudp P"
  proxy_helper.py check NAME SOCKS HTTP ORIGIN UDP   one raw-protocol check; exit 0 = pass
  proxy_helper.py seq SOCKS ORIGIN COUNT     COUNT sequential SOCKS5 CONNECT + GET
  proxy_helper.py corpus SOCKS HTTP DIR...   replay fuzz corpora; every connection must end
"""
import hashlib
import http.server
import os
import socket
import socketserver
import struct
import sys
import threading
import time

TIMEOUT = 5


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    blob = b""

    def log_message(self, *a):
        pass

    def _send(self, code, body, ctype="application/octet-stream"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/blob":
            self._send(200, Origin.blob)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            # HTTP/1.0-style close-delimited body
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
        else:
            self._send(200, b"hello\n", "text/plain")

    do_HEAD = do_GET

    def do_POST(self):
        h = hashlib.sha256()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                h.update(self.rfile.read(size))
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 65536))
                if not d:
                    break
                h.update(d)
                left -= len(d)
        self._send(200, h.hexdigest().encode(), "text/plain")


class TServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def origin(portfile, blobfile):
    Origin.blob = open(blobfile, "rb").read()
    srv = TServer(("127.0.0.1", 0), Origin)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))

    def echo():
        while True:
            d, a = udp.recvfrom(65535)
            udp.sendto(b"echo:" + d, a)

    threading.Thread(target=echo, daemon=True).start()
    with open(portfile + ".tmp", "w") as f:
        f.write("http %d\nudp %d\n" % (srv.server_address[1], udp.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


def conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += d
    return b


def read_to_close(s, limit=1 << 20):
    out = b""
    while len(out) < limit:
        d = s.recv(65536)
        if not d:
            return out
        out += d
    return out


def socks_request(port, req, greeting=b"\x05\x01\x00"):
    s = conn(port)
    s.sendall(greeting)
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(req)
    return s


def socks_reply_code(port, req):
    s = socks_request(port, req)
    rep = recv_exact(s, 2)
    return s, rep[1]


def ipv4_req(cmd, ip, port):
    return b"\x05" + bytes([cmd]) + b"\x00\x01" + socket.inet_aton(ip) + struct.pack(">H", port)


def check(name, socks, http, origin, udp):
    if name == "socks_refused_0x02":
        # 127.0.0.2 is outside the allow rule 127.0.0.1/32.
        s, rep = socks_reply_code(socks, ipv4_req(1, "127.0.0.2", origin))
        assert rep == 0x02, "reply %#x" % rep
        assert read_to_close(s)[:8] is not None
    elif name == "socks_connect_refused_0x05":
        # Allowed address, closed port: the port of our own UDP echo (TCP closed).
        s, rep = socks_reply_code(socks, ipv4_req(1, "127.0.0.1", udp))
        assert rep == 0x05, "reply %#x" % rep
    elif name == "socks_bind_0x07":
        s, rep = socks_reply_code(socks, ipv4_req(2, "127.0.0.1", origin))
        assert rep == 0x07, "reply %#x" % rep
    elif name == "socks_atyp_0x08":
        s, rep = socks_reply_code(socks, b"\x05\x01\x00\x07\x7f\x00\x00\x01\x00\x50")
        assert rep == 0x08, "reply %#x" % rep
    elif name == "socks_bad_version":
        s = conn(socks)
        s.sendall(b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00")
        assert read_to_close(s) == b"\x05\xff"
    elif name == "socks_no_method":
        s = conn(socks)
        s.sendall(b"\x05\x01\x02")  # only user/password offered, none configured
        assert read_to_close(s) == b"\x05\xff"
    elif name == "socks_handshake_timeout":
        s = conn(socks)
        s.settimeout(10)
        s.sendall(b"\x05")
        t = time.time()
        assert read_to_close(s) == b""
        assert time.time() - t < 8
    elif name == "socks_udp_associate":
        s = socks_request(socks, ipv4_req(3, "0.0.0.0", 0))
        rep = recv_exact(s, 10)
        assert rep[1] == 0, "reply %#x" % rep[1]
        relay = (socket.inet_ntoa(rep[4:8]), struct.unpack(">H", rep[8:10])[0])
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(3)
        hdr = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", udp)
        for i in range(20):
            msg = b"datagram %d " % i + os.urandom(i * 50)
            u.sendto(hdr + msg, relay)
            d, _ = u.recvfrom(65535)
            assert d[:10] == hdr, d[:10]
            assert d[10:] == b"echo:" + msg
        # by name, through the resolver
        name = b"localhost"
        hdr2 = b"\x00\x00\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", udp)
        u.sendto(hdr2 + b"named", relay)
        d, _ = u.recvfrom(65535)
        assert d.endswith(b"echo:named"), d
        # fragments are dropped; refused destinations get nothing
        u.sendto(b"\x00\x00\x01\x01" + hdr[4:] + b"frag", relay)
        bad = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.2") + struct.pack(">H", udp)
        u.sendto(bad + b"refused", relay)
        u.settimeout(0.5)
        try:
            d, _ = u.recvfrom(65535)
            raise AssertionError("unexpected datagram %r" % d)
        except socket.timeout:
            pass
        s.close()
    elif name == "http_origin_form_400":
        s = conn(http)
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        r = read_to_close(s)
        assert r.startswith(b"HTTP/1.1 400 "), r
    elif name == "http_garbage_400":
        s = conn(http)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        r = read_to_close(s)
        assert r.startswith(b"HTTP/1.1 400 "), r
    elif name == "http_refused_403":
        s = conn(http)
        s.sendall(b"CONNECT 127.0.0.2:%d HTTP/1.1\r\nHost: x\r\n\r\n" % origin)
        r = read_to_close(s)
        assert r.startswith(b"HTTP/1.1 403 "), r
    elif name == "http_502":
        s = conn(http)
        s.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % udp)
        r = read_to_close(s)
        assert r.startswith(b"HTTP/1.1 502 "), r
    elif name == "http_keepalive_mixed":
        # chunked, then Content-Length, then HEAD, then close-delimited, one connection
        s = conn(http)
        base = b"http://127.0.0.1:%d" % origin
        s.sendall(b"GET " + base + b"/chunked HTTP/1.1\r\nHost: x\r\n\r\n")
        r = b""
        while not r.endswith(b"0\r\n\r\n"):
            r += s.recv(4096)
        assert b"hello " in r and b"Connection: keep-alive" in r, r
        s.sendall(b"HEAD " + base + b"/blob HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET " + base + b"/small HTTP/1.1\r\nHost: x\r\n\r\n")  # pipelined
        r = b""
        while not r.endswith(b"hello\n"):
            d = s.recv(4096)
            assert d, r
            r += d
        assert r.count(b"HTTP/1.1 200") == 2, r
        s.sendall(b"GET " + base + b"/close HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_to_close(s)
        assert r.endswith(b"until close") and b"Connection: close" in r, r
    elif name == "http_post_chunked":
        body = os.urandom(300000)
        s = conn(http)
        s.sendall(b"POST http://127.0.0.1:%d/sha HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" % origin)
        for i in range(0, len(body), 70000):
            part = body[i:i + 70000]
            s.sendall(b"%x;e=1\r\n%s\r\n" % (len(part), part))
        s.sendall(b"0\r\n\r\n")
        r = b""
        want = hashlib.sha256(body).hexdigest().encode()
        while not r.endswith(want):
            d = s.recv(4096)
            assert d, r
            r += d
    else:
        raise SystemExit("unknown check " + name)


def seq(socks, origin, count):
    req = ipv4_req(1, "127.0.0.1", origin)
    for i in range(count):
        s = socks_request(socks, req)
        assert recv_exact(s, 10)[1] == 0
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = read_to_close(s)
        assert r.endswith(b"hello\n"), r
        s.close()


def corpus(socks, http, dirs):
    n = 0
    for d in dirs:
        port = socks if "socks5" in d else http
        for f in sorted(os.listdir(d)):
            data = open(os.path.join(d, f), "rb").read()
            s = conn(port)
            s.settimeout(10)
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                read_to_close(s)
            except (ConnectionResetError, BrokenPipeError):
                pass
            s.close()
            n += 1
    print("replayed %d corpus files" % n)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "origin":
        origin(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2], *map(int, sys.argv[3:7]))
    elif cmd == "seq":
        seq(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "corpus":
        corpus(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
