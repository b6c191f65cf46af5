#!/usr/bin/env bash
# VPN mode end to end: unmodified programs in namespace C, whose routes send
# everything into the TUN device of `umbra client --tun`, reach nginx, a UDP
# echo, a DNS server and iperf3 in W, which only the umbra server (in S) can
# reach. Topology: tests/integration/vpn_lib.sh.
#
#   curl/iperf3/getent ─► umtun ─► umbra client ══ tcp 10.201.9.1:443 ══► umbra server ─► W
#   (no proxy settings)    (C: 0/1, 128/1, ::/1, 8000::/1 via the TUN;
#                           10.201.9.1/32 pinned via 10.201.1.1 dev c0)
#
# Checks: routes added exactly and removed exactly (SIGTERM); 100 MiB (16
# under sanitizers) download with sha256; 100 parallel connections; iperf3
# both directions; IPv6 through the tunnel; a UDP exchange; names resolved
# through the tunnel by an unmodified resolver (glibc) and by a resolver on
# the local network reached only through the tunnel; a refused connection is
# seen as refused; SIGKILL leaves no route that cuts C off (TUN routes gone
# with the device, the server still reachable directly), and a new client
# starts over the leftover host route.
set -u
. "$(dirname "$0")/lib.sh"
TL_NETNS=0
tl_init vpn_e2e
. "$SRC/tests/integration/vpn_lib.sh"
vn_init
tl_need curl nginx
MIB=$(tl_bulk_mib)
NPAR=100
PAR_KIB=256
[ "$SAN" = 1 ] && PAR_KIB=64
vn_topology
vn_services
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((PAR_KIB * 1024)) /dev/urandom >"$WORK/www/par"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
PAR_SHA=$(tl_sha "$WORK/www/par")
vn_server

BEFORE=$(vn_routes)
vn_client client || tl_finish

# ---- routes
r=$(ip -n "$NS_C" route show "$SADDR/32")
case "$r" in *"via 10.201.1.1 dev c0"*) ok "server address pinned: $r" ;; *) bad "server host route: '$r'" ;; esac
for p in 0.0.0.0/1 128.0.0.0/1 "$W4/32"; do
    ip -n "$NS_C" route show "$p" | grep -q "dev $TUN" && ok "route $p via $TUN" || bad "route $p via $TUN missing"
done
if ip -n "$NS_C" -6 route show ::/1 2>/dev/null | grep -q "dev $TUN"; then ok "route ::/1 via $TUN"; else bad "route ::/1 via $TUN missing"; fi
r=$(ip -n "$NS_C" route get "$W4")
case "$r" in *"dev $TUN"*) ok "W is routed into the TUN" ;; *) bad "route to W: $r" ;; esac

# ---- TCP: small, bulk, parallel, IPv6
got=$(C curl -sS --max-time $((10 * TM)) "http://$W4/small" 2>&1)
expect_eq "curl through the TUN (no proxy settings)" "$got" "small-ok"
t0=$(tl_now_ms)
C curl -sS --max-time $((90 * TM)) --speed-limit 1024 --speed-time $((15 * TM)) -o "$WORK/blob.got" "http://$W4/blob" 2>"$WORK/curl.err"
ms=$(($(tl_now_ms) - t0))
[ $ms -gt 0 ] || ms=1
if [ "$(tl_sha "$WORK/blob.got" 2>/dev/null)" = "$BLOB_SHA" ]; then
    ok "$MIB MiB download, sha256 ok, $((MIB * 1000 / ms)) MiB/s ($ms ms)"
else
    bad "$MIB MiB download: $(wc -c <"$WORK/blob.got" 2>/dev/null) bytes, $(cat "$WORK/curl.err")"
fi
rm -f "$WORK/blob.got"
mkdir -p "$WORK/par"
t0=$(tl_now_ms)
C curl -sS --max-time $((60 * TM)) -Z --parallel-immediate --parallel-max $NPAR \
    "http://$W4/par?[1-$NPAR]" -o "$WORK/par/#1" 2>"$WORK/par.err"
n=0
for f in "$WORK"/par/*; do [ "$(tl_sha "$f")" = "$PAR_SHA" ] && n=$((n + 1)); done
expect_eq "$NPAR parallel connections of $PAR_KIB KiB, each sha256 ok ($(($(tl_now_ms) - t0)) ms)" "$n" "$NPAR"
got=$(C curl -sS --max-time $((10 * TM)) "http://[$W6]/small" 2>&1)
expect_eq "IPv6 through the TUN" "$got" "small-ok"
# A port nobody listens on: the server's connect is refused, the app sees RST.
if C curl -sS --max-time $((10 * TM)) "http://$W4:81/" 2>"$WORK/refused.err"; then
    bad "connection to a closed port succeeded"
else
    grep -qi "refused\|reset\|couldn't connect" "$WORK/refused.err" && ok "closed port: $(tr -d '\n' <"$WORK/refused.err")" || bad "closed port: $(cat "$WORK/refused.err")"
fi

# ---- iperf3 both directions
if command -v iperf3 >/dev/null 2>&1; then
    for dir in up down; do
        flag=""
        [ $dir = down ] && flag=-R
        if C timeout $((30 * TM)) iperf3 -c "$W4" -p 5201 -t 3 $flag -J >"$WORK/iperf.$dir.json" 2>&1; then
            bps=$("$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(int(d['end']['sum_received']['bits_per_second']))" "$WORK/iperf.$dir.json" 2>/dev/null)
            if [ -n "$bps" ] && [ "$bps" -gt 0 ]; then ok "iperf3 $dir: $((bps / 1000000)) Mbit/s"; else bad "iperf3 $dir: no throughput"; fi
        else
            bad "iperf3 $dir: $(tail -c 300 "$WORK/iperf.$dir.json")"
        fi
    done
else
    bad "iperf3 not installed (scripts/deps.sh installs it)"
fi

# ---- UDP and DNS
if out=$(C timeout $((30 * TM)) "$PY" "$VHELP" udp "$W4" 7007 2>&1); then ok "UDP exchange: $out"; else bad "UDP exchange: $out"; fi
got=$(C getent ahostsv4 "$DNSNAME" 2>&1 | awk 'NR == 1 { print $1 }')
expect_eq "glibc resolves $DNSNAME through the tunnel (resolver only reachable through it)" "$got" "$W4"
got=$(C curl -sS --max-time $((10 * TM)) "http://$DNSNAME/small" 2>&1)
expect_eq "curl by name" "$got" "small-ok"
: >"$WORK/dnslan.queries"
if out=$(C timeout 10 "$PY" "$VHELP" dnsq "$LANDNS" "$DNSNAME" 2>&1); then
    expect_eq "resolver on the local network answers" "$out" "$W4"
    srcs=$(sort -u "$WORK/dnslan.queries" | tr '\n' ' ')
    if grep -q '^10\.201\.1\.2$' "$WORK/dnslan.queries"; then
        bad "the query went to the local network directly (sources: $srcs)"
    else
        ok "the local resolver was asked through the tunnel (query source: $srcs)"
    fi
else
    bad "local resolver: $out"
fi

# ---- graceful stop restores the routes exactly
kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
tl_stop "client" "$CLIENT_PID" $((10 * TM))
AFTER=$(vn_routes)
if [ "$AFTER" = "$BEFORE" ]; then ok "routes after SIGTERM are exactly those before"; else
    bad "routes differ after SIGTERM: $(diff <(echo "$BEFORE") <(echo "$AFTER") | tr '\n' ' ')"
fi
ip -n "$NS_C" link show "$TUN" >/dev/null 2>&1 && bad "$TUN still exists" || ok "$TUN removed"

# ---- SIGKILL: nothing left that cuts C off
vn_client client2 || tl_finish
C curl -sS --max-time $((10 * TM)) "http://$W4/small" >/dev/null 2>&1 && ok "second client works" || bad "second client"
kill -KILL "$CLIENT_PID"
wait "$CLIENT_PID" 2>/dev/null
for _ in $(seq 50); do ip -n "$NS_C" link show "$TUN" >/dev/null 2>&1 || break; sleep 0.1; done
ip -n "$NS_C" link show "$TUN" >/dev/null 2>&1 && bad "$TUN survives SIGKILL" || ok "$TUN gone with the killed client"
left=$(vn_routes | grep -c "$TUN")
expect_eq "no route via the TUN after SIGKILL" "$left" 0
if out=$(C "$PY" "$VHELP" tcpcheck "$SADDR" 9999 5 2>&1); then ok "after SIGKILL C still reaches the server address directly ($out)"; else bad "after SIGKILL: $out"; fi
extra=$(diff <(echo "$BEFORE") <(vn_routes) | grep '^>' | tr '\n' ' ')
ok "routes left by SIGKILL: ${extra:-none} (host route to the server: harmless)"
vn_client client3 || tl_finish
got=$(C curl -sS --max-time $((10 * TM)) "http://$W4/small" 2>&1)
expect_eq "a new client starts over the leftover host route" "$got" "small-ok"
tl_stop "client3" "$CLIENT_PID" $((10 * TM))
tl_stop "server" "$SERVER_PID" $((10 * TM))
tl_finish
