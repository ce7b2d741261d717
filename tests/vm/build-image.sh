#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# build-image.sh - build the VM lab's kernel + initramfs from Debian packages
# and the project's statically linked binaries, cached between runs.
#
#   LAB_KERNEL=SUITE build-image.sh SRCDIR CACHEDIR
#
# Prints three lines: the kernel image path, the initramfs path, and the
# tree where the real peers are unpacked (for host-side clients). Installs
# nothing: tests/install-deps.sh provides qemu-system-x86, busybox-static,
# kmod, cpio and xz-utils. The kernel is the one SUITE's linux-image-ARCH
# depends on (LAB_KERNEL: bookworm, the default, trixie or
# trixie-backports); it and the real adbd and adb 34 (bookworm-backports)
# come through fetch-debs.sh's private apt configuration into CACHEDIR.
# In the image: adb (Debian 12's, 29) on PATH, adb34 and adbd (wrappers
# for /opt/android, whose libraries stay apart from adb 29's), and
# mdns-scan (Debian 12's, 33 KB, libc only: an mDNS browser of its own for
# the PC's side of usb-one-cable; busybox's nslookup asks the rest).
#
# LAB_ARCH (default: this machine's architecture; or arm64) is the guest's
# architecture. For another than this machine's, the project's binaries
# are cross-built (crossbuild-essential-ARCH, libuv1-dev:ARCH,
# libusb-1.0-0-dev:ARCH), and busybox, adb 29 and every library the image
# loads come for ARCH through fetch-debs.sh (qemu-user-static runs busybox
# here once, to list its applets).
set -euo pipefail
# depmod and modprobe live in /usr/sbin, off a normal user's PATH
export PATH=$PATH:/usr/sbin:/sbin

src=$(cd "$1" && pwd)
cache=$2
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
lab=$src/tests/vm

# Modules scenarios may load (with their dependencies, resolved below).
: "${LAB_KERNEL:=bookworm}"
MODULES="vsock_loopback virtio_pci vmw_vsock_virtio_transport dummy_hcd libcomposite usb_f_fs usb_f_acm usb_f_ncm cdc_ncm configfs"

say() { echo "build-image: $*" >&2; }

# ---- the guest's architecture ----
native=$(dpkg --print-architecture)
: "${LAB_ARCH:=$native}"
export LAB_ARCH
multiarch=$(dpkg-architecture -a"$LAB_ARCH" -qDEB_HOST_MULTIARCH 2>/dev/null)
if [ "$LAB_ARCH" = "$native" ]; then
	cross="" sysroot="" run_target=""
else
	cross=$(dpkg-architecture -a"$LAB_ARCH" -qDEB_HOST_GNU_TYPE 2>/dev/null)
	run_target=qemu-${cross%%-*}-static
	command -v "$cross-gcc" >/dev/null || { say "no $cross-gcc (crossbuild-essential-$LAB_ARCH)"; exit 1; }
	command -v "$run_target" >/dev/null || { say "no $run_target (qemu-user-static)"; exit 1; }
	# sysroot: what the image has at /: busybox, adb 29, their libraries
	sysroot=$("$lab/fetch-debs.sh" "$cache" peers bookworm adb busybox-static libusb-1.0-0) ||
		{ say "could not fetch adb 29 and busybox for $LAB_ARCH"; exit 1; }
fi
pkgconf=${cross:+$cross-}pkg-config

# ---- the kernel: LAB_KERNEL names the Debian suite it comes from ----
kdir=$("$lab/fetch-debs.sh" "$cache" kernel "$LAB_KERNEL") || { say "no kernel from $LAB_KERNEL"; exit 1; }
kernel_pkg=$(basename "$kdir")
kver=$(ls "$kdir/root/lib/modules")
vmlinuz=$kdir/root/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || { say "no kernel image in $kernel_pkg"; exit 1; }

# ---- the real peers: AOSP adbd and adb 34 from bookworm-backports, and
# mdns-scan (bookworm) ----
peers=$("$lab/fetch-debs.sh" "$cache" peers bookworm-backports adbd adb mdns-scan) ||
	{ say "could not fetch adbd, adb and mdns-scan from bookworm(-backports)"; exit 1; }
mdns_scan=$peers/usr/bin/mdns-scan
[ -f "$mdns_scan" ] || { say "no mdns-scan in $peers"; exit 1; }
peer_libdir=$peers/usr/lib/$multiarch/android
peer_bins="$peers/usr/lib/android-sdk/platform-tools/adbd $peers/usr/lib/android-sdk/platform-tools/adb"

# ---- the project's binaries, statically linked, in a build of their own ----
# (one per source tree, so a shared cache never builds the wrong sources),
# configured for the image's layout: its init script and gadget script,
# made by this build from init/*.in, name /usr/sbin and /etc as the image
# and its scenarios have them
static_layout="--prefix=/usr --sysconfdir=/etc${cross:+ --host=$cross}"
sdir=$cache/static-$(echo "$src $static_layout" | sha256sum | cut -c1-12)
if [ ! -f "$sdir/Makefile" ]; then
	say "configuring the static build"
	mkdir -p "$sdir"
	# shellcheck disable=SC2086
	(cd "$sdir" && "$src/configure" -q $static_layout LDFLAGS=-static \
		UV_CFLAGS="$($pkgconf --cflags libuv-static)" \
		UV_LIBS="$($pkgconf --static --libs libuv-static)")
fi
BINS="relay/adbd-relay relay/adbd-relayctl tests/guest/adbd-testguest"
SCRIPTS="init/adbd-relay.init init/adbd-relay-gadget"
# shellcheck disable=SC2086
make -s -C "$sdir" -j"$(nproc)" $BINS $SCRIPTS >"$sdir/make.log" 2>&1 ||
	{ cat "$sdir/make.log" >&2; say "static build failed"; exit 1; }

# the USB-level probe links libusb, which has no static build: dynamic,
# its libraries come with adb's below. Without libusb the image has none
# (usb-gadget.test, which needs it, skips).
probe=""
if $pkgconf --exists libusb-1.0; then
	probe=$sdir/adb-usbprobe
	${cross:+$cross-}gcc -std=gnu11 -O2 -Wall -Wextra -I"$src" -o "$probe.tmp" \
		"$src/tests/usbhost/adb-usbprobe.c" "$src/adbproto/adbproto.c" \
		$($pkgconf --cflags --libs libusb-1.0) || { say "building adb-usbprobe failed"; exit 1; }
	cmp -s "$probe.tmp" "$probe" && rm -f "$probe.tmp" || mv "$probe.tmp" "$probe"
else
	say "no libusb-1.0 (libusb-1.0-0-dev:$LAB_ARCH): the image has no adb-usbprobe"
fi

# ---- the real adb client and what it loads ----
# libs_of ROOT FILE: the libraries FILE loads and its interpreter, found
# under ROOT (this machine's own: ldd; an unpacked tree of another
# architecture: each NEEDED looked up along FILE's RUNPATH and the
# multiarch directories, the way ld.so would on such a machine)
libs_of() {
	local root=$1 queue=("$2") seen=" " f d name hit dirs
	if [ -z "$root" ]; then
		ldd "$2" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\t\(\/[^ ]*\) .*/\1/p'
		return
	fi
	while [ ${#queue[@]} -gt 0 ]; do
		f=${queue[0]}; queue=("${queue[@]:1}")
		dirs=$(readelf -d "$f" | sed -n 's/.*(R[UN]*PATH).*\[\(.*\)\]$/\1/p' | tr ':' ' ')
		for name in $(readelf -l "$f" | sed -n 's/.*interpreter: \(.*\)\]$/\1/p') \
			$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
			hit=""
			case $name in
			/*) [ -e "$root$name" ] && hit=$root$name ;;
			*) for d in $dirs /lib/$multiarch /usr/lib/$multiarch /lib /usr/lib; do
				[ -e "$root$d/$name" ] && { hit=$root$d/$name; break; }
			done ;;
			esac
			[ -n "$hit" ] || { say "$name, which ${f#"$root"} loads, is not in $root"; return 1; }
			case $seen in *" $hit "*) continue ;; esac
			seen="$seen$hit "; echo "$hit"; queue+=("$hit")
		done
	done
}
if [ -n "$sysroot" ]; then
	adb_bin=$sysroot/usr/lib/android-sdk/platform-tools/adb busybox=$sysroot/bin/busybox
else
	adb_bin=$(readlink -f "$(command -v adb)") busybox=$(command -v busybox)
fi
adb_files=$(libs_of "$sysroot" "$adb_bin") && probe_files=${probe:+$(libs_of "$sysroot" "$probe")} ||
	{ say "cannot list the libraries of adb 29 and adb-usbprobe"; exit 1; }
adb_files=$(printf '%s\n' "$adb_bin" $adb_files $probe_files | sort -u)
peer_files=""
for b in $peer_bins; do
	libs=$(LD_LIBRARY_PATH=$peer_libdir libs_of "${sysroot:+$peers}" "$b") ||
		{ say "cannot list the libraries of $b"; exit 1; }
	peer_files="$peer_files $b $libs"
done
# shellcheck disable=SC2086
peer_files=$(printf '%s\n' $peer_files | grep -v '/ld-linux' | sort -u)

# ---- the cache key: every input's content ----
key=$( {
	echo "$kernel_pkg $MODULES"
	for f in $BINS $SCRIPTS; do sha256sum < "$sdir/$f"; done
	if [ -n "$probe" ]; then sha256sum < "$probe"; else echo "no probe"; fi
	sha256sum < "$busybox"
	sha256sum < "$mdns_scan"
	# shellcheck disable=SC2086
	for f in $adb_files $peer_files; do sha256sum < "$f"; done
	find "$lab/initramfs" "$lab/scenarios" "$src/init" -type f | sort | xargs cat | sha256sum
	# this script: what it puts in the image (accounts, file layout)
	sha256sum < "$lab/build-image.sh"
} | sha256sum | cut -c1-16)
image=$cache/initramfs-$key.cpio.gz
if [ -f "$image" ]; then
	echo "$vmlinuz"; echo "$image"; echo "$peers"; exit 0
fi

say "building initramfs $key"
root=$(mktemp -d "$cache/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
# the guest's / (mktemp made it 0700: no path would resolve for a process
# that is not root, such as a relay that gave up root)
chmod 755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,lab,lib/modules/"$kver"}
cp "$busybox" "$root/bin/busybox"
for applet in $($run_target "$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
for f in $BINS; do cp "$sdir/$f" "$root/bin/"; done
[ -z "$probe" ] || cp "$probe" "$root/bin/"
cp "$sdir/init/adbd-relay-gadget" "$root/bin/"
# the sysvinit script, installed as a systemd-less image would have it
mkdir -p "$root/etc/init.d"
cp "$sdir/init/adbd-relay.init" "$root/etc/init.d/adbd-relay"
chmod 755 "$root/etc/init.d/adbd-relay"
# shellcheck disable=SC2086
for f in $adb_files; do
	to=$root${f#"$sysroot"}
	mkdir -p "$(dirname "$to")"
	cp -L "$f" "$to"
done
ln -s "${adb_bin#"$sysroot"}" "$root/usr/bin/adb"
# (it needs only the C library, which adb 29 brought)
cp "$mdns_scan" "$root/usr/bin/mdns-scan"
# the real peers, each library beside them (adb 29 loads older ones of the
# same names), started through wrappers
mkdir -p "$root/opt/android/bin" "$root/opt/android/lib"
# shellcheck disable=SC2086
for f in $peer_files; do
	case " $peer_bins " in
	*" $f "*) cp -L "$f" "$root/opt/android/bin/" ;;
	*) cp -L "$f" "$root/opt/android/lib/" ;;
	esac
done
for b in adb:adb34 adbd:adbd; do
	printf '#!/bin/sh\nLD_LIBRARY_PATH=/opt/android/lib exec /opt/android/bin/%s "$@"\n' "${b%%:*}" \
		> "$root/usr/bin/${b#*:}"
	chmod 755 "$root/usr/bin/${b#*:}"
done

# modules: copy each dependency chain and record its load order
mkdir -p "$root/lab/modules"
for m in $MODULES; do
	# virtio_pci is built in from 6.12 on (7.x ships no modules.builtin)
	if ! deps=$(modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" 2>/dev/null); then
		[ "$m" = virtio_pci ] && { : > "$root/lab/modules/$m"; continue; }
		say "module $m not found in $kernel_pkg"; exit 1
	fi
	echo "$deps" | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		rel=${path#"$kdir/root"}
		mkdir -p "$root$(dirname "$rel")"
		cp "$path" "$root$rel"
		echo "$rel"
	done > "$root/lab/modules/$m"
	[ -s "$root/lab/modules/$m" ] || echo "$deps" | grep -q "^builtin " ||
		{ say "module $m not found in $kernel_pkg"; exit 1; }
done

cp "$lab/initramfs/init" "$root/init"
cp "$lab/initramfs/lib.sh" "$lab/initramfs/peer-checks.sh" "$root/lab/"
cp "$lab"/scenarios/*.sh "$root/lab/"
chmod 755 "$root/init"
# root, and an unprivileged account for the relay (user, group) with a
# group of its own for the control socket (control-group)
printf '%s\n' "root:x:0:0:root:/tmp:/bin/sh" \
	"adbrelay:x:1000:1000:adbd-relay:/nonexistent:/bin/false" > "$root/etc/passwd"
printf '%s\n' "root:x:0:" "adbrelay:x:1000:" "adbctl:x:1001:" > "$root/etc/group"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$image.tmp"
mv "$image.tmp" "$image"
# keep only the newest few images
ls -t "$cache"/initramfs-*.cpio.gz | tail -n +7 | xargs -r rm -f
echo "$vmlinuz"; echo "$image"; echo "$peers"
