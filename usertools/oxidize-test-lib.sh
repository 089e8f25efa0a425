# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
# Functions of usertools/oxidize-test.sh, sourced by it and by
# test/unit/test_runner.sh. They add to the caller's $passed, $failed and
# $skipped.

# prepare DIR [meson options]: meson setup (or reconfigure an existing
# build directory with these options), then compile. A failure of either
# counts as one failed test and returns 1.
prepare() {
	local dir=$1; shift
	local reconf=()
	[ -f "$dir/build.ninja" ] && reconf=(--reconfigure)
	if ! meson setup "${reconf[@]}" "$dir" "$@" >"$dir.setup.log" 2>&1; then
		echo "oxidize-test: meson setup ${reconf[*]} $dir failed:" >&2
		tail -20 "$dir.setup.log" >&2
		failed=$((failed + 1))
		return 1
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		echo "oxidize-test: build in $dir failed:" >&2
		grep -E "error|FAILED" "$dir.build.log" | head -20 >&2
		failed=$((failed + 1))
		return 1
	fi
}

# counts LOG: "passed failed skipped" of a meson test JSON log, or nothing
# when the log is missing or unreadable.
counts() {
	python3 - "$1" <<'EOF'
import json, sys
p = f = s = 0
try:
    for line in open(sys.argv[1]).read().splitlines():
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
except (OSError, ValueError) as e:
    print("oxidize-test: test log %s: %s" % (sys.argv[1], e), file=sys.stderr)
    sys.exit(1)
print(p, f, s)
EOF
}

# run DIR NAME [meson test args]: run tests, add up their results.
run() {
	local dir=$1 name=$2 rc=0 c p f s; shift 2
	local log="$dir/meson-logs/testlog-$name.json"
	echo "== $dir: $name"
	rm -f "$log"
	meson test -C "$dir" --print-errorlogs --logbase "testlog-$name" "$@" || rc=$?
	if ! c=$(counts "$log"); then
		echo "oxidize-test: $dir $name: meson test exited $rc and left no readable log" >&2
		failed=$((failed + 1))
		return
	fi
	read -r p f s <<<"$c"
	if [ $((p + f + s)) = 0 ]; then
		echo "oxidize-test: $dir $name: the selection holds no test" >&2
		f=1
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "oxidize-test: $dir $name: meson test exited $rc with no failed test logged" >&2
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}
