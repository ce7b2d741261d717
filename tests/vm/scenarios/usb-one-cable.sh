# SPDX-License-Identifier: Apache-2.0
# usb-one-cable.sh - one USB port, several guests: dummy_hcd with one UDC,
# one gadget (init/adbd-relay-gadget) with the adb function (guest A behind
# a USB front) and an NCM network function, the board's end at 192.168.7.1.
# Guests B and C (test guest adbds on vsock_loopback) are behind routes
# with TCP fronts on 192.168.7.1, which the relay waits for until the
# gadget is bound. The PC is a network namespace of its own holding the
# cdc_ncm host driver's interface (found by the MAC the script derived from
# the serial, moved there, its address leased by the DHCP server the
# script starts on the board: busybox udhcpd, udhcpc on the PC's side,
# the same address again after the replug, the MAC being the same) and the
# real adb 34: it connects B
# and C by address:port, lists A (usb), B and C, runs a shell and pushes and
# pulls (sha256) through each; guest B restarts without disturbing A or C;
# the UDC is unbound and bound again (the PC's interface goes and comes back
# as a new device, moved into the PC's namespace again) and all three serve
# again without a relay restart.
# B and C are published over mDNS (the routes' "mdns vm-b", "mdns vm-c"),
# and found from the PC's namespace by implementations other than the
# relay's (mdns_browse): Debian's mdns-scan browses by multicast (33 KB,
# libc only; python3-zeroconf would add some 9 MB to the image), busybox's
# nslookup asks the board's port 5353 for each instance's SRV record (its
# port) and the host's A record (a legacy unicast query, RFC 6762 6.7).
# Neither shows the goodbye (mdns-scan prints only what it finds):
# integration/mdns.test checks that one with zeroconf.

CTL="adbd-relayctl -s /tmp/relay.sock"
SERIAL=LABONECABLE
BOARD=192.168.7.1
export ANDROID_ADB_SERVER_PORT=5037

json_route() { $CTL status --json | sed 's/},{"name"/}\n{"name"/g' | grep "\"name\":\"$1\""; }
# pc CMD...: CMD in the PC's network namespace
pc() { nsenter -t "$PC_NS" -n "$@"; }
padb() { pc timeout 60 adb34 "$@"; }
listed() { padb devices | grep -q "^$1[[:space:]]*device"; }
tid() { padb devices -l | sed -n "s/^$1 .*transport_id:\([0-9]*\).*/\1/p"; }

# pc_link: the PC's end of the NCM link (the interface with the host_addr
# MAC, wherever it is) in the PC's namespace, up, its address from the
# board's DHCP server ($PC)
pc_link() {
	mac=$(cat /sys/kernel/config/usb_gadget/gn/functions/ncm.gn/host_addr)
	for i in /sys/class/net/*; do
		[ "$(cat "$i/address" 2>/dev/null)" = "$mac" ] || continue
		ip link set dev "${i##*/}" netns "$PC_NS" || return 1
	done
	pcif=$(pc ip -o link | grep -i "$mac" | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | head -n 1)
	[ -n "$pcif" ] || return 1
	pc ip link set dev "$pcif" up || return 1
	# with dummy_hcd, one run in a few the PC's cdc_ncm never hears
	# f_ncm's "connected" and its end stays NO-CARRIER for good (no lease in
	# 40 s): after 5 s without carrier the board's end is cycled, which
	# sends "connected" again (said in the log after the step: wait_for
	# silences its command; and not wait_for here, whose deadline is the
	# caller's)
	n=0
	while ! pc_carrier "$pcif" && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	if ! pc_carrier "$pcif"; then
		bif=$(cat /sys/kernel/config/usb_gadget/gn/functions/ncm.gn/ifname)
		echo "the PC's $pcif had no carrier after 5 s: the board's $bif cycled to say \"connected\" again" \
			>> /tmp/carrier.log
		ip link set dev "$bif" down && ip link set dev "$bif" up || return 1
	fi
	rm -f /tmp/lease
	pc udhcpc -i "$pcif" -n -q -t 10 -T 1 -s /tmp/udhcpc.sh > /tmp/udhcpc.log 2>&1 || return 1
	PC=$(cat /tmp/lease)
}

# pc_carrier IF: the PC's end IF has its carrier (the gadget said "connected")
pc_carrier() { pc ip -o link show dev "$1" | grep -q LOWER_UP; }

# what a failed pc_link saw: the links on both sides, udhcpc's last words,
# and whether the board's DHCP server still runs
pc_link_state() {
	echo "board: $(ip -o link | tr '\n' ' ') PC: $(pc ip -o link 2>&1 | tr '\n' ' ')"
	echo "udhcpc: $(tr '\n' ' ' < /tmp/udhcpc.log)"
	echo "udhcpd: $(ps | grep '[u]dhcpd' | tr '\n' ' ')"
}

start_guest() { # start_guest NAME PORT
	mkdir -p "/tmp/$1"
	(cd "/tmp/$1" && exec adbd-testguest --listen "vsock:$2" --name "vm-$1" --reboot-downtime 1000) \
		> "/tmp/guest-$1.log" 2>&1 &
	eval "GUEST_$1=$!"
	LAB_PIDS="$LAB_PIDS $!"
	case " $LAB_LOGS " in *" /tmp/guest-$1.log "*) ;; *) LAB_LOGS="$LAB_LOGS /tmp/guest-$1.log" ;; esac
	wait_for 10 grep -q READY "/tmp/guest-$1.log" || fail "guest $1 did not start"
}

# mdns_browse: B and C found from the PC's namespace: their instances by
# multicast (mdns-scan, which runs until killed, until it printed both),
# then each one's port (SRV) and its host's address (A) by legacy unicast
# queries
mdns_found() {
	tr '\r' '\n' < /tmp/mdns-scan.out | grep '^+ ' > /tmp/mdns-found.out
	grep -q "^+ vm-b._adb._tcp.local$" /tmp/mdns-found.out && grep -q "^+ vm-c._adb._tcp.local$" /tmp/mdns-found.out
}
mdns_browse() {
	pc ip route replace 224.0.0.0/4 dev "$pcif" || fail "no multicast route in the PC's namespace"
	t0=$(ms)
	pc mdns-scan > /tmp/mdns-scan.out 2>&1 &
	scan=$!; LAB_PIDS="$LAB_PIDS $scan"
	wait_for 15 mdns_found || fail "mdns-scan did not find vm-b and vm-c: $(tr '\n' ' ' < /tmp/mdns-found.out)"
	kill "$scan"
	t1=$(ms)
	for d in b:5556 c:5557; do
		pc timeout 10 busybox nslookup -type=srv "vm-${d%%:*}._adb._tcp.local" "$BOARD:5353" > /tmp/ns.out 2>&1
		host=$(sed -n "s/^vm-${d%%:*}._adb._tcp.local[[:space:]]*service = 0 0 ${d#*:} \(.*\)$/\1/p" /tmp/ns.out)
		[ -n "$host" ] || fail "no SRV record for vm-${d%%:*} with port ${d#*:}: $(tr '\n' ' ' < /tmp/ns.out)"
	done
	pc timeout 10 busybox nslookup -type=a "$host" "$BOARD:5353" > /tmp/ns.out 2>&1
	grep -q "^Address: $BOARD$" /tmp/ns.out || fail "$host is not at $BOARD: $(tr '\n' ' ' < /tmp/ns.out)"
	info "mDNS: mdns-scan found vm-b and vm-c in $((t1 - t0)) ms ($(grep -c . /tmp/mdns-found.out) instance(s)); SRV ports 5556 and 5557 on $host, at $BOARD ($(($(ms) - t1)) ms)"
}

step modules
modload vsock_loopback
modload configfs
modload dummy_hcd
modload libcomposite
modload usb_f_fs
modload usb_f_ncm
modload cdc_ncm
[ -e /sys/class/udc/dummy_udc.0 ] || fail "dummy_hcd gave no UDC: $(ls /sys/class/udc | tr '\n' ' ')"
ok

step guests
start_guest a 5555
start_guest b 5556
start_guest c 5557
ok

step relay-waits
adbd-relay-gadget --net "ncm:$BOARD/24" --dhcp 192.168.7.20-192.168.7.29 create gn "$SERIAL" /dev/usb-ffs/gn "one cable" ||
	fail "gadget gn"
# the PC's DHCP client's hook: the address it was leased, on its interface
cat > /tmp/udhcpc.sh <<'HOOK'
#!/bin/sh
case $1 in
bound | renew) ip addr replace "$ip/$mask" dev "$interface" && echo "$ip" > /tmp/lease ;;
esac
HOOK
chmod 755 /tmp/udhcpc.sh
cat > /tmp/relay.conf <<CONF
control /tmp/relay.sock
route a {
	front usb:/dev/usb-ffs/gn
	target vsock:1:5555
}
route b {
	front tcp:$BOARD:5556
	target vsock:1:5556
	mdns vm-b
}
route c {
	front tcp:$BOARD:5557
	target vsock:1:5557
	mdns vm-c
}
CONF
spawn RELAY_PID /tmp/relay.log adbd-relay -c /tmp/relay.conf
wait_for 10 $CTL status || fail "relay control socket never answered"
wait_for 10 sh -c "$CTL status | grep -q 'front   tcp:$BOARD:5556 waiting for its address'" ||
	fail "status does not say route b waits for its address: $($CTL status)"
json_route c | grep -q '"waiting_for_address":true' || fail "route c is not waiting for its address: $(json_route c)"
ok

step bind
t0=$(ms)
adbd-relay-gadget bind gn dummy_udc.0 || fail "bind gn"
ifn=$(cat /sys/kernel/config/usb_gadget/gn/functions/ncm.gn/ifname)
ip -o addr show dev "$ifn" | grep -q "inet $BOARD/24" || fail "the board's $ifn has no $BOARD: $(ip -o addr)"
for r in b c; do
	wait_for 5 sh -c "$CTL status --json | sed 's/},{\"name\"/}\n{\"name\"/g' | grep '\"name\":\"$r\"' | grep -q '\"front_state\":\"listening\"'" ||
		fail "route $r did not listen within 5 s of $BOARD appearing: $($CTL status)"
done
info "board's interface $ifn ($(cat "/sys/class/net/$ifn/address")), fronts on $BOARD listening $(( $(ms) - t0 )) ms after bind began"
ok

step pc-namespace
unshare -n sleep 100000 &
PC_NS=$!
LAB_PIDS="$LAB_PIDS $PC_NS"
wait_for 5 sh -c "[ \"\$(readlink /proc/$PC_NS/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ]" ||
	fail "no network namespace for the PC"
pc ip link set lo up
wait_for 40 pc_link || fail "the PC's NCM interface ($(cat /sys/kernel/config/usb_gadget/gn/functions/ncm.gn/host_addr)) never appeared or got no lease: $(pc_link_state)"
case $PC in 192.168.7.2[0-9]) ;; *) fail "the PC was leased '$PC', not an address of 192.168.7.20-29" ;; esac
FIRST_LEASE=$PC
[ ! -s /tmp/carrier.log ] || info "$(cat /tmp/carrier.log)"
wait_for 10 pc ping -c 1 -W 1 "$BOARD" || fail "the PC cannot reach $BOARD: $(pc ip -o addr | tr '\n' ' ')"
info "the PC at $PC (leased from the board), interfaces $(pc ip -o link | grep -o "^[0-9]*: [^:]*" | tr "\n" " ")"
ok

step adb-devices
pc adb34 start-server > /tmp/adb-start.log 2>&1 || fail "adb34 start-server: $(cat /tmp/adb-start.log)"
LAB_LOGS="$LAB_LOGS /tmp/relay.log"
for p in 5556 5557; do
	padb connect "$BOARD:$p" > /tmp/connect.log 2>&1
	wait_for 20 listed "$BOARD:$p" || fail "$BOARD:$p not listed: $(cat /tmp/connect.log; padb devices -l | tr '\n' ' ')"
done
wait_for 30 listed "$SERIAL" || fail "$SERIAL (usb) not listed: $(padb devices -l | tr '\n' ' ')"
TA=$(tid "$SERIAL") TB=$(tid "$BOARD:5556") TC=$(tid "$BOARD:5557")
padb devices -l | grep -q "^$SERIAL .*usb:.*product:vm-a" || fail "device A is not guest a over USB: $(padb devices -l | tr '\n' ' ')"
padb devices -l | grep -q "^$BOARD:5556 .*product:vm-b" || fail "device B is not guest b: $(padb devices -l | tr '\n' ' ')"
padb devices -l | grep -q "^$BOARD:5557 .*product:vm-c" || fail "device C is not guest c: $(padb devices -l | tr '\n' ' ')"
mdns_browse
ok "transport ids $TA $TB $TC"

step shell-push-pull
dd if=/dev/urandom of=/tmp/in.bin bs=1M count=4 2>/dev/null
want=$(sha256sum < /tmp/in.bin)
for d in "$SERIAL:a" "$BOARD:5556:b" "$BOARD:5557:c"; do
	g=${d##*:} s=${d%:*}
	out=$(padb -s "$s" shell pwd 2>&1)
	[ "$out" = "/tmp/$g" ] || fail "adb -s $s reached '$out', expected guest $g (/tmp/$g)"
	t0=$(ms)
	padb -s "$s" push /tmp/in.bin "/tmp/pushed-$g.bin" > /tmp/push.log 2>&1 || fail "push via $s: $(tail -n 2 /tmp/push.log)"
	t1=$(ms)
	padb -s "$s" pull "/tmp/pushed-$g.bin" "/tmp/pulled-$g.bin" > /tmp/pull.log 2>&1 || fail "pull via $s: $(tail -n 2 /tmp/pull.log)"
	t2=$(ms)
	[ "$(sha256sum < "/tmp/pulled-$g.bin")" = "$want" ] || fail "sha256 differs via $s"
	info "$s: push 4 MiB $((t1 - t0)) ms, pull $((t2 - t1)) ms"
	rm -f "/tmp/pushed-$g.bin" "/tmp/pulled-$g.bin"
done
ok

step guest-b-restart
pc adb34 -s "$SERIAL" shell 'while :; do echo tick; sleep 0.05; done' > /tmp/stream-a.log 2>&1 &
STREAM_A=$!; LAB_PIDS="$LAB_PIDS $STREAM_A"
pc adb34 -s "$BOARD:5557" shell 'while :; do echo tick; sleep 0.05; done' > /tmp/stream-c.log 2>&1 &
STREAM_C=$!; LAB_PIDS="$LAB_PIDS $STREAM_C"
wait_for 20 grep -q tick /tmp/stream-a.log || fail "streaming shell on a printed nothing"
wait_for 20 grep -q tick /tmp/stream-c.log || fail "streaming shell on c printed nothing"
# shellcheck disable=SC2154
kill -9 "$GUEST_b"
# its listening socket goes with the process, not with the signal: binding
# port 5556 again before it is gone fails (the fresh-clone suite once saw
# "guest b did not start")
wait "$GUEST_b" 2>/dev/null
start_guest b 5556
wait_for 10 padb -s "$BOARD:5556" shell true || fail "no shell on b within 10 s of its restart"
[ "$(tid "$BOARD:5556")" = "$TB" ] || fail "transport id of b changed: $(padb devices -l | tr '\n' ' ')"
for g in a c; do
	eval "sp=\$STREAM_$(echo $g | tr a-z A-Z)"
	kill -0 "$sp" || fail "the shell on $g died with guest b"
	n1=$(wc -l < "/tmp/stream-$g.log"); sleep 1; n2=$(wc -l < "/tmp/stream-$g.log")
	[ "$n2" -gt "$n1" ] || fail "the shell on $g stopped streaming while b restarted"
done
kill "$STREAM_A" "$STREAM_C"
[ "$(tid "$SERIAL") $(tid "$BOARD:5557")" = "$TA $TC" ] || fail "transport ids of a or c changed"
ok "b back on transport $TB, a and c undisturbed"

step replug
t0=$(ms)
adbd-relay-gadget unbind gn || fail "unbind gn"
wait_for 10 sh -c "! nsenter -t $PC_NS -n timeout 10 adb34 devices | grep -q '^$SERIAL'" ||
	fail "$SERIAL still listed after the unplug"
ip -o addr show dev "$ifn" | grep -q "inet $BOARD/" && fail "unbind left $BOARD on $ifn"
[ -e /run/adbd-relay-gadget/gn.dhcp.pid ] && fail "unbind left the DHCP server's pid file"
pidof udhcpd > /dev/null && fail "unbind left udhcpd running"
info "after unbind: $ifn $(ip -o addr show dev "$ifn" 2>&1 | tr '\n' ' ') link $(ip -o link show dev "$ifn" 2>&1)"
adbd-relay-gadget bind gn dummy_udc.0 || fail "bind gn again"
rm -f /tmp/carrier.log
wait_for 40 pc_link || fail "the PC's NCM interface did not come back with a lease: $(pc_link_state)"
[ ! -s /tmp/carrier.log ] || info "$(cat /tmp/carrier.log)"
[ "$PC" = "$FIRST_LEASE" ] || fail "the PC was leased $PC after the replug, $FIRST_LEASE before (its MAC changed?)"
wait_for 30 listed "$SERIAL" || fail "$SERIAL not back: $(padb devices -l | tr '\n' ' ')"
for d in "$SERIAL:a" "$BOARD:5556:b" "$BOARD:5557:c"; do
	g=${d##*:} s=${d%:*}
	wait_for 30 sh -c "[ \"\$(nsenter -t $PC_NS -n timeout 5 adb34 -s $s shell pwd)\" = /tmp/$g ]" ||
		fail "no shell on $g ($s) after the replug: $(padb devices -l | tr '\n' ' ')"
done
kill -0 "$RELAY_PID" || fail "the relay died"
info "all three serve again $(( $(ms) - t0 )) ms after the unbind; transports $(padb devices -l | grep -o 'transport_id:[0-9]*' | tr '\n' ' ')"
ok
