#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A second, independent OxTunnel v2 client (doc/oxtunnel.md), written from
the specification in Python for the netns tests: it drives the relay
through exact protocol situations (replays, spoofed inner sources, a new
source port, client-to-client) that a TUN-based client makes hard to aim.

usage: oxpeer.py --server IP --port P --server-pub B64 --key B64 SCENARIO [ARGS]

Scenarios print one JSON object:
  handshake              the addresses the relay gives
  ping DST [N]           N ICMP echo requests from our tunnel address to DST
  spoof DST              an echo request with a source that is not ours
  replay                 one echo to the relay, then the same datagram 5 times
  roam                   echo from one UDP port, then from a new one under the same keys
  keepalive              KEEPALIVE -> ACK with the same bytes
  disconnect             DISCONNECT; the relay forgets the session
  responder SECONDS      answer ICMP echo requests to our address for a while
  flood SECONDS          (no handshake) one valid INIT sent again and again
  sealed DST             one echo to DST; print that datagram (hex), as accepted
  plain HEX...           send each hex string as one DATA plaintext
  replay-init HEX        (no handshake) send a captured INIT again; was it answered?
  udp DST PORT           one UDP datagram from our tunnel address; did DST answer?
  unconfirmed N DST      N handshakes never confirmed, then ping DST under the first keys
  rekeys N [SECONDS]     N confirmed handshakes in a row while receiving; count the
                         DATA that opens under our keys, under a zero key, or neither

The handshake takes a COOKIE reply (the relay under load) and retries with
mac2, as the specification says.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from frames import csum  # noqa: E402

NAME = b"Noise_IK_25519_ChaChaPoly_SHA256"
PROLOGUE = b"OxTunnel v2"
VERSION = 0x82
INIT, RESPONSE, COOKIE, DATA = 1, 2, 3, 4


def raw_pub(k):
    return k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh(priv, pub):
    return priv.exchange(X25519PublicKey.from_public_bytes(pub))


def hkdf2(ck, ikm):
    temp = hmac.new(ck, ikm, hashlib.sha256).digest()
    o1 = hmac.new(temp, b"\x01", hashlib.sha256).digest()
    o2 = hmac.new(temp, o1 + b"\x02", hashlib.sha256).digest()
    return o1, o2


def nonce(n):
    return b"\0" * 4 + struct.pack("<Q", n)


def mac(key, data):
    return hashlib.blake2b(data, key=key, digest_size=16).digest()


def label(lbl, pub):
    return hashlib.blake2b(lbl + pub, digest_size=32).digest()


class Noise:
    def __init__(self, prologue):
        self.h = NAME
        self.ck = NAME
        self.k = None
        self.n = 0
        self.mix_hash(prologue)

    def mix_hash(self, data):
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, ikm):
        self.ck, self.k = hkdf2(self.ck, ikm)
        self.n = 0

    def encrypt(self, pt):
        ct = ChaCha20Poly1305(self.k).encrypt(nonce(self.n), pt, self.h)
        self.n += 1
        self.mix_hash(ct)
        return ct

    def decrypt(self, ct):
        pt = ChaCha20Poly1305(self.k).decrypt(nonce(self.n), ct, self.h)
        self.n += 1
        self.mix_hash(ct)
        return pt


def hchacha20(key, n16):
    """HChaCha20 (draft-irtf-cfrg-xchacha): the subkey of XChaCha20."""
    x = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + \
        list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", n16))

    def qr(a, b, c, d):
        for (p, q, r, k) in ((a, b, d, 16), (c, d, b, 12), (a, b, d, 8), (c, d, b, 7)):
            x[p] = (x[p] + x[q]) & 0xFFFFFFFF
            x[r] ^= x[p]
            x[r] = ((x[r] << k) & 0xFFFFFFFF) | (x[r] >> (32 - k))
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                           (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            qr(a, b, c, d)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def xchacha_open(key, n24, ct, ad):
    return ChaCha20Poly1305(hchacha20(key, n24[:16])).decrypt(b"\0" * 4 + n24[16:], ct, ad)


def tai64n():
    t = time.time_ns()
    return struct.pack(">QI", (1 << 62) + t // 1000000000, t % 1000000000)


class Peer:
    def __init__(self, server, port, server_pub, priv):
        self.server = (server, port)
        self.spub = server_pub
        self.s = priv
        self.sock = self._socket()
        self.send_n = 0

    def _socket(self):
        v6 = ":" in self.server[0]
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("::" if v6 else "0.0.0.0", 0))
        s.settimeout(0.2)
        return s

    def make_init(self):
        idx = struct.unpack("<I", os.urandom(4))[0]
        hdr = bytes([0x4F, 0x58, VERSION, INIT]) + struct.pack("<I", idx)
        e = X25519PrivateKey.generate()
        ns = Noise(PROLOGUE + hdr)
        ns.mix_hash(self.spub)
        epub = raw_pub(e)
        ns.mix_hash(epub)
        ns.mix_key(dh(e, self.spub))
        enc_s = ns.encrypt(raw_pub(self.s))
        ns.mix_key(dh(self.s, self.spub))
        enc_ts = ns.encrypt(tai64n())
        msg = hdr + epub + enc_s + enc_ts
        mac1 = mac(label(b"mac1----", self.spub), msg)
        msg += mac1
        msg += mac(self.cookie, msg) if getattr(self, "cookie", None) else b"\0" * 16
        assert len(msg) == 148
        return idx, e, ns, mac1, msg

    def handshake(self, timeout=5.0):
        self.cookies = 0
        idx, e, ns, mac1, msg = self.make_init()
        self.sock.sendto(msg, self.server)
        self.last_init = msg
        deadline = time.time() + timeout
        resend = time.time() + 1.0
        while time.time() < deadline:
            if time.time() >= resend:
                # Lost on the way (a busy test machine): a fresh initiation,
                # as a client does after REKEY_TIMEOUT (here 1 s).
                idx, e, ns, mac1, msg = self.make_init()
                self.sock.sendto(msg, self.server)
                self.last_init = msg
                resend = time.time() + 1.0
            try:
                r, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            if len(r) == 64 and r[3] == COOKIE and struct.unpack("<I", r[4:8])[0] == idx:
                # Under load: prove we receive at this address, then retry.
                self.cookie = xchacha_open(label(b"cookie--", self.spub), r[8:32], r[32:64], mac1)
                self.cookies += 1
                idx, e, ns, mac1, msg = self.make_init()
                self.sock.sendto(msg, self.server)
                self.last_init = msg
                continue
            if len(r) != 88 or r[3] != RESPONSE or struct.unpack("<I", r[4:8])[0] != idx:
                continue
            self.take_response(r, idx, e, ns)
            self.send(b"")		# key confirmation
            return True
        return False

    def take_response(self, r, idx, e, ns):
        """Derive the keys of a RESPONSE to our initiation idx; they become ours."""
        re = r[8:40]
        ns.mix_hash(re)
        ns.mix_key(dh(e, re))
        ns.mix_key(dh(self.s, re))
        pl = ns.decrypt(r[40:88])
        k1, k2 = hkdf2(ns.ck, b"")
        self.tx, self.rx = ChaCha20Poly1305(k1), ChaCha20Poly1305(k2)
        self.remote_index = struct.unpack("<I", pl[0:4])[0]
        self.local_index = idx
        self.v4 = socket.inet_ntoa(pl[4:8])
        self.v6 = socket.inet_ntop(socket.AF_INET6, pl[8:24])
        self.v4_prefix, self.v6_prefix = pl[24], pl[25]
        self.mtu, self.keepalive = struct.unpack("<HH", pl[26:30])
        self.send_n = 0
        self.seen = set()

    def seal(self, plaintext):
        hdr = bytes([0x4F, 0x58, VERSION, DATA])
        hdr += struct.pack("<IQ", self.remote_index, self.send_n)
        ct = self.tx.encrypt(nonce(self.send_n), plaintext, hdr)
        self.send_n += 1
        return hdr + ct

    def send(self, plaintext, sock=None):
        d = self.seal(plaintext)
        (sock or self.sock).sendto(d, self.server)
        return d

    def recv(self, timeout=1.0, sock=None):
        """Next authenticated plaintext, or None."""
        sock = sock or self.sock
        deadline = time.time() + timeout
        while time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            try:
                d, _ = sock.recvfrom(9216)
            except socket.timeout:
                return None
            if len(d) < 32 or d[:4] != bytes([0x4F, 0x58, VERSION, DATA]):
                continue
            idx, n = struct.unpack("<IQ", d[4:16])
            if idx != self.local_index or n in self.seen:
                continue
            try:
                pt = self.rx.decrypt(nonce(n), d[16:], d[:16])
            except Exception:
                continue
            self.seen.add(n)
            return pt
        return None


def ipv4(src, dst, proto, payload, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, proto, payload, hops=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, hops,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def icmp_echo(src, dst, ident, seq, data=b"oxpeer-payload", reply=False):
    body = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def parse_icmp(pkt):
    """(src, dst, type, ident, seq) of an IPv4 ICMP echo packet, else None."""
    if len(pkt) < 28 or pkt[0] >> 4 != 4 or pkt[9] != 1:
        return None
    ihl = (pkt[0] & 15) * 4
    t, _, _, ident, seq = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
    return socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20]), t, ident, seq


def ping(p, dst, count, src=None, timeout=1.0):
    ident = os.getpid() & 0xFFFF
    got, rtts = 0, []
    for seq in range(count):
        t0 = time.time()
        p.send(icmp_echo(src or p.v4, dst, ident, seq))
        while True:
            pt = p.recv(timeout)
            if pt is None:
                break
            r = parse_icmp(pt)
            if r and r[2] == 0 and r[3] == ident and r[4] == seq:
                got += 1
                rtts.append((time.time() - t0) * 1e6)
                break
    return got, rtts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=51820)
    ap.add_argument("--server-pub", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("scenario")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    priv = X25519PrivateKey.from_private_bytes(base64.b64decode(a.key))
    p = Peer(a.server, a.port, base64.b64decode(a.server_pub), priv)
    if a.scenario == "flood":
        msg = p.make_init()[4]
        end, sent = time.time() + float(a.args[0]), 0
        while time.time() < end:
            for _ in range(256):
                p.sock.sendto(msg, p.server)
            sent += 256
        print(json.dumps({"scenario": "flood", "sent": sent}))
        return 0
    if a.scenario == "replay-init":
        # A captured initiation sent again, as an attacker would: answered?
        p.sock.sendto(bytes.fromhex(a.args[0]), p.server)
        answered = False
        end = time.time() + 1.5
        while time.time() < end and not answered:
            try:
                r, _ = p.sock.recvfrom(2048)
            except socket.timeout:
                continue
            answered = len(r) == 88 and r[3] == RESPONSE
        print(json.dumps({"scenario": "replay-init", "answered": answered}))
        return 0
    out = {"scenario": a.scenario, "handshake": p.handshake()}
    out["cookies"] = p.cookies
    if not out["handshake"]:
        print(json.dumps(out))
        return 1
    out.update(init=p.last_init.hex(), v4=p.v4, v6=p.v6, v4_prefix=p.v4_prefix,
               v6_prefix=p.v6_prefix, mtu=p.mtu, keepalive=p.keepalive, index=p.remote_index)
    s = a.scenario
    if s == "ping":
        got, rtts = ping(p, a.args[0], int(a.args[1]) if len(a.args) > 1 else 5)
        out.update(received=got, rtt_us=sorted(rtts)[len(rtts) // 2] if rtts else None)
    elif s == "spoof":
        fake = "100.64.255.254" if p.v4 != "100.64.255.254" else "100.64.255.253"
        got, _ = ping(p, a.args[0], 3, src=fake)
        out.update(received=got)
    elif s == "replay":
        d = p.send(icmp_echo(p.v4, a.args[0], 7, 1))
        first = p.recv(2.0)
        for _ in range(5):
            p.sock.sendto(d, p.server)
        extra = 0
        while p.recv(1.0) is not None:
            extra += 1
        out.update(first_reply=first is not None, replies_to_replays=extra)
    elif s == "roam":
        got1, _ = ping(p, a.args[0], 2)
        old = p.sock
        p.sock = p._socket()
        got2, _ = ping(p, a.args[0], 3)
        out.update(before=got1, after=got2, old_port=old.getsockname()[1],
                   new_port=p.sock.getsockname()[1])
    elif s == "sealed":
        d = p.send(icmp_echo(p.v4, a.args[0], 9, 1))
        out.update(datagram=d.hex(), reply=p.recv(2.0) is not None)
    elif s == "keepalive":
        body = os.urandom(8)
        p.send(b"\x01" + body)
        r = p.recv(2.0)
        out.update(ack=r == b"\x02" + body)
    elif s == "disconnect":
        p.send(b"\x03")
        out.update(sent=True)
    elif s == "plain":
        for h in a.args:
            p.send(bytes.fromhex(h))
        out.update(sent=len(a.args))
    elif s == "udp":
        dst, port = a.args[0], int(a.args[1])
        body = b"oxpeer-udp"
        udp = struct.pack("!HHHH", 40000, port, 8 + len(body), 0) + body
        if ":" in dst:
            # The UDP checksum, mandatory over IPv6.
            pseudo = (socket.inet_pton(socket.AF_INET6, p.v6) +
                      socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!IxxxB", len(udp), 17))
            c = csum(pseudo + udp) or 0xffff
            udp = udp[:6] + struct.pack("!H", c) + udp[8:]
            p.send(ipv6(p.v6, dst, 17, udp))
        else:
            p.send(ipv4(p.v4, dst, 17, udp))
        answered = False
        deadline = time.time() + 1.5
        while time.time() < deadline and not answered:
            pt = p.recv(max(0.05, deadline - time.time()))
            # From the port asked (a host bound to 0.0.0.0 answers from
            # the address of its route back, not always the one asked).
            if pt and len(pt) >= 28 and pt[0] >> 4 == 4 and pt[9] == 17:
                ihl = (pt[0] & 15) * 4
                answered = struct.unpack("!H", pt[ihl:ihl + 2])[0] == port
        out.update(answered=answered)
    elif s == "unconfirmed":
        # N more handshakes whose keys are never used (lost from the relay's
        # point of view: no first DATA confirms them), then traffic under
        # the first keys, which must still work both ways.
        keep = (p.tx, p.rx, p.remote_index, p.local_index, p.send_n, p.seen)
        answered = 0
        for _ in range(int(a.args[0])):
            time.sleep(0.06)  # within the per-source rate (20/s)
            idx, e, ns, mac1, msg = p.make_init()
            p.sock.sendto(msg, p.server)
            deadline = time.time() + 2.0
            while time.time() < deadline:
                try:
                    r, _ = p.sock.recvfrom(2048)
                except socket.timeout:
                    continue
                if len(r) == 88 and r[3] == RESPONSE and struct.unpack("<I", r[4:8])[0] == idx:
                    answered += 1
                    break
        p.tx, p.rx, p.remote_index, p.local_index, p.send_n, p.seen = keep
        got, _ = ping(p, a.args[1], 3)
        out.update(answered=answered, received=got)
    elif s == "rekeys":
        # N handshakes in a row, each confirmed, while the relay seals
        # traffic to us from its lcores: every DATA must open under one of
        # our keys, and none under an all-zero key (one wiped in use).
        zero = ChaCha20Poly1305(b"\0" * 32)
        keys = {p.local_index: p.rx}
        st = dict(data=0, opened=0, zero_key=0, unknown=0, rekeys=0)

        def examine(d):
            if len(d) < 32 or d[:4] != bytes([0x4F, 0x58, VERSION, DATA]):
                return
            idx, n = struct.unpack("<IQ", d[4:16])
            st["data"] += 1
            for c in ([keys[idx]] if idx in keys else []):
                try:
                    c.decrypt(nonce(n), d[16:], d[:16])
                    st["opened"] += 1
                    return
                except Exception:
                    pass
            try:
                zero.decrypt(nonce(n), d[16:], d[:16])
                st["zero_key"] += 1
            except Exception:
                st["unknown"] += 1

        def pump(until, want=None):
            while time.time() < until:
                try:
                    d, _ = p.sock.recvfrom(9216)
                except socket.timeout:
                    continue
                if want and len(d) == 88 and d[3] == RESPONSE and \
                        struct.unpack("<I", d[4:8])[0] == want:
                    return d
                examine(d)
            return None

        for _ in range(int(a.args[0])):
            pump(time.time() + 0.3)
            idx, e, ns, mac1, msg = p.make_init()
            p.sock.sendto(msg, p.server)
            r = pump(time.time() + 2.0, want=idx)
            if r is None:
                continue
            p.take_response(r, idx, e, ns)
            keys[idx] = p.rx
            p.send(b"")
            st["rekeys"] += 1
        pump(time.time() + float(a.args[1]) if len(a.args) > 1 else time.time() + 1.0)
        out.update(st)
    elif s == "responder":
        print(json.dumps(out), flush=True)
        end = time.time() + float(a.args[0])
        answered = 0
        while time.time() < end:
            pt = p.recv(0.5)
            r = parse_icmp(pt) if pt else None
            if r and r[2] == 8 and r[1] == p.v4:
                ihl = (pt[0] & 15) * 4
                p.send(icmp_echo(p.v4, r[0], r[3], r[4], pt[ihl + 8:], reply=True))
                answered += 1
        out.update(answered=answered)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
