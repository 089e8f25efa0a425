#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The test command must fail whenever a step goes wrong. Drive the
# functions of usertools/oxidize-test-lib.sh with stand-ins for meson and
# ninja that misbehave in each way, and check what is counted.
# And test/fuzz/run-fuzz.sh: a fuzzer that fails fails the test, and its
# scratch corpus is removed either way.
#   test_runner.sh LIB RUN_FUZZ
set -u
lib=$(realpath "$1")
run_fuzz=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
# The stand-ins read what to do from $STUB.
cat >"$work/bin/meson" <<'EOF'
#!/bin/bash
case "$1" in
setup)
	case "$STUB" in
	setup-fail) exit 1 ;;
	reconf-fail) for a in "$@"; do [ "$a" = --reconfigure ] && exit 1; done ;;
	esac
	for d in "$@"; do :; done
	exit 0 ;;
test)
	while [ $# -gt 0 ]; do
		case "$1" in -C) dir=$2; shift ;; --logbase) base=$2; shift ;; esac
		shift
	done
	log="$dir/meson-logs/$base.json"
	mkdir -p "$dir/meson-logs"
	case "$STUB" in
	ok) printf '{"result": "OK"}\n{"result": "SKIP"}\n' >"$log"; exit 0 ;;
	fail) printf '{"result": "OK"}\n{"result": "FAIL"}\n' >"$log"; exit 1 ;;
	nolog) exit 1 ;;
	nolog0) exit 0 ;;
	empty) : >"$log"; exit 0 ;;
	badlog) echo "{not json" >"$log"; exit 0 ;;
	rc-only) printf '{"result": "OK"}\n' >"$log"; exit 2 ;;
	esac ;;
esac
EOF
cat >"$work/bin/ninja" <<'EOF'
#!/bin/bash
[ "$STUB" = build-fail ] && { echo "FAILED: x.o"; exit 1; }
exit 0
EOF
chmod +x "$work/bin/meson" "$work/bin/ninja"
export PATH="$work/bin:$PATH"
cd "$work" || exit 1
# shellcheck source=/dev/null
. "$lib"

bad=0
# case NAME STEP EXPECTED_P EXPECTED_F EXPECTED_S
expect() {
	local name=$1 step=$2 ep=$3 ef=$4 es=$5
	passed=0 failed=0 skipped=0
	rm -rf b b.*
	case "$step" in
	run) mkdir -p b; run b t >/dev/null 2>&1 ;;
	prepare) prepare b >/dev/null 2>&1 ;;
	reprepare) mkdir -p b; touch b/build.ninja; prepare b >/dev/null 2>&1 ;;
	esac
	if [ "$passed $failed $skipped" = "$ep $ef $es" ]; then
		echo "ok: $name ($passed passed, $failed failed, $skipped skipped)"
	else
		echo "FAIL: $name: got $passed/$failed/$skipped, want $ep/$ef/$es"
		bad=$((bad + 1))
	fi
}
STUB=ok        expect "a good run counts its tests" run 1 0 1
STUB=fail      expect "a failed test counts" run 1 1 0
STUB=nolog     expect "meson test failing with no log fails" run 0 1 0
STUB=nolog0    expect "a missing log fails even on exit 0" run 0 1 0
STUB=empty     expect "a selection with no test fails" run 0 1 0
STUB=badlog    expect "an unreadable log fails" run 0 1 0
STUB=rc-only   expect "a non-zero exit with only passes logged fails" run 1 1 0
STUB=setup-fail expect "a failed setup fails" prepare 0 1 0
STUB=reconf-fail expect "a failed reconfigure of an existing build fails" reprepare 0 1 0
STUB=build-fail expect "a failed build fails" prepare 0 1 0
STUB=ok        expect "a good setup and build count nothing" prepare 0 0 0

# A stand-in fuzzer: notes its scratch corpus (6th argument), exits $FUZZ_RC.
cat >"$work/bin/fuzzer" <<'EOF'
#!/bin/sh
echo "$6" >"$FUZZ_NOTE"
[ -d "$6" ] || exit 99
exit "$FUZZ_RC"
EOF
chmod +x "$work/bin/fuzzer"
for want in 0 1 77; do
	rc=0
	FUZZ_RC=$want FUZZ_NOTE="$work/note" sh "$run_fuzz" "$work/bin/fuzzer" "$work" 1 \
		>/dev/null 2>&1 || rc=$?
	scratch=$(cat "$work/note")
	if [ "$rc" != "$want" ]; then
		echo "FAIL: run-fuzz.sh: fuzzer exited $want, the test $rc"
		bad=$((bad + 1))
	elif [ -e "$scratch" ]; then
		echo "FAIL: run-fuzz.sh: scratch corpus $scratch left behind"
		bad=$((bad + 1))
	else
		echo "ok: run-fuzz.sh exits $want as its fuzzer did and cleans up"
	fi
done
[ "$bad" = 0 ]
