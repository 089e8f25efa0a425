#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""DNS through the tunnel: the relay's --dns set on a full-tunnel client.

A client namespace whose own resolver (dnsmasq on a LAN address on its lo, named in
its /etc/resolv.conf: `ip netns exec` binds /etc/netns/NS/resolv.conf
there) answers example.test with 192.0.2.11; the internet namespace's
resolver (dnsmasq on the service address, behind the relay's exit and NAT)
answers 192.0.2.77. The relay runs with --dns SERVICE_ADDRESS.

usage: test_dns.py SERVER CLIENT
checks: oxidize-client with a full tunnel (0.0.0.0/0, ::/0) asks the relay
for its CONFIG and sets its server (/etc/resolv.conf written in place, its
bytes kept in a state file first); 8 lookups of distinct names all get the
internet resolver's answer, its log has each of them, the LAN resolver's
none; SIGTERM: the original resolv.conf back byte for byte, the state file
gone; again, then kill -9: the tunnel's server left behind, the state file
kept; the next start (with --no-dns) puts the original back before
anything else and says so; a relay with no --dns: the client says so and
leaves resolv.conf alone; --dns on the client wins over the relay's;
--dns-via resolved and resolvconf, against stand-ins for resolvectl and
resolvconf first in PATH that record what they are asked (this host runs
neither): `resolvectl dns ox0 SERVER` and `domain ox0 ~.` while up,
`revert ox0` at exit; `resolvconf -a ox0 -m 0 -x` given the nameserver
line, `-d ox0 -f` at exit; resolv.conf untouched by both.
"""

import os
import shutil
import signal
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb
from test_tunnel import Client, start_server

LAN_DNS = "198.18.99.53"
INET_DNS = otb.INET_SERVICE_IP
ORIGINAL = "# the LAN's\nnameserver %s\noptions timeout:1 attempts:1\n" % LAN_DNS
# What resolvectl and resolvconf are asked, recorded by stand-ins.
STAND_IN = """#!/bin/sh
echo "$(basename "$0") $*" >> "%s"
if [ "$(basename "$0")" = resolvconf ] && [ "$1" = -a ]; then cat >> "%s"; fi
exit 0
"""


def dnsmasq(tb, ns, addr, answer, log):
    return tb.popen(ns, ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                         "--bind-interfaces", "--listen-address", addr, "--port", "53",
                         "--user=root", "--pid-file=", "--log-queries",
                         "--log-facility", log, "--address=/example.test/%s" % answer])


def lookup(tb, ns, name):
    r = tb.run(ns, ["getent", "ahostsv4", name], check=False, timeout=20)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout.split() else None


def queries(log, tag):
    try:
        with open(log) as f:
            return sum(1 for ln in f if "query[A]" in ln and tag in ln)
    except OSError:
        return 0


def main():
    server, client = sys.argv[1], sys.argv[2]
    nc.require_host()
    nc.require_tun_wg()
    if shutil.which("dnsmasq") is None:
        nc.skip("dnsmasq not installed (Debian package dnsmasq-base)")
    d = tempfile.mkdtemp(prefix="oxdns-")
    tb = nc.testbed(clients=1, queues=2)
    ns = tb.clients[0]
    etc = "/etc/netns/%s" % ns
    resolv = os.path.join(etc, "resolv.conf")
    state = os.path.join(d, "state")
    srv, clients = None, []
    try:
        os.makedirs(etc, exist_ok=True)
        with open(resolv, "w") as f:
            f.write(ORIGINAL)
        _, spub = otb.keygen(client, d, "server")
        key, pub = otb.keygen(client, d, "alice")
        allow = os.path.join(d, "allow")
        with open(allow, "w") as f:
            f.write("%s alice\n" % pub)
        nc.masquerade(tb)
        tb.run(ns, ["ip", "addr", "add", LAN_DNS + "/32", "dev", "lo"])
        lan_log, inet_log = os.path.join(d, "lan.log"), os.path.join(d, "inet.log")
        dnsmasq(tb, ns, LAN_DNS, "192.0.2.11", lan_log)
        dnsmasq(tb, tb.inet, INET_DNS, "192.0.2.77", inet_log)
        time.sleep(0.5)
        nc.check(lookup(tb, ns, "before.example.test") == "192.0.2.11",
                 "before the tunnel: names resolve with the LAN's resolver")

        srv = start_server(tb, server, d, allow, ["--dns", INET_DNS])
        nc.check("DNS servers for OxTunnel clients: %s" % INET_DNS in srv.log,
                 "the relay says the DNS servers it hands out")
        full = ["--route", "0.0.0.0/0", "--route", "::/0", "--state-dir", state,
                "--dns-via", "file"]

        def up(extra=()):
            c = Client(tb, ns, client, key, spub, full + list(extra))
            clients.append(c)
            return c

        a = up()
        ok = a.wait_for("DNS through the tunnel: %s" % INET_DNS, 20)
        with open(resolv) as f:
            now = f.read()
        nc.check(ok and "nameserver %s" % INET_DNS in now and LAN_DNS not in now and
                 os.path.exists(os.path.join(state, "ox0.dns")),
                 "the relay's server set through /etc/resolv.conf, the original kept in the "
                 "state file (%r)" % now)
        lan0 = queries(lan_log, "example.test")
        got = [lookup(tb, ns, "n%d.example.test" % i) for i in range(8)]
        inet_n = sum(queries(inet_log, "n%d.example.test" % i) > 0 for i in range(8))
        lan_n = queries(lan_log, "example.test") - lan0
        nc.check(got == ["192.0.2.77"] * 8 and inet_n == 8 and lan_n == 0,
                 "8 lookups through the tunnel: answers %s, %d reached the internet "
                 "resolver, %d the LAN's" % (sorted(set(map(str, got))), inet_n, lan_n))
        rel = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
        nc.check(rel.get("config_sent", 0) >= 1,
                 "the relay answered the CONFIG_REQUEST (config_sent %d)"
                 % rel.get("config_sent", 0))

        rc = a.stop()
        with open(resolv) as f:
            back = f.read()
        nc.check(rc == 0 and back == ORIGINAL and not os.path.exists(
            os.path.join(state, "ox0.dns")) and "DNS settings put back" in a.log,
                 "SIGTERM: the original resolv.conf back byte for byte, the state file gone")

        b = up()
        ok = b.wait_for("DNS through the tunnel", 20)
        b.stop(sig=signal.SIGKILL)
        with open(resolv) as f:
            left = f.read()
        nc.check(ok and INET_DNS in left and os.path.exists(os.path.join(state, "ox0.dns")),
                 "kill -9: the tunnel's server left in resolv.conf, the state file kept")
        c = up(["--no-dns"])
        ok = c.wait_for("handshake complete", 20)
        with open(resolv) as f:
            back = f.read()
        nc.check(ok and back == ORIGINAL and "did not put the DNS settings back" in c.log and
                 not os.path.exists(os.path.join(state, "ox0.dns")),
                 "the next start (--no-dns) put the original back first and said so")
        nc.check(lookup(tb, ns, "after.example.test") == "192.0.2.11",
                 "with --no-dns names resolve with the LAN's resolver again")
        c.stop()

        # The client's own choice wins; a relay without --dns is said.
        e = up(["--dns", LAN_DNS])
        ok = e.wait_for("DNS through the tunnel: %s" % LAN_DNS, 20)
        e.stop()
        nc.check(ok, "--dns on the client sets its own server in place of the relay's")
        srv.stop()
        srv = start_server(tb, server, d, allow)
        f = up()
        ok = f.wait_for("relay hands out no DNS servers", 20)
        with open(resolv) as fh:
            same = fh.read() == ORIGINAL
        f.stop()
        nc.check(ok and same, "a relay with no --dns: the client says so, resolv.conf as it was")

        # systemd-resolved and resolvconf: what they are asked.
        srv.stop()
        srv = start_server(tb, server, d, allow, ["--dns", INET_DNS])
        fake = os.path.join(d, "bin")
        calls = os.path.join(d, "calls.log")
        os.makedirs(fake)
        for exe in ("resolvectl", "resolvconf"):
            with open(os.path.join(fake, exe), "w") as fh:
                fh.write(STAND_IN % (calls, calls))
            os.chmod(os.path.join(fake, exe), 0o755)
        env = dict(os.environ, PATH=fake + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        for via, up_calls, down_calls in (
                ("resolved", ["resolvectl dns ox0 %s" % INET_DNS, "resolvectl domain ox0 ~."],
                 ["resolvectl revert ox0"]),
                ("resolvconf", ["resolvconf -a ox0 -m 0 -x", "nameserver %s" % INET_DNS],
                 ["resolvconf -d ox0 -f"])):
            if os.path.exists(calls):
                os.unlink(calls)
            g = Client(tb, ns, client, key, spub, full[:-1] + [via], env=env)
            clients.append(g)
            ok = g.wait_for("DNS through the tunnel: %s" % INET_DNS, 20)
            with open(calls) as fh:
                while_up = fh.read().splitlines() if ok else []
            g.stop()
            with open(calls) as fh:
                after = fh.read().splitlines()[len(while_up):]
            with open(resolv) as fh:
                same = fh.read() == ORIGINAL
            nc.check(ok and all(c in while_up for c in up_calls) and after == down_calls and
                     same and not os.path.exists(os.path.join(state, "ox0.dns")),
                     "--dns-via %s: asked %s while up, %s at exit; resolv.conf untouched" % (
                         via, while_up, after))
    finally:
        for c in clients:
            c.stop(sig=signal.SIGKILL)
        if srv is not None and srv.proc.poll() is None:
            srv.stop()
        tb.down()
        shutil.rmtree(etc, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
