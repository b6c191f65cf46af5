#!/usr/bin/env bash
# Server management over the management socket, and the metrics endpoints:
#   1. 'umbra server add-client' (no -c) on a running server prints a link;
#      a client with it gets a session at once and curl works through it;
#   2. a known download through laptop: the server's metrics (parsed as
#      Prometheus text exposition, strictly) count it in laptop's bytes out,
#      the client's metrics in its bytes in (within 2% + 64 KiB);
#   3. phone's quota set to 1 MiB at runtime: a 24 MiB download through it
#      (read at 2 MiB/s) stops, and phone's events say "quota exceeded";
#   4. kick: a session ended by id says "kicked";
#   5. remove-client laptop: laptop's session ends ("client removed");
#   6. set-expiry in the past: the session ends ("access expired");
#   7. the config file was written back (mode 0600, comments kept) and a
#      fresh server reads the same clients, quotas and expiry from it.
#
#   curl ─► umbra client (laptop, phone) ══► umbra server ──► nginx 127.0.0.1
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init server_mgmt
tl_need_umbra "management"
tl_need curl
"$PY" -c 'import prometheus_client' 2>/dev/null || tl_skip "python3-prometheus-client is not installed"
MH=$SRC/tests/integration/mgmt_helper.py
tl_nginx
MIB=8
[ "$SAN" = 1 ] && MIB=4
head -c $((MIB << 20)) /dev/urandom >"$WORK/www/bulk"
head -c $((24 << 20)) /dev/urandom >"$WORK/www/big"

tl_server_init
SOCK=$WORK/mgmt.sock
MPORT=$(tl_free_port)
# An operator's comment inside laptop's section, to be kept by every edit.
sed -i "/^\[server\]/a control = $SOCK\nmetrics = 127.0.0.1:$MPORT" "$WORK/server.conf"
sed -i '/^\[client "laptop"\]/a # laptop: the operator'"'"'s own machine' "$WORK/server.conf"
tl_server_start || tl_finish
tl_wait_listen "$MPORT" $((5 * TM)) "$SERVER_PID" || bad "metrics endpoint not listening"
expect_eq "management socket mode" "$(stat -c %a "$SOCK" 2>&1)" 600

CPORT=$(tl_free_port)
tl_client_start "$LINK" laptop --metrics "127.0.0.1:$CPORT" || tl_finish
LAPTOP_EVENTS=$EVENTS
LAPTOP_SOCKS=$SOCKS
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "laptop: no session"; tl_finish; }

# live_session NAME: waits (bounded) until NAME has a live session on the
# server, prints its id.
live_session() {
    local end=$(($(tl_now_ms) + 10000 * TM)) id=""
    while [ "$(tl_now_ms)" -lt $end ]; do
        "$UMBRA" server clients --socket "$SOCK" --json >"$WORK/live.json" 2>/dev/null &&
            id=$("$PY" "$MH" client-field "$WORK/live.json" "$1" session-id)
        [ -n "$id" ] && [ "$id" != absent ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    return 1
}

get() { # SOCKS PATH [OUT]
    curl -sS --max-time $((20 * TM)) --socks5-hostname "127.0.0.1:$1" -o "${3:-/dev/stdout}" \
        "http://localhost:$NGINX_PORT/$2" 2>&1
}

# 1. a client added at runtime
PHONE_LINK=$("$UMBRA" server add-client phone --socket "$SOCK" --no-qr 2>"$WORK/add2.err")
case "$PHONE_LINK" in umbra://*) ok "add-client on the running server printed a link" ;;
*) bad "add-client: $PHONE_LINK $(cat "$WORK/add2.err")" ;; esac
grep -q '^\[client "phone"\]' "$WORK/server.conf" && ok "phone written into server.conf" ||
    bad "phone not in server.conf"
tl_client_start "$PHONE_LINK" phone || tl_finish
PHONE_EVENTS=$EVENTS
PHONE_SOCKS=$SOCKS
tl_wait_session 1 $((15 * TM)) >/dev/null && ok "phone's session is up (no reload, no restart)" ||
    bad "phone got no session"
expect_eq "curl through phone" "$(get "$PHONE_SOCKS" small)" small-ok
"$UMBRA" server clients --socket "$SOCK" --json >"$WORK/clients.json" 2>&1 ||
    bad "server clients: $(cat "$WORK/clients.json")"
expect_eq "clients: phone's sessions" "$("$PY" "$MH" client-field "$WORK/clients.json" phone sessions)" 1
expect_eq "clients: laptop's sessions" "$("$PY" "$MH" client-field "$WORK/clients.json" laptop sessions)" 1
"$UMBRA" server clients --socket "$SOCK" >"$WORK/clients.txt" 2>&1
grep -q "^phone  *active" "$WORK/clients.txt" && ok "clients table lists phone" ||
    bad "clients table: $(cat "$WORK/clients.txt")"

# Requests the server must refuse, answered with a reason, the server unharmed.
raw() { # TEXT: sends TEXT (no newline added) on the socket, prints the answer
    "$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode()); s.shutdown(socket.SHUT_WR)
print(s.recv(65536).decode().strip())' "$SOCK" "$1"
}
for req in '{"cmd":"clients"' '{"cmd":"format-disk"}' '{"cmd":"kick","session":"1"}' \
    "{\"cmd\":\"clients\",\"pad\":\"$(head -c 5000 /dev/zero | tr '\0' x)\"}"; do
    ans=$(raw "$req" 2>&1)
    case "$ans" in '{"ok":false,"error":'*) ok "refused: ${ans:0:90}" ;; *) bad "request ${req:0:40}: '$ans'" ;; esac
done
ans=$(raw '{"cmd":"clients"}')
case "$ans" in '{"ok":true,'*) ok "a request without a newline is answered" ;; *) bad "no newline: '$ans'" ;; esac

# 2. metrics against a known transfer
M="http://127.0.0.1:$MPORT/metrics"
before=$("$PY" "$MH" metric "$M" umbra_client_bytes_total client=laptop direction=out) ||
    bad "server metrics invalid: $before"
get "$LAPTOP_SOCKS" bulk "$WORK/bulk.got" >/dev/null
expect_eq "bulk through laptop" "$(tl_sha "$WORK/bulk.got")" "$(tl_sha "$WORK/www/bulk")"
after=$("$PY" "$MH" metric "$M" umbra_client_bytes_total client=laptop direction=out) ||
    bad "server metrics invalid: $after"
size=$((MIB << 20))
d=$((after - before))
tol=$((size / 50 + 65536))
if [ "$d" -ge "$size" ] && [ "$d" -le $((size + tol)) ]; then
    ok "server metrics: laptop's bytes out grew by $d for a $size-byte download"
else
    bad "server metrics: laptop's bytes out grew by $d for a $size-byte download (tolerance $tol)"
fi
cin=$("$PY" "$MH" metric "http://127.0.0.1:$CPORT/metrics" umbra_client_bytes_total direction=in) ||
    bad "client metrics invalid: $cin"
if [ "$cin" -ge "$size" ] && [ "$cin" -le $((size + tol + 4096)) ]; then
    ok "client metrics: $cin payload bytes in for a $size-byte download"
else
    bad "client metrics: $cin payload bytes in for a $size-byte download"
fi
n=$("$PY" "$MH" metric "$M" umbra_sessions) && expect_eq "server metrics: sessions" "$n" 2
n=$("$PY" "$MH" metric "$M" umbra_handshakes_total outcome=established) &&
    expect_eq "server metrics: established handshakes" "$n" 2
"$PY" "$MH" metric "$M" umbra_resolver_latency_seconds_count >/dev/null &&
    ok "server metrics: resolver histogram present" || bad "no resolver histogram"
streams_before=$("$PY" "$MH" metric "$M" umbra_streams_total) || bad "no umbra_streams_total"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")
expect_eq "metrics: another path is 404" "$code" 404

# 3. quota: 1 MiB set at runtime, then a 4 MiB download
"$UMBRA" server set-quota phone 1m --socket "$SOCK" 2>"$WORK/q.err" || bad "set-quota: $(cat "$WORK/q.err")"
grep -A3 '^\[client "phone"\]' "$WORK/server.conf" | grep -q '^quota = 1m' && ok "quota written into server.conf" ||
    bad "no quota in server.conf: $(cat "$WORK/server.conf")"
nd=$("$PY" "$HELPER" count-event "$PHONE_EVENTS" session_down)
# A slow reader: the server can only send what the windows and buffers
# take, so the 100 ms accounting tick sees the quota reached long before
# the file is through.
curl -sS --max-time $((30 * TM)) --limit-rate 2M --socks5-hostname "127.0.0.1:$PHONE_SOCKS" \
    -o "$WORK/big.got" "http://localhost:$NGINX_PORT/big" >/dev/null 2>&1
got=$(stat -c %s "$WORK/big.got" 2>/dev/null || echo 0)
[ "$got" -lt $((24 << 20)) ] && ok "download over the 1 MiB quota stopped after $got bytes" ||
    bad "download over the quota went through ($got bytes)"
if "$PY" "$HELPER" wait-event "$PHONE_EVENTS" session_down $((nd + 1)) $((10 * TM)) >/dev/null; then
    why=$("$PY" "$MH" last-down "$PHONE_EVENTS")
    case "$why" in "quota exceeded"*) ok "phone's event: session_down, reason '$why'" ;;
    *) bad "phone's session_down reason: '$why'" ;; esac
else
    bad "phone's session did not end on the quota"
fi
"$UMBRA" server clients --socket "$SOCK" --json >"$WORK/clients.json" 2>&1
expect_eq "clients: phone over quota" "$("$PY" "$MH" client-field "$WORK/clients.json" phone state)" over-quota

# 4. kick: phone's quota lifted, its next session kicked by id
"$UMBRA" server set-quota phone off --socket "$SOCK" 2>/dev/null || bad "set-quota off"
sid=$(live_session phone) || bad "phone: no session after the quota was lifted"
nd=$("$PY" "$HELPER" count-event "$PHONE_EVENTS" session_down)
"$UMBRA" server kick "$sid" --socket "$SOCK" 2>"$WORK/kick.err" || bad "kick $sid: $(cat "$WORK/kick.err")"
if "$PY" "$HELPER" wait-event "$PHONE_EVENTS" session_down $((nd + 1)) $((10 * TM)) >/dev/null; then
    why=$("$PY" "$MH" last-down "$PHONE_EVENTS")
    case "$why" in kicked*) ok "kick of session $sid: reason '$why'" ;; *) bad "kick reason: '$why'" ;; esac
else
    bad "kicked session did not end"
fi

# 5. remove laptop: its session ends
nd=$("$PY" "$HELPER" count-event "$LAPTOP_EVENTS" session_down)
"$UMBRA" server remove-client laptop --socket "$SOCK" 2>"$WORK/rm.err" || bad "remove-client: $(cat "$WORK/rm.err")"
if "$PY" "$HELPER" wait-event "$LAPTOP_EVENTS" session_down $((nd + 1)) $((10 * TM)) >/dev/null; then
    why=$("$PY" "$MH" last-down "$LAPTOP_EVENTS")
    case "$why" in "client removed"*) ok "laptop removed: reason '$why'" ;; *) bad "removal reason: '$why'" ;; esac
else
    bad "laptop's session lives on after remove-client"
fi
grep -q '^\[client "laptop"\]' "$WORK/server.conf" && bad "laptop still in server.conf" ||
    ok "laptop's section gone from server.conf"
out=$(curl -s --max-time $((3 * TM)) --socks5-hostname "127.0.0.1:$LAPTOP_SOCKS" "http://localhost:$NGINX_PORT/small" 2>&1)
[ "$out" != small-ok ] && ok "removed laptop no longer served" || bad "removed laptop still served"

# 6. expiry in the past
live_session phone >/dev/null || bad "phone: no session after the kick"
nd=$("$PY" "$HELPER" count-event "$PHONE_EVENTS" session_down)
"$UMBRA" server set-expiry phone 2020-01-31 --socket "$SOCK" 2>/dev/null || bad "set-expiry"
if "$PY" "$HELPER" wait-event "$PHONE_EVENTS" session_down $((nd + 1)) $((10 * TM)) >/dev/null; then
    why=$("$PY" "$MH" last-down "$PHONE_EVENTS")
    case "$why" in "access expired"*) ok "expired: reason '$why'" ;; *) bad "expiry reason: '$why'" ;; esac
else
    bad "phone's session did not end on expiry"
fi
"$UMBRA" server set-expiry phone 2099-12-31 --socket "$SOCK" 2>/dev/null || bad "set-expiry 2099"
"$UMBRA" server set-quota phone 10G --socket "$SOCK" 2>/dev/null || bad "set-quota 10G"
err=$("$UMBRA" server set-quota nobody 1m --socket "$SOCK" 2>&1) && bad "set-quota of an unknown client succeeded" ||
    ok "unknown client refused: $err"

# 7. the config written back, read by a fresh server
expect_eq "server.conf mode" "$(stat -c %a "$WORK/server.conf")" 600
grep -q "operator's own machine" "$WORK/server.conf" && bad "laptop's comment survived its section's removal" ||
    ok "removed section went with its comment"
grep -q '^# Authorised clients are added by' "$WORK/server.conf" && ok "other comments kept" ||
    bad "comments lost: $(cat "$WORK/server.conf")"
# Counters never go down, though the sessions that counted them are gone.
streams_after=$("$PY" "$MH" metric "$M" umbra_streams_total)
[ "${streams_after:-0}" -ge "${streams_before:-1}" ] && [ "${streams_before:-0}" -ge 2 ] &&
    ok "umbra_streams_total $streams_before, then $streams_after after those sessions ended" ||
    bad "umbra_streams_total went from $streams_before to $streams_after"
tl_stop "phone client" "$CLIENT_PID" $((5 * TM))
tl_stop "server" "$SERVER_PID" $((10 * TM))
SERVER_PID=""
"$UMBRA" server -c "$WORK/server.conf" --check >"$WORK/check.out" 2>&1 && ok "written config is valid" ||
    bad "written config: $(cat "$WORK/check.out")"
tl_server_start || tl_finish
"$UMBRA" server clients --socket "$SOCK" --json >"$WORK/clients2.json" 2>&1 || bad "fresh server: clients"
expect_eq "fresh server: laptop" "$("$PY" "$MH" client-field "$WORK/clients2.json" laptop name)" absent
expect_eq "fresh server: phone's quota" "$("$PY" "$MH" client-field "$WORK/clients2.json" phone quota_text)" 10g
expect_eq "fresh server: phone's expiry" "$("$PY" "$MH" client-field "$WORK/clients2.json" phone expires)" 2099-12-31
tl_client_start "$PHONE_LINK" phone2 || tl_finish
tl_wait_session 1 $((15 * TM)) >/dev/null && ok "phone's link works with the fresh server" ||
    bad "phone: no session with the fresh server"
expect_eq "curl through phone (fresh server)" "$(get "$SOCKS" small)" small-ok
tl_tunnel_down
tl_finish
