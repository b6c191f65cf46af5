#!/usr/bin/env bash
# bench/latency.sh: connect + small GET latency (a fresh SOCKS5 connection,
# CONNECT, GET /tiny.txt, response read: bench/peers_tool.py latency) through
# umbra with fast open on and off, shadowsocks-libev and direct, in one run,
# the systems interleaved in rounds. Also the peak RSS of umbra's client and
# server during a 1 GiB download. Everything on 127.0.0.1; figures only.
#
#   bench/latency.sh [BUILD_DIR] [--quick] [--out FILE] [--umbra NAME=BINARY]... [--delay-ms D]
#
#   BUILD_DIR  holds the umbra binary (default: build)
#   --umbra    another umbra binary measured in the same run (fast open on)
#   --quick    1 round of 100 requests, 256 MiB for RSS
#   --out FILE the Markdown (default BUILD_DIR/RESULTS-latency.md)
#   --delay-ms D  put bench/delay_fwd.py (D ms each way) between each proxy's
#              two halves (umbra client and server, ss-local and ss-server):
#              a long path; fewer requests, no RSS figure
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
TOOL="$SRC/bench/peers_tool.py"
bdir=build
quick=0
out=""
extra=()
delay=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --umbra) extra+=("${2:?--umbra needs NAME=BINARY}"); shift ;;
    --delay-ms) delay=${2:?--delay-ms needs a number}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "latency.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
[ -d "$bdir" ] || [ ! -d "$SRC/$bdir" ] || bdir="$SRC/$bdir"
UMBRA="$(cd "$bdir" 2>/dev/null && pwd)/umbra"
[ -n "$out" ] || out="$bdir/RESULTS-latency.md"
if [ "$quick" = 1 ]; then N=100 ROUNDS=1 BIG_MIB=256; else N=200 ROUNDS=3 BIG_MIB=1024; fi
[ "$delay" = 0 ] || { N=20; ROUNDS=2; BIG_MIB=1; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
unset http_proxy https_proxy all_proxy no_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY
log() { echo "latency: $*" >&2; }

. "$SRC/bench/lib.sh"
bench_tmp latency
cleanup() {
  stop_all
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_ORIGIN P_SS_S P_SS_C < <("$PY" "$TOOL" ports 3)
printf 'umbra bench: a tiny page\n' >"$T/www/tiny.txt"
head -c $((BIG_MIB << 20)) /dev/zero >"$T/www/big.bin"
chmod 755 "$T/www"
chmod 644 "$T/www/"*
bench_origin "$P_ORIGIN" || { log "nginx did not start"; exit 1; }

kv() { local k=$1 w; for w in $2; do [ "${w%%=*}" = "$k" ] && { echo "${w#*=}"; return; }; done; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); else print "n/a" }'; }

# via PORT NAME: the port a proxy's first half dials to reach PORT (a delay
# forwarder in front of it with --delay-ms)
via() {
  if [ "$delay" = 0 ]; then echo "$1"; return; fi
  local f
  f=$("$PY" "$TOOL" ports 1)
  start_bg "fwd-$2" "$PY" "$SRC/bench/delay_fwd.py" "$f" "$1" "$delay"
  "$PY" "$TOOL" wait-port "$f" 10 >/dev/null 2>&1
  echo "$f"
}

SYSTEMS=(direct)
declare -A PORT=([direct]=direct) CPID=() SPID=()
up_umbra() { # NAME BINARY FASTOPEN SERVER_PORT SOCKS_PORT HTTP_PORT
  local name=$1 bin=$2 d="$T/$1" link
  mkdir -p "$d"
  [ -x "$bin" ] || { log "$name: no binary at $bin"; return; }
  "$bin" server init -c "$d/server.conf" --listen "127.0.0.1:$4" >"$T/logs/$name-init.log" 2>&1 || return
  link=$("$bin" server add-client -c "$d/server.conf" bench --no-qr 2>>"$T/logs/$name-init.log" | grep -o 'umbra://[^ ]*' | head -1)
  start_bg "$name-server" "$bin" server -c "$d/server.conf" --allow 127.0.0.0/8
  sleep 0.5
  local f
  f=$(via "$4" "$name")
  link=${link/@127.0.0.1:$4/@127.0.0.1:$f}
  local fo=()
  [ "$3" = keep ] || fo=(--fast-open "$3")
  start_bg "$name-client" "$bin" client --link "$link" --socks "127.0.0.1:$5" --http "127.0.0.1:$6" "${fo[@]}"
  if "$PY" "$TOOL" wait-port "$5" 15; then
    SYSTEMS+=("$name")
    PORT[$name]=$5
    CPID[$name]=${PID[$name-client]}
    SPID[$name]=${PID[$name-server]}
  else
    log "$name did not come up: $(tail -1 "$T/logs/$name-client.log")"
  fi
}
read -r -a PP < <("$PY" "$TOOL" ports $((3 * (${#extra[@]} + 2))))
up_umbra umbra-fo-on "$UMBRA" on "${PP[0]}" "${PP[1]}" "${PP[2]}"
up_umbra umbra-fo-off "$UMBRA" off "${PP[3]}" "${PP[4]}" "${PP[5]}"
k=6
for e in "${extra[@]}"; do
  up_umbra "${e%%=*}" "${e#*=}" keep "${PP[$k]}" "${PP[$((k + 1))]}" "${PP[$((k + 2))]}"
  k=$((k + 3))
done
if command -v ss-server >/dev/null && command -v ss-local >/dev/null; then
  pass=$(head -c 18 /dev/urandom | base64)
  start_bg ss-server ss-server -s 127.0.0.1 -p "$P_SS_S" -k "$pass" -m chacha20-ietf-poly1305 -t 300 --no-delay
  "$PY" "$TOOL" wait-port "$P_SS_S" 10 >/dev/null 2>&1
  start_bg ss-local ss-local -s 127.0.0.1 -p "$(via "$P_SS_S" ss)" -b 127.0.0.1 -l "$P_SS_C" -k "$pass" \
    -m chacha20-ietf-poly1305 -t 300 --no-delay
  if "$PY" "$TOOL" wait-port "$P_SS_C" 15; then
    SYSTEMS+=(ss-libev)
    PORT[ss-libev]=$P_SS_C
    CPID[ss-libev]=${PID[ss-local]}
    SPID[ss-libev]=${PID[ss-server]}
  fi
fi

for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${SYSTEMS[@]}"; do
    log "[$s] round $r: $N requests"
    line=$("$PY" "$TOOL" latency "${PORT[$s]}" "$P_ORIGIN" "$N" 120 2>>"$T/logs/latency.log")
    echo "$(kv p50_ms "$line")" >>"$T/$s.p50"
    echo "$(kv p99_ms "$line")" >>"$T/$s.p99"
  done
done

# Peak RSS during a download (sampled every 50 ms), client and server.
peak() { # SYS
  local s=$1 c=${CPID[$1]:-} v=${SPID[$1]:-} pc=0 pv=0 x y
  [ -n "$c" ] || return
  curl -s -o /dev/null --max-time 120 --socks5-hostname "127.0.0.1:${PORT[$s]}" \
    "http://127.0.0.1:$P_ORIGIN/big.bin" &
  local b=$!
  while kill -0 "$b" 2>/dev/null; do
    x=$(awk '/^VmHWM:/ { print $2 }' "/proc/$c/status" 2>/dev/null)
    y=$(awk '/^VmHWM:/ { print $2 }' "/proc/$v/status" 2>/dev/null)
    [ "${x:-0}" -le "$pc" ] || pc=$x
    [ "${y:-0}" -le "$pv" ] || pv=$y
    sleep 0.05
  done
  wait "$b"
  echo "$(awk -v a="$pc" 'BEGIN { printf "%.1f", a / 1024 }') / $(awk -v a="$pv" 'BEGIN { printf "%.1f", a / 1024 }')"
}

{
  echo "# Connect + small GET latency, fast open on and off (bench/latency.sh)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$ROUNDS rounds of $N sequential requests, systems interleaved; median of the rounds' p50 and p99."
  [ "$delay" = 0 ] || echo "Each proxy's two halves talk through bench/delay_fwd.py: ${delay} ms each way ($((2 * delay)) ms round trip); direct has no delay."
  echo "Peak RSS: VmHWM of client / server after a ${BIG_MIB} MiB download through it (the whole run's peak)."
  echo
  echo "| system | p50 ms | p50 - direct's us | p99 ms | peak RSS MiB client / server |"
  echo "|---|---:|---:|---:|---:|"
  d50=$(median <"$T/direct.p50")
  for s in "${SYSTEMS[@]}"; do
    p50=$(median <"$T/$s.p50")
    add=$(awk -v a="$p50" -v d="$d50" 'BEGIN { printf "%+.0f", (a - d) * 1000 }')
    rss=n/a
    [ "$s" = direct ] || [ "$delay" != 0 ] || rss=$(peak "$s")
    echo "| $s | $p50 | $add | $(median <"$T/$s.p99") | $rss |"
  done
} | tee "$out"
