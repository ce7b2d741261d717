# SPDX-License-Identifier: Apache-2.0
# systemd-deb.sh - the Debian package adbd-relay as a user has it: installed
# with dpkg in a Debian 12 root file system, booted with systemd as PID 1
# (tests/vm/systemd-deb.test assembles the guest and runs this from
# lab-scenario.service once multi-user.target is reached). The
# administrator's edits were made before boot: /etc/adbd-relay/gadgets with
# gadget g1 (serial RELAYUSB01, dummy_udc.0) and two routes in
# /etc/adbd-relay/adbd-relay.conf, a TCP front (127.0.0.1:6520) and a USB
# front (/dev/usb-ffs/g1), both to the real AOSP adbd on vsock_loopback
# (vsock:1:5555, lab-adbd.service). Nothing here starts the relay or binds
# a gadget itself: systemctl, the package's units and dpkg do it all.
#
# The steps, each reported on its own (only a failure of a-boot stops the
# rest; the others go on, so one run names every step that fails):
#   a-boot       adbd-relay.service active (Type=notify: READY=1 came) and
#                adbd-relay-gadgets.service active; boot time
#   b-status     StatusText "N routes: ...", shown by systemctl status
#   c-tcp        the real adb 34 through the TCP front
#   d-usb        g1 bound by the unit (its UDC file), adb through it, and
#                no "no descriptors" in the unit's journal
#   e-reload     a second gadget and USB route added, systemctl reload:
#                adb reaches RELAYUSB02, the same MainPID
#   g-minute     the MainPID of a-boot and NRestarts=0 kept until 60 s
#                after the unit became active (watchdog included)
#   f-restart    systemctl restart under 10 s, a new MainPID, TCP and both
#                USB devices answer again
#   h-stop       systemctl stop: inactive (not failed), control socket gone;
#                started again
#   i-purge      dpkg --purge: no gadget, no FunctionFS mount, no unit, no
#                control socket left
#   j-journal    the unit's journal (its tail as LAB INFO)

export ANDROID_ADB_SERVER_PORT=5038
ADB=/usr/lib/android-sdk/platform-tools/adb
UNIT=adbd-relay
CONF=/etc/adbd-relay/adbd-relay.conf
GADGETS=/etc/adbd-relay/gadgets
CONTROL=/run/adbd-relay/control.sock
GCFS=/sys/kernel/config/usb_gadget
TCP=127.0.0.1:6520
STATE=/run/lab-state
mkdir -p "$STATE"
FAILED=""

# prop PROPERTY [UNIT]: one property of the unit, its value only
prop() { systemctl show -p "$1" --value "${2:-$UNIT}"; }
# now_us: CLOCK_MONOTONIC in microseconds (the guest never suspends, so
# /proc/uptime is the same clock as systemd's *TimestampMonotonic)
now_us() { awk '{ printf "%d\n", $1 * 1000000 }' /proc/uptime; }
# shell_ok SERIAL: adb shell echo ok through SERIAL prints ok
shell_ok() {
	out=$(timeout 15 "$ADB" -s "$1" shell echo ok 2>&1)
	echo "$out" > "$STATE/last-shell"
	[ "$out" = ok ]
}
# tcp_ok: the TCP front answers (adb connect again: a restarted relay
# dropped the transport)
tcp_ok() {
	timeout 10 "$ADB" connect "$TCP" > "$STATE/last-connect" 2>&1
	shell_ok "$TCP"
}
last_shell() { tr '\n' ' ' < "$STATE/last-shell" 2>/dev/null; }
# journal_grep REGEX: the unit's journal lines of this boot matching REGEX
journal_grep() { journalctl -u "$UNIT" -b --no-pager -o cat 2>/dev/null | grep -E "$1"; }
journal_tail() { journalctl -u "$UNIT" -b --no-pager -o cat 2>/dev/null | tail -n "${1:-6}" | tr '\n' '|'; }
# ffs_seen PID NAME: the FunctionFS NAME is mounted in PID's namespace
ffs_seen() { grep -q " /dev/usb-ffs/$2 .* - functionfs $2 " "/proc/$1/mountinfo" 2>/dev/null; }
devices() { timeout 10 "$ADB" devices 2>&1 | tail -n +2 | tr '\n\t' '| '; }

# run STEP FUNCTION: one step in a subshell of its own (lib.sh's fail ends
# only that step); its result is remembered. A step that fails is followed
# by what the journal said meanwhile of the relay's two units.
run() {
	since=$(date +%s)
	( step "$1" && "$2" ) && return 0
	FAILED="$FAILED $1"
	journalctl -b --since "@$since" -u "$UNIT" -u adbd-relay-gadgets --no-pager -o short-monotonic 2>&1 |
		grep -v '^-- ' | tail -n 25 | while IFS= read -r l; do info "$1 journal| $l"; done
	return 1
}

# ---- a: boot ----
a_boot() {
	# the boot is finished when systemd-analyze can tell its time
	wait_for 120 systemd-analyze time ||
		fail "boot not finished after 120 s: $(systemctl list-jobs --no-pager 2>&1 | head -n 5 | tr '\n' '|')"
	info "boot: $(systemd-analyze time | head -n 1)"
	info "slowest units: $(systemd-analyze blame --no-pager 2>/dev/null | head -n 5 | awk '{ print $2, $1 }' | tr '\n' ',')"
	info "system state: $(systemctl is-system-running 2>&1); failed units: $(systemctl --failed --no-legend --plain 2>&1 | awk '{ print $1 }' | tr '\n' ' ')"
	journalctl -b -p warning --no-pager -o short-monotonic 2>&1 | grep -v '^-- ' | head -n 15 |
		while IFS= read -r l; do info "boot warning| $l"; done
	state=$(systemctl is-active "$UNIT")
	[ "$state" = active ] || fail "$UNIT is $state: $(journal_tail 8)"
	[ "$(prop Type)" = notify ] || fail "$UNIT is Type=$(prop Type), not notify"
	g=$(systemctl is-active adbd-relay-gadgets)
	[ "$g" = active ] || fail "adbd-relay-gadgets is $g: $(journalctl -u adbd-relay-gadgets -b --no-pager -o cat | tail -n 5 | tr '\n' '|')"
	pid=$(prop MainPID)
	[ "$pid" -gt 0 ] || fail "$UNIT has no MainPID"
	echo "$pid" > "$STATE/pid0"
	prop ActiveEnterTimestampMonotonic > "$STATE/active0"
	info "$UNIT active at $(( $(cat "$STATE/active0") / 1000 )) ms after boot, MainPID $pid, user $(ps -o user= -p "$pid")"
	ok
}

# ---- b: the status text (STATUS= of sd_notify) ----
b_status() {
	st=$(prop StatusText)
	info "StatusText: '$st'"
	echo "$st" | grep -Eq '^[0-9]+ routes?: ' || fail "StatusText is '$st', not 'N routes: ...'"
	systemctl status "$UNIT" --no-pager > "$STATE/status" 2>&1
	sed -n '1,12p' "$STATE/status" | while IFS= read -r l; do info "status| $l"; done
	grep -Eq '^ *Status: "[0-9]+ routes?: ' "$STATE/status" ||
		fail "systemctl status shows no Status: \"N routes: ...\" line"
	ok
}

# ---- c: the TCP front ----
c_tcp() {
	timeout 30 "$ADB" start-server > "$STATE/adb-start" 2>&1 || fail "adb start-server: $(cat "$STATE/adb-start")"
	wait_for 30 tcp_ok ||
		fail "adb -s $TCP shell echo ok printed '$(last_shell)' (connect: $(cat "$STATE/last-connect")): $(journal_tail 5)"
	info "adb $($ADB version | head -n 1 | sed 's/.*version //') through $TCP: ok"
	ok
}

# ---- d: the USB front, bound by the unit ----
d_usb() {
	pid=$(cat "$STATE/pid0")
	if ffs_seen "$pid" g1; then info "the relay's mount namespace has /dev/usb-ffs/g1"; else
		info "the relay's mount namespace has no /dev/usb-ffs/g1"; fi
	udc=$(cat "$GCFS/g1/UDC" 2>&1)
	[ "$udc" = dummy_udc.0 ] ||
		fail "g1/UDC is '$udc', not dummy_udc.0 after the unit started: $(journal_grep 'adbd-relay-gadget|descriptors|bind' | tail -n 4 | tr '\n' '|')"
	wait_for 20 shell_ok RELAYUSB01 ||
		fail "adb -s RELAYUSB01 shell echo ok printed '$(last_shell)'; devices: $(devices)"
	nd=$(journal_grep 'no descriptors')
	[ -z "$nd" ] || fail "the unit's journal says: $(echo "$nd" | head -n 2 | tr '\n' '|')"
	info "RELAYUSB01 (g1 on dummy_udc.0, bound by the unit): ok"
	ok
}

# ---- e: a USB route added by a reload ----
e_reload() {
	pid=$(cat "$STATE/pid0")
	echo "g2 RELAYUSB02 /dev/usb-ffs/g2 dummy_udc.1" >> "$GADGETS"
	printf '%s\n' "route usb2 {" "	front usb:/dev/usb-ffs/g2" "	target vsock:1:5555" "}" >> "$CONF"
	t0=$(ms)
	out=$(systemctl reload "$UNIT" 2>&1) || fail "systemctl reload $UNIT failed: $out $(journal_tail 5)"
	info "systemctl reload took $(( $(ms) - t0 )) ms"
	if ! wait_for 20 shell_ok RELAYUSB02; then
		g2="gadget g2: $( [ -d "$GCFS/g2" ] && echo "made, UDC '$(cat "$GCFS/g2/UDC")'" || echo "not made")"
		m="functionfs g2 mounted: $(grep -c ' /dev/usb-ffs/g2 functionfs' /proc/mounts) time(s) in PID 1's namespace, $(ffs_seen "$pid" g2 && echo 1 || echo 0) in the relay's"
		d="mount point: $(ls -ld /dev/usb-ffs/g2 2>&1 | awk '{ print $1, $3, $4 }')"
		fail "adb -s RELAYUSB02 shell echo ok printed '$(last_shell)' 20 s after the reload ($g2; $m; $d)"
	fi
	now=$(prop MainPID)
	[ "$now" = "$pid" ] || fail "MainPID changed from $pid to $now"
	touch "$STATE/g2-served"
	info "RELAYUSB02 (g2 on dummy_udc.1, added by a reload): ok, MainPID $pid kept"
	ok
}

# ---- g: the MainPID of a-boot kept a minute (before f restarts it) ----
g_minute() {
	pid=$(cat "$STATE/pid0")
	until=$(( $(cat "$STATE/active0") + 60000000 ))
	# bounded by the deadline: at most 60 s after the unit became active
	while [ "$(now_us)" -lt "$until" ]; do
		now=$(prop MainPID) n=$(prop NRestarts)
		[ "$now" = "$pid" ] || fail "MainPID changed from $pid to $now (NRestarts=$n): $(journal_tail 6)"
		[ "$n" = 0 ] || fail "NRestarts=$n: $(journal_tail 6)"
		sleep 1
	done
	now=$(prop MainPID) n=$(prop NRestarts)
	[ "$now" = "$pid" ] && [ "$n" = 0 ] || fail "at 60 s: MainPID $now (was $pid), NRestarts=$n"
	info "MainPID $pid kept 60 s after the unit became active, NRestarts=0, watchdog $(prop WatchdogUSec)"
	ok
}

# ---- f: restart ----
f_restart() {
	pid=$(cat "$STATE/pid0")
	t0=$(ms)
	out=$(systemctl restart "$UNIT" 2>&1) || fail "systemctl restart failed: $out $(journal_tail 5)"
	dt=$(( $(ms) - t0 ))
	info "systemctl restart $UNIT took $dt ms"
	[ "$dt" -lt 10000 ] || fail "systemctl restart took $dt ms (10 s or more: a gadget bind that timed out?): $(journal_grep 'adbd-relay-gadget' | tail -n 3 | tr '\n' '|')"
	now=$(prop MainPID)
	[ "$now" -gt 0 ] && [ "$now" != "$pid" ] || fail "MainPID after the restart is $now (was $pid)"
	wait_for 30 tcp_ok || fail "after the restart: adb -s $TCP printed '$(last_shell)'"
	for s in RELAYUSB01 RELAYUSB02; do
		wait_for 20 shell_ok $s && continue
		why=""
		[ $s = RELAYUSB01 ] || [ -e "$STATE/g2-served" ] || why=" (e-reload failed: g2 never served)"
		fail "after the restart: adb -s $s printed '$(last_shell)'$why; devices: $(devices)"
	done
	info "after the restart: MainPID $now, TCP, RELAYUSB01 and RELAYUSB02 answer"
	ok
}

# ---- h: stop, start ----
h_stop() {
	out=$(systemctl stop "$UNIT" 2>&1) || fail "systemctl stop returned non-zero: $out"
	state=$(systemctl is-active "$UNIT")
	[ "$state" = inactive ] || fail "$UNIT is $state after stop: $(journal_tail 5)"
	[ ! -e "$CONTROL" ] || fail "$CONTROL is still there after stop"
	info "stopped: $(prop ExecMainStatus) exit status, result $(prop Result)"
	out=$(systemctl start "$UNIT" 2>&1) || fail "systemctl start failed: $out $(journal_tail 5)"
	[ "$(systemctl is-active "$UNIT")" = active ] || fail "$UNIT is $(systemctl is-active "$UNIT") after start"
	ok
}

# ---- i: purge ----
i_purge() {
	[ "$(systemctl is-active "$UNIT")" = active ] || info "the relay is $(systemctl is-active "$UNIT") before the purge"
	dpkg --purge adbd-relay > "$STATE/purge.log" 2>&1 ||
		fail "dpkg --purge adbd-relay failed: $(tail -n 6 "$STATE/purge.log" | tr '\n' '|')"
	left=""
	g=$(ls "$GCFS" 2>/dev/null | tr '\n' ' ')
	[ -z "$g" ] || left="$left gadgets in configfs: $g;"
	m=$(grep ' functionfs ' /proc/mounts | awk '{ print $2 }' | tr '\n' ' ')
	[ -z "$m" ] || left="$left FunctionFS mounts: $m;"
	u=$(ls /lib/systemd/system/adbd-relay*.service 2>/dev/null | tr '\n' ' ')
	[ -z "$u" ] || left="$left unit files: $u;"
	l=$(systemctl list-units --all --no-legend --plain 'adbd-relay*' 2>/dev/null | awk '$2 == "loaded" { print $1 "(" $3 ")" }' | tr '\n' ' ')
	[ -z "$l" ] || left="$left units loaded: $l;"
	[ ! -e "$CONTROL" ] || left="$left $CONTROL;"
	grep -v '^(Reading' "$STATE/purge.log" | while IFS= read -r l; do info "dpkg --purge| $l"; done
	info "systemctl list-units --all 'adbd-relay*': $(systemctl list-units --all --no-legend --plain 'adbd-relay*' 2>&1 | tr '\n' '|')"
	[ -z "$left" ] || fail "after dpkg --purge:$left"
	info "purged: no gadget, FunctionFS mount, unit or control socket left"
	ok
}

# ---- j: what the journal shows for the relay ----
j_journal() {
	journalctl -u "$UNIT" -b --no-pager -o short-monotonic 2>&1 | tail -n 20 |
		while IFS= read -r l; do info "journal| $l"; done
	ok
}

if ! run a-boot a_boot; then
	info "a-boot failed: the other steps need a running relay"
	step j-journal
	j_journal
	exit 1
fi
run b-status b_status
run c-tcp c_tcp
run d-usb d_usb
run e-reload e_reload
run g-minute g_minute
run f-restart f_restart
run h-stop h_stop
run i-purge i_purge
step j-journal
j_journal
timeout 10 "$ADB" kill-server > /dev/null 2>&1
if [ -n "$FAILED" ]; then
	info "failed steps:$FAILED"
	exit 1
fi
