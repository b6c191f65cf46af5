# shellcheck shell=bash
# Shared topology of the vpn_*.sh tests and bench/vpn.sh: three network
# namespaces the test creates (and deletes), joined by veth pairs; nothing
# else is ever reached.
#
#   ns C (client)                  ns S (server)                   ns W (web)
#   umbra client --tun             umbra server 10.201.9.1:443     nginx 10.201.2.2:80, [fd00:201:2::2]:80
#   tun umtun0 10.233.0.1/30       (on lo; egress --allow W and    udp echo :7007, iperf3 :5201
#   c0 10.201.1.2/24 ───────────── s0 10.201.1.1/24   the LAN DNS) DNS :53 (answers vpn-test.umbra)
#   default via 10.201.1.1         s1 10.201.2.1/24 ────────────── w0 10.201.2.2/24
#   resolv.conf: 10.201.2.2,       DNS 10.201.1.1:53 ("LAN"        fd00:201:2::2/64
#                10.201.1.1        resolver, logs query sources)
#                                  no IP forwarding: C reaches W only through the tunnel
#
# Source after lib.sh and tl_init. vn_init skips (exit 77) without root,
# `ip netns` or /dev/net/tun.

vn_init() {
    [ "$(id -u)" = 0 ] || tl_skip "VPN tests need root (network namespaces, TUN devices, routes)"
    command -v ip >/dev/null 2>&1 || tl_skip "ip (iproute2) not installed (run scripts/deps.sh)"
    [ -c /dev/net/tun ] || tl_skip "/dev/net/tun missing (no TUN support in this kernel/container)"
    local probe=umbra-probe-$$
    ip netns add "$probe" 2>/dev/null || tl_skip "'ip netns add' does not work here"
    ip netns exec "$probe" true 2>/dev/null || { ip netns del "$probe"; tl_skip "'ip netns exec' does not work here"; }
    ip netns del "$probe"
    NS_C=umbra-c-$$
    NS_S=umbra-s-$$
    NS_W=umbra-w-$$
    VN_UP=0
    VHELP=$SRC/tests/integration/vpn_helper.py
    TUN=umtun$(($$ % 1000))
    SADDR=10.201.9.1
    SPORT=443
    W4=10.201.2.2
    W6=fd00:201:2::2
    LANDNS=10.201.1.1
    DNSNAME=vpn-test.umbra
    trap vn_trap EXIT
}

vn_trap() {
    local rc=$?
    (exit $rc)
    tl_cleanup
    vn_cleanup
}

vn_cleanup() {
    [ "${VN_UP:-0}" = 1 ] || return 0
    local ns p
    for ns in "$NS_C" "$NS_S" "$NS_W"; do
        # Only processes this test started live in these namespaces.
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    VN_UP=0
}

C() { ip netns exec "$NS_C" "$@"; }
S() { ip netns exec "$NS_S" "$@"; }
W() { ip netns exec "$NS_W" "$@"; }

vn_topology() {
    ip netns add "$NS_C" && ip netns add "$NS_S" && ip netns add "$NS_W" || tl_skip "cannot create namespaces"
    VN_UP=1
    local ns
    for ns in "$NS_C" "$NS_S" "$NS_W"; do ip -n "$ns" link set lo up; done
    ip link add c0 netns "$NS_C" type veth peer name s0 netns "$NS_S" &&
        ip link add s1 netns "$NS_S" type veth peer name w0 netns "$NS_W" || tl_skip "cannot create veth pairs"
    ip -n "$NS_C" addr add 10.201.1.2/24 dev c0
    ip -n "$NS_S" addr add 10.201.1.1/24 dev s0
    ip -n "$NS_S" addr add 10.201.2.1/24 dev s1
    ip -n "$NS_S" addr add "$SADDR/32" dev lo
    ip -n "$NS_W" addr add "$W4/24" dev w0
    ip -n "$NS_S" -6 addr add fd00:201:2::1/64 dev s1 nodad 2>/dev/null
    ip -n "$NS_W" -6 addr add "$W6/64" dev w0 nodad 2>/dev/null
    ip -n "$NS_C" link set c0 up
    ip -n "$NS_S" link set s0 up
    ip -n "$NS_S" link set s1 up
    ip -n "$NS_W" link set w0 up
    ip -n "$NS_C" route add default via 10.201.1.1
    ip netns exec "$NS_S" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    # `ip netns exec` bind-mounts these over /etc/resolv.conf in C.
    mkdir -p "/etc/netns/$NS_C"
    printf 'nameserver %s\nnameserver %s\noptions timeout:2 attempts:2\n' "$W4" "$LANDNS" >"/etc/netns/$NS_C/resolv.conf"
}

vn_wait_ready() { # FILE SECS
    tl_wait_file "$1" "$2" || { bad "$(basename "$1" .ready) did not start"; tl_finish; }
}

# nginx, UDP echo, DNS and iperf3 in W; the LAN resolver and a TCP "hello"
# on the server's address in S.
vn_services() {
    tl_need nginx
    mkdir -p "$WORK/www" "$WORK/nginx/tmp"
    printf 'small-ok\n' >"$WORK/www/small"
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
    server {
        listen $W4:80;
        listen [$W6]:80;
        server_name _;
        root $WORK/www;
    }
}
EOF
    tl_bg "$WORK/nginx.err" ip netns exec "$NS_W" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx.err"
    tl_bg "$WORK/echo.log" ip netns exec "$NS_W" "$PY" "$VHELP" udpecho "$W4" 7007 "$WORK/echo.ready"
    tl_bg "$WORK/dnsw.log" ip netns exec "$NS_W" "$PY" "$VHELP" dns "$W4" 53 "$WORK/dnsw.ready" "$WORK/dnsw.queries" "$DNSNAME" "$W4"
    tl_bg "$WORK/dnslan.log" ip netns exec "$NS_S" "$PY" "$VHELP" dns "$LANDNS" 53 "$WORK/dnslan.ready" "$WORK/dnslan.queries" "$DNSNAME" "$W4"
    tl_bg "$WORK/hello.log" ip netns exec "$NS_S" "$PY" "$VHELP" tcplisten "$SADDR" 9999 "$WORK/hello.ready"
    if command -v iperf3 >/dev/null 2>&1; then
        tl_bg "$WORK/iperf3.log" ip netns exec "$NS_W" iperf3 -s -B "$W4" -p 5201
    fi
    vn_wait_ready "$WORK/echo.ready" 10
    vn_wait_ready "$WORK/dnsw.ready" 10
    vn_wait_ready "$WORK/dnslan.ready" 10
    vn_wait_ready "$WORK/hello.ready" 10
    local i
    for i in $(seq 100); do W "$PY" -c "import socket;socket.create_connection(('$W4',80),1)" 2>/dev/null && return 0; sleep 0.1; done
    bad "nginx did not start in W"
    cat "$WORK/nginx.err"
    tl_finish
}

vn_server() { # ARGS...
    "$UMBRA" server init -c "$WORK/server.conf" --listen "$SADDR:$SPORT" >"$WORK/init.out" 2>&1 ||
        { bad "umbra server init: $(cat "$WORK/init.out")"; tl_finish; }
    sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
    LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>"$WORK/add.err") ||
        { bad "umbra server add-client: $(cat "$WORK/add.err")"; tl_finish; }
    tl_bg "$WORK/server.log" ip netns exec "$NS_S" "$UMBRA" server -c "$WORK/server.conf" \
        --allow 10.201.2.0/24 --allow fd00:201:2::/64 --allow "$LANDNS/32" "$@"
    SERVER_PID=$BG_PID
    local i
    for i in $(seq $((100 * TM))); do
        S awk 'FNR > 1 && $4 == "0A" && $2 ~ /:01BB$/ { f = 1 } END { exit !f }' /proc/net/tcp && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    bad "umbra server did not start"
    tl_finish
}

# vn_client LOGNAME ARGS...: umbra client --tun in C; waits for the session
# and the routes. Sets CLIENT_PID, EVENTS.
vn_client() {
    local log=$1
    shift
    EVENTS=$WORK/$log.events
    tl_bg "$WORK/$log.log" ip netns exec "$NS_C" "$UMBRA" client --link "$LINK" --tun --tun-name "$TUN" \
        --events "$EVENTS" "$@"
    CLIENT_PID=$BG_PID
    local t0
    t0=$(tl_now_ms)
    # Each client writes its own events file (LOGNAME differs): wait for its first session.
    if ! out=$("$PY" "$HELPER" wait-event "$EVENTS" session_up 1 $((15 * TM))); then
        bad "client session: $out"
        return 1
    fi
    for _ in $(seq 50); do
        ip -n "$NS_C" route show 0.0.0.0/1 | grep -q "$TUN" && break
        sleep 0.1
    done
    ip -n "$NS_C" route show 0.0.0.0/1 | grep -q "$TUN" || { bad "no 0.0.0.0/1 route via $TUN"; return 1; }
    ok "VPN client up (session and routes) in $(($(tl_now_ms) - t0)) ms"
}

vn_routes() { # the routes of C, both families, sorted
    { ip -n "$NS_C" -4 route show table main; ip -n "$NS_C" -6 route show table main; } | sort
}

# Run directly (CTest registers every *.sh), this file checks the topology
# alone: W is unreachable from C without the tunnel, reachable from S.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    . "$(dirname "$0")/lib.sh"
    TL_NETNS=0
    TL_NO_UMBRA=1 tl_init vpn_lib_selftest
    vn_init
    vn_topology
    vn_services
    if C "$PY" "$VHELP" tcpcheck "$SADDR" 9999 3 >/dev/null; then ok "C reaches the server address"; else bad "C cannot reach $SADDR"; fi
    if C curl -sS --max-time 3 "http://$W4/small" >/dev/null 2>&1; then bad "C reaches W without a tunnel"; else ok "W unreachable from C without the tunnel"; fi
    if S curl -sS --max-time 3 "http://$W4/small" | grep -q small-ok; then ok "S reaches W"; else bad "S cannot reach W"; fi
    if out=$(S "$PY" "$VHELP" dnsq "$W4" "$DNSNAME"); then expect_eq "DNS in W answers" "$out" "$W4"; else bad "DNS in W: $out"; fi
    tl_finish
fi
