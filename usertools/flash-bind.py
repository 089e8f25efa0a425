#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Prepare network interfaces for FLASH (oxidize-server on AF_XDP).

In the manner of dpdk-devbind.py:
  flash-bind.py --status                  interfaces, drivers, XDP support, queues,
                                          attached XDP programs, host readiness
  flash-bind.py --prepare IF [--queues N] [--port P[,P]...] [--hugepages N]
                                          set channels and rings, BPF JIT, hugepages,
                                          socket buffers; print the EAL --vdev arguments
  flash-bind.py --reset IF                remove XDP programs left on IF
  flash-bind.py --shared-umem [DIR ...]   does the net_af_xdp PMD (the first one found
                                          under DIR..., default Oxidize's DPDK then the
                                          stock one) have shared UMEM? exit 0 yes, 1 no,
                                          2 no PMD found: the one probe the build, the
                                          setup and the benchmarks use
Run as root for --prepare and --reset. Interfaces are those of the current
network namespace (run it with `ip netns exec NS` for another).
"""

import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys

# Drivers with native (driver-mode) XDP in Linux 6.x; the rest get generic mode.
NATIVE_XDP = {
    "bnxt_en", "ena", "i40e", "ice", "igb", "igc", "ixgbe", "ixgbevf", "mlx4_en",
    "mlx5_core", "mvneta", "mvpp2", "nfp", "qede", "sfc", "stmmac", "thunder-nicvf",
    "tun", "veth", "virtio_net", "xen-netfront", "bond", "netdevsim", "fec", "dpaa2-eth",
    "enetc", "lan966x-switch", "octeontx2-nicpf", "gve", "atlantic", "hv_netvsc",
}
HP_DIR = "/sys/kernel/mm/hugepages/hugepages-2048kB"
DEFAULT_HUGEPAGES = 512
SOCK_BUF = 26214400


def sh(argv, check=False):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              check=check)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", "%s: not installed" % argv[0])


def failed(r, fmt):
    """"" when the command r succeeded, else fmt filled with its error."""
    return "" if r.returncode == 0 else fmt % r.stderr.strip()


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def interfaces():
    return sorted(n for n in os.listdir("/sys/class/net") if n != "lo")


def driver(iface):
    link = "/sys/class/net/%s/device/driver" % iface
    if os.path.islink(link):
        return os.path.basename(os.readlink(link))
    r = sh(["ethtool", "-i", iface])
    m = re.search(r"^driver:\s*(\S+)", r.stdout, re.M)
    return m.group(1) if m else "?"


def sysfs_queues(iface):
    qs = os.listdir("/sys/class/net/%s/queues" % iface) if os.path.isdir(
        "/sys/class/net/%s/queues" % iface) else []
    return (sum(1 for q in qs if q.startswith("rx-")), sum(1 for q in qs if q.startswith("tx-")))


def channels(iface):
    """ethtool -l: {'max': {...}, 'cur': {...}} or None."""
    r = sh(["ethtool", "-l", iface])
    if r.returncode != 0:
        return None
    out, section = {"max": {}, "cur": {}}, None
    for line in r.stdout.splitlines():
        if line.startswith("Pre-set maximums"):
            section = "max"
        elif line.startswith("Current hardware settings"):
            section = "cur"
        elif section:
            m = re.match(r"\s*(RX|TX|Other|Combined):\s*(\S+)", line)
            if m:
                v = m.group(2)
                out[section][m.group(1).lower()] = int(v) if v.isdigit() else 0
    return out


def rings(iface):
    r = sh(["ethtool", "-g", iface])
    if r.returncode != 0:
        return None
    vals = re.findall(r"^(RX|TX):\s*(\d+)", r.stdout, re.M)
    if len(vals) < 4:
        return None
    return {"max_rx": int(vals[0][1]), "max_tx": int(vals[1][1]),
            "rx": int(vals[2][1]), "tx": int(vals[3][1])}


def xdp_progs(iface):
    """[(mode, id, name)] of XDP programs attached to iface."""
    r = sh(["ip", "-d", "-j", "link", "show", "dev", iface])
    if r.returncode != 0:
        return []
    try:
        info = json.loads(r.stdout)[0]
    except (ValueError, IndexError):
        return []
    xdp = info.get("xdp")
    if not xdp:
        return []
    progs = []
    for att in xdp.get("attached", [xdp]):
        prog = att.get("prog", {})
        mode = att.get("mode", xdp.get("mode"))
        mode = {1: "native", 2: "generic", 3: "offload"}.get(mode, str(mode))
        if prog.get("id"):
            progs.append((mode, prog["id"], prog.get("name", "?")))
    return progs


def bpf_jit_state():
    v = read("/proc/sys/net/core/bpf_jit_enable", None)
    if v is None:
        # Only the initial namespace has the knob; kernels built with
        # CONFIG_BPF_JIT_ALWAYS_ON have it fixed at 1.
        return "not visible here (set in the host namespace; always on if the kernel forces it)"
    return {"1": "on", "2": "on (debug)", "0": "OFF"}.get(v, v)


def host_readiness():
    total = int(read(HP_DIR + "/nr_hugepages", "0") or 0)
    free = int(read(HP_DIR + "/free_hugepages", "0") or 0)
    mounts = read("/proc/mounts")
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return {
        "hugepages_2M": "%d reserved, %d free" % (total, free),
        "hugetlbfs": "mounted" if " hugetlbfs " in mounts else "NOT mounted",
        "bpffs": "mounted" if " bpf " in mounts else "NOT mounted",
        "memlock": "unlimited" if soft == resource.RLIM_INFINITY else "%d KB (root's "
                   "CAP_IPC_LOCK lifts it)" % (soft // 1024),
        "bpf_jit": bpf_jit_state(),
        "rmem_max": read("/proc/sys/net/core/rmem_max", "?"),
    }


def status():
    print("Network interfaces (this namespace)")
    print("=" * 35)
    for iface in interfaces():
        drv = driver(iface)
        rxq, txq = sysfs_queues(iface)
        ch = channels(iface)
        chs = ""
        if ch and ch["max"]:
            chs = " ethtool combined %s/%s rx %s/%s" % (
                ch["cur"].get("combined", 0), ch["max"].get("combined", 0),
                ch["cur"].get("rx", 0), ch["max"].get("rx", 0))
        progs = xdp_progs(iface)
        pstr = ", ".join("%s id %d '%s'" % (m, i, n) for m, i, n in progs) or "none"
        print("%s: driver %s, XDP %s, queues rx %d tx %d%s, XDP program: %s" % (
            iface, drv, "native" if drv in NATIVE_XDP else "generic", rxq, txq, chs, pstr))
    print("\nHost readiness")
    print("=" * 14)
    for k, v in host_readiness().items():
        print("%-13s %s" % (k, v))
    return 0


def need_root():
    if os.geteuid() != 0:
        sys.exit("flash-bind.py: must run as root for this")


PMD_DIRS = ("/opt/oxidize/dpdk", "/usr/lib/x86_64-linux-gnu/dpdk")


def pmd_has_shared_umem(dirs=PMD_DIRS):
    """Whether the first net_af_xdp PMD found under `dirs` has shared UMEM
    (it carries this message only when built without it); None when there
    is no PMD there."""
    for base in dirs:
        for root, subdirs, files in sorted(os.walk(base)):
            subdirs.sort()
            for f in sorted(files):
                path = os.path.join(root, f)
                if f.startswith("librte_net_af_xdp.so") and not os.path.islink(path):
                    with open(path, "rb") as fh:
                        return b"Shared UMEM feature not available" not in fh.read()
    return None


def shared_umem(dirs):
    has = pmd_has_shared_umem(dirs or PMD_DIRS)
    print("net_af_xdp shared UMEM: %s" % {True: "yes", False: "no", None: "no PMD found"}[has])
    return {True: 0, False: 1, None: 2}[has]


def default_xdp_prog():
    """ox_steer.bpf.o: $OX_STEER_BPF (a build's test sets it to its own),
    else the newest of the build directories beside this script, else the
    installed one."""
    env = os.environ.get("OX_STEER_BPF")
    if env:
        return os.path.abspath(env) if os.path.exists(env) else None
    here = os.path.dirname(os.path.abspath(__file__))
    built = glob.glob(os.path.join(here, "..", "*", "drivers", "xdp", "ox_steer.bpf.o"))
    built.sort(key=os.path.getmtime, reverse=True)
    for p in built + ["/usr/local/share/oxidize/ox_steer.bpf.o",
                      "/usr/share/oxidize/ox_steer.bpf.o"]:
        if os.path.exists(p):
            return os.path.abspath(p)
    return None


def ports_arg(text):
    """--port P[,P]...: what oxidize-server's --port takes."""
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        ports = []
    if not ports or len(ports) > 8 or len(set(ports)) != len(ports) or \
            not all(1 <= p <= 65535 for p in ports):
        raise argparse.ArgumentTypeError("'%s': up to 8 distinct ports in 1..65535, "
                                         "comma-separated" % text)
    return ",".join(map(str, ports))


def prepare(args):
    need_root()
    iface = args.prepare
    if not os.path.isdir("/sys/class/net/%s" % iface):
        sys.exit("flash-bind.py: interface %s does not exist" % iface)
    notes = []
    ch = channels(iface)
    queues = args.queues
    if ch and ch["max"].get("combined", 0) > 0:
        queues = queues or min(ch["max"]["combined"], os.cpu_count() or 1)
        r = sh(["ethtool", "-L", iface, "combined", str(queues)])
        notes.append("channels: combined %d%s" % (queues, failed(r, " FAILED: %s")))
    elif ch and ch["max"].get("rx", 0) > 0:
        queues = queues or ch["max"]["rx"]
        r = sh(["ethtool", "-L", iface, "rx", str(queues), "tx", str(queues)])
        notes.append("channels: rx/tx %d%s" % (queues, failed(r, " FAILED: %s")))
    else:
        found = sysfs_queues(iface)[0]
        queues = queues or found or 1
        if queues > max(found, 1):
            sys.exit("flash-bind.py: %s has %d queue(s) and no ethtool channels to raise"
                     % (iface, found))
        notes.append("channels: %d queue(s) (fixed by the driver)" % queues)
    rg = rings(iface)
    if rg:
        want_rx, want_tx = min(rg["max_rx"], 4096), min(rg["max_tx"], 4096)
        r = sh(["ethtool", "-G", iface, "rx", str(want_rx), "tx", str(want_tx)])
        notes.append("rings: rx %d tx %d%s" % (want_rx, want_tx, failed(r, " (unchanged: %s)")))
    else:
        notes.append("rings: not adjustable on this driver")
    # XDP sees only what is in the frame: a tag the NIC strips into
    # metadata would be invisible to ox_steer.
    r = sh(["ethtool", "-K", iface, "rxvlan", "off"])
    notes.append("rx VLAN offload: %s"
                 % (failed(r, "unchanged: %s") or "off (tags stay visible to XDP)"))
    try:
        with open("/proc/sys/net/core/bpf_jit_enable", "w") as f:
            f.write("1")
        notes.append("BPF JIT: on")
    except OSError:
        notes.append("BPF JIT: " + bpf_jit_state())
    cur = int(read(HP_DIR + "/nr_hugepages", "0") or 0)
    if cur < args.hugepages:
        with open(HP_DIR + "/nr_hugepages", "w") as f:
            f.write(str(args.hugepages))
    notes.append("hugepages: %s of 2 MB reserved" % read(HP_DIR + "/nr_hugepages"))
    if " hugetlbfs " not in read("/proc/mounts"):
        os.makedirs("/dev/hugepages", exist_ok=True)
        sh(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev", "/dev/hugepages"])
        notes.append("hugetlbfs: mounted on /dev/hugepages")
    for key in ("rmem_max", "wmem_max", "rmem_default", "wmem_default"):
        try:
            with open("/proc/sys/net/core/%s" % key, "w") as f:
                f.write(str(SOCK_BUF))
        except OSError:
            pass
    notes.append("socket buffers: net.core.{r,w}mem_{max,default} = %d" % SOCK_BUF)
    for n in notes:
        print("  " + n)

    shared = ",shared_umem=1" if pmd_has_shared_umem() else ""
    prog = args.xdp_prog or default_xdp_prog()
    progarg = ",xdp_prog=%s" % prog if prog else ""
    vdevs = ["--vdev net_af_xdp%d,iface=%s,start_queue=%d,queue_count=1%s%s"
             % (q, iface, q, shared, progarg) for q in range(queues)]
    print("\nEAL arguments for %d queue(s)%s:" % (
        queues, "" if shared else " (this DPDK's net_af_xdp has no shared UMEM: "
        "one UMEM per queue)"))
    print("  " + " \\\n  ".join(vdevs))
    print("\nServer:")
    print("  oxidize-server -l 0-%d --file-prefix oxidize %s \\\n    -- --port %s" % (
        queues, " ".join(vdevs), args.port))
    print("or let the server create them itself:")
    print("  oxidize-server -l 0-%d --file-prefix oxidize -- --iface %s --port %s"
          % (queues, iface, args.port))
    if not prog:
        print("\nnote: ox_steer.bpf.o not found (build Oxidize first or give --xdp-prog)")
    return 0


def reset(iface):
    need_root()
    progs = xdp_progs(iface)
    if not progs:
        print("%s: no XDP program attached" % iface)
        return 0
    for mode, pid, name in progs:
        flag = {"native": "xdpdrv", "generic": "xdpgeneric", "offload": "xdpoffload"}.get(
            mode, "xdp")
        r = sh(["ip", "link", "set", "dev", iface, flag, "off"])
        print("%s: removed %s XDP program id %d '%s'%s" % (
            iface, mode, pid, name, "" if r.returncode == 0 else " FAILED: " + r.stderr.strip()))
    left = xdp_progs(iface)
    return 1 if left else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("-s", "--status", action="store_true", help="show interfaces and host")
    g.add_argument("--prepare", metavar="IF", help="prepare IF for FLASH")
    g.add_argument("--reset", metavar="IF", help="remove XDP programs from IF")
    g.add_argument("--shared-umem", nargs="*", metavar="DIR",
                   help="does the net_af_xdp PMD under DIR... have shared UMEM (exit 0)")
    ap.add_argument("--queues", type=int, default=0, help="queues to use (default: all)")
    ap.add_argument("--port", type=ports_arg, default="51820",
                    help="OxTunnel UDP ports, comma-separated (up to 8)")
    ap.add_argument("--hugepages", type=int, default=DEFAULT_HUGEPAGES,
                    help="2 MB hugepages to reserve (default %d)" % DEFAULT_HUGEPAGES)
    ap.add_argument("--xdp-prog", help="ox_steer object for the vdev arguments")
    args = ap.parse_args()
    if args.shared_umem is not None:
        return shared_umem(args.shared_umem)
    if args.status:
        return status()
    if args.prepare:
        return prepare(args)
    return reset(args.reset)


if __name__ == "__main__":
    sys.exit(main())
