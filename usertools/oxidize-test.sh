#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Run every Oxidize test from a fresh clone: the one test command.
#
#   sudo usertools/oxidize-test.sh [--quick]
#
# 1. usertools/oxidize-setup.sh: packages, hugepages, bpffs, DPDK with
#    shared UMEM (built once, then cached);
# 2. build/       gcc, -Dwerror=true            -> suites unit, netns, bench
#    build-san/   clang, ASan+UBSan, libFuzzer  -> suites unit, netns, fuzz
#    build-nodpdk/ gcc without DPDK (what clients link) -> suite unit
#    build-stock/ gcc against Debian's stock DPDK -> the FLASH fallback test
#    (only when the setup script built its own DPDK);
# 3. prints one closing line: "N passed, N failed, N skipped".
# Exits non-zero if anything failed. --quick skips the sanitizer and stock
# builds (for iterating; the full run is what CI does).

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
quick=0
[ "${1:-}" = "--quick" ] && quick=1

passed=0 failed=0 skipped=0

if [ "$(id -u)" != 0 ]; then
	echo "oxidize-test: the setup and the netns suite need root; run with sudo" >&2
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

setup_out=$(usertools/oxidize-setup.sh) || {
	echo "oxidize-test: usertools/oxidize-setup.sh failed" >&2
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
}
pkgcfg=${setup_out##*PKG_CONFIG_PATH=}

# meson setup, or reconfigure an existing build directory with these options.
configure() {
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
	else
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
	fi
}

# build DIR: compile; a failed build counts as one failure.
build() {
	local dir=$1
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		echo "oxidize-test: build in $dir failed:" >&2
		grep -E "error|FAILED" "$dir.build.log" | head -20 >&2
		failed=$((failed + 1))
		return 1
	fi
}

# run DIR NAME [meson test args]: run tests, add up their results.
run() {
	local dir=$1 name=$2 counts; shift 2
	echo "== $dir: $name"
	meson test -C "$dir" --print-errorlogs --logbase "testlog-$name" "$@"
	counts=$(python3 - "$dir/meson-logs/testlog-$name.json" <<'EOF'
import json, sys
p = f = s = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
EOF
)
	read -r p f s <<<"$counts"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

export PKG_CONFIG_PATH=$pkgcfg
if configure build -Dwerror=true && build build; then
	run build unit --suite unit
	run build netns --suite netns
	run build bench --suite bench
else
	[ -f build/build.ninja ] || { failed=$((failed + 1)); cat build.setup.log >&2; }
fi

if [ "$quick" = 0 ]; then
	if CC=clang configure build-san -Dwerror=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dfuzz=enabled && build build-san; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		# Leaks inside DPDK's net_af_xdp and libbpf are not ours to fix.
		export LSAN_OPTIONS=suppressions=$(pwd)/test/lsan.supp:print_suppressions=0
		run build-san unit-san --suite unit --timeout-multiplier 3
		run build-san netns-san --suite netns --timeout-multiplier 3
		run build-san fuzz --suite fuzz
		unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
	else
		[ -f build-san/build.ninja ] || { failed=$((failed + 1)); cat build-san.setup.log >&2; }
	fi

	# What clients link (protocol library, client, address pool) must
	# build and pass without DPDK.
	if configure build-nodpdk -Dwerror=true -Ddpdk=disabled -Dbpf=disabled &&
	   build build-nodpdk; then
		run build-nodpdk nodpdk --suite unit
	else
		[ -f build-nodpdk/build.ninja ] ||
			{ failed=$((failed + 1)); cat build-nodpdk.setup.log >&2; }
	fi

	if [ -n "$pkgcfg" ]; then
		if PKG_CONFIG_PATH= configure build-stock -Dwerror=true -Dfuzz=disabled &&
		   build build-stock; then
			run build-stock stock flash-umem
		else
			[ -f build-stock/build.ninja ] ||
				{ failed=$((failed + 1)); cat build-stock.setup.log >&2; }
		fi
	fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
