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
            out[cmd] = json.loads(s.recv(1 << 20).decode())[cmd]
    finally:
        s.close()
    return out


def command(prefix, cmd, timeout=5.0):
    """One command; its result."""
    return query(prefix, [cmd], timeout)[cmd]
