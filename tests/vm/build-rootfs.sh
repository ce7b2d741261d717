#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# build-rootfs.sh - the VM lab's Debian 12 root file system for guests that
# boot a real systemd as PID 1 (tests/vm/systemd-deb.test): made once with
# mmdebstrap from Debian's archive, cached in the lab cache as a tarball
# keyed by this script's own content, so an edit here makes a new one.
#
#   build-rootfs.sh SRCDIR CACHEDIR
#       prints the tarball's path
#
# What is in it, as Debian installs it (nothing of this project: the test
# installs the freshly built adbd-relay package into a copy): the essential
# set, systemd (with systemd-sysv, for poweroff) and udev, kmod, the
# dependencies of the adbd-relay package (libuv1, procps) and of its
# scripts (mawk), and the real AOSP adbd and adb 34.0.5 from
# bookworm-backports with the android libraries they need from there. The
# sources are fetch-debs.sh's: bookworm, bookworm-updates,
# bookworm-security and bookworm-backports, signed by Debian's archive
# keyring. Kept small: no apt, and dpkg leaves out manual pages, docs,
# locales and udev's hardware database (its configuration in
# /etc/dpkg/dpkg.cfg.d stays, for what is installed later).
# No kernel modules: the test adds the guest kernel's.
#
# Needs root (mmdebstrap's root mode: chroot, mounts) and mmdebstrap
# (tests/install-deps.sh installs it). Nothing it installs is started:
# mmdebstrap disables service starts while it installs.
set -euo pipefail

src=$(cd "$1" && pwd)
cache=$2
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
say() { echo "build-rootfs: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "needs root (mmdebstrap's root mode)"; exit 1; }
command -v mmdebstrap >/dev/null || { say "no mmdebstrap (Debian package mmdebstrap)"; exit 1; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { say "no $keyring (Debian package debian-archive-keyring)"; exit 1; }

key=$(sha256sum < "$src/tests/vm/build-rootfs.sh" | cut -c1-16)
tarball=$cache/rootfs-bookworm-$key.tar.gz
if [ -f "$tarball" ]; then
	echo "$tarball"
	exit 0
fi

# the adbd-relay package's Depends (libuv1, procps; systemd provides
# systemd-sysusers), its gadget script's (mawk, kmod), what the guest runs
# on (systemd, udev), and the real peers from bookworm-backports: the
# /release suffix makes apt take their dependencies from there too where
# bookworm's are too old (the android libraries)
packages="systemd systemd-sysv udev kmod mawk libuv1 procps adbd/bookworm-backports adb/bookworm-backports"

mirror=http://deb.debian.org/debian
sources=(
	"deb [signed-by=$keyring] $mirror bookworm main"
	"deb [signed-by=$keyring] $mirror bookworm-updates main"
	"deb [signed-by=$keyring] $mirror-security bookworm-security main"
	"deb [signed-by=$keyring] $mirror bookworm-backports main"
)

say "building a bookworm root file system with mmdebstrap ($key)"
log=$cache/rootfs-bookworm-$key.log
# (mmdebstrap picks the format and compression by the name's ending)
tmp=$cache/rootfs-bookworm-$key.tmp.tar.gz
rm -rf "$tmp"
t0=$(date +%s)
# shellcheck disable=SC2086
# mmdebstrap's merged-usr hook: /usr merged with symlinks and the package
# usr-is-merged, the one init-system-helpers accepts instead of usrmerge
# (which would bring the whole of perl)
if ! mmdebstrap --mode=root --variant=essential --include="$(echo $packages | tr ' ' ,)" \
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/lintian/*' \
	--dpkgopt='path-exclude=/usr/lib/udev/hwdb.d/*' \
	--dpkgopt='path-exclude=/lib/udev/hwdb.d/*' \
	--customize-hook='echo lab > "$1/etc/hostname"' \
	--customize-hook='printf "127.0.0.1 localhost lab\n::1 localhost ip6-localhost ip6-loopback\n" > "$1/etc/hosts"' \
	--customize-hook='rm -f "$1/etc/resolv.conf"' \
	bookworm "$tmp" "${sources[@]}" > "$log" 2>&1; then
	tail -n 40 "$log" >&2
	rm -rf "$tmp"
	say "mmdebstrap failed (log: $log)"
	exit 1
fi
mv "$tmp" "$tarball"
say "$(basename "$tarball"): $(du -m "$tarball" | cut -f1) MiB in $(( $(date +%s) - t0 )) s"
# keep only the newest two, and their logs
ls -t "$cache"/rootfs-bookworm-*.tar.gz | tail -n +3 | xargs -r rm -f
for l in "$cache"/rootfs-bookworm-*.log; do
	[ -f "${l%.log}.tar.gz" ] || rm -f "$l"
done
echo "$tarball"
