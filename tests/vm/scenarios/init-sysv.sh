# SPDX-License-Identifier: Apache-2.0
# init-sysv.sh - the relay brought up the way a systemd-less SoC image does
# it: /etc/init.d/adbd-relay (init/adbd-relay.init) with its settings in
# /etc/default/adbd-relay, the configuration in /etc/adbd-relay, and the USB
# gadget of /etc/adbd-relay/gadgets made, mounted and bound by
# adbd-relay-gadget as the init script calls it. Nothing here starts
# adbd-relay directly.
#
# The relay gives up root (user/group adbrelay, uid/gid 1000, an account of
# the lab image) and serves two routes: a, a FunctionFS adb function on
# dummy_hcd (its mount owned by adbrelay, the owner the init script takes
# from the configuration) to vsock:1:5555; b, a TCP front to vsock:1:5556
# (vsock_loopback gives CID 1). The real adb client reaches both guests
# (shell, push/pull), survives a USB replug and route a's restart by two
# reloads (FunctionFS opened again, as adbrelay), health follows guest a
# going away and coming back, and the init script stops it all cleanly.
# lab.break=ffs-owner on the kernel command line leaves the FunctionFS to
# root (FFS_OWNER=root), to prove the lab notices.

export ANDROID_ADB_SERVER_PORT=5037
INIT=/etc/init.d/adbd-relay
PIDFILE=/run/adbd-relay.pid
CONTROL=/run/adbd-relay/control.sock
CTL="adbd-relayctl -s $CONTROL"
USB_SERIAL=LABSERIALA
TCP_SERIAL=127.0.0.1:6520
GA=/sys/kernel/config/usb_gadget/ga
FFS=/dev/usb-ffs/ga
RELAY_LOG=/tmp/relay.log
BREAK=""
grep -q 'lab.break=ffs-owner' /proc/cmdline && BREAK="FFS_OWNER=root"

listed() { adb devices | grep -q "^$1[[:space:]]*device"; }
# relays: the pids of every adbd-relay process
relays() {
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = adbd-relay ] && echo "${d#/proc/}"
	done
}
# ids PID: "uid: R E S FS gid: R E S FS" of a process
ids() { awk '/^Uid:|^Gid:/ { print $1, $2, $3, $4, $5 }' "/proc/$1/status" | tr '\n' ' '; }
# usb_back WHEN WORD: bind gadget ga again; the device must be listed and
# its shell must echo WORD ("after WHEN" names the occasion in failures)
usb_back() {
	adbd-relay-gadget bind ga dummy_udc.0 || fail "bind ga after $1"
	wait_for 20 listed $USB_SERIAL || fail "$USB_SERIAL not back after $1: $(adb devices -l | tr '\n' ' ')"
	out=$(timeout 20 adb -s $USB_SERIAL shell echo "$2" 2>&1)
	[ "$out" = "$2" ] || fail "shell after $1 printed '$out'"
}
# guest NAME PORT: (re)start test guest adbd NAME, in /tmp/NAME, on vsock PORT
guest() {
	mkdir -p "/tmp/$1"
	spawn GUEST_PID "/tmp/guest-$1.log" sh -c "cd /tmp/$1 && exec adbd-testguest --listen vsock:$2 --name vm-$1"
	wait_for 10 grep -q READY "/tmp/guest-$1.log" || fail "test guest adbd $1 did not listen on vsock:$2"
}
# pushpull SERIAL DIR: push a file to the guest behind SERIAL, pull it back
pushpull() {
	t0=$(ms)
	timeout 60 adb -s "$1" push /tmp/in.bin "$2/pushed.bin" > /tmp/push.log 2>&1 ||
		fail "push via $1: $(tail -n 2 /tmp/push.log)"
	t1=$(ms)
	timeout 60 adb -s "$1" pull "$2/pushed.bin" /tmp/pulled.bin > /tmp/pull.log 2>&1 ||
		fail "pull via $1: $(tail -n 2 /tmp/pull.log)"
	t2=$(ms)
	[ "$(sha256sum < /tmp/pulled.bin)" = "$WANT" ] || fail "sha256 of the file pulled via $1 differs"
	info "$1: push 4 MiB $((t1 - t0)) ms, pull $((t2 - t1)) ms, sha256 equal"
	rm -f "$2/pushed.bin" /tmp/pulled.bin
}

step modules
modload vsock_loopback
modload configfs
modload dummy_hcd
modload libcomposite
modload usb_f_fs
[ -e /sys/class/udc/dummy_udc.0 ] || fail "no UDC dummy_udc.0: $(ls /sys/class/udc | tr '\n' ' ')"
ok

step account
[ "$(id -u adbrelay)" = 1000 ] && [ "$(id -g adbrelay)" = 1000 ] ||
	fail "no user adbrelay 1000:1000 in the image: $(id adbrelay 2>&1)"
grep -q '^adbctl:x:1001:$' /etc/group || fail "no group adbctl (1001) in the image"
[ -x $INIT ] || fail "$INIT is not installed"
ok

step guests
guest a 5555; GUEST_A=$GUEST_PID
guest b 5556
ok

step install
mkdir -p /etc/adbd-relay /etc/default
cat > /etc/adbd-relay/adbd-relay.conf <<CONF
# the lab SoC's relay: unprivileged, one USB and one TCP front
control $CONTROL
control-owner adbrelay
control-group adbctl
control-mode 0660
user adbrelay
group adbrelay
log-level debug
probe-interval 1s
reconnect 100ms 500ms
route a {
	front usb:$FFS
	target vsock:1:5555
}
route b {
	front tcp:$TCP_SERIAL
	target vsock:1:5556
}
CONF
# NAME SERIAL MOUNTPOINT UDC: no owner column, the init script passes the
# configuration's user and group on
echo "ga $USB_SERIAL $FFS dummy_udc.0" > /etc/adbd-relay/gadgets
# where this image keeps the programs, and a log file instead of syslog
cat > /etc/default/adbd-relay <<DEFAULTS
DAEMON=/bin/adbd-relay
CTL=/bin/adbd-relayctl
GADGET=/bin/adbd-relay-gadget
LOGFILE=$RELAY_LOG
$BREAK
DEFAULTS
[ -z "$(relays)" ] || fail "a relay runs before the init script started one: $(relays)"
ok

step init-start
t0=$(ms)
out=$($INIT start 2>&1) || fail "$INIT start exited $?: $out"
LAB_LOGS="$LAB_LOGS $RELAY_LOG"
echo "$out" | grep -q '^adbd-relay: started (pid [0-9]*)$' || fail "$INIT start said: $out"
[ -r $PIDFILE ] || fail "start left no pidfile $PIDFILE"
PID=$(cat $PIDFILE)
LAB_PIDS="$LAB_PIDS $PID"
[ "$(relays)" = "$PID" ] || fail "relays running: '$(relays)', pidfile names $PID"
cmd=$(tr '\0' ' ' < "/proc/$PID/cmdline")
[ "$cmd" = "/bin/adbd-relay -c /etc/adbd-relay/adbd-relay.conf " ] || fail "the relay runs as '$cmd'"
[ "$(cut -d' ' -f6 "/proc/$PID/stat")" = "$PID" ] || fail "the relay is no session leader (setsid)"
# the gadget: made and mounted before the relay started, bound after it answered
[ "$(cat $GA/UDC)" = dummy_udc.0 ] || fail "$INIT start did not bind gadget ga: UDC '$(cat $GA/UDC)'"
grep -q "^ga $FFS functionfs " /proc/mounts || fail "no functionfs ga on $FFS"
out=$($INIT status 2>&1) || fail "$INIT status exited $? while running: $out"
echo "$out" | grep -q "^adbd-relay: running (pid $PID)$" || fail "$INIT status said: $out"
ok "pid $PID in $(( $(ms) - t0 )) ms"

step unprivileged
wait_for 5 grep -q "running as user adbrelay (uid 1000, gid 1000)" $RELAY_LOG ||
	fail "the relay logged no switch to adbrelay"
got=$(ids "$PID")
[ "$got" = "Uid: 1000 1000 1000 1000 Gid: 1000 1000 1000 1000 " ] ||
	fail "relay real/effective/saved/fs ids: $got"
groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$PID/status" | tr -s ' ' | sed 's/^ //; s/ $//')
[ "$groups" = 1000 ] || fail "relay supplementary groups: '$groups', expected 1000 only"
[ -S $CONTROL ] || fail "no control socket $CONTROL"
got=$(stat -c '%u:%g %a' $CONTROL)
[ "$got" = "1000:1001 660" ] || fail "control socket owner:group mode is $got, configured adbrelay:adbctl 0660"
for f in ep0 ep1 ep2; do
	got=$(stat -c '%u:%g' "$FFS/$f")
	[ "$got" = 1000:1000 ] || fail "$FFS/$f belongs to $got, not adbrelay (1000:1000)"
done
ok "uid/gid 1000, control socket 1000:1001 0660, FunctionFS 1000:1000"

step adb-usb
adb start-server > /tmp/adb-start.log 2>&1 || fail "adb start-server: $(cat /tmp/adb-start.log)"
wait_for 30 listed $USB_SERIAL || fail "$USB_SERIAL not listed: $(adb devices -l | tr '\n' ' ')"
out=$(timeout 30 adb -s $USB_SERIAL shell 'echo usb-$((6 * 7)) $(pwd)' 2>&1)
[ "$out" = "usb-42 /tmp/a" ] || fail "adb -s $USB_SERIAL shell printed '$out', expected 'usb-42 /tmp/a' (guest a)"
dd if=/dev/urandom of=/tmp/in.bin bs=1M count=4 2>/dev/null
WANT=$(sha256sum < /tmp/in.bin)
pushpull $USB_SERIAL /tmp/a
ok

step adb-tcp
adb connect $TCP_SERIAL > /tmp/connect.log 2>&1
wait_for 20 listed $TCP_SERIAL || fail "$TCP_SERIAL not listed: $(cat /tmp/connect.log) $(adb devices | tr '\n' ' ')"
out=$(timeout 30 adb -s $TCP_SERIAL shell 'echo tcp-$((6 * 7)) $(pwd)' 2>&1)
[ "$out" = "tcp-42 /tmp/b" ] || fail "adb -s $TCP_SERIAL shell printed '$out', expected 'tcp-42 /tmp/b' (guest b)"
pushpull $TCP_SERIAL /tmp/b
ok

step replug
adbd-relay-gadget unbind ga || fail "unbind ga"
wait_for 10 sh -c "! adb devices | grep -q $USB_SERIAL" || fail "$USB_SERIAL still listed after the unplug"
usb_back "the replug" replugged
[ "$(cat $PIDFILE)" = "$PID" ] && kill -0 "$PID" || fail "the relay $PID is gone after the replug"
[ "$(ids "$PID")" = "Uid: 1000 1000 1000 1000 Gid: 1000 1000 1000 1000 " ] || fail "relay ids changed: $(ids "$PID")"
ok

step reopen
# the relay keeps its endpoints open across a replug; it opens FunctionFS
# anew, as adbrelay, only when route a starts after the switch: a reload
# without route a, then one with it again (the FunctionFS mount's uid=/gid=
# is what lets it; without them ep0 is root's and the open fails)
cp /etc/adbd-relay/adbd-relay.conf /tmp/relay.conf.full
sed '/^route a {$/,/^}$/d' /tmp/relay.conf.full > /etc/adbd-relay/adbd-relay.conf
grep -q '^route b {$' /etc/adbd-relay/adbd-relay.conf && ! grep -q '^route a' /etc/adbd-relay/adbd-relay.conf ||
	fail "could not write a configuration without route a"
out=$($INIT reload 2>&1) || fail "$INIT reload exited $?: $out"
wait_for 10 grep -q 'reload: 1 route(s) configured, 0 failed to start' $RELAY_LOG ||
	fail "the reload without route a was not applied"
wait_for 10 sh -c "! adb devices | grep -q $USB_SERIAL" || fail "$USB_SERIAL still listed without route a"
cp /tmp/relay.conf.full /etc/adbd-relay/adbd-relay.conf
out=$($INIT reload 2>&1) || fail "$INIT reload exited $?: $out"
wait_for 10 grep -q 'reload: 2 route(s) configured' $RELAY_LOG || fail "the reload with route a was not applied"
grep -q 'reload: 2 route(s) configured, 0 failed to start' $RELAY_LOG ||
	fail "route a did not start again as adbrelay: $(grep 'error' $RELAY_LOG | tail -n 2)"
usb_back "route a restarted" reopened
out=$(timeout 20 adb -s $TCP_SERIAL shell echo b-kept 2>&1)
[ "$out" = b-kept ] || fail "shell on route b after the reloads printed '$out'"
# one reload that changes route a: the new route must wait for the old
# function to let go of the mount, then open it (it used to fail with ESRCH
# and vanish)
sed 's|^\(\ttarget vsock:1:5555\)$|\1\n\tmax-clients 2|' /tmp/relay.conf.full > /etc/adbd-relay/adbd-relay.conf
grep -q 'max-clients 2' /etc/adbd-relay/adbd-relay.conf || fail "could not change route a"
ready=$(grep -c 'route a: USB function ready on' $RELAY_LOG)
out=$($INIT reload 2>&1) || fail "$INIT reload exited $?: $out"
wait_for 10 sh -c "[ \$(grep -c 'route a: USB function ready on' $RELAY_LOG) -gt $ready ]" ||
	fail "route a changed by a reload did not open its function again: $(grep 'route a' $RELAY_LOG | tail -n 3)"
grep -q 'route a: waiting for the route.s previous USB function' $RELAY_LOG ||
	fail "route a did not wait for its previous function"
usb_back "route a changed" changed
[ "$(cat $PIDFILE)" = "$PID" ] || fail "the pidfile changed over the reloads"
[ "$(ids "$PID")" = "Uid: 1000 1000 1000 1000 Gid: 1000 1000 1000 1000 " ] || fail "relay ids changed: $(ids "$PID")"
ok

step health-up
wait_for 10 $CTL health || fail "health not 0 with both guests up: $($CTL health 2>&1)"
out=$($CTL health 2>&1) || fail "health exited $?: $out"
[ "$out" = healthy ] || fail "health printed '$out'"
ok

step health-guest-down
kill "$GUEST_A"
t0=$(ms)
wait_for 10 sh -c "! $CTL health" || fail "health still 0 10 s after guest a stopped: $($CTL health 2>&1)"
t1=$(ms)
out=$($CTL health 2>&1)
rc=$?
[ $rc = 1 ] || fail "health exited $rc (want 1, unhealthy) with guest a down: $out"
echo "$out" | grep -q '^route a: guest ' || fail "health does not name route a: $out"
echo "$out" | grep -q '^route b' && fail "health names route b: $out"
out_b=$($CTL health b 2>&1) || fail "health b exited $? with guest b up: $out_b"
[ "$out_b" = healthy ] || fail "health b printed '$out_b'"
st=$($INIT status 2>&1) || fail "$INIT status exited $? with a guest down: $st"
echo "$st" | grep -q 'route a: guest ' || fail "$INIT status does not show route a unhealthy: $st"
info "health went 1 $((t1 - t0)) ms after guest a stopped: $(echo "$out" | sed -n '2p')"
ok

step health-guest-back
guest a 5555; GUEST_A=$GUEST_PID
t0=$(ms)
wait_for 15 $CTL health || fail "health not 0 15 s after guest a restarted: $($CTL health 2>&1)"
info "health 0 again $(( $(ms) - t0 )) ms after guest a restarted"
out=$(timeout 20 adb -s $USB_SERIAL shell echo back-on-a 2>&1)
[ "$out" = back-on-a ] || fail "shell on a after its restart printed '$out'"
ok

step init-stop
adb kill-server
t0=$(ms)
out=$($INIT stop 2>&1) || fail "$INIT stop exited $?: $out"
echo "$out" | grep -q '^adbd-relay: stopped$' || fail "$INIT stop said: $out"
echo "$out" | grep -q SIGKILL && fail "the relay needed SIGKILL: $out"
kill -0 "$PID" 2>/dev/null && fail "the relay $PID still runs after stop"
[ -e $PIDFILE ] && fail "stop left $PIDFILE"
[ -z "$(relays)" ] || fail "relays still running: $(relays)"
grep -q ': shutting down' $RELAY_LOG && grep -q 'stopped$' $RELAY_LOG ||
	fail "the relay logged no orderly exit on SIGTERM"
[ -e $GA ] && fail "stop left gadget ga"
grep -q " $FFS functionfs " /proc/mounts && fail "stop left $FFS mounted"
# the relay, no longer root, cannot unlink it in root's RUNDIR: the script does
[ -e $CONTROL ] && fail "stop left the control socket $CONTROL"
st=$($INIT status 2>&1)
rc=$?
[ $rc = 3 ] || fail "$INIT status after stop exited $rc (want 3): $st"
ok "in $(( $(ms) - t0 )) ms"
