#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh - the main job: build adbd-relay, boot a real VM (QEMU, TCG: no KVM
# needed) whose guest runs Debian's kernel and the real AOSP adbd on vsock
# port 5555, attached to the relay's own virtio-vsock device (vhost-user),
# and drive it with the real adb client through the relay's TCP front:
# connect, shell, push/pull, a forward, a guest reboot under the open
# transport, status and health.
#
# The VM image (kernel, adbd, static build, initramfs) is built by
# tests/vm/build-image.sh into LAB_CACHE (default _build/vm-lab, shared
# with tests/suite.sh); the first run downloads Debian's kernel and adbd
# packages. Runs as any user (install-deps.sh needs root or sudo only when
# packages are missing). The adb server is the demo's own (own port, own
# HOME): the user's ~/.android and adb server are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
T0=$(date +%s)
STEP="installing packages"
step() { STEP=$*; printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { echo "   $*"; }
die() { echo "demo: $*" >&2; exit 1; }
finish() {
	local rc=$1
	set +e
	if [ "$rc" = 130 ]; then
		echo "demo: interrupted in step: $STEP" >&2
	elif [ "$rc" -ne 0 ]; then
		echo >&2
		echo "demo: FAILED in step: $STEP" >&2
		if [ -n "${LAB_TMP:-}" ]; then
			[ -f "$LAB_TMP/host.log" ] &&
				{ echo "--- relay log, last 20 lines" >&2; tail -n 20 "$LAB_TMP/host.log" >&2; }
			[ -f "${LAB_CONSOLE:-}" ] &&
				{ echo "--- guest console, last 20 lines" >&2; tr -d '\r' < "$LAB_CONSOLE" | tail -n 20 >&2; }
			[ -s "$LAB_TMP/real-virtio.qemu.log" ] &&
				{ echo "--- QEMU's messages" >&2; tail -n 10 "$LAB_TMP/real-virtio.qemu.log" >&2; }
		fi
	fi
	[ -n "${ADB:-}" ] && timeout 10 "$ADB" kill-server >/dev/null 2>&1
	# lab.sh's cleanup: stops QEMU and the relay, removes the temp dir (kept, and named, on failure)
	[ -n "${LAB_TMP:-}" ] && lab_cleanup "$rc"
	exit "$rc"
}
trap 'finish $?' EXIT
trap 'exit 130' INT TERM

step "checking the Debian packages it needs (tests/install-deps.sh installs what is missing)"
tests/install-deps.sh demo

step "building adbd-relay in _build/demo"
if [ ! -f _build/demo/Makefile ]; then
	mkdir -p _build/demo
	autoreconf -fi >_build/demo/autoreconf.log 2>&1 || { cat _build/demo/autoreconf.log; die "autoreconf failed"; }
	(cd _build/demo && "$top/configure" -q)
fi
make -s -C _build/demo -j"$(nproc)" >/dev/null
B=$top/_build/demo

# the VM lab's host side (tests/vm/lab.sh): image build, QEMU, cleanup
top_builddir=$B top_srcdir=$top
: "${LAB_CACHE:=$top/_build/vm-lab}"
step "preparing the VM image (Debian 12's kernel, the real adbd, a busybox initramfs) in ${LAB_CACHE#"$top/"}"
[ -d "$LAB_CACHE/kernel" ] || say "first run: downloading Debian's kernel and adbd packages and building the image (a minute or two)"
. tests/vm/lab.sh
lab_setup demo
trap 'finish $?' EXIT
trap 'exit 130' INT TERM
T=$LAB_TMP
kver=$(basename "$LAB_KERNEL_IMAGE"); kver=${kver#vmlinuz-}
say "kernel $kver, image $(basename "$LAB_INITRD")"

# our own adb server: a free port, a HOME of its own, nothing inherited
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
unset ADB_SERVER_SOCKET ANDROID_SERIAL ANDROID_SDK_HOME ANDROID_USER_HOME ADB_VENDOR_KEYS
ANDROID_ADB_SERVER_PORT=$(port)
export HOME=$T/home ANDROID_ADB_SERVER_PORT ANDROID_ADB_LOG_PATH=$T/adb-server.log
mkdir -p "$HOME"
PORT=$(port)
SERIAL=127.0.0.1:$PORT
VHOST=$T/vhost.sock
CTL=("$B/relay/adbd-relayctl" -s "$T/control.sock")
ADB=$(command -v adb)
adb() { timeout 120 "$ADB" "$@"; }

# taken now: left free while the guest boots, another program could take it
timeout 20 "$ADB" start-server >/dev/null 2>&1 || die "adb start-server failed"

step "starting adbd-relay: adb front tcp:$SERIAL, target virtio:vhost.sock:3:5555 (guest CID 3, adbd's port)"
lab_spawn RELAY_PID "$B/relay/adbd-relay" -n demo -f "tcp:$SERIAL" -t "virtio:$VHOST:3:5555" -s "$T/control.sock"
for _ in $(seq 100); do [ -S "$VHOST" ] && [ -S "$T/control.sock" ] && break; sleep 0.05; done
[ -S "$VHOST" ] || die "the relay did not create its vhost-user socket"
say "the relay is the guest's virtio-vsock device, served on $VHOST"

step "booting the VM in QEMU, its vsock device being the relay (scenario real-virtio: the real adbd)"
LAB_REBOOT=1 lab_boot_start real-virtio -- \
	-object memory-backend-memfd,id=mem,size=768M,share=on -machine memory-backend=mem \
	-chardev "socket,id=c0,path=$VHOST" -device vhost-user-vsock-pci,chardev=c0
lab_console_wait "^LAB OK adbd" 90 || die "the guest's adbd did not come up"
say "guest up, adbd listening on vsock port 5555, after $(( ($(date +%s%N) - LAB_T0) / 1000000000 )) s"

step "adb connect $SERIAL"
adb connect "$SERIAL"
timeout 30 "$ADB" -s "$SERIAL" wait-for-device || die "$SERIAL did not become an adb device"
adb devices -l | sed '/^$/d'
tid() { "$ADB" devices -l | sed -n "s/^$SERIAL .*transport_id:\([0-9]*\).*/\1/p"; }
TID=$(tid)
[ -n "$TID" ] || die "$SERIAL is not listed as a device"

step "adb shell: the guest's kernel and its adbd"
# shellcheck disable=SC2016 # expanded in the guest
adb -s "$SERIAL" shell 'uname -a; echo "adbd: pid $(pidof adbd), $(readlink /proc/$(pidof adbd)/exe)"'
say "(Debian's $(sed -n 's/^\(adbd_[^_]*\)_.*/\1/p' "$LAB_PEERS/../debs" | tr _ ' '), AOSP's adbd built for Linux)"
say "features: $(adb -s "$SERIAL" features | tr '\n' ' ')"

step "adb push / pull of 16 MiB"
head -c 16M /dev/urandom > "$T/file.bin"
adb -s "$SERIAL" push "$T/file.bin" /tmp/file.bin
adb -s "$SERIAL" pull /tmp/file.bin "$T/back.bin"
say "here:     $(sha256sum < "$T/file.bin" | cut -d' ' -f1)  file.bin"
say "guest:    $(adb -s "$SERIAL" shell sha256sum /tmp/file.bin | cut -d' ' -f1)  /tmp/file.bin"
say "pulled:   $(sha256sum < "$T/back.bin" | cut -d' ' -f1)  back.bin"
cmp -s "$T/file.bin" "$T/back.bin" || die "the pulled file differs from the pushed one"

FWD=$(port)
# echo LINE through the forward: what the guest's echo server sent back
echo_via() {
	exec 3<>"/dev/tcp/127.0.0.1/$FWD" || return 1
	echo "$1" >&3
	local line=""
	read -r -t 10 line <&3 || true
	exec 3<&-
	echo "$line"
}
step "adb forward tcp:$FWD tcp:7001 (the guest's echo server)"
adb -s "$SERIAL" forward "tcp:$FWD" tcp:7001 >/dev/null
adb -s "$SERIAL" forward --list | sed '/^$/d'
got=$(echo_via "hello through the forward")
say "sent 'hello through the forward', the guest echoed '$got'"
[ "$got" = "hello through the forward" ] || die "the forward echoed '$got'"

step "the guest reboots (adb shell reboot -f); QEMU, the relay and the adb transport stay"
say "a reboot the PC did not ask for (not adb reboot) is hidden: the transport, its id and forwards stay;"
say "adb reboot, adb root and the like would be shown as a direct connection shows them (guest-restart)"
timeout 10 "$ADB" -s "$SERIAL" shell 'reboot -f' >/dev/null 2>&1 || true
t0=$(date +%s%N)
for _ in $(seq 50); do "${CTL[@]}" health >/dev/null 2>&1 || break; sleep 0.1; done
say "while it is down, adbd-relayctl health says:"
{ "${CTL[@]}" health || true; } | sed 's/^/     /'
lab_console_wait "^LAB OK adbd" 120 2 || die "the guest's adbd did not come back after the reboot"
ok=0
for _ in $(seq 100); do
	timeout 5 "$ADB" -s "$SERIAL" shell true >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.2
done
[ $ok = 1 ] || die "no adb shell after the guest rebooted"
say "back after $(( ($(date +%s%N) - t0) / 1000000000 )) s; no adb connect, same transport:"
adb devices -l | sed '/^$/d'
[ "$(tid)" = "$TID" ] || die "the transport id changed from $TID to $(tid) across the reboot"
# shellcheck disable=SC2016
adb -s "$SERIAL" shell 'echo "guest up for $(cut -d" " -f1 /proc/uptime) s: a new boot"'
say "the forward is still there and works:"
adb -s "$SERIAL" forward --list | sed '/^$/d'
got=$(echo_via "hello again after the reboot")
say "sent 'hello again after the reboot', the guest echoed '$got'"
[ "$got" = "hello again after the reboot" ] || die "the forward echoed '$got' after the reboot"

step "adbd-relayctl status"
"${CTL[@]}" status
step "adbd-relayctl health"
"${CTL[@]}" health
step "demo finished in $(( $(date +%s) - T0 )) s: everything is cleaned up on exit"
