#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Run every Oxidize test from a fresh clone: the one test command.
#
#   usertools/oxidize-test.sh [--quick]
#
# 1. usertools/oxidize-setup.sh: packages, hugepages, bpffs, DPDK with
#    shared UMEM (built once, then cached);
# 2. build/       gcc, -Dwerror=true            -> suites lint, unit, netns, bench
#    build-san/   clang, ASan+UBSan, libFuzzer  -> suites unit, netns, fuzz
#    build-nodpdk/ gcc without DPDK (what clients link) -> suite unit
#    build-stock/ gcc against Debian's stock DPDK -> the FLASH fallback test
#    (only when the setup script built its own DPDK);
# 3. prints one closing line: "N passed, N failed, N skipped".
# Exits non-zero if anything failed. Every way for a step to go wrong is a
# failure: a failed configure or reconfigure, a failed build, meson test
# exiting non-zero, a missing test log, a selection that holds no test.
# --quick skips the sanitizer and stock builds (for iterating; the full run
# is what CI does).

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

# prepare, run: usertools/oxidize-test-lib.sh (its own unit test checks
# that every way to go wrong is counted).
. usertools/oxidize-test-lib.sh

export PKG_CONFIG_PATH=$pkgcfg
# Setup installs intel-ipsec-mb: the main build must use it.
if prepare build -Dwerror=true -Dipsecmb=enabled; then
	run build lint --suite lint
	run build unit --suite unit
	run build netns --suite netns
	run build bench --suite bench
fi

if [ "$quick" = 0 ]; then
	if CC=clang prepare build-san -Dwerror=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dfuzz=enabled; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		# Leaks inside DPDK's net_af_xdp and libbpf are not ours to fix.
		export LSAN_OPTIONS=suppressions=$PWD/test/lsan.supp:print_suppressions=0
		run build-san unit-san --suite unit --timeout-multiplier 3
		run build-san netns-san --suite netns --timeout-multiplier 3
		run build-san fuzz --suite fuzz
		unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
	fi

	# What clients link (protocol library, client, address pool) must
	# build and pass without DPDK, and the AEAD on OpenSSL and libsodium
	# alone, as where intel-ipsec-mb is missing.
	if prepare build-nodpdk -Dwerror=true -Ddpdk=disabled -Dbpf=disabled \
		-Dipsecmb=disabled; then
		run build-nodpdk nodpdk --suite unit
	fi

	if [ -n "$pkgcfg" ]; then
		if PKG_CONFIG_PATH="" prepare build-stock -Dwerror=true -Dfuzz=disabled; then
			run build-stock stock flash-umem
		fi
	fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
