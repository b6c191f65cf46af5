#!/usr/bin/env bash
# Session resumption (issue 11): the TCP connection carrying the session is
# killed (`ss -K`) in the middle of a 64 MiB download, twice: once the
# client's end (filter on the destination port = the server's), once the
# server's end (filter on the source port). Both ends are in this one
# namespace; each kill must take exactly that socket pair down. The
# download must complete with sha256 intact, the client must report the
# breaks as resumptions (session_resumed >= 2, exactly one session_up, no
# session_lost), and `umbra status` must show `resumptions: N` with N >= 2.
# Before resumption, the first kill ended such a download with curl exit 18.
#
#   curl ─► umbra client SOCKS5 ══ tcp :SPORT (killed twice) ══► umbra server ─► nginx
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init resume_kill
. "$SRC/tests/integration/lib_middlebox.sh"
tl_need_umbra "killing the session's connection"
tl_need curl nginx ss
tl_nginx
MIB=64
BYTES=$((MIB * 1024 * 1024))
head -c $BYTES /dev/urandom >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
# Slow enough that both kills land in the middle (about 8 s, 16 under sanitizers).
RATE=8M
[ "$SAN" = 1 ] && RATE=4M
tl_tunnel_up

# kill_end N WHICH: kill the session's connection from the client's end
# (WHICH=client: the socket whose peer port is SPORT) or the server's end
# (WHICH=server: the socket whose own port is SPORT), then check that the
# pair is gone and a new connection to SPORT exists.
kill_end() {
    local n=$1 which=$2 filt before after pair new
    if [ "$which" = client ]; then filt="( dport = :$SPORT )"; else filt="( sport = :$SPORT )"; fi
    before=$(mb_ss "" "$filt" | mb_pairs)
    if [ "$(grep -c . <<<"$before")" != 1 ]; then
        bad "kill $n ($which end): want exactly one socket for '$filt' before the kill, got: $(tr '\n' ';' <<<"$before")"
        return 1
    fi
    pair=$before
    mb_ss_kill "" "$filt"
    # The pair (seen from either end) must be gone at once.
    after=$( { mb_ss "" "( dport = :$SPORT )"; mb_ss "" "( sport = :$SPORT )"; } | mb_pairs)
    local rev
    rev=$(awk '{ print $2, $1 }' <<<"$pair")
    if grep -qxF -e "$pair" -e "$rev" <<<"$after"; then
        bad "kill $n ($which end): $pair still established after ss -K"
        return 1
    fi
    ok "kill $n: ss -K took down the $which end ($pair); the pair is gone"
    # A new connection carries the session on.
    local end=$(($(tl_now_ms) + 10000 * TM))
    while [ "$(tl_now_ms)" -lt $end ]; do
        new=$(mb_ss "" "( dport = :$SPORT )" | mb_pairs | head -n 1)
        if [ -n "$new" ] && [ "$new" != "$pair" ] && [ "$new" != "$rev" ]; then
            ok "kill $n: the client is on a new connection ($new)"
            return 0
        fi
        sleep 0.05
    done
    bad "kill $n: no new connection to :$SPORT within $((10 * TM)) s"
}

SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
t0=$(tl_now_ms)
curl -sS --max-time $((120 * TM)) --speed-limit 1 --speed-time $((30 * TM)) --limit-rate $RATE "${SOX[@]}" \
    -o "$WORK/down" "http://localhost:$NGINX_PORT/blob" 2>"$WORK/down.err" &
CURL_PID=$!
TL_PIDS+=("$CURL_PID")
kills=0
for step in "1 client 25" "2 server 55" "3 client 80"; do
    read -r k end pct <<<"$step"
    mb_wait_size "$WORK/down" $((BYTES * pct / 100)) $((60 * TM)) "$CURL_PID"
    case $? in
    0) kill_end "$k" "$end" && kills=$((kills + 1)) ;;
    1) bad "kill $k: the download did not reach $pct % in $((60 * TM)) s ($(mb_size "$WORK/down") bytes)" ;;
    2) bad "kill $k: the download had ended at $(mb_size "$WORK/down") bytes before reaching $pct % (a kill before broke it?)" ;;
    esac
done
wait "$CURL_PID"
rc=$?
ms=$(($(tl_now_ms) - t0))
if [ "$rc" = 0 ] && [ "$(tl_sha "$WORK/down")" = "$BLOB_SHA" ]; then
    ok "$MIB MiB download survived $kills kills, sha256 ok ($ms ms, $(mb_mbps $BYTES $ms) MB/s at --limit-rate $RATE)"
else
    bad "$MIB MiB download across the kills: curl exit $rc, $(mb_size "$WORK/down") of $BYTES bytes; $(cat "$WORK/down.err")"
fi
rm -f "$WORK/down"

[ $kills -ge 2 ] || bad "only $kills kills done (want 3)"
want=$((kills > 2 ? kills : 2))
res=$(mb_count "$EVENTS" session_resumed)
[ "$res" -ge $want ] && ok "events: $res session_resumed for $kills kills (last reason: $(mb_event_field "$EVENTS" session_resumed reason))" ||
    bad "events: $res session_resumed for $kills kills (want >= $want)"
expect_eq "events: exactly one session_up (resumptions are not new sessions)" "$(mb_count "$EVENTS" session_up)" 1
expect_eq "events: no session_lost" "$(mb_count "$EVENTS" session_lost)" 0
mb_status "$CONTROL" resumptions
[ -n "$MB_STATUS_N" ] && [ "$MB_STATUS_N" -ge $want ] && ok "umbra status: $MB_STATUS_LINE" ||
    bad "umbra status: want 'resumptions: N' with N >= $want, got: $MB_STATUS_LINE"

got=$(curl -sS --max-time $((20 * TM)) "${SOX[@]}" "http://localhost:$NGINX_PORT/small" 2>&1)
expect_eq "a new request after the kills" "$got" small-ok
kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
tl_tunnel_down
tl_finish
