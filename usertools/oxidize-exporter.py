#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Prometheus exporter for oxidize-server.

Serves the server's telemetry (/oxidize/stats, /oxidize/ports, read from
DPDK's telemetry socket of --file-prefix) in the Prometheus text format:

  oxidize-exporter.py [--file-prefix oxidize] [--listen 127.0.0.1:9851]

Metrics: oxidize_rx_packets_total, oxidize_tx_packets_total, *_bytes_total,
oxidize_echo_total, oxidize_busy_cycles_total and oxidize_drops_total{reason}
per lcore and in total (lcore="all"); per port oxidize_port_rx_packets_total
and oxidize_port_tx_packets_total with iface/queue/mode/umem/xdp labels;
oxidize_xdp_frames_total{action} from ox_steer (redirect, pass_<reason>);
as a relay also oxidize_relay_packets_total{lcore,what} (decrypted, to_tap,
from_tap, client_to_client, ...), from /oxidize/relay oxidize_sessions,
oxidize_handshakes_total{kind}, oxidize_cookies_sent_total,
oxidize_handshake_drops_total{reason}, oxidize_under_load,
oxidize_allowlist_keys; oxidize_up 0/1. Each scrape asks the server anew;
nothing is cached.
"""

import argparse
import http.server
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oxidize_telemetry import query  # noqa: E402

COUNTERS = (
    ("rx_pkts", "oxidize_rx_packets_total", "Datagrams received"),
    ("rx_bytes", "oxidize_rx_bytes_total", "Bytes received"),
    ("tx_pkts", "oxidize_tx_packets_total", "Datagrams sent"),
    ("tx_bytes", "oxidize_tx_bytes_total", "Bytes sent"),
    ("echo", "oxidize_echo_total", "OXPI probes answered"),
    ("busy_cycles", "oxidize_busy_cycles_total", "TSC cycles of loop turns that moved packets"),
)

# Relay counters of /oxidize/stats (server.h OX_RELAY_CTRS).
RELAY_COUNTERS = ("decrypted", "to_tap", "from_tap", "client_to_client", "keepalive",
                  "ack_sent", "key_confirm", "handoff", "roamed", "disconnect", "hs_queued",
                  "batch_pkts")


def esc(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(prefix):
    lines = []
    try:
        t = query(prefix, ["/oxidize/stats", "/oxidize/ports", "/oxidize/xdp",
                           "/oxidize/relay"])
    except (OSError, ValueError, KeyError) as e:
        return ("# oxidize-server not reachable: %s\n"
                "# HELP oxidize_up 1 if the server's telemetry answered\n"
                "# TYPE oxidize_up gauge\noxidize_up 0\n" % esc(e))
    lines += ["# HELP oxidize_up 1 if the server's telemetry answered", "# TYPE oxidize_up gauge",
              "oxidize_up 1"]
    stats = t["/oxidize/stats"]
    groups = [("all", stats.get("total", {}))]
    groups += [(k[len("lcore_"):], v) for k, v in sorted(stats.items())
               if k.startswith("lcore_")]
    for key, name, help_ in COUNTERS:
        lines += ["# HELP %s %s" % (name, help_), "# TYPE %s counter" % name]
        for lcore, g in groups:
            if key in g:
                lines.append('%s{lcore="%s"} %d' % (name, lcore, g[key]))
    lines += ["# HELP oxidize_drops_total Datagrams dropped, by reason",
              "# TYPE oxidize_drops_total counter"]
    for lcore, g in groups:
        for k, v in sorted(g.items()):
            if k.startswith("drop_"):
                lines.append('oxidize_drops_total{lcore="%s",reason="%s"} %d'
                             % (lcore, k[len("drop_"):], v))
    relay_keys = [k for k in RELAY_COUNTERS if k in groups[0][1]]
    if relay_keys:
        lines += ["# HELP oxidize_relay_packets_total What the relay did with packets",
                  "# TYPE oxidize_relay_packets_total counter"]
        for lcore, g in groups:
            for k in relay_keys:
                lines.append('oxidize_relay_packets_total{lcore="%s",what="%s"} %d'
                             % (lcore, k, g.get(k, 0)))
    rel = t.get("/oxidize/relay") or {}
    if "sessions" in rel:
        lines += ["# HELP oxidize_sessions Live sessions", "# TYPE oxidize_sessions gauge",
                  "oxidize_sessions %d" % rel["sessions"]]
    if "handshakes" in rel:
        lines += ["# HELP oxidize_handshakes_total Completed handshakes, new sessions or rekeys",
                  "# TYPE oxidize_handshakes_total counter",
                  'oxidize_handshakes_total{kind="new"} %d' % rel["handshakes_new"],
                  'oxidize_handshakes_total{kind="rekey"} %d' % rel["handshakes_rekey"],
                  "# HELP oxidize_cookies_sent_total Cookie replies to initiations under load",
                  "# TYPE oxidize_cookies_sent_total counter",
                  "oxidize_cookies_sent_total %d" % rel["cookies_sent"],
                  "# HELP oxidize_under_load 1 while initiations need a cookie",
                  "# TYPE oxidize_under_load gauge",
                  "oxidize_under_load %d" % rel["under_load"],
                  "# HELP oxidize_allowlist_keys Keys on the allow-list",
                  "# TYPE oxidize_allowlist_keys gauge",
                  "oxidize_allowlist_keys %d" % rel["allowlist_keys"],
                  "# HELP oxidize_handshake_drops_total Initiations refused, by reason",
                  "# TYPE oxidize_handshake_drops_total counter"]
        for k, v in sorted(rel.items()):
            if k.startswith("hs_drop_"):
                lines.append('oxidize_handshake_drops_total{reason="%s"} %d'
                             % (k[len("hs_drop_"):], v))
    for key, name, help_ in (("rx_pkts", "oxidize_port_rx_packets_total",
                              "Datagrams received on the port"),
                             ("tx_pkts", "oxidize_port_tx_packets_total",
                              "Datagrams sent on the port")):
        lines += ["# HELP %s %s" % (name, help_), "# TYPE %s counter" % name]
        for port, p in sorted(t["/oxidize/ports"].items()):
            lines.append('%s{port="%s",iface="%s",queue="%d",mode="%s",umem="%s",xdp="%s"} %d'
                         % (name, port[len("port_"):], esc(p["iface"]), p["queue"],
                            esc(p["mode"]), esc(p["umem"]), esc(p["xdp"]), p[key]))
    xdp = t.get("/oxidize/xdp") or {}
    lines += ["# HELP oxidize_xdp_frames_total Frames ox_steer redirected to the sockets or "
              "left to the kernel, by reason", "# TYPE oxidize_xdp_frames_total counter"]
    for k, v in sorted(xdp.items()):
        if isinstance(v, int) and k != "prog_id":
            lines.append('oxidize_xdp_frames_total{action="%s"} %d' % (k, v))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file-prefix", default="oxidize", help="the server's EAL --file-prefix")
    ap.add_argument("--listen", default="127.0.0.1:9851", help="address:port to serve on")
    ap.add_argument("--once", action="store_true", help="print one scrape and exit")
    args = ap.parse_args()
    if args.once:
        sys.stdout.write(render(args.file_prefix))
        return 0
    host, _, port = args.listen.rpartition(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = render(args.file_prefix).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass

    srv = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    print("oxidize-exporter: serving http://%s/metrics for file prefix %s"
          % (args.listen, args.file_prefix), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
