# SPDX-License-Identifier: Apache-2.0
# usb-gadget.sh - the USB front for real: dummy_hcd with two UDCs, two
# configfs gadgets made by init/adbd-relay-gadget, each with a FunctionFS
# adb function served by one adbd-relay, routed over vsock_loopback to two
# test guest adbds (vsock ports 5555 and 5556). The real adb client in the
# same machine talks USB to both: it must list two devices, reach the right
# guest with -t N, push/pull through each, survive one guest's restart on
# the same transport without disturbing the other, keep a second function
# of the same gadget (an ACM serial port the relay does not own) bound
# throughout, see the restarts it asks for (adb root, adb unroot, adb
# reboot; adb wait-for-device) as it would see them directly, with adb 29
# and adb 34, through a USB front and a TCP front, and survive replugs
# (gadget unbound and bound again) with flat relay fds and memory.
# lab.cycles=N on the kernel command line sets the replug count (default 20),
# lab.restarts=0 leaves out the restart requests (the aarch64 run).

CYCLES=20 RESTARTS=1
for arg in $(cat /proc/cmdline); do
	case $arg in
	lab.cycles=*) CYCLES=${arg#lab.cycles=} ;;
	lab.restarts=*) RESTARTS=${arg#lab.restarts=} ;;
	esac
done
export ANDROID_ADB_SERVER_PORT=5037
CTL="adbd-relayctl -s /tmp/relay.sock"

# tid SERIAL: the adb transport id of a device
tid() { adb devices -l | sed -n "s/^$1 .*transport_id:\([0-9]*\).*/\1/p"; }
listed() { adb devices | grep -q "^$1[[:space:]]*device"; }
json_num() { $CTL status --json | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

step modules
modload vsock_loopback
modload configfs
modload dummy_hcd num=2
modload libcomposite
modload usb_f_fs
modload usb_f_acm
[ -e /sys/class/udc/dummy_udc.0 ] && [ -e /sys/class/udc/dummy_udc.1 ] ||
	fail "dummy_hcd gave no two UDCs: $(ls /sys/class/udc | tr '\n' ' ')"
ok

step gadgets
adbd-relay-gadget create ga LABSERIALA /dev/usb-ffs/ga "guest a" || fail "gadget ga"
adbd-relay-gadget create gb LABSERIALB /dev/usb-ffs/gb "guest b" || fail "gadget gb"
# a function of gadget ga that is not the relay's
GA=/sys/kernel/config/usb_gadget/ga
mkdir $GA/functions/acm.gs0 && ln -s $GA/functions/acm.gs0 $GA/configs/c.1/ || fail "acm function"
ok

step guests
mkdir -p /tmp/a /tmp/b
(cd /tmp/a && exec adbd-testguest --listen vsock:5555 --name vm-a --reboot-downtime 3000) > /tmp/guest-a.log 2>&1 &
GUEST_A=$!; LAB_PIDS="$LAB_PIDS $GUEST_A"; LAB_LOGS="$LAB_LOGS /tmp/guest-a.log"
(cd /tmp/b && exec adbd-testguest --listen vsock:5556 --name vm-b --reboot-downtime 3000) > /tmp/guest-b.log 2>&1 &
LAB_PIDS="$LAB_PIDS $!"; LAB_LOGS="$LAB_LOGS /tmp/guest-b.log"
wait_for 10 grep -q READY /tmp/guest-a.log || fail "guest a did not start"
wait_for 10 grep -q READY /tmp/guest-b.log || fail "guest b did not start"
ok

step relay
cat > /tmp/relay.conf <<CONF
control /tmp/relay.sock
log-level debug
route a {
	front usb:/dev/usb-ffs/ga
	target vsock:1:5555
}
route b {
	front usb:/dev/usb-ffs/gb
	target vsock:1:5556
}
route t {
	front tcp:127.0.0.1:6600
	target vsock:1:5556
}
CONF
spawn RELAY_PID /tmp/relay.log adbd-relay -c /tmp/relay.conf
wait_for 10 $CTL status || fail "relay control socket never answered"
# readiness as the control socket tells it: descriptors written, no host yet
n=$($CTL status --json | grep -o '"front_state":"ready"' | wc -l)
[ "$n" = 2 ] || fail "status does not show both USB fronts ready: $($CTL status --json)"
adbd-relay-gadget bind ga dummy_udc.0 || fail "bind ga"
adbd-relay-gadget bind gb dummy_udc.1 || fail "bind gb"
wait_for 10 sh -c "[ \$($CTL status --json | grep -o '\"front_state\":\"online\"' | wc -l) = 2 ]" ||
	fail "status does not show both USB fronts online after binding: $($CTL status --json)"
ok

step adb-devices
adb start-server > /tmp/adb-start.log 2>&1 || fail "adb start-server: $(cat /tmp/adb-start.log)"
wait_for 30 listed LABSERIALA || fail "LABSERIALA not listed: $(adb devices -l | tr '\n' ' ')"
wait_for 10 listed LABSERIALB || fail "LABSERIALB not listed: $(adb devices -l | tr '\n' ' ')"
TA=$(tid LABSERIALA); TB=$(tid LABSERIALB)
[ -n "$TA" ] && [ -n "$TB" ] && [ "$TA" != "$TB" ] || fail "transport ids '$TA' '$TB'"
adb devices -l | grep -q "LABSERIALA .*product:vm-a" || fail "device a is not guest a: $(adb devices -l | tr '\n' ' ')"
ok "transport ids $TA $TB"

step shell-by-transport
a=$(timeout 30 adb -t "$TA" shell pwd 2>&1); b=$(timeout 30 adb -t "$TB" shell pwd 2>&1)
[ "$a" = /tmp/a ] || fail "adb -t $TA reached '$a', expected guest a (/tmp/a)"
[ "$b" = /tmp/b ] || fail "adb -t $TB reached '$b', expected guest b (/tmp/b)"
ok

step push-pull
dd if=/dev/urandom of=/tmp/in.bin bs=1M count=16 2>/dev/null
want=$(sha256sum < /tmp/in.bin)
for t in "$TA" "$TB"; do
	t0=$(ms)
	timeout 180 adb -t "$t" push /tmp/in.bin /tmp/pushed-$t.bin > /tmp/push.log 2>&1 ||
		fail "push via transport $t: $(tail -n 2 /tmp/push.log)"
	t1=$(ms)
	timeout 180 adb -t "$t" pull /tmp/pushed-$t.bin /tmp/pulled.bin > /tmp/pull.log 2>&1 ||
		fail "pull via transport $t: $(tail -n 2 /tmp/pull.log)"
	t2=$(ms)
	[ "$(sha256sum < /tmp/pulled.bin)" = "$want" ] || fail "sha256 differs via transport $t"
	info "usb transport $t: push 16 MiB $((t1 - t0)) ms, pull $((t2 - t1)) ms"
	rm -f /tmp/pushed-$t.bin /tmp/pulled.bin
done
ok

step guest-restart
adb -t "$TB" shell 'while :; do echo tick; sleep 0.05; done' > /tmp/stream-b.log 2>&1 &
STREAM_B=$!; LAB_PIDS="$LAB_PIDS $STREAM_B"
adb -t "$TA" shell 'while :; do echo tick; sleep 0.05; done' > /tmp/stream-a.log 2>&1 &
STREAM_A=$!; LAB_PIDS="$LAB_PIDS $STREAM_A"
wait_for 20 grep -q tick /tmp/stream-a.log || fail "streaming shell on a printed nothing"
wait_for 20 grep -q tick /tmp/stream-b.log || fail "streaming shell on b printed nothing"
# the host's view of gadget ga: its device number changes if it re-enumerates
DEV_A=$(dirname "$(grep -l LABSERIALA /sys/bus/usb/devices/*/serial)")
devnum=$(cat "$DEV_A/devnum")
nif=$(tr -d ' ' < "$DEV_A/bNumInterfaces")
[ "$nif" -ge 3 ] || fail "gadget ga shows $nif interfaces, expected adb (1) + acm (2)"
kill -9 "$GUEST_A"
t0=$(ms)
wait_for 2 sh -c "! kill -0 $STREAM_A" || fail "shell on a still running 2 s after guest a died"
info "shell on a ended $(( $(ms) - t0 )) ms after guest a died"
(cd /tmp/a && exec adbd-testguest --listen vsock:5555 --name vm-a --reboot-downtime 3000) > /tmp/guest-a.log 2>&1 &
GUEST_A=$!; LAB_PIDS="$LAB_PIDS $GUEST_A"
wait_for 10 grep -q READY /tmp/guest-a.log || fail "guest a did not restart"
t0=$(ms)
wait_for 5 timeout 3 adb -t "$TA" shell true || fail "no shell on a within 5 s of its restart"
info "shell on a works $(( $(ms) - t0 )) ms after guest a restarted"
[ "$(tid LABSERIALA)" = "$TA" ] || fail "transport id of a changed: $(adb devices -l | tr '\n' ' ')"
kill -0 "$STREAM_B" || fail "the shell on b died with guest a"
n1=$(wc -l < /tmp/stream-b.log); sleep 1; n2=$(wc -l < /tmp/stream-b.log)
[ "$n2" -gt "$n1" ] || fail "the shell on b stopped streaming"
kill "$STREAM_B"
[ "$(cat $GA/UDC)" = dummy_udc.0 ] || fail "gadget ga lost its UDC through guest a's restart"
[ "$(cat "$DEV_A/devnum" 2>/dev/null)" = "$devnum" ] ||
	fail "gadget ga re-enumerated (acm function not kept bound) through guest a's restart"
ok "same transport id $TA, b undisturbed, ga (adb + acm) stayed bound"

# restarts SERIAL ADB GUEST-LOG: adb root, unroot and reboot through SERIAL
# return as they do directly, the device comes back each time, and adb
# wait-for-device after adb reboot waits until the guest is back
restarts() {
	serial=$1 client=$2 glog=$3
	for what in root unroot; do
		t0=$(ms)
		timeout 60 $client -s "$serial" $what > /tmp/restart.out 2>&1
		[ $? -ne 124 ] || fail "$client $what via $serial did not return in 60 s"
		grep -q "restarting adbd as" /tmp/restart.out ||
			fail "$client $what via $serial: $(cat /tmp/restart.out)"
		t1=$(ms)
		timeout 60 $client -s "$serial" wait-for-device || fail "$serial not back after $what"
		wait_for 20 sh -c "[ \"\$(timeout 5 $client -s $serial shell echo ok)\" = ok ]" ||
			fail "no shell via $serial after $client $what"
		info "$client $what via $serial returned in $((t1 - t0)) ms, shell again after $(( $(ms) - t0 )) ms"
	done
	n=$(grep -c RESTARTED "$glog")
	timeout 20 $client -s "$serial" reboot || fail "$client reboot via $serial"
	t0=$(ms)
	timeout 60 $client -s "$serial" wait-for-device ||
		fail "$client wait-for-device after reboot via $serial: $($client devices -l | tr '\n' ' '); relay: $(grep -v probe /tmp/relay.log | tail -n 30)"
	[ "$(grep -c RESTARTED "$glog")" -gt "$n" ] ||
		fail "$client wait-for-device via $serial returned before the guest was back"
	[ "$(timeout 5 $client -s "$serial" shell echo ok)" = ok ] || fail "no shell via $serial right after reboot"
	info "$client reboot; wait-for-device via $serial waited $(( $(ms) - t0 )) ms, until the guest was back"
}

if [ "$RESTARTS" = 1 ]; then
step restart-requests
restarts LABSERIALA adb /tmp/guest-a.log
timeout 10 adb connect 127.0.0.1:6600 > /dev/null 2>&1
wait_for 20 listed 127.0.0.1:6600 || fail "tcp front not listed: $(adb devices | tr '\n' ' ')"
restarts 127.0.0.1:6600 adb /tmp/guest-b.log
adb kill-server
adb34 start-server > /tmp/adb-start.log 2>&1 || fail "adb34 start-server: $(cat /tmp/adb-start.log)"
wait_for 30 sh -c "adb34 devices | grep -q '^LABSERIALA[[:space:]]*device'" || fail "adb34 does not list LABSERIALA"
restarts LABSERIALA adb34 /tmp/guest-a.log
timeout 10 adb34 connect 127.0.0.1:6600 > /dev/null 2>&1
restarts 127.0.0.1:6600 adb34 /tmp/guest-b.log
adb34 kill-server
adb start-server > /tmp/adb-start.log 2>&1 || fail "adb start-server: $(cat /tmp/adb-start.log)"
wait_for 30 listed LABSERIALA || fail "LABSERIALA not listed again"
ok "$($CTL status --json | grep -o '"restarts_shown":[0-9]*' | tr '\n' ' ')"
fi

step replug
wait_for 10 sh -c "$CTL status --json | grep -q '\"open_streams\":0,'"
fds0=$(json_num open_fds); rss0=$(json_num rss_kib)
t0=$(ms)
i=0
while [ $i -lt "$CYCLES" ]; do
	i=$((i + 1))
	adbd-relay-gadget unbind ga || fail "cycle $i: unbind"
	wait_for 10 sh -c "! adb devices | grep -q LABSERIALA" || fail "cycle $i: device still listed after unplug"
	adbd-relay-gadget bind ga dummy_udc.0 || fail "cycle $i: bind"
	wait_for 20 listed LABSERIALA || fail "cycle $i: device not back: $(adb devices -l | tr '\n' ' ')"
	out=$(timeout 10 adb -s LABSERIALA shell echo cycle-$i 2>&1)
	[ "$out" = "cycle-$i" ] || fail "cycle $i: shell printed '$out'"
done
fds1=$(json_num open_fds); rss1=$(json_num rss_kib)
info "$CYCLES replugs in $(( ($(ms) - t0) / 1000 )) s: relay fds $fds0 -> $fds1, rss $rss0 -> $rss1 KiB"
[ "$fds1" = "$fds0" ] || fail "relay fds $fds0 -> $fds1 after $CYCLES replugs"
[ $((rss1 - rss0)) -lt 1024 ] || fail "relay rss grew $rss0 -> $rss1 KiB"
kill -0 "$RELAY_PID" || fail "the relay died"
ok

step usb-edge-cases
# the adb server lets go of the interfaces; the probe plays the PC on gadget gb
adb kill-server
adb-usbprobe LABSERIALB > /tmp/probe.log 2>&1 || fail "$(tail -n 1 /tmp/probe.log)"
LAB_LOGS="$LAB_LOGS /tmp/probe.log"
kill -0 "$RELAY_PID" || fail "the relay died during the USB edge cases"
$CTL health > /tmp/health.log 2>&1 || fail "health after the edge cases: $(cat /tmp/health.log)"
ok "$(grep -c '^case .*: ok' /tmp/probe.log) cases"
