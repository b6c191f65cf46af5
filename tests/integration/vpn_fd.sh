#!/usr/bin/env bash
# VPN mode on a handed-over descriptor (--tun-fd), as Android's VpnService
# does: a parent (vpn_helper.py tunfd) opens the TUN device, gives it an
# address and one route (to W only), and starts `umbra client --tun-fd N`,
# which must use the descriptor as it is: no address or route of its own.
# Topology: tests/integration/vpn_lib.sh.
set -u
. "$(dirname "$0")/lib.sh"
TL_NETNS=0
tl_init vpn_fd
. "$SRC/tests/integration/vpn_lib.sh"
vn_init
tl_need curl nginx
vn_topology
vn_services
head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
SHA=$(tl_sha "$WORK/www/blob")
vn_server
BEFORE=$(vn_routes)
EVENTS=$WORK/client.events
tl_bg "$WORK/client.log" ip netns exec "$NS_C" "$PY" "$VHELP" tunfd "$TUN" 10.234.0.1/30 "$W4/32" \
    "$UMBRA" client --link "$LINK" --tun-fd '{fd}' --events "$EVENTS"
CLIENT_PID=$BG_PID
if out=$("$PY" "$HELPER" wait-event "$EVENTS" session_up 1 $((15 * TM))); then ok "client on a handed-over descriptor: session up"; else bad "session: $out"; tl_finish; fi
grep -q "descriptor handed over" "$WORK/client.log" && ok "client adopted the descriptor" || bad "no adoption line in the log"
r=$(ip -n "$NS_C" route show 0.0.0.0/1)
expect_eq "the client added no route of its own" "$r" ""
got=$(C curl -sS --max-time $((30 * TM)) "http://$W4/blob" | sha256sum | cut -d' ' -f1)
expect_eq "4 MiB through the handed-over device, sha256 ok" "$got" "$SHA"
if out=$(C timeout $((30 * TM)) "$PY" "$VHELP" udp "$W4" 7007 2>&1); then ok "UDP: $out"; else bad "UDP: $out"; fi
tl_stop client "$CLIENT_PID" $((10 * TM))
ip -n "$NS_C" link show "$TUN" >/dev/null 2>&1 && bad "$TUN survives the client" || ok "$TUN gone with its descriptor"
expect_eq "routes as before" "$(vn_routes)" "$BEFORE"
# Not a TUN descriptor: a clear error, exit status non-zero.
if C "$UMBRA" client --link "$LINK" --tun-fd 0 </dev/null >"$WORK/bad.out" 2>&1; then bad "--tun-fd 0 (not a TUN) accepted"; else
    grep -q "not a usable TUN descriptor" "$WORK/bad.out" && ok "--tun-fd on a non-TUN descriptor refused: $(grep -m1 'TUN' "$WORK/bad.out" | cut -c1-120)" || bad "--tun-fd 0: $(cat "$WORK/bad.out")"
fi
tl_stop server "$SERVER_PID" $((10 * TM))
tl_finish
