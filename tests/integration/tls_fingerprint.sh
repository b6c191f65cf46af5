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
[ -x "$TOOL" ] || tl_skip "$TOOL not built"
RUNS=3

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
    tl_tshark_hello "${live[0]}"
    expect_eq "$name: tshark dissects the browser's hello cleanly (control)" $? 0
    for i in "${built[@]}"; do
        tl_tshark_hello "$i"
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
tl_tshark_hello "$WORK/ctl.bin"
expect_eq "control: tshark reports a broken hello as malformed" $? 1

tl_chromium >/dev/null
if [ -z "$CHROME" ]; then
    echo "# SKIP chromium: not installed (scripts/deps.sh)"
else
    caps=()
    for i in $(seq 1 $RUNS); do
        f=$(tl_capture_chromium "chromium$i") && caps+=("$f")
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
        f=$(tl_capture_firefox "firefox$i") && caps+=("$f")
    done
    if [ ${#caps[@]} = $RUNS ]; then
        FIXTURE=firefox-153-a.bin check firefox firefox "${caps[@]}"
    else
        echo "# SKIP firefox: captured ${#caps[@]} of $RUNS hellos (headless Firefox could not run here; see $WORK/firefox*.browser.log)"
    fi
fi
tl_finish
