#!/usr/bin/python3
"""Load and measurement helper for bench/peers.sh (loopback only).

Subcommands (all addresses must be on 127.0.0.0/8; every loop is bounded in
count and in time):

  ports N                 print N free TCP ports on 127.0.0.1
  wait-port PORT SECS     exit 0 once 127.0.0.1:PORT accepts, 1 after SECS
  sink PORT               HTTP upload sink: reads each request body to the
                          end (Content-Length), answers 204 with the byte
                          count in X-Received; runs until killed
  latency PROXY ORIGIN N SECS [GAP_MS]
                          (GAP_MS: idle this long before each request)
                          N sequential fresh connections: SOCKS5 handshake,
                          CONNECT, GET /tiny.txt, full response read; prints
                          "ok=.. fail=.. p50_ms=.. p99_ms=.. mean_ms=.."
  rps PROXY ORIGIN N CONC SECS
                          the same request from CONC concurrent clients until
                          N requests or SECS; prints "ok=.. fail=.. secs=.. rps=.."
  hold PROXY ORIGIN N SECS STATUSFILE
                          opens N SOCKS5 CONNECTs to ORIGIN, sends a partial
                          HTTP request on each (so every proxy really dials
                          the origin), writes "opened=.. failed=.." to
                          STATUSFILE and holds them for at most SECS
  procstat PID...         sums over each PID and all its descendants:
                          prints "rss_kb cpu_ticks clk_tck hwm_kb" (hwm:
                          the summed VmHWM, each process's peak RSS)

PROXY is "direct" (no proxy) or a port of a SOCKS5 proxy on 127.0.0.1;
ORIGIN is the port of the HTTP origin on 127.0.0.1.
"""

import asyncio
import os
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
TINY_REQ = (b"GET /tiny.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"User-Agent: umbra-bench\r\nConnection: close\r\n\r\n")
# A request cut before its final blank line: the origin keeps waiting.
PARTIAL_REQ = b"GET /tiny.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
MAX_HEAD = 64 * 1024


class BenchError(Exception):
    pass


def die(msg):
    print("peers_tool: " + msg, file=sys.stderr)
    sys.exit(2)


def socks_request(dst_port):
    """SOCKS5 CONNECT request for 127.0.0.1:dst_port (ATYP IPv4)."""
    return b"\x05\x01\x00\x01" + socket.inet_aton(HOST) + struct.pack(
        "!H", dst_port)


def reply_addr_len(atyp, first):
    """Bytes of BND.ADDR + BND.PORT after the 4-byte reply header."""
    if atyp == 1:
        return 4 + 2
    if atyp == 4:
        return 16 + 2
    if atyp == 3:
        return 1 + first + 2
    raise BenchError("bad SOCKS5 reply address type %d" % atyp)


def parse_head(head):
    """Returns (status, content_length) of an HTTP response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise BenchError("bad HTTP status line")
    status = int(parts[1])
    clen = None
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    if clen is None:
        raise BenchError("response without Content-Length")
    return status, clen


# ---------------------------------------------------------------- blocking


def recvn(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise BenchError("connection closed early")
        out += b
    return bytes(out)


def open_blocking(proxy, origin, timeout):
    """A connected socket to the origin, through the SOCKS5 proxy or not."""
    if proxy == "direct":
        s = socket.create_connection((HOST, origin), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    s = socket.create_connection((HOST, int(proxy)), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"\x05\x01\x00")
        if recvn(s, 2) != b"\x05\x00":
            raise BenchError("SOCKS5 method refused")
        s.sendall(socks_request(origin))
        hdr = recvn(s, 4)
        if hdr[0] != 5 or hdr[1] != 0:
            raise BenchError("SOCKS5 reply %d" % hdr[1])
        first = recvn(s, 1)[0] if hdr[3] == 3 else 0
        recvn(s, reply_addr_len(hdr[3], first) - (1 if hdr[3] == 3 else 0))
        return s
    except BaseException:
        s.close()
        raise


def get_tiny_blocking(proxy, origin, timeout):
    s = open_blocking(proxy, origin, timeout)
    try:
        s.sendall(TINY_REQ)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            b = s.recv(4096)
            if not b or len(buf) > MAX_HEAD:
                raise BenchError("short response head")
            buf += b
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        status, clen = parse_head(head)
        if status != 200:
            raise BenchError("HTTP status %d" % status)
        got = len(body)
        while got < clen:
            b = s.recv(65536)
            if not b:
                raise BenchError("short body")
            got += len(b)
    finally:
        s.close()


def percentile(sorted_vals, q):
    """Nearest-rank percentile of a sorted list (q in 0..100)."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1,
                   int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def cmd_latency(proxy, origin, n, secs, gap_ms="0"):
    origin, n, secs, gap = int(origin), int(n), float(secs), int(gap_ms) / 1e3
    deadline = time.monotonic() + secs
    for _ in range(min(10, n)):  # warm-up: not measured
        try:
            get_tiny_blocking(proxy, origin, 10)
        except (OSError, BenchError):
            pass
    samples, fail = [], 0
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        if gap:
            time.sleep(gap)  # the tunnel sits idle first: a request starts a burst
        t0 = time.perf_counter_ns()
        try:
            get_tiny_blocking(proxy, origin, 10)
        except (OSError, BenchError):
            fail += 1
            continue
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    samples.sort()
    mean = sum(samples) / len(samples) if samples else float("nan")
    print("ok=%d fail=%d p50_ms=%.3f p99_ms=%.3f mean_ms=%.3f" %
          (len(samples), fail, percentile(samples, 50),
           percentile(samples, 99), mean))


# ---------------------------------------------------------------- asyncio


async def open_async(proxy, origin):
    if proxy == "direct":
        return await asyncio.open_connection(HOST, origin)
    r, w = await asyncio.open_connection(HOST, int(proxy))
    try:
        w.write(b"\x05\x01\x00")
        if await r.readexactly(2) != b"\x05\x00":
            raise BenchError("SOCKS5 method refused")
        w.write(socks_request(origin))
        hdr = await r.readexactly(4)
        if hdr[0] != 5 or hdr[1] != 0:
            raise BenchError("SOCKS5 reply %d" % hdr[1])
        if hdr[3] == 3:
            first = (await r.readexactly(1))[0]
            await r.readexactly(first + 2)
        else:
            await r.readexactly(reply_addr_len(hdr[3], 0))
        return r, w
    except BaseException:
        w.close()
        raise


async def get_tiny_async(proxy, origin):
    r, w = await open_async(proxy, origin)
    try:
        w.write(TINY_REQ)
        head = await r.readuntil(b"\r\n\r\n")
        status, clen = parse_head(head[:-4])
        if status != 200:
            raise BenchError("HTTP status %d" % status)
        await r.readexactly(clen)
    finally:
        w.close()


async def rps_main(proxy, origin, n, conc, secs):
    deadline = time.monotonic() + secs
    state = {"started": 0, "ok": 0, "fail": 0}

    async def worker():
        while state["started"] < n and time.monotonic() < deadline:
            state["started"] += 1
            try:
                await asyncio.wait_for(get_tiny_async(proxy, origin), 10)
                state["ok"] += 1
            except (OSError, BenchError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                state["fail"] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(conc)))
    el = time.monotonic() - t0
    print("ok=%d fail=%d secs=%.3f rps=%.1f" %
          (state["ok"], state["fail"], el, state["ok"] / el))


def cmd_rps(proxy, origin, n, conc, secs):
    asyncio.run(rps_main(proxy, int(origin), int(n), int(conc), float(secs)))


async def hold_main(proxy, origin, n, secs, status_file):
    deadline = time.monotonic() + secs
    sem = asyncio.Semaphore(64)  # at most 64 handshakes in flight
    held, failed = [], [0]

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(open_async(proxy, origin), 15)
                w.write(PARTIAL_REQ)
                await w.drain()
                held.append(w)
            except (OSError, BenchError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError):
                failed[0] += 1

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))),
                               max(1.0, secs / 2))
    except asyncio.TimeoutError:
        pass
    tmp = status_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("opened=%d failed=%d\n" % (len(held), n - len(held)))
    os.rename(tmp, status_file)
    # Held until the driver has sampled memory and kills us, or the bound.
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    for w in held:
        w.close()


def cmd_hold(proxy, origin, n, secs, status_file):
    asyncio.run(hold_main(proxy, int(origin), int(n), float(secs),
                          status_file))


# ---------------------------------------------------------------- sink


def sink_conn(c):
    try:
        c.settimeout(120)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            b = c.recv(65536)
            if not b or len(buf) > MAX_HEAD:
                return
            buf += b
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        clen, expect = None, False
        for ln in head.split(b"\r\n")[1:]:
            k, _, v = ln.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                clen = int(v.strip())
            elif k == b"expect" and v.strip().lower() == b"100-continue":
                expect = True
        if clen is None:
            c.sendall(b"HTTP/1.1 411 Length Required\r\n"
                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if expect:
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        got = len(rest)
        mv = memoryview(bytearray(1 << 20))
        while got < clen:
            k = c.recv_into(mv, min(len(mv), clen - got))
            if k == 0:
                break
            got += k
        c.sendall(b"HTTP/1.1 204 No Content\r\nX-Received: %d\r\n"
                  b"Connection: close\r\n\r\n" % got)
    except (OSError, ValueError):
        pass
    finally:
        c.close()


def cmd_sink(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, int(port)))
    ls.listen(256)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=sink_conn, args=(c,), daemon=True).start()


# ---------------------------------------------------------------- misc


def cmd_ports(n):
    socks, out = [], []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
        out.append(str(s.getsockname()[1]))
    for s in socks:
        s.close()
    print(" ".join(out))


def cmd_wait_port(port, secs):
    deadline = time.monotonic() + float(secs)
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, int(port)), timeout=1).close()
            return 0
        except OSError:
            time.sleep(0.05)
    return 1


def read_stat(pid):
    """(ppid, utime+stime+cutime+cstime ticks, VmRSS kB, VmHWM kB) or None
    if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        rss = hwm = 0
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    rss = int(ln.split()[1])
                elif ln.startswith("VmHWM:"):
                    hwm = int(ln.split()[1])
    except (OSError, ValueError):
        return None
    # Fields after the parenthesised comm, which may itself hold spaces.
    f = st[st.rindex(")") + 2:].split()
    ppid = int(f[1])
    ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ppid, ticks, rss, hwm


def cmd_procstat(pids):
    info = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            s = read_stat(int(d))
            if s:
                info[int(d)] = s
    children = {}
    for pid, (ppid, _, _, _) in info.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [int(p) for p in pids]
    while todo:  # bounded: each pid is visited once
        p = todo.pop()
        if p in seen or p not in info:
            continue
        seen.add(p)
        todo.extend(children.get(p, []))
    rss = sum(info[p][2] for p in seen)
    ticks = sum(info[p][1] for p in seen)
    hwm = sum(info[p][3] for p in seen)
    print("%d %d %d %d" % (rss, ticks, os.sysconf("SC_CLK_TCK"), hwm))


def main(argv):
    cmds = {
        "ports": (cmd_ports, 1),
        "wait-port": (cmd_wait_port, 2),
        "sink": (cmd_sink, 1),
        "latency": (cmd_latency, (4, 5)),
        "rps": (cmd_rps, 5),
        "hold": (cmd_hold, 5),
    }
    if len(argv) >= 2 and argv[1] == "procstat":
        return cmd_procstat(argv[2:])
    if len(argv) < 2 or argv[1] not in cmds:
        die("usage: see the docstring of " + argv[0])
    fn, nargs = cmds[argv[1]]
    ok = nargs if isinstance(nargs, tuple) else (nargs, )
    if len(argv) - 2 not in ok:
        die("%s takes %s arguments" % (argv[1], " or ".join(map(str, ok))))
    return fn(*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
