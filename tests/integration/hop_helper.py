#!/usr/bin/env python3
"""Port hopping, computed independently from docs/PROTOCOL.md section 2.3
(BLAKE2b key from the server's public key, HOTP with HMAC-SHA-256 over the
slot), for tests/integration/hop_listen.sh.

  hop_helper.py ports PUB_B64 LO HI HOP_MS SLOT   ports of SLOT-1, SLOT, SLOT+1
  hop_helper.py slot HOP_MS                       the current slot
  hop_helper.py check PUB_B64 LO HI HOP_MS N      for N consecutive slots, in the
      middle of each, compares the TCP ports listening in LO..HI (ss -ltn) with
      those of the slots s-1..s+1; prints one line per slot, exits 1 on a mismatch
"""
import base64
import hashlib
import hmac
import struct
import subprocess
import sys
import time


def hop_key(pub):
    return hashlib.blake2b(b"umbra/1 port hopping", key=pub, digest_size=32).digest()


def port(key, slot, lo, hi):
    mac = hmac.new(key, struct.pack(">Q", slot % (1 << 64)), hashlib.sha256).digest()
    off = mac[31] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return lo + value % (hi - lo + 1)


def live(key, slot, lo, hi):
    return sorted({port(key, slot + d, lo, hi) for d in (-1, 0, 1)})


def now_ms():
    return time.time_ns() // 1_000_000


def listening(lo, hi):
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            p = int(f[3].rsplit(":", 1)[1])
            if lo <= p <= hi:
                ports.add(p)
    return sorted(ports)


def check(pub, lo, hi, hop_ms, n):
    key = hop_key(pub)
    bad = 0
    seen = []
    for _ in range(n):
        # Sample between 40% and 80% into a slot: the server re-syncs a few
        # ms after each boundary; retry when the slot changed under us.
        for _attempt in range(50):
            t = now_ms()
            phase = t % hop_ms
            lo_ph, hi_ph = int(hop_ms * 0.4), int(hop_ms * 0.8)
            if phase < lo_ph:
                time.sleep((lo_ph - phase) / 1000)
                continue
            if phase > hi_ph:
                time.sleep((hop_ms - phase + lo_ph) / 1000)
                continue
            slot = t // hop_ms
            got = listening(lo, hi)
            if now_ms() // hop_ms == slot:
                break
        else:
            print("FAIL could not sample inside one slot")
            return 1
        if seen and seen[-1][0] == slot:
            time.sleep(hop_ms / 1000 / 2)
            continue
        want = live(key, slot, lo, hi)
        ok = got == want
        bad += not ok
        print("%s slot %d: expected %s, listening %s" % ("ok" if ok else "FAIL", slot, want, got))
        seen.append((slot, got))
        time.sleep((hop_ms - now_ms() % hop_ms) / 1000)
    changes = sum(1 for a, b in zip(seen, seen[1:]) if a[1] != b[1])
    print("changes %d" % changes)
    return 1 if bad else 0


def main():
    cmd = sys.argv[1]
    if cmd == "ports":
        pub = base64.b64decode(sys.argv[2])
        lo, hi, hop_ms, slot = map(int, sys.argv[3:7])
        print(" ".join(str(port(hop_key(pub), slot + d, lo, hi)) for d in (-1, 0, 1)))
    elif cmd == "slot":
        print(now_ms() // int(sys.argv[2]))
    elif cmd == "check":
        pub = base64.b64decode(sys.argv[2])
        lo, hi, hop_ms, n = map(int, sys.argv[3:7])
        sys.exit(check(pub, lo, hi, hop_ms, n))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
