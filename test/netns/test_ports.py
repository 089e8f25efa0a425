#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""More than one port: --port 51820,443.

ox_steer hands both ports to the sockets; the relay answers each peer from
the port it used; a session follows its peer from one port to the other as
from one address to another; any other port stays the kernel's.

usage: test_ports.py SERVER CLIENT
checks: a --port list with a port twice, or nine ports, refused at start;
alice (oxidize-client, a UDP socket connected to relay:443, which takes
nothing from another port) handshakes and reaches the relay; bob
(wireguard-go) on 51820 reaches alice and alice bob, client to client
across the ports; after traffic each WireGuard peer's endpoint is still the
port it sent to (wireguard-go moves it to wherever authenticated packets
come from); carol moved from 51820 to 443 with `wg set ... endpoint`: her
pings go on, the relay counts the roam, her endpoint stays on 443; a UDP
socket of the relay host on another port gets the datagram sent to it
(ox_steer passed it to the kernel).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb
from test_tunnel import Client, ping, start_server
from test_wireguard import WgPeer

POOL4, POOL6 = "100.64.0.0/10", "fd6f:7869:647a::/64"
ADDR = {"alice": "100.64.0.10", "bob": "100.64.0.11", "carol": "100.64.0.12"}
RELAY = "100.64.0.1"
OTHER_PORT = 5353

LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d))
s.settimeout(15)
print("bound", flush=True)
try:
    print(s.recvfrom(2048)[0].decode(), flush=True)
except socket.timeout:
    print("nothing", flush=True)
""" % OTHER_PORT


def v6_of(name):
    return "fd6f:7869:647a::%x" % int(ADDR[name].rsplit(".", 1)[1])


def endpoint_port(tb, ns, ifname):
    r = tb.run(ns, ["wg", "show", ifname, "endpoints"], check=False)
    ep = r.stdout.split()[1] if len(r.stdout.split()) > 1 else ""
    return int(ep.rsplit(":", 1)[1]) if ":" in ep else None


def main():
    server, client = sys.argv[1], sys.argv[2]
    nc.require_host()
    nc.require_tun_wg()
    d = tempfile.mkdtemp(prefix="oxports-")
    tb = nc.testbed(clients=3, queues=2)
    srv, ox, wgs = None, None, {}
    try:
        _, spub = otb.keygen(client, d, "server")
        keys = {"alice": otb.keygen(client, d, "alice")}
        for name in ("bob", "carol"):
            path = os.path.join(d, name + ".wgkey")
            keys[name] = (path, nc.wg_keyfile(path))
        allow = os.path.join(d, "allow")
        with open(allow, "w") as f:
            for name in ADDR:
                f.write("%s %s %s\n" % (keys[name][1], name, ADDR[name]))

        for bad, why in (("51820,51820", "port 51820 twice"),
                         (",".join(str(1000 + i) for i in range(9)), "more than 8 ports"),
                         ("51820,x", "port: 'x' is not a number in 1..65535")):
            r = tb.run(tb.relay, [server, "--no-pci", "--file-prefix",
                                  "oxportbad%d" % os.getpid(), "--", "--iface", "eth0",
                                  "--key", os.path.join(d, "server.key"), "--allow", allow,
                                  "--port", bad], check=False, timeout=60)
            nc.check(r.returncode != 0 and why in r.stdout + r.stderr,
                     "--port %s refused at start (%s)" % (bad, why))

        tag = "%d%d" % (os.getpid() % 10000, int(time.time() * 10) % 1000)
        srv = start_server(tb, server, d, allow, ["--port", "51820,443", "--wg-name",
                                                  "oxq%s" % tag])
        nc.check("UDP port 51820,443" in srv.log, "the relay says both ports")
        ns = {"alice": tb.clients[0], "bob": tb.clients[1], "carol": tb.clients[2]}
        for name in ("bob", "carol"):
            p = WgPeer(tb, ns[name], "ox%s%s" % (name[0], tag), d)
            p.key, p.pub = keys[name]
            wgs[name] = p
            p.up(spub, "%s:51820" % tb.relay_ip, ADDR[name], v6_of(name), [POOL4, POOL6])
        ox = Client(tb, ns["alice"], client, keys["alice"][0], spub,
                    ["--route", POOL4, "--route", POOL6], port=443)
        nc.check(ox.wait_for("handshake complete", 15) and
                 ping(tb, ns["alice"], RELAY, count=3)[0] == 3,
                 "alice on 443 (a connected socket: answers from 443 only) handshakes and "
                 "reaches the relay")
        n1 = ping(tb, ns["alice"], ADDR["bob"], count=3)[0]
        n2 = ping(tb, ns["bob"], ADDR["alice"], count=3)[0]
        nc.check(n1 == 3 and n2 == 3,
                 "client to client across the ports: alice (443) -> bob (51820) %d/3, "
                 "bob -> alice %d/3" % (n1, n2))
        nc.check(endpoint_port(tb, ns["bob"], wgs["bob"].name) == 51820,
                 "bob's endpoint stays on 51820 after traffic (answered from it)")

        # Carol moves to 443 mid-session: a roam like any other.
        nc.check(ping(tb, ns["carol"], RELAY, count=2)[0] == 2, "carol on 51820")
        roamed0 = nc.total(srv, "roamed")
        tb.run(ns["carol"], ["wg", "set", wgs["carol"].name, "peer", spub, "endpoint",
                             "%s:443" % tb.relay_ip])
        n = ping(tb, ns["carol"], RELAY, count=3)[0]
        n2 = ping(tb, ns["carol"], ADDR["alice"], count=3)[0]
        nc.check(n == 3 and n2 == 3 and nc.total(srv, "roamed") > roamed0 and
                 endpoint_port(tb, ns["carol"], wgs["carol"].name) == 443,
                 "carol moved to 443: %d/3 to the relay, %d/3 to alice, roamed +%d, her "
                 "endpoint on 443" % (n, n2, nc.total(srv, "roamed") - roamed0))

        # Another port of the relay host is the kernel's.
        lis = tb.popen(tb.relay, [sys.executable, "-c", LISTEN], stdout=subprocess.PIPE,
                       text=True)
        lis.stdout.readline()
        send = ("import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                ".sendto(b'for the kernel', ('%s', %d))" % (tb.relay_ip, OTHER_PORT))
        tb.run(ns["bob"], [sys.executable, "-c", send])
        got = lis.stdout.readline().strip()
        lis.wait(20)
        nc.check(got == "for the kernel",
                 "a UDP socket of the relay host on port %d got its datagram (%s)" % (
                     OTHER_PORT, got))
    finally:
        if ox is not None:
            ox.stop()
        for p in wgs.values():
            p.down()
        if srv is not None:
            srv.stop()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
