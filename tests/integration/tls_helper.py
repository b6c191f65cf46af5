#!/usr/bin/env python3
"""Helpers of tunnel_tls.sh: a recording tap and TLS record tools (loopback only).

  tap PORTFILE UPSTREAM DIR LIMIT [PIECE GAP]  forwarder on a free port of 127.0.0.1 (the port
                                    goes to PORTFILE): connection N is relayed to
                                    127.0.0.1:UPSTREAM; the first LIMIT bytes of
                                    each direction go to DIR/N.c2s and DIR/N.s2c,
                                    and at its end DIR/N.end gets one line:
                                    "c2s=BYTES s2c=BYTES first_eof=c2s|s2c|none" (with
                                    "-rst" when that side reset the connection);
                                    with PIECE, the client's first 4 KiB are
                                    forwarded PIECE bytes a write, GAP s apart
  exchange PORT FILE SILENCE OUT [MODE]  sends FILE to 127.0.0.1:PORT, reads until the
                                    peer closes or SILENCE seconds pass without a
                                    byte; the bytes go to OUT; prints "closed" or
                                    "open" (the connection's state at the end);
                                    MODE (a 5th argument) "shut": half-close after
                                    sending, "slow:N:SECS": N bytes a write, SECS
                                    apart
  bighello IN OUT PAD RECSIZE       the ClientHello of IN with a padding extension
                                    of PAD zero bytes, cut into handshake records
                                    of RECSIZE bytes, to OUT; prints its length
  hello FILE OUT                    the records carrying the first handshake message
                                    of FILE (a client's first bytes) to OUT; prints
                                    "LEN SESSION_ID_HEX"
  records FILE [MAX]                the TLS records of FILE, "type:len" each
                                    (a trailing partial record as "type:len+")
  shello FILE SID_HEX               checks FILE starts with a TLS 1.3 ServerHello
                                    record (not a HelloRetryRequest) that echoes
                                    SID_HEX; prints "ok len=L group=G cipher=C" or
                                    "bad: reason"
  flight A B [only]                 compares the flights of two files (the
                                    ServerHello, CCS and application_data records
                                    of B, the cover's, against the first records of
                                    A): prints "equal" or the difference; the
                                    CertificateVerify record (the third
                                    application_data record of four) may differ by
                                    3 bytes, as ECDSA signatures vary in length;
                                    with "only", A must hold no further record
"""
import os
import selectors
import socket
import sys
import threading
import time

HRR_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def portfile(path, port):
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(path + ".tmp", path)


def tap(pf, upstream, d, limit, piece=0, gap=0.0):
    os.makedirs(d, exist_ok=True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    portfile(pf, ls.getsockname()[1])
    lock = threading.Lock()
    count = [0]

    def relay(c, n):
        try:
            u = socket.create_connection(("127.0.0.1", upstream), timeout=10)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        out = {c: open(os.path.join(d, "%d.c2s" % n), "wb"),
               u: open(os.path.join(d, "%d.s2c" % n), "wb")}
        total = {c: 0, u: 0}
        first_eof = "none"
        sel = selectors.DefaultSelector()
        sel.register(c, selectors.EVENT_READ, u)
        sel.register(u, selectors.EVENT_READ, c)
        open_ = 2
        while open_:
            for k, _ in sel.select():
                src, dst = k.fileobj, k.data
                rst = ""
                try:
                    b = src.recv(262144)
                except OSError:
                    b, rst = b"", "-rst"
                if not b:
                    if first_eof == "none":
                        first_eof = ("c2s" if src is c else "s2c") + rst
                    sel.unregister(src)
                    open_ -= 1
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                if total[src] < limit:
                    out[src].write(b[:limit - total[src]])
                    out[src].flush()
                total[src] += len(b)
                try:
                    if piece and src is c and total[c] - len(b) < 4096:
                        # the client's first bytes in pieces, as a path with
                        # a small MSS (and some delay) delivers them
                        for i in range(0, len(b), piece):
                            dst.sendall(b[i:i + piece])
                            time.sleep(gap)
                    else:
                        dst.sendall(b)
                except OSError:
                    open_ = 0
        for f in out.values():
            f.close()
        c.close()
        u.close()
        with open(os.path.join(d, "%d.end" % n), "w") as f:
            f.write("c2s=%d s2c=%d first_eof=%s\n" % (total[c], total[u], first_eof))

    while True:
        c, _ = ls.accept()
        with lock:
            n = count[0]
            count[0] += 1
        threading.Thread(target=relay, args=(c, n), daemon=True).start()


def exchange(port, path, silence, out, mode=""):
    data = open(path, "rb").read()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode.startswith("slow"):  # slow:N:SECS, N bytes per write
        _, n, d = mode.split(":")
        for i in range(0, len(data), int(n)):
            s.sendall(data[i:i + int(n)])
            time.sleep(float(d))
    else:
        s.sendall(data)
    if mode == "shut":
        s.shutdown(socket.SHUT_WR)
    got = b""
    state = "open"
    s.settimeout(silence)
    while len(got) < 1 << 20:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            state = "closed"
            break
        if not b:
            state = "closed"
            break
        got += b
    s.close()
    with open(out, "wb") as f:
        f.write(got)
    print(state)


def bighello(src, out, pad, recsize):
    """The ClientHello of src with a padding extension of pad zero bytes
    added, cut into records of recsize bytes."""
    buf = open(src, "rb").read()
    hs = b"".join(body for t, _, body in split_records(buf) if t == 22 and body)
    m = hs[4:4 + int.from_bytes(hs[1:4], "big")]
    p = 34
    p += 1 + m[p]  # session id
    p += 2 + int.from_bytes(m[p:p + 2], "big")  # cipher suites
    p += 1 + m[p]  # compression
    el = int.from_bytes(m[p:p + 2], "big")
    ext = m[p + 2:p + 2 + el] + (21).to_bytes(2, "big") + pad.to_bytes(2, "big") + bytes(pad)
    body = m[:p] + len(ext).to_bytes(2, "big") + ext
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    recs = b""
    for i in range(0, len(msg), recsize):
        frag = msg[i:i + recsize]
        recs += b"\x16\x03\x01" + len(frag).to_bytes(2, "big") + frag
    with open(out, "wb") as f:
        f.write(recs)
    print(len(msg))


def split_records(buf):
    recs, off = [], 0
    while off + 5 <= len(buf):
        t, ln = buf[off], int.from_bytes(buf[off + 3:off + 5], "big")
        if off + 5 + ln > len(buf):
            recs.append((t, ln, None))
            break
        recs.append((t, ln, buf[off + 5:off + 5 + ln]))
        off += 5 + ln
    return recs


def hello(path, out):
    buf = open(path, "rb").read()
    hs, off = b"", 0
    while off + 5 <= len(buf):
        t, ln = buf[off], int.from_bytes(buf[off + 3:off + 5], "big")
        if t != 22 or off + 5 + ln > len(buf):
            break
        hs += buf[off + 5:off + 5 + ln]
        off += 5 + ln
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            if hs[0] != 1:
                break
            with open(out, "wb") as f:
                f.write(buf[:off])
            sid_len = hs[38]
            print(off, hs[39:39 + sid_len].hex())
            return 0
    print("no ClientHello at the start of %s" % path, file=sys.stderr)
    return 1


def records(path, mx):
    r = []
    for t, ln, body in split_records(open(path, "rb").read())[:mx]:
        r.append("%d:%d%s" % (t, ln, "" if body is not None else "+"))
    print(" ".join(r))


def parse_shello(buf, sid_hex):
    recs = split_records(buf)
    if not recs or recs[0][0] != 22 or recs[0][2] is None:
        return "bad: no whole handshake record first"
    m = recs[0][2]
    if len(m) < 4 or m[0] != 2 or 4 + int.from_bytes(m[1:4], "big") != len(m):
        return "bad: not one ServerHello message in the first record"
    p = 4
    if m[p:p + 2] != b"\x03\x03":
        return "bad: legacy_version %s" % m[p:p + 2].hex()
    rnd = m[p + 2:p + 34]
    if rnd == HRR_RANDOM:
        return "bad: HelloRetryRequest"
    p += 34
    sl = m[p]
    sid = m[p + 1:p + 1 + sl]
    if sid.hex() != sid_hex:
        return "bad: session id %s does not echo %s" % (sid.hex(), sid_hex)
    p += 1 + sl
    cipher = m[p:p + 2].hex()
    p += 3  # cipher suite, compression
    el = int.from_bytes(m[p:p + 2], "big")
    p += 2
    if p + el != len(m):
        return "bad: extensions length %d, %d bytes left" % (el, len(m) - p)
    version, group = None, None
    while p + 4 <= len(m):
        et, ln = int.from_bytes(m[p:p + 2], "big"), int.from_bytes(m[p + 2:p + 4], "big")
        body = m[p + 4:p + 4 + ln]
        if len(body) != ln:
            return "bad: extension %04x truncated" % et
        if et == 43:
            version = body.hex()
        elif et == 51:
            group = body[:2].hex()
            kl = int.from_bytes(body[2:4], "big")
            if 4 + kl != ln:
                return "bad: key_share length"
        p += 4 + ln
    if p != len(m):
        return "bad: trailing bytes in the extensions"
    if version != "0304":
        return "bad: supported_versions %s" % version
    if group not in ("001d", "11ec"):
        return "bad: key share group %s" % group
    return "ok len=%d group=%s cipher=%s" % (5 + len(m), group, cipher)


def flight_of(buf):
    """[(type, len)] of the ServerHello, optional CCS and the application_data
    records that follow (all records of the cover's flight)."""
    return [(t, ln) for t, ln, _ in split_records(buf)]


def flight(a, b, only):
    fa = flight_of(open(a, "rb").read())
    fb = flight_of(open(b, "rb").read())
    if len(fb) < 3 or fb[0][0] != 22:
        print("the cover's reply is no flight: %s" % fb)
        return
    if len(fa) < len(fb) or (only and len(fa) != len(fb)):
        print("%d records, the cover sends %d: %s vs %s" % (len(fa), len(fb), fa, fb))
        return
    app = [i for i, (t, _) in enumerate(fb) if t == 23]
    cv = app[2] if len(app) == 4 else -1
    for i, (x, y) in enumerate(zip(fa, fb)):
        # A DER P-256 signature is 70..72 bytes but 1 in 128 is 69 or less:
        # +-2 would fail about 1 run in 500 per comparison.
        slack = 3 if i == cv else 0
        if x[0] != y[0] or abs(x[1] - y[1]) > slack:
            print("record %d is %d:%d, the cover's %d:%d (%s vs %s)" % (i, x[0], x[1], y[0], y[1],
                                                                       fa[:len(fb)], fb))
            return
    print("equal")


def main(a):
    cmd = a[0]
    if cmd == "tap":
        tap(a[1], int(a[2]), a[3], int(a[4]), int(a[5]) if len(a) > 5 else 0,
            float(a[6]) if len(a) > 6 else 0.0)
    elif cmd == "exchange":
        exchange(int(a[1]), a[2], float(a[3]), a[4], a[5] if len(a) > 5 else "")
    elif cmd == "bighello":
        bighello(a[1], a[2], int(a[3]), int(a[4]))
    elif cmd == "hello":
        return hello(a[1], a[2])
    elif cmd == "records":
        records(a[1], int(a[2]) if len(a) > 2 else 64)
    elif cmd == "shello":
        print(parse_shello(open(a[1], "rb").read(), a[2]))
    elif cmd == "flight":
        flight(a[1], a[2], len(a) > 3 and a[3] == "only")
    else:
        print("unknown command", cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
