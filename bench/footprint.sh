#!/usr/bin/env bash
# bench/footprint.sh: peak memory (VmHWM) of umbra's client and server per
# workload, side by side in the same run with shadowsocks-libev
# (chacha20-ietf-poly1305 and aes-256-gcm), v2ray VMess and microsocks;
# everything on 127.0.0.1.
#
#   bench/footprint.sh BUILD_DIR [--quick] [--out FILE] [--tsv FILE]
#
#   BUILD_DIR  holds the umbra binary (default: build)
#   --quick    smaller transfers (same stream and connection counts)
#   --out FILE the Markdown report (default bench/RESULTS-footprint.md)
#   --tsv FILE also a machine-readable table: metric<TAB>system<TAB>value
#
# Topology (one system at a time, the way bench/peers.sh runs them):
#   curl / footprint_tool.py --SOCKS5--> client side --> server side --> nginx (GET)
#                                                                    --> sink (upload)
# Workloads, in this order, each on a system started for it (peak = VmHWM
# since the start, which includes starting up and one small GET):
#   idle     started, one small GET through it, 2 s quiet
#   idle1000 1000 SOCKS5 connections open and idle (half an HTTP request each,
#            bench/peers_tool.py hold), on the fresh process
#   dl1      one download of BIG MiB             ul1   one upload of BIG MiB
#   dl8      8 downloads of BIG/8 MiB at once
#   act1000  1000 downloads of ACT KiB each, all active at once on one session
#            (footprint_tool.py many: every CONNECT answered before any GET)
# After each workload the current RSS is read again 2 s later ("after": what
# the process gave back). Bytes per idle connection: (RSS with the 1000 held
# - RSS before) / 1000, per side. Peaks are VmHWM of the process (v2ray,
# ss-local, ss-server and umbra are one process each; microsocks has no
# client side). Figures only: this script never fails on a number.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
PTOOL="$SRC/bench/peers_tool.py"
FTOOL="$SRC/bench/footprint_tool.py"
CMDLINE="bench/footprint.sh $*"

bdir=build
quick=0
out="$SRC/bench/RESULTS-footprint.md"
tsv=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --tsv) tsv=${2:?--tsv needs a file}; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "footprint.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
[ -d "$bdir" ] || [ ! -d "$SRC/$bdir" ] || bdir="$SRC/$bdir"
UMBRA="$(cd "$bdir" 2>/dev/null && pwd)/umbra"

if [ "$quick" = 1 ]; then
  BIG_MIB=256; ACT_KIB=256; LIMIT=420; CURL_MAX=60
else
  BIG_MIB=1024; ACT_KIB=1024; LIMIT=900; CURL_MAX=120
fi
ACT_N=1000
HOLD_N=1000
PART_MIB=$((BIG_MIB / 8))
SYSTEMS=${FOOTPRINT_SYSTEMS:-"umbra ss-chacha ss-aes v2ray microsocks"} # a subset: FOOTPRINT_SYSTEMS="umbra ss-aes"

unset http_proxy https_proxy all_proxy no_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY
log() { echo "footprint: $(date +%T) $*" >&2; }
[ -x "$PY" ] || { log "needs $PY"; exit 1; }
command -v curl >/dev/null || { log "needs curl"; exit 1; }
if ! "$SRC/scripts/deps.sh" --bench --check >/dev/null 2>&1; then
  "$SRC/scripts/deps.sh" --bench || log "could not install every peer; missing ones are n/a"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

. "$SRC/bench/lib.sh"
bench_tmp footprint
RES="$T/results.tsv"
: >"$RES"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
watchdog=""
cleanup() {
  trap - EXIT INT TERM
  stop_all
  [ -z "$watchdog" ] || { kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null; }
  rm -rf "$bdir/footprint-logs"
  cp -r "$T/logs" "$bdir/footprint-logs" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log "stopped (time limit of ${LIMIT}s or SIGTERM)"; exit 124' TERM
(
  sleep "$LIMIT" &
  s=$!
  trap 'kill $s 2>/dev/null; exit 0' TERM
  wait $s && kill -TERM $$
) 2>/dev/null &
watchdog=$!

put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; } # METRIC SYSTEM VALUE
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

read -r P_ORIGIN P_SINK P_US P_UC P_SS1S P_SS1C P_SS2S P_SS2C P_V2S P_V2C P_MS \
  < <("$PY" "$PTOOL" ports 11)

# ---------------------------------------------------------------- origin
# Sparse files: the bytes' values do not matter to a proxy's memory, and no
# time goes into writing them.
truncate -s $((BIG_MIB << 20)) "$T/www/big.bin"
truncate -s $((PART_MIB << 20)) "$T/www/part.bin"
truncate -s $((ACT_KIB << 10)) "$T/www/act.bin"
printf 'umbra footprint: a tiny page\n' >"$T/www/tiny.txt"
chmod 755 "$T/www"
chmod 644 "$T/www/"*
start_bg sink "$PY" "$PTOOL" sink "$P_SINK"
bench_origin "$P_ORIGIN" || { log "nginx did not start"; exit 1; }
"$PY" "$PTOOL" wait-port "$P_SINK" 10 || { log "upload sink did not start"; exit 1; }

# ---------------------------------------------------------------- workloads
# xfer PROXY down|up N FILE: N curls at once; prints "ok" or "fail: ..."
xfer() {
  local proxy=$1 dir=$2 n=$3 file=$4 i bad=""
  local args=(-s -S -o /dev/null --max-time "$CURL_MAX" --socks5-hostname "127.0.0.1:$proxy")
  if [ "$dir" = down ]; then
    args+=(-w '%{http_code}\n' "http://127.0.0.1:$P_ORIGIN/$file")
  else
    args+=(-H 'Expect:' -T "$T/www/$file" -w '%{http_code}\n' "http://127.0.0.1:$P_SINK/upload")
  fi
  for ((i = 0; i < n; i++)); do
    (curl "${args[@]}" >"$T/curl.$i" 2>>"$T/logs/curl.log"; echo $? >"$T/curl.$i.rc") &
  done
  wait
  for ((i = 0; i < n; i++)); do
    [ "$(cat "$T/curl.$i.rc")" = 0 ] && grep -q '^20[04]$' "$T/curl.$i" ||
      bad="curl exit $(cat "$T/curl.$i.rc"), HTTP $(cat "$T/curl.$i")"
  done
  [ -z "$bad" ] && echo ok || echo "fail: $bad"
}

# peaks SYS WL CPID SPID: VmHWM since the start -> hwm_client_WL / hwm_server_WL
peaks() {
  local sys=$1 wl=$2 c=$3 s=$4 h r
  if [ -n "$c" ]; then
    read -r h r < <("$PY" "$FTOOL" hwm "$c")
    put "hwm_client_$wl" "$sys" "$(mib "$h")"
  fi
  if [ -n "$s" ]; then
    read -r h r < <("$PY" "$FTOOL" hwm "$s")
    put "hwm_server_$wl" "$sys" "$(mib "$h")"
  fi
}
rss_of() { local h r; read -r h r < <("$PY" "$FTOOL" hwm "$1"); echo "$r"; }
after() { # SYS WL CPID SPID: current RSS 2 s after the workload
  sleep 2
  [ -z "$3" ] || put "rss_client_after_$2" "$1" "$(mib "$(rss_of "$3")")"
  [ -z "$4" ] || put "rss_server_after_$2" "$1" "$(mib "$(rss_of "$4")")"
}

# measure SYS PROXY CPID SPID: the workload $WL on a system just started
# (so each peak is of that workload alone: most proxies never give memory
# back, and a peak after another workload would be that one's).
measure() {
  local sys=$1 proxy=$2 c=$3 s=$4 wl=$WL v line rc0 rs0 i opened
  v=$(curl -s -o /dev/null --max-time 10 --socks5-hostname "127.0.0.1:$proxy" -w '%{http_code}' \
    "http://127.0.0.1:$P_ORIGIN/tiny.txt" 2>/dev/null)
  if [ "$v" != 200 ]; then
    put status "$sys" "n/a (a GET through it failed before $wl: HTTP ${v:-none})"
    return
  fi
  [ "$wl" != idle ] || put status "$sys" ok
  sleep 1
  log "[$sys] $wl"
  case $wl in
    idle)
      sleep 1
      [ -z "$c" ] || put rss_client_idle "$sys" "$(mib "$(rss_of "$c")")"
      [ -z "$s" ] || put rss_server_idle "$sys" "$(mib "$(rss_of "$s")")"
      ;;
    dl1) v=$(xfer "$proxy" down 1 big.bin) ;;
    ul1) v=$(xfer "$proxy" up 1 big.bin) ;;
    dl8) v=$(xfer "$proxy" down 8 part.bin) ;;
    act1000)
      line=$("$PY" "$FTOOL" many "$proxy" "$P_ORIGIN" "$ACT_N" act.bin $((CURL_MAX * 2)) 2>>"$T/logs/many.log")
      put ok_act1000 "$sys" "$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' <<<"$line")"
      case "$line" in *" fail=0 "*) v=ok ;; *) v="many: $line" ;; esac
      ;;
    idle1000)
      rc0=0 rs0=0
      [ -z "$c" ] || rc0=$(rss_of "$c")
      [ -z "$s" ] || rs0=$(rss_of "$s")
      rm -f "$T/hold.status"
      "$PY" "$PTOOL" hold "$proxy" "$P_ORIGIN" "$HOLD_N" 90 "$T/hold.status" 2>>"$T/logs/hold.log" &
      local hp=$!
      for i in $(seq 900); do
        [ -f "$T/hold.status" ] || ! kill -0 "$hp" 2>/dev/null || { sleep 0.1; continue; }
        break
      done
      sleep 2 # the last opens reach the origin; buffers of the opens are trimmed
      opened=$(sed -n 's/.*opened=\([0-9]*\).*/\1/p' "$T/hold.status" 2>/dev/null)
      put ok_idle1000 "$sys" "${opened:-0}"
      if [ -n "$c" ]; then
        v=$(rss_of "$c")
        put rss_client_idle1000 "$sys" "$(mib "$v")"
        [ "${opened:-0}" -gt 0 ] && put conn_bytes_client "$sys" $(((v - rc0) * 1024 / opened))
      fi
      if [ -n "$s" ]; then
        v=$(rss_of "$s")
        put rss_server_idle1000 "$sys" "$(mib "$v")"
        [ "${opened:-0}" -gt 0 ] && put conn_bytes_server "$sys" $(((v - rs0) * 1024 / opened))
      fi
      kill "$hp" 2>/dev/null
      wait "$hp" 2>/dev/null
      v=ok
      ;;
  esac
  [ "$wl" = idle ] || [ "$v" = ok ] || put "note_$wl" "$sys" "$v"
  peaks "$sys" "$wl" "$c" "$s"
  [ "$wl" = idle ] || [ "$wl" = idle1000 ] || after "$sys" "$wl" "$c" "$s"
}

wait_up() { # PORT NAME...: the SOCKS5 port listens and the processes live
  local port=$1 n
  shift
  "$PY" "$PTOOL" wait-port "$port" 15 || return 1
  for n in "$@"; do kill -0 "${PID[$n]}" 2>/dev/null || return 1; done
}

# ---------------------------------------------------------------- systems
run_umbra() {
  local d="$T/umbra" link
  mkdir -p "$d"
  [ -x "$UMBRA" ] || { put status umbra "n/a (no binary at $UMBRA)"; return; }
  if [ ! -s "$d/link" ]; then
    "$UMBRA" server init -c "$d/server.conf" --listen "127.0.0.1:$P_US" >"$T/logs/umbra-init.log" 2>&1
    "$UMBRA" server add-client -c "$d/server.conf" bench --no-qr 2>>"$T/logs/umbra-init.log" |
      grep -o 'umbra://[^ ]*' | head -1 >"$d/link"
  fi
  link=$(cat "$d/link")
  [ -n "$link" ] || { put status umbra "n/a (server init failed)"; return; }
  start_bg umbra-server "$UMBRA" server -c "$d/server.conf" --allow 127.0.0.0/8
  "$PY" "$PTOOL" wait-port "$P_US" 15
  start_bg umbra-client "$UMBRA" client --link "$link" --socks "127.0.0.1:$P_UC"
  if wait_up "$P_UC" umbra-server umbra-client; then
    measure umbra "$P_UC" "${PID[umbra-client]}" "${PID[umbra-server]}"
  else
    put status umbra "n/a (did not start)"
  fi
  stop umbra-client
  stop umbra-server
}

run_ss() { # SYS CIPHER SPORT CPORT
  local sys=$1 m=$2 ps=$3 pc=$4 pass
  command -v ss-server >/dev/null || { put status "$sys" "n/a (shadowsocks-libev not installed)"; return; }
  pass=$(head -c 18 /dev/urandom | base64)
  start_bg "$sys-server" ss-server -s 127.0.0.1 -p "$ps" -k "$pass" -m "$m" -t 300 -n 16384 --no-delay
  start_bg "$sys-local" ss-local -s 127.0.0.1 -p "$ps" -b 127.0.0.1 -l "$pc" -k "$pass" -m "$m" \
    -t 300 -n 16384 --no-delay
  if "$PY" "$PTOOL" wait-port "$ps" 15 && wait_up "$pc" "$sys-server" "$sys-local"; then
    measure "$sys" "$pc" "${PID[$sys-local]}" "${PID[$sys-server]}"
  else
    put status "$sys" "n/a (did not start)"
  fi
  stop "$sys-local"
  stop "$sys-server"
}

run_v2ray() {
  local uuid
  command -v v2ray >/dev/null || { put status v2ray "n/a (v2ray not installed)"; return; }
  uuid=$(cat /proc/sys/kernel/random/uuid)
  "$PY" "$SRC/bench/v2ray_conf.py" server 127.0.0.1 "$P_V2S" "$uuid" >"$T/v2ray-server.json"
  "$PY" "$SRC/bench/v2ray_conf.py" client 127.0.0.1 "$P_V2S" "$uuid" 127.0.0.1 "$P_V2C" >"$T/v2ray-client.json"
  start_bg v2ray-server v2ray -config "$T/v2ray-server.json"
  start_bg v2ray-client v2ray -config "$T/v2ray-client.json"
  if "$PY" "$PTOOL" wait-port "$P_V2S" 15 && wait_up "$P_V2C" v2ray-server v2ray-client; then
    measure v2ray "$P_V2C" "${PID[v2ray-client]}" "${PID[v2ray-server]}"
  else
    put status v2ray "n/a (did not start)"
  fi
  stop v2ray-client
  stop v2ray-server
}

run_microsocks() {
  command -v microsocks >/dev/null || { put status microsocks "n/a (microsocks not installed)"; return; }
  start_bg microsocks microsocks -i 127.0.0.1 -p "$P_MS"
  if wait_up "$P_MS" microsocks; then
    measure microsocks "$P_MS" "" "${PID[microsocks]}"
  else
    put status microsocks "n/a (did not start)"
  fi
  stop microsocks
}

WORKLOADS=${FOOTPRINT_WORKLOADS:-"idle idle1000 dl1 ul1 dl8 act1000"}
for sys in $SYSTEMS; do
  log "== $sys"
  for WL in $WORKLOADS; do
  case $sys in
    umbra) run_umbra ;;
    ss-chacha) run_ss ss-chacha chacha20-ietf-poly1305 "$P_SS1S" "$P_SS1C" ;;
    ss-aes) run_ss ss-aes aes-256-gcm "$P_SS2S" "$P_SS2C" ;;
    v2ray) run_v2ray ;;
    microsocks) run_microsocks ;;
  esac
  done
done

# ---------------------------------------------------------------- report
MS_VER=$(dpkg-query -W -f='${Version}' microsocks 2>/dev/null)
"$PY" - "$RES" "$SYSTEMS" >"$T/report.md" <<PYEOF
import sys
res, systems = sys.argv[1], sys.argv[2].split()
val = {}
for ln in open(res):
    m, s, v = ln.rstrip("\n").split("\t", 2)
    val[(m, s)] = v
names = {"umbra": "umbra", "ss-chacha": "ss-libev chacha20", "ss-aes": "ss-libev aes-256-gcm",
         "v2ray": "v2ray VMess", "microsocks": "microsocks"}
rows = [
    ("hwm_client_idle", "peak RSS client, idle (MiB)"),
    ("hwm_server_idle", "peak RSS server, idle (MiB)"),
    ("hwm_client_idle1000", "peak RSS client, $HOLD_N idle connections"),
    ("hwm_server_idle1000", "peak RSS server, $HOLD_N idle connections"),
    ("conn_bytes_client", "client bytes per idle connection"),
    ("conn_bytes_server", "server bytes per idle connection"),
    ("hwm_client_dl1", "peak RSS client, download $BIG_MIB MiB, 1 stream"),
    ("hwm_server_dl1", "peak RSS server, download $BIG_MIB MiB, 1 stream"),
    ("hwm_client_ul1", "peak RSS client, upload $BIG_MIB MiB, 1 stream"),
    ("hwm_server_ul1", "peak RSS server, upload $BIG_MIB MiB, 1 stream"),
    ("hwm_client_dl8", "peak RSS client, download 8 x $PART_MIB MiB"),
    ("hwm_server_dl8", "peak RSS server, download 8 x $PART_MIB MiB"),
    ("hwm_client_act1000", "peak RSS client, $ACT_N downloads x $ACT_KIB KiB at once"),
    ("hwm_server_act1000", "peak RSS server, $ACT_N downloads x $ACT_KIB KiB at once"),
    ("rss_client_after_act1000", "RSS client 2 s after the $ACT_N downloads"),
    ("rss_server_after_act1000", "RSS server 2 s after the $ACT_N downloads"),
    ("ok_act1000", "downloads of $ACT_N completed"),
    ("ok_idle1000", "connections of $HOLD_N held"),
]
print("# Memory footprint: peak RSS per workload, side by side\n")
print("Generated by \`$CMDLINE\`; do not edit by hand.\n")
print("- **date**: $(date -u '+%Y-%m-%d %H:%M:%S UTC')")
print("- **machine**: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r)")
print("- **load average**: $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end")
print("- **versions**: umbra $([ -x "$UMBRA" ] && "$UMBRA" version 2>&1 | head -1); $(ss-server -h 2>&1 | grep -m1 shadowsocks-libev); $(v2ray -version 2>&1 | head -1); microsocks $MS_VER")
print("- **method**: each workload on a system started for it; peak = VmHWM of the process since its start;")
print("  bytes per idle connection = (RSS with $HOLD_N held - RSS before) / connections held.")
print("  microsocks is one process (its figures are in the server rows).\n")
print("| | " + " | ".join(names[s] for s in systems) + " |")
print("|---|" + "---:|" * len(systems))
for key, label in rows:
    print("| %s | %s |" % (label, " | ".join(val.get((key, s), "—") for s in systems)))
print("| status | %s |" % " | ".join(val.get(("status", s), "—") for s in systems))
notes = [(m, s, v) for (m, s), v in val.items() if m.startswith("note_")]
if notes:
    print("\nNotes:\n")
    for m, s, v in notes:
        print("- %s, %s: %s" % (s, m[5:], v))
PYEOF
cat "$T/report.md"
mkdir -p "$(dirname "$out")"
cp "$T/report.md" "$out"
log "wrote $out"
if [ -n "$tsv" ]; then
  mkdir -p "$(dirname "$tsv")"
  grep -v $'^note_\|^status\t' "$RES" >"$tsv"
  log "wrote $tsv"
fi
