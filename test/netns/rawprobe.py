#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Send OXPI probes as raw Ethernet frames (optionally 802.1Q-tagged) and
count the OXPO answers, bypassing the kernel's stack on both ways: for
frames the kernel here cannot make itself (no 8021q module, say).

usage: rawprobe.py IFACE DST_MAC SRC_IP DST_IP PORT VLAN(0=none) COUNT
prints {"sent": N, "received": M, "tagged": T}"""

import json
import socket
import struct
import sys
import time

from frames import udp4


def main():
    iface, dmac, sip, dip, port, vlan, count = sys.argv[1:8]
    port, vlan, count = int(port), int(vlan), int(count)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(0.2)
    # The receive path moves a tag into metadata; PACKET_AUXDATA hands it back.
    s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA
    smac = s.getsockname()[4]
    dmac = bytes.fromhex(dmac.replace(":", ""))
    sent = received = tagged = 0
    for i in range(count):
        payload = b"OXPI" + struct.pack("!I", i) + b"raw-probe-pad"
        s.send(udp4(smac, dmac, sip, dip, 41000 + i % 8, port, payload, vlan))
        sent += 1
        end = time.time() + 1.0
        while time.time() < end:
            try:
                f, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(32))
            except socket.timeout:
                continue
            tci = None
            for level, typ, data in anc:
                if level == 263 and typ == 8 and len(data) >= 16:
                    status, _, _, _, _, vtci = struct.unpack("=IIIHHH", data[:18])
                    if status & 0x10:  # TP_STATUS_VLAN_VALID
                        tci = vtci
            off = 14
            if f[12:14] == b"\x81\x00":
                tci = struct.unpack("!H", f[14:16])[0]
                off = 18
            is_tagged = tci is not None
            if len(f) < off + 28 or f[off + 9] != 17:
                continue
            ihl = (f[off] & 0xf) * 4
            udp = f[off + ihl:]
            if struct.unpack("!H", udp[0:2])[0] == port and udp[8:12] == b"OXPO" and \
                    struct.unpack("!I", udp[12:16])[0] == i:
                received += 1
                tagged += is_tagged and (tci & 0xfff) == vlan
                break
    print(json.dumps({"sent": sent, "received": received, "tagged": tagged}))


if __name__ == "__main__":
    main()
