#!/usr/bin/env bash
# Unauthenticated connections must not lock clients out (docs/PROTOCOL.md
# section 5, limits). With the default probe delays (15..45 s):
#   - 1,100 connections held open: none is closed early (past a budget a
#     connection gets the probe reaction, never an immediate FIN);
#   - then they close, and 1,100 connect-and-close calls follow: a real client
#     still gets its session at once (slots are freed when the peer closes).
#
#   preauth_helper.py hold / flood ──► umbra server :SPORT ◄── umbra client
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init preauth_flood
tl_need_umbra "the pre-auth budgets"
PH=$SRC/tests/integration/preauth_helper.py

tl_server_init
sed -i '/^probe-delay-m[ai][nx]/d' "$WORK/server.conf" # the defaults: 15..45 s
tl_server_start || tl_finish

ended=$(timeout $((60 * TM)) "$PY" "$PH" hold "$SPORT" 1100 3)
expect_eq "1100 connections held 3 s: none closed by the server (no immediate FIN past a budget)" "$ended" 0
t0=$(tl_now_ms)
timeout $((60 * TM)) "$PY" "$PH" flood "$SPORT" 1100 || bad "flood failed"
echo "# 1100 connect-and-close calls in $(($(tl_now_ms) - t0)) ms"
kill -0 "$SERVER_PID" 2>/dev/null || { bad "server died"; tl_finish; }

t0=$(tl_now_ms)
tl_client_start "$LINK" client || tl_finish
if out=$(tl_wait_session 1 $((4 * TM))); then ok "session up $(($(tl_now_ms) - t0)) ms after the flood"; else
    bad "no session within $((4 * TM)) s of the flood: $out"
fi
echo "# server: $(tl_fd_count "$SERVER_PID") descriptors, $(tl_rss_kib "$SERVER_PID") KiB RSS"
tl_tunnel_down
tl_finish
