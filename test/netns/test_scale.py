#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The relay at scale, quick cases (the full runs are the benchmark's):

  storm       N listed clients (oxidize-perf storm) arrive within a second
              while 16 established clients (oxidize-perf relay mode, another
              namespace) send DATA: every storm client gets its session,
              cookies are sent under the load, more than one handshake
              engine does the work, and the established clients keep their
              sessions and their traffic (what the kernel dropped outside
              the relay is counted and reported, not blamed on it)

  client0 (storm) ---+
                     switch --- relay eth0 (2 queues) <- oxidize-server
  client1 (DATA) ----+

usage: test_scale.py SERVER_BIN PERF_BIN CASE [CLIENTS]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import netns_common as nc

PORT = 51820


def perf_argv(tb, binary, tag, extra, cpu=0):
    return [binary, "--lcores", "0@%d" % cpu, "--no-pci", "--file-prefix",
            "oxsc%s%s" % (tag, tb.tag.replace("-", "")), "--huge-unlink",
            "--log-level", "lib.eal:error", "--log-level", "pmd.net.af_xdp:error",
            "--log-level", "ox.*:warning", "--", "--iface", "eth0", "--dst", tb.relay_ip,
            "--dst-mac", nc.relay_mac(tb), "--json"] + extra


def last_json(r, what):
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        nc.fail("%s failed: %s" % (what, r.stderr[-800:]))
    return json.loads(lines[-1])


def case_storm(tb, server, perf_bin, n, hs_workers=None, with_est=True, duration=30,
               hs_queue=16384, storm_cpu=0):
    d = tempfile.mkdtemp(prefix="oxstorm-")
    try:
        subprocess.run([perf_bin, "keys", d, "16"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([perf_bin, "storm-keys", d, str(n)], check=True,
                       stdout=subprocess.DEVNULL)
        allow = os.path.join(d, "relay.allow")
        with open(allow, "w") as f:
            for name in ("allow", "storm.allow"):
                with open(os.path.join(d, name)) as src:
                    f.write(src.read())
        srv = nc.Server(tb, server, ["--iface", "eth0", "--key", os.path.join(d, "server.key"),
                                     "--allow", allow, "--hs-queue", str(hs_queue),
                                     "--max-sessions", str(n + 64)] +
                        ([] if hs_workers is None else ["--hs-workers", str(hs_workers)]),
                        lcores="0@1,1@0")
        srv.wait_up()
        engines = 2 if hs_workers is None else 1 + min(hs_workers, 1)
        nc.check("handshakes: %d engine(s)" % engines in srv.log,
                 "%d handshake engine(s)" % engines)
        # The established clients: handshakes first, then DATA for the
        # whole storm, client to client.
        est = {}
        data_s = 40

        def established():
            r = tb.run(tb.clients[1], perf_argv(tb, perf_bin, "d", [
                "--relay", d, "--clients", "16", "--rate", "2000", "--duration", str(data_s),
                "--verify-every", "1"]), bpffs=True, check=False, timeout=data_s + 120)
            est.update(last_json(r, "oxidize-perf (established clients)"))

        t = threading.Thread(target=established)
        if with_est:
            t.start()
            # Wait for their sessions before the storm starts.
            t0 = time.time()
            while time.time() - t0 < 30:
                if nc.telemetry(srv.prefix, "/oxidize/relay").get("sessions", 0) >= 16:
                    break
                time.sleep(0.2)
            time.sleep(2)
        r = tb.run(tb.clients[0], perf_argv(tb, perf_bin, "s", [
            "--storm", d, "--clients", str(n), "--duration", str(duration), "--sources",
            "1024"], cpu=storm_cpu), bpffs=True, check=False, timeout=duration + 600)
        storm = last_json(r, "oxidize-perf storm")
        print("storm: %s" % json.dumps(storm))
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        eng = nc.telemetry(srv.prefix, "/oxidize/engines")
        print("relay: handshakes %d, cookies %d, cycles/accepted %d, engines %s" % (
            rel["handshakes"], rel["cookies_sent"], rel["hs_cycles_per_accepted"],
            json.dumps(eng)))
        if not with_est:
            print("stats: %s" % json.dumps(nc.telemetry(srv.prefix, "/oxidize/stats")))
            rc = srv.stop()
            print(json.dumps({"storm": storm, "relay": rel, "engines": eng}))
            return
        t.join()
        print("established: %s" % json.dumps(est))
        nc.check(storm["done"] == n and storm["bad_response"] == 0,
                 "every storm client got its session (%d of %d, %.1f s)"
                 % (storm["done"], n, storm["all_s"]))
        nc.check(storm["verified"] > 0, "the responses opened (%d verified)" % storm["verified"])
        nc.check(rel["cookies_sent"] > 0 and storm["cookies"] > 0,
                 "under the storm the relay asked for cookies (%d sent, %d taken)"
                 % (rel["cookies_sent"], storm["cookies"]))
        nc.check(len([a for a in eng["accepted"] if a > 0]) == 2,
                 "both engines completed handshakes (%s)" % eng["accepted"])
        nc.check(rel["sessions"] >= n + 16, "the relay holds %d sessions" % rel["sessions"])
        nc.check(est.get("bad_auth", 1) == 0 and est.get("received", 0) > 0,
                 "the established clients' DATA kept flowing (%d of %d back)"
                 % (est.get("received", 0), est.get("sent", 0)))
        rc = srv.stop()
        nc.check(rc == 0 and "all mbufs back in the pool" in srv.log,
                 "clean stop, every mbuf back")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    server, perf_bin, case = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    nc.require_host()
    tb = nc.testbed(clients=2, queues=2)
    nc.run_case(tb, {
        "storm": lambda: case_storm(tb, server, perf_bin, n),
        # For a measurement by hand: N clients on 1 engine, then on 2, alone.
        "storm-engines": lambda: [case_storm(tb, server, perf_bin, n, w, False, 120, 65536)
                                  for w in (0, 1)],
        "storm-1": lambda: case_storm(tb, server, perf_bin, n, 0, False, 120, 65536),
        "storm-2": lambda: case_storm(tb, server, perf_bin, n, 1, False, 120, 65536, 1),
    }, case)


if __name__ == "__main__":
    main()
