#!/usr/bin/env bash
# TCP_NOTSENT_LOWAT on the carrier sockets of a running client and server
# (src/transport/tcp.c tcp_tune; the value is UM_TCP_NOTSENT_LOWAT of
# src/transport/tcp.h): for each of the tcp, tls and ws transports, every
# established connection between the umbra client and the umbra server
# (the client's dialled end, the server's accepted end) reports the value
# when read back with getsockopt, through a duplicate of the process's
# descriptor (pidfd_getfd(2), tests/integration/lowat_helper.py). A socket
# made by another program reads 0 with the same helper (so the helper
# reads the real option, not a constant). No traffic is timed.
#
#   umbra client ══ tcp | tls | ws ══► umbra server :SPORT
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init carrier_lowat
tl_need_umbra "the carrier sockets of umbra"
tl_need nginx openssl
LH=$SRC/tests/integration/lowat_helper.py
WANT=$(($(sed -n 's/^#define UM_TCP_NOTSENT_LOWAT (\(.*\))$/\1/p' "$SRC/src/transport/tcp.h")))
[ "$WANT" -gt 0 ] || { bad "UM_TCP_NOTSENT_LOWAT not found in src/transport/tcp.h"; tl_finish; }
echo "# expecting TCP_NOTSENT_LOWAT $WANT"

# check NAME PID local|remote PORT [WANT]: every established TCP socket of
# PID with that local (remote) port has the option at WANT (default $WANT).
check() {
    local name=$1 pid=$2 side=$3 port=$4 want=${5:-$WANT} out rc
    out=$("$PY" "$LH" "$pid" "$side" "$port" 2>"$WORK/lowat.err")
    rc=$?
    [ $rc = 77 ] && tl_skip "pidfd_getfd not allowed here: $(cat "$WORK/lowat.err")"
    if [ $rc != 0 ]; then
        bad "$name: no established socket with $side port $port (rc $rc): $(head -c 300 "$WORK/lowat.err")"
        return
    fi
    local n bad_lines
    n=$(printf '%s\n' "$out" | wc -l)
    bad_lines=$(printf '%s\n' "$out" | awk -v w="$want" '$3 != w')
    if [ -z "$bad_lines" ]; then
        ok "$name: $n socket(s), TCP_NOTSENT_LOWAT $want ($(printf '%s' "$out" | head -n 1))"
    else
        bad "$name: expected $want: $(printf '%s' "$bad_lines" | tr '\n' ';')"
    fi
}

# both NAME: the client's dialled end and the server's accepted end.
both() {
    grep -q "listening on .* ($1 transport)" "$WORK/server.log" && ok "$1: the server listens with the $1 transport" ||
        bad "$1: server log: $(grep -m1 listening "$WORK/server.log")"
    check "$1, client's dialled carrier" "$CLIENT_PID" remote "$SPORT"
    check "$1, server's accepted carrier" "$SERVER_PID" local "$SPORT"
}

TL_NGINX_TLS=cover.test tl_nginx

# ---------------------------------------------------------------- control
CP=$(tl_free_port)
"$PY" - "$CP" <<'PY' >"$WORK/control.log" 2>&1 &
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(1)
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
a, _ = l.accept()
print("ready", flush=True)
time.sleep(120)
PY
CTRL_PID=$!
TL_PIDS+=("$CTRL_PID")
tl_wait_file "$WORK/control.log" 10 || { bad "control sockets did not start"; tl_finish; }
check "control: sockets of another program" "$CTRL_PID" local "$CP" 0
kill "$CTRL_PID" 2>/dev/null

# ---------------------------------------------------------------- tcp
tl_tunnel_up
both tcp
tl_tunnel_down
mv "$WORK/server.log" "$WORK/server-tcp.log"
mv "$WORK/client.log" "$WORK/client-tcp.log"
mv "$WORK/client.events" "$WORK/client-tcp.events"
mv "$WORK/server.conf" "$WORK/server-tcp.conf"

# ---------------------------------------------------------------- tls
TL_TRANSPORT=tls tl_tunnel_up
both tls
tl_tunnel_down
mv "$WORK/server.log" "$WORK/server-tls.log"
mv "$WORK/client.log" "$WORK/client-tls.log"
mv "$WORK/client.events" "$WORK/client-tls.events"
mv "$WORK/server.conf" "$WORK/server-tls.conf"

# ---------------------------------------------------------------- ws
# A plain ws listener (as behind nginx, tls = off on the client): the
# carrier is the client's own TCP connection to the server.
WSPATH=/s$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
SPORT=$(tl_free_port)
"$UMBRA" server init -c "$WORK/server-ws.conf" --listen "127.0.0.1:$SPORT" --transport ws \
    --ws-path "$WSPATH" --public-host "127.0.0.1:$SPORT" >"$WORK/init-ws.out" 2>&1 ||
    { bad "umbra server init (ws): $(cat "$WORK/init-ws.out")"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server-ws.conf"
SPUB=$(sed -n 's/^private-key = //p' "$WORK/server-ws.conf" | "$UMBRA" pubkey)
LINK=$("$UMBRA" server add-client -c "$WORK/server-ws.conf" laptop --no-qr 2>"$WORK/add-ws.err") ||
    { bad "umbra server add-client (ws): $(cat "$WORK/add-ws.err")"; tl_finish; }
CKEY=$("$UMBRA" link --show-secret "$LINK" | sed -n 's/^client private key: //p')
SOCKS=$(tl_free_port)
EVENTS=$WORK/client-ws.events
(
    umask 077
    printf '[client]\nprivate-key = %s\nsocks = 127.0.0.1:%s\nevents = %s\ncontrol = off\n\n' \
        "$CKEY" "$SOCKS" "$EVENTS"
    printf '[server "direct"]\naddress = 127.0.0.1:%s\npublic-key = %s\ntransport = w\n\n' \
        "$SPORT" "$SPUB"
    printf '[transport "w"]\ntype = ws\npath = %s\ntls = off\n' "$WSPATH"
) >"$WORK/client-ws.conf"
tl_bg "$WORK/server.log" "$UMBRA" server -c "$WORK/server-ws.conf" --allow 127.0.0.1/32
SERVER_PID=$BG_PID
tl_wait_listen "$SPORT" $((10 * TM)) "$SERVER_PID" || { bad "umbra server (ws) did not listen"; tl_finish; }
tl_bg "$WORK/client.log" "$UMBRA" client -c "$WORK/client-ws.conf"
CLIENT_PID=$BG_PID
tl_wait_listen "$SOCKS" $((10 * TM)) "$CLIENT_PID" || { bad "umbra client (ws) did not start: $(tail -n 3 "$WORK/client.log")"; tl_finish; }
if out=$(tl_wait_session 1 $((15 * TM))); then
    ok "ws: session up"
    both ws
else
    bad "ws: session: $out; client log: $(tail -n 3 "$WORK/client.log")"
fi
tl_tunnel_down

tl_finish
