#!/usr/bin/python3
"""Writes a v2ray (4.x) JSON config for the benches, to stdout.

  v2ray_conf.py server HOST PORT UUID
      VMess inbound on HOST:PORT for one user UUID (alterId 0: AEAD headers),
      freedom outbound.
  v2ray_conf.py client SERVER PORT UUID SOCKS_HOST SOCKS_PORT
      SOCKS5 inbound (no auth, TCP only) on SOCKS_HOST:SOCKS_PORT, VMess
      outbound to SERVER:PORT with chacha20-poly1305 (the cipher of umbra's
      records and of the shadowsocks-libev column).

Addresses are whatever the bench gives (loopback or its namespaces); no
routing rules, so no geoip files are read.
"""
import json
import sys


def main(argv):
    if len(argv) >= 5 and argv[1] == "server":
        host, port, uuid = argv[2], int(argv[3]), argv[4]
        conf = {
            "log": {"loglevel": "warning"},
            "inbounds": [{
                "listen": host, "port": port, "protocol": "vmess",
                "settings": {"clients": [{"id": uuid, "alterId": 0}]},
            }],
            "outbounds": [{"protocol": "freedom", "settings": {}}],
        }
    elif len(argv) >= 7 and argv[1] == "client":
        srv, port, uuid, shost, sport = argv[2], int(argv[3]), argv[4], argv[5], int(argv[6])
        conf = {
            "log": {"loglevel": "warning"},
            "inbounds": [{
                "listen": shost, "port": sport, "protocol": "socks",
                "settings": {"auth": "noauth", "udp": False},
            }],
            "outbounds": [{
                "protocol": "vmess",
                "settings": {"vnext": [{
                    "address": srv, "port": port,
                    "users": [{"id": uuid, "alterId": 0, "security": "chacha20-poly1305"}],
                }]},
            }],
        }
    else:
        sys.stderr.write(__doc__)
        return 2
    json.dump(conf, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
