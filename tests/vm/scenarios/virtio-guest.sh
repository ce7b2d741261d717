# SPDX-License-Identifier: Apache-2.0
# virtio-guest.sh - a guest on the relay's own virtio-vsock device: the VMM
# hands its rings to adbd-relay over vhost-user; this kernel's
# vmw_vsock_virtio_transport drives them. The test guest adbd listens on
# vsock port 5555 until the host (tests/vm/virtio-vhost-user.test), done
# with adb, powers the machine off.

step modules
modload virtio_pci
modload vmw_vsock_virtio_transport
ok

step guest-adbd
spawn GUEST_PID /tmp/guest.log adbd-testguest --listen vsock:5555 --name virtio-guest
wait_for 10 grep -q READY /tmp/guest.log || fail "test guest adbd did not listen on vsock:5555"
ok "listening on vsock port 5555"

# serve until the host is done
sleep 3600
