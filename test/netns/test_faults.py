#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Faults around the datapath, each ending in recovery or a clear error:

  link-flap   the relay's interface goes down and up under traffic: the
              server keeps running and answers again once the link is back
  hugepages   hugepages exhausted at start (a 8 MB hugetlbfs as --huge-dir):
              a one-line error naming the fix, nothing left attached
  soak        SECONDS (default 60) of probes, a tunnel client through the
              relay (TAP, NAT) and garbage: RSS flat, mbufs in use bounded
              and back to baseline, nothing lost, counters consistent

  client0 (oxidize-perf) --- switch --- relay eth0 (2 queues) <- oxidize-server

usage: test_faults.py SERVER_BIN PERF_BIN CASE [CLIENT_BIN [SECONDS]]
"""

import json
import os
import subprocess
import sys
import threading
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820


def perf(tb, binary, rate, seconds, client=0, tag="a"):
    mac = nc.relay_mac(tb)
    r = tb.run(tb.clients[client], [binary, "--lcores", "0@1", "--no-pci", "--file-prefix",
                                    "oxft%s%s" % (tag, tb.tag.replace("-", "")), "--huge-unlink",
                                    "--log-level", "lib.eal:error", "--log-level",
                                    "pmd.net.af_xdp:error", "--log-level", "ox.*:warning", "--",
                                    "--iface", "eth0", "--dst", tb.relay_ip, "--dst-mac", mac,
                                    "--rate", str(rate), "--duration", str(seconds), "--json"],
               bpffs=True, check=False, timeout=seconds + 120)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        nc.fail("oxidize-perf failed: %s" % r.stderr[-500:])
    return json.loads(lines[-1])


def case_link_flap(tb, server, perf_bin):
    # Probes at 2000/s from one source: no per-source limit in the way.
    srv = nc.Server(tb, server, ["--iface", "eth0", "--probe-rate", "0"], lcores="0@1,1@0")
    srv.wait_up()
    res = {}
    t = threading.Thread(target=lambda: res.update(perf(tb, perf_bin, 2000, 6)))
    t.start()
    time.sleep(2)
    tb.run(tb.relay, ["ip", "link", "set", "eth0", "down"])
    time.sleep(1)
    tb.run(tb.relay, ["ip", "link", "set", "eth0", "up"])
    t.join()
    print("load across the flap: %s" % res)
    nc.check(srv.proc.poll() is None, "server survived the link going down and up")
    nc.check(res["received"] > 0 and res["lost"] < res["sent"] / 2,
             "traffic answered around the flap (%d of %d)" % (res["received"], res["sent"]))
    time.sleep(1)
    r = otb.oxpi_probe(tb, 0, tb.relay_ip, PORT, flows=8, count=100)
    nc.check(r["received"] == 100, "after the flap every probe is answered (%d/100)"
             % r["received"])
    nc.check(tb.xdp_attached(tb.relay, "eth0"), "ox_steer still attached")
    rc = srv.stop()
    nc.check(rc == 0 and "all mbufs back in the pool" in srv.log, "clean stop, every mbuf back")


def case_hugepages(tb, server):
    script = ("mkdir -p /run/oxhp-$$ && mount -t hugetlbfs -o pagesize=2M,size=8M none "
              "/run/oxhp-$$ && mount -t bpf bpf /sys/fs/bpf 2>/dev/null; "
              "%s -l 0 --no-pci --file-prefix oxhp%s --huge-dir /run/oxhp-$$ --huge-unlink "
              "--log-level lib.eal:error --log-level pmd.net.af_xdp:error -- --iface eth0; "
              "rc=$?; umount /run/oxhp-$$; rmdir /run/oxhp-$$; exit $rc"
              % (server, tb.tag.replace("-", "")))
    r = tb.run(tb.relay, ["sh", "-c", script], check=False, timeout=60)
    out = r.stdout + r.stderr
    print(out)
    nc.check(r.returncode != 0, "server refuses to start")
    nc.check(("cannot create a pool of" in out or "cannot make a table of" in out) and
             "reserve more hugepages" in out,
             "error names what it could not allocate and the fix")
    nc.check(not tb.xdp_attached(tb.relay, "eth0"), "nothing left attached to eth0")


def case_soak(tb, server, perf_bin, seconds, client_bin):
    """Mixed traffic for SECONDS: OXPI probes at 20 kpps (client0), a tunnel
    client pinging the internet through the relay's TAP and NAT every 10 ms
    and garbage (client1). RSS flat, mbufs bounded, every counter accounted
    for (nothing vanished inside the relay), no tunnel ping lost, and probes
    lost in the kernel outside the relay on a busy machine reported and
    bounded (1%)."""
    import re
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="oxsoak-")
    _, spub = otb.keygen(client_bin, d, "server")
    key, pub = otb.keygen(client_bin, d, "soak")
    with open(os.path.join(d, "allow"), "w") as f:
        f.write("%s soak\n" % pub)
    nc.masquerade(tb)
    srv = nc.Server(tb, server, ["--iface", "eth0", "--tap", "oxtun0", "--key",
                                 os.path.join(d, "server.key"), "--allow",
                                 os.path.join(d, "allow"), "--max-sessions", "4096",
                                 "--probe-rate", "0"],
                    lcores="0@1,1@0")
    srv.wait_up()
    cl = tb.popen(tb.clients[1], [client_bin, "up", "--server", tb.relay_ip, "--server-key",
                                  spub, "--key", key, "--route", "198.19.0.0/16", "--duration",
                                  str(int(seconds) + 60)], stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    ping = ["ping", "-c", "1", "-W", "1", otb.INET_SERVICE_IP]
    while time.time() - t0 < 15 and tb.run(tb.clients[1], ping, check=False).returncode != 0:
        pass
    mac = nc.relay_mac(tb)
    res = {}
    t = threading.Thread(target=lambda: res.update(perf(tb, perf_bin, 20000, seconds)))
    t.start()
    # For the whole run (-w), every 10 ms or as close as the timer allows.
    pinger = tb.popen(tb.clients[1], ["ping", "-q", "-i", "0.01", "-w", str(int(seconds)),
                                      otb.INET_SERVICE_IP], stdout=subprocess.PIPE, text=True)
    garbage = tb.popen(tb.clients[1], [sys.executable, os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "garbage.py"), "eth0", mac,
        otb.client_ip(1), tb.relay_ip, str(PORT), str(int(seconds * 2000 / 11)), "2000"],
        stdout=subprocess.PIPE, text=True)
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(min(5, max(0.1, end - time.time())))
        st = nc.telemetry(srv.prefix, "/oxidize/stats")
        samples.append((nc.server_rss_kb(tb), st["mbufs_in_use"], st["total"]["rx_pkts"]))
    t.join()
    gsent = json.loads(garbage.communicate(timeout=seconds + 60)[0])
    pout = pinger.communicate(timeout=seconds + 60)[0]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", pout)
    count, pinged = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
    cl.terminate()
    clog = cl.communicate(timeout=20)[0]
    time.sleep(0.5)
    st = nc.telemetry(srv.prefix, "/oxidize/stats")
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    tot = st["total"]
    print("samples (RSS KB, mbufs in use, rx): %s" % samples)
    print("load: %s" % res)
    print("tunnel ping: %s\nclient: %s" % (pout.strip(), clog.strip()[-400:]))
    rss = [s[0] for s in samples[1:]] or [s[0] for s in samples]
    nc.check(max(rss) - min(rss) < 2048,
             "RSS flat over %ds (%d..%d KB)" % (seconds, min(rss), max(rss)))
    mbufs = max(s[1] for s in samples)
    nc.check(mbufs <= st["mbufs_baseline"] + 4096,
             "mbufs in use bounded (max %d, baseline %d)" % (mbufs, st["mbufs_baseline"]))
    # The relay's part of probe loss is none: every probe it received it
    # answered (the counters below add up, so none vanished inside it). On
    # a busy machine the kernel may lose some on the way (veth backlog, the
    # AF_XDP rings of either end when their poller is descheduled): those
    # are reported with the veths' own drop counters, and bounded.
    veth = {ns: link_drops(tb, ns) for ns in (tb.clients[0], tb.relay)}
    reached = tot["echo"]
    before, after = res["sent"] - reached, reached - (res["sent"] - res["lost"])
    print("probes: %d sent, %d reached the relay and were answered, %d lost before it, %d "
          "after; veth drops %s" % (res["sent"], reached, before, after, veth))
    nc.check(res["lost"] <= res["sent"] / 100,
             "probes lost outside the relay bounded over %ds: %d of %d (%d before it, %d after "
             "its answer)" % (seconds, res["lost"], res["sent"], before, after))
    # The last one may still be in flight when -w ends the run.
    nc.check(count >= seconds * 20 and count - pinged <= 1,
             "no tunnel ping lost over %ds (%d of %d)" % (seconds, pinged, count))
    drops = sum(v for k, v in tot.items() if k.startswith("drop_"))
    # Every packet received was echoed, dropped under a reason, opened, taken
    # from the TAP for a client, or queued as a handshake.
    work = tot["echo"] + tot["decrypted"] + tot["from_tap"] + tot["hs_queued"]
    nc.check(tot["rx_pkts"] == work + drops,
             "counters add up: rx %d = echo + decrypted + from TAP + handshakes %d + drops %d"
             % (tot["rx_pkts"], work, drops))
    sent = tot["echo"] + tot["to_tap"] + tot["from_tap"] + tot["client_to_client"] + \
        tot["ack_sent"] + tot["config_sent"] + rel["handshakes"] + rel["cookies_sent"]
    nc.check(tot["tx_pkts"] == sent, "tx %d = echo + to TAP + from TAP + client to client + "
             "acks + CONFIGs + handshake replies %d" % (tot["tx_pkts"], sent))
    nc.check(sum(gsent.values()) > 0, "garbage flowed alongside (%d frames)" % sum(gsent.values()))
    rc = srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    nc.check(rc == 0 and "all mbufs back in the pool" in srv.log, "clean stop, every mbuf back")


def link_drops(tb, ns, iface="eth0"):
    """The kernel's own drop counters of a namespace's interface."""
    st = json.loads(tb.run(ns, ["ip", "-s", "-j", "link", "show", iface]).stdout)[0]["stats64"]
    return {"rx_dropped": st["rx"]["dropped"], "tx_dropped": st["tx"]["dropped"],
            "rx_missed": st["rx"].get("missed", 0)}


def main():
    server, perf_bin, case = sys.argv[1], sys.argv[2], sys.argv[3]
    nc.require_host()
    tb = nc.testbed(clients=2, queues=2)
    soak_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60
    nc.run_case(tb, {
        "link-flap": lambda: case_link_flap(tb, server, perf_bin),
        "hugepages": lambda: case_hugepages(tb, server),
        "soak": lambda: case_soak(tb, server, perf_bin, soak_s, sys.argv[4]),
    }, case)


if __name__ == "__main__":
    main()
