#!/usr/bin/python3
"""Load helper of bench/footprint.sh (loopback only; every loop bounded in
count and time).

  many PROXY ORIGIN N PATH SECS
      N downloads of http://127.0.0.1:ORIGIN/PATH through the SOCKS5 proxy on
      127.0.0.1:PROXY, all at once: every connection is opened and its SOCKS5
      CONNECT answered first, then every GET is sent, then all are read to
      the end together (so N streams are active on the proxy at the same
      time). Gives up after SECS. Prints
      "ok=.. fail=.. bytes=.. secs=.. opened=..".
  hwm PID...
      prints "VmHWM VmRSS" (kB) of each PID, one line each; a PID that is
      gone prints "0 0".
"""

import asyncio
import socket
import struct
import sys
import time

HOST = "127.0.0.1"


def socks_request(dst_port):
    return b"\x05\x01\x00\x01" + socket.inet_aton(HOST) + struct.pack("!H", dst_port)


async def open_one(proxy, origin):
    r, w = await asyncio.open_connection(HOST, proxy, limit=1 << 20)
    w.write(b"\x05\x01\x00")
    if await r.readexactly(2) != b"\x05\x00":
        raise OSError("SOCKS5 method refused")
    w.write(socks_request(origin))
    hdr = await r.readexactly(4)
    if hdr[0] != 5 or hdr[1] != 0:
        raise OSError("SOCKS5 reply %d" % hdr[1])
    if hdr[3] == 1:
        await r.readexactly(6)
    elif hdr[3] == 4:
        await r.readexactly(18)
    else:
        n = (await r.readexactly(1))[0]
        await r.readexactly(n + 2)
    return r, w


async def fetch(r, w, path):
    w.write(b"GET /" + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"User-Agent: umbra-footprint\r\nConnection: close\r\n\r\n")
    head = await r.readuntil(b"\r\n\r\n")
    clen = None
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    if not head.startswith(b"HTTP/1.1 200") or clen is None:
        raise OSError("bad response")
    got = 0
    while got < clen:
        b = await r.read(min(1 << 18, clen - got))
        if not b:
            break
        got += len(b)
    w.close()
    return got == clen, got


async def many_main(proxy, origin, n, path, secs):
    t0 = time.monotonic()
    sem = asyncio.Semaphore(128)  # opens in flight (a listen backlog is finite)

    async def opener():
        async with sem:
            try:
                return await open_one(proxy, origin)
            except (OSError, asyncio.IncompleteReadError):
                return None

    ok = fail = total = 0
    conns = []
    why = {}
    try:
        conns = await asyncio.wait_for(asyncio.gather(*[opener() for _ in range(n)]), secs)
        opened = [c for c in conns if c]
        fail += n - len(opened)
        left = max(1.0, secs - (time.monotonic() - t0))
        res = await asyncio.wait_for(
            asyncio.gather(*[fetch(r, w, path) for r, w in opened], return_exceptions=True),
            left)
        for x in res:
            if isinstance(x, tuple) and x[0]:
                ok += 1
                total += x[1]
            else:
                fail += 1
                if isinstance(x, tuple):
                    total += x[1]
                    why.setdefault("short", 0)
                    why["short"] += 1
                else:
                    k = type(x).__name__ + ":" + str(x)[:40]
                    why[k] = why.get(k, 0) + 1
    except asyncio.TimeoutError:
        fail = n - ok
    for c in conns or []:
        if c:
            c[1].close()
    print("ok=%d fail=%d bytes=%d secs=%.3f opened=%d" %
          (ok, fail, total, time.monotonic() - t0, sum(1 for c in conns or [] if c)))
    for k, v in sorted(why.items(), key=lambda kv: -kv[1])[:3]:
        print("many: %d failed: %s" % (v, k), file=sys.stderr)


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(key + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def main(argv):
    if len(argv) == 7 and argv[1] == "many":
        asyncio.run(many_main(int(argv[2]), int(argv[3]), int(argv[4]), argv[5], float(argv[6])))
        return 0
    if len(argv) >= 2 and argv[1] == "hwm":
        for p in argv[2:]:
            print(status_kb(int(p), "VmHWM"), status_kb(int(p), "VmRSS"))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
