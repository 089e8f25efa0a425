#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""oxidize-server on the namespace testbed.

  client0 ns --- switch ns --- relay ns: eth0 (N queues, ox_steer, FLASH) <- oxidize-server
                                         oxtap0 (net_tap case; kernel routes 198.18.2.0/24 to it)

usage: test_server.py SERVER_BIN CASE [FOREIGN_XDP_OBJ]
cases:
  echo-1q   OXPI echo on a 1-queue FLASH setup
  echo-2q   OXPI echo on 2 queues from several flows, both queues used; TCP, ICMP and
            UDP to another port still reach the relay's kernel (steering); telemetry;
            clean shutdown: mbufs back, XDP program gone
  kill9     kill -9 leaves a stale ox_steer; a restart replaces it and works
  foreign   someone else's XDP program is refused, replaced only with --xdp-replace
  tap       the same binary echoing on a non-XDP PMD (net_tap)
  v6-vlan   OXPI over IPv6, and over IPv4 behind an 802.1Q tag, both steered and echoed
  exit-tap  the exit TAP: kernel side addressed from the pools, NOARP, MTU 1420; what the
            kernel routes into it without a session is counted; gone after stop
  partial   FLASH on queue 0 only of a 2-queue interface: datagrams RSS puts on queue 1
            (no socket there) reach the kernel instead of being dropped
  errors    each startup error gives its one-line message with the fix
"""

import re
import shutil
import subprocess
import sys
import time

import netns_common as nc
import oxidize_testbed as otb

PORT = 51820


def probe(tb, count=300, flows=8, client=0, dst=None):
    r = otb.oxpi_probe(tb, client, dst or tb.relay_ip, PORT, flows=flows, count=count)
    print("probe: %s" % r)
    return r


def check_clean_stop(tb, srv):
    rc = srv.stop()
    print(srv.log)
    nc.check(rc == 0, "server exited 0 on SIGTERM")
    nc.check("all mbufs back in the pool" in srv.log, "every mbuf back in the pool")
    nc.check("XDP program detached from eth0" in srv.log, "server reports XDP detached")
    nc.check(not tb.xdp_attached(tb.relay, "eth0"), "no XDP program left on eth0")


def case_echo(tb, binary, queues):
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT)])
    srv.wait_up()
    nc.check(("up on AF_XDP: eth0, %d queue(s)" % queues) in srv.log,
             "server up on AF_XDP with %d queue(s)" % queues)
    r = probe(tb, count=400, flows=16)
    nc.check(r["received"] == r["sent"] and r["bad"] == 0,
             "every OXPI probe answered with its OXPO (%d/%d)" % (r["received"], r["sent"]))
    ports = nc.telemetry(srv.prefix, "/oxidize/ports")
    per_q = {v["queue"]: v["rx_pkts"] for v in ports.values()}
    print("per-queue rx: %s" % per_q)
    nc.check(len(per_q) == queues, "telemetry lists %d FLASH port(s)" % queues)
    nc.check(all(n > 0 for n in per_q.values()), "every queue carried probes: %s" % per_q)
    nc.check(all(v["umem"] in ("shared", "per-queue") and v["xdp"] == "native"
                 for v in ports.values()), "ports report UMEM mode and native XDP")
    stats = nc.telemetry(srv.prefix, "/oxidize/stats")
    tot = stats["total"]
    nc.check(tot["echo"] == r["received"] and tot["tx_pkts"] == r["received"],
             "telemetry totals: echo %d tx %d" % (tot["echo"], tot["tx_pkts"]))
    nc.check(any(k.startswith("lcore_") for k in stats), "telemetry has per-lcore counters")
    nc.check(tot["busy_cycles_per_pkt"] > 0, "busy cycles per packet reported")
    for what in ("gaps", "preempted"):
        g = [tot.get("loop_%s_over_%s" % (what, t), -1) for t in ("100us", "1ms", "10ms")]
        nc.check(min(g) >= 0 and g[0] >= g[1] >= g[2],
                 "loop %s reported, each threshold counting those over the next (%s)"
                 % (what, g))
    if queues == 2:
        dpdk_tel = shutil.which("dpdk-telemetry.py") or "/opt/oxidize/dpdk/bin/dpdk-telemetry.py"
        out = subprocess.run([dpdk_tel, "-f", srv.prefix], input="/oxidize/stats\n",
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=30).stdout
        nc.check('"/oxidize/stats": {"total": {"rx_pkts": ' in out,
                 "DPDK's dpdk-telemetry.py reads /oxidize/stats")
        scrape_exporter(tb, srv, r["received"])
        steering_left_alone(tb)
        # Garbage to the port is counted, not echoed.
        otb.udp_burst(tb, 0, tb.relay_ip, PORT, flows=2, per_flow=5, payload=b"garbage!")
        time.sleep(0.3)
        tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
        nc.check(tot["drop_not_oxtunnel"] == 10, "10 non-OxTunnel datagrams counted as "
                 "not_oxtunnel (%d)" % tot["drop_not_oxtunnel"])
    check_clean_stop(tb, srv)


def scrape_exporter(tb, srv, echoed):
    """usertools/oxidize-exporter.py serves the telemetry as Prometheus text."""
    text = nc.scrape_exporter(tb, srv.prefix)
    nc.check("oxidize_up 1" in text, "exporter: server reachable")
    nc.check(re.search(r'^oxidize_echo_total\{lcore="all"\} %d(\.0)?$' % echoed, text, re.M)
             is not None, "exporter: echo total %d" % echoed)
    nc.check(re.search(r'^oxidize_drops_total\{lcore="all",reason="bad_udp_csum"\} 0(\.0)?$', text,
                       re.M) is not None, "exporter: drop reasons labelled")
    nc.check(len(re.findall(r'^oxidize_port_rx_packets_total\{.*\bport="', text, re.M)) == 2,
             "exporter: both FLASH ports")
    nc.check(re.search(r'^oxidize_xdp_frames_total\{action="redirect"\} [1-9]', text, re.M)
             is not None, "exporter: ox_steer counters")


def steering_left_alone(tb):
    """While FLASH runs: ICMP, TCP and UDP to another port reach the kernel."""
    r = tb.run(tb.clients[0], ["ping", "-c", "3", "-i", "0.2", "-W", "1", tb.relay_ip],
               check=False)
    nc.check(r.returncode == 0, "ICMP to the relay host answered by its kernel")
    tcp = tb.popen(tb.relay, [sys.executable, "-c",
                              "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
                              "socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',2222));s.listen(1);"
                              "s.settimeout(10);c,_=s.accept();c.sendall(c.recv(100)[::-1])"],
                   stdout=subprocess.PIPE, text=True)
    udp = tb.popen(tb.relay, [sys.executable, "-c",
                              "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                              "s.bind(('0.0.0.0',9999));s.settimeout(10);"
                              "print(s.recvfrom(100)[0].decode())"],
                   stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    r = tb.run(tb.clients[0], [sys.executable, "-c",
                               "import socket,time;c=socket.create_connection(('%s',2222),5);"
                               "c.sendall(b'ssh-like');print(c.recv(100).decode());"
                               "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                               "u.sendto(b'kernel-udp',('%s',9999))" % (tb.relay_ip, tb.relay_ip)],
               check=False)
    nc.check(r.stdout.strip() == "ekil-hss", "TCP to port 2222 served by the relay's kernel")
    out, _ = udp.communicate(timeout=10)
    tcp.wait(timeout=10)
    nc.check(out.strip() == "kernel-udp", "UDP to port 9999 reached the relay's kernel")


def case_probe_limits(tb, binary):
    """OXPI answers are limited per source; --probes-off answers none."""
    rate = 5
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--probe-rate",
                                 str(rate)])
    srv.wait_up()
    t0 = time.time()
    r = otb.oxpi_probe(tb, 0, tb.relay_ip, PORT, flows=16, count=300, timeout=0.01)
    took = time.time() - t0
    tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    # A bucket of `rate` per lcore (2 queues), refilled at `rate`/s for as
    # long as the probes last: the rest is refused and counted.
    # What this proves is the relay's: of the probes that reached it, a
    # rate's worth answered and every other one counted. A probe the kernel
    # lost on the way (a busy machine: veth backlog, the prober's socket)
    # or an answer later than the prober's 10 ms is not the relay's, and is
    # reported apart.
    most = 2 * rate + 2 * rate * took + 2
    reached = tot["rx_pkts"]
    print("probe: %s in %.1f s; reached the relay %d, answered by it %d, limited %d"
          % (r, took, reached, tot["echo"], tot["drop_probe_limited"]))
    nc.check(rate <= tot["echo"] <= most,
             "one source gets its rate's worth of answers (%d of the %d that reached the relay, "
             "at most %.0f)" % (tot["echo"], reached, most))
    nc.check(reached == tot["echo"] + tot["drop_probe_limited"],
             "every other probe that reached the relay counted as probe_limited (%d; %d lost in "
             "the kernel before the relay)" % (tot["drop_probe_limited"], r["sent"] - reached))
    nc.check(r["received"] <= tot["echo"] and r["received"] >= tot["echo"] - max(2, rate),
             "the prober got the answers the relay sent (%d of %d; the rest late or lost in "
             "the kernel)" % (r["received"], tot["echo"]))
    check_clean_stop(tb, srv)
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT), "--probes-off"])
    srv.wait_up()
    r = otb.oxpi_probe(tb, 0, tb.relay_ip, PORT, flows=4, count=50, timeout=0.05)
    tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    nc.check(r["received"] == 0 and tot["drop_probes_off"] == tot["rx_pkts"] and
             tot["rx_pkts"] >= 45,
             "--probes-off: none answered, every one that reached the relay counted (%d of %d "
             "sent)" % (tot["drop_probes_off"], r["sent"]))
    check_clean_stop(tb, srv)


def case_kill9(tb, binary):
    srv = nc.Server(tb, binary, ["--iface", "eth0"])
    srv.wait_up()
    nc.check(probe(tb, count=50)["received"] == 50, "first instance echoes")
    srv.stop(sig=9)
    nc.check(tb.xdp_attached(tb.relay, "eth0"), "kill -9 leaves ox_steer attached")
    r = tb.run(tb.clients[0], ["ping", "-c", "2", "-i", "0.2", "-W", "1", tb.relay_ip],
               check=False)
    nc.check(r.returncode == 0, "the stale program passes traffic to the kernel meanwhile")
    srv2 = nc.Server(tb, binary, ["--iface", "eth0"], tag=tb.tag + "b")
    srv2.wait_up()
    nc.check("replacing a stale ox_steer program" in srv2.log, "restart replaces the stale program")
    nc.check(probe(tb, count=50)["received"] == 50, "restarted instance echoes")
    check_clean_stop(tb, srv2)


def case_foreign(tb, binary, foreign_obj):
    tb.run(tb.relay, ["ip", "link", "set", "dev", "eth0", "xdp", "obj", foreign_obj,
                      "sec", "xdp"])
    srv = nc.Server(tb, binary, ["--iface", "eth0"])
    rc = srv.wait_exit()
    print(srv.log)
    nc.check(rc != 0 and "already has XDP program 'foreign_pass'" in srv.log and
             "--xdp-replace" in srv.log, "foreign XDP program refused with the fix named")
    nc.check(tb.xdp_attached(tb.relay, "eth0"), "the foreign program is left in place")
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--xdp-replace"], tag=tb.tag + "r")
    srv.wait_up()
    nc.check("replacing XDP program 'foreign_pass'" in srv.log, "--xdp-replace replaces it")
    nc.check(probe(tb, count=30)["received"] == 30, "and the server echoes")
    check_clean_stop(tb, srv)


def case_tap(tb, binary):
    """Same binary, no XDP: a net_tap port in the relay namespace. The
    relay's kernel routes 198.18.2.0/24 into the TAP, where the server
    answers as 198.18.2.1."""
    srv = nc.Server(tb, binary, ["--port", str(PORT)],
                    eal_extra=["--vdev", "net_tap0,iface=oxtap0,mac=02:00:00:00:02:01"])
    srv.wait_up()
    tb.run(tb.relay, ["ip", "addr", "add", "198.18.2.254/24", "dev", "oxtap0"])
    tb.run(tb.relay, ["ip", "link", "set", "oxtap0", "up"])
    tb.run(tb.relay, ["ip", "neigh", "replace", "198.18.2.1", "lladdr", "02:00:00:00:02:01",
                      "dev", "oxtap0", "nud", "permanent"])
    tb.run(tb.clients[0], ["ip", "route", "add", "198.18.2.0/24", "via", tb.relay_ip])
    nc.check("up on 1 DPDK port(s)" in srv.log, "server up on the net_tap port")
    r = probe(tb, count=100, flows=4, dst="198.18.2.1")
    nc.check(r["received"] == 100, "OXPI echo through net_tap (%d/100)" % r["received"])
    rc = srv.stop()
    print(srv.log)
    nc.check(rc == 0 and "all mbufs back in the pool" in srv.log,
             "clean stop on net_tap, every mbuf back")


def case_v6_vlan(tb, binary):
    """IPv6 (2001:2::/48, the benchmarking range) on the client-relay link,
    and IPv4 behind an 802.1Q tag, sent as raw frames (the test kernel may
    lack 8021q): both steered by ox_steer and echoed by the same queues."""
    import json
    import os
    tb.run(tb.relay, ["ip", "addr", "add", "2001:2::1/64", "dev", "eth0", "nodad"])
    tb.run(tb.clients[0], ["ip", "addr", "add", "2001:2::10/64", "dev", "eth0", "nodad"])
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--port", str(PORT)])
    srv.wait_up()
    r6 = probe(tb, count=100, flows=4, dst="2001:2::1")
    nc.check(r6["received"] == 100 and r6["bad"] == 0, "OXPI over IPv6 echoed (%d/100)"
             % r6["received"])
    mac = nc.relay_mac(tb)
    raw = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rawprobe.py")
    r = tb.run(tb.clients[0], [sys.executable, raw, "eth0", mac, otb.client_ip(0), tb.relay_ip,
                               str(PORT), "42", "50"])
    rv = json.loads(r.stdout)
    print("vlan probe: %s" % rv)
    nc.check(rv["received"] == 50 and rv["tagged"] == 50,
             "OXPI in VLAN 42 echoed, tag kept (%d/50, %d tagged)" % (rv["received"], rv["tagged"]))
    r = tb.run(tb.clients[0], ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "2001:2::1"],
               check=False)
    nc.check(r.returncode == 0, "ICMPv6 (and neighbour discovery) still reach the kernel")
    tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    nc.check(tot["echo"] == 150, "server answered all 150 (%d)" % tot["echo"])
    check_clean_stop(tb, srv)


def case_exit_tap(tb, binary):
    import json
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--tap", "oxtun0"])
    srv.wait_up()
    nc.check("exit TAP oxtun0: 100.64.0.1/10 and fd6f:7869:647a::1/64, MTU 1420" in srv.log,
             "server reports the exit TAP")
    info = json.loads(tb.run(tb.relay, ["ip", "-j", "addr", "show", "oxtun0"]).stdout)[0]
    addrs = {"%s/%d" % (a["local"], a["prefixlen"]) for a in info["addr_info"]}
    print("oxtun0: %s %s mtu %s" % (info["flags"], sorted(addrs), info["mtu"]))
    nc.check({"100.64.0.1/10", "fd6f:7869:647a::1/64"} <= addrs, "TAP has the relay's tunnel "
             "addresses")
    nc.check("NOARP" in info["flags"] and "UP" in info["flags"] and info["mtu"] == 1420,
             "TAP is up, NOARP, MTU 1420")
    r = tb.run(tb.relay, ["ip", "route", "get", "100.64.7.9"]).stdout
    nc.check("dev oxtun0" in r, "the kernel routes the pool into the TAP")
    tb.run(tb.relay, ["ping", "-c", "3", "-i", "0.2", "-W", "1", "100.64.7.9"], check=False)
    tb.run(tb.relay, ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "fd6f:7869:647a::79"],
           check=False)
    time.sleep(0.3)
    tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    nc.check(tot["drop_tap_no_session"] >= 5, "packets to tunnel addresses without a session "
             "counted (%d)" % tot["drop_tap_no_session"])
    nc.check(probe(tb, count=50)["received"] == 50, "echo still answered")
    check_clean_stop(tb, srv)
    r = tb.run(tb.relay, ["ip", "link", "show", "oxtun0"], check=False)
    nc.check(r.returncode != 0, "the TAP is gone after stop")
    # The TAP deleted from under the server: a clear error and an exit the
    # service manager restarts from, never a silent black hole.
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--tap", "oxtun0"], tag=tb.tag + "d")
    srv.wait_up()
    tb.run(tb.relay, ["ip", "link", "del", "oxtun0"])
    t0 = time.time()
    rc = srv.wait_exit(timeout=20)
    print(srv.log)
    nc.check(rc == 1 and "exit TAP oxtun0 was deleted from under the server" in srv.log,
             "deleted TAP: error and exit status 1 after %.1f s" % (time.time() - t0))
    nc.check(not tb.xdp_attached(tb.relay, "eth0"), "deleted TAP: nothing left on eth0")
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--tap", "oxtun0", "--mtu", "1280"],
                    tag=tb.tag + "e")
    srv.wait_up()
    r = tb.run(tb.relay, ["ip", "-j", "link", "show", "oxtun0"], check=False)
    nc.check(r.returncode == 0, "a restart recreates the TAP")
    nc.check(r.returncode == 0 and json.loads(r.stdout)[0]["mtu"] == 1280,
             "the TAP takes --mtu (1280)")
    check_clean_stop(tb, srv)
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--tap", "oxtun0", "--pool4",
                                 "100.64.0.0/33"], tag=tb.tag + "p")
    rc = srv.wait_exit()
    nc.check(rc != 0 and "--pool4 100.64.0.0/33 is not an IPv4 CIDR" in srv.log,
             "a bad pool is refused with its reason")


def case_partial(tb, binary):
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--queues", "1"])
    srv.wait_up()
    nc.check("up on AF_XDP: eth0, 1 queue(s)" in srv.log, "server on queue 0 only")
    # The relay's kernel listens on the same port: what ox_steer cannot hand
    # to a socket must arrive here.
    lis = tb.popen(tb.relay, [sys.executable, "-c",
                              "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                              "s.bind(('0.0.0.0',%d));s.settimeout(3);n=0\n"
                              "try:\n while True: s.recv(2048); n+=1\n"
                              "except socket.timeout: print(n)" % PORT],
                   stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    sent = otb.udp_burst(tb, 0, tb.relay_ip, PORT, flows=32, per_flow=5,
                         payload=b"OXPI-no-socket-test")
    kernel = int(lis.communicate(timeout=20)[0].strip())
    tot = nc.telemetry(srv.prefix, "/oxidize/stats")["total"]
    xdp = nc.telemetry(srv.prefix, "/oxidize/xdp")
    print("sent %d: server echoed %d, kernel got %d, ox_steer %s" % (sent, tot["echo"], kernel,
                                                                     xdp))
    nc.check(tot["echo"] > 0 and kernel > 0, "both the socket's queue and the other carried "
             "traffic")
    nc.check(tot["echo"] + kernel == sent, "nothing dropped: %d echoed + %d to the kernel = %d"
             % (tot["echo"], kernel, sent))
    check_clean_stop(tb, srv)


def case_errors(tb, binary):
    def run(app, eal=(), pre=(), expect=(), name=""):
        argv = list(pre) + [binary, "-l", "0", "--no-pci", "--file-prefix",
                            "oxe%s" % tb.tag.replace("-", ""), "--huge-unlink",
                            "--log-level", "lib.eal:error", "--log-level",
                            "pmd.net.af_xdp:error"] + list(eal) + ["--"] + list(app)
        r = tb.run(tb.relay, argv, check=False, bpffs=True, timeout=60)
        out = r.stdout + r.stderr
        ok = r.returncode != 0 and all(e in out for e in expect)
        if not ok:
            print(out)
        nc.check(ok, "%s: %s" % (name, " / ".join(expect)))
        nc.check(not tb.xdp_attached(tb.relay, "eth0"), "%s: nothing left on eth0" % name)

    run(["--iface", "nosuch0"], expect=["interface nosuch0 does not exist"],
        name="interface missing")
    # No --iface: the relay namespace has no default route, so no interface.
    run([], expect=["no --iface and no default route", "give --iface IF"],
        name="no --iface, no default route")
    run(["--iface", "eth0", "--queues", "4"],
        expect=["eth0 has 2 queues", "ethtool -L eth0 combined"], name="too many queues")
    run(["--iface", "eth0", "--rx-desc", "1000"],
        expect=["ring sizes must be powers of two"], name="ring size")
    run(["--iface", "eth0", "--port", "0"], expect=["port: '0' is not a number in 1..65535"],
        name="bad option value")
    run(["--iface", "eth0"], eal=["--huge-dir", "/proc"],
        expect=["hugepages missing", "oxidize-setup.sh"], name="hugepages missing")
    run(["--iface", "eth0"], pre=["setpriv", "--inh-caps=-net_admin,-net_raw",
                                  "--bounding-set=-net_admin,-net_raw"],
        expect=["missing privileges: CAP_NET_ADMIN CAP_NET_RAW"], name="missing privileges")
    run(["--iface", "eth0"], pre=["setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"],
        expect=["UMEM registration needs locked memory", "LimitMEMLOCK=infinity"],
        name="memlock too low")
    run(["--iface", "eth0"], pre=["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"],
        expect=["missing privileges: CAP_SYS_ADMIN"], name="CAP_BPF alone is not enough")
    # The least that works (what config/oxidize-server.service grants).
    least = "+net_admin,+net_raw,+ipc_lock,+sys_admin"
    # As the unit runs it: those capabilities only, no new privileges,
    # umask 077.
    r = tb.run(tb.relay, ["sh", "-c", 'umask 077; exec "$@"', "sh",
                          "setpriv", "--no-new-privs", "--inh-caps=-all," + least,
                          "--ambient-caps=-all," + least,
                          "--bounding-set=-all," + least, binary, "-l", "0", "--no-pci",
                          "--in-memory", "--log-level", "lib.eal:error", "--log-level",
                          "pmd.net.af_xdp:error", "--", "--iface", "eth0", "--duration", "1"],
               check=False, bpffs=True, timeout=60)
    nc.check(r.returncode == 0 and "up on AF_XDP" in r.stdout + r.stderr,
             "runs with only CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_SYS_ADMIN, "
             "no new privileges, umask 077")
    # --worker-fifo without CAP_SYS_NICE: said, and the server runs on.
    r = tb.run(tb.relay, ["setpriv", "--inh-caps=-all," + least, "--ambient-caps=-all," + least,
                          "--bounding-set=-all," + least, binary, "-l", "0-1", "--no-pci",
                          "--in-memory", "--log-level", "lib.eal:error", "--log-level",
                          "pmd.net.af_xdp:error", "--", "--iface", "eth0", "--duration", "1",
                          "--worker-fifo", "10"], check=False, bpffs=True, timeout=60)
    out = r.stdout + r.stderr
    nc.check(r.returncode == 0 and "stays SCHED_OTHER: SCHED_FIFO 10 refused" in out and
             "up on AF_XDP" in out, "--worker-fifo without CAP_SYS_NICE: warned, runs on")
    srv = nc.Server(tb, binary, ["--iface", "eth0", "--duration", "1", "--worker-fifo", "10"],
                    lcores="0-1")
    rc = srv.wait_exit()
    nc.check(rc == 0 and "lcore 1 runs SCHED_FIFO at priority 10" in srv.log,
             "--worker-fifo: the worker lcore runs SCHED_FIFO")
    # No --iface: the interface of the default route (toward a host of the
    # testbed, on eth0), said in the log.
    tb.run(tb.relay, ["ip", "route", "add", "default", "via", otb.client_ip(0), "dev", "eth0"])
    srv = nc.Server(tb, binary, ["--duration", "1"], lcores="0")
    rc = srv.wait_exit()
    tb.run(tb.relay, ["ip", "route", "del", "default"])
    print(srv.log)
    nc.check(rc == 0 and "no --iface: using eth0, the interface of the default route" in srv.log
             and "up on AF_XDP: eth0" in srv.log, "without --iface, the default route's eth0")
    # A bridge has no native XDP: the server says generic mode is used.
    tb.run(tb.relay, ["ip", "link", "add", "oxbr0", "type", "bridge"])
    tb.run(tb.relay, ["ip", "link", "set", "oxbr0", "up"])
    srv = nc.Server(tb, binary, ["--iface", "oxbr0", "--duration", "1"], lcores="0")
    srv.wait_exit()
    print(srv.log)
    nc.check("no native XDP; ox_steer runs in generic (skb) mode" in srv.log,
             "driver without native XDP: generic mode named")


def main():
    binary, case = sys.argv[1], sys.argv[2]
    nc.require_host()
    queues = 1 if case == "echo-1q" else 2
    # echo-1q: senders compute UDP checksums in software (a remote
    # client's form); every other case keeps the testbed's offload on, so
    # probes arrive with partial checksums.
    tb = nc.testbed(clients=1, queues=queues, sw_csum=(case == "echo-1q"))
    nc.run_case(tb, {
        "echo-1q": lambda: case_echo(tb, binary, queues),
        "echo-2q": lambda: case_echo(tb, binary, queues),
        "probe-limits": lambda: case_probe_limits(tb, binary),
        "kill9": lambda: case_kill9(tb, binary),
        "foreign": lambda: case_foreign(tb, binary, sys.argv[3]),
        "tap": lambda: case_tap(tb, binary),
        "v6-vlan": lambda: case_v6_vlan(tb, binary),
        "partial": lambda: case_partial(tb, binary),
        "exit-tap": lambda: case_exit_tap(tb, binary),
        "errors": lambda: case_errors(tb, binary),
    }, case)


if __name__ == "__main__":
    main()
