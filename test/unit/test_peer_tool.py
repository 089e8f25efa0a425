#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""usertools/oxidize-peer.py and its files, with no relay: what it writes
and what it refuses.

  - add --psk to a 0644 allow-list leaves it 0600 (the relay refuses a
    preshared key others can read);
  - --out over a pre-made 0644 file leaves a 0600 one; --out at a symlink
    replaces the link and leaves its target alone;
  - a name the relay's parser refuses (non-ASCII, a digit first, 32
    characters) is refused and the allow-list is unchanged;
  - a newline, '=' or stray text in --dns or --endpoint is refused: no
    line of the printed configuration can be injected (PostUp runs as root);
  - good values pass and are printed as given;
  - --group puts group=NAME on the line; a bad or repeated group is refused;
  - --rate and --expires put rate= and expires= on the line, bad ones are
    refused; set changes them on one line (and none/never take them away),
    leaving every other line as it was;
  - DNS = comes from the relay's dns = in --config unless --dns is given.

usage: test_peer_tool.py PEER_PY
"""

import os
import stat
import subprocess
import sys
import tempfile

PEER = sys.argv[1]
SERVER_PUB = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
fails = 0


def check(ok, what):
    global fails
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        fails += 1


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def tool(*args):
    return subprocess.run(["/usr/bin/python3", PEER] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def add(d, name, *extra):
    return tool("add", name, "--allow", os.path.join(d, "allow"), "--server-pub", SERVER_PUB,
                "--no-reload", *extra)


def main():
    try:
        import cryptography  # noqa: F401
    except ImportError:
        print("SKIP: python3 cryptography missing (Debian python3-cryptography)")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="oxpeer-") as d:
        allow = os.path.join(d, "allow")
        with open(allow, "w") as f:
            f.write("# clients\n")
        os.chmod(allow, 0o644)

        r = add(d, "alice", "--endpoint", "198.18.0.1")
        check(r.returncode == 0 and mode(allow) == 0o644,
              "a line without a preshared key keeps the allow-list's mode 0644 (%s)"
              % r.stderr.strip())
        r = add(d, "bob", "--endpoint", "198.18.0.1", "--psk")
        check(r.returncode == 0 and mode(allow) == 0o600 and "PresharedKey = " in r.stdout,
              "--psk: the allow-list goes from 0644 to 0600 (%03o)" % mode(allow))
        with open(allow) as f:
            before = f.read()

        out = os.path.join(d, "carol.conf")
        with open(out, "w") as f:
            f.write("old\n")
        os.chmod(out, 0o644)
        r = add(d, "carol", "--endpoint", "198.18.0.1", "--out", out)
        with open(out) as f:
            text = f.read()
        check(r.returncode == 0 and mode(out) == 0o600 and "[Interface]" in text,
              "--out over a 0644 file: a new file of mode 600 (%03o)" % mode(out))

        target = os.path.join(d, "target")
        with open(target, "w") as f:
            f.write("untouched\n")
        os.chmod(target, 0o644)
        link = os.path.join(d, "dave.conf")
        os.symlink(target, link)
        r = add(d, "dave", "--endpoint", "198.18.0.1", "--out", link)
        with open(target) as f:
            kept = f.read()
        check(r.returncode == 0 and not os.path.islink(link) and mode(link) == 0o600 and
              kept == "untouched\n" and mode(target) == 0o644,
              "--out at a symlink: the link replaced by a 0600 file, its target untouched")
        with open(allow) as f:
            before = f.read()

        for name in ("\u00e91", "1abc", "a" * 32, "a b", "a\nb", "psk=x"):
            r = add(d, name, "--endpoint", "198.18.0.1")
            with open(allow) as f:
                after = f.read()
            check(r.returncode != 0 and "name" in r.stderr and after == before,
                  "name %r refused, the allow-list unchanged (%s)" % (name, r.stderr.strip()))

        bad_dns = ("1.1.1.1\nPostUp = touch /tmp/x", "1.1.1.1,\n[Interface]", "a=b",
                   "1.1.1.1 2.2.2.2", "")
        for dns in bad_dns:
            r = add(d, "eve", "--endpoint", "198.18.0.1", "--dns", dns)
            check(r.returncode != 0 and "--dns" in r.stderr and "PostUp" not in r.stdout,
                  "--dns %r refused (%s)" % (dns, r.stderr.strip()))
        for ep in ("198.18.0.1\nPostUp = id", "198.18.0.1:51820\n", "host name", "fd00::1",
                   "198.18.0.1:0", "198.18.0.1:70000", "[fd00::1", "a=b:1"):
            r = add(d, "eve", "--endpoint", ep)
            check(r.returncode != 0 and "--endpoint" in r.stderr,
                  "--endpoint %r refused (%s)" % (ep, r.stderr.strip()))
        with open(allow) as f:
            check(f.read() == before, "nothing refused reached the allow-list")

        r = add(d, "eve.2", "--endpoint", "[fd00::1]:443", "--dns",
                "100.64.0.1, fd6f:7869:647a::1, corp.example")
        check(r.returncode == 0 and "Endpoint = [fd00::1]:443\n" in r.stdout and
              "DNS = 100.64.0.1, fd6f:7869:647a::1, corp.example\n" in r.stdout,
              "good values pass as given: [IPv6]:port, addresses and a search domain")
        r = add(d, "frank", "--endpoint", "relay-1.example.net")
        check(r.returncode == 0 and "Endpoint = relay-1.example.net:51820\n" in r.stdout,
              "a host name takes the default port")

        # Subnets behind a peer: on its line, checked as the relay checks.
        r = add(d, "branch", "--endpoint", "198.18.0.1", "--route",
                "198.18.90.0/24,fd00:90::/64")
        with open(allow) as f:
            line = [ln for ln in f if " branch " in ln]
        check(r.returncode == 0 and line and
              line[0].rstrip().endswith(" 198.18.90.0/24 fd00:90::/64"),
              "--route: the prefixes on the peer's line (%s)" % line)
        with open(allow) as f:
            before = f.read()
        for route, why in (("198.18.90.128/25", "overlaps 198.18.90.0/24"),
                           ("198.18.91.1/24", "host bits"),
                           ("100.64.0.0/24", "a tunnel pool"),
                           ("0.0.0.0/0", "not a host or the default route")):
            r = add(d, "b2", "--endpoint", "198.18.0.1", "--route", route)
            check(r.returncode != 0 and why in r.stderr,
                  "--route %s refused (%s)" % (route, r.stderr.strip()))
        with open(allow) as f:
            check(f.read() == before, "and the allow-list unchanged")

        # Groups (--c2c): on the line as group=NAME, names checked.
        r = add(d, "gina", "--endpoint", "198.18.0.1", "--group", "staff", "--group", "ops")
        with open(allow) as f:
            line = [ln for ln in f if " gina " in ln]
        check(r.returncode == 0 and line and
              line[0].rstrip().endswith(" group=staff group=ops"),
              "--group staff --group ops: on the peer's line (%s)" % line)
        with open(allow) as f:
            before = f.read()
        for groups in (["9x"], ["a b"], ["ops", "ops"], ["x" * 32]):
            r = add(d, "g2", "--endpoint", "198.18.0.1",
                    *[a for g in groups for a in ("--group", g)])
            with open(allow) as f:
                after = f.read()
            check(r.returncode != 0 and "group" in r.stderr and after == before,
                  "--group %s refused, the allow-list unchanged (%s)" % (
                      groups, r.stderr.strip()))

        # DNS = from the relay's own dns = in --config, unless --dns is given.
        conf = os.path.join(d, "server.ini")
        with open(conf, "w") as f:
            f.write("[server]\nallow = %s\ndns = 198.19.0.53, 2001:db8::53\n" % allow)
        r = tool("add", "ivy", "--config", conf, "--server-pub", SERVER_PUB, "--no-reload",
                 "--endpoint", "198.18.0.1")
        check(r.returncode == 0 and "\nDNS = 198.19.0.53, 2001:db8::53\n" in r.stdout,
              "DNS = from the relay's dns = in --config (%s)" % [
                  ln for ln in r.stdout.splitlines() if ln.startswith("DNS")])
        r = tool("add", "jo", "--config", conf, "--server-pub", SERVER_PUB, "--no-reload",
                 "--endpoint", "198.18.0.1", "--dns", "9.9.9.9")
        check(r.returncode == 0 and "\nDNS = 9.9.9.9\n" in r.stdout,
              "--dns wins over the relay's (%s)" % [
                  ln for ln in r.stdout.splitlines() if ln.startswith("DNS")])
        # A relay on two ports: the endpoint takes the first unless it names one.
        with open(conf, "a") as f:
            f.write("port = 51820,443\n")
        r = tool("add", "kai", "--config", conf, "--server-pub", SERVER_PUB, "--no-reload",
                 "--endpoint", "198.18.0.1")
        r2 = tool("add", "lu", "--config", conf, "--server-pub", SERVER_PUB, "--no-reload",
                  "--endpoint", "198.18.0.1:443")
        check(r.returncode == 0 and "\nEndpoint = 198.18.0.1:51820\n" in r.stdout and
              r2.returncode == 0 and "\nEndpoint = 198.18.0.1:443\n" in r2.stdout,
              "port = 51820,443: Endpoint on 51820, or on 443 when it says so (%s %s)" % (
                  r.stderr.strip(), r2.stderr.strip()))

        # Rates and expiry: on the line, checked; set changes one line alone.
        r = add(d, "hal", "--endpoint", "198.18.0.1", "--rate", "20mbit",
                "--expires", "2031-02-28T18:30Z")
        with open(allow) as f:
            line = [ln for ln in f if " hal " in ln]
        check(r.returncode == 0 and line and
              line[0].rstrip().endswith(" rate=20mbit expires=2031-02-28T18:30Z"),
              "--rate 20mbit --expires 2031-02-28T18:30Z: on the line (%s)" % line)
        with open(allow) as f:
            before = f.read()
        for opt, bad in (("--rate", "20mb"), ("--rate", "7kbit"), ("--rate", "500gbit"),
                         ("--rate", "1.mbit"), ("--expires", "2031-02-30T18:30Z"),
                         ("--expires", "2031-02-28 18:30Z"), ("--expires", "2031-02-28T18:30")):
            r = add(d, "h2", "--endpoint", "198.18.0.1", opt, bad)
            with open(allow) as f:
                after = f.read()
            check(r.returncode != 0 and opt in r.stderr and after == before,
                  "%s %s refused, the allow-list unchanged (%s)" % (opt, bad, r.stderr.strip()))

        def peer_set(*extra):
            return tool("set", "--allow", allow, "--no-reload", *extra)

        with open(allow) as f:
            others = [ln for ln in f if " hal " not in ln]
        r = peer_set("hal", "--rate", "1.5mbit")
        with open(allow) as f:
            lines = f.readlines()
        line = [ln for ln in lines if " hal " in ln]
        check(r.returncode == 0 and line and " rate=1.5mbit" in line[0] and
              " rate=20mbit" not in line[0] and " expires=2031-02-28T18:30Z" in line[0] and
              [ln for ln in lines if " hal " not in ln] == others,
              "set hal --rate 1.5mbit: its rate changed, its expiry and the other lines kept "
              "(%s)" % line)
        r = peer_set("hal", "--rate", "none", "--expires", "never")
        with open(allow) as f:
            line = [ln for ln in f if " hal " in ln]
        check(r.returncode == 0 and line and "rate=" not in line[0] and
              "expires=" not in line[0],
              "set hal --rate none --expires never: both gone (%s)" % line)
        r = peer_set("nobody", "--rate", "1mbit")
        check(r.returncode != 0 and "no peer nobody" in r.stderr,
              "set on a peer not listed refused (%s)" % r.stderr.strip())
    print("%d failed" % fails)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
