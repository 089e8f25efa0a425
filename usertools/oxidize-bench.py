#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Oxidize benchmarks on the namespace testbed, side by side in one run.

    client0 ns: oxidize-perf (AF_XDP, cpu 1) --> switch --> relay ns eth0 (N queues): DUT (cpu 0)

Every case builds its own testbed, runs the device under test (DUT) in the
relay namespace pinned to cpu 0, loads it from the client namespace with
oxidize-perf pinned to cpu 1 for a bounded time, and tears everything down.
Cases: dpdk-testpmd io and macswap (the floor: same AF_XDP ports, same
load), oxidize-server OXPI echo at 64 and 1400 bytes, the kernel-UDP relay
(recvmmsg/sendmmsg, batch 32, one core) doing the same work, latency idle
and at half of the measured maximum, and 1 vs 2 queues.

Relay cases: oxidize-perf simulates OxTunnel v2 clients (own keys, real
handshakes, DATA sealed before the run), client to client at 64 and 1400
inner bytes on oxidize-server and on kudp-relay (the same work on a kernel
socket), client to client at a fixed rate for the RTT, and out of the
relay's exit TAP to the inet namespace (NAT as deployed). The per-packet
AEAD limit of one core comes from aead-bench in the same run.

On a 2-core machine the generator and the DUT's control threads share cpu 1;
absolute numbers drift between runs, ratios measured in one run are what
the page reports. Writes doc/benchmarks.md and PNG plots (or, with --quick,
the same into a scratch directory, for the test suite).

usage: oxidize-bench.py [--build DIR] [--quick] [--out DIR] [--seconds S]
                        [--kudp PATH] [--only NAME,...] [--rounds N]
                        [--busy-budget N]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import oxidize_testbed as otb  # noqa: E402
from oxbench_cases import Bench, merge_rounds, run_cases  # noqa: E402
from oxbench_page import make_plots, write_page  # noqa: E402
from oxbench_scale import (LIST_QUICK, LIST_SIZES, MEMORY_QUICK, SESSION_COUNTS,  # noqa: E402
                           SESSION_QUICK, SESSION_QUICK_PACKETS, STORM_CLIENTS, STORM_ENGINES,
                           STORM_QUICK)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--quick", action="store_true",
                    help="1 s per case into a scratch directory (the test suite's run)")
    ap.add_argument("--out", help="where benchmarks.md and the plots go (default doc/)")
    ap.add_argument("--seconds", type=float, default=5.0, help="load time per case")
    ap.add_argument("--kudp", help="kudp-relay binary (default: the build's)")
    ap.add_argument("--only", help="comma-separated parts of case names: run only those "
                    "(the page then shows only them)")
    ap.add_argument("--rounds", type=int,
                    help="run every case this many times, interleaved, and keep the median "
                    "(default 3; 1 with --quick)")
    ap.add_argument("--busy-budget", type=int,
                    help="preferred busy-poll budget for every AF_XDP socket of the run "
                    "(oxidize-server/oxidize-perf --busy-budget, testpmd's busy_budget devarg): "
                    "N, 0 = the PMD's default, -1 = off")
    ap.add_argument("--worker-fifo", type=int, default=0,
                    help="oxidize-server --worker-fifo PRIO: its worker lcore runs SCHED_FIFO "
                    "(0 = no, the default)")
    ap.add_argument("--plot-only", nargs=2, metavar=("JSON", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plot_only:
        b = Bench(".", 1, True)
        with open(args.plot_only[0]) as f:
            saved = json.load(f)
        b.results, b.scale = saved["results"], saved["scale"]
        print(json.dumps(make_plots(b, args.plot_only[1])))
        return 0
    if os.geteuid() != 0:
        print("SKIP: needs root (namespaces, AF_XDP)")
        return 77
    out = args.out or (tempfile.mkdtemp(prefix="oxbench-") if args.quick else
                       os.path.join(HERE, "..", "doc"))
    os.makedirs(out, exist_ok=True)
    b = Bench(os.path.abspath(args.build), 1.0 if args.quick else args.seconds, args.quick,
              kudp=args.kudp and os.path.abspath(args.kudp),
              only=args.only and args.only.split(","), busy_budget=args.busy_budget)
    b.worker_fifo = args.worker_fifo
    t0 = time.time()
    print("oxidize-bench: %s run, %.0f s per case, output %s" % (
        "quick" if args.quick else "full", b.seconds, out), flush=True)
    rounds = args.rounds or (1 if args.quick else 3)
    per_round = []
    try:
        for i in range(rounds):
            if rounds > 1:
                print("round %d of %d" % (i + 1, rounds), flush=True)
            b.results = []
            run_cases(b, args.quick)
            per_round.append(b.results)
    except otb.Skip as e:
        print("SKIP: %s" % e)
        return 77
    b.rounds = rounds
    b.results = merge_rounds(per_round)
    if not args.quick:
        b.profile_relay(1400)
    # Scale: once, after the rounds (each a few minutes at full size).
    if args.quick:
        b.case_storm(STORM_QUICK)
        b.case_allowlist(LIST_QUICK)
        b.case_sessions(SESSION_QUICK, packets=SESSION_QUICK_PACKETS)
        b.case_session_memory(MEMORY_QUICK)
    else:
        b.case_hs_engines(STORM_ENGINES)
        b.case_storm_rounds(STORM_CLIENTS)
        b.case_sessions(SESSION_COUNTS)
        b.case_session_memory()
        for n in LIST_SIZES:
            b.case_allowlist(n)
    plots = make_plots(b, out)
    write_page(b, out, plots, time.time() - t0)
    with open(os.path.join(out, "benchmarks.json"), "w") as f:
        json.dump({"results": b.results, "scale": b.scale}, f, indent=1)
    print("wrote %s" % os.path.join(out, "benchmarks.md"))
    lists = [r for r in b.scale if "skipped" not in r and "keys" in r]
    if any(not (r.get("bad_line_refused") and r.get("bad_line_named")) for r in lists):
        print("FAIL: a bad allow-list line was not refused by name with nothing changed")
        return 1
    if b.scale and any(r.get("storm", {}).get("done") != r.get("clients") for r in b.scale
                       if "skipped" not in r and "storm" in r):
        print("FAIL: a storm's clients did not all get sessions: %s" % ", ".join(
            "%s (%s of %s)" % (r["case"], r["storm"]["done"], r["clients"]) for r in b.scale
            if "skipped" not in r and "storm" in r and r["storm"]["done"] != r["clients"]))
        return 1
    bad = [r for rs in per_round for r in rs if "skipped" not in r and
           not r["kind"].startswith("testpmd") and r["pps"] == 0]
    if bad:
        print("FAIL: no answers in: %s" % ", ".join(r["case"] for r in bad))
        return 1
    forged = [r for rs in per_round for r in rs if r.get("bad_auth") or r.get("bad_inner")]
    forged += [r for r in b.scale if "skipped" not in r and any(
        x["bad"] or not x["received"] for x in r.get("rows", []))]
    if forged:
        print("FAIL: relayed packets that did not authenticate or carried the wrong inner "
              "packet in: %s" % ", ".join(r["case"] for r in forged))
        return 1
    if args.quick and not args.out:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
