#!/usr/bin/env bash
# Many servers, raced; remembered dial parameters (issue 12). A client config
# lists two real umbra servers (the same client key authorised on both); the
# router silently drops every packet to the first, so a connection to it
# hangs rather than being refused. The client races them (race = 3,
# race-stagger = 250ms): the first byte of a request through its SOCKS5 must
# arrive within 1.5 s of the client's start (4.5 s in the sanitizer build);
# the events show the first server dialed first (why "race"), then the
# second, and the session up on the second; `umbra status` names it; the
# state file (created 0600 in a new 0700 directory) remembers it. A restart
# of the client dials the second first (why "remembered"). Before racing, the
# client waited for the first server's 10 s handshake timeout. Last, the same
# two servers from one link file (one link per line), and with both dropped,
# both dials in flight at once (status and ss).
#
#   ns C (client)                 ns R (router)                        ns S
#   umbra client ── mc0 ───────── mr0   forward: drop            ──── ms0 10.202.2.2
#   SOCKS5 127.0.0.1:1080               ip daddr 10.202.2.2           umbra server "first"  :443 (dropped)
#                                       tcp dport 443                 umbra server "second" :8443
#                                                                     nginx :80
set -u
. "$(dirname "$0")/lib.sh"
TL_NETNS=0
tl_init race_servers
. "$SRC/tests/integration/lib_middlebox.sh"
mb_init
tl_need_umbra "the race test"
mb_topology
mb_web
SPORT2=8443

# Server "first" (mb_server_init: 10.202.2.2:443, client "laptop").
mb_server_init || tl_finish
mv "$WORK/server.conf" "$WORK/server1.conf"
LINK1=$LINK
# Server "second": its own key; the same client key authorised.
"$UMBRA" server init -c "$WORK/server2.conf" --listen "$MB_SADDR:$SPORT2" >"$WORK/init2.out" 2>&1 ||
    { bad "umbra server init (second): $(cat "$WORK/init2.out")"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server2.conf"
CPUB=$(awk '/^\[client "laptop"\]/ { f = 1 } f && /^public-key = / { print $3; exit }' "$WORK/server1.conf")
[ -n "$CPUB" ] || { bad "no client public key in server1.conf"; tl_finish; }
printf '\n[client "laptop"]\npublic-key = %s\n' "$CPUB" >>"$WORK/server2.conf"
for i in 1 2; do
    port=$([ $i = 1 ] && echo $MB_SPORT || echo $SPORT2)
    tl_bg "$WORK/server$i.log" ip netns exec "$MB_S" "$UMBRA" server -c "$WORK/server$i.conf" \
        --allow 127.0.0.1/32 --allow "$MB_WEB/32"
    mb_ns_wait_listen "$MB_S" "$port" $((10 * TM)) "$BG_PID" ||
        { bad "server $i did not listen: $(tail -n 3 "$WORK/server$i.log")"; tl_finish; }
done
SPUB1=$(sed -n 's/^private-key = //p' "$WORK/server1.conf" | "$UMBRA" pubkey)
SPUB2=$(sed -n 's/^private-key = //p' "$WORK/server2.conf" | "$UMBRA" pubkey)
CKEY=$("$UMBRA" link --show-secret "$LINK1" | sed -n 's/^client private key: //p')
(umask 077 && printf '%s\n' "$CKEY" >"$WORK/client.key")
cat >"$WORK/client.conf" <<CONF
# written by tests/integration/race_servers.sh
[client]
private-key-file = client.key
socks = 127.0.0.1:$MB_SOCKS
race = 3
race-stagger = 250ms
remember = 24h

[server "first"]
address = $MB_SADDR:$MB_SPORT
public-key = $SPUB1

[server "second"]
address = $MB_SADDR:$SPORT2
public-key = $SPUB2
CONF
"$UMBRA" client -c "$WORK/client.conf" --check >"$WORK/check.out" 2>&1 &&
    ok "client.conf with two servers passes --check" || bad "--check: $(cat "$WORK/check.out")"

# The first server is reachable only through R, which now drops its packets.
in_r nft add rule inet umbra_mb forward ip daddr "$MB_SADDR" tcp dport "$MB_SPORT" counter drop ||
    { bad "nft: drop rule"; tl_finish; }
in_c curl -sS --max-time 1 -o /dev/null "http://$MB_SADDR:$MB_SPORT/" 2>"$WORK/probe.err"
grep -q "timed out" "$WORK/probe.err" && ok "a connection to the first server hangs (dropped, not refused)" ||
    bad "a connection to the first server: $(cat "$WORK/probe.err")"

STATE=$WORK/st/umbra/state
LIMIT_MS=$((1500 * TM))

# run_client N: start the client (events $WORK/cN.events), a request as soon
# as its SOCKS5 port listens; sets FIRST_MS (client start to the response).
run_client() {
    EVENTS=$WORK/c$1.events
    CONTROL=$WORK/c$1.sock
    local t0
    t0=$(tl_now_ms)
    tl_bg "$WORK/client$1.log" ip netns exec "$MB_C" "$UMBRA" client -c "$WORK/client.conf" \
        --state-file "$STATE" --events "$EVENTS" --control "$CONTROL"
    CLIENT_PID=$BG_PID
    mb_ns_wait_listen "$MB_C" "$MB_SOCKS" $((10 * TM)) "$CLIENT_PID" ||
        { bad "client $1 did not listen: $(tail -n 3 "$WORK/client$1.log")"; return 1; }
    GOT=$(in_c curl -sS --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$MB_SOCKS" "http://$MB_WEB/small" 2>&1)
    FIRST_MS=$(($(tl_now_ms) - t0))
}

# dial_field N FIELD: FIELD of the N-th dial event.
dial_field() {
    "$PY" - "$EVENTS" "$1" "$2" <<'PYEOF'
import json, sys
n = 0
for line in open(sys.argv[1], "rb"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "dial":
        n += 1
        if n == int(sys.argv[2]):
            print(e.get(sys.argv[3], ""))
            break
PYEOF
}

# --- first start: no state yet, both raced.
run_client 1 || tl_finish
expect_eq "start 1: request through the client" "$GOT" small-ok
if [ "$FIRST_MS" -le "$LIMIT_MS" ]; then
    ok "start 1: the response arrived $FIRST_MS ms after the client's start (limit $LIMIT_MS)"
else
    bad "start 1: the response arrived $FIRST_MS ms after the client's start (limit $LIMIT_MS)"
fi
expect_eq "start 1: the first dial is to the first server" "$(dial_field 1 server)" first
expect_eq "start 1: ... because of the race order" "$(dial_field 1 why)" race
expect_eq "start 1: the second dial is to the second server" "$(dial_field 2 server)" second
expect_eq "start 1: the session is up on the second server" "$(mb_event_field "$EVENTS" session_up server)" second
expect_eq "start 1: one session" "$(mb_count "$EVENTS" session_up)" 1
status=$(in_c "$UMBRA" status --socket "$CONTROL" 2>&1)
case "$status" in *"server:       second ("*) ok "umbra status names the second server" ;;
*) bad "umbra status: $status" ;; esac
if tl_wait_file "$STATE" $((5 * TM)); then
    line=$(grep '^remembered ' "$STATE")
    case "$line" in "remembered second "*" $MB_SADDR:$SPORT2 - "*) ok "the state file remembers the second server: $line" ;;
    *) bad "state file: $(cat "$STATE")" ;; esac
    expect_eq "the state file's mode" "$(stat -c %a "$STATE")" 600
    expect_eq "the state directory's mode" "$(stat -c %a "$WORK/st/umbra")" 700
    expect_eq "no temporary file left" "$(ls -A "$WORK/st/umbra")" state
else
    bad "no state file at $STATE"
fi
tl_stop "client 1" "$CLIENT_PID" $((10 * TM))

# --- restart: the remembered server first.
run_client 2 || tl_finish
expect_eq "start 2: request through the client" "$GOT" small-ok
expect_eq "start 2: the first dial is to the second server" "$(dial_field 1 server)" second
expect_eq "start 2: ... because it is remembered" "$(dial_field 1 why)" remembered
expect_eq "start 2: the session is up on the second server" "$(mb_event_field "$EVENTS" session_up server)" second
[ "$FIRST_MS" -le "$LIMIT_MS" ] && ok "start 2: the response arrived $FIRST_MS ms after the client's start" ||
    bad "start 2: the response arrived $FIRST_MS ms after the client's start (limit $LIMIT_MS)"
tl_stop "client 2" "$CLIENT_PID" $((10 * TM))

# --- remember = 0: the state is neither read nor written.
sed -i 's/^remember = 24h/remember = 0/' "$WORK/client.conf"
before=$(cat "$STATE")
run_client 3 || tl_finish
expect_eq "remember = 0: request through the client" "$GOT" small-ok
expect_eq "remember = 0: the first dial follows the config order" "$(dial_field 1 server)" first
tl_stop "client 3" "$CLIENT_PID" $((10 * TM))
[ "$(cat "$STATE")" = "$before" ] && ok "remember = 0: the state file is untouched" || bad "remember = 0: state rewritten"

# --- one link file naming both servers (one link per line, the same client
# key): two [server] sections, raced as above. Their transports are the
# links' own ("link", "link-2"), so the state remembered from client.conf
# (transport "-") does not match: the race order applies.
b64url() { printf '%s' "$1" | tr '+/' '-_' | tr -d '='; }
CK=${LINK1#*\?k=}
CK=${CK%%[&#]*}
{
    printf 'umbra://%s@%s:%s?k=%s#first\n' "$(b64url "$SPUB1")" "$MB_SADDR" "$MB_SPORT" "$CK"
    printf '# a comment line\n'
    printf 'umbra://%s@%s:%s?k=%s#second\n' "$(b64url "$SPUB2")" "$MB_SADDR" "$SPORT2" "$CK"
} >"$WORK/two.link"
chmod 600 "$WORK/two.link"
"$UMBRA" client --link-file "$WORK/two.link" --check >"$WORK/check2.out" 2>&1
grep -q "valid client config: 2 server(s)" "$WORK/check2.out" && ok "a link file with two links: two servers" ||
    bad "--link-file with two links: $(cat "$WORK/check2.out")"
EVENTS=$WORK/c4.events
t0=$(tl_now_ms)
tl_bg "$WORK/client4.log" ip netns exec "$MB_C" "$UMBRA" client --link-file "$WORK/two.link" \
    --socks "127.0.0.1:$MB_SOCKS" --state-file "$STATE" --events "$EVENTS" --control "$WORK/c4.sock"
CLIENT_PID=$BG_PID
if mb_ns_wait_listen "$MB_C" "$MB_SOCKS" $((10 * TM)) "$CLIENT_PID"; then
    GOT=$(in_c curl -sS --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$MB_SOCKS" "http://$MB_WEB/small" 2>&1)
    FIRST_MS=$(($(tl_now_ms) - t0))
    expect_eq "link file: request through the client" "$GOT" small-ok
    [ "$FIRST_MS" -le "$LIMIT_MS" ] && ok "link file: the response arrived $FIRST_MS ms after the client's start" ||
        bad "link file: the response arrived $FIRST_MS ms after the client's start (limit $LIMIT_MS)"
    expect_eq "link file: the first dial is to the first server, by race order" "$(dial_field 1 server)/$(dial_field 1 why)" first/race
    expect_eq "link file: the session is up on the second server" "$(mb_event_field "$EVENTS" session_up server)" second
    tl_stop "client 4" "$CLIENT_PID" $((10 * TM))
    grep -q '^remembered second .* link-2 ' "$STATE" && ok "link file: the state file remembers second over link-2" ||
        bad "link file: state $(cat "$STATE")"
else
    bad "client 4 did not listen: $(tail -n 3 "$WORK/client4.log")"
fi

# --- both dropped: the two dials are in flight at once (each waits for its
# handshake timeout, 10 s), and `umbra status` says so.
in_r nft add rule inet umbra_mb forward ip daddr "$MB_SADDR" tcp dport "$SPORT2" counter drop ||
    bad "nft: second drop rule"
EVENTS=$WORK/c5.events
tl_bg "$WORK/client5.log" ip netns exec "$MB_C" "$UMBRA" client -c "$WORK/client.conf" \
    --events "$EVENTS" --control "$WORK/c5.sock"
CLIENT_PID=$BG_PID
mb_ns_wait_listen "$MB_C" "$MB_SOCKS" $((10 * TM)) "$CLIENT_PID" || bad "client 5 did not listen"
sleep $((1 * TM))
status=$(in_c "$UMBRA" status --socket "$WORK/c5.sock" 2>&1)
case "$status" in *"racing:       2 of 2 candidates dialed, 2 in flight"*) ok "both dropped: status shows the race" ;;
*) bad "both dropped: status: $status" ;; esac
expect_eq "both dropped: two connections being opened at once" \
    "$(ip netns exec "$MB_C" ss -Htn state syn-sent | wc -l)" 2
expect_eq "both dropped: two dials" "$(mb_count "$EVENTS" dial)" 2
tl_stop "client 5" "$CLIENT_PID" $((10 * TM))
tl_finish
