#!/usr/bin/env bash
# Installs the Debian packages that bench/peers.sh measures umbra against,
# by name, only when missing. Idempotent: a second run installs nothing.
#   scripts/bench-deps.sh            install what is missing
#   scripts/bench-deps.sh --check    exit 1 (and list them) when something is missing
set -euo pipefail

# shadowsocks-libev: ss-server + ss-local        openssh-*: sshd and ssh -D
# microsocks: plain SOCKS5 (no crypto)           nginx-light: the origin
# curl: the client for bulk transfers            procps/time: ps, /usr/bin/time
# python3: Debian's, for the SOCKS5 load helper (bench/peers_load.py)
PKGS="shadowsocks-libev openssh-server openssh-client microsocks nginx-light curl
      procps time python3"

missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -gt 0 ]; then echo "missing: ${missing[*]}"; exit 1; fi
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench-deps: all benchmark peers present"
  exit 0
fi

echo "bench-deps: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "bench-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# The packages' own services must not start (and take ports 22/8388) on install;
# the benchmark starts its own instances on loopback with its own configs.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f "$policy"; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bench-deps: done"
