# SPDX-License-Identifier: Apache-2.0
# bench-adb.sh - real adb push and pull through the relay against the same
# client straight to the real adbd, in one guest (make bench runs it through
# tests/bench/bench-adb.sh): adb 34 to 127.0.0.1:6520, the relay's TCP
# front (kernel vsock to adbd's vsock:5555), and to 127.0.0.1:5555, adbd's
# own TCP port; with and without delayed_ack; lab.mib= MiB each way
# (default 64) and lab.rounds= rounds (default 3), relay and direct
# interleaved; the medians as "LAB INFO bench ..." lines.

MIB=64
ROUNDS=3
for arg in $(cat /proc/cmdline); do
	case $arg in
	lab.mib=*) MIB=${arg#lab.mib=} ;;
	lab.rounds=*) ROUNDS=${arg#lab.rounds=} ;;
	esac
done

step modules
modload vsock_loopback
ok "kernel $(uname -r)"

step adbd
spawn ADBD_PID /tmp/adbd.log adbd
wait_for 20 sh -c "netstat -ltn | grep -q ':5555 '" || fail "adbd did not listen: $(tail -n 5 /tmp/adbd.log)"
cat > /tmp/relay.conf <<CONF
control /tmp/relay.sock
log-level notice
probe-interval 0
route tcp {
	front tcp:127.0.0.1:6520
	target vsock:1:5555
}
CONF
spawn RELAY_PID /tmp/relay.log adbd-relay -c /tmp/relay.conf
wait_for 10 adbd-relayctl -s /tmp/relay.sock status || fail "relay control socket never answered"
head -c $((MIB * 1024 * 1024)) /dev/urandom > /tmp/bench.bin
ok

# the median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# one timed transfer: ms
timed() {
	t0=$(ms)
	"$@" > /dev/null 2>&1 || fail "$*"
	echo $(( $(ms) - t0 ))
}

port=5040
for client in adb34 adb34-dack; do
	port=$((port + 1))
	export ANDROID_ADB_SERVER_PORT=$port
	if [ $client = adb34-dack ]; then export ADB_DELAYED_ACK=1; else unset ADB_DELAYED_ACK; fi
	step "$client"
	adb34 start-server > /dev/null 2>&1 || fail "$client start-server"
	for serial in 127.0.0.1:6520 127.0.0.1:5555; do
		adb34 connect $serial > /dev/null 2>&1
		wait_for 30 sh -c "adb34 devices | grep -q '^$serial[[:space:]]*device'" ||
			fail "$client: $serial is not listed: $(adb34 devices | tr '\n' ' ')"
	done
	: > /tmp/push.relay; : > /tmp/push.direct; : > /tmp/pull.relay; : > /tmp/pull.direct
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		r=$((r + 1))
		for way in relay direct; do
			serial=127.0.0.1:6520
			[ $way = direct ] && serial=127.0.0.1:5555
			timed adb34 -s $serial push /tmp/bench.bin /tmp/bench.dev >> /tmp/push.$way
			timed adb34 -s $serial pull /tmp/bench.dev /tmp/bench.back >> /tmp/pull.$way
			cmp -s /tmp/bench.bin /tmp/bench.back || fail "$client $way: the pulled file differs"
			rm -f /tmp/bench.dev /tmp/bench.back
		done
	done
	for dir in push pull; do
		rel=$(median < /tmp/$dir.relay)
		dir_ms=$(median < /tmp/$dir.direct)
		info "bench $client $dir ${MIB} MiB: relay $rel ms ($((MIB * 1048576 / 1000 / (rel > 0 ? rel : 1))) MB/s)," \
			"direct $dir_ms ms ($((MIB * 1048576 / 1000 / (dir_ms > 0 ? dir_ms : 1))) MB/s)," \
			"relay/direct $(awk -v a="$dir_ms" -v b="$rel" 'BEGIN { printf "%.2f", a / b }')"
	done
	adb34 kill-server
	ok
done
