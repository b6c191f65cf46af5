#!/usr/bin/env bash
# make demo: shows what umbra does today, on loopback (127.0.0.1 only), with
# fresh keys, over the tls transport: a local nginx with a certificate made
# here is the cover site, the website anyone without a client key sees.
# Everything it creates (processes, files, the client's control socket) lives
# in a temporary directory and is removed on exit.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
U=${UMBRA:-$src/build/umbra}
NAME=www.demo.test # the cover's name: the SNI clients send (.test never resolves)
for c in curl nginx openssl python3; do
    command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] ||
        { echo "demo: $c is missing (run scripts/deps.sh)"; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$U" ] || { echo "demo: $U is not built (run make)"; exit 1; }
T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$T"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints the command (links shortened: they hold the client's key), runs it.
run() { printf '$ umbra %s\n' "$(echo "${*:2}" | sed -E 's/umbra:[^ ]+/<link>/g')"; "$@" 2>&1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for SECONDS COMMAND...: polls every 50 ms
wait_for() {
    local n=$(($1 * 20))
    shift
    while ! "$@" 2>/dev/null; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.05
    done
}
SP=$(port); CP=$(port); WP=$(port); SOCKS=$(port); HTTP=$(port)

step "The cover site: nginx with TLS 1.3 and HTTP/2 on 127.0.0.1:$CP, a certificate for $NAME"
printf '$ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=%s ...\n' "$NAME"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$NAME" \
    -addext "subjectAltName=DNS:$NAME" -keyout cover.key -out cover.crt 2>/dev/null
mkdir -p cover www nginx/tmp
echo "<h1>$NAME</h1><p>an ordinary website</p>" > cover/index.html
echo "hello from the far side of the tunnel" > www/index.html
head -c 4194304 /dev/urandom > www/blob.bin
# Two sites: the cover (TLS) and a plain web server the tunnel is used to reach.
# Debian's nginx 1.22 offers TLS 1.3 only when asked to.
cat > nginx/nginx.conf <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx.err warn;
events { worker_connections 256; }
http {
    default_type text/html;
    access_log off;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$CP ssl http2;
        server_name $NAME;
        ssl_certificate $T/cover.crt;
        ssl_certificate_key $T/cover.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $T/cover;
    }
    server {
        listen 127.0.0.1:$WP;
        root $T/www;
    }
}
EOF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx.err" & pids+=($!)
wait_for 10 curl -sk -o /dev/null --resolve "$NAME:$CP:127.0.0.1" "https://$NAME:$CP/" ||
    { echo "demo: nginx did not start:"; cat nginx.err; exit 1; }
printf '$ curl -k --resolve %s:%s:127.0.0.1 https://%s:%s/\n' "$NAME" "$CP" "$NAME" "$CP"
curl -sSk --http2 --resolve "$NAME:$CP:127.0.0.1" "https://$NAME:$CP/" -w '  (%{scheme} HTTP/%{http_version})\n'

step "Keys: a fresh X25519 key pair"
(umask 077; "$U" genkey > demo.key)
printf '$ umbra genkey > demo.key; umbra pubkey < demo.key\n'
"$U" pubkey < demo.key

step "A tls server config with a fresh key (mode 0600), and an authorised client"
run "$U" server init -c server.conf --listen 127.0.0.1:$SP --transport tls --cover 127.0.0.1:$CP --sni $NAME
ls -l server.conf | awk '{print "  " $1 " " $NF}'
sed -n '/^\[transport/,/^$/p' server.conf | sed '/^$/d; s/^/  /'
printf '$ umbra server add-client -c server.conf laptop\n'
link=$("$U" server add-client -c server.conf laptop --no-qr 2>/dev/null)
echo "$link" | sed -E 's/k=[A-Za-z0-9_-]{43}/k=<client key, hidden here>/'

step "What the share link holds (the client's private key stays hidden)"
run "$U" link "$link"

step "Config checks"
run "$U" server -c server.conf --check --allow 127.0.0.1/32
(umask 077; printf '%s\n' "$link" > laptop.link)
printf '$ (umask 077; cat > laptop.link)   # the link, kept where only we can read it\n'
run "$U" client --link-file laptop.link --socks 127.0.0.1:$SOCKS --http 127.0.0.1:$HTTP --check
printf '[server]\nprivate-key-file = demo.key\nlisen = 0.0.0.0:443\n' > typo.conf
printf '$ umbra server -c typo.conf   # a typo is named with file, line and key\n'
"$U" server -c typo.conf --check 2>&1 || echo "  (exit code $?: configuration error)"
printf '[server]\nprivate-key-file = demo.key\nlisten = 127.0.0.1:1\ntransport = t\n[transport "t"]\ntype = tls\ncover = %s\n' \
    "$NAME" > nocover.conf
printf '$ umbra server -c nocover.conf   # a cover without its port\n'
"$U" server -c nocover.conf --check 2>&1 || echo "  (exit code $?: configuration error)"
printf '$ umbra link umbra://broken@x\n'
"$U" link "umbra://broken@x" 2>&1 || echo "  (exit code $?)"

step "A request crossing the tunnel (all on 127.0.0.1)"
printf '$ umbra server -c server.conf --allow 127.0.0.1/32 &\n'
"$U" server -c server.conf --allow 127.0.0.1/32 > server.log 2>&1 & pids+=($!)
# The server learns how the cover answers each fingerprint's hello (sizes of its
# TLS 1.3 flight), so that its own answer to an authorised client looks the same.
learned() { [ "$(grep -c 'cover profile for\|no TLS 1.3 flight' server.log)" -ge 2 ]; }
wait_for 10 learned || { echo "demo: the server did not start:"; cat server.log; exit 1; }
grep 'cover profile for\|no TLS 1.3 flight' server.log | sed -E 's/^[^ ]+ [a-z]+ +/  server: /'
printf '$ umbra client --link-file laptop.link --socks 127.0.0.1:%s --http 127.0.0.1:%s &\n' $SOCKS $HTTP
"$U" client --link-file laptop.link --socks 127.0.0.1:$SOCKS --http 127.0.0.1:$HTTP \
    --events events.json --control "$T/umbra.sock" > client.log 2>&1 & pids+=($!)
wait_for 10 grep -q session_up events.json || { echo "demo: no session:"; cat client.log; exit 1; }
echo "  tls server on 127.0.0.1:$SP, cover on :$CP, client SOCKS5 on :$SOCKS and HTTP proxy on :$HTTP,"
echo "  a plain web server behind the tunnel on :$WP"
grep -h session_up events.json | head -1 | sed 's/^/  client event: /'
printf '$ curl --socks5-hostname 127.0.0.1:%s http://localhost:%s/\n' $SOCKS $WP
curl -sS --max-time 10 --socks5-hostname 127.0.0.1:$SOCKS http://localhost:$WP/
printf '$ curl -x http://127.0.0.1:%s http://127.0.0.1:%s/\n' $HTTP $WP
curl -sS --max-time 10 -x http://127.0.0.1:$HTTP http://127.0.0.1:$WP/
printf '$ curl --socks5-hostname ... http://localhost:%s/blob.bin   # 4 MiB, checked\n' $WP
curl -sS --max-time 20 --socks5-hostname 127.0.0.1:$SOCKS http://localhost:$WP/blob.bin -o got.bin \
    -w '  %{size_download} bytes in %{time_total} s\n'
if cmp -s got.bin www/blob.bin; then echo "  sha256 matches: $(sha256sum got.bin | cut -c1-16)..."; else
    echo "  MISMATCH"; exit 1; fi
printf '$ curl --socks5-hostname ... http://127.0.0.2:%s/   # outside the allow rule: refused\n' $WP
curl -sS --max-time 10 --socks5-hostname 127.0.0.1:$SOCKS http://127.0.0.2:$WP/ 2>&1 | sed 's/^/  /' || true
printf '$ umbra status\n'
"$U" status --socket "$T/umbra.sock" 2>&1 | sed 's/^/  /' || true

step "What a prober sees at the umbra port 127.0.0.1:$SP: the cover site"
subject() { openssl s_client -connect "$1" -servername $NAME </dev/null 2>/dev/null |
    openssl x509 -noout -subject -fingerprint -sha256 2>/dev/null; }
printf '$ openssl s_client -connect 127.0.0.1:%s -servername %s | openssl x509 -noout -subject\n' $SP $NAME
probe=$(subject 127.0.0.1:$SP)
echo "$probe" | sed 's/^/  /'
[ -n "$probe" ] && [ "$probe" = "$(subject 127.0.0.1:$CP)" ] &&
    echo "  the same certificate as nginx's own at 127.0.0.1:$CP" || { echo "  NOT the cover's certificate"; exit 1; }
printf '$ curl -k --resolve %s:%s:127.0.0.1 https://%s:%s/\n' $NAME $SP $NAME $SP
page=$(curl -sSk --max-time 10 --resolve "$NAME:$SP:127.0.0.1" "https://$NAME:$SP/" \
    -w '  (%{scheme} HTTP/%{http_version}, from nginx through the umbra port)')
echo "$page" | sed 's/^/  /'
[[ $page == *"an ordinary website"* ]] || { echo "  NOT the cover's page"; exit 1; }
echo
echo "server log:"; sed 's/^/  /' server.log | tail -6
echo "client log:"; sed 's/^/  /' client.log | tail -4
echo
echo "Next: the README's quick start runs the same on a real server."
