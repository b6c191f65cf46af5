#!/usr/bin/env bash
# The seed corpus of fuzz/fuzz_session_preauth.c stays what its names say:
# every committed auth-* seed is a real first flight that the pre-auth core
# (with the fuzz fixture's gate, codecs and fixed clock) establishes, and no
# other seed gets in. The generator (tests/integration/preauth_seeds.c) makes
# a fresh corpus that passes the same check, so the corpus can be remade
# after a wire change (fuzz/corpus/fuzz_session_preauth/README.md).
set -u
TL_NO_UMBRA=1
. "$(dirname "$0")/lib.sh"
TL_NETNS=0
tl_init preauth_seeds
GEN=$BUILD/tests/preauth_seeds
[ -x "$GEN" ] || tl_skip "$GEN not built"
CORPUS=$SRC/fuzz/corpus/fuzz_session_preauth

if out=$("$GEN" check "$CORPUS" 2>&1); then ok "committed seeds: $out"; else bad "committed seeds: $out"; fi
n_auth=$(ls "$CORPUS" | grep -c '^auth-')
[ "$n_auth" -ge 14 ] && ok "$n_auth authenticated seeds" || bad "only $n_auth authenticated seeds"
for s in tcp-none tcp-printable tcp-http tcp-tls tls-chromium tls-firefox; do
    ls "$CORPUS" | grep -q "^auth-$s-" && ok "an authenticated $s seed" || bad "no authenticated $s seed"
done

mkdir -p "$WORK/fresh"
if out=$("$GEN" gen "$WORK/fresh" "$SRC/tests/data/tls" 2>&1); then ok "generator: fresh corpus"; else bad "generator: $out"; fi
if out=$("$GEN" check "$WORK/fresh" 2>&1); then ok "fresh seeds: $out"; else bad "fresh seeds: $out"; fi
tl_finish
