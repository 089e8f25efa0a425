# SPDX-License-Identifier: BSD-3-Clause
"""Ethernet/IP/UDP frames built by hand, for the tests that send raw frames
(rawprobe.py, garbage.py) and for the fuzz seed generator."""

import socket
import struct


def csum(data):
    """Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def eth(src_mac, dst_mac, ethertype, vlan=0):
    """Ethernet header, 802.1Q-tagged when vlan is non-zero."""
    if vlan:
        return dst_mac + src_mac + struct.pack("!HHH", 0x8100, vlan, ethertype)
    return dst_mac + src_mac + struct.pack("!H", ethertype)


def udp4(src_mac, dst_mac, src_ip, dst_ip, sport, dport, payload, vlan=0):
    """A valid IPv4 UDP frame (both checksums right); addresses as strings."""
    src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    ulen = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 17, ulen) + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 7, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return eth(src_mac, dst_mac, 0x0800, vlan) + ip + udp


def udp6(src_mac, dst_mac, src_ip, dst_ip, sport, dport, payload):
    """A valid IPv6 UDP frame."""
    src = socket.inet_pton(socket.AF_INET6, src_ip)
    dst = socket.inet_pton(socket.AF_INET6, dst_ip)
    ulen = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(src + dst + struct.pack("!I3xB", ulen, 17) + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + src + dst
    return eth(src_mac, dst_mac, 0x86dd) + ip + udp
