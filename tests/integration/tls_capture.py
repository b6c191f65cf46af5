#!/usr/bin/env python3
"""Record the raw ClientHello a TLS client sends, then close.

Listens on 127.0.0.1 (never anything else), accepts up to --count connections
(bounded by --timeout seconds in all), reads from each the TLS record(s) that
carry the first handshake message and writes those bytes, exactly as received
from the start of the connection, to OUT/<prefix>-<n>.bin. It answers nothing:
the client sees the connection close, which is what the tests want (no TLS
library is involved, so no certificate is needed).

  tls_capture.py --out DIR [--port P] [--count N] [--timeout S] [--prefix NAME]

Prints "port P" on its first line once it listens (so a caller can use --port 0),
then one line per capture: "<file> <record bytes> <hello bytes>".
"""
import argparse
import os
import socket
import sys
import time


def read_hello(conn, deadline):
    """Reads records from conn until the first handshake message is whole.
    Returns the raw bytes (record headers included), or None."""
    buf = b""
    hs = b""
    need = None
    while time.monotonic() < deadline:
        # Parse the records we have so far.
        off = 0
        hs = b""
        while off + 5 <= len(buf):
            ctype, ln = buf[off], int.from_bytes(buf[off + 3:off + 5], "big")
            if ctype != 22:
                return None
            if off + 5 + ln > len(buf):
                break
            hs += buf[off + 5:off + 5 + ln]
            off += 5 + ln
            if len(hs) >= 4:
                need = 4 + int.from_bytes(hs[1:4], "big")
                if len(hs) >= need:
                    return buf[:off]
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            d = conn.recv(65536)
        except socket.timeout:
            return None
        if not d:
            return None
        buf += d
        if len(buf) > 1 << 20:
            return None
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--prefix", default="hello")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(16)
    print("port", s.getsockname()[1], flush=True)
    end = time.monotonic() + a.timeout
    got = 0
    while got < a.count and time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            conn, _ = s.accept()
        except socket.timeout:
            break
        with conn:
            raw = read_hello(conn, min(end, time.monotonic() + 10))
        if raw is None:
            continue
        name = os.path.join(a.out, "%s-%02d.bin" % (a.prefix, got))
        with open(name, "wb") as f:
            f.write(raw)
        print(name, len(raw), flush=True)
        got += 1
    s.close()
    return 0 if got >= a.count else 1


if __name__ == "__main__":
    sys.exit(main())
