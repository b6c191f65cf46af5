#!/usr/bin/env bash
# Refusals. Egress: the server allows 127.0.0.1/32 only, so 127.0.0.2 and ::1
# (loopback, outside the rule: a bug can never send traffic elsewhere) must
# come back as SOCKS5 reply 0x02 and HTTP 403. Authentication: a client whose
# key the server does not know (and one that has the wrong server key) gets
# no session, and a raw prober gets the probe reaction: not one byte back,
# then a close after the configured delay (200..400 ms here).
#
#   tunnel_helper.py / curl ──► umbra client "laptop" ══ tcp ══► umbra server :SPORT ──► nginx :N
#                               SOCKS5 :S, HTTP :H               --allow 127.0.0.1/32
#   umbra client "mallory" (key removed from server.conf) ══ tcp ══► :SPORT   (no session)
#   umbra client "stranger" (link of another server)      ══ tcp ══► :SPORT   (no session)
#   tunnel_helper.py probe (random bytes)                 ──────────► :SPORT   (silence, close)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_refuse
tl_need curl nginx
tl_nginx

if [ -n "$DIRECT" ]; then
    tl_tunnel_up # the proxy driver: fast open off (its default)
else
    tl_server_init
    # A second client, then its key removed: a well-formed link with the right
    # server key and a client key the server does not know.
    LINK_M=$("$UMBRA" server add-client -c "$WORK/server.conf" mallory --no-qr) || bad "add-client mallory"
    sed -i '/^\[client "mallory"\]/,$d' "$WORK/server.conf"
    grep -q mallory "$WORK/server.conf" && bad "mallory still in server.conf"
    # Another server's link (other server key, other client key) aimed at our port.
    "$UMBRA" server init -c "$WORK/other.conf" --listen "127.0.0.1:$(tl_free_port)" >/dev/null 2>&1
    LINK_W=$("$UMBRA" server add-client -c "$WORK/other.conf" stranger --no-qr | sed "s/@127\.0\.0\.1:[0-9]*/@127.0.0.1:$SPORT/")
    case "$LINK_W" in *"@127.0.0.1:$SPORT"*) ;; *) bad "could not aim the stranger's link at port $SPORT: $LINK_W" ;; esac
    tl_server_start || tl_finish
    # Truthful reply codes are what this test checks: fast open off.
    tl_client_start "$LINK" client --fast-open off || tl_finish
    t0=$(tl_now_ms)
    if out=$(tl_wait_session 1 $((15 * TM))); then ok "session up in $(($(tl_now_ms) - t0)) ms"; else
        bad "session: $out"
        tl_finish
    fi
fi

code() { timeout $((30 * TM)) "$PY" "$HELPER" socks-code "$SOCKS" "$@" 2>&1; }
status() { timeout $((30 * TM)) "$PY" "$HELPER" http-status "$HTTP" "$@" 2>&1; }

# Controls: the allowed address works.
expect_eq "SOCKS5 CONNECT 127.0.0.1 (allowed): reply 0x00" "$(code 127.0.0.1 "$NGINX_PORT")" 0
got=$(curl -sS --max-time $((20 * TM)) -x "http://127.0.0.1:$HTTP" "http://127.0.0.1:$NGINX_PORT/small" 2>&1)
expect_eq "HTTP proxy GET 127.0.0.1 (allowed)" "$got" small-ok

# Egress refusals.
expect_eq "SOCKS5 CONNECT 127.0.0.2: reply 0x02 (not allowed)" "$(code 127.0.0.2 "$NGINX_PORT")" 2
expect_eq "SOCKS5 CONNECT [::1] (outside the rule): reply 0x02" "$(code ::1 "$NGINX_PORT")" 2
expect_eq "HTTP proxy GET http://127.0.0.2/: 403" "$(status get 127.0.0.2 "$NGINX_PORT")" 403
expect_eq "HTTP proxy CONNECT 127.0.0.2: 403" "$(status connect 127.0.0.2 "$NGINX_PORT")" 403
got=$(curl -s -o /dev/null -w '%{http_code}' --max-time $((20 * TM)) -x "http://127.0.0.1:$HTTP" "http://127.0.0.2:$NGINX_PORT/small")
expect_eq "curl via HTTP proxy to 127.0.0.2: 403" "$got" 403
curl -s -o /dev/null --max-time $((20 * TM)) --socks5 "127.0.0.1:$SOCKS" "http://127.0.0.2:$NGINX_PORT/small"
expect_eq "curl via SOCKS5 to 127.0.0.2: proxy error (curl exit 97)" "$?" 97
if grep -q '^GET /small' "$WORK/nginx.access" && [ "$(grep -c '^GET /small' "$WORK/nginx.access")" = 1 ]; then
    ok "nginx saw only the allowed request"
else
    bad "nginx access log: $(cat "$WORK/nginx.access")"
fi

if [ -z "$DIRECT" ]; then
    # Clients the server does not know: no session within the bound.
    BOUND=$((3 * TM))
    MAIN=("$SOCKS" "$HTTP" "$CLIENT_PID" "$EVENTS")
    tl_client_start "$LINK_M" client-mallory
    PID_M=$CLIENT_PID
    tl_client_start "$LINK_W" client-stranger
    PID_W=$CLIENT_PID
    sleep "$BOUND"
    n=$("$PY" "$HELPER" count-event "$WORK/client-mallory.events" session_up)
    expect_eq "unknown client key: no session_up within $BOUND s" "$n" 0
    n=$("$PY" "$HELPER" count-event "$WORK/client-stranger.events" session_up)
    expect_eq "wrong server key: no session_up within $BOUND s" "$n" 0
    kill -0 "$PID_M" 2>/dev/null && ok "unknown-key client still running (retrying)" || bad "unknown-key client exited"
    kill "$PID_M" "$PID_W" 2>/dev/null
    SOCKS=${MAIN[0]} HTTP=${MAIN[1]} CLIENT_PID=${MAIN[2]} EVENTS=${MAIN[3]}

    # The probe reaction: nothing ever comes back; FIN after the delay drawn
    # in [200, 400] ms at accept, whatever arrived.
    HI=$((400 + 600 * TM))
    for n in 0 1 64 300 2047 5000; do
        out=$(timeout $((20 * TM)) "$PY" "$HELPER" probe "$SPORT" $n 10 2>&1)
        b=$(echo "$out" | sed -n 's/^bytes=\([0-9]*\) .*/\1/p')
        ms=$(echo "$out" | sed -n 's/.*closed_ms=\(-\{0,1\}[0-9]*\)$/\1/p')
        if [ "$b" = 0 ] && [ -n "$ms" ] && [ "$ms" -ge 180 ] && [ "$ms" -le $HI ]; then
            ok "probe with $n random bytes: no byte back, closed after $ms ms"
        else
            bad "probe with $n random bytes: $out (want bytes=0, close in 180..$HI ms)"
        fi
    done
    # The server is unharmed: the known client still works.
    got=$(curl -sS --max-time $((20 * TM)) --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$NGINX_PORT/small" 2>&1)
    expect_eq "known client still served after the refusals and probes" "$got" small-ok
    kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"
fi
tl_tunnel_down
tl_finish
