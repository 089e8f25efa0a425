#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The Oxidize demo, from a fresh clone:
#
#   usertools/oxidize-demo.sh
#
# Prepares the host (usertools/oxidize-setup.sh), builds into build/, and
# runs usertools/oxidize-demo.py: oxidize-server on FLASH in a namespace
# testbed, OXPI probes from two clients, per-queue counters and RTT.
# Nothing outside the namespaces it creates is touched; they are removed.

set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "oxidize-demo: run as root (from another account: sudo usertools/oxidize-demo.sh)" >&2; exit 1; }
setup_out=$(usertools/oxidize-setup.sh)
export PKG_CONFIG_PATH=${setup_out##*PKG_CONFIG_PATH=}
if [ -f build/build.ninja ]; then
	meson setup --reconfigure build >/dev/null
else
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
exec python3 usertools/oxidize-demo.py build "$@"
