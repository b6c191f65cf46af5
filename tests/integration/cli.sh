#!/usr/bin/env bash
# The umbra command line as a user meets it: keys, server config management,
# links, config errors and exit codes (0 ok, 1 usage, 2 configuration,
# 3 runtime). No network is used.
set -u
U=${UMBRA:?path of the umbra binary}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T"
fails=0; n=0
ok()   { n=$((n+1)); echo "ok   $*"; }
bad()  { n=$((n+1)); fails=$((fails+1)); echo "FAIL $*"; }
# expect CODE DESCRIPTION -- command...   (stderr kept in $T/err, stdout in $T/out)
expect() {
  local code=$1 desc=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$code" ]; then ok "$desc"; else bad "$desc: exit $rc, wanted $code; stderr: $(cat "$T/err")"; fi
}
has() { grep -qF -- "$2" "$T/$1" && ok "  $1 has '$2'" || bad "  $1 lacks '$2': $(cat "$T/$1")"; }

# genkey | pubkey
expect 0 "genkey" -- "$U" genkey
priv=$(cat out)
[[ $priv =~ ^[A-Za-z0-9+/]{43}=$ ]] && ok "genkey prints 44 base64 chars" || bad "genkey output '$priv'"
pub=$(printf '%s\n' "$priv" | "$U" pubkey) && ok "pubkey" || bad "pubkey failed"
[[ $pub =~ ^[A-Za-z0-9+/]{43}=$ && $pub != "$priv" ]] && ok "pubkey prints a different key" || bad "pubkey '$pub'"
[ "$(printf '%s' "$priv" | "$U" pubkey)" = "$pub" ] && ok "pubkey is deterministic" || bad "pubkey differs"
# RFC 7748 6.1 test vector (Alice), as base64.
[ "$(echo dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= | "$U" pubkey)" = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=" ] \
  && ok "pubkey matches the RFC 7748 vector" || bad "pubkey RFC 7748 vector"
[ "$("$U" genkey)" != "$("$U" genkey)" ] && ok "genkey gives fresh keys" || bad "genkey repeats"
expect 2 "pubkey rejects garbage" -- sh -c "echo nonsense | '$U' pubkey"
has err "not a base64 X25519 private key"
expect 1 "genkey rejects arguments" -- "$U" genkey extra
(umask 022; "$U" genkey > loose.key 2>err) ; has err "readable by group or others"
(umask 077; "$U" genkey > tight.key 2>err) ; [ -s err ] && bad "warning for a 0600 file" || ok "no warning for a 0600 file"

# dispatch, help, version
expect 0 "version" -- "$U" version; has out "umbra "
expect 1 "no command" -- "$U"
expect 1 "unknown command" -- "$U" frobnicate; has err "unknown command 'frobnicate'"
for c in genkey pubkey server client link status version help; do
  expect 0 "help $c" -- "$U" help $c; has out "usage: umbra"
done
expect 0 "server --help" -- "$U" server --help; has out "add-client"
expect 1 "help of unknown" -- "$U" help nope

# server init / add-client
expect 0 "server init" -- "$U" server init -c s.conf --listen 127.0.0.1:4433
[ "$(stat -c %a s.conf)" = 600 ] && ok "config is mode 0600" || bad "mode $(stat -c %a s.conf)"
expect 2 "server init refuses to overwrite" -- "$U" server init -c s.conf --listen 127.0.0.1:1; has err "refusing to overwrite"
expect 1 "server init needs --listen" -- "$U" server init -c t.conf
expect 1 "server init rejects a bad --listen" -- "$U" server init -c t.conf --listen 1.2.3.4
expect 0 "server add-client" -- "$U" server add-client -c s.conf laptop
link=$(cat out)
[[ $link == umbra://*@127.0.0.1:4433\?k=*#laptop ]] && ok "add-client prints a link" || bad "link '$link'"
grep -q '\[client "laptop"\]' s.conf && ok "client section appended" || bad "no client section"
grep -qF "${link#*k=}" s.conf && bad "client private key stored in server config" || ok "client private key not stored"
expect 2 "add-client refuses a duplicate name" -- "$U" server add-client -c s.conf laptop; has err "exists already"
expect 1 "add-client rejects a bad name" -- "$U" server add-client -c s.conf 'a b'
expect 0 "server --check" -- "$U" server -c s.conf --check --allow 127.0.0.0/8; has out "1 authorised client(s), 1 egress allow rule(s)"
expect 1 "server --allow rejects bad CIDR" -- "$U" server -c s.conf --check --allow 300.1.1.1/8; has err "--allow '300.1.1.1/8'"
"$U" server init -c w.conf --listen 0.0.0.0:443 2>/dev/null
expect 2 "add-client needs public-host for a wildcard listen" -- "$U" server add-client -c w.conf x; has err "public-host"

# server init --transport tls: the [transport] section, sni defaults, errors
expect 0 "server init --transport tls" -- "$U" server init -c tls.conf --listen 127.0.0.1:4434 --transport tls --cover 127.0.0.1:8443 --sni example.com
grep -qx 'transport = tls' tls.conf && ok "  [server] names the tls transport" || bad "  no 'transport = tls': $(cat tls.conf)"
sed -n '/^\[transport "tls"\]$/,/^\[/p' tls.conf > tls.sec
for l in 'type = tls' 'cover = 127.0.0.1:8443' 'sni = example.com' 'fingerprint = chromium'; do
  grep -qxF "$l" tls.sec && ok "  [transport \"tls\"] has '$l'" || bad "  [transport \"tls\"] lacks '$l': $(cat tls.conf)"
done
[ "$(sed -n '/^\[server\]$/,/^\[/p' tls.conf | grep -c '^transport = tls$')" = 1 ] && ok "  transport = tls is under [server]" || bad "  transport = tls not under [server]"
expect 0 "tls server config --check" -- "$U" server -c tls.conf --check
expect 1 "server init: IP cover without --sni" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --transport tls --cover 127.0.0.1:8443
has err "--sni"; [ -e tls2.conf ] && bad "  wrote a file anyway" || ok "  no file written"
expect 1 "server init: --transport tls without --cover" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --transport tls; has err "--cover"
expect 1 "server init: bad --cover" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --transport tls --cover www.example.com; has err "--cover 'www.example.com'"
expect 1 "server init: bad --sni" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --transport tls --cover 127.0.0.1:1 --sni 'a_b.example'; has err "--sni 'a_b.example'"
expect 1 "server init: bad --fingerprint" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --transport tls --cover a.example:443 --fingerprint safari; has err "--fingerprint 'safari'"
expect 1 "server init: bad --transport" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --transport quic; has err "--transport 'quic'"
expect 1 "server init: --cover without --transport tls" -- "$U" server init -c tls2.conf --listen 127.0.0.1:1 --cover a.example:443; has err "--cover goes with --transport tls"
expect 0 "server init: a name cover gives the sni" -- "$U" server init -c tls3.conf --listen 127.0.0.1:4435 --transport tls --cover WWW.Example.org:443 --fingerprint firefox
grep -qx 'sni = www.example.org' tls3.conf && ok "  sni defaults to the cover's host" || bad "  sni: $(cat tls3.conf)"
grep -qx 'fingerprint = firefox' tls3.conf && ok "  fingerprint = firefox" || bad "  fingerprint: $(cat tls3.conf)"
grep -q '^\[transport' s.conf && bad "server init without --transport wrote a transport" || ok "server init without --transport writes no transport (tcp)"
expect 0 "add-client on a tls server" -- "$U" server add-client -c tls.conf laptop
tlink=$(cat out)
[[ $tlink == umbra://*@127.0.0.1:4434\?k=*'&t=tls&sni=example.com#laptop' ]] && ok "  link has t=tls&sni=example.com" || bad "  link '$tlink'"
[[ $tlink == *fp=* ]] && bad "  chromium written as fp=" || ok "  no fp= for chromium"
expect 0 "add-client on a firefox tls server" -- "$U" server add-client -c tls3.conf laptop
[[ $(cat out) == *'&t=tls&sni=www.example.org&fp=firefox#laptop' ]] && ok "  link has &fp=firefox" || bad "  link '$(cat out)'"
expect 0 "link shows a tls link" -- "$U" link "$tlink"
has out "transport:         tls (sni example.com, fingerprint chromium"
expect 0 "client --link (tls) --check" -- "$U" client --link "$tlink" --check; has out "valid client config: 1 server(s)"
(umask 077; printf '%s\n' "$tlink" > tls.link)
expect 0 "client --link-file (tls) --check" -- "$U" client --link-file tls.link --check
expect 2 "client rejects a tls link without sni" -- "$U" client --link "${tlink%%&t=tls*}&t=tls"; has err "t=tls needs parameter 'sni'"
expect 2 "client rejects shape on a tls link" -- "$U" client --link "${tlink%%#*}&shape=http"; has err "parameter 'shape' is for t=tcp only"
# Both ends run the tls transport (nothing answers at the cover address:
# the server says so and answers with its default cover profile).
expect 124 "tls server runs" -- timeout 3 "$U" server -c tls.conf; has err "listening on 127.0.0.1:4434 (tls transport)"; has err "no TLS 1.3 flight learned"
expect 124 "tls client runs" -- timeout 2 "$U" client --link-file tls.link --socks 127.0.0.1:19099; has err "socks5 proxy on 127.0.0.1:19099"
printf '[server]\nprivate-key-file = k.key\nlisten = 127.0.0.1:1\ntransport = t\n[transport "t"]\ntype = tls\ncover = 127.0.0.1:8443\nsni = not_dns\n' > bad.conf
expect 2 "config: sni not a DNS name" -- "$U" server -c bad.conf --check; has err "bad.conf:8: key 'sni': 'not_dns'"
printf '[server]\nprivate-key-file = k.key\nlisten = 127.0.0.1:1\ntransport = t\n[transport "t"]\ntype = tls\ncover = cover.example\n' > bad.conf
expect 2 "config: cover not host:port" -- "$U" server -c bad.conf --check; has err "bad.conf:7: key 'cover': 'cover.example'"

# link
expect 0 "link shows a link" -- "$U" link "$link"
has out "server address:    127.0.0.1:4433"; has out "(hidden"
grep -qF "${link#*k=}" out && bad "link printed the secret" || ok "link hides the secret"
spub=$(sed -n 's/^private-key = //p' s.conf | "$U" pubkey)
has out "server public key: $spub"
expect 0 "link --show-secret" -- "$U" link --show-secret "$link"; has out "client private key: "
expect 2 "link rejects a bad link" -- "$U" link "umbra://nope@x:1"; has err "bad link: at character 9"
expect 1 "link needs an argument" -- "$U" link

# client option validation
expect 0 "client --link --check" -- "$U" client --link "$link" --socks 127.0.0.1:1081 -L 2222:h.example:22 --check
has out "socks 127.0.0.1:1081"
expect 1 "client needs --link or -c" -- "$U" client
expect 1 "client rejects both --link and -c" -- "$U" client --link "$link" -c x.conf
expect 2 "client rejects a bad link" -- "$U" client --link "umbra://x"
# --link-file: a file, standard input, a warning for a loose file, errors
(umask 077; printf '%s\n' "$link" > tight.link)
expect 0 "client --link-file --check" -- "$U" client --link-file tight.link --check; has out "--link-file: valid client config: 1 server(s)"
[ -s err ] && bad "warning for a 0600 link file: $(cat err)" || ok "no warning for a 0600 link file"
expect 0 "client --link-file - --check" -- sh -c "printf '%s\n' '$link' | '$U' client --link-file - --check"; has out "valid client config: 1 server(s)"
cp tight.link loose.link; chmod 644 loose.link
expect 0 "client --link-file (0644) --check" -- "$U" client --link-file loose.link --check; has err "loose.link is readable by group or others"
expect 2 "client --link-file: missing file" -- "$U" client --link-file nope.link; has err "--link-file 'nope.link'"
: > empty.link
expect 2 "client --link-file: empty file" -- "$U" client --link-file empty.link; has err "empty"
printf 'umbra://x\n' > badl.link
expect 2 "client --link-file: bad link" -- "$U" client --link-file badl.link; has err "--link-file: bad link"
expect 1 "client rejects --link with --link-file" -- "$U" client --link "$link" --link-file tight.link
expect 2 "client rejects an over-long --link" -- "$U" client --link "umbra://$(head -c 3000 /dev/zero | tr '\0' a)"; has err "longer than"
expect 1 "client rejects a bad -L" -- "$U" client --link "$link" -L nonsense; has err "-L 'nonsense'"
expect 1 "client rejects a bad --socks" -- "$U" client --link "$link" --socks 1.2.3.4; has err "--socks '1.2.3.4'"
expect 2 "client rejects a server config" -- "$U" client -c s.conf; has err "is a server config"

# rotation options and port hopping (docs/CONFIG.md)
expect 0 "client --rotate --rotate-after --max-connections --check" -- "$U" client --link "$link" --rotate 12k-16k --rotate-after 30s-5m --max-connections 3 --check
has out "rotate 12k-16k, rotate-after 30s-5m, max-connections 3"
expect 0 "client (tcp) defaults: rotation off" -- "$U" client --link "$link" --check; has out "rotate off, rotate-after off, max-connections 6"
expect 0 "client (tls) default rotate-after 5m-20m" -- "$U" client --link "$tlink" --check; has out "rotate off, rotate-after 5m-20m"
expect 0 "client (tls) --rotate-after off" -- "$U" client --link "$tlink" --rotate-after off --rotate 1m --check; has out "rotate 1m, rotate-after off"
expect 0 "client: rot= and rta= in a link" -- "$U" client --link "${link%%#*}&rot=12k-16k&rta=1m#x" --check; has out "rotate 12k-16k, rotate-after 1m"
expect 0 "client: --rotate overrides rot=" -- "$U" client --link "${link%%#*}&rot=12k-16k#x" --rotate 64k --check; has out "rotate 64k,"
expect 1 "client rejects a bad --rotate" -- "$U" client --link "$link" --rotate 12q; has err "--rotate '12q': expected bytes per connection"
expect 1 "client rejects a tiny --rotate" -- "$U" client --link "$link" --rotate 1k-2k; has err "--rotate '1k-2k'"
expect 1 "client rejects a bad --rotate-after" -- "$U" client --link "$link" --rotate-after 5m-1m; has err "--rotate-after '5m-1m'"
expect 1 "client rejects a bad --max-connections" -- "$U" client --link "$link" --max-connections 1; has err "--max-connections '1': expected a number from 2 to 64"
expect 0 "server init --ports --hop" -- "$U" server init -c hop.conf --listen 127.0.0.1:4436 --ports 20000-40000 --hop 2s
grep -qx 'transport = tcp' hop.conf && ok "  [server] names the tcp transport" || bad "  no 'transport = tcp': $(cat hop.conf)"
sed -n '/^\[transport "tcp"\]$/,/^\[/p' hop.conf > hop.sec
for l in 'type = tcp' 'ports = 20000-40000' 'hop = 2s'; do
  grep -qxF "$l" hop.sec && ok "  [transport \"tcp\"] has '$l'" || bad "  [transport \"tcp\"] lacks '$l': $(cat hop.conf)"
done
expect 0 "hopping server config --check" -- "$U" server -c hop.conf --check
expect 0 "add-client on a hopping server" -- "$U" server add-client -c hop.conf laptop
hlink=$(cat out)
[[ $hlink == umbra://*@127.0.0.1:4436\?k=*'&ports=20000-40000&hop=2s#laptop' ]] && ok "  link has ports= and hop=" || bad "  link '$hlink'"
expect 0 "link shows the hopping" -- "$U" link "$hlink"; has out "port hopping:      ports 20000-40000, hop 2s"
expect 0 "client --link (hopping) --check" -- "$U" client --link "$hlink" --check; has out "ports 20000-40000 hop 2s"
expect 0 "server init --ports alone: hop 60s" -- "$U" server init -c hop2.conf --listen 127.0.0.1:4437 --ports 30000-30010
grep -qx 'hop = 1m' hop2.conf && ok "  hop = 1m written" || bad "  hop: $(cat hop2.conf)"
"$U" server add-client -c hop2.conf x >out 2>/dev/null
[[ $(cat out) == *'&ports=30000-30010#x' ]] && ok "  link has ports= without hop= (default)" || bad "  link '$(cat out)'"
expect 1 "server init: bad --ports" -- "$U" server init -c hop3.conf --listen 127.0.0.1:1 --ports 40000-20000; has err "--ports '40000-20000'"
expect 1 "server init: bad --hop" -- "$U" server init -c hop3.conf --listen 127.0.0.1:1 --ports 1-2 --hop 2h; has err "--hop '2h'"
expect 1 "server init: --hop without --ports" -- "$U" server init -c hop3.conf --listen 127.0.0.1:1 --hop 2s; has err "--hop goes with --ports"
expect 1 "server init: --ports with tls" -- "$U" server init -c hop3.conf --listen 127.0.0.1:1 --transport tls --cover a.example:443 --ports 1-2; has err "--ports goes with the tcp transport"
[ -e hop3.conf ] && bad "  wrote a file anyway" || ok "  no file written"
printf '[server]\nprivate-key-file = k.key\nlisten = 127.0.0.1:1\nresume-grace = 1d\n' > bad.conf
expect 2 "config: bad resume-grace" -- "$U" server -c bad.conf --check; has err "bad.conf:4: key 'resume-grace': '1d'"
# proxies off loopback: warnings (credentials silence the second one)
expect 0 "client on loopback: no warning" -- "$U" client --link-file tight.link --check
[ -s err ] && bad "warning on loopback: $(cat err)" || ok "no warning for loopback proxies"
expect 0 "client on a wildcard address" -- "$U" client --link-file tight.link --socks 0.0.0.0:1080 --http [::]:8118 -L 0.0.0.0:2222:h:22 --check
has err "the SOCKS5 proxy listens on 0.0.0.0:1080: every address of this host"
has err "the HTTP proxy listens on [::]:8118: every address of this host"
has err "the forward listens on 0.0.0.0:2222"
has err "the SOCKS5 proxy on 0.0.0.0:1080 is not on loopback and has no password"
expect 0 "client on a non-loopback address" -- "$U" client --link-file tight.link --http 192.0.2.7:8118 --check
has err "the HTTP proxy on 192.0.2.7:8118 is not on loopback and has no password"
# an inline private key in a config others can read
cp s.conf loose.conf; chmod 644 loose.conf
expect 0 "0644 server config with an inline key" -- "$U" server -c loose.conf --check; has err "loose.conf holds a private key and is readable by group or others"
expect 0 "0600 server config" -- "$U" server -c s.conf --check
[ -s err ] && bad "warning for a 0600 config: $(cat err)" || ok "no warning for a 0600 config"

# config errors name the file, line and key
printf '[server]\nprivate-key-file = k.key\nlisen = 1.2.3.4:5\n' > bad.conf
expect 2 "unknown key" -- "$U" server -c bad.conf --check; has err "bad.conf:3: unknown key 'lisen'"
printf '[server]\nlisten = 1.2.3.4:443\nprivate-key-file = missing.key\n' > bad.conf
expect 2 "missing key file" -- "$U" server -c bad.conf --check; has err "bad.conf:3: key 'private-key-file'"
"$U" genkey > k.key 2>/dev/null; chmod 644 k.key
printf '[server]\nlisten = 127.0.0.1:1\nprivate-key-file = k.key\n' > ok.conf
expect 0 "key file loads (with a warning)" -- "$U" server -c ok.conf --check; has err "readable by group or others"
expect 2 "missing config file" -- "$U" server -c nope.conf; has err "nope.conf: cannot open"

# status without a running client
expect 3 "status without a client" -- "$U" status --socket "$T/none.sock"; has err "no running client"

echo "$((n-fails)) passed, $fails failed"
[ $fails = 0 ]
