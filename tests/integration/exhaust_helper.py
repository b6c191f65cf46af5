#!/usr/bin/python3
"""Load generators and the sampler of tests/integration/exhaust.sh (Debian's
python3, standard library only; every socket on 127.0.0.0/8 or in the test's
own namespace; every count and every wait bounded).

  exhaust_helper.py sink PORTFILE MAX       TCP listener on 127.0.0.1 that accepts up to MAX
                                            connections and never reads from them
  exhaust_helper.py udpsink PORTFILE        UDP socket on 127.0.0.1 that receives and discards,
                                            counting; prints the count on SIGTERM
  exhaust_helper.py stuck SOCKS HOST PORT N SECS STOPFILE
                                            N SOCKS5 CONNECTs to HOST:PORT; writes into every one
                                            (before and after the reply) as far as it goes, never
                                            reads; streams that end are opened again (at most 4N
                                            opens in all); until SECS or STOPFILE
  exhaust_helper.py flood SOCKS HOST PORT ASSOCS SECS STOPFILE
                                            ASSOCS UDP associations sending 1200-byte datagrams
                                            to HOST:PORT as fast as they go, until SECS or STOPFILE
  exhaust_helper.py preauth PORT N SRCNET SECS STOPFILE
                                            N TCP connections to 127.0.0.1:PORT from SRCNET.1 ..
                                            SRCNET.8 (half send 200 random bytes, half nothing),
                                            held; those the server closes are opened again (at
                                            most 2N opens in all); until SECS or STOPFILE
  exhaust_helper.py idle SOCKS N SECS STOPFILE
                                            N TCP connections to the SOCKS5 port that send
                                            nothing, held (closed ones are not reopened)
  exhaust_helper.py sample OUT STOPFILE SECS NAME=PID...
                                            every 0.25 s: VmRSS, VmHWM and open descriptors of
                                            each PID; writes "NAME rss_kib hwm_kib fds" (peaks)
                                            to OUT at the end
Each load generator writes "ready" to STOPFILE.ready once its connections are
open, and prints one summary line at the end. Exit status 0 means it ran.
"""
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tunnel_helper as th  # noqa: E402


def done(stopfile, t_end):
    return time.time() >= t_end or os.path.exists(stopfile)


def ready(stopfile, text="ready"):
    th.write_portfile(stopfile + ".ready", text + "\n")


# ---------------------------------------------------------------- sinks

def sink(portfile, maxconn):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # A small receive buffer: the destination holds little, so the bytes pile
    # up in the tunnel, which is what the test is about.
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind(("127.0.0.1", 0))
    ls.listen(256)
    th.write_portfile(portfile, "tcp %d\n" % ls.getsockname()[1])
    held = []
    while True:
        c, _ = ls.accept()
        if len(held) >= maxconn:
            c.close()
            continue
        held.append(c)  # never read


def udpsink(portfile):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    th.write_portfile(portfile, "udp %d\n" % u.getsockname()[1])
    stats = [0, 0]

    def bye(*_):
        print("udpsink: %d datagrams, %d bytes received" % (stats[0], stats[1]))
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    while True:
        d = u.recv(65535)
        stats[0] += 1
        stats[1] += len(d)


# ---------------------------------------------------------------- attacker A

class Stuck:
    """One SOCKS5 CONNECT whose reply is never waited for and whose data is
    never read: the greeting, the request and a first chunk go out at once."""

    def __init__(self, socks, host, port):
        self.s = socket.socket()
        self.s.setblocking(False)
        self.s.connect_ex(("127.0.0.1", socks))
        self.pending = b"\x05\x01\x00" + b"\x05\x01\x00" + th.addr_bytes(host, port)
        self.written = 0


def stuck(socks, host, port, n, secs, stopfile):
    t_end = time.time() + secs
    chunk = os.urandom(65536)
    conns = []
    opens = 0
    max_opens = 4 * n
    ended = 0
    total = 0
    while len(conns) < n and opens < max_opens:
        conns.append(Stuck(socks, host, port))
        opens += 1
    ready_said = False
    while not done(stopfile, t_end):
        for c in list(conns):
            try:
                while True:
                    if c.pending:
                        k = c.s.send(c.pending)
                        c.pending = c.pending[k:]
                        continue
                    k = c.s.send(chunk)
                    c.written += k
                    total += k
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                # The stream ended (refused, reset, dial timeout): open another.
                conns.remove(c)
                c.s.close()
                ended += 1
                if opens < max_opens:
                    conns.append(Stuck(socks, host, port))
                    opens += 1
        if not ready_said:
            ready(stopfile)
            ready_said = True
        time.sleep(0.2)
    live = len(conns)
    for c in conns:
        c.s.close()
    print("stuck %s:%d: %d open at the end, %d opens, %d ended, %d bytes written"
          % (host, port, live, opens, ended, total))
    return 0


# ---------------------------------------------------------------- attacker B

def flood(socks, host, port, assocs, secs, stopfile):
    t_end = time.time() + secs
    ctl = []
    udps = []
    for _ in range(assocs):
        s, rep = th.socks_open(socks, 3, "0.0.0.0", 0)
        if rep[1] != 0:
            print("UDP ASSOCIATE reply code %#x" % rep[1])
            return 1
        if rep[3] != 1:
            print("relay address type %d" % rep[3])
            return 1
        rhost = socket.inet_ntoa(rep[4:8])
        if rhost == "0.0.0.0":
            rhost = "127.0.0.1"
        relay = (rhost, struct.unpack(">H", rep[8:10])[0])
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.setblocking(False)
        ctl.append(s)
        udps.append((u, relay))
    dgram = b"\x00\x00\x00" + th.addr_bytes(host, port) + os.urandom(1200)
    ready(stopfile)
    sent = 0
    t0 = time.time()
    while not done(stopfile, t_end):
        for u, relay in udps:
            for _ in range(64):
                try:
                    u.sendto(dgram, relay)
                    sent += 1
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
        # Replies (none expected from the sink) are drained so they cannot pile up.
        for u, _ in udps:
            try:
                while True:
                    u.recv(65535)
            except OSError:
                pass
    dt = time.time() - t0
    for s in ctl:
        s.close()
    print("flood: %d datagrams of 1200 bytes in %.1f s (%d/s) on %d associations"
          % (sent, dt, sent / max(dt, 0.001), assocs))
    return 0


# ---------------------------------------------------------------- unauthenticated

def preauth(port, n, srcnet, secs, stopfile):
    t_end = time.time() + secs
    sel = selectors.DefaultSelector()
    opens = 0
    max_opens = 2 * n
    closed = 0
    refused = 0
    live = {}

    def open_one(i):
        nonlocal opens, refused
        opens += 1
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("%s.%d" % (srcnet, 1 + i % 8), 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            refused += 1
            s.close()
            return
        s.setblocking(False)
        if i % 2:
            try:
                s.send(os.urandom(200))
            except OSError:
                pass
        live[s.fileno()] = s
        sel.register(s, selectors.EVENT_READ, i)

    i = 0
    while len(live) < n and opens < max_opens and not done(stopfile, t_end):
        open_one(i)
        i += 1
    ready(stopfile)
    got = 0
    while not done(stopfile, t_end):
        for key, _ in sel.select(timeout=0.25):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if d:
                got += len(d)
                continue
            sel.unregister(s)
            del live[s.fileno()]
            s.close()
            closed += 1
            if opens < max_opens:
                open_one(i)
                i += 1
    left = len(live)
    for s in live.values():
        s.close()
    print("preauth: %d held at the end, %d opens, %d closed by the server, %d connects failed, "
          "%d bytes received" % (left, opens, closed, refused, got))
    return 0


def idle(socks, n, secs, stopfile):
    t_end = time.time() + secs
    sel = selectors.DefaultSelector()
    live = 0
    failed = 0
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", socks), timeout=5)
        except OSError:
            failed += 1
            continue
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        live += 1
    ready(stopfile)
    closed = 0
    t_first = None
    while live and not done(stopfile, t_end):
        for key, _ in sel.select(timeout=0.25):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if d:
                continue
            sel.unregister(s)
            s.close()
            live -= 1
            closed += 1
            if t_first is None:
                t_first = time.time()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print("idle: %d opened, %d connects failed, %d closed by the client, %d held at the end"
          % (n - failed, failed, closed, live))
    return 0


# ---------------------------------------------------------------- sampler

def proc_status(pid):
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm, len(os.listdir("/proc/%d/fd" % pid))


def sample(out, stopfile, secs, pids):
    t_end = time.time() + secs
    peak = {name: [0, 0, 0] for name, _ in pids}
    while True:
        for name, pid in pids:
            try:
                v = proc_status(pid)
            except (OSError, ValueError):
                continue
            p = peak[name]
            for k in range(3):
                p[k] = max(p[k], v[k])
        if done(stopfile, t_end):
            break
        time.sleep(0.25)
    with open(out + ".tmp", "w") as f:
        for name, _ in pids:
            f.write("%s %d %d %d\n" % (name, peak[name][0], peak[name][1], peak[name][2]))
    os.rename(out + ".tmp", out)
    return 0


def main(a):
    cmd = a[1]
    if cmd == "sink":
        sink(a[2], int(a[3]))
        return 0
    if cmd == "udpsink":
        udpsink(a[2])
        return 0
    if cmd == "stuck":
        return stuck(int(a[2]), a[3], int(a[4]), int(a[5]), float(a[6]), a[7])
    if cmd == "flood":
        return flood(int(a[2]), a[3], int(a[4]), int(a[5]), float(a[6]), a[7])
    if cmd == "preauth":
        return preauth(int(a[2]), int(a[3]), a[4], float(a[5]), a[6])
    if cmd == "idle":
        return idle(int(a[2]), int(a[3]), float(a[4]), a[5])
    if cmd == "sample":
        pids = [(x.split("=")[0], int(x.split("=")[1])) for x in a[5:]]
        return sample(a[2], a[3], float(a[4]), pids)
    print("unknown command " + cmd)
    return 2


if __name__ == "__main__":
    random.seed()
    try:
        sys.exit(main(sys.argv))
    except (AssertionError, EOFError, OSError) as e:
        print("%s: %s" % (type(e).__name__, e))
        sys.exit(1)
