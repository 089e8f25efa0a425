#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Prometheus exporter for oxidize-server.

Serves the server's telemetry (/oxidize/stats, /oxidize/ports, /oxidize/xdp,
/oxidize/relay, read from DPDK's telemetry socket of --file-prefix) through
Debian's python3-prometheus-client:

  oxidize-exporter.py [--file-prefix oxidize] [--listen 127.0.0.1:9851] [--once]
                      [--peer-series N]

Metrics: oxidize_rx_packets_total, oxidize_tx_packets_total, *_bytes_total,
oxidize_echo_total, oxidize_busy_cycles_total and oxidize_drops_total{reason}
per lcore and in total (lcore="all"); per port oxidize_port_rx_packets_total
and oxidize_port_tx_packets_total with iface/queue/mode/umem/xdp labels;
oxidize_xdp_frames_total{action} from ox_steer (redirect, pass_<reason>);
as a relay also oxidize_relay_packets_total{lcore,what} (decrypted, to_tap,
from_tap, client_to_client, ...), from /oxidize/relay oxidize_sessions,
oxidize_handshakes_total{kind}, oxidize_cookies_sent_total,
oxidize_handshake_drops_total{reason}, oxidize_under_load,
oxidize_allowlist_keys; per peer, for the first --peer-series (100) listed
peers only, oxidize_peer_{rx,tx}_{packets,bytes}_total{peer,key},
oxidize_peer_connected and oxidize_peer_last_handshake_seconds (from
/oxidize/peers, read page by page); oxidize_up 0/1. Each scrape asks the
server anew; nothing is cached.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oxidize_telemetry import peers, query  # noqa: E402

try:
    from prometheus_client import start_http_server
    from prometheus_client.core import (REGISTRY, CounterMetricFamily, GaugeMetricFamily)
    from prometheus_client.exposition import generate_latest
except ImportError:
    sys.exit("oxidize-exporter: needs python3-prometheus-client (apt-get install "
             "python3-prometheus-client; run with Debian's /usr/bin/python3)")

COUNTERS = (
    ("rx_pkts", "oxidize_rx_packets", "Datagrams received"),
    ("rx_bytes", "oxidize_rx_bytes", "Bytes received"),
    ("tx_pkts", "oxidize_tx_packets", "Datagrams sent"),
    ("tx_bytes", "oxidize_tx_bytes", "Bytes sent"),
    ("echo", "oxidize_echo", "OXPI probes answered"),
    ("busy_cycles", "oxidize_busy_cycles", "TSC cycles of loop turns that moved packets"),
)

# Relay counters of /oxidize/stats (server.h OX_RELAY_CTRS).
RELAY_COUNTERS = ("decrypted", "to_tap", "from_tap", "client_to_client", "keepalive",
                  "ack_sent", "key_confirm", "handoff", "roamed", "disconnect", "hs_queued",
                  "batch_pkts", "config_sent")


class OxidizeCollector:
    """Asks the server at every scrape."""

    def __init__(self, prefix, peer_series=100):
        self.prefix = prefix
        self.peer_series = peer_series

    def peers(self, rel):
        """The first peer_series listed peers (/oxidize/peers, page by page)."""
        if not rel.get("allowlist_keys") or self.peer_series <= 0:
            return []
        return list(peers(self.prefix, self.peer_series).items())

    def peer_metrics(self, rel):
        """Per-peer series, for the first --peer-series peers only: a relay
        of a million peers is read through /oxidize/peers, not scraped."""
        try:
            peers = self.peers(rel)
        except (OSError, ValueError, KeyError):
            return
        labels = ["peer", "key"]
        fams = {k: CounterMetricFamily(n, h, labels=labels) for k, n, h in (
            ("rx_pkts", "oxidize_peer_rx_packets", "DATA opened from the peer"),
            ("rx_bytes", "oxidize_peer_rx_bytes", "Datagram bytes opened from the peer"),
            ("tx_pkts", "oxidize_peer_tx_packets", "DATA sealed for the peer"),
            ("tx_bytes", "oxidize_peer_tx_bytes", "Datagram bytes sealed for the peer"))}
        conn = GaugeMetricFamily("oxidize_peer_connected", "1 while the peer has a session",
                                 labels=labels)
        hs = GaugeMetricFamily("oxidize_peer_last_handshake_seconds",
                               "Unix time of the peer's last handshake (0: none)",
                               labels=labels)
        for key, p in peers:
            lv = [p.get("name", "-"), key]
            conn.add_metric(lv, p.get("connected", 0))
            hs.add_metric(lv, p.get("last_handshake", 0))
            for k, f in fams.items():
                f.add_metric(lv, p.get(k, 0))
        yield conn
        yield hs
        yield from fams.values()

    def collect(self):
        up = GaugeMetricFamily("oxidize_up", "1 if the server's telemetry answered")
        try:
            t = query(self.prefix, ["/oxidize/stats", "/oxidize/ports", "/oxidize/xdp",
                                    "/oxidize/relay"])
        except (OSError, ValueError, KeyError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        stats = t["/oxidize/stats"]
        groups = [("all", stats.get("total", {}))]
        groups += [(k[len("lcore_"):], v) for k, v in sorted(stats.items())
                   if k.startswith("lcore_")]
        for key, name, help_ in COUNTERS:
            m = CounterMetricFamily(name, help_, labels=["lcore"])
            for lcore, g in groups:
                if key in g:
                    m.add_metric([lcore], g[key])
            yield m
        m = CounterMetricFamily("oxidize_drops", "Datagrams dropped, by reason",
                                labels=["lcore", "reason"])
        for lcore, g in groups:
            for k, v in sorted(g.items()):
                if k.startswith("drop_"):
                    m.add_metric([lcore, k[len("drop_"):]], v)
        yield m
        relay_keys = [k for k in RELAY_COUNTERS if k in groups[0][1]]
        if relay_keys:
            m = CounterMetricFamily("oxidize_relay_packets", "What the relay did with packets",
                                    labels=["lcore", "what"])
            for lcore, g in groups:
                for k in relay_keys:
                    m.add_metric([lcore, k], g.get(k, 0))
            yield m
        rel = t.get("/oxidize/relay") or {}
        if "sessions" in rel:
            g = GaugeMetricFamily("oxidize_sessions", "Live sessions")
            g.add_metric([], rel["sessions"])
            yield g
        protos = sorted(k[len("sessions_"):] for k in rel
                        if k.startswith("sessions_") and k != "sessions_reaped" and
                        k != "sessions_removed")
        if protos:
            g = GaugeMetricFamily("oxidize_sessions_by_protocol",
                                  "Live sessions by wire protocol", labels=["protocol"])
            m = CounterMetricFamily("oxidize_handshakes_by_protocol",
                                    "Completed handshakes by wire protocol",
                                    labels=["protocol"])
            for p in protos:
                g.add_metric([p], rel["sessions_" + p])
                m.add_metric([p], rel.get("handshakes_" + p, 0))
            yield g
            yield m
        if "handshakes" in rel:
            m = CounterMetricFamily("oxidize_handshakes",
                                    "Completed handshakes, new sessions or rekeys",
                                    labels=["kind"])
            m.add_metric(["new"], rel["handshakes_new"])
            m.add_metric(["rekey"], rel["handshakes_rekey"])
            yield m
            yield CounterMetricFamily("oxidize_cookies_sent",
                                      "Cookie replies to initiations under load",
                                      value=rel["cookies_sent"])
            yield GaugeMetricFamily("oxidize_under_load", "1 while initiations need a cookie",
                                    value=rel["under_load"])
            yield GaugeMetricFamily("oxidize_allowlist_keys", "Keys on the allow-list",
                                    value=rel["allowlist_keys"])
            m = CounterMetricFamily("oxidize_handshake_drops", "Initiations refused, by reason",
                                    labels=["reason"])
            for k, v in sorted(rel.items()):
                if k.startswith("hs_drop_"):
                    m.add_metric([k[len("hs_drop_"):]], v)
            yield m
            yield from self.peer_metrics(rel)
        labels = ["port", "iface", "queue", "mode", "umem", "xdp"]
        for key, name, help_ in (("rx_pkts", "oxidize_port_rx_packets",
                                  "Datagrams received on the port"),
                                 ("tx_pkts", "oxidize_port_tx_packets",
                                  "Datagrams sent on the port")):
            m = CounterMetricFamily(name, help_, labels=labels)
            for port, p in sorted(t["/oxidize/ports"].items()):
                m.add_metric([port[len("port_"):], p["iface"], str(p["queue"]), p["mode"],
                              p["umem"], p["xdp"]], p[key])
            yield m
        m = CounterMetricFamily("oxidize_xdp_frames", "Frames ox_steer redirected to the "
                                "sockets or left to the kernel, by reason", labels=["action"])
        for k, v in sorted((t.get("/oxidize/xdp") or {}).items()):
            if isinstance(v, int) and k != "prog_id":
                m.add_metric([k], v)
        yield m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file-prefix", default="oxidize", help="the server's EAL --file-prefix")
    ap.add_argument("--listen", default="127.0.0.1:9851", help="address:port to serve on")
    ap.add_argument("--once", action="store_true", help="print one scrape and exit")
    ap.add_argument("--peer-series", type=int, default=100,
                    help="per-peer series for the first N listed peers (default 100, 0: none)")
    args = ap.parse_args()
    REGISTRY.register(OxidizeCollector(args.file_prefix, args.peer_series))
    if args.once:
        sys.stdout.write(generate_latest(REGISTRY).decode())
        return 0
    host, _, port = args.listen.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1")
    print("oxidize-exporter: serving http://%s/metrics for file prefix %s"
          % (args.listen, args.file_prefix), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
