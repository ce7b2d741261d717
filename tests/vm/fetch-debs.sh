#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# fetch-debs.sh - Debian packages for the VM lab from releases the build
# machine does not use (bookworm-backports, trixie, trixie-backports),
# through a private apt configuration under the lab cache. The machine's
# own sources, package lists and installed packages are left as they are:
# nothing is installed, packages are only downloaded and unpacked.
#
#   fetch-debs.sh CACHEDIR kernel SUITE
#       the kernel package that SUITE's linux-image-amd64 depends on;
#       prints the directory it is unpacked in: boot/vmlinuz-VERSION and
#       lib/modules/VERSION, modules uncompressed (busybox insmod takes
#       them as they are), modules.dep made
#   fetch-debs.sh CACHEDIR peers SUITE PACKAGE...
#       PACKAGE from SUITE with every dependency this machine lacks or has
#       too old, all unpacked in one tree; prints that tree
#
# LAB_ARCH (default: this machine's) is the Debian architecture fetched.
# For this machine's own, dependencies it has installed are left out (the
# image takes them from here); for another (arm64 on an amd64 machine), the
# apt world has a status of its own, empty, so every dependency comes.
#
# The private lists are refreshed once a day (LAB_APT_MAX_AGE seconds). No
# root needed: apt takes no dpkg lock (lab.sh serialises image builds).
set -euo pipefail
# depmod and modprobe live in /usr/sbin, off a normal user's PATH
export PATH=$PATH:/usr/sbin:/sbin

cache=$1 what=$2 suite=$3
shift 3
: "${LAB_APT_MAX_AGE:=86400}"
native=$(dpkg --print-architecture)
: "${LAB_ARCH:=$native}"
arch=$LAB_ARCH
say() { echo "fetch-debs: $*" >&2; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

case $suite in
bookworm | bookworm-backports) release=bookworm ;;
trixie | trixie-backports) release=trixie ;;
*) say "unknown suite $suite"; exit 1 ;;
esac

# ---- the private apt world of one release and architecture ----
if [ "$arch" = "$native" ]; then
	world=$cache/apt/$release status=/var/lib/dpkg/status arch_conf=""
else
	world=$cache/apt/$release-$arch status=$world/status
	arch_conf="APT::Architecture \"$arch\"; APT::Architectures { \"$arch\"; };"
fi
apt_conf=$world/apt.conf
if [ ! -f "$apt_conf" ]; then
	mkdir -p "$world"/{lists/partial,archives/partial,parts}
	[ "$status" = /var/lib/dpkg/status ] || : > "$status"
	for s in "$release" "$release-updates" "$release-backports"; do
		echo "deb [signed-by=$keyring] http://deb.debian.org/debian $s main"
	done > "$world/sources.list"
	echo "deb [signed-by=$keyring] http://deb.debian.org/debian-security $release-security main" \
		>> "$world/sources.list"
	cat > "$apt_conf.tmp" <<EOF
Dir::State::Lists "$world/lists";
Dir::State::status "$status";
Dir::Cache "$world";
Dir::Cache::archives "$world/archives";
Dir::Etc::sourcelist "$world/sources.list";
Dir::Etc::sourceparts "$world/parts";
Dir::Etc::preferences "$world/parts/none";
Dir::Etc::preferencesparts "$world/parts";
APT::Get::List-Cleanup "false";
APT::Sandbox::User "root";
$arch_conf
EOF
	mv "$apt_conf.tmp" "$apt_conf"
fi
export APT_CONFIG=$apt_conf
stamp=$world/lists/.updated
if [ ! -f "$stamp" ] || [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -gt "$LAB_APT_MAX_AGE" ]; then
	say "refreshing the package lists of $release (private: $world)"
	# apt-get update exits 0 when it could not fetch a list: look for that too
	if ! apt-get -q update > "$world/update.log" 2>&1 ||
		grep -q '^\(Err:\|W: Failed to fetch\|E: \)' "$world/update.log"; then
		cat "$world/update.log" >&2
		say "apt-get update failed (is Debian's archive reachable from here?)"
		exit 1
	fi
	touch "$stamp"
fi

# candidate PACKAGE: its newest version in $suite, with the suite's
# security and stable updates, as a machine of that release installs it
# (madison order is newest first). Debian 12's own 6.1.176 kernel has a
# dummy_hcd race (its one-request IN FIFO reused while its completion
# runs: a NULL pointer dereference in __queue_work under adb traffic over
# FunctionFS) that bookworm-security's kernel fixes.
candidate() {
	apt-cache madison "$1" | awk -F'|' -v s="$suite" '
		{ gsub(/ /, "", $2); split($3, a, " "); }
		a[2] == s || a[2] ~ "^" s "(-security|-updates)?/" { print $2; exit }'
}

# unpack DIR DEB... [FIXUP]: DEBs unpacked in DIR/root, FIXUP run on it
unpack() {
	local dir=$1 fixup=: deb; shift
	rm -rf "$dir.tmp"; mkdir -p "$dir.tmp/root"
	: > "$dir.tmp/debs"
	for deb in "$@"; do
		case $deb in
		*.deb) dpkg-deb -x "$deb" "$dir.tmp/root"; basename "$deb" >> "$dir.tmp/debs" ;;
		*) fixup=$deb ;;
		esac
	done
	"$fixup" "$dir.tmp/root"
	rm -rf "$dir"; mv "$dir.tmp" "$dir"
	touch "$dir/done"
}

# normalize_modules ROOT: one layout for every release: the image in
# ROOT/boot/vmlinuz-VERSION (7.x ships it in the modules directory), the
# modules in ROOT/lib/modules (trixie: /usr/lib/modules), .ko.xz
# unpacked, modules.dep made
normalize_modules() {
	local root=$1 kver
	if [ -d "$root/usr/lib/modules" ]; then
		mkdir -p "$root/lib"
		mv "$root/usr/lib/modules" "$root/lib/modules"
	fi
	kver=$(ls "$root/lib/modules")
	if [ -f "$root/lib/modules/$kver/vmlinuz" ]; then
		mkdir -p "$root/boot"
		mv "$root/lib/modules/$kver/vmlinuz" "$root/boot/vmlinuz-$kver"
	fi
	find "$root/lib/modules/$kver" -name '*.ko.xz' -exec xz -d {} +
	depmod -b "$root" "$kver"
}

case $what in
kernel)
	meta=$(candidate "linux-image-$arch")
	[ -n "$meta" ] || { say "no linux-image-$arch in $suite"; exit 1; }
	pkg=$(apt-cache show "linux-image-$arch=$meta" |
		sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*\).*/\1/p' | head -n 1)
	[ -n "$pkg" ] || { say "cannot resolve the kernel of linux-image-$arch $meta"; exit 1; }
	ver=$(apt-cache show "$pkg" | sed -n 's/^Version: //p' | head -n 1)
	dir=$cache/kernel/$pkg-$ver
	if [ ! -f "$dir/done" ]; then
		# since 7.x the image and the modules come in packages of their own
		parts=$(apt-cache show "$pkg=$ver" | sed -n 's/^Depends: //p' | head -n 1 | tr ',' '\n' |
			sed -n 's/^ *\(linux-\(binary\|modules\)-[^ ]*\) .*/\1/p')
		say "fetching $pkg $ver ($suite)${parts:+ with $(echo $parts)}"
		debs=""
		for p in $pkg $parts; do
			(cd "$world/archives" && apt-get -q download "$p=$ver" > /dev/null) ||
				{ say "apt-get download $p=$ver failed"; exit 1; }
			debs="$debs $world/archives/${p}_${ver//:/%3a}_$arch.deb"
		done
		# shellcheck disable=SC2086
		unpack "$dir" $debs normalize_modules
		# shellcheck disable=SC2086
		rm -f $debs
	fi
	echo "$dir"
	;;
peers)
	key=$(echo "$arch $suite $*" | tr ' ' '\n' | while read -r p; do echo "$p $(candidate "$p")"; done |
		sha256sum | cut -c1-12)
	dir=$cache/peers/$suite-$key
	if [ ! -f "$dir/done" ]; then
		if [ "$arch" = "$native" ]; then
			say "fetching $* from $suite with the dependencies this machine lacks"
		else
			say "fetching $* for $arch from $suite with all their dependencies"
		fi
		rm -f "$world"/archives/*.deb
		apt-get -q -y --download-only -o Debug::NoLocking=1 -t "$suite" install "$@" > "$world/install.log" 2>&1 ||
			{ cat "$world/install.log" >&2; say "apt-get install --download-only failed"; exit 1; }
		unpack "$dir" "$world"/archives/*.deb
	fi
	echo "$dir/root"
	;;
*)
	say "usage: fetch-debs.sh CACHEDIR kernel|peers SUITE [PACKAGE...]"; exit 1 ;;
esac
