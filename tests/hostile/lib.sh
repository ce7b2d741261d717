# SPDX-License-Identifier: Apache-2.0
# lib.sh - shared helpers for the hostile-peer tests. Each test attacks one
# route of a running relay while a second route, "witness", serves a good
# guest, and checks the bounds it states:
#   - the relay is alive;
#   - the witness answers `adb shell echo ok` within 1 s;
#   - the control socket answers `status` within 100 ms;
#   - the relay's peak resident memory stays under the test's bound;
#   - its log grows by at most the test's number of lines.
#
#   hostile_setup NAME      setup_test, plus the witness guest
#   witness_route           print the witness route's configuration block
#   witness_connect         adb connect to the witness
#   bounds_begin            start a measured period (peak RSS reset, log mark)
#   check_live              the first three bounds, now
#   check_bounds KB LINES   all five, over the period since bounds_begin
#   live_during PID WHAT    check_live every 0.3 s while PID runs (60 s at most)
#   RSS_SCALE               what memory bounds are multiplied by (sanitizers)
#   CPU_SCALE               what CPU bounds are multiplied by (sanitizers)
#   pc_attach SERIAL        the real adb client as the attacked route's PC
#   pc_check SERIAL WHAT    its server is the same process and lists SERIAL
#
# Sourced after tests/integration/lib.sh's conventions (top_builddir ...).

. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

WITNESS_LIMIT_S=${WITNESS_LIMIT_S:-1}
# memory bounds grow RSS_SCALE times in a sanitizer build (shadow memory,
# redzones, the allocator's quarantine)
RSS_SCALE=1
# and CPU bounds CPU_SCALE times (every access checked)
CPU_SCALE=1
if ldd "$RELAY" 2>/dev/null | grep -q -e libasan -e libubsan; then RSS_SCALE=4 CPU_SCALE=3; fi
STATUS_WORST_MS=0
WITNESS_WORST_MS=0
BOUNDS_LOG0=0
STATUS_LIMIT_MS=${STATUS_LIMIT_MS:-100}

hostile_setup() {
	setup_test "$1"
	start_guest WITNESS_GUEST_PID "unix:$TMP/witness.sock"
	WITNESS_PORT=$(free_port)
}

witness_route() {
	cat <<CONF
route witness {
    front tcp:127.0.0.1:$WITNESS_PORT
    target unix:$TMP/witness.sock
}
CONF
}

witness_connect() {
	adb_connect "127.0.0.1:$WITNESS_PORT"
}

# The relay's resident memory now and at its peak since the last reset, in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$RELAY_PID/status"; }
peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$RELAY_PID/status"; }
log_lines() { wc -l <"$RELAY_LOG"; }

bounds_begin() {
	relay_alive
	echo 5 >"/proc/$RELAY_PID/clear_refs" || fail "cannot reset the relay's peak RSS"
	BOUNDS_LOG0=$(log_lines)
	BOUNDS_T0=$(date +%s%N)
	STATUS_WORST_MS=0
	WITNESS_WORST_MS=0
}

# Milliseconds the control socket takes to answer `status` in full.
status_ms() {
	python3 - "$CONTROL" <<'PY'
import socket, sys, time
t0 = time.monotonic()
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"status\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
ms = (time.monotonic() - t0) * 1000
if b"route" not in data:
    print("bad-reply")
else:
    print("%.1f" % ms)
PY
}

check_live() {
	local what=${1:-now} t0 t1 ms out
	relay_alive
	out=$(status_ms) || fail "control socket did not answer status ($what)"
	[ "$out" != bad-reply ] || fail "control socket gave no status ($what)"
	awk -v m="$out" -v l="$STATUS_LIMIT_MS" 'BEGIN { exit !(m <= l) }' ||
		fail "control status took $out ms ($what; bound $STATUS_LIMIT_MS ms)"
	awk -v m="$out" -v w="$STATUS_WORST_MS" 'BEGIN { exit !(m > w) }' && STATUS_WORST_MS=$out
	t0=$(date +%s%N)
	out=$(timeout 10 adb -s "127.0.0.1:$WITNESS_PORT" shell echo ok 2>&1) ||
		fail "witness route did not answer ($what): $out"
	t1=$(date +%s%N)
	assert_eq "$out" "ok" "witness shell ($what)"
	ms=$(( (t1 - t0) / 1000000 ))
	[ "$ms" -le $((WITNESS_LIMIT_S * 1000)) ] ||
		fail "witness answered in $ms ms ($what; bound ${WITNESS_LIMIT_S} s)"
	[ "$ms" -gt "$WITNESS_WORST_MS" ] && WITNESS_WORST_MS=$ms
	return 0
}

# check_bounds RSS_MAX_KB LOG_LINES_MAX [WHAT]
check_bounds() {
	local rss_max=$1 lines_max=$2 what=${3:-attack} peak grown
	check_live "after $what"
	peak=$(peak_rss_kb)
	grown=$(( $(log_lines) - BOUNDS_LOG0 ))
	log "bounds ($what): peak_rss_kb=$peak (max $rss_max) log_lines=$grown (max $lines_max)" \
		"status_worst_ms=$STATUS_WORST_MS witness_worst_ms=$WITNESS_WORST_MS" \
		"cpu_ticks=$(cpu_ticks)"
	[ "$peak" -le "$rss_max" ] || fail "relay peak RSS $peak KiB over the bound of $rss_max KiB ($what)"
	[ "$grown" -le "$lines_max" ] || fail "relay log grew $grown lines, bound $lines_max ($what)"
}

live_during() {
	local pid=$1 what=$2 i=0 end=$(( $(date +%s) + 60 ))
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 200 ]; do
		[ "$(date +%s)" -lt "$end" ] || fail "$what: ran past 60 s"
		check_live "during $what"
		i=$((i + 1))
		sleep 0.3
	done
	log "$what: $i live checks during the attack"
}

# The relay lets LOG_BURST lines of one cause through per LOG_WINDOW_S
# (relay/sys/sys.h); a cause's window opened before the period may turn
# within it, so a period of T s sees floor(T / LOG_WINDOW_S) + 2 windows.
LOG_BURST=5
LOG_WINDOW_S=10
log_windows() { echo $(( ($(date +%s%N) - BOUNDS_T0) / (LOG_WINDOW_S * 1000000000) + 2 )); }

# check_log_rate WHAT: since bounds_begin, no cause (a line with its
# numbers, addresses and quoted text taken out) logged more than LOG_BURST
# lines a window
check_log_rate() {
	local what=$1 max worst
	max=$(( LOG_BURST * $(log_windows) ))
	worst=$(tail -n +$((BOUNDS_LOG0 + 1)) "$RELAY_LOG" | cut -d' ' -f2- |
		sed -E 's/"[^"]*"/"."/g; s/ \([0-9]+ similar suppressed\)//; s/[0-9]+/#/g' |
		sort | uniq -c | sort -rn | head -n 1)
	log "log rate ($what): busiest cause ${worst:-none} (max $max lines)"
	[ -z "$worst" ] || [ "$(echo $worst | cut -d' ' -f1)" -le "$max" ] ||
		fail "relay logged one cause more than $LOG_BURST times a ${LOG_WINDOW_S} s window ($what): $worst"
}

# utime + stime of the relay, in clock ticks, since it started
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$RELAY_PID/stat"; }

# The PC of a guest-side attack is the real adb client (Debian 12's adb 29):
# the relay must keep a guest from crashing or wedging its server.
adb_server_pid() { pgrep -f "tcp:$ANDROID_ADB_SERVER_PORT fork-server" | head -n 1; }

pc_attach() {
	timeout 10 adb connect "$1" >/dev/null 2>&1
	PC_SERVER_PID=$(adb_server_pid)
	[ -n "$PC_SERVER_PID" ] || fail "no adb server found"
}

pc_check() {
	local serial=$1 what=$2
	[ "$(adb_server_pid)" = "$PC_SERVER_PID" ] || fail "$what: the PC's adb server is not the same process"
	timeout 5 adb devices >"$TMP/devices" || fail "$what: adb devices hung"
	grep -q "^$serial[[:space:]]" "$TMP/devices" || fail "$what: adb no longer lists $serial"
}

# hostile_relay CONF-TEXT: start the relay with the witness and CONF-TEXT,
# connect adb to the witness and check it before the attack.
hostile_relay() {
	{ echo "probe-interval 0"; witness_route; printf '%s\n' "$1"; } >"$TMP/relay.conf"
	start_relay -c "$TMP/relay.conf"
	witness_connect
	check_live "before the attack"
}
