#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# install-deps.sh - install the Debian 12 packages adbd-relay's build, demo
# and test suite need (only those missing). Runs apt-get as root or via sudo.
#
#   tests/install-deps.sh [suite]   everything tests/suite.sh runs (the default)
#   tests/install-deps.sh demo      only what tests/demo.sh needs: the build,
#                                   the VM lab for this machine's architecture
#                                   and the adb client
set -euo pipefail
set_name=${1:-suite}

# The daemon builds with libuv1-dev alone. What the tests need: check (unit
# tests), libusb-1.0-0-dev (the USB-level probe, usb-gadget.test), adb and
# python3 (integration and hostile tests), python3-zeroconf and iproute2
# (mdns.test, mdns-flood.test), tshark (capture.test), socat
# (notify.test, the benchmark's reference), groff-base (docs.test),
# systemd and man-db (systemd-units.test), libfaketime (clock-step.test),
# strace (unprivileged.test: the order in which the control socket is made),
# busybox-static (init-scripts.test, the VM lab), qemu-system-x86 and
# qemu-system-arm (amd64 and aarch64 lab guests), kmod,
# cpio, xz-utils and debian-archive-keyring (the VM lab), clang (the
# fuzzer), gnuplot-nox (make bench's chart), dpkg-dev, debhelper and
# lintian (deb-package.test), mmdebstrap (systemd-deb.test's Debian root
# file system); for the ARM cross builds (arm64 and armhf:
# tests/suite.sh) Debian's cross toolchains, the libraries of those
# architectures (multiarch: dpkg --add-architecture), qemu-user-static to
# run their unit tests, and file to tell what was built. A test whose tool
# is missing is skipped (exit 77), and tests/suite.sh fails on a skip.
CROSS_ARCHES="arm64 armhf"
PACKAGES="gcc make autoconf automake pkg-config libuv1-dev libusb-1.0-0-dev check tshark adb python3 clang
	python3-zeroconf iproute2
	socat qemu-system-x86 qemu-system-arm busybox-static kmod cpio xz-utils debian-archive-keyring groff-base systemd
	man-db libfaketime strace gnuplot-nox qemu-user-static file dpkg-dev debhelper lintian mmdebstrap"
for a in $CROSS_ARCHES; do
	PACKAGES="$PACKAGES crossbuild-essential-$a libuv1-dev:$a check:$a libusb-1.0-0-dev:$a pkgconf:$a"
done

case $set_name in
suite) ;;
demo)
	# the demo's relay build, its VM lab guest (build-image.sh, lab.sh) and
	# the real adb client; nothing the suite alone needs (cross toolchains,
	# sanitizers, lintian, debhelper, the other architecture's QEMU, ...)
	case $(dpkg --print-architecture) in
	arm64) qemu=qemu-system-arm ;;
	*) qemu=qemu-system-x86 ;;
	esac
	PACKAGES="gcc make autoconf automake pkg-config libuv1-dev adb python3 $qemu busybox-static
		kmod cpio xz-utils debian-archive-keyring dpkg-dev"
	CROSS_ARCHES="" ;;
*) echo "usage: $0 [suite|demo]" >&2; exit 2 ;;
esac

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
for a in $CROSS_ARCHES; do
	dpkg --print-foreign-architectures | grep -qx "$a" || $SUDO dpkg --add-architecture "$a"
done
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
