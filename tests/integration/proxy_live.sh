#!/usr/bin/env bash
# Ingress proxies over the direct connector, driven by real clients (curl and
# raw sockets), everything on 127.0.0.1:
#
#   curl / proxy_helper.py ──► proxy_driver (SOCKS5 :S, HTTP :H, -L :F)
#                                   │ direct connector: resolve, egress policy
#                                   │ (allow 127.0.0.1/32 only), happy eyeballs
#                                   ▼
#                              proxy_helper.py origin (HTTP/1.1 :O, UDP echo :U)
#
# 127.0.0.2 stands for "somewhere the policy refuses": nothing listens there and
# the policy must stop the connection before any packet leaves.
set -euo pipefail

SRC=${UMBRA_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${UMBRA_BUILD:-$SRC/build}
PY=/usr/bin/python3
HELPER=$SRC/tests/integration/proxy_helper.py

skip() { echo "SKIP: $*"; exit 77; }
command -v curl >/dev/null || skip "curl not installed"
[ -x "$PY" ] || skip "/usr/bin/python3 not installed"
DRIVER_BIN=$BUILD/tests/proxy_driver
[ -x "$DRIVER_BIN" ] || skip "$DRIVER_BIN not built"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cp "$DRIVER_BIN" "$WORK/proxy_driver"

wait_file() { # file
    for _ in $(seq 100); do [ -s "$1" ] && grep -q . "$1" && return 0; sleep 0.1; done
    echo "FAIL: $1 never appeared"; exit 1
}

head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/blob"
BLOB_SHA=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)

$PY "$HELPER" origin "$WORK/origin.ports" "$WORK/blob" &
PIDS+=($!)
wait_file "$WORK/origin.ports"
O=$(awk '/^http/{print $2}' "$WORK/origin.ports")
U=$(awk '/^udp/{print $2}' "$WORK/origin.ports")
F=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$WORK/proxy_driver" "$WORK/ports" --allow 127.0.0.1/32 -L "127.0.0.1:$F:localhost:$O" \
    2>"$WORK/driver.err" &
DRIVER=$!
PIDS+=($DRIVER)
for _ in $(seq 100); do grep -q ready "$WORK/ports" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/ports" || { cat "$WORK/driver.err"; echo "FAIL: driver did not start"; exit 1; }
S=$(awk '/^socks/{print $2}' "$WORK/ports")
H=$(awk '/^http/{print $2}' "$WORK/ports")

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect_eq() { # name got want
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
C=(curl -sS --max-time 20)

# 1. SOCKS5 with names resolved by the proxy: GET and POST, sha256 checked.
got=$("${C[@]}" --socks5-hostname "127.0.0.1:$S" "http://localhost:$O/blob" | sha256sum | cut -d' ' -f1)
expect_eq "socks5-hostname GET 4 MiB" "$got" "$BLOB_SHA"
got=$("${C[@]}" --socks5-hostname "127.0.0.1:$S" --data-binary "@$WORK/blob" "http://localhost:$O/sha")
expect_eq "socks5-hostname POST 4 MiB" "$got" "$BLOB_SHA"
got=$("${C[@]}" --socks5 "127.0.0.1:$S" "http://127.0.0.1:$O/blob" | sha256sum | cut -d' ' -f1)
expect_eq "socks5 (IPv4 address) GET" "$got" "$BLOB_SHA"

# 2. HTTP proxy: absolute-form GET/POST, keep-alive (two requests, one connection), CONNECT.
got=$("${C[@]}" -x "http://127.0.0.1:$H" "http://127.0.0.1:$O/blob" | sha256sum | cut -d' ' -f1)
expect_eq "http proxy GET 4 MiB" "$got" "$BLOB_SHA"
got=$("${C[@]}" -x "http://127.0.0.1:$H" --data-binary "@$WORK/blob" "http://127.0.0.1:$O/sha")
expect_eq "http proxy POST 4 MiB (Expect: 100-continue)" "$got" "$BLOB_SHA"
"${C[@]}" -v -x "http://127.0.0.1:$H" -o "$WORK/k1" -o "$WORK/k2" \
    "http://127.0.0.1:$O/blob" "http://localhost:$O/small" 2>"$WORK/keepalive.log"
if grep -qi "re-using existing connection" "$WORK/keepalive.log" &&
    [ "$(sha256sum <"$WORK/k1" | cut -d' ' -f1)" = "$BLOB_SHA" ] &&
    [ "$(cat "$WORK/k2")" = hello ]; then
    ok "http proxy keep-alive: two requests on one connection"
else
    bad "http proxy keep-alive"; cat "$WORK/keepalive.log"
fi
got=$("${C[@]}" -p -x "http://127.0.0.1:$H" "http://127.0.0.1:$O/blob" | sha256sum | cut -d' ' -f1)
expect_eq "http proxy CONNECT tunnel" "$got" "$BLOB_SHA"

# 3. -L forward.
got=$("${C[@]}" "http://127.0.0.1:$F/blob" | sha256sum | cut -d' ' -f1)
expect_eq "-L forward" "$got" "$BLOB_SHA"

# 4. Egress refusal, seen by curl.
got=$("${C[@]}" -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$H" "http://127.0.0.2:$O/small" || true)
expect_eq "http proxy refused destination: 403" "$got" 403
set +e
"${C[@]}" --socks5 "127.0.0.1:$S" "http://127.0.0.2:$O/small" >/dev/null 2>&1
rc=$?
set -e
expect_eq "socks5 refused destination: curl proxy error" "$rc" 97

# 5. Raw-protocol checks: reply codes, malformed input, UDP ASSOCIATE.
for t in socks_refused_0x02 socks_connect_refused_0x05 socks_bind_0x07 socks_atyp_0x08 \
    socks_bad_version socks_no_method socks_handshake_timeout socks_udp_associate \
    http_origin_form_400 http_garbage_400 http_refused_403 http_502 http_keepalive_mixed \
    http_post_chunked; do
    if out=$(timeout 30 $PY "$HELPER" check "$t" "$S" "$H" "$O" "$U" 2>&1); then ok "$t"; else bad "$t: $out"; fi
done

# 6. Fuzz corpora replayed: every input gets an answer or a close, no crash.
dirs=()
for d in fuzz_proxy_socks5 fuzz_proxy_http; do
    [ -d "$SRC/fuzz/corpus/$d" ] && dirs+=("$SRC/fuzz/corpus/$d")
done
if [ ${#dirs[@]} -gt 0 ]; then
    if out=$(timeout 120 $PY "$HELPER" corpus "$S" "$H" "${dirs[@]}" 2>&1); then ok "corpus: $out"; else bad "corpus: $out"; fi
fi

# 7. 1000 sequential connections: no descriptor growth.
sleep 0.5
fd0=$(ls /proc/$DRIVER/fd | wc -l)
N=1000
if out=$(timeout 300 $PY "$HELPER" seq "$S" "$O" $N 2>&1); then ok "$N sequential SOCKS5 connections"; else bad "sequential: $out"; fi
sleep 1.5 # connections being drained close within the drain period
fd1=$(ls /proc/$DRIVER/fd | wc -l)
if [ "$fd1" -le $((fd0 + 2)) ]; then ok "descriptors: $fd0 before, $fd1 after $N connections"; else bad "descriptors grew: $fd0 -> $fd1"; fi

kill -0 $DRIVER 2>/dev/null || bad "driver died"

# 8. SOCKS5 user/password (RFC 1929) on a second driver.
"$WORK/proxy_driver" "$WORK/ports2" --allow 127.0.0.1/32 --user alice --pass 's3cret' \
    2>"$WORK/driver2.err" &
DRIVER2=$!
PIDS+=($DRIVER2)
for _ in $(seq 100); do grep -q ready "$WORK/ports2" 2>/dev/null && break; sleep 0.1; done
S2=$(awk '/^socks/{print $2}' "$WORK/ports2")
got=$("${C[@]}" --socks5-hostname "127.0.0.1:$S2" -U alice:s3cret "http://localhost:$O/small" || true)
expect_eq "socks5 user/password accepted" "$got" hello
set +e
"${C[@]}" --socks5-hostname "127.0.0.1:$S2" -U alice:wrong "http://localhost:$O/small" >/dev/null 2>&1
rc1=$?
"${C[@]}" --socks5-hostname "127.0.0.1:$S2" "http://localhost:$O/small" >/dev/null 2>&1
rc2=$?
set -e
expect_eq "socks5 wrong password refused" "$rc1" 97
expect_eq "socks5 without credentials refused" "$rc2" 97
kill -TERM $DRIVER2
set +e
wait $DRIVER2
rc=$?
set -e
expect_eq "second driver exits cleanly" "$rc" 0
# 9. Clean shutdown: every handle closed (the driver exits 3 otherwise; ASan
#    reports leaks at exit in the sanitizer build).
kill -TERM $DRIVER
set +e
wait $DRIVER
rc=$?
set -e
expect_eq "driver exits cleanly on SIGTERM" "$rc" 0
if [ -s "$WORK/driver.err" ]; then echo "--- driver stderr"; cat "$WORK/driver.err"; fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all proxy checks passed"
