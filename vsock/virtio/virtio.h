/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio.h - the relay's own virtio-vsock device, the public header of
 * vsock/virtio/: the one header users outside the folder include (vsock/'s
 * transport_virtio.c, the tests' VMM and guest driver). The folder is
 * built in layers, each knowing only the ones below it:
 *
 *   virtio_vsock.h  the protocol core (packet.c, device.c, queue.c): the
 *                   44-byte header, the connection table and state machine,
 *                   credit; independent of how packets move
 *   vring.h         guest memory and split virtqueues (vring.c); pure
 *   vhost_user.h    the device served to a VMM over vhost-user
 *                   (vhost_user.c, vhu_conn.c, unix_listen.c), moving
 *                   packets between the rings and the core
 *   hybrid.h        the hybrid protocol over the device (hybrid.c) and its
 *                   socket for other host programs (hybrid_listen.c)
 *
 * Private to the folder: vvs_internal.h (the core's byte queue) and
 * vhu_internal.h (the vhost-user message layer).
 *
 * A user starts a device with vhu_start() and &vhu_hybrid_ops, serves
 * connections of its own either with vhu_hybrid_serve() (one end of a
 * socketpair) or with callbacks of their own (vhu_connect: vsock/vconn.c
 * hands sessions the device's connection, with no socket in between),
 * opens the door for other programs with vhu_hybrid_listen(),
 * traces packets with vvs_set_trace(), and ends with vhu_stop().
 */
#ifndef VSOCK_VIRTIO_H
#define VSOCK_VIRTIO_H

#include "vsock/virtio/hybrid.h"
#include "vsock/virtio/vhost_user.h"
#include "vsock/virtio/virtio_vsock.h"
#include "vsock/virtio/vring.h"

#endif
