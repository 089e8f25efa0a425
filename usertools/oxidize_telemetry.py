# SPDX-License-Identifier: BSD-3-Clause
"""Client of DPDK's telemetry socket (v2), for oxidize-server's commands
(/oxidize/stats, /oxidize/ports, /oxidize/xdp) and DPDK's own."""

import json
import socket


def query(prefix, cmds, timeout=5.0):
    """Run each command of cmds against the process started with EAL
    --file-prefix PREFIX; returns {cmd: result}. Raises OSError if the
    socket is not there, ValueError on a malformed answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    out = {}
    try:
        s.connect("/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix)
        s.recv(65536)
        for cmd in cmds:
            s.send(cmd.encode())
            # The answer is keyed by the command without its parameters.
            out[cmd] = json.loads(s.recv(1 << 20).decode())[cmd.split(",", 1)[0]]
    finally:
        s.close()
    return out


def command(prefix, cmd, timeout=5.0):
    """One command; its result."""
    return query(prefix, [cmd], timeout)[cmd]


def peers_page(page):
    """An /oxidize/peers answer as (the peers in it, {key: status}, and
    where the next page starts, -1 at the end)."""
    peers = {v["key"]: v for k, v in page.items() if k.startswith("peer_")}
    return peers, page.get("next", -1)


def peers(prefix, limit=None, timeout=5.0):
    """Every listed peer of the relay (or the first `limit`), page by page:
    {key: status}."""
    out, start = {}, 0
    while start >= 0 and (limit is None or len(out) < limit):
        got, start = peers_page(command(prefix, "/oxidize/peers,%d" % start, timeout))
        out.update(got)
    if limit is not None:
        out = dict(list(out.items())[:limit])
    return out
