#!/bin/sh
# Run a test script on this machine as root with fresh uids: every
# `uid=UIDn` placeholder becomes BASE+n, BASE random in 3000000..3999990, so
# no run inherits another's per-user counter (uid 0's is shared with every
# root process, and a uid's counter outlives its processes briefly).
# usage: harness/testdata/run.sh SCRIPT [lockstep-repro options...]
set -eu
here=$(dirname "$0")
script=$1; shift
base=$(( 3000000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') * 10 ))
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
awk -v base="$base" '{
	while (match($0, /uid=UID[0-9]+/)) {
		n = substr($0, RSTART + 7, RLENGTH - 7)
		$0 = substr($0, 1, RSTART - 1) "uid=" (base + n) substr($0, RSTART + RLENGTH)
	}
	print
}' "$script" > "$tmp"
"$here/../build/lockstep-repro" --script "$tmp" "$@"
