#!/usr/bin/env bash
# Resumption impossible (issue 11): the server is stopped and started again
# with the same config in the middle of a slow download, twice: SIGTERM (it
# says it is going away and drains its sessions) and SIGKILL (the connection
# just breaks; the client tries to resume). The
# restarted server knows nothing of the old session, so the client must make
# a new one at once: session_lost, then session_up within 2 s (4 s under
# sanitizers) of the new server listening (measured from its "listening on"
# log line, or from when its port was seen listening, whichever is earlier);
# the old stream fails promptly (curl exits non-zero, no later than that
# bound + 1 s after the server is back; socket buffers capped at 256 KiB so
# that the rate-limited curl cannot spend seconds reading what the kernel
# held for it before it sees the reset), and new requests through the same
# client work.
#
#   curl --limit-rate ─► umbra client SOCKS5 ══ tcp ══► umbra server (SIGTERM / SIGKILL, started again) ─► nginx
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init resume_restart
. "$SRC/tests/integration/lib_middlebox.sh"
tl_need_umbra "restarting the server"
tl_need curl nginx
# Small socket buffers in this private namespace: what the kernel holds for
# the rate-limited curl (it drains at 1 MiB/s before it reads the reset)
# must not hide when the client ends the stream.
BUFS=0
if [ "$TL_NETNS" = 1 ] && sysctl -qw net.ipv4.tcp_rmem="4096 65536 262144" net.ipv4.tcp_wmem="4096 65536 262144" 2>/dev/null; then
    BUFS=1
fi
tl_nginx
head -c $((64 * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
tl_tunnel_up
LIMIT_MS=2000
[ "$SAN" = 1 ] && LIMIT_MS=4000
SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
got=$(curl -sS --max-time $((20 * TM)) "${SOX[@]}" "http://localhost:$NGINX_PORT/small" 2>&1)
expect_eq "request before the restart" "$got" small-ok

# restart_round ROUND SIG: a slow download in flight, the server stopped with
# SIG and started again after 1 s; checks the events, the old stream and a
# new request.
restart_round() {
    local round=$1 sig=$2 n_up n_lost t_term end n_listen0 t_seen t_log t_back t_up d bound rc t_end got
    # A slow download (1 MiB/s: about a minute for 64 MiB) in flight; its exit
    # status and end time go to curl.rc.
    (
        curl -sS --max-time $((120 * TM)) --limit-rate 1M "${SOX[@]}" -o "$WORK/slow.$round" \
            "http://localhost:$NGINX_PORT/blob" 2>"$WORK/slow.$round.err"
        echo "$? $(tl_now_ms)" >"$WORK/curl.$round.rc"
    ) &
    SLOW_PID=$!
    TL_PIDS+=("$SLOW_PID")
    mb_wait_size "$WORK/slow.$round" $((2 * 1024 * 1024)) $((20 * TM)) "$SLOW_PID" ||
        { bad "round $round (SIG$sig): the slow download did not get 2 MiB: $(cat "$WORK/slow.$round.err")"; return 1; }
    ok "round $round (SIG$sig): slow download in flight ($(mb_size "$WORK/slow.$round") bytes)"
    n_up=$(mb_count "$EVENTS" session_up)
    n_lost=$(mb_count "$EVENTS" session_lost)

    t_term=$(tl_now_ms)
    kill -"$sig" "$SERVER_PID"
    end=$((t_term + 15000 * TM))
    while kill -0 "$SERVER_PID" 2>/dev/null && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.05; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        bad "round $round (SIG$sig): server still running $((15 * TM)) s after SIG$sig"
        kill -KILL "$SERVER_PID"
    fi
    wait "$SERVER_PID" 2>/dev/null
    ok "round $round (SIG$sig): server stopped $(($(tl_now_ms) - t_term)) ms after SIG$sig"
    sleep 1
    n_listen0=$(grep -c 'listening on' "$WORK/server.log")
    tl_server_start || return 1
    t_seen=$(tl_now_ms)
    # The new server's "listening on" line (its own clock, ms); it may be
    # written just after the port listens.
    end=$((t_seen + 2000 * TM))
    while [ "$(grep -c 'listening on' "$WORK/server.log")" -le "$n_listen0" ] && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.05; done
    t_log=$(grep 'listening on' "$WORK/server.log" | sed -n "$((n_listen0 + 1))p" | cut -d' ' -f1 |
        "$PY" -c 'import datetime, sys; s = sys.stdin.read().strip().replace("Z", "+00:00"); print(int(datetime.datetime.fromisoformat(s).timestamp() * 1000) if s else "")' 2>/dev/null)
    t_back=$t_seen
    [ -n "$t_log" ] && [ "$t_log" -lt "$t_seen" ] && t_back=$t_log
    ok "round $round (SIG$sig): server back (listening log line $([ -n "$t_log" ] && echo "$((t_seen - t_log)) ms before" || echo "missing,") the port was seen listening)"

    # The session: lost (resumption impossible), then a new one.
    if "$PY" "$HELPER" wait-event "$EVENTS" session_lost $((n_lost + 1)) $((10 * TM)) >/dev/null; then
        ok "round $round (SIG$sig): events: session_lost (reason: $(mb_event_field "$EVENTS" session_lost reason))"
    else
        bad "round $round (SIG$sig): events: no session_lost after the restart"
    fi
    if "$PY" "$HELPER" wait-event "$EVENTS" session_up $((n_up + 1)) $((10 * TM)) >/dev/null; then
        t_up=$(mb_event_ms "$EVENTS" session_up $((n_up + 1)))
        [ -n "$t_up" ] || t_up=$(tl_now_ms)
        d=$((t_up - t_back))
        [ $d -le $LIMIT_MS ] && ok "round $round (SIG$sig): new session_up $d ms after the server was back (bound $LIMIT_MS ms)" ||
            bad "round $round (SIG$sig): new session_up $d ms after the server was back (bound $LIMIT_MS ms)"
    else
        bad "round $round (SIG$sig): events: no new session_up within $((10 * TM)) s of the server being back"
    fi
    mb_event_order "$EVENTS" session_lost $((n_lost + 1)) session_up $((n_up + 1)) && ok "round $round (SIG$sig): events: session_lost comes before the new session_up" ||
        bad "round $round (SIG$sig): events: want session_lost before the new session_up: $(grep -o '"event":"[a-z_]*"' "$EVENTS" | tr '\n' ' ')"

    # The old stream: failed, promptly.
    bound=$((t_back + LIMIT_MS + 1000))
    # Without the small buffers, up to the host's tcp_rmem max (6 MiB) at 1 MiB/s.
    [ $BUFS = 1 ] || bound=$((bound + 7000))
    tl_wait_file "$WORK/curl.$round.rc" $(((bound - $(tl_now_ms)) / 1000 + 5 * TM)) || true
    if [ -s "$WORK/curl.$round.rc" ]; then
        read -r rc t_end <"$WORK/curl.$round.rc"
        if [ "$rc" != 0 ] && [ "$t_end" -le $bound ]; then
            ok "round $round (SIG$sig): old stream failed: curl exit $rc $((t_end - t_back)) ms after the server was back ($(mb_size "$WORK/slow.$round") bytes; $(tr -d '\n' <"$WORK/slow.$round.err"))"
        else
            bad "round $round (SIG$sig): old stream: curl exit $rc $((t_end - t_back)) ms after the server was back (want non-zero, by $((bound - t_back)) ms)"
        fi
    else
        bad "round $round (SIG$sig): old stream: curl still running $(($(tl_now_ms) - t_back)) ms after the server was back"
    fi

    got=$(curl -sS --max-time $((20 * TM)) "${SOX[@]}" "http://localhost:$NGINX_PORT/small" 2>&1)
    expect_eq "round $round (SIG$sig): new request through the same client" "$got" small-ok
}

# SIGTERM: the server says it is going away and drains; SIGKILL: the
# connection just breaks, the client tries to resume and the new server
# does not know the session.
restart_round 1 TERM
restart_round 2 KILL
got=$(curl -sS --max-time $((60 * TM)) --speed-limit 1024 --speed-time $((15 * TM)) "${SOX[@]}" \
    "http://localhost:$NGINX_PORT/blob" | sha256sum | cut -d' ' -f1)
expect_eq "64 MiB download over the new session, sha256" "$got" "$BLOB_SHA"
expect_eq "events: three session_up in all" "$(mb_count "$EVENTS" session_up)" 3
expect_eq "events: no session_resumed (a restarted server cannot resume)" "$(mb_count "$EVENTS" session_resumed)" 0
kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
tl_tunnel_down
tl_finish
