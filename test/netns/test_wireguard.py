#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""WireGuard on the relay's port, against an implementation we did not
write: Debian's wireguard-go in a client namespace, set up with wg, and
oxidize-server on FLASH with 2 queues and its exit TAP in the relay
namespace (NAT toward the internet namespace); an OxTunnel client
(oxidize-client) in the other client namespace.

usage: test_wireguard.py SERVER CLIENT [rekey|aimed]
rekey: one peer pings through the relay for 135 s, across wireguard-go's
rekey at 120 s: no ping lost, a second handshake, the same session.
aimed: valid-mac1 INITs spoofed from the clients' own addresses (50/s
each) do not keep a wireguard-go peer or an oxidize-client out, below
load and under it.
checks: usertools/oxidize-peer.py adds the peer to the running relay and
prints its wg-quick configuration, which configures wireguard-go (through
`wg-quick strip` and `wg setconf`, the addresses and routes from it); the
WireGuard handshake; ping (IPv4 and IPv6) of the relay and ping of the
internet through NAT; TCP with iperf3; ping both ways between the
WireGuard peer and the OxTunnel client (client to client across the two
protocols, in the data plane) and between two wireguard-go peers, one
with a preshared key; a
WireGuard key not on the allow-list gets
no handshake; the relay's counters show both protocols' sessions; roaming
to a new source port; INITs with a bad mac1 never reach the control
thread; a captured DATA sent again is a replay; oxidize-peer.py remove ends
the peer's session; under a flood of INITs with a valid mac1 from 16
sources the relay answers with cookies and a new wireguard-go peer still
connects (through WireGuard's own cookie handling).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb
from test_tunnel import Client, iperf_tcp, ping, start_server

HERE = os.path.dirname(os.path.abspath(__file__))
# Run through its own #! (Debian's python3, whose cryptography setup installs).
PEER = os.path.join(HERE, "..", "..", "usertools", "oxidize-peer.py")
PROBE = os.path.join(HERE, "wgprobe.py")
HS_LOAD_PPS = 50  # initiations per second above which the relay wants cookies
IDLE_S = 10  # sessions silent this long end (peers keep theirs with keepalives)


def probe(tb, ns, *args):
    """Run wgprobe.py in namespace ns: its JSON line."""
    r = tb.run(ns, [sys.executable, PROBE] + [str(a) for a in args], check=False, timeout=60)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": r.stdout + r.stderr}


def reloads(srv):
    """How many allow-list reloads the relay has logged so far."""
    return len(re.findall(r"allow-list reloaded: (\d+) key", srv.log))


def reloaded(srv, n_keys, seen, timeout=5):
    """Wait for the relay's next allow-list reload (after `seen` of them)
    and that it holds n_keys keys."""
    end = time.time() + timeout
    while time.time() < end:
        done = re.findall(r"allow-list reloaded: (\d+) key", srv.log)
        if len(done) > seen:
            return int(done[seen]) == n_keys
        time.sleep(0.1)
    return False


def totals(srv):
    return nc.telemetry(srv.prefix, "/oxidize/stats")["total"]


def add_peer(d, allow, name, endpoint, conf, pid, extra=()):
    """oxidize-peer.py add: its exit status and output."""
    return subprocess.run([PEER, "add", name, "--allow", allow,
                           "--key", os.path.join(d, "server.key"), "--endpoint", endpoint,
                           "--keepalive", "5", "--out", conf, "--reload-pid", str(pid)] +
                          list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class WgPeer:
    """wireguard-go in the foreground in a namespace, configured with wg."""

    def __init__(self, tb, ns, name, d):
        self.tb, self.ns, self.name = tb, ns, name
        self.key = os.path.join(d, name + ".key")
        self.pub = nc.wg_keyfile(self.key)
        self.proc = None

    def start(self):
        # Its control socket is /var/run/wireguard/NAME.sock, shared by every
        # namespace: the name is unique to this test run.
        self.proc = self.tb.popen(self.ns, ["wireguard-go", "-f", self.name],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = "/var/run/wireguard/%s.sock" % self.name
        end = time.time() + 5
        while time.time() < end and not os.path.exists(sock):
            time.sleep(0.05)

    def addresses(self, addrs, routes):
        run = self.tb.run
        for a in addrs:
            run(self.ns, ["ip", "addr", "add", a, "dev", self.name])
        run(self.ns, ["ip", "link", "set", self.name, "up"])
        for r in routes:
            run(self.ns, ["ip", "-6" if ":" in r else "-4", "route", "add", r, "dev",
                          self.name])

    def up(self, server_pub, endpoint, v4, v6, routes):
        """By hand with wg set (the refusal case)."""
        self.start()
        self.tb.run(self.ns, ["wg", "set", self.name, "private-key", self.key, "peer",
                              server_pub, "endpoint", endpoint, "allowed-ips",
                              ",".join(routes), "persistent-keepalive", "5"])
        self.addresses([v4 + "/32", v6 + "/128"], routes)

    def up_from(self, conf_path):
        """From a wg-quick configuration: wg-quick strip, wg setconf, then
        its Address lines and, for AllowedIPs, routes (0/0 as two halves, so
        the more specific route to the endpoint stays)."""
        self.start()
        stripped = subprocess.run(["wg-quick", "strip", conf_path], stdout=subprocess.PIPE,
                                  text=True, check=True).stdout
        plain = conf_path + ".setconf"
        with open(plain, "w") as f:
            f.write(stripped)
        self.tb.run(self.ns, ["wg", "setconf", self.name, plain])
        addrs, routes = [], []
        with open(conf_path) as f:
            for line in f:
                k, _, v = line.partition("=")
                vals = [x.strip() for x in v.split(",") if x.strip()]
                if k.strip() == "Address":
                    addrs += vals
                elif k.strip() == "AllowedIPs":
                    for r in vals:
                        routes += {"0.0.0.0/0": ["0.0.0.0/1", "128.0.0.0/1"],
                                   "::/0": ["::/1", "8000::/1"]}.get(r, [r])
        self.addresses(addrs, routes)
        return [a.split("/")[0] for a in addrs]

    def handshakes(self):
        r = self.tb.run(self.ns, ["wg", "show", self.name, "latest-handshakes"], check=False)
        return [int(x.split()[1]) for x in r.stdout.splitlines() if len(x.split()) == 2]

    def down(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tb.run(self.ns, ["ip", "link", "del", self.name], check=False)


def case_rekey(tb, d, allow, srv, spub, wg):
    """Traffic across WireGuard's 120-second rekey."""
    endpoint = "%s:%d" % (tb.relay_ip, 51820)
    conf = os.path.join(d, wg.name + ".conf")
    r = add_peer(d, allow, "rekeyer", endpoint, conf, nc.server_pid(tb))
    nc.check(r.returncode == 0, "oxidize-peer.py add")
    nc.check(reloaded(srv, 2, 0), "the relay reloaded its allow-list")
    wg.up_from(conf)
    r = tb.run(tb.clients[0], ["ping", "-c", "270", "-i", "0.5", "-W", "2", "100.64.0.1"],
               check=False, timeout=200)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    sent, got = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(sent == 270 and got == sent,
             "135 s of ping across the rekey: %d of %d answered" % (got, sent))
    nc.check(rel["handshakes_wireguard"] >= 2 and rel["handshakes_rekey"] >= 1 and
             rel["sessions_wireguard"] == 1,
             "wireguard-go rekeyed (%d handshakes, %d rekeys) within one session"
             % (rel["handshakes_wireguard"], rel["handshakes_rekey"]))


def wg_dump(name):
    """`wg show NAME dump` of the relay (stock wireguard-tools, over its
    socket): the interface's fields and {public key: peer fields}."""
    r = subprocess.run(["wg", "show", name, "dump"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    lines = [ln.split("\t") for ln in r.stdout.splitlines()]
    if r.returncode != 0 or not lines:
        return None, {}, r.stderr
    return lines[0], {ln[0]: ln for ln in lines[1:]}, r.stderr


def check_wg_show(tb, srv, name, wg, spub, apub):
    """The stock `wg` reads the running relay: its key and port, every
    listed peer (OxTunnel and WireGuard alike) with its allowed IPs, and
    the wireguard-go peer's endpoint, a recent handshake and growing
    transfer."""
    sock = "/var/run/wireguard/%s.sock" % name
    st = os.stat(sock)
    nc.check(oct(st.st_mode & 0o777) == "0o600" and st.st_uid == 0,
             "the relay's wg socket %s is root's, mode 600 (%s)" % (sock, oct(st.st_mode & 0o777)))
    iface, peers, err = wg_dump(name)
    print("wg show %s dump: %s %s" % (name, iface, peers))
    nc.check(iface is not None and iface[1] == spub and iface[2] == "51820",
             "wg show %s dump: the relay's public key and listen port (%s)" % (name, err.strip()))
    # The wireguard-go peer's key is the one oxidize-peer.py made for it.
    wg_pub = next((k for k in peers if k != apub), None)
    p = peers.get(wg_pub)
    nc.check(p is not None and apub in peers and len(peers) == 2,
             "both listed peers shown, the WireGuard one and the OxTunnel one (%d)"
             % len(peers))
    if p is None:
        return
    now = int(time.time())
    nc.check(p[2].startswith(otb.client_ip(0) + ":") and "/32" in p[3] and "/128" in p[3] and
             0 < now - int(p[4]) < 60 and int(p[5]) > 0 and int(p[6]) > 0,
             "the wireguard-go peer: endpoint %s, allowed IPs %s, handshake %s s ago, "
             "transfer rx %s tx %s" % (p[2], p[3], now - int(p[4]), p[5], p[6]))
    ping(tb, tb.clients[0], "100.64.0.1")
    _, peers2, _ = wg_dump(name)
    q = peers2.get(wg_pub)
    nc.check(q is not None and int(q[5]) >= int(p[5]) + 5 * 124 and int(q[6]) >= int(p[6]) +
             5 * 124, "5 pings later its transfer grew: rx %s -> %s, tx %s -> %s"
             % (p[5], q and q[5], p[6], q and q[6]))
    tel = nc.oxt.peers(srv.prefix).get(wg_pub, {})
    nc.check(tel.get("connected") == 1 and tel.get("proto") == "wireguard" and
             tel.get("endpoint") == q[2] and tel.get("rx_bytes", 0) >= int(q[5]) and
             tel.get("v4") == q[3].split("/")[0],
             "/oxidize/peers says the same of it: %s" % tel)
    out = subprocess.run([PEER, "list", "--prefix", srv.prefix], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    every = subprocess.run([PEER, "list", "--all", "--prefix", srv.prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    nc.check(out.returncode == 0 and wg_pub in out.stdout and "wireguard" in out.stdout and
             "alice" not in out.stdout and "alice" in every.stdout,
             "oxidize-peer.py list shows the connected peers, --all the listed ones too:\n%s%s"
             % (every.stdout, out.stderr))
    text = nc.scrape_exporter(tb, srv.prefix)
    nc.check(re.search(r'^oxidize_peer_rx_bytes_total\{key="%s",peer="wgpeer"\} [1-9]'
                       % re.escape(wg_pub), text, re.M) is not None,
             "the exporter has the peer's series (oxidize_peer_rx_bytes_total)")
    conf = subprocess.run(["wg", "showconf", name], stdout=subprocess.PIPE, text=True).stdout
    nc.check("[Interface]" in conf and "PrivateKey = " in conf and
             "PublicKey = %s" % wg_pub in conf,
             "wg showconf %s: the relay's configuration, its peers" % name)
    # Clients that say nothing (every slot) and one that floods: the relay
    # goes on relaying, drops them (5 s to send a request, 64 KiB at most)
    # and answers wg again.
    import socket
    silent = []
    for _ in range(8):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)
        silent.append(c)
    flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flood.connect(sock)
    flood.settimeout(2)
    sent = 0
    try:
        while sent < 1 << 20:
            sent += flood.send(b"x" * 65536)
    except OSError:
        pass
    n, _ = ping(tb, tb.clients[0], "100.64.0.1", count=3)
    t0 = time.time()
    iface, _, _ = wg_dump(name)
    took = time.time() - t0
    for c in silent + [flood]:
        c.close()
    nc.check(n == 3 and iface is not None and took < 12,
             "8 silent clients and one sending %d KiB of garbage: the relay relays (ping "
             "%d/3) and wg answers again after %.1f s" % (sent >> 10, n, took))
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sock)
    c.sendall(b"set=1\npublic_key=zz\n\n")
    c.settimeout(5)
    answer = c.recv(256).decode()
    c.close()
    nc.check(answer.startswith("errno=") and answer != "errno=0\n\n",
             "a set the relay does not take is answered with errno (%r)" % answer)


def check_wg_set(tb, srv, name, newp, spub, allow, endpoint):
    """The stock `wg` changes the running relay, persistently: a new peer
    with wg set is in at once (no reload asked), the allow-list has its
    line; remove ends its session at once; wg showconf | wg syncconf
    changes nothing; a set the relay cannot take changes nothing."""
    def wg(*args):
        return subprocess.run(["wg"] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def text():
        with open(allow) as f:
            return f.read()

    reloads = srv.log.count("allow-list reloaded")
    r = wg("set", name, "peer", newp.pub, "allowed-ips", "100.64.0.60/32,fd6f:7869:647a::60/128")
    line = [ln for ln in text().splitlines() if ln.startswith(newp.pub)]
    nc.check(r.returncode == 0 and line and "100.64.0.60" in line[0] and
             "fd6f:7869:647a::60" in line[0],
             "wg set %s peer NEW allowed-ips ...: its line in the allow-list (%s%s)"
             % (name, line, r.stderr.strip()))
    newp.up(spub, endpoint, "100.64.0.60", "fd6f:7869:647a::60", ["100.64.0.0/10"])
    n, _ = ping(tb, newp.ns, "100.64.0.1", count=3)
    nc.check(n == 3 and srv.log.count("allow-list reloaded") == reloads + 1,
             "the new wireguard-go peer is in at once, no SIGHUP (ping %d/3)" % n)
    sessions = nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"]
    r = wg("set", name, "peer", newp.pub, "remove")
    after = nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"]
    n, _ = ping(tb, newp.ns, "100.64.0.1", count=2)
    nc.check(r.returncode == 0 and after == sessions - 1 and n == 0 and
             newp.pub not in text(),
             "wg set ... remove: its session ends at once (%d -> %d), its line is gone"
             % (sessions, after))
    time.sleep(0.2)
    ended = [ln for ln in srv.log.splitlines()
             if " conn event=end " in ln and "key=%s " % newp.pub in ln]
    began = [ln for ln in srv.log.splitlines()
             if " conn event=handshake kind=new " in ln and "key=%s " % newp.pub in ln]
    nc.check(began and "proto=wireguard" in began[0] and ended and "why=removed" in ended[0],
             "conn log: its handshake (proto=wireguard) and its end (why=removed): %s"
             % ended[:1])
    newp.down()
    before = text()
    conf = wg("showconf", name).stdout
    path = allow + ".showconf"
    with open(path, "w") as f:
        f.write(conf)
    sessions = nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"]
    r = wg("syncconf", name, path)
    os.unlink(path)
    nc.check(r.returncode == 0 and text() == before and
             nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"] == sessions,
             "wg showconf | wg syncconf: nothing changes, no session ends (%s)"
             % r.stderr.strip())
    for args, what in ((["peer", newp.pub, "allowed-ips", "198.18.90.1/24"],
                        "a prefix with host bits set"),
                       (["peer", newp.pub, "allowed-ips", "100.64.128.0/24"],
                        "a routed prefix inside the tunnel pool"),
                       (["listen-port", "4000"], "another port"),
                       (["peer", newp.pub, "allowed-ips", "10.0.0.1/32"],
                        "an address outside the pools")):
        r = wg("set", name, *args)
        nc.check(r.returncode != 0 and text() == before,
                 "wg set with %s: refused (%s), nothing changed" % (what, r.stderr.strip()))


def case_aimed(tb, server, client, d, allow, spub, ka, wg):
    """The handshake limit cannot be aimed: valid-mac1 INITs at 50 a second
    spoofed from each client's own address (WireGuard's form from the
    wireguard-go peer's namespace, OxTunnel's from the oxidize-client's),
    while those clients handshake from it. Below --hs-load-pps nothing is
    limited per source; under load the flood gets cookie replies and the
    clients, whose mac2 proves their address, their own bucket. Both
    connect within 12 s, both ways."""
    with open(allow, "a") as f:
        f.write("%s wgpeer 100.64.0.50 fd6f:7869:647a::50\n" % wg.pub)
    endpoint = "%s:%d" % (tb.relay_ip, 51820)
    for load_pps, what in ((1000, "not under load"), (10, "under load")):
        srv = ox = None
        floods = []
        try:
            srv = start_server(tb, server, d, allow, ["--hs-load-pps", str(load_pps)])
            for ns, mode in ((tb.clients[0], "init-flood"), (tb.clients[1], "ox-init-flood")):
                floods.append(tb.popen(ns, [sys.executable, PROBE, mode, tb.relay_ip, "51820",
                                            spub, "750", "15"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       text=True))
            time.sleep(1.5)  # any per-source bucket the flood could take is empty now
            t0 = time.time()
            wg.up(spub, endpoint, "100.64.0.50", "fd6f:7869:647a::50", ["100.64.0.0/10"])
            ox = Client(tb, tb.clients[1], client, ka, spub)
            end = t0 + 12

            def both():
                return (wg.handshakes() and wg.handshakes()[0] > 0 and
                        "handshake complete" in ox.log)
            while time.time() < end and not both():
                time.sleep(0.2)
            wg_ok = bool(wg.handshakes() and wg.handshakes()[0] > 0)
            ox_ok = "handshake complete" in ox.log
            took = time.time() - t0
            rel = nc.telemetry(srv.prefix, "/oxidize/relay")
            n, _ = ping(tb, tb.clients[0], "100.64.0.1", count=3) if wg_ok else (0, None)
            print("%s: relay %s" % (what, rel))
            nc.check(wg_ok and ox_ok and n >= 2,
                     "%s, 50 valid-mac1 INITs a second from each client's own address: "
                     "wireguard-go %s, oxidize-client %s within %.1f s (ping %d/3)"
                     % (what, "connected" if wg_ok else "NOT connected",
                        "connected" if ox_ok else "NOT connected", took, n))
            if load_pps == 1000:
                nc.check(rel["hs_drop_hs_rate_limited"] == 0 and rel["cookies_sent"] == 0,
                         "not under load no source is rate limited (%d) and no cookie is asked "
                         "for (%d)" % (rel["hs_drop_hs_rate_limited"], rel["cookies_sent"]))
            else:
                nc.check(rel["cookies_sent"] > 100,
                         "under load the flood got cookie replies (%d), no Diffie-Hellman"
                         % rel["cookies_sent"])
        finally:
            for f in floods:
                f.kill()
                f.wait()
            if ox is not None:
                ox.stop()
            wg.down()
            if srv is not None:
                srv.stop()


def main():
    server, client = sys.argv[1], sys.argv[2]
    case = sys.argv[3] if len(sys.argv) > 3 else "all"
    nc.require_host()
    if not os.path.exists("/dev/net/tun"):
        nc.skip("no /dev/net/tun")
    for tool, pkg in (("wireguard-go", "wireguard-go"), ("wg", "wireguard-tools"),
                      ("iperf3", "iperf3")):
        if shutil.which(tool) is None:
            nc.skip("%s not installed (Debian package %s)" % (tool, pkg))
    d = tempfile.mkdtemp(prefix="oxwg-")
    tb = nc.testbed(clients=3, queues=2)
    tag = os.getpid() % 100000
    wg = WgPeer(tb, tb.clients[0], "oxwg%d" % tag, d)
    stranger = WgPeer(tb, tb.clients[0], "oxws%d" % tag, d)
    late = WgPeer(tb, tb.clients[0], "oxwl%d" % tag, d)
    other = WgPeer(tb, tb.clients[2], "oxwo%d" % tag, d)
    newp = WgPeer(tb, tb.clients[2], "oxwn%d" % tag, d)
    srv, ox = None, None
    try:
        _, spub = otb.keygen(client, d, "server")
        ka, apub = otb.keygen(client, d, "alice")
        allow = os.path.join(d, "allow")
        with open(allow, "w") as f:
            f.write("%s alice\n" % apub)
        nc.masquerade(tb)
        if case == "aimed":
            case_aimed(tb, server, client, d, allow, spub, ka, wg)
            return
        wg_name = "oxr%d" % tag
        srv = start_server(tb, server, d, allow, ["--hs-load-pps", str(HS_LOAD_PPS),
                                                  "--idle-timeout", str(IDLE_S),
                                                  "--wg-name", wg_name])
        if case == "rekey":
            case_rekey(tb, d, allow, srv, spub, wg)
            return

        endpoint = "%s:%d" % (tb.relay_ip, 51820)
        conf = os.path.join(d, wg.name + ".conf")
        r = add_peer(d, allow, "wgpeer", endpoint, conf, nc.server_pid(tb))
        print(r.stderr + r.stdout)
        nc.check(r.returncode == 0 and "[Peer]" in r.stdout and
                 "PublicKey = %s" % spub in r.stdout and "Endpoint = %s" % endpoint in r.stdout,
                 "oxidize-peer.py add prints a wg-quick configuration")
        nc.check(reloaded(srv, 2, 0), "the relay reloaded its allow-list")
        r = subprocess.run([PEER, "add", "wgpeer", "--allow", allow,
                            "--key", os.path.join(d, "server.key"), "--endpoint", endpoint,
                            "--no-reload"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        nc.check(r.returncode != 0 and "already" in r.stderr,
                 "a second peer of the same name is refused (%s)" % r.stderr.strip())
        wg_v4, wg_v6 = wg.up_from(conf)
        n, rtt = ping(tb, tb.clients[0], "100.64.0.1")
        nc.check(n >= 4 and wg.handshakes() and wg.handshakes()[0] > 0,
                 "wireguard-go: handshake with the relay, ping of its tunnel address "
                 "(%d/5, avg %s ms)" % (n, rtt))
        n, rtt = ping(tb, tb.clients[0], "fd6f:7869:647a::1")
        nc.check(n == 5, "IPv6 ping of the relay (%d/5, avg %s ms)" % (n, rtt))
        n, rtt = ping(tb, tb.clients[0], otb.INET_SERVICE_IP)
        nc.check(n == 5, "ping of the internet through the relay's NAT (%d/5, avg %s ms)"
                 % (n, rtt))
        check_wg_show(tb, srv, wg_name, wg, spub, apub)
        check_wg_set(tb, srv, wg_name, newp, spub, allow, endpoint)

        bps = iperf_tcp(tb, tb.clients[0])
        nc.check(bps > 1e6, "TCP from wireguard-go through the relay with iperf3: %.0f Mbit/s"
                 % (bps / 1e6))

        # An OxTunnel client beside it: client to client across protocols.
        ox = Client(tb, tb.clients[1], client, ka, spub)
        nc.check(ox.wait_for("handshake complete", 15), "oxidize-client connects too")
        m = re.search(r"handshake complete: (100\.[\d.]+)/", ox.log)
        ox_v4 = m.group(1) if m else "100.64.0.2"
        n, rtt = ping(tb, tb.clients[0], ox_v4)
        nc.check(n == 5, "WireGuard peer -> OxTunnel client %s (%d/5, avg %s ms)"
                 % (ox_v4, n, rtt))
        n, rtt = ping(tb, tb.clients[1], wg_v4)
        nc.check(n == 5, "OxTunnel client -> WireGuard peer %s (%d/5, avg %s ms)"
                 % (wg_v4, n, rtt))
        n, rtt = ping(tb, tb.clients[1], wg_v6)
        nc.check(n == 5, "and over IPv6, %s (%d/5, avg %s ms)" % (wg_v6, n, rtt))

        # A second wireguard-go peer, with a preshared key: WireGuard to
        # WireGuard through the relay.
        conf3 = os.path.join(d, other.name + ".conf")
        seen = reloads(srv)
        r = add_peer(d, allow, "wgpeer2", endpoint, conf3, nc.server_pid(tb), ["--psk"])
        nc.check(r.returncode == 0 and "PresharedKey = " in r.stdout and
                 oct(os.stat(allow).st_mode & 0o777) == "0o600",
                 "oxidize-peer.py add --psk: a preshared key, the allow-list made 0600 (%s)"
                 % oct(os.stat(allow).st_mode & 0o777))
        nc.check(reloaded(srv, 3, seen), "reloaded with the second peer")
        o_v4, o_v6 = other.up_from(conf3)
        n, rtt = ping(tb, tb.clients[2], wg_v4)
        n2, rtt2 = ping(tb, tb.clients[0], o_v6)
        psk_set = tb.run(tb.clients[2], ["wg", "show", other.name, "preshared-keys"],
                         check=False).stdout.split()
        nc.check(r.returncode == 0 and n == 5 and n2 == 5 and len(psk_set) == 2 and
                 psk_set[1] != "(none)",
                 "wireguard-go with a preshared key to wireguard-go through the relay: "
                 "%s -> %s %d/5, %s -> %s %d/5" % (o_v4, wg_v4, n, wg_v4, o_v6, n2))
        other.down()

        st = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        nc.check(rel.get("sessions") == 3 and st.get("client_to_client", 0) >= 10 and
                 st.get("to_tap", 0) > 0,
                 "relay: 3 sessions, client to client %d, to the TAP %d"
                 % (st.get("client_to_client", 0), st.get("to_tap", 0)))
        nc.check(rel.get("sessions_wireguard") == 2 and rel.get("sessions_oxtunnel") == 1 and
                 rel.get("handshakes_wireguard", 0) >= 1,
                 "sessions by protocol: wireguard %s, oxtunnel %s"
                 % (rel.get("sessions_wireguard"), rel.get("sessions_oxtunnel")))
        text = nc.scrape_exporter(tb, srv.prefix)
        nc.check(re.search(r'^oxidize_sessions_by_protocol\{protocol="wireguard"\} 2(\.0)?$',
                           text, re.M) is not None,
                 "the exporter shows them (oxidize_sessions_by_protocol)")

        # Roaming: the peer moves to another source port and carries on.
        st0 = totals(srv)
        tb.run(tb.clients[0], ["wg", "set", wg.name, "listen-port", "43210"])
        n, _ = ping(tb, tb.clients[0], "100.64.0.1")
        st1 = totals(srv)
        nc.check(n == 5 and st1["roamed"] > st0["roamed"],
                 "roaming to a new source port: ping goes on (%d/5), roamed %d -> %d"
                 % (n, st0["roamed"], st1["roamed"]))

        # One-way traffic (to a link-local address the exit policy drops):
        # the relay answers with a passive keepalive, so wireguard-go does
        # not handshake again after 15 s of hearing nothing.
        hs0 = wg.handshakes()
        k0 = totals(srv)["keepalive_sent"]
        tb.run(tb.clients[0], ["ping", "-c", "20", "-i", "1", "-W", "1", "169.254.1.1"],
               check=False, timeout=40)
        st1 = totals(srv)
        nc.check(st1["keepalive_sent"] > k0 and wg.handshakes() == hs0,
                 "20 s of one-way packets: %d passive keepalive(s) from the relay, "
                 "no new handshake" % (st1["keepalive_sent"] - k0))

        # INITs without the server's key: dropped on the worker.
        out = probe(tb, tb.clients[1], "bad-mac1", tb.relay_ip, 51820, 200)
        st2 = totals(srv)
        nc.check(out.get("sent") == 200 and
                 st2["drop_ox_bad_mac1"] - st1["drop_ox_bad_mac1"] == 200 and
                 st2["hs_queued"] == st1["hs_queued"],
                 "200 INITs with a bad mac1: bad_mac1 +%d, none queued for the control thread"
                 % (st2["drop_ox_bad_mac1"] - st1["drop_ox_bad_mac1"]))

        # A captured DATA sent again is a replay.
        pinger = tb.popen(tb.clients[0], ["ping", "-c", "10", "-i", "0.2", "100.64.0.1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = probe(tb, tb.clients[0], "replay", "eth0", tb.relay_ip, 51820, 3)
        pinger.wait(15)
        time.sleep(0.5)
        st3 = totals(srv)
        nc.check(out.get("sent") == 3 and st3["drop_ox_replay"] - st2["drop_ox_replay"] >= 3,
                 "a captured WireGuard DATA sent 3 times again: replay +%d (%s)"
                 % (st3["drop_ox_replay"] - st2["drop_ox_replay"], out))

        # A WireGuard key the allow-list does not have.
        before = rel.get("hs_drop_unknown_peer", 0)
        stranger.up(spub, endpoint, "100.64.0.99", "fd6f:7869:647a::99", ["198.18.99.0/24"])
        tb.run(tb.clients[0], ["ping", "-c", "2", "-W", "1", "198.18.99.1"], check=False,
               timeout=10)
        time.sleep(1)
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        nc.check(not stranger.handshakes() or stranger.handshakes()[0] == 0,
                 "an unlisted WireGuard key gets no handshake (unknown_peer %d -> %d)"
                 % (before, rel.get("hs_drop_unknown_peer", 0)))
        nc.check(rel.get("hs_drop_unknown_peer", 0) > before, "counted as unknown_peer")

        # Removed: the relay ends the peer's session at the reload.
        seen = reloads(srv)
        r = subprocess.run([PEER, "remove", "wgpeer", "--allow", allow,
                            "--reload-pid", str(nc.server_pid(tb))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        nc.check(reloaded(srv, 2, seen), "reloaded without the removed peer")
        n, _ = ping(tb, tb.clients[0], "100.64.0.1", count=3)
        nc.check(r.returncode == 0 and n == 0,
                 "oxidize-peer.py remove: the peer's traffic stops (%d/3 answered)" % n)
        wg.down()

        # Under a flood of INITs with a valid mac1 from 16 sources, a new
        # peer still connects: wireguard-go takes the cookie and retries.
        sources = ["198.18.0.%d" % (200 + i) for i in range(16)]
        for a in sources:
            tb.run(tb.clients[1], ["ip", "addr", "add", a + "/24", "dev", "eth0"])
        flood = tb.popen(tb.clients[1], [sys.executable, PROBE, "init-flood", tb.relay_ip,
                                         "51820", spub, "4000", "16"] + sources,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(2)
        conf2 = os.path.join(d, late.name + ".conf")
        r = add_peer(d, allow, "latecomer", endpoint, conf2, nc.server_pid(tb))
        late.up_from(conf2)
        end = time.time() + 25
        while time.time() < end and not (late.handshakes() and late.handshakes()[0] > 0):
            time.sleep(0.5)
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        connected = bool(late.handshakes() and late.handshakes()[0] > 0)
        flood_out = flood.communicate(timeout=30)[0]
        nc.check(r.returncode == 0 and connected and rel["cookies_sent"] > 0,
                 "during a flood of valid-mac1 INITs (%s): cookies sent %d, under load %d "
                 "polls, and a new wireguard-go peer connected"
                 % (flood_out.strip(), rel["cookies_sent"], rel["under_load_polls"]))

        # A peer that goes away is reaped like any session.
        before = rel["sessions_wireguard"]
        late.down()
        end = time.time() + IDLE_S + 10
        while time.time() < end:
            rel = nc.telemetry(srv.prefix, "/oxidize/relay")
            if rel["sessions_wireguard"] < before:
                break
            time.sleep(1)
        nc.check(rel["sessions_wireguard"] < before and rel["sessions_reaped"] > 0,
                 "a silent WireGuard peer's session is reaped after %d s (%d -> %d, reaped %d)"
                 % (IDLE_S, before, rel["sessions_wireguard"], rel["sessions_reaped"]))
        srv.stop()
        srv = None
        nc.check(not os.path.exists("/var/run/wireguard/%s.sock" % wg_name),
                 "the wg socket is removed on exit")
    finally:
        if ox is not None:
            ox.stop()
        wg.down()
        stranger.down()
        late.down()
        other.down()
        newp.down()
        if srv is not None:
            srv.stop()
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
