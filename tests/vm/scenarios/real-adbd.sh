# SPDX-License-Identifier: Apache-2.0
# real-adbd.sh - the real AOSP adbd (Debian's adbd 34) as the guest, on
# kernel vsock (vsock_loopback, port 5555), behind one adbd-relay with two
# fronts: TCP (route tcp, 127.0.0.1:6520) and USB (route usb, FunctionFS
# on dummy_hcd, serial LABREALUSB). Every client runs peer-checks.sh's
# checks through both fronts: Debian 12's adb 29, adb 34, and adb 34 with
# delayed_ack (ADB_DELAYED_ACK=1). The last client also goes through route
# ip: a TCP front to the tcp: target, adbd's own tcp port 5555.
# lab.clients=, lab.fronts= and lab.checks= (comma-separated) run a part.

CLIENTS="adb29 adb34 adb34-dack"
CHECKS="shell features pushpull forward reverse concurrent restart"
FRONTS="tcp usb"
FRONTS_SET=
for arg in $(cat /proc/cmdline); do
	case $arg in
	lab.clients=*) CLIENTS=$(echo "${arg#lab.clients=}" | tr , ' ') ;;
	lab.checks=*) CHECKS=$(echo "${arg#lab.checks=}" | tr , ' ') ;;
	lab.fronts=*) FRONTS=$(echo "${arg#lab.fronts=}" | tr , ' '); FRONTS_SET=1 ;;
	esac
done
. /lab/peer-checks.sh
CTL="adbd-relayctl -s /tmp/relay.sock"
NC="nc"
PC_DEVICE_NC="nc"
ECHO_PORT=7001
WORK=/tmp/work
mkdir -p $WORK
pc_fail() { fail "$*"; }
pc_info() { info "$*"; }

step modules
modload vsock_loopback
modload configfs
modload dummy_hcd
modload libcomposite
modload usb_f_fs
ok

step adbd
# the device side of adb forward: an echo server
spawn ECHO_PID /tmp/echo.log nc -ll -p $ECHO_PORT -e /bin/cat
start_adbd() {
	spawn ADBD_PID /tmp/adbd.log adbd
	wait_for 20 sh -c "netstat -ltn | grep -q ':5555 '" || fail "adbd did not listen: $(tail -n 5 /tmp/adbd.log)"
}
restart_adbd() {
	kill "$ADBD_PID"
	wait "$ADBD_PID" 2>/dev/null
	start_adbd
}
start_adbd
ok "adbd $(adbd --version 2>/dev/null | head -n 1) listening on tcp and vsock port 5555"

step relay
adbd-relay-gadget create ga LABREALUSB /dev/usb-ffs/ga "real adbd" || fail "gadget ga"
cat > /tmp/relay.conf <<CONF
control /tmp/relay.sock
log-level debug
route tcp {
	front tcp:127.0.0.1:6520
	target vsock:1:5555
}
route usb {
	front usb:/dev/usb-ffs/ga
	target vsock:1:5555
}
route ip {
	front tcp:127.0.0.1:6521
	target tcp:127.0.0.1:5555
}
CONF
spawn RELAY_PID /tmp/relay.log adbd-relay -c /tmp/relay.conf
wait_for 10 $CTL status || fail "relay control socket never answered"
wait_for 10 sh -c "$CTL status --json | grep -q '\"front_state\":\"ready\"'" ||
	fail "the USB front is not ready: $($CTL status --json)"
adbd-relay-gadget bind ga dummy_udc.0 || fail "bind ga"
ok

port=5040
for client in $CLIENTS; do
	port=$((port + 1))
	export ANDROID_ADB_SERVER_PORT=$port
	DACK=0
	case $client in
	adb29) ADB=adb ;;
	adb34) ADB=adb34 ;;
	adb34-dack) ADB=adb34; DACK=1 ;;
	*) fail "unknown client $client" ;;
	esac
	if [ $DACK = 1 ]; then export ADB_DELAYED_ACK=1; else unset ADB_DELAYED_ACK; fi
	step "$client-start"
	$ADB start-server > /tmp/adb-start.log 2>&1 || fail "$client start-server: $(cat /tmp/adb-start.log)"
	$ADB connect 127.0.0.1:6520 > /tmp/connect.log 2>&1
	wait_for 30 sh -c "$ADB devices | grep -q '^127.0.0.1:6520[[:space:]]*device'" ||
		fail "$client: the TCP front is not listed: $($ADB devices | tr '\n' ' ')"
	wait_for 30 sh -c "$ADB devices | grep -q '^LABREALUSB[[:space:]]*device'" ||
		fail "$client: the USB front is not listed: $($ADB devices | tr '\n' ' ')"
	fronts=$FRONTS
	[ "$client" = "${CLIENTS##* }" ] && [ -z "$FRONTS_SET" ] && fronts="$fronts ip"
	if echo " $fronts " | grep -q " ip "; then
		$ADB connect 127.0.0.1:6521 > /tmp/connect.log 2>&1
		wait_for 30 sh -c "$ADB devices | grep -q '^127.0.0.1:6521[[:space:]]*device'" ||
			fail "$client: route ip is not listed: $($ADB devices | tr '\n' ' ')"
	fi
	ok "adb $($ADB version | sed -n "s/^Version //p")"
	for front in $fronts; do
		case $front in
		tcp) SERIAL=127.0.0.1:6520 PC_FWD_PORT=$((port + 100)) PC_REV_PORT=$((port + 200)) ;;
		usb) SERIAL=LABREALUSB PC_FWD_PORT=$((port + 150)) PC_REV_PORT=$((port + 250)) ;;
		ip) SERIAL=127.0.0.1:6521 PC_FWD_PORT=$((port + 175)) PC_REV_PORT=$((port + 275)) ;;
		esac
		ROUTE=$front
		for c in $CHECKS; do
			step "$client-$front-$c"
			t0=$(ms)
			"pc_$c"
			ok "$(( $(ms) - t0 )) ms"
		done
	done
	$ADB kill-server
done
