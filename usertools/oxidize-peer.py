#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Add or remove a WireGuard peer of an oxidize-server relay.

  oxidize-peer.py add NAME --endpoint HOST[:PORT] [--config FILE]
                  [--key FILE | --server-pub KEY] [--allow FILE]
                  [--pubkey KEY] [--address V4] [--address6 V6] [--psk]
                  [--group G]... [--rate RATE] [--expires YYYY-MM-DDTHH:MMZ]
                  [--route PREFIX,...] [--dns IP,...] [--split] [--keepalive S] [--mtu N]
                  [--out FILE] [--qr] [--reload-pid PID | --no-reload]
  oxidize-peer.py remove NAME|KEY [--config FILE] [--allow FILE]
                  [--reload-pid PID | --no-reload]
  oxidize-peer.py set NAME|KEY [--rate RATE|none] [--expires TIME|never]
                  [--config FILE] [--allow FILE] [--reload-pid PID | --no-reload]
  oxidize-peer.py list [--prefix oxidize] [--all] [--json]

add makes a key pair (or takes the peer's public key with --pubkey), gives
the peer fixed tunnel addresses (--address/--address6, else the first ones
from the top of the pools that no allow-list line holds) and, with --route,
the subnets behind it (a site's router: checked as the relay checks them,
host bits clear and overlapping no pool or other line), appends its line
to the allow-list, has the running relay reload it (SIGHUP: --reload-pid,
else `systemctl reload oxidize-server` when that unit is active), and
prints a wg-quick configuration for the peer: [Interface] with its private
key (when made here), addresses and DNS; [Peer] with the relay's key, the
endpoint, AllowedIPs (everything, or with --split only the tunnel pools)
and PersistentKeepalive. --qr prints it as a QR code too (qrencode), for
the phone apps; --out writes it to a new file of mode 600 renamed over
FILE (an existing file's mode is not kept, a symlink is not followed).
The name, --dns and --endpoint are checked against what the relay and
wg-quick take: a newline or a stray '=' is refused, never printed.

--rate gives the peer a rate each way (20mbit: units bit, kbit, mbit,
gbit), --expires a time (UTC) after which the relay admits it no more and
ends its session. set changes them on an existing line (none, never: take
them away); remove deletes the peer's line (by name or key); both reload
the same way, and no other peer's session is touched.

list shows the running relay's peers with a session (--all: every listed
key): name, key, protocol, address, endpoint, time since the last
handshake, bytes each way, rate and expiry; from its telemetry socket, page by page.

The relay's key, allow-list, port and pools come from --config (the
server's INI, section [server]) unless given; the allow-list is rewritten
whole (a temporary file renamed over it), keeping its mode, less group
and others' bits once it holds a preshared key (the relay refuses such
a file readable by others).
"""

import argparse
import base64
import configparser
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

DEFAULT_POOL4 = "100.64.0.0/10"
DEFAULT_POOL6 = "fd6f:7869:647a::/64"
DEFAULT_PORT = 51820
RAW = serialization.Encoding.Raw


def die(msg):
    sys.exit("oxidize-peer: " + msg)


def b64(raw):
    return base64.b64encode(raw).decode()


def key_bytes(text, what):
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        die("%s is not a base64 key of 32 bytes" % what)
    return raw


def public_of(priv_raw):
    k = X25519PrivateKey.from_private_bytes(priv_raw)
    return k.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)


def new_keypair():
    k = X25519PrivateKey.generate()
    priv = k.private_bytes(RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return priv, k.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)


def read_conf(path):
    """The [server] section of the relay's INI file, or {}."""
    if not path:
        return {}
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"),
                                   comment_prefixes=(";", "#"))
    try:
        with open(path) as f:
            cp.read_file(f)
    except OSError as e:
        die("--config %s: %s" % (path, e.strerror))
    return dict(cp["server"]) if cp.has_section("server") else {}


def allow_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError as e:
        die("allow-list %s: %s" % (path, e.strerror))


def write_allow(path, lines):
    """Replace the allow-list whole, keeping its mode, but for group and
    others once it holds a preshared key (the relay refuses it then)."""
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077 and any(tok.startswith("psk=") for line in lines for tok in fields(line)):
        print("oxidize-peer: %s holds preshared keys: mode %03o -> %03o"
              % (path, mode, mode & 0o700), file=sys.stderr)
        mode &= 0o700
    write_private(path, "".join(line + "\n" for line in lines), mode)


def write_private(path, text, mode=0o600):
    """Write a file whole through a new file (O_EXCL, mode 600 from the
    start) renamed over it: an existing file's mode is not kept and a
    symlink at path is replaced, never followed."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        die("cannot write %s: %s" % (path, e.strerror))


# What the relay's allow-list parser takes as a name (lib/oxtunnel), and
# no more: a name it refused would stop the next reload and the next start.
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,30}", re.ASCII)
# A DNS search domain as wg-quick passes it to resolvconf: LDH labels.
DOMAIN_RE = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+",
                       re.ASCII)


def check_dns(text):
    """DNS = for wg-quick: addresses and search domains, comma-separated.
    Anything else (a newline above all) could put lines such as PostUp,
    run as root on the peer, into its configuration."""
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            out.append(str(ipaddress.ip_address(item)))
            continue
        except ValueError:
            pass
        if not DOMAIN_RE.fullmatch(item):
            die("--dns: %r is neither an IP address nor a search domain" % item.strip())
        out.append(item)
    return ", ".join(out)


def check_endpoint(text, default_port):
    """HOST[:PORT] with HOST an IPv4 address, [IPv6] or a host name."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            die("--endpoint %r: [IPv6]:PORT" % text)
        port = rest[1:] or port
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            die("--endpoint %r: %r is not an IPv6 address" % (text, host))
        host = "[%s]" % host
    else:
        if text.count(":") == 1:
            host, port = text.split(":")
        elif ":" in text:
            die("--endpoint %r: write an IPv6 address as [ADDRESS]:PORT" % text)
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not DOMAIN_RE.fullmatch(host):
                die("--endpoint %r: %r is not an address or a host name" % (text, host))
    if not port.isdigit() or not 0 < int(port) < 65536:
        die("--endpoint %r: port %r is not 1-65535" % (text, port))
    return "%s:%d" % (host, int(port))


RATE_RE = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?(bit|kbit|mbit|gbit)?", re.I)
RATE_UNITS = {"": 1, "bit": 1, "kbit": 1000, "mbit": 1000000, "gbit": 1000000000}
EXPIRES_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}Z")


def check_rate(text):
    """A rate as the relay reads rate=: bits a second, 8kbit..400gbit."""
    m = RATE_RE.fullmatch(text)
    if not m:
        die("--rate %s: a number and a unit, such as 20mbit (bit, kbit, mbit, gbit)" % text)
    mul = RATE_UNITS[(m.group(3) or "").lower()]
    frac = m.group(2) or ""
    bps = int(m.group(1)) * mul + (int(frac) * mul // 10 ** len(frac) if frac else 0)
    if not 8000 <= bps <= 400 * 10 ** 9:
        die("--rate %s: outside 8kbit..400gbit" % text)
    return text


def check_expires(text):
    """A UTC time as the relay reads expires=."""
    import datetime
    try:
        if not EXPIRES_RE.fullmatch(text):
            raise ValueError
        when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%MZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        die("--expires %s: a UTC time as 2027-01-31T18:00Z" % text)
    if when.timestamp() <= time.time():
        print("oxidize-peer: warning: %s has passed: the peer is admitted no more" % text,
              file=sys.stderr)
    return text


def fields(line):
    """The fields of an allow-list line before its comment."""
    return line.split("#", 1)[0].split()


def taken(lines):
    """Keys, names, fixed addresses and routed prefixes the allow-list
    already holds."""
    keys, names, addrs, nets = set(), set(), set(), set()
    for line in lines:
        f = fields(line)
        if not f:
            continue
        keys.add(f[0])
        for tok in f[1:]:
            try:
                if "/" in tok:
                    n = ipaddress.ip_network(tok, strict=False)
                    if n.prefixlen == n.max_prefixlen:
                        addrs.add(n.network_address)
                    else:
                        nets.add(n)
                else:
                    addrs.add(ipaddress.ip_address(tok))
            except ValueError:
                if not tok.startswith("psk="):
                    names.add(tok)
    return keys, names, addrs, nets


def check_routes(text, nets, pools):
    """--route: prefixes with their host bits clear, shorter than a host's,
    not a default route, outside the pools and every other line's prefixes
    (the relay refuses the file otherwise)."""
    out = []
    for tok in [t.strip() for t in text.split(",") if t.strip()]:
        try:
            n = ipaddress.ip_network(tok, strict=True)
        except ValueError as e:
            die("--route %s: %s (host bits must be clear: ADDR/LEN)" % (tok, e))
        if n.prefixlen in (0, n.max_prefixlen):
            die("--route %s: a subnet, not a host or the default route" % tok)
        for other in list(nets) + [ipaddress.ip_network(p) for p in pools] + out:
            if other.version == n.version and n.overlaps(other):
                die("--route %s overlaps %s%s" % (
                    tok, other, " (a tunnel pool)" if str(other) in pools else ""))
        out.append(n)
    return out


def pick(pool, addrs, relay_host):
    """The highest assignable address of pool no allow-list line holds."""
    net = ipaddress.ip_network(pool, strict=True)
    top = net.broadcast_address - (1 if net.version == 4 else 0)
    low = net.network_address + 2
    a = top
    while a >= low:
        if a not in addrs and a != net.network_address + relay_host:
            return a
        a -= 1
    die("no free address left in %s" % pool)


def reload_relay(args):
    if args.no_reload:
        print("oxidize-peer: not reloaded; send the relay SIGHUP to apply", file=sys.stderr)
        return
    if args.reload_pid:
        try:
            os.kill(args.reload_pid, signal.SIGHUP)
        except OSError as e:
            die("reload: pid %d: %s" % (args.reload_pid, e.strerror))
        print("oxidize-peer: relay (pid %d) reloads the allow-list" % args.reload_pid,
              file=sys.stderr)
        return
    if shutil.which("systemctl") and subprocess.run(
            ["systemctl", "is-active", "--quiet", "oxidize-server"]).returncode == 0:
        if subprocess.run(["systemctl", "reload", "oxidize-server"]).returncode != 0:
            die("systemctl reload oxidize-server failed")
        print("oxidize-peer: oxidize-server reloaded", file=sys.stderr)
        return
    print("oxidize-peer: no running relay found (--reload-pid PID); send it SIGHUP to apply",
          file=sys.stderr)


def wg_quick(priv, v4, v6, server_pub, endpoint, psk, args, pool4, pool6):
    lines = ["[Interface]"]
    lines.append("PrivateKey = %s" % (b64(priv) if priv else "<the peer's private key>"))
    lines.append("Address = %s/32, %s/128" % (v4, v6))
    if args.dns:
        lines.append("DNS = %s" % args.dns)
    if args.mtu:
        lines.append("MTU = %d" % args.mtu)
    lines += ["", "[Peer]", "PublicKey = %s" % server_pub]
    if psk:
        lines.append("PresharedKey = %s" % b64(psk))
    lines.append("Endpoint = %s" % args.endpoint)
    lines.append("AllowedIPs = %s" % ("%s, %s" % (pool4, pool6) if args.split
                                      else "0.0.0.0/0, ::/0"))
    lines.append("PersistentKeepalive = %d" % args.keepalive)
    return "\n".join(lines) + "\n"


def server_public(args, conf):
    if args.server_pub:
        return b64(key_bytes(args.server_pub, "--server-pub"))
    path = args.key or conf.get("key")
    if not path:
        die("the relay's key: --key FILE, --server-pub KEY or key = in --config")
    try:
        with open(path) as f:
            return b64(public_of(key_bytes(f.read(), path)))
    except OSError as e:
        die("--key %s: %s" % (path, e.strerror))


def cmd_add(args):
    conf = read_conf(args.config)
    allow = args.allow or conf.get("allow") or die("--allow FILE (or allow = in --config)")
    pool4 = conf.get("pool4", DEFAULT_POOL4)
    pool6 = conf.get("pool6", DEFAULT_POOL6)
    server_pub = server_public(args, conf)
    # A relay on several ports (port = 51820,443): the first, unless the
    # endpoint names one.
    args.endpoint = check_endpoint(args.endpoint,
                                   str(conf.get("port", DEFAULT_PORT)).split(",")[0].strip())
    # The relay's own --dns (dns = in its config) unless given: the servers
    # its OxTunnel clients get, WireGuard peers get through DNS =.
    if args.dns is None and conf.get("dns"):
        args.dns = conf["dns"]
    if args.dns is not None:
        args.dns = check_dns(args.dns)
    if not 0 <= args.keepalive <= 65535:
        die("--keepalive %d: 0-65535 seconds" % args.keepalive)
    if args.mtu is not None and not 1280 <= args.mtu <= 9000:
        die("--mtu %d: 1280-9000" % args.mtu)
    lines = allow_lines(allow)
    keys, names, addrs, nets = taken(lines)
    routes = check_routes(args.route, nets, (pool4, pool6)) if args.route else []
    if not NAME_RE.fullmatch(args.name):
        die("name '%s': ASCII letters, digits, '_', '-', '.', starting with a letter, "
            "at most 31" % args.name)
    if args.name in names:
        die("a peer named %s is on the allow-list already" % args.name)
    groups = args.group or []
    for g in groups:
        if not NAME_RE.fullmatch(g):
            die("group '%s': ASCII letters, digits, '_', '-', '.', starting with a letter, "
                "at most 31" % g)
    if len(set(groups)) != len(groups):
        die("--group: a group given twice")
    priv = None
    if args.pubkey:
        pub = key_bytes(args.pubkey, "--pubkey")
    else:
        priv, pub = new_keypair()
    if b64(pub) in keys:
        die("that key is on the allow-list already")
    v4 = ipaddress.ip_address(args.address) if args.address else pick(pool4, addrs, 1)
    v6 = ipaddress.ip_address(args.address6) if args.address6 else pick(pool6, addrs, 1)
    for a, pool in ((v4, pool4), (v6, pool6)):
        if a not in ipaddress.ip_network(pool) or a in addrs:
            die("address %s is outside %s or taken" % (a, pool))
    psk = os.urandom(32) if args.psk else None
    line = "%s %s %s %s" % (b64(pub), args.name, v4, v6)
    for n in routes:
        line += " %s" % n
    if psk:
        line += " psk=%s" % b64(psk)
    for g in groups:
        line += " group=%s" % g
    if args.rate:
        line += " rate=%s" % check_rate(args.rate)
    if args.expires:
        line += " expires=%s" % check_expires(args.expires)
    write_allow(allow, lines + [line])
    print("oxidize-peer: %s added to %s: %s, %s%s" % (
        args.name, allow, v4, v6, "; routed to it: " + ", ".join(map(str, routes))
        if routes else ""), file=sys.stderr)
    reload_relay(args)
    text = wg_quick(priv, v4, v6, server_pub, args.endpoint, psk, args, pool4, pool6)
    if args.out:
        write_private(args.out, text)
    sys.stdout.write(text)
    if args.qr:
        if shutil.which("qrencode") is None:
            die("--qr needs qrencode (Debian package qrencode)")
        subprocess.run(["qrencode", "-t", "ansiutf8"], input=text, text=True, check=True)


def cmd_remove(args):
    conf = read_conf(args.config)
    allow = args.allow or conf.get("allow") or die("--allow FILE (or allow = in --config)")
    lines = allow_lines(allow)
    keep = [line for line in lines
            if not (fields(line) and (fields(line)[0] == args.peer or
                                      (len(fields(line)) > 1 and fields(line)[1] == args.peer)))]
    if len(keep) == len(lines):
        die("no peer %s on %s" % (args.peer, allow))
    write_allow(allow, keep)
    print("oxidize-peer: %s removed from %s" % (args.peer, allow), file=sys.stderr)
    reload_relay(args)


def cmd_set(args):
    """Change a line's rate= and expires= (the rest of it as it was)."""
    if args.rate is None and args.expires is None:
        die("set: --rate or --expires")
    rate = None if args.rate in (None, "none") else check_rate(args.rate)
    expires = None if args.expires in (None, "never") else check_expires(args.expires)
    conf = read_conf(args.config)
    allow = args.allow or conf.get("allow") or die("--allow FILE (or allow = in --config)")
    lines = allow_lines(allow)
    hit = 0
    for i, line in enumerate(lines):
        f = fields(line)
        if not f or not (f[0] == args.peer or (len(f) > 1 and f[1] == args.peer)):
            continue
        hit += 1
        body, hash_, comment = line.partition("#")
        toks = body.split()
        if args.rate is not None:
            toks = [t for t in toks if not t.startswith("rate=")]
            if rate:
                toks.append("rate=" + rate)
        if args.expires is not None:
            toks = [t for t in toks if not t.startswith("expires=")]
            if expires:
                toks.append("expires=" + expires)
        lines[i] = " ".join(toks) + (" " + hash_ + comment if hash_ else "")
    if hit == 0:
        die("no peer %s on %s" % (args.peer, allow))
    write_allow(allow, lines)
    print("oxidize-peer: %s: rate %s, expires %s" % (
        args.peer, "(kept)" if args.rate is None else rate or "none",
        "(kept)" if args.expires is None else expires or "never"), file=sys.stderr)
    reload_relay(args)


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024.0


def ago(t):
    if not t:
        return "-"
    s = int(time.time()) - int(t)
    return "%ds" % s if s < 120 else "%dm" % (s // 60) if s < 7200 else "%dh" % (s // 3600)


def cmd_list(args):
    """The running relay's peers, from its telemetry (/oxidize/peers)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from oxidize_telemetry import peers
    try:
        rows = sorted(peers(args.prefix).items(), key=lambda kv: kv[1]["name"])
    except (OSError, ValueError, KeyError) as e:
        die("the relay's telemetry (--prefix %s): %s" % (args.prefix, e))
    if args.json:
        print(json.dumps(dict(rows)))
        return
    fmt = "%-16s %-44s %-9s %-15s %-22s %6s %10s %10s %9s %17s"
    print(fmt % ("NAME", "KEY", "PROTOCOL", "ADDRESS", "ENDPOINT", "SHAKE", "RX", "TX", "RATE",
                 "EXPIRES"))
    for key, p in rows:
        if not p.get("connected") and not args.all:
            continue
        print(fmt % (p["name"], key, p.get("proto", "-"), p.get("v4", "-"),
                     p.get("endpoint", "-"), ago(p.get("last_handshake")),
                     human(p.get("rx_bytes", 0)), human(p.get("tx_bytes", 0)),
                     rate_str(p.get("rate_bps", 0)), expires_str(p)))


def rate_str(bps):
    if not bps:
        return "-"
    for unit, mul in (("gbit", 10 ** 9), ("mbit", 10 ** 6), ("kbit", 1000)):
        if bps >= mul:
            return ("%g" % (bps / mul)) + unit
    return "%dbit" % bps


def expires_str(p):
    if not p.get("expires"):
        return "-"
    text = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(p["expires"]))
    return text + (" (past)" if p.get("expired") else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list")
    p.add_argument("--prefix", default="oxidize", help="the relay's EAL --file-prefix")
    p.add_argument("--all", action="store_true", help="listed peers without a session too")
    p.add_argument("--json", action="store_true", help="one JSON object, key: status")
    for name in ("add", "remove", "set"):
        p = sub.add_parser(name)
        p.add_argument("--config", help="the relay's INI file (section [server])")
        p.add_argument("--allow", help="allow-list file (default: allow = in --config)")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--reload-pid", type=int, help="the relay to send SIGHUP")
        g.add_argument("--no-reload", action="store_true", help="do not reload the relay")
        if name == "add":
            p.add_argument("name", help="the peer's name on its allow-list line")
            p.add_argument("--endpoint", required=True, help="HOST[:PORT] peers reach")
            p.add_argument("--key", help="the relay's private key file")
            p.add_argument("--server-pub", help="the relay's public key")
            p.add_argument("--pubkey", help="the peer's public key (else a key pair is made)")
            p.add_argument("--address", help="fixed IPv4 (default: a free one of the pool)")
            p.add_argument("--address6", help="fixed IPv6 (default: a free one of the pool)")
            p.add_argument("--psk", action="store_true", help="a preshared key too")
            p.add_argument("--group", action="append",
                           help="a group the peer is in (--c2c group, --c2c-allow); repeatable")
            p.add_argument("--rate", help="the peer's rate each way, e.g. 20mbit")
            p.add_argument("--expires", help="admitted until this UTC time, "
                           "YYYY-MM-DDTHH:MMZ")
            p.add_argument("--route", help="subnets behind the peer (a site's router), "
                           "comma-separated prefixes the relay routes to it")
            p.add_argument("--dns", help="DNS servers for the peer, comma-separated "
                           "(default: dns = in --config, the relay's --dns)")
            p.add_argument("--split", action="store_true",
                           help="route only the tunnel pools (default: everything)")
            p.add_argument("--keepalive", type=int, default=25,
                           help="PersistentKeepalive, seconds (25)")
            p.add_argument("--mtu", type=int, help="MTU for the peer's interface")
            p.add_argument("--out", help="write the configuration here too (mode 600)")
            p.add_argument("--qr", action="store_true", help="print it as a QR code too")
        else:
            p.add_argument("peer", help="name or public key")
        if name == "set":
            p.add_argument("--rate", help="the peer's rate each way (20mbit), or none")
            p.add_argument("--expires", help="admitted until this UTC time "
                           "(YYYY-MM-DDTHH:MMZ), or never")
    args = ap.parse_args()
    if args.cmd == "add":
        cmd_add(args)
    elif args.cmd == "list":
        cmd_list(args)
    elif args.cmd == "set":
        cmd_set(args)
    else:
        cmd_remove(args)


if __name__ == "__main__":
    main()
