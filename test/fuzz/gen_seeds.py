#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpus of fuzz_pkt: valid IPv4/IPv6/VLAN OXPI datagrams
and a few near misses. Each seed is 2 bytes of UDP port, then the frame.

usage: gen_seeds.py OUT_DIR"""

import os
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def udp4(payload, sport=40000, dport=51820, vlan=False):
    src, dst = bytes([198, 18, 0, 10]), bytes([198, 18, 0, 1])
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02"
    eth += (b"\x81\x00\x00\x2a\x08\x00" if vlan else b"\x08\x00")
    return eth + ip + udp


def udp6(payload, sport=40000, dport=51820):
    src = bytes.fromhex("fd000000000000000000000000000010")
    dst = bytes.fromhex("fd000000000000000000000000000001")
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!I3xB", ulen, 17)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + src + dst
    return b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x86\xdd" + ip + udp


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    port = struct.pack("!H", 51820)
    probe = b"OXPI" + bytes(range(24))
    seeds = {
        "v4-probe": udp4(probe),
        "v4-vlan-probe": udp4(probe, vlan=True),
        "v6-probe": udp6(probe),
        "v4-padded": udp4(b"OXPI") + b"\0" * 8,
        "v4-other-port": udp4(probe, dport=9999),
        "v4-truncated": udp4(probe)[:40],
        "arp": b"\xff" * 6 + b"\x02\0\0\0\0\x02\x08\x06" + b"\0" * 28,
    }
    for name, frame in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(port + frame)


if __name__ == "__main__":
    main()
