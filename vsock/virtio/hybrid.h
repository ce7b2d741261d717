/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hybrid.h - the hybrid vsock protocol of Firecracker and Cloud Hypervisor
 * over the relay's virtio device, an extension built on the device core
 * (vhost_user.h), which knows nothing of it. On a stream socket:
 * "CONNECT <port>\n", "OK <n>\n", then the bytes of a vsock connection to
 * the guest (hybrid.c). A stream is the relay's own (transport_virtio.c
 * hands it one end of a socketpair, for the guest probe; sessions use
 * the device's connection itself, vsock/vconn.c) or a client of the device's door for
 * other host programs: a Unix socket (mode 0660) on which any program
 * reaches the guest as it would with Firecracker's socket
 * (hybrid_listen.c).
 *
 * At most one listener per device. Its handle counts in the device's
 * handles_open; closing it closes the clients that came through it and
 * removes the socket file. Once the extension has a stream or a listener,
 * vhu_stop() closes them all first (vhu_hybrid_close_all, as the device's
 * ext_stop).
 */
#ifndef VSOCK_HYBRID_H
#define VSOCK_HYBRID_H

#include <stddef.h>

#include "vsock/virtio/vhost_user.h"

#define VHU_HYBRID_MAX_CLIENTS 64    /* at once; more are accepted and closed */
#define VHU_HYBRID_COMMAND_MS 5000   /* for the CONNECT line, then the stream is closed */

/* hybrid.c: give vhu_start these ops, then hand each stream socket of the
 * relay's own to vhu_hybrid_serve (it adopts the fd). */
struct vhu_stream;
extern const struct vvs_ops vhu_hybrid_ops;
int vhu_hybrid_serve(struct vhu_device *d, int fd);
/* The listener and every stream: the device is stopping. */
void vhu_hybrid_close_all(struct vhu_device *d);

/* hybrid_listen.c: listen for hybrid clients on PATH. A socket file left
 * there is replaced, anything else is an error; so is a listener the
 * device already has. 0 or a uv error with ERR set. */
int vhu_hybrid_listen(struct vhu_device *d, const char *path, char *err, size_t errlen);
/* Close the listener and its clients; nothing when there is none. */
void vhu_hybrid_unlisten(struct vhu_device *d);
/* Where the device listens for hybrid clients, or NULL. */
const char *vhu_hybrid_listen_path(const struct vhu_device *d);

/* hybrid.c for the listener: serve a client that came through it (adopts
 * the fd; its refusals are logged), count them, close them. */
int vhu_hybrid_serve_client(struct vhu_device *d, int fd);
unsigned vhu_hybrid_clients(const struct vhu_device *d);
void vhu_hybrid_close_clients(struct vhu_device *d);

#endif
