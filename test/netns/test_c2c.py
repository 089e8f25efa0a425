#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Who may reach whom: --c2c and --c2c-allow over the allow-list's groups.

Three peers in two groups, OxTunnel and WireGuard mixed: alice
(oxidize-client) and bob (wireguard-go) in group staff, carol (wireguard-go)
in group ops. For each policy a fresh relay and fresh peers; every peer
pings every other, both ways, and the relay's tunnel address.

usage: test_c2c.py SERVER CLIENT
checks: --c2c all: every pair both ways; --c2c group: alice and bob both
ways, neither with carol, each refused packet counted (drop_c2c_refused, and
per peer c2c_refused in /oxidize/peers, which shows each peer's groups);
--c2c none: no pair, the relay still answers everyone; --c2c group with
--c2c-allow staff:ops: alice's and bob's echo requests reach carol (counted
client to client) and carol's replies are refused (counted on carol), so a
one-way rule is one way; carol's line given group=staff too and a SIGHUP:
alice and carol reach each other without a reconnect; a bad --c2c is
refused at start, naming it.
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


def v6_of(name):
    """The IPv6 the pool derives from a peer's IPv4 (its host number)."""
    return "fd6f:7869:647a::%x" % int(ADDR[name].rsplit(".", 1)[1])


class Bed:
    """The relay and the three peers, up under one policy."""

    def __init__(self, tb, server, client, d, allow, keys, spub, policy):
        self.tb, self.ox, self.peers, self.srv = tb, None, [], None
        self.ns = {"alice": tb.clients[0], "bob": tb.clients[1], "carol": tb.clients[2]}
        tag = "%d%d" % (os.getpid() % 10000, int(time.time() * 10) % 1000)
        self.wg_name = "oxr%s" % tag
        try:
            self.srv = start_server(tb, server, d, allow, policy + ["--wg-name", self.wg_name])
            endpoint = "%s:%d" % (tb.relay_ip, 51820)
            for i, name in ((1, "bob"), (2, "carol")):
                p = WgPeer(tb, tb.clients[i], "ox%s%s" % (name[0], tag), d)
                p.key, p.pub = keys[name]
                self.peers.append(p)
                p.up(spub, endpoint, ADDR[name], v6_of(name), [POOL4, POOL6])
            self.ox = Client(tb, tb.clients[0], client, keys["alice"][0], spub,
                             ["--route", POOL4, "--route", POOL6])
        except BaseException:
            # What was started is stopped: wireguard-go's sockets in
            # /var/run/wireguard outlive a test that leaves it running.
            self.down()
            raise

    def connected(self):
        ok = self.ox.wait_for("handshake complete", 15)
        for who in ("bob", "carol"):
            n, _ = ping(self.tb, self.ns[who], RELAY, count=3)
            ok = ok and n > 0
        return ok

    def matrix(self, count=3):
        """{(from, to): echo replies of count}."""
        return {(a, b): ping(self.tb, self.ns[a], ADDR[b], count=count)[0]
                for a in ADDR for b in ADDR if a != b}

    def down(self):
        if self.ox is not None:
            self.ox.stop()
        for p in self.peers:
            p.down()
        if self.srv is not None:
            self.srv.stop()


def main():
    server, client = sys.argv[1], sys.argv[2]
    nc.require_host()
    nc.require_tun_wg()
    d = tempfile.mkdtemp(prefix="oxc2c-")
    tb = nc.testbed(clients=3, queues=2)
    bed = None
    try:
        _, spub = otb.keygen(client, d, "server")
        keys = {"alice": otb.keygen(client, d, "alice")}
        for name in ("bob", "carol"):
            path = os.path.join(d, name + ".wgkey")
            keys[name] = (path, nc.wg_keyfile(path))
        allow = os.path.join(d, "allow")

        def write_allow(carol_groups):
            with open(allow, "w") as f:
                f.write("%s alice %s group=staff\n" % (keys["alice"][1], ADDR["alice"]))
                f.write("%s bob %s group=staff\n" % (keys["bob"][1], ADDR["bob"]))
                f.write("%s carol %s %s\n" % (keys["carol"][1], ADDR["carol"], " ".join(
                    "group=" + g for g in carol_groups)))
        write_allow(["ops"])

        # A policy the relay does not know: refused at start, by name.
        r = tb.run(tb.relay, [server, "--no-pci", "--file-prefix", "oxc2cbad%d" % os.getpid(),
                              "--", "--iface", "eth0", "--key", os.path.join(d, "server.key"),
                              "--allow", allow, "--c2c", "some"], check=False, timeout=60)
        nc.check(r.returncode != 0 and "--c2c takes all, group or none, not 'some'" in
                 r.stdout + r.stderr, "--c2c some: refused at start, naming it")

        everyone = {(a, b) for a in ADDR for b in ADDR if a != b}
        staff = {("alice", "bob"), ("bob", "alice")}
        for policy, reach in ((["--c2c", "all"], everyone), (["--c2c", "group"], staff),
                              (["--c2c", "none"], set())):
            bed = Bed(tb, server, client, d, allow, keys, spub, policy)
            nc.check(bed.connected(), "%s: all three peers connected" % " ".join(policy))
            before = nc.total(bed.srv, "drop_c2c_refused")
            m = bed.matrix()
            refused = nc.total(bed.srv, "drop_c2c_refused") - before
            wrong = {k: v for k, v in m.items() if (v == 3) != (k in reach)}
            nc.check(not wrong, "%s: %d of 6 directed pairs reach each other, as they should "
                     "(wrong: %s)" % (" ".join(policy), sum(1 for v in m.values() if v == 3),
                                      wrong or "none"))
            # Each refused echo request is one drop at its sender's session.
            nc.check(refused == 3 * (6 - len(reach)),
                     "%s: drop_c2c_refused +%d (%d expected)" % (
                         " ".join(policy), refused, 3 * (6 - len(reach))))
            n = [ping(tb, bed.ns[w], RELAY, count=2)[0] for w in ADDR]
            nc.check(n == [2, 2, 2], "%s: the relay answers every peer (%s)" % (
                " ".join(policy), n))
            if policy[1] == "group":
                st = nc.peer_status(bed.srv)
                nc.check(st.get("alice", {}).get("groups") == "staff" and
                         st.get("carol", {}).get("groups") == "ops" and
                         st.get("alice", {}).get("c2c_refused") == 3 and
                         st.get("carol", {}).get("c2c_refused") == 6,
                         "/oxidize/peers: each peer's groups and its refused packets "
                         "(alice %s, carol %s)" % (
                             {k: st.get("alice", {}).get(k) for k in ("groups", "c2c_refused")},
                             {k: st.get("carol", {}).get(k) for k in ("groups", "c2c_refused")}))
            bed.down()
            bed = None

        # One way: staff may reach ops, not the reverse.
        bed = Bed(tb, server, client, d, allow, keys, spub,
                  ["--c2c", "group", "--c2c-allow", "staff:ops"])
        nc.check(bed.connected(), "--c2c-allow staff:ops: all three connected")
        c2c0 = nc.total(bed.srv, "client_to_client")
        n = ping(tb, bed.ns["alice"], ADDR["carol"], count=3)[0]
        st = nc.peer_status(bed.srv)
        c2c = nc.total(bed.srv, "client_to_client") - c2c0
        carol, alice = st.get("carol", {}), st.get("alice", {})
        nc.check(n == 0 and c2c >= 3 and carol.get("c2c_refused") == 3 and
                 alice.get("c2c_refused") == 0,
                 "--c2c-allow staff:ops: alice's echo requests reach carol (%d relayed) and "
                 "carol's replies are refused (carol %s, alice %s): one way" % (
                     c2c, carol.get("c2c_refused"), alice.get("c2c_refused")))
        # Carol in staff too, by a reload: no reconnect needed.
        seen = bed.srv.log.count("allow-list reloaded")
        write_allow(["ops", "staff"])
        tb.run(tb.relay, ["kill", "-HUP", str(nc.server_pid(tb))])
        end = time.time() + 10
        while time.time() < end and bed.srv.log.count("allow-list reloaded") == seen:
            time.sleep(0.1)
        n1 = ping(tb, bed.ns["alice"], ADDR["carol"], count=3)[0]
        n2 = ping(tb, bed.ns["carol"], ADDR["bob"], count=3)[0]
        st = nc.peer_status(bed.srv)
        groups = st.get("carol", {}).get("groups")
        nc.check(n1 == 3 and n2 == 3 and set((groups or "").split(",")) == {"ops", "staff"},
                 "carol given group=staff at a SIGHUP: alice <-> carol %d/3, carol <-> bob "
                 "%d/3, groups %s" % (n1, n2, groups))
        # Stock wg rewrites carol's line: her groups stay on it.
        r = subprocess.run(["wg", "set", bed.wg_name, "peer", keys["carol"][1], "allowed-ips",
                            "%s/32,%s/128" % (ADDR["carol"], v6_of("carol"))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with open(allow) as f:
            line = [ln for ln in f if ln.startswith(keys["carol"][1])]
        nc.check(r.returncode == 0 and line and "group=ops" in line[0] and
                 "group=staff" in line[0],
                 "wg set rewrites carol's line and keeps her groups (%s%s)" % (
                     line, r.stdout.strip()))
    finally:
        if bed is not None:
            bed.down()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
