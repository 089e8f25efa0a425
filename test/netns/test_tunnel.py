#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End to end with the real client: oxidize-client (TUN, standard UDP) in
the client namespaces, oxidize-server on FLASH with 2 queues and its exit
TAP in the relay namespace, NAT toward the internet namespace.

usage: test_tunnel.py SERVER CLIENT
checks: handshake and addresses on ox0; ping (IPv4 and IPv6) of the relay
and of the internet through the tunnel; a TCP transfer and a UDP run at a moderate rate
with iperf3 (no loss); ping between two clients through the relay; a key not
on the allow-list gets no tunnel; kill -9 and restart of the server: the
clients recover by themselves; SIGTERM: the client disconnects and removes
its interface.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820


class Client:
    """oxidize-client up in a client namespace, its log collected."""

    def __init__(self, tb, ns, binary, key, server_pub, extra=(), port=None, env=None):
        self.argv = [binary, "up", "--server", "%s:%d" % (tb.relay_ip, port or PORT),
                     "--server-key", server_pub, "--key", key, "--tun", "ox0",
                     "--duration", "300"] + list(extra)
        self.lines = []
        self.proc = tb.popen(ns, self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=env)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def log(self):
        return "".join(self.lines)

    def wait_for(self, text, timeout, after=0):
        end = time.time() + timeout
        while time.time() < end:
            if text in "".join(self.lines[after:]):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.t.join(2)
        return self.proc.returncode


def ping(tb, ns, dst, count=5):
    r = tb.run(ns, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst], check=False,
               timeout=30)
    m = re.search(r"(\d+) received", r.stdout)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
    return (int(m.group(1)) if m else 0), (float(rtt.group(1)) if rtt else None)


def iperf_tcp(tb, ns, seconds=3):
    """A TCP run with iperf3 from namespace ns to the internet service: bit/s."""
    server = tb.popen(tb.inet, ["iperf3", "-s", "-B", otb.INET_SERVICE_IP, "-1"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = tb.run(ns, ["iperf3", "-c", otb.INET_SERVICE_IP, "-t", str(seconds), "-J"],
                   check=False, timeout=30)
        tcp = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return tcp.get("end", {}).get("sum_received", {}).get("bits_per_second", 0)


def tun_addrs(tb, ns):
    r = tb.run(ns, ["ip", "-j", "addr", "show", "ox0"], check=False)
    if r.returncode != 0:
        return None, set()
    info = json.loads(r.stdout)[0]
    return info.get("mtu"), {"%s/%d" % (a["local"], a["prefixlen"]) for a in info["addr_info"]}


def start_server(tb, binary, d, allow, extra=(), **kw):
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--tap", "oxtun0",
                                 "--key", os.path.join(d, "server.key"), "--allow", allow,
                                 "--max-sessions", "65536", "--keepalive", "2"] + list(extra),
                    **kw)
    srv.wait_up()
    return srv


def main():
    server, client = sys.argv[1], sys.argv[2]
    nc.require_host()
    if not os.path.exists("/dev/net/tun"):
        nc.skip("no /dev/net/tun")
    if shutil.which("iperf3") is None:
        nc.skip("iperf3 not installed (Debian package iperf3)")
    d = tempfile.mkdtemp(prefix="oxtunnel-")
    tb = nc.testbed(clients=2, queues=2)
    clients, srv, iperf = [], None, None
    try:
        _, spub = otb.keygen(client, d, "server")
        ka, apub = otb.keygen(client, d, "alice")
        kb, bpub = otb.keygen(client, d, "bob")
        km, _ = otb.keygen(client, d, "mallory")
        allow = os.path.join(d, "allow")
        with open(allow, "w") as f:
            f.write("%s alice\n%s bob\n" % (apub, bpub))
        nc.masquerade(tb)
        srv = start_server(tb, server, d, allow)

        a = Client(tb, tb.clients[0], client, ka, spub, ["--route", "198.19.0.0/16"])
        b = Client(tb, tb.clients[1], client, kb, spub)
        clients += [a, b]
        nc.check(a.wait_for("handshake complete", 15) and b.wait_for("handshake complete", 15),
                 "both clients complete the handshake")
        print(a.log + b.log)
        mtu, addrs = tun_addrs(tb, tb.clients[0])
        v4 = [x for x in addrs if x.startswith("100.")]
        nc.check(mtu == 1420 and v4 and v4[0].endswith("/10") and
                 any(x.startswith("fd6f:7869:647a:") for x in addrs),
                 "ox0 has the tunnel addresses and MTU 1420 (%s, %s)" % (sorted(addrs), mtu))
        _, baddrs = tun_addrs(tb, tb.clients[1])
        b_v4 = [x.split("/")[0] for x in baddrs if x.startswith("100.")]
        b_v6 = [x.split("/")[0] for x in baddrs if x.startswith("fd6f:")]

        n, rtt = ping(tb, tb.clients[0], "100.64.0.1")
        nc.check(n == 5, "ping of the relay through the tunnel (%d/5, avg %s ms)" % (n, rtt))
        n, rtt = ping(tb, tb.clients[0], "fd6f:7869:647a::1")
        nc.check(n == 5, "IPv6 ping of the relay through the tunnel (%d/5, avg %s ms)"
                 % (n, rtt))
        n, rtt = ping(tb, tb.clients[0], otb.INET_SERVICE_IP)
        nc.check(n == 5, "ping of the internet through the tunnel and NAT (%d/5, avg %s ms)"
                 % (n, rtt))
        n, rtt = ping(tb, tb.clients[0], b_v4[0] if b_v4 else "100.64.0.2")
        nc.check(n == 5, "ping between two clients through the relay (%d/5, avg %s ms)"
                 % (n, rtt))
        n, rtt = ping(tb, tb.clients[0], b_v6[0] if b_v6 else "fd6f:7869:647a::2")
        nc.check(n == 5, "IPv6 ping between two clients (%d/5, avg %s ms)" % (n, rtt))

        bps = iperf_tcp(tb, tb.clients[0])
        nc.check(bps > 1e6, "TCP through the tunnel with iperf3: %.0f Mbit/s" % (bps / 1e6))
        iperf = tb.popen(tb.inet, ["iperf3", "-s", "-B", otb.INET_SERVICE_IP, "-1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = tb.run(tb.clients[0], ["iperf3", "-c", otb.INET_SERVICE_IP, "-u", "-b", "20M",
                                   "-l", "1200", "-t", "3", "-J"], check=False, timeout=30)
        udp = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        s = udp.get("end", {}).get("sum", {})
        nc.check(s.get("packets", 0) > 1000 and s.get("lost_packets", -1) == 0,
                 "UDP through the tunnel at 20 Mbit/s: %s packets, %s lost" %
                 (s.get("packets"), s.get("lost_packets")))
        iperf.wait(10)
        iperf = None

        m = Client(tb, tb.clients[1], client, km, spub, ["--tun", "ox1"])
        clients.append(m)
        got = m.wait_for("handshake complete", 7)
        nc.check(not got, "a key not on the allow-list gets no tunnel")
        m.stop()

        # kill -9, restart: both clients come back by themselves.
        before = [len(c.lines) for c in (a, b)]
        srv.stop(sig=signal.SIGKILL)
        time.sleep(2)
        t0 = time.time()
        srv = start_server(tb, server, d, allow)
        ok = a.wait_for("handshake complete", 40, before[0]) and \
            b.wait_for("handshake complete", 40, before[1])
        print(a.log[-600:])
        nc.check(ok, "after kill -9 and restart both clients handshook again (%.1f s after "
                 "the restart)" % (time.time() - t0))
        n, _ = ping(tb, tb.clients[0], otb.INET_SERVICE_IP)
        nc.check(n == 5, "traffic flows again (%d/5)" % n)

        tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
        print("relay: decrypted %d, to_tap %d, from_tap %d, client_to_client %d" %
              (tot["decrypted"], tot["to_tap"], tot["from_tap"], tot["client_to_client"]))
        rc = a.stop()
        nc.check(rc == 0 and "disconnecting" in a.log, "SIGTERM: client disconnects, exits 0")
        nc.check(tun_addrs(tb, tb.clients[0])[0] is None, "its ox0 is gone")
        time.sleep(0.5)
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        nc.check(rel["sessions"] == 1, "the relay ended that session (%d left)" % rel["sessions"])
        rc = srv.stop()
        print(srv.log[-1500:])
        nc.check(rc == 0 and "all mbufs back in the pool" in srv.log,
                 "server stops cleanly, every mbuf back")
    finally:
        for c in clients:
            c.stop(sig=signal.SIGKILL)
        if iperf is not None and iperf.poll() is None:
            iperf.kill()
        if srv is not None and srv.proc.poll() is None:
            srv.proc.kill()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
