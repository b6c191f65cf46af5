#!/usr/bin/env bash
# Fast open (docs/internals/proxy.md, CONFIG.md `fast-open`). With the default
# (on), curl's request through SOCKS5 and through HTTP CONNECT rides in the
# OPEN frame: the server counts peer OPENs that carried early data and logs
# the count when the session ends ("N streams (M with early data)"). A
# refused destination (a port nothing listens on) resets the client
# connection: curl fails with "recv failure" (56) at once, not a timeout. With
# --fast-open off, the same destination gets the truthful SOCKS5 reply 0x05
# and HTTP 502, and a SOCKS5 GET sends no early data (curl waits for the
# reply before it writes).
#
#   curl ──► umbra client ══ tcp ══► umbra server ──► nginx 127.0.0.1:N
#            SOCKS5 :S, HTTP :H       resume-grace 0    127.0.0.1:DEAD (nothing listens: RST)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init fast_open
tl_need curl nginx
tl_need_umbra
tl_nginx
tl_server_init
# The session ends with its connection, so its stats are logged at once.
sed -i '/^\[server\]/a resume-grace = 0' "$WORK/server.conf"
tl_server_start || tl_finish
DEAD=$(tl_free_port)
T=$((20 * TM))

# early_count K: the early-data count of the K-th session that ended.
early_count() {
    local k=$1 end=$(($(tl_now_ms) + 10000 * TM)) line
    while :; do
        line=$(grep 'with early data' "$WORK/server.log" | sed -n "${k}p")
        [ -n "$line" ] && break
        [ "$(tl_now_ms)" -lt $end ] || { echo "none"; return; }
        sleep 0.05
    done
    echo "$line" | sed -n 's/.*(\([0-9]*\) with early data).*/\1/p'
}
stop_client() {
    kill "$CLIENT_PID" 2>/dev/null
    wait "$CLIENT_PID" 2>/dev/null
}

# --- fast open on (the default) --------------------------------------------
tl_client_start "$LINK" client || tl_finish
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "no session"; tl_finish; }
got=$(curl -sS --max-time $T --socks5-hostname "127.0.0.1:$SOCKS" "http://127.0.0.1:$NGINX_PORT/small" 2>&1)
expect_eq "fast open: curl via SOCKS5" "$got" small-ok
got=$(curl -sS --max-time $T -p -x "http://127.0.0.1:$HTTP" "http://127.0.0.1:$NGINX_PORT/small" 2>&1)
expect_eq "fast open: curl via HTTP CONNECT (-p)" "$got" small-ok
t0=$(tl_now_ms)
curl -s -o /dev/null --max-time $T --socks5 "127.0.0.1:$SOCKS" "http://127.0.0.1:$DEAD/" 2>/dev/null
rc=$?
ms=$(($(tl_now_ms) - t0))
expect_eq "fast open: refused destination via SOCKS5 resets (curl 56, recv failure; ${ms} ms)" "$rc" 56
t0=$(tl_now_ms)
curl -s -o /dev/null --max-time $T -p -x "http://127.0.0.1:$HTTP" "http://127.0.0.1:$DEAD/" 2>/dev/null
rc=$?
ms=$(($(tl_now_ms) - t0))
expect_eq "fast open: refused destination via CONNECT resets (curl 56; ${ms} ms)" "$rc" 56
got=$(curl -sS --max-time $T --socks5-hostname "127.0.0.1:$SOCKS" "http://127.0.0.1:$NGINX_PORT/small" 2>&1)
expect_eq "fast open: the session still serves after the refusals" "$got" small-ok
stop_client
# The three GETs, and the refused requests (curl wrote its GET at once too).
n=$(early_count 1)
if [ "$n" != none ] && [ "$n" -ge 3 ]; then ok "fast open: $n OPENs carried curl's request (early data)"; else
    bad "fast open: OPENs with early data: $n (want >= 3): $(grep 'session of' "$WORK/server.log" | tail -n 2)"
fi

# --- fast open off: truthful replies, no early data for SOCKS5 --------------
tl_client_start "$LINK" client-off --fast-open off || tl_finish
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "no session (fast open off)"; tl_finish; }
got=$(timeout $((30 * TM)) "$PY" "$HELPER" socks-code "$SOCKS" 127.0.0.1 "$DEAD" 2>&1)
expect_eq "fast open off: SOCKS5 to a refused destination: reply 0x05" "$got" 5
got=$(timeout $((30 * TM)) "$PY" "$HELPER" http-status "$HTTP" connect 127.0.0.1 "$DEAD" 2>&1)
expect_eq "fast open off: CONNECT to a refused destination: 502" "$got" 502
got=$(curl -sS --max-time $T --socks5-hostname "127.0.0.1:$SOCKS" "http://127.0.0.1:$NGINX_PORT/small" 2>&1)
expect_eq "fast open off: curl via SOCKS5" "$got" small-ok
stop_client
n=$(early_count 2)
expect_eq "fast open off: no OPEN carried early data" "$n" 0

"$UMBRA" client --help 2>&1 | grep -q -- '--fast-open' && ok "umbra client --help lists --fast-open" ||
    bad "umbra client --help does not list --fast-open"
out=$("$UMBRA" client --link "$LINK" --fast-open maybe --check 2>&1)
expect_eq "--fast-open maybe: usage error (exit 1)" "$?" 1
tl_finish
