#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""usertools/flash-bind.py on the testbed, inside the relay namespace:
--status, --prepare (whose printed --vdev arguments then run the server),
and --reset after a kill -9 left ox_steer behind.

  client0 --- switch --- relay eth0 (2 queues) <- oxidize-server --vdev ... (from --prepare)

usage: test_flash_bind.py SERVER_BIN FLASH_BIND_PY STEER_OBJ
(STEER_OBJ: the ox_steer.bpf.o of the build under test, which --prepare
must name, whatever the build directory is called)
"""

import os
import re
import sys

import netns_common as nc
import oxidize_testbed as otb


def main():
    server, tool, steer = sys.argv[1], sys.argv[2], sys.argv[3]
    nc.require_host()
    tb = nc.testbed(clients=1, queues=2)
    try:
        run(tb, server, tool, steer)
    finally:
        tb.down()


def run(tb, server, tool, steer):
    r = tb.run(tb.relay, [sys.executable, tool, "--status"])
    print(r.stdout)
    nc.check(re.search(r"^eth0: driver veth, XDP native, queues rx 2 tx 2.*XDP program: none",
                       r.stdout, re.M) is not None, "--status: eth0, veth, native XDP, 2 queues")
    nc.check("hugepages_2M" in r.stdout and "memlock" in r.stdout,
             "--status: host readiness listed")

    with open("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages") as f:
        hp = f.read().strip()
    r = tb.run(tb.relay, [sys.executable, tool, "--prepare", "eth0", "--queues", "2",
                          "--hugepages", hp])
    print(r.stdout)
    vdevs = re.findall(r"^  --vdev (\S+)", r.stdout, re.M)
    nc.check(len(vdevs) == 2 and all("queue_count=1" in v and "xdp_prog=" in v for v in vdevs),
             "--prepare prints one --vdev per queue with ox_steer")
    nc.check(all(("xdp_prog=%s" % os.path.abspath(steer)) in v for v in vdevs),
             "--prepare names this build's ox_steer (%s)" % steer)
    nc.check("channels: rx/tx 2" in r.stdout, "--prepare set the channels with ethtool")

    eal = []
    for v in vdevs:
        eal += ["--vdev", v]
    srv = nc.Server(tb, server, ["--port", "51820"], eal_extra=eal)
    srv.wait_up()
    nc.check("up on AF_XDP: eth0, 2 queue(s)" in srv.log, "server runs on the printed vdevs")
    p = otb.oxpi_probe(tb, 0, tb.relay_ip, 51820, flows=8, count=100)
    nc.check(p["received"] == 100, "probes answered (%d/100)" % p["received"])
    r = tb.run(tb.relay, [sys.executable, tool, "--status"])
    nc.check(re.search(r"^eth0: .*XDP program: native id \d+ 'ox_steer'", r.stdout, re.M)
             is not None, "--status shows ox_steer attached")
    srv.stop(sig=9)
    nc.check(tb.xdp_attached(tb.relay, "eth0"), "kill -9 left ox_steer attached")
    r = tb.run(tb.relay, [sys.executable, tool, "--reset", "eth0"])
    print(r.stdout)
    nc.check("removed native XDP program" in r.stdout and "'ox_steer'" in r.stdout,
             "--reset removed it")
    nc.check(not tb.xdp_attached(tb.relay, "eth0"), "eth0 has no XDP program")


if __name__ == "__main__":
    main()
