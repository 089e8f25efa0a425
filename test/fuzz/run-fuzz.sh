#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Bounded libFuzzer run: run-fuzz.sh TARGET SEED_DIR SECONDS
# New inputs go to a scratch corpus, never into the source tree; a crash
# leaves its reproducer in the build directory and fails the test.
# The fuzzer runs as a child (not exec'd) so the scratch corpus is removed
# and its exit status is the test's.
set -eu
target=$1 seeds=$2 secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
"$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$(pwd)/crash-$(basename "$target")-" \
	"$work" "$seeds" || rc=$?
exit "$rc"
