#!/usr/bin/env bash
# Signed server lists (docs/PROTOCOL.md section 9), with real programs in a
# private network namespace (only lo):
#
#   client ──tcp──► alpha 127.0.0.1:PA   server-list = v2 (names gamma)
#      │    ──tcp──► beta  127.0.0.1:PB   server-list = v2
#      │    ──tcp──► gamma 127.0.0.1:PC   no server-list (learned from the list)
#      └──http (libcurl)──► nginx 127.0.0.1:NGINX_PORT /servers.list
#
# 1. A client that knows alpha and beta (with the operator key) fetches the
#    list through the tunnel and learns gamma; the list is kept (0600).
# 2. alpha and beta are blocked (nftables drops their packets, in this
#    namespace's output hook): the client moves to gamma and carries traffic;
#    gamma (no server-list) refuses list.umbra.internal:1.
# 3. Another client, alpha and beta still blocked, learns gamma from nginx
#    (list-url) alone, and uses it.
# 4. A list with one flipped byte, an expired list and an older version, each
#    served by nginx to a restarted client: each is refused with its reason in
#    a list_refused event, and the kept list does not change.
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
tl_init server_list
tl_need_umbra "signed server lists"
tl_need nginx curl nft
[ "$TL_NETNS" = 1 ] || tl_skip "needs a private network namespace (nftables rules)"

U=$UMBRA
b64url_to_std() { "$PY" -c 'import base64,sys; s=sys.argv[1]; print(base64.b64encode(base64.urlsafe_b64decode(s+"="*(-len(s)%4))).decode())' "$1"; }
std_to_b64url() { "$PY" -c 'import base64,sys; print(base64.urlsafe_b64encode(base64.b64decode(sys.argv[1])).decode().rstrip("="))' "$1"; }
server_pub() { grep '^private-key' "$1" | sed 's/^private-key = //' | "$U" pubkey; }
# wait_line FILE REGEX SECS: until a line of FILE matches
wait_line() {
    local end=$(($(tl_now_ms) + $3 * 1000))
    while [ "$(tl_now_ms)" -lt $end ]; do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- the operator's key and lists
(umask 077 && "$U" genkey --sign >"$WORK/op.key")
OP=$("$U" pubkey --sign <"$WORK/op.key")
expect_eq "operator key is 43 characters base64url" "$(printf %s "$OP" | tr -d 'A-Za-z0-9_-' | wc -c)/${#OP}" "0/43"

# ---- three servers that know one client key
tl_server_init "$WORK/alpha.conf" laptop
PA=$SPORT
CK=$(printf %s "$LINK" | sed 's/.*[?&]k=\([^&#]*\).*/\1/')
CPRIV=$(b64url_to_std "$CK")
CPUB=$(printf %s "$CPRIV" | "$U" pubkey)
PB=$(tl_free_port)
PC=$(tl_free_port)
"$U" server init -c "$WORK/beta.conf" --listen "127.0.0.1:$PB" >/dev/null 2>&1
"$U" server init -c "$WORK/gamma.conf" --listen "127.0.0.1:$PC" >/dev/null 2>&1
for s in beta gamma; do
    sed -i '/^\[server\]/a probe-delay-min = 200\nprobe-delay-max = 400' "$WORK/$s.conf"
    printf '\n[client "laptop"]\npublic-key = %s\n' "$CPUB" >>"$WORK/$s.conf"
done
PUB_A=$(server_pub "$WORK/alpha.conf")
PUB_B=$(server_pub "$WORK/beta.conf")
PUB_C=$(server_pub "$WORK/gamma.conf")

sign() { # VERSION EXPIRES OUT
    printf 'umbra-server-list 1\nversion %s\nexpires %s\nserver umbra://%s@127.0.0.1:%s#gamma\n' \
        "$1" "$2" "$(std_to_b64url "$PUB_C")" "$PC" >"$WORK/list.txt"
    "$U" list sign -k "$WORK/op.key" -o "$3" "$WORK/list.txt"
}
sign 2 2099-01-01T00:00:00Z "$WORK/v2.list" || bad "umbra list sign"
"$U" list show --key "$OP" "$WORK/v2.list" >"$WORK/show.out" 2>&1
grep -q '^signature:  good' "$WORK/show.out" && grep -q '^version:    2$' "$WORK/show.out" &&
    grep -q "gamma.*127.0.0.1:$PC" "$WORK/show.out" && ok "list show: version 2, gamma, good signature" ||
    bad "list show: $(cat "$WORK/show.out")"
chmod 644 "$WORK/op.key"
if "$U" list sign -k "$WORK/op.key" "$WORK/list.txt" >/dev/null 2>"$WORK/sign.err"; then
    bad "list sign accepted a signing key readable by others"
else
    grep -q 'readable by group or others' "$WORK/sign.err" && ok "list sign refuses a key file that is not 0600" ||
        bad "list sign: $(cat "$WORK/sign.err")"
fi
chmod 600 "$WORK/op.key"

for s in alpha beta; do
    sed -i "/^\[server\]/a server-list = $WORK/v2.list" "$WORK/$s.conf"
done
for s in alpha beta gamma; do
    tl_bg "$WORK/server-$s.log" "$U" server -c "$WORK/$s.conf" --allow 127.0.0.1/32
done
for p in $PA $PB $PC; do tl_wait_listen "$p" $((10 * TM)) || { bad "server on $p did not start"; tl_finish; }; done

tl_nginx
cp "$WORK/v2.list" "$WORK/www/servers.list"
URL="http://127.0.0.1:$NGINX_PORT/servers.list"

# client_conf NAME [list-url]: alpha and beta with the operator key
client_conf() {
    local f=$WORK/$1.conf
    SOCKS=$(tl_free_port)
    EVENTS=$WORK/$1.events
    (
        umask 077
        exec >"$f"
        # fast-open off: the test checks the truthful SOCKS5 reply of a refused stream
        printf '[client]\nprivate-key = %s\nsocks = 127.0.0.1:%s\nevents = %s\ncontrol = off\nkeepalive = 2\nfast-open = off\n' \
            "$CPRIV" "$SOCKS" "$EVENTS"
        for s in alpha:$PA:$PUB_A beta:$PB:$PUB_B; do
            IFS=: read -r n p k <<<"$s"
            printf '\n[server "%s"]\naddress = 127.0.0.1:%s\npublic-key = %s\noperator-key = %s\n' "$n" "$p" "$k" "$OP"
            [ -n "${2:-}" ] && printf 'list-url = %s\n' "$2"
        done
    )
}
client_run() { # NAME STATE-DIR
    : >"$WORK/$1.events"
    XDG_STATE_HOME=$2 tl_bg "$WORK/client-$1.log" "$U" client -c "$WORK/$1.conf"
    CLIENT_PID=$BG_PID
    tl_wait_listen "$SOCKS" $((10 * TM)) "$CLIENT_PID" || bad "client $1 did not start"
}
KEPT=list-$("$PY" -c 'import base64,sys; s=sys.argv[1]; print(base64.urlsafe_b64decode(s+"=").hex()[:16])' "$OP")

# ---- 1. through the tunnel
client_conf one
client_run one "$WORK/state1"
if wait_line "$EVENTS" '"event":"list_accepted","source":"tunnel","version":2,"servers":1,"expires":"2099-01-01T00:00:00Z","added":1' $((20 * TM)); then
    ok "through the tunnel: list version 2 accepted, gamma added"
else
    bad "no list_accepted from the tunnel: $(grep list_ "$EVENTS")"
fi
grep -q '"event":"session_up","server":"alpha"' "$EVENTS" && ok "the session is up to alpha" || bad "session_up: $(grep session_up "$EVENTS")"
if [ -f "$WORK/state1/umbra/$KEPT" ]; then
    expect_eq "kept list is mode 600" "$(stat -c %a "$WORK/state1/umbra/$KEPT")" 600
    expect_eq "kept list is the served one" "$(tl_sha "$WORK/state1/umbra/$KEPT")" "$(tl_sha "$WORK/v2.list")"
else
    bad "no kept list $WORK/state1/umbra/$KEPT"
fi
# ---- 2. alpha and beta blocked: gamma
nft add table inet slist &&
    nft add chain inet slist out '{ type filter hook output priority 0; policy accept; }' &&
    nft add rule inet slist out tcp dport "{ $PA, $PB }" drop || bad "nft rules"
ok "alpha ($PA) and beta ($PB) blocked: nftables drops their packets"
t0=$(tl_now_ms)
curl -s --max-time 3 --socks5-hostname "127.0.0.1:$SOCKS" "http://127.0.0.1:$NGINX_PORT/small" >/dev/null 2>&1
if wait_line "$EVENTS" '"event":"session_up","server":"gamma"' $((90 * TM)); then
    ok "client moved to gamma (learned from the list) in $(($(tl_now_ms) - t0)) ms"
else
    bad "no session to gamma: $(grep -E 'session|error' "$EVENTS" | tail -n 5)"
fi
got=$(curl -s --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$SOCKS" "http://127.0.0.1:$NGINX_PORT/small")
expect_eq "traffic through gamma" "$got" "small-ok"
expect_eq "gamma has no server-list: list.umbra.internal:1 refused (SOCKS5 reply 5)" \
    "$("$PY" "$HELPER" socks-code "$SOCKS" list.umbra.internal 1 2>&1)" 5
tl_stop "client one" "$CLIENT_PID" $((5 * TM))

# ---- 3. from nginx (list-url), alpha and beta still blocked: only nginx can
# tell this client about gamma
client_conf two "$URL"
client_run two "$WORK/state2"
if wait_line "$EVENTS" "\"event\":\"list_accepted\",\"source\":\"$URL\",\"version\":2,\"servers\":1,.*\"added\":1" $((20 * TM)); then
    ok "from nginx: list version 2 accepted, gamma added"
else
    bad "no list_accepted from $URL: $(grep list_ "$EVENTS")"
fi
grep -q 'GET /servers.list HTTP/1.1 200' "$WORK/nginx.access" && ok "nginx served the list" || bad "nginx access log: $(cat "$WORK/nginx.access")"
t0=$(tl_now_ms)
if wait_line "$EVENTS" '"event":"session_up","server":"gamma"' $((90 * TM)); then
    ok "client two uses gamma after alpha and beta fail ($(($(tl_now_ms) - t0)) ms)"
else
    bad "client two: no session to gamma: $(grep -E 'session|error' "$EVENTS" | tail -n 5)"
fi
got=$(curl -s --max-time $((10 * TM)) --socks5-hostname "127.0.0.1:$SOCKS" "http://127.0.0.1:$NGINX_PORT/small")
expect_eq "client two: traffic through gamma" "$got" "small-ok"
tl_stop "client two" "$CLIENT_PID" $((5 * TM))
nft delete table inet slist

# ---- 4. refused lists, from nginx, to a client that keeps version 2
KEPT_SHA=$(tl_sha "$WORK/state2/umbra/$KEPT")
refused() { # WHAT REASON
    client_run two "$WORK/state2"
    if wait_line "$EVENTS" "\"event\":\"list_refused\",\"source\":\"$URL\",\"reason\":\"$2\"" $((20 * TM)); then
        ok "$1: refused with reason '$2' ($(grep -o '"detail":"[^"]*"' "$EVENTS" | head -n 1))"
    else
        bad "$1: no list_refused '$2': $(grep list_ "$EVENTS")"
    fi
    grep -q '"event":"list_accepted","source":"state","version":2' "$EVENTS" || bad "$1: the kept list was not loaded"
    grep -q "\"event\":\"list_accepted\",\"source\":\"$URL\"" "$EVENTS" && bad "$1: accepted from $URL"
    tl_stop "client ($1)" "$CLIENT_PID" $((5 * TM))
    expect_eq "$1: the kept list did not change" "$(tl_sha "$WORK/state2/umbra/$KEPT")" "$KEPT_SHA"
}
# One byte of gamma's name flipped ('a' ^ 0x02 = 'c'): still a well-formed list.
"$PY" -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"#gamma") + 5
b[i] ^= 0x02
open(sys.argv[2], "wb").write(b)' "$WORK/v2.list" "$WORK/www/servers.list"
refused "one flipped byte" "bad signature"
sign 3 2020-01-01T00:00:00Z "$WORK/www/servers.list"
refused "expired list" "expired"
sign 1 2099-01-01T00:00:00Z "$WORK/www/servers.list"
refused "older version" "older version"
# libcurl is opened with dlopen on the first list-url fetch: where it cannot
# be loaded, the fetch is refused with that reason and the kept list stays in
# use. Needs root: an empty file is bound over the library in a private mount
# namespace (tl_hide_lib).
if tl_hide_lib libcurl.so.4; then
    U_REAL=$U
    U=$WORK/umbra-without-libcurl
    printf '#!/bin/sh\nexec' >"$U"
    printf " '%s'" "${HIDE_LIB[@]}" "$U_REAL" >>"$U"
    printf ' "$@"\n' >>"$U"
    chmod 755 "$U"
    refused "libcurl missing" "fetch failed: libcurl cannot be loaded"
    grep -q 'cannot load libcurl (list-url fetches need it): .*file too short' "$WORK/client-two.log" &&
        ok "libcurl missing: the log says why" || bad "libcurl missing: no warning: $(grep -i curl "$WORK/client-two.log")"
    U=$U_REAL
else
    echo "# skip libcurl missing: needs root (a private mount namespace) and libcurl.so.4"
fi

for s in alpha beta gamma; do
    grep -q 'serving server list version 2' "$WORK/server-$s.log" && [ $s = gamma ] && bad "gamma serves a list"
done
grep -q 'serving server list version 2' "$WORK/server-alpha.log" && ok "alpha logs the list it serves" || bad "alpha did not log its list"
tl_finish
