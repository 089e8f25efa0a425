#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""/oxidize/health under every remote flood at once, and where it must
still say unhealthy.

  client0 (oxidize-perf --relay: 16 sessions' DATA, 150 kpps) ---\\
                                                                   switch --- relay eth0 (2 queues)
  client1 (garbage.py, valid-mac1 INITs from 200 sources, OXPI) --/      worker lcore cpu 0,
                                                                         control thread cpu 1

For 10 s, all at once: every garbage class, initiations with a valid
mac1 from 200 source addresses (the cookie path), DATA for 16 live
sessions at 150,000 packets a second (more than the worker carries beside
the rest), and OXPI probes. /oxidize/health is polled every 0.2 s
throughout and must never answer unhealthy: load is "under load", with its
reasons (said beside it), not death (a fleet withdraws an unhealthy relay's route, and an
attacker who could make it say so could walk the fleet down). The flood
must have been felt (under load, cookies, drops). Then what health is
for: the worker lcore stopped (ptrace, that thread alone) makes it say
"lcore N stalled", the control thread stopped makes it say "control
thread stalled", and both come back healthy when let go.

usage: test_health.py SERVER PERF CLIENT
"""

import ctypes
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820
SECONDS = 10
HERE = os.path.dirname(os.path.abspath(__file__))
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000


class Stopped:
    """One thread of another process stopped (PTRACE_SEIZE + INTERRUPT
    stops that thread alone, not its whole process), until the block ends."""

    def __init__(self, tid):
        self.tid = tid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p,
                                     ctypes.c_void_p]

    def _ptrace(self, req):
        if self.libc.ptrace(req, self.tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "ptrace(%#x, %d)" % (req, self.tid))

    def __enter__(self):
        self._ptrace(PTRACE_SEIZE)
        self._ptrace(PTRACE_INTERRUPT)
        os.waitpid(self.tid, WALL)
        return self

    def __exit__(self, *exc):
        self._ptrace(PTRACE_DETACH)


def threads(pid):
    """{name: tid} of a process's threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            out.setdefault(f.read().strip(), int(tid))
    return out


def health(srv):
    try:
        return nc.telemetry(srv.prefix, "/oxidize/health")
    except Exception as e:  # no answer is not a verdict of the relay's
        return {"error": str(e)}


def main():
    server, perf, client = sys.argv[1], sys.argv[2], sys.argv[3]
    nc.require_host()
    try:
        import cryptography  # noqa: F401
    except ImportError:
        nc.skip("python3 cryptography module missing (Debian python3-cryptography)")
    tb = nc.testbed(clients=2, queues=2)
    d = tempfile.mkdtemp(prefix="oxhealth-")
    try:
        run(tb, server, perf, client, d)
    finally:
        tb.down()
        shutil.rmtree(d, ignore_errors=True)


def run(tb, server, perf, client, d):
    import subprocess
    subprocess.run([perf, "keys", d, "16"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, "server.pub")) as f:
        spub = f.read().strip()
    kv, vpub = otb.keygen(client, d, "victim")
    import base64
    with open(os.path.join(d, "allow"), "a") as f:
        f.write("%s victim\n" % vpub)
        # Listed keys that never connect: /oxidize/peers takes two pages.
        for i in range(24):
            f.write("%s idle%d\n" % (base64.b64encode(os.urandom(32)).decode(), i))
    # The worker on cpu 0; the control thread shares cpu 1 with the loads.
    srv = nc.Server(tb, server, ["--iface", "eth0", "--port", str(PORT), "--tap", "oxtun0", "--key",
                                 os.path.join(d, "server.key"), "--allow",
                                 os.path.join(d, "allow"), "--max-sessions", "4096"],
                    lcores="0@1,1@0")
    srv.wait_up()
    with open(kv) as f:
        v = nc.oxpeer(tb, 1, spub, f.read().strip(), "sealed", "100.64.0.1", port=PORT,
                      timeout=60, quiet=True)
    nc.check(v.get("reply") is True, "a session to aim garbage at")
    mac = nc.relay_mac(tb)
    sources = ["198.18.0.%d" % (20 + i) for i in range(200)]
    for a in sources:
        tb.ip(tb.clients[1], "addr add %s/24 dev eth0" % a)
    h0 = health(srv)
    nc.check(h0.get("healthy") == 1, "healthy before the floods (%s)" % h0)
    rel0 = nc.telemetry(srv.prefix, "/oxidize/relay")
    tot0 = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]

    out = {}

    def bg(name, ns, argv, **kw):
        def go():
            r = tb.run(ns, argv, check=False, timeout=SECONDS + 60, **kw)
            lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
            out[name] = json.loads(lines[-1]) if lines else {"error": r.stderr[-300:]}
        t = threading.Thread(target=go)
        t.start()
        return t

    loads = [
        bg("data", tb.clients[0], [perf, "--lcores", "0@1", "--no-pci", "--file-prefix",
                                   "oxhp%s" % tb.tag.replace("-", ""), "--huge-unlink",
                                   "--log-level", "lib.eal:error", "--log-level",
                                   "pmd.net.af_xdp:error", "--log-level", "ox.*:warning", "--",
                                   "--iface", "eth0", "--dst", tb.relay_ip, "--dst-mac", mac,
                                   "--relay", d, "--clients", "16", "--duration",
                                   str(SECONDS + 2), "--rate", "150000", "--json"],
           bpffs=True),
    ]
    # The 16 clients' handshakes first (oxidize-perf answers no cookie),
    # then everything else while their DATA flows.
    end = time.time() + 30
    while time.time() < end and nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"] < 17:
        time.sleep(0.2)
    time.sleep(1.0)
    loads += [
        bg("garbage", tb.clients[1], [sys.executable, os.path.join(HERE, "garbage.py"), "eth0",
                                      mac, otb.client_ip(1), tb.relay_ip, str(PORT), "2500",
                                      "5000", str(v["index"]), v["datagram"]]),
        bg("inits", tb.clients[1], [sys.executable, os.path.join(HERE, "wgprobe.py"),
                                    "init-flood", tb.relay_ip, str(PORT), spub, "20000",
                                    str(SECONDS)] + sources),
        bg("oxinits", tb.clients[1], [sys.executable, os.path.join(HERE, "wgprobe.py"),
                                      "ox-init-flood", tb.relay_ip, str(PORT), spub, "20000",
                                      str(SECONDS)] + sources),
    ]
    probes = {}

    def oxpi():
        probes.update(otb.oxpi_probe(tb, 1, tb.relay_ip, PORT, flows=8, count=2000,
                                     timeout=0.2, gap=0.004))
    pt = threading.Thread(target=oxpi)
    pt.start()
    loads.append(pt)

    polls, bad, loaded, peak = 0, [], [], 0
    end = time.time() + SECONDS
    while time.time() < end:
        h = health(srv)
        polls += 1
        if h.get("healthy") != 1:
            bad.append(h)
        if h.get("under_load") == 1:
            loaded.append(h.get("load"))
        peak = max(peak, nc.telemetry(srv.prefix, "/oxidize/stats")["mbufs_in_use"])
        time.sleep(0.2)
    for t in loads:
        t.join()
    rel1 = nc.telemetry(srv.prefix, "/oxidize/relay")
    tot1 = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    print("loads: %s\nprobes: %s" % (out, probes))
    print("relay deltas: %s" % {k: rel1[k] - rel0[k] for k in rel1
                                if isinstance(rel1[k], int) and rel1[k] != rel0.get(k)})
    print("server deltas: %s" % {k: tot1[k] - tot0[k] for k in tot1 if tot1[k] != tot0[k]})
    nc.check(polls >= 40 and not bad,
             "every flood class at once for %d s: /oxidize/health healthy in all %d polls "
             "(unhealthy: %s)" % (SECONDS, polls, bad[:3]))
    st = nc.telemetry(srv.prefix, "/oxidize/stats")
    nc.check(loaded and "cookies required" in loaded[0],
             "health said under load in %d of %d polls, with its reasons (%r)"
             % (len(loaded), polls, loaded[0] if loaded else None))
    # Every place a sender can park an mbuf (RX rings, the handshake
    # queue, the inboxes, TX) is bounded and counted into the pool's size.
    nc.check(peak < st["mbufs_total"],
             "the mbuf pool never ran out: at most %d of %d in use (baseline %d)"
             % (peak, st["mbufs_total"], st["mbufs_baseline"]))
    felt = (rel1["under_load_polls"] > rel0["under_load_polls"] and
            rel1["cookies_sent"] > rel0["cookies_sent"] and
            tot1["drop_ox_bad_magic"] > tot0["drop_ox_bad_magic"] and
            out.get("data", {}).get("sent", 0) > 0 and probes.get("received", 0) > 0)
    nc.check(felt, "the floods were felt: under load %d polls, %d cookies, garbage dropped, "
             "%s DATA sent, %s probes answered"
             % (rel1["under_load_polls"] - rel0["under_load_polls"],
                rel1["cookies_sent"] - rel0["cookies_sent"], out.get("data", {}).get("sent"),
                probes.get("received")))

    # Per-peer status, page by page (32 a page).
    seen, start, nexts = {}, 0, []
    while start >= 0 and len(nexts) < 10:
        got, start = nc.oxt.peers_page(nc.telemetry(srv.prefix, "/oxidize/peers,%d" % start))
        seen.update(got)
        nexts.append(start)
    busy = [p for p in seen.values() if p.get("connected") and p.get("rx_bytes", 0) > 0 and
            p.get("tx_bytes", 0) > 0 and p.get("proto") == "oxtunnel"]
    nc.check(len(seen) == 41 and nexts == [32, -1] and len(busy) >= 16 and
             sum(1 for p in seen.values() if not p.get("connected")) == 24,
             "/oxidize/peers: 41 listed peers in pages of 32 (next %s), the 16 that sent DATA "
             "with bytes each way (%d), 24 never connected" % (nexts, len(busy)))
    pid = nc.server_pid(tb)
    names = threads(pid)
    worker = next((tid for n, tid in names.items()
                   if n.startswith(("rte-worker", "lcore-worker"))), None)
    nc.check(worker is not None, "the worker lcore's thread found (%s)" % sorted(names))
    for tid, what, want in ((worker, "the worker lcore", "lcore 1 stalled"),
                            (pid, "the control thread", "control thread stalled")):
        with Stopped(tid):
            time.sleep(1.5)
            h = health(srv)
        nc.check(h.get("healthy") == 0 and want in h.get("reasons", ""),
                 "%s stopped for 1.5 s: unhealthy, %r" % (what, h.get("reasons")))
        time.sleep(0.5)
        h = health(srv)
        nc.check(h.get("healthy") == 1, "%s let go: healthy again (%s)" % (what, h))
    rc = srv.stop()
    print(srv.log[-3000:])
    nc.check(rc == 0 and "all mbufs back in the pool" in srv.log,
             "server stops cleanly, every mbuf back")


if __name__ == "__main__":
    main()
