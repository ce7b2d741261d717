# SPDX-License-Identifier: Apache-2.0
# vsock-kernel.sh - scenario 1: the relay's kernel AF_VSOCK target, for real.
# vsock_loopback gives CID 1 inside this guest. The test guest adbd listens
# on vsock port 5555; adbd-relay routes tcp:127.0.0.1:6520 to vsock:1:5555;
# the real adb client runs shell, a 16 MiB push/pull, and the guest-loss
# recovery of the foundation issue (same transport, no reconnect).
# lab.break=target-port on the kernel command line points the relay at a
# port nobody listens on, to prove the lab reports the failing step.

TARGET_PORT=5555
grep -q 'lab.break=target-port' /proc/cmdline && TARGET_PORT=5599
SERIAL=127.0.0.1:6520
export ANDROID_ADB_SERVER_PORT=5037

step modules
modload vsock_loopback
ok

step guest-adbd
spawn GUEST_PID /tmp/guest.log adbd-testguest --listen vsock:5555 --name vmguest
wait_for 10 grep -q READY /tmp/guest.log || fail "test guest adbd did not listen on vsock:5555"
ok

step relay
spawn RELAY_PID /tmp/relay.log adbd-relay -n vm -f tcp:$SERIAL -t vsock:1:$TARGET_PORT \
	-s /tmp/relay.sock -l debug
wait_for 10 adbd-relayctl -s /tmp/relay.sock status || fail "relay control socket never answered"
ok

step adb-connect
adb start-server > /tmp/adb-start.log 2>&1 || fail "adb start-server: $(cat /tmp/adb-start.log)"
adb connect $SERIAL > /tmp/connect.log 2>&1
wait_for 20 sh -c "adb devices | grep -q '^$SERIAL[[:space:]]*device'" ||
	fail "$SERIAL never listed as a device: $(adb devices | tr '\n' ' ')"
TID=$(adb devices -l | sed -n "s/^$SERIAL .*transport_id:\([0-9]*\).*/\1/p")
ok "transport_id $TID"

step adb-shell
out=$(timeout 30 adb -s $SERIAL shell 'echo hello-$((6 * 7))' 2>&1)
[ "$out" = "hello-42" ] || fail "adb shell printed '$out', expected hello-42"
ok

step push-pull
dd if=/dev/urandom of=/tmp/in.bin bs=1M count=16 2>/dev/null
t0=$(ms)
timeout 120 adb -s $SERIAL push /tmp/in.bin /tmp/pushed.bin > /tmp/push.log 2>&1 ||
	fail "adb push: $(tail -n 3 /tmp/push.log)"
t1=$(ms)
timeout 120 adb -s $SERIAL pull /tmp/pushed.bin /tmp/pulled.bin > /tmp/pull.log 2>&1 ||
	fail "adb pull: $(tail -n 3 /tmp/pull.log)"
t2=$(ms)
a=$(sha256sum < /tmp/in.bin); b=$(sha256sum < /tmp/pulled.bin)
[ "$a" = "$b" ] || fail "sha256 differs after push and pull"
info "push 16 MiB $((t1 - t0)) ms, pull $((t2 - t1)) ms"
rm -f /tmp/pushed.bin /tmp/pulled.bin
ok

step guest-loss
adb -s $SERIAL shell 'while :; do echo tick; sleep 0.05; done' > /tmp/stream.log 2>&1 &
SHELL_PID=$!
LAB_PIDS="$LAB_PIDS $SHELL_PID"
wait_for 20 grep -q tick /tmp/stream.log || fail "streaming shell printed nothing"
kill -9 "$GUEST_PID"
t0=$(ms)
wait_for 2 sh -c "! kill -0 $SHELL_PID" || fail "shell still running 2 s after the guest adbd died"
info "streaming shell ended $(( $(ms) - t0 )) ms after the guest adbd died"
ok

step guest-restart
spawn GUEST_PID /tmp/guest.log adbd-testguest --listen vsock:5555 --name vmguest
wait_for 10 grep -q READY /tmp/guest.log || fail "test guest adbd did not restart"
t0=$(ms)
wait_for 3 timeout 3 adb -s $SERIAL shell true || fail "no working shell within 3 s of the restart"
info "shell works $(( $(ms) - t0 )) ms after the guest adbd restarted"
TID2=$(adb devices -l | sed -n "s/^$SERIAL .*transport_id:\([0-9]*\).*/\1/p")
[ "$TID2" = "$TID" ] || fail "transport id changed from $TID to $TID2"
adbd-relayctl -s /tmp/relay.sock health > /tmp/health.log 2>&1 || fail "health: $(cat /tmp/health.log)"
ok "same transport_id $TID"
adb kill-server
