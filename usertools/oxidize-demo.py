#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Oxidize demo on the namespace testbed: oxidize-server as the relay,
on FLASH with two queues in the relay namespace, with its exit TAP and NAT
toward the internet namespace; two clients running oxidize-client (TUN,
standard UDP). It prints the handshakes and addresses, ping RTT and iperf3
throughput through the tunnel, client to client, and what the server saw,
read from its telemetry. Everything it builds it removes.

usage: oxidize-demo.py BUILD_DIR [--queues N] [--probes N]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oxidize_testbed as otb  # noqa: E402
from oxidize_telemetry import command as telemetry  # noqa: E402

PORT = 51820


def say(msg=""):
    print(msg, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", help="meson build directory")
    ap.add_argument("--queues", type=int, default=2)
    ap.add_argument("--probes", type=int, default=500, help="OXPI probes")
    args = ap.parse_args()
    server = os.path.join(args.build, "app", "oxidize-server", "oxidize-server")
    rss = os.path.join(args.build, "test", "bpf", "rss_emul.bpf.o")
    if not os.access(server, os.X_OK):
        sys.exit("demo: %s not built" % server)

    tb = otb.Testbed(clients=2, queues=args.queues, rss_bpf=rss)
    try:
        tb.up()
    except otb.Skip as e:
        sys.exit("demo: cannot build the testbed: %s" % e)
    try:
        run(tb, server, args)
    finally:
        tb.down()
        left = [n for n in otb.list_namespaces() if tb.tag in n]
        say("testbed removed" if not left else "namespaces left: %s" % left)


def follow(p, prefix, log, marker=None):
    ev = threading.Event()

    def reader():
        for line in p.stdout:
            log.append(line)
            say("   %s| %s" % (prefix, line.rstrip()))
            if marker and marker in line:
                ev.set()
        ev.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return ev, t


def ping(tb, ns, dst, count=10):
    r = tb.run(ns, ["ping", "-c", str(count), "-i", "0.1", "-W", "2", dst], check=False,
               timeout=30)
    last = r.stdout.strip().splitlines()[-2:] if r.stdout.strip() else ["no output"]
    return " / ".join(x.strip() for x in last)


def run(tb, server, args):
    client = os.path.join(os.path.dirname(server), "..", "oxidize-client", "oxidize-client")
    d = tempfile.mkdtemp(prefix="oxdemo-")
    procs = []
    try:
        run_demo(tb, server, client, d, args, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


def run_demo(tb, server, client, d, args, procs):
    say("== testbed")
    say(tb.describe())

    say("\n== keys (oxidize-client genkey / pubkey)")
    _, spub = otb.keygen(client, d, "server")
    keys = [otb.keygen(client, d, "client%d" % i) for i in range(len(tb.clients))]
    with open(os.path.join(d, "allow"), "w") as f:
        for i, (_, pub) in enumerate(keys):
            f.write("%s client%d\n" % (pub, i))
    say("   relay public key %s; allow-list: %d client keys" % (spub, len(keys)))

    say("\n== NAT in %s (nftables): tunnel addresses masqueraded out of %s"
        % (tb.relay, tb.relay_wan_iface))
    tb.run(tb.relay, ["nft", "-f", "-"], input=(
        "table ip oxidize {\n chain post {\n  type nat hook postrouting priority srcnat;\n"
        "  ip saddr 100.64.0.0/10 oifname \"%s\" masquerade\n }\n}\n" % tb.relay_wan_iface))

    prefix = "oxdemo%d" % os.getpid()
    argv = [server, "-l", "0-1", "--no-pci", "--file-prefix", prefix, "--huge-unlink",
            "--log-level", "pmd.net.af_xdp:error", "--log-level", "lib.eal:error",
            "--", "--iface", tb.relay_iface, "--port", str(PORT), "--tap", "oxtun0",
            "--key", os.path.join(d, "server.key"), "--allow", os.path.join(d, "allow"),
            "--max-sessions", "65536", "--duration", "300"]
    say("\n== starting oxidize-server in %s:\n   %s" % (tb.relay, " ".join(argv)))
    p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, text=True)
    procs.append(p)
    log = []
    up, t = follow(p, "server ", log, "up on ")
    up.wait(30)
    if p.poll() is not None:
        sys.exit("demo: the server did not start")

    say("\n== oxidize-client up in each client namespace")
    cl = []
    for i, (key, _) in enumerate(keys):
        extra = ["--route", "198.19.0.0/16"] if i == 0 else []
        c = tb.popen(tb.clients[i], [client, "up", "--server", "%s:%d" % (tb.relay_ip, PORT),
                                     "--server-key", spub, "--key", key, "--tun", "ox0",
                                     "--duration", "240"] + extra,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(c)
        clog = []
        ev, ct = follow(c, "client%d " % i, clog, "handshake complete")
        cl.append((c, clog, ev, ct))
    for c, clog, ev, ct in cl:
        ev.wait(20)
    addrs = []
    for i in range(len(tb.clients)):
        r = tb.run(tb.clients[i], ["ip", "-j", "addr", "show", "ox0"], check=False)
        info = json.loads(r.stdout)[0] if r.returncode == 0 else {"addr_info": [], "mtu": 0}
        a = ["%s/%d" % (x["local"], x["prefixlen"]) for x in info["addr_info"]
             if not x["local"].startswith("fe80")]
        addrs.append(a)
        say("   client%d ox0: %s, mtu %s" % (i, " ".join(a), info.get("mtu")))

    say("\n== ping through the tunnel (from client0)")
    say("   relay's tunnel address 100.64.0.1:  " + ping(tb, tb.clients[0], "100.64.0.1"))
    say("   the internet %s (NAT):  " % otb.INET_SERVICE_IP +
        ping(tb, tb.clients[0], otb.INET_SERVICE_IP))
    peer = [x.split("/")[0] for x in addrs[1] if x.startswith("100.")] if len(addrs) > 1 else []
    if peer:
        say("   client1 %s (client to client):  " % peer[0] + ping(tb, tb.clients[0], peer[0]))

    if shutil.which("iperf3"):
        say("\n== iperf3 through the tunnel: client0 -> the internet namespace, TCP, 5 s")
        srv = tb.popen(tb.inet, ["iperf3", "-s", "-B", otb.INET_SERVICE_IP, "-1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(srv)
        time.sleep(0.5)
        r = tb.run(tb.clients[0], ["iperf3", "-c", otb.INET_SERVICE_IP, "-t", "5", "-J"],
                   check=False, timeout=40)
        try:
            e = json.loads(r.stdout)["end"]
            say("   %.0f Mbit/s received, %d retransmits" % (
                e["sum_received"]["bits_per_second"] / 1e6, e["sum_sent"].get("retransmits", 0)))
        except (ValueError, KeyError):
            say("   iperf3 failed: %s" % r.stderr.strip()[-200:])
        srv.wait(10)

    say("\n== OXPI probes straight to the relay (RTT measured by the client)")
    r = otb.oxpi_probe(tb, 1, tb.relay_ip, PORT, flows=8, count=args.probes)
    say("   client1: %d/%d answered, RTT p50 %s us, p99 %s us, min %s us"
        % (r["received"], r["sent"], r["p50_us"], r["p99_us"], r["min_us"]))

    say("\n== telemetry /oxidize/ports (per queue)")
    ports = telemetry(prefix, "/oxidize/ports")
    for name, v in sorted(ports.items()):
        say("   %s %s:%d  %s, UMEM %s, XDP %s: rx %d tx %d"
            % (name, v["iface"], v["queue"], v["mode"], v["umem"], v["xdp"], v["rx_pkts"],
               v["tx_pkts"]))
    say("\n== telemetry /oxidize/stats (totals; relay counters; non-zero drop reasons)")
    st = telemetry(prefix, "/oxidize/stats")["total"]
    say("   rx %d tx %d, busy cycles/packet %d" % (st["rx_pkts"], st["tx_pkts"],
                                                   st["busy_cycles_per_pkt"]))
    say("   decrypted %d, to TAP %d, from TAP %d, client to client %d, keepalives %d, "
        "handoffs %d, echo %d" % (st["decrypted"], st["to_tap"], st["from_tap"],
                                  st["client_to_client"], st["keepalive"], st["handoff"],
                                  st["echo"]))
    for k, v in sorted(st.items()):
        if k.startswith("drop_") and v:
            say("   %s: %d" % (k, v))
    rel = telemetry(prefix, "/oxidize/relay")
    say("\n== telemetry /oxidize/relay")
    say("   sessions %d, handshakes %d (new %d, rekey %d), cookies %d, control cycles per "
        "handshake %d" % (rel["sessions"], rel["handshakes"], rel["handshakes_new"],
                          rel["handshakes_rekey"], rel["cookies_sent"],
                          rel["hs_cycles_per_accepted"]))

    say("\n== stopping (SIGTERM): clients disconnect, then the server")
    for c, clog, ev, ct in cl:
        c.send_signal(15)
        c.wait(timeout=15)
    p.send_signal(15)
    p.wait(timeout=30)
    t.join(5)
    attached = tb.xdp_attached(tb.relay, tb.relay_iface)
    say("   exit status %d; XDP program on %s: %s"
        % (p.returncode, tb.relay_iface, "still attached" if attached else "none"))
    if p.returncode != 0 or attached:
        sys.exit(1)


if __name__ == "__main__":
    main()
