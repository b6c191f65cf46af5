#!/usr/bin/python3
"""Plain Noise_IK_25519_ChaChaPoly_BLAKE2b peer built on python3-dissononce,
driven over stdin/stdout by tests/unit/test_crypto_noise_interop.c.

usage: noise_peer.py initiator|responder STATIC_PRIV_HEX PROLOGUE_HEX [REMOTE_STATIC_PUB_HEX]

Lines are "TAG HEX". The initiator writes M1, reads M2, writes P2 (payload it
decrypted); the responder reads M1, writes P1 and RS (the initiator static key
it learned), writes M2. Then both: write T x3 (transport messages from python),
read T x3 and answer each with D (the decrypted plaintext), write H (handshake
hash) and exit 0. Any failure exits non-zero with a reason on stderr."""
import sys

from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.public import PublicKey
from dissononce.hash.blake2b import Blake2bHash


def out(tag, data):
    sys.stdout.write("%s %s\n" % (tag, data.hex()))
    sys.stdout.flush()


def expect(tag):
    line = sys.stdin.readline()
    if not line:
        sys.exit("peer: EOF waiting for " + tag)
    t, _, h = line.strip().partition(" ")
    if t != tag:
        sys.exit("peer: expected %s, got %s" % (tag, t))
    return bytes.fromhex(h)


def main():
    role, priv_hex, prologue_hex = sys.argv[1], sys.argv[2], sys.argv[3]
    dh = X25519DH()
    s = dh.generate_keypair(PrivateKey(bytes.fromhex(priv_hex)))
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()), dh)
    prologue = bytes.fromhex(prologue_hex)
    if role == "initiator":
        rs = PublicKey(bytes.fromhex(sys.argv[4]))
        hs.initialize(IKHandshakePattern(), True, prologue, s=s, rs=rs)
        buf = bytearray()
        hs.write_message(b"py-initiator-payload", buf)
        out("M1", bytes(buf))
        pl = bytearray()
        send, recv = hs.read_message(expect("M2"), pl)
        out("P2", bytes(pl))
    else:
        hs.initialize(IKHandshakePattern(), False, prologue, s=s)
        pl = bytearray()
        hs.read_message(expect("M1"), pl)
        out("P1", bytes(pl))
        out("RS", hs.rs.data)
        buf = bytearray()
        recv, send = hs.write_message(b"py-responder-payload", buf)
        out("M2", bytes(buf))
    for i in range(3):
        out("T", send.encrypt_with_ad(b"", b"python says %d" % i))
    for i in range(3):
        out("D", recv.decrypt_with_ad(b"", expect("T")))
    out("H", hs.symmetricstate.get_handshake_hash())
    return 0


if __name__ == "__main__":
    sys.exit(main())
