#!/usr/bin/env bash
# Port hopping, server side (docs/PROTOCOL.md 2.3): with ports = LO-HI and
# hop = 2s the server listens on exactly the ports of slots s-1, s and s+1,
# as an independent Python implementation of the derivation computes them
# from the server's public key, across several slot changes (ss -ltn); a
# session accepted on a port keeps carrying a transfer after that port's
# listener has closed; a port that cannot be bound is skipped, and no port
# at all is fatal.
#
#   namespace (lo only)
#   curl --socks5 ─► umbra client ──(address 127.0.0.1:port(s), fixed)──► umbra server ─► nginx
#                                                   hop listeners on 127.0.0.1:port(s-1..s+1)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init hop_listen
tl_need nginx curl ss
tl_nginx

LO=10000 HI=19999 HOP=2s HOP_MS=2000 # below the ephemeral range tl_free_port draws from
HH="$PY $SRC/tests/integration/hop_helper.py"
"$UMBRA" server init -c "$WORK/server.conf" --listen 127.0.0.1:1 --ports $LO-$HI --hop $HOP \
    >"$WORK/init.out" 2>&1 || { bad "server init --ports: $(cat "$WORK/init.out")"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>"$WORK/add.err") ||
    { bad "add-client: $(cat "$WORK/add.err")"; tl_finish; }
case $LINK in *"&ports=$LO-$HI&hop=$HOP"*) ok "the link carries ports= and hop=" ;; *) bad "link: $LINK" ;; esac
PUB=$(sed -n 's/^private-key = //p' "$WORK/server.conf" | "$UMBRA" pubkey)

# A port of the coming slots taken by someone else: skipped, not fatal.
S0=$($HH slot $HOP_MS)
read -r _ _ TAKEN <<<"$($HH ports "$PUB" $LO $HI $HOP_MS "$S0")"
"$PY" -c "import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $TAKEN)); s.listen(1); time.sleep(600)" >"$WORK/taken.log" 2>&1 &
TAKER=$!
TL_PIDS+=("$TAKER")
tl_wait_listen "$TAKEN" 10 || bad "could not take port $TAKEN"

tl_bg "$WORK/server.log" "$UMBRA" server -c "$WORK/server.conf" --allow 127.0.0.1/32 --log-level debug
SERVER_PID=$BG_PID
end=$(($(tl_now_ms) + 10000 * TM))
until grep -q "hopping every 2s" "$WORK/server.log"; do
    [ "$(tl_now_ms)" -lt $end ] && kill -0 "$SERVER_PID" 2>/dev/null || { bad "server did not start: $(tail -n 5 "$WORK/server.log")"; tl_finish; }
    sleep 0.05
done
ok "server up, hopping over $LO-$HI every $HOP"
grep -q "cannot listen on 127.0.0.1:$TAKEN" "$WORK/server.log" && ok "a taken port ($TAKEN) is logged and skipped" ||
    bad "no log line for the taken port $TAKEN: $(grep -i hop "$WORK/server.log" | tail -n 3)"
kill "$TAKER" 2>/dev/null
wait "$TAKER" 2>/dev/null
sleep 2.1 # into a later slot: the server tries the freed port again at a boundary

# Exactly the ports of s-1..s+1 listen, over 4 slots (3 changes at least).
if out=$($HH check "$PUB" $LO $HI $HOP_MS 4 2>&1); then ok "listening ports follow the slots"; else bad "listening ports"; fi
echo "$out" | sed 's/^/#   /'
changes=$(echo "$out" | awk '/^changes/ { print $2 }')
[ "${changes:-0}" -ge 3 ] && ok "the listening set changed $changes times" || bad "the listening set changed ${changes:-0} times"

# A session on the port of the current slot (the client's address is fixed:
# no client-side hopping), then a transfer of 16 MiB at 1.5 MiB/s (11 s, five
# slot changes at least): the port's listener closes two slots after the session was
# made, and the transfer goes on over the connection it had accepted.
MIB=16
head -c $((MIB << 20)) /dev/urandom >"$WORK/www/big"
WANT=$(tl_sha "$WORK/www/big")
for _ in 1 2 3; do # start early in a slot, so the port has two slots left
    [ $(($(tl_now_ms) % HOP_MS)) -lt 1200 ] && break
    sleep 0.3
done
S=$($HH slot $HOP_MS)
read -r _ P _ <<<"$($HH ports "$PUB" $LO $HI $HOP_MS "$S")"
CLINK=$(echo "$LINK" | sed -e "s/@127\.0\.0\.1:1?/@127.0.0.1:$P?/" -e "s/&ports=[0-9-]*//" -e "s/&hop=[0-9a-z]*//")
tl_client_start "$CLINK" client || tl_finish
if out=$(tl_wait_session 1 $((15 * TM))); then ok "session up on port $P (slot $S)"; else bad "session: $out"; tl_finish; fi
curl -sS --max-time $((60 * TM)) --limit-rate 1536k --socks5-hostname "127.0.0.1:$SOCKS" \
    -o "$WORK/got" "http://127.0.0.1:$NGINX_PORT/big" 2>"$WORK/curl.err" &
CURL=$!
T0=$(tl_now_ms)
closed_during=0
while kill -0 "$CURL" 2>/dev/null; do
    if ! tl_listening "$P" && ss -tnH state established "( sport = :$P )" | grep -q .; then
        closed_during=1
    fi
    sleep 0.2
done
wait "$CURL"
rc=$?
S2=$($HH slot $HOP_MS)
echo "# transfer: $(($(tl_now_ms) - T0)) ms"
expect_eq "curl through the session exits 0" "$rc" 0
expect_eq "16 MiB arrive intact (sha256)" "$(tl_sha "$WORK/got" 2>/dev/null)" "$WANT"
[ $((S2 - S)) -ge 2 ] && ok "the transfer spanned $((S2 - S)) slot changes" || bad "the transfer spanned $((S2 - S)) slot changes"
expect_eq "port $P stopped listening while its connection carried the transfer" "$closed_during" 1
tl_listening "$P" && [ -z "$(echo " $($HH ports "$PUB" $LO $HI $HOP_MS "$($HH slot $HOP_MS)") " | grep " $P ")" ] &&
    bad "port $P still listens after its slots" || ok "port $P no longer listens"
n=$(grep -c '"event":"session_up"' "$EVENTS" 2>/dev/null || true)
expect_eq "one session (the first, never remade)" "$n" 1
tl_tunnel_down

# No port at all: fatal at start.
"$PY" -c "import socket,time
s=socket.socket(); s.bind(('127.0.0.1', 20001)); s.listen(1); time.sleep(600)" >/dev/null 2>&1 &
TAKER=$!
TL_PIDS+=("$TAKER")
tl_wait_listen 20001 10 || bad "could not take port 20001"
sed -e 's/^ports = .*/ports = 20001-20001/' "$WORK/server.conf" >"$WORK/server2.conf"
chmod 600 "$WORK/server2.conf"
timeout $((20 * TM)) "$UMBRA" server -c "$WORK/server2.conf" >"$WORK/server2.log" 2>&1
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && ok "no bindable port: the server exits ($rc)" || bad "no bindable port: exit $rc"
grep -q "cannot listen on any port of 20001-20001" "$WORK/server2.log" && ok "  and says so" || bad "  message: $(tail -n 3 "$WORK/server2.log")"
tl_finish
