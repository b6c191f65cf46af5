# shellcheck shell=bash
# Shared helpers of the resumption / rotation / hopping tests (issue 11):
# a middlebox topology that freezes TCP connections the way Russia's TSPU
# does, and small tools (events, transfers, sha256) the single-namespace
# tests use too. Source after lib.sh and tl_init.
#
#   ns C (client)                 ns R (router, the "censor")         ns S (server + web)
#   umbra client                  forwards; nftables freezer:         umbra server 10.202.2.2:443
#   mc0 10.202.1.2/24 ─────────── mr0 10.202.1.1/24                   nginx 0.0.0.0:80 (+ /upload sink)
#   default via 10.202.1.1        mr1 10.202.2.1/24 ───────────────── ms0 10.202.2.2/24
#                                 (no route to 10.202.9.0/24)         lo 10.202.9.2/32: the web's own
#                                                                     address, reachable from C only
#                                                                     through a tunnel (VPN tests)
#
# The freezer (mb_freezer_on N): in R, `sysctl net.netfilter.nf_conntrack_acct=1`
# and a forward-chain rule `meta l4proto tcp ct bytes > N drop`: every packet
# of a TCP connection that has carried more than N bytes is dropped, in both
# directions, for the rest of its life. Measured on this kernel (6.18,
# nftables 1.0.6): `ct bytes` without a direction is the SUM of both
# directions (original + reply), IP and TCP headers included: a connection
# that sent 12000 bytes up received only 7240 of 12000 down before it froze,
# and a plain curl download across a 20000-byte freezer stalls at 15928
# bytes (headers, the request and the ACKs use the rest). Packets the rule
# drops are still counted (conntrack accounts before the forward hook), so a
# frozen connection stays frozen.
#
#   mb_init            root, ip netns, nft, curl, nginx, ss (else skip, 77);
#                      names; trap that also deletes the namespaces
#   mb_topology        the three namespaces, veths, addresses, routes
#   in_c / in_r / in_s CMD...   run CMD in that namespace
#   mb_freezer_on N / mb_freezer_off / mb_freezer_drops
#   mb_web             nginx + sink in S; $WORK/www is its root
#   mb_server_init [INIT ARGS] / mb_server_start [ARGS]   umbra server in S
#   mb_client_start LOG [ARGS] (SOCKS5 127.0.0.1:1080 in C) and
#   mb_vpn_client LOG [ARGS] (--tun in C)
#
# Tools for any test: mb_count FILE EVENT [KEY=VALUE], mb_event_field FILE
# EVENT FIELD (of the last such event), mb_event_ms FILE EVENT N (its ts, in
# Unix ms), mb_event_order FILE A NA B NB (the NA-th A before the NB-th
# B), mb_ss / mb_ss_kill NS FILTER, mb_mbps BYTES MS, mb_wait_size FILE
# BYTES SECS PID, mb_status CONTROL NAME (sets MB_STATUS_N, the N of "NAME:
# N (last: ...)"), mb_hop_check (port-hopping samples against the derivation).

MB_CADDR=10.202.1.2
MB_RADDR_C=10.202.1.1
MB_RADDR_S=10.202.2.1
MB_SADDR=10.202.2.2
MB_WEB=10.202.9.2
MB_SPORT=443
MB_WPORT=80
MB_SOCKS=1080
MB_HTTP=8118

mb_init() {
    [ "$(id -u)" = 0 ] || tl_skip "middlebox tests need root (network namespaces, nftables, sysctl in them)"
    command -v ip >/dev/null 2>&1 || tl_skip "ip (iproute2) not installed (run scripts/deps.sh)"
    command -v nft >/dev/null 2>&1 || tl_skip "nft (nftables) not installed (run scripts/deps.sh)"
    tl_need curl nginx ss
    local probe=umbra-mbprobe-$$
    ip netns add "$probe" 2>/dev/null || tl_skip "'ip netns add' does not work here"
    ip netns exec "$probe" true 2>/dev/null || { ip netns del "$probe"; tl_skip "'ip netns exec' does not work here"; }
    ip netns exec "$probe" nft list ruleset >/dev/null 2>&1 || { ip netns del "$probe"; tl_skip "nftables does not work in a namespace here"; }
    ip netns del "$probe"
    MB_C=umbra-mbc-$$
    MB_R=umbra-mbr-$$
    MB_S=umbra-mbs-$$
    MB_UP=0
    VHELP=$SRC/tests/integration/vpn_helper.py
    TUN=umtun$(($$ % 1000))
    trap mb_trap EXIT
}

mb_trap() {
    local rc=$?
    (exit $rc)
    tl_cleanup
    mb_cleanup
}

mb_cleanup() {
    [ "${MB_UP:-0}" = 1 ] || return 0
    local ns p
    for ns in "$MB_C" "$MB_R" "$MB_S"; do
        # Only processes this test started live in these namespaces.
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    MB_UP=0
}

in_c() { ip netns exec "$MB_C" "$@"; }
in_r() { ip netns exec "$MB_R" "$@"; }
in_s() { ip netns exec "$MB_S" "$@"; }

mb_topology() {
    ip netns add "$MB_C" && ip netns add "$MB_R" && ip netns add "$MB_S" || tl_skip "cannot create namespaces"
    MB_UP=1
    local ns
    for ns in "$MB_C" "$MB_R" "$MB_S"; do ip -n "$ns" link set lo up; done
    ip link add mc0 netns "$MB_C" type veth peer name mr0 netns "$MB_R" &&
        ip link add mr1 netns "$MB_R" type veth peer name ms0 netns "$MB_S" || tl_skip "cannot create veth pairs"
    ip -n "$MB_C" addr add "$MB_CADDR/24" dev mc0
    ip -n "$MB_R" addr add "$MB_RADDR_C/24" dev mr0
    ip -n "$MB_R" addr add "$MB_RADDR_S/24" dev mr1
    ip -n "$MB_S" addr add "$MB_SADDR/24" dev ms0
    ip -n "$MB_S" addr add "$MB_WEB/32" dev lo
    ip -n "$MB_C" link set mc0 up
    ip -n "$MB_R" link set mr0 up
    ip -n "$MB_R" link set mr1 up
    ip -n "$MB_S" link set ms0 up
    ip -n "$MB_C" route add default via "$MB_RADDR_C"
    ip -n "$MB_S" route add default via "$MB_RADDR_S"
    in_r sysctl -qw net.ipv4.ip_forward=1 || { bad "ip_forward in the router namespace"; tl_finish; }
    # A ct rule makes the kernel track connections in R (and the acct sysctl
    # exist there); accounting on before any connection of the test starts.
    in_r nft add table inet umbra_mb &&
        in_r nft add chain inet umbra_mb forward '{ type filter hook forward priority 0; policy accept; }' ||
        { bad "nft: table and chain in the router namespace"; tl_finish; }
    mb_freezer_off
    in_r sysctl -qw net.netfilter.nf_conntrack_acct=1 || { bad "nf_conntrack_acct in the router namespace"; tl_finish; }
}

# mb_freezer_on N: from now on every TCP connection crossing R is dropped
# once it has carried more than N bytes (both directions summed). Connections
# that already exist count their earlier bytes too.
mb_freezer_on() {
    in_r nft flush chain inet umbra_mb forward &&
        in_r nft add rule inet umbra_mb forward ct state new counter &&
        in_r nft add rule inet umbra_mb forward meta l4proto tcp ct bytes gt "$1" counter drop ||
        { bad "nft: freezer rule"; tl_finish; }
}
# With the freezer off a ct rule stays, so that conntrack tracks (and counts)
# every connection in R from its first packet on.
mb_freezer_off() {
    in_r nft flush chain inet umbra_mb forward &&
        in_r nft add rule inet umbra_mb forward ct state new counter || { bad "nft: freezer off"; tl_finish; }
}
# The number of packets the freezer dropped so far.
mb_freezer_drops() {
    in_r nft list chain inet umbra_mb forward | awk '/ct bytes/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}

# mb_ns_listening NS PORT: a TCP socket listening on PORT in NS.
mb_ns_listening() {
    local hex
    hex=$(printf ':%04X' "$2")
    ip netns exec "$1" awk -v p="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
mb_ns_wait_listen() { # NS PORT SECS [PID]
    local end=$(($(tl_now_ms) + $3 * 1000))
    while [ "$(tl_now_ms)" -lt $end ]; do
        mb_ns_listening "$1" "$2" && return 0
        [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}

# mb_web: nginx in S on 0.0.0.0:80 (so on 10.202.2.2, 127.0.0.1 and the web
# address 10.202.9.2) serving $WORK/www (small = "small-ok\n"); /upload goes,
# unbuffered, to tunnel_helper.py's sink, which answers with the body's sha256.
mb_web() {
    mkdir -p "$WORK/www" "$WORK/nginx/tmp"
    printf 'small-ok\n' >"$WORK/www/small"
    rm -f "$WORK/sink.port"
    tl_bg "$WORK/sink.log" ip netns exec "$MB_S" "$PY" "$HELPER" sink "$WORK/sink.port"
    tl_wait_file "$WORK/sink.port" 10 || { bad "python sink did not start in S"; tl_finish; }
    local sink
    sink=$(awk '/^sink/ { print $2 }' "$WORK/sink.port")
    cat >"$WORK/nginx/nginx.conf" <<EOF
# generated by tests/integration/lib_middlebox.sh
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
    server {
        listen 0.0.0.0:$MB_WPORT;
        server_name _;
        root $WORK/www;
        client_max_body_size 0;
        location /upload {
            proxy_pass http://127.0.0.1:$sink;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
}
EOF
    tl_bg "$WORK/nginx.err" ip netns exec "$MB_S" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx.err"
    NGINX_PID=$BG_PID
    mb_ns_wait_listen "$MB_S" "$MB_WPORT" 10 "$NGINX_PID" || { bad "nginx did not start in S: $(cat "$WORK/nginx.err")"; tl_finish; }
}

# mb_server_init [INIT ARGS]: fresh server config listening on
# 10.202.2.2:443 with fast probe delays and one client; sets LINK. Returns 1
# (after recording the failure) when init or add-client fail.
mb_server_init() {
    rm -f "$WORK/server.conf"
    "$UMBRA" server init -c "$WORK/server.conf" --listen "$MB_SADDR:$MB_SPORT" "$@" >"$WORK/init.out" 2>&1 ||
        { bad "umbra server init $*: $(head -c 300 "$WORK/init.out")"; return 1; }
    sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
    LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>"$WORK/add.err") ||
        { bad "umbra server add-client: $(cat "$WORK/add.err")"; return 1; }
}

# mb_server_start [ARGS]: the server of $WORK/server.conf in S, egress to
# loopback and the web address only; waits until it listens. Sets SERVER_PID.
mb_server_start() {
    tl_bg "$WORK/server.log" ip netns exec "$MB_S" "$UMBRA" server -c "$WORK/server.conf" \
        --allow 127.0.0.1/32 --allow "$MB_WEB/32" "$@"
    SERVER_PID=$BG_PID
    mb_ns_wait_listen "$MB_S" "$MB_SPORT" $((10 * TM)) "$SERVER_PID" ||
        { bad "umbra server did not start listening in S: $(tail -n 3 "$WORK/server.log")"; return 1; }
}

# mb_client_start LOG [ARGS]: umbra client in C with SOCKS5 on
# 127.0.0.1:1080 and HTTP on :8118 (in C), events $WORK/LOG.events, control
# socket $WORK/LOG.sock; waits for the proxies and the first session_up.
mb_client_start() {
    local log=$1
    shift
    EVENTS=$WORK/$log.events
    CONTROL=$WORK/$log.sock
    tl_bg "$WORK/$log.log" ip netns exec "$MB_C" "$UMBRA" client --link "$LINK" \
        --socks "127.0.0.1:$MB_SOCKS" --http "127.0.0.1:$MB_HTTP" --events "$EVENTS" --control "$CONTROL" "$@"
    CLIENT_PID=$BG_PID
    mb_ns_wait_listen "$MB_C" "$MB_SOCKS" $((10 * TM)) "$CLIENT_PID" ||
        { bad "umbra client $* did not start its proxies: $(tail -n 3 "$WORK/$log.log")"; return 1; }
    local out
    out=$("$PY" "$HELPER" wait-event "$EVENTS" session_up 1 $((15 * TM))) ||
        { bad "umbra client $*: $out; $(tail -n 3 "$WORK/$log.log")"; return 1; }
}

# mb_vpn_client LOG [ARGS]: umbra client --tun in C; waits for the session
# and its routes. Sets CLIENT_PID, EVENTS, CONTROL.
mb_vpn_client() {
    local log=$1
    shift
    EVENTS=$WORK/$log.events
    CONTROL=$WORK/$log.sock
    tl_bg "$WORK/$log.log" ip netns exec "$MB_C" "$UMBRA" client --link "$LINK" --tun --tun-name "$TUN" \
        --events "$EVENTS" --control "$CONTROL" "$@"
    CLIENT_PID=$BG_PID
    local end=$(($(tl_now_ms) + 15000 * TM))
    until "$PY" "$HELPER" wait-event "$EVENTS" session_up 1 0.5 >/dev/null; do
        if ! kill -0 "$CLIENT_PID" 2>/dev/null || [ "$(tl_now_ms)" -ge $end ]; then
            bad "VPN client $*: no session_up ($(kill -0 "$CLIENT_PID" 2>/dev/null && echo "in $((15 * TM)) s" || echo "it exited")); $(tail -n 3 "$WORK/$log.log")"
            return 1
        fi
    done
    for _ in $(seq 50); do
        ip -n "$MB_C" route show 0.0.0.0/1 | grep -q "$TUN" && return 0
        sleep 0.1
    done
    bad "VPN client $*: no 0.0.0.0/1 route via $TUN"
    return 1
}

# ---------------------------------------------------------------- tools

# mb_count FILE EVENT [KEY=VALUE]: how many EVENT lines (with KEY equal to
# VALUE, as a string) FILE has.
mb_count() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
path, event = sys.argv[1], sys.argv[2]
key = val = None
if len(sys.argv) > 3:
    key, val = sys.argv[3].split("=", 1)
n = 0
try:
    for line in open(path, "rb"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == event and (key is None or str(e.get(key)) == val):
            n += 1
except FileNotFoundError:
    pass
print(n)
PYEOF
}

# mb_event_field FILE EVENT FIELD: FIELD of the last EVENT ("" when none).
mb_event_field() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
path, event, field = sys.argv[1:4]
v = ""
try:
    for line in open(path, "rb"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == event:
            v = e.get(field, "")
except FileNotFoundError:
    pass
print(v)
PYEOF
}

# mb_event_ms FILE EVENT N: the ts of the N-th EVENT as Unix milliseconds
# (empty when there is no such event or no ts).
mb_event_ms() {
    "$PY" - "$@" <<'PYEOF'
import datetime, json, sys
path, event, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = 0
try:
    for line in open(path, "rb"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") != event:
            continue
        n += 1
        if n == want:
            ts = e.get("ts", "").replace("Z", "+00:00")
            try:
                d = datetime.datetime.fromisoformat(ts)
                print(int(d.timestamp() * 1000))
            except ValueError:
                pass
            break
except FileNotFoundError:
    pass
PYEOF
}

# mb_event_order FILE A NA B NB: true when the NA-th A event comes before the
# NB-th B event (both present).
mb_event_order() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
path, a, na, b, nb = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ia = ib = None
ca = cb = 0
for i, line in enumerate(open(path, "rb")):
    try:
        e = json.loads(line).get("event")
    except (ValueError, AttributeError):
        continue
    if e == a:
        ca += 1
        if ca == na:
            ia = i
    if e == b:
        cb += 1
        if cb == nb:
            ib = i
sys.exit(0 if ia is not None and ib is not None and ia < ib else 1)
PYEOF
}

# mb_ss NS FILTER...: established TCP sockets (numeric, no header) matching
# the ss FILTER in namespace NS ("" = this one).
mb_ss() {
    local ns=$1
    shift
    if [ -n "$ns" ]; then
        ip netns exec "$ns" ss -Htn state established "$@"
    else
        ss -Htn state established "$@"
    fi
}
# mb_ss_kill NS FILTER...: ss -K on the matching established sockets.
mb_ss_kill() {
    local ns=$1
    shift
    if [ -n "$ns" ]; then
        ip netns exec "$ns" ss -K -Htn state established "$@" >/dev/null
    else
        ss -K -Htn state established "$@" >/dev/null
    fi
}
# mb_pairs: "local peer" of each ss line on stdin.
mb_pairs() { awk '{ print $3, $4 }'; }

mb_mbps() { # BYTES MS: MB/s (10^6 bytes per second), one decimal
    awk -v b="$1" -v ms="$2" 'BEGIN { if (ms < 1) ms = 1; printf "%.1f", b / 1000 / ms }'
}
mb_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# mb_wait_size FILE BYTES SECS [PID]: 0 when FILE has at least BYTES within
# SECS; 1 on timeout, 2 when PID ended first.
mb_wait_size() {
    local end=$(($(tl_now_ms) + $3 * 1000))
    while [ "$(tl_now_ms)" -lt $end ]; do
        [ "$(mb_size "$1")" -ge "$2" ] && return 0
        [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && return 2
        sleep 0.05
    done
    return 1
}

# mb_status CONTROL NAME: reads `umbra status` and sets MB_STATUS_LINE to
# its "NAME: N (last: REASON)" line and MB_STATUS_N to N ("" when missing).
mb_status() {
    local st
    st=$("$UMBRA" status --socket "$1" 2>&1)
    MB_STATUS_LINE=$(grep "^$2:" <<<"$st" | head -n 1)
    MB_STATUS_N=$(sed -n "s/^$2: *\([0-9][0-9]*\).*/\1/p" <<<"$MB_STATUS_LINE")
    [ -n "$MB_STATUS_LINE" ] || MB_STATUS_LINE="(no '$2:' line in: $(tr '\n' '|' <<<"$st"))"
}

# mb_has_option CMD OPTION: the help of `umbra CMD` mentions OPTION (the
# contract's new options, to say clearly what is missing).
mb_has_option() {
    # shellcheck disable=SC2086
    "$UMBRA" $1 --help 2>&1 | grep -q -- "$2"
}

# mb_hop_check LINK LO HI HOP_MS SAMPLES [D]: checks port-hopping samples
# against the contract's derivation, computed here independently (Python's
# hashlib/hmac): key = BLAKE2b-256(key = server public key, "umbra/1 port
# hopping"), port = LO + HOTP-SHA256(key, slot) mod (HI - LO + 1), slot =
# floor(unix_ms / HOP_MS). SAMPLES has lines "UNIX_MS PORT..." (the server
# ports the client was connected to at that time). Prints "distinct D
# samples N unexpected U" (U: ports not of a slot within D, default 1, of
# the sample's) and, after it, the unexpected samples.
mb_hop_check() {
    "$PY" - "$@" <<'PYEOF'
import base64, hashlib, hmac, re, struct, sys
link, lo, hi, hop_ms, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
dist = int(sys.argv[6]) if len(sys.argv) > 6 else 1
m = re.match(r"umbra://([A-Za-z0-9_-]+)@", link)
pub = base64.urlsafe_b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4))
key = hashlib.blake2b(b"umbra/1 port hopping", key=pub, digest_size=32).digest()
def port(slot):
    h = hmac.new(key, struct.pack(">Q", slot), hashlib.sha256).digest()
    o = h[-1] & 0x0F
    v = struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF
    return lo + v % (hi - lo + 1)
seen, n, bad = set(), 0, []
for line in open(path):
    f = line.split()
    if len(f) < 2:
        continue
    t, ports = int(f[0]), [int(x) for x in f[1:]]
    s = t // hop_ms
    ok = {port(s + d) for d in range(-dist, dist + 1)}
    n += 1
    for p in ports:
        seen.add(p)
        if p not in ok:
            bad.append("%d: %d not in %s" % (t, p, sorted(ok)))
print("distinct %d samples %d unexpected %d" % (len(seen), n, len(bad)))
for b in bad[:5]:
    print(b)
PYEOF
}

# ---------------------------------------------------------------- self-test

# Run directly, this file checks the topology and the freezer alone (no
# umbra): C reaches S through R, the web address only from S, and a TCP
# connection freezes after N bytes counted over both directions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    . "$(dirname "$0")/lib.sh"
    TL_NETNS=0
    TL_NO_UMBRA=1 tl_init lib_middlebox_selftest
    mb_init
    mb_topology
    mb_web
    head -c 300000 /dev/urandom >"$WORK/www/blob"
    got=$(in_c curl -sS --max-time 10 "http://$MB_SADDR/blob" | sha256sum | cut -d' ' -f1)
    expect_eq "C fetches from S across R" "$got" "$(tl_sha "$WORK/www/blob")"
    in_c curl -sS --max-time 3 "http://$MB_WEB/small" >/dev/null 2>&1 && bad "C reaches the web address directly" ||
        ok "the web address is unreachable from C without a tunnel"
    mb_freezer_on 20000
    in_c curl -sS --max-time 3 -o "$WORK/got" "http://$MB_SADDR/blob" 2>/dev/null
    n=$(mb_size "$WORK/got")
    [ "$n" -gt 1000 ] && [ "$n" -lt 20000 ] && ok "freezer: curl stalls at $n bytes" || bad "freezer: curl got $n bytes"
    d=$(mb_freezer_drops)
    [ "${d:-0}" -gt 0 ] && ok "freezer dropped $d packets" || bad "freezer counter: '$d'"
    mb_freezer_off
    in_c curl -sS --max-time 10 -o "$WORK/got" "http://$MB_SADDR/blob" 2>/dev/null
    expect_eq "freezer off: the whole file again" "$(mb_size "$WORK/got")" 300000
    tl_finish
fi
