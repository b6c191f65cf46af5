#!/usr/bin/env bash
# bench/multi.sh: four clients at once. Four umbra clients (one session each)
# download at the same time through
#   one    one umbra server process (one event loop), and through
#   split  two umbra server processes on two ports (two loops, the ceiling a
#          server with a loop per core could reach; docs/internals/multicore.md)
# and the aggregate MB/s, the servers' CPU seconds and how many CPUs they used
# are reported side by side. Everything on 127.0.0.1.
#
#   bench/multi.sh [BUILD_DIR] [--quick] [--out FILE]
#
#   --quick    32 MiB per client, one run; default 256 MiB, best of 2
#   --out FILE default bench/RESULTS-multi.md (BUILD_DIR/RESULTS-multi-quick.md
#              with --quick)
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
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "multi.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
[ -d "$bdir" ] || [ ! -d "$SRC/$bdir" ] || bdir="$SRC/$bdir"
bdir=$(cd "$bdir" 2>/dev/null && pwd) || { echo "multi bench: no build dir"; exit 0; }
UMBRA=$bdir/umbra
[ -x "$UMBRA" ] || { echo "multi bench: no $UMBRA: skipped"; exit 0; }
if [ -z "$out" ]; then
  if [ "$quick" = 1 ]; then out="$bdir/RESULTS-multi-quick.md"; else out="$SRC/bench/RESULTS-multi.md"; fi
fi
if [ "$quick" = 1 ]; then MIB=32 REPS=1; else MIB=${MULTI_BENCH_MIB:-256} REPS=2; fi
NCLI=4
PY=/usr/bin/python3
log() { echo "multi: $*" >&2; }

T=$(mktemp -d /tmp/umbra-multi.XXXXXX)
chmod 711 "$T"
mkdir -p "$T/www" "$T/ng" "$T/logs"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bg() { # LOG CMD...
  local lg=$1
  shift
  "$@" >"$T/logs/$lg.log" 2>&1 &
  PIDS+=($!)
}
read -r PO PS1 PS2 PC1 PC2 PC3 PC4 < <("$PY" "$SRC/bench/peers_tool.py" ports 7)
PCS=("$PC1" "$PC2" "$PC3" "$PC4")

head -c $((MIB << 20)) /dev/urandom >"$T/www/big.bin"
chmod 755 "$T/www"
chmod 644 "$T/www/big.bin"
cat >"$T/ng/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $T/ng/nginx.pid;
error_log $T/logs/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $T/ng/b; proxy_temp_path $T/ng/p; fastcgi_temp_path $T/ng/f;
  uwsgi_temp_path $T/ng/u; scgi_temp_path $T/ng/s;
  server { listen 127.0.0.1:$PO; root $T/www; }
}
EOF
bg nginx /usr/sbin/nginx -p "$T/ng" -c "$T/ng/nginx.conf"
"$PY" "$SRC/bench/peers_tool.py" wait-port "$PO" 10 || { log "nginx did not start"; exit 0; }

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
declare -A RES

# run MODE: servers and clients up, REPS rounds of NCLI parallel downloads.
run() {
  local mode=$1 d=$T/$1 i k srv=() cli=() port link best=0 cpu="" r t0 t1 c0 c1 tot
  mkdir -p "$d"
  local nsrv=1
  [ "$mode" = split ] && nsrv=2
  for ((k = 0; k < nsrv; k++)); do
    port=$([ $k = 0 ] && echo "$PS1" || echo "$PS2")
    "$UMBRA" server init -c "$d/s$k.conf" --listen "127.0.0.1:$port" >"$T/logs/init.log" 2>&1 || { log "server init failed"; return; }
  done
  for ((i = 0; i < NCLI; i++)); do
    k=$((i % nsrv))
    link=$("$UMBRA" server add-client -c "$d/s$k.conf" "c$i" --no-qr 2>>"$T/logs/init.log" | grep -o 'umbra://[^ ]*' | head -1)
    echo "$link" >"$d/link$i"
  done
  for ((k = 0; k < nsrv; k++)); do
    bg "$mode-server$k" "$UMBRA" server -c "$d/s$k.conf" --allow 127.0.0.0/8
    srv+=("${PIDS[-1]}")
  done
  sleep 1
  for ((i = 0; i < NCLI; i++)); do
    bg "$mode-client$i" "$UMBRA" client --link "$(cat "$d/link$i")" --socks "127.0.0.1:${PCS[$i]}"
    cli+=("${PIDS[-1]}")
  done
  for ((i = 0; i < NCLI; i++)); do "$PY" "$SRC/bench/peers_tool.py" wait-port "${PCS[$i]}" 15 || { log "client $i did not start"; return; }; done
  for ((r = 0; r < REPS; r++)); do
    c0=0
    for k in "${srv[@]}"; do c0=$((c0 + $(ticks "$k"))); done
    t0=$(date +%s.%N)
    local cp=()
    for ((i = 0; i < NCLI; i++)); do
      curl -s -o /dev/null --max-time 120 --socks5-hostname "127.0.0.1:${PCS[$i]}" \
        -w '%{size_download}\n' "http://127.0.0.1:$PO/big.bin" >"$d/got$i" 2>>"$T/logs/curl.log" &
      cp+=($!)
    done
    wait "${cp[@]}"
    t1=$(date +%s.%N)
    c1=0
    for k in "${srv[@]}"; do c1=$((c1 + $(ticks "$k"))); done
    tot=0
    for ((i = 0; i < NCLI; i++)); do tot=$((tot + $(cat "$d/got$i" 2>/dev/null || echo 0))); done
    [ "$tot" = $((NCLI * (MIB << 20))) ] || log "$mode: short transfer ($tot bytes)"
    local v c
    v=$(awk -v b="$tot" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / 1e6 / (z - a) }')
    c=$(awk -v x="$((c1 - c0))" -v hz="$HZ" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.2f %.2f", x / hz, x / hz / (z - a) }')
    log "$mode run $((r + 1)): $v MB/s, server CPU s / CPUs busy: $c"
    if awk -v v="$v" -v b="$best" 'BEGIN { exit !(v > b) }'; then best=$v cpu=$c; fi
  done
  RES[$mode]="$best $cpu"
  for p in "${cli[@]}" "${srv[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
run one
run split

{
  echo "# Four clients at once: one server loop against two"
  echo
  echo "Generated by \`bench/multi.sh$([ "$quick" = 1 ] && echo ' --quick')\` on $(date -u '+%Y-%m-%d %H:%M UTC');"
  echo "$(nproc) CPUs, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo
  echo "$NCLI umbra clients (one session each) download $MIB MiB each at the same time from nginx"
  echo "(2 workers); best of $REPS. *one*: one server process, one event loop. *split*: two server"
  echo "processes on two ports, clients 1 and 3 on one, 2 and 4 on the other: the ceiling of a"
  echo "server with a loop per core (docs/internals/multicore.md)."
  echo
  echo "| | aggregate MB/s | server CPU s | server CPUs busy |"
  echo "|---|---:|---:|---:|"
  for m in one split; do
    read -r v c b <<<"${RES[$m]:-n/a}"
    echo "| $m | ${v:-n/a} | ${c:-} | ${b:-} |"
  done
} >"$T/report.md"
cat "$T/report.md"
mkdir -p "$(dirname "$out")"
cp "$T/report.md" "$out"
log "wrote $out"
