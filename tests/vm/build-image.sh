#!/bin/bash
# build-image.sh - build the VM lab's kernel + initramfs from Debian packages
# and the project's statically linked binaries, cached between runs.
#
#   build-image.sh SRCDIR CACHEDIR
#
# Prints two lines: the kernel image path and the initramfs path. Installs
# nothing: tests/install-deps.sh provides qemu-system-x86, busybox-static,
# kmod and cpio. The kernel package is the one linux-image-amd64 depends on,
# resolved now, downloaded once into CACHEDIR/kernel.
set -euo pipefail

src=$(cd "$1" && pwd)
cache=$2
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
lab=$src/tests/vm

# Modules scenarios may load (with their dependencies, resolved below).
MODULES="vsock_loopback virtio_pci vmw_vsock_virtio_transport dummy_hcd libcomposite usb_f_fs usb_f_acm configfs"

say() { echo "build-image: $*" >&2; }

# ---- the kernel package ----
kernel_pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
[ -n "$kernel_pkg" ] || { say "cannot resolve the kernel package of linux-image-amd64"; exit 1; }
kernel_ver=$(apt-cache show "$kernel_pkg" | sed -n 's/^Version: //p' | head -n 1)
kdir=$cache/kernel/$kernel_pkg-$kernel_ver
if [ ! -f "$kdir/done" ]; then
	say "fetching $kernel_pkg $kernel_ver"
	rm -rf "$kdir"; mkdir -p "$kdir/deb"
	(cd "$kdir/deb" && apt-get download "$kernel_pkg=$kernel_ver" >/dev/null 2>&1) ||
		{ say "apt-get download $kernel_pkg failed"; exit 1; }
	dpkg-deb -x "$kdir"/deb/*.deb "$kdir/root"
	rm -rf "$kdir/deb"
	touch "$kdir/done"
fi
kver=$(ls "$kdir/root/lib/modules")
vmlinuz=$kdir/root/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || { say "no kernel image in $kernel_pkg"; exit 1; }
[ -f "$kdir/root/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir/root" "$kver"

# ---- the project's binaries, statically linked, in a build of their own ----
# (one per source tree, so a shared cache never builds the wrong sources)
sdir=$cache/static-$(echo "$src" | sha256sum | cut -c1-12)
if [ ! -f "$sdir/Makefile" ]; then
	say "configuring the static build"
	mkdir -p "$sdir"
	(cd "$sdir" && "$src/configure" -q LDFLAGS=-static \
		UV_CFLAGS="$(pkg-config --cflags libuv-static)" \
		UV_LIBS="$(pkg-config --static --libs libuv-static)")
fi
BINS="relay/adbd-relay relay/adbd-relayctl tests/guest/adbd-testguest"
# shellcheck disable=SC2086
make -s -C "$sdir" -j"$(nproc)" $BINS >"$sdir/make.log" 2>&1 ||
	{ cat "$sdir/make.log" >&2; say "static build failed"; exit 1; }

# the USB-level probe links libusb, which has no static build: dynamic,
# its libraries come with adb's below
probe=$sdir/adb-usbprobe
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$src/adbproto" -o "$probe.tmp" \
	"$src/tests/usbhost/adb-usbprobe.c" "$src/adbproto/adbproto.c" \
	$(pkg-config --cflags --libs libusb-1.0) || { say "building adb-usbprobe failed"; exit 1; }
cmp -s "$probe.tmp" "$probe" && rm -f "$probe.tmp" || mv "$probe.tmp" "$probe"

# ---- the real adb client and what it loads ----
libs_of() { ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\t\(\/[^ ]*\) .*/\1/p'; }
adb_bin=$(readlink -f "$(command -v adb)")
adb_files=$(printf '%s\n' "$adb_bin" $(libs_of "$adb_bin") $(libs_of "$probe") | sort -u)

# ---- the cache key: every input's content ----
key=$( {
	echo "$kernel_pkg $kernel_ver $MODULES"
	for f in $BINS adb-usbprobe; do sha256sum < "$sdir/$f"; done
	sha256sum < "$(command -v busybox)"
	# shellcheck disable=SC2086
	for f in $adb_files; do sha256sum < "$f"; done
	find "$lab/initramfs" "$lab/scenarios" "$src/init" -type f | sort | xargs cat | sha256sum
	# this script: what it puts in the image (accounts, file layout)
	sha256sum < "$lab/build-image.sh"
} | sha256sum | cut -c1-16)
image=$cache/initramfs-$key.cpio.gz
if [ -f "$image" ]; then
	echo "$vmlinuz"; echo "$image"; exit 0
fi

say "building initramfs $key"
root=$(mktemp -d "$cache/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
# the guest's / (mktemp made it 0700: no path would resolve for a process
# that is not root, such as a relay that gave up root)
chmod 755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,lab,lib/modules/"$kver"}
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
for f in $BINS adb-usbprobe; do cp "$sdir/$f" "$root/bin/"; done
cp "$src/init/adbd-relay-gadget" "$root/bin/"
# the sysvinit script, installed as a systemd-less image would have it
mkdir -p "$root/etc/init.d"
cp "$src/init/adbd-relay.init" "$root/etc/init.d/adbd-relay"
chmod 755 "$root/etc/init.d/adbd-relay"
# shellcheck disable=SC2086
for f in $adb_files; do
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
done
ln -s "$adb_bin" "$root/usr/bin/adb"

# modules: copy each dependency chain and record its load order
mkdir -p "$root/lab/modules"
for m in $MODULES; do
	modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		rel=${path#"$kdir/root"}
		mkdir -p "$root$(dirname "$rel")"
		cp "$path" "$root$rel"
		echo "$rel"
	done > "$root/lab/modules/$m"
	[ -s "$root/lab/modules/$m" ] || { say "module $m not found in $kernel_pkg"; exit 1; }
done

cp "$lab/initramfs/init" "$root/init"
cp "$lab/initramfs/lib.sh" "$root/lab/lib.sh"
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
ls -t "$cache"/initramfs-*.cpio.gz | tail -n +4 | xargs -r rm -f
echo "$vmlinuz"; echo "$image"
