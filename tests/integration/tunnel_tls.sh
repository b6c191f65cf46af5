#!/usr/bin/env bash
# The tls transport end to end, with a real nginx (TLS 1.2/1.3, h2, a P-256
# certificate made here) as the cover site (docs/PROTOCOL.md section 8):
#   1. a prober of the umbra port sees nginx: openssl s_client shows nginx's
#      certificate (for the SNI, another name, none), curl -k gets nginx's page
#      over h2 and over TLS 1.2, a replayed umbra ClientHello gets nginx's
#      handshake (nginx accepts one more connection; the flight is the one
#      nginx sends to those bytes), also when sent slowly or padded past 8 KiB
#      in four records, and non-TLS or broken TLS bytes (then half-closed or
#      not) get byte for byte what nginx answers to them;
#   2. on the wire (a recording tap between client and server): the client's
#      ClientHello parses, has the JA4 of the live browser (Chromium, and
#      Firefox ESR for a client with fp=firefox) and tshark dissects it
#      without errors; the server's reply has the record sizes of nginx's
#      flight to the same hello; the client then sends what a browser sends
#      (CCS, a Finished-sized record);
#   3. curl through SOCKS5 and the HTTP proxy (CONNECT and absolute-form):
#      100 MiB down and up intact, parallel transfers; headless Chromium loads
#      a page with a script and an image;
#   4. a client hijacked to the real cover, and a client sending another SNI
#      (spliced to the cover by the server), get no session, say so, and send
#      nothing after their ClientHello (they just close).
#
#   curl/chromium ─► umbra client ══ tls ══► [tap] ══► umbra server :SPORT ─► nginx :N (http, /upload ─► sink)
#                                                        └ not authenticated ─► nginx :NT (https, the cover)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_tls
tl_need_umbra "the tls transport"
tl_need curl nginx openssl
TOOL=$BUILD/tests/tls_hello_tool
TH=$SRC/tests/integration/tls_helper.py
[ -x "$TOOL" ] || tl_skip "$TOOL not built"
SNI=www.cover-site.example
MIB=$(tl_bulk_mib)
NPAR=12
PAR_KIB=256
[ "$SAN" = 1 ] && PAR_KIB=64
SILENCE=$((2 * TM)) # seconds without a byte that end a probe's read
echo "# bulk size ${MIB} MiB, $NPAR parallel transfers of ${PAR_KIB} KiB, cover SNI $SNI"

TL_NGINX_TLS=$SNI tl_nginx
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((PAR_KIB * 1024)) /dev/urandom >"$WORK/www/par"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
PAR_SHA=$(tl_sha "$WORK/www/par")
NONCE=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORK/www/index.html" <<EOF
<!doctype html>
<html><head><title>cover</title></head>
<body>
<p id="page">PAGE-MARKER-$NONCE</p>
<img id="img" src="/pixel.png" width="1" height="1">
<div id="out"></div>
<script src="/app.js"></script>
</body></html>
EOF
printf 'document.getElementById("out").textContent = "SCRIPT-MARKER-" + "%s";\n' "$NONCE" >"$WORK/www/app.js"
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82' >"$WORK/www/pixel.png"

export TL_TRANSPORT=tls
tl_tunnel_up
grep -q "t=tls&sni=$SNI" <<<"$LINK" && ok "add-client prints a link with t=tls&sni=$SNI" || bad "link without t=tls&sni: $LINK"
grep 'cover profile for' "$WORK/server.log" | sed 's/^/# /'
M_SOCKS=$SOCKS M_HTTP=$HTTP M_PID=$CLIENT_PID

# ---------------------------------------------------------------- live browsers' JA4

# live_ja4 NAME FIXTURE CAPTURE-FN: the JA4 of the live browser's hello, or
# (browser missing or unable to run) of the committed capture, said so.
live_ja4() {
    local f
    if f=$($3 "live-$1"); then
        "$TOOL" ja4 "$f"
    else
        echo "# $1 could not run here: comparing with the committed capture tests/data/tls/$2" >&2
        "$TOOL" ja4 "$SRC/tests/data/tls/$2"
    fi
}
CHROME_OK=0
if [ -n "$(tl_chromium)" ] && tl_chromium >/dev/null && f=$(tl_capture_chromium live-chromium); then
    CHROME_OK=1
    JA4_CHR=$("$TOOL" ja4 "$f")
else
    echo "# Chromium could not run here: comparing with the committed capture tests/data/tls/chromium-156-a.bin"
    JA4_CHR=$("$TOOL" ja4 "$SRC/tests/data/tls/chromium-156-a.bin")
fi
if command -v firefox-esr >/dev/null 2>&1; then
    JA4_FF=$(live_ja4 firefox firefox-153-a.bin tl_capture_firefox)
else
    echo "# firefox-esr not installed: comparing with the committed capture tests/data/tls/firefox-153-a.bin"
    JA4_FF=$("$TOOL" ja4 "$SRC/tests/data/tls/firefox-153-a.bin")
fi
echo "# JA4 chromium $JA4_CHR, firefox $JA4_FF"

# ---------------------------------------------------------------- the wire

# tap_client NAME UPSTREAM LINKSUFFIX [PIECE GAP]: a recording tap to
# 127.0.0.1:UPSTREAM (forwarding the client's first bytes PIECE bytes a write,
# GAP s apart) and a client whose link points at the tap (LINKSUFFIX added to
# its query); sets TAPDIR, SOCKS, HTTP, EVENTS, CLIENT_PID.
tap_client() {
    local name=$1 up=$2 suffix=$3
    TAPDIR=$WORK/tap-$name
    tl_bg "$WORK/tap-$name.log" "$PY" "$TH" tap "$WORK/tap-$name.port" "$up" "$TAPDIR" $((256 * 1024)) ${4:-0} ${5:-0}
    tl_wait_file "$WORK/tap-$name.port" 10 || { bad "$name: tap did not start"; return 1; }
    local tap link
    tap=$(cat "$WORK/tap-$name.port")
    link=${LINK/@127.0.0.1:$SPORT/@127.0.0.1:$tap}
    link=${link%%#*}$suffix#${link#*#} # (not ${x/\#/...}: bash 5.2 expands & there)
    tl_client_start "$link" "client-$name"
}

# wire NAME FP-JA4: checks of the tap's first connection of client NAME,
# whose session is up: hello, JA4, tshark, the server's flight against
# nginx's to the same hello, and what the client sends next.
wire() {
    local name=$1 want=$2 c2s=$TAPDIR/0.c2s s2c=$TAPDIR/0.s2c h=$WORK/hello-$1.bin out
    if ! out=$("$PY" "$TH" hello "$c2s" "$h"); then
        bad "$name: the client's first bytes are no ClientHello"
        return
    fi
    local hlen=${out% *} sid=${out#* }
    ok "$name: the client's first bytes are a ClientHello record of $hlen bytes"
    expect_eq "$name: our parser reads the hello on the wire, JA4 that of the live browser" \
        "$("$TOOL" ja4 "$h" 2>&1)" "$want"
    tl_tshark_hello "$h"
    local rc=$?
    expect_eq "$name: tshark dissects the hello on the wire as a Client Hello without errors" $rc 0
    [ $rc = 0 ] || grep -iE -m3 "Malformed|Expert Info" "$h.tshark"
    grep -q "Server Name: $SNI" "$h.tshark" && ok "$name: tshark reads SNI $SNI" || bad "$name: tshark shows no SNI $SNI"
    expect_eq "$name: the server's reply starts with a TLS 1.3 ServerHello echoing the session id" \
        "$("$PY" "$TH" shello "$s2c" "$sid" | cut -d' ' -f1)" ok
    # nginx's own answer to this very hello (it fails later: no key).
    "$PY" "$TH" exchange "$NGINX_TLS_PORT" "$h" "$SILENCE" "$WORK/nginx-$name.reply" >/dev/null
    echo "# $name: nginx's flight to the hello: $("$PY" "$TH" records "$WORK/nginx-$name.reply")"
    echo "# $name: umbra's reply on the wire:  $("$PY" "$TH" records "$s2c" 8)"
    expect_eq "$name: the server's reply has the record sizes of nginx's flight (CertificateVerify +-3)" \
        "$("$PY" "$TH" flight "$s2c" "$WORK/nginx-$name.reply")" equal
    tail -c +$((hlen + 1)) "$c2s" >"$WORK/after-$name.bin"
    expect_eq "$name: after the hello the client sends CCS and a Finished-sized record, as a browser does" \
        "$("$PY" "$TH" records "$WORK/after-$name.bin" 2)" "20:1 23:53"
}

small_get() { # NAME SOCKS: a small page through SOCKS
    local got
    got=$(curl -sS --max-time $((20 * TM)) --socks5-hostname "127.0.0.1:$2" "http://localhost:$NGINX_PORT/small" 2>&1)
    expect_eq "$1: a page through SOCKS5" "$got" small-ok
}

# Chromium's fingerprint (the default); the tap hands the hello to the server
# in 1448-byte pieces, as a path with that MSS does.
if tap_client chr "$SPORT" "" 1448 0.01; then
    if out=$(tl_wait_session 1 $((15 * TM))); then
        ok "chromium-fp client through the tap (its hello in 1448-byte pieces): session up"
        small_get "chromium-fp client" "$SOCKS"
        tl_stop "chromium-fp client" "$CLIENT_PID" $((5 * TM))
        wire chromium "$JA4_CHR"
    else
        bad "chromium-fp client through the tap: $out"
    fi
fi
CHR_HELLO=$WORK/hello-chromium.bin

# Firefox's, from the link (fp=firefox).
if tap_client ff "$SPORT" "&fp=firefox"; then
    if out=$(tl_wait_session 1 $((15 * TM))); then
        ok "firefox-fp client (link &fp=firefox) through the tap: session up"
        small_get "firefox-fp client" "$SOCKS"
        tl_stop "firefox-fp client" "$CLIENT_PID" $((5 * TM))
        wire firefox "$JA4_FF"
    else
        bad "firefox-fp client through the tap: $out"
    fi
fi

# ---------------------------------------------------------------- probes

cert_fp() { # PORT: sha256 fingerprint of the certificate s_client gets for SNI
    timeout $((20 * TM)) openssl s_client -connect "127.0.0.1:$1" -servername "$SNI" </dev/null 2>"$WORK/sclient.err" |
        tee "$WORK/sclient-$1.out" | openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
WANT_FP=$(openssl x509 -in "$TL_TLS_CERT" -noout -fingerprint -sha256)
expect_eq "control: openssl s_client to nginx shows the certificate file's" "$(cert_fp "$NGINX_TLS_PORT")" "$WANT_FP"
expect_eq "openssl s_client -servername $SNI to the umbra port shows nginx's certificate" "$(cert_fp "$SPORT")" "$WANT_FP"
grep -qE 'TLSv1\.3' "$WORK/sclient-$SPORT.out" && ok "... over TLS 1.3" || bad "s_client: no TLSv1.3: $(grep -m2 -E 'Protocol|New,' "$WORK/sclient-$SPORT.out")"

page() { # PORT [CURL ARGS]: nginx's index page over https, and the HTTP version
    local port=$1
    shift
    rm -f "$WORK/page-$port.html"
    curl -sS -k --max-time $((20 * TM)) --resolve "$SNI:$port:127.0.0.1" -o "$WORK/page-$port.html" \
        -w '%{http_version}' "$@" "https://$SNI:$port/index.html" 2>"$WORK/page-$port.err"
}
expect_eq "curl -k --resolve to the umbra port: h2" "$(page "$SPORT")" 2
expect_eq "curl -k --resolve to the umbra port gets nginx's page" "$(tl_sha "$WORK/page-$SPORT.html")" "$(tl_sha "$WORK/www/index.html")"
expect_eq "curl -k --tlsv1.2 --tls-max 1.2 to the umbra port: http/1.1 (--http1.1)" "$(page "$SPORT" --tlsv1.2 --tls-max 1.2 --http1.1)" 1.1
expect_eq "... and gets nginx's page over TLS 1.2" "$(tl_sha "$WORK/page-$SPORT.html")" "$(tl_sha "$WORK/www/index.html")"
# Another name, and none: the umbra port shows what nginx shows (its one certificate).
for sn in "-servername other.example" -noservername; do
    a=$(timeout $((20 * TM)) openssl s_client -connect "127.0.0.1:$NGINX_TLS_PORT" $sn </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>&1)
    b=$(timeout $((20 * TM)) openssl s_client -connect "127.0.0.1:$SPORT" $sn </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>&1)
    expect_eq "openssl s_client $sn: the umbra port shows nginx's certificate" "$b" "$a"
done

if [ -s "$CHR_HELLO" ]; then
    a0=$(tl_nginx_accepts)
    st=$("$PY" "$TH" exchange "$SPORT" "$CHR_HELLO" "$SILENCE" "$WORK/replay.reply")
    a1=$(tl_nginx_accepts)
    echo "# replayed hello: $("$PY" "$TH" records "$WORK/replay.reply"), connection $st; nginx accepts $a0 -> $a1"
    expect_eq "a replayed umbra ClientHello is spliced to nginx (nginx accepts one more connection)" $((a1 - a0)) 2
    sid=$("$PY" "$TH" hello "$CHR_HELLO" /dev/null | cut -d' ' -f2)
    expect_eq "the replayed hello gets a ServerHello that parses" \
        "$("$PY" "$TH" shello "$WORK/replay.reply" "$sid" | cut -d' ' -f1)" ok
    expect_eq "the replayed hello gets nginx's flight (record sizes of nginx's answer to the same bytes)" \
        "$("$PY" "$TH" flight "$WORK/replay.reply" "$WORK/nginx-chromium.reply")" equal
    expect_eq "the replayed hello gets nginx's flight and nothing after it (no umbra record)" \
        "$("$PY" "$TH" flight "$WORK/replay.reply" "$WORK/nginx-chromium.reply" only)" equal
    # The same hello in pieces 0.2 s apart (1.4 s, past the 200-400 ms probe
    # delay of the test's config): spliced at the delay, in mid-hello, so nginx
    # gets the bytes read so far and then the rest.
    "$PY" "$TH" exchange "$SPORT" "$CHR_HELLO" "$SILENCE" "$WORK/slow.reply" slow:300:0.2 >/dev/null
    expect_eq "the replayed hello sent slowly in 300-byte pieces gets nginx's flight and nothing more" \
        "$("$PY" "$TH" flight "$WORK/slow.reply" "$WORK/nginx-chromium.reply" only)" equal
    # Over the parser's 8192 bytes, in four records: spliced whole.
    hl=$("$PY" "$TH" bighello "$CHR_HELLO" "$WORK/big.bin" 9000 4096)
    "$PY" "$TH" exchange "$NGINX_TLS_PORT" "$WORK/big.bin" "$SILENCE" "$WORK/big.nginx" >/dev/null
    "$PY" "$TH" exchange "$SPORT" "$WORK/big.bin" "$SILENCE" "$WORK/big.umbra" >/dev/null
    echo "# a $hl-byte hello in 4096-byte records: nginx answers $("$PY" "$TH" records "$WORK/big.nginx")"
    expect_eq "a $hl-byte hello in four records gets nginx's flight and nothing more" \
        "$("$PY" "$TH" flight "$WORK/big.umbra" "$WORK/big.nginx" only)" equal
    head -c 100 "$CHR_HELLO" >"$WORK/probe-partial.bin"
else
    bad "replay: no recorded umbra ClientHello"
fi

# Bytes that are not TLS, or broken TLS: umbra must answer what nginx answers.
"$PY" - "$WORK" "$SNI" <<'PYEOF'
import os, sys
w, sni = sys.argv[1], sys.argv[2]
r = bytearray(os.urandom(600))
r[0] = 0x80 | (r[0] & 0x3f)  # never a TLS record type
cases = {
    "random": bytes(r),
    "bad-record": b"\x16\x03\x01\x00\x40" + bytes([0x07]) + os.urandom(63),
    "bad-hello": b"\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03" + os.urandom(58),
    "wrong-version": b"\x16\x09\x09\x00\x10" + os.urandom(16),
    "http": ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % sni).encode(),
    "one-byte": b"\x16",
}
for k, v in cases.items():
    open(os.path.join(w, "probe-%s.bin" % k), "wb").write(v)
PYEOF
for k in random bad-record bad-hello wrong-version http one-byte one-byte:shut partial partial:shut; do
    mode=""
    case $k in *:shut) mode=shut ;; esac
    f=$WORK/probe-${k%:*}.bin
    [ -f "$f" ] || { bad "probe $k: no $f"; continue; }
    sn=$("$PY" "$TH" exchange "$NGINX_TLS_PORT" "$f" "$SILENCE" "$f.nginx" $mode)
    su=$("$PY" "$TH" exchange "$SPORT" "$f" "$SILENCE" "$f.umbra" $mode)
    if [ $k = http ]; then # the 400 page carries the time
        sed -i -E 's/^Date: [^\r]*/Date: -/' "$f.nginx" "$f.umbra"
    fi
    echo "# $k${mode:+ (then half-closed)}: nginx answers $(stat -c %s "$f.nginx") bytes ($(head -c 12 "$f.nginx" | od -An -tx1 | tr -d '\n')), connection $sn"
    expect_eq "$k${mode:+ (then half-closed)} bytes: the umbra port answers exactly what nginx answers" \
        "$(tl_sha "$f.umbra") $su" "$(tl_sha "$f.nginx") $sn"
done

# ---------------------------------------------------------------- bulk

SOCKS=$M_SOCKS HTTP=$M_HTTP CLIENT_PID=$M_PID
B=$((MIB * 1024 * 1024))
T=$((80 * TM))
STALL=(--speed-limit 1024 --speed-time $((15 * TM)))
C=(curl -sS --max-time $T "${STALL[@]}")
SOX=(--socks5-hostname "127.0.0.1:$SOCKS")
HPX=(-x "http://127.0.0.1:$HTTP")
bulk_get() { # NAME curl-args...
    local name=$1
    shift
    tl_budget "$T" "$name" || return
    local t0 t1 rc
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
    local name=$1
    shift
    tl_budget "$T" "$name" || return
    local t0 t1 rc got
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
bulk_get "tls: GET via SOCKS5" "${SOX[@]}" "http://localhost:$NGINX_PORT/blob"
bulk_get "tls: GET via HTTP proxy (absolute-form)" "${HPX[@]}" "http://127.0.0.1:$NGINX_PORT/blob"
bulk_get "tls: GET via HTTP proxy CONNECT" -p "${HPX[@]}" "http://localhost:$NGINX_PORT/blob"
bulk_post "tls: POST via SOCKS5" "${SOX[@]}" -X POST -T "$WORK/www/blob" "http://localhost:$NGINX_PORT/upload/s"
bulk_post "tls: POST via HTTP proxy (absolute-form)" "${HPX[@]}" -X POST -T "$WORK/www/blob" "http://127.0.0.1:$NGINX_PORT/upload/h"
bulk_post "tls: POST via HTTP proxy CONNECT" -p "${HPX[@]}" -X POST -T "$WORK/www/blob" "http://localhost:$NGINX_PORT/upload/c"

parallel() { # NAME curl-proxy-args...
    local name=$1
    shift
    tl_budget $((40 * TM)) "$name" || return
    local d=$WORK/par.d i good=0
    rm -rf "$d"
    mkdir -p "$d"
    : >"$WORK/par.cfg"
    for i in $(seq $NPAR); do
        printf 'url = "http://127.0.0.1:%s/par?i=%d"\noutput = "%s/%d"\n' "$NGINX_PORT" "$i" "$d" "$i" >>"$WORK/par.cfg"
    done
    curl -sS --max-time $((40 * TM)) "${STALL[@]}" --parallel --parallel-immediate --parallel-max $NPAR "$@" \
        -K "$WORK/par.cfg" 2>"$WORK/par.err"
    local rc=$?
    for i in $(seq $NPAR); do
        [ -f "$d/$i" ] && [ "$(tl_sha "$d/$i")" = "$PAR_SHA" ] && good=$((good + 1))
    done
    if [ $rc = 0 ] && [ $good = $NPAR ]; then
        ok "$name: $NPAR parallel transfers, all sha256 equal"
    else
        bad "$name: curl exit $rc, $good of $NPAR files correct: $(sort "$WORK/par.err" | uniq -c | head -5)"
    fi
}
parallel "tls: parallel via SOCKS5" "${SOX[@]}"
parallel "tls: parallel via HTTP proxy" "${HPX[@]}"
parallel "tls: parallel via HTTP proxy CONNECT" -p "${HPX[@]}"

# ---------------------------------------------------------------- Chromium

browse() { # PROXYPORT OUTFILE
    HOME=$WORK/home timeout $((60 * TM)) "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --disable-dev-shm-usage --user-data-dir="$WORK/profile.$1" \
        --proxy-server="socks5://127.0.0.1:$1" --proxy-bypass-list="<-loopback>" \
        --host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1" \
        --virtual-time-budget=5000 --dump-dom "http://localhost:$NGINX_PORT/index.html" >"$2" 2>"$2.err"
}
if [ $CHROME_OK = 1 ]; then
    mkdir -p "$WORK/home"
    : >"$WORK/nginx.access"
    browse "$M_SOCKS" "$WORK/dom.html"
    if grep -q "PAGE-MARKER-$NONCE" "$WORK/dom.html" && grep -q "SCRIPT-MARKER-$NONCE" "$WORK/dom.html"; then
        ok "chromium through SOCKS5 over tls: page loaded, its script ran"
    else
        bad "chromium over tls: no page or script marker: $(head -c 300 "$WORK/dom.html") $(tail -n 3 "$WORK/dom.html.err")"
    fi
    n=0
    for p in /index.html /app.js /pixel.png; do grep -q "^GET $p HTTP/1.1 200 .*Chrome" "$WORK/nginx.access" && n=$((n + 1)); done
    expect_eq "nginx served the page, the script and the image to Chromium through the tunnel" $n 3
else
    echo "# SKIP chromium through the tunnel: Chromium is not installed or cannot run here"
fi

# ---------------------------------------------------------------- hijack

# no_session NAME WHAT: client NAME (of tap_client), whose connections end at
# nginx, gets no session, says so, and after its ClientHello sends nothing on
# any connection: it closes first, with a FIN, as a browser whose handshake
# failed.
no_session() {
    local name=$1 what=$2 end e n nconn=0 clean=0 hl sid sh c2s fe
    end=$(($(tl_now_ms) + 20000 * TM))
    while [ ! -f "$TAPDIR/0.end" ] || ! grep -q '"what":"connect"' "$EVENTS" 2>/dev/null; do
        [ "$(tl_now_ms)" -lt $end ] || break
        sleep 0.1
    done
    if grep -q '"what":"connect"' "$EVENTS" 2>/dev/null; then
        ok "$what: the client reports a failed connect: $(grep -m1 -o '"reason":"[^"]*"' "$EVENTS")"
    else
        bad "$what: no connect error event"
    fi
    if grep -q 'cannot reach' "$WORK/client-$name.log"; then
        ok "$what: the client says so in its log: $(grep -m1 -o 'cannot reach.*' "$WORK/client-$name.log")"
    else
        bad "$what: nothing in the client's log"
    fi
    if "$PY" "$HELPER" wait-event "$EVENTS" session_up 1 0.2 >/dev/null; then
        bad "$what: the client got a session"
    else
        ok "$what: the client got no session"
    fi
    tl_stop "$what: client" "$CLIENT_PID" $((5 * TM))
    # Every connection the tap saw ends once the client is gone.
    end=$(($(tl_now_ms) + 5000 * TM))
    while [ "$(ls "$TAPDIR" | grep -c '\.end$')" -lt "$(ls "$TAPDIR" | grep -c '\.c2s$')" ] && [ "$(tl_now_ms)" -lt $end ]; do
        sleep 0.1
    done
    for e in "$TAPDIR"/*.end; do
        [ -f "$e" ] || continue
        n=${e%.end}
        if [ ! -s "$n.s2c" ]; then
            echo "# $what: connection $(basename "$n") cut by the client's stop before nginx answered"
            continue
        fi
        nconn=$((nconn + 1))
        hl=$("$PY" "$TH" hello "$n.c2s" /dev/null 2>/dev/null | cut -d' ' -f1)
        sid=$("$PY" "$TH" hello "$n.c2s" /dev/null 2>/dev/null | cut -d' ' -f2)
        sh=$("$PY" "$TH" shello "$n.s2c" "$sid" | cut -d' ' -f1)
        c2s=$(sed -E 's/.*c2s=([0-9]+).*/\1/' "$e")
        fe=$(sed -E 's/.*first_eof=([a-z0-9-]+).*/\1/' "$e")
        echo "# $what: connection $(basename "$n"): hello $hl bytes, client sent $c2s in all, nginx's ServerHello: $sh, first to close: $fe"
        [ -n "$hl" ] && [ "$c2s" = "$hl" ] && [ "$sh" = ok ] && [ "$fe" = c2s ] && clean=$((clean + 1))
    done
    if [ $nconn -ge 1 ]; then ok "$what: $nconn connection(s) tried"; else bad "$what: no connection made"; fi
    expect_eq "$what: after nginx's ServerHello the client sends nothing and closes first (FIN), every connection" $clean $nconn
}

# The client's connection reaches the real cover (a middlebox that hijacks
# it): nginx answers a real ServerHello, but no Noise message 2.
tap_client hij "$NGINX_TLS_PORT" "" && no_session hij "hijacked to the cover"

# A client that sends another SNI: the server splices it to nginx.
a0=$(tl_nginx_accepts)
LINK0=$LINK
LINK=${LINK/sni=$SNI/sni=other.example}
tap_client sni "$SPORT" "" && no_session sni "client with sni=other.example"
LINK=$LINK0
a1=$(tl_nginx_accepts)
[ $((a1 - a0 - 1)) -ge 1 ] && ok "sni=other.example: every connection spliced to nginx ($((a1 - a0 - 1)))" ||
    bad "sni=other.example: nginx accepted no connection"

# ---------------------------------------------------------------- end

kill -0 "$M_PID" 2>/dev/null && ok "client alive" || bad "client died"
CLIENT_PID=$M_PID
tl_tunnel_down
tl_finish
