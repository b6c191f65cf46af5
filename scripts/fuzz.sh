#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from the
# seed corpus fuzz/corpus/<target>/. Fails on the first crash, leak or timeout.
set -euo pipefail
bdir=${1:?build dir}; secs=${2:-30}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
n=0; fail=0
for bin in "$bdir"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  mkdir -p "$work/$name"
  seeds="$src/fuzz/corpus/$name"
  [ -d "$seeds" ] || seeds=""
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$work/$name-" "$work/$name" $seeds >"$work/$name.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -40 "$work/$name.log"
    mkdir -p "$src/fuzz/crashes"; cp "$work/$name"-* "$src/fuzz/crashes/" 2>/dev/null || true
    fail=1
  else
    grep -E '^(#[0-9]+|Done)' "$work/$name.log" | tail -1 | sed "s/^/fuzz: $name: /"
  fi
  n=$((n+1))
done
[ $n -gt 0 ] || { echo "fuzz: no targets built"; exit 1; }
[ $fail = 0 ] && echo "fuzz: $n targets, no crash" || exit 1
