#!/usr/bin/env bash
# Routing rules in VPN (TUN) mode: unmodified programs in C, every flow
# captured by the TUN; rules send some of it directly out of c0.
# Topology: tests/integration/vpn_lib.sh, plus two "direct" web servers on
# addresses of S that the umbra server's egress may not reach (its --allow
# covers W and the LAN resolver only), so a flow to them works only directly:
#
#   curl (C) ─► umtun ─► umbra client ══ tcp 10.201.9.1:443 ══► umbra server ─► W (nginx)
#                          │  direct (SO_BINDTODEVICE c0)
#                          └──────────── c0 ─► s0 ─► 10.201.7.1:8080, 10.201.7.2:8080 (S, lo)
#
# Checks: `direct cidr:10.201.7.1/32` fetches a file from 10.201.7.1 whose
# server sees C's own c0 address; a capture of the tunnel port on s0 stays
# small and the client's tunnel counters do not move by the file's size; the
# direct socket does not loop into the TUN; without the rule the flow goes
# into the tunnel and the server refuses it; `block cidr:` resets a flow to W
# that the tunnel would carry; `block domain:vpn-test.umbra` resets a flow to
# the address the DNS answer (through the client) gave for that name; `direct geoip:XA` (a GeoIP file the test
# writes) reaches 10.201.7.2; UDP datagrams to 10.201.7.1 leave directly; SIGHUP after rewriting the rules file blocks
# 10.201.7.1 for new flows while a slow stream opened before it completes.
set -u
. "$(dirname "$0")/lib.sh"
TL_NETNS=0
tl_init rules_vpn
. "$SRC/tests/integration/vpn_lib.sh"
vn_init
tl_need curl nginx
vn_topology
vn_services
D1=10.201.7.1
D2=10.201.7.2
D3=10.201.7.3
ip -n "$NS_S" addr add "$D1/32" dev lo
ip -n "$NS_S" addr add "$D2/32" dev lo
ip -n "$NS_S" addr add "$D3/32" dev lo
MIB=4
mkdir -p "$WORK/dwww"
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/dwww/blob"
printf 'direct-ok\n' >"$WORK/dwww/small"
BLOB_SHA=$(tl_sha "$WORK/dwww/blob")
tl_bg "$WORK/http1.log" ip netns exec "$NS_S" "$PY" -m http.server --bind "$D1" --directory "$WORK/dwww" 8080
tl_bg "$WORK/http2.log" ip netns exec "$NS_S" "$PY" -m http.server --bind "$D2" --directory "$WORK/dwww" 8080
tl_bg "$WORK/slowsrv.log" ip netns exec "$NS_S" "$PY" -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$D1', 9000)); s.listen(4)
c, _ = s.accept()
for i in range(40):
    c.sendall(b'x' * 1000); time.sleep(0.1)
c.close()"
tl_bg "$WORK/echo1.log" ip netns exec "$NS_S" "$PY" "$VHELP" udpecho "$D1" 7007 "$WORK/echo1.ready"
vn_wait_ready "$WORK/echo1.ready" 10
for _ in $(seq 100); do
    C curl -s -o /dev/null --max-time 1 "http://$D1:8080/small" && C curl -s -o /dev/null --max-time 1 "http://$D2:8080/small" && break
    sleep 0.1
done
C curl -s --max-time 2 "http://$D1:8080/small" | grep -q direct-ok && ok "fixture: C reaches $D1 directly (no VPN yet)" || bad "fixture: C cannot reach $D1"

# GeoIP (Tor text): D2 = 10.201.7.2 in XA.
d2int=$(((10 << 24) | (201 << 16) | (7 << 8) | 2))
printf '%u,%u,XA\n%u,%u,XB\n' $d2int $d2int $((d2int + 1)) $((d2int + 1)) >"$WORK/geoip"
printf 'direct cidr:%s/32\nblock cidr:%s/128 # W over the tunnel, refused here\ndirect geoip:XA\nblock domain:%s\n' "$D1" "$W6" "$DNSNAME" >"$WORK/rules"

vn_server
vn_client client --rules-file "$WORK/rules" --geoip-file "$WORK/geoip" --control "$WORK/client.sock" || tl_finish
DEV=$(grep -o 'direct connections leave through [^ ]*' "$WORK/client.log" | awk '{ print $5 }')
expect_eq "direct sockets bound to the interface of the route out before the VPN" "$DEV" "c0"
r=$(ip -n "$NS_C" route get "$D1")
case "$r" in *"dev $TUN"*) ok "$D1 is routed into the TUN (the rule, not a route, sends it direct)" ;; *) bad "route to $D1: $r" ;; esac
status_bytes() { C "$UMBRA" status --socket "$WORK/client.sock" 2>/dev/null | awk '/^bytes in:/ { print $3 }'; }

# ---- direct cidr: the file arrives, nothing crosses the tunnel
CAPTURE=0
if command -v tshark >/dev/null 2>&1; then
    tl_bg "$WORK/tshark.log" ip netns exec "$NS_S" tshark -i s0 -s 128 -B 32 -f "tcp port $SPORT" -w "$WORK/cap.pcap" -q
    TSHARK_PID=$BG_PID
    for _ in $(seq $((50 * TM))); do grep -q "Capturing on" "$WORK/tshark.log" 2>/dev/null && break; sleep 0.1; done
    # "Capturing on" comes before dumpcap has the interface; its file header after (bounded wait)
    for _ in $(seq $((50 * TM))); do [ -s "$WORK/cap.pcap" ] && break; sleep 0.1; done
    CAPTURE=1
fi
in0=$(status_bytes)
got=$(C curl -sS --max-time $((30 * TM)) "http://$D1:8080/blob" 2>"$WORK/c1.err" | sha256sum | cut -d' ' -f1)
expect_eq "direct cidr rule in TUN mode: $MIB MiB from $D1, sha256" "$got" "$BLOB_SHA"
in1=$(status_bytes)
if [ -n "$in0" ] && [ -n "$in1" ] && [ $((in1 - in0)) -lt 65536 ]; then
    ok "tunnel bytes in moved by $((in1 - in0)) (< 64 KiB) during the direct download"
else
    bad "tunnel bytes in: '$in0' -> '$in1' during the direct download"
fi
if [ $CAPTURE = 1 ]; then
    sleep 0.5
    kill -INT "$TSHARK_PID" 2>/dev/null
    wait "$TSHARK_PID" 2>/dev/null
    bytes=$(tshark -r "$WORK/cap.pcap" -T fields -e frame.len 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    if [ "$bytes" -lt 65536 ]; then ok "capture of the tunnel port on s0: $bytes bytes during the direct download"; else bad "capture of the tunnel port on s0: $bytes bytes"; fi
fi
if [ $CAPTURE = 1 ]; then # control: the same capture sees a fetch through the tunnel
    tl_bg "$WORK/tshark2.log" ip netns exec "$NS_S" tshark -i s0 -s 128 -B 32 -f "tcp port $SPORT" -w "$WORK/cap2.pcap" -q
    T2=$BG_PID
    for _ in $(seq $((50 * TM))); do grep -q "Capturing on" "$WORK/tshark2.log" 2>/dev/null && break; sleep 0.1; done
    # "Capturing on" comes before dumpcap has the interface; its file header after (bounded wait)
    for _ in $(seq $((50 * TM))); do [ -s "$WORK/cap2.pcap" ] && break; sleep 0.1; done
    C curl -sS --max-time $((10 * TM)) -o /dev/null "http://$W4/small"
    sleep 0.5
    kill -INT "$T2" 2>/dev/null
    wait "$T2" 2>/dev/null
    b2=$(tshark -r "$WORK/cap2.pcap" -T fields -e frame.len 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    [ "$b2" -gt 0 ] && ok "control: the capture sees $b2 bytes for a fetch through the tunnel" || bad "control capture saw nothing"
fi
src=$(grep 'GET /blob' "$WORK/http1.log" | tail -n 1 | awk '{ print $1 }')
expect_eq "the direct server saw C's own address (not the umbra server's)" "$src" "10.201.1.2"

# ---- UDP: datagrams to D1 leave directly too (and do not loop into the TUN)
if out=$(C timeout $((30 * TM)) "$PY" "$VHELP" udp "$D1" 7007 2>&1); then ok "direct cidr rule, UDP: $out"; else bad "direct UDP to $D1: $out"; fi

# ---- no rule: D3 goes into the tunnel, and the server's egress refuses it
if C curl -sS --max-time $((10 * TM)) "http://$D3:8080/small" >/dev/null 2>"$WORK/c3.err"; then
    bad "$D3 (no rule) was reached: the default is the tunnel, whose server may not go there"
else
    ok "no rule: $D3 through the tunnel, refused by the server ($(tr -d '\n' <"$WORK/c3.err" | head -c 100))"
fi
got=$(C curl -sS --max-time $((10 * TM)) "http://$W4/small" 2>&1)
expect_eq "default route: W by address through the tunnel (before any DNS answer named it)" "$got" "small-ok"

# ---- block cidr: a flow the tunnel would carry is reset here
if C curl -sS --max-time $((10 * TM)) "http://[$W6]/small" >/dev/null 2>"$WORK/b1.err"; then
    bad "block rule: $W6 reached"
else
    ok "block cidr rule: flow to $W6 refused ($(tr -d '\n' <"$WORK/b1.err" | head -c 100))"
fi

# ---- block domain: the name comes from the DNS answer that passed through the client
got=$(C getent ahostsv4 "$DNSNAME" 2>&1 | awk 'NR == 1 { print $1 }')
expect_eq "glibc resolves $DNSNAME through the tunnel" "$got" "$W4"
if C curl -sS --max-time $((10 * TM)) "http://$DNSNAME/small" >/dev/null 2>"$WORK/b3.err"; then
    bad "block domain rule in TUN mode: $DNSNAME reached"
else
    ok "block domain rule in TUN mode: $DNSNAME ($W4) refused ($(tr -d '\n' <"$WORK/b3.err" | head -c 100))"
fi
grep -q "route $W4:80 ($DNSNAME): blocked" "$WORK/client.log" && ok "client log: route $W4:80 ($DNSNAME) blocked, named by the DNS answer" ||
    bad "client log has no block of $W4:80"

# ---- geoip
got=$(C curl -sS --max-time $((10 * TM)) "http://$D2:8080/small" 2>&1)
expect_eq "geoip:XA rule: $D2 reached directly" "$got" "direct-ok"

# ---- SIGHUP: new flows follow the new rules, the open stream lives on
C "$PY" -c "
import socket
s = socket.create_connection(('$D1', 9000), 10)
s.settimeout(30)
n = 0
while True:
    b = s.recv(65536)
    if not b: break
    n += len(b)
print(n)" >"$WORK/slow.got" 2>"$WORK/slow.err" &
SLOW=$!
sleep 1
printf 'block cidr:%s/32\n' "$D1" >"$WORK/rules.new"
mv "$WORK/rules.new" "$WORK/rules"
kill -HUP "$CLIENT_PID"
for _ in $(seq $((50 * TM))); do grep -q "routing rules reloaded" "$WORK/client.log" && break; sleep 0.1; done
grep -q "routing rules reloaded" "$WORK/client.log" && ok "SIGHUP: rules reloaded" || bad "SIGHUP: no reload"
if C curl -sS --max-time $((10 * TM)) "http://$D1:8080/small" >/dev/null 2>"$WORK/b2.err"; then
    bad "after SIGHUP: $D1 still reached"
else
    ok "after SIGHUP: a new flow to $D1 is refused"
fi
kill -0 $SLOW 2>/dev/null && ok "the stream opened before SIGHUP is still open" || bad "the stream opened before SIGHUP ended early"
wait $SLOW
expect_eq "the stream opened before SIGHUP completes ($(head -c 200 "$WORK/slow.err"))" "$(cat "$WORK/slow.got")" 40000

tl_stop "client" "$CLIENT_PID" $((10 * TM))
tl_stop "server" "$SERVER_PID" $((10 * TM))
tl_finish
