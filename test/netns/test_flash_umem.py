#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""FLASH on a 2-queue veth: two net_af_xdp ports (start_queue 0 and 1,
queue_count 1, shared_umem=1) over one mempool, UDP from several client flows
received on both queues, and the UMEM mode proven from the PMD's own log.

    client0 --- switch --- relay eth0 (2 queues) <- flash-rx (2 ports, 1 pool)

usage: test_flash_umem.py FLASH_RX_BINARY shared|per-queue
"""

import re
import subprocess
import sys

import netns_common as nc
import oxidize_testbed as otb

FLOWS = 16
PER_FLOW = 20


def main():
    flash_rx, expect = sys.argv[1], sys.argv[2]
    nc.require_host()
    tb = nc.testbed(clients=1, queues=2)
    try:
        run(tb, flash_rx, expect)
    finally:
        tb.down()
    check_clean(tb)


def run(tb, flash_rx, expect):
    total = FLOWS * PER_FLOW
    argv = [flash_rx] + nc.eal_args(tb.tag, log_levels=["pmd.net.af_xdp:info", "ox.*:info"]) + \
        ["--", "--iface", tb.relay_iface, "--queues", "2", "--expect", str(total),
         "--timeout", "20"]
    p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, text=True)
    out = []
    for line in p.stdout:
        out.append(line)
        if line.strip() == "READY":
            break
    else:
        p.wait()
        print("".join(out))
        nc.fail("flash-rx exited before READY (rc %s)" % p.returncode)
    sent = otb.udp_burst(tb, 0, tb.relay_ip, 51820, flows=FLOWS, per_flow=PER_FLOW, gap=0.01)
    rest, _ = p.communicate(timeout=60)
    out.append(rest)
    log = "".join(out)
    print(log)

    rx = {int(q): int(n) for q, n in re.findall(r"^port \d+ queue (\d+) rx (\d+)$", log, re.M)}
    nc.check(sent == total, "client sent %d datagrams on %d flows" % (sent, FLOWS))
    nc.check(set(rx) == {0, 1}, "two FLASH ports, bound to queues 0 and 1")
    nc.check(all(n > 0 for n in rx.values()), "both queues received traffic: %s" % rx)
    nc.check(sum(rx.values()) == total, "every datagram arrived (%d of %d)"
             % (sum(rx.values()), total))
    m = re.search(r"mbufs in use: baseline (\d+) now (\d+)", log)
    nc.check(m is not None and m.group(1) == m.group(2),
             "mbufs in use back to baseline after RX (%s)" % (m.groups() if m else None,))
    if expect == "shared":
        nc.check(re.search(r"eth0,qid1 sharing UMEM", log) is not None,
                 "the PMD reports queue 1 sharing queue 0's UMEM")
        nc.check("umem shared" in log, "FLASH reports shared UMEM")
    else:
        nc.check("Shared UMEM feature not available" in log,
                 "the stock PMD refuses shared_umem=1 at probe")
        nc.check("one UMEM per queue" in log and "umem per-queue" in log,
                 "FLASH falls back to one UMEM per queue and says so")
        nc.check("sharing UMEM" not in log, "no port claims a shared UMEM")
    nc.check(p.returncode == 0, "flash-rx exited cleanly")


def check_clean(tb):
    left = [ns for ns in otb.list_namespaces() if tb.tag in ns]
    nc.check(not left, "testbed namespaces removed")


if __name__ == "__main__":
    main()
