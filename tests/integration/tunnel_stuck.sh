#!/usr/bin/env bash
# Stuck streams must not freeze the session (audit item 1). 16 downloads
# whose reader never reads, and 16 uploads to a destination that accepts and
# never reads, fill their stream windows; a new stream on the same session
# must still move 1 MiB down and 1 MiB up within seconds. Before the fix the
# stuck streams held the whole session window and the new stream got no byte.
#
#   stream_helper stuckget x16 ─┐                                 ┌─► nginx :N (/blob, never read)
#   stream_helper stuckput x16 ─┼► umbra client :S ══ tcp ══► umbra server ─┼─► blackhole :B (never reads)
#   curl 1 MiB down / up ───────┘                                 └─► nginx :N (/mib, /upload -> sink)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_stuck
tl_need_umbra "stuck streams on one session"
tl_need curl nginx
tl_nginx
SHELPER=$SRC/tests/integration/stream_helper.py
head -c $((32 * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/www/mib"
tl_tunnel_up
SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
HOLD=$((120 * TM))
LIMIT=$((10 * TM)) # seconds for 1 MiB; it takes well under one on an idle machine

tl_bg "$WORK/blackhole.log" "$PY" "$SHELPER" blackhole "$WORK/blackhole.port" $((HOLD + 60))
tl_wait_file "$WORK/blackhole.port" 10 || { bad "blackhole listener did not start"; tl_finish; }
BH_PORT=$(cat "$WORK/blackhole.port")

# 16 stuck downloads, then 16 stuck uploads, all on the one session.
tl_bg "$WORK/stuckget.out" "$PY" "$SHELPER" stuckget "$SOCKS" localhost "$NGINX_PORT" /blob 16 $HOLD
tl_bg "$WORK/stuckput.out" "$PY" "$SHELPER" stuckput "$SOCKS" 127.0.0.1 "$BH_PORT" 16 $HOLD
for f in stuckget stuckput; do
    end=$(($(tl_now_ms) + 30000 * TM))
    while ! grep -q ready "$WORK/$f.out" 2>/dev/null && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.1; done
    if grep -q ready "$WORK/$f.out"; then ok "$f: 16 streams open and stuck"; else
        bad "$f: streams did not open: $(tail -3 "$WORK/$f.out")"
        tl_finish
    fi
done
sleep 2 # let the stuck downloads fill their windows

t0=$(tl_now_ms)
got=$(curl -s --max-time $LIMIT "${SOX[@]}" "http://localhost:$NGINX_PORT/mib" | sha256sum | cut -d' ' -f1)
took=$(($(tl_now_ms) - t0))
expect_eq "1 MiB download beside 32 stuck streams (${took} ms, bound ${LIMIT} s)" "$got" "$(tl_sha "$WORK/www/mib")"

t0=$(tl_now_ms)
got=$(curl -s --max-time $LIMIT "${SOX[@]}" --data-binary @"$WORK/www/mib" -H 'Content-Type: application/octet-stream' \
    "http://localhost:$NGINX_PORT/upload")
took=$(($(tl_now_ms) - t0))
expect_eq "1 MiB upload beside 32 stuck streams (${took} ms, bound ${LIMIT} s)" "$got" "$(tl_sha "$WORK/www/mib")"

kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"
tl_tunnel_down
tl_finish
