#!/usr/bin/env bash
# The config-file paths users take instead of a bare link, end to end:
#   - a server whose [transport] shapes the first packet (http, tls,
#     printable): the share link carries the shape, the client follows it, a
#     request crosses; the client's first bytes on the wire have the shape
#     (seen by a byte-logging TCP relay between client and server);
#   - a client run from client.conf ([client] with private-key-file, socks,
#     forward; [server "vps"] with address and public-key), not a link.
#
#   curl ─► umbra client ─► tap (logs first bytes) ─► umbra server ─► nginx
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_config
tl_nginx

# tap LISTEN_PORT TARGET_PORT LOG: a TCP relay that records the first 64
# bytes of each client-to-server connection (hex), for shape checks.
cat >"$WORK/tap.py" <<'PY'
import socket, sys, threading
lport, tport, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lport)); srv.listen(16)
def pipe(a, b, first):
    seen = b""
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            if first and len(seen) < 64:
                seen += d
                if len(seen) >= 64:
                    with open(log, "a") as f: f.write(seen[:64].hex() + "\n")
            b.sendall(d)
    except OSError: pass
    finally:
        try: b.shutdown(socket.SHUT_WR)
        except OSError: pass
while True:
    c, _ = srv.accept()
    s = socket.create_connection(("127.0.0.1", tport))
    threading.Thread(target=pipe, args=(c, s, True), daemon=True).start()
    threading.Thread(target=pipe, args=(s, c, False), daemon=True).start()
PY

get() { # SOCKS-PORT
    curl -sS --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$1" "http://localhost:$NGINX_PORT/small" 2>&1
}

for shape in http tls printable; do
    rm -f "$WORK/server.conf"
    tl_server_init
    sed -i '/^\[server\]/a transport = t' "$WORK/server.conf"
    printf '\n[transport "t"]\ntype = tcp\nshape = %s\n' "$shape" >>"$WORK/server.conf"
    # add-client builds links from the server's transport: make a fresh one.
    LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" "c-$shape" --no-qr 2>/dev/null)
    case "$LINK" in *"shape=$shape"*) ok "$shape: the link carries shape=$shape" ;;
    *) bad "$shape: link without the shape: ${LINK%%\?*}" ;; esac
    tl_server_start || tl_finish
    TAP=$(tl_free_port)
    rm -f "$WORK/tap.log"
    tl_bg "$WORK/tap.err" "$PY" "$WORK/tap.py" "$TAP" "$SPORT" "$WORK/tap.log"
    TAP_PID=$BG_PID
    tl_wait_listen "$TAP" 10 "$TAP_PID" || bad "tap did not start"
    tl_client_start "${LINK/127.0.0.1:$SPORT/127.0.0.1:$TAP}" "client-$shape"
    if tl_wait_session 1 $((15 * TM)) >/dev/null; then
        expect_eq "$shape: request through a shaped session" "$(get "$SOCKS")" small-ok
    else
        bad "$shape: no session"
    fi
    first=$(head -1 "$WORK/tap.log" 2>/dev/null)
    case "$shape" in
    http) [[ $first == 504f535420* || $first == 50555420* ]] && ok "http: first bytes are an HTTP method" ||
        bad "http: first bytes $first" ;;
    tls) [[ $first == 160301* ]] && ok "tls: first bytes are a TLS record header" ||
        bad "tls: first bytes $first" ;;
    printable) "$PY" -c 'import sys; b = bytes.fromhex(sys.argv[1][:12]); sys.exit(not (len(b) == 6 and all(32 <= c < 127 for c in b)))' "$first" &&
        ok "printable: the first 6 bytes are printable" || bad "printable: first bytes $first" ;;
    esac
    tl_tunnel_down
    kill "$TAP_PID" 2>/dev/null
done

# A client run from a config file.
rm -f "$WORK/server.conf"
tl_server_init
tl_server_start || tl_finish
SPUB=$(sed -n 's/^private-key = //p' "$WORK/server.conf" | "$UMBRA" pubkey)
CKEY=$("$UMBRA" link --show-secret "$LINK" | sed -n 's/^client private key: //p')
(umask 077; printf '%s\n' "$CKEY" >"$WORK/client.key")
SOCKS=$(tl_free_port)
FWD=$(tl_free_port)
cat >"$WORK/client.conf" <<CONF
# written by tests/integration/tunnel_config.sh
[client]
private-key-file = client.key
socks = 127.0.0.1:$SOCKS
forward = 127.0.0.1:$FWD:localhost:$NGINX_PORT
events = $WORK/file-client.events
control = off

[server "vps"]
address = 127.0.0.1:$SPORT
public-key = $SPUB
CONF
"$UMBRA" client -c "$WORK/client.conf" --check >"$WORK/check.out" 2>&1 &&
    ok "client.conf passes --check" || bad "client.conf --check: $(cat "$WORK/check.out")"
tl_bg "$WORK/file-client.log" "$UMBRA" client -c "$WORK/client.conf"
CLIENT_PID=$BG_PID
EVENTS=$WORK/file-client.events
if tl_wait_session 1 $((15 * TM)) >/dev/null; then
    expect_eq "request through a client run from client.conf" "$(get "$SOCKS")" small-ok
    got=$(curl -sS --max-time $((10 * TM)) "http://127.0.0.1:$FWD/small" -H "Host: localhost" 2>&1)
    expect_eq "request through the -L style forward of client.conf" "$got" small-ok
else
    bad "no session from client.conf: $(tail -3 "$WORK/file-client.log")"
fi
tl_tunnel_down
tl_finish
