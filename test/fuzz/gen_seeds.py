#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpus of fuzz_pkt: valid IPv4/IPv6/VLAN OXPI datagrams
and a few near misses. Each seed is 2 bytes of UDP port, then the frame.

usage: gen_seeds.py OUT_DIR"""

import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netns"))
from frames import udp4, udp6  # noqa: E402


SMAC, DMAC = b"\x02\0\0\0\0\x02", b"\x02\0\0\0\0\x01"


def v4(payload, dport=51820, vlan=0):
    return udp4(SMAC, DMAC, "198.18.0.10", "198.18.0.1", 40000, dport, payload, vlan)


def v6(payload):
    return udp6(SMAC, DMAC, "fd00::10", "fd00::1", 40000, 51820, payload)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    port = struct.pack("!H", 51820)
    probe = b"OXPI" + bytes(range(24))
    seeds = {
        "v4-probe": v4(probe),
        "v4-vlan-probe": v4(probe, vlan=42),
        "v6-probe": v6(probe),
        "v4-padded": v4(b"OXPI") + b"\0" * 8,
        "v4-other-port": v4(probe, dport=9999),
        "v4-truncated": v4(probe)[:40],
        "arp": b"\xff" * 6 + b"\x02\0\0\0\0\x02\x08\x06" + b"\0" * 28,
    }
    for name, frame in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(port + frame)


if __name__ == "__main__":
    main()
