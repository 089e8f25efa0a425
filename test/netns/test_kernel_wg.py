#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Linux kernel's WireGuard as a client of the relay (the code Windows'
WireGuardNT and Android's kernel backend come from): Debian 12's cloud
kernel in QEMU under TCG (test/netns/wgvm.py), its NIC a TAP bridged onto
the testbed's LAN, an oxidize-client beside it.

usage: test_kernel_wg.py SERVER CLIENT
Two boots, each with its own key:
  full     the guest computes full UDP checksums (virtio-net offloads off),
           as a remote host's frames; no preshared key;
  partial  the guest leaves them to the device (offloads on, a TAP with a
           vnet header): the relay gets CHECKSUM_PARTIAL frames, as from a
           container on its host; a preshared key.
checks, each boot: the handshake (the relay's `wg show`, its connection
log); from the guest, ping of the relay (IPv4, IPv6), of the internet
through the relay's NAT, of the OxTunnel client, full-MTU (1420-byte)
packets to both; from the OxTunnel client, ping of the guest and of a
subnet behind it (its allow-list line routes a prefix to it), full-MTU
with DF; the checksum form on the wire is what the boot says (tcpdump).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb
import wgvm
from test_tunnel import Client, ping, start_server

POOL4, POOL6 = "100.64.0.0/10", "fd6f:7869:647a::/64"
ALICE4 = "100.64.0.2"
BOOTS = {
    # name: (offload, psk, guest v4, v6 host part, subnet, MAC)
    "full": (False, False, "100.64.0.70", "70", "198.18.93.0/24", "52:54:00:0a:00:46"),
    "partial": (True, True, "100.64.0.71", "71", "198.18.94.0/24", "52:54:00:0a:00:47"),
}


def genkey():
    k = subprocess.run(["wg", "genkey"], stdout=subprocess.PIPE, text=True,
                       check=True).stdout.strip()
    return k, subprocess.run(["wg", "pubkey"], input=k, stdout=subprocess.PIPE, text=True,
                             check=True).stdout.strip()


def retry_ping(dst, size=None, six=False):
    """A guest check: ping until the first answer (the handshake and the
    bridge may take a moment), then 3 that must all come back."""
    p = "ping -6" if six else "ping"
    s = " -s %d" % size if size else ""
    return ("i=0; until %s -c 1 -W 1%s %s >/dev/null; do i=$((i+1)); "
            "[ $i -lt 20 ] || exit 1; done; %s -c 3 -W 2%s %s" % (p, s, dst, p, s, dst))


def csum_form(text):
    ok = len(re.findall(r"udp sum ok", text))
    bad = len(re.findall(r"bad udp cksum", text))
    return ok, bad


def boot(tb, d, srv, wg_name, vmns, name, keys, spub, endpoint):
    offload, psk, v4, host6, subnet, mac = BOOTS[name]
    key, pub = keys[name]
    v6 = "fd6f:7869:647a::%s" % host6
    net_host = subnet.split("/")[0].rsplit(".", 1)[0] + ".1"
    env = {"LAN": "198.18.0.%d/24" % (40 + list(BOOTS).index(name)), "PEER": spub,
           "ENDPOINT": endpoint, "ALLOWED": "%s,%s,198.19.0.0/16" % (POOL4, POOL6),
           "WG4": v4, "WG6": v6, "MTU": "1420",
           "ROUTES": "%s %s 198.19.0.0/16" % (POOL4, POOL6), "LOOPBACK": net_host + "/32"}
    checks = [("relay", retry_ping("100.64.0.1")),
              ("relay6", retry_ping("fd6f:7869:647a::1", six=True)),
              ("internet", retry_ping(otb.INET_SERVICE_IP)),
              ("oxtunnel-client", retry_ping(ALICE4)),
              ("mtu-relay", retry_ping("100.64.0.1", size=1392)),
              ("mtu-oxtunnel-client", retry_ping(ALICE4, size=1392))]
    initrd = os.path.join(d, "initrd-%s.cpio" % name)
    vmlinuz = wgvm.build_initramfs(initrd, env, checks, key, keys["psk"] if psk else None)
    tap = "oxq%s" % name[0]
    tb.run(vmns, ["ip", "tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr"])
    tb.run(vmns, ["ip", "link", "set", tap, "master", "brvm", "up"])
    dump = tb.popen(vmns, ["timeout", "60", "tcpdump", "-l", "-n", "-vv", "-i", tap, "-c", "8",
                           "udp port 51820 and src host %s" % env["LAN"].split("/")[0]],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    t0 = time.time()
    g = wgvm.Guest(tb, vmns, tap, initrd, vmlinuz, mac, offload)
    try:
        ready = g.wait_for("OXVM ready", 60)
        nc.check(ready, "%s: the guest kernel boots (%.1f s)%s"
                 % (name, time.time() - t0, "" if ready else "\n" + g.log[-2000:]))
        done = g.wait_for("OXVM done", 150)
        nc.check(done, "%s: the guest ran its checks (%.1f s after start)"
                 % (name, time.time() - t0))
        fails = [ln for ln in g.lines if ln.startswith("OXVM fail") or
                 ln.startswith("OXVM   ")]
        hs = [int(x) for x in re.findall(r"\s(\d{9,})", "\n".join(
            ln for ln in g.lines if ln.startswith("OXVM handshakes")))]
        nc.check(hs and hs[0] > 0 and g.result("relay"),
                 "%s: kernel WireGuard %s handshakes with the relay%s and pings it"
                 % (name, re.search(r"OXVM ready (\S+)", g.log).group(1) if ready else "?",
                    " with a preshared key" if psk else ""))
        for c, what in (("relay6", "the relay over IPv6"),
                        ("internet", "the internet through the relay's NAT"),
                        ("oxtunnel-client", "the OxTunnel client %s" % ALICE4),
                        ("mtu-relay", "the relay with 1420-byte packets"),
                        ("mtu-oxtunnel-client", "the OxTunnel client with 1420-byte packets")):
            detail = "" if g.result(c) else "\n" + "\n".join(fails)
            nc.check(g.result(c), "%s: the guest pings %s%s" % (name, what, detail))
        st = subprocess.run(["wg", "show", wg_name, "latest-handshakes"],
                            stdout=subprocess.PIPE, text=True).stdout
        m = re.search(r"%s\s+(\d+)" % re.escape(pub), st)
        conn = [ln for ln in srv.log.splitlines()
                if "conn event=handshake" in ln and "key=%s " % pub in ln]
        nc.check(m and int(m.group(1)) > 0 and conn and "proto=wireguard" in conn[0],
                 "%s: the relay's wg show has its handshake, the connection log says "
                 "proto=wireguard" % name)
        n, rtt = ping(tb, tb.clients[0], v4)
        nc.check(n == 5, "%s: OxTunnel client -> kernel peer %s (%d/5, avg %s ms)"
                 % (name, v4, n, rtt))
        r = tb.run(tb.clients[0], ["ping", "-c", "3", "-i", "0.3", "-W", "2", "-M", "do", "-s",
                                   "1392", v4], check=False, timeout=20)
        got = re.search(r"(\d+) received", r.stdout)
        nc.check(got and int(got.group(1)) == 3,
                 "%s: and 1420-byte packets with DF (%s/3)" % (name, got.group(1) if got else 0))
        n, rtt = ping(tb, tb.clients[0], net_host)
        nc.check(n == 5, "%s: OxTunnel client -> %s in the subnet %s behind the kernel peer "
                 "(%d/5)" % (name, net_host, subnet, n))
    finally:
        g.stop()
        if dump.poll() is None:
            dump.terminate()
        out = dump.communicate(timeout=10)[0]
        tb.run(vmns, ["ip", "link", "del", tap], check=False)
    ok, bad = csum_form(out)
    if offload:
        nc.check(bad > 0, "%s: the guest's datagrams reach the relay with partial checksums "
                 "(tcpdump: %d unfinished, %d complete)" % (name, bad, ok))
    else:
        nc.check(ok > 0 and bad == 0, "%s: the guest's datagrams carry full checksums "
                 "(tcpdump: %d complete, %d unfinished)" % (name, ok, bad))


def main():
    server, client = sys.argv[1], sys.argv[2]
    nc.require_host()
    if not os.path.exists("/dev/net/tun"):
        nc.skip("no /dev/net/tun")
    why = wgvm.missing()
    if why:
        nc.skip(why)
    for tool in ("tcpdump", "nft"):
        if shutil.which(tool) is None:
            nc.skip("%s not installed" % tool)
    d = tempfile.mkdtemp(prefix="oxkwg-")
    tb = nc.testbed(clients=1, queues=2)
    srv, ox = None, None
    try:
        vmns = tb.add_ns("vm")
        tb.on_switch(vmns, "swvm", "198.18.0.39/24")
        tb.run(vmns, ["ip", "addr", "flush", "dev", "eth0"])
        tb.run(vmns, ["ip", "link", "add", "brvm", "type", "bridge"])
        tb.run(vmns, ["ip", "link", "set", "eth0", "master", "brvm"])
        tb.run(vmns, ["ip", "link", "set", "brvm", "up"])

        _, spub = otb.keygen(client, d, "server")
        ka, apub = otb.keygen(client, d, "alice")
        keys = {n: genkey() for n in BOOTS}
        keys["psk"] = subprocess.run(["wg", "genpsk"], stdout=subprocess.PIPE, text=True,
                                     check=True).stdout.strip()
        allow = os.path.join(d, "allow")
        fd = os.open(allow, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        lines = ["%s alice %s fd6f:7869:647a::2" % (apub, ALICE4)]
        for n, (_, psk, v4, host6, subnet, _) in BOOTS.items():
            lines.append("%s kernel-%s %s fd6f:7869:647a::%s %s%s" % (
                keys[n][1], n, v4, host6, subnet, " psk=" + keys["psk"] if psk else ""))
        os.write(fd, ("\n".join(lines) + "\n").encode())
        os.close(fd)
        nc.masquerade(tb)
        tag = os.getpid() % 100000
        wg_name = "oxk%d" % tag
        srv = start_server(tb, server, d, allow, ["--wg-name", wg_name])
        ox = Client(tb, tb.clients[0], client, ka, spub,
                    ["--route", POOL4, "--route", POOL6] +
                    sum([["--route", b[4]] for b in BOOTS.values()], []))
        nc.check(ox.wait_for("handshake complete", 15), "oxidize-client connects")
        endpoint = "%s:%d" % (tb.relay_ip, 51820)
        for name in BOOTS:
            boot(tb, d, srv, wg_name, vmns, name, keys, spub, endpoint)
    finally:
        if ox is not None:
            ox.stop()
        if srv is not None:
            srv.stop()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
