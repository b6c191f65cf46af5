#!/usr/bin/env bash
# make demo: shows what umbra does today, on loopback, with fresh keys.
# Everything it creates lives in a temporary directory removed on exit.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
U=${UMBRA:-$src/build/umbra}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
command -v curl >/dev/null || { echo "demo: curl is missing (run scripts/deps.sh)"; exit 1; }
cd "$T"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints the command (links shortened: they hold the client's key), runs it.
run()  { printf '$ umbra %s\n' "$(echo "${*:2}" | sed -E 's/umbra:[^ ]+/<link>/g')"; "$@" 2>&1; }

step "Keys: a fresh X25519 key pair"
(umask 077; "$U" genkey > demo.key)
printf '$ umbra genkey > demo.key; umbra pubkey < demo.key\n'
"$U" pubkey < demo.key

step "A server config with a fresh key (mode 0600), and an authorised client"
run "$U" server init -c server.conf --listen 127.0.0.1:4433
ls -l server.conf | awk '{print "  " $1 " " $NF}'
printf '$ umbra server add-client -c server.conf laptop\n'
link=$("$U" server add-client -c server.conf laptop --no-qr 2>/dev/null)
echo "$link" | sed -E 's/k=[A-Za-z0-9_-]{43}/k=<client key, hidden here>/'

step "What the share link holds (the client's private key stays hidden)"
run "$U" link "$link"

step "Config checks"
run "$U" server -c server.conf --check --allow 127.0.0.0/8
(umask 077; printf '%s\n' "$link" > laptop.link)
printf '$ (umask 077; cat > laptop.link)   # the link, kept where only we can read it\n'
run "$U" client --link-file laptop.link --socks 127.0.0.1:1080 --http 127.0.0.1:8118 --check
printf '[server]\nprivate-key-file = demo.key\nlisen = 0.0.0.0:443\n' > typo.conf
printf '$ umbra server -c typo.conf   # a typo is named with file, line and key\n'
"$U" server -c typo.conf --check 2>&1 || echo "  (exit code $?: configuration error)"
printf '$ umbra link umbra://broken@x\n'
"$U" link "umbra://broken@x" 2>&1 || echo "  (exit code $?)"

step "A request crossing the tunnel (all on loopback)"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SP=$(port); WP=$(port); SOCKS=$(port); HTTP=$(port)
"$U" server init -c tunnel.conf --listen 127.0.0.1:$SP >/dev/null 2>&1
tlink=$("$U" server add-client -c tunnel.conf demo --no-qr 2>/dev/null)
mkdir -p www; echo "hello from the far side of the tunnel" > www/index.html
head -c 4194304 /dev/urandom > www/blob.bin
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
(cd www && exec /usr/bin/python3 -m http.server $WP --bind 127.0.0.1 >/dev/null 2>&1) & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$WP/ && break; sleep 0.05; done
"$U" server -c tunnel.conf --allow 127.0.0.1/32 >server.log 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q "server up" server.log 2>/dev/null && break; sleep 0.05; done
(umask 077; printf '%s\n' "$tlink" > demo.link)
"$U" client --link-file demo.link --socks 127.0.0.1:$SOCKS --http 127.0.0.1:$HTTP --events events.json \
    >client.log 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q session_up events.json 2>/dev/null && break; sleep 0.05; done
echo "server on 127.0.0.1:$SP, client SOCKS5 on :$SOCKS and HTTP proxy on :$HTTP, web server on :$WP"
grep -h session_up events.json | head -1 | sed 's/^/client event: /'
printf '$ curl --socks5-hostname 127.0.0.1:%s http://localhost:%s/\n' $SOCKS $WP
curl -sS --max-time 10 --socks5-hostname 127.0.0.1:$SOCKS http://localhost:$WP/
printf '$ curl -x http://127.0.0.1:%s http://127.0.0.1:%s/\n' $HTTP $WP
curl -sS --max-time 10 -x http://127.0.0.1:$HTTP http://127.0.0.1:$WP/
printf '$ curl --socks5-hostname ... http://localhost:%s/blob.bin   # 4 MiB, checked\n' $WP
curl -sS --max-time 20 --socks5-hostname 127.0.0.1:$SOCKS http://localhost:$WP/blob.bin -o got.bin \
    -w '  %{size_download} bytes in %{time_total} s\n'
if cmp -s got.bin www/blob.bin; then echo "  sha256 matches: $(sha256sum got.bin | cut -c1-16)..."; else
    echo "  MISMATCH"; exit 1; fi
printf '$ curl --socks5-hostname ... http://127.0.0.2/   # outside the allow rule: refused\n'
curl -sS --max-time 10 --socks5-hostname 127.0.0.1:$SOCKS http://127.0.0.2:$WP/ 2>&1 | sed 's/^/  /' || true
echo
echo "server log:"; sed 's/^/  /' server.log | tail -4
echo "client log:"; sed 's/^/  /' client.log | tail -4
echo
echo "Next: the README's quick start runs the same on a real server."
