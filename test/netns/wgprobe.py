#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""WireGuard datagrams the relay tests send by hand, run inside a client
namespace. Prints one JSON line of what it did.

  wgprobe.py replay IFACE RELAY PORT N     capture one WireGuard DATA leaving
                                           IFACE for RELAY:PORT, send it N times
  wgprobe.py bad-mac1 RELAY PORT N         N initiations whose mac1 is wrong
  wgprobe.py init-flood RELAY PORT SERVER_PUB N SECONDS [SRC...]
                                           N initiations with a valid mac1 (and
                                           nothing valid behind it) over SECONDS,
                                           round-robin from the SRC addresses
  wgprobe.py ox-init-flood RELAY PORT SERVER_PUB N SECONDS [SRC...]
                                           the same in OxTunnel v2's form

mac1 is keyed BLAKE2s-128 under BLAKE2s-256("mac1----" || server public
key), as WireGuard defines it (hashlib's BLAKE2s, not the relay's code);
OxTunnel's is keyed BLAKE2b-128 under BLAKE2b-256 of the same
(doc/oxtunnel.md).
"""

import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003  # outgoing frames reach only the taps of every protocol


def mac1_key(server_pub, ox=False):
    if ox:
        return hashlib.blake2b(b"mac1----" + server_pub, digest_size=32).digest()
    return hashlib.blake2s(b"mac1----" + server_pub).digest()


def init_msg(key, good_mac1, ox=False):
    """An INIT of 148 bytes: random fields, mac1 over [0, 116)."""
    if ox:
        body = bytes([0x4F, 0x58, 0x82, 1]) + os.urandom(112)
        mac = hashlib.blake2b(body, key=key, digest_size=16).digest()
    else:
        body = bytes([1, 0, 0, 0]) + os.urandom(112)
        mac = hashlib.blake2s(body, key=key, digest_size=16).digest()
    if not good_mac1:
        mac = bytes(b ^ 0xff for b in mac)
    return body + mac + bytes(16)


def replay(iface, relay, port, n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(1)
    end = time.time() + 15
    dst = socket.inet_aton(relay)
    while time.time() < end:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING or len(frame) < 14 + 20 + 8 + 32:
            continue
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != socket.IPPROTO_UDP or ip[16:20] != dst:
            continue
        udp = ip[ihl:]
        if struct.unpack("!H", udp[2:4])[0] != port:
            continue
        payload = udp[8:struct.unpack("!H", udp[4:6])[0]]
        if payload[:4] != bytes([4, 0, 0, 0]):
            continue
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(n):
            u.sendto(payload, (relay, port))
        return {"captured": len(payload), "sent": n}
    return {"captured": 0, "sent": 0}


def send_inits(relay, port, key, n, good, seconds=0.0, sources=("0.0.0.0",), ox=False):
    socks = []
    for a in sources:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((a, 0))
        socks.append(u)
    gap = seconds / n if seconds else 0
    t0 = time.time()
    for i in range(n):
        socks[i % len(socks)].sendto(init_msg(key, good, ox), (relay, port))
        if gap:
            delay = t0 + (i + 1) * gap - time.time()
            if delay > 0:
                time.sleep(delay)
    return {"sent": n, "sources": len(socks), "seconds": round(time.time() - t0, 2)}


def main():
    mode = sys.argv[1]
    if mode == "replay":
        out = replay(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "bad-mac1":
        out = send_inits(sys.argv[2], int(sys.argv[3]), bytes(32), int(sys.argv[4]), False)
    elif mode in ("init-flood", "ox-init-flood"):
        ox = mode == "ox-init-flood"
        key = mac1_key(base64.b64decode(sys.argv[4]), ox)
        out = send_inits(sys.argv[2], int(sys.argv[3]), key, int(sys.argv[5]), True,
                         float(sys.argv[6]), sys.argv[7:] or ("0.0.0.0",), ox)
    else:
        sys.exit("wgprobe.py: unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
