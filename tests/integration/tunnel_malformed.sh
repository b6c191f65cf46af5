#!/usr/bin/env bash
# Malformed requests at the client's proxies: every file of the SOCKS5 and
# HTTP fuzz corpora (plus random garbage) is sent on its own connection to the
# SOCKS5 and HTTP ports; each must get a reply of the port's own protocol or
# a close within a bound, never a hang, and the client must stay alive and
# serve normal requests afterwards.
#
#   tunnel_helper.py corpus ──► umbra client SOCKS5 :S / HTTP :H ══ tcp ══► umbra server ──► nginx :N
#
# Corpus inputs may name outside hosts (example.com): this test runs only in
# a private network namespace, where nothing can leave the machine.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_malformed
[ "$TL_NETNS" = 1 ] || tl_skip "no private network namespace (unshare -n/-rn failed): corpus inputs could reach outside hosts"
tl_need curl nginx
tl_nginx
tl_tunnel_up

dirs=()
for d in fuzz_proxy_socks5 fuzz_proxy_http; do
    if [ -d "$SRC/fuzz/corpus/$d" ]; then dirs+=("$SRC/fuzz/corpus/$d"); else bad "corpus $d missing"; fi
done
# Random garbage and truncated prefixes of valid requests.
mkdir -p "$WORK/rand_socks5" "$WORK/rand_http"
for i in $(seq 20); do
    head -c $((i * 97)) /dev/urandom >"$WORK/rand_socks5/r$i"
    head -c $((i * 131)) /dev/urandom >"$WORK/rand_http/r$i"
done
printf '\x05\x01\x00\x05\x01\x00\x03\xff' >"$WORK/rand_socks5/name_cut"
printf '\x05\xff' >"$WORK/rand_socks5/255_methods_cut"
printf '\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50' >"$WORK/rand_socks5/empty_name"
printf 'GET http://127.0.0.1:%s/small HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n' "$NGINX_PORT" >"$WORK/rand_http/neg_cl"
printf 'GET http://127.0.0.1:%s/small HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n' "$NGINX_PORT" >"$WORK/rand_http/cl_and_te"
{ printf 'GET http://127.0.0.1:%s/small HTTP/1.1\r\n' "$NGINX_PORT"; for i in $(seq 3000); do printf 'X-%d: %0100d\r\n' "$i" 0; done; printf '\r\n'; } >"$WORK/rand_http/huge_head"
printf 'GET http://127.0.0.1:0/ HTTP/1.1\r\n\r\n' >"$WORK/rand_http/port0"
printf 'CONNECT [::1 HTTP/1.1\r\n\r\n' >"$WORK/rand_http/bad_v6"
dirs+=("$WORK/rand_socks5" "$WORK/rand_http")

t0=$(tl_now_ms)
if out=$(timeout $((300 * TM)) "$PY" "$HELPER" corpus "$SOCKS" "$HTTP" $((15 * TM)) "${dirs[@]}" 2>&1); then
    ok "$(echo "$out" | tail -n 1) in $(($(tl_now_ms) - t0)) ms"
else
    bad "corpus replay: $out"
fi

kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive after the corpus" || bad "client died"
[ -z "$SERVER_PID" ] || { kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"; }
got=$(curl -sS --max-time $((20 * TM)) --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$NGINX_PORT/small" 2>&1)
expect_eq "SOCKS5 request served afterwards" "$got" small-ok
got=$(curl -sS --max-time $((20 * TM)) -x "http://127.0.0.1:$HTTP" "http://127.0.0.1:$NGINX_PORT/small" 2>&1)
expect_eq "HTTP proxy request served afterwards" "$got" small-ok
tl_tunnel_down
tl_finish
