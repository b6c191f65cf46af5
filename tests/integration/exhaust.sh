#!/usr/bin/env bash
# Resource exhaustion with real programs (issue 9, "what it must show"): one
# umbra server, three clients with their own keys, and while all of this is
# on at once
#   - client A: 100 streams to a black-holed address and 100 to a sink that
#     accepts and never reads, written into and never read (streams that end
#     are opened again);
#   - client B: 4 UDP associations flooding 1200-byte datagrams at a UDP sink;
#   - 2,000 unauthenticated TCP connections held open on the server port
#     (from 127.66.0.1..8, half silent, half having sent 200 random bytes);
#   - client H (honest) starts and gets its session through that crowd;
#   - 2,000 idle connections held open on H's SOCKS5 port;
# H downloads 1 MiB and uploads 1 MiB through its SOCKS5 proxy with curl,
# sha256 checked, within a generous bound; and the peaks of the server's and
# the clients' RSS and descriptor counts stay under the bounds stated in
# docs/internals/limits.md (section "What exhaust.sh measures").
#
#   exhaust_helper.py stuck ─► client A ══╗                   ┌─► 10.78.0.1:80 (black hole:
#   exhaust_helper.py flood ─► client B ══╬══► umbra server ──┤    route via a veth neighbour
#   curl ───────────────────► client H ══╝    :SPORT  ▲       │    that never answers)
#   exhaust_helper.py idle ──► (H's SOCKS5)           │       ├─► sink 127.0.0.1 (never reads)
#   exhaust_helper.py preauth (2,000 from 127.66.0.x) ┘       ├─► udpsink 127.0.0.1
#                                                             └─► nginx 127.0.0.1 (H's transfers)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init exhaust
tl_need_umbra "the resource bounds of the umbra server and client"
tl_need curl nginx
[ "$TL_NETNS" = 1 ] || tl_skip "no private network namespace: the test adds a black-hole route"
ip link add ub0 type veth peer name ub1 2>/dev/null || tl_skip "cannot create a veth pair"
ip link set ub0 up
ip link set ub1 up
ip addr add 10.77.0.1/30 dev ub0
ip neigh add 10.77.0.2 lladdr 02:00:00:00:00:02 dev ub0 nud permanent
ip route add 10.78.0.0/24 via 10.77.0.2
# 2,000 + 2,000 held connections, both ends in this namespace, plus the rest.
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 12000 ] ||
    tl_skip "hard RLIMIT_NOFILE $(ulimit -Hn) is below the 12000 this test needs"
ulimit -Sn 12000 || tl_skip "cannot raise the soft descriptor limit"

EX=$SRC/tests/integration/exhaust_helper.py
# (the UMBRA_EXHAUST_* overrides are for taking the measurements apart)
N_PREAUTH=${UMBRA_EXHAUST_PREAUTH:-2000}
N_IDLE=${UMBRA_EXHAUST_IDLE:-2000}
N_STUCK=${UMBRA_EXHAUST_STUCK:-100} # per destination (black hole, sink)
N_ASSOCS=${UMBRA_EXHAUST_ASSOCS:-4}
LOAD_SECS=$((60 * TM))

# ---- bounds (derivation: docs/internals/limits.md, "What exhaust.sh measures")
MEM_BUDGET_MIB=64 # the server's memory-budget in this test (the default is 256)
SERVER_RSS_MAX_MIB=$((SAN ? 384 : 128))
SERVER_FD_MAX=2400
CLIENT_H_RSS_MAX_MIB=$((SAN ? 96 : 32))
CLIENT_A_RSS_MAX_MIB=$((SAN ? 480 : 192))
CLIENT_B_RSS_MAX_MIB=$((SAN ? 336 : 112))
CLIENT_H_FD_MAX=1100 # the SOCKS5 proxy holds at most 1024 connections
CLIENT_A_FD_MAX=300  # 200 streams held, plus the fixed ones
CLIENT_B_FD_MAX=60   # 4 associations: a control connection and a UDP socket each
XFER_SECS=$((20 * TM))
SESSION_SECS=$((10 * TM))

# ---- destinations
tl_nginx
head -c $((1 << 20)) /dev/urandom >"$WORK/www/mib"
WANT=$(tl_sha "$WORK/www/mib")
tl_bg "$WORK/tsink.log" "$PY" "$EX" sink "$WORK/tsink.port" $((8 * N_STUCK))
tl_wait_file "$WORK/tsink.port" 10 || { bad "tcp sink did not start"; tl_finish; }
TSINK=$(awk '/^tcp/ { print $2 }' "$WORK/tsink.port")
tl_bg "$WORK/usink.log" "$PY" "$EX" udpsink "$WORK/usink.port"
USINK_PID=$BG_PID
tl_wait_file "$WORK/usink.port" 10 || { bad "udp sink did not start"; tl_finish; }
USINK=$(awk '/^udp/ { print $2 }' "$WORK/usink.port")

# ---- server with three clients; unauthenticated connections are held for
# the whole test (probe delay 120..150 s), as a prober's would be.
tl_server_init "$WORK/server.conf" honest
LINK_H=$LINK
LINK_A=$("$UMBRA" server add-client -c "$WORK/server.conf" attacker-a --no-qr 2>"$WORK/add.err") ||
    { bad "add-client a: $(cat "$WORK/add.err")"; tl_finish; }
LINK_B=$("$UMBRA" server add-client -c "$WORK/server.conf" attacker-b --no-qr 2>"$WORK/add.err") ||
    { bad "add-client b: $(cat "$WORK/add.err")"; tl_finish; }
sed -i 's/^probe-delay-min = .*/probe-delay-min = 120000/; s/^probe-delay-max = .*/probe-delay-max = 150000/' \
    "$WORK/server.conf"
sed -i "/^\[server\]/a memory-budget = $MEM_BUDGET_MIB" "$WORK/server.conf"
tl_server_start --allow 10.78.0.0/24 || tl_finish

start_client() { # NAME LINK: sets C_PID C_SOCKS C_EVENTS
    tl_client_start "$2" "client-$1" || tl_finish
    C_PID=$CLIENT_PID
    C_SOCKS=$SOCKS
    C_EVENTS=$EVENTS
    CLIENT_PID=""
}
start_client a "$LINK_A"
A_PID=$C_PID A_SOCKS=$C_SOCKS A_EVENTS=$C_EVENTS
start_client b "$LINK_B"
B_PID=$C_PID B_SOCKS=$C_SOCKS B_EVENTS=$C_EVENTS
for c in A B; do
    ev=${c}_EVENTS
    if out=$("$PY" "$HELPER" wait-event "${!ev}" session_up 1 $((15 * TM))); then
        ok "client $c: session up"
    else
        bad "client $c: $out"
        tl_finish
    fi
done
sfd0=$(tl_fd_count "$SERVER_PID")
echo "# server at rest: $(tl_rss_kib "$SERVER_PID") KiB RSS, $sfd0 descriptors"

# ---- the load
STOP=$WORK/stop
tl_bg "$WORK/sample.log" "$PY" "$EX" sample "$WORK/peaks" "$STOP" $((LOAD_SECS + 30)) \
    server="$SERVER_PID" a="$A_PID" b="$B_PID"
SAMPLE_PID=$BG_PID
gen() { # NAME command...: a load generator, its ready file $STOP-NAME.ready
    tl_bg "$WORK/gen-$1.log" "$PY" "$EX" "${@:2}"
    eval "GEN_$1=$BG_PID"
}
gen blackhole stuck "$A_SOCKS" 10.78.0.1 80 $N_STUCK $LOAD_SECS "$STOP-blackhole"
gen slowsink stuck "$A_SOCKS" 127.0.0.1 "$TSINK" $N_STUCK $LOAD_SECS "$STOP-slowsink"
gen flood flood "$B_SOCKS" 127.0.0.1 "$USINK" $N_ASSOCS $LOAD_SECS "$STOP-flood"
gen preauth preauth "$SPORT" $N_PREAUTH 127.66.0 $LOAD_SECS "$STOP-preauth"
wait_ready() { # NAME SECS
    tl_wait_file "$STOP-$1.ready" "$2" || bad "load generator $1 not ready within $2 s: $(cat "$WORK/gen-$1.log")"
}
for g in blackhole slowsink flood preauth; do wait_ready $g $((30 * TM)); done
echo "# load on: A's stuck streams, B's flood, $N_PREAUTH unauthenticated connections"

# The honest client starts now: its session must get through the crowd.
t0=$(tl_now_ms)
start_client h "$LINK_H"
H_PID=$C_PID H_SOCKS=$C_SOCKS H_EVENTS=$C_EVENTS
if out=$("$PY" "$HELPER" wait-event "$H_EVENTS" session_up 1 $SESSION_SECS); then
    ok "honest client: session up $(($(tl_now_ms) - t0)) ms after start, beside $N_PREAUTH unauthenticated connections"
else
    bad "honest client: no session within $SESSION_SECS s beside $N_PREAUTH unauthenticated connections"
fi
tl_bg "$WORK/sample-h.log" "$PY" "$EX" sample "$WORK/peaks-h" "$STOP" $((LOAD_SECS + 30)) h="$H_PID"
SAMPLE_H_PID=$BG_PID
gen idle idle "$H_SOCKS" $N_IDLE $LOAD_SECS "$STOP-idle"
wait_ready idle $((30 * TM))
sleep 2 # let the stuck streams fill whatever windows they can

# ---- the honest transfers
xfer() { # NAME: download then upload, 1 MiB each; prints "ms_down ms_up"
    local t got
    t=$(tl_now_ms)
    got=$(curl -sS --max-time $XFER_SECS --socks5-hostname "127.0.0.1:$H_SOCKS" \
        "http://127.0.0.1:$NGINX_PORT/mib" 2>"$WORK/curl-$1.err" | sha256sum | cut -d' ' -f1)
    local down=$(($(tl_now_ms) - t))
    if [ "$got" = "$WANT" ]; then
        ok "honest $1 download of 1 MiB in $down ms (sha256 checked)"
    else
        bad "honest $1 download of 1 MiB: $(head -c 300 "$WORK/curl-$1.err") after $down ms"
    fi
    t=$(tl_now_ms)
    got=$(curl -sS --max-time $XFER_SECS --socks5-hostname "127.0.0.1:$H_SOCKS" -T "$WORK/www/mib" \
        "http://127.0.0.1:$NGINX_PORT/upload/x" 2>"$WORK/curl-$1u.err")
    local up=$(($(tl_now_ms) - t))
    if [ "$got" = "$WANT" ]; then
        ok "honest $1 upload of 1 MiB in $up ms (sha256 checked by the sink)"
    else
        bad "honest $1 upload of 1 MiB: '$got' $(head -c 300 "$WORK/curl-$1u.err") after $up ms"
    fi
    echo "# $1 transfers: down $down ms, up $up ms"
}
xfer first
sleep 3
xfer second

# ---- the end of the load
touch "$STOP" "$STOP-blackhole" "$STOP-slowsink" "$STOP-flood" "$STOP-preauth" "$STOP-idle"
for g in blackhole slowsink flood preauth idle; do
    v=GEN_$g
    if wait "${!v}"; then echo "# $(tail -n 1 "$WORK/gen-$g.log")"; else bad "load generator $g: $(tail -n 3 "$WORK/gen-$g.log")"; fi
done
wait "$SAMPLE_PID" "$SAMPLE_H_PID"
kill -TERM "$USINK_PID" 2>/dev/null && wait "$USINK_PID" 2>/dev/null
echo "# $(tail -n 1 "$WORK/usink.log")"
[ "$N_ASSOCS" = 0 ] || grep -q '^flood: [1-9]' "$WORK/gen-flood.log" || bad "the flood sent nothing"
[ "$N_STUCK" = 0 ] || grep -q '[1-9][0-9]* bytes written' "$WORK/gen-slowsink.log" ||
    bad "nothing written into the stuck streams"

# ---- the bounds
cat "$WORK/peaks" "$WORK/peaks-h" >"$WORK/peaks.all"
peak() { awk -v n="$1" -v k="$2" '$1 == n { print $k }' "$WORK/peaks.all"; }
check() { # WHAT NAME RSS_MAX_MIB FD_MAX
    local rss hwm fds
    rss=$(peak "$2" 2) hwm=$(peak "$2" 3) fds=$(peak "$2" 4)
    echo "# $1: peak VmRSS $((rss / 1024)) MiB, VmHWM $((hwm / 1024)) MiB, $fds descriptors"
    if [ "${hwm:-0}" -gt 0 ] && [ "$hwm" -le $(($3 * 1024)) ]; then
        ok "$1: VmHWM $((hwm / 1024)) MiB <= $3 MiB"
    else
        bad "$1: VmHWM $((${hwm:-0} / 1024)) MiB, bound $3 MiB"
    fi
    if [ "${fds:-0}" -gt 0 ] && [ "$fds" -le "$4" ]; then
        ok "$1: $fds descriptors <= $4"
    else
        bad "$1: $fds descriptors, bound $4"
    fi
}
check server server $SERVER_RSS_MAX_MIB $SERVER_FD_MAX
check "client H (honest, 2000 idle SOCKS5 connections)" h $CLIENT_H_RSS_MAX_MIB $CLIENT_H_FD_MAX
check "client A (stuck streams)" a $CLIENT_A_RSS_MAX_MIB $CLIENT_A_FD_MAX
check "client B (datagram flood)" b $CLIENT_B_RSS_MAX_MIB $CLIENT_B_FD_MAX
# The server really held the crowd: without the 2,000 pre-auth connections
# the descriptor bound would say nothing.
sfd=$(peak server 4)
if [ "${sfd:-0}" -ge $((sfd0 + N_PREAUTH)) ]; then
    ok "server held the crowd ($sfd descriptors at peak, $sfd0 at rest)"
else
    bad "server held only $sfd descriptors at peak ($sfd0 at rest): the pre-auth connections were not held"
fi

# Past a budget a pre-auth connection waits for its probe delay like any
# other (an early close would be a cheap fingerprint, and a lock-out).
if grep -q ' 0 closed by the server' "$WORK/gen-preauth.log"; then
    ok "no unauthenticated connection closed early"
else
    bad "unauthenticated connections closed early: $(tail -n 1 "$WORK/gen-preauth.log")"
fi

for p in server:$SERVER_PID a:$A_PID b:$B_PID h:$H_PID; do
    kill -0 "${p#*:}" 2>/dev/null && ok "${p%%:*} alive after the load" || bad "${p%%:*} died"
done
tl_stop "client H" "$H_PID" $((5 * TM))
tl_stop "client A" "$A_PID" $((5 * TM))
tl_stop "client B" "$B_PID" $((5 * TM))
tl_stop "server" "$SERVER_PID" $((15 * TM))
SERVER_PID=""
tl_finish
