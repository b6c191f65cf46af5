#!/usr/bin/env python3
"""A service manager's end of the sd_notify protocol, for sd_notify.sh.

  sd_notify_helper.py listen SOCKET LOG
      binds the AF_UNIX datagram socket SOCKET (what $NOTIFY_SOCKET names)
      and appends one JSON line per notification to LOG:
        {"pid": sender pid (SCM_CREDENTIALS), "mono_us": our CLOCK_MONOTONIC
         at receipt, "fields": {"READY": "1", ...}, "listening": [TCP ports
         listening in this namespace at receipt, from /proc/net/tcp{,6}],
         "interfaces": [network interfaces then], "routes": [ip -4 routes then]}
      Runs until killed.
  sd_notify_helper.py wait LOG FIELD=VALUE [N] SECS
      waits until LOG holds N (default 1) notifications with FIELD=VALUE;
      prints the N-th as JSON. Exit 1 on timeout (printing what came)."""
import json
import os
import socket
import struct
import subprocess
import sys
import time


def listening_ports():
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A":  # TCP_LISTEN
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return sorted(ports)


def routes():
    """The IPv4 routes of this namespace ('ip -4 -o route'), or [] without ip."""
    try:
        r = subprocess.run(["ip", "-4", "-o", "route", "show"], capture_output=True, text=True,
                           timeout=10)
        return [line.strip() for line in r.stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        return []


def listen(path, log):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    out = open(log, "a", buffering=1)
    cred_len = socket.CMSG_SPACE(struct.calcsize("3i"))
    while True:
        data, anc, _flags, _addr = s.recvmsg(4096, cred_len)
        mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        pid = None
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", cdata[:12])[0]
        fields = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        rec = {"pid": pid, "mono_us": mono, "fields": fields, "listening": listening_ports(),
               "interfaces": [name for _i, name in socket.if_nameindex()], "routes": routes()}
        out.write(json.dumps(rec) + "\n")


def wait(log, cond, n, secs):
    k, v = cond.split("=", 1)
    end = time.monotonic() + secs
    recs = []
    while True:
        recs = []
        try:
            with open(log) as fh:
                recs = [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            pass
        hits = [r for r in recs if r["fields"].get(k) == v]
        if len(hits) >= n:
            print(json.dumps(hits[n - 1]))
            return 0
        if time.monotonic() > end:
            print("no %d notification(s) with %s within %s s; got: %s" % (n, cond, secs, recs))
            return 1
        time.sleep(0.05)


def main(argv):
    if len(argv) == 4 and argv[1] == "listen":
        listen(argv[2], argv[3])
    elif len(argv) in (5, 6) and argv[1] == "wait":
        n = int(argv[4]) if len(argv) == 6 else 1
        return wait(argv[2], argv[3], n, float(argv[-1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
