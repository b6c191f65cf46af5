#!/usr/bin/env bash
# bench/peers.sh: umbra (transports tcp and tls, tls with and without the jitter
# timing profile) side by side with shadowsocks-libev, ssh -D, microsocks and a
# direct connection, in one run, everything on 127.0.0.1.
#
#   bench/peers.sh [BUILD_DIR] [--quick] [--out FILE] [--tsv FILE] [--only LIST]
#
#   BUILD_DIR  holds the umbra binary (default: build); make bench passes it
#   --quick    small sizes and counts (a minute or two): a self-test of the harness
#   --out FILE where the Markdown goes besides stdout; default
#              bench/RESULTS-peers.md, or BUILD_DIR/RESULTS-peers-quick.md with
#              --quick (a quick run never overwrites the real results unless
#              told to); make bench includes it in bench/RESULTS.md
#   --tsv FILE also keep the raw results ("system<TAB>metric<TAB>value" lines)
#              in FILE (bench/report.py reads them for make bench's summary)
#   --only L   comma-separated subset of (default: all of them):
#              direct,umbra,umbra-tls,umbra-jitter,umbra-rot1m,umbra-rot16k,
#              ss,ss-aes,ssh,microsocks,v2ray,umbra-ws
#              (direct is always measured: the other columns are compared to it;
#              umbra is the tcp transport, umbra-tls the tls transport with a
#              local nginx as its cover site, umbra-jitter the same with
#              timing = jitter at both ends, umbra-rot1m / umbra-rot16k the tcp
#              transport with the session moved to a new connection every
#              1 MiB / every 16 KiB (umbra client --rotate 1m / 16k); umbra-ws
#              the ws transport through a local nginx that terminates TLS
#              (docs/nginx-ws.conf, the cover's certificate); ss is
#              shadowsocks-libev with chacha20-ietf-poly1305, ss-aes the same
#              with aes-256-gcm)
#
# Topology (one system at a time; the others are stopped while it is measured):
#
#   curl / peers_tool.py ──► SOCKS5 client side ──► server side ──► nginx   127.0.0.1:ORIGIN
#                            umbra client            umbra server    (GET)
#                            (tcp, tls, tls+jitter)  (tls: cover ──► nginx TLS 127.0.0.1:COVER)
#                            ss-local                ss-server
#                            ssh -N -D               sshd (temp config, throwaway keys)
#                            microsocks ─────────────────────────►
#                            (direct: no proxy) ─────────────────►
#                                                                ──► sink    127.0.0.1:SINK
#                                                                    (upload: reads every byte)
#
# Metrics per system: download/upload MB/s with 1 and 8 streams (curl), connect +
# small GET latency p50/p99 and requests/s with 64 concurrent clients
# (bench/peers_tool.py, a fresh SOCKS5 connection per request), RSS of client and
# server idle and with N connections held open, CPU seconds (utime+stime from
# /proc of client and server, children included) per GiB moved and per request.
# Bulk figures are the best of 3 runs (1 with --quick); before each system the
# script waits (bounded) for the CPUs to be idle and records how idle they were.
# The logs of the last run are left in BUILD_DIR/peers-logs/.
# Figures only: this script never fails on a number. It exits non-zero only
# when the harness itself cannot run (no origin, no python).
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
TOOL="$SRC/bench/peers_tool.py"
REPORT="$SRC/bench/peers_report.py"
CMDLINE="bench/peers.sh $*"

bdir=build
quick=0
out=""
only="direct,umbra,umbra-tls,umbra-jitter,umbra-rot1m,umbra-rot16k,ss,ss-aes,ssh,microsocks,v2ray,umbra-ws"
tsv=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --tsv) tsv=${2:?--tsv needs a file}; shift ;;
    --only) only="direct,${2:?--only needs a list}"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    -*) echo "peers.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
# The build dir may be given relative to the caller or to the source tree.
[ -d "$bdir" ] || [ ! -d "$SRC/$bdir" ] || bdir="$SRC/$bdir"
UMBRA="$(cd "$bdir" 2>/dev/null && pwd)/umbra"
if [ -z "$out" ]; then
  if [ "$quick" = 1 ]; then out="$bdir/RESULTS-peers-quick.md"; else out="$SRC/bench/RESULTS-peers.md"; fi
fi

# ---------------------------------------------------------------- sizes
if [ "$quick" = 1 ]; then
  BIG_MIB=128       # 1-stream transfers
  LAT_N=100         # sequential latency samples
  RPS_N=1000        # requests in the 64-client run
  HOLD_N=300        # connections held open for the RSS figure
  CURL_MAX=60       # seconds, per transfer
  REPS=1            # runs of each bulk transfer (the best one counts)
  QUIET_SECS=10     # at most this long waiting for an idle machine per system
  LIMIT=900         # seconds, the whole run
else
  BIG_MIB=1024
  LAT_N=500
  RPS_N=5000
  HOLD_N=1000
  CURL_MAX=90
  REPS=3
  QUIET_SECS=60
  LIMIT=1800
fi
PART_MIB=$((BIG_MIB / 8)) # each of the 8 parallel streams
IDLE_LAT_N=$((LAT_N / 5)) # requests each after IDLE_GAP_MS of silence (the
IDLE_GAP_MS=100           # timing profile delays what starts a burst)
RPS_CONC=64
RPS_SECS=30
LAT_SECS=30
HOLD_SECS=90

unset http_proxy https_proxy all_proxy no_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY

log() { echo "peers: $*" >&2; }

[ -x "$PY" ] || { log "needs $PY (Debian's python3)"; exit 1; }
command -v curl >/dev/null || { log "needs curl"; exit 1; }

# The peers come from Debian; install them when missing, as make's targets do.
if ! "$SRC/scripts/deps.sh" --bench --check >/dev/null 2>&1; then
  "$SRC/scripts/deps.sh" --bench || log "could not install every peer; missing ones are reported n/a"
fi

# 1000 held connections need descriptors in the proxies and the load client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((HOLD_N * 2 + 256)) ] ||
  log "ulimit -n is $(ulimit -n): the $HOLD_N-connection figure may fail"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg) # other work on the machine shows here
T=$(mktemp -d /tmp/umbra-bench.XXXXXX)
chmod 711 "$T" # nginx workers (user nobody when run as root) must reach www/
mkdir -p "$T/logs" "$T/www"
RES="$T/results.tsv"
: >"$RES"

# ---------------------------------------------------------------- processes
# Every process this script starts is recorded here and ended by its pid.
# start_bg NAME CMD..., stop NAME, stop_all: bench/lib.sh
. "$SRC/bench/lib.sh"
made_run_sshd=0
watchdog=""

cleanup() {
  local i
  trap - EXIT INT TERM
  stop_all
  [ -z "$watchdog" ] || { kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null; }
  [ "$made_run_sshd" = 0 ] || rmdir /run/sshd 2>/dev/null
  # The logs of the last run stay in the build dir (small; useful when a
  # system failed); the data files and configs go.
  rm -rf "$bdir/peers-logs"
  cp -r "$T/logs" "$bdir/peers-logs" 2>/dev/null
  if [ "${UMBRA_BENCH_KEEP:-0}" = 1 ]; then
    rm -f "$T/www/big.bin" "$T/www/part.bin"
    log "kept $T (logs)"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "stopped (time limit of ${LIMIT}s or SIGTERM)"; exit 124' TERM
# Bound on the whole run: the watchdog ends this script (and its trap cleans up).
# Its sleep is ended with it (the trap), so nothing outlives the run.
(
  sleep "$LIMIT" &
  s=$!
  trap 'kill $s 2>/dev/null; exit 0' TERM
  wait $s && kill -TERM $$
) 2>/dev/null &
watchdog=$!

# ---------------------------------------------------------------- helpers
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; } # SYSTEM METRIC VALUE
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
now() { date +%s.%N; }
pstat() { "$PY" "$TOOL" procstat "$@"; } # -> "rss_kb cpu_ticks clk_tck hwm_kb"
rss_mib() { # PID...: summed VmRSS of the process trees, MiB
  local r
  read -r r _ _ < <(pstat "$@")
  calc "$r / 1024"
}
ticks() { local t; read -r _ t _ < <(pstat "$@"); echo "$t"; }
hwm_mib() { # PID...: summed VmHWM (peak RSS) of the process trees, MiB
  local h
  read -r _ _ _ h < <(pstat "$@")
  calc "${h:-0} / 1024"
}
hwm_reset() { # PID...: each process's VmHWM back to its RSS (clear_refs 5)
  local p
  for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null; done
}
CLK=$(getconf CLK_TCK)

read -r P_ORIGIN P_SINK P_UMBRA_S P_UMBRA_C P_UMBRA_H P_SS_S P_SS_C P_SSHD P_SSH_C P_MS \
  P_COVER P_TLS_S P_TLS_C P_TLS_H P_JIT_S P_JIT_C P_JIT_H \
  P_R1_S P_R1_C P_R1_H P_R16_S P_R16_C P_R16_H P_V2_S P_V2_C \
  P_FRONT P_WS_S P_WS_C P_WS_H P_SSA_S P_SSA_C < <("$PY" "$TOOL" ports 31)

# ---------------------------------------------------------------- origin
log "generating ${BIG_MIB} MiB of random data in $T/www"
head -c $((BIG_MIB << 20)) /dev/urandom >"$T/www/big.bin"
head -c $((PART_MIB << 20)) "$T/www/big.bin" >"$T/www/part.bin"
printf 'umbra bench: a tiny page\n' >"$T/www/tiny.txt"
chmod 755 "$T/www"
chmod 644 "$T/www/"*
BIG_BYTES=$((BIG_MIB << 20))
PART_BYTES=$((PART_MIB << 20))

mkdir -p "$T/nginx"
# The tls transport's cover site: a TLS 1.3 server with a throwaway certificate
# for the bench's SNI (Debian's nginx 1.22 leaves TLS 1.3 off unless told).
COVER_SNI=cover.umbra-bench.test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=$COVER_SNI" -addext "subjectAltName=DNS:$COVER_SNI" \
  -keyout "$T/nginx/cover.key" -out "$T/nginx/cover.crt" >"$T/logs/openssl.log" 2>&1 ||
  log "openssl req failed: the tls columns will be n/a"
chmod 644 "$T/nginx/cover.key" "$T/nginx/cover.crt"
# The ws transport's front: docs/nginx-ws.conf with the bench's values.
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$P_FRONT ssl;|" -e "s|front.example.com;|$COVER_SNI;|" \
  -e "s|/etc/ssl/front.example.com.pem|$T/nginx/cover.crt|" \
  -e "s|/etc/ssl/front.example.com.key|$T/nginx/cover.key|" -e "s|/var/www/html|$T/www|" \
  -e "s|location = /api/v2/stream|location = /bench-ws|" -e "s|127.0.0.1:8080;|127.0.0.1:$P_WS_S;|" \
  "$SRC/docs/nginx-ws.conf" >"$T/nginx/ws-front.conf"
# The origin (bench/lib.sh), the cover and the ws front in one nginx.
bench_origin "$P_ORIGIN" "  server {
    listen 127.0.0.1:$P_COVER ssl http2;
    server_name $COVER_SNI;
    ssl_certificate $T/nginx/cover.crt;
    ssl_certificate_key $T/nginx/cover.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $T/www;
  }
  include $T/nginx/ws-front.conf;" || { log "nginx did not start:"; cat "$T/logs/nginx"*.log >&2; exit 1; }
start_bg sink "$PY" "$TOOL" sink "$P_SINK"
"$PY" "$TOOL" wait-port "$P_SINK" 10 || { log "upload sink did not start"; exit 1; }
"$PY" "$TOOL" wait-port "$P_COVER" 10 || log "the TLS cover did not start: the tls columns will be n/a"

# ---------------------------------------------------------------- measurement
PROXY="" # "direct" or the SOCKS5 port of the system being measured

# xfer down|up N: N parallel transfers (1: big.bin; else part.bin each), the
# uploads to the sink, which reports the bytes it read. Prints MB/s, or
# "fail: ..." when a transfer is refused, short, or stalls (below 100 kB/s for
# 15 s) or passes CURL_MAX seconds.
xfer() {
  local dir=$1 n=$2 file=big.bin bytes=$BIG_BYTES ok=200 i t0 t1 total=0 bad="" code secs got rc
  [ "$n" = 1 ] || { file=part.bin; bytes=$PART_BYTES; }
  local args=(-s -S -o /dev/null --max-time "$CURL_MAX" --speed-limit 100000 --speed-time 15)
  [ "$PROXY" = direct ] || args+=(--socks5-hostname "127.0.0.1:$PROXY")
  if [ "$dir" = down ]; then
    args+=(-w '%{http_code} %{size_download} %{time_total} %{size_download}\n'
      "http://127.0.0.1:$P_ORIGIN/$file")
  else
    ok=204
    args+=(-H 'Expect:' -T "$T/www/$file"
      -w '%{http_code} %{size_upload} %{time_total} %header{x-received}\n'
      "http://127.0.0.1:$P_SINK/upload")
  fi
  t0=$(now)
  for ((i = 0; i < n; i++)); do
    (
      curl "${args[@]}" >"$T/curl.$i" 2>>"$T/logs/curl.log"
      echo $? >"$T/curl.$i.rc"
    ) &
  done
  wait # this runs in $(...): its only children are these transfers
  t1=$(now)
  for ((i = 0; i < n; i++)); do
    code=000 secs=0 got=0
    read -r code _ secs got <"$T/curl.$i"
    rc=$(cat "$T/curl.$i.rc")
    if [ "$rc" != 0 ] || [ "$code" != "$ok" ] || [ "${got:-0}" != "$bytes" ]; then
      bad="curl exit $rc, HTTP $code, ${got:-0} of $bytes bytes"
    fi
    total=$((total + ${got:-0}))
  done
  [ -z "$bad" ] || { echo "fail: $dir x$n: $bad"; return; }
  if [ "$n" = 1 ]; then calc "$total / 1e6 / $secs"; else calc "$total / 1e6 / ($t1 - $t0)"; fi
}

# bulk SYS METRIC DIR N [CPU_METRIC]: the best MB/s of REPS runs of xfer (other
# work on the machine only ever slows a run down); with CPU_METRIC also the
# least CPU seconds per GiB of the client and server processes over those runs.
# Any failed run makes the figure a failure. Reads measure's $pids.
bulk() {
  local sys=$1 metric=$2 dir=$3 n=$4 cpum=${5:-} r v best="" cpu="" c0=0 c1=0 x
  for ((r = 0; r < REPS; r++)); do
    [ -z "$cpum" ] || c0=$(ticks "${pids[@]}")
    v=$(xfer "$dir" "$n")
    [ -z "$cpum" ] || c1=$(ticks "${pids[@]}")
    if [ "${v#fail}" != "$v" ]; then
      best=fail cpu=""
      put "$sys" "note_$metric" "$v"
      break
    fi
    best=$(awk -v a="${best:-0}" -v b="$v" 'BEGIN { printf "%.6f", (b > a ? b : a) }')
    if [ -n "$cpum" ]; then
      x=$(calc "($c1 - $c0) / $CLK / ($BIG_BYTES / 1073741824)")
      cpu=$(awk -v a="${cpu:-1e300}" -v b="$x" 'BEGIN { printf "%.6f", (b < a ? b : a) }')
    fi
  done
  put "$sys" "$metric" "$best"
  [ -z "$cpum" ] || [ -z "$cpu" ] || put "$sys" "$cpum" "$cpu"
}

# idle_pct: percent of CPU time idle over the next second, all CPUs.
idle_pct() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); t = 0;
    for (i = 2; i <= 9; i++) t += y[i] - x[i];
    printf "%d", (t > 0 ? 100 * (y[5] - x[5] + y[6] - x[6]) / t : 100) }'
}

# quiet SYS: waits, at most QUIET_SECS, for the CPUs to be at least 85% idle
# before a system is measured (the machine may be shared); records the figure.
quiet() {
  local sys=$1 p i
  for ((i = 0; i < QUIET_SECS; i++)); do
    p=$(idle_pct)
    [ "$p" -lt 85 ] || break
  done
  put "$sys" idle "$p"
  [ "$p" -ge 85 ] || put "$sys" note_busy "the machine was busy before this run (CPUs ${p}% idle after ${QUIET_SECS} s of waiting): its figures are disturbed"
}

curl_proxy_args() { # curl's options for the system being measured (none for direct)
  [ "$PROXY" = direct ] || echo "--socks5-hostname 127.0.0.1:$PROXY"
}

kv() { # KEY LINE: the value of KEY=... in a "k=v k=v" line
  local k=$1 w
  for w in $2; do [ "${w%%=*}" = "$k" ] && { echo "${w#*=}"; return; }; done
}

# measure SYS PROXY CLIENT_PID SERVER_PID: every metric of one running system.
# CLIENT_PID / SERVER_PID may be empty (direct; microsocks has one process).
measure() {
  local sys=$1 cpid=$3 spid=$4 r c0 c1 v line opened seen hold_pid i
  PROXY=$2
  local pids=()
  [ -z "$cpid" ] || pids+=("$cpid")
  [ -z "$spid" ] || pids+=("$spid")
  quiet "$sys"
  log "[$sys] check"
  # shellcheck disable=SC2046
  r=$(curl -s -o /dev/null --max-time 10 $(curl_proxy_args) -w '%{http_code}' \
    "http://127.0.0.1:$P_ORIGIN/tiny.txt" 2>/dev/null)
  if [ "$r" != 200 ]; then
    put "$sys" status "n/a (a GET through it failed: HTTP ${r:-none})"
    return
  fi
  put "$sys" status ok

  if [ ${#pids[@]} -gt 0 ]; then
    [ -z "$cpid" ] || put "$sys" rss_c_idle "$(rss_mib "$cpid")"
    [ -z "$spid" ] || put "$sys" rss_s_idle "$(rss_mib "$spid")"
    log "[$sys] holding $HOLD_N connections"
    hwm_reset "${pids[@]}"
    rm -f "$T/hold.status"
    "$PY" "$TOOL" hold "$PROXY" "$P_ORIGIN" "$HOLD_N" "$HOLD_SECS" "$T/hold.status" \
      2>>"$T/logs/hold.log" &
    hold_pid=$!
    for i in $(seq $((HOLD_SECS * 10))); do
      [ -f "$T/hold.status" ] || ! kill -0 "$hold_pid" 2>/dev/null || { sleep 0.1; continue; }
      break
    done
    sleep 1 # let the last opens reach the origin
    opened=$(kv opened "$(cat "$T/hold.status" 2>/dev/null)")
    seen=$(ss -Htn state established "( sport = :$P_ORIGIN )" 2>/dev/null | wc -l)
    put "$sys" hold "${opened:-0} / $seen"
    [ -z "$cpid" ] || put "$sys" rss_c_hold "$(rss_mib "$cpid")"
    [ -z "$spid" ] || put "$sys" rss_s_hold "$(rss_mib "$spid")"
    [ -z "$cpid" ] || put "$sys" rss_c_hold_peak "$(hwm_mib "$cpid")"
    [ -z "$spid" ] || put "$sys" rss_s_hold_peak "$(hwm_mib "$spid")"
    [ "${opened:-0}" = "$HOLD_N" ] || put "$sys" note_hold "only ${opened:-0} of $HOLD_N connections opened"
    kill "$hold_pid" 2>/dev/null
    wait "$hold_pid" 2>/dev/null
    sleep 1 # let the proxies close the held connections before timing anything
  fi

  log "[$sys] latency ($LAT_N sequential)"
  line=$("$PY" "$TOOL" latency "$PROXY" "$P_ORIGIN" "$LAT_N" "$LAT_SECS" 2>>"$T/logs/latency.log")
  put "$sys" lat_p50 "$(kv p50_ms "$line")"
  put "$sys" lat_p99 "$(kv p99_ms "$line")"
  [ "$(kv fail "$line")" = 0 ] || put "$sys" note_lat "latency run: $line"
  log "[$sys] latency after ${IDLE_GAP_MS} ms idle ($IDLE_LAT_N sequential)"
  line=$("$PY" "$TOOL" latency "$PROXY" "$P_ORIGIN" "$IDLE_LAT_N" "$LAT_SECS" "$IDLE_GAP_MS" 2>>"$T/logs/latency.log")
  put "$sys" lati_p50 "$(kv p50_ms "$line")"
  put "$sys" lati_p99 "$(kv p99_ms "$line")"
  [ "$(kv fail "$line")" = 0 ] || put "$sys" note_lati "idle latency run: $line"

  log "[$sys] requests/s ($RPS_N requests, $RPS_CONC clients)"
  [ ${#pids[@]} -eq 0 ] || c0=$(ticks "${pids[@]}")
  line=$("$PY" "$TOOL" rps "$PROXY" "$P_ORIGIN" "$RPS_N" "$RPS_CONC" "$RPS_SECS" 2>>"$T/logs/rps.log")
  [ ${#pids[@]} -eq 0 ] || c1=$(ticks "${pids[@]}")
  put "$sys" rps "$(kv rps "$line")"
  v=$(kv ok "$line")
  [ ${#pids[@]} -eq 0 ] || [ "${v:-0}" -eq 0 ] || put "$sys" cpu_req "$(calc "($c1 - $c0) / $CLK * 1000 / $v")"
  [ "$(kv fail "$line")" = 0 ] || put "$sys" note_rps "requests/s run: $line"

  local cpu_dl="" cpu_ul=""
  [ ${#pids[@]} -eq 0 ] || { cpu_dl=cpu_dl; cpu_ul=cpu_ul; }
  [ ${#pids[@]} -eq 0 ] || hwm_reset "${pids[@]}"
  log "[$sys] download, 1 stream (best of $REPS)"
  bulk "$sys" dl1 down 1 $cpu_dl
  log "[$sys] download, 8 streams (best of $REPS)"
  bulk "$sys" dl8 down 8
  log "[$sys] upload, 1 stream (best of $REPS)"
  bulk "$sys" ul1 up 1 $cpu_ul
  log "[$sys] upload, 8 streams (best of $REPS)"
  bulk "$sys" ul8 up 8
  [ -z "$cpid" ] || put "$sys" rss_c_bulk_peak "$(hwm_mib "$cpid")"
  [ -z "$spid" ] || put "$sys" rss_s_bulk_peak "$(hwm_mib "$spid")"
}

# alive SYS NAME...: notes every named process that exited during the run.
alive() {
  local sys=$1 n st
  shift
  for n in "$@"; do
    if ! kill -0 "${PID[$n]}" 2>/dev/null; then
      wait "${PID[$n]}"
      st=$?
      [ "$st" -le 128 ] || st="$st, signal SIG$(kill -l $((st - 128)) 2>/dev/null)"
      put "$sys" "note_dead_$n" "$n exited (status $st) during the run; last log line: $(tail -1 "$T/logs/$n.log" | cut -c1-160)"
      put "$sys" status "ok, but $n died (see notes)"
    fi
  done
}

want() { [[ ",$only," == *",$1,"* ]]; }

# wait_up SYS PORT NAME...: the SOCKS5 port listens and the named processes live
wait_up() {
  local sys=$1 port=$2 n
  shift 2
  "$PY" "$TOOL" wait-port "$port" 15 || { put "$sys" status "n/a (no SOCKS5 port after 15 s)"; return 1; }
  for n in "$@"; do
    kill -0 "${PID[$n]}" 2>/dev/null || { put "$sys" status "n/a ($n exited)"; return 1; }
  done
}

# ---------------------------------------------------------------- direct
measure direct direct "" ""

# ---------------------------------------------------------------- umbra
# run_umbra SYS TRANSPORT TIMING SERVER_PORT SOCKS_PORT HTTP_PORT [ROTATE]
#   TRANSPORT tcp: `server init` as it stands, the client on the share link.
#   TRANSPORT tls: `server init --transport tls --cover 127.0.0.1:COVER --sni`;
#   TIMING none: the client on the share link; TIMING jitter: `timing = jitter`
#   in the server's [transport] section and in a client config made from the
#   link (a link carries no timing profile).
#   ROTATE: the client runs with --rotate ROTATE (bytes per connection).
run_umbra() {
  local sys=$1 tr=$2 timing=$3 ps=$4 pc=$5 ph=$6 rot=${7:-} d="$T/$1" link init=() k host q sk ck
  mkdir -p "$d"
  if [ ! -x "$UMBRA" ]; then
    put "$sys" status "n/a (no binary at $UMBRA)"
    return
  fi
  [ "$tr" = tcp ] || init=(--transport tls --cover "127.0.0.1:$P_COVER" --sni "$COVER_SNI")
  [ "$tr" != ws ] || init=(--transport ws --ws-path /bench-ws --public-host "127.0.0.1:$P_FRONT")
  if ! "$UMBRA" server init -c "$d/server.conf" --listen "127.0.0.1:$ps" "${init[@]}" >"$T/logs/$sys-init.log" 2>&1 ||
    ! link=$("$UMBRA" server add-client -c "$d/server.conf" bench --no-qr 2>>"$T/logs/$sys-init.log" | grep -o 'umbra://[^ ]*' | head -1) ||
    [ -z "$link" ]; then
    put "$sys" status "n/a (server init/add-client failed)"
    return
  fi
  if [ "$tr" = ws ]; then
    # The front's name (its certificate is the cover's) goes into the link.
    sed -i "/^type = ws\$/a sni = $COVER_SNI" "$d/server.conf"
    link=$("$UMBRA" server add-client -c "$d/server.conf" bench2 --no-qr 2>>"$T/logs/$sys-init.log" | grep -o 'umbra://[^ ]*' | head -1)
  fi
  local client=(--link "$link")
  [ -z "$rot" ] || client+=(--rotate "$rot")
  if [ "$timing" != none ]; then
    # timing goes into the server's [transport "tls"] section...
    sed -i "/^\[transport \"tls\"\]\$/a timing = $timing" "$d/server.conf"
    # ...and into a client config holding what the link holds.
    b64() { # URL-safe base64 without padding -> standard with padding
      local x
      x=$(printf '%s' "$1" | tr '_-' '/+')
      while [ $((${#x} % 4)) != 0 ]; do x+="="; done
      printf '%s' "$x"
    }
    k=${link#umbra://}
    sk=$(b64 "${k%%@*}")
    k=${k#*@}
    host=${k%%\?*}
    q=${k#*\?}
    q=${q%%#*}
    ck=$(b64 "$(sed -n 's/.*\(^\|&\)k=\([^&]*\).*/\2/p' <<<"$q")")
    (
      umask 077
      printf '[client]\nprivate-key = %s\n\n[server "bench"]\naddress = %s\npublic-key = %s\ntransport = t\n\n[transport "t"]\ntype = tls\nsni = %s\ntiming = %s\n' \
        "$ck" "$host" "$sk" "$COVER_SNI" "$timing" >"$d/client.conf"
    )
    client=(-c "$d/client.conf")
  fi
  start_bg "$sys-server" "$UMBRA" server -c "$d/server.conf" --allow 127.0.0.0/8
  sleep 1
  if ! kill -0 "${PID[$sys-server]}" 2>/dev/null; then
    put "$sys" status "n/a (server exited at once: $(tail -1 "$T/logs/$sys-server.log" | cut -c1-80))"
    stop "$sys-server"
    return
  fi
  start_bg "$sys-client" env SSL_CERT_FILE="$T/nginx/cover.crt" "$UMBRA" client "${client[@]}" \
    --socks "127.0.0.1:$pc" --http "127.0.0.1:$ph"
  if wait_up "$sys" "$pc" "$sys-server" "$sys-client"; then
    measure "$sys" "$pc" "${PID[$sys-client]}" "${PID[$sys-server]}"
    alive "$sys" "$sys-client" "$sys-server"
  fi
  stop "$sys-client"
  stop "$sys-server"
}
want umbra && run_umbra umbra tcp none "$P_UMBRA_S" "$P_UMBRA_C" "$P_UMBRA_H"
want umbra-tls && run_umbra umbra-tls tls none "$P_TLS_S" "$P_TLS_C" "$P_TLS_H"
want umbra-jitter && run_umbra umbra-jitter tls jitter "$P_JIT_S" "$P_JIT_C" "$P_JIT_H"
want umbra-rot1m && run_umbra umbra-rot1m tcp none "$P_R1_S" "$P_R1_C" "$P_R1_H" 1m
want umbra-rot16k && run_umbra umbra-rot16k tcp none "$P_R16_S" "$P_R16_C" "$P_R16_H" 16k
want umbra-ws && run_umbra umbra-ws ws none "$P_WS_S" "$P_WS_C" "$P_WS_H"

# ---------------------------------------------------------------- shadowsocks-libev
run_ss() { # SYS CIPHER SERVER_PORT LOCAL_PORT
  local sys=$1 cipher=$2 ps=$3 pc=$4 pass
  if ! command -v ss-server >/dev/null || ! command -v ss-local >/dev/null; then
    put "$sys" status "n/a (shadowsocks-libev not installed)"
    return
  fi
  pass=$(head -c 18 /dev/urandom | base64)
  # chacha20-ietf-poly1305 (umbra's records on a CPU without AES instructions)
  # or aes-256-gcm (what umbra picks when both ends have them, as here).
  # --no-delay (TCP_NODELAY) is ss's documented option for latency; with it ss
  # is the stronger baseline.
  start_bg ss-server ss-server -s 127.0.0.1 -p "$ps" -k "$pass" -m "$cipher" \
    -t 300 -n 16384 --no-delay
  start_bg ss-local ss-local -s 127.0.0.1 -p "$ps" -b 127.0.0.1 -l "$pc" -k "$pass" \
    -m "$cipher" -t 300 -n 16384 --no-delay
  if "$PY" "$TOOL" wait-port "$ps" 15 && wait_up "$sys" "$pc" ss-server ss-local; then
    measure "$sys" "$pc" "${PID[ss-local]}" "${PID[ss-server]}"
    alive "$sys" ss-local ss-server
  fi
  stop ss-local
  stop ss-server
}
want ss && run_ss ss chacha20-ietf-poly1305 "$P_SS_S" "$P_SS_C"
want ss-aes && run_ss ss-aes aes-256-gcm "$P_SSA_S" "$P_SSA_C"

# ---------------------------------------------------------------- ssh -D
run_ssh() {
  local d="$T/ssh" user
  if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
    put ssh status "n/a (openssh not installed)"
    return
  fi
  user=$(id -un)
  mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" -C umbra-bench-host
  ssh-keygen -q -t ed25519 -N '' -f "$d/user_key" -C umbra-bench-user
  cp "$d/user_key.pub" "$d/authorized_keys"
  # sshd insists on its privilege-separation directory; make it only if absent.
  if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
    mkdir -m 755 /run/sshd && made_run_sshd=1
  fi
  cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $P_SSHD
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
Compression no
LogLevel ERROR
EOF
  start_bg sshd /usr/sbin/sshd -D -e -f "$d/sshd_config"
  "$PY" "$TOOL" wait-port "$P_SSHD" 10 || { put ssh status "n/a (sshd did not start: $(tail -1 "$T/logs/sshd.log"))"; stop sshd; return; }
  # chacha20-poly1305@openssh.com: the same cipher family as ss and umbra.
  start_bg ssh ssh -N -D "127.0.0.1:$P_SSH_C" -p "$P_SSHD" -i "$d/user_key" -F /dev/null \
    -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ExitOnForwardFailure=yes -o Compression=no -o Ciphers=chacha20-poly1305@openssh.com \
    -o LogLevel=ERROR "$user@127.0.0.1"
  if wait_up ssh "$P_SSH_C" sshd ssh; then
    measure ssh "$P_SSH_C" "${PID[ssh]}" "${PID[sshd]}"
    alive ssh ssh sshd
  fi
  stop ssh
  stop sshd
}
want ssh && run_ssh

# ---------------------------------------------------------------- microsocks
run_microsocks() {
  command -v microsocks >/dev/null || { put microsocks status "n/a (microsocks not installed)"; return; }
  start_bg microsocks microsocks -i 127.0.0.1 -p "$P_MS"
  if wait_up microsocks "$P_MS" microsocks; then
    measure microsocks "$P_MS" "" "${PID[microsocks]}"
    alive microsocks microsocks
  fi
  stop microsocks
}
want microsocks && run_microsocks

# ---------------------------------------------------------------- v2ray VMess
run_v2ray() {
  local uuid
  command -v v2ray >/dev/null || { put v2ray status "n/a (v2ray not installed)"; return; }
  uuid=$(cat /proc/sys/kernel/random/uuid)
  "$PY" "$SRC/bench/v2ray_conf.py" server 127.0.0.1 "$P_V2_S" "$uuid" >"$T/v2ray-server.json"
  "$PY" "$SRC/bench/v2ray_conf.py" client 127.0.0.1 "$P_V2_S" "$uuid" 127.0.0.1 "$P_V2_C" >"$T/v2ray-client.json"
  start_bg v2ray-server v2ray -config "$T/v2ray-server.json"
  start_bg v2ray-client v2ray -config "$T/v2ray-client.json"
  if "$PY" "$TOOL" wait-port "$P_V2_S" 15 && wait_up v2ray "$P_V2_C" v2ray-server v2ray-client; then
    measure v2ray "$P_V2_C" "${PID[v2ray-client]}" "${PID[v2ray-server]}"
    alive v2ray v2ray-client v2ray-server
  fi
  stop v2ray-client
  stop v2ray-server
}
want v2ray && run_v2ray

# ---------------------------------------------------------------- report
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
ver() { "$@" 2>&1 | head -1; }
{
  # shellcheck disable=SC2016 # the backquotes are Markdown
  printf 'meta\tcommand\t`%s` (build dir %s)%s\n' "$CMDLINE" "$bdir" "$([ "$quick" = 1 ] && echo ', QUICK run: small sizes')"
  printf 'meta\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  printf 'meta\tmachine\t%s CPUs (nproc), %s, %s MiB RAM, Linux %s\n' "$(nproc)" "$cpu" \
    "$(awk '/MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" "$(uname -r)"
  printf 'meta\tload average\t%s at the start, %s at the end (1, 5, 15 min)\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'meta\tversions\tumbra: %s; %s; %s; microsocks %s; %s; %s\n' \
    "$([ -x "$UMBRA" ] && ver "$UMBRA" version || echo none)" \
    "$(ss-server -h 2>&1 | grep -m1 shadowsocks-libev || echo 'no shadowsocks-libev')" \
    "$(ver ssh -V)" "$(dpkg-query -W -f='${Version}' microsocks 2>/dev/null || echo none)" \
    "$(ver nginx -v)" "$(curl --version | head -1 | cut -d' ' -f1-2)"
  printf 'meta\tv2ray\t%s\n' "$(command -v v2ray >/dev/null && ver v2ray -version || echo none)"
  printf 'meta\tsizes\t1-stream transfers %d MiB; 8 streams x %d MiB; latency %d sequential requests; requests/s %d requests from %d concurrent clients; %d connections held open for RSS; bulk figures: best of %d runs\n' \
    "$BIG_MIB" "$PART_MIB" "$LAT_N" "$RPS_N" "$RPS_CONC" "$HOLD_N" "$REPS"
  printf 'meta\thold_n\t%s\n' "$HOLD_N"
} >>"$RES"
"$PY" "$REPORT" "$RES" >"$T/report.md" || { log "report failed"; exit 1; }
cat "$T/report.md"
mkdir -p "$(dirname "$out")"
cp "$T/report.md" "$out"
log "wrote $out"
[ -z "$tsv" ] || { cp "$RES" "$tsv" && log "wrote $tsv"; }
