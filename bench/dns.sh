#!/usr/bin/env bash
# The dns transport against iodine (Debian's iodine 0.7), through the same
# unbound in one run. Topology of tests/integration/dns_unbound.sh: client
# namespace C, resolver R (unbound, stub-zones t.umbra.test -> umbra server
# 10.202.2.2:53 and i.umbra.test -> iodined 10.202.2.2:5353; C cannot reach
# S but through unbound), server S (nginx, umbra server, iodined).
#   throughput  curl download of $DNS_BENCH_MIB MiB (default 2), best of 2
#               (a stalled transfer is cut after 20 s below 1 KB/s or 90 s; its
#               rate counts the bytes that arrived and the table says so)
#   iodine runs twice: its defaults, and with lazy mode off (-L0)
#   first byte  $DNS_BENCH_REQS (default 10) sequential small requests, each
#               a new TCP connection (through SOCKS5 for umbra, through the
#               tun for iodine): median and p90 time to the first byte
# Writes a table to stdout (bench/RESULTS-dns.md keeps one). Usage:
# bench/dns.sh BUILD_DIR. Needs root; otherwise it says so and exits 0.
set -u
BDIR=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "dns bench: no build dir '${1:-build}'"; exit 0; }
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
export UMBRA_SRC=$SRCDIR UMBRA_BUILD=$BDIR UMBRA=$BDIR/umbra
MIB=${DNS_BENCH_MIB:-2}
REQS=${DNS_BENCH_REQS:-10}
IODINE2=${DNS_BENCH_IODINE2:--L0} # iodine's options in its second run
PATHS=${DNS_BENCH_PATHS:-umbra iodine iodine-L0}
(
    . "$SRCDIR/tests/integration/lib.sh"
    TL_NETNS=0
    tl_init dns_bench >/dev/null
    . "$SRCDIR/tests/integration/lib_middlebox.sh"
    mb_init
    tl_need unbound iodine iodined
    MB_SPORT=53
    mb_topology
    in_r nft add table inet umbra_dns &&
        in_r nft add chain inet umbra_dns dfwd '{ type filter hook forward priority -10; policy accept; }' &&
        in_r nft add rule inet umbra_dns dfwd ip saddr 10.202.1.0/24 ip daddr 10.202.2.0/24 drop || exit 1
    mb_web >/dev/null
    head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
    mb_server_init --transport dns --zone t.umbra.test >/dev/null || exit 1
    LINK="${LINK%%#*}&resolver=$MB_RADDR_C%3A53"
    mb_server_start >/dev/null || exit 1
    tl_bg "$WORK/iodined.log" ip netns exec "$MB_S" iodined -f -c -P benchpass -l "$MB_SADDR" -p 5353 10.99.0.1/24 i.umbra.test
    cat >"$WORK/unbound.conf" <<EOF2
server:
    interface: $MB_RADDR_C
    outgoing-interface: $MB_RADDR_S
    access-control: 10.202.1.0/24 allow
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: "$WORK/unbound.log"
    num-threads: 1
    module-config: "iterator"
    local-zone: "test." nodefault
stub-zone:
    name: "t.umbra.test"
    stub-addr: $MB_SADDR@53
stub-zone:
    name: "i.umbra.test"
    stub-addr: $MB_SADDR@5353
EOF2
    tl_bg "$WORK/unbound.out" ip netns exec "$MB_R" unbound -d -c "$WORK/unbound.conf"
    mb_ns_wait_listen "$MB_R" 53 10 "$BG_PID" || { echo "dns bench: unbound did not start"; exit 1; }
    mb_client_start client >/dev/null || { echo "dns bench: umbra client did not start"; tail "$WORK/client.log"; exit 1; }
    IODINE_PID=""
    iodine_up() { # LOG ARGS...: (re)start the iodine client, wait for its tunnel
        local log=$1
        shift
        [ -n "$IODINE_PID" ] && kill "$IODINE_PID" 2>/dev/null && sleep 1
        tl_bg "$WORK/$log" ip netns exec "$MB_C" iodine -f -r -P benchpass "$@" "$MB_RADDR_C" i.umbra.test
        IODINE_PID=$BG_PID
        # iodine probes its fragment size with timeouts: give it a while.
        local end=$(($(tl_now_ms) + 120000))
        while ! grep -q "Connection setup complete" "$WORK/$log" && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.2; done
        grep -q "Connection setup complete" "$WORK/$log" || { echo "dns bench: iodine $* did not come up"; tail "$WORK/$log"; return 1; }
        sleep 1
    }
    declare -A TPUT FB50 FB90 NOTE
    for path in $PATHS; do
        case $path in
        umbra) px=(--socks5-hostname "127.0.0.1:$MB_SOCKS") url=http://$MB_WEB ;;
        iodine) px=() url=http://10.99.0.1; iodine_up iodine.log || continue ;;
        iodine-L0) px=() url=http://10.99.0.1; iodine_up iodine-L0.log $IODINE2 || continue ;;
        esac
        in_c curl -s "${px[@]}" -o /dev/null "$url/small" # warm up
        best=0
        NOTE[$path]=""
        for _ in 1 2; do
            t0=$(tl_now_ms)
            # A transfer that stalls (< 1 KB/s for 20 s) is cut; its rate counts
            # the bytes that arrived, and the table says it was incomplete.
            sz=$(in_c curl -s "${px[@]}" --max-time 90 --speed-limit 1000 --speed-time 20 -o /dev/null \
                -w '%{size_download}' "$url/blob")
            ms=$(($(tl_now_ms) - t0))
            [ "$sz" = $((MIB * 1024 * 1024)) ] || NOTE[$path]="${NOTE[$path]} incomplete: $sz bytes in $ms ms;"
            k=$(awk -v b="${sz:-0}" -v ms="$ms" 'BEGIN { printf "%.0f", b / 1024 * 1000 / (ms ? ms : 1) }')
            [ "$k" -gt "$best" ] && best=$k
        done
        TPUT[$path]=$best
        # Only requests that got their answer count; failures are noted.
        for i in $(seq "$REQS"); do
            in_c curl -s "${px[@]}" --max-time 10 -o /dev/null -w '%{http_code} %{time_starttransfer}\n' "$url/small"
        done >"$WORK/fbraw.$path"
        awk '$1 == 200 { printf "%.0f\n", $2 * 1000 }' "$WORK/fbraw.$path" | sort -n >"$WORK/fb.$path"
        nf=$(awk '$1 != 200' "$WORK/fbraw.$path" | wc -l)
        [ "$nf" = 0 ] || NOTE[$path]="${NOTE[$path]} $nf of $REQS small requests failed;"
        FB50[$path]=$(awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }' "$WORK/fb.$path")
        FB90[$path]=$(awk '{ a[NR] = $1 } END { i = int(NR * 0.9 + 0.999); print a[i] }' "$WORK/fb.$path")
    done
    echo "| path (through unbound 1.17) | download KiB/s ($MIB MiB, best of 2) | first byte median ms | p90 ms | notes |"
    echo "|---|---|---|---|---|"
    echo "| umbra dns (TXT, EDNS0 1232) | ${TPUT[umbra]:-} | ${FB50[umbra]:-} | ${FB90[umbra]:-} |${NOTE[umbra]:-} |"
    echo "| iodine 0.7 (defaults: lazy mode, auto type, codec, fragment size) | ${TPUT[iodine]:-} | ${FB50[iodine]:-} | ${FB90[iodine]:-} |${NOTE[iodine]:-} |"
    echo "| iodine 0.7 $IODINE2 | ${TPUT[iodine-L0]:-} | ${FB50[iodine-L0]:-} | ${FB90[iodine-L0]:-} |${NOTE[iodine-L0]:-} |"
    bi=${TPUT[iodine]:-0}
    [ "${TPUT[iodine-L0]:-0}" -gt "$bi" ] && bi=${TPUT[iodine-L0]}
    awk -v u="${TPUT[umbra]:-0}" -v i="$bi" 'BEGIN { printf "\nthroughput ratio umbra / best iodine: %.1fx\n", u / (i ? i : 1) }'
    grep -ihE "using|fragment size to|Switching|too few" "$WORK/iodine.log" | sed 's/^/# iodine: /' | head -8
)
rc=$?
[ $rc = 77 ] && exit 0
exit $rc
