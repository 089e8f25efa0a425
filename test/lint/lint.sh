#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# One linter over the project's own sources; any finding fails.
#
#   lint.sh shellcheck|flake8|clang-format SRCROOT
#
# Files come from git (what is committed or staged, never a build tree);
# without git, from find with the build trees left out. Exit 77 when the
# linter is not installed (usertools/oxidize-setup.sh installs all three).

set -uo pipefail
tool=${1:?tool}
root=${2:?source root}
cd "$root" || exit 1

# files PATTERN...: the project's files matching the patterns, one per line
files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard -- "$@"
	else
		local args=() p
		for p in "$@"; do
			args+=(-o -name "${p##*/}")
		done
		find . -path './build*' -prune -o \( -false "${args[@]}" \) -print | sed 's|^\./||'
	fi
}

# scripts: shell scripts by name, and by shebang where they have no suffix
shell_scripts() {
	local f
	files '*.sh'
	for f in $(files '.ci/*'); do
		head -n1 "$f" | grep -q '^#!.*\b\(ba\)\?sh\b' && echo "$f"
	done
}

need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "SKIP: $1 is not installed (usertools/oxidize-setup.sh installs it)"
	exit 77
}

case $tool in
shellcheck)
	need shellcheck
	mapfile -t list < <(shell_scripts)
	# -x: follow what the scripts source
	shellcheck -x "${list[@]}"
	;;
flake8)
	# Debian's flake8 module, whichever python3 is first on PATH
	py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	"$py" -m flake8 --version >/dev/null 2>&1 || {
		echo "SKIP: flake8 is not installed (python3-flake8)"
		exit 77
	}
	mapfile -t list < <(files '*.py')
	"$py" -m flake8 "${list[@]}"
	;;
clang-format)
	need clang-format
	mapfile -t list < <(files '*.c' '*.h')
	clang-format --dry-run -Werror "${list[@]}"
	;;
*)
	echo "lint.sh: unknown linter '$tool'" >&2
	exit 2
	;;
esac
rc=$?
[ "$rc" = 0 ] && echo "$tool: ${#list[@]} files, no findings"
exit "$rc"
