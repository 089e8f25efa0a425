#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Put a fleet's anycast address on a dummy interface while this host's
oxidize-server is healthy, and take it off when it is not.

    oxidize-anycast.py --address 192.0.2.1/32 [--address 2001:db8::1/128]
                       [--dev oxany0] [--prefix oxidize] [--interval 0.5]
                       [--rise 2] [--fall 2]
    oxidize-anycast.py --check [--prefix oxidize]      # exit 0 if healthy
    oxidize-anycast.py --withdraw --address ... [--dev oxany0]

The routing daemon (BIRD 2, config/bird/) exports the addresses of the
dummy interface to its BGP peers: an address on it is a route announced,
an address taken off is a route withdrawn. Health is the relay's own
verdict, /oxidize/health on its telemetry socket (EAL --file-prefix
PREFIX): every lcore and the control thread coming round, links up, mbufs
left, not stopping. No answer within --interval counts as unhealthy (the
process is gone, or stuck). --rise answers in a row announce, --fall
withdraw. SIGTERM and SIGINT withdraw before exiting 0 (doc/fleet.md).
--check asks once and says (a check command for other tools); --withdraw
takes the addresses off and exits (after a crash of the announcer).
"""

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oxidize_telemetry import command as telemetry  # noqa: E402


def log(msg):
    print("oxidize-anycast: %s" % msg, flush=True)


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def health(prefix, timeout):
    """(healthy, why): the relay's verdict, or why there is none."""
    try:
        h = telemetry(prefix, "/oxidize/health", timeout=timeout)
    except OSError as e:
        return False, "no answer from the relay's telemetry (%s)" % (e.strerror or e)
    except (ValueError, KeyError) as e:
        return False, "malformed answer from the relay (%s)" % e
    if not isinstance(h, dict) or "healthy" not in h:
        return False, "the relay has no /oxidize/health (older oxidize-server?)"
    return bool(h["healthy"]), h.get("reasons", "")


class Announcer:
    def __init__(self, dev, addrs):
        self.dev = dev
        self.addrs = addrs
        self.up = False
        self.announced = self.withdrawn = 0

    def ensure_dev(self):
        if ip("link", "show", self.dev, check=False).returncode != 0:
            r = ip("link", "add", self.dev, "type", "dummy", check=False)
            if r.returncode == 0:
                log("created dummy interface %s" % self.dev)
            else:
                # A kernel built without dummy interfaces: an ifb device
                # holds addresses the same way and sends nothing.
                ip("link", "add", self.dev, "type", "ifb")
                log("no dummy interfaces here (%s); created %s as an ifb device" % (
                    r.stderr.strip(), self.dev))
        ip("link", "set", self.dev, "up")
        # Addresses left by a run that died: withdrawn until healthy.
        for a in self.addrs:
            ip("addr", "del", str(a), "dev", self.dev, check=False)

    def announce(self, why):
        for a in self.addrs:
            ip("addr", "replace", str(a), "dev", self.dev)
        self.up = True
        self.announced += 1
        log("relay healthy (%s): announcing %s on %s" % (
            why, ", ".join(str(a) for a in self.addrs), self.dev))

    def withdraw(self, why):
        for a in self.addrs:
            ip("addr", "del", str(a), "dev", self.dev, check=False)
        was, self.up = self.up, False
        if was:
            self.withdrawn += 1
            log("relay unhealthy (%s): withdrew %s" % (
                why, ", ".join(str(a) for a in self.addrs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--address", action="append", default=[],
                    help="anycast address with its prefix length (/32, /128); repeatable")
    ap.add_argument("--check", action="store_true",
                    help="ask the relay once, print its verdict, exit 0 if healthy")
    ap.add_argument("--withdraw", action="store_true",
                    help="take the addresses off the interface and exit")
    ap.add_argument("--dev", default="oxany0", help="dummy interface (default oxany0)")
    ap.add_argument("--prefix", default="oxidize",
                    help="the relay's EAL --file-prefix (default oxidize, the service's)")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between checks")
    ap.add_argument("--rise", type=int, default=2, help="healthy answers in a row to announce")
    ap.add_argument("--fall", type=int, default=2, help="bad answers in a row to withdraw")
    args = ap.parse_args()
    if args.check:
        ok, why = health(args.prefix, 2.0)
        print("%s: %s" % ("healthy" if ok else "unhealthy", why))
        return 0 if ok else 1
    if not args.address:
        ap.error("--address is needed (at least one)")
    try:
        addrs = [ipaddress.ip_interface(a) for a in args.address]
    except ValueError as e:
        ap.error(str(e))
    if not 0.05 <= args.interval <= 60 or args.rise < 1 or args.fall < 1:
        ap.error("--interval wants 0.05..60 s, --rise and --fall at least 1")
    a = Announcer(args.dev, addrs)
    if args.withdraw:
        for x in addrs:
            ip("addr", "del", str(x), "dev", args.dev, check=False)
        return 0
    try:
        a.ensure_dev()
    except RuntimeError as e:
        log(str(e))
        return 1

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: stop.append(s))
    good = bad = 0
    log("watching the relay (file prefix %s) every %.2f s, rise %d, fall %d" % (
        args.prefix, args.interval, args.rise, args.fall))
    while not stop:
        t0 = time.monotonic()
        ok, why = health(args.prefix, args.interval)
        good, bad = (good + 1, 0) if ok else (0, bad + 1)
        try:
            if ok and not a.up and good >= args.rise:
                a.announce("%d checks in a row" % good)
            elif not ok and bad >= args.fall and a.up:
                a.withdraw(why)
            elif not ok and bad == args.fall:
                log("relay not healthy, nothing announced: %s" % why)
        except RuntimeError as e:
            log(str(e))
        time.sleep(max(0.0, args.interval - (time.monotonic() - t0)))
    a.withdraw("stopping: signal %d" % stop[0])
    log("stopped: announced %d time(s), withdrew %d time(s)" % (a.announced, a.withdrawn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
