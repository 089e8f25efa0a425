#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# systemd-analyze verify on config/oxidize-server.service, with its
# commands pointed at this build (verify wants them to exist).
# usage: check_service.sh UNIT SERVER_BIN FLASH_BIND
set -eu
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -e "s|/usr/local/bin/oxidize-server|$2|g" -e "s|/usr/local/bin/flash-bind.py|$3|g" \
	"$1" > "$dir/oxidize-server.service"
out=$(systemd-analyze verify "$dir/oxidize-server.service" 2>&1) || { echo "$out"; exit 1; }
# verify also prints warnings with status 0; any line about our unit fails.
if echo "$out" | grep -q "oxidize-server.service"; then echo "$out"; exit 1; fi
echo "systemd-analyze verify: clean"
# The sandbox: an exposure of 5.0 ("OK") or less.
score=$(systemd-analyze security --offline=yes "$dir/oxidize-server.service" 2>&1 |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "systemd-analyze security gave no score"; exit 1; }
echo "systemd-analyze security: exposure $score"
awk -v s="$score" 'BEGIN { exit !(s <= 5.0) }' || { echo "exposure $score above 5.0"; exit 1; }
