#!/usr/bin/env bash
# A bridge in front of an exit (`via`, docs/PROTOCOL.md "Bridges"): the
# client's session to the exit rides a stream of its session to the bridge.
#
#   ns C (client)        ns B (bridge)              ns E (exit)              ns W (web)
#   umbra client         umbra server               umbra server             nginx 10.203.3.2:80
#   SOCKS5 127.0.0.1     10.203.1.1:443             10.203.2.2:443           access log: $remote_addr
#   c0 10.203.1.2 ────── b0 10.203.1.1              egress --allow
#   (no other route)     b1 10.203.2.1 ──────────── e0 10.203.2.2            w0 10.203.3.2
#                        egress --allow             e1 10.203.3.1 ────────── (no other route)
#                        10.203.2.2/32 (the exit)
#                        no forwarding, no route to 10.203.3.0/24
#
# curl through the client's SOCKS5 fetches 16 MiB from the web (sha256);
# the web's access log shows the exit's address; a capture on both of the
# bridge's links holds no byte string of the page (a random marker repeated
# through it), while a capture on the web's link (the control) does.
set -u
. "$(dirname "$0")/lib.sh"
TL_NETNS=0 # namespaces of its own, made below
tl_init bridge_chain
umask 077
[ "$(id -u)" = 0 ] || tl_skip "needs root (network namespaces)"
tl_need ip curl nginx dumpcap ss
tl_need_umbra "a bridge chain"

P=umbra-br-$$
NC=$P-c NB=$P-b NE=$P-e NW=$P-w
UP=0
cleanup_ns() {
    local rc=$?
    (exit $rc)
    tl_cleanup
    [ $UP = 1 ] || return 0
    local ns p
    for ns in $NC $NB $NE $NW; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
}
trap cleanup_ns EXIT
ip netns add $NC 2>/dev/null || tl_skip "'ip netns add' does not work here"
UP=1
for ns in $NB $NE $NW; do ip netns add $ns || { bad "ip netns add $ns"; tl_finish; }; done
for ns in $NC $NB $NE $NW; do ip -n $ns link set lo up; done
ip link add c0 netns $NC type veth peer name b0 netns $NB &&
    ip link add b1 netns $NB type veth peer name e0 netns $NE &&
    ip link add e1 netns $NE type veth peer name w0 netns $NW || { bad "veth pairs"; tl_finish; }
ip -n $NC addr add 10.203.1.2/24 dev c0
ip -n $NB addr add 10.203.1.1/24 dev b0
ip -n $NB addr add 10.203.2.1/24 dev b1
ip -n $NE addr add 10.203.2.2/24 dev e0
ip -n $NE addr add 10.203.3.1/24 dev e1
ip -n $NW addr add 10.203.3.2/24 dev w0
for l in "$NC c0" "$NB b0" "$NB b1" "$NE e0" "$NE e1" "$NW w0"; do
    set -- $l
    ip -n "$1" link set "$2" up
done
ip netns exec $NB sysctl -qw net.ipv4.ip_forward=0
ip netns exec $NE sysctl -qw net.ipv4.ip_forward=0

# --- the web: a 16 MiB page with a random marker all through it
MARKER=umbra-marker-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$WORK/www" "$WORK/nginx/tmp"
for i in $(seq 16); do
    head -c $((1024 * 1024 - 4096)) /dev/urandom
    for j in $(seq 64); do printf '%s %s\n' "$MARKER" "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"; done | head -c 4096
done >"$WORK/www/blob"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
BLOB_N=$(stat -c %s "$WORK/www/blob")
cat >"$WORK/nginx/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 256; }
http {
    default_type application/octet-stream;
    log_format peer '\$remote_addr \$status \$body_bytes_sent';
    access_log $WORK/access.log peer;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server { listen 10.203.3.2:80; root $WORK/www; }
}
NGX
tl_bg "$WORK/nginx.log" ip netns exec $NW nginx -c "$WORK/nginx/nginx.conf"

# --- keys and configs: one client key, authorised by both servers
"$UMBRA" genkey >"$WORK/client.key" && chmod 600 "$WORK/client.key"
CPUB=$("$UMBRA" pubkey <"$WORK/client.key")
for s in bridge exit; do
    addr=10.203.1.1
    [ $s = exit ] && addr=10.203.2.2
    "$UMBRA" server init -c "$WORK/$s.conf" --listen "$addr:443" >"$WORK/$s-init.out" 2>&1 || { bad "server init $s: $(cat "$WORK/$s-init.out")"; tl_finish; }
    sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/$s.conf"
    printf '\n[client "laptop"]\npublic-key = %s\n' "$CPUB" >>"$WORK/$s.conf"
    sed -n 's/^private-key = //p' "$WORK/$s.conf" | "$UMBRA" pubkey >"$WORK/$s.pub"
done
cat >"$WORK/client.conf" <<CONF
[client]
private-key = $(cat "$WORK/client.key")
socks = 127.0.0.1:1080

[server "bridge"]
address = 10.203.1.1:443
public-key = $(cat "$WORK/bridge.pub")

[server "exit"]
address = 10.203.2.2:443
public-key = $(cat "$WORK/exit.pub")
via = bridge
CONF
chmod 600 "$WORK/client.conf"

tl_bg "$WORK/bridge.log" ip netns exec $NB "$UMBRA" server -c "$WORK/bridge.conf" --allow 10.203.2.2/32
B_PID=$BG_PID
tl_bg "$WORK/exit.log" ip netns exec $NE "$UMBRA" server -c "$WORK/exit.conf" --allow 10.203.3.2/32
E_PID=$BG_PID
sleep 0.5

# --- controls: the client reaches only the bridge, the bridge only the exit
if ip netns exec $NC curl -sS --max-time 3 -o /dev/null "http://10.203.3.2/blob" 2>/dev/null; then
    bad "control: the client reaches the web directly"
else
    ok "control: the client cannot reach the web directly"
fi
if ip netns exec $NC bash -c 'exec 3<>/dev/tcp/10.203.2.2/443' 2>/dev/null; then
    bad "control: the client reaches the exit directly"
else
    ok "control: the client cannot reach the exit directly"
fi
if ip netns exec $NB curl -sS --max-time 3 -o /dev/null "http://10.203.3.2/blob" 2>/dev/null; then
    bad "control: the bridge reaches the web"
else
    ok "control: the bridge cannot reach the web"
fi

# --- captures: both links of the bridge, and the web's link (the control)
CAP_MB=80
tl_bg "$WORK/dumpcap-b.log" ip netns exec $NB timeout $((120 * TM)) dumpcap -q -B 64 -i b0 -i b1 -w "$WORK/bridge.pcapng" -a filesize:$((CAP_MB * 1024))
CAPB_PID=$BG_PID
tl_bg "$WORK/dumpcap-w.log" ip netns exec $NW timeout $((120 * TM)) dumpcap -q -B 64 -i w0 -w "$WORK/web.pcapng" -a filesize:$((CAP_MB * 1024))
CAPW_PID=$BG_PID
end=$(($(tl_now_ms) + 10000))
until [ -s "$WORK/bridge.pcapng" ] && [ -s "$WORK/web.pcapng" ] || [ "$(tl_now_ms)" -gt $end ]; do sleep 0.1; done
sleep 0.5

EVENTS=$WORK/client.events
tl_bg "$WORK/client.log" ip netns exec $NC "$UMBRA" client -c "$WORK/client.conf" --events "$EVENTS" --control off
C_PID=$BG_PID
if out=$(tl_wait_session 1 $((20 * TM))); then
    ok "session up to the exit through the bridge"
else
    bad "no session: $out; $(tail -n 5 "$WORK/client.log")"
    tl_finish
fi
grep -q '"event":"bridge_up"' "$EVENTS" && ok "event bridge_up" || bad "no bridge_up event"
grep '"event":"session_up"' "$EVENTS" | grep -q '"server":"exit"' && ok "session_up names the exit" ||
    bad "session_up: $(grep session_up "$EVENTS")"

rm -f "$WORK/got"
if ip netns exec $NC curl -sS --max-time $((90 * TM)) --speed-limit 1024 --speed-time $((15 * TM)) \
    --socks5-hostname 127.0.0.1:1080 "http://10.203.3.2/blob" -o "$WORK/got" 2>"$WORK/curl.err"; then
    expect_eq "16 MiB through bridge and exit: sha256" "$(tl_sha "$WORK/got")" "$BLOB_SHA"
else
    bad "curl through the chain: $(head -c 300 "$WORK/curl.err")"
fi
peer=$(awk '{ print $1 }' "$WORK/access.log" | sort -u | tr '\n' ' ')
expect_eq "the web's access log shows the exit's address" "$peer" "10.203.3.1 "
# The exit's session comes from the bridge's address (a stream of its egress).
epeer=$(ip netns exec $NE ss -tnH state established '( sport = :443 )' | awk '{ print $4 }' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
expect_eq "the exit's client connection comes from the bridge" "$epeer" "10.203.2.1 "

sleep 1
kill -INT "$CAPB_PID" "$CAPW_PID" 2>/dev/null
wait "$CAPB_PID" "$CAPW_PID" 2>/dev/null
nb=$(stat -c %s "$WORK/bridge.pcapng" 2>/dev/null || echo 0)
nw=$(stat -c %s "$WORK/web.pcapng" 2>/dev/null || echo 0)
# (dumpcap may miss packets of a fast transfer; at least the page's size)
if [ "$nb" -gt "$BLOB_N" ]; then
    ok "the bridge's capture holds the transfer ($nb bytes)"
else
    bad "the bridge's capture is too small ($nb bytes for $BLOB_N bytes carried twice)"
fi
cw=$(grep -a -c -- "$MARKER" "$WORK/web.pcapng" || true)
cb=$(grep -a -c -- "$MARKER" "$WORK/bridge.pcapng" || true)
if [ "$cw" -gt 0 ]; then ok "control: the web's link shows the marker in clear ($cw lines)"; else bad "control: no marker on the web's link ($nw bytes)"; fi
expect_eq "no plaintext of the transfer on the bridge (marker lines)" "$cb" 0
# Nor the web's address or the page's name in clear on the client's link.
cu=$(grep -a -c -- "GET /blob" "$WORK/bridge.pcapng" || true)
expect_eq "no HTTP request in clear on the bridge" "$cu" 0

# --- the bridge restarts: the exit session resumes over a new bridge stream
n_res0=$("$PY" "$HELPER" count-event "$EVENTS" session_resumed)
tl_stop bridge "$B_PID" $((10 * TM))
tl_bg "$WORK/bridge2.log" ip netns exec $NB "$UMBRA" server -c "$WORK/bridge.conf" --allow 10.203.2.2/32
B_PID=$BG_PID
if "$PY" "$HELPER" wait-event "$EVENTS" session_resumed $((n_res0 + 1)) $((30 * TM)) >/dev/null; then
    ok "the exit session resumed over a new session to the bridge"
else
    bad "no session_resumed after the bridge restarted: $(tail -n 4 "$WORK/client.log")"
fi
if got=$(ip netns exec $NC curl -sS --max-time $((20 * TM)) --socks5-hostname 127.0.0.1:1080 "http://10.203.3.2/blob" -r 0-99 2>&1 | head -c 100 | tl_sha /dev/stdin); then
    expect_eq "a request after the resumption" "$got" "$(head -c 100 "$WORK/www/blob" | sha256sum | cut -d' ' -f1)"
fi
expect_eq "still one session to the exit (resumed, not replaced)" "$("$PY" "$HELPER" count-event "$EVENTS" session_up)" 1

tl_stop client "$C_PID" $((5 * TM))
tl_stop exit "$E_PID" $((10 * TM))
tl_stop bridge "$B_PID" $((10 * TM))
tl_finish
