#!/usr/bin/env bash
# Egress to the server's own addresses is refused (audit item 4): a service
# bound to the wildcard address, firewalled from outside, must not be
# reachable through the tunnel just because the host's interface address
# counts as public.
#
#   egress_helper.py tcpsink 0.0.0.0:P         (listens on every address)
#   umbra client ══ tcp ══► umbra server ──► 198.20.0.1:P  own address: refused (0x02)
#                                       ──► 198.20.0.2:P  added after start: refused
#                                       ──► 198.20.0.3:P  own, but --allow 198.20.0.3/32: ok
#   ue0 ─ veth ─ ue1 (ue1 down: ue0 has no carrier, its addresses are still local)
#
# The addresses are public-looking on purpose (documentation prefixes are
# refused anyway) and exist only inside this test's own network namespace,
# which has no route anywhere: no packet leaves it.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init egress_host
tl_need_umbra "the egress policy"
[ "$TL_NETNS" = 1 ] || tl_skip "no private network namespace (unshare -n/-rn failed): the test adds interface addresses"
ip link add ue0 type veth peer name ue1 2>/dev/null || tl_skip "cannot create a veth pair in the namespace"
ip link set ue0 up
ip addr add 198.20.0.1/24 dev ue0
ip addr add 198.20.0.3/32 dev ue0
EH=$SRC/tests/integration/egress_helper.py

tl_bg "$WORK/sink.log" "$PY" "$EH" tcpsink "$WORK/sink.port" 0.0.0.0
tl_wait_file "$WORK/sink.port" 10 || { bad "tcp listener did not start"; tl_finish; }
P=$(awk '/^tcp/ { print $2 }' "$WORK/sink.port")
# The test reads the truthful SOCKS5 reply codes: fast open off.
TL_CLIENT_ARGS="--fast-open off" tl_tunnel_up --allow 198.20.0.3/32 --log-level debug

code() { timeout $((20 * TM)) "$PY" "$HELPER" socks-code "$SOCKS" "$1" "$P" 2>&1; }
expect_eq "stream to the server's own address 198.20.0.1 (wildcard listener): not allowed" "$(code 198.20.0.1)" 2
expect_eq "stream to an own address that an allow rule covers: succeeds" "$(code 198.20.0.3)" 0

# An address added while the server runs is refused as soon as the server
# has heard of it (rtnetlink, or the periodic re-read): poll, bounded.
ip addr add 198.20.0.2/24 dev ue0
got=""
for _ in $(seq $((20 * TM))); do
    got=$(code 198.20.0.2)
    [ "$got" = 2 ] && break
    sleep 0.5
done
expect_eq "stream to an address added after the server started: not allowed" "$got" 2
grep -q "refused 198.20.0.2:$P (this host's own address)" "$WORK/server.log" &&
    ok "server log names the reason" || bad "no 'this host's own address' line in the server log"

kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"
tl_tunnel_down
tl_finish
