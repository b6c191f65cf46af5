#!/usr/bin/env bash
# make bench: every benchmark in one run, then bench/RESULTS.md assembled from
# what this run measured (bench/report.py): the machine, date, versions and
# load, issue 15's targets against the best peer of the same run, and each
# benchmark's own table. Benchmarks report figures; they never pass or fail on
# a number. A benchmark that cannot run here (no root for namespaces, a peer
# missing) says so in its section; the others still run.
#
#   bench/run.sh [BUILD_DIR] [--quick] [--only NAME,...]
#
#   --quick    every script's small sizes (a self-test of the harness, a few
#              minutes); the report then goes to BUILD_DIR/RESULTS-quick.md
#              and the per-benchmark files to BUILD_DIR/, never over bench/
#   --only L   a subset of: micro,peers,footprint,delay,beside,latency,multi,
#              dns,vpn,ws_setup,rules
# Each script is bounded by its own limits and here by BENCH_SCRIPT_LIMIT
# seconds (default 2400); the logs stay in BUILD_DIR/bench-logs/.
set -uo pipefail
bdir=build
quick=0
only="micro,peers,footprint,delay,beside,latency,multi,dns,vpn,ws_setup,rules"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) only=${2:?--only needs a list}; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
src=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$bdir" ] || [ ! -d "$src/$bdir" ] || bdir="$src/$bdir"
bdir=$(cd "$bdir" && pwd)
logs="$bdir/bench-logs"
rm -rf "$logs"
mkdir -p "$logs"
limit=${BENCH_SCRIPT_LIMIT:-2400}
if [ "$quick" = 1 ]; then dest="$bdir"; q=(--quick); else dest="$src/bench"; q=(); fi
want() { [[ ",$only," == *",$1,"* ]]; }
index="$logs/index.tsv"
printf 'start\t%s\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$index"

# one NAME CMD...: runs a benchmark, its stdout to logs/NAME.out, stderr to
# logs/NAME.err, and its status and duration into the index.
one() {
  local name=$1 t0 rc
  shift
  want "$name" || return 0
  echo "== $name" >&2
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$logs/$name.out" 2>"$logs/$name.err"
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$index"
  [ "$rc" = 0 ] || echo "bench: $name exited $rc (see $logs/$name.err)" >&2
}

micro() { # the C benchmark programs of the build
  local b
  for b in "$bdir"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "### $(basename "$b")"
    echo
    echo '```'
    "$b"
    echo '```'
    echo
  done
}

export bdir
export -f micro
one micro bash -c micro
one peers bash "$src/bench/peers.sh" "$bdir" "${q[@]}" --out "$dest/RESULTS-peers.md" --tsv "$logs/peers.tsv"
one footprint bash "$src/bench/footprint.sh" "$bdir" "${q[@]}" --out "$dest/RESULTS-footprint.md" --tsv "$logs/footprint.tsv"
one delay bash "$src/bench/delay.sh" "$bdir" "${q[@]}" --out "$dest/RESULTS-delay.md"
one beside bash "$src/bench/beside.sh" "$bdir" "${q[@]}" --out "$dest/RESULTS-beside.md"
one latency bash "$src/bench/latency.sh" "$bdir" "${q[@]}" --out "$dest/RESULTS-latency.md"
one multi bash "$src/bench/multi.sh" "$bdir" "${q[@]}" --out "$dest/RESULTS-multi.md"
if [ "$quick" = 1 ]; then
  one dns env DNS_BENCH_PATHS="umbra iodine" DNS_BENCH_MIB=1 DNS_BENCH_REQS=3 bash "$src/bench/dns.sh" "$bdir"
  one vpn env VPN_BENCH_MIB=64 VPN_BENCH_REQS=20 bash "$src/bench/vpn.sh" "$bdir"
  one ws_setup bash "$src/bench/ws_setup.sh" "$bdir" 20 3
else
  one dns bash "$src/bench/dns.sh" "$bdir"
  one vpn bash "$src/bench/vpn.sh" "$bdir"
  one ws_setup bash "$src/bench/ws_setup.sh" "$bdir"
fi
one rules bash "$src/bench/rules.sh" "$bdir"
printf 'end\t%s\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$index"

out="$dest/RESULTS.md"
[ "$quick" = 0 ] || out="$bdir/RESULTS-quick.md"
/usr/bin/python3 "$src/bench/report.py" --logs "$logs" --dir "$dest" --out "$out" || {
  echo "bench: the report failed" >&2
  exit 1
}
echo "bench: wrote $out" >&2
