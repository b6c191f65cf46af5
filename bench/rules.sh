#!/usr/bin/env bash
# Routing-rule lookups per second (bench/bench_proxy_rules.c): 100k GeoIP
# ranges and some thousand domain rules, and a scaling check (10x fewer
# GeoIP ranges and domains: the lookup cost must not grow with the rules).
#   bench/rules.sh [BUILD_DIR]   (default build/)
set -eu
B=${1:-build}
P=$B/bench/bench_proxy_rules
[ -x "$P" ] || { echo "build first: cmake --build $B --target bench_proxy_rules" >&2; exit 1; }
echo "== 100k GeoIP ranges, 5000 domain rules"
"$P" 100000 5000 4000000
echo "== 10k GeoIP ranges, 500 domain rules"
"$P" 10000 500 4000000
