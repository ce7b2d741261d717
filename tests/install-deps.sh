#!/bin/bash
# install-deps.sh - install the Debian 12 packages adbd-relay's build, demo
# and test suite need (only those missing). Runs apt-get as root or via sudo.
set -euo pipefail

PACKAGES="gcc make autoconf automake pkg-config libuv1-dev check adb python3 clang socat"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
