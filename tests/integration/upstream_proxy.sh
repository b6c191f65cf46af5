#!/usr/bin/env bash
# The client reaches its server only through an upstream proxy (`upstream`,
# `--upstream`): microsocks without and with user/password, and an HTTP
# CONNECT proxy (a second umbra client's HTTP port, whose own tunnel goes
# through a second umbra server). Each time the tunnel comes up and carries
# the bulk file intact (sha256).
#
#   curl ─► umbra client ─► microsocks :M ─(from 127.0.0.2)─► umbra server A :SPORT ─► nginx
#           --upstream          -b 127.0.0.2   nftables: to :SPORT only from 127.0.0.2
#
#   curl ─► umbra client ─► umbra client 2 HTTP :H ══► umbra server B ─► umbra server A ─► nginx
#           --upstream http://...                     (the connection to :SPORT is B's: ss)
#
# A client without --upstream cannot reach :SPORT (the control: the rule
# works). Wrong credentials fail with the proxy's reason; no password is
# ever in a log. One private network namespace (only "lo").
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init upstream_proxy
tl_need curl nginx microsocks nft ss
tl_need_umbra "an upstream proxy"
[ "$TL_NETNS" = 1 ] || tl_skip "needs its own network namespace (nftables rules)"

MIB=16
tl_nginx
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
T=$((60 * TM))
PASSWORD=pw-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true
tl_server_init
tl_server_start || tl_finish
A_PORT=$SPORT
A_LINK=$LINK
nft -f - <<NFT || { bad "nft rules"; tl_finish; }
table inet upstream_test {
  chain out {
    type filter hook output priority 0;
    tcp dport $A_PORT ip saddr != 127.0.0.2 reject with tcp reset
  }
}
NFT

bulk() { # NAME SOCKSPORT
    rm -f "$WORK/got"
    if ! curl -sS --max-time "$T" --speed-limit 1024 --speed-time $((15 * TM)) \
        --socks5-hostname "127.0.0.1:$2" "http://127.0.0.1:$NGINX_PORT/blob" -o "$WORK/got" 2>"$WORK/curl.err"; then
        bad "$1: curl: $(head -c 300 "$WORK/curl.err")"
        return
    fi
    expect_eq "$1: $MIB MiB sha256" "$(tl_sha "$WORK/got")" "$BLOB_SHA"
}

# who_connects: the processes with an established connection to :A_PORT.
who_connects() {
    ss -tnpH state established "( dport = :$A_PORT )" | grep -o 'pid=[0-9]*' | sort -u | tr '\n' ' '
}

# --- control: direct connections are refused
tl_client_start "$A_LINK" direct || tl_finish
DIRECT_PID=$CLIENT_PID
if "$PY" "$HELPER" wait-event "$EVENTS" session_up 1 $((3 * TM)) >/dev/null; then
    bad "control: a client without --upstream reached the server (the rule does not hold)"
else
    ok "control: without --upstream the server is out of reach"
fi
tl_stop direct "$DIRECT_PID" $((5 * TM))

# --- microsocks, no authentication
M1=$(tl_free_port)
tl_bg "$WORK/microsocks1.log" microsocks -i 127.0.0.1 -p "$M1" -b 127.0.0.2
MS1_PID=$BG_PID
tl_wait_listen "$M1" 5 "$MS1_PID" || { bad "microsocks did not start"; tl_finish; }
tl_client_start "$A_LINK" socks_noauth --upstream "socks5://127.0.0.1:$M1" || tl_finish
if out=$(tl_wait_session 1 $((15 * TM))); then
    ok "socks5 upstream: session up"
    bulk "socks5 upstream" "$SOCKS"
    w=$(who_connects)
    case "$w" in "pid=$MS1_PID ") ok "socks5 upstream: the server's peer is microsocks" ;;
        *) bad "socks5 upstream: connections to :$A_PORT from '$w' (microsocks is $MS1_PID)" ;; esac
else
    bad "socks5 upstream: $out; $(tail -n 3 "$WORK/socks_noauth.log")"
fi
tl_stop socks_noauth "$CLIENT_PID" $((5 * TM))

# --- microsocks with user/password (RFC 1929)
M2=$(tl_free_port)
tl_bg "$WORK/microsocks2.log" microsocks -i 127.0.0.1 -p "$M2" -b 127.0.0.2 -u alice -P "$PASSWORD"
MS2_PID=$BG_PID
tl_wait_listen "$M2" 5 "$MS2_PID" || { bad "microsocks (auth) did not start"; tl_finish; }
tl_client_start "$A_LINK" socks_auth --upstream "socks5://alice:$PASSWORD@127.0.0.1:$M2" || tl_finish
if out=$(tl_wait_session 1 $((15 * TM))); then
    ok "socks5 upstream with user/password: session up"
    bulk "socks5 upstream with user/password" "$SOCKS"
else
    bad "socks5 upstream with user/password: $out; $(tail -n 3 "$WORK/socks_auth.log")"
fi
if tr '\0' ' ' <"/proc/$CLIENT_PID/cmdline" | grep -q "$PASSWORD"; then
    bad "the password stays visible in the client's command line"
else
    ok "the password is scrubbed from the client's command line"
fi
tl_stop socks_auth "$CLIENT_PID" $((5 * TM))

tl_client_start "$A_LINK" socks_badpw --upstream "socks5://alice:wrong-$PASSWORD@127.0.0.1:$M2" --log-level debug || tl_finish
BAD_PID=$CLIENT_PID
end=$(($(tl_now_ms) + 10000 * TM))
until grep -q "refused the user name and password" "$WORK/socks_badpw.log" || [ "$(tl_now_ms)" -gt $end ]; do sleep 0.1; done
if grep -q "refused the user name and password" "$WORK/socks_badpw.log"; then
    ok "wrong password: the proxy's refusal is reported"
else
    bad "wrong password: no refusal in the log: $(tail -n 3 "$WORK/socks_badpw.log")"
fi
"$PY" "$HELPER" wait-event "$EVENTS" session_up 1 1 >/dev/null && bad "wrong password: a session came up"
tl_stop socks_badpw "$BAD_PID" $((5 * TM))

# --- HTTP CONNECT: a second umbra client's HTTP proxy, through server B
nft delete table inet upstream_test
"$UMBRA" server init -c "$WORK/b.conf" --listen "127.0.0.1:$(tl_free_port)" >"$WORK/b-init.out" 2>&1 || { bad "server B init"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/b.conf"
B_PORT=$(sed -n 's/^listen = 127.0.0.1://p' "$WORK/b.conf")
B_LINK=$("$UMBRA" server add-client -c "$WORK/b.conf" hop --no-qr 2>"$WORK/b-add.err") || { bad "server B add-client"; tl_finish; }
tl_bg "$WORK/b.log" "$UMBRA" server -c "$WORK/b.conf" --allow 127.0.0.1/32
B_PID=$BG_PID
tl_wait_listen "$B_PORT" $((10 * TM)) "$B_PID" || { bad "server B did not start"; tl_finish; }
tl_client_start "$B_LINK" hop || tl_finish
HOP_HTTP=$HTTP
HOP_PID=$CLIENT_PID
tl_wait_session 1 $((15 * TM)) >/dev/null || { bad "client 2 to server B: no session"; tl_finish; }
tl_client_start "$A_LINK" http_up --upstream "http://127.0.0.1:$HOP_HTTP" || tl_finish
if out=$(tl_wait_session 1 $((15 * TM))); then
    ok "http upstream: session up"
    bulk "http upstream" "$SOCKS"
    w=$(who_connects)
    case "$w" in "pid=$B_PID ") ok "http upstream: the server's peer is server B" ;;
        *) bad "http upstream: connections to :$A_PORT from '$w' (server B is $B_PID)" ;; esac
else
    bad "http upstream: $out; $(tail -n 3 "$WORK/http_up.log")"
fi
tl_stop http_up "$CLIENT_PID" $((5 * TM))
tl_stop hop "$HOP_PID" $((5 * TM))

if grep -l -- "$PASSWORD" "$WORK"/*.log "$WORK"/*.events 2>/dev/null | grep -v microsocks; then
    bad "a password appears in a log or event file"
else
    ok "no password in any umbra log or event file"
fi
tl_finish
