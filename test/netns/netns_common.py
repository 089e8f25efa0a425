# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of the netns suite: skip rules, EAL arguments, checks."""

import os
import subprocess
import sys
import time

import oxidize_telemetry as oxt
import oxidize_testbed as otb

SKIP = 77


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def require_tun_wg():
    """Skip (77) unless TUN devices, wireguard-go and wg are here."""
    import shutil

    if not os.path.exists("/dev/net/tun"):
        skip("no /dev/net/tun")
    for tool, pkg in (("wireguard-go", "wireguard-go"), ("wg", "wireguard-tools")):
        if shutil.which(tool) is None:
            skip("%s not installed (Debian package %s)" % (tool, pkg))


def require_host():
    """Skip (77) unless this host can run AF_XDP tests: root, hugepages."""
    if os.geteuid() != 0:
        skip("needs root (namespaces, XDP, AF_XDP)")
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            free = int(f.read())
    except OSError:
        skip("no 2 MB hugepage support in this kernel")
    if free < 64:
        skip("fewer than 64 free 2 MB hugepages (run usertools/oxidize-setup.sh)")
    with open("/proc/mounts") as f:
        if " hugetlbfs " not in f.read():
            skip("hugetlbfs not mounted (run usertools/oxidize-setup.sh)")


def eal_args(tag, lcores="0", log_levels=()):
    """EAL arguments for a DPDK process in a testbed namespace."""
    args = ["-l", lcores, "--no-pci", "--file-prefix", "ox%s" % tag.replace("-", ""),
            "--huge-unlink"]
    for lv in log_levels:
        args += ["--log-level", lv]
    return args


def testbed(**kw):
    try:
        return otb.Testbed(**kw).up()
    except otb.Skip as e:
        skip(str(e))


def run_case(tb, cases, case):
    """Run cases[case] (a callable) on testbed tb, always taking tb down."""
    try:
        if case not in cases:
            fail("unknown case %s (known: %s)" % (case, ", ".join(sorted(cases))))
        cases[case]()
    finally:
        tb.down()


telemetry = oxt.command


def total(srv, name):
    """A counter of the relay's /oxidize/stats, summed over its workers."""
    return telemetry(srv.prefix, "/oxidize/stats")["total"].get(name, 0)


def peer_status(srv):
    """{name: status} of the relay's listed peers (/oxidize/peers)."""
    return {v.get("name"): v for v in oxt.peers(srv.prefix).values()}


def wg_keyfile(path):
    """A key pair from the stock `wg genkey`, the private key written to
    path (mode 600): the public key."""
    priv = subprocess.run(["wg", "genkey"], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
    with open(path, "w") as f:
        f.write(priv + "\n")
    os.chmod(path, 0o600)
    return subprocess.run(["wg", "pubkey"], input=priv, stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()


def masquerade(tb):
    """The relay namespace NATs tunnel traffic out of its uplink (eth1), as
    the README has the operator do."""
    tb.run(tb.relay, ["nft", "-f", "-"], input=(
        "table ip oxidize {\n chain post {\n  type nat hook postrouting priority srcnat;\n"
        "  ip saddr 100.64.0.0/10 oifname \"eth1\" masquerade\n }\n}\n"))


class Server:
    """oxidize-server running in the relay namespace, output collected."""

    def __init__(self, tb, binary, app_args, lcores="0-1", eal_extra=(), tag=None,
                 log_levels=("pmd.net.af_xdp:error", "lib.eal:error"), ns=None,
                 huge_unlink=True):
        import subprocess
        import threading
        self.prefix = "ox%s" % (tag or tb.tag).replace("-", "")
        # Unlinked hugepage files leave nothing behind a killed test, but a
        # secondary process (dpdk-dumpcap) cannot map them: remove_hugefiles()
        # cleans up after a relay started with huge_unlink=False.
        argv = [binary, "--lcores" if "@" in lcores else "-l", lcores, "--no-pci",
                "--file-prefix", self.prefix] + (["--huge-unlink"] if huge_unlink else []) + \
            list(eal_extra)
        for lv in log_levels:
            argv += ["--log-level", lv]
        argv += ["--"] + list(app_args)
        self.argv = argv
        self.lines = []
        self.up = threading.Event()
        self.proc = tb.popen(ns or tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def remove_hugefiles(self):
        """The hugepage files of this relay's prefix (after it stopped)."""
        import glob
        with open("/proc/mounts") as f:
            mounts = [ln.split()[1] for ln in f if ln.split()[2:3] == ["hugetlbfs"]]
        for m in mounts:
            for p in glob.glob(os.path.join(m, self.prefix + "map_*")):
                os.unlink(p)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if "up on " in line:
                self.up.set()
        self.up.set()

    @property
    def log(self):
        return "".join(self.lines)

    def wait_log(self, pattern, timeout=5):
        """The first match of the regex pattern in the log, waiting up to
        timeout seconds for it (a line written just before an answer the
        test got may still be in the pipe); None if it never came."""
        import re
        end = time.time() + timeout
        while True:
            m = re.search(pattern, self.log)
            if m or time.time() >= end:
                return m
            time.sleep(0.05)

    def wait_up(self, timeout=30):
        self.up.wait(timeout)
        if self.proc.poll() is not None or "up on " not in self.log:
            print(self.log)
            fail("server did not come up: %s" % " ".join(self.argv))

    def stop(self, sig=15, timeout=20):
        import subprocess
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Where it hangs, for whoever reads the log: its threads'
            # stacks (gdb, where installed) and what it said last.
            import shutil
            stacks = ""
            if shutil.which("gdb"):
                stacks = subprocess.run(
                    ["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt 12"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    timeout=60).stdout
            self.proc.kill()
            self.proc.wait()
            fail("server did not stop within %ds of signal %d; its log ends:\n%s\n%s" % (
                timeout, sig, "\n".join(self.log.splitlines()[-30:]),
                "\n".join(ln for ln in stacks.splitlines() if ln.startswith(("#", "Thread")))))
        self._reader.join(5)
        return self.proc.returncode

    def wait_exit(self, timeout=30):
        import subprocess
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("server did not exit within %ds" % timeout)
        self._reader.join(5)
        return self.proc.returncode


def scrape_exporter(tb, prefix):
    """Run usertools/oxidize-exporter.py in the relay namespace for the
    server of PREFIX and return one scrape of /metrics (Prometheus text)."""
    import os
    import subprocess
    import sys
    exporter = os.path.join(os.path.dirname(oxt.__file__), "oxidize-exporter.py")
    # Run as installed: its own interpreter line (Debian's python3, which
    # has python3-prometheus-client).
    ex = tb.popen(tb.relay, [exporter, "--file-prefix", prefix,
                             "--listen", "127.0.0.1:9851"], stdout=subprocess.PIPE, text=True)
    try:
        ex.stdout.readline()
        r = tb.run(tb.relay, [sys.executable, "-c", "import urllib.request;print(urllib."
                              "request.urlopen('http://127.0.0.1:9851/metrics',timeout=5)"
                              ".read().decode())"])
    finally:
        ex.kill()
        ex.wait()
    return r.stdout


def relay_mac(tb, iface="eth0"):
    """MAC address of the relay's interface (where generators send)."""
    import json
    return json.loads(tb.run(tb.relay, ["ip", "-j", "link", "show", iface]).stdout)[0]["address"]


def server_pid(tb):
    """PID of the oxidize-server running in the relay namespace, or None."""
    import subprocess
    out = subprocess.run(["ip", "netns", "pids", tb.relay], stdout=subprocess.PIPE,
                         text=True).stdout.split()
    for p in out:
        try:
            with open("/proc/%s/comm" % p) as f:
                if f.read().strip() == "oxidize-server":
                    return int(p)
        except OSError:
            pass
    return None


# AddressSanitizer's shadow on x86-64: an eighth of every byte the process
# touches, hugepage memory (mbufs first used by a flood) included. Not the
# relay's memory.
ASAN_SHADOW = (0x00007fff8000, 0x10007fff8000)


def server_rss_kb(tb):
    """Resident memory of the relay namespace's oxidize-server, KB, or None;
    without a sanitizer's shadow mappings (from /proc/PID/smaps)."""
    pid = server_pid(tb)
    try:
        total, skip = 0, False
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    lo, hi = (int(x, 16) for x in head.split("-"))
                    skip = lo >= ASAN_SHADOW[0] and hi <= ASAN_SHADOW[1]
                elif head == "Rss:" and not skip:
                    total += int(line.split()[1])
        return total
    except (OSError, TypeError, ValueError):
        pass
    return None


PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oxpeer.py")


def oxpeer(tb, client, server_pub, priv, *args, port=51820, timeout=60, quiet=False,
           server=None):
    """Run test/netns/oxpeer.py in client namespace `client` against the relay
    with key `priv` (base64); its JSON result, {} if it printed none."""
    import json
    r = tb.run(tb.clients[client], [sys.executable, PEER, "--server", server or tb.relay_ip,
                                    "--port", str(port), "--server-pub", server_pub,
                                    "--key", priv] + list(args), check=False, timeout=timeout)
    if r.stderr.strip() and not quiet:
        print(r.stderr.strip())
    out = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    if not quiet:
        print("peer %s: %s" % (args[0], out))
    return out
