#!/bin/bash
# install-deps.sh - install the Debian 12 packages adbd-relay's build, demo
# and test suite need (only those missing). Runs apt-get as root or via sudo.
set -euo pipefail

# build and unit tests (tshark decodes the capture writer's output),
# integration tests with the real adb client, the fuzzer, the benchmark's
# reference (socat), and the VM lab; groff and systemd-analyze check the
# manual pages and the units (docs.test, units.test)
PACKAGES="gcc make autoconf automake pkg-config libuv1-dev libusb-1.0-0-dev check tshark adb python3 clang
	socat qemu-system-x86 busybox-static kmod cpio xz-utils debian-archive-keyring groff-base systemd"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
