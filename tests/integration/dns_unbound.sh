#!/usr/bin/env bash
# The dns transport through a real recursive resolver (issue 14).
#
#   ns C (client)                   ns R (resolver)                      ns S (server + web)
#   umbra client ── DNS ──────────► unbound 10.202.1.1:53 ── DNS ──────► umbra server 10.202.2.2:53
#   SOCKS5 :1080    (asks unbound   recursive, stub-zone t.umbra.test    (authoritative for the
#   curl            only: R drops   → 10.202.2.2; nftables: C may not    zone, UDP and TCP)
#                   C→S forwarding) reach S; 5% loss on mr1 later        nginx :80 + /upload sink
#
# Checks: the server's ordinary authoritative answers (SOA/NS at the apex,
# NXDOMAIN below it, REFUSED outside it, FORMERR for garbage, over UDP and
# TCP, with and without EDNS0); through unbound: a 1 MiB download and a
# 256 KiB upload intact (sha256), 10 parallel small requests, the server
# restarted mid-way and the client recovering; the same transfers with 5%
# random loss on the resolver's upstream link (nftables numgen); and every
# packet captured on both of R's links dissected by tshark as DNS with zero
# malformed packets.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init dns_unbound
. "$SRC/tests/integration/lib_middlebox.sh"
tl_need_umbra "the dns transport"
mb_init
tl_need unbound tshark
MB_SPORT=53
ZONE=t.umbra.test
DH=$SRC/tests/integration/dns_helper.py
TL_DEADLINE=$(($(date +%s) + 150 * TM))

mb_topology
# The client reaches nothing in S but through the resolver.
in_r nft add table inet umbra_dns &&
    in_r nft add chain inet umbra_dns dfwd '{ type filter hook forward priority -10; policy accept; }' &&
    in_r nft add rule inet umbra_dns dfwd ip saddr 10.202.1.0/24 ip daddr 10.202.2.0/24 counter drop &&
    in_r nft add chain inet umbra_dns dout '{ type filter hook output priority 0; policy accept; }' &&
    in_r nft add chain inet umbra_dns din '{ type filter hook input priority 0; policy accept; }' ||
    { bad "nft: the resolver's rules"; tl_finish; }
mb_web
head -c $((1024 * 1024)) /dev/urandom >"$WORK/www/blob"
head -c $((256 * 1024)) /dev/urandom >"$WORK/up"
BLOB_SHA=$(tl_sha "$WORK/www/blob")
UP_SHA=$(tl_sha "$WORK/up")

# ---- server
mb_server_init --transport dns --zone "$ZONE" || tl_finish
grep -q '^type *= *dns' "$WORK/server.conf" && grep -q "^zone *= *$ZONE" "$WORK/server.conf" &&
    ok "server init wrote type = dns and zone = $ZONE" || bad "server config: $(grep -v private-key "$WORK/server.conf" | tr '\n' '|')"
case "$LINK" in *"t=dns&zone=$ZONE"*) ok "the link carries t=dns&zone=$ZONE" ;; *) bad "the link lacks t=dns&zone=: ${LINK%%\?*}" ;; esac
LINK="${LINK%%#*}&resolver=$MB_RADDR_C%3A53"
mb_server_start || tl_finish

# ---- ordinary answers, straight from R to the server
q() { in_r "$PY" "$DH" query "$MB_SADDR" 53 "$@"; }
r=$(q "$ZONE" SOA)
case "$r" in "rcode=0 aa=1 tc=0 an=1 "*"types=6 edns=1"*) ok "apex SOA: $r" ;; *) bad "apex SOA: $r" ;; esac
r=$(q "$ZONE" NS noedns)
case "$r" in "rcode=0 aa=1 tc=0 an=1 "*"types=2 edns=0"*) ok "apex NS without EDNS0: $r" ;; *) bad "apex NS: $r" ;; esac
r=$(q "$ZONE" SOA tcp)
case "$r" in "rcode=0 aa=1 tc=0 an=1 "*) ok "apex SOA over TCP: $r" ;; *) bad "apex SOA over TCP: $r" ;; esac
r=$(q "www.$ZONE" A)
case "$r" in "rcode=3 aa=1 tc=0 an=0 ns=1 "*) ok "a name below the zone: NXDOMAIN with the SOA: $r" ;; *) bad "below the zone: $r" ;; esac
r=$(q "mzxw6ytboi.$ZONE" TXT)
case "$r" in "rcode=3 aa=1 "*) ok "an unauthenticated tunnel-shaped name: NXDOMAIN: $r" ;; *) bad "tunnel-shaped junk: $r" ;; esac
r=$(q www.example.com A)
case "$r" in "rcode=5 aa=0 "*) ok "outside the zone: REFUSED: $r" ;; *) bad "outside the zone: $r" ;; esac
r=$(in_r "$PY" "$DH" garbage "$MB_SADDR" 53 | tr '\n' ' ')
case "$r" in *formerr*) ok "malformed queries: $r" ;; *) bad "malformed queries: $r" ;; esac
kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive after garbage" || bad "server died on garbage"

# ---- unbound in R
# DNS over TLS too (a self-signed certificate: the client does not verify it, PROTOCOL.md 13.5).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=resolver \
    -keyout "$WORK/dot.key" -out "$WORK/dot.pem" >/dev/null 2>&1 || { bad "openssl: resolver certificate"; tl_finish; }
cat >"$WORK/unbound.conf" <<EOF2
server:
    interface: $MB_RADDR_C
    interface: $MB_RADDR_C@853
    tls-port: 853
    tls-service-key: "$WORK/dot.key"
    tls-service-pem: "$WORK/dot.pem"
    port: 53
    outgoing-interface: $MB_RADDR_S
    access-control: 10.202.1.0/24 allow
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: "$WORK/unbound.log"
    verbosity: 1
    num-threads: 1
    module-config: "iterator"
    infra-keep-probing: yes
    infra-host-ttl: 30
    # .test is one of unbound's built-in empty zones (RFC 6761); ours is below it.
    local-zone: "test." nodefault
stub-zone:
    name: "$ZONE"
    stub-addr: $MB_SADDR@53
EOF2
unbound-checkconf "$WORK/unbound.conf" >"$WORK/unbound.check" 2>&1 || { bad "unbound-checkconf: $(cat "$WORK/unbound.check")"; tl_finish; }
tl_bg "$WORK/unbound.out" ip netns exec "$MB_R" unbound -d -c "$WORK/unbound.conf"
UNBOUND_PID=$BG_PID
mb_ns_wait_listen "$MB_R" 53 $((10 * TM)) "$UNBOUND_PID" || { bad "unbound did not start: $(cat "$WORK/unbound.out" "$WORK/unbound.log")"; tl_finish; }
r=$(in_c "$PY" "$DH" query "$MB_RADDR_C" 53 "$ZONE" SOA)
case "$r" in "rcode=0 "*"types=6 "*) ok "unbound resolves the zone's SOA through the stub: $r" ;; *) bad "through unbound: $r" ;; esac
r=$(in_c "$PY" "$DH" query "$MB_SADDR" 53 "$ZONE" SOA)
expect_eq "the client cannot reach the server but through the resolver" "$r" "noreply"

# ---- capture on both of R's links
tl_bg "$WORK/tshark.out" ip netns exec "$MB_R" tshark -q -n -i mr0 -i mr1 -f "port 53" -w "$WORK/cap.pcapng"
TSHARK_PID=$BG_PID
end=$(($(tl_now_ms) + 10000 * TM))
while ! grep -q "Capturing on" "$WORK/tshark.out" 2>/dev/null && [ "$(tl_now_ms)" -lt $end ]; do sleep 0.1; done
grep -q "Capturing on" "$WORK/tshark.out" || bad "tshark did not start: $(cat "$WORK/tshark.out")"

# ---- the tunnel
t0=$(tl_now_ms)
mb_client_start client --log-level debug || tl_finish
ok "session up through unbound in $(($(tl_now_ms) - t0)) ms"
SOX=(--socks5-hostname "127.0.0.1:$MB_SOCKS")
C=(in_c curl -sS --max-time $((40 * TM)) --speed-limit 512 --speed-time $((15 * TM)))

transfers() { # LABEL
    local t0 t1 got
    rm -f "$WORK/got"
    t0=$(tl_now_ms)
    "${C[@]}" "${SOX[@]}" -o "$WORK/got" "http://$MB_WEB/blob" 2>"$WORK/curl.err"
    t1=$(tl_now_ms)
    got=$(tl_sha "$WORK/got" 2>/dev/null)
    [ "$got" = "$BLOB_SHA" ] && ok "$1: 1 MiB download intact in $((t1 - t0)) ms ($(mb_mbps 1048576 $((t1 - t0))) MB/s)" ||
        bad "$1: download: $(mb_size "$WORK/got") bytes, $(head -c 200 "$WORK/curl.err")"
    t0=$(tl_now_ms)
    got=$("${C[@]}" "${SOX[@]}" --data-binary @"$WORK/up" "http://$MB_WEB/upload" 2>"$WORK/curl.err")
    t1=$(tl_now_ms)
    [ "$got" = "$UP_SHA" ] && ok "$1: 256 KiB upload intact in $((t1 - t0)) ms" ||
        bad "$1: upload: sink saw '$got' $(head -c 200 "$WORK/curl.err")"
}
parallel() { # LABEL
    local i n=0 pids=()
    for i in $(seq 10); do
        "${C[@]}" "${SOX[@]}" -o "$WORK/par.$i" "http://$MB_WEB/small" 2>/dev/null &
        pids+=($!)
    done
    wait "${pids[@]}"
    for i in $(seq 10); do [ "$(cat "$WORK/par.$i" 2>/dev/null)" = small-ok ] && n=$((n + 1)); done
    expect_eq "$1: 10 parallel small requests" "$n" 10
}
transfers "through unbound"
parallel "through unbound"

# ---- the poll rate follows the traffic: queries from C per second, idle and busy
in_r nft add rule inet umbra_dns din iifname mr0 udp dport 53 counter || bad "nft: query counter"
qcount() { in_r nft list chain inet umbra_dns din | awk '/dport 53/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'; }
sleep 2 # the transfers' tail
q0=$(qcount)
sleep 5
q1=$(qcount)
n=$((q1 - q0))
idle=$(((n + 4) / 5))
[ "$n" -ge 2 ] && [ "$n" -le 150 ] && ok "idle: $n queries in 5 s (polls back off, never stop)" ||
    bad "idle: $n queries in 5 s (want 2..150)"
t0=$(tl_now_ms)
"${C[@]}" "${SOX[@]}" -o /dev/null "http://$MB_WEB/blob" 2>/dev/null
q2=$(qcount)
busy=$(((q2 - q1) * 1000 / ($(tl_now_ms) - t0 + 1)))
[ "$busy" -gt $((idle * 10)) ] && ok "busy: $busy queries/s during a download (> 10x idle)" ||
    bad "busy: $busy queries/s during a download, idle $idle"
in_r nft flush chain inet umbra_dns din

# ---- the server restarts; the client comes back by itself
tl_stop "server" "$SERVER_PID" $((10 * TM))
mb_server_start || tl_finish
t0=$(tl_now_ms)
end=$((t0 + 40000 * TM))
got=""
while [ "$(tl_now_ms)" -lt $end ]; do
    got=$(in_c curl -sS --max-time 5 "${SOX[@]}" "http://$MB_WEB/small" 2>/dev/null)
    [ "$got" = small-ok ] && break
    sleep 0.5
done
expect_eq "after a server restart the tunnel works again ($(($(tl_now_ms) - t0)) ms)" "$got" small-ok
n=$(mb_count "$EVENTS" session_up)
[ "${n:-0}" -ge 2 ] && ok "a new session after the restart ($n session_up events)" || bad "session_up events: $n"
parallel "after the restart"

# ---- 5% loss on the resolver's upstream link, both directions
in_r nft add rule inet umbra_dns dout oifname mr1 numgen random mod 100 '<' 5 counter drop &&
    in_r nft add rule inet umbra_dns din iifname mr1 numgen random mod 100 '<' 5 counter drop ||
    bad "nft: loss rules"
transfers "5% loss upstream of unbound"
drops=$(in_r nft list table inet umbra_dns | awk '/numgen/ { for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }')
[ "$drops" -gt 10 ] && ok "the loss rules dropped $drops packets" || bad "the loss rules dropped only $drops packets"
in_r nft flush chain inet umbra_dns dout
in_r nft flush chain inet umbra_dns din

# ---- every packet a DNS message
kill -INT "$TSHARK_PID" 2>/dev/null
for _ in $(seq 100); do kill -0 "$TSHARK_PID" 2>/dev/null || break; sleep 0.1; done
total=$(tshark -n -r "$WORK/cap.pcapng" -Y dns 2>/dev/null | wc -l)
frames=$(tshark -n -r "$WORK/cap.pcapng" -Y ip 2>/dev/null | wc -l) # (ARP aside)
malformed=$(tshark -n -r "$WORK/cap.pcapng" -Y '_ws.malformed || _ws.expert.severity >= "Error"' 2>/dev/null | wc -l)
[ "$total" -gt 1000 ] && [ "$total" = "$frames" ] && ok "capture: $frames IP packets, all dissected as DNS" ||
    bad "capture: $total of $frames IP packets are DNS"
expect_eq "capture: malformed or erroneous packets" "$malformed" 0

tl_stop "client" "$CLIENT_PID" $((5 * TM))

# ---- DNS over TLS to the same unbound
LINK="${LINK%%&resolver=*}&resolver=tls%3A%2F%2F$MB_RADDR_C%3A853"
mb_ns_wait_listen "$MB_R" 853 $((5 * TM)) "$UNBOUND_PID" || bad "unbound does not listen on 853"
if mb_client_start dot --log-level debug; then
    t0=$(tl_now_ms)
    rm -f "$WORK/got"
    "${C[@]}" "${SOX[@]}" -o "$WORK/got" "http://$MB_WEB/blob" 2>"$WORK/curl.err"
    [ "$(tl_sha "$WORK/got" 2>/dev/null)" = "$BLOB_SHA" ] &&
        ok "DNS over TLS: 1 MiB download intact in $(($(tl_now_ms) - t0)) ms" ||
        bad "DNS over TLS: download $(mb_size "$WORK/got") bytes: $(head -c 200 "$WORK/curl.err")"
    in_r ss -tn state established "( sport = :853 )" | grep -q "$MB_CADDR" &&
        ok "the DoT client holds a TCP connection to the resolver's port 853" || bad "no TCP connection to 853"
    tl_stop "client" "$CLIENT_PID" $((5 * TM))
fi

# ---- truncation: a resolver that sets TC on every UDP answer; the client asks again over TCP
tl_bg "$WORK/tcforward.log" ip netns exec "$MB_R" "$PY" "$DH" tcforward "$MB_RADDR_C" 5300 "$MB_SADDR" 53
mb_ns_wait_listen "$MB_R" 5300 $((5 * TM)) "$BG_PID" || bad "tcforward did not start"
LINK="${LINK%%&resolver=*}&resolver=$MB_RADDR_C%3A5300"
if mb_client_start tc --log-level debug; then
    rm -f "$WORK/got"
    "${C[@]}" "${SOX[@]}" -o "$WORK/got" "http://$MB_WEB/blob" 2>"$WORK/curl.err"
    [ "$(tl_sha "$WORK/got" 2>/dev/null)" = "$BLOB_SHA" ] && ok "TC on every UDP answer: 1 MiB download intact over TCP" ||
        bad "TC: download $(mb_size "$WORK/got") bytes: $(head -c 200 "$WORK/curl.err")"
    tl_stop "client" "$CLIENT_PID" $((5 * TM))
    grep -q "over tcp" "$WORK/tc.log" && n=$(grep -o "[0-9]* over tcp" "$WORK/tc.log" | tail -1) &&
        [ "${n%% *}" -gt 100 ] && ok "the client asked $n" || bad "tcp retries: $(grep -o "[0-9]* over tcp" "$WORK/tc.log" | tr '\n' ' ')"
fi
tl_stop "server" "$SERVER_PID" $((10 * TM))
tl_finish
