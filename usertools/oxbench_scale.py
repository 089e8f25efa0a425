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
STORM_CPU, EST_CPU = 1, 1   # generators' cpus: the relay's worker (and engine) has cpu 0
LIST_SIZES = (100000, 1000000)  # the allow-lists started and reloaded
LIST_QUICK = 20000
LIST_FIXED, LIST_PSK = 10, 7    # every 10th line a fixed address, every 7th a preshared key
LIST_RELOADS = 3


class ScaleCases:
    """Mixed into the benchmark's cases (oxbench_cases.Bench)."""

    def perf_argv(self, tb, tag, cpu, extra):
        return [self.perf, "--lcores", "0@%d" % cpu, "--no-pci", "--file-prefix",
                "oxbsc%s%s" % (tag, tb.tag.replace("-", "")), "--huge-unlink"] + EAL_QUIET + \
            ["--", "--iface", "eth0", "--dst", tb.relay_ip, "--dst-mac", self.relay_mac(tb),
             "--port", str(PORT), "--json"] + extra

    @staticmethod
    def relay_mac(tb):
        return json.loads(tb.run(tb.relay, ["ip", "-j", "link", "show", "eth0"]).stdout)[0][
            "address"]

    @staticmethod
    def last_json(r):
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
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

    def established(self, tb, keys, seconds, tag):
        r = tb.run(tb.clients[1], self.perf_argv(tb, tag, EST_CPU, [
            "--relay", keys, "--clients", str(EST_CLIENTS), "--rate", str(EST_PPS),
            "--duration", str(seconds), "--verify-every", "1"]),
            bpffs=True, check=False, timeout=seconds + 180)
        return self.last_json(r)

    def case_storm(self, clients, hs_workers=None, with_established=True, name=None):
        """One storm of clients on a fresh relay: the result, also in self.scale."""
        name = name or "failover storm, %d listed clients" % clients
        if not self.wanted(name):
            return None
        print("%-60s" % name, end=" ", flush=True)
        keys = self.storm_keys(clients)
        res = {"case": name, "clients": clients, "sources": STORM_SOURCES}
        try:
            with otb.Testbed(clients=2, queues=2) as tb:
                prefix = "oxbst%s" % tb.tag.replace("-", "")
                argv = [self.server, "--lcores", "0@1,1@0", "--no-pci", "--file-prefix",
                        prefix, "--huge-unlink"] + EAL_QUIET + \
                    ["--", "--iface", "eth0", "--port", str(PORT), "--max-sessions",
                     str(clients + 4 * EST_CLIENTS), "--hs-queue", str(STORM_HS_QUEUE),
                     "--key", os.path.join(keys, "server.key"),
                     "--allow", os.path.join(keys, "relay.allow")] + \
                    ([] if hs_workers is None else ["--hs-workers", str(hs_workers)]) + \
                    self.server_args()
                p = tb.popen(tb.relay, argv, bpffs=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
                if not self.wait_line(p, "up on AF_XDP", timeout=120):
                    print("skipped")
                    return self.skip(name, "server did not start: " + "".join(p.lines)[-300:])
                during = {}
                t = None
                if with_established:
                    res["before"] = self.established(tb, keys, EST_BEFORE_S, "b")

                    def run_during():
                        during.update(self.established(tb, keys, STORM_MAX_S // 3, "d") or {})
                    t = threading.Thread(target=run_during)
                    t.start()
                    time.sleep(3)
                r = tb.run(tb.clients[0], self.perf_argv(tb, "s", STORM_CPU, [
                    "--storm", keys, "--clients", str(clients), "--sources",
                    str(STORM_SOURCES), "--duration", str(STORM_MAX_S)]),
                    bpffs=True, check=False, timeout=STORM_MAX_S + 900)
                storm = self.last_json(r)
                rel = telemetry(prefix, "/oxidize/relay")
                eng = telemetry(prefix, "/oxidize/engines")
                if t is not None:
                    t.join()
                    res["during"] = during
                self.finish(p, 15, timeout=60)
        finally:
            shutil.rmtree(keys, ignore_errors=True)
        if storm is None:
            print("skipped")
            return self.skip(name, "oxidize-perf storm failed: " + r.stderr[-300:])
        res.update(storm=storm, engines=eng,
                   relay={k: v for k, v in rel.items() if v and (
                       k.startswith("hs_") or k in ("handshakes", "cookies_sent", "sessions"))})
        res["engines_n"] = len(eng["accepted"])
        res["hs_per_s"] = peak_rate(storm)
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
                argv = [self.server, "--lcores", "0@1,1@0", "--no-pci", "--file-prefix",
                        prefix, "--huge-unlink"] + EAL_QUIET + \
                    ["--", "--iface", "eth0", "--port", str(PORT), "--max-sessions",
                     str(n + 4 * EST_CLIENTS), "--key", os.path.join(keys, "server.key"),
                     "--allow", allow] + self.server_args()
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
                est_s = 8 + 6 * LIST_RELOADS

                def run_during():
                    during.update(self.established(tb, keys, est_s, "d") or {})
                t = threading.Thread(target=run_during)
                t.start()
                time.sleep(4)
                res["reload_ms"] = []
                for k in range(LIST_RELOADS):
                    tb.run(tb.relay, ["kill", "-HUP", str(server_pid(tb, prefix, p))])
                    deadline = time.time() + 60
                    while time.time() < deadline:
                        rel = telemetry(prefix, "/oxidize/relay")
                        if rel.get("allowlist_reloads", 0) >= k + 1:
                            break
                        time.sleep(0.2)
                    res["reload_ms"].append(rel.get("allowlist_reload_ms", -1))
                    time.sleep(4)
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

    def case_hs_engines(self, clients):
        """The storm alone, on one engine and on two."""
        for w in (0, 1):
            self.case_storm(clients, hs_workers=w, with_established=False,
                            name="handshake engines: %d, storm of %d" % (1 + w, clients))


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


def peak_rate(storm, window_s=2.0):
    """Handshakes a second over the busiest window of the storm's timeline."""
    bins = storm.get("done_per_bin") or []
    w = max(1, int(window_s / storm.get("bin_s", 0.1)))
    best = 0
    for i in range(0, max(1, len(bins) - w + 1)):
        best = max(best, sum(bins[i:i + w]))
    return best / (w * storm.get("bin_s", 0.1))


def storm_targets(r):
    """The storm's targets: its time against what its engines allow (one
    engine's measured rate, from its cycles per handshake, on each; plus the
    cookie round the protocol imposes), and the established clients."""
    s, eng = r["storm"], r["engines"]
    hz = s.get("tsc_hz") or 0
    cyc = [c for c in eng["cycles_per_accepted"] if c]
    rows = ["| target | wanted | measured | met |", "|---|---|---|---|"]
    if hz and cyc:
        per_core = hz / min(cyc)
        allowed = 5.0 + r["clients"] / (per_core * len(eng["accepted"]))
        rows.append("| all %d with sessions, vs REKEY_TIMEOUT + %d / (%d engines x %s a "
                    "second, one engine's rate on its own core) = %.1f s | <= 1.2x | %.2fx "
                    "| %s |" % (r["clients"], r["clients"], len(eng["accepted"]),
                                fmt(per_core), allowed, s["all_s"] / allowed,
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
             "The relay runs with `--hs-queue %d`." % (STORM_SOURCES, STORM_HS_QUEUE), ""]
    eng = [r for r in rs if r["case"].startswith("handshake engines")]
    if eng:
        lines += ["### Handshakes a second against engines", "",
                  "| engines | handshakes/s (busiest 2 s) | vs one engine | cycles per "
                  "handshake, each engine | storm of | all in |",
                  "|---|---|---|---|---|---|"]
        base = eng[0]["hs_per_s"] or 1
        for r in eng:
            lines.append("| %d | %s | %.2fx | %s | %d | %.1f s |" % (
                r["engines_n"], fmt(r["hs_per_s"]), r["hs_per_s"] / base,
                " / ".join(fmt(c) for c in r["engines"]["cycles_per_accepted"]),
                r["clients"], r["storm"]["all_s"]))
        lines += ["", "Engine 0 is the control thread, engine 1 the worker lcore between its "
                  "bursts. On this 2-core testbed the storm's generator runs on the control "
                  "thread's cpu: that engine's cycles include the time the generator took "
                  "from it. One engine's cycles per handshake give the rate one core "
                  "sustains; a relay with one worker per core runs an engine on each, and "
                  "an INIT goes to the engine its source hashes to, so the rate grows with "
                  "the cores while sources are many; on 32 cores, 32 times one core's rate "
                  "less what the control thread spends finishing each (a few microseconds: "
                  "the session, its index, the log line), which bounds it at a few hundred "
                  "thousand a second.", ""]
    al = [r for r in rs if r["case"].startswith("allow-list")]
    if al:
        lines += ["### Start and reload with a long allow-list", "",
                  "Every %dth line with a fixed address, every %dth with a preshared key; "
                  "the relay with `--max-sessions` just above the keys. Reloads: SIGHUP, the "
                  "same file, %d times 4 s apart, while 16 established clients send %d "
                  "packets a second client to client; then a line that is not a key." % (
                      LIST_FIXED, LIST_PSK, LIST_RELOADS, EST_PPS), "",
                  "| keys | start | reload | hugepages | RSS | clients' loss, RTT p99 / max, "
                  "before | across the reloads | bad line refused, named, nothing changed |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in al:
            b4, du = r.get("before") or {}, r.get("during") or {}
            lines.append("| %s | %.1f s | %s ms | %s MB | %s MB | %.3f%%, %.0f / %s us | "
                         "%.3f%%, %.0f / %s us | %s |" % (
                             fmt(r["keys"]), r["start_s"], " / ".join(
                                 str(x) for x in r["reload_ms"]), fmt(r["hugepages_mb"]),
                             fmt(r["rss_mb"]), 100 * b4.get("loss", 0),
                             b4.get("rtt_p99_us", 0), b4.get("rtt_max_us", "-"),
                             100 * du.get("loss", 0), du.get("rtt_p99_us", 0),
                             du.get("rtt_max_us", "-"),
                             "yes" if r.get("bad_line_refused") and r.get("bad_line_named")
                             else "**no**"))
        lines += ["", "A reload parses and sorts the list, builds the address pool and the "
                  "routes on the control thread, and publishes them in one release store; "
                  "the workers never wait for it (the old list is freed a grace period "
                  "later), so what the established clients see across a reload is the "
                  "data plane's own RTT. Handshakes wait while the control thread reloads. On "
                  "this 2-core testbed the clients' generator shares cpu 1 with the control "
                  "thread, so a reload that keeps that cpu busy also delays the generator's "
                  "own sending and reading, which shows in their maximum RTT.",
                  ""]
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
                  "| refused as waiting over 4 s (their clients retried) | %s |" % fmt(
                      r["relay"].get("hs_drop_queued_too_long", 0)),
                  "| answers the generator's kernel dropped (rx_missed) | %s |" % fmt(
                      s.get("rx_missed", 0))]
        for when in ("before", "during"):
            e = r.get(when) or {}
            if e:
                lines.append("| established clients %s: loss, RTT p50 / p99 | %.4f%%, "
                             "%.0f / %.0f us |" % (
                                 "before the storm" if when == "before" else "across it",
                                 100 * e.get("loss", 0), e.get("rtt_p50_us", 0),
                                 e.get("rtt_p99_us", 0)))
        lines += [""] + storm_targets(r) + [""]
        png = dict(plots).get("storm:" + r["case"])
        if png:
            lines += ["![the storm's timeline](%s)" % png, ""]
    return lines


def scale_plots(b, out_dir, plt):
    """The storm's timeline, one PNG per storm: sessions made per 100 ms and in all."""
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
        out[r["case"]] = png
    return out
