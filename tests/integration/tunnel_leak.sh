#!/usr/bin/env bash
# Resource leaks: 10,000 sequential connections (1,000 in the sanitizer build)
# through the SOCKS5 proxy, each a small GET checked; the open descriptors of
# client and server must not grow (slack 2) nor their RSS by more than 20 MiB.
# In the release build, when valgrind is installed, a shorter run with both
# programs under valgrind --leak-check=full must end with no error and no
# definite/indirect leak (ASan's leak checker covers the sanitizer build,
# through the exit status checked at SIGTERM).
#
#   tunnel_helper.py seq ──► umbra client SOCKS5 :S ══ tcp ══► umbra server ──► nginx :N /small
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_leak
tl_need nginx
tl_nginx
tl_tunnel_up

N=10000
[ "$SAN" = 1 ] && N=1000
[ -n "${UMBRA_TEST_CONNS:-}" ] && N=$UMBRA_TEST_CONNS
RSS_MAX_KIB=$((20 * 1024))
echo "# $N sequential connections, RSS growth bound $((RSS_MAX_KIB / 1024)) MiB"

seqrun() { # COUNT
    timeout $((600 * TM)) "$PY" "$HELPER" seq "$SOCKS" 127.0.0.1 "$NGINX_PORT" /small "$1" $((500 * TM)) 2>&1
}
measure() { # PID -> "fds rss_kib"
    echo "$(tl_fd_count "$1") $(tl_rss_kib "$1")"
}

# Warm up (allocator pools, session buffers), let closes settle, measure.
out=$(seqrun 200) || bad "warm-up: $out"
sleep 1.5
read -r cfd0 crss0 <<<"$(measure "$CLIENT_PID")"
[ -n "$SERVER_PID" ] && read -r sfd0 srss0 <<<"$(measure "$SERVER_PID")"

if out=$(seqrun "$N"); then ok "sequential: $out"; else bad "sequential: $out"; fi
sleep 2 # connections being closed finish within the drain period
read -r cfd1 crss1 <<<"$(measure "$CLIENT_PID")"
check() { # NAME fd0 fd1 rss0 rss1
    if [ -n "$3" ] && [ "$3" -le $(($2 + 2)) ]; then ok "$1 descriptors: $2 before, $3 after"; else bad "$1 descriptors grew: $2 -> $3"; fi
    if [ -n "$5" ] && [ $(($5 - $4)) -le $RSS_MAX_KIB ]; then
        ok "$1 RSS: $(($4 / 1024)) MiB before, $(($5 / 1024)) MiB after"
    else
        bad "$1 RSS grew: $4 -> $5 KiB"
    fi
}
check client "$cfd0" "$cfd1" "$crss0" "$crss1"
if [ -n "$SERVER_PID" ]; then
    read -r sfd1 srss1 <<<"$(measure "$SERVER_PID")"
    check server "$sfd0" "$sfd1" "$srss0" "$srss1"
fi
tl_tunnel_down

# valgrind: release build only (not with ASan, not in the harness self-test).
if [ "$SAN" = 0 ] && [ -z "$DIRECT" ] && command -v valgrind >/dev/null 2>&1; then
    VN=${UMBRA_TEST_VG_CONNS:-200}
    VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect
        --show-leak-kinds=definite,indirect --error-exitcode=99)
    tl_bg "$WORK/server-vg.log" "${VG[@]}" "$UMBRA" server -c "$WORK/server.conf" --allow 127.0.0.1/32
    SERVER_PID=$BG_PID
    tl_wait_listen "$SPORT" 60 "$SERVER_PID" || bad "server under valgrind did not listen"
    SOCKS=$(tl_free_port)
    EVENTS=$WORK/client-vg.events
    tl_bg "$WORK/client-vg.log" "${VG[@]}" "$UMBRA" client --link "$LINK" --socks "127.0.0.1:$SOCKS" \
        --events "$EVENTS"
    CLIENT_PID=$BG_PID
    if out=$(tl_wait_session 1 60) && tl_wait_listen "$SOCKS" 30 "$CLIENT_PID"; then
        if out=$(seqrun "$VN"); then ok "under valgrind: $out"; else bad "under valgrind: $out"; fi
    else
        bad "session under valgrind: $out"
    fi
    tl_stop "client under valgrind" "$CLIENT_PID" 60
    tl_stop "server under valgrind" "$SERVER_PID" 60
    for f in "$WORK"/client-vg.log "$WORK"/server-vg.log; do
        if grep -q '^==[0-9]*==' "$f"; then
            bad "valgrind reports in $f:"
            grep '^==[0-9]*==' "$f" | head -40
        fi
    done
else
    echo "# valgrind run skipped (sanitizer build, harness self-test, or valgrind not installed)"
fi
tl_finish
