#!/usr/bin/env bash
# A real browser through the tunnel: headless Chromium loads a page from the
# local nginx through the client's SOCKS5 port. The page pulls a script (which
# writes a marker into the DOM) and an image. Checks: the dumped DOM holds the
# page's and the script's markers, and nginx's access log shows the page, the
# script and the image fetched by Chromium. Chromium's own resolver is
# disabled (MAP * ~NOTFOUND, except the proxy's 127.0.0.1) and its loopback
# bypass removed (<-loopback>), so the page can only arrive through the
# proxy, which a control run with the proxy pointing at a closed port
# confirms.
#
#   chromium --proxy-server=socks5://127.0.0.1:S ──► umbra client :S ══ tcp ══► umbra server ──► nginx :N
#                                                                                 resolves "localhost"
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_chromium
CHROME=""
for c in chromium chromium-browser google-chrome; do
    command -v "$c" >/dev/null 2>&1 && { CHROME=$c; break; }
done
[ -n "$CHROME" ] || tl_skip "chromium not installed (scripts/deps.sh installs it)"
tl_need nginx
tl_nginx

NONCE=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORK/www/index.html" <<EOF2
<!doctype html>
<html><head><title>umbra test</title></head>
<body>
<p id="page">PAGE-MARKER-$NONCE</p>
<img id="img" src="/pixel.png" width="1" height="1">
<div id="out"></div>
<script src="/app.js"></script>
</body></html>
EOF2
printf 'document.getElementById("out").textContent = "SCRIPT-MARKER-" + "%s";\n' "$NONCE" >"$WORK/www/app.js"
# a 1x1 PNG
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82' >"$WORK/www/pixel.png"

tl_tunnel_up

browse() { # PROXYPORT OUTFILE
    HOME=$WORK/home timeout $((60 * TM)) "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --disable-dev-shm-usage --user-data-dir="$WORK/profile.$1" \
        --proxy-server="socks5://127.0.0.1:$1" --proxy-bypass-list="<-loopback>" \
        --host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1" \
        --virtual-time-budget=5000 --dump-dom "http://localhost:$NGINX_PORT/index.html" >"$2" 2>"$2.err"
}
mkdir -p "$WORK/home"

# Control: a proxy port where nothing listens gives no page.
DEAD=$(tl_free_port)
browse "$DEAD" "$WORK/dead.html"
if grep -q "PAGE-MARKER-$NONCE" "$WORK/dead.html"; then
    bad "control: the page loaded without a working proxy (the test would prove nothing)"
else
    ok "control: no page without the proxy"
fi
: >"$WORK/nginx.access"

t0=$(tl_now_ms)
browse "$SOCKS" "$WORK/dom.html"
rc=$?
t1=$(tl_now_ms)
if grep -q "PAGE-MARKER-$NONCE" "$WORK/dom.html"; then
    ok "chromium through SOCKS5: page loaded in $((t1 - t0)) ms (exit $rc)"
else
    bad "chromium: no page marker in the DOM (exit $rc): $(head -c 300 "$WORK/dom.html") $(tail -n 5 "$WORK/dom.html.err")"
fi
if grep -q "SCRIPT-MARKER-$NONCE" "$WORK/dom.html"; then
    ok "chromium ran the script fetched through the tunnel"
else
    bad "no script marker in the DOM"
fi
for p in /index.html /app.js /pixel.png; do
    if grep -q "^GET $p HTTP/1.1 200 .*Chrome" "$WORK/nginx.access"; then
        ok "nginx served $p to Chromium"
    else
        bad "nginx access log has no 200 for $p from Chromium: $(cat "$WORK/nginx.access")"
    fi
done
kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
tl_tunnel_down
tl_finish
