#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Namespace testbed for Oxidize: tests, demo and benchmarks build on it.

    client0 ns          switch ns                relay ns                       inet ns
  +-------------+     +-------------+     +-----------------------+     +------------------+
  | eth0        |     |  c0         |     |                       |     |                  |
  | 198.18.0.10 |-----|  ...  br0   |=====| eth0  198.18.0.1/24   |     |                  |
  +-------------+     |  cN    r0   |  N  |   FLASH: XDP + N      |     |                  |
  | clientN ns  |-----|             | qs  |   AF_XDP sockets      |     |                  |
  | 198.18.0.1N |     +-------------+     |   (oxidize-server,    |     | eth0 198.18.1.2  |
  +-------------+                         |    its TAP, its NAT)  |     | lo   198.19.0.1  |
                                          | eth1  198.18.1.1/30 --|-----|  ("the internet")|
                                          +-----------------------+     +------------------+

Every link is a veth pair made inside the namespaces (nothing is created in,
or routed through, the root namespace). The relay's eth0 and its switch-side
peer have N RX/TX queues so FLASH runs one socket per queue. Links use
198.18.0.0/15; tunnel addresses come from 100.64.0.0/10. Namespace names
carry the creator's pid and a random tag, so runs never collide, and a run
that died without cleaning up is swept by the next one. Teardown runs on
exit, exceptions and SIGTERM/SIGINT.

As a module:
    with Testbed(clients=2, queues=2) as tb:
        tb.run(tb.relay, ["ip", "addr"])
As a command (for manual work):
    oxidize_testbed.py up [--clients N] [--queues N]   # prints the names, keeps it
    oxidize_testbed.py down TAG | --all
"""

import argparse
import atexit
import os
import random
import signal
import subprocess
import sys
import time

PREFIX = "oxtb"
LAN_NET = "198.18.0.0/24"
RELAY_LAN_IP = "198.18.0.1"
RELAY_WAN_IP = "198.18.1.1"
INET_IP = "198.18.1.2"
INET_SERVICE_IP = "198.19.0.1"
TUNNEL_NET4 = "100.64.0.0/10"


def client_ip(i):
    """LAN address of client i."""
    return "198.18.0.%d" % (10 + i)


def _sh(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces():
    out = _sh(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sweep_stale():
    """Delete testbed namespaces whose creating process is gone."""
    for ns in list_namespaces():
        parts = ns.split("-")
        if len(parts) != 4 or parts[0] != PREFIX:
            continue
        try:
            pid = int(parts[2])
        except ValueError:
            continue
        if not _pid_alive(pid):
            _delete_ns(ns)


def _delete_ns(ns):
    # Kill what still runs inside, so the namespace really goes away.
    pids = _sh(["ip", "netns", "pids", ns], check=False).stdout.split()
    for p in pids:
        try:
            os.kill(int(p), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _sh(["ip", "netns", "delete", ns], check=False)


class Skip(Exception):
    """The testbed cannot be built here (missing privilege or kernel feature)."""


class Testbed:
    """A client/switch/relay/inet topology of network namespaces."""

    def __init__(self, clients=1, queues=2, tag=None, keep=False, rss_bpf=None,
                 sw_csum=False):
        if clients < 1 or clients > 100:
            raise ValueError("clients must be 1..100")
        if queues < 1 or queues > 64:
            raise ValueError("queues must be 1..64")
        self.n_clients = clients
        self.rss_bpf = rss_bpf or os.environ.get("OX_RSS_BPF")
        self.rss = "kernel tx hash"
        self.queues = queues
        self.keep = keep
        self.sw_csum = sw_csum
        # A kept testbed outlives its creator, so its tag names no pid.
        owner = "keep" if keep else str(os.getpid())
        self.tag = tag or "%s-%04x" % (owner, random.randrange(0x10000))
        self.switch = self._name("sw")
        self.relay = self._name("rl")
        self.inet = self._name("in")
        self.clients = [self._name("c%d" % i) for i in range(clients)]
        self.relay_iface = "eth0"
        self.relay_wan_iface = "eth1"
        self.relay_ip = RELAY_LAN_IP
        self.inet_ip = INET_IP
        self.inet_service_ip = INET_SERVICE_IP
        self._made = []
        self._procs = []
        self._old_handlers = {}

    def _name(self, role):
        return "%s-%s-%s" % (PREFIX, role, self.tag)

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def up(self):
        if os.geteuid() != 0:
            raise Skip("needs root (creates network namespaces)")
        sweep_stale()
        if not self.keep:
            atexit.register(self.down)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self._build()
        except subprocess.CalledProcessError as e:
            self.down()
            msg = (e.stderr or "").strip()
            if "Operation not permitted" in msg:
                raise Skip("cannot create namespaces or veth here: " + msg)
            raise RuntimeError("testbed setup failed: %s: %s" % (" ".join(e.cmd), msg))
        except BaseException:
            self.down()
            raise
        return self

    def _on_signal(self, signum, _frame):
        self.down()
        raise SystemExit(128 + signum)

    def down(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self._procs = []
        for ns in reversed(self._made):
            _delete_ns(ns)
        self._made = []

    # -- building ------------------------------------------------------------------------

    def _ns_add(self, ns):
        _sh(["ip", "netns", "add", ns])
        self._made.append(ns)
        self.ip(ns, "link set lo up")

    def ip(self, ns, args):
        """Run `ip -n NS ARGS` (args is a string)."""
        return _sh(["ip", "-n", ns] + args.split())

    def _veth(self, ns_a, name_a, ns_b, name_b, queues=1):
        q = "numtxqueues %d numrxqueues %d" % (queues, queues)
        self.ip(ns_a, "link add %s %s type veth peer name %s netns %s %s"
                % (name_a, q, name_b, ns_b, q))
        for ns, dev in ((ns_a, name_a), (ns_b, name_b)):
            # Checksum offload stays on, as on any host where the relay and
            # a client (or a container) share a kernel: senders hand over
            # CHECKSUM_PARTIAL frames whose UDP checksum is only the
            # pseudo-header sum. sw_csum=True makes every sender compute it
            # in software instead, as a remote client's NIC delivers it.
            # VLAN tags stay in the frame (no offload), where XDP can see them.
            feats = ["txvlan", "off", "rxvlan", "off"]
            if self.sw_csum:
                feats = ["tx", "off"] + feats
            self.run(ns, ["ethtool", "-K", dev] + feats, check=False)
            self.ip(ns, "link set %s up" % dev)

    def _build(self):
        for ns in [self.switch, self.relay, self.inet] + self.clients:
            self._ns_add(ns)
        sw = self.switch
        self.ip(sw, "link add br0 type bridge")
        self.ip(sw, "link set br0 up")
        # A switch forwards frames, it does not judge them: without this,
        # br_netfilter validates IP headers and drops malformed ones, which
        # the relay must see (and count) itself.
        for fam in ("iptables", "ip6tables", "arptables"):
            self.run(sw, ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-%s=0" % fam],
                     check=False)

        # relay <-> switch: the FLASH interface, multi-queue
        self._veth(self.relay, self.relay_iface, sw, "r0", self.queues)
        self.ip(sw, "link set r0 master br0")
        self.ip(self.relay, "addr add %s/24 dev %s" % (RELAY_LAN_IP, self.relay_iface))
        self._rss(sw, "r0")

        # relay <-> inet
        self._veth(self.relay, self.relay_wan_iface, self.inet, "eth0")
        self.ip(self.relay, "addr add %s/30 dev %s" % (RELAY_WAN_IP, self.relay_wan_iface))
        self.ip(self.inet, "addr add %s/30 dev eth0" % INET_IP)
        self.ip(self.inet, "addr add %s/32 dev lo" % INET_SERVICE_IP)
        # The inet host answers the relay's (masqueraded) traffic only.
        self.ip(self.inet, "route add default via %s" % RELAY_WAN_IP)
        # "The internet" is 198.19.0.0/16 behind it; the relay has no
        # default route, so nothing can leak toward the root namespace.
        self.ip(self.relay, "route add 198.19.0.0/16 via %s" % INET_IP)

        for i, ns in enumerate(self.clients):
            self._veth(ns, "eth0", sw, "c%d" % i, self.queues)
            self.ip(sw, "link set c%d master br0" % i)
            self.ip(ns, "addr add %s/24 dev eth0" % client_ip(i))
        self.sysctl(self.relay, "net.ipv4.ip_forward", 1)
        self._wait_bridge()

    # -- more of it, for topologies beyond the default (fleet tests) ------------------

    def add_ns(self, role):
        """Another namespace of this testbed (torn down with it)."""
        ns = self._name(role)
        self._ns_add(ns)
        return ns

    def link(self, ns_a, dev_a, ns_b, dev_b, queues=1):
        """A veth pair between two of its namespaces, both ends up."""
        self._veth(ns_a, dev_a, ns_b, dev_b, queues)

    def on_switch(self, ns, port, ip_cidr, queues=1):
        """NS joins the LAN through its eth0 (switch port PORT) as IP_CIDR."""
        self._veth(ns, "eth0", self.switch, port, queues)
        self.ip(self.switch, "link set %s master br0" % port)
        self.ip(ns, "addr add %s dev eth0" % ip_cidr)
        self._rss(self.switch, port)

    def _rss(self, ns, dev):
        """Spread what DEV sends over the peer's RX queues by flow hash, as a
        NIC's RSS would (veth has none): test/bpf/rss_emul.bpf.c on tc egress."""
        if self.queues == 1:
            return
        if self.queues not in (2, 3, 4, 8) or not self.rss_bpf or \
                not os.path.exists(self.rss_bpf):
            print("testbed: no RSS emulation for %d queues; the kernel's TX hash spreads "
                  "flows" % self.queues, file=sys.stderr)
            return
        self.run(ns, ["tc", "qdisc", "add", "dev", dev, "clsact"])
        self.run(ns, ["tc", "filter", "add", "dev", dev, "egress", "bpf", "da", "obj",
                      self.rss_bpf, "sec", "tc/rss%d" % self.queues])
        self.rss = "flow-hash RSS (tc/rss%d)" % self.queues

    def _wait_bridge(self, timeout=10.0):
        """Wait until the bridge forwards: relay answers every client's ping."""
        deadline = time.monotonic() + timeout
        for i, ns in enumerate(self.clients):
            while True:
                r = self.run(ns, ["ping", "-c1", "-W1", "-q", RELAY_LAN_IP], check=False)
                if r.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("client%d cannot reach the relay" % i)
                time.sleep(0.2)

    # -- running things ------------------------------------------------------------------

    def sysctl(self, ns, key, value):
        self.run(ns, ["sysctl", "-q", "-w", "%s=%s" % (key, value)])

    @staticmethod
    def exec_prefix(ns, bpffs=False):
        """argv prefix that runs a command in NS (with bpffs mounted there)."""
        pre = ["ip", "netns", "exec", ns]
        if bpffs:
            # `ip netns exec` remounts /sys, hiding bpffs; mount it back.
            pre += ["sh", "-c", "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec \"$@\"", "sh"]
        return pre

    def run(self, ns, argv, check=True, timeout=60, bpffs=False, **kw):
        """Run argv in NS to completion; returns CompletedProcess (text)."""
        return subprocess.run(self.exec_prefix(ns, bpffs) + list(argv), check=check,
                              stdout=kw.pop("stdout", subprocess.PIPE),
                              stderr=kw.pop("stderr", subprocess.PIPE),
                              text=True, timeout=timeout, **kw)

    def popen(self, ns, argv, bpffs=False, **kw):
        """Start argv in NS; the testbed kills it on teardown if still running."""
        p = subprocess.Popen(self.exec_prefix(ns, bpffs) + list(argv), **kw)
        self._procs.append(p)
        return p

    def xdp_attached(self, ns, dev):
        """True if an XDP program is attached to DEV in NS."""
        out = self.run(ns, ["ip", "-o", "link", "show", "dev", dev]).stdout
        return " xdp" in out or "prog/xdp" in out

    def describe(self):
        lines = ["testbed %s: %d client(s), relay %s with %d queue(s), %s"
                 % (self.tag, self.n_clients, self.relay_iface, self.queues, self.rss),
                 "  relay ns  %s  %s (LAN) %s (WAN)" % (self.relay, RELAY_LAN_IP, RELAY_WAN_IP),
                 "  inet ns   %s  %s, service %s" % (self.inet, INET_IP, INET_SERVICE_IP),
                 "  switch ns %s" % self.switch]
        for i, ns in enumerate(self.clients):
            lines.append("  client%d   %s  %s" % (i, ns, client_ip(i)))
        return "\n".join(lines)


def keygen(client, directory, name):
    """A key pair made with oxidize-client genkey/pubkey; the private key is
    written to DIRECTORY/NAME.key (mode 600). Returns (path, public key)."""
    priv = subprocess.run([client, "genkey"], check=True, stdout=subprocess.PIPE,
                          text=True).stdout.strip()
    pub = subprocess.run([client, "pubkey"], input=priv + "\n", check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    path = os.path.join(directory, name + ".key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (priv + "\n").encode())
    os.close(fd)
    return path, pub


def udp_burst(tb, client, dst, port, flows=16, per_flow=10, payload=b"x" * 64, gap=0.0):
    """Send flows x per_flow UDP datagrams from client ns to dst:port, from
    `flows` different source ports (so RSS/queue hashing spreads them).
    Bounded by count; returns the number sent."""
    code = (
        "import socket,sys,time\n"
        "socks=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range(%d)]\n"
        "n=0\n"
        "for r in range(%d):\n"
        "  for s in socks:\n"
        "    s.sendto(%r,(%r,%d)); n+=1\n"
        "  time.sleep(%f)\n"
        "print(n)\n" % (flows, per_flow, payload, dst, port, gap))
    r = tb.run(tb.clients[client], [sys.executable, "-c", code], timeout=60)
    return int(r.stdout.strip())


PROBE_CODE = r"""
import json, select, socket, struct, sys, time
dst, port, flows, count, timeout, gap = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                        int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
socks = [socket.socket(fam, socket.SOCK_DGRAM) for _ in range(flows)]
for s in socks:
    s.connect((dst, port))
rtts, bad, lost = [], 0, 0
for seq in range(count):
    s = socks[seq % flows]
    probe = b"OXPI" + struct.pack("<Id", seq, time.perf_counter()) + b"\0" * 20
    t0 = time.perf_counter()
    s.send(probe)
    deadline = t0 + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            lost += 1
            break
        r = s.recv(2048)
        if len(r) == len(probe) and r[:4] == b"OXPO" and r[4:] == probe[4:]:
            rtts.append((time.perf_counter() - t0) * 1e6)
            break
        bad += 1
    if gap:
        time.sleep(gap)
rtts.sort()
def pct(p):
    return round(rtts[min(len(rtts) - 1, int(len(rtts) * p / 100))], 1) if rtts else None
print(json.dumps({"sent": count, "received": len(rtts), "lost": lost, "bad": bad,
                  "p50_us": pct(50), "p99_us": pct(99), "p999_us": pct(99.9),
                  "min_us": round(rtts[0], 1) if rtts else None}))
"""


def oxpi_probe(tb, client, dst, port, flows=8, count=200, timeout=1.0, gap=0.0):
    """Send `count` OXPI probes (bounded) from `flows` UDP sockets in client ns,
    one at a time, and time each OXPO reply. Returns a dict with sent,
    received, lost, bad (wrong replies) and RTT percentiles in microseconds."""
    import json
    r = tb.run(tb.clients[client], [sys.executable, "-c", PROBE_CODE, dst, str(port),
                                    str(flows), str(count), str(timeout), str(gap)],
               timeout=count * (timeout + gap) + 30)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="build a testbed and keep it")
    u.add_argument("--clients", type=int, default=1)
    u.add_argument("--queues", type=int, default=2)
    d = sub.add_parser("down", help="delete a testbed")
    d.add_argument("tag", nargs="?")
    d.add_argument("--all", action="store_true", help="every testbed namespace")
    args = ap.parse_args()
    if args.cmd == "up":
        tb = Testbed(args.clients, args.queues, keep=True)
        try:
            tb.up()
        except Skip as e:
            print("cannot build the testbed: %s" % e, file=sys.stderr)
            return 1
        print(tb.describe())
        print("delete with: %s down %s" % (sys.argv[0], tb.tag))
        return 0
    for ns in list_namespaces():
        if ns.startswith(PREFIX + "-") and (args.all or ns.endswith("-" + str(args.tag))):
            _delete_ns(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
