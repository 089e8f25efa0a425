#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Bad-input flood against the relay: while client0 sends OXPI probes at a
steady rate and a tunnel client pings through its session, client1 blasts
the relay with garbage at more than 10x that rate: random bytes, wrong
magic, v1 and unknown-version headers, unknown types, short and lying
lengths, DATA for unknown indexes and with bad tags for a live one, a
replayed datagram, initiations with bad MACs, bad checksums, IP fragments,
TCP to the port, truncated frames. The server stays up, the legitimate
flows lose nothing, every garbage class is counted under its own reason (by
the server, its handshake thread, or by ox_steer for what it leaves to the
kernel), and mbufs and RSS come back to their baseline.

  client0 (oxidize-perf, 1000 pps) -------------\\
                                                  switch --- relay eth0 (2 queues)
  client1 (garbage.py 20000 pps, oxpeer ping) ---/

usage: test_flood.py SERVER_BIN PERF_BIN CLIENT_BIN
"""

import json
import os
import shutil
import tempfile
import sys
import threading
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820
LEGIT_PPS = 1000
SECONDS = 6
PER_CLASS = 3000          # 20 classes: 60000 frames
GARBAGE_PPS = 20000       # 20x the legitimate probe rate

# class -> (where it is counted, counters whose sum it must be)
EXPECT = {
    "random_payload": ("server", "drop_ox_bad_magic"),
    "wrong_magic": ("server", "drop_ox_bad_magic"),
    "oversized_random": ("server", "drop_ox_bad_magic"),
    "v1_datagram": ("server", "drop_ox_v1_datagram"),
    "bad_version": ("server", "drop_ox_bad_version"),
    "bad_type": ("server", "drop_ox_bad_type"),
    "short_header": ("server", "drop_ox_too_short"),
    "lying_length": ("server", "drop_ox_bad_length"),
    "unknown_index": ("server", "drop_ox_unknown_index"),
    # Forged DATA for a live index: the owner finds the bad tag, or, past
    # its per-session share of the inbox, the lcore that got it drops it.
    "bad_tag": ("server", "drop_ox_bad_tag+drop_handoff_session_limit"),
    "replayed_data": ("server", "drop_ox_replay"),
    # Refused on the worker: none reaches the control thread's queue.
    "init_bad_mac1": ("server", "drop_ox_bad_mac1"),
    "bad_ip_csum": ("server", "drop_bad_ip_csum"),
    "bad_udp_csum": ("server", "drop_bad_udp_csum"),
    "lying_udp_len": ("server", "drop_bad_udp_len"),
    "lying_ip_len": ("server", "drop_bad_ip_len"),
    "first_fragment": ("server", "drop_ip_fragment"),
    "later_fragment": ("xdp", "pass_fragment"),
    "tcp_to_port": ("xdp", "pass_not_udp"),
    "truncated": ("xdp", "pass_short"),
}


def main():
    server, perf, client = sys.argv[1], sys.argv[2], sys.argv[3]
    nc.require_host()
    try:
        import cryptography  # noqa: F401
    except ImportError:
        nc.skip("python3 cryptography module missing (Debian python3-cryptography)")
    tb = nc.testbed(clients=2, queues=2)
    d = tempfile.mkdtemp(prefix="oxflood-")
    try:
        run(tb, server, perf, client, d)
    finally:
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


def key_of(path):
    with open(path) as f:
        return f.read().strip()


def run(tb, server, perf, client, d):
    _, spub = otb.keygen(client, d, "server")
    ka, apub = otb.keygen(client, d, "alice")
    kv, vpub = otb.keygen(client, d, "victim")
    with open(os.path.join(d, "allow"), "w") as f:
        f.write("%s alice\n%s victim\n" % (apub, vpub))
    # The worker on cpu 0, the load generator on cpu 1.
    srv = nc.Server(tb, server, ["--iface", "eth0", "--port", str(PORT), "--tap", "oxtun0",
                                 "--key", os.path.join(d, "server.key"), "--allow",
                                 os.path.join(d, "allow"), "--max-sessions", "4096",
                                 "--probe-rate", "0"],
                    lcores="0@1,1@0")
    srv.wait_up()

    def oxpeer(key, *args, client=0):
        return nc.oxpeer(tb, client, spub, key_of(key), *args, port=PORT, timeout=120,
                         quiet=True)

    # A live session whose index and one accepted datagram the garbage reuses.
    v = oxpeer(kv, "sealed", "100.64.0.1")
    nc.check(v.get("reply") is True, "a session to aim garbage at")
    mac = nc.relay_mac(tb)
    # Warm up, then take the baselines.
    otb.oxpi_probe(tb, 0, tb.relay_ip, PORT, flows=4, count=50)
    rss0 = nc.server_rss_kb(tb)
    xdp0 = nc.telemetry(srv.prefix, "/oxidize/xdp")
    srv0 = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    rel0 = nc.telemetry(srv.prefix, "/oxidize/relay")

    result = {}

    def legit():
        r = tb.run(tb.clients[0], [perf, "--lcores", "0@1", "--no-pci", "--file-prefix",
                                   "oxfl%s" % tb.tag.replace("-", ""), "--huge-unlink",
                                   "--log-level", "lib.eal:error", "--log-level",
                                   "pmd.net.af_xdp:error", "--log-level", "ox.*:warning", "--",
                                   "--iface", "eth0", "--dst", tb.relay_ip, "--dst-mac", mac,
                                   "--rate", str(LEGIT_PPS), "--duration", str(SECONDS),
                                   "--json"], bpffs=True, check=False, timeout=120)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        result["legit"] = json.loads(lines[-1]) if lines else {"error": r.stderr[-500:]}

    def tunnel():
        # From client1: client0's interface belongs to oxidize-perf's AF_XDP.
        result["tunnel"] = oxpeer(ka, "ping", "100.64.0.1", "300", client=1)

    t = threading.Thread(target=legit)
    t.start()
    t2 = threading.Thread(target=tunnel)
    time.sleep(0.5)
    t2.start()
    g = tb.run(tb.clients[1], [sys.executable, os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "garbage.py"), "eth0", mac, otb.client_ip(1), tb.relay_ip,
        str(PORT), str(PER_CLASS), str(GARBAGE_PPS), str(v["index"]), v["datagram"]],
        timeout=120)
    sent = json.loads(g.stdout)
    t.join()
    t2.join()
    time.sleep(0.5)
    leg = result["legit"]
    print("legitimate: %s" % leg)
    print("garbage sent: %s" % sent)
    nc.check("sent" in leg and leg["sent"] >= LEGIT_PPS * SECONDS * 0.95,
             "legitimate flow ran (%s probes)" % leg.get("sent"))
    nc.check(leg.get("lost") == 0, "legitimate flow lost nothing under the flood (lost %s)"
             % leg.get("lost"))
    tun = result.get("tunnel", {})
    nc.check(tun.get("received") == 300, "a tunnel session pinged through the flood without "
             "loss (%s/300)" % tun.get("received"))
    total_garbage = sum(sent.values())
    nc.check(total_garbage >= 10 * LEGIT_PPS * (total_garbage / GARBAGE_PPS),
             "garbage rate >= 10x the legitimate one (%d frames)" % total_garbage)

    xdp1 = nc.telemetry(srv.prefix, "/oxidize/xdp")
    srv1 = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    rel1 = nc.telemetry(srv.prefix, "/oxidize/relay")
    print("server deltas: %s" % {k: srv1[k] - srv0[k] for k in srv1 if srv1[k] != srv0[k]})
    print("ox_steer deltas: %s" % {k: xdp1[k] - xdp0[k] for k in xdp1
                                   if isinstance(xdp1[k], int) and xdp1[k] != xdp0[k]})
    want = {}
    for cls, (where, key) in EXPECT.items():
        want.setdefault((where, key), 0)
        want[(where, key)] += sent[cls]
    for (where, key), n in sorted(want.items()):
        if where == "server":
            got = sum(srv1[k] - srv0[k] for k in key.split("+"))
            nc.check(got == n, "server %s counted every one (%d of %d)" % (key, got, n))
        elif where == "relay":
            got = sum((rel1 if k in rel1 else srv1)[k] - (rel0 if k in rel0 else srv0)[k]
                      for k in key.split("+"))
            nc.check(got == n, "relay %s counted every one (%d of %d)" % (key, got, n))
        else:
            got = xdp1[key] - xdp0[key]
            # The kernel's own traffic (neighbour discovery...) may add a few.
            nc.check(n <= got <= n + 50, "ox_steer %s counted them (%d for %d)" % (key, got, n))
    nc.check(srv1["echo"] - srv0["echo"] == leg["sent"], "every legitimate probe echoed")
    # Only the tunnel client's own initiation(s) reached the handshake queue.
    queued = srv1["hs_queued"] - srv0["hs_queued"]
    nc.check(queued <= 3, "no initiation with a bad mac1 queued for the control thread "
             "(hs_queued +%d for %d sent)" % (queued, sent["init_bad_mac1"]))
    nc.check(rel1["hs_drop_bad_mac1"] == rel0["hs_drop_bad_mac1"],
             "the control thread saw none of them")
    rss1 = nc.server_rss_kb(tb)
    print("RSS before %d KB, after %d KB" % (rss0, rss1))
    nc.check(rss1 - rss0 < 1024, "server RSS back near its baseline (+%d KB)" % (rss1 - rss0))
    rc = srv.stop()
    print(srv.log)
    nc.check(rc == 0 and "all mbufs back in the pool" in srv.log,
             "server still up to the end, stops cleanly, every mbuf back")


if __name__ == "__main__":
    main()
