#!/usr/bin/env bash
# bench/cpu.sh: CPU seconds per GiB (client + server, utime + stime from
# /proc) and MB/s of bulk transfers through umbra (tcp transport), beside
# shadowsocks-libev (chacha20-ietf-poly1305) and microsocks, in one run,
# everything on 127.0.0.1. The figure for the commit messages of CPU work:
# CPU per GiB is robust under the load of other work on the machine, MB/s
# is not.
#
#   bench/cpu.sh [BUILD_DIR] [--mib N] [--reps N] [--only LIST] [--cases LIST]
#                [--prof perf|strace] [--prof-case CASE]
#
#   --mib N       bytes per case (1 stream: one file of N MiB; 8 streams: 8
#                 files of N/8 MiB); default 512
#   --reps N      runs per case; the median is printed (default 3)
#   --only L      systems, of umbra,ss,microsocks (default all three)
#   --cases L     of dl1,dl8,ul1,ul8 (default all four)
#   --prof perf   during one extra run of --prof-case (default dl1) per
#                 system, `perf record -g` on the client and on the server;
#                 reports in BUILD_DIR/cpu-prof/SYSTEM-CASE-{client,server}.txt
#   --prof strace the same with `strace -c -f` (syscall counts; STRACE_OPTS
#                 replaces -c, e.g. "-e trace=read,write -e signal=none" for a log)
#   --umbra NAME=BINARY  measure this umbra build too, as system NAME (may be
#                 repeated: before/after builds side by side in one run; the
#                 default is umbra=BUILD_DIR/umbra)
#   --split       also the client's and the server's CPU s/GiB apart (medians)
#
# Topology:
#   curl ──► SOCKS5 client side ──► server side ──► nginx (GET)      127.0.0.1
#            umbra client            umbra server    sink (upload: reads every byte)
#            ss-local                ss-server
#            microsocks ───────────────────────►
# Figures only: it never fails on a number.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
TOOL="$SRC/bench/peers_tool.py"
UMBRAS=()
bdir=build mib=512 reps=3 only="umbra,ss,microsocks" cases="dl1,dl8,ul1,ul8" prof="" pcase=dl1 split=0
while [ $# -gt 0 ]; do
  case "$1" in
    --mib) mib=$2; shift ;;
    --reps) reps=$2; shift ;;
    --only) only=$2; shift ;;
    --cases) cases=$2; shift ;;
    --prof) prof=$2; shift ;;
    --prof-case) pcase=$2; shift ;;
    --umbra) UMBRAS+=("$2"); shift ;;
    --split) split=1 ;;
    -h|--help) sed -n "2,27p" "$0"; exit 0 ;;
    -*) echo "cpu.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
[ -d "$bdir" ] || bdir="$SRC/$bdir"
bdir=$(cd "$bdir" && pwd)
UMBRA="$bdir/umbra"
CLK=$(getconf CLK_TCK)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

. "$SRC/bench/lib.sh"
bench_tmp cpu
cleanup() {
  stop_all
  rm -rf "$bdir/cpu-logs"
  cp -r "$T/logs" "$bdir/cpu-logs" 2>/dev/null # the logs of the last run stay
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_ORIGIN P_SINK P_SS_S P_SS_C P_MS < <("$PY" "$TOOL" ports 5)
head -c $((mib << 20)) /dev/urandom >"$T/www/big.bin"
head -c $(((mib / 8) << 20)) "$T/www/big.bin" >"$T/www/part.bin"
chmod 755 "$T/www"
chmod 644 "$T/www/"*
start_bg sink "$PY" "$TOOL" sink "$P_SINK"
bench_origin "$P_ORIGIN" || { echo "nginx did not start" >&2; exit 1; }
"$PY" "$TOOL" wait-port "$P_SINK" 10 || { echo "sink did not start" >&2; exit 1; }

ticks() { # PID...: utime + stime of the processes and their children
  local p s=0 f
  for p in "$@"; do
    read -r -a f <"/proc/$p/stat"
    # fields after the ")" (comm may hold spaces; ours do not): 14 utime 15 stime
    s=$((s + f[13] + f[14] + f[15] + f[16]))
  done
  echo "$s"
}
now() { date +%s.%N; }

# xfer CASE PROXY: one transfer (curl), prints "MB/s bytes"
xfer() {
  local c=$1 proxy=$2 n=1 file=big.bin bytes=$((mib << 20)) i t0 t1 total=0 got
  case $c in dl8 | ul8) n=8 file=part.bin bytes=$(((mib / 8) << 20)) ;; esac
  local args=(-s -o /dev/null --max-time 300 --socks5-hostname "127.0.0.1:$proxy")
  case $c in
    dl*) args+=(-w '%{size_download}\n' "http://127.0.0.1:$P_ORIGIN/$file") ;;
    ul*) args+=(-H 'Expect:' -T "$T/www/$file" -w '%header{x-received}\n' "http://127.0.0.1:$P_SINK/up") ;;
  esac
  t0=$(now)
  for ((i = 0; i < n; i++)); do curl "${args[@]}" >"$T/curl.$i" 2>>"$T/logs/curl.log" & done
  wait
  t1=$(now)
  for ((i = 0; i < n; i++)); do
    read -r got <"$T/curl.$i"
    total=$((total + ${got:-0}))
  done
  awk -v b="$total" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f %d\n", b / 1e6 / (t1 - t0), b }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "-") }'; }

profile() { # SYS CASE PROXY CPID SPID
  local sys=$1 c=$2 proxy=$3 cp=$4 sp=$5 out="$bdir/cpu-prof" pp=() p role
  mkdir -p "$out"
  for p in $(printf '%s\n' "$cp" "$sp" | sort -u); do
    role=server
    [ "$p" != "$cp" ] || role=client
    [ "$cp" != "$sp" ] || role=both
    if [ "$prof" = perf ]; then
      perf record ${PERF_CG:--g} -o "$T/$role.data" -p "$p" >/dev/null 2>&1 &
    else
      strace ${STRACE_OPTS:--c} -f -o "$out/$sys-$c-$role.txt" -p "$p" 2>/dev/null &
    fi
    pp+=($!)
  done
  sleep 0.5
  (xfer "$c" "$proxy" >/dev/null) # a subshell: its wait is for curl only
  # SIGINT is ignored by background jobs of a script: TERM ends both tools cleanly
  for p in "${pp[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pp[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$prof" = perf ]; then
    for role in client server both; do
      [ -f "$T/$role.data" ] || continue
      mv "$T/$role.data" "$out/$sys-$c-$role.data"
      perf report -i "$out/$sys-$c-$role.data" --no-children --stdio --sort dso \
        >"$out/$sys-$c-$role-dso.txt" 2>/dev/null
      perf report -i "$out/$sys-$c-$role.data" --no-children --percent-limit 0.3 --stdio -g none \
        --sort dso,sym >"$out/$sys-$c-$role.txt" 2>/dev/null
    done
  fi
}

# The systems: name, SOCKS5 port, client pid, server pid (same for one process).
SYS=()
declare -A S_PORT=() S_CP=() S_SP=()
add_sys() { SYS+=("$1"); S_PORT[$1]=$2; S_CP[$1]=$3; S_SP[$1]=$4; }

start_umbra() { # NAME BINARY
  local name=$1 bin=$2 d="$T/$1" link ps pc ph
  read -r ps pc ph < <("$PY" "$TOOL" ports 3)
  mkdir -p "$d"
  "$bin" server init -c "$d/server.conf" --listen "127.0.0.1:$ps" >"$T/logs/$name-init.log" 2>&1
  link=$("$bin" server add-client -c "$d/server.conf" bench --no-qr 2>>"$T/logs/$name-init.log" | grep -o 'umbra://[^ ]*' | head -1)
  start_bg "$name-server" "$bin" server -c "$d/server.conf" --allow 127.0.0.0/8
  sleep 0.5
  start_bg "$name-client" "$bin" client --link "$link" --socks "127.0.0.1:$pc" --http "127.0.0.1:$ph"
  "$PY" "$TOOL" wait-port "$pc" 15 && add_sys "$name" "$pc" "${PID[$name-client]}" "${PID[$name-server]}"
}

want() { [[ ",$only," == *",$1,"* ]]; }

if want umbra; then
  [ ${#UMBRAS[@]} -gt 0 ] || UMBRAS=("umbra=$UMBRA")
  for u in "${UMBRAS[@]}"; do start_umbra "${u%%=*}" "${u#*=}"; done
fi
if want ss; then
  pass=$(head -c 18 /dev/urandom | base64)
  start_bg ss-server ss-server -s 127.0.0.1 -p "$P_SS_S" -k "$pass" -m chacha20-ietf-poly1305 -t 300 --no-delay
  start_bg ss-local ss-local -s 127.0.0.1 -p "$P_SS_S" -b 127.0.0.1 -l "$P_SS_C" -k "$pass" -m chacha20-ietf-poly1305 -t 300 --no-delay
  "$PY" "$TOOL" wait-port "$P_SS_C" 15 && "$PY" "$TOOL" wait-port "$P_SS_S" 15 &&
    add_sys ss "$P_SS_C" "${PID[ss-local]}" "${PID[ss-server]}"
fi
if want microsocks; then
  start_bg microsocks microsocks -i 127.0.0.1 -p "$P_MS"
  "$PY" "$TOOL" wait-port "$P_MS" 15 && add_sys microsocks "$P_MS" "${PID[microsocks]}" "${PID[microsocks]}"
fi
sleep 0.5

# Runs interleaved (rep, then case, then system), so a load that comes and
# goes touches every system alike; the median of the reps is printed.
declare -A MB=() CS=() CSC=() CSS=()
for ((r = 0; r < reps; r++)); do
  for c in ${cases//,/ }; do
    for sys in "${SYS[@]}"; do
      pids=$(printf '%s\n' "${S_CP[$sys]}" "${S_SP[$sys]}" | sort -u)
      c0=$(ticks $pids)
      cc0=$(ticks "${S_CP[$sys]}")
      v=$(xfer "$c" "${S_PORT[$sys]}")
      c1=$(ticks $pids)
      cc1=$(ticks "${S_CP[$sys]}")
      read -r m b <<<"$v"
      MB[$sys.$c]+="$m "
      CS[$sys.$c]+="$(awk -v t=$((c1 - c0)) -v k="$CLK" -v b="$b" 'BEGIN { printf "%.3f", (b > 0 ? t / k / (b / 1073741824) : 0) }') "
      CSC[$sys.$c]+="$(awk -v t=$((cc1 - cc0)) -v k="$CLK" -v b="$b" 'BEGIN { printf "%.3f", (b > 0 ? t / k / (b / 1073741824) : 0) }') "
      CSS[$sys.$c]+="$(awk -v t=$((c1 - c0 - cc1 + cc0)) -v k="$CLK" -v b="$b" 'BEGIN { printf "%.3f", (b > 0 ? t / k / (b / 1073741824) : 0) }') "
    done
  done
done
echo "# bench/cpu.sh: $mib MiB per case, median of $reps; load before: $LOAD0; after: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in ${cases//,/ }; do
  for sys in "${SYS[@]}"; do
    printf '%-11s %-4s MB/s %6s  CPU s/GiB %6s   (runs: MB/s %s| s/GiB %s)\n' "$sys" "$c" \
      "$(tr ' ' '\n' <<<"${MB[$sys.$c]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${CS[$sys.$c]}" | grep . | median)" "${MB[$sys.$c]}" "${CS[$sys.$c]}"
    [ "$split" = 1 ] && [ "${S_CP[$sys]}" != "${S_SP[$sys]}" ] &&
      printf '%-11s %-4s      client CPU s/GiB %6s  server %6s\n' "$sys" "$c" \
        "$(tr ' ' '\n' <<<"${CSC[$sys.$c]}" | grep . | median)" \
        "$(tr ' ' '\n' <<<"${CSS[$sys.$c]}" | grep . | median)"
  done
done
if [ -n "$prof" ]; then
  for sys in "${SYS[@]}"; do profile "$sys" "$pcase" "${S_PORT[$sys]}" "${S_CP[$sys]}" "${S_SP[$sys]}"; done
fi
