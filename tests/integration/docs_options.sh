#!/usr/bin/env bash
# Every command-line option and config key is documented: scripts/check_docs.py
# reads the option list from the CLI parser's sources (src/app/main.c, cli.c,
# cmd_*.c) and the key list from the config parser's (src/app/config*.c), and
# checks each against 'umbra help', docs/CONFIG.md and the generated man pages
# umbra(1) and umbra.conf(5) (rendered with man -l). Then the check itself is
# checked: an option added to a copy of the sources without help text, a key
# without a CONFIG.md row, a CONFIG.md row taken away, and a repeatable key
# whose row no longer says so must each fail it.
# No network is used.
set -u
SRC=${UMBRA_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${UMBRA_BUILD:-$SRC/build}
U=${UMBRA:-$BUILD/umbra}
MAN1=$BUILD/man/umbra.1
MAN5=$BUILD/man/umbra.conf.5
CHECK=$SRC/scripts/check_docs.py
skip() { echo "SKIP: $*"; exit 77; }
[ -x "$U" ] || skip "umbra binary '$U' not built"
command -v python3 >/dev/null || skip "python3 not installed (scripts/deps.sh)"
command -v man >/dev/null || skip "man not installed (man-db, scripts/deps.sh)"
command -v groff >/dev/null || skip "groff not installed (groff-base, scripts/deps.sh)"
[ -f "$MAN1" ] && [ -f "$MAN5" ] || skip "man pages not generated in $BUILD/man (the 'man' target)"
T=$(mktemp -d /tmp/umbra-docs.XXXXXX); trap 'rm -rf "$T"' EXIT
fails=0; n=0
ok()  { n=$((n+1)); echo "ok   $*"; }
bad() { n=$((n+1)); fails=$((fails+1)); echo "FAIL $*"; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0

# 1. The real sources: everything documented.
if python3 "$CHECK" --src "$SRC" --umbra "$U" --man1 "$MAN1" --man5 "$MAN5" >"$T/out" 2>&1; then
  ok "every option and key is documented ($(tail -1 "$T/out"))"
else
  bad "undocumented options or keys (document them in the usage text and docs/CONFIG.md):"
  cat "$T/out"
fi

# 2. man -l renders both pages without a groff warning.
for p in "$MAN1" "$MAN5"; do
  LC_ALL=C MANWIDTH=80 man --warnings -l "$p" >"$T/page" 2>"$T/warn"; rc=$?
  if [ $rc = 0 ] && [ ! -s "$T/warn" ] && [ "$(wc -l <"$T/page")" -gt 20 ]; then
    ok "man -l $(basename "$p") renders ($(wc -l <"$T/page") lines)"
  else
    bad "man -l $(basename "$p"): exit $rc, warnings: $(head -5 "$T/warn")"
  fi
done
LC_ALL=C MANWIDTH=80 man -l "$MAN1" | grep -q '^COMMANDS' && ok "umbra(1) has COMMANDS" || bad "umbra(1) lacks COMMANDS"
LC_ALL=C MANWIDTH=80 man -l "$MAN5" | grep -q 'private-key-file' && ok "umbra.conf(5) has private-key-file" \
  || bad "umbra.conf(5) lacks private-key-file"

# 3. The check fails when something is undocumented. A copy of the sources
#    the check reads (src/app, docs/CONFIG.md) is changed for each case.
mkcopy() {
  rm -rf "$T/src"; mkdir -p "$T/src/src/app" "$T/src/docs"
  cp "$SRC"/src/app/*.c "$T/src/src/app/"; cp "$SRC/docs/CONFIG.md" "$T/src/docs/"
}
# expect_missing DESCRIPTION PATTERN: the check on $T/src fails, naming PATTERN.
expect_missing() {
  python3 "$CHECK" --src "$T/src" --umbra "$U" --man1 "$MAN1" --man5 "$MAN5" >"$T/out" 2>&1; rc=$?
  if [ $rc = 1 ] && grep -q -- "$2" "$T/out"; then
    ok "$1: the check fails: $(grep -m1 -- "$2" "$T/out")"
  else
    bad "$1: exit $rc (wanted 1 naming '$2'): $(cat "$T/out")"
  fi
}
mkcopy
python3 "$CHECK" --src "$T/src" --umbra "$U" --man1 "$MAN1" --man5 "$MAN5" >/dev/null 2>&1 \
  && ok "the unchanged copy passes" || bad "the unchanged copy fails"

mkcopy
sed -i 's/{"upstream", required_argument, NULL, .U.},/&\n        {"zz-undocumented", no_argument, NULL, 1},/' "$T/src/src/app/cmd_client.c"
grep -q zz-undocumented "$T/src/src/app/cmd_client.c" || bad "could not add an option to the copy of cmd_client.c"
expect_missing "an option without help" "option --zz-undocumented (cmd_client.c) is not in umbra help client"

mkcopy
printf 'static bool zz(const char *name) { return key_is(name, "zz-undocumented-key"); }\n' \
  >>"$T/src/src/app/config.c"
grep -q zz-undocumented-key "$T/src/src/app/config.c" || bad "could not add a key to the copy of config.c"
expect_missing "a key without a CONFIG.md row" "key zz-undocumented-key (config.c) is not in a key table"

mkcopy
sed -i '/^| `tun-mtu` |/d' "$T/src/docs/CONFIG.md"
expect_missing "a CONFIG.md row taken away" "key tun-mtu (config.c) is not in a key table"

mkcopy
sed -i '/^| `forward` |/s/, \*repeatable\*//' "$T/src/docs/CONFIG.md"
expect_missing "a repeatable key not marked so" "key forward (config.c) is repeatable but its row"

echo "$((n-fails)) passed, $fails failed"
[ $fails = 0 ]
