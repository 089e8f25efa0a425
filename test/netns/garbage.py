#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Bad-input flood for the relay: raw Ethernet frames of several kinds of
garbage, round robin, at a bounded rate and count, from this namespace.

usage: garbage.py IFACE DST_MAC SRC_IP DST_IP PORT PER_CLASS RATE [INDEX REPLAY_HEX]
prints {"class": sent, ...}; every class is sent PER_CLASS times. With
INDEX (a live session's receiver index) and REPLAY_HEX (a DATA datagram the
relay has already accepted) the OxTunnel v2 classes are added: v1 and
unknown-version headers, unknown types, short and lying lengths, DATA for
an unknown index, DATA for a live index with a bad tag, the replayed
datagram, and initiations with a bad mac1."""

import json
import os
import socket
import struct
import sys
import time

from frames import csum


class Maker:
    def __init__(self, smac, dmac, sip, dip, port):
        self.eth = dmac + smac + b"\x08\x00"
        self.src, self.dst, self.port = socket.inet_aton(sip), socket.inet_aton(dip), port

    def ip(self, proto, payload, frag=0, tot=None, ihl=5, good=True):
        hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot or 20 + len(payload), 1, frag, 64,
                          proto, 0, self.src, self.dst)
        c = csum(hdr)
        if not good:
            c ^= 0x1234
        return hdr[:10] + struct.pack("!H", c) + hdr[12:]

    def udp(self, payload, ulen=None, good=True, sport=42000):
        ulen_real = 8 + len(payload)
        u = struct.pack("!HHHH", sport, self.port, ulen or ulen_real, 0) + payload
        c = csum(self.src + self.dst + struct.pack("!BBH", 0, 17, ulen_real) +
                 u[:4] + struct.pack("!H", ulen_real) + u[6:]) or 0xffff
        if not good:
            # Wrong, and not the partial form either (the pseudo-header sum
            # a sender with checksum offload leaves, which probes may carry):
            # a random payload would hit it once in 65536.
            partial = ~csum(self.src + self.dst + struct.pack("!BBH", 0, 17, ulen_real)) & 0xffff
            c = (c ^ 0x4321) or 1
            while c in (partial, 0xffff):
                c = (c ^ 0x0110) or 1
        return u[:6] + struct.pack("!H", c) + u[8:]

    def frame(self, l4, proto=17, **kw):
        return self.eth + self.ip(proto, l4, **kw) + l4


def v2_classes(m, index, replay):
    rnd = os.urandom
    ox = b"OX\x82"
    return {
        "v1_datagram": lambda: m.frame(m.udp(b"OX\x09" + rnd(40))),
        "bad_version": lambda: m.frame(m.udp(b"OX\x83\x04" + rnd(40))),
        "bad_type": lambda: m.frame(m.udp(ox + b"\x09" + rnd(40))),
        "short_header": lambda: m.frame(m.udp(ox)),
        "lying_length": lambda: m.frame(m.udp(ox + b"\x01" + rnd(100))),
        "unknown_index": lambda: m.frame(m.udp(ox + b"\x04" + struct.pack(
            "<IQ", index ^ 0x00FFF000, 1) + rnd(48))),
        "bad_tag": lambda: m.frame(m.udp(ox + b"\x04" + struct.pack(
            "<IQ", index, 1 << 40 | struct.unpack("<I", rnd(4))[0]) + rnd(48))),
        "replayed_data": lambda: m.frame(m.udp(replay)),
        "init_bad_mac1": lambda: m.frame(m.udp(ox + b"\x01" + rnd(144))),
    }


def not_ox(n):
    """n random bytes that do not start with the magic's first byte."""
    b = bytearray(os.urandom(n))
    if b[0] == 0x4F:
        b[0] = 0
    return bytes(b)


def classes(m):
    rnd = os.urandom
    return {
        # reach the server: each must land on its own drop counter
        "random_payload": lambda: m.frame(m.udp(not_ox(48))),
        "wrong_magic": lambda: m.frame(m.udp(b"XXPI" + rnd(20))),
        "oversized_random": lambda: m.frame(m.udp(not_ox(1400))),
        "bad_ip_csum": lambda: m.eth + m.ip(17, m.udp(b"OXPI" + rnd(8)), good=False) +
        m.udp(b"OXPI" + rnd(8)),
        "bad_udp_csum": lambda: m.frame(m.udp(b"OXPI" + rnd(8), good=False)),
        "lying_udp_len": lambda: m.frame(m.udp(b"OXPI" + rnd(8), ulen=200)),
        "lying_ip_len": lambda: (lambda u: m.eth + m.ip(17, u, tot=600) + u)(
            m.udp(b"OXPI" + rnd(8))),
        "first_fragment": lambda: m.frame(m.udp(b"OXPI" + rnd(16)), frag=0x2000),
        # left to the kernel by ox_steer, counted there
        "later_fragment": lambda: m.frame(rnd(24), frag=0x0003),
        "tcp_to_port": lambda: m.frame(struct.pack("!HHIIBBHHH", 42001, m.port, 1, 0, 0x50,
                                                   0x02, 1024, 0, 0), proto=6),
        "truncated": lambda: m.eth + b"\x45\x00\x00",
    }


def main():
    iface, dmac, sip, dip, port, per, rate = sys.argv[1:8]
    per, rate = int(per), float(rate)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    m = Maker(s.getsockname()[4], bytes.fromhex(dmac.replace(":", "")), sip, dip, int(port))
    cls = classes(m)
    if len(sys.argv) > 9:
        cls.update(v2_classes(m, int(sys.argv[8]), bytes.fromhex(sys.argv[9])))
    sent = {k: 0 for k in cls}
    gap = 1.0 / rate if rate > 0 else 0
    t = time.perf_counter()
    for _ in range(per):
        for name, make in cls.items():
            s.send(make())
            sent[name] += 1
            t += gap
            d = t - time.perf_counter()
            if d > 0:
                time.sleep(d)
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
