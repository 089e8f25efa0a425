#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Subnets behind a peer (site to site), with peers we did not write.

A wireguard-go "site" peer routes a branch namespace (198.18.90.0/24 and
fd00:90::/64, the latter inside fc00::/7, which the exit policy refuses by
default) behind it; an oxidize-client and a second wireguard-go peer
("road") reach a host in that branch through the relay, and it answers.
Peers are added with the stock `wg set` only.

usage: test_subnet.py SERVER CLIENT
checks: `wg set ... allowed-ips HOST/32,PREFIX` writes the prefix on the
peer's allow-list line and `wg show` lists it; the relay host's kernel gets
a route of each prefix into the TAP; the OxTunnel client and the road
peer reach the branch host over IPv4 and IPv6, and so does the relay host;
a packet from the site peer with a source outside its addresses and
prefixes, and one from the road peer with a source inside the site's
prefix, are dropped (drop_spoofed_src); a prefix overlapping the site's,
given to another peer with `wg set` or in the file at a SIGHUP, is refused
naming both lines and nothing changes; `wg set` without the prefix takes
it away (the branch is unreachable, the kernel route gone); a prefix
whose peer has no session is dropped (route_peer_down).
"""

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb
from test_tunnel import Client, ping, start_server
from test_wireguard import WgPeer

BRANCH4, BRANCH6 = "198.18.90.0/24", "fd00:90::/64"
HOST4, HOST6 = "198.18.90.2", "fd00:90::2"
POOL4, POOL6 = "100.64.0.0/10", "fd6f:7869:647a::/64"


def wg(*args):
    return subprocess.run(["wg"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def drops(srv, name):
    return nc.telemetry(srv.prefix, "/oxidize/stats")["total"].get(name, 0)


def kernel_routes(tb):
    out = tb.run(tb.relay, ["ip", "-4", "route", "show", BRANCH4]).stdout + \
        tb.run(tb.relay, ["ip", "-6", "route", "show", BRANCH6]).stdout
    return out


def wait_reload(srv, seen, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        if srv.log.count("allow-list reloaded") + srv.log.count("not reloaded") > seen:
            return True
        time.sleep(0.1)
    return False


def main():
    server, client = sys.argv[1], sys.argv[2]
    nc.require_host()
    nc.require_tun_wg()
    d = tempfile.mkdtemp(prefix="oxsub-")
    tb = nc.testbed(clients=3, queues=2)
    tag = os.getpid() % 100000
    site = WgPeer(tb, tb.clients[0], "oxsite%d" % tag, d)
    road = WgPeer(tb, tb.clients[2], "oxroad%d" % tag, d)
    srv, ox = None, None
    try:
        # The branch: a host behind the site peer's namespace, which routes.
        branch = tb.add_ns("branch")
        tb.link(tb.clients[0], "lan1", branch, "eth0")
        tb.run(tb.clients[0], ["ip", "addr", "add", "198.18.90.1/24", "dev", "lan1"])
        tb.run(tb.clients[0], ["ip", "addr", "add", "fd00:90::1/64", "dev", "lan1", "nodad"])
        tb.run(branch, ["ip", "addr", "add", HOST4 + "/24", "dev", "eth0"])
        tb.run(branch, ["ip", "addr", "add", HOST6 + "/64", "dev", "eth0", "nodad"])
        tb.run(branch, ["ip", "route", "add", "default", "via", "198.18.90.1"])
        tb.run(branch, ["ip", "-6", "route", "add", "default", "via", "fd00:90::1"])
        tb.sysctl(tb.clients[0], "net.ipv4.ip_forward", 1)
        tb.sysctl(tb.clients[0], "net.ipv6.conf.all.forwarding", 1)

        _, spub = otb.keygen(client, d, "server")
        ka, apub = otb.keygen(client, d, "alice")
        allow = os.path.join(d, "allow")
        # Listed keys beyond the peers here: wg's get is answered in parts
        # of 256 peers, over several control loops.
        extra = 700
        with open(allow, "w") as f:
            f.write("%s alice\n" % apub)
            for i in range(extra):
                f.write("%s filler%d\n" % (base64.b64encode(os.urandom(32)).decode(), i))
        name = "oxs%d" % tag
        srv = start_server(tb, server, d, allow, ["--wg-name", name, "--idle-timeout", "30"])
        endpoint = "%s:%d" % (tb.relay_ip, 51820)

        r1 = wg("set", name, "peer", site.pub, "allowed-ips",
                "100.64.0.50/32,fd6f:7869:647a::50/128,%s,%s" % (BRANCH4, BRANCH6))
        r2 = wg("set", name, "peer", road.pub, "allowed-ips",
                "100.64.0.51/32,fd6f:7869:647a::51/128")
        with open(allow) as f:
            line = [ln for ln in f.read().splitlines() if ln.startswith(site.pub)]
        nc.check(r1.returncode == 0 and r2.returncode == 0 and line and
                 BRANCH4 in line[0] and BRANCH6 in line[0],
                 "wg set ... allowed-ips HOST/32,...,%s,%s: the prefixes on the peer's line "
                 "(%s%s)" % (BRANCH4, BRANCH6, line, r1.stderr.strip() + r2.stderr.strip()))
        dump = wg("show", name, "dump")
        nc.check(dump.returncode == 0 and len(dump.stdout.splitlines()) == 1 + 1 + extra + 2,
                 "wg show dump: the interface and all %d listed keys (in parts)"
                 % (1 + extra + 2))
        show = wg("show", name, "allowed-ips").stdout
        nc.check(re.search(r"%s\s.*%s.*%s" % (re.escape(site.pub), re.escape(BRANCH4),
                                              re.escape(BRANCH6)), show) is not None,
                 "wg show lists them among its allowed IPs")
        routes = kernel_routes(tb)
        nc.check(routes.count("dev oxtun0") == 2,
                 "the relay host's kernel routes both into the TAP:\n%s" % routes.strip())

        site.up(spub, endpoint, "100.64.0.50", "fd6f:7869:647a::50", [POOL4, POOL6])
        road.up(spub, endpoint, "100.64.0.51", "fd6f:7869:647a::51",
                [POOL4, POOL6, BRANCH4, BRANCH6])
        n, _ = ping(tb, tb.clients[0], "100.64.0.1", count=3)
        nc.check(n == 3, "the site peer is connected (%d/3)" % n)
        ox = Client(tb, tb.clients[1], client, ka, spub,
                    ["--route", POOL4, "--route", POOL6, "--route", BRANCH4, "--route",
                     BRANCH6])
        nc.check(ox.wait_for("handshake complete", 15), "oxidize-client connects")

        n, rtt = ping(tb, tb.clients[1], HOST4)
        nc.check(n == 5, "OxTunnel client -> branch host %s behind the site peer (%d/5, avg "
                 "%s ms)" % (HOST4, n, rtt))
        n, rtt = ping(tb, tb.clients[1], HOST6)
        nc.check(n == 5, "and over IPv6, %s in fc00::/7 (%d/5, avg %s ms)" % (HOST6, n, rtt))
        n, rtt = ping(tb, tb.clients[2], HOST4)
        n6, _ = ping(tb, tb.clients[2], HOST6)
        nc.check(n == 5 and n6 == 5, "second WireGuard peer -> branch host (%d/5, IPv6 %d/5, "
                 "avg %s ms)" % (n, n6, rtt))
        n, rtt = ping(tb, tb.relay, HOST4)
        nc.check(n == 5, "the relay host -> branch host, through the TAP (%d/5)" % n)

        # Sources: the site's own prefixes pass; outside them, dropped.
        tb.run(tb.clients[0], ["ip", "addr", "add", "198.18.91.5/32", "dev", "lo"])
        before = drops(srv, "drop_spoofed_src")
        tb.run(tb.clients[0], ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I",
                               "198.18.91.5", "100.64.0.1"], check=False, timeout=10)
        mid = drops(srv, "drop_spoofed_src")
        tb.run(tb.clients[2], ["ip", "addr", "add", "198.18.90.77/32", "dev", "lo"])
        tb.run(tb.clients[2], ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I",
                               "198.18.90.77", "100.64.0.1"], check=False, timeout=10)
        after = drops(srv, "drop_spoofed_src")
        nc.check(mid - before == 3 and after - mid == 3,
                 "a source outside the site's prefixes, and one inside them from another "
                 "peer: dropped as spoofed_src (+%d, +%d)" % (mid - before, after - mid))

        # Overlap: refused by wg set and by a SIGHUP, naming both lines.
        with open(allow) as f:
            kept = f.read()
        r = wg("set", name, "peer", road.pub, "allowed-ips",
               "100.64.0.51/32,fd6f:7869:647a::51/128,198.18.90.128/25")
        with open(allow) as f:
            same = f.read() == kept
        nc.check(r.returncode != 0 and same and
                 srv.wait_log(r"wg set refused, nothing changed: lines \d+ and \d+: prefixes "
                              r"198\.18\.90\.0/24 and 198\.18\.90\.128/25 overlap"),
                 "wg set of a prefix inside the site's to another peer: refused, naming both "
                 "lines; the allow-list unchanged")
        seen = srv.log.count("allow-list reloaded") + srv.log.count("not reloaded")
        with open(allow, "a") as f:
            f.write("%s 10.0.0.0/8 fd00::/16\n" % otb.keygen(client, d, "mallory")[1])
        tb.run(tb.relay, ["kill", "-HUP", str(nc.server_pid(tb))])
        nc.check(wait_reload(srv, seen) and
                 re.search(r"not reloaded.*lines %d and %d: prefixes fd00:90::/64 and "
                           % (extra + 2, extra + 4) +
                           r"fd00::/16 overlap", srv.log),
                 "at a SIGHUP too: the previous list stays (%s)"
                 % [ln for ln in srv.log.splitlines() if "reloaded" in ln][-1:])
        with open(allow, "w") as f:
            f.write(kept)
        n, _ = ping(tb, tb.clients[1], HOST4, count=3)
        nc.check(n == 3, "the branch is still reached (%d/3)" % n)

        # Taken away with wg set: the route and the kernel's route go.
        r = wg("set", name, "peer", site.pub, "allowed-ips",
               "100.64.0.50/32,fd6f:7869:647a::50/128")
        n, _ = ping(tb, tb.clients[1], HOST4, count=3)
        routes = kernel_routes(tb)
        nc.check(r.returncode == 0 and n == 0 and "oxtun0" not in routes,
                 "wg set without the prefixes: the branch is not reached (%d/3), the kernel "
                 "routes are gone" % n)
        # Back, and the site peer gone: its prefix leads nowhere, counted.
        r = wg("set", name, "peer", site.pub, "allowed-ips",
               "100.64.0.50/32,fd6f:7869:647a::50/128,%s,%s" % (BRANCH4, BRANCH6))
        n, _ = ping(tb, tb.clients[1], HOST4, count=3)
        nc.check(r.returncode == 0 and n == 3, "given back: reached again (%d/3)" % n)
        site.down()
        r = wg("set", name, "peer", site.pub, "remove")
        wg("set", name, "peer", site.pub, "allowed-ips", "%s,%s" % (BRANCH4, BRANCH6))
        before = drops(srv, "drop_route_peer_down")
        n, _ = ping(tb, tb.clients[1], HOST4, count=3)
        after = drops(srv, "drop_route_peer_down")
        nc.check(n == 0 and after - before == 3,
                 "a prefix whose peer has no session: dropped as route_peer_down (+%d)"
                 % (after - before))
    finally:
        if ox is not None:
            ox.stop()
        site.down()
        road.down()
        if srv is not None:
            srv.stop()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
