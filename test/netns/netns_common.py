# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of the netns suite: skip rules, EAL arguments, checks."""

import os
import sys

import oxidize_testbed as otb

SKIP = 77


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def require_host():
    """Skip (77) unless this host can run AF_XDP tests: root, hugepages."""
    if os.geteuid() != 0:
        skip("needs root (namespaces, XDP, AF_XDP)")
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            free = int(f.read())
    except OSError:
        skip("no 2 MB hugepage support in this kernel")
    if free < 64:
        skip("fewer than 64 free 2 MB hugepages (run usertools/oxidize-setup.sh)")
    with open("/proc/mounts") as f:
        if " hugetlbfs " not in f.read():
            skip("hugetlbfs not mounted (run usertools/oxidize-setup.sh)")


def eal_args(tag, lcores="0", log_levels=()):
    """EAL arguments for a DPDK process in a testbed namespace."""
    args = ["-l", lcores, "--no-pci", "--file-prefix", "ox%s" % tag.replace("-", ""),
            "--huge-unlink"]
    for lv in log_levels:
        args += ["--log-level", lv]
    return args


def testbed(**kw):
    try:
        return otb.Testbed(**kw).up()
    except otb.Skip as e:
        skip(str(e))
