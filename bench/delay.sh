#!/usr/bin/env bash
# bench/delay.sh: a long fat path. Two network namespaces joined by
# bench/delaywire (a userspace wire: this kernel has no netem) with 25 ms of
# delay each way (50 ms RTT) and tbf at 200 Mbit/s on each end; one stream
# downloaded over it by curl: direct, through umbra (tcp transport), through
# shadowsocks-libev (chacha20-ietf-poly1305) and through v2ray VMess when
# installed. Each figure is compared with the direct one (the path) and with
# the nominal 200 Mbit/s.
#
#   bench/delay.sh [BUILD_DIR] [--quick] [--out FILE]
#
#   --quick    64 MiB, one run (a self-test of the harness)
#   --out FILE default bench/RESULTS-delay.md (BUILD_DIR/RESULTS-delay-quick.md
#              with --quick)
#
# Topology:  ns A: curl, umbra client, ss-local, v2ray client  10.77.0.1
#            ns B: nginx, umbra server, ss-server, v2ray server 10.77.0.2
# Needs root (namespaces, TUN, tc); otherwise it says so and exits 0.
# Figures only: it never fails on a number.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
bdir=build
quick=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a file}; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "delay.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
[ -d "$bdir" ] || [ ! -d "$SRC/$bdir" ] || bdir="$SRC/$bdir"
bdir=$(cd "$bdir" 2>/dev/null && pwd) || { echo "delay bench: no build dir"; exit 0; }
UMBRA=$bdir/umbra
WIRE=$bdir/bench/delaywire
if [ -z "$out" ]; then
  if [ "$quick" = 1 ]; then out="$bdir/RESULTS-delay-quick.md"; else out="$SRC/bench/RESULTS-delay.md"; fi
fi
log() { echo "delay: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root (namespaces, TUN, tc): skipped"; exit 0; }
for c in ip tc curl nginx; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || { log "needs $c: skipped"; exit 0; }
done
[ -x "$WIRE" ] || { log "no $WIRE (build the release first): skipped"; exit 0; }

RATE_MBIT=200
DELAY_MS=25 # each way
if [ "$quick" = 1 ]; then MIB=64 REPS=1; else MIB=${DELAY_BENCH_MIB:-256} REPS=2; fi
MAXT=$((MIB * 8 * 1048576 / (RATE_MBIT * 1000000) * 4 + 30)) # curl's bound, s

A=umdelay$$a
B=umdelay$$b
T=$(mktemp -d /tmp/umbra-delay.XXXXXX)
chmod 711 "$T"
mkdir -p "$T/www" "$T/ng" "$T/logs"
PIDS=()
wire_pid=""
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null; done
  for i in "${PIDS[@]}"; do wait "$i" 2>/dev/null; done
  [ -z "$wire_pid" ] || { kill "$wire_pid" 2>/dev/null; wait "$wire_pid" 2>/dev/null; }
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
NA() { ip netns exec "$A" "$@"; }
NB() { ip netns exec "$B" "$@"; }
bg() { # NS LOG CMD...: starts CMD in namespace NS, records its pid
  local ns=$1 lg=$2
  shift 2
  ip netns exec "$ns" "$@" >"$T/logs/$lg.log" 2>&1 &
  PIDS+=($!)
}
stop_last() { # ends the last N started processes
  local n=$1 i
  for ((i = 0; i < n; i++)); do
    local p=${PIDS[-1]}
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    unset 'PIDS[-1]'
  done
}
wait_port() { # NS HOST PORT
  local i
  for i in $(seq 100); do
    ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

ip netns add "$A" && ip netns add "$B" || { log "ip netns add failed: skipped"; exit 0; }
"$WIRE" "$A" "$B" "$DELAY_MS" 3600 >"$T/wire.out" 2>"$T/logs/wire.log" &
wire_pid=$!
for i in $(seq 50); do grep -q ready "$T/wire.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$T/wire.out" || { log "delaywire did not start: $(cat "$T/logs/wire.log")"; exit 0; }
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" addr add 10.77.0.1 peer 10.77.0.2 dev dwire
ip -n "$B" addr add 10.77.0.2 peer 10.77.0.1 dev dwire
for ns in "$A" "$B"; do
  ip -n "$ns" link set dwire mtu 1500 up
  # The rate: a token bucket on each end (its egress is the wire's ingress),
  # with about 40 ms of queue, as a router's.
  ip netns exec "$ns" tc qdisc add dev dwire root tbf rate "${RATE_MBIT}mbit" burst 64kb latency 40ms ||
    { log "tc tbf failed: skipped"; exit 0; }
done

head -c $((MIB << 20)) /dev/urandom >"$T/www/big.bin"
chmod 755 "$T/www"
chmod 644 "$T/www/big.bin"
PO=8080
cat >"$T/ng/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $T/ng/nginx.pid;
error_log $T/logs/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $T/ng/b; proxy_temp_path $T/ng/p; fastcgi_temp_path $T/ng/f;
  uwsgi_temp_path $T/ng/u; scgi_temp_path $T/ng/s;
  server { listen 10.77.0.2:$PO; root $T/www; }
}
EOF
bg "$B" nginx /usr/sbin/nginx -p "$T/ng" -c "$T/ng/nginx.conf"
wait_port "$B" 10.77.0.2 $PO || { log "nginx did not start"; exit 0; }
URL=http://10.77.0.2:$PO/big.bin
BYTES=$((MIB << 20))

declare -A RES NOTE
# xfer NAME [curl proxy args]: best MB/s of REPS downloads of big.bin.
xfer() {
  local name=$1 r best=0 line code got secs
  shift
  for ((r = 0; r < REPS; r++)); do
    line=$(NA curl -s -o /dev/null --max-time "$MAXT" "$@" -w '%{http_code} %{size_download} %{time_total}' "$URL" 2>>"$T/logs/curl.log")
    read -r code got secs <<<"$line"
    if [ "$code" != 200 ] || [ "${got:-0}" != "$BYTES" ]; then
      NOTE[$name]="run $((r + 1)): HTTP ${code:-none}, ${got:-0} of $BYTES bytes"
      continue
    fi
    best=$(awk -v a="$best" -v b="$got" -v t="$secs" 'BEGIN { v = b / 1e6 / t; printf "%.2f", (v > a ? v : a) }')
  done
  RES[$name]=$best
  log "$name: $best MB/s"
}

log "direct ($MIB MiB, best of $REPS)"
xfer direct

# umbra, tcp transport
if [ -x "$UMBRA" ]; then
  d=$T/umbra
  mkdir -p "$d"
  if "$UMBRA" server init -c "$d/s.conf" --listen 10.77.0.2:8443 >"$T/logs/umbra-init.log" 2>&1 &&
    link=$("$UMBRA" server add-client -c "$d/s.conf" bench --no-qr 2>>"$T/logs/umbra-init.log" | grep -o 'umbra://[^ ]*' | head -1) &&
    [ -n "$link" ]; then
    bg "$B" umbra-server "$UMBRA" server -c "$d/s.conf" --allow 10.77.0.2/32
    wait_port "$B" 10.77.0.2 8443
    bg "$A" umbra-client "$UMBRA" client --link "$link" --socks 127.0.0.1:1080
    if wait_port "$A" 127.0.0.1 1080; then
      log "umbra"
      xfer umbra --socks5-hostname 127.0.0.1:1080
    else
      NOTE[umbra]="the client did not start"
    fi
    stop_last 2
  else
    NOTE[umbra]="server init failed"
  fi
else
  NOTE[umbra]="no binary at $UMBRA"
fi

# shadowsocks-libev
if command -v ss-server >/dev/null && command -v ss-local >/dev/null; then
  pw=$(head -c 18 /dev/urandom | base64)
  bg "$B" ss-server ss-server -s 10.77.0.2 -p 8388 -k "$pw" -m chacha20-ietf-poly1305 --no-delay
  wait_port "$B" 10.77.0.2 8388
  bg "$A" ss-local ss-local -s 10.77.0.2 -p 8388 -b 127.0.0.1 -l 1081 -k "$pw" -m chacha20-ietf-poly1305 --no-delay
  if wait_port "$A" 127.0.0.1 1081; then
    log "shadowsocks-libev"
    xfer ss --socks5-hostname 127.0.0.1:1081
  fi
  stop_last 2
else
  NOTE[ss]="shadowsocks-libev not installed"
fi

# v2ray VMess (bench/v2ray_conf.py writes both configs)
if command -v v2ray >/dev/null; then
  uuid=$(cat /proc/sys/kernel/random/uuid)
  python3 "$SRC/bench/v2ray_conf.py" server 10.77.0.2 10086 "$uuid" >"$T/v2s.json"
  python3 "$SRC/bench/v2ray_conf.py" client 10.77.0.2 10086 "$uuid" 127.0.0.1 1082 >"$T/v2c.json"
  bg "$B" v2ray-server v2ray -config "$T/v2s.json"
  wait_port "$B" 10.77.0.2 10086
  bg "$A" v2ray-client v2ray -config "$T/v2c.json"
  if wait_port "$A" 127.0.0.1 1082; then
    log "v2ray"
    xfer v2ray --socks5-hostname 127.0.0.1:1082
  else
    NOTE[v2ray]="v2ray did not start: $(tail -1 "$T/logs/v2ray-client.log" | cut -c1-100)"
  fi
  stop_last 2
else
  NOTE[v2ray]="v2ray not installed"
fi

{
  echo "# Delayed path: one stream over 50 ms RTT, ${RATE_MBIT} Mbit/s"
  echo
  echo "Generated by \`bench/delay.sh$([ "$quick" = 1 ] && echo ' --quick')\` on $(date -u '+%Y-%m-%d %H:%M UTC');"
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), Linux $(uname -r),"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; umbra $("$UMBRA" version 2>/dev/null | head -1)."
  echo
  echo "Two network namespaces joined by \`bench/delaywire\` (a userspace TUN wire, ${DELAY_MS} ms each"
  echo "way) with \`tc tbf rate ${RATE_MBIT}mbit\` on both ends; curl downloads $MIB MiB from nginx"
  echo "across it, best of $REPS. \"of path\" compares with the direct download over the same"
  echo "wire, \"of nominal\" with ${RATE_MBIT} Mbit/s ($(awk -v r=$RATE_MBIT 'BEGIN { printf "%.1f", r / 8 }') MB/s, less TCP/IP headers)."
  echo
  echo "| | MB/s | Mbit/s | of path | of nominal |"
  echo "|---|---:|---:|---:|---:|"
  d=${RES[direct]:-0}
  for k in direct umbra ss v2ray; do
    v=${RES[$k]:-}
    label=$k
    [ $k = ss ] && label="shadowsocks-libev chacha20"
    [ $k = v2ray ] && label="v2ray VMess"
    if [ -z "$v" ] || [ "$v" = 0 ]; then
      echo "| $label | n/a | | | |"
      continue
    fi
    awk -v l="$label" -v v="$v" -v d="$d" -v r=$RATE_MBIT 'BEGIN {
      printf "| %s | %.1f | %.0f | %s | %.0f%% |\n", l, v, v * 8, (d > 0 ? sprintf("%.0f%%", 100 * v / d) : "n/a"), 100 * v * 8 / r }'
  done
  for k in "${!NOTE[@]}"; do echo; echo "- $k: ${NOTE[$k]}"; done
  echo
  echo "Wire: $(tail -1 "$T/logs/wire.log" 2>/dev/null)"
} >"$T/report.md"
kill "$wire_pid" 2>/dev/null
wait "$wire_pid" 2>/dev/null
wire_pid=""
sed -i "s|^Wire: .*|Wire: $(tail -1 "$T/logs/wire.log" 2>/dev/null | sed 's/|/\\|/g')|" "$T/report.md"
cat "$T/report.md"
mkdir -p "$(dirname "$out")"
cp "$T/report.md" "$out"
log "wrote $out"
