#!/usr/bin/python3
"""Renders the results of bench/peers.sh as Markdown (stdout).

usage: peers_report.py RESULTS_FILE

RESULTS_FILE holds tab-separated lines "system<TAB>metric<TAB>value", where
system "meta" carries the header (command, date, machine, versions, sizes).
A value that is not a number ("n/a: ...", "fail: ...") is shown as it is.
"""

import math
import sys

SYSTEMS = [
    ("direct", "direct"),
    ("umbra", "umbra tcp"),
    ("umbra-tls", "umbra tls"),
    ("umbra-jitter", "umbra tls, timing = jitter"),
    ("umbra-rot1m", "umbra tcp, --rotate 1m"),
    ("umbra-rot16k", "umbra tcp, --rotate 16k"),
    ("ss", "shadowsocks-libev"),
    ("ss-aes", "shadowsocks-libev aes-256-gcm"),
    ("ssh", "ssh -D"),
    ("microsocks", "microsocks"),
    ("v2ray", "v2ray VMess"),
    ("umbra-ws", "umbra ws (via nginx TLS)"),
]

# metric, label, format, better ("hi"/"lo"), compare with direct?
ROWS = [
    ("idle", "CPUs idle just before the run (%)", "%.0f", None, False),
    ("dl1", "Download, 1 stream (MB/s)", "%.0f", "hi", True),
    ("dl8", "Download, 8 streams (MB/s)", "%.0f", "hi", True),
    ("ul1", "Upload, 1 stream (MB/s)", "%.0f", "hi", True),
    ("ul8", "Upload, 8 streams (MB/s)", "%.0f", "hi", True),
    ("lat_p50", "Connect + small GET, p50 (ms)", "%.3f", "lo", True),
    ("lat_p99", "Connect + small GET, p99 (ms)", "%.3f", "lo", True),
    ("lat_added", "Added latency, p50 minus direct's (ms)", "%.3f", "lo",
     False),
    ("lati_p50", "Connect + small GET after 100 ms idle, p50 (ms)", "%.3f",
     "lo", True),
    ("lati_p99", "Connect + small GET after 100 ms idle, p99 (ms)", "%.3f",
     "lo", True),
    ("rps", "Requests/s, 64 concurrent clients", "%.0f", "hi", True),
    ("cpu_req", "CPU per request, client+server (ms)", "%.3f", "lo", False),
    ("cpu_dl", "CPU s per GiB, download 1 stream (client+server)", "%.2f",
     "lo", False),
    ("cpu_ul", "CPU s per GiB, upload 1 stream (client+server)", "%.2f",
     "lo", False),
    ("rss_c_idle", "RSS client, idle (MiB)", "%.1f", "lo", False),
    ("rss_s_idle", "RSS server, idle (MiB)", "%.1f", "lo", False),
    ("rss_c_hold", "RSS client, N open connections (MiB)", "%.1f", "lo",
     False),
    ("rss_s_hold", "RSS server, N open connections (MiB)", "%.1f", "lo",
     False),
    ("rss_c_hold_peak", "Peak RSS client, N open connections (MiB)",
     "%.1f", "lo", False),
    ("rss_s_hold_peak", "Peak RSS server, N open connections (MiB)",
     "%.1f", "lo", False),
    ("rss_c_bulk_peak", "Peak RSS client, bulk transfers (MiB)", "%.1f",
     "lo", False),
    ("rss_s_bulk_peak", "Peak RSS server, bulk transfers (MiB)", "%.1f",
     "lo", False),
    ("hold", "Connections held open / seen by the origin", None, None,
     False),
]

# The peers umbra is measured against (every system that is not umbra or
# direct), for the best-peer ratios.
PEERS = ["ss", "ss-aes", "ssh", "microsocks", "v2ray"]


METHOD = """
## How it is measured

- One system at a time is started, measured and stopped; all listen on
  127.0.0.1 only. Origin: nginx (1 worker, sendfile) serving random data from
  the page cache; uploads go to `bench/peers_tool.py sink`, which reads every
  byte of the body and answers with the count, checked by the driver.
- shadowsocks-libev: `ss-server` + `ss-local`, `chacha20-ietf-poly1305`,
  `--no-delay`; the same with `aes-256-gcm` (ss-aes). ssh: `ssh -N -D` (cipher `chacha20-poly1305@openssh.com`, no
  compression) to an sshd started from a temp config with throwaway keys.
  microsocks: plain SOCKS5, no crypto, one process (shown as the server).
  v2ray: Debian's `v2ray`, a VMess server (alterId 0, freedom outbound) and
  a client with a SOCKS5 inbound, `chacha20-poly1305`, configs written by
  `bench/v2ray_conf.py`.
  umbra: `umbra server` (`--allow 127.0.0.0/8`) and `umbra client --link`.
  umbra tls: `umbra server init --transport tls --cover 127.0.0.1:COVER
  --sni cover.umbra-bench.test`, the cover a second server block of the same
  nginx (TLS 1.2 and 1.3, a P-256 certificate the script makes with `openssl
  req`); the client on the share link. umbra tls, timing = jitter: the same
  with `timing = jitter` in the server's `[transport]` section and in a
  client config made from the link.
- MB/s = 10^6 bytes per second. 1 stream: one `curl --socks5-hostname`
  transfer, curl's own time. 8 streams: 8 curls at once, total bytes over
  wall time.
- Latency: sequential requests, each a fresh TCP connection, SOCKS5 greeting
  and CONNECT (waiting for each reply, as curl does), `GET /tiny.txt`, and the
  whole response read (Python, `time.perf_counter_ns`); 10 warm-up requests
  first. p99 is the nearest-rank percentile. "After 100 ms idle": the same,
  a fifth as many, each request after 100 ms in which nothing moved, so
  each one starts a burst (what `timing = jitter` delays); back-to-back
  requests keep a tunnel busy and hide that delay.
- Requests/s: the same request from 64 concurrent asyncio clients in one
  Python process on the same cores: the client's own CPU caps every column,
  so CPU per request (client + server processes' utime+stime from
  `/proc/PID/stat`, children included, divided by requests) is the fairer
  figure.
- CPU s per GiB: utime+stime of the client and server process trees over the
  1-stream transfer, divided by GiB moved.
- Peak RSS: VmHWM summed over each process tree, reset (`clear_refs` 5)
  before the held connections and again before the bulk transfers, read
  after each: the peak while N connections were open, and the peak over the
  four bulk figures (1 and 8 streams, down and up, every run).
- RSS: VmRSS summed over each process tree (sshd: listener, monitor and
  session processes; shared pages are counted once per process), idle after
  one request, then with N SOCKS5 CONNECTs held open, each having sent half an
  HTTP request so every proxy really dials the origin; "seen by the origin" is
  the count of established sockets on nginx's port (`ss`).
- MB/s figures are the best of several runs (see sizes), CPU s per GiB the
  least of those runs: other work on the machine only ever slows a run down
  or adds CPU (cache, frequency). Loopback on a shared 2-CPU guest: curl,
  client, server and origin compete for the same 2 cores, so every column is
  CPU-bound. On this guest single runs of the same system moved by up to 2×
  in MB/s between runs while other builds ran; CPU per GiB, CPU per request,
  latency p50 and RSS were steadier (within about 15%). The "CPUs idle"
  row shows how quiet the machine was when each system began.
"""


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def load(path):
    res, meta = {}, []
    with open(path) as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if not ln:
                continue
            parts = ln.split("\t", 2)
            if len(parts) != 3:
                continue
            sysname, key, val = parts
            if sysname == "meta":
                meta.append((key, val))
            else:
                res.setdefault(sysname, {})[key] = val
    return res, meta


def derive(res):
    """Adds the metrics computed from others (added latency)."""
    d = num(res.get("direct", {}).get("lat_p50"))
    for s, _ in SYSTEMS:
        r = res.setdefault(s, {})
        p = num(r.get("lat_p50"))
        if s != "direct" and d is not None and p is not None:
            r["lat_added"] = "%.6f" % (p - d)


def cell(res, s, key, fmt):
    r = res.get(s, {})
    if not r.get("status", "").startswith("ok"):
        return "n/a"
    v = r.get(key)
    if v is None or v == "":
        return "—"
    x = num(v)
    if fmt is None:
        return v
    if x is None:
        return "fail" if v.startswith("fail") else v
    return fmt % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x):
    return "—" if x is None else "%.2f×" % x


# Metrics with a bound for "tls within 10% of tcp": better, bound on tls/tcp.
TLS_TARGET = {
    "dl1": 0.90, "dl8": 0.90, "ul1": 0.90, "ul8": 0.90,
    "cpu_dl": 1.10, "cpu_ul": 1.10,
}


def pair_table(w, res, hold_n, a, b, title, text, target):
    """A table of system a against system b: both figures, a / b, and where
    target bounds the metric a verdict."""
    ra, rb = res.get(a, {}), res.get(b, {})
    if a not in res or b not in res or not ra.get("status") or \
            not rb.get("status"):
        return
    la = dict(SYSTEMS)[a]
    lb = dict(SYSTEMS)[b]
    w(title)
    w("")
    w(text)
    w("")
    w("| metric | %s | %s | %s / %s | verdict |" % (lb, la, la, lb))
    w("|---|---:|---:|---:|---|")
    oka = ra.get("status", "").startswith("ok")
    okb = rb.get("status", "").startswith("ok")
    for key, label, fmt, better, _ in ROWS:
        if better is None:
            continue
        label = label.replace("N open", "%s open" % hold_n)
        va = num(ra.get(key)) if oka else None
        vb = num(rb.get(key)) if okb else None
        r = ratio(va, vb)
        verdict = ""
        if key in target:
            bound = target[key]
            if r is None:
                verdict = "not measured"
            else:
                met = r >= bound if better == "hi" else r <= bound
                verdict = ("met" if met else "NOT met") + \
                    " (bound %.2f×)" % bound
        w("| %s | %s | %s | %s | %s |" % (
            label, cell(res, b, key, fmt), cell(res, a, key, fmt),
            fmt_ratio(r), verdict))
    w("")


def best_peer(res, key, better):
    """(system, value) of the best peer on one metric, or (None, None)."""
    best = (None, None)
    for p in PEERS:
        r = res.get(p, {})
        if not r.get("status", "").startswith("ok"):
            continue
        v = num(r.get(key))
        if v is None:
            continue
        if best[1] is None or (v > best[1] if better == "hi" else v < best[1]):
            best = (p, v)
    return best


def best_peer_table(w, res, hold_n):
    """Every column: umbra (tcp) against the best peer of the same run."""
    u = res.get("umbra", {})
    if not u.get("status", "").startswith("ok"):
        return
    names = dict(SYSTEMS)
    w("## umbra against the best peer, per column")
    w("")
    w("The best of %s in each row, from this run; the ratio is umbra's "
      "figure over the best peer's (higher is better for MB/s and "
      "requests/s, lower for latency, CPU and RSS)." %
      ", ".join(names[p] for p in PEERS))
    w("")
    w("| metric | umbra tcp | best peer | its figure | umbra / best peer |")
    w("|---|---:|---|---:|---:|")
    for key, label, fmt, better, _ in ROWS:
        if better is None:
            continue
        label = label.replace("N open", "%s open" % hold_n)
        p, pv = best_peer(res, key, better)
        uv = num(u.get(key))
        w("| %s | %s | %s | %s | %s |" % (
            label, cell(res, "umbra", key, fmt), names.get(p, "—"),
            "—" if pv is None else fmt % pv, fmt_ratio(ratio(uv, pv))))
    w("")


def main(argv):
    if len(argv) != 2:
        print("usage: peers_report.py RESULTS_FILE", file=sys.stderr)
        return 2
    res, meta = load(argv[1])
    derive(res)
    md = dict(meta)
    hold_n = md.get("hold_n", "N")
    out = []
    w = out.append
    w("# umbra (tcp, tls, tls with jitter) side by side with "
      "shadowsocks-libev, ssh -D, microsocks, v2ray VMess and direct")
    w("")
    w("Produced by `bench/peers.sh` (run by `make bench`); every process on "
      "127.0.0.1.")
    w("")
    for key, val in meta:
        if key in ("hold_n", ):
            continue
        w("- **%s**: %s" % (key, val))
    w("")
    # Main table.
    w("| metric | " + " | ".join(label for _, label in SYSTEMS) + " |")
    w("|---|" + "---:|" * len(SYSTEMS))
    w("| status | " + " | ".join(
        res.get(s, {}).get("status", "not run") for s, _ in SYSTEMS) + " |")
    for key, label, fmt, _, _ in ROWS:
        label = label.replace("N open", "%s open" % hold_n)
        w("| %s | %s |" % (label, " | ".join(
            cell(res, s, key, fmt) for s, _ in SYSTEMS)))
    w("")
    # Ratios.
    w("## Ratios")
    w("")
    w("Each cell: the system's figure divided by shadowsocks-libev's, then "
      "by direct's (where direct has that figure). For MB/s and requests/s "
      "higher is better; for latency, CPU and RSS lower is better.")
    w("")
    w("| metric | " + " | ".join(label for s, label in SYSTEMS
                                  if s != "direct") + " |")
    w("|---|" + "---:|" * (len(SYSTEMS) - 1))
    for key, label, fmt, better, vs_direct in ROWS:
        if better is None:
            continue
        label = label.replace("N open", "%s open" % hold_n)
        cells = []
        for s, _ in SYSTEMS:
            if s == "direct":
                continue
            ok = res.get(s, {}).get("status", "").startswith("ok")
            v = num(res.get(s, {}).get(key)) if ok else None
            ss = num(res.get("ss", {}).get(key))
            d = num(res.get("direct", {}).get(key))
            if not ok:
                cells.append("n/a")
                continue
            if v is None:
                cells.append("—")
                continue
            c = fmt_ratio(ratio(v, ss)) + " ss"
            if vs_direct:
                c += " / " + fmt_ratio(ratio(v, d)) + " direct"
            cells.append(c)
        w("| %s | %s |" % (label, " | ".join(cells)))
    w("")
    best_peer_table(w, res, hold_n)
    # The targets for umbra.
    w("## umbra against the targets of issue 5")
    w("")
    u, s_, d = res.get("umbra", {}), res.get("ss", {}), res.get("direct", {})
    u_ok = u.get("status", "").startswith("ok")

    def g(r, k):
        return num(r.get(k))

    targets = [
        ("single-stream download ≥ 2× shadowsocks-libev's", "dl1",
         g(u, "dl1"), g(s_, "dl1"), 2.0, "hi"),
        ("single-stream download ≥ ½ of direct's", "dl1",
         g(u, "dl1"), g(d, "dl1"), 0.5, "hi"),
        ("CPU s per GiB (download) ≤ ½ of shadowsocks-libev's", "cpu_dl",
         g(u, "cpu_dl"), g(s_, "cpu_dl"), 0.5, "lo"),
        ("added latency (p50 − direct p50) ≤ ½ of shadowsocks-libev's",
         "lat_added", g(u, "lat_added"), g(s_, "lat_added"), 0.5, "lo"),
        ("CPU per request ≤ ½ of shadowsocks-libev's", "cpu_req",
         g(u, "cpu_req"), g(s_, "cpu_req"), 0.5, "lo"),
        ("server RSS with %s open connections ≤ ½ of ss-server's" % hold_n,
         "rss_s_hold", g(u, "rss_s_hold"), g(s_, "rss_s_hold"), 0.5, "lo"),
    ]
    w("| target | umbra | reference | umbra / reference | verdict |")
    w("|---|---:|---:|---:|---|")
    for label, key, uv, ref, bound, better in targets:
        raw = u.get(key, "")
        if not u_ok:
            verdict, uvs = u.get("status", "n/a (not run)"), "n/a"
        elif uv is None and str(raw).startswith("fail"):
            verdict, uvs = "NOT met: the transfer failed (see notes)", "fail"
        elif uv is None or ref is None or ref == 0:
            verdict, uvs = "not measured", "—" if uv is None else "%.3f" % uv
        else:
            r = uv / ref
            met = r >= bound if better == "hi" else r <= bound
            verdict = ("met" if met else "NOT met") + " (%.2f× vs bound %.2f×)" % (r, bound)
            uvs = "%.3f" % uv
        refs = "—" if ref is None else "%.3f" % ref
        rr = ratio(uv, ref) if u_ok else None
        w("| %s | %s | %s | %s | %s |" % (label, uvs, refs, fmt_ratio(rr),
                                         verdict))
    w("")
    # Issue 10: tls against tcp, and the jitter timing profile's cost.
    pair_table(w, res, hold_n, "umbra-tls", "umbra",
               "## umbra tls against umbra tcp (issue 10)",
               "Each ratio: tls's figure divided by tcp's, from the same run. "
               "Target: tls within 10% of tcp on throughput (ratio ≥ 0.90) "
               "and CPU (ratio ≤ 1.10).", TLS_TARGET)
    pair_table(w, res, hold_n, "umbra-jitter", "umbra-tls",
               "## timing = jitter against timing = none (tls transport)",
               "Each ratio: the figure with `timing = jitter` at both ends "
               "divided by the one without, from the same run. Informative: "
               "`timing` stays `none` by default.", {})
    # Issue 11: what moving the session between connections costs.
    pair_table(w, res, hold_n, "umbra-rot1m", "umbra",
               "## rotation every 1 MiB against no rotation (tcp transport, issue 11)",
               "Each ratio: the figure with `--rotate 1m` divided by the one "
               "without, from the same run. Every move is a resuming "
               "handshake on a new TCP connection, make-before-break. "
               "Informative.", {})
    pair_table(w, res, hold_n, "umbra-rot16k", "umbra",
               "## rotation every 16 KiB against no rotation (tcp transport, issue 11)",
               "Each ratio: the figure with `--rotate 16k` divided by the one "
               "without, from the same run (about 64 moves per MiB; what a "
               "connection freezer after 20 KB forces). Informative.", {})
    # Issue 13: the ws transport through nginx against tcp.
    pair_table(w, res, hold_n, "umbra-ws", "umbra",
               "## umbra ws through nginx against umbra tcp (issue 13)",
               "Each ratio: ws's figure divided by tcp's, from the same run. "
               "ws pays nginx's TLS and proxying and WebSocket framing "
               "(client frames masked). Informative.", {})
    # Per-system notes (failures, warnings) recorded by the driver.
    notes = [(s, k, v) for s, _ in SYSTEMS
             for k, v in sorted(res.get(s, {}).items()) if k.startswith("note")]
    if notes:
        w("## Notes from this run")
        w("")
        for s, _, v in notes:
            w("- %s: %s" % (s, v))
        w("")
    w(METHOD.strip())
    w("")
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
