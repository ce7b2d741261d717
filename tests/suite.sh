#!/bin/bash
# suite.sh - the whole test suite, as CI runs it: install what is missing,
# build with -Werror and run `make check`, run it again under ASan+UBSan,
# then run every fuzz target for FUZZ_SECONDS each (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
tests/install-deps.sh
autoreconf -fi >/dev/null
jobs=$(nproc)
# both builds share one VM lab cache (kernel package, static build, images)
export LAB_CACHE=$top/_build/vm-lab
pass=0; fail=0

count() { # count results from an automake test-suite.log
	local p f
	p=$(sed -n 's/^# PASS: *//p' "$1" | head -n 1); f=$(sed -n 's/^# FAIL: *//p' "$1" | head -n 1)
	local e; e=$(sed -n 's/^# ERROR: *//p' "$1" | head -n 1)
	pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0} + ${e:-0}))
}

run_build() { # run_build NAME CONFIGURE-ARGS...
	local name=$1; shift
	local dir=$top/_build/$name
	rm -rf "$dir"; mkdir -p "$dir"
	echo "=== $name build: configure $*"
	(cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs")
	echo "=== $name: make check"
	local rc=0
	(cd "$dir" && make -s -j"$jobs" check) || rc=$?
	count "$dir/test-suite.log"
	if [ $rc -ne 0 ]; then
		find "$dir/tests" -name '*.log' -newer "$dir/Makefile" | while read -r l; do
			grep -q '^FAIL\|^ERROR' "${l%.log}.trs" 2>/dev/null && { echo "--- $l"; tail -n 40 "$l"; }
		done
	fi
	return $rc
}

status=0
run_build plain || status=1
run_build sanitizers --enable-sanitizers || status=1

echo "=== fuzz: every target, ${FUZZ_SECONDS:-60} s each"
fdir=$top/_build/fuzz
rm -rf "$fdir"; mkdir -p "$fdir"
if (cd "$fdir" && "$top/configure" -q CC=clang --enable-fuzzing &&
	make -s -j"$jobs" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" >fuzz.log 2>&1); then
	grep '^fuzz:\|^Done\|^stat::number_of_executed_units' "$fdir/fuzz.log"
	pass=$((pass + 1))
else
	tail -n 60 "$fdir/fuzz.log"
	fail=$((fail + 1)); status=1
fi

echo "suite: $pass passed, $fail failed"
exit $status
