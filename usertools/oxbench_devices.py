# SPDX-License-Identifier: BSD-3-Clause
"""oxidize-bench's devices: the device under test started in the relay
namespace, the load generators, the keys and hubs they need, and the record
of results every case adds to."""

import json
import os
import subprocess
import tempfile
import threading
import time

import oxidize_testbed as otb
from oxbench_common import (
    EAL_QUIET, EXIT_PORT, GEN_CPU, NAT_RULES, PORT, SINK_RULES, cpu_mhz, fmt, proc_cpu_s,
    softirq_s)
from oxidize_telemetry import command as telemetry


class Devices:
    def __init__(self, build, seconds, quick, kudp=None, only=None, busy_budget=None):
        self.build = build
        self.seconds = seconds
        self.quick = quick
        self.only = only
        self.server = os.path.join(build, "app", "oxidize-server", "oxidize-server")
        # The same relay built without its per-peer counters (the A/B of
        # what counting costs).
        self.server_nocount = self.server + "-nocount"
        self.perf = os.path.join(build, "app", "oxidize-perf", "oxidize-perf")
        self.scale = []  # the scale cases' results (oxbench_scale)
        self.kudp = kudp or os.path.join(build, "test", "bench", "kudp-relay")
        self.aead_bench = os.path.join(build, "test", "bench", "aead-bench")
        self.csum_bench = os.path.join(build, "test", "bench", "csum-bench")
        self.profile = None  # where the worker's time goes, from perf (profile_relay)
        self.rss = os.path.join(build, "test", "bpf", "rss_emul.bpf.o")
        self.results = []
        self.busy_budget = busy_budget
        self.worker_fifo = 0
        self.half_rate = self.half_rate_k = self.relay_rate = self.idle_rate = None
        self.wggo_rate = {}  # size -> the hub's best client-to-client rate
        self.rounds = 1
        self.profiling = None  # perf.data path while profile_relay runs

    def busy_args(self):
        """oxidize-server/oxidize-perf arguments for the busy-poll setting."""
        return [] if self.busy_budget is None else ["--busy-budget", str(self.busy_budget)]

    def server_args(self):
        """oxidize-server arguments of the run: busy-poll and scheduling."""
        fifo = ["--worker-fifo", str(self.worker_fifo)] if self.worker_fifo else []
        return self.busy_args() + fifo

    def busy_devarg(self):
        """The same setting as a net_af_xdp devarg (testpmd)."""
        if not self.busy_budget:
            return ""
        return ",busy_budget=%d" % max(self.busy_budget, 0)

    def wanted(self, name):
        """With --only, whether a case of this name runs."""
        return not self.only or any(o in name for o in self.only)

    # -- the load ------------------------------------------------------------------

    def load(self, tb, size, rate=0, seconds=None, flows=32, relay=None):
        """oxidize-perf from client 0: OXPI probes from `flows` ports, or with
        relay=(key dir, clients, extra args) simulated OxTunnel clients."""
        mac = json.loads(tb.run(tb.relay, ["ip", "-j", "link", "show", "eth0"]).stdout)[0][
            "address"]
        # --lcores, not taskset: EAL pins its lcores itself.
        argv = [self.perf, "--lcores", "0@1", "--no-pci", "--file-prefix",
                "oxbperf%s" % tb.tag.replace("-", ""), "--huge-unlink"] + EAL_QUIET + \
            ["--", "--iface", "eth0", "--dst", tb.relay_ip, "--dst-mac", mac,
             "--size", str(size), "--rate", str(rate),
             "--duration", str(seconds or self.seconds), "--json"] + self.busy_args()
        if relay:
            keys, clients, extra = relay
            argv += ["--relay", keys, "--clients", str(clients)] + list(extra)
        else:
            argv += ["--flows", str(flows)]
        # The device under test's receive path runs in softirq on the cpu
        # that sends to it (veth): the generator's. Measure it there.
        si = softirq_s(GEN_CPU)
        # Relay runs seal every packet first: allow for it.
        r = tb.run(tb.clients[0], argv, bpffs=True, check=False, timeout=240)
        si = softirq_s(GEN_CPU) - si
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if not line:
            raise RuntimeError("oxidize-perf failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
        gen = json.loads(line[-1])
        # /proc/stat counts in ticks: too coarse below some 10^5 packets.
        gen["rx_softirq_cycles"] = (si * cpu_mhz() * 1e6 / gen["sent"]
                                    if gen["sent"] >= 100000 else None)
        return gen

    # -- devices under test --------------------------------------------------------

    def record(self, prefix, seconds):
        """perf record of the worker's cpu, call graphs kept, for `seconds`
        once DATA flows (the generator seals all its packets first)."""
        t_end = time.time() + 120
        while time.time() < t_end:
            try:
                if telemetry(prefix, "/oxidize/stats")["total"]["decrypted"] > 10000:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        subprocess.run(["perf", "record", "-q", "-C", "0", "-g", "-o", self.profiling, "--",
                        "sleep", "%.1f" % seconds], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=seconds + 60)

    def relay_keys(self, clients):
        """A server key, client keys and the allow-list, from oxidize-perf."""
        d = tempfile.mkdtemp(prefix="oxbench-keys-")
        subprocess.run([self.perf, "keys", d, str(clients)], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return d

    def wggo_hub(self, tb, keys):
        """Debian's wireguard-go as a hub in the relay namespace, as a user
        would run it: the relay's key, one peer per allow-list line with its
        address as AllowedIPs, the pool on its TUN, the kernel forwarding
        (client to client back out of the TUN; exit through eth1's NAT).
        Returns the process (pinned to cpu 0) and the interface's name."""
        ifname = "oxbwg%s" % tb.tag[-4:]
        with open(os.path.join(keys, "server.key")) as f:
            conf = ["[Interface]", "PrivateKey = " + f.read().strip(),
                    "ListenPort = %d" % PORT]
        with open(os.path.join(keys, "allow")) as f:
            for ln in f:
                fields = ln.split("#")[0].split()
                if len(fields) >= 3:
                    conf += ["[Peer]", "PublicKey = " + fields[0],
                             "AllowedIPs = %s/32" % fields[2]]
        path = os.path.join(keys, "hub.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        os.chmod(path, 0o600)
        # Its control socket is /var/run/wireguard/NAME.sock, shared by
        # every namespace: the name is the testbed's.
        p = tb.popen(tb.relay, ["taskset", "-c", "0", "wireguard-go", "-f", ifname],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = "/var/run/wireguard/%s.sock" % ifname
        end = time.time() + 5
        while time.time() < end and not os.path.exists(sock):
            time.sleep(0.05)
        tb.run(tb.relay, ["wg", "setconf", ifname, path])
        tb.run(tb.relay, ["ip", "addr", "add", "100.64.0.1/10", "dev", ifname])
        tb.run(tb.relay, ["ip", "link", "set", ifname, "mtu", "1420", "up"])
        # Client to client leaves by the interface it came in on: no ICMP
        # redirects back into the tunnel.
        for dev in ("all", ifname):
            tb.sysctl(tb.relay, "net.ipv4.conf.%s.send_redirects" % dev, 0)
        return p, ifname

    def _relay(self, tb, dut, name, keys, size, clients, exit, rate, seconds, packets, wg,
               server=None, tag=None, server_extra=()):
        extra = ["--packets", str(packets)] if packets else []
        extra += ["--wireguard"] if wg else []
        if exit:
            extra += ["--exit", otb.INET_SERVICE_IP]
            # The relay NATs tunnel traffic out of eth1, as deployed; the
            # inet namespace counts and drops what arrives.
            tb.run(tb.relay, ["nft", "-f", "-"], input=NAT_RULES)
            tb.run(tb.inet, ["nft", "-f", "-"], input=SINK_RULES % EXIT_PORT)
        key_args = ["--key", os.path.join(keys, "server.key"),
                    "--allow", os.path.join(keys, "allow")]
        if dut == "oxidize":
            prefix = "oxbrl%s" % tb.tag.replace("-", "")
            argv = [server or self.server, "--lcores", "0@1,1@0", "--no-pci", "--file-prefix",
                    prefix, "--huge-unlink"] + EAL_QUIET + \
                ["--", "--iface", "eth0", "--port", str(PORT), "--max-sessions", "4096"] + \
                key_args + (["--tap", "oxtun0"] if exit else []) + self.server_args() + \
                list(server_extra)
            p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
            if not self.wait_line(p, "up on AF_XDP"):
                return self.skip(name, "server did not start: " + "".join(p.lines)[-300:])
            rec = None
            if self.profiling:
                rec = threading.Thread(target=self.record, daemon=True,
                                       args=(prefix, (seconds or self.seconds) / 2))
                rec.start()
            gen = self.load(tb, size, rate=rate, seconds=seconds,
                            relay=(keys, clients, extra))
            if rec is not None:
                rec.join(timeout=60)
            st = telemetry(prefix, "/oxidize/stats")["total"]
            if not gen["received"] and not exit:
                # For whoever reads the log of a failed run.
                print("  no packets came back; server counters %s; ports %s" % (
                    {k: v for k, v in st.items() if v},
                    telemetry(prefix, "/oxidize/ports")), flush=True)
            self.finish(p, 15)
            relayed = st["to_tap"] if exit else st["client_to_client"]
            dut_pkts, cycles = st["decrypted"], st["busy_cycles_per_pkt"]
            busy_s = st["busy_cycles"] / gen["tsc_hz"]
            drops = {k: v for k, v in st.items() if k.startswith("drop_") and v}
            queues = 2
        elif dut == "wggo":
            p, ifname = self.wggo_hub(tb, keys)
            if p.poll() is not None:
                return self.skip(name, "wireguard-go did not start")
            t0, si0 = proc_cpu_s(p.pid), softirq_s(0)
            gen = self.load(tb, size, rate=rate, seconds=seconds,
                            relay=(keys, clients, extra))
            # The hub's work: its process (reading and writing the UDP
            # socket and the TUN, the cryptography, the kernel's forwarding
            # in its system calls) and the softirq work on its cpu; its UDP
            # receive path ran on the generator's cpu, as kudp-relay's.
            busy_s = proc_cpu_s(p.pid) - t0 + softirq_s(0) - si0
            st = json.loads(tb.run(tb.relay, ["ip", "-j", "-s", "link", "show", ifname]).stdout)
            st = st[0]["stats64"]
            self.finish(p, 15)
            # rx of the TUN: inner packets wireguard-go opened and wrote
            # to the kernel; tx: what the kernel routed back into it.
            dut_pkts = st["rx"]["packets"]
            relayed = dut_pkts if exit else st["tx"]["packets"]
            cycles = busy_s * cpu_mhz() * 1e6 / dut_pkts if dut_pkts else 0
            drops = {k: v for k, v in (("tun_rx_dropped", st["rx"]["dropped"]),
                                       ("tun_tx_dropped", st["tx"]["dropped"])) if v}
            queues = 1
        else:
            p = tb.popen(tb.relay, ["taskset", "-c", "0", self.kudp, "--port", str(PORT),
                                    "--duration", str((seconds or self.seconds) + 120)] +
                         key_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if not self.wait_line(p, "ready"):
                return self.skip(name, "kudp-relay did not start: " + "".join(p.lines)[-300:])
            gen = self.load(tb, size, rate=rate, seconds=seconds,
                            relay=(keys, clients, extra))
            out = self.finish(p, 15)
            k = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
            if not gen["received"]:
                print("  no packets came back; kudp-relay: %s" % k, flush=True)
            relayed, dut_pkts = k["client_to_client"], k["decrypted"]
            cycles = k["cpu_s"] * cpu_mhz() * 1e6 / k["rx"] if k["rx"] else 0
            busy_s = k["cpu_s"]
            drops = k.get("drops", {})
            queues = 1
        secs = max(gen["seconds"], 1e-9)
        extra_fields = {"clients": clients, "relayed": relayed, "verified": gen["verified"],
                        "bad_auth": gen["bad_auth"], "bad_inner": gen["bad_inner"],
                        "prepared": gen["prepared"], "exhausted": gen["exhausted"],
                        "dut_drops": drops,
                        # Inner bits relayed per second of the relay's own busy
                        # time: what one lcore carries when it does nothing else.
                        "gbps_per_lcore": relayed * size * 8 / busy_s / 1e9 if busy_s else 0}
        if exit:
            c = json.loads(tb.run(tb.inet, ["nft", "-j", "list", "counter", "inet", "oxbench",
                                            "delivered"]).stdout)
            delivered = [x["counter"]["packets"] for x in c["nftables"] if "counter" in x][0]
            extra_fields["delivered"] = delivered
            gen = dict(gen, rx_pps=delivered / secs,
                       loss=1 - delivered / gen["sent"] if gen["sent"] else 0)
        kind = "%s%s-%s%s" % (dut, "-wg" if wg and dut == "oxidize" else "",
                              "exit" if exit else "c2c", "-" + tag if tag else "")
        res = self.add(name, kind, size, queues, gen,
                       dut_pkts=dut_pkts, cycles=cycles, rate=rate, inner=True,
                       extra=extra_fields)
        print("  %34s relayed %d, %.2f Gbit/s per busy lcore, verified %d, bad auth %d, "
              "bad inner %d%s" % ("", relayed, extra_fields["gbps_per_lcore"],
                                  gen["verified"], gen["bad_auth"], gen["bad_inner"],
                                  ", delivered %d" % extra_fields["delivered"] if exit else ""),
              flush=True)
        return res

    # -- bookkeeping ---------------------------------------------------------------

    @staticmethod
    def drain(p, text=None):
        """Read p's output in the background into p.lines, so that it never
        blocks on a full pipe; the event returned is set at the first line
        containing text, or when the output ends."""
        found = threading.Event()
        p.lines = []

        def reader():
            for line in p.stdout:
                p.lines.append(line)
                if text is not None and text in line:
                    found.set()
            found.set()
        p.reader = threading.Thread(target=reader, daemon=True)
        p.reader.start()
        return found

    @staticmethod
    def wait_line(p, text, timeout=30):
        """Wait for a line containing text; False if the process ends or
        timeout passes first. The rest of its output is drained."""
        found = Devices.drain(p, text)
        found.wait(timeout)
        return found.is_set() and p.poll() is None

    @staticmethod
    def finish(p, sig, timeout=30):
        """Signal p, wait for it, return all its output."""
        p.send_signal(sig)
        p.wait(timeout=timeout)
        if hasattr(p, "reader"):
            p.reader.join(5)
            return "".join(p.lines)
        return p.stdout.read() if p.stdout else ""

    def add(self, name, kind, size, queues, gen, dut_pkts, cycles, rate=0,
            inner=False, extra=None):
        """inner: size is the inner packet's and Gbps counts inner bytes (relay
        cases); otherwise the UDP payload's, and Gbps counts frames."""
        rtt = [None if gen["rtt_p50_us"] < 0 and inner else gen[k]
               for k in ("rtt_p50_us", "rtt_p99_us", "rtt_p999_us")]
        r = {"case": name, "kind": kind, "size": size, "queues": queues,
             "offered_pps": gen["tx_pps"], "pps": gen["rx_pps"], "loss": gen["loss"],
             "dut_pps": dut_pkts / max(gen["seconds"], 1e-9), "cycles": cycles,
             "gbps": gen["rx_pps"] * (size if inner else size + 42) * 8 / 1e9,
             "rtt_p50": rtt[0], "rtt_p99": rtt[1], "rtt_p999": rtt[2], "rate": rate,
             "rx_softirq_cycles": gen.get("rx_softirq_cycles")}
        r.update(extra or {})
        self.results.append(r)
        print("  %-34s %5dB q%d: offered %8.0f pps, answered %8.0f pps, DUT %8.0f pps, "
              "%7.0f cycles/pkt (+%s receive), RTT p50 %s us" % (
                  name, size, queues, r["offered_pps"], r["pps"], r["dut_pps"], cycles,
                  fmt(r["rx_softirq_cycles"]), r["rtt_p50"]), flush=True)
        return r

    def skip(self, name, why):
        print("  %-34s skipped: %s" % (name, why), flush=True)
        self.results.append({"case": name, "skipped": why})
        return None

    def find(self, kind, size=64, queues=None, rate=0):
        for r in self.results:
            if r.get("kind") == kind and r["size"] == size and r["rate"] == rate and \
                    (queues is None or r["queues"] == queues):
                return r
        return None
