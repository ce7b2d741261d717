#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# suite.sh - the whole test suite, as CI runs it: install what is missing,
# build with --enable-werror and run `make check`, run it again under
# ASan+UBSan, cross-build for arm64 and armhf and run their unit tests
# under qemu-user, run `make distcheck` (the tarball builds out of tree from a
# read-only source tree, installs, uninstalls and cleans up; its make check
# runs a reduced list, DISTCHECK_TESTS), then run every fuzz target for
# FUZZ_SECONDS each (default 60).
#
# A skipped test (exit 77: a tool or library missing, no root) fails the
# suite like a failed one: CI proves everything or says what it did not.
#
#   tests/suite.sh                   everything
#   tests/suite.sh --count-log FILE  only count the results of an automake
#                                    test-suite.log (or make check output)
#                                    as the suite does, and fail as it would
set -euo pipefail
pass=0; fail=0; skip=0; skipped=""

# count FILE: add the results of an automake test-suite.log, or of the
# output of a make check (distcheck's log is gone once it passed), to
# pass, fail and skip; the names of skipped tests to skipped
count() {
	local p f e s names
	p=$(sed -n 's/^# PASS: *//p' "$1" | head -n 1); f=$(sed -n 's/^# FAIL: *//p' "$1" | head -n 1)
	e=$(sed -n 's/^# ERROR: *//p' "$1" | head -n 1); s=$(sed -n 's/^# SKIP: *//p' "$1" | head -n 1)
	pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0} + ${e:-0})); skip=$((skip + ${s:-0}))
	# test-suite.log: a "SKIP: NAME" heading underlined with '='; make's
	# output: a "SKIP: NAME" line per test (colours off: AM_COLOR_TESTS=no)
	if grep -q '^\.\. contents::' "$1"; then
		names=$(awk 'prev ~ /^SKIP: / && /^=+$/ { print substr(prev, 7) } { prev = $0 }' "$1")
	else
		names=$(sed -n 's/^SKIP: //p' "$1")
	fi
	[ -z "$names" ] || skipped="$skipped $(echo $names)"
	if [ "${s:-0}" -gt 0 ] && [ -z "$names" ]; then skipped="$skipped (${s} unnamed in $1)"; fi
	return 0
}

# verdict: print the totals and the skipped tests; 0 when nothing failed
# or was skipped
verdict() {
	echo "suite: $pass passed, $fail failed, $skip skipped"
	if [ "$skip" -gt 0 ]; then
		echo "suite: skipped (each a failure of the suite: their logs say what is missing):$skipped"
		return 1
	fi
	[ "$fail" -eq 0 ]
}

if [ "${1:-}" = --count-log ]; then
	[ $# -eq 2 ] && [ -r "$2" ] || { echo "usage: $0 --count-log TEST-SUITE-LOG" >&2; exit 2; }
	count "$2"
	verdict
	exit
fi

cd "$(dirname "$0")/.."
top=$(pwd)
tests/install-deps.sh
autoreconf -fi >/dev/null
jobs=$(nproc)
export AM_COLOR_TESTS=no
# both builds share one VM lab cache (kernel package, static build, images)
export LAB_CACHE=$top/_build/vm-lab

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
	[ $rc -eq 0 ] || collect_failed "$dir"
	return $rc
}

# collect_failed DIR: add the logs of DIR's failed tests to failed_logs
collect_failed() {
	local trs
	while read -r trs; do
		grep -Eq '^:test-result: (FAIL|ERROR)' "$trs" && failed_logs="$failed_logs ${trs%.trs}.log"
	done < <(find "$1/tests" -name '*.trs')
	return 0
}

# the end of every failed test's log, last, where a reader of CI's output
# looks first
show_failed() {
	local l
	for l in $failed_logs; do
		echo "=== failed: ${l#$top/} (its last 80 lines)"
		tail -n 80 "$l"
	done
}

# run_cross ARCH TRIPLET QEMU FILE-SAYS: cross-build for ARCH with Debian's
# toolchain and multiarch libraries, --enable-werror, check that the daemon
# is such a binary (file(1) says FILE-SAYS), and run the unit tests under
# qemu-user (UNIT_EMULATED: memory is measured without the emulator's own;
# check's 4 s per test times 4: emulated code runs ten times slower or more)
run_cross() {
	local arch=$1 triplet=$2 qemu=$3 says=$4 dir=$top/_build/cross-$1 rc=0
	rm -rf "$dir"; mkdir -p "$dir"
	echo "=== cross $arch: configure --host=$triplet --enable-werror, unit tests under $qemu"
	(cd "$dir" && "$top/configure" -q --host="$triplet" --enable-werror && make -s -j"$jobs" &&
		file relay/adbd-relay | grep -q "$says" &&
		make -s -j"$jobs" check-unit LOG_COMPILER="$qemu" UNIT_EMULATED=1 CK_TIMEOUT_MULTIPLIER=4) || rc=$?
	if [ -f "$dir/test-suite.log" ]; then count "$dir/test-suite.log"; else fail=$((fail + 1)); fi
	[ $rc -eq 0 ] || collect_failed "$dir"
	return $rc
}

status=0
failed_logs=""
run_build plain --enable-werror || status=1
run_build sanitizers --enable-werror --enable-sanitizers || status=1
run_cross arm64 aarch64-linux-gnu qemu-aarch64-static "ARM aarch64" || status=1
run_cross armhf arm-linux-gnueabihf qemu-arm-static "ARM, EABI5" || status=1

# make distcheck: the tarball (EXTRA_DIST complete?) configured with
# --enable-werror out of tree, its source read-only, make, make check of
# the tests that need neither adb nor the VM lab (TESTS given on the
# command line reaches distcheck's inner make check), install, uninstall,
# distclean. The full suite ran above.
DISTCHECK_TESTS='$(UNIT_TESTS) tests/integration/docs.test tests/integration/systemd-units.test
	tests/integration/install.test tests/integration/init-scripts.test'
echo "=== distcheck: make distcheck TESTS='$(echo $DISTCHECK_TESTS)'"
ddir=$top/_build/dist
rm -rf "$ddir"; mkdir -p "$ddir"
t0=$(date +%s)
if (cd "$ddir" && "$top/configure" -q &&
	make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror \
		TESTS="$(echo $DISTCHECK_TESTS)" >distcheck.log 2>&1); then
	count "$ddir/distcheck.log"
	grep -A 3 'archives ready for distribution' "$ddir/distcheck.log" || true
	echo "=== distcheck: passed in $(( $(date +%s) - t0 )) s"
else
	f0=$fail
	count "$ddir/distcheck.log"
	# failed before or after its tests (a build, install or clean step)
	[ "$fail" -gt "$f0" ] || fail=$((fail + 1))
	tail -n 60 "$ddir/distcheck.log"
	echo "=== distcheck: FAILED after $(( $(date +%s) - t0 )) s"
	status=1
fi

echo "=== fuzz: every target, ${FUZZ_SECONDS:-60} s each"
fdir=$top/_build/fuzz
rm -rf "$fdir"; mkdir -p "$fdir"
if (cd "$fdir" && "$top/configure" -q CC=clang --enable-werror --enable-fuzzing &&
	make -s -j"$jobs" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" >fuzz.log 2>&1); then
	grep '^fuzz:\|^Done\|^stat::number_of_executed_units' "$fdir/fuzz.log"
	pass=$((pass + 1))
else
	tail -n 60 "$fdir/fuzz.log"
	fail=$((fail + 1)); status=1
fi

show_failed
verdict || status=1
exit $status
