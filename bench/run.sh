#!/usr/bin/env bash
# make bench: runs every benchmark program of the release build in turn.
# Benchmarks report figures; they never pass or fail on a number.
set -euo pipefail
bdir=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
n=0
for b in "$bdir"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
  n=$((n+1))
done
for s in "$src"/bench/*.sh; do
  [ "$(basename "$s")" = run.sh ] && continue
  [ -f "$s" ] || continue
  echo "== $(basename "$s")"
  bash "$s" "$bdir"
  n=$((n+1))
done
echo "bench: $n benchmark(s) run"
