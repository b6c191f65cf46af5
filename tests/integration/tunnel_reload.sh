#!/usr/bin/env bash
# SIGHUP reloads the server's authorised clients without dropping sessions:
#   1. client "laptop" has a session; "phone" (not yet authorised) gets none;
#   2. "phone" is added to server.conf, SIGHUP: phone's session comes up, and
#      laptop's session is the same one (no new session_up) and still works;
#   3. "laptop" is removed from server.conf, SIGHUP: laptop's open session
#      is closed at once (session_down; requests through it fail), and a new
#      connection with laptop's key is refused;
#   4. a server with idle-timeout = 20 closes an idle session although both
#      sides keep sending keepalives (every 15 s): keepalives are not traffic.
#
#   curl ─► umbra client (laptop) ══╗
#   curl ─► umbra client (phone)  ══╬══► umbra server ──► nginx 127.0.0.1
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_reload
tl_nginx
tl_tunnel_up
LAPTOP_EVENTS=$EVENTS
LAPTOP_SOCKS=$SOCKS
LAPTOP_LINK=$LINK
LAPTOP_PID=$CLIENT_PID
LAPTOP_CONTROL=$CONTROL

get() { # SOCKS-PORT
    curl -sS --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$1" "http://localhost:$NGINX_PORT/small" 2>&1
}
expect_eq "laptop request" "$(get "$LAPTOP_SOCKS")" small-ok

# umbra status reads the client's control socket (mode 0600).
st=$("$UMBRA" status --socket "$LAPTOP_CONTROL" 2>&1)
grep -q "^state: *up" <<<"$st" && grep -q "bytes in:" <<<"$st" && ok "umbra status: session up" ||
    bad "umbra status: $st"
expect_eq "control socket mode" "$(stat -c %a "$LAPTOP_CONTROL")" 600

# phone gets a key from add-client, then is hidden again until the reload step.
cp "$WORK/server.conf" "$WORK/server.conf.orig"
PHONE_LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" phone --no-qr 2>/dev/null)
# Hide phone again until the reload step: keep only the original file.
cp "$WORK/server.conf" "$WORK/server.conf.with-phone"
cp "$WORK/server.conf.orig" "$WORK/server.conf"
tl_client_start "$PHONE_LINK" phone
PHONE_SOCKS=$SOCKS
PHONE_EVENTS=$EVENTS
if "$PY" "$HELPER" wait-event "$PHONE_EVENTS" session_up 1 $((2 * TM)) >/dev/null 2>&1; then
    bad "phone got a session before it was authorised"
else
    ok "unauthorised phone: no session"
fi

# Authorise phone and reload.
cp "$WORK/server.conf.with-phone" "$WORK/server.conf"
kill -HUP "$SERVER_PID"
if "$PY" "$HELPER" wait-event "$PHONE_EVENTS" session_up 1 $((10 * TM)) >/dev/null 2>&1; then
    ok "phone's session is up after SIGHUP"
else
    bad "phone got no session after SIGHUP"
fi
expect_eq "phone request" "$(get "$PHONE_SOCKS")" small-ok
expect_eq "laptop request after the reload" "$(get "$LAPTOP_SOCKS")" small-ok
n=$("$PY" "$HELPER" count-event "$LAPTOP_EVENTS" session_up)
expect_eq "laptop kept its session (session_up events)" "$n" 1
grep -q "reloaded .*2 authorised client" "$WORK/server.log" && ok "server logged the reload" ||
    bad "no reload line in the server log"

# Remove laptop and reload: its live session is closed, a new one is refused.
awk 'BEGIN{skip=0} /^\[client "laptop"\]/{skip=1; next} /^\[/{skip=0} !skip' \
    "$WORK/server.conf.with-phone" >"$WORK/server.conf"
n_down=$("$PY" "$HELPER" count-event "$LAPTOP_EVENTS" session_down)
kill -HUP "$SERVER_PID"
if "$PY" "$HELPER" wait-event "$LAPTOP_EVENTS" session_down $((n_down + 1)) $((5 * TM)) >/dev/null 2>&1; then
    ok "laptop's live session closed on the reload that removed its key"
else
    bad "laptop's session lives on after its key was removed"
fi
got=$(curl -s --max-time $((3 * TM)) --socks5-hostname "127.0.0.1:$LAPTOP_SOCKS" "http://localhost:$NGINX_PORT/small" 2>&1)
[ "$got" != small-ok ] && ok "a removed key's client is no longer served" || bad "a removed key's client is still served"
tl_client_start "$LAPTOP_LINK" laptop2
if "$PY" "$HELPER" wait-event "$EVENTS" session_up 1 $((2 * TM)) >/dev/null 2>&1; then
    bad "a removed key got a new session"
else
    ok "a new session with the removed key is refused"
fi

st=$("$UMBRA" status --socket "$CONTROL" 2>&1)
grep -q "^state: *connecting" <<<"$st" && ok "umbra status of a refused client: connecting" ||
    bad "umbra status of a refused client: $st"

# A broken config on reload keeps the running client list.
echo "bogus line" >>"$WORK/server.conf"
kill -HUP "$SERVER_PID"
sleep 0.3
grep -q "reload failed" "$WORK/server.log" && ok "a bad config on reload is reported" ||
    bad "no error for a bad config on reload"
expect_eq "phone still served after a failed reload" "$(get "$PHONE_SOCKS")" small-ok

# A file that is a valid config, but a client's: reported as such (the
# message was read from an unset buffer before), the clients kept.
cp "$WORK/server.conf" "$WORK/server.conf.bad"
printf '[client]\nprivate-key = %s\n[server "x"]\naddress = 127.0.0.1:1\npublic-key = %s\n' \
    "$("$UMBRA" genkey)" "$("$UMBRA" genkey | "$UMBRA" pubkey)" >"$WORK/server.conf"
kill -HUP "$SERVER_PID"
sleep 0.3
grep -q "reload failed, keeping the current clients: not a server config" "$WORK/server.log" &&
    ok "a client config on reload is reported as not a server config" ||
    bad "no 'not a server config' on reload: $(grep 'reload' "$WORK/server.log" | tail -1)"
expect_eq "phone still served after a client config was loaded" "$(get "$PHONE_SOCKS")" small-ok
cp "$WORK/server.conf.bad" "$WORK/server.conf"

kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"
tl_stop "laptop client" "$LAPTOP_PID" $((5 * TM))
tl_tunnel_down

# Idle timeout with keepalives flowing (server and client ping every 15 s).
sed -i '/^\[server\]/a idle-timeout = 20' "$WORK/server.conf.with-phone"
cp "$WORK/server.conf.with-phone" "$WORK/server.conf"
tl_server_start || tl_finish
tl_client_start "$PHONE_LINK" phone-idle
if "$PY" "$HELPER" wait-event "$EVENTS" session_up 1 $((10 * TM)) >/dev/null 2>&1; then
    ok "idle test: session up"
    t0=$(tl_now_ms)
    # The server closes it gracefully (GOAWAY), and the client moves on to a
    # new session at once, so the server's log tells.
    end=$((t0 + 40000 * TM))
    while ! grep -q "idle for 20 s: closing" "$WORK/server.log" && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.2; done
    if grep -q "idle for 20 s: closing" "$WORK/server.log"; then
        ok "idle session closed by idle-timeout = 20 after $(($(tl_now_ms) - t0)) ms despite keepalives"
    else
        bad "idle session not closed within $((40 * TM)) s: keepalives counted as traffic"
    fi
else
    bad "idle test: no session"
fi
tl_tunnel_down
tl_finish
