#!/usr/bin/env bash
# Descriptor exhaustion through the egress (audit item 7): a name resolving
# to 16 black-holed addresses used to cost 16 sockets per stream for the
# whole 10 s dial timeout (60 streams: 960 descriptors, with the default soft
# limit of 1024). Now: the server raises its soft RLIMIT_NOFILE to the hard
# limit, a dial keeps at most 4 attempts in flight and a client at most 256,
# and an honest stream still gets through while 60 such streams are held.
#
#   egress_helper.py hold ─► umbra client ══► umbra server ──► blackhole.test:80
#   (60 SOCKS5 CONNECTs)                                        = 10.78.0.1..16 (hosts file)
#                                                               route via 10.77.0.2 on ub0,
#                                                               a neighbour that never answers
#   ub0 ─ veth ─ ub1, only in this test's namespace; /etc/hosts is bind-mounted
#   over in a private mount namespace.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
if [ "$TL_NETNS" = 1 ] && [ -z "${EGRESS_IN_MNTNS:-}" ] && [ "$(id -u)" = 0 ] &&
    unshare -m --propagation private true 2>/dev/null; then
    export EGRESS_IN_MNTNS=1
    exec unshare -m --propagation private bash "$0" "$@"
fi
tl_init egress_fd
tl_need_umbra "the egress dial budgets"
[ "$TL_NETNS" = 1 ] || tl_skip "no private network namespace: the test adds a black-hole route"
[ -n "${EGRESS_IN_MNTNS:-}" ] || tl_skip "no private mount namespace for the hosts file"
ip link add ub0 type veth peer name ub1 2>/dev/null || tl_skip "cannot create a veth pair"
ip link set ub0 up
ip link set ub1 up
ip addr add 10.77.0.1/30 dev ub0
ip neigh add 10.77.0.2 lladdr 02:00:00:00:00:02 dev ub0 nud permanent
ip route add 10.78.0.0/24 via 10.77.0.2
{
    cat /etc/hosts
    for i in $(seq 16); do echo "10.78.0.$i blackhole.test"; done
} >"$WORK/hosts"
mount --bind "$WORK/hosts" /etc/hosts || tl_skip "cannot bind-mount the hosts file"
EH=$SRC/tests/integration/egress_helper.py

tl_bg "$WORK/sink.log" "$PY" "$EH" tcpsink "$WORK/sink.port" 127.0.0.1
tl_wait_file "$WORK/sink.port" 10 || { bad "tcp listener did not start"; tl_finish; }
P=$(awk '/^tcp/ { print $2 }' "$WORK/sink.port")
HARD=$(ulimit -Hn)
ulimit -Sn 1024 2>/dev/null || true
tl_tunnel_up --allow 10.78.0.0/24 --log-level debug
SOFT=$(awk '/^Max open files/ { print $4 }' "/proc/$SERVER_PID/limits")
expect_eq "server raised its soft descriptor limit to the hard limit" "$SOFT" "$HARD"
FD0=$(tl_fd_count "$SERVER_PID")

N=60
HOLD=12
tl_bg "$WORK/hold.log" "$PY" "$EH" hold "$SOCKS" blackhole.test 80 $N $HOLD
HOLD_PID=$BG_PID
# The most descriptors the server holds while the dials run (each gives up
# after its 10 s timeout): sampled every 0.2 s for 9 s.
MAXFD=$FD0
for _ in $(seq 45); do
    f=$(tl_fd_count "$SERVER_PID")
    [ "${f:-0}" -gt "$MAXFD" ] && MAXFD=$f
    sleep 0.2
done
grep -q "egress: refused" "$WORK/server.log" && bad "black-hole addresses refused by the policy"
USED=$((MAXFD - FD0))
# Bound: 4 attempts per dial for 60 dials = 240 (the client budget is 256),
# plus slack (the global cap alone, a quarter of a 1024 limit, would allow 256);
# before the budgets, 960.
if [ "$USED" -le 248 ] && [ "$USED" -ge 60 ]; then
    ok "60 streams to a 16-address black hole hold $USED descriptors (cap 4 per dial)"
else
    bad "60 streams to a 16-address black hole hold $USED descriptors (want 60..248)"
fi
expect_eq "honest stream while the black-holed ones are held" \
    "$(timeout $((20 * TM)) "$PY" "$HELPER" socks-code "$SOCKS" 127.0.0.1 "$P" 2>&1)" 0
wait "$HOLD_PID" 2>/dev/null
kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"
tl_tunnel_down
tl_finish
