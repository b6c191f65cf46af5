#!/usr/bin/env bash
# VPN mode against SOCKS5 over the same session, in one run: one umbra
# client in namespace C with --tun and --socks 127.0.0.1:1080, one server in
# S, nginx in W (topology: tests/integration/vpn_lib.sh). For each path:
#   throughput  curl download of $VPN_BENCH_MIB MiB (default 512), MiB/s
#   latency     $VPN_BENCH_REQS (default 200) sequential requests, each a new
#               TCP connection: median and p90 time to the first response byte
#   CPU         utime+stime of the umbra client and server (from /proc) per GiB
# Usage: bench/vpn.sh BUILD_DIR. Needs root (namespaces, TUN); otherwise it
# says so and exits 0 (a benchmark never fails on its environment).
set -u
BDIR=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "vpn bench: no build dir '${1:-build}'"; exit 0; }
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
export UMBRA_SRC=$SRCDIR UMBRA_BUILD=$BDIR UMBRA=$BDIR/umbra
MIB=${VPN_BENCH_MIB:-512}
REQS=${VPN_BENCH_REQS:-200}
# Run the measurement in a subshell so the test library's exit paths (skip
# = 77) end it without failing `make bench`.
(
    . "$SRCDIR/tests/integration/lib.sh"
    TL_NETNS=0
    tl_init vpn_bench >/dev/null
    . "$SRCDIR/tests/integration/vpn_lib.sh"
    vn_init
    tl_need curl nginx
    vn_topology
    vn_services >/dev/null
    head -c $((MIB * 1024 * 1024)) /dev/zero >"$WORK/www/blob"
    vn_server >/dev/null
    vn_client client --socks 127.0.0.1:1080 ${VPN_BENCH_ARGS:-} >/dev/null || { echo "vpn bench: client did not start"; tail "$WORK/client.log"; exit 1; }
    cpu() { # PID: utime+stime in clock ticks
        awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
    }
    HZ=$(getconf CLK_TCK)
    declare -A TPUT LAT50 LAT90 CPUC CPUS
    for path in tun socks5; do
        px=()
        [ $path = socks5 ] && px=(--socks5 127.0.0.1:1080)
        C curl -s "${px[@]}" -o /dev/null "http://$W4/small" # warm up
        c0=$(cpu "$CLIENT_PID")
        s0=$(cpu "$SERVER_PID")
        t0=$(tl_now_ms)
        C curl -s "${px[@]}" --max-time 300 -o /dev/null -w '%{size_download}\n' "http://$W4/blob" >"$WORK/size.$path"
        ms=$(($(tl_now_ms) - t0))
        c1=$(cpu "$CLIENT_PID")
        s1=$(cpu "$SERVER_PID")
        [ "$(cat "$WORK/size.$path")" = $((MIB * 1024 * 1024)) ] || echo "vpn bench: $path download incomplete"
        [ $ms -gt 0 ] || ms=1
        TPUT[$path]=$(awk -v m="$MIB" -v ms="$ms" 'BEGIN { printf "%.0f", m * 1000 / ms }')
        CPUC[$path]=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v m="$MIB" 'BEGIN { printf "%.2f", d / hz * 1024 / m }')
        CPUS[$path]=$(awk -v d=$((s1 - s0)) -v hz="$HZ" -v m="$MIB" 'BEGIN { printf "%.2f", d / hz * 1024 / m }')
        : >"$WORK/lat.$path"
        for _ in $(seq "$REQS"); do
            C curl -s "${px[@]}" -o /dev/null -w '%{time_starttransfer}\n' "http://$W4/small" >>"$WORK/lat.$path"
        done
        read -r LAT50[$path] LAT90[$path] < <(sort -n "$WORK/lat.$path" | awk '{ v[NR] = $1 * 1000 } END { printf "%.2f %.2f\n", v[int(NR * 0.5) + (NR % 2)], v[int(NR * 0.9)] }')
    done
    echo
    echo "VPN mode vs SOCKS5, same session ($MIB MiB download, $REQS new connections; $(nproc) CPUs; $(basename "$BDIR"))"
    echo
    echo "| path | throughput MiB/s | first byte p50 ms | first byte p90 ms | client CPU s/GiB | server CPU s/GiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    for path in tun socks5; do
        echo "| $path | ${TPUT[$path]} | ${LAT50[$path]} | ${LAT90[$path]} | ${CPUC[$path]} | ${CPUS[$path]} |"
    done
    tl_stop client "$CLIENT_PID" 10 >/dev/null
    tl_stop server "$SERVER_PID" 10 >/dev/null
    exit 0
)
rc=$?
[ $rc = 77 ] && echo "vpn bench: skipped (see the reason above)"
exit 0
