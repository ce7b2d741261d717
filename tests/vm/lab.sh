# SPDX-License-Identifier: Apache-2.0
# lab.sh - the VM lab's host side, sourced by the tests in tests/vm: build
# (or reuse) the kernel and initramfs, boot one scenario under QEMU TCG with
# a hard timeout, turn the console's LAB lines into pass/fail, and reap
# every process the test started, whatever happens.
#
#   . tests/vm/lab.sh
#   lab_setup NAME
#   lab_spawn PIDVAR CMD...          # host-side helpers (vhost-user backends...)
#   lab_boot SCENARIO [KERNEL-ARGS] [-- QEMU-ARGS...]; rc=$?
#   lab_boot_start SCENARIO [KERNEL-ARGS] [-- QEMU-ARGS...]   # in the background,
#   lab_console_wait REGEX SECS; lab_boot_stop               # driven from the host
#
# LAB_CACHE (default $top_builddir/vm-lab) keeps the kernel, the real
# peers, the static build and initramfs images between runs; LAB_KERNEL
# picks the guest kernel's Debian suite (build-image.sh); LAB_ARCH the
# guest's architecture (this machine's, or arm64: qemu-system-aarch64's
# virt board, everything in the image built or fetched for arm64);
# LAB_TIMEOUT bounds one boot; LAB_MEM is the guest's memory in MiB (768).
# LAB_INITRD, set after lab_setup, boots another initramfs than
# build-image.sh's (systemd-deb.test's Debian root file system).

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${LAB_CACHE:=$top_builddir/vm-lab}"
: "${LAB_TIMEOUT:=240}"
: "${LAB_MEM:=768}"
LAB_HOST_PIDS=""
LAB_NAME=lab

lab_log() { printf '[%s] %s\n' "$LAB_NAME" "$*"; }
lab_die() { printf '[%s] FAIL: %s\n' "$LAB_NAME" "$*" >&2; exit 1; }
# lab_skip WHY PACKAGE: end the test as skipped (77): make check says SKIP,
# tests/suite.sh counts it as a failure
lab_skip() {
	printf '[%s] SKIP: %s (Debian package %s; tests/install-deps.sh installs it)\n' "$LAB_NAME" "$1" "$2"
	exit 77
}
# lab_need COMMAND PACKAGE; lab_need_pkg PKG-CONFIG-MODULE PACKAGE
lab_need() {
	PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null 2>&1 || lab_skip "$1 is not installed" "$2"
}
lab_need_pkg() {
	pkg-config --exists "$1" 2>/dev/null || lab_skip "pkg-config finds no $1" "$2"
}

# lab_cleanup [RC]: the EXIT trap (RC: the status to keep, when the caller's
# own trap ran other commands first)
lab_cleanup() {
	local rc=${1:-$?}
	for p in $LAB_HOST_PIDS; do kill "$p" 2>/dev/null; done
	for p in $LAB_HOST_PIDS; do wait "$p" 2>/dev/null; done
	if [ $rc -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$LAB_TMP"; else echo "[$LAB_NAME] files kept in $LAB_TMP" >&2; fi
	exit $rc
}

lab_setup() {
	local native
	native=$(dpkg --print-architecture)
	: "${LAB_ARCH:=$native}"
	LAB_NAME=$1
	[ "$LAB_ARCH" = "$native" ] || LAB_NAME=$1-$LAB_ARCH
	# what boots the guests and what build-image.sh and fetch-debs.sh use
	case $LAB_ARCH in
	amd64)
		lab_need qemu-system-x86_64 qemu-system-x86
		LAB_QEMU=qemu-system-x86_64 LAB_CONSOLE_TTY=ttyS0 ;;
	arm64)
		lab_need qemu-system-aarch64 qemu-system-arm
		LAB_QEMU="qemu-system-aarch64 -M virt -cpu max" LAB_CONSOLE_TTY=ttyAMA0 ;;
	*) lab_die "LAB_ARCH=$LAB_ARCH: the lab boots amd64 and arm64 guests" ;;
	esac
	lab_need dpkg-architecture dpkg-dev
	if [ "$LAB_ARCH" = "$native" ]; then
		lab_need busybox busybox-static
		# (the image has no libraries for it)
		ldd "$(command -v busybox)" >/dev/null 2>&1 && lab_skip "$(command -v busybox) is not static" busybox-static
		# the image's adb 29 is this machine's
		lab_need adb adb
	else
		# build-image.sh cross-builds, and fetches busybox for LAB_ARCH
		local cross
		cross=$(dpkg-architecture -a"$LAB_ARCH" -qDEB_HOST_GNU_TYPE 2>/dev/null)
		lab_need "$cross-gcc" "crossbuild-essential-$LAB_ARCH"
		lab_need "qemu-${cross%%-*}-static" qemu-user-static
		"$cross-pkg-config" --exists libuv-static ||
			lab_skip "no libuv for $LAB_ARCH" "libuv1-dev:$LAB_ARCH"
	fi
	export LAB_ARCH
	lab_need cpio cpio
	lab_need modprobe kmod
	lab_need apt-get apt
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] ||
		lab_skip "no Debian archive keyring for fetch-debs.sh" debian-archive-keyring
	lab_need pkg-config pkg-config
	lab_need_pkg libuv-static libuv1-dev
	LAB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/adbd-relay-vm-$LAB_NAME.XXXXXX")
	trap lab_cleanup EXIT
	trap 'exit 1' INT TERM
	mkdir -p "$LAB_CACHE"
	lab_use_kernel "${LAB_KERNEL:-bookworm}"
}

# lab_use_kernel SUITE: boot the kernel of SUITE from now on (its image is
# built, or found in the cache, first)
lab_use_kernel() {
	local images
	LAB_KERNEL=$1
	# QEMU 7.2's multi-threaded TCG now and then breaks the boot-time code
	# patching of 6.12 and later (an int3 oops in sched_clock_cpu, a panic):
	# those boot with one vCPU
	case $1 in bookworm) LAB_SMP=2 ;; *) LAB_SMP=1 ;; esac
	# one image build at a time, whichever test gets here first
	images=$(LAB_KERNEL=$1 flock "$LAB_CACHE/.lock" "$top_srcdir/tests/vm/build-image.sh" "$top_srcdir" "$LAB_CACHE") ||
		lab_die "could not build the VM image for the $1 kernel"
	LAB_KERNEL_IMAGE=$(echo "$images" | sed -n 1p)
	LAB_INITRD=$(echo "$images" | sed -n 2p)
	LAB_PEERS=$(echo "$images" | sed -n 3p)
}

# lab_adb34 PATH: write PATH, a command that runs the real adb 34 client
# on this machine from the lab cache (Debian 12's adb 29 stays the
# machine's adb)
lab_adb34() {
	printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' \
		"$LAB_PEERS/usr/lib/x86_64-linux-gnu/android" \
		"$LAB_PEERS/usr/lib/android-sdk/platform-tools/adb" > "$1"
	chmod 755 "$1"
}

# lab_spawn VAR CMD...: a host-side process, killed when the test ends
lab_spawn() {
	local var=$1; shift
	"$@" >>"$LAB_TMP/host.log" 2>&1 &
	LAB_HOST_PIDS="$LAB_HOST_PIDS $!"
	eval "$var=$!"
}

# lab_boot_start SCENARIO [KERNEL-ARGS] [-- QEMU-ARGS...]: boot in the
# background; LAB_QEMU_PID and LAB_CONSOLE say where it runs and writes.
lab_boot_start() {
	local scenario=$1; shift
	local kargs=""
	if [ $# -gt 0 ] && [ "$1" != "--" ]; then kargs=$1; shift; fi
	[ $# -gt 0 ] && [ "$1" = "--" ] && shift
	LAB_SCENARIO=$scenario
	LAB_CONSOLE=$LAB_TMP/$scenario.console
	: > "$LAB_CONSOLE"
	LAB_T0=$(date +%s%N)
	# LAB_REBOOT=1: a reboot inside the guest restarts it in the same QEMU
	local on_reboot=-no-reboot
	[ -n "${LAB_REBOOT:-}" ] && on_reboot="-action reboot=reset"
	# shellcheck disable=SC2086
	timeout -k 5 "$LAB_TIMEOUT" $LAB_QEMU -accel tcg,thread=multi -smp "$LAB_SMP" -m "$LAB_MEM" \
		-nodefaults $on_reboot -display none -monitor none -serial "file:$LAB_CONSOLE" \
		-kernel "$LAB_KERNEL_IMAGE" -initrd "$LAB_INITRD" \
		-append "console=$LAB_CONSOLE_TTY panic=-1 quiet loglevel=3 lab.scenario=$scenario $kargs" \
		"$@" >"$LAB_TMP/$scenario.qemu.log" 2>&1 &
	LAB_QEMU_PID=$!
	LAB_HOST_PIDS="$LAB_HOST_PIDS $LAB_QEMU_PID"
}

# lab_console_wait REGEX SECS [COUNT]: until the console shows REGEX (COUNT
# times, default 1) (0), the guest reports a failure or QEMU ends (1), or
# SECS pass (1).
lab_console_wait() {
	local end=$(( $(date +%s) + $2 )) want=${3:-1}
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(grep -c -- "$1" "$LAB_CONSOLE" 2>/dev/null)" -ge "$want" ] && return 0
		grep -q '^LAB FAIL' "$LAB_CONSOLE" 2>/dev/null && return 1
		kill -0 "$LAB_QEMU_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# lab_boot_stop: power the machine off (kill QEMU) and wait for it.
lab_boot_stop() {
	kill "$LAB_QEMU_PID" 2>/dev/null
	wait "$LAB_QEMU_PID" 2>/dev/null
	return 0
}

# lab_boot SCENARIO [KERNEL-ARGS] [-- QEMU-ARGS...]: 0 if the scenario passed
lab_boot() {
	local rc=0
	lab_boot_start "$@"
	wait "$LAB_QEMU_PID" || rc=$?
	LAB_SECONDS=$(( ($(date +%s%N) - LAB_T0) / 1000000000 ))
	lab_report "$LAB_SCENARIO" "$LAB_CONSOLE" "$rc"
}

# lab_kernel_trouble CONSOLE: when the guest's kernel oopsed, warned or
# panicked, say so first, with its report (the relay is a user process: a
# kernel report is a kernel bug, however a test provoked it)
lab_kernel_trouble() {
	local first
	first=$(grep -n -m 1 -E 'BUG:|Oops|general protection fault|WARNING: CPU|Kernel panic|Call Trace:' "$1" |
		cut -d: -f1)
	[ -n "$first" ] || return 0
	echo "[$LAB_NAME] the guest kernel (${LAB_KERNEL_IMAGE##*/}) reported trouble:" \
		"$(sed -n "${first}p" "$1")" >&2
	echo "--- kernel report (from console line $first, 60 lines)" >&2
	sed -n "$((first > 5 ? first - 5 : 1)),$((first + 55))p" "$1" >&2
}

# lab_report SCENARIO CONSOLE QEMU-RC: print the verdict, failing step first
lab_report() {
	local scenario=$1 console=$2 qrc=$3
	tr -d '\r' < "$console" > "$console.txt" 2>/dev/null || : > "$console.txt"
	sed -n 's/^LAB INFO /  /p' "$console.txt"
	if grep -q '^LAB RESULT PASS' "$console.txt" && ! grep -q '^LAB FAIL' "$console.txt"; then
		lab_log "scenario $scenario passed in ${LAB_SECONDS} s ($(grep -c '^LAB OK' "$console.txt") steps)"
		return 0
	fi
	local why
	why=$(sed -n 's/^LAB FAIL //p' "$console.txt" | head -n 1)
	if [ -z "$why" ]; then
		if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
			why="timed out after $LAB_TIMEOUT s in step $(sed -n 's/^LAB STEP //p' "$console.txt" | tail -n 1)"
		elif ! grep -q '^LAB BEGIN' "$console.txt"; then
			why="the guest never reached /init (qemu exit $qrc): $(tail -n 5 "$LAB_TMP/$scenario.qemu.log" | tr '\n' ' ')"
		else
			why="no result (qemu exit $qrc) after step $(sed -n 's/^LAB STEP //p' "$console.txt" | tail -n 1)"
		fi
	fi
	echo "[$LAB_NAME] scenario $scenario FAILED at step $why" >&2
	lab_kernel_trouble "$console.txt"
	echo "--- console (last 40 lines)" >&2
	tail -n 40 "$console.txt" >&2
	return 1
}
