#!/usr/bin/env bash
# A client whose server cannot be reached retries with backoff; each failure
# is an "error" event, but the "cannot reach" log line is rate-limited to one
# per second (then a "suppressed" count), so a dead server never floods the
# log. Regression: the limiter's state was a fresh compound literal on every
# call, so every attempt was logged.
#
#   umbra client ──► 127.0.0.1:P (nothing listens: connection refused)
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init client_retry_log
tl_need_umbra "the client's connect retries"

tl_server_init # a config and link only: the server is never started
EVENTS=$WORK/c.events
t0=$(tl_now_ms)
tl_bg "$WORK/client.log" "$UMBRA" client --link "$LINK" --socks "127.0.0.1:$(tl_free_port)" \
    --events "$EVENTS" --control off
CLIENT_PID=$BG_PID
# Until at least 6 attempts have failed (the backoff spaces them out).
for _ in $(seq 200); do
    [ "$(grep -c '"what":"connect"' "$EVENTS" 2>/dev/null)" -ge 6 ] && break
    sleep 0.05
done
tl_stop client "$CLIENT_PID" $((5 * TM))
secs=$((($(tl_now_ms) - t0 + 999) / 1000))
n_ev=$(grep -c '"what":"connect"' "$EVENTS")
n_log=$(grep -c 'cannot reach' "$WORK/client.log")
echo "# $n_ev failed attempts (events), $n_log 'cannot reach' log lines in about $secs s"
[ "$n_ev" -ge 6 ] && ok "$n_ev connect failures reported as events" || bad "only $n_ev connect failures in $secs s"
[ "$n_log" -ge 1 ] && ok "the first failure is logged" || bad "no 'cannot reach' line: $(head -5 "$WORK/client.log")"
[ "$n_log" -le $((secs + 1)) ] && [ "$n_log" -lt "$n_ev" ] &&
    ok "log lines limited to about one per second ($n_log in $secs s)" ||
    bad "$n_log 'cannot reach' lines for $n_ev failures in $secs s: the rate limiter does not limit"
tl_finish
