#!/usr/bin/env bash
# The dns transport against iodine (Debian's iodine 0.7), through the same
# unbound in one run. Topology of tests/integration/dns_unbound.sh: client
# namespace C, resolver R (unbound, stub-zones t.umbra.test -> umbra server
# 10.202.2.2:53 and i.umbra.test -> iodined 10.202.2.2:5353; C cannot reach
# S but through unbound), server S (nginx, umbra server, iodined).
#
# Two resolver paths, each a unbound with the same configuration:
#   fast     unbound on 10.202.1.1, upstream over the veth R-S (sub-ms)
#   delayed  unbound on 10.202.1.3, upstream from 10.202.3.1 over
#            bench/delaywire (a userspace TUN wire: this kernel has no netem)
#            with $DNS_BENCH_DELAY_MS (default 20) ms each way, i.e. a 40 ms
#            RTT between the resolver and the server, as a real resolver
#            reaching a delegated server would see. C-R stays fast (a
#            resolver near the user).
#
# The unbound configuration (both paths, both tools): unbound's defaults but
# `qname-minimisation: no`. With QNAME minimisation on (unbound's default),
# unbound 1.17 sends a query for a name one label below a stub zone as type
# A first; iodined answers that A query with a CNAME carrying data, unbound
# then fails the client's NULL/TXT query (SERVFAIL: seen in a capture of
# both sides of R), and iodine's autodetection falls back to CNAME with
# 212-byte fragments, where its lazy mode starves. umbra works either way
# (its server answers a minimised query with an ordinary NODATA), but the
# same resolver serves both here. Many public resolvers run without it.
#
# iodine as its man page recommends for a recursive path:
#   iodined -f -c -P PASS -l 10.202.2.2 -p 5353 10.99.0.1/24 i.umbra.test
#     -c   skip the client-IP check: queries arrive from the resolver's
#          address, which may differ between queries (and does between the
#          two resolver paths here)
#   iodine -f -r -P PASS RESOLVER i.umbra.test
#     -r   skip the raw-UDP probe (C cannot reach S: DNS only)
#     everything else autodetected: record type (NULL through this unbound),
#     upstream codec (Base128), downstream codec (Raw), EDNS0, lazy mode with
#     its -I4 interval, fragment size by probing (1186 through unbound's
#     1232-byte EDNS0 buffer)
#   second run: $DNS_BENCH_IODINE2 (default -L0: lazy mode off)
# umbra: its defaults for dns (TXT answers, EDNS0 1232, its poll
# controller); the client's resolver is the unbound of the path.
#
#   throughput  curl download of $DNS_BENCH_MIB MiB (default 2), best of 2
#               (a stalled transfer is cut after 20 s below 1 KB/s or 90 s; its
#               rate counts the bytes that arrived and the table says so)
#   first byte  $DNS_BENCH_REQS (default 10) sequential small requests, each
#               a new TCP connection (through SOCKS5 for umbra, through the
#               tun for iodine): median and p90 time to the first byte
# Writes a table to stdout (bench/RESULTS-dns.md keeps one). Usage:
# bench/dns.sh BUILD_DIR. Needs root; otherwise it says so and exits 0.
# DNS_BENCH_PATHS picks rows (default: all six, e.g. "umbra iodine-d").
set -u
BDIR=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "dns bench: no build dir '${1:-build}'"; exit 0; }
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
export UMBRA_SRC=$SRCDIR UMBRA_BUILD=$BDIR UMBRA=$BDIR/umbra
MIB=${DNS_BENCH_MIB:-2}
REQS=${DNS_BENCH_REQS:-10}
IODINE2=${DNS_BENCH_IODINE2:--L0} # iodine's options in its second run
PATHS=${DNS_BENCH_PATHS:-umbra iodine iodine-L0 umbra-d iodine-d iodine-L0-d}
DELAY=${DNS_BENCH_DELAY_MS:-20} # one way, resolver <-> server, delayed path
WIRE=$BDIR/bench/delaywire
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
        in_r nft add rule inet umbra_dns dfwd ip saddr 10.202.1.0/24 ip daddr 10.202.2.0/24 drop &&
        in_r nft add rule inet umbra_dns dfwd ip saddr 10.202.1.0/24 ip daddr 10.202.3.0/24 drop || exit 1
    # The delayed path: a second resolver address in R (10.202.1.3) whose
    # unbound sends from 10.202.3.1, routed (policy rule) over delaywire to S;
    # S answers 10.202.3.1 over the wire too.
    [ -x "$WIRE" ] || { echo "dns bench: no $WIRE (build the release first)"; exit 1; }
    tl_bg "$WORK/wire.out" "$WIRE" "$MB_R" "$MB_S" "$DELAY" 3600
    for _ in $(seq 50); do grep -q ready "$WORK/wire.out" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$WORK/wire.out" || { echo "dns bench: delaywire did not start"; exit 1; }
    ip -n "$MB_R" addr add 10.202.1.3/24 dev mr0
    ip -n "$MB_R" addr add 10.202.3.1 peer 10.202.3.2 dev dwire
    ip -n "$MB_S" addr add 10.202.3.2 peer 10.202.3.1 dev dwire
    ip -n "$MB_R" link set dwire mtu 1500 up
    ip -n "$MB_S" link set dwire mtu 1500 up
    ip -n "$MB_R" route add "$MB_SADDR" dev dwire table 203
    ip -n "$MB_R" rule add from 10.202.3.1 table 203
    for k in all default dwire; do in_r sysctl -qw net.ipv4.conf.$k.rp_filter=0; done
    mb_web >/dev/null
    head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
    mb_server_init --transport dns --zone t.umbra.test >/dev/null || exit 1
    LINK="${LINK%%#*}"
    mb_server_start >/dev/null || exit 1
    tl_bg "$WORK/iodined.log" ip netns exec "$MB_S" iodined -f -c -P benchpass -l "$MB_SADDR" -p 5353 10.99.0.1/24 i.umbra.test
    unbound_conf() { # FILE IN OUT: the one unbound configuration, on IN, sending from OUT
        cat >"$1" <<EOF2
server:
    interface: $2
    outgoing-interface: $3
    access-control: 10.202.1.0/24 allow
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: "$1.log"
    num-threads: 1
    module-config: "iterator"
    local-zone: "test." nodefault
    # see the header: minimised type-A probes break iodine's NULL/TXT queries
    qname-minimisation: no
stub-zone:
    name: "t.umbra.test"
    stub-addr: $MB_SADDR@53
stub-zone:
    name: "i.umbra.test"
    stub-addr: $MB_SADDR@5353
EOF2
    }
    unbound_conf "$WORK/unbound.conf" "$MB_RADDR_C" "$MB_RADDR_S"
    unbound_conf "$WORK/unbound-d.conf" 10.202.1.3 10.202.3.1
    tl_bg "$WORK/unbound.out" ip netns exec "$MB_R" unbound -d -c "$WORK/unbound.conf"
    mb_ns_wait_listen "$MB_R" 53 10 "$BG_PID" || { echo "dns bench: unbound did not start"; exit 1; }
    tl_bg "$WORK/unbound-d.out" ip netns exec "$MB_R" unbound -d -c "$WORK/unbound-d.conf"
    sleep 1
    in_c python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(bytes.fromhex("1234010000010000000000000270720575" "6d627261047465737400" "00010001"), ("10.202.1.3", 53))
sys.exit(0 if s.recv(512)[:2] == b"\x12\x34" else 1)' ||
        { echo "dns bench: delayed unbound does not answer"; exit 1; }
    LINK0=$LINK
    UCUR=""
    umbra_up() { # RESOLVER LOG: (re)start the umbra client asking RESOLVER
        [ "$UCUR" = "$1" ] && return 0
        [ -n "$UCUR" ] && kill "$CLIENT_PID" 2>/dev/null && sleep 1
        LINK="$LINK0&resolver=$1%3A53"
        mb_client_start "$2" >/dev/null || { echo "dns bench: umbra client did not start"; tail "$WORK/$2.log"; return 1; }
        UCUR=$1
    }
    IODINE_PID=""
    iodine_up() { # LOG RESOLVER ARGS...: (re)start the iodine client, wait for its tunnel
        local log=$1
        shift
        [ -n "$IODINE_PID" ] && kill "$IODINE_PID" 2>/dev/null && sleep 1
        local res=$1
        shift
        tl_bg "$WORK/$log" ip netns exec "$MB_C" iodine -f -r -P benchpass "$@" "$res" i.umbra.test
        IODINE_PID=$BG_PID
        # iodine probes its fragment size with timeouts: give it a while.
        local end=$(($(tl_now_ms) + 120000))
        while ! grep -q "Connection setup complete" "$WORK/$log" 2>/dev/null && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.2; done
        grep -q "Connection setup complete" "$WORK/$log" || { echo "dns bench: iodine $* did not come up"; tail "$WORK/$log"; return 1; }
        sleep 1
    }
    declare -A TPUT FB50 FB90 NOTE
    for path in $PATHS; do
        case $path in
        umbra) px=(--socks5-hostname "127.0.0.1:$MB_SOCKS") url=http://$MB_WEB; umbra_up "$MB_RADDR_C" client || continue ;;
        iodine) px=() url=http://10.99.0.1; iodine_up iodine.log "$MB_RADDR_C" || continue ;;
        iodine-L0) px=() url=http://10.99.0.1; iodine_up iodine-L0.log "$MB_RADDR_C" $IODINE2 || continue ;;
        umbra-d) px=(--socks5-hostname "127.0.0.1:$MB_SOCKS") url=http://$MB_WEB; umbra_up 10.202.1.3 client-d || continue ;;
        iodine-d) px=() url=http://10.99.0.1; iodine_up iodine-d.log 10.202.1.3 || continue ;;
        iodine-L0-d) px=() url=http://10.99.0.1; iodine_up iodine-L0-d.log 10.202.1.3 $IODINE2 || continue ;;
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
    echo "| path (through unbound 1.17, qname-minimisation off) | resolver-server RTT | download KiB/s ($MIB MiB, best of 2) | first byte median ms | p90 ms | notes |"
    echo "|---|---|---|---|---|---|"
    row() { # PATH LABEL RTT
        echo "| $2 | $3 | ${TPUT[$1]:-} | ${FB50[$1]:-} | ${FB90[$1]:-} |${NOTE[$1]:-} |"
    }
    row umbra "umbra dns (defaults: TXT, EDNS0 1232)" "<1 ms"
    row iodine "iodine 0.7 -r (defaults: lazy mode, autodetected type, codec, fragment size)" "<1 ms"
    row iodine-L0 "iodine 0.7 -r $IODINE2" "<1 ms"
    row umbra-d "umbra dns (defaults)" "$((2 * DELAY)) ms"
    row iodine-d "iodine 0.7 -r (defaults)" "$((2 * DELAY)) ms"
    row iodine-L0-d "iodine 0.7 -r $IODINE2" "$((2 * DELAY)) ms"
    ratio() { # UMBRA IODINE IODINE2 LABEL
        local bi=${TPUT[$2]:-0}
        [ "${TPUT[$3]:-0}" -gt "$bi" ] && bi=${TPUT[$3]}
        awk -v u="${TPUT[$1]:-0}" -v i="$bi" -v l="$4" 'BEGIN { printf "throughput ratio umbra / best iodine, %s: %.1fx\n", l, u / (i ? i : 1) }'
    }
    echo
    ratio umbra iodine iodine-L0 "fast path"
    ratio umbra-d iodine-d iodine-L0-d "delayed path"
    for f in iodine iodine-d; do
        [ -f "$WORK/$f.log" ] && grep -ihE "using|fragment size to|Switching|too few" "$WORK/$f.log" | sed "s/^/# $f: /" | head -8
    done
    true # a path not run (DNS_BENCH_PATHS) has no log: not a failure
)
rc=$?
[ $rc = 77 ] && exit 0
exit $rc
