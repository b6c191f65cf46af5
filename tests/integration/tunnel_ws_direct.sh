#!/usr/bin/env bash
# The ws transport without a front: the umbra server's ws listener does TLS
# itself (cert-file, key-file; docs/PROTOCOL.md 11.5), with a certificate
# made here (SAN localhost and 127.0.0.1):
#   1. a key-file readable by others is warned about; at 0600 it is not;
#   2. openssl s_client completes a handshake and verifies the certificate
#      (ALPN h2,http/1.1 offered: http/1.1 chosen); curl -k on /, on the
#      secret path without an upgrade, and a valid upgrade with a bad first
#      flight get byte-identical answers: the plain 404;
#   3. an umbra client from a config file (address localhost:PORT, no
#      host, ca-file) gets a session; curl through SOCKS5: 10 MiB intact;
#   4. the Host field of a config whose address is a name and whose host
#      is empty: the name with its port (not the IP it resolved to), seen
#      by a plain listener (tls = off);
#   5. with a fallback: curl -k https://.../ gets the fallback site's page
#      through the listener's TLS (the splice runs inside it).
#
#   curl ─► umbra client ══ TLS (umbra's own) ══► umbra server :SPORT ─► nginx :N
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_ws_direct
tl_need_umbra "the ws transport's own TLS"
tl_need curl nginx openssl
WSPATH=/s$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
MIB=10

tl_nginx
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")

# ---------------------------------------------------------------- server
CD=$WORK/cert
mkdir -p "$CD"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$CD/key.pem" -out "$CD/cert.pem" >"$WORK/openssl-req.log" 2>&1 ||
    { bad "openssl req: $(cat "$WORK/openssl-req.log")"; tl_finish; }
SPORT=$(tl_free_port)
"$UMBRA" server init -c "$WORK/server.conf" --listen "127.0.0.1:$SPORT" --transport ws \
    --ws-path "$WSPATH" --public-host "localhost:$SPORT" >"$WORK/init.out" 2>&1 ||
    { bad "umbra server init: $(cat "$WORK/init.out")"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
sed -i "/^type = ws/a cert-file = $CD/cert.pem\nkey-file = cert/key.pem" "$WORK/server.conf"
LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>"$WORK/add.err") ||
    { bad "umbra server add-client: $(cat "$WORK/add.err")"; tl_finish; }

chmod 644 "$CD/key.pem"
tl_server_start || tl_finish
if grep -q "key.pem is readable by group or others" "$WORK/server.log"; then
    ok "key-file at 0644: warned about"
else
    bad "key-file at 0644: no warning: $(head -c 300 "$WORK/server.log")"
fi
tl_stop "server" "$SERVER_PID" $((5 * TM))
chmod 600 "$CD/key.pem"
mv "$WORK/server.log" "$WORK/server-0644.log"
tl_server_start || tl_finish
grep -q "readable by group" "$WORK/server.log" && bad "key-file at 0600: warned about" ||
    ok "key-file at 0600: no warning"
grep -q "ws, with its own TLS" "$WORK/server.log" && ok "server: ws listener with its own TLS" ||
    bad "server log: $(head -c 300 "$WORK/server.log")"

# ---------------------------------------------------------------- probers
openssl s_client -connect "127.0.0.1:$SPORT" -servername localhost -CAfile "$CD/cert.pem" \
    -verify_return_error -alpn h2,http/1.1 </dev/null >"$WORK/s_client.out" 2>&1
if grep -q "Verify return code: 0 (ok)" "$WORK/s_client.out" &&
    grep -q "CN *= *localhost" "$WORK/s_client.out" &&
    grep -q "ALPN protocol: http/1.1" "$WORK/s_client.out"; then
    ok "openssl s_client: handshake complete, certificate verified ($(grep -m1 -o 'TLSv1\.[23]' "$WORK/s_client.out"))"
else
    bad "openssl s_client: $(tail -n 5 "$WORK/s_client.out" | tr '\n' ' ')"
fi
CK=(curl -sk --max-time $((10 * TM)) --http1.1)
"${CK[@]}" -i "https://127.0.0.1:$SPORT/" >"$WORK/a.root" 2>"$WORK/a.root.err"
"${CK[@]}" -i "https://127.0.0.1:$SPORT$WSPATH" >"$WORK/a.secret" 2>"$WORK/a.secret.err"
BADFL=$(head -c 300 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
"${CK[@]}" -i -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
    -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" -H "Sec-WebSocket-Protocol: $BADFL" \
    "https://127.0.0.1:$SPORT$WSPATH" >"$WORK/a.badflight" 2>/dev/null
if grep -q "^HTTP/1.1 404" "$WORK/a.root" && cmp -s "$WORK/a.root" "$WORK/a.secret"; then
    ok "curl -k: / and the secret path get byte-identical answers ($(head -n 1 "$WORK/a.root" | tr -d '\r'), $(stat -c %s "$WORK/a.root") bytes)"
else
    bad "curl -k: / '$(head -c 120 "$WORK/a.root" | tr '\r\n' '  ')' vs secret '$(head -c 120 "$WORK/a.secret" | tr '\r\n' '  ')' $(cat "$WORK/a.root.err")"
fi
cmp -s "$WORK/a.root" "$WORK/a.badflight" && ok "curl -k: an upgrade with a bad first flight: the same bytes" ||
    bad "curl -k: bad first flight: '$(head -c 120 "$WORK/a.badflight" | tr '\r\n' '  ')'"

# ---------------------------------------------------------------- the tunnel
SPUB=$(sed -n 's/^private-key = //p' "$WORK/server.conf" | "$UMBRA" pubkey)
CKEY=$("$UMBRA" link --show-secret "$LINK" | sed -n 's/^client private key: //p')
client_conf() { # FILE ADDRESS EXTRA-TRANSPORT-LINES
    SOCKS=$(tl_free_port)
    EVENTS=$1.events
    (
        umask 077
        printf '[client]\nprivate-key = %s\nsocks = 127.0.0.1:%s\nevents = %s\ncontrol = off\n\n' \
            "$CKEY" "$SOCKS" "$EVENTS"
        printf '[server "direct"]\naddress = %s\npublic-key = %s\ntransport = w\n\n' "$2" "$SPUB"
        printf '[transport "w"]\ntype = ws\npath = %s\n%b' "$WSPATH" "$3"
    ) >"$1"
}
client_conf "$WORK/client.conf" "localhost:$SPORT" "ca-file = $CD/cert.pem\n"
tl_bg "$WORK/client.log" "$UMBRA" client -c "$WORK/client.conf"
CLIENT_PID=$BG_PID
tl_wait_listen "$SOCKS" $((10 * TM)) "$CLIENT_PID" || { bad "umbra client did not start: $(tail -n 3 "$WORK/client.log")"; tl_finish; }
if out=$(tl_wait_session 1 $((15 * TM))); then
    ok "session up over the listener's own TLS (ca-file, address localhost)"
else
    bad "session: $out; client log: $(tail -n 3 "$WORK/client.log")"
    tl_finish
fi
rm -f "$WORK/got"
curl -sS --max-time $((60 * TM)) --socks5-hostname "127.0.0.1:$SOCKS" \
    "http://localhost:$NGINX_PORT/blob" -o "$WORK/got" 2>"$WORK/curl.err"
rc=$?
if [ $rc = 0 ] && [ "$(tl_sha "$WORK/got")" = "$BLOB_SHA" ]; then
    ok "curl via SOCKS5: $MIB MiB intact"
else
    bad "curl via SOCKS5: exit $rc, $(stat -c %s "$WORK/got" 2>/dev/null) bytes: $(head -c 200 "$WORK/curl.err")"
fi
tl_stop "client" "$CLIENT_PID" $((5 * TM))

# ---------------------------------------------------------------- Host
# An empty host: the Host field names the address as written (localhost),
# with its port, not the IP it resolved to.
HP=$(tl_free_port)
"$PY" - "$HP" "$WORK/head.txt" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
s.settimeout(60)
c, _ = s.accept()
c.settimeout(10)
buf = b""
while b"\r\n\r\n" not in buf and len(buf) < 16384:
    d = c.recv(4096)
    if not d:
        break
    buf += d
open(sys.argv[2], "wb").write(buf)
c.close()
PY
HEAD_PID=$!
tl_wait_listen "$HP" $((5 * TM)) "$HEAD_PID" || bad "the header listener did not start"
client_conf "$WORK/client2.conf" "localhost:$HP" "tls = off\n"
tl_bg "$WORK/client2.log" "$UMBRA" client -c "$WORK/client2.conf"
C2=$BG_PID
for _ in $(seq $((100 * TM))); do [ -s "$WORK/head.txt" ] && break; sleep 0.1; done
host=$(grep -ai '^host:' "$WORK/head.txt" 2>/dev/null | tr -d '\r')
[ "$host" = "Host: localhost:$HP" ] && ok "address localhost:$HP, no host: '$host'" ||
    bad "address localhost:$HP, no host: '$host' (want Host: localhost:$HP)"
tl_stop "client2" "$C2" $((5 * TM))
kill "$HEAD_PID" 2>/dev/null
wait "$HEAD_PID" 2>/dev/null

# ---------------------------------------------------------------- fallback
# What does not authenticate is spliced to the fallback inside the TLS.
tl_stop "server" "$SERVER_PID" $((5 * TM))
sed -i "/^\[server\]/a fallback = 127.0.0.1:$NGINX_PORT" "$WORK/server.conf"
printf '<html><body>fallback site %s</body></html>\n' "$WSPATH" >"$WORK/www/index.html"
mv "$WORK/server.log" "$WORK/server-0600.log"
tl_server_start || tl_finish
"${CK[@]}" -o "$WORK/fb.html" "https://127.0.0.1:$SPORT/" 2>"$WORK/fb.err"
[ "$(tl_sha "$WORK/fb.html")" = "$(tl_sha "$WORK/www/index.html")" ] &&
    ok "with a fallback: curl -k https://.../ gets the fallback's page through the listener's TLS" ||
    bad "with a fallback: '$(head -c 200 "$WORK/fb.html")' $(cat "$WORK/fb.err")"
tl_stop "server" "$SERVER_PID" $((5 * TM))
tl_finish
