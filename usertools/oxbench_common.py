# SPDX-License-Identifier: BSD-3-Clause
"""oxidize-bench's common ground: paths, constants, the small helpers every
part uses (no cases, no page)."""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

PORT = 51820
GEN_CPU = 1                # the generator's cpu; the device under test has cpu 0
RELAY_CLIENTS = 16         # simulated clients in the full run's relay cases
LISTED, LISTED_ROUTED = 1000, 100  # the long allow-list's keys, those with a prefix
LISTED_CASE = "oxidize-server client to client, 1,000 more listed (100 with prefixes)"
NOCOUNT_CASE = "oxidize-server client to client, built without per-peer counters"
POLICY_CASE = ("oxidize-server client to client, --c2c group, 100 more listed at a rate, "
               "two ports")
POLICY_RATED = 100         # listed peers at a rate (not the measured clients, unlimited)
AB_RUNS = 5                # runs of each in the A/B sitting
EXIT_PORT = 9              # inner UDP port of the exit case (oxidize-perf's)
TESTPMD = "/opt/oxidize/dpdk/bin/dpdk-testpmd"
EAL_QUIET = ["--log-level", "lib.eal:error", "--log-level", "pmd.net.af_xdp:error",
             "--log-level", "ox.*:notice"]


def testpmd_path():
    for p in (TESTPMD, shutil.which("dpdk-testpmd") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


def shared_umem_ok():
    """Oxidize's DPDK's PMD has shared UMEM (flash-bind.py's probe)."""
    return subprocess.run([sys.executable, os.path.join(HERE, "flash-bind.py"),
                           "--shared-umem", "/opt/oxidize/dpdk"],
                          stdout=subprocess.DEVNULL).returncode == 0


WGGO_MIN_RATE = 500  # pps: the lowest rate case_wggo_best offers
RELAY_KINDS = ("oxidize-c2c", "oxidize-wg-c2c", "kudp-c2c", "wggo-c2c", "oxidize-exit",
               "oxidize-wg-exit", "wggo-exit", "oxidize-c2c-ab", "oxidize-c2c-nocount",
               "oxidize-c2c-listed", "oxidize-c2c-policy")
RELAY_DUTS = {"oxidize": "oxidize-server", "kudp": "kernel-UDP relay",
              "wggo": "wireguard-go hub"}
NAT_RULES = ("table ip oxbench {\n chain post {\n  type nat hook postrouting priority srcnat;\n"
             "  ip saddr 100.64.0.0/10 oifname \"eth1\" masquerade\n }\n}\n")
SINK_RULES = ("table inet oxbench {\n counter delivered { }\n chain input {\n"
              "  type filter hook input priority filter;\n"
              "  udp dport %d counter name \"delivered\" drop\n }\n}\n")


def add_listed(allow, n, routed):
    """n more keys on an allow-list, the first `routed` with a /24 each
    (10.N.M.0/24: no overlap, outside the pools), as a relay with many
    listed peers and some sites has."""
    import base64
    with open(allow, "a") as f:
        for i in range(n):
            line = "%s listed%d" % (base64.b64encode(os.urandom(32)).decode(), i)
            if i < routed:
                line += " 10.%d.%d.0/24" % (1 + i // 256, i % 256)
            f.write(line + "\n")


def add_policy(allow, n):
    """The per-peer policy in use around unlimited clients: every line of
    an allow-list in group bench (--c2c group lets them reach each other),
    then n more keys in another group at rate=20mbit."""
    import base64
    with open(allow) as f:
        lines = [ln.rstrip("\n") for ln in f]
    with open(allow, "w") as f:
        for ln in lines:
            f.write(ln + (" group=bench" if ln and not ln.startswith("#") else "") + "\n")
        for i in range(n):
            f.write("%s rated%d group=guests rate=20mbit\n" % (
                base64.b64encode(os.urandom(32)).decode(), i))


def cpu_mhz():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"cpu MHz\s*:\s*([\d.]+)", f.read())
            return float(m.group(1)) if m else 2000.0
    except OSError:
        return 2000.0


def proc_cpu_s(pid):
    """CPU time of a process and all its threads so far, s (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def softirq_s(cpu):
    """Time one cpu has spent in softirq context so far, s (/proc/stat)."""
    with open("/proc/stat") as f:
        for ln in f:
            if ln.startswith("cpu%d " % cpu):
                return int(ln.split()[7]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def ratio(a, b):
    return a / b if a and b else None


def full(r):
    """Cycles per packet including the receive work on the generator's cpu."""
    return r and r.get("rx_softirq_cycles") and r["cycles"] + r["rx_softirq_cycles"]


def pps_verdict(ox, kernel, r):
    """A pps ratio shows the devices' limits only where oxidize-server fell
    short of what the generator offered; otherwise it is a lower bound."""
    if r is None or r >= 2:
        return r is not None
    if ox["dut_pps"] >= 0.99 * ox["offered_pps"]:
        return "generator-bound" if kernel["dut_pps"] >= 0.99 * kernel["offered_pps"] \
            else "lower-bound"
    return False


def cycles_cell(r):
    """Cycles/packet, with the range over the rounds where there were several."""
    lo_hi = r.get("cycles_range")
    if r.get("ab_range"):
        return "%s (%s-%s, %d runs)" % (fmt(r["cycles"]), fmt(r["ab_range"][0]),
                                        fmt(r["ab_range"][1]), r["ab_runs"])
    if not lo_hi or r.get("rounds", 1) < 2:
        return fmt(r["cycles"])
    return "%s (%s-%s)" % (fmt(r["cycles"]), fmt(lo_hi[0]), fmt(lo_hi[1]))


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def wggo_version():
    """Debian's wireguard-go package version, as the page names it."""
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "wireguard-go"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        v = ""
    return "wireguard-go %s (Debian 12)" % v if v else "wireguard-go"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            return m.group(1).strip() if m else "unknown CPU"
    except OSError:
        return "unknown CPU"
