#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A fleet of relays sharing one key and one allow-list (doc/fleet.md).

    test_fleet.py SERVER CLIENT ANYCAST_PY failover
    test_fleet.py SERVER CLIENT ANYCAST_PY anycast

failover: two relays on one link, a client given both (--server twice).
  It picks one by OXPI round trip; kill -9 of that relay: pings through the
  tunnel resume within 10 s, through the other relay, from the same
  tunnel addresses. The dead one comes back: nothing moves. The second
  dies: the client fails over back to the first.

anycast: a router namespace with ECMP (fib_multipath_hash_policy=1)
  toward two relays, each announcing one anycast address over BGP with
  BIRD 2 (config/ansible/roles/oxidize_fleet/templates/bird.conf.j2, as
  deployed) while oxidize-anycast.py finds it healthy. Eight clients, all
  given only the anycast address, spread over both. One relay's service
  stops: its route is withdrawn, and its clients handshake again through
  the other; the times are measured and printed.
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820
ANYCAST = "198.18.255.1"
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config",
                        "ansible", "roles", "oxidize_fleet", "templates", "bird.conf.j2")


POOL4 = "100.64.0.0/24"  # small enough to make two keys collide on purpose
POOL_HOSTS = 256


def pool_host(pub):
    """Where lib/addrpool's key_hash points a key in POOL4 (its host number),
    transcribed: the fleet's addresses must not depend on who came first."""
    k, m = base64.b64decode(pub), (1 << 64) - 1
    h = int.from_bytes(k[0:8], "little") ^ (int.from_bytes(k[8:16], "little") *
                                            0x9e3779b97f4a7c15 & m)
    h ^= h >> 33
    h = h * 0xff51afd7ed558ccd & m
    h ^= h >> 33
    h = h * 0xc4ceb9fe1a85ec53 & m
    h ^= h >> 33
    return 2 + (h >> 32) % (POOL_HOSTS - 3)


class Fleet:
    """The fleet's key and allow-list, and the clients' keys. With
    collide=True, a first line whose key points at the same pool address as
    client 0's, so that client 0's address is the next one on every relay."""

    def __init__(self, client, n_clients, collide=False):
        self.dir = tempfile.mkdtemp(prefix="oxfleet-")
        self.server_key, self.server_pub = otb.keygen(client, self.dir, "server")
        self.clients = [otb.keygen(client, self.dir, "client%d" % i) for i in range(n_clients)]
        self.rival = None
        if collide:
            # Client 0 needs a free host above its own: a key that hashes to
            # the top of the pool is drawn again (about 1 time in 127).
            while pool_host(self.clients[0][1]) + 1 >= POOL_HOSTS - 1:
                self.clients[0] = otb.keygen(client, self.dir, "client0")
            want = pool_host(self.clients[0][1])
            for i in range(2000):
                path, pub = otb.keygen(client, self.dir, "rival")
                if pool_host(pub) == want:
                    self.rival = (path, pub)
                    break
            if self.rival is None:
                nc.fail("no key found that collides with client 0's in %s" % POOL4)
            self.rival_v4 = "100.64.0.%d" % want
            self.expect_v4 = "100.64.0.%d" % (want + 1)
        with open(os.path.join(self.dir, "allow"), "w") as f:
            f.write("# the fleet's allow-list: pool addresses only\n")
            if self.rival:
                f.write("%s rival\n" % self.rival[1])
            for i, (_, pub) in enumerate(self.clients):
                f.write("%s client%d\n" % (pub, i))
        self.allow = os.path.join(self.dir, "allow")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def start_relay(tb, binary, fleet, ns, tag, pool4=None):
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--tap", "oxtun0",
                                 "--key", fleet.server_key, "--allow", fleet.allow,
                                 "--max-sessions", "4096"] +
                    (["--pool4", pool4] if pool4 else []), lcores="0", tag=tag, ns=ns)
    srv.wait_up()
    return srv


def start_client(tb, client, fleet, i, servers, log):
    argv = [client, "up", "--server-key", fleet.server_pub, "--key", fleet.clients[i][0],
            "--tun", "ox0", "--duration", "150", "--verbose"]
    for s in servers:
        argv += ["--server", s]
    return tb.popen(tb.clients[i], argv, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def wait_log(path, pattern, timeout, after=0):
    """The first line matching PATTERN at or past offset AFTER, waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            f.seek(after)
            m = re.search(pattern, f.read())
        if m:
            return m
        time.sleep(0.1)
    return None


def tun_addrs(tb, ns):
    info = json.loads(tb.run(ns, ["ip", "-j", "addr", "show", "ox0"]).stdout)[0]
    return sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in info["addr_info"])


class Pinger:
    """ping -D through the tunnel, timestamps of every reply kept."""

    def __init__(self, tb, ns, dst, seconds):
        self.p = tb.popen(ns, ["ping", "-D", "-n", "-i", "0.2", "-W", "1", "-w", str(seconds),
                               dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)

    def replies(self):
        """Reply times (wall clock) once ping has ended."""
        out = self.p.communicate(timeout=200)[0]
        return [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)


def outage(replies, t):
    """Seconds from t to the first reply after it."""
    after = [r for r in replies if r > t]
    return after[0] - t if after else None


def sessions(srv):
    return nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"]


# ------------------------------------------------------------------ failover

def case_failover(tb, binary, client, fleet):
    relay_b = tb.add_ns("rlb")
    tb.on_switch(relay_b, "r1", "198.18.0.2/24")
    nc.check(tb.run(tb.clients[0], ["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.0.2"],
                    check=False).returncode == 0, "the second relay's host is on the link")
    names = {"198.18.0.1": tb.relay, "198.18.0.2": relay_b}
    srv = {"198.18.0.1": start_relay(tb, binary, fleet, tb.relay, tb.tag + "a", POOL4),
           "198.18.0.2": start_relay(tb, binary, fleet, relay_b, tb.tag + "b", POOL4)}
    # The rival key, first on the list, handshakes with relay b only:
    # were addresses given to whoever asks first, the client would get the
    # rival's address on relay a and the next one on relay b.
    with open(fleet.rival[0]) as f:
        rival_priv = f.read().strip()
    r = nc.oxpeer(tb, 0, fleet.server_pub, rival_priv, "handshake", server="198.18.0.2")
    nc.check(r.get("v4") == fleet.rival_v4, "the first line's key gets the address its hash "
             "points at (%s, want %s)" % (r.get("v4"), fleet.rival_v4))
    log = os.path.join(fleet.dir, "client.log")
    cp = start_client(tb, client, fleet, 0, ["198.18.0.1", "198.18.0.2"], log)
    m = wait_log(log, r"handshake complete: (\S+) (\S+) mtu \d+ via relay ([\d.]+):", 15)
    nc.check(m is not None, "the client handshakes with one of its two relays")
    if m is None:
        print(open(log).read())
        nc.fail("no handshake")
    first, other = m.group(3), "198.18.0.2" if m.group(3) == "198.18.0.1" else "198.18.0.1"
    addrs = tun_addrs(tb, tb.clients[0])
    text = open(log).read()
    print(text)
    nc.check(len(re.findall(r"relay [\d.]+:51820: OXPI round trip [\d.]+ ms", text)) == 2,
             "both relays' OXPI round trips measured at start")
    nc.check(m.group(1) == fleet.expect_v4 + "/24",
             "the client's address is the one after its rival's, as on every relay (%s)"
             % m.group(1))
    ping = Pinger(tb, tb.clients[0], "100.64.0.1", 40)
    time.sleep(3)
    t_kill = time.time()
    srv[first].proc.kill()
    srv[first].proc.wait()
    print("killed the relay in use, %s (%s)" % (first, names[first]))
    m = wait_log(log, r"relay %s:51820 stopped answering; failing over to %s:51820" %
                 (re.escape(first), re.escape(other)), 15)
    nc.check(m is not None, "the client fails over from %s to %s" % (first, other))
    off = m.end() if m else 0
    m = wait_log(log, r"handshake complete: (\S+) (\S+) mtu \d+ via relay %s:" %
                 re.escape(other), 10, off)
    nc.check(m is not None, "and handshakes with %s" % other)
    time.sleep(3)
    nc.check(tun_addrs(tb, tb.clients[0]) == addrs,
             "same tunnel addresses through the other relay (%s)" % ", ".join(addrs))

    # The dead relay comes back: nothing moves, nothing breaks.
    srv[first] = start_relay(tb, binary, fleet, names[first], tb.tag + "c", POOL4)
    time.sleep(4)
    ping.stop()
    replies = ping.replies()
    gap = outage(replies, t_kill)
    print("pings: %d replies; first after the kill %.2f s later" % (len(replies), gap or -1))
    nc.check(gap is not None and gap <= 10,
             "pings resume within 10 s of the relay's death (%.1f s)" % (gap or -1))
    late = [r for r in replies if r > t_kill + gap + 1]
    nc.check(len(late) >= 15, "and keep going, through the restart of the dead one (%d)"
             % len(late))
    # Relay b also holds the rival's session, if it was not the one killed.
    n = sessions(srv[other])
    nc.check(n == (2 if other == "198.18.0.2" else 1),
             "the client's session is on %s (%d session(s) there)" % (other, n))

    # Now the other dies: back to the first, which is up again.
    ping = Pinger(tb, tb.clients[0], "100.64.0.1", 25)
    time.sleep(2)
    t_kill = time.time()
    srv[other].proc.kill()
    srv[other].proc.wait()
    m = wait_log(log, r"failing over to %s:51820" % re.escape(first), 15, off)
    nc.check(m is not None, "the second death fails over back to %s" % first)
    m = m and wait_log(log, r"handshake complete: .* via relay %s:" % re.escape(first), 10,
                       m.end())
    nc.check(m is not None, "and handshakes with it")
    time.sleep(8)
    ping.stop()
    gap = outage(ping.replies(), t_kill)
    nc.check(gap is not None and gap <= 10,
             "pings resume within 10 s again (%.1f s)" % (gap or -1))
    now = tun_addrs(tb, tb.clients[0])
    nc.check(now == addrs, "still the same tunnel addresses (%s)" % ", ".join(now))
    cp.send_signal(signal.SIGTERM)
    cp.wait(timeout=20)
    text = open(log).read()
    m = re.search(r"exit: .*failovers (\d+)", text)
    nc.check(m is not None and m.group(1) == "2", "the client counted 2 failovers (%s)"
             % (m and m.group(1)))
    rc = srv[first].stop()
    print(srv[first].log)
    nc.check(rc == 0 and "all mbufs back in the pool" in srv[first].log,
             "the restarted relay stops cleanly")


# ------------------------------------------------------------------- anycast

ROUTER_BIRD = """router id 198.18.0.254;
log stderr all;
protocol device { scan time 10; }
protocol kernel {
    ipv4 { export all; };
    merge paths on;
}
protocol bgp fleet_a {
    local 198.18.2.1 as 65000;
    neighbor 198.18.2.2 as 65010;
    hold time 3; keepalive time 1; connect retry time 2;
    ipv4 { import all; export none; };
}
protocol bgp fleet_b {
    local 198.18.3.1 as 65000;
    neighbor 198.18.3.2 as 65010;
    hold time 3; keepalive time 1; connect retry time 2;
    ipv4 { import all; export none; };
}
"""


def relay_bird(relay_ip, router_ip):
    import jinja2
    with open(TEMPLATE) as f:
        # Ansible's defaults: trim_blocks on.
        t = jinja2.Template(f.read(), keep_trailing_newline=True, trim_blocks=True)
    return t.render(oxidize_bgp_router_id=relay_ip, oxidize_bird_log="stderr",
                    oxidize_anycast_dev="oxany0", oxidize_bgp_asn=65010,
                    oxidize_anycast=[ANYCAST + "/32"],
                    oxidize_bgp_hold_time=3,
                    oxidize_bgp_neighbors=[{"address": router_ip, "asn": 65000,
                                            "local": relay_ip}])


def nexthops(tb, ns):
    r = json.loads(tb.run(ns, ["ip", "-j", "route", "show", ANYCAST + "/32"]).stdout or "[]")
    if not r:
        return []
    return sorted(h["gateway"] for h in r[0].get("nexthops", [])) or [r[0].get("gateway")]


def wait_nexthops(tb, ns, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nexthops(tb, ns) == want:
            return True
        time.sleep(0.05)
    return False


def bird(tb, ns, conf_text, name, d):
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    tb.run(ns, ["bird", "-p", "-c", conf])
    log = open(os.path.join(d, name + ".log"), "w")
    return tb.popen(ns, ["bird", "-f", "-c", conf, "-s", os.path.join(d, name + ".ctl"),
                         "-P", os.path.join(d, name + ".pid")],
                    stdout=subprocess.DEVNULL, stderr=log)


def case_anycast(tb, binary, client, anycast_py, fleet):
    if not shutil.which("bird"):
        nc.skip("BIRD 2 is not installed (apt-get install bird2; usertools/oxidize-setup.sh)")
    rt = tb.add_ns("rt")
    tb.on_switch(rt, "rt0", "198.18.0.254/24")
    tb.sysctl(rt, "net.ipv4.ip_forward", 1)
    tb.sysctl(rt, "net.ipv4.fib_multipath_hash_policy", 1)
    relays, srv, ann, birds = [], [], [], [bird(tb, rt, ROUTER_BIRD, "router", fleet.dir)]
    for k, net in enumerate((2, 3)):
        ns = tb.add_ns("fl%c" % "ab"[k])
        tb.link(rt, "up%d" % k, ns, "eth0")
        tb.ip(rt, "addr add 198.18.%d.1/30 dev up%d" % (net, k))
        tb.ip(ns, "addr add 198.18.%d.2/30 dev eth0" % net)
        relays.append(ns)
        srv.append(start_relay(tb, binary, fleet, ns, tb.tag + "ab"[k]))
        ann.append(tb.popen(ns, [sys.executable, anycast_py, "--prefix", srv[k].prefix,
                                 "--address", ANYCAST + "/32", "--interval", "0.2"],
                            stdout=open(os.path.join(fleet.dir, "ann%d.log" % k), "w"),
                            stderr=subprocess.STDOUT))
        birds.append(bird(tb, ns, relay_bird("198.18.%d.2" % net, "198.18.%d.1" % net),
                          "relay%d" % k, fleet.dir))
    both = ["198.18.2.2", "198.18.3.2"]
    ok = wait_nexthops(tb, rt, both, 30)
    print("router: %s" % tb.run(rt, ["ip", "route", "show", ANYCAST]).stdout.strip())
    if not ok:
        for name, ns in (("router", rt), ("relay0", relays[0]), ("relay1", relays[1])):
            print("%s: %s" % (name, open(os.path.join(fleet.dir, name + ".log")).read()[-1500:]))
            print(tb.run(ns, ["birdc", "-s", os.path.join(fleet.dir, name + ".ctl"), "show",
                              "protocols", "all"], check=False).stdout[-2500:])
            print(tb.run(ns, ["ip", "addr"], check=False).stdout)
        for k in range(2):
            print("ann%d: %s" % (k, open(os.path.join(fleet.dir, "ann%d.log" % k)).read()))
    nc.check(ok, "both relays announce %s: the router has an ECMP route over both" % ANYCAST)
    for ns in tb.clients:
        tb.run(ns, ["ip", "route", "add", "198.18.255.0/24", "via", "198.18.0.254"])
    logs = [os.path.join(fleet.dir, "client%d.log" % i) for i in range(len(tb.clients))]
    cps = [start_client(tb, client, fleet, i, [ANYCAST], logs[i]) for i in range(len(tb.clients))]
    up = [wait_log(p, r"handshake complete: ", 20) is not None for p in logs]
    nc.check(all(up), "all %d clients handshake through the anycast address" % len(up))
    per = [sessions(s) for s in srv]
    # The hash put all on one relay (2 in 2^8 runs): a client restarted
    # takes a new source port, and with it a new draw.
    for i in range(len(tb.clients)):
        if min(per) > 0:
            break
        print("all %d clients on one relay; client %d reconnects" % (len(tb.clients), i))
        cps[i].send_signal(signal.SIGTERM)
        cps[i].wait(timeout=20)
        cps[i] = start_client(tb, client, fleet, i, [ANYCAST], logs[i])
        wait_log(logs[i], r"handshake complete: ", 20)
        time.sleep(0.5)
        per = [sessions(s) for s in srv]
    addrs = [tun_addrs(tb, ns) for ns in tb.clients]
    print("sessions per relay: %s" % per)
    nc.check(per[0] >= 1 and per[1] >= 1 and sum(per) == len(tb.clients),
             "ECMP spreads the clients over both relays (%d and %d)" % tuple(per))
    pings = [Pinger(tb, ns, "100.64.0.1", 30) for ns in tb.clients]
    time.sleep(3)
    # The service of relay b stops (as `systemctl stop oxidize-server`).
    t_stop = time.time()
    t0 = time.monotonic()
    srv[1].stop()
    withdrawn = wait_nexthops(tb, rt, [both[0]], 15)
    t_route = time.monotonic() - t0
    nc.check(withdrawn, "the stopped relay's route is withdrawn (%.2f s after the stop)"
             % t_route)
    time.sleep(10)
    for p in pings:
        p.stop()
    gaps = [outage(p.replies(), t_stop) for p in pings]
    moved = [i for i, g in enumerate(gaps) if g is not None and g > 1.0]
    print("outage per client (s): %s" % ", ".join("%.2f" % (g if g is not None else -1)
                                                  for g in gaps))
    nc.check(all(g is not None for g in gaps), "every client's pings resumed")
    nc.check(len(moved) == per[1], "the %d clients of the stopped relay, and only they, "
             "saw an outage (%d)" % (per[1], len(moved)))
    worst = max((gaps[i] for i in moved), default=0)
    nc.check(worst <= 10, "they reconnected through the other relay within %.1f s" % worst)
    print("FLEET-ANYCAST: route withdrawn %.2f s after the stop; clients back after "
          "%.2f s at worst (%s)" % (t_route, worst,
                                    ", ".join("%.2f" % gaps[i] for i in moved)))
    nc.check(sessions(srv[0]) == len(tb.clients),
             "all %d sessions on the remaining relay" % len(tb.clients))
    nc.check([tun_addrs(tb, ns) for ns in tb.clients] == addrs,
             "every client kept its tunnel addresses")
    for p in cps:
        p.send_signal(signal.SIGTERM)
    for p in ann:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
    text = open(os.path.join(fleet.dir, "ann1.log")).read()
    print(text)
    nc.check("withdrew %s/32" % ANYCAST in text, "oxidize-anycast logged the withdrawal")
    rc = srv[0].stop()
    if rc != 0 or "all mbufs back in the pool" not in srv[0].log:
        print(srv[0].log[-3000:])
    nc.check(rc == 0 and "all mbufs back in the pool" in srv[0].log,
             "the remaining relay stops cleanly (exit %s)" % rc)


def main():
    binary, client, anycast_py, case = sys.argv[1:5]
    nc.require_host()
    n = 8 if case == "anycast" else 1
    fleet = Fleet(client, n, collide=case == "failover")
    tb = nc.testbed(clients=n, queues=1)
    try:
        if case == "failover":
            case_failover(tb, binary, client, fleet)
        elif case == "anycast":
            case_anycast(tb, binary, client, anycast_py, fleet)
        else:
            nc.fail("unknown case " + case)
    finally:
        tb.down()
        fleet.cleanup()


if __name__ == "__main__":
    main()
