#!/usr/bin/env bash
# A recorded first flight replayed to ANOTHER listener of the same server
# must not open a session (docs/PROTOCOL.md section 5: one replay filter per
# server, across every listen address).
#
#   umbra client ──► preauth_helper.py tap :T (records the first flight) ──► umbra server :SPORT
#   preauth_helper.py replay (the recorded flight)                       ──► umbra server :P2
#                                                                           (second listen address)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init preauth_replay
tl_need_umbra "a replayed first flight"
PH=$SRC/tests/integration/preauth_helper.py

tl_server_init
P2=$(tl_free_port)
sed -i "/^\[server\]/a listen = 127.0.0.1:$P2" "$WORK/server.conf"
tl_server_start || tl_finish
tl_wait_listen "$P2" $((10 * TM)) "$SERVER_PID" || { bad "server does not listen on the second address :$P2"; tl_finish; }
ok "server listens on :$SPORT and :$P2"

tl_bg "$WORK/tap.log" "$PY" "$PH" tap "$WORK/tap.port" "$SPORT" "$WORK/flight.bin"
tl_wait_file "$WORK/tap.port" 10 || { bad "tap did not start"; tl_finish; }
TAP=$(cat "$WORK/tap.port")
LINK_T=$(printf '%s' "$LINK" | sed "s/@127\.0\.0\.1:[0-9]*/@127.0.0.1:$TAP/")
tl_client_start "$LINK_T" client || tl_finish
if out=$(tl_wait_session 1 $((15 * TM))); then ok "session up through the tap"; else
    bad "session through the tap: $out"
    tl_finish
fi
tl_wait_file "$WORK/flight.bin" $((5 * TM)) || { bad "no first flight recorded"; tl_finish; }
ok "first flight recorded: $(stat -c %s "$WORK/flight.bin") bytes"

# The probe delay is 200..400 ms: a refused flight is closed by then; a
# session's reply would come within milliseconds.
got=$(timeout $((20 * TM)) "$PY" "$PH" replay "$P2" "$WORK/flight.bin" $((3 * TM)))
expect_eq "flight replayed to the other listener :$P2: no byte back" "$got" 0
got=$(timeout $((20 * TM)) "$PY" "$PH" replay "$SPORT" "$WORK/flight.bin" $((3 * TM)))
expect_eq "flight replayed to the same listener :$SPORT: no byte back" "$got" 0

tl_tunnel_down
tl_finish
