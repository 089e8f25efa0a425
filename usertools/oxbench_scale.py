# SPDX-License-Identifier: BSD-3-Clause
"""oxidize-bench's scale cases and the page's Scale section.

A failover storm: oxidize-perf storm plays N listed clients (initiations made
before the run) arriving within a second, answering cookies as clients do,
while 16 established clients send DATA from another namespace; their loss
and RTT are measured before the storm and across it. Handshake engines: the
same storm with no established clients, on the control thread alone and on
the control thread and the worker, for the handshakes a second each
sustains and what one costs."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import oxidize_testbed as otb
from oxbench_common import EAL_QUIET, PORT, fmt
from oxidize_telemetry import command as telemetry

STORM_CLIENTS = 100000      # the full run's storm
STORM_QUICK = 2000          # the quick run's
STORM_ENGINES = 30000       # the storm that measures engines
STORM_SOURCES = 1024        # source addresses the storm comes from
STORM_HS_QUEUE = 65536      # --hs-queue for it: a wave of 100,000 queues
EST_CLIENTS, EST_PPS = 16, 2000  # the established clients and their DATA rate
EST_BEFORE_S = 5            # their run before the storm
STORM_MAX_S = 120           # the storm generator gives up after this
STORM_PREP_S = 900          # its initiations made before the run, within this
EST_DURING_MAX_S = 100      # the established clients across a storm (stopped at its end)
EST_LEAD_S = 1              # they send this long before it starts
# The generators' cpus. The relay's control thread (and engine 0) has cpu 1,
# its worker (and engine 1) cpu 0. The storm's generator, and the kernel's
# path for its packets, take cpu 1; the established clients (SCHED_FIFO,
# asleep between sends) cpu 0, where their packets' path does not queue
# behind the storm's.
STORM_CPU, EST_CPU = 1, 0
LIST_SIZES = (100000, 1000000)  # the allow-lists started and reloaded
LIST_QUICK = 20000
LIST_FIXED, LIST_PSK = 10, 7    # every 10th line a fixed address, every 7th a preshared key
LIST_RELOADS = 3
# Before each reload, a window this long with no reload and cpu 1 idle, then
# one with cpu 1 spinning: what the reloads' pauses are held against.
CTRL_WINDOW_S = 2.5
SESSION_COUNTS = (16, 1000, 10000, 100000)  # active sessions, the data plane's steps
SESSION_QUICK = (16, 1000)
SESSION_SIZES = (64, 1400)
SESSION_PACKETS = 500000    # frames a step sends (a 1400-byte one: within 1 GiB)
SESSION_QUICK_PACKETS = 50000
SESSION_TARGET = 1.3        # at the most sessions, cycles/packet vs 16
MEMORY_COUNTS = (1024, 100000, 1048576)  # --max-sessions sized; the last is the default
MEMORY_QUICK = (1024, 100000)
HS_FLOOR_ROUNDS = 15        # hs-bench's rounds for the floor
HS_TARGET = 1.25            # a handshake's cycles on the relay vs its X25519 floor
# The machine's speed drifts from one minute to the next (seen: the floor
# 271,000-377,000 ticks, a run's ratio 1.16x-1.31x): the engines' storms and
# the full storm run this many times, the median run shown with every run's
# figures beside it.
HS_ROUNDS = 3
STORM_ROUNDS = 3


class ScaleCases:
    """Mixed into the benchmark's cases (oxbench_cases.Bench)."""

    def perf_argv(self, tb, tag, cpu, extra):
        return [self.perf, "--lcores", "0@%d" % cpu, "--no-pci", "--file-prefix",
                "oxbsc%s%s" % (tag, tb.tag.replace("-", "")), "--huge-unlink"] + EAL_QUIET + \
            ["--", "--iface", "eth0", "--dst", tb.relay_ip, "--dst-mac", self.relay_mac(tb),
             "--port", str(PORT), "--json"] + extra

    def relay_argv(self, prefix, max_sessions, keys, allow, extra=()):
        """oxidize-server as every scale case runs it: control thread on cpu 1,
        the worker on cpu 0, DIR/server.key, the allow-list given."""
        return [self.server, "--lcores", "0@1,1@0", "--no-pci", "--file-prefix", prefix,
                "--huge-unlink"] + EAL_QUIET + \
            ["--", "--iface", "eth0", "--port", str(PORT), "--max-sessions", str(max_sessions),
             "--key", os.path.join(keys, "server.key"), "--allow", allow] + list(extra) + \
            self.server_args()

    @staticmethod
    def relay_mac(tb):
        return json.loads(tb.run(tb.relay, ["ip", "-j", "link", "show", "eth0"]).stdout)[0][
            "address"]

    @staticmethod
    def last_json(out):
        """The last JSON line of a program's output, or None."""
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    def storm_keys(self, clients):
        d = tempfile.mkdtemp(prefix="oxbstorm-")
        subprocess.run([self.perf, "keys", d, str(EST_CLIENTS)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([self.perf, "storm-keys", d, str(clients)], check=True,
                       stdout=subprocess.DEVNULL)
        with open(os.path.join(d, "relay.allow"), "w") as f:
            for name in ("allow", "storm.allow"):
                with open(os.path.join(d, name)) as src:
                    f.write(src.read())
        return d

    def established_argv(self, tb, keys, seconds, tag):
        """The established clients: DATA client to client at EST_PPS, every
        answer timed; under SCHED_FIFO and asleep between sends (--fifo), so
        that on the cpu they share with the relay's worker their RTT is the
        relay's, and the cpu the relay's."""
        return self.perf_argv(tb, tag, EST_CPU, [
            "--relay", keys, "--clients", str(EST_CLIENTS), "--rate", str(EST_PPS),
            "--duration", str(seconds), "--verify-every", "1", "--fifo"])

    def established(self, tb, keys, seconds, tag):
        r = tb.run(tb.clients[1], self.established_argv(tb, keys, seconds, tag),
                   bpffs=True, check=False, timeout=seconds + 180)
        return self.last_json(r.stdout)

    def case_storm(self, clients, hs_workers=None, with_established=True, name=None, keep=True,
                   gen_cpu=STORM_CPU):
        """One storm of clients on a fresh relay, its generator on gen_cpu:
        the result, also in self.scale if keep."""
        name = name or "failover storm, %d listed clients" % clients
        if not self.wanted(name):
            return None
        print("%-60s" % name, end=" ", flush=True)
        keys = self.storm_keys(clients)
        res = {"case": name, "clients": clients, "sources": STORM_SOURCES}
        try:
            with otb.Testbed(clients=2, queues=2) as tb:
                prefix = "oxbst%s" % tb.tag.replace("-", "")
                argv = self.relay_argv(prefix, clients + 4 * EST_CLIENTS, keys,
                                       os.path.join(keys, "relay.allow"),
                                       ["--hs-queue", str(STORM_HS_QUEUE)] +
                                       ([] if hs_workers is None else
                                        ["--hs-workers", str(hs_workers)]))
                p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
                if not self.wait_line(p, "up on AF_XDP", timeout=120):
                    print("skipped")
                    return self.skip(name, "server did not start: " + "".join(p.lines)[-300:])
                if with_established:
                    g0, t0 = loop_gaps(prefix), time.time()
                    res["before"] = self.established(tb, keys, EST_BEFORE_S, "b")
                    res["gaps_before"] = gaps_delta(loop_gaps(prefix), g0, time.time() - t0)
                # The storm's initiations take minutes to make: the
                # established clients start once they are, and their
                # figures span the storm alone.
                sp = tb.popen(tb.clients[0], self.perf_argv(tb, "s", gen_cpu, [
                    "--storm", keys, "--fifo", "--start-wait", "--clients", str(clients),
                    "--sources", str(STORM_SOURCES), "--duration", str(STORM_MAX_S)]),
                    bpffs=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True)
                if not self.wait_line(sp, '"mode": "ready"', timeout=STORM_PREP_S):
                    print("skipped")
                    return self.skip(name, "oxidize-perf storm not ready: " +
                                     "".join(sp.lines)[-300:])
                ep = None
                if with_established:
                    hs0 = telemetry(prefix, "/oxidize/relay").get("handshakes", 0)
                    ep = tb.popen(tb.clients[1], self.established_argv(
                        tb, keys, EST_DURING_MAX_S, "d"), bpffs=True, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
                    self.drain(ep)
                    deadline = time.time() + 60
                    while time.time() < deadline and ep.poll() is None and telemetry(
                            prefix, "/oxidize/relay").get("handshakes", 0) < hs0 + EST_CLIENTS:
                        time.sleep(0.2)
                    time.sleep(EST_LEAD_S)
                g0, t0 = loop_gaps(prefix), time.time()
                sp.stdin.write("go\n")
                sp.stdin.flush()
                try:
                    sp.wait(timeout=STORM_MAX_S + 60)
                except subprocess.TimeoutExpired:
                    sp.kill()
                res["gaps_during"] = gaps_delta(loop_gaps(prefix), g0, time.time() - t0)
                sp.reader.join(10)
                storm = self.last_json("".join(sp.lines))
                rel = telemetry(prefix, "/oxidize/relay")
                eng = telemetry(prefix, "/oxidize/engines")
                if ep is not None:
                    res["during"] = self.last_json(
                        self.finish(ep, signal.SIGINT, timeout=30)) or {}
                self.finish(p, 15, timeout=60)
        finally:
            shutil.rmtree(keys, ignore_errors=True)
        if storm is None:
            print("skipped")
            return self.skip(name, "oxidize-perf storm failed: " + "".join(sp.lines)[-300:])
        res.update(storm=storm, engines=eng,
                   relay={k: v for k, v in rel.items() if v and (
                       k.startswith("hs_") or k in ("handshakes", "cookies_sent", "sessions"))})
        res["engines_n"] = len(eng["accepted"])
        res["hs_per_s"] = peak_rate(storm)
        if keep:
            self.scale.append(res)
        print("all %d in %.1f s, %.0f handshakes/s at the peak, %d engine(s)" % (
            storm["done"], storm["all_s"], res["hs_per_s"], res["engines_n"]), flush=True)
        return res

    def case_allowlist(self, n):
        """A relay started with n listed keys, then reloaded (SIGHUP) while 16
        established clients send DATA: start and reload times, memory, the
        clients' loss and RTT across the reloads against before them; then a
        reload of a list with a bad line, which must change nothing."""
        name = "allow-list of %d keys: start and reload" % n
        if not self.wanted(name):
            return None
        print("%-60s" % name, end=" ", flush=True)
        keys = tempfile.mkdtemp(prefix="oxblist-")
        subprocess.run([self.perf, "keys", keys, str(EST_CLIENTS)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([self.perf, "storm-keys", keys, str(n), "--fixed", str(LIST_FIXED),
                        "--psk", str(LIST_PSK)], check=True, stdout=subprocess.DEVNULL)
        allow = os.path.join(keys, "relay.allow")
        # It holds preshared keys: the relay takes it only if nobody else reads it.
        with open(os.open(allow, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            for part in ("allow", "storm.allow"):
                with open(os.path.join(keys, part)) as src:
                    f.write(src.read())
        res = {"case": name, "keys": n + EST_CLIENTS}
        try:
            with otb.Testbed(clients=2, queues=2) as tb:
                prefix = "oxbal%s" % tb.tag.replace("-", "")
                huge0 = hugepages_free()
                argv = self.relay_argv(prefix, n + 4 * EST_CLIENTS, keys, allow)
                t0 = time.time()
                p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
                if not self.wait_line(p, "up on AF_XDP", timeout=300):
                    print("skipped")
                    return self.skip(name, "server did not start: " + "".join(p.lines)[-300:])
                res["start_s"] = time.time() - t0
                res["hugepages_mb"] = (huge0 - hugepages_free()) * 2
                res["rss_mb"] = rss_mb(server_pid(tb, prefix, p))
                res["before"] = self.established(tb, keys, EST_BEFORE_S, "b")
                during = {}
                est_s = 8 + (2 * CTRL_WINDOW_S + 6) * LIST_RELOADS

                def run_during():
                    during.update(self.established(tb, keys, est_s, "d") or {})
                t = threading.Thread(target=run_during)
                t.start()
                time.sleep(1)
                # The data plane's pauses: the worker's loop turns that came
                # round over 100 us / 1 ms after the one before, in each
                # reload and, before it, in two windows with none: one with
                # the control thread's cpu idle, one with it kept busy by a
                # spinning process (a reload keeps it busy, and the machine
                # may take both cpus' time differently then).
                res["reload_ms"], res["gaps_reload"] = [], []
                res["gaps_idle"], res["gaps_spin"] = [], []
                for k in range(LIST_RELOADS):
                    g0, t0 = loop_gaps(prefix), time.time()
                    time.sleep(CTRL_WINDOW_S)
                    res["gaps_idle"].append(gaps_delta(loop_gaps(prefix), g0, time.time() - t0))
                    g0, t0 = loop_gaps(prefix), time.time()
                    subprocess.run(["taskset", "-c", str(STORM_CPU), "timeout", str(CTRL_WINDOW_S),
                                    "sh", "-c", "while :; do :; done"], check=False)
                    res["gaps_spin"].append(gaps_delta(loop_gaps(prefix), g0, time.time() - t0))
                    g0, t0 = loop_gaps(prefix), time.time()
                    tb.run(tb.relay, ["kill", "-HUP", str(server_pid(tb, prefix, p))])
                    deadline = time.time() + 60
                    while time.time() < deadline:
                        rel = telemetry(prefix, "/oxidize/relay")
                        if rel.get("allowlist_reloads", 0) >= k + 1:
                            break
                        time.sleep(0.2)
                    res["gaps_reload"].append(gaps_delta(loop_gaps(prefix), g0,
                                                         time.time() - t0))
                    res["reload_ms"].append(rel.get("allowlist_reload_ms", -1))
                    res.setdefault("reload_cpu_ms", []).append(
                        rel.get("allowlist_reload_cpu_ms", -1))
                    # The old list is freed a grace period later: not in
                    # the next window with no reload.
                    time.sleep(1.5)
                t.join()
                res["during"] = during
                # A bad line: refused, named, nothing changed.
                with open(allow) as f:
                    bad_no = sum(1 for _ in f) + 1
                with open(allow, "a") as f:
                    f.write("not-a-key bad\n")
                tb.run(tb.relay, ["kill", "-HUP", str(server_pid(tb, prefix, p))])
                deadline = time.time() + 60
                while time.time() < deadline:
                    rel = telemetry(prefix, "/oxidize/relay")
                    if rel.get("allowlist_reload_errors", 0) >= 1:
                        break
                    time.sleep(0.2)
                res["bad_line_refused"] = rel.get("allowlist_reload_errors", 0) == 1 and \
                    rel.get("allowlist_keys") == n + EST_CLIENTS
                res["sessions_after"] = rel.get("sessions", 0)
                out = self.finish(p, 15, timeout=60)
                res["bad_line_named"] = "line %d" % bad_no in out
        finally:
            shutil.rmtree(keys, ignore_errors=True)
        self.scale.append(res)
        print("started in %.1f s, reloads %s ms, %d MB of hugepages" % (
            res["start_s"], res["reload_ms"], res["hugepages_mb"]), flush=True)
        return res

    def case_sessions(self, counts, packets=SESSION_PACKETS):
        """The data plane as sessions grow: a storm gives max(counts) clients
        sessions, then DATA steps in which the first N of them send client to
        client in random order, each count at each size, in the order A B C D
        D C B A per size; the relay's busy cycles and opened packets read on
        both sides of each step give its cycles/packet."""
        n_max = max(counts)
        name = "data plane with up to %d sessions" % n_max
        if not self.wanted(name):
            return None
        print("%-60s" % name, end=" ", flush=True)
        keys = self.storm_keys(n_max)
        order = [(n, size) for size in SESSION_SIZES
                 for n in list(counts) + list(reversed(counts))]
        res = {"case": name, "clients": n_max, "packets": packets, "steps": []}
        out = []
        try:
            with otb.Testbed(clients=2, queues=2) as tb:
                prefix = "oxbse%s" % tb.tag.replace("-", "")
                huge0 = hugepages_free()
                argv = self.relay_argv(prefix, n_max + 4 * EST_CLIENTS, keys,
                                       os.path.join(keys, "relay.allow"),
                                       ["--hs-queue", str(STORM_HS_QUEUE)])
                p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
                if not self.wait_line(p, "up on AF_XDP", timeout=120):
                    print("skipped")
                    return self.skip(name, "server did not start: " + "".join(p.lines)[-300:])
                res["hugepages_mb"] = (huge0 - hugepages_free()) * 2
                g = tb.popen(tb.clients[0], self.perf_argv(tb, "se", STORM_CPU, [
                    "--storm", keys, "--fifo", "--clients", str(n_max),
                    "--sources", str(STORM_SOURCES),
                    "--duration", str(STORM_MAX_S), "--verify-every", "64",
                    "--steps", ",".join("%d:%d" % x for x in order),
                    "--step-packets", str(packets), "--step-wait"]),
                    bpffs=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
                before = None
                for line in g.stdout:
                    out.append(line)
                    if not line.startswith("{"):
                        continue
                    j = json.loads(line)
                    if j["mode"] == "storm":
                        res["storm"] = j
                    elif j["mode"] == "step-ready":
                        before = telemetry(prefix, "/oxidize/stats")["total"]
                        g.stdin.write("\n")
                        g.stdin.flush()
                    elif j["mode"] == "step" and before is not None:
                        after = telemetry(prefix, "/oxidize/stats")["total"]
                        d = {k: after[k] - before[k] for k in after
                             if isinstance(after[k], (int, float)) and k in before}
                        j["dut_decrypted"] = d.get("decrypted", 0)
                        j["dut_c2c"] = d.get("client_to_client", 0)
                        j["cycles"] = d["busy_cycles"] / d["decrypted"] if d.get(
                            "decrypted") else 0
                        j["dut_drops"] = {k: v for k, v in d.items()
                                          if k.startswith("drop_") and v}
                        res["steps"].append(j)
                        before = None
                g.wait(timeout=60)
                err = g.stderr.read()
                rel = telemetry(prefix, "/oxidize/relay")
                res["sessions_at_end"] = rel.get("sessions", 0)
                self.finish(p, 15, timeout=60)
        finally:
            shutil.rmtree(keys, ignore_errors=True)
        if len(res["steps"]) != len(order):
            print("skipped")
            return self.skip(name, "oxidize-perf storm with steps failed: %s %s" % (
                "".join(out)[-300:], err[-300:]))
        res["rows"] = session_rows(res["steps"])
        self.scale.append(res)
        print("; ".join("%d sessions %dB %.0f cycles/pkt" % (
            r["sessions"], r["size"], r["cycles"]) for r in res["rows"]), flush=True)
        return res

    def case_session_memory(self, counts=MEMORY_COUNTS):
        """Hugepages and RSS of a relay sized for each count (--max-sessions),
        with a 16-key list: what a session's room costs, held from the start."""
        name = "memory against --max-sessions"
        if not self.wanted(name):
            return None
        print("%-60s" % name, end=" ", flush=True)
        keys = tempfile.mkdtemp(prefix="oxbmem-")
        subprocess.run([self.perf, "keys", keys, str(EST_CLIENTS)], check=True,
                       stdout=subprocess.DEVNULL)
        res = {"case": name, "points": []}
        try:
            with otb.Testbed(clients=1, queues=2) as tb:
                for n in counts:
                    prefix = "oxbmm%s" % tb.tag.replace("-", "")
                    huge0 = hugepages_free()
                    argv = self.relay_argv(prefix, n, keys, os.path.join(keys, "allow"))
                    p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
                    if not self.wait_line(p, "up on AF_XDP", timeout=120):
                        print("skipped")
                        return self.skip(name, "server did not start with --max-sessions %d: "
                                         % n + "".join(p.lines)[-300:])
                    res["points"].append({
                        "max_sessions": n, "hugepages_mb": (huge0 - hugepages_free()) * 2,
                        "rss_mb": rss_mb(server_pid(tb, prefix, p))})
                    self.finish(p, 15, timeout=60)
        finally:
            shutil.rmtree(keys, ignore_errors=True)
        lo, hi = res["points"][0], res["points"][-1]
        res["bytes_per_session"] = ((hi["hugepages_mb"] + hi["rss_mb"]) -
                                    (lo["hugepages_mb"] + lo["rss_mb"])) * 2 ** 20 / (
            hi["max_sessions"] - lo["max_sessions"])
        self.scale.append(res)
        print(", ".join("%d: %d MB hugepages, %d MB RSS" % (
            x["max_sessions"], x["hugepages_mb"], x["rss_mb"]) for x in res["points"]) +
            "; %.0f bytes a session" % res["bytes_per_session"], flush=True)
        return res

    def hs_floor(self):
        """hs-bench in this run, on the worker's cpu: a responder's handshake
        and its X25519 floor, TSC ticks each ({cell: ticks})."""
        exe = os.path.join(self.build, "test", "bench", "hs-bench")
        r = subprocess.run(["taskset", "-c", "0", exe, "--json", "--rounds", str(HS_FLOOR_ROUNDS)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           check=False, timeout=600)
        j = self.last_json(r.stdout)
        return {c["cell"]: c["ticks"] for c in j["cells"]} if j else {}

    def case_hs_engines(self, clients):
        """hs-bench's floor, then the storm alone on one engine and on two,
        HS_ROUNDS times: for each, the run whose handshake cost against its
        own round's floor is the median, with every run's ratio."""
        runs = {0: [], 1: []}
        for _ in range(HS_ROUNDS):
            cells = self.hs_floor()
            for w in runs:
                r = self.case_storm(clients, hs_workers=w, with_established=False, keep=False,
                                    name="handshake engines: %d, storm of %d" % (1 + w, clients))
                if r is not None and hs_ratio(r):
                    runs[w].append(dict(r, hs_cells=cells))
        for w, rs in runs.items():
            if rs:
                self.scale.append(median_run(rs, hs_ratio))

    def case_storm_rounds(self, clients):
        """The full storm with established clients, STORM_ROUNDS times: the
        run whose established clients' p99 ratio is the median, with every
        run's figures."""
        rs = []
        for _ in range(STORM_ROUNDS):
            r = self.case_storm(clients, keep=False)
            if r is not None and p99_ratio(r):
                rs.append(r)
        if rs:
            self.scale.append(median_run(rs, p99_ratio))


GAP_OVER = ("100us", "1ms", "10ms")
GAP_NAMES = tuple("loop_%s_over_%s" % (what, t) for what in ("gaps", "preempted")
                  for t in GAP_OVER)


def loop_gaps(prefix):
    """The relay's workers' loop gaps so far, summed ({name: count})."""
    tot = telemetry(prefix, "/oxidize/stats").get("total", {})
    return {k: tot.get(k, 0) for k in GAP_NAMES}


def gaps_delta(now, then, seconds):
    d = {k: now[k] - then[k] for k in GAP_NAMES}
    d["seconds"] = round(seconds, 2)
    return d


def gaps_sum(gs):
    """Windows' gap counts and seconds, added up."""
    tot = {k: sum(g[k] for g in gs) for k in GAP_NAMES}
    tot["seconds"] = round(sum(g["seconds"] for g in gs), 2)
    return tot


def gaps_cell(g):
    """Its own pauses, then the preemptions, each over 100 us / 1 ms / 10 ms."""
    return "; ".join(" / ".join(str(g["loop_%s_over_%s" % (what, t)]) for t in GAP_OVER)
                     for what in ("gaps", "preempted"))


def hugepages_free():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def server_pid(tb, prefix, p):
    """The server's pid (the popen's may be a wrapper's)."""
    r = tb.run(tb.relay, ["pgrep", "-f", "--", "file-prefix %s " % prefix], check=False)
    pids = [int(x) for x in r.stdout.split()]
    return max(pids) if pids else p.pid


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def session_rows(steps):
    """One row per (sessions, size): the median of its steps' cycles/packet."""
    rows = []
    for key in sorted({(s["sessions"], s["size"]) for s in steps},
                      key=lambda k: (k[1], k[0])):
        st = [s for s in steps if (s["sessions"], s["size"]) == key]
        cyc = sorted(s["cycles"] for s in st)
        mid = len(cyc) // 2
        med = cyc[mid] if len(cyc) % 2 else (cyc[mid - 1] + cyc[mid]) / 2
        rows.append({"sessions": key[0], "size": key[1], "cycles": med,
                     "cycles_range": (cyc[0], cyc[-1]),
                     "sent": sum(s["sent"] for s in st),
                     "received": sum(s["received"] for s in st),
                     "rx_pps": sum(s["rx_pps"] for s in st) / len(st),
                     "verified": sum(s["verified"] for s in st),
                     "bad": sum(s["bad_auth"] + s["bad_inner"] for s in st),
                     "drops": {k: sum(s["dut_drops"].get(k, 0) for s in st)
                               for s in st for k in s["dut_drops"]}})
    return rows


def peak_rate(storm, window_s=2.0):
    """Handshakes a second over the busiest window of the storm's timeline."""
    bins = storm.get("done_per_bin") or []
    w = max(1, int(window_s / storm.get("bin_s", 0.1)))
    best = 0
    for i in range(0, max(1, len(bins) - w + 1)):
        best = max(best, sum(bins[i:i + w]))
    return best / (w * storm.get("bin_s", 0.1))


def hs_floor_of(r):
    cells = r.get("hs_cells") or {}
    return next((v for k, v in cells.items() if k.startswith("floor")), 0)


def hs_ratio(r):
    """A run's cpu cycles per completed handshake against the floor its
    engines measured in the same turns (0: not measured)."""
    rel = r.get("relay", {})
    floor, c = rel.get("hs_floor_cpu_cycles", 0), rel.get("hs_cpu_cycles_per_accepted", 0)
    return c / floor if floor and c else 0


def hs_bench_ratio(r):
    """The same against hs-bench's floor, measured before the round's storms."""
    floor, c = hs_floor_of(r), r.get("relay", {}).get("hs_cpu_cycles_per_accepted", 0)
    return c / floor if floor and c else 0


def p99_ratio(r):
    """A storm's established clients' RTT p99 across it against before (0:
    not measured)."""
    b4, du = r.get("before") or {}, r.get("during") or {}
    return du.get("rtt_p99_us", 0) / b4["rtt_p99_us"] if b4.get("rtt_p99_us") else 0


def median_run(rs, key):
    """The run of rs at the median of key, with every run's figures
    ("rounds": key, time, rate), in the order they ran."""
    mid = sorted(rs, key=key)[len(rs) // 2]
    return dict(mid, rounds=[{"ratio": round(key(r), 3), "all_s": r["storm"]["all_s"],
                              "hs_per_s": round(r["hs_per_s"]),
                              "bench_ratio": round(hs_bench_ratio(r), 3)} for r in rs])


def floor_rows(eng):
    """A handshake's cost on the relay (engines and the control thread's
    finishing, in their threads' cpu time) against hs-bench's X25519 floor
    and its bare responder, measured in the same run."""
    eng = [r for r in eng if hs_ratio(r) and hs_floor_of(r)]
    if not eng:
        return []
    rows = ["The relay's figure is every accepted handshake's cost where it ran, from the "
            "threads' cpu time (so not what the generator took from a shared cpu; less what "
            "reading it adds, `hs_cpu_read_ns`, %s ns a turn): the engine's judging and "
            "answering, the mbuf and rings, and the control thread's finishing (the session, "
            "its index, the connection log's line). Its floor is measured twice: by the "
            "engines themselves, in the same turns (two of a handshake's four turns are one "
            "X25519 alone, the ephemeral's fixed-base one and DH(e, re): three of the latter "
            "and one of the former, `hs_floor_cpu_cycles` in `/oxidize/relay`), and by "
            "hs-bench in a process of its own before the round's storms (with OxTunnel's "
            "responder alone: %s). The machine's speed drifts between the two by up to a "
            "tenth. Each storm ran %d times, a round of hs-bench, one engine and two at a "
            "time; the run at the median against the engines' floor is shown." % (
                " / ".join(fmt(r["relay"].get("hs_cpu_read_ns", 0)) for r in eng),
                "; ".join("%d engine(s)' round: %s and %s ticks, %.2fx" % (
                    r["engines_n"], fmt(hs_floor_of(r)),
                    fmt(r["hs_cells"].get("OxTunnel, static-static DH kept", 0)),
                    r["hs_cells"].get("OxTunnel, static-static DH kept", 0) / hs_floor_of(r))
                    for r in eng), HS_ROUNDS),
            "", "| target | wanted | measured (median run) | every run | met |",
            "|---|---|---|---|---|"]
    for r in eng:
        c, x = r["relay"].get("hs_cpu_cycles_per_accepted", 0), hs_ratio(r)
        rows.append("| cycles per completed handshake, %d engine(s), vs the X25519 floor its "
                    "engines measured (%s) | <= %.2fx | %s, %.2fx | %s | %s |" % (
                        r["engines_n"], fmt(r["relay"]["hs_floor_cpu_cycles"]), HS_TARGET,
                        fmt(c), x, ", ".join("%.2fx" % k["ratio"] for k in r.get("rounds", [])),
                        "yes" if x <= HS_TARGET else "**no**"))
    for r in eng:
        x = hs_bench_ratio(r)
        rows.append("| the same, %d engine(s), vs hs-bench's floor (%s) | <= %.2fx | %.2fx | "
                    "%s | %s |" % (
                        r["engines_n"], fmt(hs_floor_of(r)), HS_TARGET, x,
                        ", ".join("%.2fx" % k["bench_ratio"] for k in r.get("rounds", [])),
                        "yes" if x <= HS_TARGET else "**no**"))
    return rows + [""]


def generators_cpu_s(r):
    """CPU seconds the generators took, across the storm, from the cpus its
    engines ran on: the storm's (on engine 0's cpu) and, with a second engine
    on the worker's cpu, the established clients' share of theirs."""
    s, during = r["storm"], r.get("during") or {}
    gen = s.get("cpu_s", 0)
    if r["engines_n"] > 1 and during.get("seconds"):
        gen += during.get("cpu_s", 0) * min(1.0, s["all_s"] / during["seconds"])
    return gen


def storm_targets(r):
    """The storm's targets: its time against what its engines allow (one
    engine's measured rate, from its cycles per handshake, on each, with the
    cookie round the protocol imposes), first on whole cores, then on what
    the generators sharing them left; and the established clients."""
    s, eng = r["storm"], r["engines"]
    hz = s.get("tsc_hz") or 0
    cyc = [c for c in eng["cycles_per_accepted"] if c]
    rows = ["| target | wanted | measured | met |", "|---|---|---|---|"]
    n = len(eng["accepted"])
    if hz and cyc and s.get("all_s", -1) > 0:
        per_core = hz / min(cyc)
        gen = generators_cpu_s(r)
        for cores, what in ((n, "%d engines' cores" % n),
                            (n - gen / s["all_s"], "the %.2f of them the generators left "
                             "(they took %.1f cpu-seconds of the %.1f s)" % (
                                 n - gen / s["all_s"], gen, s["all_s"]))):
            if cores <= 0:
                continue
            allowed = 5.0 + r["clients"] / (per_core * cores)
            rows.append("| all %d with sessions, vs REKEY_TIMEOUT + %d / (%s a second, one "
                        "engine's rate on a core of its own, x %s) = %.1f s | <= 1.2x | %.2fx "
                        "| %s |" % (r["clients"], r["clients"], fmt(per_core), what, allowed,
                                    s["all_s"] / allowed,
                                    "yes" if s["all_s"] <= 1.2 * allowed else "**no**"))
    before, during = r.get("before") or {}, r.get("during") or {}
    if during:
        rows.append("| established clients' loss across the storm | <= 0.1%% | %.4f%% | %s |"
                    % (100 * during.get("loss", 1), "yes" if during.get("loss", 1) <= 0.001
                       else "**no**"))
    if before and during and before.get("rtt_p99_us"):
        x = during.get("rtt_p99_us", 0) / before["rtt_p99_us"]
        rows.append("| their RTT p99 across it vs before | <= 2x | %.2fx | %s |" % (
            x, "yes" if x <= 2 else "**no**"))
    return rows


def scale_section(b, plots):
    """The page's Scale section (markdown lines); plots from make_plots."""
    rs = [r for r in getattr(b, "scale", []) if "skipped" not in r]
    if not rs:
        return []
    lines = ["## Scale", "",
             "Handshakes on every core and a failover storm (`oxidize-perf storm`, "
             "usertools/oxbench_scale.py). The storm's clients come from %d source "
             "addresses; each client's initiations are made before the run, the first ones "
             "all within a second; under the storm the relay asks for cookies and clients "
             "send their next initiation, with mac2, REKEY_TIMEOUT (5 s) later, as they do. "
             "The relay runs with `--hs-queue %d`. The generator reads its answers under "
             "SCHED_FIFO (`--fifo`), sleeping whenever a turn finds few and sending at most "
             "256 initiations a turn: a storm's clients have cpus of their own, and here it "
             "shares one with the relay's control thread, behind which the answers "
             "overflowed its ring (tens of thousands lost, each a client's wave of 5 s). "
             "Its cpu time is measured (its loop's, user and system) and the time the "
             "storm took is also held against the cores it left the engines. The "
             "established clients start once the storm's initiations are made "
             "(`--start-wait`), the storm once they have sessions, and they stop when it "
             "ends: their figures span the storm alone. They run on the worker's cpu under "
             "SCHED_FIFO, asleep between their sends (`--fifo`), so that their RTT is the "
             "relay's, not a wait for a cpu." % (STORM_SOURCES, STORM_HS_QUEUE), ""]
    eng = [r for r in rs if r["case"].startswith("handshake engines")]
    if eng:
        lines += ["### Handshakes a second against engines", "",
                  "| engines | handshakes/s (busiest 2 s) | vs one engine | cycles per "
                  "handshake, each engine (TSC) | the same in its thread's cpu time | an "
                  "X25519 in its turns, variable / fixed base (cpu) | storm of | all in |",
                  "|---|---|---|---|---|---|---|---|"]
        base = eng[0]["hs_per_s"] or 1
        for r in eng:
            e = r["engines"]
            lines.append("| %d | %s | %.2fx | %s | %s | %s | %d | %.1f s |" % (
                r["engines_n"], fmt(r["hs_per_s"]), r["hs_per_s"] / base,
                " / ".join(fmt(c) for c in e["cycles_per_accepted"]),
                " / ".join(fmt(c) for c in e.get("cpu_cycles_per_accepted", [])),
                "; ".join("%s / %s" % (fmt(v), fmt(b)) for v, b in zip(
                    e.get("x25519_cpu_cycles", []), e.get("x25519_base_cpu_cycles", []))) or "-",
                r["clients"], r["storm"]["all_s"]))
        lines += [""] + floor_rows(eng)
        lines += ["", "Engine 0 is the control thread, engine 1 the worker lcore between its "
                  "bursts, one X25519's worth a turn (an INIT judged, then each of its "
                  "answer's three multiplications), so DATA waits for one multiplication at "
                  "most. On this 2-core testbed the storm's generator runs on the control "
                  "thread's cpu: that engine's cycles include the time the generator took "
                  "from it. One engine's cycles per handshake give the rate one core "
                  "sustains; a relay with one worker per core runs an engine on each, and "
                  "the first free engine takes the next INIT from the one queue, so the rate "
                  "grows with the cores; on 32 cores, 32 times one core's rate "
                  "less what the control thread spends finishing each (a few microseconds: "
                  "the session, its index, the log line), which bounds it at a few hundred "
                  "thousand a second.", ""]
    al = [r for r in rs if r["case"].startswith("allow-list")]
    if al:
        lines += ["### Start and reload with a long allow-list", "",
                  "Every %dth line with a fixed address, every %dth with a preshared key; "
                  "the relay with `--max-sessions` just above the keys. Reloads: SIGHUP, the "
                  "same file, %d times, while 16 established clients send %d "
                  "packets a second client to client; then a line that is not a key." % (
                      LIST_FIXED, LIST_PSK, LIST_RELOADS, EST_PPS), "",
                  "| keys | start | reload | of it, the control thread on a cpu | hugepages | "
                  "RSS | clients' loss, RTT p99 / max, before | across the reloads | bad line "
                  "refused, named, nothing changed |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in al:
            b4, du = r.get("before") or {}, r.get("during") or {}
            lines.append("| %s | %.1f s | %s ms | %s ms | %s MB | %s MB | %.3f%%, %.0f / %s us | "
                         "%.3f%%, %.0f / %s us | %s |" % (
                             fmt(r["keys"]), r["start_s"], " / ".join(
                                 str(x) for x in r["reload_ms"]), " / ".join(
                                 str(x) for x in r.get("reload_cpu_ms", [])) or "-",
                             fmt(r["hugepages_mb"]),
                             fmt(r["rss_mb"]), 100 * b4.get("loss", 0),
                             b4.get("rtt_p99_us", 0), b4.get("rtt_max_us", "-"),
                             100 * du.get("loss", 0), du.get("rtt_p99_us", 0),
                             du.get("rtt_max_us", "-"),
                             "yes" if r.get("bad_line_refused") and r.get("bad_line_named")
                             else "**no**"))
        lines += ["", "A reload parses and sorts the list, builds the address pool and the "
                  "routes on the control thread, and publishes them in one release store; "
                  "the workers never wait for it (the old list is freed a grace period "
                  "later). Handshakes wait while the control thread reloads. The "
                  "established clients' generator runs on the worker's cpu under SCHED_FIFO, "
                  "asleep between its sends, and the control thread has cpu 1 to itself. "
                  "The data plane's pauses are also counted where they happen: the worker's "
                  "loop turns that came round more than 100 us, 1 ms or 10 ms after the one "
                  "before, its own (`loop_gaps_over_*` in `/oxidize/stats`: it ran "
                  "meanwhile, as far as its thread's cpu time tells) and where the kernel ran "
                  "something else on its cpu (`loop_preempted_over_*`: the testbed's Python "
                  "and kernel threads share the cpu). They are counted from each SIGHUP to "
                  "the end of its reload and, before each, in two windows of %.1f s with no "
                  "reload: one with the control thread's cpu idle, one with it kept busy by "
                  "a process that only spins (a reload keeps it busy; a virtual machine's "
                  "host may give a guest whose cpus are all busy less time)." % CTRL_WINDOW_S,
                  "", "| keys | worker loop turns over 100 us / 1 ms / 10 ms apart, its own; "
                  "preempted: no reload, cpu 1 idle | no reload, cpu 1 spinning | in the "
                  "reloads |", "|---|---|---|---|"]
        for r in al:
            if r.get("gaps_reload"):
                lines.append("| %s | %s |" % (fmt(r["keys"]), " | ".join(
                    "%s in %.1f s" % (gaps_cell(g), g["seconds"]) for g in (
                        gaps_sum(r.get("gaps_idle", [])), gaps_sum(r.get("gaps_spin", [])),
                        gaps_sum(r["gaps_reload"])))))
        lines.append("")
        big = [r for r in al if r["keys"] >= 1000000 and r.get("reload_cpu_ms")]
        for r in big:
            cpu = max(r["reload_cpu_ms"])
            lines += ["| target | wanted | measured | met |", "|---|---|---|---|",
                      "| reload of %s keys, the control thread's cpu time (wall time in the "
                      "table) | <= 3 s | %.1f s | %s |" % (
                          fmt(r["keys"]), cpu / 1000, "yes" if cpu <= 3000 else "**no**")]
            if r.get("gaps_reload"):
                rl = gaps_sum(r["gaps_reload"])
                ctl = gaps_sum(r.get("gaps_idle", []) + r.get("gaps_spin", []))
                over = rl["loop_gaps_over_1ms"]
                lines.append("| no data-plane pause over 1 ms across its reloads (the worker's "
                             "own loop turns over 1 ms apart) | 0 | %d in %.1f s | %s |" % (
                                 over, rl["seconds"], "yes" if over == 0 else "**no**"))
                if ctl["seconds"]:
                    a = over / rl["seconds"]
                    c = ctl["loop_gaps_over_1ms"] / ctl["seconds"]
                    lines.append(
                        "| the same, a second, against the windows with no reload (what the "
                        "machine gives a relay doing nothing new) | not above | %.2f against "
                        "%.2f (%d in %.1f s) | %s |" % (
                            a, c, ctl["loop_gaps_over_1ms"], ctl["seconds"],
                            "yes" if a <= c else "**no**"))
            du = r.get("during") or {}
            lines += ["| no established session dropped across them (their loss) | 0 | "
                      "%.4f%% | %s |" % (100 * du.get("loss", 1),
                                         "yes" if du and du.get("lost", 1) == 0 else "**no**"),
                      ""]
    for r in [r for r in rs if r["case"].startswith("data plane")]:
        lines += session_section(r, plots)
    for r in [r for r in rs if r["case"].startswith("memory against")]:
        lines += ["### Memory against --max-sessions", "",
                  "A relay's room for sessions is taken at start (hugepages: the session "
                  "table, receiver indexes, address hashes, per-session counters; RSS: the "
                  "rest), with a 16-key list; the default is %s." % fmt(MEMORY_COUNTS[-1]), "",
                  "| --max-sessions | hugepages | RSS |", "|---|---|---|"]
        lines += ["| %s | %s MB | %s MB |" % (fmt(x["max_sessions"]), fmt(x["hugepages_mb"]),
                                              fmt(x["rss_mb"])) for x in r["points"]]
        lines += ["", "About %s bytes a session (hugepages and RSS, from the first row to the "
                  "last)." % fmt(r["bytes_per_session"]), ""]
    st = [r for r in rs if r["case"].startswith("failover storm")]
    for r in st:
        s = r["storm"]
        lines += ["### %s" % r["case"], "",
                  "| | |", "|---|---|",
                  "| all clients with sessions after | %.1f s |" % s["all_s"],
                  "| handshakes a second, busiest 2 s | %s |" % fmt(r["hs_per_s"]),
                  "| engines | %d |" % r["engines_n"],
                  "| cookies sent (relay) / taken (clients) | %s / %s |" % (
                      fmt(r["relay"].get("cookies_sent", 0)), fmt(s["cookies"])),
                  "| initiations sent, by attempt | %s |" % ", ".join(
                      str(x) for x in s["sent_by_attempt"] if x),
                  "| refused as waiting over 4.6 s (their clients retry at 5) | %s |" % fmt(
                      r["relay"].get("hs_drop_queued_too_long", 0)),
                  "| answers the generator's kernel dropped (rx_missed) | %s%s |" % (
                      fmt(s.get("rx_missed", 0)),
                      "" if s.get("fifo", True) else
                      " (it could not run under SCHED_FIFO here)"),
                  "| outcomes the relay's done queue lost (hs_done_queue_full) | %s |" % fmt(
                      r["relay"].get("hs_done_queue_full", 0)),
                  "| engine turns over 100 us, each engine (a worker's DATA waits for one) | "
                  "%s |" % (" / ".join(
                      str(x) for x in r["engines"].get("turns_over_100us", [])) or "-")]
        for when in ("before", "during"):
            g = r.get("gaps_" + when)
            if g:
                lines.append("| the worker's loop turns over 100 us / 1 ms / 10 ms apart, its "
                             "own; preempted, %s | %s in %.1f s |" % (
                                 "while the established clients ran before it"
                                 if when == "before" else "across the storm", gaps_cell(g),
                                 g["seconds"]))
        for when in ("before", "during"):
            e = r.get(when) or {}
            if e:
                lines.append("| established clients %s: loss, RTT p50 / p99 | %.4f%%, "
                             "%.0f / %.0f us |" % (
                                 "before the storm" if when == "before" else "across it",
                                 100 * e.get("loss", 0), e.get("rtt_p50_us", 0),
                                 e.get("rtt_p99_us", 0)))
        if len(r.get("rounds", [])) > 1:
            lines.append("| every run, in order: all in; established clients' p99 across it "
                         "vs before (this one: the median) | %s |" % ", ".join(
                             "%.1f s; %.2fx" % (k["all_s"], k["ratio"]) for k in r["rounds"]))
        lines += [""] + storm_targets(r) + [""]
        png = dict(plots).get("storm:" + r["case"])
        if png:
            lines += ["![the storm's timeline](%s)" % png, ""]
    return lines


def session_section(r, plots):
    """The data plane against active sessions: table, target, plot."""
    rows = r["rows"]
    sizes = sorted({x["size"] for x in rows})
    counts = sorted({x["sessions"] for x in rows})
    by = {(x["sessions"], x["size"]): x for x in rows}
    head = "".join("| %d B: cycles/packet | vs 16 " % z for z in sizes)
    lines = ["### The data plane against active sessions", "",
             "A storm gives %s clients sessions (from %d source addresses, each with many "
             "source ports); then, with all of them held by the relay, the first N send "
             "DATA client to client: round after round, every one of the N in a fresh random "
             "order, client i to client i + 1's tunnel address, frames sealed before each "
             "step and sent flat out (%s a step). Each count at each size runs twice, in the "
             "order 16 ... %s ... 16; the relay's busy cycles and opened packets are read "
             "on both sides of every step. Cycles/packet: the median of the two (their "
             "range in brackets). The worker looks up a burst's receiver indexes, and a "
             "stage's inner destinations, with one bulk lookup each (rte_hash's, which "
             "overlaps their misses) and asks for each session's lines a few packets before "
             "its turn." % (fmt(r["clients"]), STORM_SOURCES,
                            fmt(r.get("packets", SESSION_PACKETS)), fmt(max(counts))), "",
             "| active sessions " + head + "| received, verified, bad |",
             "|---|" + "---|---|" * len(sizes) + "---|"]
    for n in counts:
        cells = []
        recv = ver = bad = 0
        for z in sizes:
            x, base = by.get((n, z)), by.get((counts[0], z))
            if x is None:
                cells += ["-", "-"]
                continue
            cells += ["%s (%s-%s)" % (fmt(x["cycles"]), fmt(x["cycles_range"][0]),
                                      fmt(x["cycles_range"][1])),
                      "%.2fx" % (x["cycles"] / base["cycles"]) if base["cycles"] else "-"]
            recv, ver, bad = recv + x["received"], ver + x["verified"], bad + x["bad"]
        lines.append("| %s | %s | %s, %s, %d |" % (fmt(n), " | ".join(cells), fmt(recv),
                                                   fmt(ver), bad))
    lines += ["", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for z in sizes:
        x, base = by.get((counts[-1], z)), by.get((counts[0], z))
        if x and base and base["cycles"]:
            q = x["cycles"] / base["cycles"]
            lines.append("| %s sessions vs %d, %d B | <= %.1fx | %.2fx | %s |" % (
                fmt(counts[-1]), counts[0], z, SESSION_TARGET, q,
                "yes" if q <= SESSION_TARGET else "**no**"))
    if r.get("hugepages_mb"):
        lines += ["", "The relay for %s sessions (`--max-sessions %s`) took %s MB of "
                  "hugepages at start." % (fmt(r["clients"]), fmt(r["clients"] + 4 * EST_CLIENTS),
                                           fmt(r["hugepages_mb"]))]
    png = dict(plots).get("sessions:" + r["case"])
    if png:
        lines += ["", "![cycles/packet against active sessions](%s)" % png]
    return lines + [""]


def scale_plots(b, out_dir, plt):
    """The storm's timeline, one PNG per storm: sessions made per 100 ms and in all;
    cycles/packet against active sessions. {"storm:CASE" or "sessions:CASE": png}."""
    out = {}
    storms = [x for x in getattr(b, "scale", []) if "storm" in x and
              x["case"].startswith("failover storm")]
    for i, r in enumerate(storms):
        bins = r["storm"].get("done_per_bin") or []
        if not bins:
            continue
        dt = r["storm"].get("bin_s", 0.1)
        ts = [k * dt for k in range(len(bins))]
        total, cum = 0, []
        for v in bins:
            total += v
            cum.append(total)
        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.bar(ts, [v / dt for v in bins], width=dt, color="#3070b0",
               label="sessions made a second")
        ax.set_xlabel("seconds since the storm began")
        ax.set_ylabel("sessions a second")
        ax2 = ax.twinx()
        ax2.plot(ts, cum, color="#c05020", label="sessions in all")
        ax2.set_ylabel("sessions in all")
        ax.set_title(r["case"])
        fig.tight_layout()
        png = "bench-storm-%d.png" % i
        fig.savefig(os.path.join(out_dir, png), dpi=90)
        plt.close(fig)
        out["storm:" + r["case"]] = png
    for r in [x for x in getattr(b, "scale", []) if x.get("rows")]:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for z in sorted({x["size"] for x in r["rows"]}):
            pts = sorted((x["sessions"], x["cycles"]) for x in r["rows"] if x["size"] == z)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label="%d B" % z)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("active sessions")
        ax.set_ylabel("relay cycles/packet")
        ax.set_title("client to client, against active sessions")
        ax.legend()
        fig.tight_layout()
        png = "bench-sessions.png"
        fig.savefig(os.path.join(out_dir, png), dpi=90)
        plt.close(fig)
        out["sessions:" + r["case"]] = png
    return out
