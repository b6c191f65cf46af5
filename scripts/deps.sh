#!/usr/bin/env bash
# Installs the Debian packages umbra needs, by name, only when missing.
# Idempotent: a second run installs nothing and says so.
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --check    exit 1 (and list them) when something is missing
set -euo pipefail

BUILD="cmake make gcc pkg-config libuv1-dev libsodium-dev libssl-dev libinih-dev
       libqrencode-dev libc-ares-dev"
TEST="libcmocka-dev clang libclang-rt-14-dev curl nginx-light python3 python3-dissononce
      chromium valgrind util-linux
      iproute2 procps iperf3"

want="$BUILD $TEST"
missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -gt 0 ]; then echo "missing: ${missing[*]}"; exit 1; fi
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all required Debian packages present"
  exit 0
fi

echo "deps: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
