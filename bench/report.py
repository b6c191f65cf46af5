#!/usr/bin/python3
"""Assembles make bench's report (bench/RESULTS.md) from one run of
bench/run.sh.

usage: report.py --logs DIR --dir RESULTS_DIR --out FILE

DIR is BUILD_DIR/bench-logs as run.sh left it: index.tsv (each benchmark's
exit status and seconds, the start and end with their load averages),
peers.tsv and footprint.tsv (raw "system<TAB>metric<TAB>value" lines; the
footprint file "metric<TAB>system<TAB>value"), NAME.out (what a benchmark
printed). RESULTS_DIR holds the Markdown each benchmark wrote in this run
(RESULTS-peers.md, RESULTS-delay.md, ...). Only what this run measured is
used: a file older than the run's start is reported as missing, never shown
as this run's.
"""

import calendar
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_report as pr  # noqa: E402

RSS_BOUND = 24.0  # MiB, peak per process in every workload (issue 15)
IDLE_BOUND = 16.0  # MiB, a client holding 1000 idle connections

# name in index.tsv, its Markdown (None: its stdout), the section title
SECTIONS = [
    ("peers", "RESULTS-peers.md",
     "Side by side with the peers (`bench/peers.sh`)"),
    ("footprint", "RESULTS-footprint.md",
     "Memory footprint (`bench/footprint.sh`)"),
    ("delay", "RESULTS-delay.md",
     "A long fat path: 50 ms RTT, 200 Mbit/s (`bench/delay.sh`)"),
    ("beside", "RESULTS-beside.md",
     "A small request beside a bulk transfer (`bench/beside.sh`)"),
    ("latency", "RESULTS-latency.md",
     "Connect + small GET, fast open on and off (`bench/latency.sh`)"),
    ("multi", "RESULTS-multi.md",
     "Four clients at once, one server loop against two (`bench/multi.sh`)"),
    ("dns", None, "The dns transport against iodine (`bench/dns.sh`)"),
    ("vpn", None, "VPN mode against SOCKS5 (`bench/vpn.sh`)"),
    ("ws_setup", None, "ws transport session set-up (`bench/ws_setup.sh`)"),
    ("rules", None, "Routing-rule lookups (`bench/rules.sh`)"),
    ("micro", None, "Micro-benchmarks (`bench/bench_*`)"),
]


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def load_index(path):
    idx, marks = {}, {}
    for ln in (read(path) or "").splitlines():
        p = ln.split("\t")
        if len(p) == 3 and p[0] in ("start", "end"):
            marks[p[0]] = (p[1], p[2])
        elif len(p) == 3:
            idx[p[0]] = (p[1], p[2])
    return idx, marks


def md_tables(text):
    """Every Markdown table in text: a list of rows, each a dict from the
    header's cells to the row's (the first column under key "")."""
    tables, cur, head = [], None, None
    for ln in text.splitlines():
        s = ln.strip()
        if not s.startswith("|"):
            if cur is not None:
                tables.append(cur)
            cur, head = None, None
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if head is None:
            head, cur = cells, []
            head[0] = ""
        elif all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            continue
        else:
            cur.append(dict(zip(head, cells)))
    if cur is not None:
        tables.append(cur)
    return tables


def first_number(s):
    m = re.search(r"-?[0-9]+(?:\.[0-9]+)?", s or "")
    return float(m.group(0)) if m else None


def find_row(tables, first, col):
    for t in tables:
        for r in t:
            if r.get("", "").lower() == first and col in r:
                return first_number(r[col])
    return None


def verdict(value, bound, better):
    if value is None:
        return "not measured"
    met = value >= bound if better == "hi" else value <= bound
    return "met" if met else "NOT met"


def targets(w, res, hold_n, fp, texts):
    """Issue 15's targets, each against its bound, from this run."""
    names = dict(pr.SYSTEMS)
    u = res.get("umbra", {})
    ok = u.get("status", "").startswith("ok")
    rows = []

    def peer_row(label, key, better, bound):
        p, pv = pr.best_peer(res, key, better)
        uv = pr.num(u.get(key)) if ok else None
        r = pr.ratio(uv, pv)
        rows.append((label, "—" if uv is None else "%.4g" % uv,
                     "%s %s" % (names.get(p, "—"),
                                "" if pv is None else "%.4g" % pv),
                     pr.fmt_ratio(r),
                     ("≥ " if better == "hi" else "≤ ") + "%.2f×" % bound,
                     verdict(r, bound, better)))

    def abs_row(label, v, bound, better, ref=""):
        rows.append((label, "—" if v is None else "%.4g" % v, ref, "",
                     ("≥ " if better == "hi" else "≤ ") + "%g" % bound,
                     verdict(v, bound, better)))

    for key, label in (("dl1", "Download, 1 stream, MB/s"),
                       ("ul1", "Upload, 1 stream, MB/s"),
                       ("dl8", "Download, 8 streams, MB/s"),
                       ("ul8", "Upload, 8 streams, MB/s")):
        peer_row(label + " (≥ 2× the best peer)", key, "hi", 2.0)
    for a, b, label in (("dl8", "dl1", "Download: 8 streams over 1 stream"),
                        ("ul8", "ul1", "Upload: 8 streams over 1 stream")):
        va, vb = pr.num(u.get(a)), pr.num(u.get(b))
        r = pr.ratio(va, vb) if ok else None
        rows.append((label + " (never less)", pr.fmt_ratio(r), "", "",
                     "≥ 1.00×", verdict(r, 1.0, "hi")))
    peer_row("CPU s per GiB, download (≤ 0.5× the best peer)", "cpu_dl",
             "lo", 0.5)
    peer_row("CPU s per GiB, upload (≤ 0.5× the best peer)", "cpu_ul",
             "lo", 0.5)
    peer_row("Added latency p50, ms (≤ the best peer's)", "lat_added", "lo",
             1.0)
    for key, label in (("rss_c_bulk_peak", "Peak RSS client, bulk, MiB"),
                       ("rss_s_bulk_peak", "Peak RSS server, bulk, MiB"),
                       ("rss_c_hold_peak",
                        "Peak RSS client, %s open connections, MiB" % hold_n),
                       ("rss_s_hold_peak",
                        "Peak RSS server, %s open connections, MiB" % hold_n)):
        abs_row(label + " (peers.sh)", pr.num(u.get(key)) if ok else None,
                RSS_BOUND, "lo")
    idle = pr.num(u.get("rss_c_hold")) if ok else None
    abs_row("RSS client holding %s idle connections, MiB" % hold_n, idle,
            IDLE_BOUND, "lo")
    # The footprint benchmark: each umbra process's peak per workload.
    # hwm_{client,server}_WORKLOAD: VmHWM of a fresh process after one
    # workload; rss_client_idle1000: the client holding 1000 idle ones.
    for metric, system, v in fp:
        if not system.startswith("umbra"):
            continue
        x = pr.num(v)
        if metric.startswith("hwm_"):
            side, _, wl = metric[4:].partition("_")
            abs_row("Peak RSS %s, %s, MiB (footprint.sh)" % (side, wl), x,
                    RSS_BOUND, "lo")
        elif metric == "rss_client_idle1000":
            abs_row("RSS client holding 1000 idle connections, MiB "
                    "(footprint.sh)", x, IDLE_BOUND, "lo")
    # The delayed path: one umbra stream against the path (direct over the
    # same wire) and the nominal rate.
    dt = md_tables(texts.get("delay") or "")
    of_path = find_row(dt, "umbra", "of path")
    of_nom = find_row(dt, "umbra", "of nominal")
    d_nom = find_row(dt, "direct", "of nominal")
    abs_row("Delayed path (50 ms, 200 Mbit/s), one stream, % of the path",
            of_path, 90, "hi",
            "" if of_nom is None else "%g%% of nominal (direct %s%%)" % (
                of_nom, "—" if d_nom is None else "%g" % d_nom))
    # The small request beside bulk.
    bt = md_tables(texts.get("beside") or "")
    ub = find_row(bt, "umbra", "ratio")
    db = find_row(bt, "direct", "ratio")
    abs_row("64 KiB GET beside a bulk download, beside / alone", ub, 2.0,
            "lo", "" if db is None else "direct: %g" % db)
    # The server on every core.
    mt = md_tables(texts.get("multi") or "")
    one = find_row(mt, "one", "aggregate MB/s")
    split = find_row(mt, "split", "aggregate MB/s")
    rows.append(("4 clients: one server loop / two loops, aggregate MB/s",
                 "—" if one is None else "%.0f" % one,
                 "—" if split is None else "two: %.0f" % split, "", "",
                 "one loop per server (see docs/internals/multicore.md)"))
    w("## Issue 15's targets, from this run")
    w("")
    w("Each row: umbra's figure (tcp transport), the reference from the same "
      "run (the best of %s where the bound is a ratio), and the verdict "
      "against the bound." % ", ".join(names[p] for p in pr.PEERS))
    w("")
    w("| target | umbra | reference | ratio | bound | verdict |")
    w("|---|---:|---|---:|---:|---|")
    for r in rows:
        w("| %s |" % " | ".join(r))
    w("")


def demote(text):
    """A benchmark's Markdown one heading level down, its title dropped."""
    out = []
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    for ln in lines:
        if ln.startswith("#"):
            ln = "##" + ln
        out.append(ln)
    return "\n".join(out).strip()


def main(argv):
    args = dict(zip(argv[1::2], argv[2::2]))
    if set(args) != {"--logs", "--dir", "--out"}:
        print(__doc__, file=sys.stderr)
        return 2
    logs, rdir = args["--logs"], args["--dir"]
    idx, marks = load_index(os.path.join(logs, "index.tsv"))
    t_start = 0.0
    if "start" in marks:  # "YYYY-mm-dd HH:MM:SS UTC"
        t_start = calendar.timegm(time.strptime(marks["start"][0],
                                                "%Y-%m-%d %H:%M:%S UTC")) - 1
    res, meta = ({}, [])
    if os.path.exists(os.path.join(logs, "peers.tsv")):
        res, meta = pr.load(os.path.join(logs, "peers.tsv"))
        pr.derive(res)
    md = dict(meta)
    hold_n = md.get("hold_n", "N")
    fp = []
    for ln in (read(os.path.join(logs, "footprint.tsv")) or "").splitlines():
        p = ln.split("\t")
        if len(p) == 3:
            fp.append((p[0], p[1], p[2]))
    texts = {}
    for name, fname, _ in SECTIONS:
        if fname:
            path = os.path.join(rdir, fname)
            fresh = os.path.exists(path) and os.path.getmtime(path) >= t_start
            texts[name] = read(path) if fresh else None
        else:
            texts[name] = read(os.path.join(logs, name + ".out"))
    out = []
    w = out.append
    w("# umbra benchmarks: one `make bench` run")
    w("")
    w("Assembled by `bench/report.py` from one run of `bench/run.sh` (what "
      "`make bench` runs); every figure below comes from this run. Peers "
      "run on the same machine, one system at a time, in the same run.")
    w("")
    st, en = marks.get("start"), marks.get("end")
    if st:
        w("- **run**: %s to %s" % (st[0], en[0] if en else "?"))
        w("- **load average** (1, 5, 15 min): %s at the start, %s at the end"
          % (st[1], en[1] if en else "?"))
    for key, val in meta:
        if key in ("hold_n", "load average", "date"):
            continue
        w("- **%s** (peers): %s" % (key, val))
    w("- **benchmarks**: " + "; ".join(
        "%s %s s%s" % (n, idx[n][1], "" if idx[n][0] == "0" else
                       " (exit %s)" % idx[n][0])
        for n, _, _ in SECTIONS if n in idx))
    w("")
    targets(w, res, hold_n, fp, texts)
    for name, fname, title in SECTIONS:
        if name not in idx:
            continue
        w("## " + title)
        w("")
        t = texts.get(name)
        if name == "micro" and t:
            w(t.strip())
        elif t and t.strip():
            w(demote(t))
        else:
            err = (read(os.path.join(logs, name + ".err")) or "").strip()
            w("No figures from this run (exit %s)%s" % (
                idx[name][0], (": " + err.splitlines()[-1][:200]) if err
                else "."))
        w("")
    w("_Generated %s._" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    w("")
    with open(args["--out"], "w") as f:
        f.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
