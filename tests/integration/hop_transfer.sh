#!/usr/bin/env bash
# Port hopping (issue 11): a tcp transport with `ports = 20000-20999` and
# `hop = 2s` (made by `umbra server init --ports --hop`, carried by the
# add-client link). A 64 MiB download rate-limited to last about 11 s spans
# several slots and must arrive intact; a bounded background loop samples
# `ss -tn` and the client's connections must have used at least 3 different
# server ports, each the port of the sample's slot (or a neighbour) by the
# derivation of docs/PROTOCOL.md, recomputed here in Python; the server
# listens on the current slot's port; the events show session_rotated with
# reason "hop" and exactly one session_up.
#
#   curl ─► umbra client SOCKS5 ══ tcp 127.0.0.1:PORT(slot) ══► umbra server (listens on slots s-1, s, s+1) ─► nginx
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init hop_transfer
. "$SRC/tests/integration/lib_middlebox.sh"
tl_need_umbra "port hopping"
tl_need curl nginx ss
tl_nginx
LO=20000
HI=20999
HOP_MS=2000
MIB=64
BYTES=$((MIB * 1024 * 1024))
head -c $BYTES /dev/urandom >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")

# lst_ports: the ports in LO..HI listening here.
lst_ports() {
    local h p
    for h in $(awk 'FNR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
        p=$((16#$h))
        [ $p -ge $LO ] && [ $p -le $HI ] && echo $p
    done | sort -un | tr '\n' ' '
}

SPORT=$(tl_free_port)
"$UMBRA" server init -c "$WORK/server.conf" --listen "127.0.0.1:$SPORT" --ports "$LO-$HI" --hop 2s >"$WORK/init.out" 2>&1 ||
    { bad "umbra server init --ports $LO-$HI --hop 2s (port hopping not landed?): $(head -c 300 "$WORK/init.out")"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
grep -q "^ports *= *$LO-$HI" "$WORK/server.conf" && grep -q "^hop *= *2s" "$WORK/server.conf" &&
    ok "server init wrote ports and hop into the transport section" ||
    bad "server config lacks 'ports = $LO-$HI' / 'hop = 2s': $(grep -v private-key "$WORK/server.conf" | tr '\n' '|')"
LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>"$WORK/add.err") ||
    { bad "umbra server add-client: $(cat "$WORK/add.err")"; tl_finish; }
case "$LINK" in *"ports=$LO-$HI"*) ok "the link carries ports=$LO-$HI" ;; *) bad "the link lacks ports=$LO-$HI" ;; esac
case "$LINK" in *"hop=2s"*) ok "the link carries hop=2s" ;; *) bad "the link lacks hop=2s" ;; esac

tl_bg "$WORK/server.log" "$UMBRA" server -c "$WORK/server.conf" --allow 127.0.0.1/32
SERVER_PID=$BG_PID
end=$(($(tl_now_ms) + 10000 * TM))
while [ -z "$(lst_ports)" ] && [ "$(tl_now_ms)" -lt $end ] && kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.05; done
l=$(lst_ports)
[ -n "$l" ] || { bad "the server listens on no port of $LO-$HI: $(tail -n 3 "$WORK/server.log")"; tl_finish; }
printf '%s %s\n' "$(tl_now_ms)" "$l" >"$WORK/listen.samples"
r=$(mb_hop_check "$LINK" $LO $HI $HOP_MS "$WORK/listen.samples" 1)
case "$r" in *" unexpected 0") ok "server listens on $l: ports of the current slots ($r)" ;; *) bad "server listens on $l: $r" ;; esac
tl_listening "$SPORT" && bad "the server also listens on the listen address's port $SPORT (unused with ports)" ||
    ok "the listen address's port $SPORT is unused"

tl_client_start "$LINK" client || tl_finish
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "no session_up"; tl_finish; }
ok "session up over a hopping port"

# Sampler: every 0.2 s, the server ports of the client's established
# connections (peer port in LO..HI; their local ports are ephemeral, above
# HI), bounded in count and by a stop file.
: >"$WORK/ports.samples"
(
    for _ in $(seq $((900 * TM))); do
        [ -e "$WORK/stop" ] && break
        p=$(ss -Htn state established "( dport >= :$LO and dport <= :$HI )" | awk '{ n = split($4, a, ":"); print a[n] }' | sort -un | tr '\n' ' ')
        [ -n "$p" ] && echo "$(tl_now_ms) $p" >>"$WORK/ports.samples"
        l=$(lst_ports)
        [ -n "$l" ] && echo "$(tl_now_ms) $l" >>"$WORK/listen.samples"
        sleep 0.2
    done
) &
SAMPLER=$!
TL_PIDS+=("$SAMPLER")

SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
t0=$(tl_now_ms)
curl -sS --max-time $((120 * TM)) --speed-limit 1 --speed-time $((30 * TM)) --limit-rate 4M "${SOX[@]}" \
    -o "$WORK/down" "http://localhost:$NGINX_PORT/blob" 2>"$WORK/down.err"
rc=$?
ms=$(($(tl_now_ms) - t0))
touch "$WORK/stop"
wait "$SAMPLER"
if [ "$rc" = 0 ] && [ "$(tl_sha "$WORK/down")" = "$BLOB_SHA" ]; then
    ok "$MIB MiB download across hops, sha256 ok ($ms ms, $(mb_mbps $BYTES $ms) MB/s at --limit-rate 4M)"
else
    bad "$MIB MiB download across hops: curl exit $rc, $(mb_size "$WORK/down") bytes after $ms ms; $(cat "$WORK/down.err")"
fi
# curl's rate limit lets bursts through (7.9 s for 64 MiB at 6M once, on a
# loaded machine): the duration is only reported; what must hold (several
# ports, several hops) is checked below.
echo "# download took $ms ms (several 2 s slots)"
rm -f "$WORK/down"

r=$(mb_hop_check "$LINK" $LO $HI $HOP_MS "$WORK/ports.samples" 1)
read -r _ distinct _ nsamp _ unexp <<<"$(head -n 1 <<<"$r")"
[ "${distinct:-0}" -ge 3 ] && ok "ss: the client's connections used $distinct server ports ($(awk '{ for (i = 2; i <= NF; i++) print $i }' "$WORK/ports.samples" | sort -u | tr '\n' ' '), $nsamp samples)" ||
    bad "ss: the client's connections used ${distinct:-0} server ports in $ms ms (want >= 3): $r"
[ "${unexp:-1}" = 0 ] && ok "every port the client used is its slot's by the derivation" || bad "ports off the derivation: $r"
# Around a slot boundary the server may close s-2's port a moment late.
r=$(mb_hop_check "$LINK" $LO $HI $HOP_MS "$WORK/listen.samples" 2)
case "$r" in *" unexpected 0") ok "the server listened only on ports of the current slots ($r)" ;; *) bad "server listeners: $r" ;; esac

hops=$(mb_count "$EVENTS" session_rotated reason=hop)
[ "$hops" -ge 3 ] && ok "events: $hops session_rotated with reason hop" || bad "events: $hops session_rotated with reason hop (want >= 3 in $ms ms)"
expect_eq "events: exactly one session_up (hops are not new sessions)" "$(mb_count "$EVENTS" session_up)" 1
echo "# events: $(mb_count "$EVENTS" session_resumed) session_resumed (hops are make-before-break: expect 0)"
mb_status "$CONTROL" rotations
[ -n "$MB_STATUS_N" ] && [ "$MB_STATUS_N" -ge "$hops" ] && [ "$MB_STATUS_N" -gt 0 ] && ok "umbra status: $MB_STATUS_LINE" ||
    bad "umbra status rotations: $MB_STATUS_LINE"
got=$(curl -sS --max-time $((20 * TM)) "${SOX[@]}" "http://localhost:$NGINX_PORT/small" 2>&1)
expect_eq "a new request after the hops" "$got" small-ok
tl_tunnel_down
tl_finish
