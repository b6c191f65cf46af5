# shellcheck shell=bash
# Shared helpers of the tunnel_*.sh integration tests. Source it, then:
#
#   tl_netns "$0" "$@"     re-run the script in a private network namespace
#                          (only "lo" in it: nothing can leave the machine,
#                          and ports never clash with other tests)
#   tl_init NAME           work dir, cleanup trap, counters, sizes
#   tl_nginx               nginx on 127.0.0.1 (+ a python body sink for /upload);
#                          with TL_NGINX_TLS=NAME also an HTTPS (TLS 1.2/1.3,
#                          h2) server for NAME, the cover of a tls transport
#   tl_tunnel_up [ARGS]    umbra server (fresh keys, fast probe delays,
#                          --allow 127.0.0.1/32 ARGS) + umbra client with
#                          SOCKS5 and HTTP proxies; waits for session_up
#                          (TL_TRANSPORT=tls: over the tls transport with the
#                          TL_NGINX_TLS server as the cover)
#   ok / bad / expect_eq   record results;  tl_finish  prints "N passed, M
#                          failed" and exits 0 or 1
#
# Environment: UMBRA (binary), UMBRA_SRC, UMBRA_BUILD, UMBRA_SANITIZE=1 in
# the ASan build (sizes and time bounds scale), UMBRA_TEST_MIB (override
# the bulk size), UMBRA_NO_NETNS=1 (stay in the caller's namespace),
# UMBRA_KEEP=1 (keep the work dir), UMBRA_TUNNEL_DIRECT=PATH (harness
# self-test: run the checks against tests/proxy_driver, a plain local
# SOCKS5/HTTP proxy, instead of an umbra client and server).

# ---------------------------------------------------------------- namespace

# tl_netns SCRIPT ARGS...: when possible, exec SCRIPT again inside a new
# network namespace whose loopback is up. Returns (staying here) when that is
# not possible or not wanted; TL_NETNS tells which happened.
tl_netns() {
    TL_NETNS=0
    if [ -n "${UMBRA_IN_NETNS:-}" ]; then
        TL_NETNS=1
        return 0
    fi
    [ -n "${UMBRA_NO_NETNS:-}" ] && return 0
    command -v unshare >/dev/null 2>&1 || return 0
    command -v ip >/dev/null 2>&1 || return 0
    local flags=-n
    [ "$(id -u)" = 0 ] || flags=-rn
    unshare $flags true 2>/dev/null || return 0
    export UMBRA_IN_NETNS=1
    exec unshare $flags bash -c 'ip link set lo up || exit 1; exec bash "$@"' tl-netns "$@"
}

# ---------------------------------------------------------------- setup

tl_init() { # NAME
    TL_NAME=$1
    SRC=${UMBRA_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
    BUILD=${UMBRA_BUILD:-$SRC/build}
    UMBRA=${UMBRA:-$BUILD/umbra}
    PY=/usr/bin/python3
    HELPER=$SRC/tests/integration/tunnel_helper.py
    DIRECT=${UMBRA_TUNNEL_DIRECT:-}
    case "${UMBRA_SANITIZE:-0}" in 1 | ON | on | TRUE | true | yes) SAN=1 ;; *) SAN=0 ;; esac
    # Time bounds are multiplied by TM (sanitizers make everything 3-5x slower).
    if [ $SAN = 1 ]; then TM=3; else TM=1; fi
    PASS=0
    FAIL=0
    TL_PIDS=()
    SERVER_PID=""
    CLIENT_PID=""
    NGINX_PID=""
    WORK=$(mktemp -d "/tmp/umbra-$TL_NAME.XXXXXX")
    # Clients keep their remembered dial parameters under the work dir.
    export XDG_STATE_HOME=$WORK/xdg-state
    # CTest kills a test at 600 s: long steps check tl_budget first.
    TL_DEADLINE=$(($(date +%s) + ${UMBRA_TEST_BUDGET:-540}))
    trap tl_cleanup EXIT
    [ -x "$PY" ] || tl_skip "/usr/bin/python3 not installed (scripts/deps.sh)"
    if [ -n "${TL_NO_UMBRA:-}" ]; then
        :
    elif [ -n "$DIRECT" ]; then
        [ -x "$DIRECT" ] || tl_skip "UMBRA_TUNNEL_DIRECT=$DIRECT is not an executable"
        echo "# harness self-test: plain proxy $DIRECT instead of umbra"
    else
        [ -x "$UMBRA" ] || tl_skip "umbra binary '$UMBRA' not built"
    fi
    echo "# $TL_NAME: work dir $WORK, network namespace: $([ "$TL_NETNS" = 1 ] && echo private || echo "none (host's)"), sanitizer build: $SAN"
    # Freed memory held in ASan's quarantine would look like growth.
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:malloc_context_size=10"
}

tl_skip() {
    echo "SKIP: $*"
    exit 77
}

tl_need() { # command... (each must be on PATH, else skip)
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || tl_skip "$c not installed (run scripts/deps.sh)"
    done
}

tl_cleanup() {
    local rc=$? p
    for p in "${TL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 30); do
        local alive=0
        for p in "${TL_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${TL_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null || true
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        local f
        for f in "$WORK"/server*.log "$WORK"/client*.log "$WORK"/nginx.err; do
            [ -s "$f" ] || continue
            echo "--- last lines of $f"
            tail -n 25 "$f"
        done
    fi
    if [ -n "${UMBRA_KEEP:-}" ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}

# ---------------------------------------------------------------- results

ok() {
    PASS=$((PASS + 1))
    echo "ok   $*"
}
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL $*"
}
expect_eq() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
tl_finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ] && exit 0
    exit 1
}

# ---------------------------------------------------------------- small tools

# tl_budget SECS: true when SECS more seconds fit in the test's time budget;
# otherwise records a failure naming the step ($2) and returns false.
tl_budget() {
    [ $(($(date +%s) + $1)) -le "$TL_DEADLINE" ] && return 0
    bad "${2:-step}: skipped, the test's time budget is used up"
    return 1
}
tl_now_ms() { echo $(($(date +%s%N) / 1000000)); }
tl_sha() { sha256sum "$1" | cut -d' ' -f1; }
tl_free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# tl_listening PORT: is a TCP socket listening on PORT (any address)? Reads
# /proc/net/tcp{,6}, so it never connects (a connection to the umbra server
# would be a probe).
tl_listening() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
tl_wait_listen() { # PORT SECS [PID]: 0 when listening in time (and PID alive)
    local end=$(($(tl_now_ms) + $2 * 1000))
    while [ "$(tl_now_ms)" -lt $end ]; do
        tl_listening "$1" && return 0
        [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}
tl_wait_file() { # FILE SECS
    local end=$(($(tl_now_ms) + $2 * 1000))
    while [ "$(tl_now_ms)" -lt $end ]; do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
tl_bg() { # LOGFILE command...: start in the background, remembered for cleanup; sets BG_PID
    local log=$1
    shift
    "$@" >>"$log" 2>&1 &
    BG_PID=$!
    TL_PIDS+=("$BG_PID")
}
tl_fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
tl_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# tl_stop NAME PID SECS: SIGTERM, wait up to SECS, then expect exit status 0
# (a graceful stop; in the ASan build a leak report makes the status non-zero).
tl_stop() {
    local name=$1 pid=$2 secs=$3 rc
    [ -n "$pid" ] || return 0
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        bad "$name had exited before SIGTERM (status $?)"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null
    local end=$(($(tl_now_ms) + secs * 1000))
    while kill -0 "$pid" 2>/dev/null && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        bad "$name did not exit within $secs s of SIGTERM"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    expect_eq "$name exits with status 0 on SIGTERM" "$rc" 0
}

# ---------------------------------------------------------------- nginx

# tl_nginx: generated content in $WORK/www (small = "small-ok\n", plus the
# page of tunnel_chromium.sh); nginx on 127.0.0.1:$NGINX_PORT and
# [::1]:$NGINX_PORT; /upload is proxied, unbuffered, to a python sink that
# reads the whole body and answers with its sha256; /nginx_status is nginx's
# stub_status (its "accepts" counts every TCP connection nginx took). Access
# log: $WORK/nginx.access ("$request $status $body_bytes_sent $http_user_agent").
# With TL_NGINX_TLS=NAME, the same content also over HTTPS on
# 127.0.0.1:$NGINX_TLS_PORT (TLS 1.2 and 1.3, http2, server_name NAME) with a
# P-256 certificate for CN=NAME made here: $TL_TLS_CERT, $TL_TLS_KEY (the name
# is kept in $NGINX_TLS_SNI).
tl_nginx() {
    tl_need nginx
    mkdir -p "$WORK/www" "$WORK/nginx/tmp"
    local tls=""
    if [ -n "${TL_NGINX_TLS:-}" ]; then
        tl_need openssl
        TL_TLS_CERT=$WORK/nginx/cert.pem
        TL_TLS_KEY=$WORK/nginx/key.pem
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=$TL_NGINX_TLS" -addext "subjectAltName=DNS:$TL_NGINX_TLS" \
            -keyout "$TL_TLS_KEY" -out "$TL_TLS_CERT" >"$WORK/openssl-req.log" 2>&1 ||
            { bad "openssl req: $(cat "$WORK/openssl-req.log")"; tl_finish; }
        NGINX_TLS_PORT=$(tl_free_port)
        NGINX_TLS_SNI=$TL_NGINX_TLS
        tls="server {
        listen 127.0.0.1:$NGINX_TLS_PORT ssl http2;
        server_name $TL_NGINX_TLS;
        ssl_certificate $TL_TLS_CERT;
        ssl_certificate_key $TL_TLS_KEY;
        # Debian's nginx 1.22 offers TLS 1.3 only when asked to.
        ssl_protocols TLSv1.2 TLSv1.3;
        root $WORK/www;
    }"
    fi
    printf 'small-ok\n' >"$WORK/www/small"
    tl_bg "$WORK/sink.log" "$PY" "$HELPER" sink "$WORK/sink.port"
    tl_wait_file "$WORK/sink.port" 10 || { bad "python sink did not start"; tl_finish; }
    SINK_PORT=$(awk '/^sink/ { print $2 }' "$WORK/sink.port")
    NGINX_PORT=$(tl_free_port)
    local six=""
    [ -e /proc/net/if_inet6 ] && six="listen [::1]:$NGINX_PORT;"
    cat >"$WORK/nginx/nginx.conf" <<EOF
# generated by tests/integration/lib.sh
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
    types { text/html html; application/javascript js; image/png png; }
    default_type application/octet-stream;
    log_format t '\$request \$status \$body_bytes_sent "\$http_user_agent"';
    access_log $WORK/nginx.access t;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        $six
        server_name _;
        root $WORK/www;
        client_max_body_size 0;
        location = /nginx_status {
            stub_status;
            access_log off;
        }
        location /upload {
            proxy_pass http://127.0.0.1:$SINK_PORT;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
    $tls
}
EOF
    tl_bg "$WORK/nginx.err" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx.err"
    NGINX_PID=$BG_PID
    tl_wait_listen "$NGINX_PORT" 10 "$NGINX_PID" && { [ -z "$tls" ] || tl_wait_listen "$NGINX_TLS_PORT" 10 "$NGINX_PID"; } || {
        bad "nginx did not start"
        cat "$WORK/nginx.err"
        tl_finish
    }
}

# tl_nginx_accepts: the number of TCP connections nginx has accepted so far
# (this query's own included).
tl_nginx_accepts() {
    curl -sS --max-time 10 "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 { print $1 }'
}

# ---------------------------------------------------------------- umbra

# tl_server_init [CONF] [NAME]: a fresh server config on a free port with fast
# probe delays, one client; sets SPORT and LINK. With TL_TRANSPORT=tls the
# server uses the tls transport, its cover the TLS server of tl_nginx
# (TL_NGINX_TLS=NAME, the SNI).
tl_server_init() {
    local conf=${1:-$WORK/server.conf} name=${2:-laptop} tr=()
    SPORT=$(tl_free_port)
    if [ "${TL_TRANSPORT:-tcp}" = tls ]; then
        [ -n "${NGINX_TLS_PORT:-}" ] || { bad "TL_TRANSPORT=tls needs TL_NGINX_TLS=NAME tl_nginx first"; tl_finish; }
        tr=(--transport tls --cover "127.0.0.1:$NGINX_TLS_PORT" --sni "$NGINX_TLS_SNI")
    fi
    "$UMBRA" server init -c "$conf" --listen "127.0.0.1:$SPORT" ${tr[@]+"${tr[@]}"} >"$WORK/init.out" 2>&1 ||
        { bad "umbra server init: $(cat "$WORK/init.out")"; tl_finish; }
    sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$conf"
    LINK=$("$UMBRA" server add-client -c "$conf" "$name" --no-qr 2>"$WORK/add.err") ||
        { bad "umbra server add-client: $(cat "$WORK/add.err")"; tl_finish; }
}

# tl_server_start [ARGS]: runs the server of $WORK/server.conf (egress allowed
# to 127.0.0.1/32 only, plus ARGS) and waits until it listens (with
# TL_TRANSPORT=tls: and has learned the cover's flight for both
# fingerprints); sets SERVER_PID.
tl_server_start() {
    local log=$WORK/server.log n0=0
    [ "${TL_TRANSPORT:-tcp}" = tls ] && [ -f "$log" ] && n0=$(grep -c 'cover profile for' "$log" || true)
    tl_bg "$log" "$UMBRA" server -c "$WORK/server.conf" --allow 127.0.0.1/32 "$@"
    SERVER_PID=$BG_PID
    tl_wait_listen "$SPORT" $((10 * TM)) "$SERVER_PID" || { bad "umbra server did not start listening on $SPORT"; return 1; }
    [ "${TL_TRANSPORT:-tcp}" = tls ] || return 0
    local end=$(($(tl_now_ms) + 15000 * TM))
    while [ "$(grep -c 'cover profile for' "$log" || true)" -lt $((n0 + 2)) ]; do
        [ "$(tl_now_ms)" -lt $end ] && kill -0 "$SERVER_PID" 2>/dev/null ||
            { bad "umbra server learned no cover profile: $(grep -i cover "$log" | tail -n 3)"; return 1; }
        sleep 0.05
    done
}

# tl_client_start LINK [LOGNAME] [ARGS]: umbra client with SOCKS5 on
# $SOCKS and HTTP on $HTTP, events in $EVENTS; waits for the proxies.
tl_client_start() {
    local link=$1 log=${2:-client}
    shift 2 2>/dev/null || shift
    SOCKS=$(tl_free_port)
    HTTP=$(tl_free_port)
    EVENTS=$WORK/$log.events
    CONTROL=$WORK/$log.sock
    tl_bg "$WORK/$log.log" "$UMBRA" client --link "$link" --socks "127.0.0.1:$SOCKS" \
        --http "127.0.0.1:$HTTP" --events "$EVENTS" --control "$CONTROL" "$@"
    CLIENT_PID=$BG_PID
    tl_wait_listen "$SOCKS" $((10 * TM)) "$CLIENT_PID" && tl_wait_listen "$HTTP" $((5 * TM)) "$CLIENT_PID" ||
        { bad "umbra client did not start its proxies"; return 1; }
}

tl_wait_session() { # N SECS: wait for the N-th session_up event
    "$PY" "$HELPER" wait-event "$EVENTS" session_up "$1" "$2"
}

# tl_tunnel_up [SERVER ARGS]: server + client + first session, or (harness
# self-test) the plain proxy driver. Sets SOCKS, HTTP, CLIENT_PID and, with
# umbra, SPORT, LINK, SERVER_PID, EVENTS.
tl_tunnel_up() {
    if [ -n "$DIRECT" ]; then
        rm -f "$WORK/driver.ports"
        tl_bg "$WORK/client.log" "$DIRECT" "$WORK/driver.ports" --allow 127.0.0.1/32 "$@"
        CLIENT_PID=$BG_PID
        local i
        for i in $(seq 100); do grep -q ready "$WORK/driver.ports" 2>/dev/null && break; sleep 0.1; done
        grep -q ready "$WORK/driver.ports" 2>/dev/null || { bad "proxy driver did not start"; tl_finish; }
        SOCKS=$(awk '/^socks/ { print $2 }' "$WORK/driver.ports")
        HTTP=$(awk '/^http/ { print $2 }' "$WORK/driver.ports")
        return 0
    fi
    tl_server_init
    tl_server_start "$@" || tl_finish
    # TL_CLIENT_ARGS: more client options (e.g. --fast-open off for tests of reply codes)
    tl_client_start "$LINK" client ${TL_CLIENT_ARGS:-} || tl_finish
    local t0
    t0=$(tl_now_ms)
    if out=$(tl_wait_session 1 $((15 * TM))); then
        ok "session up in $(($(tl_now_ms) - t0)) ms"
    else
        bad "session: $out"
        tl_finish
    fi
}

# tl_need_umbra WHY: skip in the harness self-test, where there is no umbra.
tl_need_umbra() {
    [ -z "$DIRECT" ] || tl_skip "$* needs the umbra server and client (harness self-test mode)"
}

# tl_tunnel_down: graceful stops, checked.
tl_tunnel_down() {
    tl_stop "client" "$CLIENT_PID" $((5 * TM))
    CLIENT_PID=""
    [ -n "$SERVER_PID" ] && tl_stop "server" "$SERVER_PID" $((10 * TM))
    SERVER_PID=""
}

# The bulk size in MiB: 100, 16 under sanitizers, or $UMBRA_TEST_MIB.
tl_bulk_mib() {
    if [ -n "${UMBRA_TEST_MIB:-}" ]; then
        echo "$UMBRA_TEST_MIB"
    elif [ "$SAN" = 1 ]; then
        echo 16
    else
        echo 100
    fi
}

# ---------------------------------------------------------------- TLS hellos

# tl_chromium: the Chromium binary on PATH, or "" (sets CHROME too).
tl_chromium() {
    CHROME=""
    local c
    for c in chromium chromium-browser; do command -v "$c" >/dev/null 2>&1 && { CHROME=$c; break; }; done
    echo "$CHROME"
}

# tl_capture_hello PREFIX CMD...: runs CMD (with the port of a fresh
# tls_capture.py listener substituted for @PORT@) until the listener has one
# ClientHello, then stops it; prints the hello's file ($WORK/cap/PREFIX-00.bin).
tl_capture_hello() {
    local prefix=$1 log=$WORK/$1.cap.log
    shift
    mkdir -p "$WORK/cap"
    : >"$log"
    "$PY" "$SRC/tests/integration/tls_capture.py" --out "$WORK/cap" --count 1 --timeout $((30 * TM)) \
        --prefix "$prefix" >"$log" 2>&1 &
    local cpid=$!
    TL_PIDS+=("$cpid")
    tl_wait_file "$log" 10 || { kill "$cpid" 2>/dev/null; return 1; }
    local port
    port=$(awk '/^port/ { print $2 }' "$log")
    local args=() a
    for a in "$@"; do args+=("${a//@PORT@/$port}"); done
    timeout -k 2 $((25 * TM)) "${args[@]}" >"$WORK/$prefix.browser.log" 2>&1 &
    local bpid=$!
    wait "$cpid"
    local rc=$?
    kill "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    [ $rc = 0 ] || return 1
    echo "$WORK/cap/$prefix-00.bin"
}

# tl_capture_chromium PREFIX: one ClientHello of headless Chromium for
# https://example.com/ (the name mapped to the listener); prints its file.
tl_capture_chromium() {
    local d
    d=$(mktemp -d "$WORK/chr.XXXX")
    tl_capture_hello "$1" "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$d" "--host-resolver-rules=MAP example.com 127.0.0.1:@PORT@" \
        --dump-dom https://example.com/
}

# tl_firefox_profile DIR: a Firefox profile that resolves example.com to
# loopback without DNS and makes no background connections.
tl_firefox_profile() {
    cat >"$1/user.js" <<'JSEOF'
user_pref("network.dns.localDomains", "example.com");
user_pref("network.trr.mode", 5);
user_pref("network.http.http3.enable", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("captivedetect.canonicalURL", "");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.server", "");
user_pref("extensions.update.enabled", false);
user_pref("extensions.blocklist.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.systemAddon.update.enabled", false);
user_pref("browser.search.update", false);
user_pref("browser.region.update.enabled", false);
user_pref("browser.region.network.url", "");
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("media.gmp-manager.url", "");
user_pref("network.prefetch-next", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.predictor.enabled", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("security.remote_settings.crlite_filters.enabled", false);
user_pref("security.remote_settings.intermediates.enabled", false);
JSEOF
}

# tl_capture_firefox PREFIX: one ClientHello of headless Firefox ESR for
# https://example.com:PORT/; prints its file.
tl_capture_firefox() {
    local d
    d=$(mktemp -d "$WORK/ff.XXXX")
    tl_firefox_profile "$d"
    HOME=$d tl_capture_hello "$1" firefox-esr --headless --no-remote --profile "$d" "https://example.com:@PORT@/"
}

# tl_tshark_hello FILE: 0 when tshark (on a pcap text2pcap made of FILE, the
# client's bytes to port 443) sees a Client Hello and no Malformed/expert
# error; 1 when it does not, 2 when the tools failed. Output in FILE.tshark.
tl_tshark_hello() {
    od -Ax -tx1 -v "$1" >"$1.txt"
    text2pcap -q -T 50000,443 "$1.txt" "$1.pcap" >/dev/null 2>&1 || return 2
    tshark -r "$1.pcap" -d tcp.port==443,tls -V >"$1.tshark" 2>&1 || return 2
    grep -q "Handshake Type: Client Hello (1)" "$1.tshark" || return 1
    ! grep -qiE "Malformed|Expert Info \((Error|Warning)" "$1.tshark"
}

# tl_hide_lib SONAME: sets HIDE_LIB to a command prefix under which SONAME
# cannot be loaded (an empty file bound over it in a private mount namespace;
# the command keeps its pid). Returns 1 (HIDE_LIB empty) without root or
# without the library.
tl_hide_lib() {
    local f
    HIDE_LIB=()
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 || return 1
    f=$(ldconfig -p 2>/dev/null | awk -v s="$1" '$1 == s { print $NF; exit }')
    [ -n "$f" ] && f=$(readlink -f "$f") && [ -f "$f" ] || return 1
    HIDE_LIB=(unshare -m --propagation private sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$f")
}

# ---------------------------------------------------------------- self-test

# Run directly (CTest registers every tests/integration/*.sh), this file
# checks its own fixtures, with no umbra involved: the namespace, port
# helpers, nginx serving a file and passing an upload body to the sink, the
# event waiter, and graceful-stop detection.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    tl_netns "$0" "$@"
    TL_NO_UMBRA=1 tl_init lib_selftest
    tl_need curl nginx
    tl_nginx
    tl_listening "$NGINX_PORT" && ok "tl_listening sees nginx on $NGINX_PORT" || bad "tl_listening misses nginx"
    p=$(tl_free_port)
    tl_listening "$p" && bad "tl_listening sees a free port $p" || ok "tl_listening: free port $p not listening"
    head -c 3000000 /dev/urandom >"$WORK/www/blob"
    want=$(tl_sha "$WORK/www/blob")
    got=$(curl -sS --max-time 20 "http://127.0.0.1:$NGINX_PORT/blob" | sha256sum | cut -d' ' -f1)
    expect_eq "nginx serves a generated file" "$got" "$want"
    got=$(curl -sS --max-time 20 -X POST -T "$WORK/www/blob" "http://127.0.0.1:$NGINX_PORT/upload/x")
    expect_eq "nginx streams an upload to the sink, which hashes it" "$got" "$want"
    got=$(curl -sS --max-time 20 -H 'Transfer-Encoding: chunked' --data-binary "@$WORK/www/blob" "http://127.0.0.1:$NGINX_PORT/upload/y")
    expect_eq "chunked upload hashed by the sink" "$got" "$want"
    grep -q '^GET /blob HTTP/1.1 200 3000000 "curl' "$WORK/nginx.access" && ok "access log format" || bad "access log: $(cat "$WORK/nginx.access")"
    EVENTS=$WORK/ev
    (sleep 0.3; echo '{"event":"session_up","rtt_ms":1}' >>"$EVENTS") &
    tl_wait_session 1 5 >/dev/null && ok "event waiter sees session_up" || bad "event waiter"
    tl_wait_session 2 0.3 >/dev/null && bad "event waiter counts wrong" || ok "event waiter counts events"
    [ -z "$(tl_rss_kib $$)" ] && bad "tl_rss_kib" || ok "tl_rss_kib $$: $(tl_rss_kib $$) KiB, $(tl_fd_count $$) fds"
    tl_stop "nginx" "$NGINX_PID" 5
    f0=$FAIL
    sleep 30 &
    tl_stop "sleep" $! 2 >/dev/null
    if [ "$FAIL" = $((f0 + 1)) ]; then
        FAIL=$f0
        ok "tl_stop reports a non-zero exit status"
    else
        bad "tl_stop missed a non-zero exit status"
    fi
    tl_finish
fi
