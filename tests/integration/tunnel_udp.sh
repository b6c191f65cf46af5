#!/usr/bin/env bash
# SOCKS5 UDP ASSOCIATE through the tunnel to a local UDP echo server:
# datagrams of several sizes (1 to 1400 bytes) to 127.0.0.1, to "localhost"
# (resolved by the server) and to ::1, each echoed and checked byte for byte;
# a datagram to a refused destination (127.0.0.2) gets no answer.
# Zero-length datagrams (ordinary SOCKS5 UDP clients send them) to a literal
# and to a name are echoed, the server survives them (the ASan+UBSan build
# died on memcpy(dst, NULL, 0) in src/exit/direct.c), and an ordinary
# datagram still round-trips afterwards.
#
#   tunnel_helper.py udp ─► umbra client ══ tcp ══► umbra server ──► udp echo 127.0.0.1:U
#   (TCP control :S,         SOCKS5 :S,              --allow 127.0.0.1/32   and [::1]:U
#    UDP to the relay)       UDP relay               --allow ::1/128
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init tunnel_udp

tl_bg "$WORK/echo.log" "$PY" "$HELPER" udpecho "$WORK/echo.ports"
tl_wait_file "$WORK/echo.ports" 10 || { bad "udp echo did not start"; tl_finish; }
U4=$(awk '/^udp4/ { print $2 }' "$WORK/echo.ports")
U6=$(awk '/^udp6/ { print $2 }' "$WORK/echo.ports")
tl_tunnel_up --allow ::1/128

if out=$(timeout $((60 * TM)) "$PY" "$HELPER" udp "$SOCKS" "$U4" "$U6" 2>&1); then
    ok "UDP ASSOCIATE: $out"
else
    bad "UDP ASSOCIATE: $out"
fi
# A second association right after the first is closed works as well.
if out=$(timeout $((60 * TM)) "$PY" "$HELPER" udp "$SOCKS" "$U4" 0 2>&1); then
    ok "second UDP association: $out"
else
    bad "second UDP association: $out"
fi

if out=$(timeout $((30 * TM)) "$PY" "$SRC/tests/integration/egress_helper.py" udp0 "$SOCKS" "$U4" 2>&1); then
    ok "zero-length datagrams: $out"
else
    bad "zero-length datagrams: $out"
fi
kill -0 "$SERVER_PID" 2>/dev/null && ok "server alive after zero-length datagrams" || bad "server died"
kill -0 "$CLIENT_PID" 2>/dev/null && ok "client alive" || bad "client died"
tl_tunnel_down
tl_finish
