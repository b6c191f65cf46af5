#!/usr/bin/env bash
# bench/ws_setup.sh: session set-up time of the ws transport (issue 13), with
# and without its early data, against the tcp transport, over a path with a
# round-trip time (a delaying relay, bench/delay_relay.py: loopback has no
# netem here). Everything on 127.0.0.1.
#
#   bench/ws_setup.sh [BUILD_DIR] [RTT_MS] [N]     (defaults: build 20 10)
#
#   client ─► delay relay (RTT/2 each way) ─► nginx TLS front ─► umbra server (ws)
#   client ─► delay relay ─────────────────────────────────────► umbra server (ws, tls=0)
#   client ─► delay relay ─────────────────────────────────────► umbra server (tcp)
#
# Set-up time: the client's session_up rtt_ms (dial to session up), median
# and max of N fresh clients. The relay accepts TCP itself, so TCP's own
# handshake costs no delayed round trip here; the delayed round trips are:
# tcp 1 (Noise); ws over TLS 2 (TLS 1.3, then the upgrade carrying Noise
# message 1); ws plain HTTP 1. Without the early data the upgrade and the
# Noise exchange would be two round trips: that column is the measured one
# plus RTT_MS, not a separate mode (umbra has none).
# Figures only; exits non-zero only when the harness cannot run.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
bdir=${1:-build}
[ -d "$bdir" ] || bdir="$SRC/$bdir"
UMBRA="$(cd "$bdir" && pwd)/umbra"
RTT=${2:-20}
N=${3:-10}
PY=/usr/bin/python3
TOOL="$SRC/bench/peers_tool.py"
T=$(mktemp -d /tmp/umbra-wssetup.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
bg() { "$@" >>"$T/bg.log" 2>&1 & PIDS+=($!); }
read -r P_FRONT P_WS P_WSP P_TCP R1 R2 R3 R4 < <("$PY" "$TOOL" ports 8)
SNI=front.umbra-bench.test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$SNI" \
  -addext "subjectAltName=DNS:$SNI" -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 || exit 1
mkdir -p "$T/www" "$T/ngx"
echo ok >"$T/www/index.html"
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$P_FRONT ssl;|" -e "s|front.example.com;|$SNI;|" \
  -e "s|/etc/ssl/front.example.com.pem|$T/cert.pem|" -e "s|/etc/ssl/front.example.com.key|$T/key.pem|" \
  -e "s|/var/www/html|$T/www|" -e "s|location = /api/v2/stream|location = /s|" \
  -e "s|127.0.0.1:8080;|127.0.0.1:$P_WS;|" "$SRC/docs/nginx-ws.conf" >"$T/ngx/site.conf"
cat >"$T/ngx/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $T/ngx/b; proxy_temp_path $T/ngx/p; fastcgi_temp_path $T/ngx/f;
  uwsgi_temp_path $T/ngx/u; scgi_temp_path $T/ngx/s;
  include $T/ngx/site.conf;
}
NGX
bg nginx -p "$T/ngx" -c "$T/ngx/nginx.conf" -e "$T/ngx/error.log"
D=$(awk -v r="$RTT" 'BEGIN { print r / 2 }')
relay() { # LISTEN TARGET
  rm -f "$T/relay.$1"
  bg "$PY" "$SRC/bench/delay_relay.py" "$1" "$2" "$D" "$T/relay.$1"
  for _ in $(seq 50); do [ -f "$T/relay.$1" ] && return; sleep 0.1; done
}
relay "$R1" "$P_FRONT"
relay "$R2" "$P_WSP"
relay "$R3" "$P_TCP"

server() { # NAME PORT EXTRA-KEY INIT-ARGS...: the client's link into $T/NAME.link
  local n=$1 p=$2 key=$3
  shift 3
  "$UMBRA" server init -c "$T/$n.conf" --listen "127.0.0.1:$p" "$@" >/dev/null 2>&1 || exit 1
  [ -z "$key" ] || sed -i "/^type = ws\$/a $key" "$T/$n.conf"
  "$UMBRA" server add-client -c "$T/$n.conf" c --no-qr 2>/dev/null | grep -o 'umbra://[^ ]*' | head -1 >"$T/$n.link"
  bg "$UMBRA" server -c "$T/$n.conf" --allow 127.0.0.0/8
  "$PY" "$TOOL" wait-port "$p" 10 || exit 1
}
# The links, with the relay's port as the address (Host stays the front's).
server ws "$P_WS" "sni = $SNI" --transport ws --ws-path /s --public-host "127.0.0.1:$P_FRONT"
server wsp "$P_WSP" "tls = off" --transport ws --ws-path /s --public-host "127.0.0.1:$P_WSP"
server tcp "$P_TCP" ""
L_WS=$(sed "s|@127.0.0.1:$P_FRONT?|@127.0.0.1:$R1?|" "$T/ws.link")
L_WSP=$(sed "s|@127.0.0.1:$P_WSP?|@127.0.0.1:$R2?|" "$T/wsp.link")
L_TCP=$(sed "s|@127.0.0.1:$P_TCP?|@127.0.0.1:$R3?|" "$T/tcp.link")

setup() { # LINK: N set-up times in ms, one a line
  local i ev
  for i in $(seq "$N"); do
    ev="$T/ev.$i"
    rm -f "$ev"
    SSL_CERT_FILE="$T/cert.pem" "$UMBRA" client --link "$1" --socks "127.0.0.1:$R4" --events "$ev" >"$T/client.log" 2>&1 &
    local cp=$!
    for _ in $(seq 100); do grep -q session_up "$ev" 2>/dev/null && break; sleep 0.05; done
    kill "$cp" 2>/dev/null
    wait "$cp" 2>/dev/null
    grep -m1 session_up "$ev" 2>/dev/null | sed 's/.*"rtt_ms": *\([0-9]*\).*/\1/'
  done
}
stats() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
  printf "%d / %d (n=%d)", a[int((NR + 1) / 2)], a[NR], NR }'; }
tls=$(for _ in $(seq 5); do curl -sk -o /dev/null -w '%{time_appconnect}\n' --resolve "$SNI:$R1:127.0.0.1" "https://$SNI:$R1/" 2>/dev/null; done |
  sort -n | head -1 | awk '{ printf "%d", $1 * 1000 }')
ws=$(setup "$L_WS" | tee "$T/ws.txt" | stats)
wsp=$(setup "$L_WSP" | tee "$T/wsp.txt" | stats)
tcp=$(setup "$L_TCP" | tee "$T/tcp.txt" | stats)
ws_noearly=$(awk -v r="$RTT" '{ print $1 + r }' "$T/ws.txt" | stats)
cat <<REP
## Session set-up time, ws transport (bench/ws_setup.sh)

\`bench/ws_setup.sh $bdir $RTT $N\`, $(date -u '+%Y-%m-%d %H:%M UTC'); relay RTT ${RTT} ms
(TCP + TLS 1.3 to nginx through it, curl: ${tls} ms). Delayed round trips as the relay counts them
(it accepts TCP itself: the TCP handshake is not delayed).
Median / max of $N fresh clients, dial to session up (the client's \`session_up\` rtt_ms).

| path | round trips | set-up ms, median / max |
|---|---:|---:|
| tcp transport, direct to the server | 1 | $tcp |
| ws over TLS via nginx, early data (as built) | 2 | $ws |
| ws over TLS via nginx, without early data (measured + 1 RTT) | 3 | $ws_noearly |
| ws, plain HTTP (tls=0) direct to the server, early data | 1 | $wsp |
REP
