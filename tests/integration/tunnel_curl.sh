#!/usr/bin/env bash
# curl through the tunnel to a local nginx: bulk download and upload, sha256
# checked both ways, through SOCKS5 and the HTTP proxy; 200 parallel transfers.
#
#   curl ──► umbra client ══ tcp 127.0.0.1:SPORT ══► umbra server ──► nginx 127.0.0.1:N
#           SOCKS5 :S                                 --allow          /blob  (random file)
#           HTTP   :H                                 127.0.0.1/32     /upload ──► python sink
#                                                                       (reads the body, answers
#                                                                        with its sha256)
# Everything runs in a private network namespace (only "lo") when possible.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_curl
tl_need curl nginx

MIB=$(tl_bulk_mib)
NPAR=200
PAR_KIB=256
[ "$SAN" = 1 ] && PAR_KIB=64
echo "# bulk size ${MIB} MiB, $NPAR parallel transfers of ${PAR_KIB} KiB"

tl_nginx
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((PAR_KIB * 1024)) /dev/urandom >"$WORK/www/par"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
PAR_SHA=$(tl_sha "$WORK/www/par")
tl_tunnel_up

B=$((MIB * 1024 * 1024))
T=$((80 * TM)) # bound of one bulk transfer; a stall (< 1 KiB/s for 15 s) ends it sooner
STALL=(--speed-limit 1024 --speed-time $((15 * TM)))
C=(curl -sS --max-time $T "${STALL[@]}")
SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
HPX=(-x "http://127.0.0.1:$HTTP")

# bulk NAME curl-args...: download /blob into a file, check size and sha256, print MB/s.
bulk_get() {
    local name=$1
    shift
    tl_budget "$T" "$name" || return
    local t0 t1
    rm -f "$WORK/got"
    t0=$(tl_now_ms)
    "${C[@]}" "$@" -o "$WORK/got" 2>"$WORK/curl.err"
    local rc=$?
    t1=$(tl_now_ms)
    if [ $rc != 0 ]; then
        bad "$name: curl exit $rc: $(head -c 300 "$WORK/curl.err")"
        return
    fi
    local got
    got=$(tl_sha "$WORK/got")
    if [ "$got" = "$BLOB_SHA" ]; then
        ok "$name: $MIB MiB, sha256 equal, $((B / 1000 / (t1 - t0 + 1))) MB/s"
    else
        bad "$name: sha256 differs ($(stat -c %s "$WORK/got") of $B bytes)"
    fi
}
bulk_post() {
    local name=$1
    shift
    tl_budget "$T" "$name" || return
    local t0 t1 got
    t0=$(tl_now_ms)
    got=$("${C[@]}" "$@" 2>"$WORK/curl.err")
    local rc=$?
    t1=$(tl_now_ms)
    if [ $rc != 0 ]; then
        bad "$name: curl exit $rc: $(head -c 300 "$WORK/curl.err")"
    elif [ "$got" = "$BLOB_SHA" ]; then
        ok "$name: $MIB MiB, sha256 seen by the sink equal, $((B / 1000 / (t1 - t0 + 1))) MB/s"
    else
        bad "$name: sink saw sha256 '$got', want $BLOB_SHA"
    fi
}

# Control: the same file straight from nginx (proves the fixture, not the tunnel).
got=$(curl -sS --max-time 60 "http://127.0.0.1:$NGINX_PORT/blob" | sha256sum | cut -d' ' -f1)
expect_eq "fixture: nginx serves the blob directly" "$got" "$BLOB_SHA"
got=$(curl -sS --max-time 60 -H 'Expect:' --data-binary "@$WORK/www/par" "http://127.0.0.1:$NGINX_PORT/upload")
expect_eq "fixture: nginx passes an upload body to the sink" "$got" "$PAR_SHA"

# 1. Downloads.
bulk_get "GET via SOCKS5 (--socks5-hostname localhost)" "${SOX[@]}" "http://localhost:$NGINX_PORT/blob"
bulk_get "GET via HTTP proxy (absolute-form)" "${HPX[@]}" "http://127.0.0.1:$NGINX_PORT/blob"
bulk_get "GET via HTTP proxy CONNECT (-p)" -p "${HPX[@]}" "http://localhost:$NGINX_PORT/blob"

# 2. Uploads: POST streamed from the file (-T with -X POST), body hashed by the sink.
bulk_post "POST via SOCKS5" "${SOX[@]}" -X POST -T "$WORK/www/blob" "http://localhost:$NGINX_PORT/upload/s"
bulk_post "POST via HTTP proxy (absolute-form)" "${HPX[@]}" -X POST -T "$WORK/www/blob" \
    "http://127.0.0.1:$NGINX_PORT/upload/h"
bulk_post "POST via HTTP proxy CONNECT (-p)" -p "${HPX[@]}" -X POST -T "$WORK/www/blob" \
    "http://127.0.0.1:$NGINX_PORT/upload/c"

# 3. 200 parallel transfers (all connections opened at once), each file checked;
#    through SOCKS5, then through the HTTP proxy.
parallel() { # NAME curl-proxy-args...
    local name=$1
    shift
    tl_budget $((40 * TM)) "$name" || return
    local d=$WORK/par.d i t0 t1
    rm -rf "$d"
    mkdir -p "$d"
    : >"$WORK/par.cfg"
    for i in $(seq $NPAR); do
        printf 'url = "http://127.0.0.1:%s/par?i=%d"\noutput = "%s/%d"\n' "$NGINX_PORT" "$i" "$d" "$i" >>"$WORK/par.cfg"
    done
    t0=$(tl_now_ms)
    curl -sS --max-time $((40 * TM)) "${STALL[@]}" --parallel --parallel-immediate --parallel-max $NPAR "$@" \
        -K "$WORK/par.cfg" 2>"$WORK/par.err"
    local rc=$?
    t1=$(tl_now_ms)
    local good=0
    for i in $(seq $NPAR); do
        [ -f "$d/$i" ] && [ "$(tl_sha "$d/$i")" = "$PAR_SHA" ] && good=$((good + 1))
    done
    if [ $rc = 0 ] && [ $good = $NPAR ]; then
        ok "$name: $NPAR parallel transfers, all $NPAR sha256 equal, $((t1 - t0)) ms"
    else
        bad "$name: curl exit $rc, $good of $NPAR files correct: $(sort "$WORK/par.err" | uniq -c | head -5)"
    fi
}
parallel "parallel via SOCKS5" "${SOX[@]}"
parallel "parallel via HTTP proxy" "${HPX[@]}"

# 4. 200 parallel uploads through SOCKS5 (the small file, each checked by the sink).
: >"$WORK/up.cfg"
for i in $(seq $NPAR); do
    printf 'url = "http://127.0.0.1:%s/upload/%d"\noutput = "%s/up.%d"\n' "$NGINX_PORT" "$i" "$WORK" "$i" >>"$WORK/up.cfg"
done
curl -sS --max-time $((40 * TM)) "${STALL[@]}" --parallel --parallel-immediate --parallel-max $NPAR "${SOX[@]}" \
    -H 'Expect:' --data-binary "@$WORK/www/par" -K "$WORK/up.cfg" 2>"$WORK/up.err"
rc=$?
good=0
for i in $(seq $NPAR); do [ "$(cat "$WORK/up.$i" 2>/dev/null)" = "$PAR_SHA" ] && good=$((good + 1)); done
if [ $rc = 0 ] && [ $good = $NPAR ]; then ok "parallel POST via SOCKS5: all $NPAR bodies arrived intact"; else bad "parallel POST: curl exit $rc, $good of $NPAR intact"; fi

kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
[ -z "$SERVER_PID" ] || { kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive" || bad "server died"; }
tl_tunnel_down
tl_finish
