#!/usr/bin/env bash
# The ws transport end to end behind a real nginx (docs/nginx-ws.conf, as is
# but for its example values) that terminates TLS with a certificate made
# here (docs/PROTOCOL.md section 11):
#   1. server init --transport ws writes a link with t=ws, path and host;
#      the client verifies nginx's certificate against SSL_CERT_FILE (and,
#      without it, refuses the front: no session);
#   2. GET / on nginx returns the site; the secret path without an upgrade,
#      and a valid upgrade with a bad first flight, get the same status line
#      and body as a path nginx does not know;
#   3. curl through SOCKS5 and the HTTP proxy: 100 MiB (16 under sanitizers)
#      down and up intact; 200 parallel small requests;
#   4. nginx killed and started again in the middle of a slow download: the
#      client resumes its session through the new nginx and the download
#      completes intact;
#   5. the front's TLS over a SOCKS5 upstream proxy (microsocks); the JA4 of
#      the client's ClientHello (TLS 1.3, SNI, ALPN http/1.1).
#
#   curl ─► umbra client ══ TLS ══► nginx :FP (front.test) ── /secret, http ──► umbra server :SPORT ─► nginx :N
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_ws
. "$SRC/tests/integration/lib_middlebox.sh"
tl_need_umbra "the ws transport"
tl_need curl nginx openssl
FRONT=front.test
WSPATH=/api/v2/s$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
MIB=$(tl_bulk_mib)
NPAR=200
echo "# bulk ${MIB} MiB, $NPAR parallel requests, path $WSPATH"

tl_nginx # the destination site (plain http, /upload to the sink)
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$WORK/www/slow"
head -c 2048 /dev/urandom >"$WORK/www/par"
printf '<!doctype html><html><body><p>front page %s</p></body></html>\n' "$WSPATH" >"$WORK/www/index.html"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
SLOW_SHA=$(tl_sha "$WORK/www/slow")
PAR_SHA=$(tl_sha "$WORK/www/par")

# ---------------------------------------------------------------- the front
FP=$(tl_free_port)
SPORT=$(tl_free_port)
FD=$WORK/front
mkdir -p "$FD/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$FRONT" -addext "subjectAltName=DNS:$FRONT" \
    -keyout "$FD/key.pem" -out "$FD/cert.pem" >"$WORK/openssl-req.log" 2>&1 ||
    { bad "openssl req: $(cat "$WORK/openssl-req.log")"; tl_finish; }
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$FP ssl;|" \
    -e "s|front.example.com;|$FRONT;|" \
    -e "s|/etc/ssl/front.example.com.pem|$FD/cert.pem|" \
    -e "s|/etc/ssl/front.example.com.key|$FD/key.pem|" \
    -e "s|/var/www/html|$WORK/www|" \
    -e "s|location = /api/v2/stream|location = $WSPATH|" \
    -e "s|127.0.0.1:8080;|127.0.0.1:$SPORT;|" \
    "$SRC/docs/nginx-ws.conf" >"$FD/site.conf"
grep -q "127.0.0.1:$SPORT;" "$FD/site.conf" && grep -q "location = $WSPATH" "$FD/site.conf" ||
    { bad "docs/nginx-ws.conf: the example values moved"; tl_finish; }
cat >"$FD/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
pid $FD/nginx.pid;
error_log $WORK/front.err warn;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log $WORK/front.access;
    client_body_temp_path $FD/tmp/body;
    proxy_temp_path $FD/tmp/proxy;
    fastcgi_temp_path $FD/tmp/fastcgi;
    uwsgi_temp_path $FD/tmp/uwsgi;
    scgi_temp_path $FD/tmp/scgi;
    include $FD/site.conf;
}
NGX
front_start() {
    tl_bg "$WORK/front.err" nginx -p "$FD" -c "$FD/nginx.conf" -e "$WORK/front.err"
    FRONT_PID=$BG_PID
    tl_wait_listen "$FP" 10 "$FRONT_PID" || { bad "front nginx did not start: $(tail -n 3 "$WORK/front.err")"; tl_finish; }
}
front_start

# ---------------------------------------------------------------- server
# init's refusals name the missing or misplaced option and write nothing.
init_refused() { # WANT-IN-MESSAGE ARGS...
    local want=$1
    shift
    rm -f "$WORK/bad.conf"
    if "$UMBRA" server init -c "$WORK/bad.conf" --listen "127.0.0.1:$SPORT" "$@" >"$WORK/bad.out" 2>&1; then
        bad "server init $*: accepted"
    elif grep -q -- "$want" "$WORK/bad.out" && [ ! -e "$WORK/bad.conf" ]; then
        ok "server init $*: refused, naming $want"
    else
        bad "server init $*: $(head -c 200 "$WORK/bad.out")"
    fi
}
init_refused --ws-path --transport ws --public-host "127.0.0.1:$FP"
init_refused --public-host --transport ws --ws-path /p
init_refused "--transport ws" --ws-path /p
init_refused "do not go" --transport ws --ws-path /p --public-host f.example --cover a.example:443
"$UMBRA" server init -c "$WORK/server.conf" --listen "127.0.0.1:$SPORT" --transport ws \
    --ws-path "$WSPATH" --public-host "127.0.0.1:$FP" >"$WORK/init.out" 2>&1 ||
    { bad "umbra server init: $(cat "$WORK/init.out")"; tl_finish; }
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
sed -i "/^type = ws/a sni = $FRONT" "$WORK/server.conf"
LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>"$WORK/add.err") ||
    { bad "umbra server add-client: $(cat "$WORK/add.err")"; tl_finish; }
case "$LINK" in
*"@127.0.0.1:$FP?"*"&t=ws&path=$WSPATH&host=127.0.0.1:$FP&sni=$FRONT"*) ok "link: t=ws, path, host, sni" ;;
*) bad "link: $LINK" ;;
esac
tl_server_start || tl_finish

# ---------------------------------------------------------------- refusals
CK=(curl -sk --max-time $((10 * TM)) --http1.1 --resolve "$FRONT:$FP:127.0.0.1")
answer() { # FILE curl-args: the status line and the body
    "${CK[@]}" -i "$@" >"$1.raw" 2>/dev/null
    { head -n 1 "$1.raw"; sed '1,/^\r$/d' "$1.raw"; } >"$1"
}
"${CK[@]}" -o "$WORK/root.html" "https://$FRONT:$FP/"
[ "$(tl_sha "$WORK/root.html")" = "$(tl_sha "$WORK/www/index.html")" ] && ok "GET / on nginx: the site" ||
    bad "GET / on nginx: $(head -c 200 "$WORK/root.html")"
answer "$WORK/a.unknown" "https://$FRONT:$FP/no/such/page"
answer "$WORK/a.plain" "https://$FRONT:$FP$WSPATH"
UPG=(-H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13"
     -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
BADFL=$(head -c 300 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
answer "$WORK/a.badflight" "${UPG[@]}" -H "Sec-WebSocket-Protocol: $BADFL" "https://$FRONT:$FP$WSPATH"
answer "$WORK/a.noproto" "${UPG[@]}" "https://$FRONT:$FP$WSPATH"
grep -q "^HTTP/1.1 404" "$WORK/a.unknown" || bad "unknown path: $(head -n 1 "$WORK/a.unknown")"
for k in plain badflight noproto; do
    if cmp -s "$WORK/a.unknown" "$WORK/a.$k"; then
        ok "secret path, $k: the same status line and body as an unknown path ($(head -n 1 "$WORK/a.$k" | tr -d '\r'))"
    else
        bad "secret path, $k: $(head -c 200 "$WORK/a.$k" | tr '\r\n' '  ') (unknown path: $(head -n 1 "$WORK/a.unknown"))"
    fi
done

# ---------------------------------------------------------------- verification
# Without the test's CA the system store does not know nginx's certificate.
tl_client_start "$LINK" noca || tl_finish
NOCA_PID=$CLIENT_PID
sleep $((2 * TM))
if [ "$(mb_count "$EVENTS" session_up)" = 0 ] && grep -q "certificate" "$WORK/noca.log"; then
    ok "without SSL_CERT_FILE: no session ($(grep -m1 -o 'tls to the front: .*' "$WORK/noca.log"))"
else
    bad "without SSL_CERT_FILE: $(mb_count "$EVENTS" session_up) sessions; log: $(tail -n 2 "$WORK/noca.log")"
fi
tl_stop "noca client" "$NOCA_PID" $((5 * TM))

export SSL_CERT_FILE=$FD/cert.pem
tl_client_start "$LINK" client || tl_finish
if out=$(tl_wait_session 1 $((15 * TM))); then ok "session up through nginx (SSL_CERT_FILE)"; else bad "session: $out"; tl_finish; fi
unset SSL_CERT_FILE

# ---------------------------------------------------------------- bulk
B=$((MIB * 1024 * 1024))
T=$((60 * TM))
C=(curl -sS --max-time $T --speed-limit 1024 --speed-time $((15 * TM)))
SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
HPX=(-x "http://127.0.0.1:$HTTP")
bulk_get() { # NAME curl-args...
    local name=$1 t0 t1 rc
    shift
    rm -f "$WORK/got"
    t0=$(tl_now_ms)
    "${C[@]}" "$@" -o "$WORK/got" 2>"$WORK/curl.err"
    rc=$?
    t1=$(tl_now_ms)
    if [ $rc != 0 ]; then
        bad "$name: curl exit $rc: $(head -c 300 "$WORK/curl.err")"
    elif [ "$(tl_sha "$WORK/got")" = "$BLOB_SHA" ]; then
        ok "$name: $MIB MiB, sha256 equal, $((B / 1000 / (t1 - t0 + 1))) MB/s"
    else
        bad "$name: sha256 differs ($(stat -c %s "$WORK/got") of $B bytes)"
    fi
    rm -f "$WORK/got"
}
bulk_post() { # NAME curl-args...
    local name=$1 t0 t1 rc got
    shift
    t0=$(tl_now_ms)
    got=$("${C[@]}" "$@" 2>"$WORK/curl.err")
    rc=$?
    t1=$(tl_now_ms)
    if [ $rc != 0 ]; then
        bad "$name: curl exit $rc: $(head -c 300 "$WORK/curl.err")"
    elif [ "$got" = "$BLOB_SHA" ]; then
        ok "$name: $MIB MiB, sha256 seen by the sink equal, $((B / 1000 / (t1 - t0 + 1))) MB/s"
    else
        bad "$name: sink saw sha256 '$got', want $BLOB_SHA"
    fi
}
bulk_get "ws: GET via SOCKS5" "${SOX[@]}" "http://localhost:$NGINX_PORT/blob"
bulk_get "ws: GET via HTTP proxy" "${HPX[@]}" "http://127.0.0.1:$NGINX_PORT/blob"
bulk_post "ws: POST via SOCKS5" "${SOX[@]}" -X POST -T "$WORK/www/blob" "http://localhost:$NGINX_PORT/upload/s"
bulk_post "ws: POST via HTTP proxy" "${HPX[@]}" -X POST -T "$WORK/www/blob" "http://127.0.0.1:$NGINX_PORT/upload/h"

parallel() { # NAME curl-proxy-args...
    local name=$1 d=$WORK/par.d i good=0
    shift
    rm -rf "$d"
    mkdir -p "$d"
    : >"$WORK/par.cfg"
    for i in $(seq $NPAR); do
        printf 'url = "http://127.0.0.1:%s/par?i=%d"\noutput = "%s/%d"\n' "$NGINX_PORT" "$i" "$d" "$i" >>"$WORK/par.cfg"
    done
    curl -sS --max-time $((40 * TM)) --parallel --parallel-immediate --parallel-max $NPAR "$@" \
        -K "$WORK/par.cfg" 2>"$WORK/par.err"
    local rc=$?
    for i in $(seq $NPAR); do
        [ -f "$d/$i" ] && [ "$(tl_sha "$d/$i")" = "$PAR_SHA" ] && good=$((good + 1))
    done
    if [ $rc = 0 ] && [ $good = $NPAR ]; then
        ok "$name: $NPAR parallel requests, all intact"
    else
        bad "$name: curl exit $rc, $good of $NPAR intact: $(sort "$WORK/par.err" | uniq -c | head -5)"
    fi
}
parallel "ws: parallel via SOCKS5" "${SOX[@]}"
parallel "ws: parallel via HTTP proxy" "${HPX[@]}"

# ---------------------------------------------------------------- nginx restart
rm -f "$WORK/slow.got"
"${C[@]}" --limit-rate 1M "${SOX[@]}" "http://localhost:$NGINX_PORT/slow" -o "$WORK/slow.got" 2>"$WORK/slow.err" &
SLOW=$!
sleep 2
r0=$(mb_count "$EVENTS" session_resumed)
kill -9 "$FRONT_PID" 2>/dev/null
wait "$FRONT_PID" 2>/dev/null
sleep 0.5
front_start
at=$(stat -c %s "$WORK/slow.got" 2>/dev/null || echo 0)
[ "$at" -lt $((16 * 1024 * 1024)) ] && ok "nginx killed and started again at $at bytes of the download" ||
    bad "the download was over before nginx was killed"
wait "$SLOW"
rc=$?
if [ $rc = 0 ] && [ "$(tl_sha "$WORK/slow.got")" = "$SLOW_SHA" ]; then
    ok "the download across the restart completed intact"
else
    bad "the download across the restart: curl exit $rc, $(stat -c %s "$WORK/slow.got" 2>/dev/null) bytes: $(head -c 200 "$WORK/slow.err")"
fi
r1=$(mb_count "$EVENTS" session_resumed)
[ "$r1" -gt "$r0" ] && ok "the client resumed its session through the new nginx ($r1 resumptions)" ||
    bad "no session_resumed after the restart ($r0 -> $r1); client log: $(tail -n 3 "$WORK/client.log")"
got=$("${C[@]}" "${SOX[@]}" "http://localhost:$NGINX_PORT/small" 2>&1)
[ "$got" = small-ok ] && ok "a new request after the restart" || bad "a new request after the restart: $got"

# ---------------------------------------------------------------- upstream proxy
# The front's TLS is layered over whatever carries the connection: here a
# SOCKS5 upstream proxy (microsocks).
if command -v microsocks >/dev/null; then
    MS=$(tl_free_port)
    tl_bg "$WORK/microsocks.log" microsocks -i 127.0.0.1 -p "$MS"
    MS_PID=$BG_PID
    tl_wait_listen "$MS" 5 "$MS_PID" || bad "microsocks did not start"
    MAIN_PID=$CLIENT_PID
    export SSL_CERT_FILE=$FD/cert.pem
    tl_client_start "$LINK" upclient --upstream "socks5://127.0.0.1:$MS" || tl_finish
    unset SSL_CERT_FILE
    UP_PID=$CLIENT_PID
    if out=$(tl_wait_session 1 $((15 * TM))); then
        got=$(curl -sS --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$NGINX_PORT/small" 2>&1)
        via=$(ss -Htnp state established "( dport = :$FP )" 2>/dev/null | grep -c "pid=$MS_PID,")
        [ "$got" = small-ok ] && [ "$via" -ge 1 ] && ok "ws over TLS through a SOCKS5 upstream proxy: GET works, microsocks holds the front connection" ||
            bad "ws through an upstream proxy: GET '$got', microsocks connections to the front: $via"
    else
        bad "ws through an upstream proxy: no session: $out"
    fi
    tl_stop "upstream client" "$UP_PID" $((5 * TM))
    CLIENT_PID=$MAIN_PID
fi

# ---------------------------------------------------------------- JA4
# What the front sees of umbra's OpenSSL hello (bench/RESULTS-ws.md has it
# next to Chromium's): TLS 1.3, SNI, http/1.1 alone as ALPN.
if [ -x "$BUILD/tests/ws_hello_tool" ] && [ -x "$BUILD/tests/tls_hello_tool" ]; then
    "$BUILD/tests/ws_hello_tool" "$FRONT" "$WORK/hello.bin"
    ja4=$("$BUILD/tests/tls_hello_tool" ja4 "$WORK/hello.bin")
    case "$ja4" in
    t13d????h1_*) ok "the ClientHello's JA4: $ja4 (TLS 1.3, SNI, ALPN http/1.1)" ;;
    *) bad "the ClientHello's JA4: '$ja4'" ;;
    esac
fi

tl_tunnel_down
tl_finish
