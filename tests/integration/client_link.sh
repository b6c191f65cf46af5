#!/usr/bin/env bash
# The share link holds the client's private key: it must not stay visible to
# other local users. `umbra client --link LINK` scrubs the argument, so
# /proc/PID/cmdline (what ps shows everyone) no longer holds the key once the
# client runs; `--link-file FILE` and `--link-file -` (standard input) keep it
# off the command line altogether, and a link file readable by group or
# others gets a warning. Each client must really get a session.
#
#   umbra client --link LINK        ══ tcp ══► umbra server :SPORT
#   umbra client --link-file FILE   ══ tcp ══► umbra server :SPORT
#   umbra client --link-file - <LINK══ tcp ══► umbra server :SPORT
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init client_link
tl_need_umbra "client link handling"

tl_server_init
tl_server_start || tl_finish
KEY=$(printf '%s' "$LINK" | sed -E 's/.*[?&]k=([A-Za-z0-9_-]+).*/\1/')
[ ${#KEY} = 43 ] && ok "link holds a 43-character key" || bad "could not find the key in the link"

# start_client NAME ARGS...: a client with its own proxies, events and
# control socket; waits for its first session. Sets PID.
start_client() {
    local name=$1
    shift
    local socks http
    socks=$(tl_free_port)
    http=$(tl_free_port)
    EVENTS=$WORK/$name.events
    tl_bg "$WORK/$name.log" "$UMBRA" client "$@" --socks "127.0.0.1:$socks" --http "127.0.0.1:$http" \
        --events "$EVENTS" --control off
    PID=$BG_PID
    if out=$(tl_wait_session 1 $((15 * TM))); then ok "$name: session up"; else bad "$name: session: $out"; fi
}

# 1. --link: the key must be gone from /proc/PID/cmdline.
start_client link --link "$LINK"
cmd=$(tr '\0' ' ' <"/proc/$PID/cmdline")
case "$cmd" in *client*--link*) ok "cmdline still shows the options" ;; *) bad "cmdline '$cmd'" ;; esac
if tr '\0' '\n' <"/proc/$PID/cmdline" | grep -qF -- "$KEY"; then
    bad "/proc/$PID/cmdline shows the client's private key"
else
    ok "/proc/PID/cmdline does not hold the client's private key"
fi
tr '\0' '\n' <"/proc/$PID/cmdline" | grep -qF 'umbra://' && bad "cmdline shows the link" || ok "cmdline shows no link"
tl_stop "client (--link)" "$PID" $((5 * TM))

# 2. --link-file FILE (mode 0600): no warning, a session.
(umask 077 && printf '%s\n' "$LINK" >"$WORK/link.txt")
start_client file --link-file "$WORK/link.txt"
grep -q "readable by group or others" "$WORK/file.log" && bad "warning for a 0600 link file" || ok "no warning for a 0600 link file"
tr '\0' '\n' <"/proc/$PID/cmdline" | grep -qF -- "$KEY" && bad "--link-file: key in cmdline" || ok "--link-file: no key in cmdline"
tl_stop "client (--link-file)" "$PID" $((5 * TM))

# 3. --link-file - : the link on standard input.
printf '%s\n' "$LINK" >"$WORK/stdin.txt"
chmod 600 "$WORK/stdin.txt"
tl_bg_stdin() { "$@" <"$WORK/stdin.txt" >>"$WORK/stdin.log" 2>&1 & BG_PID=$!; TL_PIDS+=("$BG_PID"); }
socks=$(tl_free_port)
EVENTS=$WORK/stdin.events
tl_bg_stdin "$UMBRA" client --link-file - --socks "127.0.0.1:$socks" --http "127.0.0.1:$(tl_free_port)" \
    --events "$EVENTS" --control off
PID=$BG_PID
if out=$(tl_wait_session 1 $((15 * TM))); then ok "stdin: session up"; else bad "stdin: session: $out"; fi
tl_stop "client (--link-file -)" "$PID" $((5 * TM))

# 4. A link file readable by others: a warning naming the file (still runs).
chmod 644 "$WORK/link.txt"
start_client loose --link-file "$WORK/link.txt"
grep -qF "$WORK/link.txt is readable by group or others" "$WORK/loose.log" &&
    ok "warning for a link file readable by others" || bad "no warning for a 0644 link file: $(head -3 "$WORK/loose.log")"
tl_stop "client (0644 link file)" "$PID" $((5 * TM))

tl_finish
