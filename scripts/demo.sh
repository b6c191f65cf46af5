#!/usr/bin/env bash
# make demo: shows what umbra does today, on loopback, with fresh keys.
# Everything it creates lives in a temporary directory removed on exit.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
U=${UMBRA:-$src/build/umbra}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
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
run "$U" client --link "$link" --socks 127.0.0.1:1080 --http 127.0.0.1:8118 --check
printf '[server]\nprivate-key-file = demo.key\nlisen = 0.0.0.0:443\n' > typo.conf
printf '$ umbra server -c typo.conf   # a typo is named with file, line and key\n'
"$U" server -c typo.conf --check 2>&1 || echo "  (exit code $?: configuration error)"
printf '$ umbra link umbra://broken@x\n'
"$U" link "umbra://broken@x" 2>&1 || echo "  (exit code $?)"

step "Not built yet"
if "$U" server -c server.conf >/dev/null 2>&1; then :; else
  echo "The tunnel engine (server and client sessions over the tcp transport, with the"
  echo "SOCKS5 and HTTP proxies) is not wired into 'umbra server'/'umbra client' yet;"
  echo "the demo will show a request crossing the tunnel once it is."
fi
