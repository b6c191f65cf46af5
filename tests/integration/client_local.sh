#!/usr/bin/env bash
# The client's local surface, as another local user would attack it:
#  - the default control socket lives in a private 0700 directory
#    (${TMPDIR:-/tmp}/umbra-<uid>/); a directory another user made first is
#    refused by the client and by `umbra status`, and `umbra status` reads no
#    socket served by another uid (SO_PEERCRED) and prints no control bytes;
#  - socks-user/socks-password guard the HTTP proxy too (407 without them);
#  - a config with an inline private key readable by others gets a warning;
#  - the events file is created 0600.
#
#   curl ──► umbra client -c client.conf  ══ tcp ══► umbra server :SPORT ──► nginx :N
#            SOCKS5 :S, HTTP :H (alice/s3cr3t)
#   python (uid 65534) squatting $WORK/squat/umbra-<uid>/umbra.sock, answering escapes
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init client_local
tl_need_umbra "the client's control socket and proxy credentials"
tl_need curl nginx
tl_nginx
ME=$(id -u)

tl_server_init
tl_server_start || tl_finish
"$UMBRA" link --show-secret "$LINK" >"$WORK/link.out"
SPUB=$(sed -n 's/^server public key: //p' "$WORK/link.out")
CPRIV=$(sed -n 's/^client private key: //p' "$WORK/link.out")
SOCKS=$(tl_free_port)
HTTP=$(tl_free_port)
EVENTS=$WORK/c.events
cat >"$WORK/client.conf" <<EOF
[client]
private-key = $CPRIV
socks = 127.0.0.1:$SOCKS
http = 127.0.0.1:$HTTP
socks-user = alice
socks-password = s3cr3t
events = $EVENTS

[server "vps"]
address = 127.0.0.1:$SPORT
public-key = $SPUB
EOF

# 1. An inline private key in a file others can read: a warning.
chmod 644 "$WORK/client.conf"
"$UMBRA" client -c "$WORK/client.conf" --check >"$WORK/check.out" 2>"$WORK/check.err" || bad "--check failed: $(cat "$WORK/check.err")"
grep -q "client.conf holds a private key and is readable by group or others" "$WORK/check.err" &&
    ok "warning for a 0644 config holding a private key" || bad "no warning for a 0644 config: $(cat "$WORK/check.err")"
chmod 600 "$WORK/client.conf"
"$UMBRA" client -c "$WORK/client.conf" --check >"$WORK/check.out" 2>"$WORK/check.err"
[ -s "$WORK/check.err" ] && bad "warning for a 0600 config: $(cat "$WORK/check.err")" || ok "no warning for a 0600 config"

# 2. The default control socket in a private directory under our TMPDIR.
mkdir -m 1777 "$WORK/tmp"
export TMPDIR=$WORK/tmp
unset XDG_RUNTIME_DIR
tl_bg "$WORK/client.log" "$UMBRA" client -c "$WORK/client.conf"
CLIENT_PID=$BG_PID
if out=$(tl_wait_session 1 $((15 * TM))); then ok "session up"; else bad "session: $out"; tl_finish; fi
expect_eq "events file is created 0600" "$(stat -c %a "$EVENTS")" 600
expect_eq "control directory is 0700" "$(stat -c %a "$WORK/tmp/umbra-$ME")" 700
[ -S "$WORK/tmp/umbra-$ME/umbra.sock" ] && ok "control socket in the private directory" || bad "no socket in $WORK/tmp/umbra-$ME"
"$UMBRA" status >"$WORK/status.out" 2>"$WORK/status.err" && grep -q "state:        up" "$WORK/status.out" &&
    ok "umbra status reads the private socket" || bad "umbra status: $(cat "$WORK/status.out" "$WORK/status.err")"

# 3. The HTTP proxy wants the SOCKS5 credentials.
URL=http://127.0.0.1:$NGINX_PORT/small
code=$(curl -s -o /dev/null -D "$WORK/h407" -w '%{http_code}' --max-time $((10 * TM)) -x "http://127.0.0.1:$HTTP" "$URL")
expect_eq "HTTP proxy without credentials: 407" "$code" 407
grep -qi '^Proxy-Authenticate: Basic' "$WORK/h407" && ok "407 carries Proxy-Authenticate: Basic" || bad "no Proxy-Authenticate: $(cat "$WORK/h407")"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time $((10 * TM)) -x "http://127.0.0.1:$HTTP" -U alice:wrong "$URL")
expect_eq "HTTP proxy with a wrong password: 407" "$code" 407
code=$(curl -s -o /dev/null -w '%{http_connect}' --max-time $((10 * TM)) -p -x "http://127.0.0.1:$HTTP" "$URL")
expect_eq "CONNECT without credentials: 407" "$code" 407
body=$(curl -s --max-time $((10 * TM)) -x "http://127.0.0.1:$HTTP" -U alice:s3cr3t "$URL")
expect_eq "HTTP proxy with the credentials" "$body" "small-ok"
body=$(curl -s --max-time $((10 * TM)) -p -x "http://127.0.0.1:$HTTP" -U alice:s3cr3t "$URL")
expect_eq "CONNECT with the credentials" "$body" "small-ok"
body=$(curl -s --max-time $((10 * TM)) -x "socks5h://alice:s3cr3t@127.0.0.1:$SOCKS" "$URL")
expect_eq "SOCKS5 with the credentials" "$body" "small-ok"
grep -q "Proxy-Authorization" "$WORK/nginx.access" 2>/dev/null && bad "credentials reached the origin" || ok "credentials not forwarded"
tl_stop client "$CLIENT_PID" $((5 * TM))
CLIENT_PID=""

# 4. Another user squats the default directory and answers with escapes.
FAKE=$WORK/fake_control.py
cat >"$FAKE" <<'EOF'
import os, socket, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(b"state:        up\n\x1b]0;owned\x07\x1b[2J\x1b[31mpwned\x9b1m\xc2\x9b1m\r\x08\n")
    c.close()
EOF
has_ctl() { LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f-\x9f]|\xc2[\x80-\x9f]' "$1"; }
# 4a. Served by our own uid: read, but control bytes come out as '?'.
tl_bg "$WORK/fake.log" "$PY" "$FAKE" "$WORK/own/umbra.sock"
for _ in $(seq 100); do [ -S "$WORK/own/umbra.sock" ] && break; sleep 0.05; done
"$UMBRA" status --socket "$WORK/own/umbra.sock" >"$WORK/own.out" 2>&1 || bad "status of our own fake: $(cat "$WORK/own.out")"
grep -q pwned "$WORK/own.out" && ok "status prints the report text" || bad "report text missing: $(cat -v "$WORK/own.out")"
has_ctl "$WORK/own.out" && bad "status printed control characters: $(cat -v "$WORK/own.out")" || ok "status prints no control characters"
if [ "$ME" = 0 ] && command -v setpriv >/dev/null; then
    chmod 711 "$WORK"
    mkdir -m 1777 "$WORK/squat"
    SQ=$WORK/squat/umbra-$ME/umbra.sock
    tl_bg "$WORK/squat.log" setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" "$FAKE" "$SQ"
    for _ in $(seq 100); do [ -S "$SQ" ] && break; sleep 0.05; done
    [ -S "$SQ" ] && ok "uid 65534 squats $SQ" || bad "squatter did not start: $(cat "$WORK/squat.log")"
    TMPDIR=$WORK/squat "$UMBRA" status >"$WORK/sq.out" 2>"$WORK/sq.err"
    expect_eq "status refuses a squatted default directory (exit 3)" "$?" 3
    grep -q "belongs to uid 65534" "$WORK/sq.err" && ok "  and says whose it is" || bad "  message: $(cat "$WORK/sq.err")"
    grep -q pwned "$WORK/sq.out" && bad "status printed the squatter's bytes" || ok "  and prints none of its bytes"
    "$UMBRA" status --socket "$SQ" >"$WORK/sq2.out" 2>"$WORK/sq2.err"
    expect_eq "status refuses a socket served by another uid (exit 3)" "$?" 3
    grep -q "served by uid 65534" "$WORK/sq2.err" && ok "  (SO_PEERCRED names uid 65534)" || bad "  message: $(cat "$WORK/sq2.err")"
    grep -q pwned "$WORK/sq2.out" && bad "status printed the squatter's bytes" || ok "  and prints none of its bytes"
    # The client does not serve its report in the squatted directory.
    tl_bg "$WORK/client2.log" env TMPDIR="$WORK/squat" "$UMBRA" client -c "$WORK/client.conf"
    CLIENT_PID=$BG_PID
    EVENTS_BEFORE=$(grep -c session_up "$EVENTS")
    if out=$(tl_wait_session $((EVENTS_BEFORE + 1)) $((15 * TM))); then ok "client runs beside the squatter"; else bad "session: $out"; fi
    grep -q "no control socket: .*belongs to uid 65534" "$WORK/client2.log" &&
        ok "client warns and uses no squatted directory" || bad "client log: $(cat "$WORK/client2.log")"
    tl_stop client "$CLIENT_PID" $((5 * TM))
    CLIENT_PID=""
else
    echo "# not root: the squatting user part is skipped"
fi

tl_finish
