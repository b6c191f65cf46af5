#!/usr/bin/env bash
# Installs the Debian packages umbra needs, by name, only when missing.
# Idempotent: a second run installs nothing and says so.
#   scripts/deps.sh              build + test dependencies
#   scripts/deps.sh --bench      the peers bench/peers.sh measures umbra against
#   scripts/deps.sh --check ...  exit 1 (and list them) when something is missing
set -euo pipefail

# libcurl4-openssl-dev: the client fetches signed server lists from list-url
# (http/https) with libcurl. libjansson-dev: the server's management socket
# speaks JSON.
# libsystemd0: sd_notify readiness under systemd, opened at run time
# (src/app/notify.c: only a process started by systemd maps it);
# python3 generates the man pages from 'umbra help' and docs/CONFIG.md.
BUILD="cmake make gcc pkg-config libuv1-dev libsodium-dev libssl-dev libinih-dev
       libqrencode-dev libc-ares-dev libcurl4-openssl-dev libsystemd0 python3
       libjansson-dev"
# libmaxminddb-dev: routing rules read MaxMind .mmdb GeoIP files (geoip-file).
BUILD="$BUILD libmaxminddb-dev"
# libwslay-dev: RFC 6455 framing of the ws transport.
BUILD="$BUILD libwslay-dev"
# libldns-dev: the dns transport builds and parses DNS messages with ldns.
BUILD="$BUILD libldns-dev"
# Tests: cmocka; clang + libFuzzer runtime (make fuzz); real programs for the
# integration tests (curl, nginx, chromium and firefox-esr whose ClientHellos
# the tls transport copies, iperf3, Debian's python3 with dissononce as a Noise
# peer, tshark to dissect built ClientHellos); the openssl command (make demo:
# the certificate of its nginx cover site, s_client as the prober);
# valgrind; network namespaces (iproute2, util-linux's unshare); nftables for
# the middlebox of the rotation tests (a router that freezes TCP connections);
# systemd for systemd-analyze verify of dist/systemd/, man-db and groff-base
# for man -l of the man pages; python3-prometheus-client parses the metrics
# endpoint's exposition.
TEST="libcmocka-dev clang libclang-rt-14-dev curl nginx-light openssl python3 python3-dissononce
      chromium firefox-esr tshark valgrind util-linux iperf3 iproute2 procps
      nftables microsocks systemd man-db groff-base python3-prometheus-client"
# unbound: the recursive resolver of the dns transport's integration test.
TEST="$TEST unbound"
# Benchmark peers: shadowsocks-libev, sshd + ssh -D, microsocks, and time.
# v2ray: the VMess column of bench/peers.sh and bench/delay.sh; iproute2 (ip,
# tc) for the delayed path of bench/delay.sh.
BENCH="shadowsocks-libev openssh-server openssh-client microsocks nginx-light curl procps time
       python3 v2ray iproute2"
# iodine: the DNS tunnel bench/dns.sh measures the dns transport against.
BENCH="$BENCH iodine unbound"

check=0
want="$BUILD $TEST"
for a in "$@"; do
  case "$a" in
  --check) check=1 ;;
  --bench) want="$BENCH" ;;
  *) echo "usage: scripts/deps.sh [--check] [--bench]" >&2; exit 2 ;;
  esac
done

missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ $check = 1 ]; then
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
# Packaged services (nginx, sshd, ss-server) must not start on install and
# take ports: tests and benchmarks run their own instances on loopback.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
