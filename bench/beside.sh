#!/usr/bin/env bash
# bench/beside.sh: a small request beside a bulk transfer on the same session
# (issue 15). For each system: the time of a 64 KiB GET (a fresh SOCKS5
# connection each, curl's time_total) alone, then while a 1 GiB download runs
# through the same proxy (for umbra: the same session, one carrier
# connection), and the bulk download's MB/s alone and with the small GETs
# beside it. Everything on 127.0.0.1; figures only, never a failure on a number.
#
#   bench/beside.sh [BUILD_DIR] [--quick] [--out FILE] [--umbra NAME=BINARY]...
#
#   BUILD_DIR  holds the umbra binary (default: build); measured as "umbra"
#   --umbra    another umbra binary measured in the same run (e.g. a build of
#              the commit before a change: --umbra before=/tmp/old/umbra)
#   --quick    256 MiB bulk, 10 samples, 1 round (default: 1 GiB, 20 x 3 rounds)
#   --out FILE the Markdown (default BUILD_DIR/RESULTS-beside.md)
#   --floor    also a direct GET (not through the proxy) after each proxied
#              one beside that system's bulk: what the CPU contention alone
#              costs, the floor no scheduling inside the proxy can remove
#
# Systems: direct (no proxy), each umbra (tcp transport, client on the share
# link), shadowsocks-libev (chacha20-ietf-poly1305, --no-delay) when installed.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
TOOL="$SRC/bench/peers_tool.py"
bdir=build
quick=0
floor=0
out=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --umbra) extra+=("${2:?--umbra needs NAME=BINARY}"); shift ;;
    --floor) floor=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "beside.sh: unknown option '$1'" >&2; exit 1 ;;
    *) bdir=$1 ;;
  esac
  shift
done
[ -d "$bdir" ] || [ ! -d "$SRC/$bdir" ] || bdir="$SRC/$bdir"
UMBRA="$(cd "$bdir" 2>/dev/null && pwd)/umbra"
[ -n "$out" ] || out="$bdir/RESULTS-beside.md"
if [ "$quick" = 1 ]; then BIG_MIB=256 N=10 ROUNDS=1; else BIG_MIB=1024 N=20 ROUNDS=3; fi
ROUNDS=${BESIDE_ROUNDS:-$ROUNDS}
SMALL_KIB=64
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
unset http_proxy https_proxy all_proxy no_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY
log() { echo "beside: $*" >&2; }

. "$SRC/bench/lib.sh"
bench_tmp beside
cleanup() {
  stop_all
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_ORIGIN P_SS_S P_SS_C < <("$PY" "$TOOL" ports 3)
head -c $((BIG_MIB << 20)) /dev/urandom >"$T/www/big.bin"
head -c $((SMALL_KIB << 10)) /dev/urandom >"$T/www/small.bin"
chmod 755 "$T/www"
chmod 644 "$T/www/"*
bench_origin "$P_ORIGIN" || { log "nginx did not start"; exit 1; }

RES="$T/res.tsv"
: >"$RES"
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); else print "n/a" }'; }

# get URL_PATH: one GET through $PROXY, prints ms (or nothing on failure)
get_ms() {
  local a=(-s -o /dev/null --max-time 30 -w '%{http_code} %{time_total}\n')
  [ "$PROXY" = direct ] || a+=(--socks5-hostname "127.0.0.1:$PROXY")
  curl "${a[@]}" "http://127.0.0.1:$P_ORIGIN/$1" 2>/dev/null | awk '$1 == 200 { printf "%.3f\n", $2 * 1000 }'
}
bulk_mbs() { # one 1 GiB download through $PROXY: MB/s
  local a=(-s -o /dev/null --max-time 120 -w '%{http_code} %{size_download} %{time_total}\n')
  [ "$PROXY" = direct ] || a+=(--socks5-hostname "127.0.0.1:$PROXY")
  curl "${a[@]}" "http://127.0.0.1:$P_ORIGIN/big.bin" 2>/dev/null |
    awk -v b=$((BIG_MIB << 20)) '$1 == 200 && $2 == b { printf "%.0f\n", $2 / 1e6 / $3 }'
}

# floor_get SYS: with --floor, one direct GET beside SYS's bulk (to $T/SYS.floor)
floor_get() { [ "$floor" = 0 ] || [ "$1" = direct ] || (PROXY=direct get_ms small.bin >>"$T/$1.floor"); }

# measure SYS PROXY: one round; samples are appended to $T/SYS.*
measure() {
  local sys=$1 i
  PROXY=$2
  log "[$sys] small GET alone ($N)"
  for i in $(seq "$N"); do get_ms small.bin; done >>"$T/$sys.alone"
  log "[$sys] bulk alone"
  bulk_mbs >>"$T/$sys.bulk_alone"
  log "[$sys] small GET beside the bulk download ($N)"
  # Bulk downloads one after another until the samples are taken (at most 8).
  (for i in $(seq 8); do bulk_mbs >>"$T/$sys.bulk_beside"; [ -f "$T/stop" ] && break; done) &
  local bpid=$!
  sleep 0.5 # the download is under way, its windows open
  for i in $(seq "$N"); do get_ms small.bin >>"$T/$sys.beside"; floor_get "$sys"; sleep 0.02; done
  touch "$T/stop"
  wait "$bpid"
  rm -f "$T/stop"
}

SYSTEMS=(direct)
declare -A PORT=([direct]=direct)
up_umbra() { # NAME BINARY SERVER_PORT SOCKS_PORT HTTP_PORT
  local name=$1 bin=$2 d="$T/$1" link
  mkdir -p "$d"
  [ -x "$bin" ] || { log "$name: no binary at $bin"; return; }
  "$bin" server init -c "$d/server.conf" --listen "127.0.0.1:$3" >"$T/logs/$name-init.log" 2>&1 || return
  link=$("$bin" server add-client -c "$d/server.conf" bench --no-qr 2>>"$T/logs/$name-init.log" | grep -o 'umbra://[^ ]*' | head -1)
  start_bg "$name-server" "$bin" server -c "$d/server.conf" --allow 127.0.0.0/8
  sleep 0.5
  start_bg "$name-client" "$bin" client --link "$link" --socks "127.0.0.1:$4" --http "127.0.0.1:$5"
  PROXY=$4
  if "$PY" "$TOOL" wait-port "$4" 15 && [ -n "$(get_ms small.bin)" ]; then
    SYSTEMS+=("$name")
    PORT[$name]=$4
  else
    log "$name did not come up"
  fi
}
read -r -a PP < <("$PY" "$TOOL" ports $((3 * (${#extra[@]} + 1))))
up_umbra umbra "$UMBRA" "${PP[0]}" "${PP[1]}" "${PP[2]}"
k=3
for e in "${extra[@]}"; do
  up_umbra "${e%%=*}" "${e#*=}" "${PP[$k]}" "${PP[$((k + 1))]}" "${PP[$((k + 2))]}"
  k=$((k + 3))
done
if command -v ss-server >/dev/null && command -v ss-local >/dev/null; then
  pass=$(head -c 18 /dev/urandom | base64)
  start_bg ss-server ss-server -s 127.0.0.1 -p "$P_SS_S" -k "$pass" -m chacha20-ietf-poly1305 -t 300 --no-delay
  start_bg ss-local ss-local -s 127.0.0.1 -p "$P_SS_S" -b 127.0.0.1 -l "$P_SS_C" -k "$pass" \
    -m chacha20-ietf-poly1305 -t 300 --no-delay
  if "$PY" "$TOOL" wait-port "$P_SS_C" 15; then SYSTEMS+=(ss-libev); PORT[ss-libev]=$P_SS_C; fi
fi
# Rounds, the systems interleaved: the load of a shared machine falls on all.
for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${SYSTEMS[@]}"; do measure "$s" "${PORT[$s]}"; done
done
for s in "${SYSTEMS[@]}"; do
  put "$s" alone "$(median <"$T/$s.alone")"
  put "$s" beside "$(median <"$T/$s.beside")"
  put "$s" bulk_alone "$(median <"$T/$s.bulk_alone")"
  put "$s" bulk_beside "$(median <"$T/$s.bulk_beside")"
  put "$s" samples "$(cat "$T/$s.beside" | wc -l)/$((N * ROUNDS))"
  [ ! -s "$T/$s.floor" ] || put "$s" floor "$(median <"$T/$s.floor")"
done

{
  echo "# A ${SMALL_KIB} KiB GET beside a ${BIG_MIB} MiB download (bench/beside.sh)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$ROUNDS rounds, the systems interleaved; medians of $N GETs per round (a fresh SOCKS5 connection each, curl time_total) and of the bulk downloads (MB/s)."
  echo "ratio: beside / alone; vs direct: beside minus direct's beside (what the proxy adds under the same CPU contention)."
  echo
  echo "| system | GET alone ms | GET beside bulk ms | ratio | vs direct ms | bulk alone MB/s | bulk beside GETs MB/s | samples |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  db=$(awk -F'\t' '$1 == "direct" && $2 == "beside" { print $3 }' "$RES")
  for s in $(cut -f1 "$RES" | awk '!seen[$0]++'); do
    g() { awk -F'\t' -v s="$s" -v m="$1" '$1 == s && $2 == m { print $3 }' "$RES"; }
    a=$(g alone) b=$(g beside)
    r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", b / a; else print "n/a" }')
    x=$(awk -v d="$db" -v b="$b" 'BEGIN { if (d > 0 && b > 0) printf "%+.2f", b - d; else print "n/a" }')
    echo "| $s | ${a:-n/a} | ${b:-n/a} | $r | $x | $(g bulk_alone) | $(g bulk_beside) | $(g samples) |"
  done
  if [ "$floor" = 1 ]; then
    echo
    echo "Floor (--floor): a direct GET (no proxy) right after each proxied one, beside the same system's bulk download; median ms."
    echo
    echo "| bulk through | direct GET beside it ms | proxied GET beside it ms | proxied minus floor ms |"
    echo "|---|---:|---:|---:|"
    for s in $(awk -F'\t' '$2 == "floor" { print $1 }' "$RES"); do
      f=$(awk -F'\t' -v s="$s" '$1 == s && $2 == "floor" { print $3 }' "$RES")
      b=$(awk -F'\t' -v s="$s" '$1 == s && $2 == "beside" { print $3 }' "$RES")
      echo "| $s | $f | $b | $(awk -v f="$f" -v b="$b" 'BEGIN { if (f > 0 && b > 0) printf "%+.2f", b - f; else print "n/a" }') |"
    done
  fi
} | tee "$out"
