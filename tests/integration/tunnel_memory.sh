#!/usr/bin/env bash
# Server memory under slow readers (audit item 8). One client opens 300
# downloads whose reader never reads; the
# server's memory budget is 64 MiB. The server's RSS growth must stay under
#   1.4 x (budget + 2 x 1 MiB reserve + 18 MiB: the session's 16 MiB send
#   queue and 2 MiB TCP queue) + 300 x 32 KiB (per-stream structures)
#   = 127 MiB: the 1.4 is the allocator's (freed 64 KiB buffers are not all
#   handed back; one loaded run grew 97 MiB, typical runs 60 to 84),
# streams past the client's share are refused (RST 0x07, a SOCKS failure),
# and a second client's 1 MiB download still arrives whole and promptly.
# (Under ASan the bound doubles: redzones, shadow memory, quarantine.)
# Before the budget: 300 such streams cost about 145 MB (485 KiB each).
#
#   stream_helper stuckmany x300 ─► umbra client A ═╗
#                                                   ╠═► umbra server (memory-budget 64) ─► nginx /blob
#   curl 1 MiB ─────────────────► umbra client B ═╝                                    └► nginx /mib
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_memory
tl_need_umbra "server memory budget"
tl_need curl nginx
tl_nginx
SHELPER=$SRC/tests/integration/stream_helper.py
head -c $((32 * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/www/mib"
BUDGET_MIB=64
N=300
BOUND_KIB=$(((BUDGET_MIB + 2 + 18) * 1024 * 7 / 5 + N * 32))
# Under ASan every allocation carries redzones, shadow memory and a 16 MiB
# quarantine (lib.sh): the bound doubles there.
[ "$SAN" = 1 ] && BOUND_KIB=$((2 * BOUND_KIB))
HOLD=$((90 * TM))

tl_server_init
sed -i "/^\[server\]/a memory-budget = $BUDGET_MIB" "$WORK/server.conf"
LINK_B=$("$UMBRA" server add-client -c "$WORK/server.conf" honest --no-qr 2>"$WORK/add2.err") ||
    { bad "add-client honest: $(cat "$WORK/add2.err")"; tl_finish; }
tl_server_start || tl_finish
tl_client_start "$LINK" client || tl_finish
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "client A: no session"; tl_finish; }
SOCKS_A=$SOCKS
sleep 1
rss0=$(tl_rss_kib "$SERVER_PID")

tl_bg "$WORK/stuck.out" "$PY" "$SHELPER" stuckmany "$SOCKS_A" localhost "$NGINX_PORT" /blob $N $HOLD
end=$(($(tl_now_ms) + 60000 * TM))
while ! grep -q ready "$WORK/stuck.out" 2>/dev/null && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.2; done
read -r _ opened refused < <(grep ready "$WORK/stuck.out") || { bad "stuck streams did not open: $(tail -3 "$WORK/stuck.out")"; tl_finish; }
ok "client A: $opened slow-reader streams open, $refused refused"
[ "$opened" -ge 32 ] && ok "at least 32 streams fit the share" || bad "only $opened streams opened"

# Let the windows fill, then take the peak RSS over a few seconds.
peak=0
for i in 1 2 3 4 5 6; do
    sleep 1
    r=$(tl_rss_kib "$SERVER_PID")
    [ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r
done
growth=$((peak - rss0))
echo "# server RSS: $rss0 KiB before, $peak KiB with $opened stuck streams (+$growth KiB; bound $BOUND_KIB KiB)"
[ "$growth" -le "$BOUND_KIB" ] && ok "server RSS growth $growth KiB <= $BOUND_KIB KiB" ||
    bad "server RSS growth $growth KiB > $BOUND_KIB KiB (budget $BUDGET_MIB MiB)"

# The honest client, on its own key, beside the stuck ones.
tl_client_start "$LINK_B" honest || tl_finish
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "client B: no session"; tl_finish; }
LIMIT=$((10 * TM))
t0=$(tl_now_ms)
got=$(curl -s --max-time $LIMIT --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$NGINX_PORT/mib" | sha256sum | cut -d' ' -f1)
took=$(($(tl_now_ms) - t0))
expect_eq "client B: 1 MiB beside $opened stuck streams (${took} ms, bound ${LIMIT} s)" "$got" "$(tl_sha "$WORK/www/mib")"

kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"
tl_stop "honest client" "$CLIENT_PID" $((5 * TM))
CLIENT_PID=""
tl_stop "server" "$SERVER_PID" $((10 * TM))
SERVER_PID=""
tl_finish
