#!/usr/bin/env bash
# umbra's ClientHello against the live browsers'. Headless Chromium and
# headless Firefox ESR connect to tls_capture.py (a listener on 127.0.0.1 that
# records the raw ClientHello and closes); tests/tls_hello_tool builds
# umbra's hellos (fingerprint chromium / firefox) and computes JA4 with
# umbra's parser. Checks, per browser:
#   - umbra's hellos have the live browser's JA4 (and the committed
#     captures' JA4: a browser update shows up here first);
#   - the extension order differs between connections where the browser's
#     does (Chromium) and equals the browser's where it is fixed (Firefox);
#   - tshark (its pcap made by text2pcap) dissects umbra's hello as a Client
#     Hello with no Malformed/expert error, as it does the browser's; a
#     control hello with one broken length must be reported malformed.
#
#   chromium / firefox-esr --https://example.com--> tls_capture.py 127.0.0.1:P  (name mapped to loopback)
#   tls_hello_tool build --> hello.bin --text2pcap--> tshark -V
set -u
. "$(dirname "$0")/lib.sh"
tl_netns "$0" "$@"
TL_NO_UMBRA=1 tl_init tls_fingerprint
TOOL=$BUILD/tests/tls_hello_tool
CAP=$SRC/tests/integration/tls_capture.py
[ -x "$TOOL" ] || tl_skip "$TOOL not built"
RUNS=3

# capture_one PREFIX CMD...: runs CMD (with PORT substituted for @PORT@) until
# the listener has one hello, then stops it; prints the hello's file.
capture_one() {
    local prefix=$1 log=$WORK/$1.cap.log
    shift
    : >"$log"
    "$PY" "$CAP" --out "$WORK/cap" --count 1 --timeout $((30 * TM)) --prefix "$prefix" >"$log" 2>&1 &
    local cpid=$!
    TL_PIDS+=("$cpid")
    tl_wait_file "$log" 10 || { kill "$cpid" 2>/dev/null; return 1; }
    local port
    port=$(awk '/^port/ { print $2 }' "$log")
    local args=() a
    for a in "$@"; do args+=("${a//@PORT@/$port}"); done
    timeout -k 2 $((25 * TM)) "${args[@]}" >"$WORK/$prefix.browser.log" 2>&1 &
    local bpid=$!
    wait "$cpid"
    local rc=$?
    kill "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    [ $rc = 0 ] || return 1
    echo "$WORK/cap/$prefix-00.bin"
}

# dissect FILE: 0 when tshark sees a Client Hello and no malformed/expert error.
dissect() {
    od -Ax -tx1 -v "$1" >"$1.txt"
    text2pcap -q -T 50000,443 "$1.txt" "$1.pcap" >/dev/null 2>&1 || return 2
    tshark -r "$1.pcap" -d tcp.port==443,tls -V >"$1.tshark" 2>&1 || return 2
    grep -q "Handshake Type: Client Hello (1)" "$1.tshark" || return 1
    ! grep -qiE "Malformed|Expert Info \((Error|Warning)" "$1.tshark"
}

# FIXTURE=F check BROWSER FP CAPTURES...: JA4 (also against tests/data/tls/F),
# order and tshark checks.
check() {
    local name=$1 fp=$2
    shift 2
    local live=("$@") i
    local want
    want=$("$TOOL" ja4 "${live[0]}")
    for i in "${live[@]}"; do expect_eq "$name: live hello $(basename "$i") has one JA4" "$("$TOOL" ja4 "$i")" "$want"; done
    echo "# $name JA4 $want"
    local committed
    committed=$("$TOOL" ja4 "$SRC/tests/data/tls/$FIXTURE")
    expect_eq "$name: the committed capture has the live browser's JA4" "$committed" "$want"
    local built=()
    for i in $(seq 1 $RUNS); do
        "$TOOL" build "$fp" example.com "$WORK/umbra-$fp-$i.bin" || { bad "$name: build failed"; return; }
        built+=("$WORK/umbra-$fp-$i.bin")
        expect_eq "$name: umbra's hello $i has the browser's JA4" "$("$TOOL" ja4 "$WORK/umbra-$fp-$i.bin")" "$want"
    done
    # Extension order: pairwise distinct (shuffling browser) or all equal.
    local lo bo
    lo=$(for i in "${live[@]}"; do "$TOOL" order "$i"; done | sort -u | wc -l)
    bo=$(for i in "${built[@]}"; do "$TOOL" order "$i"; done | sort -u | wc -l)
    echo "# $name: ${#live[@]} live hellos in $lo orders, ${#built[@]} of umbra's in $bo"
    if [ "$lo" = 1 ]; then
        expect_eq "$name: umbra keeps the browser's one extension order" \
            "$( (for i in "${live[0]}" "${built[@]}"; do "$TOOL" order "$i"; done) | sort -u | wc -l)" 1
    else
        expect_eq "$name: the browser's order varies per connection, and umbra's does" "$bo" "${#built[@]}"
    fi
    dissect "${live[0]}"
    expect_eq "$name: tshark dissects the browser's hello cleanly (control)" $? 0
    for i in "${built[@]}"; do
        dissect "$i"
        local rc=$?
        expect_eq "$name: tshark dissects umbra's $(basename "$i") as a Client Hello without errors" $rc 0
        [ $rc = 0 ] || grep -iE -m3 "Malformed|Expert Info" "$i.tshark"
    done
}

tl_need tshark text2pcap
mkdir -p "$WORK/cap"

# Control: the dissect check catches a broken hello (Chromium's last
# extension, GREASE with one byte, claiming three).
"$TOOL" build chromium example.com "$WORK/ctl.bin" || bad "control build"
"$PY" - "$WORK/ctl.bin" <<'PYEOF'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
b[-3:-1] = (3).to_bytes(2, 'big')
open(p, 'wb').write(b)
PYEOF
dissect "$WORK/ctl.bin"
expect_eq "control: tshark reports a broken hello as malformed" $? 1

CHROME=""
for c in chromium chromium-browser; do command -v "$c" >/dev/null 2>&1 && { CHROME=$c; break; }; done
if [ -z "$CHROME" ]; then
    echo "# SKIP chromium: not installed (scripts/deps.sh)"
else
    caps=()
    for i in $(seq 1 $RUNS); do
        d=$(mktemp -d "$WORK/chr.XXXX")
        f=$(capture_one "chromium$i" "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic \
            --no-first-run --disable-background-networking --disable-component-update --disable-sync \
            --user-data-dir="$d" "--host-resolver-rules=MAP example.com 127.0.0.1:@PORT@" \
            --dump-dom https://example.com/) && caps+=("$f")
    done
    if [ ${#caps[@]} = $RUNS ]; then
        FIXTURE=chromium-156-a.bin check chromium chromium "${caps[@]}"
    else
        bad "chromium: captured ${#caps[@]} of $RUNS hellos (see $WORK/chromium*.browser.log)"
    fi
fi

if ! command -v firefox-esr >/dev/null 2>&1; then
    echo "# SKIP firefox: firefox-esr not installed (scripts/deps.sh)"
else
    caps=()
    for i in $(seq 1 $RUNS); do
        d=$(mktemp -d "$WORK/ff.XXXX")
        # Name to loopback without DNS, and no background traffic.
        cat >"$d/user.js" <<'JSEOF'
user_pref("network.dns.localDomains", "example.com");
user_pref("network.trr.mode", 5);
user_pref("network.http.http3.enable", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("captivedetect.canonicalURL", "");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.server", "");
user_pref("extensions.update.enabled", false);
user_pref("extensions.blocklist.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.systemAddon.update.enabled", false);
user_pref("browser.search.update", false);
user_pref("browser.region.update.enabled", false);
user_pref("browser.region.network.url", "");
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("media.gmp-manager.url", "");
user_pref("network.prefetch-next", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.predictor.enabled", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("security.remote_settings.crlite_filters.enabled", false);
user_pref("security.remote_settings.intermediates.enabled", false);
JSEOF
        f=$(HOME=$d capture_one "firefox$i" firefox-esr --headless --no-remote --profile "$d" \
            "https://example.com:@PORT@/") && caps+=("$f")
    done
    if [ ${#caps[@]} = $RUNS ]; then
        FIXTURE=firefox-153-a.bin check firefox firefox "${caps[@]}"
    else
        echo "# SKIP firefox: captured ${#caps[@]} of $RUNS hellos (headless Firefox could not run here; see $WORK/firefox*.browser.log)"
    fi
fi
tl_finish
