# SPDX-License-Identifier: Apache-2.0
# lib.sh - shared helpers for the integration tests: free ports, a private
# adb server per test, the test guest and the relay started and always
# reaped, and assertions that say what failed.
#
# Every test sources this file, then calls setup_test NAME.

set -u

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
RELAY=$top_builddir/relay/adbd-relay
# a sanitizer build keeps freed blocks in a 256 MiB quarantine, which the
# held frames of pipelined streams (relay/pipeline.h, one heap block each)
# fill in a few pushes: memory bounds are about the relay, not ASan
if ldd "$RELAY" 2>/dev/null | grep -q libasan; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
fi
RELAYCTL=$top_builddir/relay/adbd-relayctl
GUEST=$top_builddir/tests/guest/adbd-testguest
PIDS=""
TEST_NAME=test

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
# fail MESSAGE: the relay log's end, then MESSAGE as the last line a reader
# of a truncated CI log sees
fail() {
	if [ -n "${RELAY_LOG:-}" ] && [ -f "$RELAY_LOG" ]; then
		echo "--- relay log (last 30 lines)" >&2
		tail -n 30 "$RELAY_LOG" >&2
		echo "---" >&2
	fi
	printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# need COMMAND PACKAGE: skip the test (exit 77, which make check reports as
# SKIP and tests/suite.sh counts as a failure) when COMMAND is missing;
# PACKAGE names the Debian package that has it.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	printf '[%s] SKIP: %s is not installed (Debian package %s; tests/install-deps.sh installs it)\n' \
		"$TEST_NAME" "$1" "$2"
	exit 77
}

# want COMMAND PACKAGE WHAT: 0 when COMMAND is installed; else say that
# WHAT is not checked and return 1, and the test, having passed the rest,
# ends with 77 (SKIP) through end_test instead of 0.
PARTS_SKIPPED=""
want() {
	command -v "$1" >/dev/null 2>&1 && return 0
	printf '[%s] SKIP (part): %s not checked: %s is not installed (Debian package %s)\n' \
		"$TEST_NAME" "$3" "$1" "$2"
	PARTS_SKIPPED="$PARTS_SKIPPED $1"
	return 1
}
end_test() {
	[ -z "$PARTS_SKIPPED" ] && exit 0
	printf '[%s] SKIP: passed without%s\n' "$TEST_NAME" "$PARTS_SKIPPED"
	exit 77
}

# A TCP port nothing listens on, outside adb's emulator range 5554-5585.
free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cleanup() {
	local rc=$?
	if [ -n "${ANDROID_ADB_SERVER_PORT:-}" ]; then
		timeout 10 adb kill-server >/dev/null 2>&1
	fi
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	if { [ $rc -eq 0 ] || [ $rc -eq 77 ]; } && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$TMP"; else echo "[$TEST_NAME] files kept in $TMP" >&2; fi
	exit $rc
}

setup_test() {
	TEST_NAME=$1
	need adb adb
	need python3 python3
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/adbd-relay-$TEST_NAME.XXXXXX")
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	ANDROID_ADB_SERVER_PORT=$(free_port)
	export ANDROID_ADB_SERVER_PORT
	[ -x "$RELAY" ] || fail "$RELAY not built"
	[ -x "$GUEST" ] || fail "$GUEST not built"
	timeout 20 adb start-server >/dev/null 2>&1 || fail "adb start-server failed"
}

# Wait up to $1 seconds for command "$2..." to succeed.
wait_for() {
	local secs=$1; shift
	local end=$(( $(date +%s%N) + secs * 1000000000 ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# start_guest VAR SPEC...: run the test guest; its pid goes into $VAR.
start_guest() {
	local var=$1; shift
	local args="" out="$TMP/guest.$$.$RANDOM"
	for spec in "$@"; do args="$args --listen $spec"; done
	# shellcheck disable=SC2086
	"$GUEST" $args >"$out.out" 2>>"$TMP/guest.log" &
	local pid=$!
	PIDS="$PIDS $pid"
	wait_for 10 grep -q READY "$out.out" || fail "test guest did not start ($*)"
	eval "$var=$pid"
}

# start_relay ARGS...: run adbd-relay with a private control socket.
start_relay() {
	CONTROL=$TMP/control.sock
	RELAY_LOG=$TMP/relay.log
	"$RELAY" -s "$CONTROL" "$@" 2>>"$RELAY_LOG" &
	RELAY_PID=$!
	PIDS="$PIDS $RELAY_PID"
	wait_for 10 test -S "$CONTROL" || fail "relay did not start: $(tail -n 5 "$RELAY_LOG")"
}

relayctl() { "$RELAYCTL" -s "$CONTROL" "$@"; }

# make_vars BUILDDIR VAR...: VAR='value' for each VAR, as the Makefile of
# BUILDDIR has it, for eval (the make running the tests stays out of it)
make_vars() {
	local dir=$1 v rule="print-vars:"$'\n\t'"@echo"
	shift
	for v in "$@"; do rule="$rule \"$v='\$($v)'\""; done
	printf '%s\n' "$rule" | env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s --no-print-directory -C "$dir" -f Makefile -f - print-vars
}

# install_dirs: sbindir, bindir and sysconfdir as configured, which the
# units and init scripts made from init/*.in name (make check exports them;
# a test run by hand asks the build tree's Makefile)
install_dirs() {
	[ -n "${sbindir:-}" ] && [ -n "${bindir:-}" ] && [ -n "${sysconfdir:-}" ] && return 0
	local dirs
	dirs=$(make_vars "$top_builddir" sbindir bindir sysconfdir) ||
		fail "cannot read the installation directories from $top_builddir/Makefile"
	eval "$dirs"
}

# json_get EXPR: evaluate a Python expression over the status JSON (as s).
json_get() {
	relayctl status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}

relay_alive() { kill -0 "$RELAY_PID" 2>/dev/null || fail "the relay died"; }

adb_connect() {
	local serial=$1
	timeout 20 adb connect "$serial" >/dev/null 2>&1 || fail "adb connect $serial failed"
	timeout 20 adb -s "$serial" wait-for-device || fail "$serial never came online"
}

transport_id() {
	adb devices -l | awk -v s="$1" '$1 == s { for (i = 1; i <= NF; i++) if ($i ~ /^transport_id:/) { sub("transport_id:", "", $i); print $i } }'
}

device_state() {
	adb devices | awk -v s="$1" '$1 == s { print $2 }'
}

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# netns_pair NAME "$@": run the calling test again inside a network namespace
# of its own, NAME-a, joined by a veth pair (mdns0 10.77.0.1/24 in NAME-a,
# mdns1 10.77.0.2/24) to a second one, NAME-b ($PEER_NS in the run inside),
# so multicast stays between the two. The namespaces are removed after.
# Needs root: without it the test is skipped.
netns_pair() {
	local ns=$1-$$ rc
	shift
	if [ -n "${PEER_NS:-}" ]; then return 0; fi
	[ "$(id -u)" = 0 ] || { echo "[$TEST_NAME] SKIP: needs root for its network namespaces" >&2; exit 77; }
	need ip iproute2
	ip netns add "$ns-a" || fail "ip netns add $ns-a"
	if ! ip netns add "$ns-b"; then ip netns del "$ns-a"; fail "ip netns add $ns-b"; fi
	ip -n "$ns-a" link add mdns0 type veth peer name mdns1 netns "$ns-b" &&
		ip -n "$ns-a" addr add 10.77.0.1/24 dev mdns0 &&
		ip -n "$ns-b" addr add 10.77.0.2/24 dev mdns1 &&
		ip -n "$ns-a" link set lo up && ip -n "$ns-b" link set lo up &&
		ip -n "$ns-a" link set mdns0 up && ip -n "$ns-b" link set mdns1 up
	rc=$?
	[ $rc -eq 0 ] && { PEER_NS=$ns-b ip netns exec "$ns-a" bash "$0" "$@"; rc=$?; }
	ip netns del "$ns-a"
	ip netns del "$ns-b"
	exit $rc
}

# zeroconf_python: a python3 that has python3-zeroconf, in $ZC_PY (or a skip)
zeroconf_python() {
	for ZC_PY in python3 /usr/bin/python3; do
		"$ZC_PY" -c 'import zeroconf' 2>/dev/null && return 0
	done
	printf '[%s] SKIP: python3-zeroconf is not installed (tests/install-deps.sh installs it)\n' "$TEST_NAME"
	exit 77
}
