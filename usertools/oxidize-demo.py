#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Oxidize demo on the namespace testbed: oxidize-server on FLASH with
two queues in the relay namespace, two clients sending OXPI probes, and what
the server saw, read from its telemetry. Everything it builds it removes.

usage: oxidize-demo.py BUILD_DIR [--queues N] [--probes N]
"""

import argparse
import os
import subprocess
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
    ap.add_argument("--probes", type=int, default=1000, help="OXPI probes per client")
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


def run(tb, server, args):
    say("== testbed")
    say(tb.describe())
    prefix = "oxdemo%d" % os.getpid()
    argv = [server, "-l", "0-1", "--no-pci", "--file-prefix", prefix, "--huge-unlink",
            "--log-level", "pmd.net.af_xdp:error", "--log-level", "lib.eal:error",
            "--", "--iface", tb.relay_iface, "--port", str(PORT), "--duration", "120"]
    say("\n== starting oxidize-server in %s:\n   %s" % (tb.relay, " ".join(argv)))
    p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, text=True)
    log = []
    up = threading.Event()

    def reader():
        for line in p.stdout:
            log.append(line)
            say("   | " + line.rstrip())
            if "up on " in line:
                up.set()
        up.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    up.wait(30)
    if p.poll() is not None:
        sys.exit("demo: the server did not start")

    say("\n== OXPI probes (one at a time, RTT measured by the client)")
    for i in range(len(tb.clients)):
        r = otb.oxpi_probe(tb, i, tb.relay_ip, PORT, flows=8, count=args.probes)
        say("   client%d: %d/%d answered, RTT p50 %s us, p99 %s us, p99.9 %s us, min %s us"
            % (i, r["received"], r["sent"], r["p50_us"], r["p99_us"], r["p999_us"],
               r["min_us"]))

    client = os.path.join(os.path.dirname(server), "..", "oxidize-client", "oxidize-client")
    say("\n== oxidize-client ping (standard UDP) from client0")
    r = tb.run(tb.clients[0], [client, "ping", tb.relay_ip, "--port", str(PORT), "--count",
                               "500", "--interval", "0", "--flows", "4"], check=False)
    for line in r.stdout.strip().splitlines()[-2:]:
        say("   " + line)

    say("\n== the kernel still owns everything else on %s" % tb.relay_iface)
    r = tb.run(tb.clients[0], ["ping", "-c", "3", "-i", "0.2", tb.relay_ip], check=False)
    say("   ping relay: " + (r.stdout.strip().splitlines()[-1] if r.returncode == 0 else
                             "FAILED"))
    otb.udp_burst(tb, 0, tb.relay_ip, PORT, flows=1, per_flow=3, payload=b"not a probe")
    time.sleep(0.2)

    say("\n== telemetry /oxidize/ports (per queue)")
    ports = telemetry(prefix, "/oxidize/ports")
    for name, v in sorted(ports.items()):
        say("   %s %s:%d  %s, UMEM %s, XDP %s: rx %d tx %d"
            % (name, v["iface"], v["queue"], v["mode"], v["umem"], v["xdp"], v["rx_pkts"],
               v["tx_pkts"]))
    say("\n== telemetry /oxidize/stats (totals; non-zero drop reasons)")
    st = telemetry(prefix, "/oxidize/stats")["total"]
    say("   rx %d tx %d echo %d, busy cycles/packet %d"
        % (st["rx_pkts"], st["tx_pkts"], st["echo"], st["busy_cycles_per_pkt"]))
    for k, v in sorted(st.items()):
        if k.startswith("drop_") and v:
            say("   %s: %d" % (k, v))

    say("\n== stopping (SIGTERM)")
    p.send_signal(15)
    p.wait(timeout=30)
    t.join(5)
    attached = tb.xdp_attached(tb.relay, tb.relay_iface)
    say("   exit status %d; XDP program on %s: %s" % (p.returncode, tb.relay_iface,
                                                     "still attached" if attached else "none"))
    if p.returncode != 0 or attached:
        sys.exit(1)


if __name__ == "__main__":
    main()
