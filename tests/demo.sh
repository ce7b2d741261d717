#!/bin/bash
# demo.sh - the main job: build adbd-relay, start a guest adbd (the test
# guest behind a Unix socket) and the relay in front of it, and drive it
# with the real adb client: connect, shell, push/pull, guest restart.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
tests/install-deps.sh
if [ ! -f _build/demo/Makefile ]; then
	autoreconf -fi >/dev/null
	mkdir -p _build/demo
	(cd _build/demo && "$top/configure" -q)
fi
make -s -C _build/demo -j"$(nproc)" >/dev/null
B=$top/_build/demo
T=$(mktemp -d /tmp/adbd-relay-demo.XXXXXX)
export ANDROID_ADB_SERVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SERIAL=127.0.0.1:$PORT
pids=""
finish() {
	adb kill-server >/dev/null 2>&1 || true
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap finish EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
start_guest() {
	"$B/tests/guest/adbd-testguest" --listen "unix:$T/guest.sock" --name demo-guest >"$T/guest.out" 2>>"$T/guest.log" &
	GUEST=$!; pids="$pids $GUEST"
	for _ in $(seq 100); do grep -q READY "$T/guest.out" && return; sleep 0.05; done
	echo "guest did not start"; exit 1
}

step "guest adbd listening on unix:$T/guest.sock"
start_guest
step "adbd-relay: tcp:$SERIAL -> unix:$T/guest.sock"
"$B/relay/adbd-relay" -n demo -f "tcp:$SERIAL" -t "unix:$T/guest.sock" -s "$T/control.sock" 2>"$T/relay.log" &
pids="$pids $!"
for _ in $(seq 100); do [ -S "$T/control.sock" ] && break; sleep 0.05; done
adb start-server >/dev/null 2>&1
step "adb connect $SERIAL"
adb connect "$SERIAL"
timeout 20 adb -s "$SERIAL" wait-for-device
adb devices -l
step "adb shell uname -a; echo hello from the guest"
adb -s "$SERIAL" shell 'uname -a; echo hello from the guest'
step "adb push / pull of 16 MiB"
head -c 16M /dev/urandom >"$T/file.bin"
mkdir "$T/guestfs"
adb -s "$SERIAL" push "$T/file.bin" "$T/guestfs/file.bin"
adb -s "$SERIAL" pull "$T/guestfs/file.bin" "$T/back.bin"
sha256sum "$T/file.bin" "$T/back.bin" | sed "s|$T/||"
step "the guest reboots: kill it, watch health, start it again"
kill -9 "$GUEST"; sleep 0.3
"$B/relay/adbd-relayctl" -s "$T/control.sock" health || true
start_guest
for _ in $(seq 60); do timeout 3 adb -s "$SERIAL" shell true 2>/dev/null && break; sleep 0.1; done
adb -s "$SERIAL" shell echo back after the guest restart, same transport:
adb devices -l
step "adbd-relayctl status"
"$B/relay/adbd-relayctl" -s "$T/control.sock" status
"$B/relay/adbd-relayctl" -s "$T/control.sock" health
step "demo finished"
