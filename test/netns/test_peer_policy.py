#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Rates and expiry per peer: rate= and expires= on allow-list lines.

Four peers: alice (oxidize-client) and bob (wireguard-go) at rate=20mbit,
carol (wireguard-go) with no rate, dave (oxidize-client) whose line expires
in 2099, brought forward by a SIGHUP to the next minute boundary at least
20 s away. An iperf3 server in the
internet namespace behind the relay's exit (NAT), and one in bob's.

usage: test_peer_policy.py SERVER CLIENT PEER_PY
checks: TCP from alice and from bob to the internet, and from the internet
to each (-R), within 10% of 20 Mbit/s (iperf3's goodput, which leaves out
the 52 bytes of IP and TCP headers of each 1420-byte packet the rate
counts); carol, sending at the same time as alice, gets more than twice
the rate and has nothing dropped; UDP from carol to bob at 40 Mbit/s
reaches bob at 20 (bob's bucket to him, sealed on whichever lcore carol's
packets came in on), the rest counted as drop_rate_to_peer and on bob;
`oxidize-peer.py set alice --rate 5mbit` and a SIGHUP: alice at 5 Mbit/s
within 10%, no session ended or started anew; at dave's expiry his session
ends without a reload (the connection log says why=expired), nobody else's
does, his client's next handshakes are refused (hs_drop_expired), and
`oxidize-peer.py list` shows alice's rate and dave's expiry as past;
`oxidize-peer.py set dave --expires never`: dave back without restarting
his client; stock `wg set` rewrites bob's line and keeps its rate.
"""

import json
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
INET_NET = "198.19.0.0/16"  # the internet namespace's service, through the tunnel
ADDR = {"alice": "100.64.0.10", "bob": "100.64.0.11", "carol": "100.64.0.12",
        "dave": "100.64.0.13"}
RELAY = "100.64.0.1"
RATE = 20e6
# iperf3 counts TCP payload: 1368 of the 1420 bytes of a packet the rate
# counts (IPv4 and TCP headers with timestamps, 52 bytes).
TCP_SHARE = 1368 / 1420.0
# Long enough that the first burst (250 ms of the rate) adds under 4%.
SECS = 8


def v6_of(name):
    return "fd6f:7869:647a::%x" % int(ADDR[name].rsplit(".", 1)[1])


def iperf(tb, ns, server_ns, bind, port, args, seconds):
    """iperf3 from ns to an iperf3 server started in server_ns on bind:port:
    (the receiver's bit/s, the JSON)."""
    server = tb.popen(server_ns, ["iperf3", "-s", "-B", bind, "-p", str(port), "-1"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = tb.run(ns, ["iperf3", "-c", bind, "-p", str(port), "-t", str(seconds), "-J"] +
                   list(args), check=False, timeout=seconds + 30)
        out = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    end = out.get("end", {})
    if "-u" in args:
        return end.get("sum", {}).get("bits_per_second", 0), out
    return end.get("sum_received", {}).get("bits_per_second", 0), out


def within(bps, rate, share):
    return abs(bps - rate * share) <= 0.1 * rate * share


def minute_after(seconds):
    """The first whole minute (UTC) at least `seconds` from now: (its UNIX
    time, its expires= text)."""
    t = int(time.time()) + seconds
    t += (60 - t % 60) % 60
    return t, time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(t))


def wait_reload(srv, seen, timeout=10):
    end = time.time() + timeout
    while time.time() < end and srv.log.count("allow-list reloaded") == seen:
        time.sleep(0.1)
    return srv.log.count("allow-list reloaded") > seen


def main():
    server, client, peer_py = sys.argv[1], sys.argv[2], sys.argv[3]
    nc.require_host()
    nc.require_tun_wg()
    if shutil.which("iperf3") is None:
        nc.skip("iperf3 not installed (Debian package iperf3)")
    d = tempfile.mkdtemp(prefix="oxpol-")
    tb = nc.testbed(clients=4, queues=2)
    srv, oxs, wgs = None, {}, []
    try:
        _, spub = otb.keygen(client, d, "server")
        keys = {n: otb.keygen(client, d, n) for n in ("alice", "dave")}
        for name in ("bob", "carol"):
            path = os.path.join(d, name + ".wgkey")
            keys[name] = (path, nc.wg_keyfile(path))
        allow = os.path.join(d, "allow")
        with open(allow, "w") as f:
            f.write("%s alice %s rate=20mbit\n" % (keys["alice"][1], ADDR["alice"]))
            f.write("%s bob %s rate=20mbit\n" % (keys["bob"][1], ADDR["bob"]))
            f.write("%s carol %s\n" % (keys["carol"][1], ADDR["carol"]))
            f.write("%s dave %s expires=2099-12-31T23:59Z\n" % (keys["dave"][1], ADDR["dave"]))
        nc.masquerade(tb)
        tag = "%d%d" % (os.getpid() % 10000, int(time.time() * 10) % 1000)
        wg_name = "oxp%s" % tag
        srv = start_server(tb, server, d, allow, ["--wg-name", wg_name])
        nc.check("0 expired" in srv.log and "2 line(s) with a rate" in srv.log and
                 "1 to expire, the next at 2099-12-31T23:59Z" in srv.log,
                 "the relay says what the allow-list holds: two rates, one expiry")
        endpoint = "%s:%d" % (tb.relay_ip, 51820)
        ns = {"alice": tb.clients[0], "bob": tb.clients[1], "carol": tb.clients[2],
              "dave": tb.clients[3]}
        for name in ("bob", "carol"):
            p = WgPeer(tb, ns[name], "ox%s%s" % (name[0], tag), d)
            p.key, p.pub = keys[name]
            wgs.append(p)
            p.up(spub, endpoint, ADDR[name], v6_of(name), [POOL4, POOL6, INET_NET])
        for name in ("alice", "dave"):
            oxs[name] = Client(tb, ns[name], client, keys[name][0], spub,
                               ["--route", POOL4, "--route", POOL6, "--route", INET_NET])
        ok = all(oxs[n].wait_for("handshake complete", 15) for n in oxs)
        ok = ok and all(ping(tb, ns[n], RELAY, count=2)[0] > 0 for n in ("bob", "carol"))
        nc.check(ok, "all four peers connected")
        hs0 = nc.telemetry(srv.prefix, "/oxidize/relay").get("handshakes_new", 0)

        inet = otb.INET_SERVICE_IP
        for name in ("alice", "bob"):
            up, _ = iperf(tb, ns[name], tb.inet, inet, 5201, [], SECS)
            down, _ = iperf(tb, ns[name], tb.inet, inet, 5201, ["-R"], SECS)
            nc.check(within(up, RATE, TCP_SHARE) and within(down, RATE, TCP_SHARE),
                     "%s at rate=20mbit: TCP to the internet %.2f Mbit/s, from it %.2f "
                     "(%.2f expected, 10%%)" % (name, up / 1e6, down / 1e6,
                                                RATE * TCP_SHARE / 1e6))
        st = nc.peer_status(srv)
        print("rate drops: %s" % {n: (st[n].get("rate_drops_from"), st[n].get("rate_drops_to"))
                                  for n in ("alice", "bob")})

        # An unlimited peer beside a limited one: carol alone is not policed.
        server2 = tb.popen(tb.inet, ["iperf3", "-s", "-B", inet, "-p", "5202", "-1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            alice_run = tb.popen(ns["alice"], ["iperf3", "-c", inet, "-p", "5202", "-t", "5",
                                               "-J"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
            carol_bps, _ = iperf(tb, ns["carol"], tb.inet, inet, 5203, [], 5)
            a_out = alice_run.communicate(timeout=30)[0]
            server2.wait(10)
        finally:
            if server2.poll() is None:
                server2.kill()
                server2.wait()
        a_bps = json.loads(a_out).get("end", {}).get("sum_received", {}).get(
            "bits_per_second", 0) if a_out.strip().startswith("{") else 0
        c = nc.peer_status(srv).get("carol", {})
        nc.check(carol_bps > 2 * RATE and c.get("rate_drops_from") == 0 and
                 c.get("rate_drops_to") == 0 and c.get("rate_bps") == 0,
                 "carol (no rate) beside alice: %.1f Mbit/s, nothing dropped by rate "
                 "(alice %.1f Mbit/s at the same time)" % (carol_bps / 1e6, a_bps / 1e6))

        # Client to client: bob's bucket to him holds carol's packets.
        to0 = nc.total(srv, "drop_rate_to_peer")
        bob_to0 = nc.peer_status(srv)["bob"].get("rate_drops_to", 0)
        udp, out = iperf(tb, ns["carol"], ns["bob"], ADDR["bob"], 5201,
                         ["-u", "-b", "40M", "-l", "1200"], 6)
        got = out.get("end", {}).get("sum", {})
        # The rate counts 1,228-byte packets (1,200 and IPv4 and UDP headers).
        recv = udp * (1 - got.get("lost_percent", 100) / 100.0)
        to = nc.total(srv, "drop_rate_to_peer") - to0
        bob_to = nc.peer_status(srv)["bob"].get("rate_drops_to", 0) - bob_to0
        nc.check(within(recv, RATE, 1200 / 1228.0) and to > 0 and bob_to == to,
                 "carol to bob by UDP at 40 Mbit/s: %.2f Mbit/s reach bob (%.2f expected), "
                 "%d dropped on bob's rate (drop_rate_to_peer +%d)" % (
                     recv / 1e6, RATE * 1200 / 1228.0 / 1e6, bob_to, to))

        # A new rate at a SIGHUP: no one's session ends or starts again.
        seen = srv.log.count("allow-list reloaded")
        pid = nc.server_pid(tb)
        r = subprocess.run(["/usr/bin/python3", peer_py, "set", "alice", "--rate", "5mbit",
                            "--allow", allow, "--no-reload"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        tb.run(tb.relay, ["kill", "-HUP", str(pid)])
        nc.check(r.returncode == 0 and wait_reload(srv, seen),
                 "oxidize-peer.py set alice --rate 5mbit, reloaded (%s)" % r.stdout.strip())
        up, _ = iperf(tb, ns["alice"], tb.inet, inet, 5201, [], SECS)
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        nc.check(within(up, 5e6, TCP_SHARE) and rel.get("sessions") == 4 and
                 rel.get("handshakes_new") == hs0 and "why=" not in srv.log,
                 "alice at 5mbit after the reload: %.2f Mbit/s (%.2f expected); %d sessions, "
                 "%d new, none ended" % (up / 1e6, 5 * TCP_SHARE, rel.get("sessions"),
                                         rel.get("handshakes_new", 0) - hs0))

        # Dave's expiry brought forward by a SIGHUP, then it comes: his
        # session ends, no one else's, with no reload.
        expiry, expiry_text = minute_after(20)
        seen = srv.log.count("allow-list reloaded")
        r = subprocess.run(["/usr/bin/python3", peer_py, "set", "dave", "--expires", expiry_text,
                            "--allow", allow, "--no-reload"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        tb.run(tb.relay, ["kill", "-HUP", str(pid)])
        nc.check(r.returncode == 0 and wait_reload(srv, seen) and
                 "the next at %s" % expiry_text in srv.log and
                 nc.peer_status(srv)["dave"].get("connected") == 1,
                 "set dave --expires %s, reloaded: still connected until then" % expiry_text)
        wait = expiry - time.time()
        print("waiting %.0f s for dave's expiry at %s" % (max(wait, 0), expiry_text))
        if wait > 0:
            time.sleep(wait)
        end = time.time() + 5
        while time.time() < end and "why=expired" not in srv.log:
            time.sleep(0.1)
        late = time.time() - expiry
        st = nc.peer_status(srv)
        ended = [ln for ln in srv.log.splitlines() if "event=end" in ln]
        nc.check(len(ended) == 1 and "peer=dave" in ended[0] and "why=expired" in ended[0] and
                 not st["dave"].get("connected") and
                 all(st[n].get("connected") for n in ("alice", "bob", "carol")),
                 "at %s dave's session ended (%.1f s after; %s), the three others kept" % (
                     expiry_text, late, ended))
        exp0 = nc.telemetry(srv.prefix, "/oxidize/relay").get("hs_drop_expired", 0)
        end = time.time() + 40
        while time.time() < end and \
                nc.telemetry(srv.prefix, "/oxidize/relay").get("hs_drop_expired", 0) == exp0:
            time.sleep(0.5)
        exp = nc.telemetry(srv.prefix, "/oxidize/relay").get("hs_drop_expired", 0)
        nc.check(exp > exp0 and nc.peer_status(srv)["dave"].get("connected") == 0 and
                 "line 4 dave: handshake refused, the line expired" in srv.log,
                 "dave's client handshakes again and is refused (hs_drop_expired %d), the log "
                 "naming his line" % exp)
        r = subprocess.run(["/usr/bin/python3", peer_py, "list", "--all", "--prefix",
                            srv.prefix], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        print(r.stdout)
        rows = {ln.split()[0]: ln for ln in r.stdout.splitlines()[1:] if ln.split()}
        nc.check(r.returncode == 0 and " 5mbit " in rows.get("alice", "") and
                 "%s (past)" % expiry_text in rows.get("dave", "") and
                 " 20mbit " in rows.get("bob", ""),
                 "oxidize-peer.py list shows the rates and dave's expiry, past")

        # Taken away: dave comes back by himself.
        seen = srv.log.count("allow-list reloaded")
        before = len(oxs["dave"].lines)
        r = subprocess.run(["/usr/bin/python3", peer_py, "set", "dave", "--expires", "never",
                            "--allow", allow, "--no-reload"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        tb.run(tb.relay, ["kill", "-HUP", str(pid)])
        back = wait_reload(srv, seen) and \
            oxs["dave"].wait_for("handshake complete", 40, before)
        n, _ = ping(tb, ns["dave"], RELAY, count=2)
        nc.check(r.returncode == 0 and back and n > 0,
                 "set dave --expires never: his client is admitted again (%d/2 pings)" % n)

        # wg set rewrites bob's line: its rate stays.
        r = subprocess.run(["wg", "set", wg_name, "peer", keys["bob"][1], "allowed-ips",
                            "%s/32,%s/128" % (ADDR["bob"], v6_of("bob"))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with open(allow) as f:
            line = [ln for ln in f if ln.startswith(keys["bob"][1])]
        nc.check(r.returncode == 0 and line and " rate=20mbit" in line[0],
                 "wg set rewrites bob's line and keeps rate=20mbit (%s%s)" % (
                     line, r.stdout.strip()))
    finally:
        for c in oxs.values():
            c.stop()
        for p in wgs:
            p.down()
        if srv is not None:
            srv.stop()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
