# SPDX-License-Identifier: Apache-2.0
# real-virtio.sh - a guest on the relay's own virtio-vsock device running
# the real AOSP adbd (Debian's adbd 34) on vsock port 5555, and an echo
# server on tcp 7001 for the host's adb forward. /tmp/restart-adbd, run
# from an adb shell, starts adbd again (detached from that shell). The host
# (tests/vm/real-virtio.test, tests/demo.sh) drives it and powers it off.

step modules
modload virtio_pci
modload vmw_vsock_virtio_transport
ok "kernel $(uname -r)"

step adbd
spawn ECHO_PID /tmp/echo.log nc -ll -p 7001 -e /bin/cat
cat > /tmp/restart-adbd <<'SH'
#!/bin/sh
# kill adbd and start another, outside the adb shell that asked
setsid sh -c 'sleep 0.5; kill $(pidof adbd); sleep 0.5; adbd >> /tmp/adbd.log 2>&1' \
	< /dev/null > /dev/null 2>&1 &
SH
chmod 755 /tmp/restart-adbd
adbd >> /tmp/adbd.log 2>&1 &
LAB_PIDS="$LAB_PIDS $!"
LAB_LOGS="$LAB_LOGS /tmp/adbd.log"
wait_for 30 sh -c "netstat -ltn | grep -q ':5555 '" || fail "adbd did not listen: $(tail -n 5 /tmp/adbd.log)"
ok "real adbd listening on vsock port 5555"

# serve until the host is done
sleep 3600
