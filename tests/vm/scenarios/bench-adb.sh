# SPDX-License-Identifier: Apache-2.0
# bench-adb.sh - real adb push and pull through the relay against the same
# client straight to the real adbd over the same kind of link, in one
# guest (make bench runs it through tests/bench/bench-adb.sh), with and
# without delayed_ack:
#   tcp: adb 34 to 127.0.0.1:6520, the relay's TCP front (kernel vsock to
#        adbd's vsock:5555), against 127.0.0.1:5555, adbd's own TCP port;
#   usb: the relay's FunctionFS gadget (serial LABBENCHRELAY, dummy_udc.0)
#        against adbd's own (LABBENCHADBD, dummy_udc.1, /dev/usb-ffs/adb);
# lab.mib= MiB each way (default 64), lab.rounds= rounds (default 3), relay
# and direct interleaved; the medians as "LAB INFO bench ..." lines, and
# beside them ("LAB INFO cpu ...") the CPU time per MiB of each process on
# the way (the adb server, adbd, the relay) and how idle the guest's vCPUs
# were, from the same transfers: a guest with no idle CPU left measures
# its own shortage, not the relay.

MIB=64
ROUNDS=3
for arg in $(cat /proc/cmdline); do
	case $arg in
	lab.mib=*) MIB=${arg#lab.mib=} ;;
	lab.rounds=*) ROUNDS=${arg#lab.rounds=} ;;
	esac
done

# on a failure, the adb server's own view of the link beside the relay's
LAB_LOGS="$LAB_LOGS /tmp/adb.$(id -u).log"

step modules
modload vsock_loopback
modload configfs
modload dummy_hcd num=2
modload libcomposite
modload usb_f_fs
ok "kernel $(uname -r)"

step adbd
# adbd's own USB function first: it opens /dev/usb-ffs/adb when it starts,
# and then listens on tcp (and vsock) only with a port in ADBD_PORT
adbd-relay-gadget create gd LABBENCHADBD /dev/usb-ffs/adb "adbd itself" || fail "gadget gd"
spawn ADBD_PID /tmp/adbd.log env ADBD_PORT=5555 adbd
wait_for 20 sh -c "netstat -ltn | grep -q ':5555 '" || fail "adbd did not listen: $(tail -n 5 /tmp/adbd.log)"
wait_for 20 test -e /dev/usb-ffs/adb/ep1 || fail "adbd did not take its USB function: $(tail -n 5 /tmp/adbd.log)"
adbd-relay-gadget bind gd dummy_udc.1 || fail "bind gd"
adbd-relay-gadget create gr LABBENCHRELAY /dev/usb-ffs/gr "through adbd-relay" || fail "gadget gr"
cat > /tmp/relay.conf <<CONF
control /tmp/relay.sock
log-level info
probe-interval 0
route tcp {
	front tcp:127.0.0.1:6520
	target vsock:1:5555
}
route usb {
	front usb:/dev/usb-ffs/gr
	target vsock:1:5555
}
CONF
spawn RELAY_PID /tmp/relay.log adbd-relay -c /tmp/relay.conf
wait_for 10 adbd-relayctl -s /tmp/relay.sock status || fail "relay control socket never answered"
wait_for 10 sh -c "adbd-relayctl -s /tmp/relay.sock status --json | grep -q '\"front_state\":\"ready\"'" ||
	fail "the relay's USB front is not ready"
adbd-relay-gadget bind gr dummy_udc.0 || fail "bind gr"
head -c $((MIB * 1024 * 1024)) /dev/urandom > /tmp/bench.bin
ok

# the median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# CPU ticks (user + system) of process $1, 0 once it is gone
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# the guest's idle and total ticks, all CPUs
cpu_idle() { awk '/^cpu / { print $5 + $6 }' /proc/stat; }
cpu_total() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t }' /proc/stat; }
# the adb server's pid (its command line says fork-server)
adb_server_pid() {
	for p in /proc/[0-9]*; do
		grep -q fork-server "$p/cmdline" 2>/dev/null && { echo "${p#/proc/}"; return; }
	done
	echo 0
}
# timed WAY DIR CMD...: one transfer; its ms to /tmp/DIR.WAY, and to
# /tmp/DIR.WAY.cpu the CPU ticks of the adb server, adbd and the relay and
# the guest's idle per mille over it
timed() {
	way=$1 dir=$2
	shift 2
	a0=$(ticks "$ADB_SERVER") d0=$(ticks "$ADBD_PID") r0=$(ticks "$RELAY_PID")
	i0=$(cpu_idle) c0=$(cpu_total) t0=$(ms)
	"$@" > /dev/null 2>&1 || fail "$*"
	t1=$(ms) i1=$(cpu_idle) c1=$(cpu_total)
	echo $(( t1 - t0 )) >> "/tmp/$dir.$way"
	echo "$(( $(ticks "$ADB_SERVER") - a0 )) $(( $(ticks "$ADBD_PID") - d0 ))" \
		"$(( $(ticks "$RELAY_PID") - r0 )) $(( (i1 - i0) * 1000 / (c1 > c0 ? c1 - c0 : 1) ))" \
		>> "/tmp/$dir.$way.cpu"
}
# cpu_line FILE: the medians of FILE's columns as "adb A adbd D relay R ms/MiB, idle I%"
cpu_line() {
	hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
	for col in 1 2 3 4; do
		awk -v c=$col '{ print $c }' "$1" | median
	done | awk -v hz="$hz" -v mib="$MIB" '
		{ v[NR] = $1 }
		END { printf "adb %.1f adbd %.1f relay %.1f ms/MiB, guest idle %.0f%%", \
			v[1] * 1000 / hz / mib, v[2] * 1000 / hz / mib, v[3] * 1000 / hz / mib, v[4] / 10 }'
}

port=5040
for client in adb34 adb34-dack; do
	port=$((port + 1))
	export ANDROID_ADB_SERVER_PORT=$port
	if [ $client = adb34-dack ]; then
		export ADB_DELAYED_ACK=1 ADB_BURST_MODE=1
	else
		unset ADB_DELAYED_ACK ADB_BURST_MODE
	fi
	step "$client"
	adb34 start-server > /dev/null 2>&1 || fail "$client start-server"
	ADB_SERVER=$(adb_server_pid)
	for serial in 127.0.0.1:6520 127.0.0.1:5555; do
		adb34 connect $serial > /dev/null 2>&1
	done
	for serial in 127.0.0.1:6520 127.0.0.1:5555 LABBENCHRELAY LABBENCHADBD; do
		wait_for 30 sh -c "adb34 devices | grep -q '^$serial[[:space:]]*device'" ||
			fail "$client: $serial is not listed: $(adb34 devices | tr '\n' ' ')"
	done
	for link in tcp usb; do
		for f in push.relay push.direct pull.relay pull.direct; do
			: > /tmp/$f; : > /tmp/$f.cpu
		done
		r=0
		while [ $r -lt "$ROUNDS" ]; do
			r=$((r + 1))
			for way in relay direct; do
				case $link-$way in
				tcp-relay) serial=127.0.0.1:6520 ;;
				tcp-direct) serial=127.0.0.1:5555 ;;
				usb-relay) serial=LABBENCHRELAY ;;
				usb-direct) serial=LABBENCHADBD ;;
				esac
				timed $way push adb34 -s $serial push /tmp/bench.bin /tmp/bench.dev
				timed $way pull adb34 -s $serial pull /tmp/bench.dev /tmp/bench.back
				cmp -s /tmp/bench.bin /tmp/bench.back || fail "$client $link $way: the pulled file differs"
				rm -f /tmp/bench.dev /tmp/bench.back
			done
		done
		for dir in push pull; do
			rel=$(median < /tmp/$dir.relay)
			dms=$(median < /tmp/$dir.direct)
			info "bench $client $link $dir ${MIB} MiB:" \
				"relay $rel ms ($((MIB * 1048576 / 1000 / (rel > 0 ? rel : 1))) MB/s)," \
				"direct $dms ms ($((MIB * 1048576 / 1000 / (dms > 0 ? dms : 1))) MB/s)," \
				"relay/direct $(awk -v a="$dms" -v b="$rel" 'BEGIN { printf "%.2f", a / b }')"
			info "cpu $client $link $dir: relay way $(cpu_line /tmp/$dir.relay.cpu);" \
				"direct way $(cpu_line /tmp/$dir.direct.cpu)"
		done
	done
	adb34 kill-server
	ok
done
