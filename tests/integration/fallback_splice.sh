#!/usr/bin/env bash
# The fallback splice through the real server (docs/PROTOCOL.md section 5):
#   1. a slowly read 8 MiB page from nginx arrives whole (the splice never
#      stalls on backpressure);
#   2. a 16 KiB request with many headers reaches the fallback byte for byte;
#   3. 300 ordinary GETs are all answered promptly (a complete HTTP head is
#      handed over at once, not at the probe delay);
#   4. with the fallback down, a probe gets silence until the probe delay,
#      never an early close.
#
#   preauth_helper.py slowget / gets ──► umbra server :SPORT ──► nginx :N
#   preauth_helper.py bigreq         ──► umbra server :S2    ──► rawsink (records the bytes)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init fallback_splice
tl_need_umbra "the fallback splice"
tl_need nginx
PH=$SRC/tests/integration/preauth_helper.py
tl_nginx
head -c $((8 << 20)) /dev/urandom >"$WORK/www/big8"

tl_server_init
# Real probe delays (15..45 s): a late hand-over shows.
sed -i '/^probe-delay-m[ai][nx]/d' "$WORK/server.conf"
sed -i "/^\[server\]/a fallback = 127.0.0.1:$NGINX_PORT" "$WORK/server.conf"
tl_server_start || tl_finish

# 1. slow reader
timeout $((120 * TM)) "$PY" "$PH" slowget "$SPORT" /big8 1.5 "$WORK/got8" || bad "slowget failed"
expect_eq "8 MiB page read slowly through the fallback: size" "$(stat -c %s "$WORK/got8")" $((8 << 20))
expect_eq "8 MiB page read slowly through the fallback: sha256" "$(tl_sha "$WORK/got8")" "$(tl_sha "$WORK/www/big8")"

# 3. ordinary GETs, answered within 5 s each (x TM), none late
N=300
res=$(timeout $((600 * TM)) "$PY" "$PH" gets "$SPORT" $N $((5 * TM)))
echo "# $N GETs through the fallback: slowest ${res% *} ms, late ${res#* }"
expect_eq "$N ordinary GETs through the fallback: none late" "${res#* }" 0

# 2. the 16 KiB request, byte for byte
tl_bg "$WORK/rawsink.log" "$PY" "$PH" rawsink "$WORK/rawsink.port" "$WORK/raw.got"
tl_wait_file "$WORK/rawsink.port" 10 || { bad "rawsink did not start"; tl_finish; }
RAW=$(cat "$WORK/rawsink.port")
tl_stop server "$SERVER_PID" $((10 * TM))
SERVER_PID=""
sed -i "s/^fallback = .*/fallback = 127.0.0.1:$RAW/" "$WORK/server.conf"
tl_server_start || tl_finish
st=$(timeout $((30 * TM)) "$PY" "$PH" bigreq "$SPORT" 16384 "$WORK/raw.sent")
expect_eq "16 KiB request through the fallback: answered" "$st" "HTTP/1.1 200 OK"
expect_eq "16 KiB request: the fallback got it byte for byte" "$(tl_sha "$WORK/raw.got" 2>/dev/null)" "$(tl_sha "$WORK/raw.sent")"

# 4. fallback down: silence until D (>= 15 s), not an early close
tl_stop server "$SERVER_PID" $((10 * TM))
SERVER_PID=""
DEAD=$(tl_free_port)
sed -i "s/^fallback = .*/fallback = 127.0.0.1:$DEAD/;/^\[server\]/a probe-delay-min = 3000\nprobe-delay-max = 4000" "$WORK/server.conf"
tl_server_start || tl_finish
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$WORK/get.bin"
t0=$(tl_now_ms)
got=$(timeout $((30 * TM)) "$PY" "$PH" replay "$SPORT" "$WORK/get.bin" 20)
dt=$(($(tl_now_ms) - t0))
expect_eq "fallback down: no byte back" "$got" 0
if [ $dt -ge 2900 ]; then ok "fallback down: closed after $dt ms (probe delay 3..4 s)"; else bad "fallback down: closed after $dt ms, before the probe delay"; fi

tl_stop server "$SERVER_PID" $((10 * TM))
SERVER_PID=""
tl_finish
