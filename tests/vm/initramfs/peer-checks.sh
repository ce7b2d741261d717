# SPDX-License-Identifier: Apache-2.0
# peer-checks.sh - what every adb client must show through the relay to
# the real adbd, whichever front and target carry it. POSIX sh: sourced by
# lab scenarios inside a guest (busybox ash) and by host-side lab tests
# (bash). The caller sets:
#   ADB      the client command (adb, adb34, or a host function)
#   SERIAL   the device as the client lists it
#   CTL      adbd-relayctl with its -s SOCKET, ROUTE the route's name
#   DACK     1 when this client offers delayed_ack (ADB_DELAYED_ACK=1)
#   WORK     a scratch directory; NC the netcat to run ("busybox nc")
#   ECHO_PORT  a port where the device side runs an echo server
#   pc_fail MSG / pc_info MSG  how to report
#   restart_adbd  a command that kills the device's adbd and starts it again
# and calls pc_all (or the checks one by one).

pc_adb() { timeout 120 $ADB -s "$SERIAL" "$@"; }
pc_tid() { $ADB devices -l | sed -n "s/^$SERIAL .*transport_id:\([0-9]*\).*/\1/p"; }

# pc_until SECS CMD...: run CMD until it succeeds (0) or SECS pass (1)
pc_until() {
	pc_end=$(( $(date +%s) + $1 ))
	shift
	until "$@" > /dev/null 2>&1; do
		[ "$(date +%s)" -le "$pc_end" ] || return 1
		sleep 0.2
	done
}
# pc_listening PORT: a TCP socket here listens on PORT
pc_listening() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		grep -Eqi "^ *[0-9]+: [0-9A-F]+:$(printf '%04X' "$1") [0-9A-F]+:0000 0A "
}

# shell: exit status (shell v2), no pty with -T, a pty with -tt, stdin
pc_shell() {
	out=$(pc_adb shell 'echo real-$((6 * 7))') || pc_fail "adb shell failed"
	[ "$out" = real-42 ] || pc_fail "adb shell printed '$out', expected real-42"
	pc_adb shell 'exit 7'
	rc=$?
	[ $rc = 7 ] || pc_fail "adb shell 'exit 7' gave exit status $rc"
	out=$(pc_adb shell -T tty)
	[ "$out" = "not a tty" ] || pc_fail "adb shell -T tty printed '$out', expected no tty"
	out=$(pc_adb shell -tt tty | tr -d '\r')
	case $out in /dev/pts/*) ;; *) pc_fail "adb shell -tt tty printed '$out', expected a pty" ;; esac
	out=$(printf 'one\ntwo\nthree\n' | pc_adb shell -T 'wc -l')
	[ "$(echo $out)" = 3 ] || pc_fail "3 lines of stdin counted as '$out'"
	head -c 3000000 /dev/urandom > "$WORK/stdin.bin"
	want=$(sha256sum < "$WORK/stdin.bin" | cut -d' ' -f1)
	got=$(pc_adb shell -T sha256sum < "$WORK/stdin.bin" | cut -d' ' -f1)
	[ "$got" = "$want" ] || pc_fail "3 MB through shell stdin arrived with sha256 $got, sent $want"
	rm -f "$WORK/stdin.bin"
	# many small writes queue while the device side reads nothing for 2 s
	# (newer guest kernels reset a stream that queues too many small packets)
	out=$(seq 1 5000 | pc_adb shell -T 'sleep 2; wc -l')
	[ "$(echo $out)" = 5000 ] || pc_fail "5000 small lines of stdin counted as '$out'"
}

# push and pull of sizes around the sync chunk (64 KiB), the relay's
# buffers and max payload (64 and 256 KiB), adb's max payload (1 MiB)
PC_SIZES="0 1 65535 65536 65537 262143 262144 262145 1048575 1048576 1048577 4194305 16777216"
pc_pushpull() {
	pc_adb shell 'rm -rf /tmp/pp; mkdir -p /tmp/pp' || pc_fail "cannot make /tmp/pp on the device"
	for n in $PC_SIZES; do
		head -c "$n" /dev/urandom > "$WORK/up.$n"
		want=$(sha256sum < "$WORK/up.$n" | cut -d' ' -f1)
		pc_adb push "$WORK/up.$n" "/tmp/pp/f.$n" > "$WORK/push.log" 2>&1 ||
			pc_fail "push of $n bytes: $(tail -n 2 "$WORK/push.log")"
		dev=$(pc_adb shell "sha256sum /tmp/pp/f.$n" | cut -d' ' -f1)
		[ "$dev" = "$want" ] || pc_fail "pushed $n bytes arrived with sha256 $dev, sent $want"
		pc_adb pull "/tmp/pp/f.$n" "$WORK/down.$n" > "$WORK/pull.log" 2>&1 ||
			pc_fail "pull of $n bytes: $(tail -n 2 "$WORK/pull.log")"
		got=$(sha256sum < "$WORK/down.$n" | cut -d' ' -f1)
		[ "$got" = "$want" ] || pc_fail "pulled $n bytes came back with sha256 $got, pushed $want"
		rm -f "$WORK/up.$n" "$WORK/down.$n"
	done
	pc_adb shell 'rm -rf /tmp/pp'
}

# echo LINE through tcp:PORT on this side: what came back
pc_echo_via() {
	(echo "$2"; sleep 1) | $NC -w 3 127.0.0.1 "$1" 2>/dev/null | head -n 1
}

# adb forward to the device's echo server; adb reverse to a listener here
pc_forward() {
	pc_adb forward --remove-all
	pc_adb forward "tcp:$PC_FWD_PORT" "tcp:$ECHO_PORT" > /dev/null || pc_fail "adb forward"
	got=$(pc_echo_via "$PC_FWD_PORT" "fwd-$SERIAL")
	[ "$got" = "fwd-$SERIAL" ] || pc_fail "the forward echoed '$got'"
	pc_adb forward --list > "$WORK/fwd.list"
	grep -q "tcp:$PC_FWD_PORT tcp:$ECHO_PORT" "$WORK/fwd.list" || pc_fail "forward --list: $(cat "$WORK/fwd.list")"
}
pc_reverse() {
	pc_adb reverse --remove-all
	# the device listens on another port (in a lab guest both sides share one machine)
	dport=$((PC_REV_PORT + 1000))
	pc_adb reverse "tcp:$dport" "tcp:$PC_REV_PORT" > /dev/null || pc_fail "adb reverse"
	rm -f "$WORK/rev.out"
	$NC -l -p "$PC_REV_PORT" -e /bin/sh -c "cat > $WORK/rev.out" 2>/dev/null &
	nc_pid=$!
	$CTL trace "$ROUTE" > "$WORK/rev.trace" 2>&1 &
	tpid=$!
	pc_until 20 pc_listening "$PC_REV_PORT" || pc_fail "the listener for adb reverse never listened"
	pc_adb shell "(echo rev-from-device; sleep 2) | $PC_DEVICE_NC -w 3 127.0.0.1 $dport" > "$WORK/rev.dev" 2>&1 ||
		pc_fail "the device could not connect to its reverse forward: $(cat "$WORK/rev.dev")"
	pc_until 20 grep -q rev-from-device "$WORK/rev.out"
	kill $nc_pid $tpid 2>/dev/null; wait $nc_pid $tpid 2>/dev/null
	grep -q rev-from-device "$WORK/rev.out" ||
		pc_fail "nothing arrived through adb reverse; the device said '$(cat "$WORK/rev.dev")', reverse list: $(pc_adb reverse --list), the relay saw: $(grep -v ' WRTE \| OKAY ' "$WORK/rev.trace" | sed 's/.* adb //' | tr '\n' ';')"
	pc_adb reverse --remove-all
}

# four shells at once, each with its own output
pc_concurrent() {
	pids=""
	for i in 1 2 3 4; do
		pc_adb shell "seq 1 3000 | sed s/^/$i-/" > "$WORK/conc.$i" &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids
	for i in 1 2 3 4; do
		n=$(grep -c "^$i-" "$WORK/conc.$i")
		[ "$n" = 3000 ] || pc_fail "concurrent shell $i printed $n of its 3000 lines"
		grep -qv "^$i-" "$WORK/conc.$i" && pc_fail "concurrent shell $i printed another shell's lines"
	done
	rm -f "$WORK"/conc.*
}

pc_traced_shell() {
	pc_adb shell true
	grep -q ' adb host->guest OPEN ' "$1" && grep -q ' adb guest->host OKAY ' "$1"
}

# the features both sides use, and delayed_ack end to end: the host's OPEN
# offers a window in arg1 and the device's first OKAY carries it (4 bytes)
pc_features() {
	feats=$(pc_adb features 2>/dev/null | tr '\n' ' ')
	pc_info "$SERIAL features: $feats"
	$CTL trace "$ROUTE" > "$WORK/trace.out" 2>&1 &
	tpid=$!
	# shells until the trace shows one's OPEN and the device's OKAY (the
	# trace client subscribes, and its lines arrive, in their own time)
	pc_until 60 pc_traced_shell "$WORK/trace.out"
	kill $tpid; wait $tpid 2>/dev/null
	open=$(grep ' adb host->guest OPEN ' "$WORK/trace.out" | tail -n 1)
	okay=$(grep ' adb guest->host OKAY ' "$WORK/trace.out" | head -n 1)
	[ -n "$open" ] || pc_fail "the trace shows no OPEN: $(head -n 3 "$WORK/trace.out")"
	if [ "${DACK:-0}" = 1 ]; then
		case " $feats " in *delayed_ack*) ;; *) pc_fail "delayed_ack not in the features: $feats" ;; esac
		echo "$open" | grep -q ' arg1=33554432 ' || pc_fail "delayed_ack: the OPEN offers no window: $open"
		grep -q ' adb guest->host OKAY .* len=4' "$WORK/trace.out" ||
			pc_fail "delayed_ack: no OKAY carries the window: $okay"
		pc_info "$SERIAL delayed_ack negotiated: OPEN arg1=33554432, OKAY len=4"
	else
		echo "$open" | grep -q ' arg1=0 ' || pc_fail "OPEN with a window without delayed_ack: $open"
	fi
}

# adbd dies and comes back: same transport, forwards kept and working
pc_restart() {
	pc_forward
	tid=$(pc_tid)
	pc_adb forward --list > "$WORK/fwd.before"
	restart_adbd || pc_fail "could not restart adbd"
	ok=0
	for _ in $(seq 1 100); do
		timeout 5 $ADB -s "$SERIAL" shell true > /dev/null 2>&1 && { ok=1; break; }
		sleep 0.2
	done
	[ $ok = 1 ] || pc_fail "no shell after adbd restarted"
	[ "$(pc_tid)" = "$tid" ] || pc_fail "transport id changed from $tid to $(pc_tid) across the adbd restart"
	pc_adb forward --list > "$WORK/fwd.after"
	cmp -s "$WORK/fwd.before" "$WORK/fwd.after" ||
		pc_fail "forward list changed across the restart: before '$(cat "$WORK/fwd.before")' after '$(cat "$WORK/fwd.after")'"
	got=$(pc_echo_via "$PC_FWD_PORT" "again-$SERIAL")
	[ "$got" = "again-$SERIAL" ] || pc_fail "the forward echoed '$got' after the restart"
}

pc_all() {
	for c in shell features pushpull forward reverse concurrent restart; do
		t0=$(date +%s)
		"pc_$c"
		pc_info "$SERIAL $c ok ($(( $(date +%s) - t0 )) s)"
	done
}
