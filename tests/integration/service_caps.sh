#!/usr/bin/env bash
# The capabilities the systemd units grant are the ones umbra needs: the
# server and the clients run as an unprivileged user (nobody) with exactly
# the CapabilityBoundingSet= / AmbientCapabilities= of their unit in
# dist/systemd/ (through setpriv, with no_new_privs, as the units set
# NoNewPrivileges=), in a private network namespace:
#   umbra-server@   listens on port 443 (CAP_NET_BIND_SERVICE)
#   umbra-client@   SOCKS5 proxy on port 1080, session up
#   umbra-vpn@      TUN device, its address and routes (CAP_NET_ADMIN), session up
# and without the capability the server cannot take port 443, nor the client
# start VPN mode (so the check can fail). The other sandboxing (seccomp, ProtectSystem) needs systemd as
# PID 1 and is checked statically by make_install.sh.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init service_caps
tl_need_umbra "service capabilities"
tl_need setpriv
[ "$(id -u)" = 0 ] || tl_skip "needs root (to drop to nobody with chosen capabilities)"
[ "$TL_NETNS" = 1 ] || tl_skip "needs a private network namespace (port 443, routes)"
id nobody >/dev/null 2>&1 || tl_skip "no user 'nobody'"
chmod 755 "$WORK"
UNITS=$SRC/dist/systemd

# caps UNIT: the unit's capability list in setpriv's form, e.g. +net_bind_service
caps() {
  local list
  list=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNITS/$1.in")
  [ "$list" = "$(sed -n 's/^AmbientCapabilities=//p' "$UNITS/$1.in")" ] || { bad "$1: bounding and ambient sets differ"; }
  local out="" c
  for c in $list; do out="$out,+$(echo "${c#CAP_}" | tr 'A-Z' 'a-z')"; done
  echo "${out#,}"
}
# as_unit UNIT LOG command...: run as nobody with the unit's capabilities
as_unit() {
  local c unit=$1 log=$2; shift 2
  c=$(caps "$unit")
  tl_bg "$log" setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
    --inh-caps=-all,$c --ambient-caps=-all,$c --bounding-set=-all,$c \
    env HOME=/nonexistent XDG_STATE_HOME="$WORK/state" "$@"
}
mkdir -p "$WORK/state" && chown nobody "$WORK/state"

"$UMBRA" server init -c "$WORK/server.conf" --listen 127.0.0.1:443 >/dev/null 2>&1 || bad "server init"
sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/server.conf"
LINK=$("$UMBRA" server add-client -c "$WORK/server.conf" laptop --no-qr 2>/dev/null)
chown nobody "$WORK/server.conf"
echo "# server unit capabilities: $(caps umbra-server@.service)"

# Without the capability: port 443 is refused.
tl_bg "$WORK/server-nocap.log" setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
  --inh-caps=-all --ambient-caps=-all --bounding-set=-all "$UMBRA" server -c "$WORK/server.conf"
pid=$BG_PID
for _ in $(seq $((100 * TM))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then bad "server without capabilities still runs"; kill "$pid"; else
  wait "$pid"; rc=$?
  grep -q 'cannot listen on 127.0.0.1:443' "$WORK/server-nocap.log" && ok "without CAP_NET_BIND_SERVICE: port 443 refused (exit $rc)" \
    || bad "without capabilities: $(tail -2 "$WORK/server-nocap.log")"
fi

as_unit umbra-server@.service "$WORK/server.log" "$UMBRA" server -c "$WORK/server.conf"
SERVER_PID=$BG_PID
tl_wait_listen 443 $((10 * TM)) "$SERVER_PID" && ok "server as nobody with its unit's capabilities listens on 443" \
  || bad "server as nobody: $(tail -3 "$WORK/server.log")"

EVENTS=$WORK/state/client.events
as_unit umbra-client@.service "$WORK/client.log" "$UMBRA" client --link "$LINK" --socks 127.0.0.1:1080 \
  --events "$EVENTS" --control off
CLIENT_PID=$BG_PID
if tl_wait_listen 1080 $((10 * TM)) "$CLIENT_PID" && out=$(tl_wait_session 1 $((15 * TM))); then
  ok "client as nobody with its unit's capabilities: SOCKS5 on 1080, session up"
else
  bad "client as nobody: ${out:-} $(tail -3 "$WORK/client.log")"
fi
tl_stop client "$CLIENT_PID" $((10 * TM)); CLIENT_PID=""

if [ ! -c /dev/net/tun ]; then
  echo "# skip VPN mode: no /dev/net/tun"
else
  TUNDEV=umcap$(($$ % 1000))
  # With the proxy unit's capabilities (no CAP_NET_ADMIN) VPN mode cannot start.
  as_unit umbra-client@.service "$WORK/vpn-nocap.log" "$UMBRA" client --link "$LINK" --tun \
    --tun-name "$TUNDEV" --control off
  pid=$BG_PID
  for _ in $(seq $((200 * TM))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then bad "vpn without CAP_NET_ADMIN still runs"; kill "$pid"; else
    grep -q 'cannot start VPN mode' "$WORK/vpn-nocap.log" && ok "without CAP_NET_ADMIN: VPN mode refused" \
      || bad "vpn without CAP_NET_ADMIN: $(tail -2 "$WORK/vpn-nocap.log")"
  fi
  echo "# vpn unit capabilities: $(caps umbra-vpn@.service)"
  EVENTS=$WORK/state/vpn.events
  as_unit umbra-vpn@.service "$WORK/vpn.log" "$UMBRA" client --link "$LINK" --tun --tun-name "$TUNDEV" \
    --events "$EVENTS" --control off
  VPN_PID=$BG_PID
  if out=$(tl_wait_session 1 $((15 * TM))); then ok "vpn as nobody with its unit's capabilities: session up"; else
    bad "vpn as nobody: $out $(tail -3 "$WORK/vpn.log")"; fi
  ip -4 route show | grep -q "0.0.0.0/1 dev $TUNDEV" && ip -4 addr show dev "$TUNDEV" | grep -q 10.233.0.1 \
    && ok "vpn: $TUNDEV up with its address and routes" || bad "vpn: no device or routes: $(ip -4 route)"
  tl_stop vpn "$VPN_PID" $((10 * TM))
  ip link show "$TUNDEV" >/dev/null 2>&1 && bad "vpn: $TUNDEV left behind" || ok "vpn: device gone after exit"
fi
tl_stop server "$SERVER_PID" $((10 * TM)); SERVER_PID=""
tl_finish
