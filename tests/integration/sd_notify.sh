#!/usr/bin/env bash
# sd_notify readiness (src/app/notify.c) as systemd sees it: a Python stand-in
# for the service manager binds $NOTIFY_SOCKET and records each notification
# with the sender's pid (SCM_CREDENTIALS) and the TCP ports listening at that
# moment.
#
#   sd_notify_helper.py (NOTIFY_SOCKET) <-- umbra server (127.0.0.1:SPORT)
#                                       <-- umbra client (SOCKS, HTTP) --> server
#
# Server: READY=1 only once it listens, with STATUS=; SIGHUP after a client was
# added: RELOADING=1 with MONOTONIC_USEC (our clock), then READY=1 with the new
# client count; SIGTERM: STOPPING=1, exit 0. Client: READY=1 once both proxies
# listen; STATUS= when the session comes up; SIGTERM: STOPPING=1, exit 0.
# Client in VPN mode (as root): READY=1 once the TUN device and its routes are
# there.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init sd_notify
tl_need_umbra "sd_notify"
N="$PY $SRC/tests/integration/sd_notify_helper.py"

# field REC NAME: one field of a recorded notification (JSON on stdin)
jget() { "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); v=eval(sys.argv[1]); print(v if not isinstance(v,(list,dict)) else json.dumps(v))' "$1"; }
in_list() { "$PY" -c 'import json,sys; sys.exit(0 if int(sys.argv[2]) in json.loads(sys.argv[1]) else 1)' "$1" "$2"; }

# ---- server
tl_server_init
tl_bg "$WORK/notify-server.err" $N listen "$WORK/notify-server.sock" "$WORK/notify-server.log"
for _ in $(seq 100); do [ -S "$WORK/notify-server.sock" ] && break; sleep 0.05; done
export NOTIFY_SOCKET=$WORK/notify-server.sock
tl_server_start || tl_finish
unset NOTIFY_SOCKET
if r=$($N wait "$WORK/notify-server.log" READY=1 $((10 * TM))); then
  ok "server: READY=1"
  expect_eq "server: READY=1 from the server's pid" "$(jget 'r["pid"]' <<<"$r")" "$SERVER_PID"
  in_list "$(jget 'r["listening"]' <<<"$r")" "$SPORT" && ok "server: listening on $SPORT when READY=1 came" \
    || bad "server: READY=1 came before it listened on $SPORT: $r"
  expect_eq "server: STATUS with READY=1" "$(jget 'r["fields"].get("STATUS")' <<<"$r")" "serving 1 authorised client(s)"
else
  bad "server: $r"
fi
"$UMBRA" server add-client -c "$WORK/server.conf" phone --no-qr >/dev/null 2>&1 || bad "add-client phone"
kill -HUP "$SERVER_PID"
if r=$($N wait "$WORK/notify-server.log" RELOADING=1 $((10 * TM))); then
  ok "server: RELOADING=1 on SIGHUP"
  d=$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); print(abs(r["mono_us"]-int(r["fields"]["MONOTONIC_USEC"])))' "$r" 2>&1)
  [[ $d =~ ^[0-9]+$ ]] && [ "$d" -lt $((5000000 * TM)) ] && ok "server: MONOTONIC_USEC is CLOCK_MONOTONIC (off by $d us)" \
    || bad "server: MONOTONIC_USEC: $d ($r)"
else
  bad "server: $r"
fi
if r=$($N wait "$WORK/notify-server.log" READY=1 2 $((10 * TM))); then
  expect_eq "server: READY=1 after the reload, with the new client count" \
    "$(jget 'r["fields"].get("STATUS")' <<<"$r")" "serving 2 authorised client(s)"
  grep -q 'reloaded .*2 authorised client' "$WORK/server.log" && ok "server: the reload happened" \
    || bad "server: no reload in the log"
else
  bad "server: no READY=1 after the reload: $r"
fi

# ---- client
tl_bg "$WORK/notify-client.err" $N listen "$WORK/notify-client.sock" "$WORK/notify-client.log"
for _ in $(seq 100); do [ -S "$WORK/notify-client.sock" ] && break; sleep 0.05; done
export NOTIFY_SOCKET=$WORK/notify-client.sock
tl_client_start "$LINK" client || tl_finish
unset NOTIFY_SOCKET
if r=$($N wait "$WORK/notify-client.log" READY=1 $((10 * TM))); then
  ok "client: READY=1"
  expect_eq "client: READY=1 from the client's pid" "$(jget 'r["pid"]' <<<"$r")" "$CLIENT_PID"
  l=$(jget 'r["listening"]' <<<"$r")
  in_list "$l" "$SOCKS" && in_list "$l" "$HTTP" && ok "client: both proxies listened when READY=1 came" \
    || bad "client: READY=1 before the proxies ($SOCKS, $HTTP) listened: $r"
else
  bad "client: $r"
fi
if out=$(tl_wait_session 1 $((15 * TM))); then ok "client: session up"; else bad "client: session: $out"; fi
end=$(($(tl_now_ms) + 5000 * TM))
until grep -q '"STATUS": "session up to' "$WORK/notify-client.log" || [ "$(tl_now_ms)" -gt $end ]; do sleep 0.05; done
grep -q '"STATUS": "session up to 127.0.0.1:'"$SPORT" "$WORK/notify-client.log" && ok "client: STATUS=session up to 127.0.0.1:$SPORT" \
  || bad "client: no session STATUS: $(cat "$WORK/notify-client.log")"

tl_stop client "$CLIENT_PID" $((10 * TM)) && ok "client: exit 0 on SIGTERM"
CLIENT_PID=""
r=$($N wait "$WORK/notify-client.log" STOPPING=1 $((5 * TM))) && ok "client: STOPPING=1" || bad "client: $r"
# ---- client with NOTIFY_SOCKET set but libsystemd not loadable (it is opened
# with dlopen only then): one warning, no notification, and the client works as
# it does without systemd. Needs root: an empty file is bound over the library
# in a private mount namespace (tl_hide_lib).
if ! tl_hide_lib libsystemd.so.0; then
  echo "# skip libsystemd missing: needs root (a private mount namespace) and libsystemd.so.0"
else
  tl_bg "$WORK/notify-nolib.err" $N listen "$WORK/notify-nolib.sock" "$WORK/notify-nolib.log"
  for _ in $(seq 100); do [ -S "$WORK/notify-nolib.sock" ] && break; sleep 0.05; done
  NOLIB_SOCKS=$(tl_free_port)
  EVENTS=$WORK/nolib.events
  NOTIFY_SOCKET=$WORK/notify-nolib.sock tl_bg "$WORK/nolib.log" "${HIDE_LIB[@]}" "$UMBRA" client \
    --link "$LINK" --socks "127.0.0.1:$NOLIB_SOCKS" --events "$EVENTS" --control off
  NOLIB_PID=$BG_PID
  tl_wait_listen "$NOLIB_SOCKS" $((10 * TM)) "$NOLIB_PID" && ok "no libsystemd: the client listens" \
    || bad "no libsystemd: the client did not start: $(tail -3 "$WORK/nolib.log")"
  if out=$(tl_wait_session 1 $((15 * TM))); then ok "no libsystemd: session up"; else bad "no libsystemd: session: $out"; fi
  grep -q 'NOTIFY_SOCKET is set but libsystemd cannot be loaded (.*): no readiness notifications' "$WORK/nolib.log" &&
    ok "no libsystemd: the log says why there are no notifications" || bad "no libsystemd: no warning: $(tail -3 "$WORK/nolib.log")"
  expect_eq "no libsystemd: one warning, not one per notification" \
    "$(grep -c 'libsystemd cannot be loaded' "$WORK/nolib.log")" 1
  tl_stop "client without libsystemd" "$NOLIB_PID" $((10 * TM)) && ok "no libsystemd: exit 0 on SIGTERM"
  [ -s "$WORK/notify-nolib.log" ] && bad "no libsystemd: notifications arrived: $(cat "$WORK/notify-nolib.log")" \
    || ok "no libsystemd: no notification reached NOTIFY_SOCKET"
fi
# ---- client in VPN mode (needs root and /dev/net/tun; the namespace is ours)
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || [ "$TL_NETNS" != 1 ]; then
  echo "# skip VPN mode: needs root, /dev/net/tun and a private network namespace"
else
  TUNDEV=umnt$(($$ % 1000))
  tl_bg "$WORK/notify-vpn.err" $N listen "$WORK/notify-vpn.sock" "$WORK/notify-vpn.log"
  for _ in $(seq 100); do [ -S "$WORK/notify-vpn.sock" ] && break; sleep 0.05; done
  NOTIFY_SOCKET=$WORK/notify-vpn.sock tl_bg "$WORK/vpn.log" "$UMBRA" client --link "$LINK" --tun \
    --tun-name "$TUNDEV" --control off
  VPN_PID=$BG_PID
  if r=$($N wait "$WORK/notify-vpn.log" READY=1 $((15 * TM))); then
    ok "vpn: READY=1"
    expect_eq "vpn: READY=1 from the client's pid" "$(jget 'r["pid"]' <<<"$r")" "$VPN_PID"
    jget 'r["interfaces"]' <<<"$r" | grep -q "\"$TUNDEV\"" && ok "vpn: $TUNDEV existed when READY=1 came" \
      || bad "vpn: READY=1 before the TUN device: $r"
    jget 'r["routes"]' <<<"$r" | grep -q "0.0.0.0/1 dev $TUNDEV" && ok "vpn: its routes were set when READY=1 came" \
      || bad "vpn: READY=1 before the routes: $r"
  else
    bad "vpn: $r (log: $(tail -3 "$WORK/vpn.log"))"
  fi
  tl_stop vpn "$VPN_PID" $((10 * TM)) && ok "vpn: exit 0 on SIGTERM"
  r=$($N wait "$WORK/notify-vpn.log" STOPPING=1 $((5 * TM))) && ok "vpn: STOPPING=1" || bad "vpn: $r"
fi

tl_stop server "$SERVER_PID" $((15 * TM)) && ok "server: exit 0 on SIGTERM"
SERVER_PID=""
r=$($N wait "$WORK/notify-server.log" STOPPING=1 $((5 * TM))) && ok "server: STOPPING=1" || bad "server: $r"
tl_finish
