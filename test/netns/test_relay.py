#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The relay end to end on the testbed, driven by oxpeer.py (an independent
OxTunnel v2 client written from doc/oxtunnel.md).

usage: test_relay.py SERVER CLIENT CASE
cases:
  protocol[-2w]  (-2w: two worker lcores) handshake and addresses; a key not on the allow-list
            refused;
            ping the relay's tunnel address through the TAP; KEEPALIVE->ACK;
            replayed datagrams dropped; a new source port keeps the session;
            a spoofed inner source dropped; client to client; the internet
            namespace through the TAP and the relay's NAT; DISCONNECT
  reload    SIGHUP: a key added is accepted without dropping sessions, a key
            removed ends its session, a broken file keeps the old list; an
            idle session is reaped
  addresses fixed IPv4 and IPv6 from the allow-list at start; a key with a
            fixed IPv4 added by SIGHUP gets it; a removed key's address is
            reused; a listed key whose pool address becomes another's fixed
            one moves; churn through more keys than --max-sessions
  keys      receiver indexes: many unconfirmed handshakes keep the current
            keys working; rekeys while two lcores seal to the client never
            send a packet under a wiped (zero) key
  replay    a captured initiation refused after a reload, a restart, and a
            kill -9 right after its handshake
  exit      the exit policy: the relay host's addresses refused but for
            opened ports, its tunnel address answers pings, link-local and
            loopback refused, the internet and operator prefixes; from the
            TAP, a client's address as source is refused
  exit-follow  the exit policy follows the host's addresses (added after
            start, a fleet's anycast one), private ranges refused by default
  hs-flood  well-formed initiations flooded: cookies, sessions unharmed
  bad-files truncated, unreadable, missing key and allow-list files
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820
HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "oxpeer.py")


class Keys:
    """Key files made with oxidize-client genkey/pubkey."""

    def __init__(self, client):
        self.client = client
        self.dir = tempfile.mkdtemp(prefix="oxrelay-")
        self.server_priv, self.server_pub = self.make("server")

    def make(self, name):
        path, pub = otb.keygen(self.client, self.dir, name)
        with open(path) as f:
            return f.read().strip(), pub

    def allow(self, lines):
        path = os.path.join(self.dir, "allow")
        with open(path + ".new", "w") as f:
            f.write("# test allow-list\n" + "".join(line + "\n" for line in lines))
        os.replace(path + ".new", path)
        return path

    def cleanup(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


def require_crypto():
    try:
        import cryptography  # noqa: F401
    except ImportError:
        nc.skip("python3 cryptography module missing (Debian python3-cryptography)")


def peer(tb, keys, client, priv, *args, timeout=60):
    return nc.oxpeer(tb, client, keys.server_pub, priv, *args, port=PORT, timeout=timeout)


LCORES = "0-1"


def start_server(tb, binary, keys, allow, extra=(), tag=None):
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--tap", "oxtun0",
                                 "--key", os.path.join(keys.dir, "server.key"),
                                 "--allow", allow, "--max-sessions", "65536"] + list(extra),
                    lcores=LCORES, tag=tag)
    srv.wait_up()
    nc.check("relay: public key %s" % keys.server_pub in srv.log,
             "server logs its public key")
    return srv


def stats(srv):
    return nc.telemetry(srv.prefix, "/oxidize/stats")["total"]


def nat(tb):
    """The relay namespace NATs tunnel traffic out of eth1, as the README says."""
    nc.masquerade(tb)
    tb.sysctl(tb.relay, "net.ipv4.ip_forward", "1")


def case_protocol(tb, binary, keys):
    a_priv, a_pub = keys.make("alice")
    b_priv, b_pub = keys.make("bob")
    m_priv, _ = keys.make("mallory")
    allow = keys.allow(["%s alice" % a_pub, "%s bob" % b_pub])
    nat(tb)
    srv = start_server(tb, binary, keys, allow)

    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "5")
    nc.check(r.get("handshake") and r["v4"].startswith("100.") and r["v4_prefix"] == 10 and
             r["mtu"] == 1420 and r["v6"].startswith("fd6f:7869:647a:"),
             "handshake gives tunnel addresses, prefix and MTU")
    nc.check(r.get("received") == 5, "ping of the relay's tunnel address through the TAP "
             "(%s/5)" % r.get("received"))
    a_v4 = r["v4"]
    r = peer(tb, keys, 0, a_priv, "handshake")
    nc.check(r.get("v4") == a_v4, "a client keeps its address across reconnects")
    r = peer(tb, keys, 0, m_priv, "handshake", timeout=30)
    nc.check(r.get("handshake") is False, "a key not on the allow-list gets no answer")
    r = peer(tb, keys, 0, a_priv, "keepalive")
    nc.check(r.get("ack") is True, "KEEPALIVE answered by an ACK with the same bytes")
    before = stats(srv)
    r = peer(tb, keys, 0, a_priv, "replay", "100.64.0.1")
    after = stats(srv)
    nc.check(r.get("first_reply") and r.get("replies_to_replays") == 0,
             "replayed datagrams get no answer")
    replays = after["drop_ox_replay"] - before["drop_ox_replay"]
    nc.check(replays == 5, "5 replays counted as replay (%d)" % replays)
    r = peer(tb, keys, 0, a_priv, "roam", "100.64.0.1")
    nc.check(r.get("before") == 2 and r.get("after") == 3,
             "a new source port keeps the session; replies follow it (%s, %s)" %
             (r.get("before"), r.get("after")))
    before = stats(srv)
    r = peer(tb, keys, 0, a_priv, "spoof", "100.64.0.1")
    after = stats(srv)
    nc.check(r.get("received") == 0 and after["drop_spoofed_src"] - before["drop_spoofed_src"] == 3,
             "spoofed inner sources dropped and counted (%d)" %
             (after["drop_spoofed_src"] - before["drop_spoofed_src"]))
    # Inner headers that lie: an IPv4 IHL of 4 (first byte 0x44), and an
    # IPv6 payload length of 65535, whose + 40 wraps a 16-bit sum to 39.
    v4 = bytes.fromhex("44000020000040004001") + bytes(10) + bytes(12)
    v6 = bytes.fromhex("60000000ffff1140") + bytes(32) + bytes(8)
    peer(tb, keys, 0, a_priv, "plain", v4.hex(), v6.hex())
    time.sleep(0.3)
    n = stats(srv)["drop_inner_malformed"] - after["drop_inner_malformed"]
    nc.check(n == 2, "an IHL below 5 and a wrapping IPv6 length are inner_malformed (%d)" % n)
    # Client to client: bob answers echo requests to his address.
    resp = tb.popen(tb.clients[1], [sys.executable, PEER, "--server", tb.relay_ip, "--port",
                                    str(PORT), "--server-pub", keys.server_pub, "--key", b_priv,
                                    "responder", "10"], stdout=subprocess.PIPE, text=True)
    first = json.loads(resp.stdout.readline())
    before = stats(srv)
    r = peer(tb, keys, 0, a_priv, "ping", first["v4"], "5")
    out = json.loads(resp.communicate(timeout=30)[0].strip().splitlines()[-1])
    after = stats(srv)
    nc.check(r.get("received") == 5 and out.get("answered") == 5,
             "client to client: 5 echoes through the relay (%s answered, %s back)" %
             (out.get("answered"), r.get("received")))
    nc.check(after["client_to_client"] - before["client_to_client"] == 10 and
             after["to_tap"] == before["to_tap"],
             "client-to-client packets never touched the TAP")
    r = peer(tb, keys, 0, a_priv, "ping", otb.INET_SERVICE_IP, "5")
    nc.check(r.get("received") == 5, "the internet namespace through the TAP and NAT (%s/5)"
             % r.get("received"))
    scrape_exporter(tb, srv)
    n0 = nc.telemetry(srv.prefix, "/oxidize/relay")["sessions"]
    peer(tb, keys, 0, a_priv, "disconnect")
    time.sleep(0.5)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    print("relay: %s" % rel)
    nc.check(rel["sessions"] == n0 - 1, "DISCONNECT ends the session (%d -> %d)" %
             (n0, rel["sessions"]))
    nc.check(rel["hs_drop_unknown_peer"] >= 1, "the refused key counted as unknown_peer")
    HANDOFFS[0] = stats(srv)["handoff"]
    check_stop(tb, srv)
    check_conn_log(srv.log, a_pub)


def check_conn_log(log, a_pub):
    """The connection log: one key=value line per event (handshake, roam,
    end with its duration and bytes, refusals summed), none per packet."""
    lines = [ln for ln in log.splitlines() if " conn event=" in ln]
    kv = [dict(f.split("=", 1) for f in ln.split(" conn ", 1)[1].split() if "=" in f)
          for ln in lines]
    mine = [d for d in kv if d.get("key") == a_pub]
    new = [d for d in mine if d["event"] == "handshake" and d["kind"] == "new"]
    nc.check(new and new[0]["peer"] == "alice" and new[0]["proto"] == "oxtunnel" and
             new[0]["endpoint"].startswith(otb.client_ip(0) + ":"),
             "conn log: alice's first handshake (peer, protocol, endpoint): %s" % new[:1])
    nc.check(any(d["event"] == "handshake" and d["kind"] == "rekey" for d in mine),
             "conn log: her rekeys")
    roam = [d for d in mine if d["event"] == "roam"]
    nc.check(roam and roam[0]["from"] != roam[0]["to"],
             "conn log: a roam, old and new endpoint: %s" % roam[:1])
    end = [d for d in mine if d["event"] == "end"]
    nc.check(end and end[-1]["why"] == "client" and float(end[-1]["duration_s"]) > 0 and
             int(end[-1]["rx_bytes"]) > 0 and int(end[-1]["tx_bytes"]) > 0,
             "conn log: the session's end, why, how long, bytes each way: %s" % end[-1:])
    refused = [d for d in kv if d["event"] == "refused"]
    nc.check(refused and "unknown_peer" in refused[0]["reasons"] and
             refused[0]["top"].startswith(otb.client_ip(0)),
             "conn log: refusals summed per interval, by reason and source: %s" % refused[:1])
    nc.check(len(lines) < 100, "conn log: %d lines for the whole run, none per packet"
             % len(lines))


HANDOFFS = [0]


def scrape_exporter(tb, srv):
    """The Prometheus exporter shows the relay: sessions, handshakes, drops."""
    import re
    text = nc.scrape_exporter(tb, srv.prefix)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(re.search(r"^oxidize_sessions %d(\.0)?$" % rel["sessions"], text, re.M) is not None,
             "exporter: sessions gauge (%d)" % rel["sessions"])
    nc.check(re.search(r'^oxidize_handshakes_total\{kind="new"\} [1-9]', text, re.M) and
             re.search(r'^oxidize_handshake_drops_total\{reason="unknown_peer"\} [1-9]', text,
                       re.M), "exporter: handshakes and handshake drops by reason")
    nc.check(re.search(r'^oxidize_relay_packets_total\{lcore="all",what="client_to_client"\} '
                       r'[1-9]', text, re.M) and
             re.search(r'^oxidize_drops_total\{lcore="all",reason="ox_replay"\} [1-9]', text,
                       re.M), "exporter: relay counters and protocol drop reasons")


def case_reload(tb, binary, keys):
    a_priv, a_pub = keys.make("alice")
    b_priv, b_pub = keys.make("bob")
    allow = keys.allow(["%s alice" % a_pub])
    srv = start_server(tb, binary, keys, allow, ["--idle-timeout", "10"])
    r = peer(tb, keys, 0, b_priv, "handshake", timeout=30)
    nc.check(r.get("handshake") is False, "bob is not listed yet")
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "2")
    nc.check(r.get("received") == 2, "alice works")
    keys.allow(["%s alice" % a_pub, "%s bob" % b_pub])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    r = peer(tb, keys, 0, b_priv, "ping", "100.64.0.1", "2")
    nc.check(r.get("received") == 2, "after SIGHUP bob is accepted")
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(rel["sessions"] == 2 and rel["allowlist_reloads"] == 1,
             "both sessions live after the reload (%d)" % rel["sessions"])
    with open(allow, "w") as f:
        f.write("%s alice\nnot-a-key\n" % a_pub)
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(rel["allowlist_reload_errors"] == 1 and rel["sessions"] == 2 and
             rel["allowlist_keys"] == 2, "a broken allow-list keeps the previous one")
    nc.check("line 2: 'not-a-key' is not a base64 public key" in srv.log,
             "the broken line is named in the log")
    keys.allow(["%s alice" % a_pub])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(rel["sessions"] == 1 and rel["allowlist_keys"] == 1,
             "a key taken off the list loses its session (%d left)" % rel["sessions"])
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "2")
    nc.check(r.get("received") == 2, "alice still works")
    # Nothing more from alice: the idle timeout (10 s here) ends it.
    time.sleep(12)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(rel["sessions"] == 0 and rel["sessions_reaped"] == 1,
             "an idle session is reaped (%d left, %d reaped)"
             % (rel["sessions"], rel["sessions_reaped"]))
    check_stop(tb, srv)


def case_addresses(tb, binary, keys):
    a_priv, a_pub = keys.make("alice")
    b_priv, b_pub = keys.make("bob")
    c_priv, c_pub = keys.make("carol")
    d_priv, d_pub = keys.make("dave")
    e_priv, e_pub = keys.make("erin")
    alice = "%s alice 100.64.0.50 fd6f:7869:647a::a11c" % a_pub
    bob = "%s bob fd6f:7869:647a::b0b" % b_pub
    allow = keys.allow([alice, bob, "%s carol" % c_pub])
    srv = start_server(tb, binary, keys, allow, ["--max-sessions", "4"])
    r = peer(tb, keys, 0, a_priv, "handshake")
    nc.check(r.get("v4") == "100.64.0.50" and r.get("v6") == "fd6f:7869:647a::a11c",
             "fixed IPv4 and IPv6 at start (%s, %s)" % (r.get("v4"), r.get("v6")))
    r = peer(tb, keys, 0, b_priv, "handshake")
    nc.check(r.get("v6") == "fd6f:7869:647a::b0b" and r.get("v4", "").startswith("100."),
             "a fixed IPv6 alone: it, and an IPv4 from the pool (%s, %s)"
             % (r.get("v4"), r.get("v6")))
    r = peer(tb, keys, 0, c_priv, "ping", "100.64.0.1", "1")
    carol_v4 = r.get("v4")
    nc.check(r.get("received") == 1, "carol gets a pool address (%s)" % carol_v4)

    # dave joins with a fixed IPv4; erin takes carol's pool address as her
    # fixed one while carol stays listed: carol's session ends, she moves.
    keys.allow([alice, bob, "%s carol" % c_pub, "%s dave 100.64.0.60" % d_pub])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    r = peer(tb, keys, 0, d_priv, "handshake")
    nc.check(r.get("v4") == "100.64.0.60", "a key added by SIGHUP gets its fixed IPv4 (%s)"
             % r.get("v4"))
    keys.allow([alice, bob, "%s carol" % c_pub, "%s erin %s" % (e_pub, carol_v4)])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    nc.check("ended: its tunnel addresses changed" in srv.log,
             "carol's session ended when her address became erin's")
    r = peer(tb, keys, 0, e_priv, "ping", "100.64.0.1", "1")
    nc.check(r.get("v4") == carol_v4 and r.get("received") == 1,
             "erin has carol's former address, and it works (%s)" % r.get("v4"))
    r = peer(tb, keys, 1, c_priv, "ping", "100.64.0.1", "1")
    nc.check(r.get("received") == 1 and r.get("v4") not in (carol_v4, None),
             "carol reconnects with another address (%s)" % r.get("v4"))
    # carol leaves: her address goes back to the pool for a fixed line.
    carol_v4 = r.get("v4")
    keys.allow([alice, bob, "%s dave %s" % (d_pub, carol_v4)])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    r = peer(tb, keys, 0, d_priv, "handshake")
    nc.check(r.get("v4") == carol_v4, "a removed key's address is reused (%s)" % r.get("v4"))

    # Churn: more distinct keys than --max-sessions (4), two listed at a time.
    ok = 0
    for i in range(10):
        k_priv, k_pub = keys.make("churn%d" % i)
        keys.allow([alice, "%s churn%d" % (k_pub, i)])
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        r = peer(tb, keys, i % 2, k_priv, "handshake", timeout=30)
        ok += bool(r.get("handshake") and r.get("v4"))
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    nc.check(ok == 10, "10 keys through a relay of 4 sessions, each with an address (%d)" % ok)
    nc.check(rel["hs_drop_no_address"] == 0, "no client was refused an address")
    r = peer(tb, keys, 0, a_priv, "handshake")
    nc.check(r.get("v4") == "100.64.0.50", "alice kept her fixed address throughout")
    check_stop(tb, srv)


def case_keys(tb, binary, keys):
    a_priv, a_pub = keys.make("alice")
    allow = keys.allow(["%s alice 100.64.0.77" % a_pub])
    srv = start_server(tb, binary, keys, allow)
    r = peer(tb, keys, 0, a_priv, "unconfirmed", "6", "100.64.0.1")
    nc.check(r.get("answered") == 6, "six more handshakes answered (%s)" % r.get("answered"))
    nc.check(r.get("received") == 3, "after 6 unconfirmed handshakes the confirmed keys "
             "still work both ways (%s/3)" % r.get("received"))
    # The relay's kernel pings alice through the TAP: sealed by whichever
    # lcore polls the TAP, while alice rekeys on her session's owner.
    ping = tb.popen(tb.relay, ["ping", "-q", "-i", "0.002", "-c", "3000", "-W", "1",
                               "100.64.0.77"], stdout=subprocess.PIPE, text=True)
    try:
        r = peer(tb, keys, 0, a_priv, "rekeys", "15", "1", timeout=90)
    finally:
        ping.kill()
        ping.wait()
    nc.check(r.get("rekeys", 0) >= 12, "alice rekeyed %s times" % r.get("rekeys"))
    nc.check(r.get("opened", 0) > 300, "traffic flowed through the rekeys (%s packets)"
             % r.get("opened"))
    nc.check(r.get("zero_key") == 0, "no packet sealed under a zero key (%s)"
             % r.get("zero_key"))
    nc.check(r.get("unknown") == 0, "every packet opened under one of alice's keys "
             "(%s did not)" % r.get("unknown"))
    tot = stats(srv)
    nc.check(tot["drop_event_queue_full"] == 0, "no retired index lost")
    check_stop(tb, srv)


# A UDP echo on port 8080 of the address in argv[1] (0.0.0.0: every one).
UDP_ECHO = ("import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
            "s.bind((sys.argv[1],8080));s.settimeout(60)\n"
            "while True:\n d,a=s.recvfrom(2048);s.sendto(d,a)")


def case_exit(tb, binary, keys):
    a_priv, a_pub = keys.make("alice")
    allow = keys.allow(["%s alice 100.64.0.80" % a_pub])
    # A service on every address of the relay host, and one on the internet.
    echo_r = tb.popen(tb.relay, [sys.executable, "-c", UDP_ECHO, "0.0.0.0"])
    echo_i = tb.popen(tb.inet, [sys.executable, "-c", UDP_ECHO, otb.INET_SERVICE_IP])
    nat(tb)
    try:
        srv = start_server(tb, binary, keys, allow)
        nc.check("exit policy:" in srv.log, "the server logs its exit policy")

        def refused():
            return stats(srv)["drop_exit_refused"]

        r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "2")
        nc.check(r.get("received") == 2, "the relay's tunnel address answers pings")
        r = peer(tb, keys, 0, a_priv, "udp", otb.INET_SERVICE_IP, "8080")
        nc.check(r.get("answered") is True, "a service on the internet is reached")
        n0 = refused()
        for dst, what in (("100.64.0.1", "the relay's tunnel address"),
                          (tb.relay_ip, "the relay's LAN address"),
                          (otb.RELAY_WAN_IP, "the relay's uplink address")):
            r = peer(tb, keys, 0, a_priv, "udp", dst, "8080")
            nc.check(r.get("answered") is False, "UDP 8080 on %s refused" % what)
        r = peer(tb, keys, 0, a_priv, "ping", tb.relay_ip, "1")
        nc.check(r.get("received") == 0, "no ping of the relay's LAN address")
        for dst in ("169.254.169.254", "127.0.0.1", "224.0.0.1", "255.255.255.255"):
            peer(tb, keys, 0, a_priv, "udp", dst, "80")
        nc.check(refused() - n0 == 8, "each refused packet counted as exit_refused (%d of 8)"
                 % (refused() - n0))
        check_stop(tb, srv)

        # The operator opens a port of the relay and closes part of the internet,
        # with an exception inside it.
        srv = start_server(tb, binary, keys, allow, [
            "--exit-open", "udp/8080", "--exit-deny", "198.19.0.0/16,2001:db8::/32",
            "--exit-allow", "198.19.0.1/32"])
        r = peer(tb, keys, 0, a_priv, "udp", "100.64.0.1", "8080")
        nc.check(r.get("answered") is True, "--exit-open udp/8080 opens it on the tunnel address")
        r = peer(tb, keys, 0, a_priv, "udp", otb.INET_SERVICE_IP, "8080")
        nc.check(r.get("answered") is True, "--exit-allow of a /32 inside a denied /16 wins")
        n0 = refused()
        peer(tb, keys, 0, a_priv, "udp", "198.19.0.2", "8080")
        nc.check(refused() - n0 == 1, "--exit-deny refuses the rest of the /16")
        # From the kernel's side, a packet to alice posing as another client.
        tb.run(tb.relay, [sys.executable, "-c",
                          "import socket,struct\n"
                          "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\n"
                          "b=b'spoof'\n"
                          "u=struct.pack('!HHHH',5000,6000,8+len(b),0)+b\n"
                          "h=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(u),0,0,64,17,0,"
                          "socket.inet_aton('100.64.0.99'),socket.inet_aton('100.64.0.80'))\n"
                          "s.sendto(h+u,('100.64.0.80',0))"])
        time.sleep(0.3)
        nc.check(stats(srv)["drop_tap_spoofed_src"] == 1,
                 "from the TAP, a client's address as source is refused")
        check_stop(tb, srv)
        bad = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--tap", "oxtun0",
                                     "--key", os.path.join(keys.dir, "server.key"),
                                     "--allow", allow, "--exit-deny", "10.0.0.0/33"],
                        lcores=LCORES)
        rc = bad.wait_exit()
        nc.check(rc != 0 and "--exit-deny: '10.0.0.0/33': not understood" in bad.log,
                 "a bad prefix stops the start with the item named")
    finally:
        for p in (echo_r, echo_i):
            p.kill()
            p.wait()


ANYCAST_PY = os.path.join(HERE, "..", "..", "usertools", "oxidize-anycast.py")


def case_exit_follow(tb, binary, keys):
    """The exit policy follows the relay host's addresses: a listener on
    the host's 0.0.0.0 is refused through an address added after start and
    through a fleet's anycast address (--exit-host, before and after
    oxidize-anycast.py puts it on the host), and reached again (on the
    internet namespace that also has it) once the address is gone from the
    host. The private ranges, AWS's IPv6 metadata address and fc00::/7 are
    refused by default."""
    a_priv, a_pub = keys.make("alice")
    allow = keys.allow(["%s alice 100.64.0.81" % a_pub])
    new, anycast = "198.19.0.77", "198.19.0.78"
    procs = [tb.popen(tb.relay, [sys.executable, "-c", UDP_ECHO, "0.0.0.0"])]
    for a in (new, anycast):
        tb.ip(tb.inet, "addr add %s/32 dev lo" % a)
        procs.append(tb.popen(tb.inet, [sys.executable, "-c", UDP_ECHO, a]))
    nat(tb)
    srv = None
    try:
        srv = start_server(tb, binary, keys, allow, ["--exit-host", anycast + "/32"])

        def refused():
            return stats(srv)["drop_exit_refused"]

        def udp(dst, port="8080"):
            return peer(tb, keys, 0, a_priv, "udp", dst, port).get("answered")

        nc.check(udp(new) is True, "%s (only the internet's) is reached" % new)
        n0 = refused()
        nc.check(udp(anycast) is False and refused() == n0 + 1,
                 "the fleet's anycast address (--exit-host), not on this host yet: refused")

        tb.ip(tb.relay, "addr add %s/32 dev lo" % new)
        time.sleep(1.0)
        n0 = refused()
        nc.check(udp(new) is False and refused() == n0 + 1,
                 "an address added to the relay host after start: refused within 1 s "
                 "(exit_refused +%d)" % (refused() - n0))

        ann = tb.popen(tb.relay, [sys.executable, ANYCAST_PY, "--prefix", srv.prefix,
                                  "--address", anycast + "/32", "--interval", "0.2"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(ann)
        end = time.time() + 10
        while time.time() < end and anycast not in tb.run(tb.relay, ["ip", "-4", "addr"]).stdout:
            time.sleep(0.2)
        on_host = anycast in tb.run(tb.relay, ["ip", "-4", "addr"]).stdout
        n0 = refused()
        nc.check(on_host and udp(anycast) is False and refused() == n0 + 1,
                 "the anycast address put on the host by oxidize-anycast.py: refused")

        tb.ip(tb.relay, "addr del %s/32 dev lo" % new)
        time.sleep(1.0)
        n0 = refused()
        nc.check(udp(new) is True and refused() == n0,
                 "the address taken off the relay host: reached again on the internet")

        n0 = refused()
        for dst in ("10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00:ec2::254", "fd12:3456::1"):
            udp(dst, "80")
        nc.check(refused() - n0 == 5, "10/8, 172.16/12, 192.168/16, fd00:ec2::254 and "
                 "fc00::/7 refused by default (%d of 5)" % (refused() - n0))
        rel = nc.telemetry(srv.prefix, "/oxidize/relay")
        nc.check(rel["exit_policy_rebuilds"] >= 3 and rel["exit_policy_errors"] == 0,
                 "the policy was rebuilt %d times, no error" % rel["exit_policy_rebuilds"])
        ann.terminate()
        ann.wait(10)
        check_stop(tb, srv)
        srv = None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if srv is not None:
            srv.stop()


def case_replay(tb, binary, keys):
    """A captured initiation is refused after its key left the allow-list
    and came back, and after a restart (--state keeps the timestamps)."""
    a_priv, a_pub = keys.make("alice")
    b_priv, b_pub = keys.make("bob")
    state = os.path.join(keys.dir, "handshakes.state")
    allow = keys.allow(["%s alice" % a_pub, "%s bob" % b_pub])
    srv = start_server(tb, binary, keys, allow, ["--state", state])
    init = peer(tb, keys, 0, a_priv, "handshake").get("init")
    nc.check(init is not None, "an initiation captured")

    def replay(what, msg=None):
        n0 = nc.telemetry(srv.prefix, "/oxidize/relay")["hs_drop_stale_init"]
        r = peer(tb, keys, 1, a_priv, "replay-init", msg or init)
        n1 = nc.telemetry(srv.prefix, "/oxidize/relay")["hs_drop_stale_init"]
        nc.check(r.get("answered") is False and n1 == n0 + 1,
                 "%s: the captured initiation is refused as stale" % what)

    replay("at once")
    keys.allow(["%s bob" % b_pub])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    keys.allow(["%s alice" % a_pub, "%s bob" % b_pub])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    replay("after alice left the allow-list and came back")
    check_stop(tb, srv)
    srv = start_server(tb, binary, keys, allow, ["--state", state])
    replay("after a restart")
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "1")
    nc.check(r.get("received") == 1, "alice's fresh handshake still works")
    # A handshake, then kill -9 at once: its timestamp reached the file
    # before the response left, so the captured initiation stays refused.
    init_b = peer(tb, keys, 0, b_priv, "handshake").get("init")
    nc.check(init_b is not None, "bob's initiation captured")
    srv.stop(sig=9)
    srv = start_server(tb, binary, keys, allow, ["--state", state], tag=tb.tag + "k")
    replay("after a handshake and kill -9 at once", init_b)
    check_stop(tb, srv)
    with open(state) as f:
        lines = f.read().split("\n")
    nc.check(any(line.startswith(a_pub + " ") for line in lines) and
             oct(os.stat(state).st_mode & 0o777) == "0o600",
             "the state file holds alice's timestamp, mode 600")


def case_hs_flood(tb, binary, keys):
    """A flood of well-formed initiations (one valid INIT sent again and
    again): the cookie path switches on, established sessions keep working,
    a new client still gets in (through a cookie), and what a refused
    initiation costs the control thread is reported."""
    a_priv, a_pub = keys.make("alice")
    c_priv, c_pub = keys.make("carol")
    f_priv, f_pub = keys.make("flooder")
    allow = keys.allow(["%s alice" % a_pub, "%s carol" % c_pub, "%s flooder" % f_pub])
    srv = start_server(tb, binary, keys, allow, ["--hs-load-pps", "200"])
    # The pool holds what the handshake queues (the engines' one of
    # --hs-queue 4096, the done queue's 4096, three engines' INIT in hand)
    # and the two lcores' inboxes (4096 each) can park, on top of the rings
    # and bursts.
    nc.check("of them for what the handshake queues and the lcores' inboxes can hold" in srv.log
             and " 16387 of them" in srv.log, "the mbuf pool counts the handshake queues and "
             "the inboxes")
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "3")
    nc.check(r.get("received") == 3, "alice is in before the flood")
    flood = tb.popen(tb.clients[1], [sys.executable, PEER, "--server", tb.relay_ip, "--port",
                                     str(PORT), "--server-pub", keys.server_pub, "--key", f_priv,
                                     "flood", "6"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "20")
    nc.check(r.get("received") == 20, "during the flood alice's session loses nothing (%s/20)"
             % r.get("received"))
    r = peer(tb, keys, 0, c_priv, "ping", "100.64.0.1", "3")
    nc.check(r.get("handshake") and r.get("cookies", 0) >= 1 and r.get("received") == 3,
             "a new client under load gets a cookie, retries with mac2 and gets in "
             "(%s cookie(s))" % r.get("cookies"))
    out = json.loads(flood.communicate(timeout=30)[0])
    time.sleep(0.5)
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    tot = stats(srv)
    print("flood: %s\nrelay: %s" % (out, rel))
    queued = tot["hs_queued"] + tot["drop_hs_queue_full"]
    nc.check(rel["cookies_sent"] > 0 and rel["under_load_polls"] > 0,
             "the flood switched the cookie path on (%d cookies)" % rel["cookies_sent"])
    nc.check(rel["handshakes"] <= 3 + 2 + 20 * 8,
             "Diffie-Hellman spent on at most a rate-limited handful (%d handshakes for %d "
             "initiations sent, %d queued)" % (rel["handshakes"], out["sent"], queued))
    print("control thread: %d cycles per refused initiation, %d per accepted" %
          (rel["hs_cycles_per_refused"], rel["hs_cycles_per_accepted"]))
    nc.check(rel["hs_cycles_per_refused"] * 5 < rel["hs_cycles_per_accepted"],
             "a refused initiation costs under a fifth of an accepted one (%d vs %d cycles)"
             % (rel["hs_cycles_per_refused"], rel["hs_cycles_per_accepted"]))
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "3")
    nc.check(r.get("received") == 3, "after the flood alice reconnects at once")
    check_stop(tb, srv)


def case_bad_files(tb, binary, keys):
    """Broken key and allow-list files: a clear error and exit status 1 at
    once, never a hang or a server that runs without its list. An
    allow-list with preshared keys that others can read is refused (at start
    and at a reload); OxTunnel is refused for a psk= line, logged once."""
    a_priv, a_pub = keys.make("alice")
    good_allow = keys.allow(["%s alice" % a_pub])
    key = os.path.join(keys.dir, "server.key")
    with open(key) as f:
        key_text = f.read()
    bad = os.path.join(keys.dir, "bad")

    def attempt(name, key_path, allow_path, want):
        srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--key", key_path,
                                     "--allow", allow_path, "--max-sessions", "1024"],
                        tag=tb.tag + name[:3])
        t0 = time.time()
        rc = srv.wait_exit(timeout=30)
        nc.check(rc == 1 and want in srv.log, "%s: exit 1 in %.1f s with '%s'" %
                 (name, time.time() - t0, want))
        if want not in srv.log:
            print(srv.log)
        nc.check(not tb.xdp_attached(tb.relay, "eth0"), "%s: nothing left on eth0" % name)

    def write(text, mode=0o600):
        with open(bad, "w") as f:
            f.write(text)
        os.chmod(bad, mode)
        return bad

    attempt("truncated key", write(key_text[:20]), good_allow,
            "expected one base64 key of 44 characters, found 20 bytes")
    attempt("key readable by others", write(key_text, 0o644), good_allow,
            "is accessible to others (mode 644); chmod 600 it")
    attempt("key not base64", write("!" * 44), good_allow, "not a base64 key")
    attempt("missing key", os.path.join(keys.dir, "nope.key"), good_allow,
            "cannot open key file")
    attempt("missing allow-list", key, os.path.join(keys.dir, "nope"),
            "cannot open allow-list")
    attempt("allow-list a directory", key, keys.dir, "is not a regular file")
    attempt("truncated allow-list", key, write("%s ali\n%s" % (a_pub, a_pub[:30])),
            "line 2: '%s' is not a base64 public key" % a_pub[:30])
    attempt("empty key file", write(""), good_allow, "found 0 bytes")

    # Preshared keys at rest: a list with psk= that others can read is
    # refused at start, and at a reload (the previous list stays).
    c_priv, c_pub = keys.make("carol")
    psk = base64.b64encode(os.urandom(32)).decode()
    psk_line = "%s carol psk=%s" % (c_pub, psk)
    attempt("psk allow-list readable by others", key,
            write("%s alice\n%s\n" % (a_pub, psk_line), 0o644),
            "holds preshared keys (psk=) and is accessible to others (mode 644); chmod 600 it")
    allow = write("%s alice\n%s\n" % (a_pub, psk_line), 0o600)
    srv = start_server(tb, binary, keys, allow)
    # OxTunnel for a line with a preshared key: refused, counted, said once.
    # oxpeer tries for 5 s, a fresh initiation each second.
    r = peer(tb, keys, 0, c_priv, "ping", "100.64.0.1", "1", timeout=30)
    nc.check(not r.get("handshake") and r.get("received", 0) == 0,
             "an OxTunnel handshake for a psk= line gets no answer")
    rel = nc.telemetry(srv.prefix, "/oxidize/relay")
    said = srv.log.count("OxTunnel handshake refused, the line has a preshared key")
    nc.check(rel["hs_drop_psk_wireguard_only"] >= 2 and said == 1,
             "counted as psk_wireguard_only (%d), logged once for the key (%d)"
             % (rel["hs_drop_psk_wireguard_only"], said))
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "1", timeout=30)
    nc.check(r.get("received") == 1, "alice (no psk=) is in")
    os.chmod(allow, 0o644)
    srv.proc.send_signal(signal.SIGHUP)
    end = time.time() + 5
    while time.time() < end and "allow-list not reloaded" not in srv.log:
        time.sleep(0.1)
    nc.check("allow-list not reloaded, the previous one stays" in srv.log and
             "accessible to others (mode 644)" in srv.log,
             "SIGHUP with the psk list made 0644: refused, the previous list stays")
    r = peer(tb, keys, 0, a_priv, "ping", "100.64.0.1", "1", timeout=30)
    nc.check(r.get("received") == 1, "alice still gets in after the refused reload")
    check_stop(tb, srv)


def udp6_csum_errors(tb, ns):
    out = tb.run(ns, ["cat", "/proc/net/snmp6"]).stdout
    return int(re.search(r"^Udp6InCsumErrors\s+(\d+)", out, re.M).group(1))


def c2c_v6(tb, keys, srv, server, a_priv, b_priv, how):
    """Alice pings Bob through the relay, both over IPv6: each DATA the
    relay sends them has a UDP checksum their kernels verify."""
    errs = [udp6_csum_errors(tb, ns) for ns in tb.clients]
    before = stats(srv)
    resp = tb.popen(tb.clients[1], [sys.executable, PEER, "--server", server, "--port",
                                    str(PORT), "--server-pub", keys.server_pub, "--key", b_priv,
                                    "responder", "10"], stdout=subprocess.PIPE, text=True)
    first = json.loads(resp.stdout.readline())
    r = tb.run(tb.clients[0], [sys.executable, PEER, "--server", server, "--port", str(PORT),
                               "--server-pub", keys.server_pub, "--key", a_priv, "ping",
                               first["v4"], "5"], timeout=60)
    r = json.loads(r.stdout.strip().splitlines()[-1])
    out = json.loads(resp.communicate(timeout=30)[0].strip().splitlines()[-1])
    after = stats(srv)
    nc.check(r.get("handshake") and r.get("received") == 5 and out.get("answered") == 5,
             "IPv6 outer, UDP checksum %s: 5 echoes client to client (%s answered, %s back)"
             % (how, out.get("answered"), r.get("received")))
    nc.check(after["client_to_client"] - before["client_to_client"] == 10,
             "relayed client to client (%d)" % (after["client_to_client"] -
                                                before["client_to_client"]))
    grown = [udp6_csum_errors(tb, ns) - e for ns, e in zip(tb.clients, errs)]
    nc.check(grown == [0, 0], "no UDP checksum errors at the clients (%s)" % grown)


def case_ipv6_outer(tb, binary, keys):
    """Clients reach the relay over IPv6 (2001:2::/48, the benchmarking
    range), where a UDP checksum is mandatory: on FLASH the relay sums it
    (net_af_xdp has no checksum offload), on a port that offers
    RTE_ETH_TX_OFFLOAD_UDP_CKSUM (net_tap here) the port does."""
    a_priv, a_pub = keys.make("alice")
    b_priv, b_pub = keys.make("bob")
    allow = keys.allow(["%s alice" % a_pub, "%s bob" % b_pub])
    tb.run(tb.relay, ["ip", "addr", "add", "2001:2::1/64", "dev", "eth0", "nodad"])
    for i, ns in enumerate(tb.clients):
        tb.run(ns, ["ip", "addr", "add", "2001:2::%x/64" % (0x10 + i), "dev", "eth0", "nodad"])
    srv = start_server(tb, binary, keys, allow)
    nc.check("UDP checksum on send: software" in srv.log,
             "the AF_XDP ports sum UDP checksums in software")
    c2c_v6(tb, keys, srv, "2001:2::1", a_priv, b_priv, "in software")
    check_stop(tb, srv)

    # The same relay on a net_tap port behind the relay namespace's kernel,
    # which forwards between the clients' link and 2001:2:2::/64.
    srv = nc.Server(tb, binary, ["--port", str(PORT), "--key",
                                 os.path.join(keys.dir, "server.key"), "--allow", allow],
                    eal_extra=["--vdev", "net_tap0,iface=oxtap0,mac=02:00:00:00:02:01"],
                    lcores=LCORES, tag=tb.tag + "t")
    srv.wait_up()
    nc.check(re.search(r"port 0: .*UDP checksum on send: offloaded", srv.log) is not None,
             "the net_tap port takes the UDP checksum")
    tb.sysctl(tb.relay, "net.ipv6.conf.all.forwarding", "1")
    tb.run(tb.relay, ["ip", "addr", "add", "2001:2:2::fe/64", "dev", "oxtap0", "nodad"])
    tb.run(tb.relay, ["ip", "link", "set", "oxtap0", "up"])
    tb.run(tb.relay, ["ip", "-6", "neigh", "replace", "2001:2:2::1", "lladdr",
                      "02:00:00:00:02:01", "dev", "oxtap0", "nud", "permanent"])
    for ns in tb.clients:
        tb.run(ns, ["ip", "-6", "route", "add", "2001:2:2::/64", "via", "2001:2::1"])
    c2c_v6(tb, keys, srv, "2001:2:2::1", a_priv, b_priv, "offloaded")
    check_stop(tb, srv)


def check_stop(tb, srv):
    rc = srv.stop()
    print(srv.log)
    nc.check(rc == 0, "server exited 0")
    nc.check("all mbufs back in the pool" in srv.log, "every mbuf back in the pool")


def main():
    binary, client, case = sys.argv[1], sys.argv[2], sys.argv[3]
    nc.require_host()
    require_crypto()
    keys = Keys(client)
    tb = nc.testbed(clients=2, queues=2)
    try:
        if case == "protocol":
            case_protocol(tb, binary, keys)
        elif case == "protocol-2w":
            # Two workers, one per queue (sharing the second core): sessions
            # have owners, DATA from a moved client is handed over.
            global LCORES
            LCORES = "0@0,1@1,2@1"
            case_protocol(tb, binary, keys)
            print("handoffs: %d" % HANDOFFS[0])
        elif case == "keys":
            LCORES = "0@0,1@1,2@1"
            case_keys(tb, binary, keys)
        elif case == "replay":
            case_replay(tb, binary, keys)
        elif case == "exit":
            case_exit(tb, binary, keys)
        elif case == "exit-follow":
            case_exit_follow(tb, binary, keys)
        elif case == "addresses":
            case_addresses(tb, binary, keys)
        elif case == "reload":
            case_reload(tb, binary, keys)
        elif case == "hs-flood":
            case_hs_flood(tb, binary, keys)
        elif case == "ipv6-outer":
            case_ipv6_outer(tb, binary, keys)
        elif case == "bad-files":
            case_bad_files(tb, binary, keys)
        else:
            nc.fail("unknown case " + case)
    finally:
        tb.down()
        keys.cleanup()


if __name__ == "__main__":
    main()
