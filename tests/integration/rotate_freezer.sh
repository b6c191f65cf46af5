#!/usr/bin/env bash
# A TSPU-like middlebox (issue 11): the router between client and server
# drops every packet of a TCP connection once it has carried 20000 bytes
# (nftables `ct bytes > 20000 drop`; topology in lib_middlebox.sh).
#
#   curl ─► umbra client (C) ══ tcp, many short connections ══► R (freezer) ══► umbra server (S) ─► nginx (S)
#
# Baseline: plain curl across R gets the whole file with the freezer off and
# stalls at about 16 KB with it on. Then, through `umbra client --rotate
# 12k-16k` (each connection carries 12-16 KiB, then the session moves to a
# new one, make-before-break), a 16 MiB download and a 16 MiB upload via
# SOCKS5 complete with sha256 intact (throughput printed); the events show
# session_rotated and exactly one session_up (rotations are not new sessions).
set -u
. "$(dirname "$0")/lib.sh"
TL_NETNS=0
tl_init rotate_freezer
. "$SRC/tests/integration/lib_middlebox.sh"
mb_init
tl_need_umbra "the middlebox test"
FREEZE=20000
MIB=16
mb_topology
mb_web
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
BYTES=$((MIB * 1024 * 1024))

# ---- baseline, no umbra
t0=$(tl_now_ms)
in_c curl -sS --max-time $((30 * TM)) -o "$WORK/plain" "http://$MB_SADDR/blob" 2>"$WORK/plain.err"
ms=$(($(tl_now_ms) - t0))
if [ "$(tl_sha "$WORK/plain")" = "$BLOB_SHA" ]; then
    ok "baseline, freezer off: plain curl across the router, $MIB MiB in $ms ms ($(mb_mbps $BYTES $ms) MB/s)"
else
    bad "baseline, freezer off: $(mb_size "$WORK/plain") bytes; $(cat "$WORK/plain.err")"
fi
mb_freezer_on $FREEZE
t0=$(tl_now_ms)
in_c curl -sS --max-time 8 -o "$WORK/plain" "http://$MB_SADDR/blob" 2>"$WORK/plain.err"
rc=$?
n=$(mb_size "$WORK/plain")
if [ "$rc" != 0 ] && [ "$n" -gt 1024 ] && [ "$n" -lt 65536 ]; then
    ok "baseline, freezer on ($FREEZE bytes): plain curl stalls at $n bytes (curl exit $rc after $(($(tl_now_ms) - t0)) ms)"
else
    bad "baseline, freezer on: curl exit $rc with $n bytes (want a stall below 64 KiB)"
fi
drops=$(mb_freezer_drops)
[ "${drops:-0}" -gt 0 ] && ok "the freezer dropped $drops packets of that connection" || bad "the freezer dropped nothing ('$drops')"
rm -f "$WORK/plain"

# ---- through umbra with rotation (needs issue 11's --rotate)
mb_has_option client --rotate || bad "umbra client has no --rotate option yet (issue 11 rotation not landed); the start below fails"
mb_server_init || tl_finish
mb_server_start || tl_finish
t0=$(tl_now_ms)
if mb_client_start client --rotate 12k-16k; then
    ok "session up across the freezer with --rotate 12k-16k in $(($(tl_now_ms) - t0)) ms"
else
    tl_finish
fi
SOX=(--socks5-hostname "127.0.0.1:$MB_SOCKS")
got=$(in_c curl -sS --max-time $((20 * TM)) "${SOX[@]}" "http://127.0.0.1/small" 2>&1)
expect_eq "small request through umbra" "$got" small-ok

# Bounded: a frozen connection that is never left makes curl see no bytes
# for --speed-time seconds and give up.
CURL_BOUNDS=(--max-time $((60 * TM)) --speed-limit 1 --speed-time $((30 * TM)))
tl_budget $((60 * TM)) "16 MiB download" && {
    t0=$(tl_now_ms)
    in_c curl -sS "${CURL_BOUNDS[@]}" "${SOX[@]}" -o "$WORK/down" "http://127.0.0.1/blob" 2>"$WORK/down.err"
    rc=$?
    ms=$(($(tl_now_ms) - t0))
    if [ "$rc" = 0 ] && [ "$(tl_sha "$WORK/down")" = "$BLOB_SHA" ]; then
        ok "$MIB MiB download through the freezer, sha256 ok: $ms ms, $(mb_mbps $BYTES $ms) MB/s"
    else
        bad "$MIB MiB download through the freezer: curl exit $rc, $(mb_size "$WORK/down") bytes after $ms ms; $(cat "$WORK/down.err")"
    fi
    rm -f "$WORK/down"
}
tl_budget $((60 * TM)) "16 MiB upload" && {
    t0=$(tl_now_ms)
    got=$(in_c curl -sS "${CURL_BOUNDS[@]}" "${SOX[@]}" -T "$WORK/www/blob" "http://127.0.0.1/upload/blob" 2>"$WORK/up.err")
    rc=$?
    ms=$(($(tl_now_ms) - t0))
    if [ "$rc" = 0 ] && [ "$got" = "$BLOB_SHA" ]; then
        ok "$MIB MiB upload through the freezer, sha256 ok at the sink: $ms ms, $(mb_mbps $BYTES $ms) MB/s"
    else
        bad "$MIB MiB upload through the freezer: curl exit $rc after $ms ms, sink said '$got'; $(cat "$WORK/up.err")"
    fi
}

rot=$(mb_count "$EVENTS" session_rotated)
rot_bytes=$(mb_count "$EVENTS" session_rotated reason=bytes)
# 32 MiB over connections of at most 16 KiB: at least 2048 of them.
[ "$rot_bytes" -ge 1000 ] && ok "events: $rot session_rotated ($rot_bytes for reason bytes)" ||
    bad "events: $rot session_rotated, $rot_bytes with reason bytes (want >= 1000 for 32 MiB at <= 16 KiB each)"
expect_eq "events: exactly one session_up (rotations are not new sessions)" "$(mb_count "$EVENTS" session_up)" 1
expect_eq "events: no session_lost" "$(mb_count "$EVENTS" session_lost)" 0
mb_status "$CONTROL" rotations
n=$MB_STATUS_N
[ -n "$n" ] && [ "$n" -ge "$rot" ] && [ "$n" -gt 0 ] && ok "umbra status: $MB_STATUS_LINE" ||
    bad "umbra status rotations line: '$MB_STATUS_LINE' (events counted $rot)"
ok "the freezer dropped $(mb_freezer_drops) packets in all"
kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
tl_tunnel_down
tl_finish
